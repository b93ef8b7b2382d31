// SPDX-License-Identifier: Apache-2.0
/*
 * PostgreSQL access for the query API: a small pool of threads, each with
 * its own connection, that run jobs (one parameterized statement each) and
 * hand them back to the HTTP thread's event loop. The only API module that
 * includes libpq-fe.h; the HTTP loop itself never waits on PostgreSQL.
 * Also a synchronous connection for operator subcommands (token ...).
 */
#ifndef VIGIL_APIDB_H
#define VIGIL_APIDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define APIDB_MAX_PARAMS 32

/* SQL that starts with this comment is a listing (events by time, exports):
 * such jobs never hold every connection, one stays for the small reads
 * (agents, status, sign-in). Also shows in pg_stat_activity. */
#define APIDB_LISTING_MARK "/* vigil:listing */ "

/* An audited read starts (after any listing mark) with this insert into
 * audit_log of its parameters $1..$6, so that no answer leaves without
 * its record (apidb_query.h). With a read replica the pool writes the
 * record on the primary first (APIDB_AUDIT_INSERT), then runs the read on
 * the replica with APIDB_AUDIT_STANDIN in its place (apidb_replica.c). */
#define APIDB_AUDIT_CTE                                                                     \
	"WITH vigil_audit AS (INSERT INTO audit_log (principal, role, peer, method, path, " \
	"query) VALUES ($1, $2, $3, $4, $5, $6)) "
#define APIDB_AUDIT_INSERT                                                                    \
	"INSERT INTO audit_log (principal, role, peer, method, path, query) VALUES ($1, $2, " \
	"$3, $4, $5, $6)"
#define APIDB_AUDIT_STANDIN                                                              \
	"WITH vigil_audit AS (SELECT $1::text, $2::text, $3::text, $4::text, $5::text, " \
	"$6::text) "
#define APIDB_AUDIT_N 6

typedef enum {
	APIDB_OK = 0,
	APIDB_ERR_CONN,	   /* PostgreSQL unreachable, or no answer in time */
	APIDB_ERR_QUERY,   /* PostgreSQL refused the statement (sqlstate set) */
	APIDB_ERR_ABANDON, /* shutting down */
} apidb_status_t;

typedef struct apidb_job apidb_job_t;
typedef void (*apidb_done_fn)(apidb_job_t *job, void *arg);

struct apidb_job {
	apidb_job_t *next;
	/* input, owned by the job */
	char *sql;
	int n_params;
	char *params[APIDB_MAX_PARAMS]; /* NULL is SQL NULL */
	size_t max_rows;		/* rows kept from the result; 0 = all */
	bool listing;			/* sql starts with APIDB_LISTING_MARK */
	bool replica; /* a read (its audit record aside): may run on the read replica */
	/* output */
	apidb_status_t status;
	char sqlstate[6];
	char error[256];
	bool replica_failed; /* the read replica did not answer (status APIDB_ERR_CONN) */
	int n_cols;
	size_t n_rows;
	char **cells; /* n_rows * n_cols, row-major; NULL cell = SQL NULL */
	/* completion: runs on the loop thread; the callee frees the job */
	apidb_done_fn done;
	void *arg;
};

/* A new job for sql (copied), with no parameters yet. NULL when out of
 * memory. Free with apidb_job_free. */
apidb_job_t *apidb_job_new(const char *sql);
/* Append a parameter (copied; NULL for SQL NULL). Return 0, or -1 when full
 * or out of memory. */
int apidb_job_param(apidb_job_t *job, const char *value) __attribute__((warn_unused_result));
/* Cell (row r, column c) or NULL. */
const char *apidb_cell(const apidb_job_t *job, size_t r, int c);
/* Free the job and its results. Accepts NULL. */
void apidb_job_free(apidb_job_t *job);

typedef struct apidb apidb_t;

/* Start n threads with one connection each to conninfo (the primary) and,
 * when read_conninfo is neither NULL nor empty, one each to it (the read
 * replica, for jobs marked replica); finished jobs are delivered on base's
 * thread. timeout_ms bounds every statement: it is the
 * sessions' statement_timeout (PostgreSQL cancels the statement), and a
 * job still running 2 s past it is cancelled from here. With n >= 2,
 * listing jobs run on at most n - 1 connections at once. Return NULL on
 * failure. */
apidb_t *apidb_new(struct event_base *base, const char *conninfo, const char *read_conninfo, int n,
		   int64_t timeout_ms);
/* Queue job (the pool owns it until done runs). Any thread. */
void apidb_submit(apidb_t *db, apidb_job_t *job);
/* Jobs queued or running. */
size_t apidb_pending(apidb_t *db);
/* Stop the threads, and free the jobs not delivered without calling their
 * done callbacks (on_drop is called for each job's arg first, if set). */
void apidb_free(apidb_t *db, void (*on_drop)(void *arg));

/* ---- synchronous use, for subcommands (not on an event loop) ---- */
typedef struct apidb_conn apidb_conn_t;
/* Connect. Return NULL with err set. */
apidb_conn_t *apidb_connect(const char *conninfo, int64_t timeout_ms, char *err, size_t errlen);
/* Run job on conn now; its results are filled in (done is not called). */
void apidb_run(apidb_conn_t *conn, apidb_job_t *job);
/* Run job now: on replica if it is set and the job is marked replica (an
 * audited read writes its record on primary first), else on primary. */
void apidb_run_routed(apidb_conn_t *primary, apidb_conn_t *replica, apidb_job_t *job);
/* Whether conn holds an open connection (as far as libpq knows). */
bool apidb_conn_ready(const apidb_conn_t *conn);
void apidb_close(apidb_conn_t *conn);

#endif
