// SPDX-License-Identifier: Apache-2.0
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
 * ends in bytes fed as they arrive, how long it is, the body length it
 * declares, and whether it is framed strictly enough that every parser
 * reads it the same way (RFC 9112 sections 2.2, 5 and 6.3). Lines end in
 * CR LF. Zero it to start. */
#define API_HEAD_NAME_MAX 20 /* header name bytes kept to recognise it */

typedef struct {
	size_t bytes;	  /* of the head so far, line ends included */
	size_t line;	  /* bytes of the current line so far */
	size_t lines;	  /* lines ended so far */
	bool cr;	  /* the last byte fed is a CR */
	bool in_value;	  /* the current header line is past its colon */
	bool cl_seen;	  /* a Content-Length header has ended */
	uint8_t field;	  /* which header the current line is */
	uint8_t name_len; /* bytes of its name kept (lower case) */
	char name[API_HEAD_NAME_MAX];
	bool cl_trail;		 /* blanks after the Content-Length digits */
	int cl_digits;		 /* digits of its value so far */
	uint64_t cl;		 /* its value so far (saturated) */
	uint64_t content_length; /* the declared body length, or 0 */
	const char *bad;	 /* for API_HEAD_BAD: why, a static string */
} api_head_t;

typedef enum {
	API_HEAD_MORE, /* all bytes fed belong to the head, which goes on */
	API_HEAD_END,  /* the head ended within them */
	API_HEAD_OVER, /* the head is longer than the limit */
	API_HEAD_BAD,  /* the head is malformed or ambiguous (h->bad says how) */
} api_head_status_t;

/* Feed n bytes at p to h. *used is how many of them belong to the head:
 * n for MORE, up to and including the blank line's LF for END, the bytes
 * that still fitted under limit for OVER (the head then counts limit + 1
 * bytes), up to and including the offending byte for BAD. After END, OVER
 * or BAD, zero h before feeding the next head.
 *
 * BAD, to be answered 400 and the connection closed: a control byte (NUL,
 * CR, ...; not HTAB) in the request line or a header value; a CR not
 * followed by LF, or an LF without its CR; a blank line before the request
 * line; a header line starting with a blank (obs-fold); a header name that
 * is empty or not a token, or blanks before its colon; a header line
 * without a colon; any Transfer-Encoding header (no request body is
 * chunked); a Content-Length that is not digits (blanks around them
 * allowed), or two Content-Length headers with different values (the same
 * value repeated is accepted). content_length is the declared value. */
api_head_status_t api_head_feed(api_head_t *h, const char *p, size_t n, size_t limit, size_t *used);

/* ---- CSV ---- */
/* Append s as one quoted CSV cell. A cell a spreadsheet would run as a
 * formula (starting with = + - @, tab or CR) is prefixed with a quote;
 * control bytes are written \xNN and UTF-8 C1 controls \u00NN, so the
 * file's own line ends are the only ones in it. */
void api_csv_cell(sbuf_t *b, const char *s);

#endif
