// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the query API's parsers of untrusted bytes. The input
 * is one query string; every value also goes through the time, integer,
 * boolean, kind, severity, cursor and path-segment parsers and the CSV
 * cell encoder, the key through the bearer-token, form-token, session
 * cookie and same-origin checks. The whole input is also a request head,
 * fed at once and in pieces (both must agree).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/api_util.h"
#include "http/auth.h"

/* The head as one piece and as pieces of 1 to 7 bytes: the same answer. */
static void heads(const char *p, size_t n)
{
	api_head_t whole = {0}, parts = {0};
	size_t used = 0, at = 0, limit = 200;
	api_head_status_t st = api_head_feed(&whole, p, n, limit, &used);
	if (used > n)
		abort();
	api_head_status_t pst = API_HEAD_MORE;
	size_t step = 1;
	while (at < n && pst == API_HEAD_MORE) {
		size_t k = n - at < step ? n - at : step;
		size_t u = 0;
		pst = api_head_feed(&parts, p + at, k, limit, &u);
		if (u > k)
			abort();
		at += u;
		step = step % 7 + 1;
	}
	if (pst != st || at != used || parts.bytes != whole.bytes ||
	    parts.content_length != whole.content_length)
		abort();
	if (st == API_HEAD_OVER && whole.bytes != limit + 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	heads((const char *)data, size);
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	qparams_t q;
	char bad[80];
	if (qparams_parse(s, &q, bad, sizeof(bad)) == 0) {
		for (int i = 0; i < q.n; i++) {
			const char *v = q.val[i];
			int64_t t, n;
			bool b;
			api_cursor_t c;
			api_fcursor_t fc;
			char seg[256], tok[AUTH_TOKEN_LEN + 1], when[40];
			if (api_parse_time(v, INT64_C(1700000000000000), &t) == 0)
				api_format_time(t, when, sizeof(when));
			(void)api_parse_int(v, INT64_MIN / 2, INT64_MAX / 2, &n);
			(void)api_parse_bool(v, &b);
			(void)api_kind_parse(v);
			(void)api_severity_parse(v);
			(void)api_cursor_parse(v, &c);
			(void)api_fcursor_parse(v, &fc);
			(void)api_path_segment(v, strlen(v), seg, sizeof(seg));
			(void)auth_bearer(q.key[i], tok);
			(void)auth_token_value(q.key[i], tok);
			int count = 0;
			(void)auth_session_cookie(q.key[i], tok, &count);
			(void)auth_same_origin(q.key[i], v);
			sbuf_t out;
			sbuf_init(&out);
			api_csv_cell(&out, v);
			sbuf_free(&out);
		}
		(void)qparams_unused(&q);
		qparams_free(&q);
	}
	free(s);
	return 0;
}
