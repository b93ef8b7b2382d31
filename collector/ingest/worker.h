// SPDX-License-Identifier: Apache-2.0
/*
 * A worker: one thread with its own event_base serving the agent
 * connections the listener hands it. Other threads talk to a worker only
 * through the functions below, which queue a message and wake its loop.
 */
#ifndef VIGIL_WORKER_H
#define VIGIL_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "admit.h"
#include "collector.h"
#include "ingest/ingest.h"

typedef struct worker worker_t;
struct conn;

worker_t *worker_new(collector_t *col, int idx);
/* Start the worker thread. Return 0 or -1. */
int worker_start(worker_t *w) __attribute__((warn_unused_result));
/* Stop the loop, join the thread, close what is left and free. Accepts NULL. */
void worker_free(worker_t *w);

/* Any thread: serve the accepted socket fd (the worker owns it now). */
void worker_hand_fd(worker_t *w, int fd, const struct sockaddr *sa, socklen_t len);
/* Any thread: give back a job the writer finished (the worker owns it now). */
void worker_complete(worker_t *w, job_t *job);
/* Any thread: the queue went below its low mark; resume paused connections. */
void worker_wake(worker_t *w);
/* Any thread: close connection conn_id, if it is still here, with an Error. */
void worker_kick(worker_t *w, uint64_t conn_id, int error_code, const char *why);
/* Any thread: stop reading, close connections once their batches are acked. */
void worker_drain(worker_t *w);
/* Connections this worker still has (any thread). */
int worker_conn_count(worker_t *w);

/* For conn.c, on the worker's own thread. */
struct event_base *worker_base(worker_t *w);
int worker_index(const worker_t *w);
/* Free closed connections after the current loop pass. */
void worker_schedule_reap(worker_t *w);
struct conn **worker_conn_head(worker_t *w);
/* The worker's pending connections (worker thread only) and when it last
 * logged a refusal. */
admit_t *worker_pending(worker_t *w, int64_t **log_ns);
/* The unpacking arena of the worker's thread. */
struct wire_arena *worker_arena(worker_t *w);

#endif
