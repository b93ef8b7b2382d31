// SPDX-License-Identifier: Apache-2.0
/*
 * The trigram indexes of argv= searches (schema/0012_argv_index.sql).
 *
 * A pg_trgm GIN index on every events partition would make each insert
 * several times as costly, so only the partitions of days that have ended
 * get one: a thread with a connection of its own builds them with CREATE
 * INDEX CONCURRENTLY, newest day first, one at a time, outside every
 * writer's transaction, and without holding up start-up. It catches up on
 * days that ended while the collector was down, replaces a build left
 * invalid (cancelled, or the collector stopped), retries a day that failed
 * later on, and leaves alone the oldest day, soon dropped (retention_days).
 * The current day's partition, which takes the inserts, has none: argv=
 * reads it through.
 *
 * Several collectors may share the database: one of them builds (a session
 * advisory lock), the others wait.
 */
#ifndef VIGIL_ARGVINDEX_H
#define VIGIL_ARGVINDEX_H

#include "collector.h"

typedef struct argvindex argvindex_t;

/* Start the thread; it connects, and reconnects, by itself. Return NULL
 * after logging why. */
argvindex_t *argvindex_start(collector_t *col);

/* Tell the thread to stop, without waiting for it: a build under way is
 * cancelled on the server. Accepts NULL. */
void argvindex_stop(argvindex_t *x);

/* Stop the thread, wait for it and free. Accepts NULL. */
void argvindex_free(argvindex_t *x);

#endif
