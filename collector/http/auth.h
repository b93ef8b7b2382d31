// SPDX-License-Identifier: Apache-2.0
/*
 * API credentials: tokens and session ids (generated here, stored as their
 * SHA-256), the places they arrive in (the Authorization header and the
 * sign-in form carry a token, the session cookie a session id), the
 * sign-in's same-origin check, roles and durations. Pure code: no I/O but
 * the random bytes of a new token or session id.
 */
#ifndef VIGIL_AUTH_H
#define VIGIL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_TOKEN_PREFIX "vgl_"
#define AUTH_TOKEN_LEN (4 + 64) /* prefix + 32 random bytes in hex */
#define AUTH_HASH_LEN 64	/* SHA-256 in hex */
#define AUTH_SESSION_PREFIX "vgs_"
#define AUTH_SESSION_LEN (4 + 64) /* prefix + 32 random bytes in hex */
/* The __Host- prefix: a browser keeps the cookie only if it was set over
 * HTTPS with Path=/ and no Domain, so no other host (a sibling subdomain)
 * and no plain-HTTP answer can set or shadow it. */
#define AUTH_COOKIE "__Host-vigil_session"

typedef enum {
	AUTH_ROLE_NONE = 0,
	AUTH_ROLE_VIEWER,
	AUTH_ROLE_ADMIN,
} auth_role_t;

/* Write a new random token into out (AUTH_TOKEN_LEN + 1 bytes).
 * Return 0, or -1 if no random bytes could be had. */
int auth_token_generate(char *out) __attribute__((warn_unused_result));
/* Write a new random session id into out (AUTH_SESSION_LEN + 1 bytes): 32
 * bytes from the OpenSSL RNG in hex after AUTH_SESSION_PREFIX. Return 0, or
 * -1 if no random bytes could be had. */
int auth_session_generate(char *out) __attribute__((warn_unused_result));
/* Write the hex SHA-256 of token (or of a session id) into out
 * (AUTH_HASH_LEN + 1 bytes). */
void auth_token_hash(const char *token, char *out);
/* True if s has the shape of a token (prefix and 64 lower-case hex digits). */
bool auth_token_well_formed(const char *s);
/* True if s has the shape of a session id (its prefix and 64 lower-case hex
 * digits). A token is not a session id. */
bool auth_session_well_formed(const char *s);
/* Extract the token of an "Authorization: Bearer TOKEN" value into out
 * (AUTH_TOKEN_LEN + 1 bytes). Return 0, or -1 if it is not a well-formed
 * bearer token. */
int auth_bearer(const char *header, char *out);
/* Extract the token of a form field or header value: blanks (space, tab)
 * around it are dropped and the rest must be a well-formed token. Write it
 * into out (AUTH_TOKEN_LEN + 1 bytes). Return 0 or -1. */
int auth_token_value(const char *value, char *out);
/* Look for the AUTH_COOKIE cookie in one Cookie header value. For each one
 * found, add 1 to *count and write its session id into out
 * (AUTH_SESSION_LEN + 1 bytes). Return -1 if one has a value that is not a
 * well-formed session id (a caller refuses that, and a count above 1),
 * else 0. */
int auth_session_cookie(const char *header, char *out, int *count);
/* True if origin (an Origin header) names the HTTPS site that host (the
 * request's Host header) names: "https://" + host, case-insensitively, a
 * port of 443 written or not. "null" and anything else is false. */
bool auth_same_origin(const char *origin, const char *host);

/* "viewer" / "admin" and back. */
const char *auth_role_name(auth_role_t r);
auth_role_t auth_role_parse(const char *s);
/* A token name: 1 to 64 of [A-Za-z0-9._@-]. */
bool auth_name_valid(const char *s);
/* Parse a duration such as 30d, 12h, 90m, 2w or 3600 (seconds) into
 * seconds. Return 0, or -1 if malformed, zero or above 100 years. */
int auth_parse_duration(const char *s, int64_t *seconds) __attribute__((warn_unused_result));

#endif
