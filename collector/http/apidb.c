// SPDX-License-Identifier: Apache-2.0
/*
 * The query API's PostgreSQL pool (see apidb.h). Each thread owns one
 * connection in non-blocking mode and runs one job at a time under a
 * deadline; a connection that fails or times out is dropped and made again
 * for the next job. Sessions run in UTC with a statement_timeout.
 * Listing jobs (APIDB_LISTING_MARK) may take all connections but one: the
 * queue is served in order, except that a thread skips the listings while
 * that many run, so a small read never waits behind slow listings.
 *
 * The API builds its SQL from a few templates, so each connection prepares
 * a statement the first time it sees a text and reuses it: parsing,
 * analysing and planning the text was most of the database's CPU for a
 * small request. PostgreSQL plans the first calls with their values and
 * keeps a generic plan only when it costs no more; a query on the
 * partitioned events table keeps custom plans (a generic plan cannot prune
 * partitions when it is planned, so it is costed over all of them).
 * Listings are not prepared: each is planned for its own window and
 * search text (a generic plan of an argv= search would read today's
 * partition backwards through the ts index instead of its trigram index),
 * and planning is a small part of what a listing costs.
 */
#include "http/apidb.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "log.h"
#include "vtime.h"

/* Prepared statements one connection keeps; when full, all are dropped
 * and the cache starts again (the API has far fewer SQL shapes). */
#define STMT_CACHE 128

typedef struct {
	uint64_t hash;
	char *sql;
} stmt_t;

struct apidb_conn {
	char *conninfo;
	int64_t timeout_ms;
	PGconn *pg;
	int64_t deadline_ns;
	stmt_t stmt[STMT_CACHE]; /* statement i is named vigil_api_<i> */
	int n_stmt;
};

struct apidb {
	struct event_base *base;
	struct event *done_ev;
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;
	apidb_job_t *queue_head, *queue_tail;
	apidb_job_t *done_head, *done_tail;
	size_t pending;
	int listings_running, listings_max;
	bool stopping;
	int n_threads; /* started */
	int n_conns;
	pthread_t *threads;
	apidb_conn_t **conns;
	apidb_conn_t **rconns; /* to the read replica (http_db), or NULLs */
};

/* ---- jobs ---------------------------------------------------------------- */

apidb_job_t *apidb_job_new(const char *sql)
{
	apidb_job_t *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->sql = strdup(sql);
	if (!j->sql) {
		free(j);
		return NULL;
	}
	j->listing = strncmp(sql, APIDB_LISTING_MARK, strlen(APIDB_LISTING_MARK)) == 0;
	return j;
}

int apidb_job_param(apidb_job_t *job, const char *value)
{
	if (job->n_params >= APIDB_MAX_PARAMS)
		return -1;
	char *v = NULL;
	if (value && !(v = strdup(value)))
		return -1;
	job->params[job->n_params++] = v;
	return 0;
}

const char *apidb_cell(const apidb_job_t *job, size_t r, int c)
{
	if (r >= job->n_rows || c < 0 || c >= job->n_cols)
		return NULL;
	return job->cells[r * (size_t)job->n_cols + (size_t)c];
}

static void clear_results(apidb_job_t *j)
{
	if (j->cells) {
		for (size_t i = 0; i < j->n_rows * (size_t)j->n_cols; i++)
			free(j->cells[i]);
		free(j->cells);
	}
	j->cells = NULL;
	j->n_rows = 0;
	j->n_cols = 0;
}

void apidb_job_free(apidb_job_t *job)
{
	if (!job)
		return;
	clear_results(job);
	for (int i = 0; i < job->n_params; i++)
		free(job->params[i]);
	free(job->sql);
	free(job);
}

/* ---- one connection ------------------------------------------------------- */

static void forget_statements(apidb_conn_t *c)
{
	for (int i = 0; i < c->n_stmt; i++)
		free(c->stmt[i].sql);
	c->n_stmt = 0;
}

/* Ask the server to cancel what c runs (blocking; pool threads only). */
static void conn_cancel(apidb_conn_t *c)
{
	if (!c->pg || PQstatus(c->pg) != CONNECTION_OK ||
	    PQtransactionStatus(c->pg) != PQTRANS_ACTIVE)
		return;
	PGcancel *k = PQgetCancel(c->pg);
	char err[256];
	if (k && !PQcancel(k, err, sizeof(err)))
		log_warn("[api-db] cancel: %s", err);
	PQfreeCancel(k);
}

static void conn_drop(apidb_conn_t *c)
{
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	forget_statements(c);
}

static void notice_cb(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static int wait_io(apidb_conn_t *c, bool want_write)
{
	for (;;) {
		int64_t left = (c->deadline_ns - vtime_mono_ns()) / 1000000;
		if (left <= 0)
			return -1;
		struct pollfd p = {.fd = PQsocket(c->pg),
				   .events = POLLIN | (want_write ? POLLOUT : 0)};
		int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static void set_error(apidb_job_t *j, apidb_status_t st, const char *msg)
{
	j->status = st;
	snprintf(j->error, sizeof(j->error), "%s", msg ? msg : "");
	size_t l = strlen(j->error);
	while (l && (j->error[l - 1] == '\n' || j->error[l - 1] == ' '))
		j->error[--l] = '\0';
}

/* Connect without blocking past the deadline. Return 0 or -1. */
static int conn_open(apidb_conn_t *c, char *err, size_t errlen)
{
	if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
		return 0;
	conn_drop(c);
	char opts[128];
	snprintf(opts, sizeof(opts),
		 "-c TimeZone=UTC -c plan_cache_mode=auto -c statement_timeout=%lld",
		 (long long)c->timeout_ms);
	const char *keys[] = {"dbname", "application_name", "options", NULL};
	const char *vals[] = {c->conninfo, "vigil-collector-api", opts, NULL};
	c->deadline_ns = vtime_mono_ns() + c->timeout_ms * 1000000;
	c->pg = PQconnectStartParams(keys, vals, 1);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD)
		goto fail;
	PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	while (ps != PGRES_POLLING_OK) {
		if (ps == PGRES_POLLING_FAILED)
			goto fail;
		if (wait_io(c, ps == PGRES_POLLING_WRITING) != 0) {
			snprintf(err, errlen, "timed out connecting to PostgreSQL");
			conn_drop(c);
			return -1;
		}
		ps = PQconnectPoll(c->pg);
	}
	PQsetNoticeProcessor(c->pg, notice_cb, NULL);
	if (PQsetnonblocking(c->pg, 1) != 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s", c->pg ? PQerrorMessage(c->pg) : "out of memory");
	conn_drop(c);
	return -1;
}

static void keep_result(apidb_job_t *j, PGresult *r)
{
	clear_results(j);
	size_t rows = (size_t)PQntuples(r);
	int cols = PQnfields(r);
	if (j->max_rows && rows > j->max_rows)
		rows = j->max_rows;
	if (rows == 0 || cols == 0) {
		j->n_cols = cols;
		return;
	}
	j->cells = calloc(rows * (size_t)cols, sizeof(char *));
	if (!j->cells) {
		set_error(j, APIDB_ERR_QUERY, "out of memory");
		return;
	}
	j->n_rows = rows;
	j->n_cols = cols;
	for (size_t r_ = 0; r_ < rows; r_++) {
		for (int c = 0; c < cols; c++) {
			if (PQgetisnull(r, (int)r_, c))
				continue;
			char *v = strdup(PQgetvalue(r, (int)r_, c));
			if (!v) {
				set_error(j, APIDB_ERR_QUERY, "out of memory");
				return;
			}
			j->cells[r_ * (size_t)cols + (size_t)c] = v;
		}
	}
}

/* Send what libpq holds; 0, or -1 when the connection is lost. */
static int flush_out(apidb_conn_t *c)
{
	for (;;) {
		int f = PQflush(c->pg);
		if (f == 0)
			return 0;
		if (f < 0 || wait_io(c, true) != 0 || !PQconsumeInput(c->pg))
			return -1;
	}
}

/* Read every result of the command sent; keep rows in j when keep is set
 * and record the first error in j. 0, or -1 when the connection is lost. */
static int collect(apidb_conn_t *c, apidb_job_t *j, bool keep)
{
	bool failed = false;
	for (;;) {
		while (PQisBusy(c->pg)) {
			if (wait_io(c, false) != 0 || !PQconsumeInput(c->pg))
				return -1;
		}
		PGresult *r = PQgetResult(c->pg);
		if (!r)
			return 0;
		ExecStatusType s = PQresultStatus(r);
		if (s == PGRES_TUPLES_OK && !failed) {
			if (keep)
				keep_result(j, r);
		} else if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && !failed) {
			const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
			failed = true;
			clear_results(j);
			snprintf(j->sqlstate, sizeof(j->sqlstate), "%s", state ? state : "");
			set_error(j, APIDB_ERR_QUERY, msg ? msg : PQresultErrorMessage(r));
			if (PQstatus(c->pg) != CONNECTION_OK || !state ||
			    strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
				j->status = APIDB_ERR_CONN;
		}
		PQclear(r);
	}
}

static uint64_t text_hash(const char *s)
{
	uint64_t h = UINT64_C(14695981039346656037);
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
	return h;
}

/* The index of the statement prepared for j's SQL, preparing it if need
 * be; -1 when it could not be (j then says why, or the connection is
 * lost: -2). */
static int statement(apidb_conn_t *c, apidb_job_t *j)
{
	uint64_t h = text_hash(j->sql);
	for (int i = 0; i < c->n_stmt; i++)
		if (c->stmt[i].hash == h && strcmp(c->stmt[i].sql, j->sql) == 0)
			return i;
	if (c->n_stmt == STMT_CACHE) {
		if (!PQsendQuery(c->pg, "DEALLOCATE ALL") || flush_out(c) != 0 ||
		    collect(c, j, false) != 0)
			return -2;
		forget_statements(c);
		if (j->status != APIDB_OK)
			return -1;
	}
	int i = c->n_stmt;
	char name[32];
	snprintf(name, sizeof(name), "vigil_api_%d", i);
	char *copy = strdup(j->sql);
	if (!copy) {
		set_error(j, APIDB_ERR_QUERY, "out of memory");
		return -1;
	}
	if (!PQsendPrepare(c->pg, name, j->sql, j->n_params, NULL) || flush_out(c) != 0 ||
	    collect(c, j, false) != 0) {
		free(copy);
		return -2;
	}
	if (j->status != APIDB_OK) {
		free(copy);
		return -1;
	}
	c->stmt[i] = (stmt_t){h, copy};
	c->n_stmt++;
	return i;
}

void apidb_run(apidb_conn_t *c, apidb_job_t *j)
{
	char err[256];
	j->status = APIDB_OK;
	j->sqlstate[0] = '\0';
	j->error[0] = '\0';
	if (conn_open(c, err, sizeof(err)) != 0) {
		set_error(j, APIDB_ERR_CONN, err);
		return;
	}
	c->deadline_ns = vtime_mono_ns() + (c->timeout_ms + 2000) * 1000000;
	if (j->listing) {
		if (!PQsendQueryParams(c->pg, j->sql, j->n_params, NULL,
				       (const char *const *)j->params, NULL, NULL, 0) ||
		    flush_out(c) != 0 || collect(c, j, true) != 0)
			goto lost;
		if (j->status == APIDB_ERR_CONN)
			conn_drop(c);
		return;
	}
	int i = statement(c, j);
	if (i == -2)
		goto lost;
	if (i >= 0) {
		char name[32];
		snprintf(name, sizeof(name), "vigil_api_%d", i);
		if (!PQsendQueryPrepared(c->pg, name, j->n_params, (const char *const *)j->params,
					 NULL, NULL, 0) ||
		    flush_out(c) != 0 || collect(c, j, true) != 0)
			goto lost;
	}
	if (j->status == APIDB_ERR_CONN)
		conn_drop(c);
	return;
lost:
	clear_results(j);
	set_error(j, APIDB_ERR_CONN,
		  PQstatus(c->pg) == CONNECTION_OK ? "PostgreSQL did not answer in time"
						   : PQerrorMessage(c->pg));
	/* past the deadline with the statement still running: the server
	 * let it outlive statement_timeout; cancel it before hanging up, or
	 * it runs on until it next writes to the closed socket */
	conn_cancel(c);
	conn_drop(c);
}

apidb_conn_t *apidb_connect(const char *conninfo, int64_t timeout_ms, char *err, size_t errlen)
{
	apidb_conn_t *c = calloc(1, sizeof(*c));
	if (!c || !(c->conninfo = strdup(conninfo))) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->timeout_ms = timeout_ms;
	if (conn_open(c, err, errlen) != 0) {
		apidb_close(c);
		return NULL;
	}
	return c;
}

bool apidb_conn_ready(const apidb_conn_t *c)
{
	return c && c->pg && PQstatus(c->pg) == CONNECTION_OK;
}

void apidb_close(apidb_conn_t *c)
{
	if (!c)
		return;
	conn_drop(c);
	free(c->conninfo);
	free(c);
}

/* ---- the pool -------------------------------------------------------------- */

static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	apidb_t *db = arg;
	pthread_mutex_lock(&db->lock);
	apidb_job_t *j = db->done_head;
	db->done_head = db->done_tail = NULL;
	pthread_mutex_unlock(&db->lock);
	while (j) {
		apidb_job_t *next = j->next;
		j->next = NULL;
		pthread_mutex_lock(&db->lock);
		db->pending--;
		pthread_mutex_unlock(&db->lock);
		j->done(j, j->arg);
		j = next;
	}
}

typedef struct {
	apidb_t *db;
	int idx;
} thread_arg_t;

/* Unlink and return the first queued job this thread may run: any, but a
 * listing only while fewer than listings_max run. NULL if none. Called
 * with the lock held. */
static apidb_job_t *take_job(apidb_t *db)
{
	apidb_job_t *prev = NULL;
	for (apidb_job_t *j = db->queue_head; j; prev = j, j = j->next) {
		if (j->listing && db->listings_running >= db->listings_max)
			continue;
		if (prev)
			prev->next = j->next;
		else
			db->queue_head = j->next;
		if (db->queue_tail == j)
			db->queue_tail = prev;
		j->next = NULL;
		if (j->listing)
			db->listings_running++;
		return j;
	}
	return NULL;
}

static void *pool_main(void *arg)
{
	apidb_t *db = ((thread_arg_t *)arg)->db;
	int idx = ((thread_arg_t *)arg)->idx;
	free(arg);
	apidb_conn_t *c = db->conns[idx], *rc = db->rconns[idx];
	bool warned = false;
	pthread_mutex_lock(&db->lock);
	for (;;) {
		apidb_job_t *j = NULL;
		while (!db->stopping && !(j = take_job(db)))
			pthread_cond_wait(&db->cond, &db->lock);
		if (!j)
			break; /* stopping */
		pthread_mutex_unlock(&db->lock);
		apidb_run_routed(c, rc, j);
		if (j->status == APIDB_ERR_CONN && !warned) {
			log_warn("[api-db] %s", j->error);
			warned = true;
		} else if (j->status == APIDB_OK) {
			warned = false;
		}
		pthread_mutex_lock(&db->lock);
		if (j->listing) {
			db->listings_running--;
			/* a listing skipped while the cap was reached may run now */
			pthread_cond_broadcast(&db->cond);
		}
		if (db->done_tail)
			db->done_tail->next = j;
		else
			db->done_head = j;
		db->done_tail = j;
		event_active(db->done_ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&db->lock);
	return NULL;
}

/* A connection to conninfo, not opened yet; NULL when out of memory. */
static apidb_conn_t *conn_new(const char *conninfo, int64_t timeout_ms)
{
	apidb_conn_t *c = calloc(1, sizeof(*c));
	if (!c || !(c->conninfo = strdup(conninfo))) {
		free(c);
		return NULL;
	}
	c->timeout_ms = timeout_ms;
	return c;
}

apidb_t *apidb_new(struct event_base *base, const char *conninfo, const char *read_conninfo, int n,
		   int64_t timeout_ms)
{
	apidb_t *db = calloc(1, sizeof(*db));
	if (!db)
		return NULL;
	db->base = base;
	pthread_mutex_init(&db->lock, NULL);
	pthread_cond_init(&db->cond, NULL);
	db->done_ev = event_new(base, -1, 0, deliver_cb, db);
	db->threads = calloc((size_t)n, sizeof(*db->threads));
	db->conns = calloc((size_t)n, sizeof(*db->conns));
	db->rconns = calloc((size_t)n, sizeof(*db->rconns));
	if (!db->done_ev || !db->threads || !db->conns || !db->rconns)
		goto fail;
	db->n_conns = n;
	db->listings_max = n > 1 ? n - 1 : 1;
	bool replica = read_conninfo && read_conninfo[0];
	for (int i = 0; i < n; i++) {
		if (!(db->conns[i] = conn_new(conninfo, timeout_ms)) ||
		    (replica && !(db->rconns[i] = conn_new(read_conninfo, timeout_ms))))
			goto fail;
	}
	for (int i = 0; i < n; i++) {
		thread_arg_t *ta = malloc(sizeof(*ta));
		if (!ta)
			goto fail;
		ta->db = db;
		ta->idx = i;
		if (pthread_create(&db->threads[i], NULL, pool_main, ta) != 0) {
			free(ta);
			goto fail;
		}
		db->n_threads++;
	}
	return db;
fail:
	log_error("cannot start the API database pool");
	apidb_free(db, NULL);
	return NULL;
}

void apidb_submit(apidb_t *db, apidb_job_t *job)
{
	job->next = NULL;
	pthread_mutex_lock(&db->lock);
	if (db->queue_tail)
		db->queue_tail->next = job;
	else
		db->queue_head = job;
	db->queue_tail = job;
	db->pending++;
	/* every thread: the one woken might be the reserved one, which may
	 * not take a listing */
	pthread_cond_broadcast(&db->cond);
	pthread_mutex_unlock(&db->lock);
}

size_t apidb_pending(apidb_t *db)
{
	pthread_mutex_lock(&db->lock);
	size_t n = db->pending;
	pthread_mutex_unlock(&db->lock);
	return n;
}

static void drop_list(apidb_job_t *j, void (*on_drop)(void *))
{
	while (j) {
		apidb_job_t *next = j->next;
		if (on_drop)
			on_drop(j->arg);
		apidb_job_free(j);
		j = next;
	}
}

void apidb_free(apidb_t *db, void (*on_drop)(void *arg))
{
	if (!db)
		return;
	pthread_mutex_lock(&db->lock);
	db->stopping = true;
	pthread_cond_broadcast(&db->cond);
	pthread_mutex_unlock(&db->lock);
	for (int i = 0; i < db->n_threads; i++)
		pthread_join(db->threads[i], NULL);
	drop_list(db->queue_head, on_drop);
	drop_list(db->done_head, on_drop);
	for (int i = 0; db->conns && i < db->n_conns; i++)
		apidb_close(db->conns[i]);
	for (int i = 0; db->rconns && i < db->n_conns; i++)
		apidb_close(db->rconns[i]);
	if (db->done_ev)
		event_free(db->done_ev);
	free(db->threads);
	free(db->conns);
	free(db->rconns);
	pthread_mutex_destroy(&db->lock);
	pthread_cond_destroy(&db->cond);
	free(db);
}
