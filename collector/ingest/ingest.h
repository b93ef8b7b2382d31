// SPDX-License-Identifier: Apache-2.0
/*
 * Jobs between connections and the PostgreSQL writers. A connection (on a
 * worker thread) submits a job; the writer that owns the agent commits it
 * and hands it back to the connection's worker, which answers the agent.
 * Every agent maps to one writer, so its jobs are handled in order.
 * Queued bytes are counted so connections stop being read above the high
 * water mark and resume below the low one.
 */
#ifndef VIGIL_INGEST_H
#define VIGIL_INGEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector.h"
#include "ingest/rows.h"
#include "vigil/v1/protocol.pb-c.h"

struct conn;

#define HELLO_STRING_MAX 256

typedef enum {
	JOB_HELLO,  /* register the agent, learn its committed_seq */
	JOB_BATCH,  /* store a batch exactly once */
	JOB_ENROLL, /* an enrollment or renewal, with the enrollment service */
} job_kind_t;

typedef struct {
	uint32_t idx;
	char *reason;	  /* owned */
	uint8_t *payload; /* owned: the event, protobuf-encoded */
	size_t payload_len;
} dead_event_t;

typedef struct job {
	struct job *next;
	struct job *conn_next; /* its connection's jobs (worker thread only) */
	atomic_bool dropped;   /* its connection closed: not to be written */
	job_kind_t kind;
	struct conn *conn; /* holds a reference; only touched on its worker */
	int worker_idx;
	size_t bytes; /* counted against the queue limits */
	char agent_name[256];
	int32_t agent_id;	   /* BATCH input; HELLO output */
	struct enroll_req *enroll; /* ENROLL: the request (owned) */

	/* HELLO input (sanitized, capped strings) */
	struct {
		uint32_t protocol_version;
		char agent_version[HELLO_STRING_MAX + 1];
		char hostname[HELLO_STRING_MAX + 1];
		char boot_id[HELLO_STRING_MAX + 1];
		char kernel[HELLO_STRING_MAX + 1];
		char os[HELLO_STRING_MAX + 1];
	} hello;
	int64_t clock_skew_ms;
	char *hello_images; /* Hello.image_ids as a JSON array (owned), or NULL */

	/* BATCH input */
	uint64_t seq;
	rows_batch_t rows;
	uint8_t *raw; /* the Batch's protobuf bytes, for dead letters (owned) */
	size_t raw_len;
	dead_event_t *dead; /* events refused before the database (owned) */
	size_t n_dead;
	struct budget_span *spans; /* each event's bytes in raw (owned), or NULL */
	size_t n_spans;

	/* results, set by the writer */
	int status;		/* a JOB_ST_* */
	char *refused;		/* JOB_ST_REFUSED: why (owned) */
	uint64_t committed_seq; /* HELLO */
	char *subjects;		/* HELLO: the agent's known containers, JSON (owned) */
	char *known_images;	/* HELLO: of hello_images, those stored, JSON (owned) */
	bool replay;		/* BATCH: already stored, acked only */
	size_t dead_in_db;	/* BATCH: events the database refused */
} job_t;

/* job_t.status, set by the writer */
#define JOB_ST_DONE 0	    /* committed (or replayed) */
#define JOB_ST_ABANDONED -1 /* shutdown before the database answered */
#define JOB_ST_DROPPED -2   /* its connection closed first; nothing written */
#define JOB_ST_REFUSED -3   /* the database refused it whole: job_t.refused says why */

typedef struct ingest ingest_t;

/* Create the writers (not started). Return NULL on failure. */
ingest_t *ingest_new(collector_t *col, int n_writers);
/* Start the writer threads. Return 0 or -1. */
int ingest_start(ingest_t *in) __attribute__((warn_unused_result));
/* Queue job for the writer owning its agent (a Hello ahead of batches),
 * counting job->bytes. Takes ownership. */
void ingest_submit(ingest_t *in, job_t *job);
/* Count bytes as queued if they fit under queue_high_bytes, or if nothing
 * is queued (a frame larger than the mark still passes alone). Return
 * false if they do not fit (nothing is counted then). */
bool ingest_reserve(ingest_t *in, size_t bytes) __attribute__((warn_unused_result));
/* Uncount bytes counted by ingest_reserve. */
void ingest_release(ingest_t *in, size_t bytes);
/* Bytes of batch data queued or being written. */
size_t ingest_queued_bytes(const ingest_t *in);
/* Jobs queued or being written, all writers. */
size_t ingest_queued_jobs(const ingest_t *in);
/* Ask the writers to finish what is queued and stop; when abandon is
 * true they stop at once and hand queued jobs back with status -1. */
void ingest_stop(ingest_t *in, bool abandon);
/* Wait up to timeout_ms for the writer threads to stop. Return 0 if they
 * did, -1 if one is still blocked (in PostgreSQL). */
int ingest_join(ingest_t *in, int64_t timeout_ms);
/* Join the writer threads (if not done yet) and free everything. Accepts NULL. */
void ingest_free(ingest_t *in);

job_t *job_new(job_kind_t kind);
/* Take j out of the list at *head (linked by conn_next), if it is there. */
void job_unlink(job_t **head, job_t *j);
/* Free a job and everything it owns. Accepts NULL. */
void job_free(job_t *job);

#endif
