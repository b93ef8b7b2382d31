// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for common/utf8.c: validation and in-place repair of strings
 * that come from agents and containers. Table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

struct valid_case {
	const char *what;
	const char *s;
	size_t n;
	bool valid;
};

#define V(what, lit, ok)                       \
	{                                      \
		what, lit, sizeof(lit) - 1, ok \
	}

static const struct valid_case valid_cases[] = {
	V("empty", "", true),
	V("ascii", "hello, world", true),
	V("tab and newline", "a\tb\n", true), /* valid UTF-8; sanitize handles controls */
	V("2 bytes U+00E9", "\xc3\xa9", true),
	V("2 bytes U+0080 (smallest)", "\xc2\x80", true),
	V("3 bytes U+20AC", "\xe2\x82\xac", true),
	V("3 bytes U+0800 (smallest)", "\xe0\xa0\x80", true),
	V("3 bytes U+D7FF (below surrogates)", "\xed\x9f\xbf", true),
	V("3 bytes U+E000 (above surrogates)", "\xee\x80\x80", true),
	V("3 bytes U+FFFF", "\xef\xbf\xbf", true),
	V("4 bytes U+1D11E", "\xf0\x9d\x84\x9e", true),
	V("4 bytes U+10000 (smallest)", "\xf0\x90\x80\x80", true),
	V("4 bytes U+10FFFF (largest)", "\xf4\x8f\xbf\xbf", true),
	V("mixed", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3", true),
	V("NUL byte", "a\0b", false),
	V("only NUL", "\0", false),
	V("overlong NUL", "\xc0\x80", false),
	V("overlong 2 bytes", "\xc1\xbf", false),
	V("overlong 3 bytes", "\xe0\x9f\xbf", false),
	V("overlong 4 bytes", "\xf0\x8f\xbf\xbf", false),
	V("surrogate U+D800", "\xed\xa0\x80", false),
	V("surrogate U+DFFF", "\xed\xbf\xbf", false),
	V("above U+10FFFF", "\xf4\x90\x80\x80", false),
	V("lead byte F5", "\xf5\x80\x80\x80", false),
	V("byte FF", "\xff", false),
	V("byte FE", "\xfe", false),
	V("lone continuation", "\x80", false),
	V("continuation after ascii", "a\xbf", false),
	V("truncated 2 bytes", "\xc3", false),
	V("truncated 3 bytes", "\xe2\x82", false),
	V("truncated 4 bytes", "\xf0\x9d\x84", false),
	V("bad continuation", "\xe2\x28\xa1", false),
	V("valid then truncated", "ok\xc3\xa9\xe2", false),
};

static void test_utf8_valid_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		const struct valid_case *c = &valid_cases[i];
		/* An exact-size copy, so ASan sees any read past n. */
		char *buf = malloc(c->n ? c->n : 1);
		assert_non_null(buf);
		memcpy(buf, c->s, c->n);
		bool got = utf8_valid(buf, c->n);
		free(buf);
		if (got != c->valid)
			fail_msg("case '%s': utf8_valid = %d, want %d", c->what, got, c->valid);
	}
	/* n bounds the check: a valid prefix of an invalid string is valid. */
	assert_true(utf8_valid("ab\xff", 2));
	assert_false(utf8_valid("\xc3\xa9", 1));
}

/* Plain ASCII is checked 8 bytes at a time: one byte that is not (a NUL,
 * a stray continuation byte, a valid or a cut sequence) at every position
 * of ASCII strings of every length up to 40 decides the answer alone. */
static void test_utf8_valid_ascii_runs(void **state)
{
	(void)state;
	static const struct {
		const char *bytes;
		size_t n;
		bool valid;
	} odd[] = {
		{"\0", 1, false},      {"\x80", 1, false},	  {"\x7f", 1, true},
		{"\xc3\xa9", 2, true}, {"\xe2\x82\xac", 3, true}, {"\xe2\x82", 2, false},
		{"\xff", 1, false},
	};
	for (size_t o = 0; o < sizeof(odd) / sizeof(odd[0]); o++)
		for (size_t len = 0; len <= 40; len++)
			for (size_t at = 0; at + odd[o].n <= len; at++) {
				char *buf = malloc(len ? len : 1); /* exact size for ASan */
				assert_non_null(buf);
				memset(buf, 'a', len);
				memcpy(buf + at, odd[o].bytes, odd[o].n);
				bool got = utf8_valid(buf, len);
				free(buf);
				if (got != odd[o].valid)
					fail_msg("odd bytes %zu at %zu of %zu: utf8_valid = %d", o,
						 at, len, got);
			}
	for (size_t len = 0; len <= 40; len++) {
		char *buf = malloc(len ? len : 1);
		assert_non_null(buf);
		memset(buf, 'a', len);
		assert_true(utf8_valid(buf, len));
		free(buf);
	}
}

struct sanitize_case {
	const char *in;
	const char *want;
	size_t replaced;
};

static const struct sanitize_case sanitize_cases[] = {
	{"", "", 0},
	{"plain text", "plain text", 0},
	{"tab\tkept", "tab\tkept", 0},
	{"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac", 0},
	{"a\xff\x62", "a?b", 1}, /* \x62 is "b" */
	{"line\nbreak\r", "line?break?", 2},
	{"esc\x1b[31m", "esc?[31m", 1},
	{"del\x7f", "del?", 1},
	{"\x01\x02", "??", 2},
	{"\xe2\x82", "??", 2},	    /* truncated sequence: each byte */
	{"\xc3(", "?(", 1},	    /* bad continuation keeps the next char */
	{"\xed\xa0\x80", "???", 3}, /* surrogate */
	{"\xc0\x80", "??", 2},	    /* overlong */
	{"x\xf0\x9f\x90\xb3y", "x\xf0\x9f\x90\xb3y", 0},
};

static void test_utf8_sanitize_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sanitize_cases) / sizeof(sanitize_cases[0]); i++) {
		const struct sanitize_case *c = &sanitize_cases[i];
		char *s = strdup(c->in);
		assert_non_null(s);
		size_t n = utf8_sanitize(s);
		if (n != c->replaced || strcmp(s, c->want) != 0)
			fail_msg("case %zu: replaced %zu '%s', want %zu '%s'", i, n, s, c->replaced,
				 c->want);
		/* Same length, and the result is valid. */
		assert_int_equal(strlen(s), strlen(c->in));
		assert_true(utf8_valid(s, strlen(s)));
		/* Sanitizing twice changes nothing more. */
		assert_int_equal(utf8_sanitize(s), 0);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_valid_table),
		cmocka_unit_test(test_utf8_valid_ascii_runs),
		cmocka_unit_test(test_utf8_sanitize_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
