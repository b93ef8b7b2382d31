// SPDX-License-Identifier: Apache-2.0
/*
 * Shared by the query API's handler files (api.c, api_findings.c): checks
 * of common parameters, list answers and CSV lines, statement helpers.
 * Private to collector/http/.
 */
#ifndef VIGIL_API_COMMON_H
#define VIGIL_API_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "http/api.h"
#include "http/api_util.h"
#include "http/apidb.h"

/* ---- statements ---- */
/* Append a placeholder for the time us as a timestamptz constant. */
void qb_time(qb_t *q, int64_t us);
/* Bind value (copied) as the next parameter without writing SQL; return
 * its placeholder number (write "$N" where it is used, as often as
 * needed), or 0 when full (q->oom is then set). */
int qb_add(qb_t *q, const char *value);

/* ---- parameters: each returns false after answering 400 ---- */
/* Answer 400 naming parameter name; return false. */
bool api_bad_param(hreq_t *r, const char *name, const char *why);
/* Refuse the first parameter no check consumed. */
bool api_no_unknown(hreq_t *r);
/* limit: a positive integer, capped at http_max_limit; def when absent. */
bool api_get_limit(hreq_t *r, int64_t def, int64_t *out);
/* since/until; a missing since is until minus def_us; no wider than
 * http_max_window. */
bool api_get_window(hreq_t *r, int64_t def_us, int64_t *since, int64_t *until);
/* A boolean: *out is -1 when absent, else 0 or 1. */
bool api_get_bool(hreq_t *r, const char *name, int *out);
/* A plain string filter of 1 to 512 bytes; *out NULL when absent. */
bool api_get_str(hreq_t *r, const char *name, const char **out);

typedef enum {
	API_FMT_JSON,
	API_FMT_NDJSON,
	API_FMT_CSV,
} api_fmt_t;

/* format=json|csv, and ndjson if streams. */
bool api_get_format(hreq_t *r, bool streams, api_fmt_t *out);

/* ---- answers ---- */
/* Reply {"<key>": [column 0 of the first n rows], "count": n, <extra>}. */
void api_reply_rows(hreq_t *r, apidb_job_t *job, const char *key, size_t n, const char *extra);
/* Append one CSV line of the fields cols (NULL-terminated) of the object o
 * (may be NULL), or of the JSON text row. */
void api_csv_obj(sbuf_t *b, json_t *o, const char *const *cols);
void api_csv_row(sbuf_t *b, const char *row, const char *const *cols);
/* Append the CSV header line of cols. */
void api_csv_header(sbuf_t *b, const char *const *cols);

/* ---- handlers of api_findings.c ---- */
/* GET /api/v1/findings: the findings table. */
void api_findings(hreq_t *r);
/* GET /api/v1/rules: the built-in rules and how they are in force. */
void api_rules(hreq_t *r);

#endif
