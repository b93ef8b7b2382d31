// SPDX-License-Identifier: Apache-2.0
/*
 * The enrollment service: one thread with its own PostgreSQL connection
 * that answers the agent port's EnrollRequest (a connection without a
 * client certificate, holding a join token and a CSR) and RenewRequest (a
 * mutual-TLS connection renewing its certificate). Ingest workers hand it
 * requests and get them back through each request's done callback, which
 * runs on the service thread.
 *
 * Before a request is queued, its source address pays one token of its
 * rate-limit bucket (enroll_rate_per_min, enroll_burst; an IPv4 address or
 * IPv6 /64), so guessing tokens costs the guesser time, not the database.
 * Every token problem (malformed, unknown, used up, expired, revoked, or
 * over the rate) gets the same answer (enrolldb.h's ENROLL_TOKEN_REFUSED_TEXT); only the
 * token's id is ever logged.
 */
#ifndef VIGIL_ENROLL_SERVICE_H
#define VIGIL_ENROLL_SERVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector.h"

typedef enum {
	ENROLL_OP_ENROLL,
	ENROLL_OP_RENEW,
} enroll_op_t;

typedef struct enroll_req enroll_req_t;

struct enroll_req {
	enroll_op_t op;
	char peer[64]; /* the connection's address:port, for the rate limit and logs */

	/* ENROLL input (copied from the message, bounded) */
	char token[128];
	char hostname[256];
	char machine_id[128];
	char agent_version[128];
	bool force;
	/* RENEW input: what the connection's certificate proved */
	char identity[256];
	char serial[132]; /* lowercase hex (TLS_SERIAL_HEX_MAX fits) */
	int64_t cert_not_after_ns;
	/* both */
	uint8_t *csr; /* DER, owned */
	size_t csr_len;
	atomic_bool cancelled; /* its connection closed: skip it if not started */

	/* results, set by the service */
	int error_code; /* 0, or a VIGIL__V1__ERROR_CODE__* to send */
	char message[256];
	char agent_id[256];
	uint8_t *cert; /* DER, owned */
	size_t cert_len;
	uint8_t **chain; /* DER each, owned: the issuing CA first */
	size_t *chain_len;
	size_t n_chain;
	int64_t not_after_ns;

	/* completion: called once, on the service thread; the callee owns req */
	void (*done)(enroll_req_t *req, void *arg);
	void *arg;
	enroll_req_t *next;
};

typedef struct enroll_service enroll_service_t;

/* A zeroed request, or NULL when out of memory. */
enroll_req_t *enroll_req_new(enroll_op_t op);
/* Free req and what it owns. Accepts NULL. */
void enroll_req_free(enroll_req_t *req);

/* The service of col's settings, or NULL: with *err set when the issuing CA
 * cannot be loaded (the collector must not start), with err "" when
 * enrollment is not configured (no agent_issuer_cert / agent_issuer_key). */
enroll_service_t *enroll_service_new(collector_t *col, char *err, size_t errlen);
/* Start its thread. Return 0 or -1. */
int enroll_service_start(enroll_service_t *svc) __attribute__((warn_unused_result));
/* Stop the thread; requests not yet answered are completed with an Error
 * (shutting down). Free everything. Accepts NULL. */
void enroll_service_free(enroll_service_t *svc);

/* Any thread: queue req. Return false when it is answered at once (over
 * its address's rate, or the queue is full): req->error_code and message
 * are set, done is not called and the caller still owns req. */
bool enroll_service_submit(enroll_service_t *svc, enroll_req_t *req);

/* Its counters are the collector's (counters_t: enrolled, renewed,
 * enroll_refused, enroll_rate_limited), shown by /metrics. */

#endif
