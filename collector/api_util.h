/*
 * Pieces of the query API that parse untrusted bytes or build text: query
 * strings, times, numbers, cursors, URL paths, CSV cells, and a growable
 * string buffer. Pure code: no I/O, so unit tests call it directly.
 */
#ifndef VIGIL_API_UTIL_H
#define VIGIL_API_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- string buffer ---- */
typedef struct {
	char *s;
	size_t len, cap;
	bool oom; /* an allocation failed; s holds what fitted */
} sbuf_t;

void sbuf_init(sbuf_t *b);
void sbuf_free(sbuf_t *b);
void sbuf_add(sbuf_t *b, const char *s);
void sbuf_addn(sbuf_t *b, const char *s, size_t n);
void sbuf_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- query strings ---- */
#define QP_MAX 32
#define QP_MAX_VALUE 1024

typedef struct {
	int n;
	char *key[QP_MAX]; /* decoded, owned */
	char *val[QP_MAX];
	bool used[QP_MAX];
} qparams_t;

/* Split and percent-decode a query string (may be NULL). A key given twice,
 * more than QP_MAX keys, a bad %-escape, a NUL byte, invalid UTF-8 or a
 * value above QP_MAX_VALUE bytes is an error: return -1 and write the name
 * of the offending parameter (or "query") into bad. */
int qparams_parse(const char *query, qparams_t *out, char *bad, size_t badlen)
	__attribute__((warn_unused_result));
void qparams_free(qparams_t *q);
/* The value of key (marking it used), or NULL. */
const char *qparams_get(qparams_t *q, const char *key);
/* The first key not consumed by qparams_get, or NULL. */
const char *qparams_unused(const qparams_t *q);

/* ---- values ---- */
/* A time: RFC 3339 (2024-05-01T12:00:00Z, fraction and offset optional),
 * Unix seconds (digits), or a span before now: 90s, 15m, 24h, 7d, 2w
 * (optionally written -24h). Result in Unix microseconds. Return 0 or -1. */
int api_parse_time(const char *s, int64_t now_us, int64_t *out_us)
	__attribute__((warn_unused_result));
/* A decimal integer within [min, max]. Return 0 or -1. */
int api_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
	__attribute__((warn_unused_result));
/* true/false/1/0/yes/no. Return 0 or -1. */
int api_parse_bool(const char *s, bool *out) __attribute__((warn_unused_result));
/* Event kind name (process_exec, ...) or number to its number; -1 if unknown. */
int api_kind_parse(const char *s);
/* Severity name (info, low, medium, high, critical) or 1..5; -1 if unknown. */
int api_severity_parse(const char *s);
/* Format Unix microseconds as RFC 3339 UTC with microseconds. */
void api_format_time(int64_t us, char *out, size_t outlen);

/* ---- event cursors: "<ts_us>.<agent_id>.<seq>.<idx>" ---- */
typedef struct {
	int64_t ts_us;
	int64_t agent_id;
	int64_t seq;
	int64_t idx;
} api_cursor_t;

int api_cursor_parse(const char *s, api_cursor_t *out) __attribute__((warn_unused_result));

/* ---- paths ---- */
/* Percent-decode one path segment into out (outlen bytes). Reject '/',
 * NUL, control bytes, invalid UTF-8, "." and "..". Return 0 or -1. */
int api_path_segment(const char *s, size_t n, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/* ---- CSV ---- */
/* Append s as one quoted CSV cell. A cell a spreadsheet would run as a
 * formula (starting with = + - @, tab or CR) is prefixed with a quote. */
void api_csv_cell(sbuf_t *b, const char *s);

#endif
