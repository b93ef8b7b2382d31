// SPDX-License-Identifier: Apache-2.0
/*
 * Private to conn.c and conn_admit.c: the body of an agent connection and
 * what the two files share. Other files see conn.h.
 */
#ifndef VIGIL_INGEST_CONN_INT_H
#define VIGIL_INGEST_CONN_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "admit.h"
#include "ingest/batchjob.h"
#include "ingest/conn.h"
#include "log.h"
#include "tls.h"

struct conn {
	conn_t *next, *prev; /* the worker's list */
	worker_t *w;
	collector_t *col;
	uint64_t id;
	conn_state_t state;
	struct bufferevent *bev;
	int refs;	       /* jobs that point here */
	char peer[64];	       /* address:port */
	char prefix[64 + 160]; /* "[peer agent]" for logs */
	char agent[256];       /* identity from the certificate */
	bool registered;
	int32_t agent_id;
	uint64_t last_seq;	/* highest batch seq on this connection */
	uint64_t committed_seq; /* the agent's, from Welcome, raised by each ack */
	uint64_t refused_seq;	/* the batch an ERROR_CODE_BATCH_REFUSED names */
	int inflight;		/* batches with the writer */
	bool hello_pending;
	bool paused_inflight;
	bool paused_queue;
	bool draining;
	int64_t created_ns;
	int64_t ready_ns;   /* handshake done */
	int64_t last_rx_ns; /* last whole frame */
	int64_t last_tx_ns;
	int64_t frame_start_ns; /* first byte of an unfinished frame, or 0 */
	int64_t closing_ns;
	job_t *jobs;			 /* its jobs with the writer (job_t.conn_next) */
	size_t reserved;		 /* queue bytes held for the frame being read */
	budget_scan_t scan;		 /* of the frame being handled */
	rules_subjects_t *subjects;	 /* its containers, for rule exceptions */
	admit_entry_t pend;		 /* in its worker's pending list until Hello */
	bool established;		 /* past Hello: counted in col->n_established */
	int64_t cert_not_after_ns;	 /* the agent certificate's end (Unix ns), or 0 */
	uint64_t tls_gen_at_accept;	 /* col->tls_generation when its SSL was made */
	uint64_t tls_generation;	 /* the collector's TLS context it was verified with */
	char serial[TLS_SERIAL_HEX_MAX]; /* its certificate's serial, lowercase hex */
	bool enrolling;			 /* no client certificate: may only enroll */
	bool enroll_pending;		 /* an enrollment or renewal with the service */
};

/* Leave: log why (once), send an Error if code != 0 and TLS is up, then
 * close once it is flushed (conn.c). */
void conn_close(conn_t *c, log_level_t lvl, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Shared with conn_enroll.c (conn.c): send m, close with a protocol
 * error, stop reading. */
void conn_send(conn_t *c, const Vigil__V1__CollectorMessage *m);
void conn_protocol_error(conn_t *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void conn_pause_reading(conn_t *c);

/* conn_enroll.c: c finished its handshake without a client certificate
 * and may enroll; the two requests; the service's answer (a JOB_ENROLL). */
void conn_enroll_begin(conn_t *c);
void conn_on_enroll(conn_t *c, const Vigil__V1__EnrollRequest *m);
void conn_on_renew(conn_t *c, const Vigil__V1__RenewRequest *m);
void conn_enroll_done(conn_t *c, job_t *j);

/* conn_admit.c: list c as pending on its worker; false if it is to be
 * closed at once (its address has its share, or every pending connection
 * is making progress). */
bool conn_admission(conn_t *c, const struct sockaddr *sa, socklen_t len);
/* c is no longer pending (it sent Hello, or it is closing). */
void pending_leave(conn_t *c);

#endif
