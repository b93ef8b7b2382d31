// SPDX-License-Identifier: Apache-2.0
/*
 * The trigram indexes of argv= searches (see argvindex.h): the thread, its
 * connection and the passes.
 *
 * Cost of a build, on the 2-core development machine (shared): 10 to 14 s
 * per million events of a day with maintenance_work_mem 256 MB
 * (argv_index_memory; about 17 s with the server's default of 64 MB), on
 * one core, and about 35 MB of index per million events (an eighth of the
 * partition). CREATE INDEX CONCURRENTLY reads the partition twice and
 * waits for transactions older than itself, but blocks no insert and no
 * query. An index takes late events of its day (an agent's spool, a clock
 * behind) through GIN's pending list, a small cost on few rows. The
 * partition is analyzed afterwards: the statistics of the indexed
 * expression tell the planner how rare a searched text is.
 */
#include "ingest/argvindex.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include "settings.h"
#include "vtime.h"

#define RECHECK_MS (10 * 60 * 1000) /* look for ended days at least this often */
#define AFTER_MIDNIGHT_MS 5000	    /* a day's partition is looked at this late */
#define CONNECT_TIMEOUT_MS 10000
#define CANCEL_WAIT_MS 3000 /* on stop, for a cancelled build to end */
#define RETRY_MIN_MS 1000   /* reconnecting */
#define RETRY_MAX_MS 30000
#define FAIL_RETRY_MIN_MS (60 * 1000) /* a day whose build failed */
#define FAIL_RETRY_MAX_MS (60 * 60 * 1000)
#define MAX_FAILED 64
#define LOCK_KEY "7356100542" /* next to the migrations' advisory lock key */
#define DAY_MS INT64_C(86400000)

typedef enum {
	Q_OK,
	Q_SQL_ERROR, /* the statement failed; the connection is fine */
	Q_CONN,	     /* the connection is lost */
	Q_STOP,	     /* told to stop (a statement under way was cancelled) */
} q_rc_t;

typedef struct {
	char part[24]; /* events_pYYYYMMDD */
	int count;
	int64_t retry_ns; /* wall clock */
} failed_t;

struct argvindex {
	collector_t *col;
	char *conninfo;
	int64_t memory; /* maintenance_work_mem, bytes; 0: the server's */
	pthread_t thread;
	int stop_pipe[2];
	bool stop_sent;
	PGconn *pg;
	bool have_ext, locked, ext_warned, busy_logged;
	failed_t failed[MAX_FAILED];
	char err[512];
};

/* ---- waiting and statements ------------------------------------------------------- */

typedef enum {
	W_READY,
	W_TIMEOUT,
	W_STOP
} wait_rc_t;

/* Wait up to ms (< 0: no limit) for fd (if >= 0) to be ready for events,
 * or for the stop request. */
static wait_rc_t wait_fd(argvindex_t *x, int fd, short events, int64_t ms)
{
	struct pollfd p[2] = {{.fd = x->stop_pipe[0], .events = POLLIN},
			      {.fd = fd, .events = events}};
	int rc = poll(p, fd >= 0 ? 2 : 1, ms < 0 ? -1 : ms > INT_MAX ? INT_MAX : (int)ms);
	if (rc < 0 && errno != EINTR)
		return W_STOP; /* cannot wait: nothing sensible is left to do */
	if (rc > 0 && p[0].revents)
		return W_STOP;
	return rc > 0 ? W_READY : W_TIMEOUT;
}

static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static void set_err(argvindex_t *x, const char *what, const char *detail)
{
	snprintf(x->err, sizeof(x->err), "%s%s%s", what, *what && detail && *detail ? ": " : "",
		 detail ? detail : "");
	size_t n = strlen(x->err);
	while (n && (x->err[n - 1] == '\n' || x->err[n - 1] == ' '))
		x->err[--n] = '\0';
}

static void drop_conn(argvindex_t *x)
{
	PQfinish(x->pg);
	x->pg = NULL;
	x->have_ext = x->locked = false;
}

/* Connect without blocking past CONNECT_TIMEOUT_MS or a stop request.
 * Return Q_OK, Q_CONN (x->err says why) or Q_STOP. */
static q_rc_t db_connect(argvindex_t *x)
{
	/* builds take minutes: no statement_timeout from the role or the
	 * database applies to this session */
	char opts[160];
	int n = snprintf(opts, sizeof(opts),
			 "-c statement_timeout=0 -c lock_timeout=0 -c TimeZone=UTC");
	if (x->memory > 0)
		snprintf(opts + n, sizeof(opts) - (size_t)n, " -c maintenance_work_mem=%lldkB",
			 (long long)(x->memory / 1024));
	const char *keys[] = {"dbname", "application_name", "options", NULL};
	const char *vals[] = {x->conninfo, "vigil-collector-argv-index", opts, NULL};
	x->pg = PQconnectStartParams(keys, vals, 1);
	if (!x->pg || PQstatus(x->pg) == CONNECTION_BAD)
		goto fail;
	int64_t deadline = vtime_mono_ns() + (int64_t)CONNECT_TIMEOUT_MS * 1000000;
	PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	while (ps != PGRES_POLLING_OK) {
		if (ps == PGRES_POLLING_FAILED)
			goto fail;
		int64_t left = (deadline - vtime_mono_ns()) / 1000000;
		wait_rc_t w =
			left > 0 ? wait_fd(x, PQsocket(x->pg),
					   ps == PGRES_POLLING_WRITING ? POLLOUT : POLLIN, left)
				 : W_TIMEOUT;
		if (w == W_STOP) {
			drop_conn(x);
			return Q_STOP;
		}
		if (w == W_TIMEOUT) {
			set_err(x, "timed out connecting", NULL);
			drop_conn(x);
			return Q_CONN;
		}
		ps = PQconnectPoll(x->pg);
	}
	PQsetNoticeProcessor(x->pg, quiet_notice, NULL);
	return Q_OK;
fail:
	set_err(x, "cannot connect", x->pg ? PQerrorMessage(x->pg) : "out of memory");
	drop_conn(x);
	return Q_CONN;
}

/* Cancel the statement under way and wait a little for it to end, so that
 * the server has let go of it when the collector exits. */
static void cancel(argvindex_t *x)
{
	char buf[256];
	PGcancel *c = PQgetCancel(x->pg);
	if (c) {
		(void)PQcancel(c, buf, sizeof(buf));
		PQfreeCancel(c);
	}
	int64_t deadline = vtime_mono_ns() + (int64_t)CANCEL_WAIT_MS * 1000000;
	for (;;) {
		while (!PQisBusy(x->pg)) {
			PGresult *r = PQgetResult(x->pg);
			if (!r)
				return;
			PQclear(r);
		}
		int64_t left = (deadline - vtime_mono_ns()) / 1000000;
		struct pollfd p = {.fd = PQsocket(x->pg), .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0 || !PQconsumeInput(x->pg))
			return;
	}
}

/* Run sql (n text parameters; none: the simple protocol, which CREATE
 * INDEX CONCURRENTLY needs). On Q_OK *out (if given) is the last result,
 * the caller's to clear; otherwise x->err says what failed. */
static q_rc_t run(argvindex_t *x, const char *sql, int n, const char *const *vals, PGresult **out)
{
	if (out)
		*out = NULL;
	int sent = n ? PQsendQueryParams(x->pg, sql, n, NULL, vals, NULL, NULL, 0)
		     : PQsendQuery(x->pg, sql);
	if (!sent) {
		set_err(x, "cannot send a statement", PQerrorMessage(x->pg));
		return Q_CONN;
	}
	PGresult *last = NULL;
	for (;;) {
		while (!PQisBusy(x->pg)) {
			PGresult *r = PQgetResult(x->pg);
			if (!r)
				goto done;
			PQclear(last);
			last = r;
		}
		if (wait_fd(x, PQsocket(x->pg), POLLIN, -1) == W_STOP) {
			PQclear(last);
			cancel(x);
			return Q_STOP;
		}
		if (!PQconsumeInput(x->pg)) {
			PQclear(last);
			set_err(x, "connection lost", PQerrorMessage(x->pg));
			return Q_CONN;
		}
	}
done:;
	ExecStatusType s = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
		if (out)
			*out = last;
		else
			PQclear(last);
		return Q_OK;
	}
	bool conn_ok = PQstatus(x->pg) == CONNECTION_OK;
	set_err(x, "", last ? PQresultErrorMessage(last) : PQerrorMessage(x->pg));
	PQclear(last);
	return conn_ok ? Q_SQL_ERROR : Q_CONN;
}

/* ---- one pass ------------------------------------------------------------------------ */

/* Milliseconds until the next look: the next day's end (UTC), or
 * RECHECK_MS, whichever comes first. */
static int64_t next_look_ms(void)
{
	int64_t now_ms = vtime_now_ns() / 1000000;
	int64_t to_midnight = DAY_MS - now_ms % DAY_MS + AFTER_MIDNIGHT_MS;
	return to_midnight < RECHECK_MS ? to_midnight : RECHECK_MS;
}

static failed_t *failed_of(argvindex_t *x, const char *part, bool add)
{
	failed_t *oldest = &x->failed[0];
	for (int i = 0; i < MAX_FAILED; i++) {
		if (strcmp(x->failed[i].part, part) == 0)
			return &x->failed[i];
		if (x->failed[i].retry_ns < oldest->retry_ns)
			oldest = &x->failed[i];
	}
	if (!add)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->part, sizeof(oldest->part), "%s", part);
	return oldest;
}

/* The extension and the builders' lock. Return Q_OK with *ready false if
 * another collector builds, or the extension cannot be created (said
 * once). */
static q_rc_t get_ready(argvindex_t *x, bool *ready)
{
	*ready = false;
	PGresult *r;
	q_rc_t rc;
	if (!x->locked) {
		const char *key[] = {LOCK_KEY};
		if ((rc = run(x, "SELECT pg_try_advisory_lock($1::bigint)", 1, key, &r)) != Q_OK)
			return rc;
		x->locked = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		PQclear(r);
		if (!x->locked) {
			if (!x->busy_logged)
				log_info("argv index: another collector builds the indexes");
			x->busy_logged = true;
			return Q_OK;
		}
	}
	if (!x->have_ext) {
		if ((rc = run(x, "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'", 0, NULL,
			      &r)) != Q_OK)
			return rc;
		x->have_ext = PQntuples(r) == 1;
		PQclear(r);
	}
	if (!x->have_ext) {
		/* a trusted extension: the database's owner may create it */
		rc = run(x, "CREATE EXTENSION IF NOT EXISTS pg_trgm", 0, NULL, NULL);
		if (rc == Q_SQL_ERROR) {
			if (!x->ext_warned)
				log_warn("argv index: cannot create the extension pg_trgm (%s); "
					 "argv= reads every event of its window until it can "
					 "(trying again every %d minutes)",
					 x->err, RECHECK_MS / 60000);
			x->ext_warned = true;
			return Q_OK;
		}
		if (rc != Q_OK)
			return rc;
		log_info("argv index: created the extension pg_trgm");
		x->have_ext = true;
	}
	*ready = true;
	return Q_OK;
}

/* The newest ended day without a valid index that is not waiting to be
 * retried: part (empty if none), whether an invalid index of it is left
 * over, whether another day waits after it; *retry_ms, when the first
 * day waiting to be retried may be (-1 if none). */
static q_rc_t pick(argvindex_t *x, char part[24], bool *invalid, bool *more, int64_t *retry_ms)
{
	part[0] = '\0';
	*more = false;
	*retry_ms = -1;
	/* the oldest day is dropped next (vigil_drop_partitions): a build
	 * under way would hold up that DROP, and with it every insert */
	char keep[24];
	snprintf(keep, sizeof(keep), "%" PRId64, SETTING(x->col, retention_days));
	const char *vals[] = {keep};
	PGresult *r;
	q_rc_t rc = run(
		x,
		"SELECT c.relname, i.indexrelid IS NOT NULL FROM pg_inherits h "
		"JOIN pg_class c ON c.oid = h.inhrelid "
		"LEFT JOIN pg_class ic ON ic.relname = c.relname || '_argv_trgm' "
		"AND ic.relnamespace = c.relnamespace "
		"LEFT JOIN pg_index i ON i.indexrelid = ic.oid "
		"WHERE h.inhparent = 'events'::regclass AND c.relname ~ '^events_p[0-9]{8}$' "
		"AND substr(c.relname, 9) < to_char((now() AT TIME ZONE 'UTC')::date, 'YYYYMMDD') "
		"AND substr(c.relname, 9) > to_char((now() AT TIME ZONE 'UTC')::date - "
		"$1::integer, 'YYYYMMDD') AND i.indisvalid IS NOT TRUE "
		"ORDER BY c.relname DESC",
		1, vals, &r);
	if (rc != Q_OK)
		return rc;
	int64_t now = vtime_now_ns();
	for (int i = 0; i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 0);
		if (strlen(name) != 16)
			continue;
		failed_t *f = failed_of(x, name, false);
		if (f && f->retry_ns > now) {
			int64_t ms = (f->retry_ns - now) / 1000000 + 1;
			if (*retry_ms < 0 || ms < *retry_ms)
				*retry_ms = ms;
			continue;
		}
		if (part[0]) {
			*more = true;
			break;
		}
		snprintf(part, 24, "%s", name);
		*invalid = strcmp(PQgetvalue(r, i, 1), "t") == 0;
	}
	PQclear(r);
	return Q_OK;
}

/* Build the index of part (after dropping an invalid one left over), then
 * analyze part. */
static q_rc_t build(argvindex_t *x, const char *part, bool invalid)
{
	char sql[256];
	q_rc_t rc;
	if (invalid) {
		snprintf(sql, sizeof(sql), "DROP INDEX CONCURRENTLY IF EXISTS \"%s_argv_trgm\"",
			 part);
		if ((rc = run(x, sql, 0, NULL, NULL)) != Q_OK)
			return rc;
	}
	int64_t t0 = vtime_mono_ns();
	snprintf(sql, sizeof(sql),
		 "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"%s_argv_trgm\" ON \"%s\" "
		 "USING gin (vigil_argv_text(argv) gin_trgm_ops)",
		 part, part);
	if ((rc = run(x, sql, 0, NULL, NULL)) != Q_OK)
		return rc;
	double build_s = (double)(vtime_mono_ns() - t0) / 1e9;
	snprintf(sql, sizeof(sql), "ANALYZE \"%s\"", part);
	if ((rc = run(x, sql, 0, NULL, NULL)) != Q_OK)
		return rc;
	/* IF NOT EXISTS passes over a relation of that name that is no index */
	snprintf(sql, sizeof(sql), "%s_argv_trgm", part);
	const char *vals[] = {sql};
	PGresult *r;
	if ((rc = run(x, "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND indisvalid",
		      1, vals, &r)) != Q_OK)
		return rc;
	bool valid = PQntuples(r) == 1;
	PQclear(r);
	if (!valid) {
		set_err(x, "no valid index after the build", sql);
		return Q_SQL_ERROR;
	}
	/* a day without events (the partitions made ahead) is no news */
	log_msg(build_s >= 1 ? LOG_LVL_INFO : LOG_LVL_DEBUG, NULL, "argv index: built %s in %.1f s",
		sql, build_s);
	return Q_OK;
}

/* One pass: build the newest ended day's missing index. *wait_ms is set
 * to 0 if another day waits, else to the time until the next look. */
static q_rc_t pass(argvindex_t *x, int64_t *wait_ms)
{
	*wait_ms = next_look_ms();
	bool ready;
	q_rc_t rc = get_ready(x, &ready);
	if (rc != Q_OK || !ready)
		return rc;
	char part[24];
	bool invalid = false, more;
	int64_t retry_ms;
	if ((rc = pick(x, part, &invalid, &more, &retry_ms)) != Q_OK)
		return rc;
	if (retry_ms >= 0 && retry_ms < *wait_ms)
		*wait_ms = retry_ms;
	if (!part[0])
		return Q_OK;
	rc = build(x, part, invalid);
	if (rc == Q_SQL_ERROR) {
		failed_t *f = failed_of(x, part, true);
		int64_t ms = FAIL_RETRY_MIN_MS;
		for (int i = 0; i < f->count && ms < FAIL_RETRY_MAX_MS; i++)
			ms *= 2;
		ms = ms < FAIL_RETRY_MAX_MS ? ms : FAIL_RETRY_MAX_MS;
		f->count++;
		f->retry_ns = vtime_now_ns() + ms * 1000000;
		log_warn("argv index: building the index of %s failed (%s); trying again in %lld s",
			 part, x->err, (long long)(ms / 1000));
		rc = Q_OK;
	} else if (rc == Q_OK) {
		failed_t *f = failed_of(x, part, false);
		if (f)
			memset(f, 0, sizeof(*f));
	}
	if (rc == Q_OK && more)
		*wait_ms = 0;
	return rc;
}

/* ---- the thread ------------------------------------------------------------------------ */

static void *thread_main(void *arg)
{
	argvindex_t *x = arg;
	int64_t backoff = RETRY_MIN_MS, wait_ms = 0;
	bool down_logged = false;
	for (;;) {
		q_rc_t rc = x->pg ? Q_OK : db_connect(x);
		if (rc == Q_OK) {
			if (down_logged)
				log_info("argv index: connected to PostgreSQL again");
			down_logged = false;
			backoff = RETRY_MIN_MS;
			rc = pass(x, &wait_ms);
		}
		if (rc == Q_STOP)
			break;
		if (rc == Q_SQL_ERROR) { /* looking, not building, failed */
			log_warn("argv index: %s", x->err);
			wait_ms = FAIL_RETRY_MIN_MS;
		}
		if (rc == Q_CONN) {
			if (!down_logged)
				log_warn("argv index: %s; retrying", x->err);
			down_logged = true;
			drop_conn(x);
			wait_ms = backoff;
			backoff = backoff * 2 < RETRY_MAX_MS ? backoff * 2 : RETRY_MAX_MS;
		}
		if (wait_ms > 0 && wait_fd(x, -1, 0, wait_ms) == W_STOP)
			break;
	}
	drop_conn(x);
	return NULL;
}

argvindex_t *argvindex_start(collector_t *col)
{
	argvindex_t *x = calloc(1, sizeof(*x));
	if (!x || !(x->conninfo = strdup(col->settings->db))) {
		free(x);
		log_error("argv index: out of memory");
		return NULL;
	}
	x->col = col;
	x->memory = col->settings->argv_index_memory;
	if (pipe2(x->stop_pipe, O_CLOEXEC) != 0) {
		log_error("argv index: pipe: %s", strerror(errno));
		free(x->conninfo);
		free(x);
		return NULL;
	}
	if (pthread_create(&x->thread, NULL, thread_main, x) != 0) {
		log_error("argv index: cannot start the thread");
		close(x->stop_pipe[0]);
		close(x->stop_pipe[1]);
		free(x->conninfo);
		free(x);
		return NULL;
	}
	return x;
}

void argvindex_stop(argvindex_t *x)
{
	if (!x || x->stop_sent)
		return;
	x->stop_sent = true;
	if (write(x->stop_pipe[1], "x", 1) != 1) {
		/* a full pipe already says stop */
	}
}

void argvindex_free(argvindex_t *x)
{
	if (!x)
		return;
	argvindex_stop(x);
	pthread_join(x->thread, NULL);
	close(x->stop_pipe[0]);
	close(x->stop_pipe[1]);
	free(x->conninfo);
	free(x);
}
