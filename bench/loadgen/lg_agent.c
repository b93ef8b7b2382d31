// SPDX-License-Identifier: Apache-2.0
/*
 * A simulated agent's connection and protocol state (see lg_agent.h).
 *
 * Sequence bookkeeping: batches acked+1 .. next_seq-1 are sent but not yet
 * acknowledged; their encoded frames sit in the ring q, oldest first, so a
 * reconnect can resend them unchanged. The ring never holds more than
 * --window frames. target is the last seq of the run (UINT64_MAX while a
 * --duration run is still generating).
 */
#include "lg_agent.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "frame.h"
#include "log.h"
#include "tls.h"
#include "vtime.h"
#include "wire.h"

#define AG_WELCOME_TIMEOUT_S 30
#define AG_DEFAULT_HEARTBEAT_MS 30000u

typedef enum {
	AG_ST_WAIT = 0,	  /* not connected; timer armed for the next attempt */
	AG_ST_CONNECTING, /* TCP connect and TLS handshake */
	AG_ST_HELLO,	  /* Hello sent, waiting for Welcome */
	AG_ST_READY,	  /* sending batches, receiving acks */
	AG_ST_DONE,	  /* finished (or failed); no connection */
} ag_state_t;

static const char *ag_state_str(ag_state_t s)
{
	switch (s) {
	case AG_ST_WAIT:
		return "wait";
	case AG_ST_CONNECTING:
		return "connecting";
	case AG_ST_HELLO:
		return "hello";
	case AG_ST_READY:
		return "ready";
	case AG_ST_DONE:
		return "done";
	}
	return "?";
}

/* One encoded batch frame. Owned by the agent's ring (one reference) and
 * by every evbuffer chain that still points at it (one each). */
typedef struct {
	uint8_t *data;
	size_t len;
	uint64_t seq;
	uint32_t n_events;
	uint32_t refs;
	int64_t first_send_ns; /* monotonic; 0 = never sent */
} ag_frame_t;

struct lg_agent {
	lg_worker_t *w;
	const lg_run_t *run;
	lg_stats_t *st;
	uint32_t index;
	char name[96];
	lg_gen_agent_t *gd;

	ag_state_t state;
	struct bufferevent *bev;
	struct event *timer;   /* next attempt (WAIT) or Welcome timeout */
	struct event *send_ev; /* --rate pacing */
	struct event *hb_ev;   /* heartbeats while READY */

	bool have_base;	 /* a first Welcome fixed base and target */
	bool gen_over;	 /* --duration ended */
	uint64_t base;	 /* committed_seq of the first Welcome */
	uint64_t target; /* done once acked >= target */
	uint64_t next_seq;
	uint64_t acked;

	ag_frame_t **q; /* ring of window slots */
	uint32_t qhead, qlen;

	uint32_t backoff_ms;
	uint32_t fails_in_row;
	int64_t lost_ns; /* monotonic: a welcomed connection was lost, no Ack since; 0 = none */
	uint64_t attempts;
	uint32_t hb_ms;
	uint32_t max_frame;
	int64_t last_send_ns;
	int64_t interval_ns; /* per-agent batch period under --rate */
	int64_t next_due_ns;
	uint64_t rng;
};

static void ag_connect(lg_agent_t *a);
static void ag_pump(lg_agent_t *a);

static void ag_set_state(lg_agent_t *a, ag_state_t s)
{
	if (a->state == s)
		return;
	if (a->state == AG_ST_READY)
		atomic_fetch_sub_explicit(&a->st->connected, 1, memory_order_relaxed);
	if (s == AG_ST_READY)
		atomic_fetch_add_explicit(&a->st->connected, 1, memory_order_relaxed);
	log_debug("%s: %s -> %s", a->name, ag_state_str(a->state), ag_state_str(s));
	a->state = s;
}

static void count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint32_t ag_rand(lg_agent_t *a)
{
	/* xorshift64: jitter only. */
	a->rng ^= a->rng << 13;
	a->rng ^= a->rng >> 7;
	a->rng ^= a->rng << 17;
	return (uint32_t)(a->rng >> 16);
}

static struct timeval tv_from_ns(int64_t ns)
{
	if (ns < 0)
		ns = 0;
	struct timeval tv = {(time_t)(ns / 1000000000), (suseconds_t)(ns % 1000000000 / 1000)};
	return tv;
}

/* --- frames ------------------------------------------------------------------ */

static void frame_unref(ag_frame_t *f)
{
	if (--f->refs == 0) {
		free(f->data);
		free(f);
	}
}

static void frame_chain_done(const void *data, size_t len, void *extra)
{
	(void)data;
	(void)len;
	frame_unref(extra);
}

static ag_frame_t *q_at(lg_agent_t *a, uint32_t i)
{
	return a->q[(a->qhead + i) % a->run->window];
}

static void q_push(lg_agent_t *a, ag_frame_t *f)
{
	a->q[(a->qhead + a->qlen) % a->run->window] = f;
	a->qlen++;
}

static ag_frame_t *q_pop(lg_agent_t *a)
{
	ag_frame_t *f = a->q[a->qhead];
	a->q[a->qhead] = NULL;
	a->qhead = (a->qhead + 1) % a->run->window;
	a->qlen--;
	return f;
}

static void q_clear(lg_agent_t *a)
{
	while (a->qlen)
		frame_unref(q_pop(a));
}

/* Queue f on the connection without copying it. Return 0 or -1. */
static int ag_send_frame(lg_agent_t *a, ag_frame_t *f)
{
	f->refs++;
	if (evbuffer_add_reference(bufferevent_get_output(a->bev), f->data, f->len,
				   frame_chain_done, f) != 0) {
		f->refs--;
		return -1;
	}
	int64_t now = vtime_mono_ns();
	if (!f->first_send_ns)
		f->first_send_ns = now;
	a->last_send_ns = now;
	return 0;
}

/* --- leaving a connection ----------------------------------------------------- */

static void ag_drop_connection(lg_agent_t *a, bool graceful)
{
	if (a->bev) {
		SSL *ssl = bufferevent_openssl_get_ssl(a->bev);
		if (graceful && ssl && evbuffer_get_length(bufferevent_get_output(a->bev)) == 0)
			SSL_shutdown(ssl); /* close_notify; the reply is not awaited */
		ERR_clear_error();
		bufferevent_free(a->bev); /* frame references are released with it */
		a->bev = NULL;
	}
	evtimer_del(a->hb_ev);
	evtimer_del(a->send_ev);
	evtimer_del(a->timer);
}

/* Finish the agent for good. failed: it could not do its part. */
static void ag_finish(lg_agent_t *a, bool failed)
{
	if (a->state == AG_ST_DONE)
		return;
	ag_drop_connection(a, !failed);
	ag_set_state(a, AG_ST_DONE);
	q_clear(a);
	if (failed)
		atomic_fetch_add_explicit(&a->st->failed, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&a->st->done, 1, memory_order_relaxed);
	lg_worker_agent_done(a->w);
}

#define AG_DC_COUNTED 1u /* the error was counted already */
#define AG_DC_LOGGED 2u	 /* the reason was logged already */

/* Close the connection and try again after a jittered, growing delay.
 * A connection that fails before Welcome counts as an error. */
static void ag_disconnect(lg_agent_t *a, const char *reason, unsigned flags)
{
	bool before_welcome = a->state != AG_ST_READY;
	if (!before_welcome && !a->lost_ns)
		a->lost_ns = vtime_mono_ns();
	ag_drop_connection(a, false);
	ag_set_state(a, AG_ST_WAIT);
	if (before_welcome && !(flags & AG_DC_COUNTED))
		count(&a->st->errors, 1);
	/* One line per streak of failures, not one per attempt. */
	if (!(flags & AG_DC_LOGGED)) {
		if (a->fails_in_row == 0)
			log_msg(LOG_LVL_WARN, a->name, "disconnected: %s; reconnecting", reason);
		else
			log_debug("%s: attempt failed: %s", a->name, reason);
	}
	a->fails_in_row++;
	uint32_t b = a->backoff_ms;
	uint32_t delay = b / 2 + ag_rand(a) % (b / 2 + 1);
	a->backoff_ms = b * 2 > a->run->backoff_max_ms ? a->run->backoff_max_ms : b * 2;
	struct timeval tv = tv_from_ns((int64_t)delay * 1000000);
	evtimer_add(a->timer, &tv);
}

/* The collector broke the protocol: count it, log it, reconnect. */
static void ag_anomaly(lg_agent_t *a, const char *what)
{
	count(&a->st->errors, 1);
	log_msg(LOG_LVL_ERROR, a->name, "protocol: %s; reconnecting", what);
	ag_disconnect(a, what, AG_DC_COUNTED | AG_DC_LOGGED);
}

/* --- acknowledgements ---------------------------------------------------------- */

/* Everything up to seq s is committed. */
static void ag_ack_upto(lg_agent_t *a, uint64_t s)
{
	if (s <= a->acked)
		return; /* already known */
	if (s >= a->next_seq) {
		char m[160];
		snprintf(m, sizeof(m), "ack for seq %" PRIu64 " but only up to %" PRIu64 " sent", s,
			 a->next_seq - 1);
		count(&a->st->errors, 1);
		log_msg(LOG_LVL_ERROR, a->name, "protocol: %s", m);
		s = a->next_seq - 1;
		if (s <= a->acked)
			return;
	}
	int64_t now = vtime_mono_ns();
	uint64_t events = 0, batches = 0;
	while (a->qlen && q_at(a, 0)->seq <= s) {
		ag_frame_t *f = q_pop(a);
		events += f->n_events;
		batches++;
		lg_hist_add(&a->st->ack_us, (now - f->first_send_ns) / 1000);
		frame_unref(f);
	}
	a->acked = s;
	count(&a->st->events_acked, events);
	count(&a->st->batches_acked, batches);
	atomic_store_explicit(&a->st->last_ack_ns, now, memory_order_relaxed);
}

static bool ag_is_done(const lg_agent_t *a)
{
	return a->have_base && !a->run->idle && a->acked >= a->target;
}

static bool ag_has_more(const lg_agent_t *a)
{
	return !a->run->idle && !a->gen_over && a->next_seq <= a->target;
}

/* --- sending ---------------------------------------------------------------------- */

static void ag_heartbeat_arm(lg_agent_t *a)
{
	int64_t period = (int64_t)a->hb_ms * 1000000;
	int64_t wait = a->last_send_ns + period - vtime_mono_ns();
	if (wait < 10000000)
		wait = 10000000;
	struct timeval tv = tv_from_ns(wait);
	evtimer_add(a->hb_ev, &tv);
}

static void ag_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lg_agent_t *a = arg;
	if (a->state != AG_ST_READY)
		return;
	int64_t now = vtime_mono_ns();
	/* Only when nothing else went out for (about) a period. */
	if (now - a->last_send_ns >= (int64_t)a->hb_ms * 900000) {
		uint8_t buf[64];
		size_t n = lg_gen_heartbeat(buf, sizeof(buf));
		if (n && bufferevent_write(a->bev, buf, n) == 0)
			a->last_send_ns = now;
	}
	ag_heartbeat_arm(a);
}

/* Send new batches while the window and the rate allow. */
static void ag_pump(lg_agent_t *a)
{
	const lg_run_t *run = a->run;
	while (a->state == AG_ST_READY && a->qlen < run->window && ag_has_more(a)) {
		if (a->interval_ns) {
			int64_t now = vtime_mono_ns();
			if (now < a->next_due_ns) {
				if (!evtimer_pending(a->send_ev, NULL)) {
					struct timeval tv = tv_from_ns(a->next_due_ns - now);
					evtimer_add(a->send_ev, &tv);
				}
				return;
			}
			a->next_due_ns += a->interval_ns;
		}
		ag_frame_t *f = calloc(1, sizeof(*f));
		uint32_t n_bad = 0;
		if (f)
			f->data = lg_gen_batch(lg_worker_gen(a->w), a->gd, a->next_seq,
					       a->next_seq - a->base - 1, &f->len, &n_bad);
		if (!f || !f->data || f->len > a->max_frame) {
			log_msg(LOG_LVL_ERROR, a->name, "cannot build batch %" PRIu64 ": %s",
				a->next_seq,
				f && f->data ? "larger than the collector's max_frame_bytes"
					     : "out of memory or above the frame limit");
			if (f)
				free(f->data);
			free(f);
			count(&a->st->errors, 1);
			ag_finish(a, true);
			return;
		}
		f->seq = a->next_seq;
		f->n_events = run->batch_events;
		f->refs = 1; /* the ring's */
		q_push(a, f);
		a->next_seq++;
		count(&a->st->events_sent, f->n_events);
		count(&a->st->bad_sent, n_bad);
		count(&a->st->batches_sent, 1);
		if (ag_send_frame(a, f) != 0) {
			ag_disconnect(a, "cannot queue a frame", 0);
			return;
		}
	}
}

static void ag_send_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ag_pump(arg);
}

/* --- receiving ---------------------------------------------------------------------- */

/* Return 0 to go on reading, -1 if the connection is gone. */
static int ag_on_welcome(lg_agent_t *a, const Vigil__V1__Welcome *wm)
{
	const lg_run_t *run = a->run;
	uint64_t c = wm->committed_seq;
	a->hb_ms = wm->heartbeat_interval_ms ? wm->heartbeat_interval_ms : AG_DEFAULT_HEARTBEAT_MS;
	a->max_frame = wm->max_frame_bytes ? wm->max_frame_bytes : FRAME_DEFAULT_MAX_BYTES;
	if (!a->have_base) {
		a->have_base = true;
		a->base = c;
		a->acked = c;
		a->next_seq = c + 1;
		if (run->idle)
			a->target = c;
		else if (a->gen_over)
			a->target = c;
		else if (run->batches_per_agent)
			a->target = c + run->batches_per_agent;
		else
			a->target = UINT64_MAX;
		if (a->interval_ns)
			a->next_due_ns = vtime_mono_ns() +
					 a->interval_ns * (int64_t)a->index / (int64_t)run->agents;
		atomic_fetch_add_explicit(&a->st->welcomed, 1, memory_order_relaxed);
	} else if (c < a->acked) {
		log_msg(LOG_LVL_ERROR, a->name,
			"collector says committed_seq %" PRIu64 " but it acknowledged %" PRIu64
			" before: acknowledged batches were lost; giving up",
			c, a->acked);
		count(&a->st->errors, 1);
		ag_finish(a, true);
		return -1;
	} else if (c >= a->next_seq) {
		log_msg(LOG_LVL_ERROR, a->name,
			"collector says committed_seq %" PRIu64 " but only up to %" PRIu64
			" was sent (another client with this identity?)",
			c, a->next_seq - 1);
		count(&a->st->errors, 1);
		ag_ack_upto(a, a->next_seq - 1);
		a->acked = c;
		a->next_seq = c + 1;
	} else {
		ag_ack_upto(a, c);
	}
	a->backoff_ms = run->backoff_min_ms;
	if (a->fails_in_row)
		log_msg(LOG_LVL_INFO, a->name, "reconnected; committed_seq %" PRIu64, c);
	a->fails_in_row = 0;
	evtimer_del(a->timer);
	ag_set_state(a, AG_ST_READY);
	if (ag_is_done(a)) {
		ag_finish(a, false);
		return -1;
	}
	/* Resend what is not committed, byte for byte, in order. */
	for (uint32_t i = 0; i < a->qlen; i++) {
		if (ag_send_frame(a, q_at(a, i)) != 0) {
			ag_disconnect(a, "cannot queue a frame", 0);
			return -1;
		}
		count(&a->st->resent_batches, 1);
	}
	ag_heartbeat_arm(a);
	ag_pump(a);
	return a->state == AG_ST_READY ? 0 : -1;
}

static const char *error_code_name(int code)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&vigil__v1__error_code__descriptor, code);
	return v ? v->name : "unknown";
}

static int ag_on_message(lg_agent_t *a, const Vigil__V1__CollectorMessage *m)
{
	switch (m->msg_case) {
	case VIGIL__V1__COLLECTOR_MESSAGE__MSG_WELCOME:
		if (a->state != AG_ST_HELLO) {
			ag_anomaly(a, "Welcome when not expected");
			return -1;
		}
		return ag_on_welcome(a, m->welcome);
	case VIGIL__V1__COLLECTOR_MESSAGE__MSG_ACK:
		if (a->state != AG_ST_READY) {
			ag_anomaly(a, "Ack before Welcome");
			return -1;
		}
		if (a->lost_ns) { /* acknowledged again after losing a connection */
			lg_hist_add(&a->st->outage_us, (vtime_mono_ns() - a->lost_ns) / 1000);
			a->lost_ns = 0;
		}
		ag_ack_upto(a, m->ack->seq);
		if (ag_is_done(a)) {
			ag_finish(a, false);
			return -1;
		}
		ag_pump(a);
		return a->state == AG_ST_READY ? 0 : -1;
	case VIGIL__V1__COLLECTOR_MESSAGE__MSG_HEARTBEAT:
		return 0; /* nothing to answer */
	case VIGIL__V1__COLLECTOR_MESSAGE__MSG_ERROR: {
		char reason[320];
		snprintf(reason, sizeof(reason), "collector error %s: %s",
			 error_code_name(m->error->code),
			 m->error->message ? m->error->message : "");
		count(&a->st->errors, 1);
		log_msg(LOG_LVL_WARN, a->name, "%s; reconnecting", reason);
		ag_disconnect(a, reason, AG_DC_COUNTED | AG_DC_LOGGED);
		return -1;
	}
	default:
		ag_anomaly(a, "unknown message");
		return -1;
	}
}

static void ag_read_cb(struct bufferevent *bev, void *arg)
{
	lg_agent_t *a = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		size_t avail = evbuffer_get_length(in);
		if (avail < FRAME_HEADER_BYTES)
			return;
		uint8_t hdr[FRAME_HEADER_BYTES];
		evbuffer_copyout(in, hdr, sizeof(hdr));
		uint32_t n = 0;
		frame_status_t fs = frame_check(hdr, sizeof(hdr), FRAME_DEFAULT_MAX_BYTES, &n);
		if (fs == FRAME_EMPTY || fs == FRAME_TOO_LARGE) {
			ag_anomaly(a, frame_status_str(fs));
			return;
		}
		if (avail < FRAME_HEADER_BYTES + (size_t)n)
			return;
		const uint8_t *p = evbuffer_pullup(in, FRAME_HEADER_BYTES + (ssize_t)n);
		Vigil__V1__CollectorMessage *m =
			p ? wire_collector_unpack(p + FRAME_HEADER_BYTES, n) : NULL;
		evbuffer_drain(in, FRAME_HEADER_BYTES + (size_t)n);
		if (!m) {
			ag_anomaly(a, "undecodable CollectorMessage");
			return;
		}
		int rc = ag_on_message(a, m);
		wire_collector_free(m);
		if (rc != 0)
			return; /* bev is gone */
	}
}

/* --- connecting ---------------------------------------------------------------- */

static void ag_on_connected(lg_agent_t *a)
{
	/* From now on, a close without close_notify is an end of stream
	 * (the collector was killed), not a TLS error. */
	bufferevent_openssl_set_allow_dirty_shutdown(a->bev, 1);
	int one = 1;
	setsockopt(bufferevent_getfd(a->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	size_t len = 0;
	uint8_t *hello = lg_gen_hello(a->name, a->index, &len);
	if (!hello || bufferevent_write(a->bev, hello, len) != 0) {
		free(hello);
		ag_disconnect(a, "cannot send Hello", 0);
		return;
	}
	free(hello);
	int64_t now = vtime_mono_ns();
	a->last_send_ns = now;
	int64_t zero = 0;
	atomic_compare_exchange_strong(&a->st->first_hello_ns, &zero, now);
	ag_set_state(a, AG_ST_HELLO);
}

static void ag_event_cb(struct bufferevent *bev, short what, void *arg)
{
	lg_agent_t *a = arg;
	if (what & BEV_EVENT_CONNECTED) {
		ag_on_connected(a);
		return;
	}
	char reason[384];
	int sock_err = EVUTIL_SOCKET_ERROR();
	/* Last error libevent took from OpenSSL's queue; drain the rest. */
	unsigned long ssl_err = 0, e;
	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (ERR_GET_LIB(e) != 0) /* libevent also queues bare SSL_ERROR_* codes */
			ssl_err = e;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (vr != X509_V_OK) {
		snprintf(reason, sizeof(reason), "collector certificate: %s",
			 X509_verify_cert_error_string(vr));
	} else if (ssl_err) {
		char buf[256];
		ERR_error_string_n(ssl_err, buf, sizeof(buf));
		snprintf(reason, sizeof(reason), "TLS: %s", buf);
	} else if (what & BEV_EVENT_EOF) {
		snprintf(reason, sizeof(reason), "collector closed the connection%s",
			 a->state == AG_ST_CONNECTING ? " during the TLS handshake"
			 : a->state == AG_ST_HELLO ? " before Welcome (client certificate refused?)"
						   : "");
	} else if (sock_err) {
		snprintf(reason, sizeof(reason), "%s%s",
			 a->state == AG_ST_CONNECTING ? "connect: " : "", strerror(sock_err));
	} else {
		snprintf(reason, sizeof(reason), "connection error");
	}
	ERR_clear_error();
	ag_disconnect(a, reason, 0);
}

/* With --source-addrs: a socket bound to the agent's loopback source
 * address (127.1.0.1 + index % n; the port is chosen at connect), so that
 * many agents look like many hosts and no one address runs out of ports.
 * Else -1: libevent makes the socket. Return -2 on failure (errno set). */
static evutil_socket_t ag_socket(const lg_agent_t *a)
{
	const lg_run_t *run = a->run;
	if (!run->source_addrs)
		return -1;
	evutil_socket_t fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -2;
	struct sockaddr_in src = {.sin_family = AF_INET};
	src.sin_addr.s_addr = htonl(0x7f010001u + a->index % run->source_addrs);
	int one = 1;
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&src, sizeof(src)) != 0) {
		int e = errno;
		evutil_closesocket(fd);
		errno = e;
		return -2;
	}
	return fd;
}

static void ag_connect(lg_agent_t *a)
{
	const lg_run_t *run = a->run;
	if (a->attempts++)
		count(&a->st->reconnects, 1);
	SSL *ssl = tls_ssl_new(run->ssl_ctx, run->server_name);
	if (!ssl || lg_ident_use(ssl, &run->ids[a->index]) != 0) {
		SSL_free(ssl);
		tls_log_errors(a->name, "cannot set up TLS");
		count(&a->st->errors, 1);
		ag_finish(a, true);
		return;
	}
	evutil_socket_t fd = ag_socket(a);
	if (fd == -2) {
		char m[128];
		snprintf(m, sizeof(m), "source address: %s", strerror(errno));
		SSL_free(ssl);
		ag_set_state(a, AG_ST_CONNECTING);
		ag_disconnect(a, m, 0);
		return;
	}
	a->bev = bufferevent_openssl_socket_new(lg_worker_base(a->w), fd, ssl,
						BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (!a->bev) {
		if (fd >= 0)
			evutil_closesocket(fd);
		SSL_free(ssl);
		ag_set_state(a, AG_ST_CONNECTING);
		ag_disconnect(a, "cannot create a bufferevent", 0);
		return;
	}
	bufferevent_setcb(a->bev, ag_read_cb, NULL, ag_event_cb, a);
	bufferevent_enable(a->bev, EV_READ | EV_WRITE);
	ag_set_state(a, AG_ST_CONNECTING);
	struct timeval tv = {AG_WELCOME_TIMEOUT_S, 0};
	evtimer_add(a->timer, &tv);
	if (bufferevent_socket_connect(a->bev, (const struct sockaddr *)&run->addr,
				       (int)run->addrlen) != 0) {
		char m[128];
		snprintf(m, sizeof(m), "connect: %s", strerror(errno));
		ag_disconnect(a, m, 0);
	}
}

static void ag_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lg_agent_t *a = arg;
	switch (a->state) {
	case AG_ST_WAIT:
		ag_connect(a);
		break;
	case AG_ST_CONNECTING:
	case AG_ST_HELLO: {
		char m[96];
		snprintf(m, sizeof(m), "no Welcome within %d s", AG_WELCOME_TIMEOUT_S);
		ag_disconnect(a, m, 0);
		break;
	}
	default:
		break;
	}
}

/* --- public ---------------------------------------------------------------------- */

lg_agent_t *lg_agent_new(lg_worker_t *w, uint32_t index)
{
	lg_agent_t *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->w = w;
	a->run = lg_worker_run(w);
	a->st = lg_worker_stats(w);
	a->index = index;
	if (a->run->ids[index].name)
		snprintf(a->name, sizeof(a->name), "%s", a->run->ids[index].name);
	else
		snprintf(a->name, sizeof(a->name), "%s%05u", a->run->prefix, index);
	a->backoff_ms = a->run->backoff_min_ms;
	a->hb_ms = AG_DEFAULT_HEARTBEAT_MS;
	a->max_frame = FRAME_DEFAULT_MAX_BYTES;
	a->rng = (UINT64_C(0x9e3779b97f4a7c15) * (index + 1)) ^ (uint64_t)vtime_mono_ns();
	if (!a->rng)
		a->rng = 1;
	if (a->run->rate > 0)
		a->interval_ns = (int64_t)((double)a->run->batch_events * a->run->agents /
					   a->run->rate * 1e9);
	struct event_base *base = lg_worker_base(w);
	a->gd = lg_gen_agent_new(index);
	a->q = calloc(a->run->window, sizeof(*a->q));
	a->timer = evtimer_new(base, ag_timer_cb, a);
	a->send_ev = evtimer_new(base, ag_send_cb, a);
	a->hb_ev = evtimer_new(base, ag_heartbeat_cb, a);
	if (!a->gd || !a->q || !a->timer || !a->send_ev || !a->hb_ev) {
		lg_agent_free(a);
		return NULL;
	}
	return a;
}

void lg_agent_start(lg_agent_t *a, int64_t delay_us)
{
	ag_set_state(a, AG_ST_WAIT);
	struct timeval tv = tv_from_ns(delay_us * 1000);
	evtimer_add(a->timer, &tv);
}

void lg_agent_end_generation(lg_agent_t *a)
{
	if (a->state == AG_ST_DONE)
		return;
	a->gen_over = true;
	if (a->run->idle) {
		ag_finish(a, !a->have_base);
		return;
	}
	if (!a->have_base) {
		/* Never welcomed: it sent nothing, and there is nothing to wait for. */
		log_msg(LOG_LVL_WARN, a->name, "never welcomed by the collector");
		ag_finish(a, true);
		return;
	}
	a->target = a->next_seq - 1;
	evtimer_del(a->send_ev);
	if (ag_is_done(a))
		ag_finish(a, false);
}

void lg_agent_free(lg_agent_t *a)
{
	if (!a)
		return;
	if (a->bev) {
		bufferevent_free(a->bev);
		a->bev = NULL;
	}
	if (a->q)
		q_clear(a);
	if (a->timer)
		event_free(a->timer);
	if (a->send_ev)
		event_free(a->send_ev);
	if (a->hb_ev)
		event_free(a->hb_ev);
	lg_gen_agent_free(a->gd);
	free(a->q);
	free(a);
}
