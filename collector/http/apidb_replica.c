// SPDX-License-Identifier: Apache-2.0
/*
 * Routing of the API's jobs between the primary and a read replica
 * (http_db; see apidb.h). Only jobs marked replica go to the replica: the
 * reads the handlers build with qb (apidb_query.h). Everything that
 * writes (sessions, sign-in and sign-out, the audit record), the token
 * and session lookups (read-your-writes: a session made a moment ago on
 * the primary must be found), reads of what the API itself writes (the
 * audit log, the token list) and /readyz stay on the primary.
 *
 * An audited read is one statement on the primary: the audit insert as a
 * data-modifying CTE, then the read. A hot standby refuses the insert, so
 * here the record is written on the primary first (it commits), and the
 * read then runs on the replica with a harmless stand-in for the CTE that
 * keeps the parameters $1..$6 typed. No answer leaves without its record;
 * a read that fails after its record was written leaves a record of the
 * attempt, as a read cancelled by statement_timeout does.
 */
#include "http/apidb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtime.h"

/* A lost connection noticed within this of sending is retried once. */
#define RETRY_WITHIN_NS INT64_C(1000000000)

/* The read of job, with the audit CTE replaced by its stand-in: a new
 * string, or NULL when out of memory. Sets *audited. */
static char *read_sql(const char *sql, bool *audited)
{
	size_t mark = strncmp(sql, APIDB_LISTING_MARK, strlen(APIDB_LISTING_MARK)) == 0
			      ? strlen(APIDB_LISTING_MARK)
			      : 0;
	*audited = strncmp(sql + mark, APIDB_AUDIT_CTE, strlen(APIDB_AUDIT_CTE)) == 0;
	if (!*audited)
		return NULL;
	const char *rest = sql + mark + strlen(APIDB_AUDIT_CTE);
	size_t len = mark + strlen(APIDB_AUDIT_STANDIN) + strlen(rest) + 1;
	char *out = malloc(len);
	if (out)
		snprintf(out, len, "%.*s%s%s", (int)mark, sql, APIDB_AUDIT_STANDIN, rest);
	return out;
}

/* Write job's audit record on the primary. 0, or -1 with job's status and
 * error set. */
static int write_audit(apidb_conn_t *primary, apidb_job_t *job)
{
	apidb_job_t a;
	memset(&a, 0, sizeof(a));
	a.sql = (char *)APIDB_AUDIT_INSERT;
	a.n_params = APIDB_AUDIT_N;
	memcpy(a.params, job->params, sizeof(a.params[0]) * APIDB_AUDIT_N); /* borrowed */
	apidb_run(primary, &a);
	if (a.status == APIDB_OK)
		return 0;
	job->status = a.status;
	memcpy(job->sqlstate, a.sqlstate, sizeof(job->sqlstate));
	memcpy(job->error, a.error, sizeof(job->error));
	return -1;
}

void apidb_run_routed(apidb_conn_t *primary, apidb_conn_t *replica, apidb_job_t *job)
{
	job->replica_failed = false;
	if (!replica || !job->replica) {
		apidb_run(primary, job);
		return;
	}
	bool audited = false;
	char *sql = job->n_params >= APIDB_AUDIT_N ? read_sql(job->sql, &audited) : NULL;
	if (audited && !sql) {
		job->status = APIDB_ERR_QUERY;
		job->sqlstate[0] = '\0';
		snprintf(job->error, sizeof(job->error), "out of memory");
		return;
	}
	if (audited) {
		if (write_audit(primary, job) != 0) {
			free(sql);
			return;
		}
		free(job->sql);
		job->sql = sql;
	}
	bool was_open = apidb_conn_ready(replica);
	int64_t t0 = vtime_mono_ns();
	apidb_run(replica, job);
	/* A connection that the replica closed while it sat idle (the replica
	 * restarted) fails at once: one more try, on a new connection. The
	 * read writes nothing, so running it again is harmless; a read that
	 * took its time is not run twice. */
	if (job->status == APIDB_ERR_CONN && was_open && vtime_mono_ns() - t0 < RETRY_WITHIN_NS)
		apidb_run(replica, job);
	if (job->status == APIDB_ERR_CONN) {
		char why[sizeof(job->error)];
		memcpy(why, job->error, sizeof(why));
		snprintf(job->error, sizeof(job->error), "read replica (http_db): %.200s", why);
		job->replica_failed = true;
	}
}
