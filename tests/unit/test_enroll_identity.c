// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for collector/enroll/identity.c: host names that make an
 * identity and those refused (with the reason), the reserved names, the
 * "-N" variants that keep identities unique within 63 bytes, and the
 * tokens' name patterns.
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

#include "enroll/identity.h"

#define L63 "a23456789b123456789c123456789d123456789e123456789f123456789g123"
#define L64 L63 "x"

struct norm_case {
	const char *host;
	size_t len; /* 0: strlen */
	identity_rc_t rc;
	const char *out;
};

static const struct norm_case norm_cases[] = {
	{"web-01", 0, IDENTITY_OK, "web-01"},
	{"Web-01.Example.COM", 0, IDENTITY_OK, "web-01.example.com"},
	{"a", 0, IDENTITY_OK, "a"},
	{"0", 0, IDENTITY_OK, "0"},
	{"node-1.k8s.prod", 0, IDENTITY_OK, "node-1.k8s.prod"},
	{"a--b", 0, IDENTITY_OK, "a--b"},
	{L63, 0, IDENTITY_OK, L63},
	{"", 0, IDENTITY_EMPTY, ""},
	{L64, 0, IDENTITY_TOO_LONG, ""},
	{"a..b", 0, IDENTITY_EMPTY_LABEL, ""},
	{".a", 0, IDENTITY_EMPTY_LABEL, ""},
	{"a.", 0, IDENTITY_EMPTY_LABEL, ""},
	{".", 0, IDENTITY_EMPTY_LABEL, ""},
	{"-a", 0, IDENTITY_HYPHEN, ""},
	{"a-", 0, IDENTITY_HYPHEN, ""},
	{"a-.b", 0, IDENTITY_HYPHEN, ""},
	{"a.-b", 0, IDENTITY_HYPHEN, ""},
	{"-", 0, IDENTITY_HYPHEN, ""},
	{"a_b", 0, IDENTITY_BAD_CHAR, ""},
	{"a b", 0, IDENTITY_BAD_CHAR, ""},
	{"a/b", 0, IDENTITY_BAD_CHAR, ""},
	{"CN=admin", 0, IDENTITY_BAD_CHAR, ""},
	{"h\xc3\xa9", 0, IDENTITY_BAD_CHAR, ""},
	{"a\nb", 0, IDENTITY_BAD_CHAR, ""},
	{"ab\0cd", 5, IDENTITY_BAD_CHAR, ""},
	{"web-01\0junk", 6, IDENTITY_OK, "web-01"},
};

static void test_normalize(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
		const struct norm_case *c = &norm_cases[i];
		char out[IDENTITY_MAX + 1];
		memset(out, 'z', sizeof(out));
		size_t len = c->len ? c->len : strlen(c->host);
		identity_rc_t rc = identity_normalize(c->host, len, out);
		if (rc != c->rc)
			fail_msg("case %zu (%s): rc %d, want %d", i, c->host, rc, c->rc);
		assert_string_equal(out, c->out);
		if (rc != IDENTITY_OK)
			assert_true(identity_why(rc)[0] != '\0');
	}
	char out[IDENTITY_MAX + 1];
	assert_int_equal(identity_normalize(NULL, 3, out), IDENTITY_EMPTY);
	assert_string_equal(identity_why(IDENTITY_OK), "");
}

static void test_reserved(void **state)
{
	(void)state;
	assert_true(identity_reserved("admin", NULL));
	assert_true(identity_reserved("root", ""));
	assert_true(identity_reserved("localhost", NULL));
	assert_false(identity_reserved("admin-2", NULL));
	assert_false(identity_reserved("web-1", NULL));
	const char *cns = "ops, sre-lead ,alice";
	assert_true(identity_reserved("ops", cns));
	assert_true(identity_reserved("sre-lead", cns));
	assert_true(identity_reserved("alice", cns));
	assert_false(identity_reserved("op", cns));
	assert_false(identity_reserved("sre", cns));
	assert_false(identity_reserved("alice2", cns));
	assert_false(identity_reserved("", ",,"));
}

static void test_suffix(void **state)
{
	(void)state;
	char out[IDENTITY_MAX + 1];
	assert_int_equal(identity_with_suffix("web", 2, out), 0);
	assert_string_equal(out, "web-2");
	assert_int_equal(identity_with_suffix("web.example.com", 17, out), 0);
	assert_string_equal(out, "web.example.com-17");
	/* 63 bytes: cut to 61 for "-2", to 60 for "-10" */
	assert_int_equal(identity_with_suffix(L63, 2, out), 0);
	assert_int_equal(strlen(out), 63);
	assert_memory_equal(out, L63, 61);
	assert_string_equal(out + 61, "-2");
	assert_int_equal(identity_with_suffix(L63, 10, out), 0);
	assert_int_equal(strlen(out), 63);
	assert_string_equal(out + 60, "-10");
	/* a cut that ends on '-' or '.' drops them: the result stays valid */
	const char *dots = "a23456789b123456789c123456789d123456789e123456789f123456789.-bc";
	assert_int_equal(strlen(dots), 63);
	assert_int_equal(identity_with_suffix(dots, 2, out), 0);
	assert_string_equal(out, "a23456789b123456789c123456789d123456789e123456789f123456789-2");
	char check[IDENTITY_MAX + 1];
	assert_int_equal(identity_normalize(out, strlen(out), check), IDENTITY_OK);
	assert_int_equal(identity_with_suffix("web", 1, out), -1);
	assert_int_equal(identity_with_suffix("", 2, out), -1);
	assert_int_equal(identity_with_suffix(NULL, 2, out), -1);
	assert_int_equal(identity_with_suffix("-", 2, out), -1);
}

static void test_pattern(void **state)
{
	(void)state;
	assert_true(identity_matches_pattern(NULL, "anything"));
	assert_true(identity_matches_pattern("", "anything"));
	assert_true(identity_matches_pattern("web-*", "web-1"));
	assert_true(identity_matches_pattern("web-*", "web-1.example.com"));
	assert_false(identity_matches_pattern("web-*", "db-1"));
	assert_true(identity_matches_pattern("*.prod", "node-7.prod"));
	assert_false(identity_matches_pattern("*.prod", "node-7.prod.x"));
	assert_true(identity_matches_pattern("node-?", "node-7"));
	assert_false(identity_matches_pattern("node-?", "node-17"));
	assert_true(identity_matches_pattern("node-[0-9]*", "node-17"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_reserved),
		cmocka_unit_test(test_suffix),
		cmocka_unit_test(test_pattern),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
