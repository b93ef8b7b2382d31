// SPDX-License-Identifier: Apache-2.0
/* Accepting agent connections (see listener.h). */
#include "ingest/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "log.h"
#include "vtime.h"
#include "ingest/worker.h"

#define ACCEPT_PAUSE_MS 200

struct listener {
	collector_t *col;
	struct evconnlistener *lev;
	struct event *resume_ev;
	unsigned next_worker;
	int64_t last_refusal_log_ns;
};

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	(void)lev;
	listener_t *l = arg;
	collector_t *col = l->col;
	if (atomic_load(&col->n_established) >= SETTING(col, max_connections)) {
		atomic_fetch_add(&col->counters.conns_refused, 1);
		int64_t now = vtime_mono_ns();
		if (now - l->last_refusal_log_ns > INT64_C(10) * 1000000000) {
			log_warn("max_connections (%lld) reached; refusing new connections",
				 (long long)SETTING(col, max_connections));
			l->last_refusal_log_ns = now;
		}
		evutil_closesocket(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	atomic_fetch_add(&col->counters.conns_accepted, 1);
	worker_t *w = col->workers[l->next_worker++ % (unsigned)col->n_workers];
	worker_hand_fd(w, fd, sa, (socklen_t)salen);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	listener_t *l = arg;
	if (!atomic_load(&l->col->draining))
		evconnlistener_enable(l->lev);
}

static void error_cb(struct evconnlistener *lev, void *arg)
{
	listener_t *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	static log_limit_t limit = LOG_LIMIT_INIT(5, 60);
	log_limited(&limit, LOG_LVL_WARN, NULL, "accept failed: %s; pausing accepts for %d ms",
		    evutil_socket_error_to_string(err), ACCEPT_PAUSE_MS);
	evconnlistener_disable(lev);
	struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
	event_add(l->resume_ev, &tv);
}

listener_t *listener_new(struct event_base *base, collector_t *col, const char *addr, char *err,
			 size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(err, errlen, "listen address '%s' is not host:port", addr);
		return NULL;
	}
	listener_t *l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->col = col;
	l->resume_ev = evtimer_new(base, resume_cb, l);
	l->lev = evconnlistener_new_bind(base, accept_cb, l,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
						 LEV_OPT_REUSEABLE,
					 1024, (struct sockaddr *)&ss, sslen);
	if (!l->lev || !l->resume_ev) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		listener_free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->lev, error_cb);
	return l;
}

void listener_disable(listener_t *l)
{
	evconnlistener_disable(l->lev);
	event_del(l->resume_ev);
}

void listener_free(listener_t *l)
{
	if (!l)
		return;
	if (l->lev)
		evconnlistener_free(l->lev);
	if (l->resume_ev)
		event_free(l->resume_ev);
	free(l);
}
