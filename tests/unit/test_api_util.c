/*
 * Unit tests for collector/api_util.c and collector/auth.c: the query API's
 * parsers of untrusted bytes (query strings, times, cursors, path segments),
 * CSV cells, and the token helpers. Table-driven.
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

#include "api_util.h"
#include "auth.h"

#define NOW_US (INT64_C(1700000000) * 1000000)

struct time_case {
	const char *in;
	int rc;
	int64_t want_us;
};

static const struct time_case time_cases[] = {
	{"2024-05-01T12:00:00Z", 0, INT64_C(1714564800) * 1000000},
	{"2024-05-01T12:00:00.5Z", 0, INT64_C(1714564800) * 1000000 + 500000},
	{"2024-05-01T12:00:00.123456789Z", 0, INT64_C(1714564800) * 1000000 + 123456},
	{"2024-05-01T14:00:00+02:00", 0, INT64_C(1714564800) * 1000000},
	{"2024-05-01t12:00:00z", 0, INT64_C(1714564800) * 1000000},
	{"1970-01-01T00:00:00Z", 0, 0},
	{"2024-02-29T00:00:00Z", 0, INT64_C(1709164800) * 1000000},
	{"1714564800", 0, INT64_C(1714564800) * 1000000},
	{"24h", 0, NOW_US - INT64_C(86400) * 1000000},
	{"-24h", 0, NOW_US - INT64_C(86400) * 1000000},
	{"90s", 0, NOW_US - INT64_C(90) * 1000000},
	{"15m", 0, NOW_US - INT64_C(900) * 1000000},
	{"7d", 0, NOW_US - INT64_C(7) * 86400 * 1000000},
	{"2w", 0, NOW_US - INT64_C(14) * 86400 * 1000000},
	{"", -1, 0},
	{"yesterday", -1, 0},
	{"24", 0, INT64_C(24) * 1000000},
	{"-24", -1, 0},
	{"h", -1, 0},
	{"-", -1, 0},
	{"24x", -1, 0},
	{"99999999999999999999h", -1, 0},
	{"2024-13-01T00:00:00Z", -1, 0},
	{"2024-02-30T00:00:00Z", -1, 0},
	{"2024-05-01T24:00:00Z", -1, 0},
	{"2024-05-01T12:00:00", -1, 0},
	{"2024-05-01T12:00:00.Z", -1, 0},
	{"2024-05-01T12:00:00Zjunk", -1, 0},
	{"2024-05-01T12:00:00+2:00", -1, 0},
	{"1969-12-31T23:59:59Z", -1, 0},
	{"2024-05-01", -1, 0},
};

static void test_times(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++) {
		const struct time_case *c = &time_cases[i];
		int64_t got = -42;
		int rc = api_parse_time(c->in, NOW_US, &got);
		if (rc != c->rc)
			fail_msg("'%s': rc %d, want %d", c->in, rc, c->rc);
		if (rc == 0 && got != c->want_us)
			fail_msg("'%s': %lld, want %lld", c->in, (long long)got,
				 (long long)c->want_us);
	}
	char buf[40];
	api_format_time(INT64_C(1714564800) * 1000000 + 5, buf, sizeof(buf));
	assert_string_equal(buf, "2024-05-01T12:00:00.000005Z");
}

static void test_query_strings(void **state)
{
	(void)state;
	qparams_t q;
	char bad[80];
	assert_int_equal(qparams_parse("a=1&b=x%20y&c=p+q&d=&e", &q, bad, sizeof(bad)), 0);
	assert_int_equal(q.n, 5);
	assert_string_equal(qparams_get(&q, "b"), "x y");
	assert_string_equal(qparams_get(&q, "c"), "p q");
	assert_string_equal(qparams_get(&q, "d"), "");
	assert_string_equal(qparams_get(&q, "e"), "");
	assert_null(qparams_get(&q, "zz"));
	assert_string_equal(qparams_unused(&q), "a");
	assert_string_equal(qparams_get(&q, "a"), "1");
	assert_null(qparams_unused(&q));
	qparams_free(&q);

	assert_int_equal(qparams_parse(NULL, &q, bad, sizeof(bad)), 0);
	assert_int_equal(q.n, 0);
	assert_int_equal(qparams_parse("&&", &q, bad, sizeof(bad)), 0);
	assert_int_equal(q.n, 0);

	static const struct {
		const char *in, *bad;
	} bads[] = {
		{"a=1&a=2", "a"}, {"since=%zz", "since"}, {"since=%4", "since"}, {"x=a%00b", "x"},
		{"x=%ff", "x"},	  {"x=%0a", "x"},	  {"=1", "query"},	 {"%ff=1", "query"},
	};
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		if (qparams_parse(bads[i].in, &q, bad, sizeof(bad)) != -1)
			fail_msg("'%s' accepted", bads[i].in);
		if (strcmp(bad, bads[i].bad) != 0)
			fail_msg("'%s': names '%s', want '%s'", bads[i].in, bad, bads[i].bad);
	}
	/* too many keys, too long a value */
	char many[QP_MAX * 8 + 16] = "";
	for (int i = 0; i <= QP_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "k%d=1&", i);
	assert_int_equal(qparams_parse(many, &q, bad, sizeof(bad)), -1);
	char *big = malloc(QP_MAX_VALUE + 16);
	memcpy(big, "v=", 2);
	memset(big + 2, 'a', QP_MAX_VALUE + 1);
	big[QP_MAX_VALUE + 3] = '\0';
	assert_int_equal(qparams_parse(big, &q, bad, sizeof(bad)), -1);
	assert_string_equal(bad, "v");
	free(big);
}

static void test_numbers_kinds_cursors(void **state)
{
	(void)state;
	int64_t v;
	assert_int_equal(api_parse_int("42", 1, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(api_parse_int("0", 1, 100, &v), -1);
	assert_int_equal(api_parse_int("101", 1, 100, &v), -1);
	assert_int_equal(api_parse_int("4x", 0, 100, &v), -1);
	assert_int_equal(api_parse_int("", 0, 100, &v), -1);
	assert_int_equal(api_parse_int("-", -5, 100, &v), -1);
	assert_int_equal(api_parse_int("99999999999999999999", 0, INT64_MAX, &v), -1);
	bool b;
	assert_int_equal(api_parse_bool("true", &b), 0);
	assert_true(b);
	assert_int_equal(api_parse_bool("0", &b), 0);
	assert_false(b);
	assert_int_equal(api_parse_bool("maybe", &b), -1);
	assert_int_equal(api_kind_parse("process_exec"), 4);
	assert_int_equal(api_kind_parse("6"), 6);
	assert_int_equal(api_kind_parse("8"), -1);
	assert_int_equal(api_kind_parse("reboot"), -1);
	assert_int_equal(api_severity_parse("critical"), 5);
	assert_int_equal(api_severity_parse("0"), -1);
	api_cursor_t c;
	assert_int_equal(api_cursor_parse("1714564800000000.3.17.2", &c), 0);
	assert_int_equal(c.ts_us, INT64_C(1714564800000000));
	assert_int_equal(c.agent_id, 3);
	assert_int_equal(c.seq, 17);
	assert_int_equal(c.idx, 2);
	static const char *const badc[] = {"",	     "1.2.3",	 "1.2.3.4.5", "a.b.c.d",
					   "1..3.4", "1.2.3.-4", "1.2.3.4.",  NULL};
	for (int i = 0; badc[i]; i++)
		if (api_cursor_parse(badc[i], &c) == 0)
			fail_msg("cursor '%s' accepted", badc[i]);
}

static void test_path_segments(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(api_path_segment("node-1", 6, out, sizeof(out)), 0);
	assert_string_equal(out, "node-1");
	assert_int_equal(api_path_segment("a%20b", 5, out, sizeof(out)), 0);
	assert_string_equal(out, "a b");
	static const char *const bad[] = {"..",	   ".",	   "%2e%2e", "a%2fb", "a/b",
					  "a%5cb", "a%00", "%zz",    "",      NULL};
	for (int i = 0; bad[i]; i++)
		if (api_path_segment(bad[i], strlen(bad[i]), out, sizeof(out)) == 0)
			fail_msg("segment '%s' accepted", bad[i]);
}

static void test_csv_cells(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"plain", "\"plain\""}, {"a \"q\" b", "\"a \"\"q\"\" b\""},
		{"=1+2", "\"'=1+2\""},	{"+1", "\"'+1\""},
		{"-1", "\"'-1\""},	{"@SUM(A1)", "\"'@SUM(A1)\""},
		{"\tx", "\"'\tx\""},	{"\rx", "\"'\rx\""},
		{"a=b", "\"a=b\""},	{"", "\"\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sbuf_t b;
		sbuf_init(&b);
		api_csv_cell(&b, cases[i].in);
		if (strcmp(b.s, cases[i].out) != 0)
			fail_msg("csv '%s' -> '%s', want '%s'", cases[i].in, b.s, cases[i].out);
		sbuf_free(&b);
	}
}

static void test_tokens(void **state)
{
	(void)state;
	char t1[AUTH_TOKEN_LEN + 1], t2[AUTH_TOKEN_LEN + 1], out[AUTH_TOKEN_LEN + 1];
	assert_int_equal(auth_token_generate(t1), 0);
	assert_int_equal(auth_token_generate(t2), 0);
	assert_int_equal(strlen(t1), AUTH_TOKEN_LEN);
	assert_true(auth_token_well_formed(t1));
	assert_string_not_equal(t1, t2);
	char h1[AUTH_HASH_LEN + 1], h2[AUTH_HASH_LEN + 1];
	auth_token_hash(t1, h1);
	auth_token_hash(t1, h2);
	assert_string_equal(h1, h2);
	auth_token_hash("abc", h1);
	assert_string_equal(h1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	char hdr[128];
	snprintf(hdr, sizeof(hdr), "Bearer %s", t1);
	assert_int_equal(auth_bearer(hdr, out), 0);
	assert_string_equal(out, t1);
	snprintf(hdr, sizeof(hdr), "bearer   %s  ", t1);
	assert_int_equal(auth_bearer(hdr, out), 0);
	assert_int_equal(auth_bearer("Basic abc", out), -1);
	assert_int_equal(auth_bearer("Bearer vgl_XYZ", out), -1);
	assert_int_equal(auth_bearer(NULL, out), -1);
	snprintf(hdr, sizeof(hdr), "Bearer %sA", t1);
	assert_int_equal(auth_bearer(hdr, out), -1);
	assert_true(auth_name_valid("ops.team@site-1"));
	assert_false(auth_name_valid(""));
	assert_false(auth_name_valid("a b"));
	assert_false(auth_name_valid("a'b"));
	int64_t s;
	assert_int_equal(auth_parse_duration("30d", &s), 0);
	assert_int_equal(s, 30 * 86400);
	assert_int_equal(auth_parse_duration("2w", &s), 0);
	assert_int_equal(s, 14 * 86400);
	assert_int_equal(auth_parse_duration("3600", &s), 0);
	assert_int_equal(s, 3600);
	assert_int_equal(auth_parse_duration("0d", &s), -1);
	assert_int_equal(auth_parse_duration("d", &s), -1);
	assert_int_equal(auth_parse_duration("5y", &s), -1);
	assert_int_equal(auth_parse_duration("999999999999d", &s), -1);
	assert_int_equal(auth_role_parse("admin"), AUTH_ROLE_ADMIN);
	assert_int_equal(auth_role_parse("root"), AUTH_ROLE_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_query_strings),
		cmocka_unit_test(test_numbers_kinds_cursors),
		cmocka_unit_test(test_path_segments),
		cmocka_unit_test(test_csv_cells),
		cmocka_unit_test(test_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
