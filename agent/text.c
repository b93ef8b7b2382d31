/* Capped, repaired strings (see text.h). */
#include "text.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"

static size_t text_default_max = 4096;

void text_set_max(size_t max)
{
	if (max >= sizeof(TEXT_TRUNC_MARKER) + 4)
		text_default_max = max;
}

size_t text_max(void)
{
	return text_default_max;
}

/* Largest cut <= n that does not split a UTF-8 sequence of s. */
static size_t utf8_cut(const char *s, size_t n)
{
	size_t k = n;
	/* step back over continuation bytes, at most 3 */
	for (int i = 0; i < 3 && k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80; i++)
		k--;
	return k;
}

char *text_dup_n(const char *s, size_t n, size_t max, bool *truncated)
{
	if (!s)
		n = 0;
	if (max == 0)
		max = text_default_max;
	size_t keep = n;
	bool cut = false;
	if (n > max) {
		size_t room =
			max > sizeof(TEXT_TRUNC_MARKER) ? max - (sizeof(TEXT_TRUNC_MARKER) - 1) : 0;
		keep = utf8_cut(s, room);
		cut = true;
	}
	size_t out_len = keep + (cut ? sizeof(TEXT_TRUNC_MARKER) - 1 : 0);
	char *out = malloc(out_len + 1);
	if (!out)
		return NULL;
	if (keep)
		memcpy(out, s, keep);
	/* NUL bytes would end the string early: make them visible */
	for (size_t i = 0; i < keep; i++)
		if (out[i] == '\0')
			out[i] = '?';
	out[keep] = '\0';
	utf8_sanitize(out);
	if (cut) {
		memcpy(out + keep, TEXT_TRUNC_MARKER, sizeof(TEXT_TRUNC_MARKER));
		if (truncated)
			*truncated = true;
	}
	return out;
}

char *text_dup(const char *s, bool *truncated)
{
	return text_dup_n(s, s ? strlen(s) : 0, 0, truncated);
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int text_parse_rfc3339(const char *s, int64_t *out_ns)
{
	int y, mo, d, h, mi, se;
	if (!s || strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &se))
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	const char *p = s + 19;
	int64_t frac = 0;
	if (*p == '.') {
		p++;
		int nd = 0;
		while (*p >= '0' && *p <= '9') {
			if (nd < 9) {
				frac = frac * 10 + (*p - '0');
				nd++;
			}
			p++;
		}
		for (; nd < 9; nd++)
			frac *= 10;
	}
	int64_t off = 0;
	if (*p == '+' || *p == '-') {
		int oh, om;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om))
			return -1;
		off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	} else if (*p == 'Z' || *p == 'z') {
		p++;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
	if (secs < 0 || secs > INT64_MAX / 1000000000 - 1)
		return -1;
	*out_ns = secs * 1000000000 + frac;
	return 0;
}
