/*
 * libFuzzer target: the query API's parsers of untrusted bytes. The input
 * is one query string; every value also goes through the time, integer,
 * boolean, kind, severity, cursor and path-segment parsers and the CSV
 * cell encoder, and the key through the bearer-token parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_util.h"
#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
			char seg[256], tok[AUTH_TOKEN_LEN + 1], when[40];
			if (api_parse_time(v, INT64_C(1700000000000000), &t) == 0)
				api_format_time(t, when, sizeof(when));
			(void)api_parse_int(v, INT64_MIN / 2, INT64_MAX / 2, &n);
			(void)api_parse_bool(v, &b);
			(void)api_kind_parse(v);
			(void)api_severity_parse(v);
			(void)api_cursor_parse(v, &c);
			(void)api_path_segment(v, strlen(v), seg, sizeof(seg));
			(void)auth_bearer(q.key[i], tok);
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
