// SPDX-License-Identifier: Apache-2.0
/* Admission of agent connections before their Hello (see conn_int.h). */
#include "ingest/conn_int.h"

#include <stddef.h>
#include <stdio.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "ingest/worker.h"
#include "tls.h"
#include "vtime.h"

/* ---- admission --------------------------------------------------------
 *
 * A connection is pending from its accept until its Hello (or its close).
 * Each worker keeps its pending connections within its share of
 * max_pending_connections and of max_pending_per_address (admit.h): the
 * listener hands sockets round-robin, so a host's connections spread over
 * the workers as the budget does. max_connections counts the others. */

static conn_t *pending_conn(admit_entry_t *e)
{
	return (conn_t *)((char *)e - offsetof(conn_t, pend));
}

/* No byte of the TLS handshake has come from it: none read, none waiting. */
static bool pending_silent(admit_entry_t *e)
{
	conn_t *c = pending_conn(e);
	return !c->bev ||
	       tls_peer_silent(bufferevent_openssl_get_ssl(c->bev), bufferevent_getfd(c->bev));
}

void pending_leave(conn_t *c)
{
	if (!c->pend.listed)
		return;
	int64_t *log_ns;
	admit_remove(worker_pending(c->w, &log_ns), &c->pend);
	atomic_fetch_sub(&c->col->n_pending, 1);
}

static void admission_log(collector_t *col, int64_t *log_ns, const char *what, const uint8_t *key)
{
	int64_t now = vtime_mono_ns();
	if (now - *log_ns < INT64_C(10) * 1000000000)
		return;
	*log_ns = now;
	char addr[64];
	admit_key_str(key, addr, sizeof(addr));
	log_warn("[%s] %s (so far: %llu refused at accept, %llu pending dropped; logged at most "
		 "every 10 s per worker)",
		 addr, what, (unsigned long long)atomic_load(&col->counters.conns_refused),
		 (unsigned long long)atomic_load(&col->counters.pending_dropped));
}

static size_t share(int64_t total, int n_workers)
{
	int64_t n = n_workers > 0 ? n_workers : 1;
	return (size_t)((total + n - 1) / n);
}

/* List c as pending on its worker. Return false if its address has its
 * share of pending connections, or the worker's share is full and every
 * pending connection is making progress (the caller closes it). */
bool conn_admission(conn_t *c, const struct sockaddr *sa, socklen_t len)
{
	collector_t *col = c->col;
	int64_t *log_ns;
	admit_t *a = worker_pending(c->w, &log_ns);
	admit_entry_t *victim = NULL;
	admit_verdict_t v = admit_add(a, &c->pend, sa, len,
				      share(SETTING(col, max_pending_connections), col->n_workers),
				      share(SETTING(col, max_pending_per_address), col->n_workers),
				      pending_silent, &victim);
	if (v == ADMIT_REFUSED_ADDR || v == ADMIT_REFUSED_FULL) {
		atomic_fetch_add(&col->counters.conns_refused, 1);
		admission_log(col, log_ns,
			      v == ADMIT_REFUSED_ADDR
				      ? "max_pending_per_address reached; closing new connections "
					"from this address"
				      : "max_pending_connections reached, every pending connection "
					"making progress; closing new connections",
			      c->pend.key);
		return false;
	}
	atomic_fetch_add(&col->n_pending, 1);
	if (victim) {
		conn_t *old = pending_conn(victim);
		atomic_fetch_sub(&col->n_pending, 1); /* admit_add unlisted it */
		atomic_fetch_add(&col->counters.pending_dropped, 1);
		admission_log(col, log_ns,
			      "max_pending_connections reached; dropping the oldest "
			      "pending connection",
			      victim->key);
		conn_close(old, LOG_LVL_DEBUG, 0,
			   "dropped for a newer connection (max_pending_connections)");
	}
	return true;
}
