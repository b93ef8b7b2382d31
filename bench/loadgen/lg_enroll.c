// SPDX-License-Identifier: Apache-2.0
/* Enrollment and handshake storms on blocking threads (see lg_enroll.h). */
#include "lg_enroll.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "frame.h"
#include "lg_bconn.h"
#include "lg_gen.h"
#include "log.h"
#include "vtime.h"
#include "wire.h"

#define ENROLL_ATTEMPTS 5   /* per agent, for connection failures */
#define ENROLL_RETRY_MS 200 /* before the next attempt, jittered */
#define FAILURES_LOGGED 5   /* then only counted */
#define ANSWER_MAX_CHAIN 8u /* CAs kept from an EnrollResponse */

/* What the threads of one enrollment or storm share. */
typedef struct {
	const lg_run_t *run;
	const lg_enroll_opts_t *eo;
	const lg_storm_opts_t *so;
	lg_ident_t *out;
	char machine_base[24]; /* random per run */
	_Atomic uint64_t next;
	_Atomic uint64_t ok, failed, retries, renamed, logged;
} shared_t;

typedef struct {
	shared_t *sh;
	uint32_t slot;
	lg_hist_t lat;
} slot_t;

static void failure(shared_t *sh, const char *who, const char *why)
{
	if (atomic_fetch_add(&sh->logged, 1) < FAILURES_LOGGED)
		log_msg(LOG_LVL_WARN, who, "%s", why);
	else
		log_debug("%s: %s", who, why);
}

/* --- one enrollment ------------------------------------------------------------- */

/* DER of a CSR for key with subject CN=cn (the collector ignores it, but a
 * real agent sends one), or NULL. */
static uint8_t *make_csr(EVP_PKEY *key, const char *cn, int *len)
{
	uint8_t *der = NULL;
	X509_REQ *req = X509_REQ_new();
	if (!req || !X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, key))
		goto out;
	X509_NAME *name = X509_REQ_get_subject_name(req);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0) ||
	    !X509_REQ_sign(req, key, EVP_sha256()))
		goto out;
	*len = i2d_X509_REQ(req, &der);
	if (*len <= 0)
		der = NULL;
out:
	X509_REQ_free(req);
	return der;
}

static uint8_t *enroll_frame(const shared_t *sh, const char *host, uint32_t index,
			     const uint8_t *csr, int csr_len, size_t *len)
{
	char machine[64];
	snprintf(machine, sizeof(machine), "%s-%05u", sh->machine_base, index);
	Vigil__V1__EnrollRequest r = VIGIL__V1__ENROLL_REQUEST__INIT;
	r.token = (char *)sh->eo->token;
	r.csr_der.data = (uint8_t *)csr;
	r.csr_der.len = (size_t)csr_len;
	r.hostname = (char *)host;
	r.machine_id = machine;
	r.force = sh->eo->force;
	r.agent_version = "vigil-loadgen " VIGIL_VERSION;
	Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_ENROLL;
	m.enroll = &r;
	return wire_frame_agent(&m, FRAME_DEFAULT_MAX_BYTES, len);
}

/* The identity in an EnrollResponse (key is taken over on success).
 * Return 0 or -1 with err set. */
static int take_answer(const Vigil__V1__EnrollResponse *e, EVP_PKEY *key, lg_ident_t *id, char *err,
		       size_t errlen)
{
	const unsigned char *p = e->certificate_der.data;
	X509 *cert = d2i_X509(NULL, &p, (long)e->certificate_der.len);
	STACK_OF(X509) *chain = sk_X509_new_null();
	if (!cert || !chain || !e->agent_id || !e->agent_id[0] ||
	    X509_check_private_key(cert, key) != 1)
		goto bad;
	for (size_t i = 0; i < e->n_chain_der && i < ANSWER_MAX_CHAIN; i++) {
		p = e->chain_der[i].data;
		X509 *ca = d2i_X509(NULL, &p, (long)e->chain_der[i].len);
		if (!ca || !sk_X509_push(chain, ca)) {
			X509_free(ca);
			goto bad;
		}
	}
	id->name = strdup(e->agent_id);
	if (!id->name)
		goto bad;
	id->cert = cert;
	id->key = key;
	id->chain = chain;
	return 0;
bad:
	snprintf(err, errlen, "unusable EnrollResponse (certificate, chain or name)");
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
	return -1;
}

/* Write id's key (mode 0600) or certificate chain to path, through
 * path.tmp and a rename (no fsync: a benchmark's thousand nodes share one
 * disk here). */
static int write_atomic(const char *path, const lg_ident_t *id, bool key_file)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key_file ? 0600 : 0644);
	if (fd < 0)
		return -1;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -1;
	}
	int ok = 1;
	if (key_file) {
		ok = PEM_write_PrivateKey(f, id->key, NULL, NULL, 0, NULL, NULL);
	} else {
		ok = PEM_write_X509(f, id->cert);
		for (int i = 0; ok && i < sk_X509_num(id->chain); i++)
			ok = PEM_write_X509(f, sk_X509_value(id->chain, i));
	}
	if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
		unlink(tmp);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

static int write_identity(const char *dir, const lg_ident_t *id, char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.key", dir, id->name);
	if (write_atomic(path, id, true) == 0) {
		snprintf(path, sizeof(path), "%s/%s.crt", dir, id->name);
		if (write_atomic(path, id, false) == 0)
			return 0;
	}
	snprintf(err, errlen, "cannot write %.300s: %s", path, strerror(errno));
	return -1;
}

/* One exchange. Return 0 (id filled), -1 when it failed before the
 * request went out (try again), 1 after (the token may have been spent:
 * do not). */
static int enroll_attempt(shared_t *sh, uint32_t index, const uint8_t *frame, size_t len,
			  EVP_PKEY *key, lg_ident_t *id, char *err, size_t errlen)
{
	lg_bconn_t c;
	if (lg_bconn_open(&c, sh->run, index, NULL, sh->eo->timeout_ms, err, errlen) != 0)
		return -1;
	Vigil__V1__CollectorMessage *m = NULL;
	int rc = 1;
	if (lg_bconn_send(&c, frame, len, err, errlen) == 0 &&
	    (m = lg_bconn_recv(&c, err, errlen))) {
		if (m->msg_case == VIGIL__V1__COLLECTOR_MESSAGE__MSG_ENROLLED) {
			rc = take_answer(m->enrolled, key, id, err, errlen) == 0 ? 0 : 1;
		} else if (m->msg_case == VIGIL__V1__COLLECTOR_MESSAGE__MSG_ERROR) {
			snprintf(err, errlen, "refused: %s",
				 m->error->message ? m->error->message : "");
		} else {
			snprintf(err, errlen, "unexpected answer to EnrollRequest");
		}
	}
	wire_collector_free(m);
	lg_bconn_close(&c, rc == 0);
	return rc;
}

static void enroll_one(shared_t *sh, uint32_t index, lg_hist_t *lat)
{
	char host[96], err[512] = "out of memory or OpenSSL failure";
	snprintf(host, sizeof(host), "%s%05u", sh->run->prefix, index);
	int64_t t0 = vtime_mono_ns();
	EVP_PKEY *key = EVP_EC_gen("P-256");
	int csr_len = 0;
	uint8_t *csr = key ? make_csr(key, host, &csr_len) : NULL;
	size_t len = 0;
	uint8_t *frame = csr ? enroll_frame(sh, host, index, csr, csr_len, &len) : NULL;
	OPENSSL_free(csr);
	int rc = frame ? -1 : 1;
	for (int a = 0; frame && a < ENROLL_ATTEMPTS && rc < 0; a++) {
		if (a > 0) {
			atomic_fetch_add(&sh->retries, 1);
			struct timespec ts = {0, (ENROLL_RETRY_MS / 2 +
						  (long)(vtime_mono_ns() % ENROLL_RETRY_MS)) *
							 1000000L};
			nanosleep(&ts, NULL);
		}
		rc = enroll_attempt(sh, index, frame, len, key, &sh->out[index], err, sizeof(err));
	}
	free(frame);
	if (rc == 0 && sh->eo->out_dir &&
	    write_identity(sh->eo->out_dir, &sh->out[index], err, sizeof(err)) != 0)
		rc = 1;
	if (rc == 0) {
		lg_hist_add(lat, (vtime_mono_ns() - t0) / 1000);
		atomic_fetch_add(&sh->ok, 1);
		if (strcmp(sh->out[index].name, host) != 0)
			atomic_fetch_add(&sh->renamed, 1);
		return;
	}
	if (!sh->out[index].key)
		EVP_PKEY_free(key);
	lg_ident_clear(&sh->out[index]);
	atomic_fetch_add(&sh->failed, 1);
	failure(sh, host, err);
}

static void *enroll_thread(void *arg)
{
	slot_t *s = arg;
	shared_t *sh = s->sh;
	uint64_t i;
	while ((i = atomic_fetch_add(&sh->next, 1)) < sh->run->agents)
		enroll_one(sh, (uint32_t)i, &s->lat);
	ERR_clear_error();
	return NULL;
}

/* --- one handshake of the storm --------------------------------------------------- */

static void storm_one(shared_t *sh, uint32_t index, lg_hist_t *lat)
{
	const lg_ident_t *id = &sh->run->ids[index];
	char name[96], err[512] = "out of memory";
	if (id->name)
		snprintf(name, sizeof(name), "%s", id->name);
	else
		snprintf(name, sizeof(name), "%s%05u", sh->run->prefix, index);
	int64_t t0 = vtime_mono_ns();
	lg_bconn_t c;
	int rc = lg_bconn_open(&c, sh->run, index, id, sh->so->timeout_ms, err, sizeof(err));
	/* Without Hello, the client's handshake ends before the collector's
	 * (it has yet to read the client's Finished): wait for the collector
	 * to see the close too, so that no more than the storm's concurrency
	 * is ever open on its side. */
	if (rc == 0 && sh->so->no_hello)
		rc = lg_bconn_shutdown_wait(&c, err, sizeof(err));
	if (rc == 0 && !sh->so->no_hello) {
		size_t len = 0;
		uint8_t *hello = lg_gen_hello(name, index, &len);
		Vigil__V1__CollectorMessage *m = NULL;
		rc = -1;
		if (hello && lg_bconn_send(&c, hello, len, err, sizeof(err)) == 0 &&
		    (m = lg_bconn_recv(&c, err, sizeof(err)))) {
			if (m->msg_case == VIGIL__V1__COLLECTOR_MESSAGE__MSG_WELCOME)
				rc = 0;
			else if (m->msg_case == VIGIL__V1__COLLECTOR_MESSAGE__MSG_ERROR)
				snprintf(err, sizeof(err), "collector error: %s",
					 m->error->message ? m->error->message : "");
			else
				snprintf(err, sizeof(err), "no Welcome after Hello");
		}
		wire_collector_free(m);
		free(hello);
	}
	if (rc == 0) {
		lg_hist_add(lat, (vtime_mono_ns() - t0) / 1000);
		atomic_fetch_add(&sh->ok, 1);
	} else {
		atomic_fetch_add(&sh->failed, 1);
		failure(sh, name, err);
	}
	lg_bconn_close(&c, rc == 0);
}

static void *storm_thread(void *arg)
{
	slot_t *s = arg;
	shared_t *sh = s->sh;
	uint32_t agents = sh->run->agents, conc = sh->so->concurrency;
	/* This client's identities: slot, slot + conc, ... (below agents). */
	uint32_t mine = agents > s->slot ? (agents - s->slot + conc - 1) / conc : 0;
	uint64_t k = 0;
	while (atomic_fetch_add(&sh->next, 1) < sh->so->handshakes) {
		uint32_t index = mine ? s->slot + (uint32_t)(k % mine) * conc : s->slot % agents;
		storm_one(sh, index, &s->lat);
		k++;
	}
	ERR_clear_error();
	return NULL;
}

/* --- threads ------------------------------------------------------------------------ */

/* Run fn on n threads over sh; merge their histograms into lat. Return the
 * wall time in seconds, or -1 if no thread could start. */
static double run_threads(shared_t *sh, uint32_t n, void *(*fn)(void *), lg_hist_t *lat)
{
	slot_t *slots = calloc(n, sizeof(*slots));
	pthread_t *th = calloc(n, sizeof(*th));
	bool *started = calloc(n, sizeof(*started));
	double elapsed = -1;
	if (!slots || !th || !started)
		goto out;
	int64_t t0 = vtime_mono_ns();
	uint32_t running = 0;
	for (uint32_t i = 0; i < n; i++) {
		slots[i].sh = sh;
		slots[i].slot = i;
		started[i] = pthread_create(&th[i], NULL, fn, &slots[i]) == 0;
		running += started[i];
	}
	if (running < n)
		log_warn("%u of %u client threads could not start", n - running, n);
	for (uint32_t i = 0; i < n; i++) {
		if (!started[i])
			continue;
		pthread_join(th[i], NULL);
		lg_hist_merge(lat, &slots[i].lat);
	}
	if (running)
		elapsed = (double)(vtime_mono_ns() - t0) / 1e9;
out:
	free(slots);
	free(th);
	free(started);
	return elapsed;
}

int lg_enroll_all(const lg_run_t *run, const lg_enroll_opts_t *o, lg_ident_t *out,
		  lg_enroll_result_t *res)
{
	memset(res, 0, sizeof(*res));
	memset(out, 0, run->agents * sizeof(*out));
	shared_t sh = {.run = run, .eo = o, .out = out};
	unsigned char rnd[8];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	snprintf(sh.machine_base, sizeof(sh.machine_base), "lg%02x%02x%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	uint32_t n = o->concurrency < run->agents ? o->concurrency : run->agents;
	res->elapsed_s = run_threads(&sh, n, enroll_thread, &res->lat);
	res->enrolled = (uint32_t)atomic_load(&sh.ok);
	res->failed = run->agents - res->enrolled;
	res->retries = atomic_load(&sh.retries);
	res->renamed = (uint32_t)atomic_load(&sh.renamed);
	return res->elapsed_s >= 0 && res->failed == 0 ? 0 : -1;
}

int lg_storm_run(const lg_run_t *run, const lg_storm_opts_t *o, lg_storm_result_t *res)
{
	memset(res, 0, sizeof(*res));
	shared_t sh = {.run = run, .so = o};
	uint64_t n64 = o->concurrency < o->handshakes ? o->concurrency : o->handshakes;
	if (o->concurrency > run->agents)
		log_warn("--concurrency %u is above --agents %u: some identities are used by two "
			 "connections at once (the newer replaces the older)",
			 o->concurrency, run->agents);
	res->elapsed_s = run_threads(&sh, (uint32_t)n64, storm_thread, &res->lat);
	res->ok = atomic_load(&sh.ok);
	res->failed = atomic_load(&sh.failed);
	return res->elapsed_s >= 0 && res->failed == 0 && res->ok == o->handshakes ? 0 : -1;
}
