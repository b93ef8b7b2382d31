// SPDX-License-Identifier: Apache-2.0
/* Agent -> collector connection (see uplink.h). */
#include "uplink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "batcher.h"
#include "certfile.h"
#include "frame.h"
#include "log.h"
#include "renew.h"
#include "vtime.h"
#include "wire.h"

#define OUT_HIGH_BYTES (4u * 1024 * 1024)
#define LIVENESS_MIN_MS 30000
/* After a refused or failed renewal: first wait, doubled up to the last */
#define RENEW_BACKOFF_MIN_MS 10000
#define RENEW_BACKOFF_MAX_MS 3600000

struct uplink {
	struct event_base *base;
	const settings_t *s;
	spool_t *sp;
	const hostinfo_t *host;
	SSL_CTX *ctx;
	uplink_cbs_t cbs;
	void *arg;
	uplink_state_t state;
	struct bufferevent *bev;
	struct event *timer;	/* next attempt (WAIT) or connect/Welcome deadline */
	struct event *hb;	/* heartbeat and liveness, while READY */
	struct event *renew_ev; /* the certificate's renewal is due, while READY */
	size_t addr_idx;	/* address being tried / used */
	size_t n_addrs;
	bool round_failed; /* every address failed since the last Welcome */
	int64_t backoff_ms;
	uint32_t fails_in_row;
	uint64_t reconnects;
	char peer[300];	  /* "host:port" of the current attempt */
	char prefix[320]; /* "[collector host:port]" */
	uint64_t sent_seq;
	uint64_t committed;
	/* the collector's limits (Welcome): a stored batch above them is
	 * replaced by smaller ones before it is sent */
	size_t max_events, max_body;
	uint64_t too_large;	  /* events dropped: alone above max_body */
	uint64_t refused;	  /* events of batches the collector refused for good */
	bool replace_logged;	  /* this connection said it replaces batches */
	uint64_t replace_waiting; /* seq whose replacement must wait, logged */
	int64_t hb_ms;
	int64_t last_tx_ns, last_rx_ns;
	uint64_t rng;
	/* certificate renewal (renew.h) */
	bool renew_sent;	   /* a RenewRequest went out on this connection */
	bool renew_reconnect;	   /* renewed: reconnect once nothing is in flight */
	bool renew_waiting;	   /* ... and not answered yet */
	uint32_t renew_unanswered; /* connections lost while waiting, in a row */
	int64_t renew_retry_ns;	   /* no request before this (Unix ns) */
	int64_t renew_backoff_ms;
	int64_t renewed_ns; /* last renewal (Unix ns), 0 if none */
};

const char *uplink_state_str(uplink_state_t st)
{
	switch (st) {
	case UPLINK_ST_WAIT:
		return "wait";
	case UPLINK_ST_CONNECTING:
		return "connecting";
	case UPLINK_ST_HELLO:
		return "hello";
	case UPLINK_ST_READY:
		return "ready";
	case UPLINK_ST_STOPPED:
		return "stopped";
	}
	return "?";
}

static void set_state(uplink_t *u, uplink_state_t st)
{
	if (u->state == st)
		return;
	log_debug("uplink %s -> %s", uplink_state_str(u->state), uplink_state_str(st));
	u->state = st;
}

static struct timeval tv_ms(int64_t ms)
{
	if (ms < 0)
		ms = 0;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	return tv;
}

static uint32_t rnd(uplink_t *u)
{
	u->rng ^= u->rng << 13;
	u->rng ^= u->rng >> 7;
	u->rng ^= u->rng << 17;
	return (uint32_t)(u->rng >> 16);
}

int uplink_parse_address(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;
	size_t hl;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		s++;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -1;
		hl = (size_t)(colon - s);
	}
	const char *p = colon + 1;
	size_t pl = strlen(p);
	if (hl == 0 || hl >= hostlen || pl == 0 || pl >= portlen || pl > 5 ||
	    strspn(p, "0123456789") != pl || atoi(p) == 0 || atoi(p) > 65535)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memcpy(port, p, pl + 1);
	return 0;
}

/* The idx-th comma-separated address of the setting into out. */
static size_t address_at(const char *list, size_t idx, char *out, size_t n)
{
	size_t count = 0;
	const char *p = list;
	while (p && *p) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		while (len && *p == ' ') {
			p++;
			len--;
		}
		while (len && p[len - 1] == ' ')
			len--;
		if (len) {
			if (count == idx && len < n) {
				memcpy(out, p, len);
				out[len] = '\0';
			}
			count++;
		}
		p = c ? c + 1 : NULL;
	}
	return count;
}

static void drop_bev(uplink_t *u)
{
	if (u->bev) {
		bufferevent_free(u->bev);
		u->bev = NULL;
	}
	tls_clear_errors();
	evtimer_del(u->hb);
	evtimer_del(u->timer);
	evtimer_del(u->renew_ev);
}

/* Leave the connection (once), log why, and schedule the next attempt:
 * the next address at once, or after a jittered backoff once every
 * address failed in a row. */
static void uplink_fail(uplink_t *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void renew_later(uplink_t *u);

static void uplink_fail(uplink_t *u, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	bool was_ready = u->state == UPLINK_ST_READY;
	/* a renewal request lost with its connection is sent again on the
	 * next one; lost twice in a row (a collector that drops it?), later */
	if (u->renew_waiting && ++u->renew_unanswered >= 2)
		renew_later(u);
	u->renew_waiting = false;
	drop_bev(u);
	if (u->state == UPLINK_ST_STOPPED)
		return;
	if (was_ready || u->fails_in_row == 0)
		log_msg(LOG_LVL_WARN, u->prefix, "%s%s", why,
			was_ready ? "; reconnecting (batches stay in the spool)" : "");
	else
		log_msg(LOG_LVL_INFO, u->prefix, "%s", why);
	set_state(u, UPLINK_ST_WAIT);
	u->fails_in_row++;
	u->addr_idx++;
	int64_t delay = 0;
	if (u->n_addrs == 0 || u->addr_idx >= u->n_addrs) {
		u->addr_idx = 0;
		/* a whole round failed: back off */
		int64_t b = u->backoff_ms;
		delay = b / 2 + (int64_t)(rnd(u) % (uint32_t)(b / 2 + 1));
		u->backoff_ms = b * 2 > u->s->backoff_max_ms ? u->s->backoff_max_ms : b * 2;
	}
	struct timeval tv = tv_ms(delay);
	evtimer_add(u->timer, &tv);
}

static int send_msg(uplink_t *u, const Vigil__V1__AgentMessage *m)
{
	size_t len = 0;
	uint8_t *frame = wire_frame_agent(m, FRAME_DEFAULT_MAX_BYTES, &len);
	if (!frame)
		return -1;
	int rc = bufferevent_write(u->bev, frame, len);
	free(frame);
	u->last_tx_ns = vtime_mono_ns();
	return rc;
}

/* Record r is above the collector's limits: put its events back into the
 * spool as batches within them (an event larger than any batch may be is
 * dropped and counted). Return 0, or -1 if that must wait. */
static int replace(uplink_t *u, const spool_rec_t *r)
{
	batch_piece_t *bp = NULL;
	uint32_t too_large = 0;
	int n = batch_split(r->data, r->len, u->max_events, u->max_body, &bp, &too_large);
	if (n == -2)
		return -1;
	if (n < 0) {
		log_msg(LOG_LVL_ERROR, u->prefix,
			"batch %" PRIu64 " in the spool does not parse; its %" PRIu32
			" events are dropped",
			r->seq, r->n_events);
		n = 0;
		too_large = r->n_events;
	}
	spool_piece_t *pieces = n ? calloc((size_t)n, sizeof(*pieces)) : NULL;
	if (n && !pieces) {
		free(bp);
		return -1;
	}
	for (int i = 0; i < n; i++)
		pieces[i] = (spool_piece_t){r->data + bp[i].off, bp[i].len, bp[i].n_events,
					    r->first_ns, r->last_ns};
	int rc = spool_replace(u->sp, r, pieces, (size_t)n);
	free(pieces);
	free(bp);
	if (rc != 0) {
		if (u->replace_waiting != r->seq)
			log_msg(LOG_LVL_WARN, u->prefix,
				"batch %" PRIu64 " is above the collector's limits and cannot be "
				"replaced by smaller ones yet; trying again later",
				r->seq);
		u->replace_waiting = r->seq;
		return -1;
	}
	if (!u->replace_logged) {
		char events[32] = "any number of";
		if (u->max_events != SIZE_MAX)
			snprintf(events, sizeof(events), "%zu", u->max_events);
		log_msg(LOG_LVL_INFO, u->prefix,
			"spooled batches above the collector's limits (%s events, %zu bytes) "
			"are sent again as smaller batches",
			events, u->max_body);
	}
	u->replace_logged = true;
	log_debug("batch %" PRIu64 " (%" PRIu32 " events, %zu bytes) replaced by %d batches",
		  r->seq, r->n_events, r->len, n);
	if (too_large) {
		u->too_large += too_large;
		log_msg(LOG_LVL_WARN, u->prefix,
			"batch %" PRIu64 ": %" PRIu32 " events above the collector's frame limit "
			"were dropped",
			r->seq, too_large);
	}
	return 0;
}

/* Send spooled batches after sent_seq while the window allows. */
static void pump(uplink_t *u)
{
	while (u->state == UPLINK_ST_READY && !u->renew_reconnect &&
	       u->sent_seq - u->committed < (uint64_t)u->s->max_inflight_batches &&
	       evbuffer_get_length(bufferevent_get_output(u->bev)) < OUT_HIGH_BYTES) {
		spool_rec_t r;
		int rc = spool_read_after(u->sp, u->sent_seq, &r);
		if (rc <= 0)
			return;
		if (r.n_events > u->max_events || r.len > u->max_body) {
			rc = replace(u, &r);
			free(r.data);
			if (rc != 0)
				return;
			continue; /* r is skipped now */
		}
		size_t len;
		uint8_t *frame = batch_frame(r.seq, r.data, r.len, &len);
		free(r.data);
		if (!frame) {
			uplink_fail(u, "out of memory framing batch %" PRIu64, r.seq);
			return;
		}
		int wrc = bufferevent_write(u->bev, frame, len);
		free(frame);
		if (wrc != 0) {
			uplink_fail(u, "cannot queue batch %" PRIu64, r.seq);
			return;
		}
		u->sent_seq = r.seq;
		u->last_tx_ns = vtime_mono_ns();
	}
}

/* ---- certificate renewal ---------------------------------------------------- */

/* Once per connection, when the certificate in use is at two thirds of
 * its lifetime: ask for a new one for the same key. */
static void renew_maybe(uplink_t *u)
{
	int64_t nb = 0, na = 0, now = vtime_now_ns();
	if (u->state != UPLINK_ST_READY || u->renew_sent || u->renew_reconnect ||
	    renew_cert_validity(u->ctx, &nb, &na) != 0 || na <= nb)
		return;
	if (now < u->renew_retry_ns || !certfile_renew_due(nb, na, now)) {
		/* come back when it is due: the point at two thirds, or the end
		 * of a backoff */
		int64_t when = na - (int64_t)(((uint64_t)na - (uint64_t)nb) / 3);
		if (when < u->renew_retry_ns)
			when = u->renew_retry_ns;
		struct timeval tv = tv_ms((when - now) / 1000000 + 1);
		evtimer_add(u->renew_ev, &tv);
		return;
	}
	uint8_t *csr = NULL;
	size_t len = 0;
	char err[400], until[64];
	if (renew_csr(u->ctx, u->host->hostname, &csr, &len, err, sizeof(err)) != 0) {
		log_msg(LOG_LVL_ERROR, u->prefix, "cannot make a renewal request: %s", err);
		u->renew_retry_ns = now + u->renew_backoff_ms * 1000000;
		return;
	}
	Vigil__V1__RenewRequest r = VIGIL__V1__RENEW_REQUEST__INIT;
	r.csr_der = (ProtobufCBinaryData){len, csr};
	Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_RENEW;
	m.renew = &r;
	int rc = send_msg(u, &m);
	free(csr);
	u->renew_sent = true; /* once per connection, sent or not */
	u->renew_waiting = rc == 0;
	certfile_time_str(na, until, sizeof(until));
	if (rc == 0)
		log_msg(LOG_LVL_INFO, u->prefix,
			"certificate valid until %s: asking the collector to renew it", until);
}

static void renew_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	renew_maybe(arg);
}

/* Renewed: reconnect (with the new certificate) once every batch sent is
 * acknowledged. */
static void renew_switch(uplink_t *u)
{
	if (!u->renew_reconnect || u->state != UPLINK_ST_READY || u->sent_seq != u->committed)
		return;
	u->renew_reconnect = false;
	log_msg(LOG_LVL_INFO, u->prefix, "reconnecting with the renewed certificate");
	drop_bev(u);
	set_state(u, UPLINK_ST_WAIT);
	struct timeval tv = {0, 0};
	evtimer_add(u->timer, &tv);
}

static void renew_later(uplink_t *u)
{
	u->renew_retry_ns = vtime_now_ns() + u->renew_backoff_ms * 1000000;
	u->renew_backoff_ms = u->renew_backoff_ms * 2 > RENEW_BACKOFF_MAX_MS
				      ? RENEW_BACKOFF_MAX_MS
				      : u->renew_backoff_ms * 2;
}

static void on_renew_refused(uplink_t *u, const char *msg)
{
	u->renew_waiting = false;
	u->renew_unanswered = 0;
	log_msg(LOG_LVL_WARN, u->prefix,
		"the collector refused to renew the certificate: %.200s; asking again in %" PRId64
		" s, on a later connection",
		msg ? msg : "", u->renew_backoff_ms / 1000);
	renew_later(u);
}

static void on_renewed(uplink_t *u, const Vigil__V1__RenewResponse *r)
{
	if (!u->renew_waiting) {
		log_msg(LOG_LVL_WARN, u->prefix, "RenewResponse not asked for; ignored");
		return;
	}
	u->renew_waiting = false;
	u->renew_unanswered = 0;
	char err[600], until[64];
	int64_t na = 0, now = vtime_now_ns();
	SSL_CTX *ctx = NULL;
	if (renew_save(u->s, u->ctx, r, &na, err, sizeof(err)) != 0 ||
	    !(ctx = renew_load_ctx(u->s, err, sizeof(err)))) {
		log_msg(LOG_LVL_ERROR, u->prefix,
			"renewed certificate not used: %s; keeping the current one", err);
		renew_later(u);
		return;
	}
	uplink_set_tls(u, ctx);
	tls_ctx_unref(ctx);
	u->renewed_ns = now;
	u->renew_backoff_ms = RENEW_BACKOFF_MIN_MS;
	/* A certificate backdated by the collector may be at two thirds of its
	 * life at once: the next renewal waits a quarter of what is left. */
	u->renew_retry_ns = na > now ? now + (na - now) / 4 : now;
	u->renew_reconnect = true;
	certfile_time_str(na, until, sizeof(until));
	log_msg(LOG_LVL_INFO, u->prefix,
		"certificate renewed, valid until %s, written to %s; used from the next "
		"connection (after %" PRIu64 " batches in flight are acknowledged)",
		until, u->s->tls_cert, u->sent_seq - u->committed);
	renew_switch(u);
}

static void hb_arm(uplink_t *u)
{
	struct timeval tv = tv_ms(u->hb_ms / 2 > 100 ? u->hb_ms / 2 : 100);
	evtimer_add(u->hb, &tv);
}

static void hb_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	uplink_t *u = arg;
	if (u->state != UPLINK_ST_READY)
		return;
	int64_t now = vtime_mono_ns();
	int64_t live_ms = 3 * u->hb_ms > LIVENESS_MIN_MS ? 3 * u->hb_ms : LIVENESS_MIN_MS;
	if (now - u->last_rx_ns > live_ms * 1000000) {
		uplink_fail(u, "nothing from the collector for %" PRId64 " ms", live_ms);
		return;
	}
	if (now - u->last_tx_ns >= u->hb_ms * 1000000) {
		Vigil__V1__Heartbeat h = VIGIL__V1__HEARTBEAT__INIT;
		h.time_ns = vtime_now_ns();
		Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
		m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_HEARTBEAT;
		m.heartbeat = &h;
		send_msg(u, &m);
	}
	pump(u); /* also retries after the output buffer drained */
	hb_arm(u);
}

static void on_welcome(uplink_t *u, const Vigil__V1__Welcome *w)
{
	if (w->protocol_version != WIRE_PROTOCOL_VERSION && w->protocol_version != 0) {
		uplink_fail(u, "collector speaks protocol %u, this agent %u", w->protocol_version,
			    WIRE_PROTOCOL_VERSION);
		return;
	}
	evtimer_del(u->timer);
	u->max_events = w->max_batch_events ? w->max_batch_events : SIZE_MAX;
	u->max_body =
		batch_body_max(w->max_frame_bytes ? w->max_frame_bytes : FRAME_DEFAULT_MAX_BYTES);
	u->replace_logged = false;
	spool_set_committed(u->sp, w->committed_seq);
	spool_stats_t st;
	spool_get_stats(u->sp, &st);
	u->committed = st.acked_seq > w->committed_seq ? st.acked_seq : w->committed_seq;
	u->sent_seq = u->committed;
	u->hb_ms = u->s->heartbeat_interval_ms;
	if (w->heartbeat_interval_ms && w->heartbeat_interval_ms < u->hb_ms)
		u->hb_ms = w->heartbeat_interval_ms;
	log_msg(u->fails_in_row ? LOG_LVL_INFO : LOG_LVL_INFO, u->prefix,
		"connected as %s; collector has up to seq %" PRIu64 ", %" PRIu64
		" spooled batches to send",
		w->agent_id ? w->agent_id : "?", w->committed_seq, st.last_seq - u->committed);
	u->fails_in_row = 0;
	u->round_failed = false;
	u->backoff_ms = u->s->backoff_min_ms;
	u->renew_sent = false;
	u->renew_reconnect = false;
	u->renew_waiting = false;
	set_state(u, UPLINK_ST_READY);
	hb_arm(u);
	renew_maybe(u);
	if (u->cbs.on_ready)
		u->cbs.on_ready(u->arg, w->committed_seq, w->known_image_ids, w->n_known_image_ids);
	pump(u);
}

static void on_ack(uplink_t *u, uint64_t seq)
{
	if (seq > u->sent_seq) {
		log_msg(LOG_LVL_WARN, u->prefix,
			"Ack %" PRIu64 " for a batch not sent (last %" PRIu64 ")", seq,
			u->sent_seq);
		seq = u->sent_seq;
	}
	if (seq <= u->committed)
		return;
	u->committed = seq;
	spool_ack(u->sp, seq);
	pump(u);
	renew_switch(u);
}

static const char *error_code_name(int code)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&vigil__v1__error_code__descriptor, code);
	return v ? v->name : "unknown";
}

/* The collector refused batch seq for good (it would refuse it again):
 * skip it in the spool, across restarts, and count its events as lost. */
static void drop_refused(uplink_t *u, uint64_t seq)
{
	spool_rec_t r;
	if (seq == 0 || seq <= u->committed || seq > u->sent_seq ||
	    spool_read_after(u->sp, seq - 1, &r) != 1)
		return;
	if (r.seq == seq && spool_replace(u->sp, &r, NULL, 0) == 0) {
		u->refused += r.n_events;
		log_msg(LOG_LVL_ERROR, u->prefix,
			"batch %" PRIu64 " (%" PRIu32 " events) refused by the collector for good; "
			"dropped from the spool",
			seq, r.n_events);
	}
	free(r.data);
}

/* Return 0 to go on reading, -1 if the connection is gone. */
static int on_message(uplink_t *u, const Vigil__V1__CollectorMessage *m)
{
	switch (m->msg_case) {
	case VIGIL__V1__COLLECTOR_MESSAGE__MSG_WELCOME:
		if (u->state != UPLINK_ST_HELLO) {
			uplink_fail(u, "protocol: Welcome when not expected");
			return -1;
		}
		on_welcome(u, m->welcome);
		return u->state == UPLINK_ST_READY ? 0 : -1;
	case VIGIL__V1__COLLECTOR_MESSAGE__MSG_ACK:
		if (u->state != UPLINK_ST_READY) {
			uplink_fail(u, "protocol: Ack before Welcome");
			return -1;
		}
		on_ack(u, m->ack->seq);
		return u->state == UPLINK_ST_READY ? 0 : -1;
	case VIGIL__V1__COLLECTOR_MESSAGE__MSG_HEARTBEAT:
		return 0;
	case VIGIL__V1__COLLECTOR_MESSAGE__MSG_RENEWED:
		if (u->state != UPLINK_ST_READY) {
			uplink_fail(u, "protocol: RenewResponse before Welcome");
			return -1;
		}
		on_renewed(u, m->renewed);
		return u->state == UPLINK_ST_READY ? 0 : -1;
	case VIGIL__V1__COLLECTOR_MESSAGE__MSG_ERROR:
		if (m->error->code == VIGIL__V1__ERROR_CODE__ERROR_CODE_RENEW_REFUSED &&
		    u->state == UPLINK_ST_READY) {
			on_renew_refused(u, m->error->message);
			return 0;
		}
		if (m->error->code == VIGIL__V1__ERROR_CODE__ERROR_CODE_BATCH_REFUSED)
			drop_refused(u, m->error->seq);
		uplink_fail(u, "collector error %s: %.200s", error_code_name(m->error->code),
			    m->error->message ? m->error->message : "");
		return -1;
	default:
		uplink_fail(u, "protocol: unknown message from the collector");
		return -1;
	}
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	uplink_t *u = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (int k = 0; k < 1024; k++) {
		size_t avail = evbuffer_get_length(in);
		if (avail < FRAME_HEADER_BYTES)
			return;
		uint8_t hdr[FRAME_HEADER_BYTES];
		evbuffer_copyout(in, hdr, sizeof(hdr));
		uint32_t n = 0;
		frame_status_t fs = frame_check(hdr, sizeof(hdr), FRAME_DEFAULT_MAX_BYTES, &n);
		if (fs == FRAME_EMPTY || fs == FRAME_TOO_LARGE) {
			uplink_fail(u, "protocol: %s from the collector", frame_status_str(fs));
			return;
		}
		if (avail < FRAME_HEADER_BYTES + (size_t)n)
			return;
		const uint8_t *p = evbuffer_pullup(in, FRAME_HEADER_BYTES + (ssize_t)n);
		Vigil__V1__CollectorMessage *m =
			p ? wire_collector_unpack(p + FRAME_HEADER_BYTES, n) : NULL;
		evbuffer_drain(in, FRAME_HEADER_BYTES + (size_t)n);
		u->last_rx_ns = vtime_mono_ns();
		if (!m) {
			uplink_fail(u, "protocol: undecodable message from the collector");
			return;
		}
		int rc = on_message(u, m);
		wire_collector_free(m);
		if (rc != 0)
			return;
	}
	/* Frames are left after this bounded pass: come back for them after
	 * the loop has served the rest, not when more bytes happen to arrive. */
	if (evbuffer_get_length(in) >= FRAME_HEADER_BYTES)
		bufferevent_trigger(bev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	pump(arg);
}

static void send_hello(uplink_t *u)
{
	Vigil__V1__Hello h = VIGIL__V1__HELLO__INIT;
	h.protocol_version = WIRE_PROTOCOL_VERSION;
	h.agent_version = (char *)u->host->agent_version;
	h.hostname = (char *)u->host->hostname;
	h.boot_id = (char *)u->host->boot_id;
	h.kernel = (char *)u->host->kernel;
	h.os = (char *)u->host->os;
	h.agent_time_ns = vtime_now_ns();
	if (u->cbs.hello_images)
		h.n_image_ids = u->cbs.hello_images(u->arg, &h.image_ids);
	Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_HELLO;
	m.hello = &h;
	if (send_msg(u, &m) != 0) {
		uplink_fail(u, "cannot send Hello");
		return;
	}
	set_state(u, UPLINK_ST_HELLO);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	uplink_t *u = arg;
	if (what & BEV_EVENT_CONNECTED) {
		/* a close without close_notify is an end of stream, not an attack */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		int one = 1;
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		u->last_rx_ns = vtime_mono_ns();
		send_hello(u);
		return;
	}
	int sock_err = EVUTIL_SOCKET_ERROR();
	unsigned long ssl_err = 0, e;
	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (ERR_GET_LIB(e) != 0)
			ssl_err = e;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	char why[400];
	if (u->state == UPLINK_ST_CONNECTING &&
	    (ssl_err || SSL_get_verify_result(ssl) != X509_V_OK)) {
		tls_failure_reason(ssl, ssl_err, why, sizeof(why));
		uplink_fail(u, "TLS handshake failed: %s", why);
	} else if (what & BEV_EVENT_EOF) {
		uplink_fail(u, "collector closed the connection%s",
			    u->state == UPLINK_ST_CONNECTING ? " during the TLS handshake" : "");
	} else if (sock_err) {
		uplink_fail(u, "%s%s", u->state == UPLINK_ST_CONNECTING ? "connect: " : "",
			    evutil_socket_error_to_string(sock_err));
	} else {
		uplink_fail(u, "connection error");
	}
}

static bool is_ip_literal(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;
	return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

static void connect_now(uplink_t *u)
{
	char addr[300] = "", host[256], port[8];
	u->n_addrs = address_at(u->s->collectors, 0, addr, sizeof(addr));
	if (u->addr_idx >= u->n_addrs)
		u->addr_idx = 0;
	address_at(u->s->collectors, u->addr_idx, addr, sizeof(addr));
	snprintf(u->peer, sizeof(u->peer), "%s", addr);
	snprintf(u->prefix, sizeof(u->prefix), "[collector %s]", addr);
	set_state(u, UPLINK_ST_CONNECTING);
	if (u->reconnects++ == 0)
		log_msg(LOG_LVL_INFO, u->prefix, "connecting");
	if (uplink_parse_address(addr, host, sizeof(host), port, sizeof(port)) != 0) {
		uplink_fail(u, "'%s' is not host:port", addr);
		return;
	}
	struct evutil_addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	/* Blocking resolution: collector names come from /etc/hosts or a
	 * local resolver; an IP address resolves without any lookup. */
	int gai = evutil_getaddrinfo(host, port, &hints, &res);
	if (gai != 0 || !res) {
		uplink_fail(u, "cannot resolve %s: %s", host, evutil_gai_strerror(gai));
		return;
	}
	/* Prefer IPv4: collectors listen on 0.0.0.0 by default. */
	struct evutil_addrinfo *pick = res;
	for (struct evutil_addrinfo *r = res; r; r = r->ai_next)
		if (r->ai_family == AF_INET) {
			pick = r;
			break;
		}
	const char *name = u->s->server_name[0] ? u->s->server_name : host;
	SSL *ssl;
	if (is_ip_literal(name)) {
		ssl = tls_ssl_new(u->ctx, NULL);
		if (ssl && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1) {
			SSL_free(ssl);
			ssl = NULL;
		}
	} else {
		ssl = tls_ssl_new(u->ctx, name);
	}
	if (!ssl) {
		evutil_freeaddrinfo(res);
		tls_log_errors(u->prefix, "cannot set up TLS");
		uplink_fail(u, "cannot set up TLS for %s", name);
		return;
	}
	u->bev = bufferevent_openssl_socket_new(u->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (!u->bev) {
		/* out of memory; libevent may have freed ssl already (see conn.c) */
		evutil_freeaddrinfo(res);
		uplink_fail(u, "cannot create a connection");
		return;
	}
	bufferevent_setcb(u->bev, read_cb, write_cb, event_cb, u);
	bufferevent_enable(u->bev, EV_READ | EV_WRITE);
	struct timeval tv = tv_ms(u->s->connect_timeout_ms);
	evtimer_add(u->timer, &tv);
	int rc = bufferevent_socket_connect(u->bev, pick->ai_addr, (int)pick->ai_addrlen);
	int err = errno;
	evutil_freeaddrinfo(res);
	if (rc != 0)
		uplink_fail(u, "connect: %s", strerror(err));
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	uplink_t *u = arg;
	switch (u->state) {
	case UPLINK_ST_WAIT:
		connect_now(u);
		break;
	case UPLINK_ST_CONNECTING:
	case UPLINK_ST_HELLO:
		uplink_fail(u, "no Welcome within %" PRId64 " ms of connecting",
			    u->s->connect_timeout_ms);
		break;
	default:
		break;
	}
}

uplink_t *uplink_new(struct event_base *base, const settings_t *s, spool_t *sp,
		     const hostinfo_t *host, SSL_CTX *ctx, const uplink_cbs_t *cbs, void *arg)
{
	uplink_t *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->base = base;
	u->s = s;
	u->sp = sp;
	u->host = host;
	u->ctx = ctx;
	tls_ctx_ref(ctx);
	if (cbs)
		u->cbs = *cbs;
	u->arg = arg;
	u->backoff_ms = s->backoff_min_ms;
	u->renew_backoff_ms = RENEW_BACKOFF_MIN_MS;
	u->hb_ms = s->heartbeat_interval_ms;
	u->max_events = SIZE_MAX;
	u->max_body = batch_body_max(FRAME_DEFAULT_MAX_BYTES);
	u->rng = (uint64_t)vtime_mono_ns() | 1;
	u->timer = evtimer_new(base, timer_cb, u);
	u->hb = evtimer_new(base, hb_cb, u);
	u->renew_ev = evtimer_new(base, renew_cb, u);
	snprintf(u->prefix, sizeof(u->prefix), "[collector]");
	if (!u->timer || !u->hb || !u->renew_ev) {
		uplink_free(u);
		return NULL;
	}
	return u;
}

void uplink_free(uplink_t *u)
{
	if (!u)
		return;
	if (u->bev)
		bufferevent_free(u->bev);
	if (u->timer)
		event_free(u->timer);
	if (u->hb)
		event_free(u->hb);
	if (u->renew_ev)
		event_free(u->renew_ev);
	tls_ctx_unref(u->ctx);
	free(u);
}

void uplink_start(uplink_t *u)
{
	int64_t nb = 0, na = 0;
	if (renew_cert_validity(u->ctx, &nb, &na) == 0 && na > nb) {
		char until[64], from[64];
		certfile_time_str(na, until, sizeof(until));
		certfile_time_str(na - (int64_t)(((uint64_t)na - (uint64_t)nb) / 3), from,
				  sizeof(from));
		log_info("certificate valid until %s; renewed over the uplink from %s", until,
			 from);
	}
	set_state(u, UPLINK_ST_WAIT);
	struct timeval tv = {0, 0};
	evtimer_add(u->timer, &tv);
}

void uplink_kick(uplink_t *u)
{
	pump(u);
}

void uplink_set_tls(uplink_t *u, SSL_CTX *ctx)
{
	tls_ctx_ref(ctx);
	tls_ctx_unref(u->ctx);
	u->ctx = ctx;
}

void uplink_stop(uplink_t *u)
{
	set_state(u, UPLINK_ST_STOPPED);
	drop_bev(u);
}

uplink_state_t uplink_state(const uplink_t *u)
{
	return u->state;
}

bool uplink_all_acked(const uplink_t *u)
{
	spool_stats_t st;
	spool_get_stats(u->sp, &st);
	if (u->state != UPLINK_ST_READY)
		return false;
	if (u->committed >= st.last_seq)
		return true;
	/* what is left may be skipped records only (replaced batches) */
	spool_rec_t r;
	int rc = spool_read_after(u->sp, u->committed, &r);
	if (rc == 1)
		free(r.data);
	return rc == 0;
}

void uplink_fit_limits(const uplink_t *u, size_t *max_events, size_t *max_bytes)
{
	if (*max_events > u->max_events)
		*max_events = u->max_events;
	if (*max_bytes > u->max_body)
		*max_bytes = u->max_body;
}

uint64_t uplink_events_too_large(const uplink_t *u)
{
	return u->too_large;
}

uint64_t uplink_events_refused(const uplink_t *u)
{
	return u->refused;
}

uint64_t uplink_reconnects(const uplink_t *u)
{
	return u->reconnects;
}

int64_t uplink_cert_not_after_ns(const uplink_t *u)
{
	int64_t nb = 0, na = 0;
	return renew_cert_validity(u->ctx, &nb, &na) == 0 ? na : 0;
}

int64_t uplink_renewed_ns(const uplink_t *u)
{
	return u->renewed_ns;
}
