// SPDX-License-Identifier: Apache-2.0
/* Parsers and text builders of the query API (see api_util.h). */
#include "http/api_util.h"

#include "vtime.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "utf8.h"

/* ---- string buffer ---------------------------------------------------------- */

void sbuf_init(sbuf_t *b)
{
	memset(b, 0, sizeof(*b));
}

void sbuf_free(sbuf_t *b)
{
	free(b->s);
	sbuf_init(b);
}

static bool grow(sbuf_t *b, size_t extra)
{
	if (b->oom)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	size_t nc = b->cap ? b->cap : 256;
	while (nc < b->len + extra + 1)
		nc *= 2;
	char *ns = realloc(b->s, nc);
	if (!ns) {
		b->oom = true;
		return false;
	}
	b->s = ns;
	b->cap = nc;
	return true;
}

void sbuf_addn(sbuf_t *b, const char *s, size_t n)
{
	if (!grow(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void sbuf_add(sbuf_t *b, const char *s)
{
	sbuf_addn(b, s, strlen(s));
}

void sbuf_printf(sbuf_t *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* ---- query strings -------------------------------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode n bytes of s ('+' is a space when plus). NULL if malformed. */
static char *pct_decode(const char *s, size_t n, bool plus)
{
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h, l;
			if (i + 2 >= n)
				goto bad;
			h = hexval((unsigned char)s[i + 1]);
			l = hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				goto bad;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else if (s[i] == '+' && plus) {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	if (strlen(out) != o || !utf8_valid(out, o))
		goto bad;
	for (size_t i = 0; i < o; i++)
		if ((unsigned char)out[i] < 0x20 && out[i] != '\t')
			goto bad;
	return out;
bad:
	free(out);
	return NULL;
}

static void set_bad(char *bad, size_t badlen, const char *k, size_t kn)
{
	char *d = k ? pct_decode(k, kn, true) : NULL;
	bool printable = d && d[0] && strlen(d) <= 64;
	snprintf(bad, badlen, "%s", printable ? d : "query");
	free(d);
}

int qparams_parse(const char *query, qparams_t *out, char *bad, size_t badlen)
{
	memset(out, 0, sizeof(*out));
	if (!query || !*query)
		return 0;
	const char *p = query;
	while (*p) {
		const char *amp = strchr(p, '&');
		size_t n = amp ? (size_t)(amp - p) : strlen(p);
		if (n) {
			const char *eq = memchr(p, '=', n);
			size_t kn = eq ? (size_t)(eq - p) : n;
			if (out->n >= QP_MAX) {
				snprintf(bad, badlen, "query");
				goto fail;
			}
			char *k = pct_decode(p, kn, true);
			char *v = eq ? pct_decode(eq + 1, n - kn - 1, true) : strdup("");
			if (!k || !v || !k[0] || strlen(v) > QP_MAX_VALUE || strlen(k) > 64) {
				free(k);
				free(v);
				set_bad(bad, badlen, p, kn);
				goto fail;
			}
			for (int i = 0; i < out->n; i++) {
				if (strcmp(out->key[i], k) == 0) {
					snprintf(bad, badlen, "%s", k);
					free(k);
					free(v);
					goto fail;
				}
			}
			out->key[out->n] = k;
			out->val[out->n] = v;
			out->n++;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
fail:
	qparams_free(out);
	return -1;
}

void qparams_free(qparams_t *q)
{
	for (int i = 0; i < q->n; i++) {
		free(q->key[i]);
		free(q->val[i]);
	}
	memset(q, 0, sizeof(*q));
}

const char *qparams_get(qparams_t *q, const char *key)
{
	for (int i = 0; i < q->n; i++) {
		if (strcmp(q->key[i], key) == 0) {
			q->used[i] = true;
			return q->val[i];
		}
	}
	return NULL;
}

const char *qparams_unused(const qparams_t *q)
{
	for (int i = 0; i < q->n; i++)
		if (!q->used[i])
			return q->key[i];
	return NULL;
}

/* ---- values ------------------------------------------------------------------------ */

int api_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s || strlen(s) > 19)
		return -1;
	const char *p = s;
	bool neg = false;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (!*p)
		return -1;
	int64_t v = 0;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (neg)
		v = -v;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int api_parse_bool(const char *s, bool *out)
{
	if (!s)
		return -1;
	if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no")) {
		*out = false;
		return 0;
	}
	return -1;
}

/* Exactly n digits at s. */
/* RFC 3339 time to Unix microseconds. */
static int parse_rfc3339(const char *s, int64_t *out_us)
{
	int64_t ns;
	if (vtime_parse_rfc3339(s, &ns) != 0)
		return -1;
	*out_us = ns / 1000;
	return 0;
}

int api_parse_time(const char *s, int64_t now_us, int64_t *out_us)
{
	if (!s || !*s)
		return -1;
	size_t n = strlen(s);
	if (n > 40)
		return -1;
	if (strchr(s, 'T') || strchr(s, 't') || (n >= 10 && s[4] == '-'))
		return parse_rfc3339(s, out_us);
	const char *p = s[0] == '-' ? s + 1 : s;
	size_t pn = strlen(p);
	if (pn == 0)
		return -1;
	char unit = p[pn - 1];
	if (isdigit((unsigned char)unit)) {
		if (s[0] == '-')
			return -1;
		int64_t secs;
		if (api_parse_int(p, 0, INT64_C(253402300799), &secs) != 0)
			return -1;
		*out_us = secs * 1000000;
		return 0;
	}
	int64_t mult;
	switch (unit) {
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	case 'w':
		mult = 7 * 86400;
		break;
	default:
		return -1;
	}
	char num[24];
	if (pn - 1 == 0 || pn - 1 >= sizeof(num))
		return -1;
	memcpy(num, p, pn - 1);
	num[pn - 1] = '\0';
	int64_t v;
	if (api_parse_int(num, 0, INT64_C(100) * 366 * 86400, &v) != 0 ||
	    v * mult > INT64_C(100) * 366 * 86400)
		return -1;
	*out_us = now_us - v * mult * 1000000;
	return 0;
}

static const char *const kinds[] = {
	NULL,		"inventory",	"container_started", "container_stopped",
	"process_exec", "agent_status", "finding",	     "container_changed"};
static const char *const severities[] = {NULL, "info", "low", "medium", "high", "critical"};

static int name_or_number(const char *s, const char *const *names, int n)
{
	if (!s)
		return -1;
	for (int i = 1; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	int64_t v;
	if (api_parse_int(s, 1, n - 1, &v) == 0)
		return (int)v;
	return -1;
}

int api_kind_parse(const char *s)
{
	return name_or_number(s, kinds, (int)(sizeof(kinds) / sizeof(kinds[0])));
}

int api_severity_parse(const char *s)
{
	return name_or_number(s, severities, (int)(sizeof(severities) / sizeof(severities[0])));
}

void api_format_time(int64_t us, char *out, size_t outlen)
{
	time_t secs = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
	int64_t frac = us - (int64_t)secs * 1000000;
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
}

/* ---- cursors ------------------------------------------------------------------------- */

/* n dot-separated decimal integers, v[i] within [min[i], INT64_MAX / 2]. */
static int parse_dotted(const char *s, int n, const int64_t *min, int64_t *v)
{
	if (!s || strlen(s) > 80)
		return -1;
	const char *p = s;
	for (int i = 0; i < n; i++) {
		const char *dot = strchr(p, '.');
		if ((i < n - 1) != (dot != NULL))
			return -1;
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		char num[24];
		if (len == 0 || len >= sizeof(num))
			return -1;
		memcpy(num, p, len);
		num[len] = '\0';
		if (api_parse_int(num, min[i], INT64_MAX / 2, &v[i]) != 0)
			return -1;
		p += len + (dot ? 1 : 0);
	}
	return 0;
}

int api_cursor_parse(const char *s, api_cursor_t *out)
{
	/* seq is negative for the events the collector makes (findings) */
	static const int64_t min[4] = {INT64_MIN / 2, 0, INT64_MIN / 2, 0};
	int64_t v[4];
	if (parse_dotted(s, 4, min, v) != 0)
		return -1;
	out->ts_us = v[0];
	out->agent_id = v[1];
	out->seq = v[2];
	out->idx = v[3];
	return 0;
}

int api_fcursor_parse(const char *s, api_fcursor_t *out)
{
	static const int64_t min[2] = {INT64_MIN / 2, 1};
	int64_t v[2];
	if (parse_dotted(s, 2, min, v) != 0)
		return -1;
	out->ts_us = v[0];
	out->id = v[1];
	return 0;
}

/* ---- paths ------------------------------------------------------------------------------ */

int api_path_segment(const char *s, size_t n, char *out, size_t outlen)
{
	if (n == 0 || n >= outlen * 3)
		return -1;
	char *d = pct_decode(s, n, false);
	if (!d)
		return -1;
	size_t dn = strlen(d);
	int rc = -1;
	if (dn > 0 && dn < outlen && !strchr(d, '/') && !strchr(d, '\\') && strcmp(d, ".") != 0 &&
	    strcmp(d, "..") != 0) {
		memcpy(out, d, dn + 1);
		rc = 0;
	}
	free(d);
	return rc;
}

/* ---- request heads ---------------------------------------------------------------------------- */

enum {
	FIELD_OTHER,
	FIELD_CL, /* Content-Length */
	FIELD_TE, /* Transfer-Encoding */
};

/* RFC 9110 section 5.6.2: tchar. */
static bool head_tchar(unsigned char b)
{
	return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
	       (b != 0 && strchr("!#$%&'*+-.^_`|~", b) != NULL);
}

/* A control byte: not allowed in a request line or header value (HTAB is
 * allowed in a value; obs-text, 0x80 and up, is). */
static bool head_ctl(unsigned char b)
{
	return b < 0x20 || b == 0x7f;
}

/* Which header the name kept so far names. */
static int head_field(const api_head_t *h)
{
	if (h->name_len == 14 && memcmp(h->name, "content-length", 14) == 0)
		return FIELD_CL;
	if (h->name_len == 17 && memcmp(h->name, "transfer-encoding", 17) == 0)
		return FIELD_TE;
	return FIELD_OTHER;
}

/* One byte of a header name (the line's first byte included). Return
 * the reason it is refused, or NULL. */
static const char *head_name_byte(api_head_t *h, unsigned char b)
{
	if (h->line == 0 && (b == ' ' || b == '\t'))
		return "header line starting with whitespace (obs-fold)";
	if (b == ':') {
		if (h->name_len == 0)
			return "empty header name";
		h->in_value = true;
		h->field = (uint8_t)head_field(h);
		if (h->field == FIELD_TE)
			return h->cl_seen ? "Content-Length with Transfer-Encoding"
					  : "Transfer-Encoding not accepted";
		return NULL;
	}
	if (b == ' ' || b == '\t')
		return "whitespace between header name and colon";
	if (!head_tchar(b))
		return "header name not a token";
	if (h->name_len < API_HEAD_NAME_MAX)
		h->name[h->name_len++] = (char)tolower(b);
	else
		h->name_len = UINT8_MAX; /* too long to be one we look for */
	return NULL;
}

/* One byte of a header value. Return the reason it is refused, or NULL. */
static const char *head_value_byte(api_head_t *h, unsigned char b)
{
	if (head_ctl(b) && b != '\t')
		return "control byte in a header value";
	if (h->field != FIELD_CL)
		return NULL;
	if (b >= '0' && b <= '9' && !h->cl_trail) {
		uint64_t d = (uint64_t)(b - '0');
		h->cl = h->cl > (UINT64_MAX - d) / 10 ? UINT64_MAX : h->cl * 10 + d;
		h->cl_digits++;
		return NULL;
	}
	if (b == ' ' || b == '\t') {
		h->cl_trail = h->cl_digits > 0;
		return NULL;
	}
	return "malformed Content-Length";
}

/* One byte of a line, not its CR or LF. */
static const char *head_byte(api_head_t *h, unsigned char b)
{
	if (h->lines == 0)
		return head_ctl(b) ? "control byte in the request line" : NULL;
	return h->in_value ? head_value_byte(h, b) : head_name_byte(h, b);
}

/* The LF of a line. Return the reason the line is refused, or NULL. */
static const char *head_line_end(api_head_t *h)
{
	if (!h->cr)
		return "bare LF line end";
	if (h->line == 1)
		return h->lines == 0 ? "blank line before the request line" : NULL;
	if (h->lines == 0)
		return NULL;
	if (!h->in_value)
		return "header line without a colon";
	if (h->field != FIELD_CL)
		return NULL;
	if (h->cl_digits == 0)
		return "malformed Content-Length";
	if (h->cl_seen && h->cl != h->content_length)
		return "two different Content-Length values";
	h->cl_seen = true;
	h->content_length = h->cl;
	return NULL;
}

/* Start the next line. */
static void head_next_line(api_head_t *h)
{
	h->lines++;
	h->line = 0;
	h->cr = false;
	h->in_value = false;
	h->field = FIELD_OTHER;
	h->name_len = 0;
	h->cl_trail = false;
	h->cl_digits = 0;
	h->cl = 0;
}

api_head_status_t api_head_feed(api_head_t *h, const char *p, size_t n, size_t limit, size_t *used)
{
	for (size_t i = 0; i < n; i++) {
		if (h->bytes >= limit) {
			h->bytes = limit + 1;
			*used = i;
			return API_HEAD_OVER;
		}
		h->bytes++;
		unsigned char b = (unsigned char)p[i];
		const char *bad = NULL;
		if (b == '\n') {
			bad = head_line_end(h);
			if (!bad) {
				bool blank = h->line == 1;
				head_next_line(h);
				if (blank) {
					*used = i + 1;
					return API_HEAD_END;
				}
				continue;
			}
		} else if (h->cr) {
			bad = "CR not followed by LF";
		} else if (b == '\r') {
			h->cr = true;
			h->line++;
			continue;
		} else {
			bad = head_byte(h, b);
			h->line++;
		}
		if (bad) {
			h->bad = bad;
			*used = i + 1;
			return API_HEAD_BAD;
		}
	}
	*used = n;
	return API_HEAD_MORE;
}

/* ---- CSV ------------------------------------------------------------------------------------ */

void api_csv_cell(sbuf_t *b, const char *s)
{
	sbuf_add(b, "\"");
	if (s && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' ||
		  s[0] == '\r'))
		sbuf_add(b, "'");
	/* Control bytes (ESC, BEL, CR, LF...) and UTF-8 C1 controls are
	 * written as \xNN and \u00NN: the line ends of the file are the only
	 * ones in it, and nothing in a cell drives a terminal. */
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"')
			sbuf_add(b, "\"\"");
		else if (*p < 0x20 || *p == 0x7f)
			sbuf_printf(b, "\\x%02x", *p);
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			sbuf_printf(b, "\\u00%02x", *++p);
		else
			sbuf_addn(b, (const char *)p, 1);
	}
	sbuf_add(b, "\"");
}
