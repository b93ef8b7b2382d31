// SPDX-License-Identifier: Apache-2.0
/*
 * An agent connection's lifecycle (see conn.h). State changes go through
 * set_state; a connection leaves through conn_close, which records why
 * once. A closed connection stays allocated while jobs still refer to it
 * and is freed by the worker after the loop pass.
 */
#include "ingest/conn.h"
#include "enroll/service.h"
#include "ingest/conn_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "frame.h"
#include "ingest/batchjob.h"
#include "log.h"
#include "tls.h"
#include "utf8.h"
#include "vtime.h"
#include "wire.h"

#define CLOSE_FLUSH_NS (INT64_C(5) * 1000000000)
#define READ_HIGH_WATER (256 * 1024)

const char *conn_state_str(conn_state_t st)
{
	switch (st) {
	case CONN_ST_HANDSHAKE:
		return "handshake";
	case CONN_ST_WAIT_HELLO:
		return "wait-hello";
	case CONN_ST_HELLO_PENDING:
		return "hello-pending";
	case CONN_ST_READY:
		return "ready";
	case CONN_ST_CLOSING:
		return "closing";
	}
	return "?";
}

static void set_state(conn_t *c, conn_state_t st)
{
	log_debug("%s %s -> %s", c->prefix, conn_state_str(c->state), conn_state_str(st));
	c->state = st;
}

uint64_t conn_id(const conn_t *c)
{
	return c->id;
}

conn_t *conn_next(const conn_t *c)
{
	return c->next;
}

bool conn_is_dead(const conn_t *c)
{
	return c->state == CONN_ST_CLOSING && !c->bev && c->refs == 0;
}

static void finalize(conn_t *c)
{
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
		atomic_fetch_sub(&c->col->n_conns, 1);
	}
	worker_schedule_reap(c->w);
}

void conn_send(conn_t *c, const Vigil__V1__CollectorMessage *m)
{
	if (!c->bev)
		return;
	size_t len = 0;
	uint8_t *frame = wire_frame_collector(m, FRAME_DEFAULT_MAX_BYTES, &len);
	if (!frame) {
		log_msg(LOG_LVL_ERROR, c->prefix, "cannot encode a reply");
		return;
	}
	bufferevent_write(c->bev, frame, len);
	free(frame);
	c->last_tx_ns = vtime_mono_ns();
}

void conn_close(conn_t *c, log_level_t lvl, int code, const char *fmt, ...)
{
	if (c->state == CONN_ST_CLOSING)
		return;
	pending_leave(c);
	if (c->established) {
		c->established = false;
		atomic_fetch_sub(&c->col->n_established, 1);
	}
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* Anyone who can connect can make these lines: bounded, with a count
	 * of what was left out (unproven connections: before Hello). */
	static log_limit_t unproven = LOG_LIMIT_INIT(20, 10), agents = LOG_LIMIT_INIT(200, 10);
	bool proven = c->state != CONN_ST_HANDSHAKE && c->state != CONN_ST_WAIT_HELLO;
	log_limited(proven ? &agents : &unproven, lvl, c->prefix, "closing (%s): %s",
		    conn_state_str(c->state), why);
	bool tls_up = c->state != CONN_ST_HANDSHAKE;
	/* Nothing of its queued jobs was acknowledged: the writer skips them. */
	for (job_t *j = c->jobs; j; j = j->conn_next) {
		atomic_store(&j->dropped, true);
		if (j->enroll)
			atomic_store(&j->enroll->cancelled, true);
	}
	ingest_release(c->col->ingest, c->reserved);
	c->reserved = 0;
	if (c->registered) {
		collector_unregister(c->col, c->agent, c->id);
		c->registered = false;
	}
	set_state(c, CONN_ST_CLOSING);
	c->closing_ns = vtime_mono_ns();
	if (!c->bev) {
		finalize(c);
		return;
	}
	bufferevent_disable(c->bev, EV_READ);
	if (code && tls_up) {
		Vigil__V1__Error err = VIGIL__V1__ERROR__INIT;
		err.code = (Vigil__V1__ErrorCode)code;
		err.message = why;
		if (code == VIGIL__V1__ERROR_CODE__ERROR_CODE_BATCH_REFUSED)
			err.seq = c->refused_seq;
		Vigil__V1__CollectorMessage m = VIGIL__V1__COLLECTOR_MESSAGE__INIT;
		m.msg_case = VIGIL__V1__COLLECTOR_MESSAGE__MSG_ERROR;
		m.error = &err;
		conn_send(c, &m);
	}
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		finalize(c);
	/* else write_cb finalizes once the Error is out, or conn_tick gives up */
}

void conn_protocol_error(conn_t *c, int code, const char *fmt, ...)
{
	char why[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&c->col->counters.protocol_errors, 1);
	conn_close(c, LOG_LVL_WARN, code, "protocol error: %s", why);
}

void conn_pause_reading(conn_t *c)
{
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ);
}

static bool paused(const conn_t *c)
{
	/* an enrolling connection reads nothing more once it has asked */
	return c->paused_inflight || c->paused_queue || c->draining ||
	       (c->enrolling && c->enroll_pending);
}

static void process_input(conn_t *c);

static void maybe_resume(conn_t *c)
{
	if (c->state == CONN_ST_CLOSING || c->draining)
		return;
	if (c->paused_inflight && c->inflight < SETTING(c->col, max_inflight_batches))
		c->paused_inflight = false;
	if (c->paused_queue &&
	    ingest_queued_bytes(c->col->ingest) < (size_t)SETTING(c->col, queue_low_bytes))
		c->paused_queue = false;
	if (!paused(c) && c->bev && !(bufferevent_get_enabled(c->bev) & EV_READ)) {
		bufferevent_enable(c->bev, EV_READ);
		c->frame_start_ns = 0;
		c->last_rx_ns = vtime_mono_ns();
		process_input(c); /* frames that arrived while paused */
	}
}

void conn_resume(conn_t *c)
{
	maybe_resume(c);
}

/* ---- messages -------------------------------------------------------- */

/* Copy an agent-supplied string, capped and repaired, into dst. */
static void copy_field(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
	utf8_sanitize(dst); /* the cut may have split a sequence: repaired too */
}

/* Hello.image_ids as a JSON array for the writer's lookup: at most
 * HELLO_IMAGES_MAX ids, each non-empty UTF-8 of at most HELLO_STRING_MAX
 * bytes (others are passed over: the agent then sends their inventory
 * again, which the collector does not rewrite). NULL when out of memory. */
#define HELLO_IMAGES_MAX 4096

static char *hello_images(const Vigil__V1__Hello *h)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < h->n_image_ids && i < HELLO_IMAGES_MAX; i++) {
		const char *id = h->image_ids[i];
		size_t n = id ? strlen(id) : 0;
		if (n && n <= HELLO_STRING_MAX && utf8_valid(id, n))
			json_array_append_new(a, json_string_nocheck(id));
	}
	char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
}

static void on_hello(conn_t *c, const Vigil__V1__Hello *h)
{
	if (h->protocol_version != WIRE_PROTOCOL_VERSION) {
		conn_protocol_error(
			c, VIGIL__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED_VERSION,
			"protocol version %u is not supported (this collector speaks %u)",
			h->protocol_version, WIRE_PROTOCOL_VERSION);
		return;
	}
	job_t *j = job_new(JOB_HELLO);
	if (!j) {
		conn_close(c, LOG_LVL_ERROR, 0, "out of memory");
		return;
	}
	j->hello.protocol_version = h->protocol_version;
	copy_field(j->hello.agent_version, sizeof(j->hello.agent_version), h->agent_version);
	copy_field(j->hello.hostname, sizeof(j->hello.hostname), h->hostname);
	copy_field(j->hello.boot_id, sizeof(j->hello.boot_id), h->boot_id);
	copy_field(j->hello.kernel, sizeof(j->hello.kernel), h->kernel);
	copy_field(j->hello.os, sizeof(j->hello.os), h->os);
	if (h->claimed_agent_id && h->claimed_agent_id[0] &&
	    strcmp(h->claimed_agent_id, c->agent) != 0) {
		char claimed[HELLO_STRING_MAX + 1];
		copy_field(claimed, sizeof(claimed), h->claimed_agent_id);
		log_msg(LOG_LVL_WARN, c->prefix, "Hello claims agent id '%s'; ignored", claimed);
	}
	if (h->n_image_ids && !(j->hello_images = hello_images(h))) {
		job_free(j);
		conn_close(c, LOG_LVL_ERROR, 0, "out of memory");
		return;
	}
	int64_t skew_ns;
	if (h->agent_time_ns && !__builtin_sub_overflow(h->agent_time_ns, vtime_now_ns(), &skew_ns))
		j->clock_skew_ms = skew_ns / 1000000;
	snprintf(j->agent_name, sizeof(j->agent_name), "%s", c->agent);
	j->conn = c;
	j->worker_idx = worker_index(c->w);
	c->refs++;
	c->hello_pending = true;
	pending_leave(c);
	c->established = true;
	atomic_fetch_add(&c->col->n_established, 1);
	set_state(c, CONN_ST_HELLO_PENDING);
	ingest_submit(c->col->ingest, j);
}

static void on_batch(conn_t *c, const Vigil__V1__Batch *b, const uint8_t *payload, size_t len)
{
	if (b->seq == 0) {
		conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE,
				    "batch sequence numbers start at 1");
		return;
	}
	if (c->last_seq && b->seq <= c->last_seq) {
		conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_SEQ_BACKWARDS,
				    "batch seq %" PRIu64 " after %" PRIu64 " on this connection",
				    b->seq, c->last_seq);
		return;
	}
	/* One batch must not poison the identity: a seq that PostgreSQL's
	 * bigint cannot hold, or one far above what the agent has committed
	 * (after which every real batch would look like a replay), is refused,
	 * never acknowledged. An identity with nothing committed yet may start
	 * anywhere (its agent may have lost its row, not its spool). */
	if (b->seq > (uint64_t)INT64_MAX) {
		conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE,
				    "batch seq %" PRIu64 " is above 2^63-1", b->seq);
		return;
	}
	uint64_t gap = (uint64_t)SETTING(c->col, max_seq_gap);
	if (c->committed_seq && b->seq > c->committed_seq && b->seq - c->committed_seq > gap) {
		conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE,
				    "batch seq %" PRIu64 " is more than max_seq_gap (%" PRIu64
				    ") above the committed seq %" PRIu64,
				    b->seq, gap, c->committed_seq);
		return;
	}
	if (b->n_events > (size_t)SETTING(c->col, max_batch_events)) {
		conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE,
				    "batch of %zu events is above the limit of %lld", b->n_events,
				    (long long)SETTING(c->col, max_batch_events));
		return;
	}
	job_t *j = job_new(JOB_BATCH);
	rows_range_t range = {atomic_load(&c->col->range_lo_ns), atomic_load(&c->col->range_hi_ns)};
	rules_t *rules = SETTING(c->col, rules) ? rules_slot_get(c->col->rules) : NULL;
	if (rules && !c->subjects)
		c->subjects = rules_subjects_new(); /* NULL: exceptions see less */
	rules_ctx_t ctx = {rules, c->subjects, c->agent, vtime_now_ns()};
	char why[400];
	batchjob_rc_t rc = j ? batchjob_fill(c->col, j, (Vigil__V1__Batch *)b, payload, len,
					     &c->scan, c->agent_id, ctx.now_ns, range,
					     rules ? &ctx : NULL, why, sizeof(why))
			     : BATCHJOB_NOMEM;
	rules_unref(rules);
	if (rc != BATCHJOB_OK) {
		job_free(j);
		if (rc == BATCHJOB_REFUSED) {
			c->refused_seq = b->seq;
			conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_BATCH_REFUSED,
					    "%s", why);
		} else {
			conn_close(c, LOG_LVL_ERROR, 0, "out of memory");
		}
		return;
	}
	j->agent_id = c->agent_id;
	snprintf(j->agent_name, sizeof(j->agent_name), "%s", c->agent);
	j->conn = c;
	j->worker_idx = worker_index(c->w);
	if (j->rows.clamped)
		atomic_fetch_add(&c->col->counters.events_clamped, j->rows.clamped);
	c->refs++;
	c->inflight++;
	c->last_seq = b->seq;
	ingest_submit(c->col->ingest, j);
	if (c->inflight >= SETTING(c->col, max_inflight_batches)) {
		c->paused_inflight = true;
		conn_pause_reading(c);
	}
	if (ingest_queued_bytes(c->col->ingest) > (size_t)SETTING(c->col, queue_high_bytes)) {
		c->paused_queue = true;
		conn_pause_reading(c);
	}
}

static void on_message(conn_t *c, const Vigil__V1__AgentMessage *msg, const uint8_t *payload,
		       size_t len)
{
	if (!msg) {
		conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE,
				    "%zu bytes that are not a valid AgentMessage", len);
		return;
	}
	if (c->enrolling && msg->msg_case != VIGIL__V1__AGENT_MESSAGE__MSG_ENROLL) {
		conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE,
				    "a connection without a client certificate may only enroll");
		return;
	}
	switch (msg->msg_case) {
	case VIGIL__V1__AGENT_MESSAGE__MSG_HEARTBEAT:
		return;
	case VIGIL__V1__AGENT_MESSAGE__MSG_ENROLL:
		conn_on_enroll(c, msg->enroll);
		return;
	case VIGIL__V1__AGENT_MESSAGE__MSG_RENEW:
		if (c->state != CONN_ST_READY) {
			conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE,
					    "RenewRequest before Welcome");
			return;
		}
		if (!c->col->enroll) {
			conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_RENEW_REFUSED,
					    "this collector does not issue certificates");
			return;
		}
		conn_on_renew(c, msg->renew);
		return;
	case VIGIL__V1__AGENT_MESSAGE__MSG_HELLO:
		if (c->state != CONN_ST_WAIT_HELLO) {
			conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE,
					    "second Hello");
			return;
		}
		on_hello(c, msg->hello);
		return;
	case VIGIL__V1__AGENT_MESSAGE__MSG_BATCH:
		if (c->state != CONN_ST_READY) {
			conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_UNEXPECTED_MESSAGE,
					    "Batch before %s",
					    c->state == CONN_ST_WAIT_HELLO ? "Hello" : "Welcome");
			return;
		}
		on_batch(c, msg->batch, payload, len);
		return;
	default:
		conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE,
				    "unknown message type");
		return;
	}
}

/* Count frame of n bytes (buffered, then encoded) in the queue before it is
 * read whole; if it does not fit, pause reading and return false. */
static bool admit_frame(conn_t *c, uint32_t n)
{
	if (c->reserved)
		return true;
	size_t cost = 2 * ((size_t)n + FRAME_HEADER_BYTES);
	if (ingest_reserve(c->col->ingest, cost)) {
		c->reserved = cost;
		return true;
	}
	c->paused_queue = true;
	conn_pause_reading(c);
	return false;
}

/* Handle every whole frame in the input buffer while reading is allowed. */
static void process_input(conn_t *c)
{
	uint32_t max = (uint32_t)c->col->settings->max_frame_bytes;
	while (c->bev && c->state != CONN_ST_CLOSING && c->state != CONN_ST_HANDSHAKE &&
	       !paused(c)) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t have = evbuffer_get_length(in);
		if (have == 0) {
			c->frame_start_ns = 0;
			return;
		}
		uint8_t hdr[FRAME_HEADER_BYTES];
		uint32_t n = 0;
		frame_status_t st = FRAME_NEED_MORE;
		if (have >= FRAME_HEADER_BYTES) {
			evbuffer_copyout(in, hdr, sizeof(hdr));
			st = frame_check(hdr, sizeof(hdr), max, &n);
		}
		if (st == FRAME_EMPTY) {
			conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME,
					    "frame of length 0");
			return;
		}
		if (st == FRAME_TOO_LARGE) {
			conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE,
					    "frame of %u bytes is above the limit of %u", n, max);
			return;
		}
		if (have < FRAME_HEADER_BYTES || have - FRAME_HEADER_BYTES < n) {
			if (!c->frame_start_ns)
				c->frame_start_ns = vtime_mono_ns();
			/* let the buffer hold this one frame, no more, once the
			 * queue has room for it */
			size_t want = (size_t)n + FRAME_HEADER_BYTES;
			if (want > READ_HIGH_WATER && !admit_frame(c, n))
				return;
			bufferevent_setwatermark(c->bev, EV_READ, 0,
						 want > READ_HIGH_WATER ? want : READ_HIGH_WATER);
			return;
		}
		if (!admit_frame(c, n))
			return;
		uint8_t *frame = evbuffer_pullup(in, (ssize_t)n + FRAME_HEADER_BYTES);
		if (!frame) {
			conn_close(c, LOG_LVL_ERROR, 0, "out of memory");
			return;
		}
		wire_arena_t *arena = worker_arena(c->w);
		char why[200];
		int code = 0;
		Vigil__V1__AgentMessage *msg =
			batchjob_unpack(arena, frame + FRAME_HEADER_BYTES, n,
					(size_t)SETTING(c->col, max_batch_events), &c->scan, &code,
					why, sizeof(why));
		c->last_rx_ns = vtime_mono_ns();
		c->frame_start_ns = 0;
		if (code)
			conn_protocol_error(c, code, "%s", why);
		else
			on_message(c, msg, frame + FRAME_HEADER_BYTES, n);
		wire_arena_reset(arena);
		budget_scan_free(&c->scan);
		/* the frame is a job now (counted on its own), or nothing */
		ingest_release(c->col->ingest, c->reserved);
		c->reserved = 0;
		if (!c->bev || c->state == CONN_ST_CLOSING)
			return;
		evbuffer_drain(in, (size_t)n + FRAME_HEADER_BYTES);
		bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATER);
	}
}

/* ---- libevent callbacks ------------------------------------------------ */

static void read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	process_input(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	conn_t *c = arg;
	if (c->state == CONN_ST_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		finalize(c);
}

static void on_handshake_done(conn_t *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	if (tls_peer_identity(ssl, c->agent, sizeof(c->agent)) != 0) {
		if (c->col->enroll && !SSL_get0_peer_certificate(ssl)) {
			conn_enroll_begin(c); /* stays pending, with Hello's deadline */
			c->tls_generation = c->tls_gen_at_accept; /* no certificate to re-check */
			c->ready_ns = c->last_rx_ns = vtime_mono_ns();
			set_state(c, CONN_ST_WAIT_HELLO);
			process_input(c);
			return;
		}
		atomic_fetch_add(&c->col->counters.handshakes_failed, 1);
		conn_close(c, LOG_LVL_WARN, 0, "handshake refused: no verified client certificate");
		return;
	}
	snprintf(c->prefix, sizeof(c->prefix), "[%s %.150s]", c->peer, c->agent);
	c->cert_not_after_ns = tls_peer_not_after_ns(ssl);
	if (tls_peer_serial_hex(ssl, c->serial, sizeof(c->serial)) != 0)
		c->serial[0] = '\0';
	c->tls_generation = c->tls_gen_at_accept;
	c->ready_ns = c->last_rx_ns = vtime_mono_ns();
	set_state(c, CONN_ST_WAIT_HELLO);
	int ow = 0;
	uint64_t oid = 0;
	reg_result_t r = collector_register(c->col, c->agent, worker_index(c->w), c->id, &ow, &oid);
	if (r == REG_REJECTED) {
		conn_close(c, LOG_LVL_WARN, VIGIL__V1__ERROR_CODE__ERROR_CODE_REPLACED,
			   "agent is already connected (duplicate_policy = reject)");
		return;
	}
	c->registered = true;
	/* Checked after registering: a revocation list loaded meanwhile either
	 * sees this registration (and kicks it) or is seen here. */
	if (collector_is_revoked(c->col, c->agent)) {
		atomic_fetch_add(&c->col->counters.handshakes_failed, 1);
		conn_close(c, LOG_LVL_WARN, VIGIL__V1__ERROR_CODE__ERROR_CODE_REVOKED,
			   "handshake refused: agent identity is revoked");
		return;
	}
	if (c->serial[0]) { /* noted first: a revocation then sees it or is seen */
		collector_note_serial(c->col, c->agent, c->id, c->serial);
		if (collector_is_revoked_serial(c->col, c->serial)) {
			atomic_fetch_add(&c->col->counters.handshakes_failed, 1);
			conn_close(c, LOG_LVL_WARN, VIGIL__V1__ERROR_CODE__ERROR_CODE_REVOKED,
				   "handshake refused: agent certificate %s is revoked", c->serial);
			return;
		}
	}
	if (r == REG_REPLACED) {
		log_msg(LOG_LVL_INFO, c->prefix, "replaces the agent's older connection");
		worker_kick(c->col->workers[ow], oid, VIGIL__V1__ERROR_CODE__ERROR_CODE_REPLACED,
			    "a newer connection of this agent took over");
	}
	log_msg(LOG_LVL_DEBUG, c->prefix, "handshake done (%s)", SSL_get_version(ssl));
	process_input(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn_t *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		on_handshake_done(c);
		return;
	}
	if (c->state == CONN_ST_HANDSHAKE) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		char why[300];
		tls_failure_reason(bufferevent_openssl_get_ssl(bev), e, why, sizeof(why));
		while (bufferevent_get_openssl_error(bev))
			;
		tls_clear_errors();
		atomic_fetch_add(&c->col->counters.handshakes_failed, 1);
		conn_close(c, LOG_LVL_WARN, 0, "handshake refused: %s", why);
		return;
	}
	while (bufferevent_get_openssl_error(bev))
		;
	tls_clear_errors();
	if (c->state == CONN_ST_CLOSING) {
		finalize(c); /* the peer went away before reading our Error */
		return;
	}
	size_t pending = evbuffer_get_length(bufferevent_get_input(bev));
	if (pending)
		atomic_fetch_add(&c->col->counters.protocol_errors, 1);
	conn_close(c, pending ? LOG_LVL_WARN : LOG_LVL_INFO, 0, "%s%s",
		   (what & BEV_EVENT_EOF) ? "agent closed the connection" : "connection error",
		   pending ? " in the middle of a frame; the partial frame is discarded" : "");
}

/* ---- public ---------------------------------------------------------- */

conn_t *conn_new(worker_t *w, collector_t *col, int fd, const struct sockaddr *sa, socklen_t len,
		 uint64_t id)
{
	conn_t *c = calloc(1, sizeof(*c));
	if (!c) {
		evutil_closesocket(fd);
		return NULL;
	}
	c->w = w;
	c->col = col;
	if (!conn_admission(c, sa, len)) {
		free(c);
		evutil_closesocket(fd);
		return NULL;
	}
	c->tls_gen_at_accept = atomic_load(&col->tls_generation);
	SSL_CTX *ctx = collector_tls_ctx(col);
	SSL *ssl = ctx ? tls_ssl_new(ctx, NULL) : NULL;
	SSL_CTX_free(ctx);
	if (!ssl) {
		pending_leave(c);
		free(c);
		evutil_closesocket(fd);
		return NULL;
	}
	c->w = w;
	c->col = col;
	c->id = id;
	c->state = CONN_ST_HANDSHAKE;
	c->created_ns = c->last_rx_ns = vtime_mono_ns();
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(c->peer, sizeof(c->peer), "[%s]:%d", host, port);
	} else {
		snprintf(c->peer, sizeof(c->peer), "unknown");
	}
	snprintf(c->prefix, sizeof(c->prefix), "[%s]", c->peer);
	c->bev = bufferevent_openssl_socket_new(worker_base(w), fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		/* Only out of memory gets here, and libevent may already have
		 * freed the SSL and closed fd, depending on where it failed:
		 * leaking them is better than freeing them twice. */
		pending_leave(c);
		free(c);
		return NULL;
	}
	atomic_fetch_add(&col->n_conns, 1);
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATER);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	conn_t **head = worker_conn_head(w);
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
	return c;
}

void conn_free(conn_t *c)
{
	if (!c)
		return;
	if (c->bev) {
		bufferevent_free(c->bev);
		atomic_fetch_sub(&c->col->n_conns, 1);
	}
	if (c->registered)
		collector_unregister(c->col, c->agent, c->id);
	conn_t **head = worker_conn_head(c->w);
	if (c->prev)
		c->prev->next = c->next;
	else if (*head == c)
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	rules_subjects_free(c->subjects);
	free(c);
}

static void send_ack(conn_t *c, uint64_t seq)
{
	Vigil__V1__Ack ack = VIGIL__V1__ACK__INIT;
	ack.seq = seq;
	Vigil__V1__CollectorMessage m = VIGIL__V1__COLLECTOR_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__COLLECTOR_MESSAGE__MSG_ACK;
	m.ack = &ack;
	conn_send(c, &m);
}

/* Send the Welcome; known is the JSON array of the agent's images whose
 * inventory is stored (Welcome.known_image_ids), or NULL. */
static void send_welcome(conn_t *c, uint64_t committed, const char *known)
{
	Vigil__V1__Welcome wl = VIGIL__V1__WELCOME__INIT;
	json_t *kj = known ? json_loads(known, 0, NULL) : NULL;
	char **ids = json_array_size(kj) ? calloc(json_array_size(kj), sizeof(*ids)) : NULL;
	for (size_t i = 0; ids && i < json_array_size(kj); i++) {
		const char *id = json_string_value(json_array_get(kj, i));
		if (id)
			ids[wl.n_known_image_ids++] = (char *)id;
	}
	wl.known_image_ids = ids;
	wl.protocol_version = WIRE_PROTOCOL_VERSION;
	wl.committed_seq = committed;
	wl.collector_time_ns = vtime_now_ns();
	wl.agent_id = c->agent;
	wl.max_frame_bytes = (uint32_t)c->col->settings->max_frame_bytes;
	wl.max_batch_events = (uint32_t)SETTING(c->col, max_batch_events);
	wl.heartbeat_interval_ms = (uint32_t)SETTING(c->col, heartbeat_interval_ms);
	Vigil__V1__CollectorMessage m = VIGIL__V1__COLLECTOR_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__COLLECTOR_MESSAGE__MSG_WELCOME;
	m.welcome = &wl;
	conn_send(c, &m);
	free(ids);
	json_decref(kj);
}

static void drain_check(conn_t *c)
{
	if (c->draining && c->state != CONN_ST_CLOSING && c->inflight == 0 && !c->hello_pending)
		conn_close(c, LOG_LVL_INFO, VIGIL__V1__ERROR_CODE__ERROR_CODE_SHUTTING_DOWN,
			   "collector shutting down; every batch received was acknowledged");
}

void conn_track_job(conn_t *c, job_t *j)
{
	j->conn_next = c->jobs;
	c->jobs = j;
}

void conn_job_done(conn_t *c, job_t *j)
{
	job_unlink(&c->jobs, j);
	c->refs--;
	if (j->kind == JOB_ENROLL) {
		conn_enroll_done(c, j);
		return;
	}
	if (j->kind == JOB_HELLO)
		c->hello_pending = false;
	else
		c->inflight--;
	if (c->state == CONN_ST_CLOSING) {
		job_free(j);
		if (conn_is_dead(c))
			worker_schedule_reap(c->w);
		return;
	}
	if (j->status == JOB_ST_REFUSED) {
		c->refused_seq = j->seq;
		conn_protocol_error(c, VIGIL__V1__ERROR_CODE__ERROR_CODE_BATCH_REFUSED, "%s",
				    j->refused);
		job_free(j);
		return;
	}
	if (j->status != JOB_ST_DONE) {
		job_free(j);
		conn_close(c, LOG_LVL_INFO, VIGIL__V1__ERROR_CODE__ERROR_CODE_SHUTTING_DOWN,
			   "collector shutting down before the database answered");
		return;
	}
	if (j->kind == JOB_HELLO) {
		c->agent_id = j->agent_id;
		if (j->subjects && strcmp(j->subjects, "[]") != 0 &&
		    (c->subjects || (c->subjects = rules_subjects_new())))
			rules_subjects_load(c->subjects, j->subjects);
		log_msg(LOG_LVL_INFO, c->prefix, "agent connected (committed_seq %" PRIu64 ")",
			j->committed_seq);
		c->committed_seq = j->committed_seq;
		send_welcome(c, j->committed_seq, j->known_images);
		set_state(c, CONN_ST_READY);
	} else {
		if (j->seq > c->committed_seq)
			c->committed_seq = j->seq;
		send_ack(c, j->seq);
		atomic_fetch_add(&c->col->counters.batches_acked, 1);
	}
	job_free(j);
	drain_check(c);
	if (c->state != CONN_ST_CLOSING) {
		maybe_resume(c);
		if (!paused(c))
			process_input(c);
	}
}

/* A live connection keeps what its handshake proved: its certificate has
 * not expired, and it still chains to the agent CA after a reload changed
 * the TLS context (verified again once per change). Return false if c was
 * closed. */
static bool cert_still_good(conn_t *c)
{
	if (c->cert_not_after_ns && vtime_now_ns() >= c->cert_not_after_ns) {
		conn_close(c, LOG_LVL_WARN, VIGIL__V1__ERROR_CODE__ERROR_CODE_CERTIFICATE,
			   "the agent certificate has expired");
		return false;
	}
	uint64_t gen = atomic_load(&c->col->tls_generation);
	if (c->tls_generation == gen || !c->bev || c->enrolling)
		return true;
	SSL_CTX *ctx = collector_tls_ctx(c->col);
	char why[160];
	int rc = tls_peer_still_trusted(bufferevent_openssl_get_ssl(c->bev), ctx, why, sizeof(why));
	SSL_CTX_free(ctx);
	if (rc != 0) {
		conn_close(c, LOG_LVL_WARN, VIGIL__V1__ERROR_CODE__ERROR_CODE_CERTIFICATE,
			   "the agent certificate is no longer trusted after a reload: %s", why);
		return false;
	}
	c->tls_generation = gen;
	return true;
}

void conn_tick(conn_t *c, int64_t now)
{
	collector_t *col = c->col;
	const int64_t ms = 1000000;
	switch (c->state) {
	case CONN_ST_CLOSING:
		if (c->bev && now - c->closing_ns > CLOSE_FLUSH_NS)
			finalize(c);
		return;
	case CONN_ST_HANDSHAKE:
		if (now - c->created_ns > SETTING(col, handshake_timeout_ms) * ms) {
			atomic_fetch_add(&col->counters.timeouts, 1);
			atomic_fetch_add(&col->counters.handshakes_failed, 1);
			conn_close(c, LOG_LVL_INFO, 0,
				   "handshake not finished within %" PRId64 " ms",
				   SETTING(col, handshake_timeout_ms));
		}
		return;
	case CONN_ST_WAIT_HELLO:
		if (!c->enroll_pending && now - c->ready_ns > SETTING(col, hello_timeout_ms) * ms) {
			atomic_fetch_add(&col->counters.timeouts, 1);
			conn_close(c, LOG_LVL_INFO, VIGIL__V1__ERROR_CODE__ERROR_CODE_TIMEOUT,
				   "no Hello within %" PRId64 " ms",
				   SETTING(col, hello_timeout_ms));
			return;
		}
		break;
	default:
		break;
	}
	if (!cert_still_good(c))
		return;
	if (c->paused_queue)
		maybe_resume(c); /* in case a wake-up was missed */
	if (paused(c))
		return; /* we are the ones not reading */
	if (c->frame_start_ns && now - c->frame_start_ns > SETTING(col, frame_timeout_ms) * ms) {
		atomic_fetch_add(&col->counters.timeouts, 1);
		conn_close(c, LOG_LVL_WARN, VIGIL__V1__ERROR_CODE__ERROR_CODE_TIMEOUT,
			   "frame not complete within %" PRId64 " ms",
			   SETTING(col, frame_timeout_ms));
		return;
	}
	if (now - c->last_rx_ns > SETTING(col, idle_timeout_ms) * ms && c->inflight == 0 &&
	    !c->hello_pending) {
		atomic_fetch_add(&col->counters.timeouts, 1);
		conn_close(c, LOG_LVL_INFO, VIGIL__V1__ERROR_CODE__ERROR_CODE_TIMEOUT,
			   "nothing received for %" PRId64 " ms", SETTING(col, idle_timeout_ms));
		return;
	}
	if (c->state == CONN_ST_READY &&
	    now - c->last_tx_ns > SETTING(col, heartbeat_interval_ms) * ms) {
		Vigil__V1__Heartbeat hb = VIGIL__V1__HEARTBEAT__INIT;
		hb.time_ns = vtime_now_ns();
		Vigil__V1__CollectorMessage m = VIGIL__V1__COLLECTOR_MESSAGE__INIT;
		m.msg_case = VIGIL__V1__COLLECTOR_MESSAGE__MSG_HEARTBEAT;
		m.heartbeat = &hb;
		conn_send(c, &m);
	}
}

void conn_kick(conn_t *c, int code, const char *why)
{
	conn_close(c, LOG_LVL_INFO, code, "%s", why);
}

void conn_drain(conn_t *c)
{
	if (c->state == CONN_ST_CLOSING)
		return;
	c->draining = true;
	if (c->state == CONN_ST_HANDSHAKE || c->state == CONN_ST_WAIT_HELLO) {
		conn_close(c, LOG_LVL_INFO, VIGIL__V1__ERROR_CODE__ERROR_CODE_SHUTTING_DOWN,
			   "collector shutting down");
		return;
	}
	conn_pause_reading(c);
	drain_check(c);
}

void conn_abort(conn_t *c)
{
	conn_close(c, LOG_LVL_INFO, 0, "collector stopped");
	if (c->bev)
		finalize(c);
}
