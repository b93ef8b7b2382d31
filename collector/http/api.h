// SPDX-License-Identifier: Apache-2.0
/*
 * Between the HTTP server (http.c and the files beside it: reply.c,
 * dispatch.c, files.c) and the API handlers (api.c). A request (hreq_t) is
 * owned by the server; a handler finishes it with exactly one
 * reply (or a stream), either at once or after a database job.
 */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/api_util.h"
#include "http/apidb.h"
#include "http/apidb_query.h"
#include "http/auth.h"
#include "collector.h"

typedef struct hreq hreq_t;

typedef void (*hreq_done_fn)(hreq_t *r, apidb_job_t *job);

/* ---- what the server offers to handlers (dispatch.c, reply.c) ---- */
collector_t *hreq_col(hreq_t *r);
qparams_t *hreq_params(hreq_t *r);
auth_role_t hreq_role(hreq_t *r);
/* "token:NAME" or "cert:CN". */
const char *hreq_principal(hreq_t *r);
int64_t hreq_now_us(hreq_t *r);
/* Run q (consumed) on the pool; done runs on the loop with the job, which
 * it must free. If the client went away meanwhile, done is not called. */
void hreq_run(hreq_t *r, qb_t *q, hreq_done_fn done);
/* Finish with a body (copied). */
void hreq_reply(hreq_t *r, int status, const char *ctype, const char *body, size_t len);
/* Finish with {"error": code, "message": ..., "parameter": param}. */
void hreq_error(hreq_t *r, int status, const char *code, const char *param, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Finish with the database failure of job. */
void hreq_db_error(hreq_t *r, const apidb_job_t *job);
/* Streaming: start a 200 reply, send chunks (each then calls more once it
 * has been written out, unless the client is gone), and end. */
void hreq_stream_start(hreq_t *r, const char *ctype, const char *filename);
void hreq_stream_chunk(hreq_t *r, sbuf_t *data, void (*more)(hreq_t *r));
void hreq_stream_end(hreq_t *r);
/* Per-request scratch for a handler (freed with the request). */
void *hreq_state(hreq_t *r);
void hreq_set_state(hreq_t *r, void *state, void (*free_fn)(void *));

/* Snapshot of what the server measures, for stats and metrics. */
typedef struct {
	int64_t t_us;
	uint64_t events_stored;
	int agents_connected;
} api_sample_t;

typedef struct {
	uint64_t requests[6]; /* by status class: 1xx..5xx, [0] other */
	uint64_t rate_limited;
	uint64_t auth_failures;
	int connections;
	int connections_pending; /* before their first request */
	uint64_t connections_refused, pending_dropped;
	size_t db_pending;
	const api_sample_t *samples; /* oldest first */
	size_t n_samples;
} api_server_stats_t;
void hreq_server_stats(hreq_t *r, api_server_stats_t *out);
/* The OpenAPI document loaded with the web files (may be NULL). */
const char *hreq_openapi(hreq_t *r, size_t *len);

/* ---- the handlers (api.c) ---- */
/* Route an authenticated GET of path. Return false if no route matches
 * (the server then answers 404). */
bool api_dispatch(hreq_t *r, const char *path);

#endif
