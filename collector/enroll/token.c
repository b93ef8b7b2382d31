// SPDX-License-Identifier: Apache-2.0
/*
 * Join tokens (see token.h): generation from the system's random bytes,
 * strict parsing of what an agent sends, hashing and constant-time
 * comparison of the stored hash.
 */
#include "enroll/token.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define ID_BYTES (TOKEN_ID_LEN / 2)

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char HEX[] = "0123456789abcdef";

/* The value of base64url character c, or -1. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Encode the 32 secret bytes as 43 base64url characters (no padding). */
static void b64_encode(const uint8_t in[TOKEN_SECRET_BYTES], char out[TOKEN_SECRET_LEN + 1])
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < TOKEN_SECRET_BYTES; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = B64URL[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = B64URL[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

/* Decode 43 base64url characters into 32 bytes. Return 0, or -1 if a
 * character is not base64url or the unused low bits of the last one are
 * not zero (a second spelling of the same secret). */
static int b64_decode(const char *in, uint8_t out[TOKEN_SECRET_BYTES])
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < TOKEN_SECRET_LEN; i++) {
		int v = b64_value((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return (acc & ((1u << bits) - 1)) == 0 && o == TOKEN_SECRET_BYTES ? 0 : -1;
}

bool token_id_valid(const char *s)
{
	if (!s)
		return false;
	for (size_t i = 0; i < TOKEN_ID_LEN; i++)
		if (!s[i] || !strchr(HEX, s[i]))
			return false;
	return s[TOKEN_ID_LEN] == '\0';
}

int token_generate(char text[TOKEN_LEN + 1], char id[TOKEN_ID_LEN + 1],
		   uint8_t hash[TOKEN_HASH_LEN])
{
	token_parts_t t;
	uint8_t idb[ID_BYTES];
	if (RAND_bytes(idb, sizeof(idb)) != 1 || RAND_bytes(t.secret, sizeof(t.secret)) != 1) {
		OPENSSL_cleanse(&t, sizeof(t));
		return -1;
	}
	for (size_t i = 0; i < ID_BYTES; i++) {
		t.id[2 * i] = HEX[idb[i] >> 4];
		t.id[2 * i + 1] = HEX[idb[i] & 15];
	}
	t.id[TOKEN_ID_LEN] = '\0';
	char secret[TOKEN_SECRET_LEN + 1];
	b64_encode(t.secret, secret);
	memcpy(text, TOKEN_PREFIX, 4);
	memcpy(text + 4, t.id, TOKEN_ID_LEN);
	text[4 + TOKEN_ID_LEN] = '_';
	memcpy(text + 5 + TOKEN_ID_LEN, secret, TOKEN_SECRET_LEN + 1);
	memcpy(id, t.id, TOKEN_ID_LEN + 1);
	token_hash(&t, hash);
	OPENSSL_cleanse(secret, sizeof(secret));
	token_clear(&t);
	return 0;
}

int token_parse(const char *s, size_t len, token_parts_t *out)
{
	memset(out, 0, sizeof(*out));
	if (!s || len != TOKEN_LEN || memcmp(s, TOKEN_PREFIX, 4) != 0 || s[4 + TOKEN_ID_LEN] != '_')
		return -1;
	for (size_t i = 0; i < TOKEN_ID_LEN; i++) {
		char c = s[4 + i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
		out->id[i] = c;
	}
	out->id[TOKEN_ID_LEN] = '\0';
	if (b64_decode(s + 5 + TOKEN_ID_LEN, out->secret) != 0) {
		token_clear(out);
		return -1;
	}
	return 0;
}

void token_hash(const token_parts_t *t, uint8_t out[TOKEN_HASH_LEN])
{
	SHA256(t->secret, sizeof(t->secret), out);
}

bool token_hash_equal(const uint8_t *stored, size_t stored_len,
		      const uint8_t computed[TOKEN_HASH_LEN])
{
	if (!stored || stored_len != TOKEN_HASH_LEN)
		return false;
	return CRYPTO_memcmp(stored, computed, TOKEN_HASH_LEN) == 0;
}

void token_clear(token_parts_t *t)
{
	if (t)
		OPENSSL_cleanse(t, sizeof(*t));
}
