// SPDX-License-Identifier: Apache-2.0
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
