/*
 * Pieces of the query API that parse untrusted bytes or build text: query
 * strings, times, numbers, cursors, URL paths, CSV cells, the length of
 * request heads, and a growable string buffer. Pure code: no I/O, so unit tests call it directly.
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

/* ---- finding cursors: "<last_seen_us>.<id>" (id >= 1) ---- */
typedef struct {
	int64_t ts_us;
	int64_t id;
} api_fcursor_t;

int api_fcursor_parse(const char *s, api_fcursor_t *out) __attribute__((warn_unused_result));

/* ---- paths ---- */
/* Percent-decode one path segment into out (outlen bytes). Reject '/',
 * NUL, control bytes, invalid UTF-8, "." and "..". Return 0 or -1. */
int api_path_segment(const char *s, size_t n, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/* ---- request heads ---- */
/* Where an HTTP request head (request line, header lines, the blank line)
 * ends in bytes fed as they arrive, how long it is, and the body length it
 * declares. A line ends at LF; a CR just before the LF is part of the line
 * end (evhttp reads lines the same way), so "\r\n" and "\n" are blank
 * lines. Zero it to start. */
typedef struct {
	size_t bytes;		 /* of the head so far, line ends included */
	size_t line;		 /* bytes of the current line so far */
	size_t lines;		 /* lines ended so far */
	bool cr;		 /* the last byte of the current line is a CR */
	int cl_state;		 /* where the current line is in a Content-Length header */
	bool cl_trail;		 /* blanks after its digits */
	int cl_digits;		 /* digits of its value so far */
	uint64_t cl;		 /* its value so far (saturated) */
	uint64_t content_length; /* the largest well-formed Content-Length, or 0 */
} api_head_t;

typedef enum {
	API_HEAD_MORE, /* all bytes fed belong to the head, which goes on */
	API_HEAD_END,  /* the head ended within them */
	API_HEAD_OVER, /* the head is longer than the limit */
} api_head_status_t;

/* Feed n bytes at p to h. *used is how many of them belong to the head:
 * n for MORE, up to and including the blank line's LF for END, the bytes
 * that still fitted under limit for OVER (the head then counts limit + 1
 * bytes). A Content-Length header (name in any case, then ':', blanks,
 * digits, blanks) sets content_length; one written otherwise is left to
 * evhttp, which refuses it. */
api_head_status_t api_head_feed(api_head_t *h, const char *p, size_t n, size_t limit, size_t *used);

/* ---- CSV ---- */
/* Append s as one quoted CSV cell. A cell a spreadsheet would run as a
 * formula (starting with = + - @, tab or CR) is prefixed with a quote. */
void api_csv_cell(sbuf_t *b, const char *s);

#endif
