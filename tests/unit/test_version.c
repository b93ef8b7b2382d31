// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for collector/vuln/version.c: known pairs per ecosystem (each
 * checked both ways and against itself), ordered chains whose every pair
 * must compare in order, and versions that must not parse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vuln/version.h"

typedef struct {
	const char *a, *b;
	int want; /* a against b: -1, 0, 1 */
} pair_t;

static const pair_t dpkg_pairs[] = {
	{"1.0", "1.1", -1},
	{"1.0~rc1", "1.0", -1},
	{"1.0~rc1", "1.0~rc2", -1},
	{"1.0~~", "1.0~", -1},
	{"1.0~", "1.0", -1},
	{"1.0", "1.0+b1", -1},
	{"1.0", "1.0a", -1},
	{"1.0a", "1.0+", -1},
	{"1.0a", "1.0.a", -1},
	{"1:1.0", "2.0", 1},
	{"1:0", "0:999", 1},
	{"0:1.0", "1.0", 0},
	{"00:1.0", "0:1.0", 0},
	{"1.0", "1.0-0", 0},
	{"1.0-1", "1.0-2", -1},
	{"1.0-1", "1.0-1.1", -1},
	{"1.01", "1.1", 0},
	{"1.001-1", "1.1-01", 0},
	{"10", "9", 1},
	{"1.0.0", "1.0", 1},
	{"1.0", "1.0.", -1},
	{"2.30-1", "2.30-1ubuntu1", -1},
	{"7.88.1-10+deb12u5", "7.88.1-10+deb12u6", -1},
	{"1.2.3-1~bpo11+1", "1.2.3-1", -1},
	{"3.0.11-1~deb12u2", "3.0.11-1", -1},
	{"2.36-9+deb12u4", "2.36-9", 1},
	{"1.18.0-6.1", "1.18.0-6", 1},
	{"2:8.2.3995-1ubuntu2.15", "2:8.2.3995-1ubuntu2.9", 1},
	{"1.2-3-4", "1.2-3-5", -1}, /* the revision is after the last '-' */
	{"1.2-3-4", "1.2-4", 1},    /* upstream 1.2-3 against 1.2 */
	{"1:2:3", "1:2:4", -1},	    /* colons after the epoch's belong to upstream */
	{"5.2.15-2+b2", "5.2.15-2+b10", -1},
	{"1.0+dfsg-1", "1.0-1", 1},
	{"1.0+dfsg1-1", "1.0+dfsg-1", 1},
	{"0.9.8zh-1", "0.9.8zg-1", 1},
	{"1.0-1", "1.0-1", 0},
	{"2147483647:1", "2147483646:9", 1},
	{"1.000000000000000000000000001", "1.1", 0},
	{"1.99999999999999999999999999", "1.100000000000000000000000000", -1},
};

static const pair_t apk_pairs[] = {
	{"1.0", "1.1", -1},
	{"1.2.3", "1.2.3-r1", -1},
	{"1.0-r0", "1.0", 0},
	{"1.2.3-r9", "1.2.3-r10", -1},
	{"1.2.3_rc1", "1.2.3", -1},
	{"1.2.3_alpha", "1.2.3_beta", -1},
	{"1.2.3_beta", "1.2.3_pre", -1},
	{"1.2.3_pre", "1.2.3_rc", -1},
	{"1.2.3_rc", "1.2.3_rc1", -1},
	{"1.2.3_rc1", "1.2.3_rc2", -1},
	{"1.2.3_rc9", "1.2.3_rc10", -1},
	{"1.2.3", "1.2.3_p1", -1},
	{"1.2.3", "1.2.3_cvs", -1},
	{"1.2.3_cvs", "1.2.3_svn", -1},
	{"1.2.3_svn", "1.2.3_git", -1},
	{"1.2.3_git", "1.2.3_hg", -1},
	{"1.2.3_hg", "1.2.3_p", -1},
	{"1.2.3_git20230101", "1.2.3", 1},
	{"0.7_git20181007-r0", "0.7_git20190101-r0", -1},
	{"1.2.3a", "1.2.3", 1},
	{"1.2.3a", "1.2.3b", -1},
	{"1.2.3", "1.2.3.1", -1},
	{"1.2.3.1", "1.2.3a", 1},
	{"1.2.3.1", "1.2.4", -1},
	{"1.2_p1_rc1", "1.2_p1", -1},
	{"1.2_p1", "1.2_p1_p1", -1},
	{"1.2a_rc1", "1.2a", -1},
	{"1.2a_rc1", "1.2", 1},
	{"1.01", "1.1", -1},
	{"1.10", "1.09", 1},
	{"1.05", "1.1", -1},
	{"1.001", "1.01", -1},
	{"1.010", "1.01", 0},
	{"01.1", "1.1", 0},
	{"2.0", "1.99", 1},
	{"3.1.4-r5", "3.1.4-r5", 0},
	{"1.36.1-r15", "1.36.1-r2", 1},
	{"8.5.0-r0", "8.4.0-r1", 1},
	{"99999999999999999999.1", "99999999999999999999.2", -1},
};

static const pair_t rpm_pairs[] = {
	{"1.0", "1.0", 0},
	{"1.0", "2.0", -1},
	{"2.0.1", "2.0", 1},
	{"2.0.1a", "2.0.1", 1},
	{"5.5p1", "5.5p2", -1},
	{"5.5p10", "5.5p1", 1},
	{"10xyz", "10.1xyz", -1},
	{"xyz10", "xyz10.1", -1},
	{"xyz.4", "xyz.4", 0},
	{"xyz.4", "8", -1},
	{"xyz.4", "2", -1},
	{"5.5p2", "5.6p1", -1},
	{"5.6p1", "6.5p1", -1},
	{"6.0.rc1", "6.0", 1},
	{"10b2", "10a1", 1},
	{"10a2", "10b2", -1},
	{"1.0aa", "1.0a", 1},
	{"10.0001", "10.1", 0},
	{"10.0001", "10.0039", -1},
	{"4.999.9", "5.0", -1},
	{"20101121", "20101122", -1},
	{"2_0", "2.0", 0},
	{"a+", "a_", 0},
	{"+a", "_a", 0},
	{"+_", "_+", 0},
	{"1.0~rc1", "1.0", -1},
	{"1.0~rc1", "1.0~rc2", -1},
	{"1.0~rc1~git123", "1.0~rc1", -1},
	{"1.0^", "1.0", 1},
	{"1.0^git1", "1.0", 1},
	{"1.0^git1", "1.01", -1},
	{"1.0^git1", "1.0^git2", -1},
	{"1.0^git1~pre", "1.0^git1", -1},
	{"1.0^20160101", "1.0.1", -1},
	{"1.0~rc1^git1", "1.0~rc1", 1},
	{"1.0~rc1^git1", "1.0", -1},
	{"1:1.0-1", "2.0-1", 1},
	{"1.0-1", "1.0-2", -1},
	{"1.0-1.el8", "1.0-1.el9", -1},
	{"0:1.0-1", "1.0-1", 0},
	{"1.0", "1.0-1", -1},
	{"3.0.7-27.el9", "3.0.7-24.el9_3", 1},
};

/* Each sorted from oldest to newest: every pair compares in that order. */
static const char *const dpkg_chain[] = {
	"0~",	 "0",	  "0.1~~", "0.1~~a",   "0.1~", "0.1",  "0.1-0.1", "0.1-1~",
	"0.1-1", "0.1+",  "0.1.1", "0.2~beta", "0.2",  "0.10", "1.0",	  "1.0a",
	"1.0+",	 "1.0.1", "9",	   "10",       "1:0~", "1:0",  "1:1.0",	  "2:0",
};
static const char *const apk_chain[] = {
	"0",	  "0_git20200101", "0.01.2", "0.1_alpha",  "0.1_alpha1", "0.1_beta", "0.1_pre",
	"0.1_rc", "0.1_rc1",	   "0.1",    "0.1-r1",	   "0.1_cvs",	 "0.1_svn",  "0.1_git",
	"0.1_hg", "0.1_p",	   "0.1_p1", "0.1a",	   "0.1b_alpha", "0.1b",     "0.1.1",
	"0.2",	  "1.0",	   "1.0.0",  "1.0.0.1-r3", "2",
};
static const char *const rpm_chain[] = {
	"0~",	   "0",	    "0^",   "0^a", "0.a",  "0.b",   "0.0", "0.1~rc", "0.1", "0.1-1",
	"0.1-1.1", "0.1.1", "1.0~", "1.0", "1.0a", "1.0.1", "2",   "10",     "1:0", "1:1",
};

static const char *const dpkg_bad[] = {
	"",	 "   ",	  ":1.0",    "a:1.0", "1.0-",	 "-1",	   "abc",	   "1.0 ",
	" 1.0",	 "1:",	  "1:-1",    "1.0_1", "1.0-a_b", "1.0-1-", "2147483648:1", "99999999999:1",
	"1.0\n", "1.0/2", "1.0-1:2", "é1.0",
};
static const char *const apk_bad[] = {
	"",	 "a1",	  "1.0_foo", "1.0-1",	      "1.0-r", "1.0-rx", "1..0",    "1.0.",
	"1.0ab", "1:1.0", "1.0A",    "1.0_rc1-r1-r2", "_rc1",  "1.0 ",	 "1.0-r1a", "1.0_",
};
static const char *const rpm_bad[] = {
	"", "1.0-", "-1", "a:1", "1.0/2", "1:", "1 0", "1.0-1 ", "1:1:1", "1.0-a/b", ":1",
};

static void check_pairs(version_eco_t eco, const pair_t *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int ab = 99, ba = 99, aa = 99;
		assert_int_equal(version_cmp(eco, t[i].a, t[i].b, &ab), VERSION_OK);
		assert_int_equal(version_cmp(eco, t[i].b, t[i].a, &ba), VERSION_OK);
		assert_int_equal(version_cmp(eco, t[i].a, t[i].a, &aa), VERSION_OK);
		if (ab != t[i].want || ba != -t[i].want || aa != 0)
			fail_msg("%s: %s vs %s: got %d (reverse %d, self %d), want %d",
				 version_eco_name(eco), t[i].a, t[i].b, ab, ba, aa, t[i].want);
	}
}

static void check_chain(version_eco_t eco, const char *const *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int r = 99;
			assert_int_equal(version_cmp(eco, c[i], c[j], &r), VERSION_OK);
			int want = i < j ? -1 : (i > j ? 1 : 0);
			if (r != want)
				fail_msg("%s: %s vs %s: got %d, want %d", version_eco_name(eco),
					 c[i], c[j], r, want);
		}
}

static void check_bad(version_eco_t eco, const char *const *bad, size_t n, const char *good)
{
	for (size_t i = 0; i < n; i++) {
		int r = 99;
		if (!version_check(eco, bad[i]))
			fail_msg("%s: '%s' parsed", version_eco_name(eco), bad[i]);
		assert_int_equal(version_cmp(eco, bad[i], good, &r), VERSION_BAD_A);
		assert_int_equal(version_cmp(eco, good, bad[i], &r), VERSION_BAD_B);
		assert_int_equal(version_cmp(eco, bad[i], bad[i], &r), VERSION_BAD_A);
		assert_int_equal(r, 99);
	}
	assert_null(version_check(eco, good));
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_dpkg_pairs(void **state)
{
	(void)state;
	check_pairs(VERSION_DPKG, dpkg_pairs, N(dpkg_pairs));
	check_chain(VERSION_DPKG, dpkg_chain, N(dpkg_chain));
}

static void test_apk_pairs(void **state)
{
	(void)state;
	check_pairs(VERSION_APK, apk_pairs, N(apk_pairs));
	check_chain(VERSION_APK, apk_chain, N(apk_chain));
}

static void test_rpm_pairs(void **state)
{
	(void)state;
	check_pairs(VERSION_RPM, rpm_pairs, N(rpm_pairs));
	check_chain(VERSION_RPM, rpm_chain, N(rpm_chain));
}

static void test_bad_versions(void **state)
{
	(void)state;
	check_bad(VERSION_DPKG, dpkg_bad, N(dpkg_bad), "1:2.3-4");
	check_bad(VERSION_APK, apk_bad, N(apk_bad), "2.3_rc1-r4");
	check_bad(VERSION_RPM, rpm_bad, N(rpm_bad), "1:2.3-4.el9");
	assert_string_equal(version_check(VERSION_DPKG, "a:1"), "epoch is not a number");
	assert_string_equal(version_check(VERSION_DPKG, "1.0-"), "revision is empty");
	assert_string_equal(version_check(VERSION_DPKG, "x1"),
			    "upstream version does not start with a digit");
	assert_string_equal(version_check(VERSION_APK, "1.0-r"), "revision is not -rN");
}

static void test_length_cap(void **state)
{
	(void)state;
	char v[VERSION_MAX_LEN + 2];
	memset(v, '1', sizeof(v));
	v[VERSION_MAX_LEN] = '\0';
	assert_null(version_check(VERSION_DPKG, v));
	assert_null(version_check(VERSION_APK, v));
	assert_null(version_check(VERSION_RPM, v));
	v[VERSION_MAX_LEN] = '1';
	v[VERSION_MAX_LEN + 1] = '\0';
	assert_string_equal(version_check(VERSION_DPKG, v), "longer than 256 bytes");
	assert_non_null(version_check(VERSION_APK, v));
	assert_non_null(version_check(VERSION_RPM, v));
	assert_non_null(version_check(VERSION_RPM, NULL));
	assert_string_equal(version_eco_name(VERSION_APK), "apk");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dpkg_pairs), cmocka_unit_test(test_apk_pairs),
		cmocka_unit_test(test_rpm_pairs),  cmocka_unit_test(test_bad_versions),
		cmocka_unit_test(test_length_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
