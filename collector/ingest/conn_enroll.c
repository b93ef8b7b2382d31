// SPDX-License-Identifier: Apache-2.0
/*
 * Enrollment and renewal on the agent port (see conn_int.h and
 * enroll/service.h).
 *
 * A connection that finished its handshake without a client certificate
 * (the port asks for one but, when the collector holds an issuing CA, does
 * not require it) is an enrolling one: it stays pending, under the same
 * budget and deadline as a connection before its Hello, and may send one
 * frame, an EnrollRequest. Its answer is an EnrollResponse or an Error,
 * and then the connection is closed. Anything else is a protocol error.
 *
 * A connection past its Welcome may send RenewRequest, one at a time; the
 * answer is a RenewResponse or an Error(ERROR_CODE_RENEW_REFUSED), and
 * the connection stays open either way.
 *
 * The request travels as a job (JOB_ENROLL): the service's done callback,
 * on the service's thread, hands it back to the connection's worker like a
 * writer's job, so everything below runs on the worker's thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enroll/service.h"
#include "ingest/conn_int.h"
#include "ingest/worker.h"
#include "log.h"
#include "vtime.h"

/* A CSR is a public key and a name: far below this. */
#define ENROLL_CSR_MAX 16384

/* Copy a protobuf string into dst, or fail if it does not fit. */
static bool copy_bounded(char *dst, size_t dstlen, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= dstlen)
		return false;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
	return true;
}

static void service_done(enroll_req_t *req, void *arg)
{
	job_t *j = arg;
	(void)req;
	j->status = JOB_ST_DONE;
	worker_complete(j->conn->col->workers[j->worker_idx], j);
}

/* Hand req to the service as c's job; false (req still the caller's) when
 * it was answered at once. */
static bool submit(conn_t *c, enroll_req_t *req)
{
	job_t *j = job_new(JOB_ENROLL);
	if (!j) {
		snprintf(req->message, sizeof(req->message), "out of memory");
		return false;
	}
	snprintf(req->peer, sizeof(req->peer), "%s", c->peer);
	snprintf(j->agent_name, sizeof(j->agent_name), "%s", c->agent);
	j->conn = c;
	j->worker_idx = worker_index(c->w);
	j->enroll = req;
	req->done = service_done;
	req->arg = j;
	if (!enroll_service_submit(c->col->enroll, req)) {
		j->enroll = NULL;
		job_free(j);
		return false;
	}
	c->refs++;
	c->enroll_pending = true;
	conn_track_job(c, j);
	return true;
}

void conn_enroll_begin(conn_t *c)
{
	snprintf(c->agent, sizeof(c->agent), "(enrolling)");
	snprintf(c->prefix, sizeof(c->prefix), "[%s enrolling]", c->peer);
	c->enrolling = true;
}

void conn_on_enroll(conn_t *c, const Vigil__V1__EnrollRequest *m)
{
	if (!c->enrolling || c->enroll_pending) {
		conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE,
				    c->enrolling ? "second EnrollRequest"
						 : "EnrollRequest on an authenticated connection");
		return;
	}
	enroll_req_t *req = enroll_req_new(ENROLL_OP_ENROLL);
	if (!req) {
		conn_close(c, LOG_LVL_ERROR, 0, "out of memory");
		return;
	}
	const char *bad = NULL;
	/* A token too long to be one is left empty: the service refuses it
	 * with the same words as any other token it does not accept. */
	if (!copy_bounded(req->token, sizeof(req->token), m->token))
		req->token[0] = '\0';
	if (!copy_bounded(req->hostname, sizeof(req->hostname), m->hostname))
		bad = "enrollment refused: host name longer than 255 bytes";
	else if (!copy_bounded(req->machine_id, sizeof(req->machine_id), m->machine_id))
		bad = "enrollment refused: machine id longer than 127 bytes";
	else if (!copy_bounded(req->agent_version, sizeof(req->agent_version), m->agent_version))
		bad = "enrollment refused: agent version longer than 127 bytes";
	else if (m->csr_der.len == 0 || m->csr_der.len > ENROLL_CSR_MAX)
		bad = "enrollment refused: the CSR is empty or larger than 16384 bytes";
	else if (!(req->csr = malloc(m->csr_der.len)))
		bad = "out of memory";
	if (bad) {
		enroll_req_free(req);
		conn_close(c, LOG_LVL_WARN, VIGIL__V1__ERROR_CODE__ERROR_CODE_ENROLL_REFUSED, "%s",
			   bad);
		return;
	}
	memcpy(req->csr, m->csr_der.data, m->csr_der.len);
	req->csr_len = m->csr_der.len;
	req->force = m->force;
	if (!submit(c, req)) {
		conn_close(c, LOG_LVL_INFO, VIGIL__V1__ERROR_CODE__ERROR_CODE_ENROLL_REFUSED, "%s",
			   req->message);
		enroll_req_free(req);
		return;
	}
	conn_pause_reading(c); /* one request per connection */
}

/* Send an Error without closing (a refused renewal). */
static void send_error(conn_t *c, int code, const char *why)
{
	Vigil__V1__Error err = VIGIL__V1__ERROR__INIT;
	err.code = (Vigil__V1__ErrorCode)code;
	err.message = (char *)why;
	Vigil__V1__CollectorMessage m = VIGIL__V1__COLLECTOR_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__COLLECTOR_MESSAGE__MSG_ERROR;
	m.error = &err;
	conn_send(c, &m);
}

void conn_on_renew(conn_t *c, const Vigil__V1__RenewRequest *m)
{
	int refused = VIGIL__V1__ERROR_CODE__ERROR_CODE_RENEW_REFUSED;
	if (c->enroll_pending) {
		send_error(c, refused, "a renewal of this connection is already under way");
		return;
	}
	if (m->csr_der.len == 0 || m->csr_der.len > ENROLL_CSR_MAX) {
		send_error(c, refused,
			   "renewal refused: the CSR is empty or larger than 16384 bytes");
		return;
	}
	enroll_req_t *req = enroll_req_new(ENROLL_OP_RENEW);
	if (!req || !(req->csr = malloc(m->csr_der.len))) {
		enroll_req_free(req);
		conn_close(c, LOG_LVL_ERROR, 0, "out of memory");
		return;
	}
	memcpy(req->csr, m->csr_der.data, m->csr_der.len);
	req->csr_len = m->csr_der.len;
	snprintf(req->identity, sizeof(req->identity), "%s", c->agent);
	snprintf(req->serial, sizeof(req->serial), "%s", c->serial);
	req->cert_not_after_ns = c->cert_not_after_ns;
	if (!submit(c, req)) {
		send_error(c, refused, req->message);
		enroll_req_free(req);
	}
}

/* Point r's certificate fields, which EnrollResponse and RenewResponse name
 * alike, at cert, chain and req's notAfter. */
#define SET_CERT_FIELDS(r, cert, chain, req)            \
	do {                                            \
		(r).certificate_der = (cert);           \
		(r).n_chain_der = (req)->n_chain;       \
		(r).chain_der = (chain);                \
		(r).not_after_ns = (req)->not_after_ns; \
	} while (0)

/* Send req's certificate and chain, as protobuf byte fields over req's
 * buffers (nothing copied): an EnrollResponse for an enrollment, a
 * RenewResponse for a renewal. Return false, nothing sent, if out of
 * memory. */
static bool send_certificate(conn_t *c, const enroll_req_t *req)
{
	ProtobufCBinaryData *chain = calloc(req->n_chain ? req->n_chain : 1, sizeof(*chain));
	if (!chain)
		return false;
	for (size_t i = 0; i < req->n_chain; i++) {
		chain[i].data = req->chain[i];
		chain[i].len = req->chain_len[i];
	}
	ProtobufCBinaryData cert = {.len = req->cert_len, .data = req->cert};
	Vigil__V1__EnrollResponse enrolled = VIGIL__V1__ENROLL_RESPONSE__INIT;
	Vigil__V1__RenewResponse renewed = VIGIL__V1__RENEW_RESPONSE__INIT;
	Vigil__V1__CollectorMessage m = VIGIL__V1__COLLECTOR_MESSAGE__INIT;
	if (req->op == ENROLL_OP_ENROLL) {
		enrolled.agent_id = (char *)req->agent_id;
		SET_CERT_FIELDS(enrolled, cert, chain, req);
		m.msg_case = VIGIL__V1__COLLECTOR_MESSAGE__MSG_ENROLLED;
		m.enrolled = &enrolled;
	} else {
		SET_CERT_FIELDS(renewed, cert, chain, req);
		m.msg_case = VIGIL__V1__COLLECTOR_MESSAGE__MSG_RENEWED;
		m.renewed = &renewed;
	}
	conn_send(c, &m);
	free(chain);
	return true;
}

#undef SET_CERT_FIELDS

static void answer_enroll(conn_t *c, const enroll_req_t *req)
{
	if (req->error_code || !send_certificate(c, req)) {
		conn_close(c, LOG_LVL_WARN,
			   req->error_code ? req->error_code
					   : VIGIL__V1__ERROR_CODE__ERROR_CODE_ENROLL_REFUSED,
			   "%s", req->error_code ? req->message : "out of memory");
		return;
	}
	conn_close(c, LOG_LVL_INFO, 0, "enrolled as %s", req->agent_id);
}

static void answer_renew(conn_t *c, const enroll_req_t *req)
{
	if (req->error_code || !send_certificate(c, req)) {
		send_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_RENEW_REFUSED,
			   req->error_code ? req->message : "out of memory");
		log_msg(LOG_LVL_WARN, c->prefix, "renewal refused: %s",
			req->error_code ? req->message : "out of memory");
		return;
	}
	log_msg(LOG_LVL_INFO, c->prefix, "certificate renewed");
}

void conn_enroll_done(conn_t *c, job_t *j)
{
	c->enroll_pending = false;
	if (c->state == CONN_ST_CLOSING) {
		job_free(j);
		if (conn_is_dead(c))
			worker_schedule_reap(c->w);
		return;
	}
	if (j->enroll->op == ENROLL_OP_ENROLL)
		answer_enroll(c, j->enroll);
	else
		answer_renew(c, j->enroll);
	job_free(j);
}
