// SPDX-License-Identifier: Apache-2.0
/*
 * The SQL query builder of the API: a statement's text and its parameters,
 * built piece by piece by the handlers and run on the apidb pool
 * (hreq_run). Values only ever become parameters ($N), never SQL text.
 */
#ifndef VIGIL_APIDB_QUERY_H
#define VIGIL_APIDB_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "http/api_util.h"
#include "http/apidb.h"

/* Audit parameters $1..$6 come first in every audited statement. */
#define API_AUDIT_PARAMS APIDB_AUDIT_N

/* A statement being built: SQL text and its parameters. */
typedef struct {
	sbuf_t sql;
	int n;
	char *params[APIDB_MAX_PARAMS];
	bool audit;   /* prefix the audit insert ($1..$6) */
	bool primary; /* run on the primary even with a read replica (http_db) */
	bool oom;
} qb_t;

/* Start an empty statement; with audit, the audit insert comes first. */
void qb_init(qb_t *q, bool audit);
/* Statements built here are reads (their audit record aside) and run on
 * the read replica when http_db names one; this keeps q on the primary
 * (reads of what the API itself writes, and /readyz). */
void qb_primary(qb_t *q);
/* Mark q as a listing (APIDB_LISTING_MARK): it runs on any connection
 * but the one kept for small reads. */
void qb_listing(qb_t *q);
/* Free the text and the parameters. */
void qb_free(qb_t *q);
/* Append raw SQL. */
void qb_sql(qb_t *q, const char *s);
/* Append a placeholder ($N) for value (copied). */
void qb_param(qb_t *q, const char *value);
void qb_param_int(qb_t *q, int64_t v);

#endif
