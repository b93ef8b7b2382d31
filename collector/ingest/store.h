// SPDX-License-Identifier: Apache-2.0
/*
 * PostgreSQL access: the only module that includes libpq-fe.h. A store is
 * one connection, used by one thread (a writer, or main at start-up).
 * Calls block; they run on writer threads, never on an event loop.
 */
#ifndef VIGIL_STORE_H
#define VIGIL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "collector.h"
#include "ingest/ingest.h"

typedef struct store store_t;

typedef enum {
	STORE_OK = 0,
	STORE_CONN_ERROR, /* connection lost or refused: retry later */
	STORE_ERROR,	  /* anything else the caller should retry later */
} store_rc_t;

/* Create a store for conninfo (not connected yet). */
store_t *store_new(collector_t *col, const char *conninfo, const char *name);
void store_free(store_t *st);

/* Connect if not connected. Return STORE_OK or STORE_CONN_ERROR. */
store_rc_t store_connect(store_t *st) __attribute__((warn_unused_result));
void store_disconnect(store_t *st);
/* Connect if not connected and check that the server answers a query.
 * Return STORE_OK, STORE_CONN_ERROR or STORE_ERROR. */
store_rc_t store_ping(store_t *st) __attribute__((warn_unused_result));

/* Apply the embedded migrations under an advisory lock. */
store_rc_t store_migrate(store_t *st) __attribute__((warn_unused_result));

/* Create partitions ahead, drop expired ones, and publish the range of
 * event times they take in col->range_*. */
store_rc_t store_maintain_partitions(store_t *st) __attribute__((warn_unused_result));

/* Commit a group of jobs (in queue order) in one transaction where
 * possible, isolating events PostgreSQL refuses into dead_letters. Sets
 * each job's results. On an error nothing is acknowledged: the caller
 * retries the whole group. */
store_rc_t store_commit_group(store_t *st, job_t **jobs, size_t n)
	__attribute__((warn_unused_result));

/* The last error PostgreSQL or the connection reported. */
const char *store_last_error(const store_t *st);

#endif
