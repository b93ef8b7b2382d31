// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTPS server (see http.h): evhttp over bufferevent_openssl on its own
 * thread. This file holds the server's life cycle, its TLS context and the
 * connections: a deadline per connection (TLS handshake plus each
 * request's head and body, so a client dribbling bytes is closed), the
 * header and body limits (413) and malformed or ambiguous heads (400, see
 * "request heads"). The rest of the
 * server is beside it (http_int.h): replies and the sign-in page
 * (reply.c), dispatch and the rate limit (dispatch.c),
 * authentication and sessions (session.c), and the status page's files
 * (files.c). Handlers live in api.c; database work runs on the apidb pool
 * and comes back to this loop. The only file of the server that touches
 * OpenSSL's SSL objects.
 */
#include "http/http.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "admit.h"
#include "http/http_int.h"
#include "log.h"
#include "tls.h"
#include "vtime.h"

#define SAMPLE_INTERVAL_S 10
/* After a 413 or a 400 for the head: how long, and how many bytes, the rest of the client's
 * request is read and discarded before the connection is closed. */
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (1024 * 1024)

/* Per TLS connection; freed with its SSL object (ex_data free hook). */
typedef struct hconn {
	http_t *h;
	struct bufferevent *bev;
	struct event *deadline;
	/* The request head being read (see "request heads"). */
	api_head_t head;
	bool head_done;	      /* its blank line was seen: a body follows */
	bool head_over;	      /* refused: too long (413) or malformed (400, head_bad) */
	bool body_over;	      /* the body it declares is above http_max_body_bytes */
	const char *head_bad; /* why the head was refused with 400 (static), or NULL */
	bool busy;	/* a request is with us, from dispatch_request until its reply is out */
	bool refusing;	/* writing the refusal: the callbacks are ours (evhttp's saved here) */
	bool lingering; /* the refusal is out: reading and discarding until close */
	size_t linger_left;
	bufferevent_data_cb ev_read, ev_write;
	bufferevent_event_cb ev_event;
	void *ev_arg;
	bool admitted;	    /* the admission check has run (see "admission") */
	bool established;   /* it made its first request: counted in h->n_established */
	admit_entry_t pend; /* listed in h->pending until its first request */
} hconn_t;

static int ex_index = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

/* ---- TLS ------------------------------------------------------------------------- */

static SSL_CTX *build_ctx(const settings_t *s, char *err, size_t errlen)
{
	const char *cert = s->http_tls_cert[0] ? s->http_tls_cert : s->tls_cert;
	const char *key = s->http_tls_key[0] ? s->http_tls_key : s->tls_key;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		goto fail;
	if (tls_set_min_version(ctx, s->tls_min_version, err, errlen) != 0)
		goto fail_msg;
	/* No session tickets or cache: a resumed connection would skip the
	 * certificate checks of a full handshake. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "HTTPS certificate/key %s / %s unusable", cert, key);
		goto fail_msg;
	}
	if (s->http_operator_ca[0]) {
		if (SSL_CTX_load_verify_locations(ctx, s->http_operator_ca, NULL) != 1) {
			snprintf(err, errlen, "cannot load http_operator_ca %s",
				 s->http_operator_ca);
			goto fail_msg;
		}
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(s->http_operator_ca);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
		/* A certificate is optional (tokens work too); one that is
		 * presented must chain to the operator CA. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_client_auth);
		SSL_CTX_set_verify_depth(ctx, 4);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	static const unsigned char sid[] = "vigil-api";
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	ERR_clear_error();
	return ctx;
fail:
	snprintf(err, errlen, "cannot create the HTTPS TLS context");
fail_msg:
	tls_log_errors("[https]", "TLS");
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *current_ctx(http_t *h)
{
	pthread_mutex_lock(&h->tls_lock);
	SSL_CTX *c = h->ctx;
	SSL_CTX_up_ref(c);
	pthread_mutex_unlock(&h->tls_lock);
	return c;
}

void http_reload(http_t *h)
{
	if (!h)
		return;
	char err[256];
	SSL_CTX *ctx = build_ctx(h->col->settings, err, sizeof(err));
	if (!ctx) {
		log_error("reload: HTTPS: %s; keeping the previous certificates", err);
		return;
	}
	pthread_mutex_lock(&h->tls_lock);
	SSL_CTX *old = h->ctx;
	h->ctx = ctx;
	pthread_mutex_unlock(&h->tls_lock);
	SSL_CTX_free(old);
}

/* ---- connections -------------------------------------------------------------------- */

static void hconn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			  void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	hconn_t *c = ptr;
	if (!c)
		return;
	if (c->deadline)
		event_free(c->deadline);
	admit_remove(&c->h->pending, &c->pend);
	c->h->n_conns--;
	if (c->established)
		c->h->n_established--;
	free(c);
}

static void ex_init(void)
{
	ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, hconn_free_cb);
}

static void arm_deadline(hconn_t *c, int64_t ms)
{
	if (!c->deadline)
		return;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	event_add(c->deadline, &tv);
}

static void refuse_start(hconn_t *c);
static void refuse_end(hconn_t *c);
static bool admission(hconn_t *c);

/* The connection took too long (handshake, or the head and body of a
 * request), is over the limit, or has been refused (413 or 400, written
 * and lingered on): close it through evhttp's own path. Or it has a
 * request head refused and no answer in flight: start refusing it. */
static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	hconn_t *c = arg;
	bufferevent_event_cb ecb = NULL;
	bufferevent_getcb(c->bev, NULL, NULL, &ecb, NULL);
	if (!ecb)
		return; /* evhttp freed the bufferevent; its finalizer frees c */
	if (!c->admitted && admission(c))
		return;
	if (c->head_over && !c->busy && !c->refusing) {
		refuse_start(c);
		return;
	}
	if (c->refusing)
		refuse_end(c);
	bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
}

/* ---- request heads ---------------------------------------------------------------------------
 *
 * evhttp 2.1 answers a request line or headers above its limit with a 400
 * of its own (it reports DATA_TOO_LONG as an invalid header). To answer
 * 413, with our headers, and to bound what is buffered at every size, a
 * head is measured here first: head_cb sits on the connection's input
 * buffer, where the TLS layer adds plaintext, and runs on each addition
 * before evhttp's read callback parses it. It counts every byte from the
 * start of a head to its blank line, line ends included. evhttp counts the
 * same bytes without their line ends (its parsed lines plus what is
 * buffered), so with one limit for both, this count passes
 * http_max_header_bytes no later than evhttp's: evhttp's limit stays set,
 * the same, as the hard cap, and never fires first.
 *
 * Where heads start: at the connection's start, and where the request that
 * evhttp has just handed over (dispatch_request) ends; what is buffered then is
 * the start of the next head (pipelined), and is counted then. From a
 * head's blank line to the next hand-over the bytes are a body, which
 * evhttp bounds by http_max_body_bytes. A head that declares a longer body
 * (Content-Length) is refused here like a long head, before evhttp would
 * answer with a 413 of its own and close without reading what follows.
 *
 * A head that is malformed or that parsers could read differently (a
 * control byte, a bare LF or CR, obs-fold, a name that is not a token or
 * is followed by blanks, Transfer-Encoding, two different Content-Length
 * values: api_head_feed) is refused the same way with 400, before evhttp
 * sees any of it, so nothing smuggled behind it is answered.
 *
 * A head above the limit: what is buffered is discarded before evhttp sees
 * it, reading stops (TCP pushes back), and the 413 is written when no
 * answer is in flight: at once between requests, or after the reply to the
 * request before it (a pipelined head). evhttp is then waiting for a head,
 * so the answer is written straight to the TLS bufferevent with its
 * callbacks taken over. Once it is out, the collector sends close_notify
 * and FIN, reads and discards what the client still sends (at most
 * LINGER_MAX_BYTES for LINGER_MS, so that closing with unread bytes does
 * not reset the connection under the answer), gives the callbacks back and
 * closes through evhttp's own path (deadline_cb).
 */

static void head_over(hconn_t *c, struct evbuffer *in)
{
	c->head_over = true;
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_disable(c->bev, EV_READ);
	if (!c->busy)
		arm_deadline(c, 0);
}

/* Count the head's bytes in "in" from offset on. */
static void head_scan(hconn_t *c, struct evbuffer *in, size_t offset)
{
	size_t limit = (size_t)SETTING(c->h->col, http_max_header_bytes);
	size_t len = evbuffer_get_length(in);
	while (offset < len && !c->head_done) {
		struct evbuffer_ptr pos;
		struct evbuffer_iovec v[4];
		if (evbuffer_ptr_set(in, &pos, offset, EVBUFFER_PTR_SET) != 0)
			return;
		int n = evbuffer_peek(in, (ev_ssize_t)(len - offset), &pos, v, 4);
		if (n <= 0)
			return;
		for (int i = 0; i < n && i < 4 && !c->head_done; i++) {
			size_t used = 0;
			switch (api_head_feed(&c->head, v[i].iov_base, v[i].iov_len, limit,
					      &used)) {
			case API_HEAD_MORE:
				break;
			case API_HEAD_END:
				c->head_done = true;
				if (c->head.content_length >
				    (uint64_t)SETTING(c->h->col, http_max_body_bytes)) {
					c->body_over = true;
					head_over(c, in);
					return;
				}
				break;
			case API_HEAD_OVER:
				head_over(c, in);
				return;
			case API_HEAD_BAD:
				c->head_bad = c->head.bad;
				head_over(c, in);
				return;
			}
			offset += used;
		}
	}
}

/* The input buffer changed: count what was added to a head, or discard
 * it after a refusal. */
static void head_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	hconn_t *c = arg;
	if (info->n_added == 0)
		return;
	size_t len = evbuffer_get_length(in);
	if (c->head_over) {
		if (c->lingering) {
			if (info->n_added >= c->linger_left) {
				c->linger_left = 0;
				bufferevent_disable(c->bev, EV_READ);
				arm_deadline(c, 0);
			} else {
				c->linger_left -= info->n_added;
			}
		}
		evbuffer_drain(in, len);
		return;
	}
	if (!c->head_done)
		head_scan(c, in, info->n_added < len ? len - info->n_added : 0);
}

/* A request was handed over: the next head starts where it ends. */
static void head_restart(hconn_t *c)
{
	c->busy = true;
	memset(&c->head, 0, sizeof(c->head));
	c->head_done = false;
	if (!c->head_over)
		head_scan(c, bufferevent_get_input(c->bev), 0);
}

/* The reply to the request handed over is out (evhttp_send_done). */
static void reply_done_cb(struct evhttp_request *req, void *arg)
{
	(void)req;
	hconn_t *c = arg;
	c->busy = false;
	if (c->head_over)
		arm_deadline(c, 0); /* evhttp reads the next head again by then */
}

static void peer_of(hconn_t *c, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	snprintf(out, outlen, "?");
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)outlen);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out,
			  (socklen_t)outlen);
}

static void refuse_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	hconn_t *c = arg;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	arm_deadline(c, 0);
}

/* The refusal is out: close our side, discard what still comes for a while. */
static void refuse_written_cb(struct bufferevent *bev, void *arg)
{
	hconn_t *c = arg;
	if (c->lingering)
		return;
	c->lingering = true;
	c->linger_left = LINGER_MAX_BYTES;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl)
		(void)SSL_shutdown(ssl); /* close_notify: a clean end of the answer */
	ERR_clear_error();
	evutil_socket_t fd = bufferevent_getfd(bev);
	if (fd >= 0)
		(void)shutdown(fd, SHUT_WR);
	bufferevent_disable(bev, EV_WRITE);
	bufferevent_enable(bev, EV_READ);
	arm_deadline(c, LINGER_MS);
}

static void refuse_start(hconn_t *c)
{
	http_t *h = c->h;
	struct bufferevent *bev = c->bev;
	int64_t limit = SETTING(h->col, http_max_header_bytes);
	c->refusing = true;
	bufferevent_getcb(bev, &c->ev_read, &c->ev_write, &c->ev_event, &c->ev_arg);
	bufferevent_setcb(bev, NULL, refuse_written_cb, refuse_event_cb, c);
	bufferevent_disable(bev, EV_READ);
	struct evbuffer *in = bufferevent_get_input(bev);
	evbuffer_drain(in, evbuffer_get_length(in));

	const char *what = "request line and headers", *setting = "http_max_header_bytes";
	if (c->body_over) {
		what = "request body";
		setting = "http_max_body_bytes";
		limit = SETTING(h->col, http_max_body_bytes);
	}
	char peer[INET6_ADDRSTRLEN + 1];
	peer_of(c, peer, sizeof(peer));
	if (c->head_bad) {
		log_info("[https %s] 400: bad request head: %s", peer, c->head_bad);
		reply_count(h, 400);
		reply_bad_head(bufferevent_get_output(bev), c->head_bad);
	} else {
		log_info("[https %s] 413: %s above %s (%lld)", peer, what, setting,
			 (long long)limit);
		reply_count(h, 413);
		reply_too_large(bufferevent_get_output(bev), what, setting, (long long)limit);
	}
	bufferevent_enable(bev, EV_WRITE);
	arm_deadline(c, SETTING(h->col, http_request_timeout_ms));
}

/* Give the bufferevent back to evhttp, to close. */
static void refuse_end(hconn_t *c)
{
	bufferevent_setcb(c->bev, c->ev_read, c->ev_write, c->ev_event, c->ev_arg);
	c->refusing = false;
}

static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
	http_t *h = arg;
	SSL_CTX *ctx = current_ctx(h);
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	hconn_t *c = calloc(1, sizeof(*c));
	if (!ssl || !c) {
		/* Returning NULL would make evhttp serve this connection without
		 * TLS: never. */
		log_error("[https] out of memory accepting a connection");
		abort();
	}
	c->h = h;
	h->n_conns++;
	SSL_set_ex_data(ssl, ex_index, c);
	c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		log_error("[https] cannot create a TLS bufferevent");
		abort();
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	if (!evbuffer_add_cb(bufferevent_get_input(c->bev), head_cb, c)) {
		log_error("[https] out of memory accepting a connection");
		abort();
	}
	c->deadline = event_new(base, -1, 0, deadline_cb, c);
	if (!c->deadline) {
		log_error("[https] out of memory accepting a connection");
		abort();
	}
	arm_deadline(c, 0); /* admission, once evhttp has given the bufferevent its socket */
	return c->bev;
}

/* ---- admission ------------------------------------------------------------------------------
 *
 * A connection is pending from its accept until its first request is handed
 * over: only then has it finished the TLS handshake and sent a head in
 * time. Pending connections have their own budget (h->pending, see
 * admit.h), so http_max_connections counts only connections past their
 * first request, which silent sockets never become. evhttp gives the
 * bufferevent its socket after bev_cb, so the check runs from the
 * deadline event armed there, before any byte is read.
 */

static void admission_log(http_t *h, const char *what, const uint8_t *key)
{
	int64_t now = vtime_mono_ns();
	if (now - h->admit_log_ns < INT64_C(10) * 1000000000)
		return;
	h->admit_log_ns = now;
	char addr[64];
	admit_key_str(key, addr, sizeof(addr));
	log_warn("[https %s] %s (refused so far: %llu at accept, %llu pending dropped; "
		 "logged at most every 10 s)",
		 addr, what, (unsigned long long)h->conns_refused,
		 (unsigned long long)h->pending_dropped);
}

static hconn_t *pending_conn(admit_entry_t *e)
{
	return (hconn_t *)((char *)e - offsetof(hconn_t, pend));
}

/* No byte of the TLS handshake has come from it: none read, none waiting
 * in the socket (the loop may not have read a ClientHello yet). */
static bool pending_silent(admit_entry_t *e)
{
	struct bufferevent *bev = pending_conn(e)->bev;
	return tls_peer_silent(bufferevent_openssl_get_ssl(bev), bufferevent_getfd(bev));
}

/* Admit c, or refuse it. Return true if it stays (its deadline armed again),
 * false if the caller is to close it. */
static bool admission(hconn_t *c)
{
	http_t *h = c->h;
	c->admitted = true;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		sl = 0;
	admit_entry_t *victim = NULL;
	admit_verdict_t v = ADMIT_REFUSED_ADDR;
	if (h->n_established >= SETTING(h->col, http_max_connections)) {
		h->conns_refused++;
		admit_key((struct sockaddr *)&ss, sl, c->pend.key);
		admission_log(h, "http_max_connections reached; closing new connections",
			      c->pend.key);
	} else {
		v = admit_add(&h->pending, &c->pend, (struct sockaddr *)&ss, sl,
			      (size_t)SETTING(h->col, http_max_pending_connections),
			      (size_t)SETTING(h->col, http_max_pending_per_address), pending_silent,
			      &victim);
		if (v == ADMIT_REFUSED_ADDR || v == ADMIT_REFUSED_FULL) {
			h->conns_refused++;
			admission_log(
				h,
				v == ADMIT_REFUSED_ADDR
					? "http_max_pending_per_address reached; closing new "
					  "connections from this address"
					: "http_max_pending_connections reached, every pending "
					  "connection making progress; closing new connections",
				c->pend.key);
		}
	}
	if (victim) {
		hconn_t *old = pending_conn(victim);
		h->pending_dropped++;
		admission_log(h,
			      "http_max_pending_connections reached; dropping the oldest "
			      "pending connection",
			      victim->key);
		arm_deadline(old, 0);
	}
	if (v == ADMIT_REFUSED_ADDR || v == ADMIT_REFUSED_FULL)
		return false; /* deadline_cb goes on to close it */
	arm_deadline(c, SETTING(h->col, http_request_timeout_ms));
	return true;
}

static hconn_t *conn_of(struct evhttp_connection *evcon)
{
	if (!evcon)
		return NULL;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	return ssl ? SSL_get_ex_data(ssl, ex_index) : NULL;
}

void http_conn_request(struct evhttp_request *req)
{
	hconn_t *c = conn_of(evhttp_request_get_connection(req));
	if (c) {
		if (c->deadline)
			event_del(c->deadline); /* the request is in: no deadline while we answer */
		admit_remove(&c->h->pending, &c->pend);
		if (!c->established) {
			c->established = true;
			c->h->n_established++;
		}
		head_restart(c);
		evhttp_request_set_on_complete_cb(req, reply_done_cb, c);
	}
}

void http_conn_rearm(struct evhttp_connection *evcon)
{
	hconn_t *c = conn_of(evcon);
	if (c && c->deadline)
		arm_deadline(c, SETTING(c->h->col, http_request_timeout_ms));
}

int http_conn_cert_identity(struct evhttp_connection *evcon, char *cn, size_t cnlen)
{
	hconn_t *c = conn_of(evcon);
	SSL *ssl = c ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	if (!ssl || !SSL_get0_peer_certificate(ssl) || tls_peer_identity(ssl, cn, cnlen) != 0)
		return -1;
	STACK_OF(X509) *chain = c->h->agent_issuer ? SSL_get0_verified_chain(ssl) : NULL;
	for (int i = 1; chain && i < sk_X509_num(chain); i++)
		if (X509_cmp(sk_X509_value(chain, i), c->h->agent_issuer) == 0)
			return -1;
	return 0;
}

int http_conn_cert_serial(struct evhttp_connection *evcon, char *out, size_t outlen)
{
	hconn_t *c = conn_of(evcon);
	SSL *ssl = c ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	return ssl ? tls_peer_serial_hex(ssl, out, outlen) : -1;
}

/* ---- samples for stats ----------------------------------------------------------------------------- */

static void sample_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_t *h = arg;
	api_sample_t *s = &h->samples[h->sample_head];
	s->t_us = vtime_now_ns() / 1000;
	s->events_stored = atomic_load(&h->col->counters.events_stored);
	s->agents_connected = collector_connected_count(h->col);
	h->sample_head = (h->sample_head + 1) % SAMPLES_MAX;
	if (h->n_samples < SAMPLES_MAX)
		h->n_samples++;
}

void hreq_server_stats(hreq_t *r, api_server_stats_t *out)
{
	http_t *h = r->h;
	memset(out, 0, sizeof(*out));
	memcpy(out->requests, h->requests, sizeof(out->requests));
	out->rate_limited = h->rate_limited;
	out->auth_failures = h->auth_failures;
	out->connections = h->n_conns;
	out->connections_pending = (int)h->pending.n;
	out->connections_refused = h->conns_refused;
	out->pending_dropped = h->pending_dropped;
	out->db_pending = apidb_pending(h->db);
	size_t first = (h->sample_head + SAMPLES_MAX - h->n_samples) % SAMPLES_MAX;
	for (size_t i = 0; i < h->n_samples; i++)
		h->sample_view[i] = h->samples[(first + i) % SAMPLES_MAX];
	out->samples = h->sample_view;
	out->n_samples = h->n_samples;
}

/* ---- life cycle -------------------------------------------------------------------------------------- */

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_t *h = arg;
	event_base_loopbreak(h->base);
}

static void *http_main(void *arg)
{
	http_t *h = arg;
	event_base_dispatch(h->base);
	return NULL;
}

static void drop_hreq(void *arg)
{
	hreq_t *r = arg;
	/* evhttp_free frees the request itself */
	if (r->evcon)
		evhttp_connection_set_closecb(r->evcon, NULL, NULL);
	r->req = NULL;
	hreq_free(r);
}

http_t *http_new(collector_t *col, char *err, size_t errlen)
{
	const settings_t *s = col->settings;
	pthread_once(&ex_once, ex_init);
	http_t *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->col = col;
	pthread_mutex_init(&h->tls_lock, NULL);
	h->ctx = build_ctx(s, err, errlen);
	if (!h->ctx)
		goto fail;
	if (s->agent_issuer_cert[0]) {
		FILE *f = fopen(s->agent_issuer_cert, "r");
		h->agent_issuer = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		if (!h->agent_issuer) {
			snprintf(err, errlen, "cannot read agent_issuer_cert %s",
				 s->agent_issuer_cert);
			goto fail;
		}
	}
	h->rate = ratelimit_new();
	h->tokens = session_cache_new();
	h->base = event_base_new();
	if (!h->rate || !h->tokens || !h->base) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	h->evhttp = evhttp_new(h->base);
	h->stop_ev = event_new(h->base, -1, 0, stop_cb, h);
	h->sample_ev = event_new(h->base, -1, EV_PERSIST, sample_cb, h);
	h->db = apidb_new(h->base, s->db, s->http_db, (int)s->http_db_connections,
			  s->http_query_timeout_ms);
	if (!h->evhttp || !h->stop_ev || !h->sample_ev || !h->db) {
		snprintf(err, errlen, "cannot set up the HTTPS server");
		goto fail;
	}
	/* The hard caps: head_cb answers a head above the same limit, or one
	 * declaring a longer body, with 413 before evhttp's own checks can
	 * fire (see "request heads"). */
	evhttp_set_max_headers_size(h->evhttp, s->http_max_header_bytes);
	evhttp_set_max_body_size(h->evhttp, s->http_max_body_bytes);
	struct timeval io = {(time_t)(s->http_timeout_ms / 1000),
			     (suseconds_t)(s->http_timeout_ms % 1000) * 1000};
	evhttp_set_timeout_tv(h->evhttp, &io);
	/* Every method reaches dispatch_request, which answers all but GET (and
	 * POST and DELETE of the session) with 405 (evhttp's own refusal
	 * would be a 501 without our headers). */
	evhttp_set_allowed_methods(h->evhttp, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						      EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						      EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(h->evhttp, "application/json");
	evhttp_set_bevcb(h->evhttp, bev_cb, h);
	evhttp_set_gencb(h->evhttp, dispatch_request, h);

	char host[256];
	const char *colon = strrchr(s->http_listen, ':');
	if (!colon || colon == s->http_listen || (size_t)(colon - s->http_listen) >= sizeof(host)) {
		snprintf(err, errlen, "http_listen '%s' is not host:port", s->http_listen);
		goto fail;
	}
	memcpy(host, s->http_listen, (size_t)(colon - s->http_listen));
	host[colon - s->http_listen] = '\0';
	char *h0 = host;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		h0 = host + 1;
	}
	int64_t port;
	if (api_parse_int(colon + 1, 1, 65535, &port) != 0) {
		snprintf(err, errlen, "http_listen '%s': bad port", s->http_listen);
		goto fail;
	}
	h->bound = evhttp_bind_socket_with_handle(h->evhttp, h0, (ev_uint16_t)port);
	if (!h->bound) {
		snprintf(err, errlen, "cannot listen on %s (HTTPS): %s", s->http_listen,
			 strerror(errno));
		goto fail;
	}
	/* Accepted sockets inherit TCP_NODELAY: a reply's records go out at
	 * once instead of waiting for the client's delayed ACK. */
	int one = 1;
	evutil_socket_t lfd = evhttp_bound_socket_get_fd(h->bound);
	if (setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		log_warn("[https] cannot set TCP_NODELAY: %s", strerror(errno));
	files_load(h);
	sample_cb(-1, 0, h);
	struct timeval tv = {SAMPLE_INTERVAL_S, 0};
	event_add(h->sample_ev, &tv);
	return h;
fail:
	http_free(h);
	return NULL;
}

int http_start(http_t *h)
{
	if (pthread_create(&h->thread, NULL, http_main, h) != 0)
		return -1;
	h->started = true;
	log_info("HTTPS API and status page on %s", h->col->settings->http_listen);
	return 0;
}

void http_free(http_t *h)
{
	if (!h)
		return;
	if (h->started) {
		event_active(h->stop_ev, EV_READ, 0);
		pthread_join(h->thread, NULL);
	}
	/* Pool threads first (their jobs refer to requests), then evhttp
	 * (it frees the connections and their requests). */
	apidb_free(h->db, drop_hreq);
	if (h->evhttp)
		evhttp_free(h->evhttp);
	/* Run the finalizers of the connections just freed (their TLS objects
	 * and deadlines) while the base is whole. */
	if (h->base)
		event_base_loop(h->base, EVLOOP_NONBLOCK);
	if (h->stop_ev)
		event_free(h->stop_ev);
	if (h->sample_ev)
		event_free(h->sample_ev);
	if (h->base)
		event_base_free(h->base);
	files_free(h);
	SSL_CTX_free(h->ctx);
	X509_free(h->agent_issuer);
	pthread_mutex_destroy(&h->tls_lock);
	free(h->rate);
	free(h->tokens);
	free(h);
}
