// SPDX-License-Identifier: Apache-2.0
/* An image's package inventory; os-release, dpkg and apk parsers (see
 * pkgdb.h). Pure: buffers in, no I/O. */
#include "pkgdb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

typedef struct {
	const char *p;
	size_t n;
} span_t;

pkgdb_inv_t *pkgdb_inv_new(void)
{
	pkgdb_inv_t *inv = calloc(1, sizeof(*inv));
	if (!inv)
		return NULL;
	inv->max_pkgs = PKGDB_MAX_PACKAGES;
	atomic_init(&inv->refs, 1);
	return inv;
}

pkgdb_inv_t *pkgdb_inv_ref(pkgdb_inv_t *inv)
{
	if (inv)
		atomic_fetch_add(&inv->refs, 1);
	return inv;
}

void pkgdb_inv_free(pkgdb_inv_t *inv)
{
	if (!inv || atomic_fetch_sub(&inv->refs, 1) != 1)
		return;
	for (size_t i = 0; i < inv->n_pkgs; i++) {
		pkgdb_pkg_t *p = &inv->pkgs[i];
		free(p->name);
		free(p->version);
		free(p->arch);
		free(p->source_name);
		free(p->source_version);
	}
	free(inv->pkgs);
	free(inv->os_id);
	free(inv->os_version);
	free(inv->os_codename);
	free(inv->os_pretty);
	free(inv);
}

__attribute__((format(printf, 3, 0))) static void reason_vset(pkgdb_inv_t *inv, bool append,
							      const char *fmt, va_list ap)
{
	size_t at = append ? strlen(inv->reason) : 0;
	if (append && at > 0 && at + 2 < sizeof(inv->reason)) {
		memcpy(inv->reason + at, "; ", 3);
		at += 2;
	}
	if (at + 1 < sizeof(inv->reason))
		vsnprintf(inv->reason + at, sizeof(inv->reason) - at, fmt, ap);
}

void pkgdb_inv_not_read(pkgdb_inv_t *inv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reason_vset(inv, false, fmt, ap);
	va_end(ap);
	inv->status = PKGDB_ST_NOT_READ;
}

void pkgdb_inv_partial(pkgdb_inv_t *inv, const char *fmt, ...)
{
	if (inv->status == PKGDB_ST_NOT_READ)
		return;
	va_list ap;
	va_start(ap, fmt);
	reason_vset(inv, inv->status == PKGDB_ST_PARTIAL, fmt, ap);
	va_end(ap);
	inv->status = PKGDB_ST_PARTIAL;
}

void pkgdb_inv_finish(pkgdb_inv_t *inv)
{
	if (inv->n_over_cap)
		pkgdb_inv_partial(inv, "%zu packages over the cap of %zu", inv->n_over_cap,
				  inv->max_pkgs);
	if (inv->n_fields_cut)
		pkgdb_inv_partial(inv, "%zu fields cut at %d bytes", inv->n_fields_cut,
				  PKGDB_MAX_FIELD);
	if (inv->n_malformed)
		pkgdb_inv_partial(inv, "%zu malformed records skipped", inv->n_malformed);
}

const char *pkgdb_format_name(pkgdb_format_t f)
{
	switch (f) {
	case PKGDB_FMT_DPKG:
		return "dpkg";
	case PKGDB_FMT_APK:
		return "apk";
	case PKGDB_FMT_RPM:
		return "rpm";
	case PKGDB_FMT_NONE:
		break;
	}
	return "none";
}

const char *pkgdb_status_name(pkgdb_status_t s)
{
	switch (s) {
	case PKGDB_ST_NOT_READ:
		return "not read";
	case PKGDB_ST_PARTIAL:
		return "partial";
	case PKGDB_ST_OK:
		break;
	}
	return "ok";
}

/* A capped, repaired copy of a field; counts a cut. */
static char *field_dup(pkgdb_inv_t *inv, const char *p, size_t n)
{
	bool cut = false;
	char *s = text_dup_n(p, n, PKGDB_MAX_FIELD, &cut);
	if (cut)
		inv->n_fields_cut++;
	return s;
}

int pkgdb_inv_add(pkgdb_inv_t *inv, const char *name, size_t name_len, const char *version,
		  size_t version_len, const char *arch, size_t arch_len, const char *src_name,
		  size_t src_name_len, const char *src_version, size_t src_version_len)
{
	if (inv->n_pkgs >= inv->max_pkgs) {
		inv->n_over_cap++;
		return 1;
	}
	if (inv->n_pkgs == inv->cap_pkgs) {
		size_t cap = inv->cap_pkgs ? inv->cap_pkgs * 2 : 64;
		if (cap > inv->max_pkgs)
			cap = inv->max_pkgs;
		pkgdb_pkg_t *np = realloc(inv->pkgs, cap * sizeof(*np));
		if (!np)
			return -1;
		inv->pkgs = np;
		inv->cap_pkgs = cap;
	}
	if (!src_name || src_name_len == 0) {
		src_name = name;
		src_name_len = name_len;
	}
	if (!src_version || src_version_len == 0) {
		src_version = version;
		src_version_len = version_len;
	}
	pkgdb_pkg_t p = {
		.name = field_dup(inv, name, name_len),
		.version = field_dup(inv, version, version_len),
		.arch = field_dup(inv, arch, arch ? arch_len : 0),
		.source_name = field_dup(inv, src_name, src_name_len),
		.source_version = field_dup(inv, src_version, src_version_len),
	};
	if (!p.name || !p.version || !p.arch || !p.source_name || !p.source_version) {
		free(p.name);
		free(p.version);
		free(p.arch);
		free(p.source_name);
		free(p.source_version);
		return -1;
	}
	inv->pkgs[inv->n_pkgs++] = p;
	return 0;
}

/* --- lines ------------------------------------------------------------- */

/* Take the next line of buf (without its '\n') from *pos; false at the end. */
static bool next_line(const char *buf, size_t len, size_t *pos, span_t *line)
{
	if (*pos >= len)
		return false;
	const char *start = buf + *pos;
	const char *nl = memchr(start, '\n', len - *pos);
	size_t n = nl ? (size_t)(nl - start) : len - *pos;
	*pos += n + (nl ? 1 : 0);
	line->p = start;
	line->n = n;
	return true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static span_t trim(span_t s)
{
	while (s.n > 0 && is_blank(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && is_blank(s.p[s.n - 1]))
		s.n--;
	return s;
}

static bool span_eq(span_t s, const char *lit)
{
	size_t n = strlen(lit);
	return s.n == n && memcmp(s.p, lit, n) == 0;
}

static bool span_ieq(span_t s, const char *lit)
{
	size_t n = strlen(lit);
	return s.n == n && strncasecmp(s.p, lit, n) == 0;
}

/* --- os-release -------------------------------------------------------- */

#define OS_VALUE_MAX 1024

/* Unquote a shell-style value into out (at most OS_VALUE_MAX bytes kept,
 * more than PKGDB_MAX_FIELD anyway): "..." with \" \\ \$ \` escapes, '...' literal,
 * a backslash outside quotes escapes the next byte; unquoted whitespace or
 * '#' after whitespace ends the value. */
static size_t os_unquote(span_t v, char *out)
{
	size_t o = 0, i = 0;
	char q = 0;
	for (; i < v.n; i++) {
		char c = v.p[i];
		if (q == '\'') {
			if (c == '\'') {
				q = 0;
				continue;
			}
		} else if (q == '"') {
			if (c == '"') {
				q = 0;
				continue;
			}
			if (c == '\\' && i + 1 < v.n && strchr("\"\\$`", v.p[i + 1]))
				c = v.p[++i];
		} else {
			if (c == '"' || c == '\'') {
				q = c;
				continue;
			}
			if (is_blank(c))
				break;
			if (c == '\\' && i + 1 < v.n)
				c = v.p[++i];
		}
		if (o < OS_VALUE_MAX)
			out[o++] = c;
	}
	return o;
}

int pkgdb_parse_os_release(const char *buf, size_t len, pkgdb_inv_t *inv)
{
	static const char *const keys[] = {"ID", "VERSION_ID", "VERSION_CODENAME", "PRETTY_NAME"};
	char **dst[] = {&inv->os_id, &inv->os_version, &inv->os_codename, &inv->os_pretty};
	char val[OS_VALUE_MAX];
	size_t pos = 0;
	span_t line;
	while (next_line(buf, len, &pos, &line)) {
		span_t l = trim(line);
		if (l.n == 0 || l.p[0] == '#')
			continue;
		const char *eq = memchr(l.p, '=', l.n);
		if (!eq)
			continue;
		span_t key = {l.p, (size_t)(eq - l.p)};
		span_t v = {eq + 1, l.n - key.n - 1};
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			if (!span_eq(key, keys[k]))
				continue;
			size_t n = os_unquote(v, val);
			char *s = field_dup(inv, val, n);
			if (!s)
				return -1;
			free(*dst[k]);
			*dst[k] = s;
		}
	}
	return 0;
}

/* --- dpkg -------------------------------------------------------------- */

typedef struct {
	span_t pkg, ver, arch, src, status;
	bool have_status, any;
} dpkg_rec_t;

/* "want ok installed": the second word "ok", the third "installed". */
static bool dpkg_installed(span_t st)
{
	span_t w[3];
	size_t nw = 0, i = 0;
	while (i < st.n) {
		while (i < st.n && is_blank(st.p[i]))
			i++;
		if (i >= st.n)
			break;
		size_t b = i;
		while (i < st.n && !is_blank(st.p[i]))
			i++;
		if (nw == 3)
			return false;
		w[nw++] = (span_t){st.p + b, i - b};
	}
	return nw == 3 && span_eq(w[1], "ok") && span_eq(w[2], "installed");
}

/* Source: "name" or "name (version)". */
static void dpkg_source(span_t src, span_t *name, span_t *ver)
{
	size_t i = 0;
	while (i < src.n && !is_blank(src.p[i]) && src.p[i] != '(')
		i++;
	*name = (span_t){src.p, i};
	*ver = (span_t){NULL, 0};
	const char *open = memchr(src.p + i, '(', src.n - i);
	if (!open)
		return;
	size_t rest = src.n - (size_t)(open + 1 - src.p);
	const char *close = memchr(open + 1, ')', rest);
	if (close)
		*ver = trim((span_t){open + 1, (size_t)(close - open - 1)});
}

static int dpkg_flush(dpkg_rec_t *r, bool status_d, pkgdb_inv_t *inv, long *added)
{
	if (!r->any)
		return 0;
	bool installed = r->have_status ? dpkg_installed(r->status) : status_d;
	if (!installed) {
		if (r->have_status)
			inv->n_not_installed++;
		else
			inv->n_malformed++;
	} else if (r->pkg.n == 0 || r->ver.n == 0) {
		inv->n_malformed++;
	} else {
		span_t sn = {NULL, 0}, sv = {NULL, 0};
		if (r->src.n)
			dpkg_source(r->src, &sn, &sv);
		int rc = pkgdb_inv_add(inv, r->pkg.p, r->pkg.n, r->ver.p, r->ver.n, r->arch.p,
				       r->arch.n, sn.p, sn.n, sv.p, sv.n);
		if (rc < 0)
			return -1;
		if (rc == 0)
			(*added)++;
	}
	memset(r, 0, sizeof(*r));
	return 0;
}

long pkgdb_parse_dpkg(const char *buf, size_t len, bool status_d, pkgdb_inv_t *inv)
{
	dpkg_rec_t r = {0};
	long added = 0;
	size_t pos = 0;
	span_t line;
	while (next_line(buf, len, &pos, &line)) {
		if (trim(line).n == 0) {
			if (dpkg_flush(&r, status_d, inv, &added) < 0)
				return -1;
			continue;
		}
		r.any = true;
		if (is_blank(line.p[0]))
			continue; /* a continuation line: no field we keep has one */
		const char *colon = memchr(line.p, ':', line.n);
		if (!colon)
			continue;
		span_t key = trim((span_t){line.p, (size_t)(colon - line.p)});
		span_t v = trim((span_t){colon + 1, line.n - (size_t)(colon + 1 - line.p)});
		if (span_ieq(key, "Package"))
			r.pkg = v;
		else if (span_ieq(key, "Version"))
			r.ver = v;
		else if (span_ieq(key, "Architecture"))
			r.arch = v;
		else if (span_ieq(key, "Source"))
			r.src = v;
		else if (span_ieq(key, "Status")) {
			r.status = v;
			r.have_status = true;
		}
	}
	if (dpkg_flush(&r, status_d, inv, &added) < 0)
		return -1;
	return added;
}

/* --- apk --------------------------------------------------------------- */

typedef struct {
	span_t name, ver, arch, origin;
	bool any;
} apk_rec_t;

static int apk_flush(apk_rec_t *r, pkgdb_inv_t *inv, long *added)
{
	if (!r->any)
		return 0;
	if (r->name.n == 0 || r->ver.n == 0) {
		inv->n_malformed++;
	} else {
		/* the origin package is built from the same aport: same version */
		int rc = pkgdb_inv_add(inv, r->name.p, r->name.n, r->ver.p, r->ver.n, r->arch.p,
				       r->arch.n, r->origin.p, r->origin.n, NULL, 0);
		if (rc < 0)
			return -1;
		if (rc == 0)
			(*added)++;
	}
	memset(r, 0, sizeof(*r));
	return 0;
}

long pkgdb_parse_apk(const char *buf, size_t len, pkgdb_inv_t *inv)
{
	apk_rec_t r = {0};
	long added = 0;
	size_t pos = 0;
	span_t line;
	while (next_line(buf, len, &pos, &line)) {
		span_t l = trim(line);
		if (l.n == 0) {
			if (apk_flush(&r, inv, &added) < 0)
				return -1;
			continue;
		}
		r.any = true;
		if (l.n < 2 || l.p[1] != ':')
			continue;
		span_t v = trim((span_t){l.p + 2, l.n - 2});
		switch (l.p[0]) {
		case 'P':
			r.name = v;
			break;
		case 'V':
			r.ver = v;
			break;
		case 'A':
			r.arch = v;
			break;
		case 'o':
			r.origin = v;
			break;
		default:
			break;
		}
	}
	if (apk_flush(&r, inv, &added) < 0)
		return -1;
	return added;
}
