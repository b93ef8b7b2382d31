// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the request-head scanner (api_head_feed) that the
 * HTTPS server runs on every byte of a head before evhttp parses it. The
 * first byte picks how the rest is cut into pieces; the head is fed whole
 * and in those pieces, and both must give the same answer. A head the
 * scanner lets through (END) is checked against the rules it enforces:
 * every LF has its CR, no control byte but HTAB before a line end, no
 * header line starting with a blank, no Transfer-Encoding.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/api_util.h"

#define LIMIT 400

/* Feed p in pieces of 1 to 1 + (seed % 13) bytes, varied by seed. */
static api_head_status_t feed_pieces(api_head_t *h, const char *p, size_t n, unsigned seed,
				     size_t *used)
{
	api_head_status_t st = API_HEAD_MORE;
	size_t at = 0;
	unsigned step = seed % 13 + 1, k = seed;
	while (at < n && st == API_HEAD_MORE) {
		k = k * 1103515245u + 12345u;
		size_t len = (size_t)((k >> 16) % step) + 1;
		if (len > n - at)
			len = n - at;
		size_t u = 0;
		st = api_head_feed(h, p + at, len, LIMIT, &u);
		if (u > len || (st == API_HEAD_MORE && u != len))
			abort();
		at += u;
	}
	*used = at;
	return st;
}

/* A head the scanner accepted: check what it promises. */
static void check_accepted(const char *p, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)p[i];
		if (b == '\n') {
			if (i == 0 || p[i - 1] != '\r')
				abort();
			size_t len = i - 1 - start;
			if (start > 0 && len > 0 && (p[start] == ' ' || p[start] == '\t'))
				abort();
			if (start > 0 && len >= 18 &&
			    strncasecmp(p + start, "transfer-encoding:", 18) == 0)
				abort();
			start = i + 1;
		} else if (b == '\r') {
			if (i + 1 >= n || p[i + 1] != '\n')
				abort();
		} else if ((b < 0x20 && b != '\t') || b == 0x7f) {
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned seed = data[0];
	const char *p = (const char *)data + 1;
	size_t n = size - 1;

	api_head_t whole = {0}, parts = {0};
	size_t used = 0, pused = 0;
	api_head_status_t st = api_head_feed(&whole, p, n, LIMIT, &used);
	api_head_status_t pst = feed_pieces(&parts, p, n, seed, &pused);
	if (used > n || pst != st || pused != used || parts.bytes != whole.bytes ||
	    parts.content_length != whole.content_length)
		abort();
	if (st == API_HEAD_OVER && whole.bytes != LIMIT + 1)
		abort();
	if (st == API_HEAD_BAD && (!whole.bad || !parts.bad || strcmp(whole.bad, parts.bad) != 0))
		abort();
	if (st != API_HEAD_BAD && whole.bad)
		abort();
	if (st == API_HEAD_END)
		check_accepted(p, used);
	return 0;
}
