// SPDX-License-Identifier: Apache-2.0
/*
 * Inside the store (store.h): what store.c and isolate.c, which commits a
 * group that PostgreSQL refused job by job, share. No other file includes
 * this; none of it needs libpq-fe.h.
 */
#ifndef VIGIL_INGEST_STOREOPS_H
#define VIGIL_INGEST_STOREOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector.h"
#include "ingest/ingest.h"
#include "ingest/store.h"

struct pg_conn; /* libpq's PGconn */

struct store {
	collector_t *col;
	char *conninfo;
	char prefix[48];
	struct pg_conn *pg;
	char err[512]; /* last error from PostgreSQL */
	int64_t deadline_ns;
};

typedef enum {
	R_OK,
	R_DATA,	 /* PostgreSQL refused the data itself */
	R_CONN,	 /* connection gone or timed out */
	R_RETRY, /* a transient refusal (deadlock, lock, resources): try again */
	R_OTHER, /* anything else */
} res_t;

typedef struct {
	const uint8_t *p;
	size_t n;
} span_t;

typedef struct {
	int32_t id;
	int64_t seq;
	bool touched;
} agent_seq_t;

/* Run sql (no parameters, several statements allowed). */
res_t store_sql(store_t *st, const char *sql);
/* COPY events FROM STDIN with the given spans of tuples. */
res_t store_copy(store_t *st, const span_t *spans, size_t n_spans);
/* Keep dead letters v[0..n) of batch job j within its agent's quota; idx,
 * if not -2, replaces each one's index. */
res_t store_put_dead(store_t *st, job_t *j, const dead_event_t *v, size_t n, int64_t idx);
/* The dead letters the worker found in j. */
res_t store_put_rejects(store_t *st, job_t *j);
/* Container state, findings and images of the stored batches among jobs. */
res_t store_apply_state(store_t *st, job_t **jobs, size_t n);
/* Register a Hello's agent; sets agent_id and committed_seq. */
res_t store_upsert_hello(store_t *st, job_t *j);
/* Lock the rows of the agents of the batch jobs; *out (caller frees)
 * holds each one's committed_seq. */
res_t store_lock_agents(store_t *st, job_t **jobs, size_t n, agent_seq_t **out, size_t *n_out);
/* Mark replays and advance the in-memory committed_seq of each agent. */
void store_filter_replays(job_t **jobs, size_t n, agent_seq_t *a, size_t na);
/* Write the committed_seq of the touched agents. */
res_t store_set_committed(store_t *st, agent_seq_t *agents, size_t n);
/* What a Welcome says, for the Hello jobs among jobs. */
res_t store_read_hello_seqs(store_t *st, job_t **jobs, size_t n);
agent_seq_t *store_find_agent(agent_seq_t *a, size_t n, int32_t id);

/* isolate.c: the group again in one transaction, each job under a
 * savepoint (after store_commit_group's first attempt was refused). */
res_t store_commit_isolating(store_t *st, job_t **jobs, size_t n);

#endif
