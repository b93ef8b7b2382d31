// SPDX-License-Identifier: Apache-2.0
/*
 * A commit group that PostgreSQL refused, committed again job by job in one
 * transaction (see storeops.h): refused rows are found by halving and kept
 * as dead letters, a batch with more than max_bad_events_per_batch of them
 * is refused whole, and a job whose refusal is not a row's is quarantined,
 * so that no job is retried forever and the others' work is rolled back
 * once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ingest/budget.h"
#include "ingest/storeops.h"
#include "log.h"

/* PostgreSQL refused this, not the connection or a passing condition. */
static bool refusal(res_t rc)
{
	return rc == R_DATA || rc == R_OTHER;
}

typedef struct {
	dead_event_t *v; /* reasons owned; payloads borrowed from the job's raw */
	size_t n, cap;
} bad_rows_t;

static res_t bad_add(store_t *st, bad_rows_t *b, const job_t *j, uint32_t idx)
{
	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 8;
		dead_event_t *v = realloc(b->v, nc * sizeof(*v));
		if (!v)
			goto oom;
		b->v = v;
		b->cap = nc;
	}
	dead_event_t *d = &b->v[b->n];
	d->idx = idx;
	d->reason = strdup(st->err);
	d->payload = idx < j->n_spans ? j->raw + j->spans[idx].off : NULL;
	d->payload_len = idx < j->n_spans ? j->spans[idx].len : 0;
	if (!d->reason)
		goto oom;
	b->n++;
	return R_OK;
oom:
	snprintf(st->err, sizeof(st->err), "out of memory");
	return R_RETRY;
}

/* Store rows [lo, hi) of job j under a savepoint, halving what PostgreSQL
 * refuses down to single rows, which go to bad: k refused rows of n cost
 * about 2 k log2(n) COPYs. Stops once bad holds more than max. */
static res_t isolate_rows(store_t *st, job_t *j, size_t lo, size_t hi, bad_rows_t *bad, size_t max)
{
	if (lo >= hi || bad->n > max)
		return R_OK;
	size_t start = lo ? j->rows.row[lo - 1].end : 0;
	span_t sp = {j->rows.rows.data + start, j->rows.row[hi - 1].end - start};
	res_t rc = store_sql(st, "SAVEPOINT vigil_rows");
	if (rc == R_OK)
		rc = store_copy(st, &sp, 1);
	if (rc == R_OK)
		return store_sql(st, "RELEASE SAVEPOINT vigil_rows");
	if (!refusal(rc))
		return rc;
	char why[sizeof(st->err)];
	memcpy(why, st->err, sizeof(why));
	rc = store_sql(st, "ROLLBACK TO SAVEPOINT vigil_rows; RELEASE SAVEPOINT vigil_rows");
	memcpy(st->err, why, sizeof(why));
	if (rc != R_OK)
		return rc;
	if (hi - lo == 1)
		return bad_add(st, bad, j, j->rows.row[lo].idx);
	size_t mid = lo + (hi - lo) / 2;
	rc = isolate_rows(st, j, lo, mid, bad, max);
	return rc == R_OK ? isolate_rows(st, j, mid, hi, bad, max) : rc;
}

/* The container state and findings of j under a savepoint; refused, they
 * become one dead letter. */
static res_t isolate_state(store_t *st, job_t *j)
{
	if (!j->rows.state_ops && !j->rows.images)
		return R_OK;
	res_t rc = store_sql(st, "SAVEPOINT vigil_state");
	if (rc == R_OK)
		rc = store_apply_state(st, &j, 1);
	if (refusal(rc)) {
		char reason[600];
		snprintf(reason, sizeof(reason), "container state: %s", st->err);
		rc = store_sql(st, "ROLLBACK TO SAVEPOINT vigil_state");
		char *ops = j->rows.state_ops ? json_dumps(j->rows.state_ops, JSON_COMPACT) : NULL;
		dead_event_t d = {0, reason, (uint8_t *)ops, ops ? strlen(ops) : 0};
		if (rc == R_OK)
			rc = store_put_dead(st, j, &d, 1, -1);
		free(ops);
	}
	return rc == R_OK ? store_sql(st, "RELEASE SAVEPOINT vigil_state") : rc;
}

/* Keep all of job j as one dead letter (its raw batch) with the reason
 * PostgreSQL gave, so the writer moves on. */
static res_t quarantine(store_t *st, job_t *j)
{
	char reason[600];
	snprintf(reason, sizeof(reason), "batch quarantined: %s", st->err);
	res_t rc = store_sql(st, "ROLLBACK TO SAVEPOINT vigil_job");
	dead_event_t d = {0, reason, j->raw, j->raw_len};
	if (rc == R_OK)
		rc = store_put_dead(st, j, &d, 1, -1);
	if (rc != R_OK)
		return rc;
	atomic_fetch_add(&st->col->counters.jobs_quarantined, 1);
	j->dead_in_db = j->rows.n_rows;
	log_warn("%s agent %s batch %" PRIu64 " quarantined in dead_letters: %s", st->prefix,
		 j->agent_name, j->seq, reason);
	return R_OK;
}

/* Job j alone under a savepoint: refused rows to dead_letters, the batch
 * refused whole past max_bad of them, quarantined when what PostgreSQL
 * refuses is not a row. */
static res_t isolate_job(store_t *st, job_t *j, size_t max_bad)
{
	bad_rows_t bad = {0};
	res_t rc = store_sql(st, "SAVEPOINT vigil_job");
	if (rc == R_OK)
		rc = isolate_rows(st, j, 0, j->rows.n_rows, &bad, max_bad);
	if (rc == R_OK && bad.n > max_bad) {
		char why[700];
		snprintf(why, sizeof(why),
			 "batch %" PRIu64 " refused whole: PostgreSQL refused more than "
			 "max_bad_events_per_batch (%zu) of its events (first: event %u, %s)",
			 j->seq, max_bad, bad.v[0].idx, bad.v[0].reason);
		j->refused = strdup(why);
		atomic_fetch_add(&st->col->counters.batches_refused, 1);
		rc = store_sql(st, "ROLLBACK TO SAVEPOINT vigil_job; RELEASE SAVEPOINT vigil_job");
		goto out;
	}
	if (rc == R_OK)
		rc = store_put_rejects(st, j);
	if (rc == R_OK && bad.n)
		rc = store_put_dead(st, j, bad.v, bad.n, -2);
	if (rc == R_OK)
		rc = isolate_state(st, j);
	j->dead_in_db = bad.n;
	if (refusal(rc))
		rc = quarantine(st, j);
	if (rc == R_OK)
		rc = store_sql(st, "RELEASE SAVEPOINT vigil_job");
	if (rc == R_OK && bad.n)
		log_warn("%s agent %s batch %" PRIu64
			 ": %zu event(s) refused, kept in dead_letters",
			 st->prefix, j->agent_name, j->seq, bad.n);
out:
	for (size_t i = 0; i < bad.n; i++)
		free(bad.v[i].reason);
	free(bad.v);
	return rc;
}

/* An earlier job of j's agent in jobs[0..i) was refused. */
static bool after_refused(job_t **jobs, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (jobs[k]->refused && jobs[k]->agent_id == jobs[i]->agent_id &&
		    jobs[k]->kind == JOB_BATCH)
			return true;
	return false;
}

/* The group again in one transaction, each job under a savepoint, so that
 * what PostgreSQL refuses costs only its own job; committed_seq rises to
 * each agent's last batch kept. */
res_t store_commit_isolating(store_t *st, job_t **jobs, size_t n)
{
	size_t max_bad = (size_t)SETTING(st->col, max_bad_events_per_batch);
	agent_seq_t *agents = NULL;
	size_t na = 0;
	res_t rc = store_sql(st, "BEGIN");
	for (size_t i = 0; rc == R_OK && i < n; i++) {
		if (jobs[i]->kind != JOB_HELLO)
			continue;
		rc = store_sql(st, "SAVEPOINT vigil_hello");
		if (rc == R_OK)
			rc = store_upsert_hello(st, jobs[i]);
		if (refusal(rc)) {
			char why[600];
			snprintf(why, sizeof(why), "agent registration refused: %s", st->err);
			jobs[i]->refused = strdup(why);
			rc = store_sql(st, "ROLLBACK TO SAVEPOINT vigil_hello");
		}
		if (rc == R_OK)
			rc = store_sql(st, "RELEASE SAVEPOINT vigil_hello");
	}
	if (rc == R_OK)
		rc = store_lock_agents(st, jobs, n, &agents, &na);
	if (rc == R_OK && na) {
		store_filter_replays(jobs, n, agents, na);
		for (size_t i = 0; rc == R_OK && i < n; i++) {
			job_t *j = jobs[i];
			if (j->kind != JOB_BATCH || j->replay)
				continue;
			if (after_refused(jobs, i))
				j->refused = strdup("an earlier batch of this agent was refused");
			else
				rc = isolate_job(st, j, max_bad);
		}
		for (size_t a = 0; a < na; a++)
			agents[a].touched = false;
		for (size_t i = 0; i < n; i++) {
			job_t *j = jobs[i];
			agent_seq_t *x = store_find_agent(agents, na, j->agent_id);
			if (j->kind == JOB_BATCH && !j->replay && !j->refused && x) {
				x->seq = (int64_t)j->seq;
				x->touched = true;
			}
		}
		if (rc == R_OK)
			rc = store_set_committed(st, agents, na);
	}
	if (rc == R_OK)
		rc = store_read_hello_seqs(st, jobs, n);
	if (rc == R_OK)
		rc = store_sql(st, "COMMIT");
	free(agents);
	return rc;
}
