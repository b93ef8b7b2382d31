// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for collector/enroll/token.c: generated tokens have the
 * documented shape and parse back to the same id and hash; parsing is
 * strict (length, prefix, lowercase hex id, base64url secret in its one
 * canonical spelling) and reads no byte past the length it is given; the
 * hash comparison refuses a stored hash of the wrong length.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "enroll/token.h"

static void test_generate_shape(void **state)
{
	(void)state;
	char text[TOKEN_LEN + 1], id[TOKEN_ID_LEN + 1];
	uint8_t hash[TOKEN_HASH_LEN];
	assert_int_equal(token_generate(text, id, hash), 0);
	assert_int_equal(strlen(text), TOKEN_LEN);
	assert_int_equal(strlen(text), 64);
	assert_memory_equal(text, "vgj_", 4);
	assert_memory_equal(text + 4, id, TOKEN_ID_LEN);
	assert_int_equal(text[20], '_');
	assert_true(token_id_valid(id));
	for (size_t i = 21; i < TOKEN_LEN; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789-_",
				       text[i]));

	token_parts_t t;
	assert_int_equal(token_parse(text, strlen(text), &t), 0);
	assert_string_equal(t.id, id);
	uint8_t again[TOKEN_HASH_LEN];
	token_hash(&t, again);
	assert_memory_equal(again, hash, TOKEN_HASH_LEN);
	assert_true(token_hash_equal(hash, sizeof(hash), again));
	token_clear(&t);
	for (size_t i = 0; i < sizeof(t); i++)
		assert_int_equal(((unsigned char *)&t)[i], 0);
}

static void test_generate_unique(void **state)
{
	(void)state;
	char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1], ia[TOKEN_ID_LEN + 1], ib[TOKEN_ID_LEN + 1];
	uint8_t ha[TOKEN_HASH_LEN], hb[TOKEN_HASH_LEN];
	assert_int_equal(token_generate(a, ia, ha), 0);
	assert_int_equal(token_generate(b, ib, hb), 0);
	assert_string_not_equal(a, b);
	assert_string_not_equal(ia, ib);
	assert_false(token_hash_equal(ha, sizeof(ha), hb));
}

/* A known secret: 32 zero bytes are 43 'A's. */
#define ZERO_SECRET "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define GOOD "vgj_0123456789abcdef_" ZERO_SECRET

static void test_parse_known(void **state)
{
	(void)state;
	token_parts_t t;
	assert_int_equal(token_parse(GOOD, strlen(GOOD), &t), 0);
	assert_string_equal(t.id, "0123456789abcdef");
	uint8_t zero[TOKEN_SECRET_BYTES] = {0};
	assert_memory_equal(t.secret, zero, sizeof(zero));
	/* the last character carries 4 bits: 'Q' is 010000, the first allowed after 'A' */
	const char *q = "vgj_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ";
	assert_int_equal(token_parse(q, strlen(q), &t), 0);
	assert_int_equal(t.secret[31], 0x04);
	/* '-' and '_' are base64url digits 62 and 63 */
	const char *u = "vgj_0123456789abcdef__-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	assert_int_equal(token_parse(u, strlen(u), &t), 0);
	assert_int_equal(t.secret[0], 0xff);
	assert_int_equal(t.secret[1], 0xe0);
	token_clear(&t);
}

static const char *const bad_tokens[] = {
	"",
	"vgj_",
	"vgj_0123456789abcdef_",
	"vgj_0123456789abcdef_" ZERO_SECRET "A",			   /* too long */
	"vgj_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* short */
	"vgk_0123456789abcdef_" ZERO_SECRET,				   /* prefix */
	"VGJ_0123456789abcdef_" ZERO_SECRET,
	"vgj_0123456789ABCDEF_" ZERO_SECRET, /* uppercase id */
	"vgj_0123456789abcdeg_" ZERO_SECRET, /* not hex */
	"vgj_0123456789abcdef-" ZERO_SECRET, /* separator */
	"vgj-0123456789abcdef_" ZERO_SECRET,
	"vgj_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", /* not canonical */
	"vgj_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAP",
	"vgj_0123456789abcdef_+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* base64, not url */
	"vgj_0123456789abcdef_/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	"vgj_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", /* padding */
	"vgj_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ",
	" vgj_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
};

static void test_parse_refuses(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
		token_parts_t t;
		memset(&t, 0x5a, sizeof(t));
		if (token_parse(bad_tokens[i], strlen(bad_tokens[i]), &t) == 0)
			fail_msg("accepted '%s'", bad_tokens[i]);
		uint8_t zero[TOKEN_SECRET_BYTES] = {0};
		assert_memory_equal(t.secret, zero, sizeof(zero)); /* no secret left behind */
	}
	token_parts_t t;
	assert_int_not_equal(token_parse(NULL, 64, &t), 0);
	/* an embedded NUL */
	char nul[TOKEN_LEN];
	memcpy(nul, GOOD, TOKEN_LEN);
	nul[40] = '\0';
	assert_int_not_equal(token_parse(nul, sizeof(nul), &t), 0);
	/* the right bytes with the wrong length */
	assert_int_not_equal(token_parse(GOOD, TOKEN_LEN - 1, &t), 0);
	assert_int_not_equal(token_parse(GOOD, TOKEN_LEN + 1, &t), 0);
}

/* Exactly TOKEN_LEN bytes on the heap, no terminator: AddressSanitizer
 * catches a read past them. */
static void test_parse_bounded(void **state)
{
	(void)state;
	char *buf = malloc(TOKEN_LEN);
	assert_non_null(buf);
	memcpy(buf, GOOD, TOKEN_LEN);
	token_parts_t t;
	assert_int_equal(token_parse(buf, TOKEN_LEN, &t), 0);
	buf[TOKEN_LEN - 1] = 'B';
	assert_int_not_equal(token_parse(buf, TOKEN_LEN, &t), 0);
	free(buf);
}

static void test_hash_equal(void **state)
{
	(void)state;
	uint8_t a[TOKEN_HASH_LEN], b[TOKEN_HASH_LEN + 1];
	memset(a, 7, sizeof(a));
	memset(b, 7, sizeof(b));
	assert_true(token_hash_equal(b, TOKEN_HASH_LEN, a));
	assert_false(token_hash_equal(b, TOKEN_HASH_LEN + 1, a));
	assert_false(token_hash_equal(b, TOKEN_HASH_LEN - 1, a));
	assert_false(token_hash_equal(NULL, TOKEN_HASH_LEN, a));
	b[31] ^= 1;
	assert_false(token_hash_equal(b, TOKEN_HASH_LEN, a));
	b[31] ^= 1;
	b[0] ^= 0x80;
	assert_false(token_hash_equal(b, TOKEN_HASH_LEN, a));
}

static void test_id_valid(void **state)
{
	(void)state;
	assert_true(token_id_valid("0123456789abcdef"));
	assert_false(token_id_valid("0123456789abcde"));
	assert_false(token_id_valid("0123456789abcdef0"));
	assert_false(token_id_valid("0123456789abcdeF"));
	assert_false(token_id_valid(""));
	assert_false(token_id_valid(NULL));
	assert_false(token_id_valid("vgj_0123456789ab"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_shape), cmocka_unit_test(test_generate_unique),
		cmocka_unit_test(test_parse_known),    cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_parse_bounded),  cmocka_unit_test(test_hash_equal),
		cmocka_unit_test(test_id_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
