// SPDX-License-Identifier: Apache-2.0
/*
 * Join tokens of enrollment: "vgj_<id>_<secret>", where id is 16 lowercase
 * hex characters (8 random bytes, public: stored, listed and logged) and
 * secret 43 base64url characters without padding (32 random bytes, a bearer
 * secret: printed once, never stored, logged or listed). Only the SHA-256 of
 * the secret's 32 bytes is stored (enroll_tokens.secret_sha256). Pure code
 * on buffers but for the random bytes of token_generate.
 */
#ifndef VIGIL_ENROLL_TOKEN_H
#define VIGIL_ENROLL_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_PREFIX "vgj_"
#define TOKEN_ID_LEN 16					    /* hex characters */
#define TOKEN_SECRET_BYTES 32				    /* random bytes of the secret */
#define TOKEN_SECRET_LEN 43				    /* base64url characters of the secret */
#define TOKEN_LEN (4 + TOKEN_ID_LEN + 1 + TOKEN_SECRET_LEN) /* 64 */
#define TOKEN_HASH_LEN 32				    /* SHA-256 */

/* A token taken apart. Holds the secret: clear it with token_clear. */
typedef struct {
	char id[TOKEN_ID_LEN + 1];
	uint8_t secret[TOKEN_SECRET_BYTES];
} token_parts_t;

/* Make a new token: its text (printed once), its id and the hash of its
 * secret to store. Return 0, or -1 if no random bytes could be had. */
int token_generate(char text[TOKEN_LEN + 1], char id[TOKEN_ID_LEN + 1],
		   uint8_t hash[TOKEN_HASH_LEN]) __attribute__((warn_unused_result));

/* Take the untrusted text s (len bytes, no terminator needed) apart into
 * out. Strict: exactly TOKEN_LEN bytes, the prefix, a lowercase hex id, '_'
 * and the canonical base64url encoding of 32 bytes. Return 0, or -1 (out
 * then holds no secret). Reads no more than len bytes. */
int token_parse(const char *s, size_t len, token_parts_t *out) __attribute__((warn_unused_result));

/* Whether s (NUL-terminated) is a token id: 16 lowercase hex characters. */
bool token_id_valid(const char *s);

/* The stored form of a token's secret: SHA-256 of its 32 bytes. */
void token_hash(const token_parts_t *t, uint8_t out[TOKEN_HASH_LEN]);

/* Compare a stored hash (stored_len bytes, from the database) with a
 * computed one in constant time. Return true only if they are equal and
 * stored_len is TOKEN_HASH_LEN. */
bool token_hash_equal(const uint8_t *stored, size_t stored_len,
		      const uint8_t computed[TOKEN_HASH_LEN]);

/* Wipe the secret of t (and its id). Accepts NULL. */
void token_clear(token_parts_t *t);

#endif
