// SPDX-License-Identifier: Apache-2.0
/*
 * The enrollment service (see service.h): a queue, one thread and its own
 * PostgreSQL connection. Requests are answered in arrival order; each is
 * one short transaction (enrolldb.h) plus one signature (issuer.h), so one
 * thread keeps up with a fleet enrolling at once, and PostgreSQL, not the
 * agent port, is what a burst of enrollments waits for.
 *
 * The rate limit is taken at submit, on the worker's thread, before any
 * work: a token guess costs the guesser one bucket token and the collector
 * a table lookup. The queue is bounded; past it a request is refused at
 * once ("busy"), and the agent tries again later.
 */
#include "enroll/service.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "enroll/enrolldb.h"
#include "enroll/issuer.h"
#include "enroll/token.h"
#include "log.h"
#include "ratelimit.h"
#include "settings.h"
#include "vigil/v1/protocol.pb-c.h"
#include "vtime.h"

#define ENROLL_QUEUE_MAX 1024
#define DB_RETRY_MS 1000

struct enroll_service {
	collector_t *col;
	issuer_t *iss;
	char *conninfo;
	char *admin_cns;
	int64_t lifetime_ms;
	double rate_per_s, burst;

	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* guards the queue, stop and rate */
	pthread_cond_t cond;
	enroll_req_t *head, *tail;
	size_t queued;
	bool stop;
	rate_slot_t *rate;

	PGconn *pg; /* the thread's */
	int64_t pg_failed_ns;
};

enroll_req_t *enroll_req_new(enroll_op_t op)
{
	enroll_req_t *r = calloc(1, sizeof(*r));
	if (r)
		r->op = op;
	return r;
}

void enroll_req_free(enroll_req_t *r)
{
	if (!r)
		return;
	OPENSSL_cleanse(r->token, sizeof(r->token));
	free(r->csr);
	free(r->cert);
	for (size_t i = 0; i < r->n_chain; i++)
		free(r->chain[i]);
	free(r->chain);
	free(r->chain_len);
	free(r);
}

enroll_service_t *enroll_service_new(collector_t *col, char *err, size_t errlen)
{
	const settings_t *s = col->settings;
	err[0] = '\0';
	if (!issuer_configured(s))
		return NULL;
	enroll_service_t *svc = calloc(1, sizeof(*svc));
	if (!svc) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	svc->col = col;
	svc->lifetime_ms = s->agent_cert_lifetime_ms;
	svc->rate_per_s = (double)s->enroll_rate_per_min / 60.0;
	svc->burst = (double)s->enroll_burst;
	pthread_mutex_init(&svc->lock, NULL);
	pthread_cond_init(&svc->cond, NULL);
	svc->conninfo = strdup(s->db);
	svc->admin_cns = strdup(s->http_admin_cns);
	svc->rate = ratelimit_new();
	if (!svc->conninfo || !svc->admin_cns || !svc->rate) {
		snprintf(err, errlen, "out of memory");
		enroll_service_free(svc);
		return NULL;
	}
	if (!(svc->iss = issuer_load(s, err, errlen))) {
		enroll_service_free(svc);
		return NULL;
	}
	return svc;
}

/* The address part of "a.b.c.d:port" or "[v6]:port". */
static void peer_address(const char *peer, char *out, size_t outlen)
{
	const char *start = peer, *end = strrchr(peer, ':');
	if (peer[0] == '[') {
		start = peer + 1;
		end = strchr(start, ']');
	}
	size_t n = end && end > start ? (size_t)(end - start) : strlen(start);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, start, n);
	out[n] = '\0';
}

bool enroll_service_submit(enroll_service_t *svc, enroll_req_t *req)
{
	char addr[64], key[RATELIMIT_KEY_LEN];
	peer_address(req->peer, addr, sizeof(addr));
	ratelimit_key(addr, key);
	int code = req->op == ENROLL_OP_ENROLL ? VIGIL__V1__ERROR_CODE__ERROR_CODE_ENROLL_REFUSED
					       : VIGIL__V1__ERROR_CODE__ERROR_CODE_RENEW_REFUSED;
	pthread_mutex_lock(&svc->lock);
	bool limited =
		req->op == ENROLL_OP_ENROLL &&
		!ratelimit_take_key(svc->rate, key, svc->rate_per_s, svc->burst, vtime_mono_ns());
	bool full = svc->queued >= ENROLL_QUEUE_MAX || svc->stop;
	if (!limited && !full) {
		req->next = NULL;
		if (svc->tail)
			svc->tail->next = req;
		else
			svc->head = req;
		svc->tail = req;
		svc->queued++;
		pthread_cond_signal(&svc->cond);
	}
	pthread_mutex_unlock(&svc->lock);
	if (limited) {
		atomic_fetch_add(&svc->col->counters.enroll_rate_limited, 1);
		atomic_fetch_add(&svc->col->counters.enroll_refused, 1);
		req->error_code = code;
		snprintf(req->message, sizeof(req->message), "%s", ENROLL_TOKEN_REFUSED_TEXT);
		return false;
	}
	if (full) {
		atomic_fetch_add(&svc->col->counters.enroll_refused, 1);
		req->error_code = code;
		snprintf(req->message, sizeof(req->message),
			 "%s refused: the collector is busy; try again later",
			 req->op == ENROLL_OP_ENROLL ? "enrollment" : "renewal");
		return false;
	}
	return true;
}

/* The thread's connection, made as needed; NULL while PostgreSQL is away
 * (tried at most once a second). */
static PGconn *database(enroll_service_t *svc)
{
	if (svc->pg)
		return svc->pg;
	int64_t now = vtime_mono_ns();
	if (svc->pg_failed_ns && now - svc->pg_failed_ns < DB_RETRY_MS * INT64_C(1000000))
		return NULL;
	char err[256];
	if (!(svc->pg = enrolldb_connect(svc->conninfo, "enrollment", err, sizeof(err)))) {
		log_warn("enrollment: cannot reach PostgreSQL: %s", err);
		svc->pg_failed_ns = now;
		return NULL;
	}
	svc->pg_failed_ns = 0;
	return svc->pg;
}

/* Copy the issued certificate c into req's results (its DER is req's now). */
static bool take_cert(enroll_req_t *req, issuer_cert_t *c)
{
	req->cert = c->cert_der;
	req->cert_len = c->cert_len;
	c->cert_der = NULL;
	req->not_after_ns = c->not_after * INT64_C(1000000000);
	req->chain = calloc(c->n_chain ? c->n_chain : 1, sizeof(*req->chain));
	req->chain_len = calloc(c->n_chain ? c->n_chain : 1, sizeof(*req->chain_len));
	if (!req->chain || !req->chain_len)
		return false;
	for (size_t i = 0; i < c->n_chain; i++) {
		if (!(req->chain[i] = malloc(c->chain_len[i])))
			return false;
		memcpy(req->chain[i], c->chain_der[i], c->chain_len[i]);
		req->chain_len[i] = c->chain_len[i];
		req->n_chain = i + 1;
	}
	return true;
}

static void refuse(enroll_req_t *req, const char *why)
{
	req->error_code = req->op == ENROLL_OP_ENROLL
				  ? VIGIL__V1__ERROR_CODE__ERROR_CODE_ENROLL_REFUSED
				  : VIGIL__V1__ERROR_CODE__ERROR_CODE_RENEW_REFUSED;
	snprintf(req->message, sizeof(req->message), "%s", why);
}

/* After the database answered: log, count, and on a database error drop
 * the connection (made again for the next request). */
static void settle(enroll_service_t *svc, enroll_req_t *req, enroll_result_t rc,
		   const char *log_text, const char *token_id)
{
	static log_limit_t refusals = LOG_LIMIT_INIT(50, 10);
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "[%s enroll]", req->peer);
	if (rc == ENROLL_OK) {
		if (req->op == ENROLL_OP_ENROLL) {
			atomic_fetch_add(&svc->col->counters.enrolled, 1);
			log_msg(LOG_LVL_INFO, prefix, "enrolled as %s with token %s", req->agent_id,
				token_id);
		} else {
			atomic_fetch_add(&svc->col->counters.renewed, 1);
			log_msg(LOG_LVL_INFO, prefix, "renewed the certificate of %s",
				req->identity);
		}
		return;
	}
	atomic_fetch_add(&svc->col->counters.enroll_refused, 1);
	log_limited(&refusals, LOG_LVL_WARN, prefix, "%s refused: %s",
		    req->op == ENROLL_OP_ENROLL ? "enrollment" : "renewal", log_text);
	if (rc == ENROLL_DB_ERROR) {
		enrolldb_disconnect(svc->pg);
		svc->pg = NULL;
	}
}

static void serve_enroll(enroll_service_t *svc, enroll_req_t *req, PGconn *pg, EVP_PKEY *pub)
{
	enroll_input_t in = {
		.token = req->token,
		.token_len = strnlen(req->token, sizeof(req->token)),
		.hostname = req->hostname,
		.hostname_len = strlen(req->hostname),
		.machine_id = req->machine_id,
		.force = req->force,
		.pub = pub,
		.lifetime_ms = svc->lifetime_ms,
		.admin_cns = svc->admin_cns,
	};
	enroll_output_t out;
	memset(&out, 0, sizeof(out));
	enroll_result_t rc = enrolldb_enroll(pg, svc->iss, &in, &out);
	if (rc == ENROLL_OK) {
		snprintf(req->agent_id, sizeof(req->agent_id), "%s", out.identity);
		if (!take_cert(req, &out.cert))
			refuse(req, "out of memory");
	} else {
		refuse(req, out.error);
	}
	char id[TOKEN_ID_LEN + 1];
	snprintf(id, sizeof(id), "%s", out.token_id[0] ? out.token_id : "(malformed)");
	settle(svc, req, req->error_code && rc == ENROLL_OK ? ENROLL_ISSUE_FAILED : rc, out.log,
	       id);
	enroll_output_clear(&out);
}

static void serve_renew(enroll_service_t *svc, enroll_req_t *req, PGconn *pg, EVP_PKEY *pub)
{
	renew_output_t out;
	memset(&out, 0, sizeof(out));
	enroll_result_t rc = enrolldb_renew(pg, svc->iss, req->identity, req->serial, pub,
					    svc->lifetime_ms, &out);
	if (rc == ENROLL_OK) {
		snprintf(req->agent_id, sizeof(req->agent_id), "%s", req->identity);
		if (!take_cert(req, &out.cert))
			refuse(req, "out of memory");
	} else {
		refuse(req, out.error);
	}
	settle(svc, req, rc, out.log, "");
	renew_output_clear(&out);
}

static void serve(enroll_service_t *svc, enroll_req_t *req)
{
	char why[200];
	EVP_PKEY *pub = NULL;
	if (req->op == ENROLL_OP_RENEW &&
	    (collector_is_revoked(svc->col, req->identity) ||
	     (req->serial[0] && collector_is_revoked_serial(svc->col, req->serial)))) {
		refuse(req, "renewal refused: this identity or certificate is revoked");
		settle(svc, req, ENROLL_REVOKED, "revoked (in memory)", "");
		return;
	}
	if (req->op == ENROLL_OP_RENEW && req->cert_not_after_ns &&
	    vtime_now_ns() >= req->cert_not_after_ns) {
		refuse(req, "renewal refused: the certificate has expired; enroll again");
		settle(svc, req, ENROLL_EXPIRED, "the connection's certificate expired", "");
		return;
	}
	if (issuer_check_csr(req->csr, req->csr_len, &pub, why, sizeof(why)) != 0) {
		char text[256];
		snprintf(text, sizeof(text), "%s refused: CSR: %s",
			 req->op == ENROLL_OP_ENROLL ? "enrollment" : "renewal", why);
		refuse(req, text);
		settle(svc, req, ENROLL_BAD_REQUEST, text, "");
		return;
	}
	PGconn *pg = database(svc);
	if (!pg) {
		refuse(req,
		       req->op == ENROLL_OP_ENROLL
			       ? "enrollment unavailable: the database is unreachable; try again"
			       : "renewal unavailable: the database is unreachable; try again");
		atomic_fetch_add(&svc->col->counters.enroll_refused, 1);
	} else if (req->op == ENROLL_OP_ENROLL) {
		serve_enroll(svc, req, pg, pub);
	} else {
		serve_renew(svc, req, pg, pub);
	}
	EVP_PKEY_free(pub);
}

static void *service_main(void *arg)
{
	enroll_service_t *svc = arg;
	pthread_mutex_lock(&svc->lock);
	for (;;) {
		while (!svc->head && !svc->stop)
			pthread_cond_wait(&svc->cond, &svc->lock);
		enroll_req_t *req = svc->head;
		if (!req)
			break; /* stopped, nothing left */
		svc->head = req->next;
		if (!svc->head)
			svc->tail = NULL;
		svc->queued--;
		bool stopping = svc->stop;
		pthread_mutex_unlock(&svc->lock);
		if (stopping)
			refuse(req, "the collector is shutting down; try again");
		else if (atomic_load(&req->cancelled))
			refuse(req, "connection closed");
		else
			serve(svc, req);
		req->done(req, req->arg);
		pthread_mutex_lock(&svc->lock);
	}
	pthread_mutex_unlock(&svc->lock);
	return NULL;
}

int enroll_service_start(enroll_service_t *svc)
{
	if (pthread_create(&svc->thread, NULL, service_main, svc) != 0)
		return -1;
	svc->started = true;
	return 0;
}

void enroll_service_free(enroll_service_t *svc)
{
	if (!svc)
		return;
	if (svc->started) {
		pthread_mutex_lock(&svc->lock);
		svc->stop = true;
		pthread_cond_signal(&svc->cond);
		pthread_mutex_unlock(&svc->lock);
		pthread_join(svc->thread, NULL);
	}
	enrolldb_disconnect(svc->pg);
	issuer_free(svc->iss);
	free(svc->rate);
	free(svc->conninfo);
	free(svc->admin_cns);
	pthread_cond_destroy(&svc->cond);
	pthread_mutex_destroy(&svc->lock);
	free(svc);
}
