// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for collector/api_util.c and collector/auth.c: the query API's
 * parsers of untrusted bytes (query strings, times, cursors, path segments,
 * request heads), CSV cells, and the credential helpers (tokens, the
 * session cookie, the same-origin check). Table-driven.
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

#include "http/api_util.h"
#include "http/auth.h"

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
	assert_int_equal(api_cursor_parse("1714564800000000.3.-17.0", &c), 0);
	assert_int_equal(c.seq, -17); /* an event the collector made (a finding) */
	static const char *const badc[] = {"",	     "1.2.3",	 "1.2.3.4.5", "a.b.c.d", "1.-2.3.4",
					   "1..3.4", "1.2.3.-4", "1.2.3.4.",  NULL};
	for (int i = 0; badc[i]; i++)
		if (api_cursor_parse(badc[i], &c) == 0)
			fail_msg("cursor '%s' accepted", badc[i]);
	api_fcursor_t fc;
	assert_int_equal(api_fcursor_parse("1714564800000000.42", &fc), 0);
	assert_int_equal(fc.ts_us, INT64_C(1714564800000000));
	assert_int_equal(fc.id, 42);
	assert_int_equal(api_fcursor_parse("-5.1", &fc), 0);
	static const char *const badf[] = {"",	 "1",	"1.0",	"1.2.3", "1..2", ".1",
					   "1.", "a.1", "1.-2", "1.2 ",	 " 1.2", NULL};
	for (int i = 0; badf[i]; i++)
		if (api_fcursor_parse(badf[i], &fc) == 0)
			fail_msg("finding cursor '%s' accepted", badf[i]);
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
		{"plain", "\"plain\""},
		{"a \"q\" b", "\"a \"\"q\"\" b\""},
		{"=1+2", "\"'=1+2\""},
		{"+1", "\"'+1\""},
		{"-1", "\"'-1\""},
		{"@SUM(A1)", "\"'@SUM(A1)\""},
		{"\tx", "\"'\\x09x\""},
		{"\rx", "\"'\\x0dx\""},
		{"a=b", "\"a=b\""},
		{"", "\"\""},
		/* control bytes and C1 controls from an agent never reach the file */
		{"\x1b[31mred\x07", "\"\\x1b[31mred\\x07\""},
		{"two\nlines\r\n", "\"two\\x0alines\\x0d\\x0a\""},
		{"csi \xc2\x9b"
		 "2J caf\xc3\xa9",
		 "\"csi \\u009b2J caf\xc3\xa9\""},
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

struct head_case {
	const char *in;
	size_t n; /* bytes of in, when it holds a NUL; else 0 */
	size_t limit;
	api_head_status_t want;
	size_t used;
	const char *bad; /* the reason, for API_HEAD_BAD */
};

/* clang-format off */
#define H(in, limit, want, used) {in, 0, limit, want, used, NULL}
#define BAD(in, used, why) {in, 0, 1000, API_HEAD_BAD, used, why}
#define BADN(in, used, why) {in, sizeof(in) - 1, 1000, API_HEAD_BAD, used, why}
/* clang-format on */

static const struct head_case head_cases[] = {
	H("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 100, API_HEAD_END, 27),
	H("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody", 100, API_HEAD_END, 27),
	H("GET / HTTP/1.1\r\nHost: x\r\n", 100, API_HEAD_MORE, 25),
	H("GET / HTTP/1.1\r\nHost: x\r\n\r", 100, API_HEAD_MORE, 26),
	H("GET /\r\nX: \r\n\r\n", 100, API_HEAD_END, 14),
	H("GET / HTTP/1.0\r\n\r\n", 100, API_HEAD_END, 18),
	/* accepted: blanks and tabs in values, obs-text, tokens, the same
	 * Content-Length twice */
	H("GET / HTTP/1.1\r\nX-A:\tb c\t \r\nY:\r\n\r\n", 100, API_HEAD_END, 34),
	H("GET /\xc3\xa9 HTTP/1.1\r\nX: caf\xc3\xa9 \xff\x80\r\n\r\n", 100, API_HEAD_END, 33),
	H("GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", 100, API_HEAD_END, 44),
	H("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length:5 \r\n\r\n", 100, API_HEAD_END,
	  57),
	H("GET / HTTP/1.1\r\nA-Very-Long-Header-Name-Indeed: 1\r\n\r\n", 100, API_HEAD_END, 53),
	/* the limit counts every byte, line ends included */
	H("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, API_HEAD_END, 27),
	H("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 26, API_HEAD_OVER, 26),
	H("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 25, API_HEAD_OVER, 25),
	H("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 16, API_HEAD_OVER, 16),
	H("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 10, API_HEAD_OVER, 10),
	H("123456789\r\n", 10, API_HEAD_OVER, 10),
	H("", 10, API_HEAD_MORE, 0),
	H("abc", 0, API_HEAD_OVER, 0),
	/* control bytes */
	BADN("GET / HTTP/1.1\r\nAuthorization: Bearer vgl_ab\0junk\r\n\r\n", 45,
	     "control byte in a header value"),
	BAD("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", 21, "control byte in a header value"),
	BAD("GET / HTTP/1.1\r\nX: a\x1b[2J\r\n\r\n", 21, "control byte in a header value"),
	BAD("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 21, "control byte in a header value"),
	BAD("GET / HTTP/1.1\r\nX: a\vb\r\n\r\n", 21, "control byte in a header value"),
	BADN("GET /\0 HTTP/1.1\r\n\r\n", 6, "control byte in the request line"),
	BAD("GET\t/ HTTP/1.1\r\n\r\n", 4, "control byte in the request line"),
	/* line ends */
	BAD("GET / HTTP/1.1\nHost: x\n\n", 15, "bare LF line end"),
	BAD("GET / HTTP/1.1\r\nHost: x\n\r\n", 24, "bare LF line end"),
	BAD("GET / HTTP/1.1\r\nHost: x\r\n\n", 26, "bare LF line end"),
	BAD("\nGET", 1, "bare LF line end"),
	BAD("GET /\r\nX: a\r\r\n\r\n", 13, "CR not followed by LF"),
	BAD("GET / HTTP/1.1\r\nX: a\rY: b\r\n\r\n", 22, "CR not followed by LF"),
	BAD("GET /\rX HTTP/1.1\r\n\r\n", 7, "CR not followed by LF"),
	BAD("\r\nGET / HTTP/1.1\r\n\r\n", 2, "blank line before the request line"),
	/* header names */
	BAD("GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", 34,
	    "whitespace between header name and colon"),
	BAD("POST / HTTP/1.1\r\nContent-Length\t: 5\r\n\r\n", 32,
	    "whitespace between header name and colon"),
	BAD("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 26,
	    "header line starting with whitespace (obs-fold)"),
	BAD("GET / HTTP/1.1\r\n\tX: y\r\n\r\n", 17,
	    "header line starting with whitespace (obs-fold)"),
	BAD("GET / HTTP/1.1\r\n: x\r\n\r\n", 17, "empty header name"),
	BAD("GET / HTTP/1.1\r\nX(y): z\r\n\r\n", 18, "header name not a token"),
	BAD("GET / HTTP/1.1\r\nX\xc3\xa9: z\r\n\r\n", 18, "header name not a token"),
	BAD("GET / HTTP/1.1\r\nHost x\r\n\r\n", 21, "whitespace between header name and colon"),
	BAD("GET / HTTP/1.1\r\nHostx\r\n\r\n", 23, "header line without a colon"),
	/* framing */
	BAD("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 35,
	    "Transfer-Encoding not accepted"),
	BAD("POST / HTTP/1.1\r\ntransfer-encoding: identity\r\n\r\n", 35,
	    "Transfer-Encoding not accepted"),
	BAD("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 54,
	    "Content-Length with Transfer-Encoding"),
	BAD("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 900\r\n\r\n", 57,
	    "two different Content-Length values"),
	BAD("POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\nGET / "
	    "HTTP/1.1\r\n\r\n",
	    56, "two different Content-Length values"),
	BAD("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 35, "malformed Content-Length"),
	BAD("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 36, "malformed Content-Length"),
	BAD("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 34, "malformed Content-Length"),
	BAD("POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n", 35, "malformed Content-Length"),
	BAD("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 34, "malformed Content-Length"),
	BAD("POST / HTTP/1.1\r\nContent-Length:  \r\n\r\n", 36, "malformed Content-Length"),
};

/* Feed all at once, then one byte at a time: the same answer. */
static void test_request_heads(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(head_cases) / sizeof(head_cases[0]); i++) {
		const struct head_case *c = &head_cases[i];
		size_t n = c->n ? c->n : strlen(c->in), used = 99999;
		api_head_t h = {0};
		api_head_status_t st = api_head_feed(&h, c->in, n, c->limit, &used);
		if (st != c->want || used != c->used)
			fail_msg("head %zu: status %d used %zu, want %d %zu", i, st, used, c->want,
				 c->used);
		if (st == API_HEAD_BAD && strcmp(h.bad, c->bad) != 0)
			fail_msg("head %zu: '%s', want '%s'", i, h.bad, c->bad);
		memset(&h, 0, sizeof(h));
		size_t at = 0;
		st = API_HEAD_MORE;
		for (; at < n && st == API_HEAD_MORE; at++) {
			st = api_head_feed(&h, c->in + at, 1, c->limit, &used);
			if (st == API_HEAD_MORE)
				assert_int_equal(used, 1);
		}
		size_t total = st == API_HEAD_MORE ? at : at - 1 + used;
		if (st != c->want || total != c->used)
			fail_msg("head %zu bytewise: status %d used %zu, want %d %zu", i, st, total,
				 c->want, c->used);
		if (st == API_HEAD_OVER)
			assert_int_equal(h.bytes, c->limit + 1);
		if (st == API_HEAD_BAD && strcmp(h.bad, c->bad) != 0)
			fail_msg("head %zu bytewise: '%s', want '%s'", i, h.bad, c->bad);
	}
}

struct length_case {
	const char *in;
	uint64_t want;
};

static const struct length_case length_cases[] = {
	{"POST / HTTP/1.1\r\nContent-Length: 42\r\n\r\n", 42},
	{"POST / HTTP/1.1\r\ncontent-length:7\r\n\r\n", 7},
	{"POST / HTTP/1.1\r\nCONTENT-LENGTH: \t 99 \r\n\r\n", 99},
	{"POST / HTTP/1.1\r\nContent-Length: 900\r\nContent-Length: 900\r\n\r\n", 900},
	{"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", UINT64_MAX},
	{"POST / HTTP/1.1\r\nX-Content-Length: 5\r\n\r\n", 0},
	{"POST / HTTP/1.1\r\nContent-Lengths: 5\r\n\r\n", 0},
	{"POST / HTTP/1.1\r\nContent-Length-: 5\r\n\r\n", 0},
	{"content-length: 5\r\n\r\n", 0},
	{"POST / HTTP/1.1\r\nHost: x\r\n\r\n", 0},
};

/* The declared body length, whole and byte by byte. */
static void test_request_head_lengths(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(length_cases) / sizeof(length_cases[0]); i++) {
		const char *in = length_cases[i].in;
		size_t n = strlen(in), used;
		api_head_t h = {0}, hb = {0};
		assert_int_equal(api_head_feed(&h, in, n, 1000, &used), API_HEAD_END);
		for (size_t at = 0; at < n; at++)
			(void)api_head_feed(&hb, in + at, 1, 1000, &used);
		if (h.content_length != length_cases[i].want ||
		    hb.content_length != length_cases[i].want)
			fail_msg("length %zu: %llu / %llu, want %llu", i,
				 (unsigned long long)h.content_length,
				 (unsigned long long)hb.content_length,
				 (unsigned long long)length_cases[i].want);
	}
}

struct cookie_case {
	const char *header;
	int rc;
	int count;
};

#define TOK "vgl_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SID "vgs_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CK "__Host-vigil_session="
static const struct cookie_case cookie_cases[] = {
	{CK SID, 0, 1},
	{"a=b; " CK SID "; c=d", 0, 1},
	{"a=b;" CK SID, 0, 1},
	{CK " " SID " ", 0, 1},
	{"a=b; c=d", 0, 0},
	{"", 0, 0},
	{"__Host-vigil_session_x=" SID, 0, 0},
	{"x__Host-vigil_session=" SID, 0, 0},
	{"__host-Vigil_Session=" SID, 0, 0},
	{"vigil_session=" SID, 0, 0},
	{CK SID "; " CK SID, 0, 2},
	{CK, -1, 1},
	{CK "vgs_XYZ", -1, 1},
	{CK "\"" SID "\"", -1, 1},
	{CK SID "0", -1, 1},
	{CK TOK, -1, 1}, /* a token is no session id */
	{CK SID "; " CK "junk", -1, 2},
};

static void test_session_cookie_and_origin(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cookie_cases) / sizeof(cookie_cases[0]); i++) {
		char out[AUTH_SESSION_LEN + 1] = "";
		int count = 0;
		int rc = auth_session_cookie(cookie_cases[i].header, out, &count);
		if (rc != cookie_cases[i].rc || count != cookie_cases[i].count)
			fail_msg("cookie '%s': rc %d count %d, want %d %d", cookie_cases[i].header,
				 rc, count, cookie_cases[i].rc, cookie_cases[i].count);
		if (rc == 0 && count == 1)
			assert_string_equal(out, SID);
	}
	char s1[AUTH_SESSION_LEN + 1], s2[AUTH_SESSION_LEN + 1];
	assert_int_equal(auth_session_generate(s1), 0);
	assert_int_equal(auth_session_generate(s2), 0);
	assert_true(auth_session_well_formed(s1));
	assert_false(auth_token_well_formed(s1));
	assert_string_not_equal(s1, s2);
	assert_false(auth_session_well_formed(TOK));
	char out[AUTH_TOKEN_LEN + 1];
	assert_int_equal(auth_token_value(TOK, out), 0);
	assert_string_equal(out, TOK);
	assert_int_equal(auth_token_value("\t " TOK " ", out), 0);
	assert_int_equal(auth_token_value("", out), -1);
	assert_int_equal(auth_token_value(NULL, out), -1);
	assert_int_equal(auth_token_value(TOK "\n", out), -1);
	assert_int_equal(
		auth_token_value(
			"VGL_0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
			out),
		-1);

	assert_true(auth_same_origin("https://localhost:8443", "localhost:8443"));
	assert_true(auth_same_origin("HTTPS://Collector.example", "collector.EXAMPLE"));
	assert_true(auth_same_origin("https://collector.example", "collector.example:443"));
	assert_true(auth_same_origin("https://collector.example:443", "collector.example"));
	assert_true(auth_same_origin("https://[::1]:8443", "[::1]:8443"));
	assert_false(auth_same_origin("http://localhost:8443", "localhost:8443"));
	assert_false(auth_same_origin("https://localhost:8444", "localhost:8443"));
	assert_false(auth_same_origin("https://evil.example", "localhost:8443"));
	assert_false(auth_same_origin("https://localhost:8443.evil.example", "localhost:8443"));
	assert_false(auth_same_origin("https://localhost", "localhost:8443"));
	assert_false(auth_same_origin("null", "localhost:8443"));
	assert_false(auth_same_origin("https://", ""));
	assert_false(auth_same_origin("https://a@localhost:8443", "a@localhost:8443"));
	assert_false(auth_same_origin("https://localhost:8443/", "localhost:8443/"));
	assert_false(auth_same_origin("https://localhost:8443", NULL));
	assert_false(auth_same_origin(NULL, "localhost:8443"));
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
		cmocka_unit_test(test_request_heads),
		cmocka_unit_test(test_request_head_lengths),
		cmocka_unit_test(test_session_cookie_and_origin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
