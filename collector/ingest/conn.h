// SPDX-License-Identifier: Apache-2.0
/*
 * One agent connection: TLS handshake, identity, framing, the
 * Hello/Welcome/Batch/Ack conversation, timeouts and backpressure. Lives on
 * one worker thread; every function here runs there.
 */
#ifndef VIGIL_CONN_H
#define VIGIL_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "collector.h"
#include "ingest/ingest.h"
#include "ingest/worker.h"

typedef struct conn conn_t;

typedef enum {
	CONN_ST_HANDSHAKE,     /* TLS handshake in progress */
	CONN_ST_WAIT_HELLO,    /* identity known, waiting for Hello */
	CONN_ST_HELLO_PENDING, /* Hello with the writer */
	CONN_ST_READY,	       /* Welcome sent; batches flow */
	CONN_ST_CLOSING,       /* leaving: flushing an Error, then freed */
} conn_state_t;

const char *conn_state_str(conn_state_t st);

/* Take ownership of socket fd and start the TLS handshake. Return NULL
 * (and close fd) on failure. The connection links itself into the
 * worker's list. */
conn_t *conn_new(worker_t *w, collector_t *col, int fd, const struct sockaddr *sa, socklen_t len,
		 uint64_t id);

uint64_t conn_id(const conn_t *c);
conn_t *conn_next(const conn_t *c);
bool conn_is_dead(const conn_t *c); /* closed and no job refers to it */

/* The worker's thread, as job (which refers to c) is queued: list it with
 * c's jobs, which are marked dropped when c closes. */
void conn_track_job(conn_t *c, job_t *job);
/* The writer finished job (which refers to c). Takes ownership of job.
 * IMPORTANT: may close c. */
void conn_job_done(conn_t *c, job_t *job);
/* Check timeouts and send heartbeats; now is monotonic ns. May close c. */
void conn_tick(conn_t *c, int64_t now);
/* The ingest queue has room again. May close c. */
void conn_resume(conn_t *c);
/* Close with an Error (code from vigil.v1.ErrorCode). */
void conn_kick(conn_t *c, int code, const char *why);
/* Stop reading; close once nothing is in flight. May close c. */
void conn_drain(conn_t *c);
/* Close at once (shutdown after the drain deadline). */
void conn_abort(conn_t *c);
/* Unlink and free a dead connection. */
void conn_free(conn_t *c);

#endif
