// SPDX-License-Identifier: Apache-2.0
/*
 * Agent identities made from host names. An identity becomes the CN of the
 * agent's certificate: lower-case DNS labels, [a-z0-9]([a-z0-9-]*[a-z0-9])?
 * joined by '.', at most IDENTITY_MAX bytes. Names the operator side uses
 * are reserved. Pure code on strings.
 */
#ifndef VIGIL_ENROLL_IDENTITY_H
#define VIGIL_ENROLL_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#define IDENTITY_MAX 63 /* bytes; a CN may hold 64 */

typedef enum {
	IDENTITY_OK = 0,
	IDENTITY_EMPTY,	      /* no host name */
	IDENTITY_TOO_LONG,    /* over IDENTITY_MAX bytes */
	IDENTITY_BAD_CHAR,    /* a byte other than A-Z a-z 0-9 '-' '.' */
	IDENTITY_EMPTY_LABEL, /* "..", or a leading or trailing '.' */
	IDENTITY_HYPHEN,      /* a label starts or ends with '-' */
	IDENTITY_RESERVED,    /* a name the operator side uses */
} identity_rc_t;

/* Why rc refused a name, as a phrase for the agent ("" for IDENTITY_OK). */
const char *identity_why(identity_rc_t rc);

/* Make the identity of the untrusted host name host (len bytes, no
 * terminator needed): lower-cased, then checked as above (not for reserved
 * names: see identity_reserved). Return IDENTITY_OK with out set, or why
 * not (out is then ""). */
identity_rc_t identity_normalize(const char *host, size_t len, char out[IDENTITY_MAX + 1])
	__attribute__((warn_unused_result));

/* Whether name is reserved: "admin", "root", "localhost", or one of the
 * comma-separated names of admin_cns (http_admin_cns; may be NULL). */
bool identity_reserved(const char *name, const char *admin_cns);

/* The n-th unique variant of base (n >= 2): "base-n", with base cut short
 * (and any '-' or '.' left at the cut removed) so that it fits in
 * IDENTITY_MAX. Return 0, or -1 if base is empty or nothing of it fits. */
int identity_with_suffix(const char *base, unsigned n, char out[IDENTITY_MAX + 1])
	__attribute__((warn_unused_result));

/* Whether name matches the token's glob pattern (fnmatch: '*', '?',
 * [...]; '.' is not special). A NULL or empty pattern matches anything. */
bool identity_matches_pattern(const char *pattern, const char *name);

#endif
