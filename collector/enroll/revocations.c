// SPDX-License-Identifier: Apache-2.0
/*
 * The revocation reader (see revocations.h): its thread, its non-blocking
 * PostgreSQL connection (every wait also watches the stop pipe, so a stop
 * never waits for the network) and the read of the whole table.
 */
#include "enroll/revocations.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "tls.h"
#include "vtime.h"

#define CONNECT_TIMEOUT_MS 10000
#define QUERY_TIMEOUT_MS 10000
#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 5000
#define FIRST_READ_WAIT_MS 5000

struct revocations {
	collector_t *col;
	char *conninfo;
	pthread_t thread;
	int stop_pipe[2];
	PGconn *pg;
	char err[256];
	pthread_mutex_t lock; /* guards first_read */
	pthread_cond_t cond;
	bool first_read; /* a read succeeded (or the thread ended) */
};

typedef enum {
	W_READY,
	W_TIMEOUT,
	W_STOP,
	W_LOST, /* the connection failed */
} wait_rc_t;

static void set_err(revocations_t *r, const char *what, const char *detail)
{
	snprintf(r->err, sizeof(r->err), "%s%s%.*s", what, detail && detail[0] ? ": " : "",
		 detail ? (int)strcspn(detail, "\n") : 0, detail ? detail : "");
}

static int64_t ms_left(int64_t deadline_ns)
{
	int64_t left = (deadline_ns - vtime_mono_ns()) / 1000000;
	return left < 0 ? 0 : left;
}

/* Wait until fd is readable (writable if write) or the stop pipe is, for
 * at most ms. */
static wait_rc_t wait_fd(revocations_t *r, int fd, bool write, int64_t ms)
{
	struct pollfd p[2] = {{.fd = fd, .events = write ? POLLOUT : POLLIN},
			      {.fd = r->stop_pipe[0], .events = POLLIN}};
	if (fd < 0)
		return W_LOST;
	int64_t deadline = vtime_mono_ns() + ms * 1000000;
	for (;;) {
		int n = poll(p, 2, (int)(ms > INT_MAX ? INT_MAX : ms));
		if (n < 0 && errno == EINTR) {
			ms = ms_left(deadline);
			continue;
		}
		if (n < 0)
			return W_LOST;
		if (n == 0)
			return W_TIMEOUT;
		return p[1].revents ? W_STOP : W_READY;
	}
}

static void drop(revocations_t *r)
{
	PQfinish(r->pg);
	r->pg = NULL;
}

/* Connect without blocking the stop. Return W_READY (r->pg set), W_STOP or
 * W_LOST (err set). */
static wait_rc_t db_connect(revocations_t *r)
{
	const char *keys[] = {"dbname", "application_name", NULL};
	const char *vals[] = {r->conninfo, "vigil-revocations", NULL};
	PGconn *pg = PQconnectStartParams(keys, vals, 1);
	if (!pg || PQstatus(pg) == CONNECTION_BAD) {
		set_err(r, "cannot connect", pg ? PQerrorMessage(pg) : "out of memory");
		PQfinish(pg);
		return W_LOST;
	}
	int64_t deadline = vtime_mono_ns() + (int64_t)CONNECT_TIMEOUT_MS * 1000000;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (st != PGRES_POLLING_OK) {
		if (st == PGRES_POLLING_FAILED) {
			set_err(r, "cannot connect", PQerrorMessage(pg));
			PQfinish(pg);
			return W_LOST;
		}
		wait_rc_t w =
			wait_fd(r, PQsocket(pg), st == PGRES_POLLING_WRITING, ms_left(deadline));
		if (w != W_READY) {
			if (w == W_TIMEOUT)
				set_err(r, "cannot connect", "timed out");
			else if (w == W_LOST)
				set_err(r, "cannot connect", "lost the socket");
			PQfinish(pg);
			return w == W_STOP ? W_STOP : W_LOST;
		}
		st = PQconnectPoll(pg);
	}
	if (PQsetnonblocking(pg, 1) != 0) {
		set_err(r, "cannot connect", PQerrorMessage(pg));
		PQfinish(pg);
		return W_LOST;
	}
	r->pg = pg;
	return W_READY;
}

/* Run sql and keep its last result in *res (the caller clears it).
 * Return W_READY, W_STOP or W_LOST (err set; the caller drops the
 * connection). */
static wait_rc_t db_query(revocations_t *r, const char *sql, PGresult **res)
{
	*res = NULL;
	int64_t deadline = vtime_mono_ns() + (int64_t)QUERY_TIMEOUT_MS * 1000000;
	if (!PQsendQuery(r->pg, sql)) {
		set_err(r, "query failed", PQerrorMessage(r->pg));
		return W_LOST;
	}
	int f;
	while ((f = PQflush(r->pg)) == 1) {
		wait_rc_t w = wait_fd(r, PQsocket(r->pg), true, ms_left(deadline));
		if (w != W_READY) {
			set_err(r, "query failed", w == W_TIMEOUT ? "timed out" : "stopped");
			return w == W_STOP ? W_STOP : W_LOST;
		}
	}
	if (f < 0) {
		set_err(r, "query failed", PQerrorMessage(r->pg));
		return W_LOST;
	}
	for (;;) {
		if (!PQconsumeInput(r->pg)) {
			set_err(r, "query failed", PQerrorMessage(r->pg));
			PQclear(*res);
			*res = NULL;
			return W_LOST;
		}
		while (!PQisBusy(r->pg)) {
			PGresult *next = PQgetResult(r->pg);
			if (!next)
				return *res ? W_READY : W_LOST;
			PQclear(*res);
			*res = next;
		}
		wait_rc_t w = wait_fd(r, PQsocket(r->pg), false, ms_left(deadline));
		if (w != W_READY) {
			set_err(r, "query failed", w == W_TIMEOUT ? "timed out" : "stopped");
			PQclear(*res);
			*res = NULL;
			return w == W_STOP ? W_STOP : W_LOST;
		}
	}
}

/* Run sql, which must succeed with status want. */
static wait_rc_t db_exec(revocations_t *r, const char *sql, ExecStatusType want, PGresult **out)
{
	PGresult *res;
	wait_rc_t w = db_query(r, sql, &res);
	if (w == W_READY && PQresultStatus(res) != want) {
		set_err(r, "query failed", PQresultErrorMessage(res));
		w = W_LOST;
	}
	if (w == W_READY && out)
		*out = res;
	else
		PQclear(res);
	return w;
}

/* Read the whole table and publish it. */
static wait_rc_t read_set(revocations_t *r)
{
	PGresult *res = NULL;
	wait_rc_t w =
		db_exec(r, "SELECT scope, name, serial FROM revocations", PGRES_TUPLES_OK, &res);
	if (w != W_READY)
		return w;
	collector_revset_t *set = collector_revset_new();
	bool ok = set != NULL;
	int rows = PQntuples(res);
	for (int i = 0; ok && i < rows; i++) {
		bool op = strcmp(PQgetvalue(res, i, 0), "operator") == 0;
		if (!PQgetisnull(res, i, 1))
			ok = collector_revset_add(set,
						  op ? REVOKE_OPERATOR_NAME : REVOKE_AGENT_NAME,
						  PQgetvalue(res, i, 1)) == 0;
		char serial[TLS_SERIAL_HEX_MAX];
		if (ok && !PQgetisnull(res, i, 2) &&
		    collector_serial_normalize(PQgetvalue(res, i, 2), serial, sizeof(serial)) == 0)
			ok = collector_revset_add(set,
						  op ? REVOKE_OPERATOR_SERIAL : REVOKE_AGENT_SERIAL,
						  serial) == 0;
	}
	PQclear(res);
	if (!ok) {
		collector_revset_free(set);
		set_err(r, "out of memory", NULL);
		return W_LOST;
	}
	collector_set_db_revoked(r->col, set);
	return W_READY;
}

/* Wait up to ms for a notification: W_READY when one came. */
static wait_rc_t wait_notify(revocations_t *r, int64_t ms)
{
	int64_t deadline = vtime_mono_ns() + ms * 1000000;
	for (;;) {
		bool notified = false;
		PGnotify *n;
		while ((n = PQnotifies(r->pg)) != NULL) {
			notified = true;
			PQfreemem(n);
		}
		if (notified)
			return W_READY;
		int64_t left = ms_left(deadline);
		if (left == 0)
			return W_TIMEOUT;
		wait_rc_t w = wait_fd(r, PQsocket(r->pg), false, left);
		if (w != W_READY)
			return w;
		if (!PQconsumeInput(r->pg)) {
			set_err(r, "connection lost", PQerrorMessage(r->pg));
			return W_LOST;
		}
	}
}

static void mark_first_read(revocations_t *r)
{
	pthread_mutex_lock(&r->lock);
	if (!r->first_read) {
		r->first_read = true;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
}

/* Connect, LISTEN, then read. Return W_READY, W_STOP or W_LOST. */
static wait_rc_t connect_and_read(revocations_t *r)
{
	wait_rc_t w = W_READY;
	if (!r->pg) {
		w = db_connect(r);
		if (w == W_READY)
			w = db_exec(r, "LISTEN vigil_revocations", PGRES_COMMAND_OK, NULL);
	}
	if (w == W_READY)
		w = read_set(r);
	return w;
}

static void *run(void *arg)
{
	revocations_t *r = arg;
	int64_t backoff = RETRY_MIN_MS;
	bool warned = false;
	for (;;) {
		wait_rc_t w = connect_and_read(r);
		if (w == W_STOP)
			break;
		if (w == W_LOST) {
			drop(r);
			if (!warned)
				log_warn("revocations: %s; keeping the set last read and retrying",
					 r->err);
			warned = true;
			if (wait_fd(r, r->stop_pipe[0], false, backoff) != W_TIMEOUT)
				break;
			backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
			continue;
		}
		mark_first_read(r);
		if (warned)
			log_info("revocations: reading them from PostgreSQL again");
		warned = false;
		backoff = RETRY_MIN_MS;
		w = wait_notify(r, REVOCATIONS_REREAD_MS);
		if (w == W_STOP)
			break;
		if (w == W_LOST)
			drop(r); /* reconnect and read at once */
	}
	drop(r);
	mark_first_read(r);
	return NULL;
}

revocations_t *revocations_start(collector_t *col, char *err, size_t errlen)
{
	revocations_t *r = calloc(1, sizeof(*r));
	if (!r || !(r->conninfo = strdup(col->settings->db))) {
		free(r);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->col = col;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	if (pipe2(r->stop_pipe, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
		r->stop_pipe[0] = r->stop_pipe[1] = -1;
		revocations_free(r);
		return NULL;
	}
	if (pthread_create(&r->thread, NULL, run, r) != 0) {
		snprintf(err, errlen, "cannot start the thread");
		close(r->stop_pipe[0]);
		close(r->stop_pipe[1]);
		r->stop_pipe[0] = r->stop_pipe[1] = -1;
		revocations_free(r);
		return NULL;
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += FIRST_READ_WAIT_MS / 1000;
	pthread_mutex_lock(&r->lock);
	int rc = 0;
	while (!r->first_read && rc == 0)
		rc = pthread_cond_timedwait(&r->cond, &r->lock, &until);
	bool read = r->first_read;
	pthread_mutex_unlock(&r->lock);
	if (!read)
		log_warn("revocations: not read from PostgreSQL within %d s; until they are, only "
			 "revoked_agents applies",
			 FIRST_READ_WAIT_MS / 1000);
	return r;
}

void revocations_free(revocations_t *r)
{
	if (!r)
		return;
	if (r->stop_pipe[1] >= 0) {
		if (write(r->stop_pipe[1], "x", 1) != 1) {
			/* the thread reads none; a full pipe already says stop */
		}
		pthread_join(r->thread, NULL);
		close(r->stop_pipe[0]);
		close(r->stop_pipe[1]);
	}
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r->conninfo);
	free(r);
}
