// SPDX-License-Identifier: Apache-2.0
/*
 * Version comparison by ecosystem (see version.h), written from each
 * ecosystem's published rules:
 *   dpkg  Debian policy 5.6.12: epoch numerically; then upstream version and
 *         revision alternately by non-digit runs (letters before the rest,
 *         '~' before everything, even the end) and digit runs (numerically);
 *         an absent revision is "0".
 *   apk   Alpine: numeric components (the first numerically, the later ones
 *         as decimal fractions when one has a leading zero, as Gentoo's
 *         version rules do), more components newer; an optional letter;
 *         suffixes _alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git
 *         < _hg < _p, each with an optional number; then -rN.
 *   rpm   rpmvercmp: alphanumeric segments (digits numerically and newer
 *         than letters), separators only separate, '~' before everything,
 *         '^' after the end but before anything else; epoch:version-release.
 * Numbers are compared as digit strings, so no length overflows.
 */
#include "vuln/version.h"

#include <stdbool.h>
#include <string.h>

typedef struct {
	const char *p;
	size_t n;
} span_t;

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
	return is_digit(c) || is_alpha(c);
}

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

/* Compare two runs of digits (either may be empty, meaning 0) by value. */
static int digits_cmp(span_t a, span_t b)
{
	while (a.n > 0 && a.p[0] == '0') {
		a.p++;
		a.n--;
	}
	while (b.n > 0 && b.p[0] == '0') {
		b.p++;
		b.n--;
	}
	if (a.n != b.n)
		return a.n < b.n ? -1 : 1;
	return a.n ? sign(memcmp(a.p, b.p, a.n)) : 0;
}

/* Compare two byte strings as strcmp would. */
static int bytes_cmp(span_t a, span_t b)
{
	size_t n = a.n < b.n ? a.n : b.n;
	int c = n ? memcmp(a.p, b.p, n) : 0;
	if (c)
		return sign(c);
	return a.n == b.n ? 0 : (a.n < b.n ? -1 : 1);
}

/* The length of v if it is 1..VERSION_MAX_LEN bytes, else set *why. */
static size_t checked_len(const char *v, const char **why)
{
	size_t n = v ? strnlen(v, VERSION_MAX_LEN + 1) : 0;
	if (n == 0)
		*why = "empty";
	else if (n > VERSION_MAX_LEN)
		*why = "longer than 256 bytes";
	return n;
}

/* An epoch: digits, at most INT32_MAX as dpkg and rpm keep it. */
static const char *check_epoch(span_t e)
{
	if (e.n == 0)
		return "epoch is empty";
	for (size_t i = 0; i < e.n; i++)
		if (!is_digit(e.p[i]))
			return "epoch is not a number";
	if (digits_cmp(e, (span_t){"2147483647", 10}) > 0)
		return "epoch is too big";
	return NULL;
}

/* ---- dpkg ---------------------------------------------------------------- */

typedef struct {
	span_t epoch, upstream, revision;
} dpkg_ver_t;

/* Split [epoch:]main[-rest] (dpkg and rpm share the form: the epoch ends
 * at the first colon, the rest starts after the last hyphen). *hyphen
 * tells whether there was one (a rest may then not be empty). Return NULL,
 * or why v is refused (length, epoch). */
static const char *split_evr(const char *v, span_t *epoch, span_t *main_part, span_t *rest,
			     bool *hyphen)
{
	const char *why = NULL;
	size_t n = checked_len(v, &why);
	if (why)
		return why;
	const char *end = v + n, *start = v;
	const char *colon = memchr(v, ':', n);
	*epoch = (span_t){v, 0};
	if (colon) {
		epoch->n = (size_t)(colon - v);
		if ((why = check_epoch(*epoch)))
			return why;
		start = colon + 1;
	}
	const char *last = NULL;
	for (const char *p = start; p < end; p++)
		if (*p == '-')
			last = p;
	*main_part = (span_t){start, (size_t)((last ? last : end) - start)};
	*rest = last ? (span_t){last + 1, (size_t)(end - last - 1)} : (span_t){end, 0};
	*hyphen = last != NULL;
	return NULL;
}

static const char *dpkg_parse(const char *v, dpkg_ver_t *out)
{
	bool hyphen;
	const char *why = split_evr(v, &out->epoch, &out->upstream, &out->revision, &hyphen);
	if (why)
		return why;
	const char *up = out->upstream.p;
	if (out->upstream.n == 0)
		return "upstream version is empty";
	if (hyphen && out->revision.n == 0)
		return "revision is empty";
	if (!is_digit(up[0]))
		return "upstream version does not start with a digit";
	for (size_t i = 0; i < out->upstream.n; i++)
		if (!is_alnum(up[i]) && !strchr(".+~-:", up[i]))
			return "invalid character in upstream version";
	for (size_t i = 0; i < out->revision.n; i++)
		if (!is_alnum(out->revision.p[i]) && !strchr(".+~", out->revision.p[i]))
			return "invalid character in revision";
	return NULL;
}

/* The weight of a character of a non-digit run: '~' first, then the end
 * of the run, then letters, then everything else. */
static int dpkg_weight(const span_t *s, size_t i)
{
	if (i >= s->n || is_digit(s->p[i]))
		return 0;
	char c = s->p[i];
	if (c == '~')
		return -1;
	return is_alpha(c) ? (unsigned char)c : (unsigned char)c + 256;
}

/* Compare an upstream version or a revision: non-digit runs lexically by
 * weight, digit runs numerically, alternately. */
static int dpkg_part_cmp(span_t a, span_t b)
{
	size_t i = 0, j = 0;
	while (i < a.n || j < b.n) {
		while ((i < a.n && !is_digit(a.p[i])) || (j < b.n && !is_digit(b.p[j]))) {
			int wa = dpkg_weight(&a, i), wb = dpkg_weight(&b, j);
			if (wa != wb)
				return wa < wb ? -1 : 1;
			/* equal weights inside the loop are two non-digits */
			i++;
			j++;
		}
		size_t si = i, sj = j;
		while (i < a.n && is_digit(a.p[i]))
			i++;
		while (j < b.n && is_digit(b.p[j]))
			j++;
		int c = digits_cmp((span_t){a.p + si, i - si}, (span_t){b.p + sj, j - sj});
		if (c)
			return c;
	}
	return 0;
}

static int dpkg_cmp(const dpkg_ver_t *a, const dpkg_ver_t *b)
{
	int c = digits_cmp(a->epoch, b->epoch);
	if (!c)
		c = dpkg_part_cmp(a->upstream, b->upstream);
	if (!c)
		c = dpkg_part_cmp(a->revision, b->revision);
	return c;
}

/* ---- apk ----------------------------------------------------------------- */

/* Suffixes in order; RELEASE stands for "no suffix". */
static const char *const apk_suffixes[] = {"alpha", "beta", "pre", "rc", "",
					   "cvs",   "svn",  "git", "hg", "p"};
#define APK_RELEASE 4
#define APK_MAX_SUFFIX (sizeof(apk_suffixes) / sizeof(apk_suffixes[0]))

typedef struct {
	span_t nums;	 /* "1.2.3" */
	char letter;	 /* 0 if none */
	span_t suffixes; /* "_rc1_p2" */
	span_t rev;	 /* the digits of -rN; empty if none */
} apk_ver_t;

/* Read one suffix at s (after its '_'): its rank and number. Return the
 * bytes read, 0 if it is no suffix. */
static size_t apk_suffix(const char *s, const char *end, int *rank, span_t *num)
{
	size_t alpha = 0;
	while (s + alpha < end && s[alpha] >= 'a' && s[alpha] <= 'z')
		alpha++;
	*rank = -1;
	for (size_t k = 0; k < APK_MAX_SUFFIX; k++)
		if (k != APK_RELEASE && strlen(apk_suffixes[k]) == alpha &&
		    memcmp(s, apk_suffixes[k], alpha) == 0)
			*rank = (int)k;
	if (*rank < 0)
		return 0;
	size_t d = alpha;
	while (s + d < end && is_digit(s[d]))
		d++;
	*num = (span_t){s + alpha, d - alpha};
	return d;
}

static const char *apk_parse(const char *v, apk_ver_t *out)
{
	const char *why = NULL;
	size_t n = checked_len(v, &why);
	if (why)
		return why;
	const char *p = v, *end = v + n;
	if (!is_digit(*p))
		return "does not start with a digit";
	for (;;) {
		while (p < end && is_digit(*p))
			p++;
		if (p + 1 < end && *p == '.' && is_digit(p[1]))
			p++;
		else
			break;
	}
	out->nums = (span_t){v, (size_t)(p - v)};
	out->letter = 0;
	if (p < end && *p >= 'a' && *p <= 'z')
		out->letter = *p++;
	const char *suf = p;
	while (p < end && *p == '_') {
		int rank;
		span_t num;
		size_t used = apk_suffix(p + 1, end, &rank, &num);
		if (used == 0)
			return "unknown suffix (not _alpha _beta _pre _rc _cvs _svn _git _hg _p)";
		p += 1 + used;
	}
	out->suffixes = (span_t){suf, (size_t)(p - suf)};
	out->rev = (span_t){end, 0};
	if (p < end && *p == '-') {
		if (end - p < 3 || p[1] != 'r')
			return "revision is not -rN";
		for (const char *d = p + 2; d < end; d++)
			if (!is_digit(*d))
				return "revision is not -rN";
		out->rev = (span_t){p + 2, (size_t)(end - p - 2)};
		p = end;
	}
	return p == end ? NULL : "invalid character";
}

/* The next '.'-separated component of nums at *i, or an empty span. */
static span_t apk_next_num(span_t nums, size_t *i)
{
	if (*i >= nums.n)
		return (span_t){nums.p + nums.n, 0};
	size_t s = *i;
	while (*i < nums.n && nums.p[*i] != '.')
		(*i)++;
	span_t r = {nums.p + s, *i - s};
	if (*i < nums.n)
		(*i)++;
	return r;
}

/* A later component: as a decimal fraction when either has a leading
 * zero (trailing zeros do not count), else numerically. */
static int apk_component_cmp(span_t a, span_t b, bool first)
{
	if (first || (a.p[0] != '0' && b.p[0] != '0'))
		return digits_cmp(a, b);
	while (a.n > 0 && a.p[a.n - 1] == '0')
		a.n--;
	while (b.n > 0 && b.p[b.n - 1] == '0')
		b.n--;
	return bytes_cmp(a, b);
}

static int apk_nums_cmp(span_t a, span_t b)
{
	size_t i = 0, j = 0;
	for (bool first = true; i < a.n || j < b.n; first = false) {
		if (i >= a.n)
			return -1;
		if (j >= b.n)
			return 1;
		int c = apk_component_cmp(apk_next_num(a, &i), apk_next_num(b, &j), first);
		if (c)
			return c;
	}
	return 0;
}

static int apk_suffixes_cmp(span_t a, span_t b)
{
	size_t i = 0, j = 0;
	while (i < a.n || j < b.n) {
		int ra = APK_RELEASE, rb = APK_RELEASE;
		span_t na = {"", 0}, nb = {"", 0};
		if (i < a.n)
			i += 1 + apk_suffix(a.p + i + 1, a.p + a.n, &ra, &na);
		if (j < b.n)
			j += 1 + apk_suffix(b.p + j + 1, b.p + b.n, &rb, &nb);
		if (ra != rb)
			return ra < rb ? -1 : 1;
		int c = digits_cmp(na, nb);
		if (c)
			return c;
	}
	return 0;
}

static int apk_cmp(const apk_ver_t *a, const apk_ver_t *b)
{
	int c = apk_nums_cmp(a->nums, b->nums);
	if (!c && a->letter != b->letter)
		c = (unsigned char)a->letter < (unsigned char)b->letter ? -1 : 1;
	if (!c)
		c = apk_suffixes_cmp(a->suffixes, b->suffixes);
	if (!c)
		c = digits_cmp(a->rev, b->rev);
	return c;
}

/* ---- rpm ----------------------------------------------------------------- */

typedef struct {
	span_t epoch, version, release;
} rpm_ver_t;

static bool rpm_char_ok(char c)
{
	return is_alnum(c) || strchr("._+~^", c);
}

static const char *rpm_parse(const char *v, rpm_ver_t *out)
{
	bool hyphen;
	const char *why = split_evr(v, &out->epoch, &out->version, &out->release, &hyphen);
	if (why)
		return why;
	if (out->version.n == 0)
		return "version is empty";
	if (hyphen && out->release.n == 0)
		return "release is empty";
	for (size_t i = 0; i < out->version.n; i++)
		if (!rpm_char_ok(out->version.p[i]))
			return "invalid character in version";
	for (size_t i = 0; i < out->release.n; i++)
		if (!rpm_char_ok(out->release.p[i]))
			return "invalid character in release";
	return NULL;
}

static bool rpm_sep(char c)
{
	return !is_alnum(c) && c != '~' && c != '^';
}

/* rpmvercmp on two spans. */
static int rpm_segs_cmp(span_t a, span_t b)
{
	size_t i = 0, j = 0;
	if (bytes_cmp(a, b) == 0)
		return 0;
	for (;;) {
		while (i < a.n && rpm_sep(a.p[i]))
			i++;
		while (j < b.n && rpm_sep(b.p[j]))
			j++;
		bool ae = i >= a.n, be = j >= b.n;
		char ca = ae ? 0 : a.p[i], cb = be ? 0 : b.p[j];
		if (ca == '~' || cb == '~') {
			if (ca != '~')
				return 1;
			if (cb != '~')
				return -1;
			i++;
			j++;
			continue;
		}
		if (ca == '^' || cb == '^') {
			if (ae)
				return -1;
			if (be)
				return 1;
			if (ca != '^')
				return 1;
			if (cb != '^')
				return -1;
			i++;
			j++;
			continue;
		}
		if (ae || be)
			return ae && be ? 0 : (ae ? -1 : 1);
		bool num = is_digit(ca);
		size_t si = i, sj = j;
		while (i < a.n && (num ? is_digit(a.p[i]) : is_alpha(a.p[i])))
			i++;
		while (j < b.n && (num ? is_digit(b.p[j]) : is_alpha(b.p[j])))
			j++;
		if (j == sj) /* a digit run against letters: digits are newer */
			return num ? 1 : -1;
		span_t sa = {a.p + si, i - si}, sb = {b.p + sj, j - sj};
		int c = num ? digits_cmp(sa, sb) : bytes_cmp(sa, sb);
		if (c)
			return c;
	}
}

static int rpm_cmp(const rpm_ver_t *a, const rpm_ver_t *b)
{
	int c = digits_cmp(a->epoch, b->epoch);
	if (!c)
		c = rpm_segs_cmp(a->version, b->version);
	if (!c)
		c = rpm_segs_cmp(a->release, b->release);
	return c;
}

/* ---- the face ------------------------------------------------------------ */

typedef union {
	dpkg_ver_t dpkg;
	apk_ver_t apk;
	rpm_ver_t rpm;
} any_ver_t;

static const char *parse(version_eco_t eco, const char *v, any_ver_t *out)
{
	switch (eco) {
	case VERSION_DPKG:
		return dpkg_parse(v, &out->dpkg);
	case VERSION_APK:
		return apk_parse(v, &out->apk);
	case VERSION_RPM:
		return rpm_parse(v, &out->rpm);
	}
	return "unknown version scheme";
}

const char *version_eco_name(version_eco_t eco)
{
	switch (eco) {
	case VERSION_DPKG:
		return "dpkg";
	case VERSION_APK:
		return "apk";
	case VERSION_RPM:
		return "rpm";
	}
	return "?";
}

const char *version_check(version_eco_t eco, const char *v)
{
	any_ver_t parsed;
	return parse(eco, v, &parsed);
}

version_rc_t version_cmp(version_eco_t eco, const char *a, const char *b, int *result)
{
	any_ver_t va, vb;
	if (parse(eco, a, &va))
		return VERSION_BAD_A;
	if (parse(eco, b, &vb))
		return VERSION_BAD_B;
	int c = 0;
	switch (eco) {
	case VERSION_DPKG:
		c = dpkg_cmp(&va.dpkg, &vb.dpkg);
		break;
	case VERSION_APK:
		c = apk_cmp(&va.apk, &vb.apk);
		break;
	case VERSION_RPM:
		c = rpm_cmp(&va.rpm, &vb.rpm);
		break;
	}
	*result = c;
	return VERSION_OK;
}
