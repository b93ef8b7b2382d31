// SPDX-License-Identifier: Apache-2.0
/*
 * Worker threads (see worker.h): each runs an event_base with the
 * connections handed to it, a once-a-second tick for timeouts and
 * heartbeats, an inbox other threads post to, and a reaper that frees
 * closed connections after the loop pass.
 */
#include "ingest/worker.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "ingest/conn.h"
#include "log.h"
#include "vtime.h"
#include "wire.h"

typedef enum {
	WMSG_FD,
	WMSG_KICK,
	WMSG_DRAIN,
	WMSG_STOP,
} wmsg_kind_t;

typedef struct wmsg {
	struct wmsg *next;
	wmsg_kind_t kind;
	int fd;
	struct sockaddr_storage sa;
	socklen_t salen;
	uint64_t conn_id;
	int code;
	char why[160];
} wmsg_t;

struct worker {
	collector_t *col;
	int idx;
	pthread_t thread;
	bool started;
	struct event_base *base;
	struct event *inbox_ev;
	struct event *tick_ev;
	struct event *reap_ev;

	pthread_mutex_t lock; /* guards the inbox */
	wmsg_t *msg_head, *msg_tail;
	job_t *done_head, *done_tail;
	bool wake;

	conn_t *conns;	 /* only on the worker's thread, as is pending */
	admit_t pending; /* its connections before their Hello (conn.c) */
	int64_t admit_log_ns;
	wire_arena_t *arena;
	uint64_t next_id;
	atomic_int n_conns;
};

static void post(worker_t *w, wmsg_t *m)
{
	pthread_mutex_lock(&w->lock);
	m->next = NULL;
	if (w->msg_tail)
		w->msg_tail->next = m;
	else
		w->msg_head = m;
	w->msg_tail = m;
	pthread_mutex_unlock(&w->lock);
	event_active(w->inbox_ev, EV_READ, 0);
}

static wmsg_t *msg_new(wmsg_kind_t kind)
{
	wmsg_t *m = calloc(1, sizeof(*m));
	if (m)
		m->kind = kind;
	else
		log_error("out of memory (worker message)");
	return m;
}

void worker_hand_fd(worker_t *w, int fd, const struct sockaddr *sa, socklen_t len)
{
	wmsg_t *m = msg_new(WMSG_FD);
	if (!m || len > sizeof(m->sa)) {
		free(m);
		evutil_closesocket(fd);
		return;
	}
	m->fd = fd;
	memcpy(&m->sa, sa, len);
	m->salen = len;
	post(w, m);
}

void worker_complete(worker_t *w, job_t *job)
{
	pthread_mutex_lock(&w->lock);
	job->next = NULL;
	if (w->done_tail)
		w->done_tail->next = job;
	else
		w->done_head = job;
	w->done_tail = job;
	pthread_mutex_unlock(&w->lock);
	event_active(w->inbox_ev, EV_READ, 0);
}

void worker_wake(worker_t *w)
{
	pthread_mutex_lock(&w->lock);
	w->wake = true;
	pthread_mutex_unlock(&w->lock);
	event_active(w->inbox_ev, EV_READ, 0);
}

void worker_kick(worker_t *w, uint64_t conn_id, int error_code, const char *why)
{
	wmsg_t *m = msg_new(WMSG_KICK);
	if (!m)
		return;
	m->conn_id = conn_id;
	m->code = error_code;
	snprintf(m->why, sizeof(m->why), "%s", why);
	post(w, m);
}

void worker_drain(worker_t *w)
{
	wmsg_t *m = msg_new(WMSG_DRAIN);
	if (m)
		post(w, m);
}

int worker_conn_count(worker_t *w)
{
	return atomic_load(&w->n_conns);
}

struct event_base *worker_base(worker_t *w)
{
	return w->base;
}

int worker_index(const worker_t *w)
{
	return w->idx;
}

wire_arena_t *worker_arena(worker_t *w)
{
	return w->arena;
}

admit_t *worker_pending(worker_t *w, int64_t **log_ns)
{
	*log_ns = &w->admit_log_ns;
	return &w->pending;
}

struct conn **worker_conn_head(worker_t *w)
{
	return &w->conns;
}

void worker_schedule_reap(worker_t *w)
{
	event_active(w->reap_ev, EV_READ, 0);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_t *w = arg;
	int n = 0;
	for (conn_t *c = w->conns, *next; c; c = next) {
		next = conn_next(c);
		if (conn_is_dead(c))
			conn_free(c);
		else
			n++;
	}
	atomic_store(&w->n_conns, n);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_t *w = arg;
	int64_t now = vtime_mono_ns();
	for (conn_t *c = w->conns; c; c = conn_next(c))
		conn_tick(c, now);
}

static void inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_t *w = arg;
	pthread_mutex_lock(&w->lock);
	wmsg_t *msgs = w->msg_head;
	job_t *done = w->done_head;
	bool wake = w->wake;
	w->msg_head = w->msg_tail = NULL;
	w->done_head = w->done_tail = NULL;
	w->wake = false;
	pthread_mutex_unlock(&w->lock);

	while (done) {
		job_t *j = done;
		done = j->next;
		conn_job_done(j->conn, j);
	}
	if (wake)
		for (conn_t *c = w->conns; c; c = conn_next(c))
			conn_resume(c);
	while (msgs) {
		wmsg_t *m = msgs;
		msgs = m->next;
		switch (m->kind) {
		case WMSG_FD:
			if (atomic_load(&w->col->draining)) {
				evutil_closesocket(m->fd);
				break;
			}
			if (conn_new(w, w->col, m->fd, (struct sockaddr *)&m->sa, m->salen,
				     ((uint64_t)w->idx << 48) | ++w->next_id))
				atomic_fetch_add(&w->n_conns, 1);
			break;
		case WMSG_KICK:
			for (conn_t *c = w->conns; c; c = conn_next(c)) {
				if (conn_id(c) == m->conn_id) {
					conn_kick(c, m->code, m->why);
					break;
				}
			}
			break;
		case WMSG_DRAIN:
			for (conn_t *c = w->conns; c; c = conn_next(c))
				conn_drain(c);
			break;
		case WMSG_STOP:
			event_base_loopbreak(w->base);
			break;
		}
		free(m);
	}
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

worker_t *worker_new(collector_t *col, int idx)
{
	worker_t *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->col = col;
	w->idx = idx;
	pthread_mutex_init(&w->lock, NULL);
	w->base = event_base_new();
	w->arena = wire_arena_new();
	if (!w->base || !w->arena)
		goto fail;
	w->inbox_ev = event_new(w->base, -1, 0, inbox_cb, w);
	w->reap_ev = event_new(w->base, -1, 0, reap_cb, w);
	w->tick_ev = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
	if (!w->inbox_ev || !w->reap_ev || !w->tick_ev)
		goto fail;
	struct timeval one = {1, 0};
	event_add(w->tick_ev, &one);
	return w;
fail:
	worker_free(w);
	return NULL;
}

int worker_start(worker_t *w)
{
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -1;
	w->started = true;
	return 0;
}

void worker_free(worker_t *w)
{
	if (!w)
		return;
	if (w->started) {
		wmsg_t *m = msg_new(WMSG_STOP);
		if (m)
			post(w, m);
		else
			event_base_loopbreak(w->base);
		pthread_join(w->thread, NULL);
	}
	/* What is left was never acknowledged. */
	while (w->done_head) {
		job_t *j = w->done_head;
		w->done_head = j->next;
		job_free(j);
	}
	while (w->msg_head) {
		wmsg_t *m = w->msg_head;
		w->msg_head = m->next;
		if (m->kind == WMSG_FD)
			evutil_closesocket(m->fd);
		free(m);
	}
	while (w->conns)
		conn_free(w->conns);
	if (w->tick_ev)
		event_free(w->tick_ev);
	if (w->reap_ev)
		event_free(w->reap_ev);
	if (w->inbox_ev)
		event_free(w->inbox_ev);
	if (w->base)
		event_base_free(w->base);
	wire_arena_free(w->arena);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
