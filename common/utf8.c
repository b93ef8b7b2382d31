// SPDX-License-Identifier: Apache-2.0
/* UTF-8 validation and repair (see utf8.h). */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid sequence starting at s[0] (at most n bytes), or 0. */
static inline size_t seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return c ? 1 : 0;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* True if each of the 8 bytes at p is 0x01..0x7f: ASCII, no NUL. */
static inline bool ascii8(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	/* a byte >= 0x80 sets its high bit in v; a 0x00 byte sets it in v - ONES
	 * (a borrow reaches further bytes only from a 0x00 below them) */
	return ((v | (v - ONES)) & HIGHS) == 0;
}

bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		/* the common case, plain ASCII, 8 bytes at a time */
		while (n - i >= 8 && ascii8(p + i))
			i += 8;
		if (i == n)
			break;
		size_t l = seq_len(p + i, n - i);
		if (!l)
			return false;
		i += l;
	}
	return true;
}

size_t utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t replaced = 0;
	size_t n = 0;
	while (p[n])
		n++;
	size_t i = 0;
	while (i < n) {
		size_t l = seq_len(p + i, n - i);
		if (!l || (l == 1 && ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f))) {
			p[i++] = '?';
			replaced++;
			continue;
		}
		i += l;
	}
	return replaced;
}

size_t utf8_escape_controls(char *out, size_t outlen, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	if (!outlen)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		char esc[8];
		size_t k = 0;
		if (c < 0x20 || c == 0x7f) {
			esc[k++] = '\\';
			esc[k++] = 'x';
			esc[k++] = hex[c >> 4];
			esc[k++] = hex[c & 15];
		} else if (c == 0xc2 && i + 1 < len && (unsigned char)in[i + 1] >= 0x80 &&
			   (unsigned char)in[i + 1] <= 0x9f) {
			/* a C1 control in UTF-8 (U+0080..U+009F; U+009B is CSI) */
			unsigned char d = (unsigned char)in[++i];
			memcpy(esc, "\\u00", 4);
			k = 4;
			esc[k++] = hex[d >> 4];
			esc[k++] = hex[d & 15];
		} else {
			esc[k++] = (char)c;
		}
		if (n + k >= outlen)
			break;
		memcpy(out + n, esc, k);
		n += k;
	}
	out[n] = '\0';
	return n;
}
