// SPDX-License-Identifier: Apache-2.0
/*
 * The revocation reader: one thread with its own PostgreSQL connection
 * that keeps the collector's revoked set (collector.h) equal to the
 * revocations table. It LISTENs on vigil_revocations (notified by the
 * table's trigger at each insert) and reads the whole table on each
 * notification and every 5 s, so a revocation reaches every collector
 * within seconds even when a notification is lost. While PostgreSQL cannot
 * be reached the last set read stays in force; the thread reconnects with
 * a backoff of at most 5 s.
 */
#ifndef VIGIL_ENROLL_REVOCATIONS_H
#define VIGIL_ENROLL_REVOCATIONS_H

#include <stddef.h>

#include "collector.h"

/* Re-read period of the whole table, the safety net of the notifications. */
#define REVOCATIONS_REREAD_MS 5000

typedef struct revocations revocations_t;

/* Start the reader for col (its settings' db), after col->kick is set so
 * that it can close revoked agents' connections. Wait up to a few seconds
 * for the first read, so that handshakes are checked against the database
 * from the start (if PostgreSQL does not answer in time, the thread goes on
 * trying and the revoked_agents file alone applies meanwhile). Return the
 * reader, or NULL with err set. */
revocations_t *revocations_start(collector_t *col, char *err, size_t errlen);

/* Stop the thread and free r (NULL is fine). The set last read stays in
 * col. */
void revocations_free(revocations_t *r);

#endif
