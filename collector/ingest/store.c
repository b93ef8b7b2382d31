// SPDX-License-Identifier: Apache-2.0
/*
 * PostgreSQL access (see store.h). libpq runs in non-blocking mode under a
 * deadline (db_timeout), so a hung server is noticed and the connection
 * reset instead of blocking a writer forever.
 *
 * Exactly-once: in one transaction the writer locks the agents' rows,
 * drops batches whose seq is not above committed_seq (replays), COPYs the
 * rest and raises committed_seq. A replayed batch is acked, never stored.
 */
#include "ingest/store.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ingest/copyenc.h"
#include "log.h"
#include "ingest/migrations.h"
#include "ingest/stateplan.h"
#include "ingest/storeops.h"
#include "rules/rules.h"
#include "utf8.h"
#include "vtime.h"
#include "wire.h"

#define MIGRATION_LOCK_KEY 7356100541LL

/* Cut an incomplete UTF-8 sequence off the end of s and repair the rest:
 * error texts go into dead_letters.reason. */
static void err_tidy(char *s)
{
	size_t n = strlen(s), k = n;
	while (k && ((unsigned char)s[k - 1] & 0xc0) == 0x80 && n - k < 3)
		k--;
	if (k && ((unsigned char)s[k - 1] & 0xc0) == 0xc0) {
		unsigned char lead = (unsigned char)s[k - 1];
		size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
		if (n - (k - 1) < need)
			s[k - 1] = '\0';
	}
	utf8_sanitize(s);
}

store_t *store_new(collector_t *col, const char *conninfo, const char *name)
{
	store_t *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->col = col;
	st->conninfo = strdup(conninfo);
	if (!st->conninfo) {
		free(st);
		return NULL;
	}
	snprintf(st->prefix, sizeof(st->prefix), "[%s]", name);
	return st;
}

void store_free(store_t *st)
{
	if (!st)
		return;
	store_disconnect(st);
	free(st->conninfo);
	free(st);
}

void store_disconnect(store_t *st)
{
	if (st->pg) {
		PQfinish(st->pg);
		st->pg = NULL;
	}
}

static void notice_cb(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* NOTICEs (e.g. "relation already exists") are not news */
}

store_rc_t store_connect(store_t *st)
{
	if (st->pg && PQstatus(st->pg) == CONNECTION_OK)
		return STORE_OK;
	store_disconnect(st);
	const char *keys[] = {"dbname",		 "connect_timeout",  "keepalives",
			      "keepalives_idle", "application_name", NULL};
	const char *vals[] = {st->conninfo, "10", "1", "30", "vigil-collector", NULL};
	st->pg = PQconnectdbParams(keys, vals, 1);
	if (!st->pg || PQstatus(st->pg) != CONNECTION_OK) {
		const char *m = st->pg ? PQerrorMessage(st->pg) : "out of memory";
		snprintf(st->err, sizeof(st->err), "%s", m);
		size_t l = strlen(st->err);
		while (l && (st->err[l - 1] == '\n' || st->err[l - 1] == ' '))
			st->err[--l] = '\0';
		store_disconnect(st);
		return STORE_CONN_ERROR;
	}
	PQsetNoticeProcessor(st->pg, notice_cb, NULL);
	if (PQsetnonblocking(st->pg, 1) != 0) {
		snprintf(st->err, sizeof(st->err), "cannot make the connection non-blocking");
		store_disconnect(st);
		return STORE_CONN_ERROR;
	}
	return STORE_OK;
}

/* ---- non-blocking command execution under a deadline ------------------ */

static void arm_deadline(store_t *st)
{
	st->deadline_ns = vtime_mono_ns() + SETTING(st->col, db_timeout_ms) * 1000000;
}

/* Wait until the socket is readable (or writable too, if asked).
 * Return 0, or -1 on timeout. */
static int wait_io(store_t *st, bool want_write)
{
	for (;;) {
		int64_t left = (st->deadline_ns - vtime_mono_ns()) / 1000000;
		if (left <= 0)
			return -1;
		struct pollfd p = {.fd = PQsocket(st->pg),
				   .events = POLLIN | (want_write ? POLLOUT : 0)};
		int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static res_t lost(store_t *st, const char *what)
{
	if (st->pg && PQstatus(st->pg) == CONNECTION_OK)
		snprintf(st->err, sizeof(st->err), "%s", what);
	else
		snprintf(st->err, sizeof(st->err), "%s: %s", what,
			 st->pg ? PQerrorMessage(st->pg) : "not connected");
	err_tidy(st->err);
	store_disconnect(st);
	return R_CONN;
}

static int flush_all(store_t *st)
{
	for (;;) {
		int r = PQflush(st->pg);
		if (r == 0)
			return 0;
		if (r < 0 || wait_io(st, true) != 0 || !PQconsumeInput(st->pg))
			return -1;
	}
}

/* Next result, or NULL when the command is complete (or on failure:
 * *failed is then set). */
static PGresult *next_result(store_t *st, bool *failed)
{
	while (PQisBusy(st->pg)) {
		if (wait_io(st, false) != 0 || !PQconsumeInput(st->pg)) {
			*failed = true;
			return NULL;
		}
	}
	return PQgetResult(st->pg);
}

static res_t classify(store_t *st, const PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
	snprintf(st->err, sizeof(st->err), "%s%s%s (SQLSTATE %s)",
		 msg ? msg : PQresultErrorMessage(r), ctx ? "; " : "", ctx ? ctx : "",
		 state ? state : "?");
	err_tidy(st->err); /* newlines become '?' too */
	if (PQstatus(st->pg) != CONNECTION_OK || !state)
		return R_CONN;
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
		return R_CONN;
	/* deadlock, serialization, resources, lock not available, canceled, I/O */
	if (strncmp(state, "40", 2) == 0 || strncmp(state, "53", 2) == 0 ||
	    strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 ||
	    strncmp(state, "58", 2) == 0)
		return R_RETRY;
	/* 21000: a statement would write one row twice (the batch's data) */
	if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
	    strncmp(state, "54", 2) == 0 || strcmp(state, "21000") == 0)
		return R_DATA;
	return R_OTHER;
}

/* Wait for every result of the command in flight. The last tuples result
 * goes to *out if out is set (caller PQclears it). */
static res_t collect(store_t *st, PGresult **out)
{
	if (flush_all(st) != 0)
		return lost(st, "cannot send to PostgreSQL");
	res_t rc = R_OK;
	bool failed = false;
	PGresult *r;
	while ((r = next_result(st, &failed)) != NULL) {
		ExecStatusType s = PQresultStatus(r);
		if (s == PGRES_TUPLES_OK && out && rc == R_OK) {
			PQclear(*out);
			*out = r;
			continue;
		}
		if (s == PGRES_COPY_IN) {
			/* only run_copy expects this; end it here */
			PQclear(r);
			PQputCopyEnd(st->pg, "unexpected COPY");
			continue;
		}
		if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY &&
		    rc == R_OK)
			rc = classify(st, r);
		PQclear(r);
	}
	if (failed)
		return lost(st, "PostgreSQL did not answer in time");
	if (rc != R_OK && out) {
		PQclear(*out);
		*out = NULL;
	}
	return rc;
}

static res_t run(store_t *st, const char *sql, int n, const char *const *vals, const int *lens,
		 const int *fmts, PGresult **out)
{
	if (out)
		*out = NULL;
	if (!st->pg)
		return lost(st, "not connected");
	arm_deadline(st);
	int ok = n < 0 ? PQsendQuery(st->pg, sql)
		       : PQsendQueryParams(st->pg, sql, n, NULL, vals, lens, fmts, 0);
	if (!ok)
		return lost(st, "cannot send to PostgreSQL");
	return collect(st, out);
}

res_t store_sql(store_t *st, const char *sql)
{
	return run(st, sql, -1, NULL, NULL, NULL, NULL);
}

/* Send COPY data in chunks, flushing each: libpq moves the unsent rest of
 * its output buffer after every partial send, so a small buffer is cheap
 * and a large one is quadratic. */
#define COPY_CHUNK (64 * 1024)

static int put_copy(store_t *st, const uint8_t *p, size_t n)
{
	while (n > 0) {
		int chunk = n > COPY_CHUNK ? COPY_CHUNK : (int)n;
		int r = PQputCopyData(st->pg, (const char *)p, chunk);
		if (r < 0)
			return -1;
		if (r == 1) {
			p += chunk;
			n -= (size_t)chunk;
		}
		if (flush_all(st) != 0)
			return -1;
	}
	return 0;
}

/* COPY events FROM STDIN with the given spans of tuples. */
res_t store_copy(store_t *st, const span_t *spans, size_t n_spans)
{
	arm_deadline(st);
	if (!PQsendQuery(st->pg, "COPY events FROM STDIN (FORMAT binary)"))
		return lost(st, "cannot send COPY");
	bool failed = false;
	if (flush_all(st) != 0)
		return lost(st, "cannot send COPY");
	PGresult *r = next_result(st, &failed);
	if (!r)
		return lost(st, "no answer to COPY");
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		res_t rc = classify(st, r);
		PQclear(r);
		(void)collect(st, NULL);
		return rc;
	}
	PQclear(r);
	copybuf_t hdr;
	copybuf_init(&hdr);
	copy_header(&hdr);
	int bad = hdr.oom || put_copy(st, hdr.data, hdr.len) != 0;
	copybuf_reset(&hdr);
	copy_trailer(&hdr);
	for (size_t i = 0; !bad && i < n_spans; i++)
		bad = put_copy(st, spans[i].p, spans[i].n) != 0;
	bad = bad || put_copy(st, hdr.data, hdr.len) != 0;
	copybuf_free(&hdr);
	if (bad || PQputCopyEnd(st->pg, NULL) < 0)
		return lost(st, "cannot send COPY data");
	return collect(st, NULL);
}

store_rc_t store_ping(store_t *st)
{
	store_rc_t rc = store_connect(st);
	if (rc != STORE_OK)
		return rc;
	res_t r = store_sql(st, "SELECT 1");
	return r == R_OK ? STORE_OK : r == R_CONN ? STORE_CONN_ERROR : STORE_ERROR;
}

/* ---- migrations and partitions ------------------------------------------ */

store_rc_t store_migrate(store_t *st)
{
	char lock[96];
	snprintf(lock, sizeof(lock), "SELECT pg_advisory_lock(%lld)", MIGRATION_LOCK_KEY);
	res_t rc = store_sql(st, lock);
	if (rc != R_OK)
		goto out;
	rc = store_sql(st, "CREATE TABLE IF NOT EXISTS schema_migrations ("
			   "version integer PRIMARY KEY, name text NOT NULL, "
			   "applied_at timestamptz NOT NULL DEFAULT now())");
	for (size_t i = 0; rc == R_OK && i < migrations_count; i++) {
		const migration_t *m = &migrations[i];
		char v[16];
		snprintf(v, sizeof(v), "%d", m->version);
		const char *vals[] = {v};
		PGresult *res = NULL;
		rc = run(st, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, vals, NULL,
			 NULL, &res);
		bool applied = res && PQntuples(res) > 0;
		PQclear(res);
		if (rc != R_OK || applied)
			continue;
		log_info("applying migration %s", m->name);
		rc = store_sql(st, "BEGIN");
		if (rc == R_OK)
			rc = store_sql(st, m->sql);
		if (rc == R_OK) {
			const char *ins[] = {v, m->name};
			rc = run(st,
				 "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
				 ins, NULL, NULL, NULL);
		}
		if (rc == R_OK)
			rc = store_sql(st, "COMMIT");
		if (rc != R_OK) {
			log_error("%s migration %s failed: %s", st->prefix, m->name, st->err);
			if (st->pg)
				(void)store_sql(st, "ROLLBACK");
			break;
		}
	}
out:
	if (st->pg) {
		snprintf(lock, sizeof(lock), "SELECT pg_advisory_unlock(%lld)", MIGRATION_LOCK_KEY);
		(void)store_sql(st, lock);
	}
	if (rc == R_OK)
		return STORE_OK;
	log_error("%s schema migration failed: %s", st->prefix, st->err);
	return rc == R_CONN ? STORE_CONN_ERROR : STORE_ERROR;
}

store_rc_t store_maintain_partitions(store_t *st)
{
	/* vigil_maintain_partitions (0017) records these as the policy that a
	 * scheduler (pg_cron) applies while no collector runs */
	char back[24], ahead[24], days[24];
	snprintf(back, sizeof(back), "%" PRId64, SETTING(st->col, retention_days));
	snprintf(ahead, sizeof(ahead), "%" PRId64, SETTING(st->col, partitions_ahead_days));
	snprintf(days, sizeof(days), "%" PRId64, SETTING(st->col, dead_letter_retention_days));
	const char *vals[] = {back, ahead, days};
	PGresult *res = NULL;
	res_t rc = run(st, "SELECT lo, hi, dropped FROM vigil_maintain_partitions($1, $2, $3)", 3,
		       vals, NULL, NULL, &res);
	if (rc == R_OK && res && PQntuples(res) == 1) {
		int64_t lo = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		int64_t hi = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		atomic_store(&st->col->range_lo_ns, lo * 1000000000);
		atomic_store(&st->col->range_hi_ns, hi * 1000000000);
		if (atoi(PQgetvalue(res, 0, 2)) > 0)
			log_info("dropped %s expired event partition(s)", PQgetvalue(res, 0, 2));
	}
	PQclear(res);
	if (rc == R_OK)
		return STORE_OK;
	log_warn("%s partition maintenance failed: %s", st->prefix, st->err);
	return rc == R_CONN ? STORE_CONN_ERROR : STORE_ERROR;
}

/* ---- group commit ------------------------------------------------------- */

agent_seq_t *store_find_agent(agent_seq_t *a, size_t n, int32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].id == id)
			return &a[i];
	return NULL;
}

/* Append "v" to a PostgreSQL array literal being built in buf. */
static int array_add(char **buf, size_t *len, size_t *cap, const char *v)
{
	size_t need = *len + strlen(v) + 3;
	if (need > *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		while (nc < need)
			nc *= 2;
		char *nb = realloc(*buf, nc);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = nc;
	}
	*len += (size_t)sprintf(*buf + *len, "%s%s", *len ? "," : "{", v);
	return 0;
}

res_t store_upsert_hello(store_t *st, job_t *j)
{
	char pv[16], skew[24];
	snprintf(pv, sizeof(pv), "%u", j->hello.protocol_version);
	snprintf(skew, sizeof(skew), "%" PRId64, j->clock_skew_ms);
	const char *vals[] = {j->agent_name,
			      j->hello.hostname,
			      j->hello.agent_version,
			      j->hello.boot_id,
			      j->hello.kernel,
			      j->hello.os,
			      pv,
			      skew};
	PGresult *res = NULL;
	res_t rc =
		run(st,
		    "INSERT INTO agents AS a (name, hostname, agent_version, boot_id, kernel, os, "
		    "protocol_version, clock_skew_ms, last_hello, last_seen) "
		    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), now()) "
		    "ON CONFLICT (name) DO UPDATE SET hostname = EXCLUDED.hostname, "
		    "agent_version = EXCLUDED.agent_version, boot_id = EXCLUDED.boot_id, "
		    "kernel = EXCLUDED.kernel, os = EXCLUDED.os, "
		    "protocol_version = EXCLUDED.protocol_version, "
		    "clock_skew_ms = EXCLUDED.clock_skew_ms, last_hello = now(), last_seen = now() "
		    "RETURNING id, committed_seq",
		    8, vals, NULL, NULL, &res);
	if (rc == R_OK && res && PQntuples(res) == 1) {
		j->agent_id = (int32_t)atoi(PQgetvalue(res, 0, 0));
		j->committed_seq = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	} else if (rc == R_OK) {
		snprintf(st->err, sizeof(st->err), "agent upsert returned no row");
		rc = R_OTHER;
	}
	PQclear(res);
	return rc;
}

/* Keep dead letters v[0..n) of batch job j, within the agent's quota and
 * after its expired ones are gone (schema/0011_ingest_limits.sql); idx, if
 * not -2, replaces each one's index. What the quota leaves out is counted. */
res_t store_put_dead(store_t *st, job_t *j, const dead_event_t *v, size_t n, int64_t idx)
{
	static const char hex[] = "0123456789abcdef";
	json_t *items = json_array();
	for (size_t i = 0; items && i < n; i++) {
		char *h = malloc(v[i].payload_len * 2 + 1);
		for (size_t k = 0; h && k < v[i].payload_len; k++) {
			h[2 * k] = hex[v[i].payload[k] >> 4];
			h[2 * k + 1] = hex[v[i].payload[k] & 15];
		}
		json_t *it = h ? json_pack("{s:I, s:s, s:s%}", "i",
					   (json_int_t)(idx == -2 ? (int64_t)v[i].idx : idx), "r",
					   v[i].reason, "p", h, v[i].payload_len * 2)
			       : NULL;
		free(h);
		if (!it || json_array_append_new(items, it) != 0) {
			json_decref(items);
			items = NULL;
		}
	}
	char *text = items ? json_dumps(items, JSON_COMPACT) : NULL;
	json_decref(items);
	if (!text) {
		snprintf(st->err, sizeof(st->err), "out of memory (dead letters)");
		return R_RETRY;
	}
	char a[16], sq[24], quota[24], days[24];
	snprintf(a, sizeof(a), "%d", j->agent_id);
	snprintf(sq, sizeof(sq), "%" PRIu64, j->seq);
	snprintf(quota, sizeof(quota), "%" PRId64, SETTING(st->col, dead_letters_per_agent));
	snprintf(days, sizeof(days), "%" PRId64, SETTING(st->col, dead_letter_retention_days));
	const char *vals[] = {a, sq, text, quota, days};
	PGresult *res = NULL;
	res_t rc = run(st, "SELECT vigil_dead_letters($1, $2, $3::jsonb, $4, $5)", 5, vals, NULL,
		       NULL, &res);
	free(text);
	if (rc == R_OK && res && PQntuples(res) == 1) {
		size_t kept = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		if (kept < n)
			atomic_fetch_add(&st->col->counters.events_dead_dropped, n - kept);
	}
	PQclear(res);
	return rc;
}

res_t store_put_rejects(store_t *st, job_t *j)
{
	return j->n_dead ? store_put_dead(st, j, j->dead, j->n_dead, -2) : R_OK;
}

/* Store the image inventories of the stored batches among jobs (packages
 * included) with one statement: schema/0010_images.sql. */
static res_t apply_images(store_t *st, job_t **jobs, size_t n)
{
	json_t *all = NULL;
	for (size_t i = 0; i < n; i++) {
		job_t *j = jobs[i];
		if (j->kind != JOB_BATCH || j->replay || !j->rows.images)
			continue;
		if ((!all && !(all = json_array())) || json_array_extend(all, j->rows.images) != 0)
			goto oom;
	}
	if (!all)
		return R_OK;
	char *plan = json_dumps(all, JSON_COMPACT);
	json_decref(all);
	all = NULL;
	if (!plan)
		goto oom;
	const char *vals[] = {plan};
	res_t rc = run(st, "SELECT vigil_apply_images($1::jsonb)", 1, vals, NULL, NULL, NULL);
	free(plan);
	return rc;
oom:
	json_decref(all);
	snprintf(st->err, sizeof(st->err), "out of memory");
	return R_OTHER;
}

/* Apply the container state changes and the findings of the stored
 * batches among jobs, each planned as a few set-based statements
 * (stateplan.h, rules.h): the findings after the states they judge. */
res_t store_apply_state(store_t *st, job_t **jobs, size_t n)
{
	stateplan_src_t *src = calloc(n ? n : 1, sizeof(*src));
	rules_plan_src_t *fsrc = calloc(n ? n : 1, sizeof(*fsrc));
	char *plan = NULL, *fplan = NULL;
	res_t rc = R_OK;
	bool any_images = false;
	if (!src || !fsrc)
		goto oom;
	size_t ns = 0;
	for (size_t i = 0; i < n; i++) {
		job_t *j = jobs[i];
		if (j->kind == JOB_BATCH && !j->replay && j->rows.images)
			any_images = true;
		if (j->kind == JOB_BATCH && !j->replay && j->rows.state_ops) {
			src[ns] = (stateplan_src_t){j->agent_id, j->rows.state_ops};
			fsrc[ns++] = (rules_plan_src_t){j->agent_id, j->rows.state_ops};
		}
	}
	if (!ns) {
		if (any_images)
			rc = apply_images(st, jobs, n);
		goto out;
	}
	int empty = 1, fempty = 1;
	if (!(plan = stateplan_build(src, ns, &empty)) ||
	    !(fplan = rules_plan_build(fsrc, ns, &fempty)))
		goto oom;
	if (!empty) {
		const char *vals[] = {plan};
		rc = run(st, "SELECT vigil_apply_state($1::jsonb)", 1, vals, NULL, NULL, NULL);
	}
	if (rc == R_OK && !fempty) {
		const char *vals[] = {fplan};
		rc = run(st, "SELECT vigil_apply_findings($1::jsonb)", 1, vals, NULL, NULL, NULL);
	}
	if (rc == R_OK)
		rc = apply_images(st, jobs, n);
out:
	free(src);
	free(fsrc);
	free(plan);
	free(fplan);
	return rc;
oom:
	snprintf(st->err, sizeof(st->err), "out of memory");
	rc = R_OTHER;
	goto out;
}

res_t store_set_committed(store_t *st, agent_seq_t *agents, size_t n)
{
	char *ids = NULL, *seqs = NULL;
	size_t il = 0, ic = 0, sl = 0, sc = 0;
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		if (!agents[i].touched)
			continue;
		char v[24];
		snprintf(v, sizeof(v), "%d", agents[i].id);
		if (array_add(&ids, &il, &ic, v) != 0)
			goto oom;
		snprintf(v, sizeof(v), "%" PRId64, agents[i].seq);
		if (array_add(&seqs, &sl, &sc, v) != 0)
			goto oom;
		any = true;
	}
	if (!any)
		return R_OK;
	if (array_add(&ids, &il, &ic, "") != 0 || array_add(&seqs, &sl, &sc, "") != 0)
		goto oom;
	ids[il - 1] = '}';
	seqs[sl - 1] = '}';
	const char *vals[] = {ids, seqs};
	res_t rc =
		run(st,
		    "UPDATE agents SET committed_seq = v.seq, last_seen = now() "
		    "FROM unnest($1::integer[], $2::bigint[]) AS v(id, seq) WHERE agents.id = v.id",
		    2, vals, NULL, NULL, NULL);
	free(ids);
	free(seqs);
	return rc;
oom:
	free(ids);
	free(seqs);
	snprintf(st->err, sizeof(st->err), "out of memory");
	return R_OTHER;
}

/* Lock the rows of the agents of the batch jobs and read committed_seq. */
res_t store_lock_agents(store_t *st, job_t **jobs, size_t n, agent_seq_t **out, size_t *n_out)
{
	agent_seq_t *a = calloc(n ? n : 1, sizeof(*a));
	char *ids = NULL;
	size_t il = 0, ic = 0, na = 0;
	*out = a;
	*n_out = 0;
	if (!a)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		if (jobs[i]->kind != JOB_BATCH || store_find_agent(a, na, jobs[i]->agent_id))
			continue;
		a[na].id = jobs[i]->agent_id;
		a[na].seq = -1;
		char v[16];
		snprintf(v, sizeof(v), "%d", a[na].id);
		if (array_add(&ids, &il, &ic, v) != 0)
			goto oom;
		na++;
	}
	*n_out = na;
	if (!na)
		return R_OK;
	if (array_add(&ids, &il, &ic, "") != 0)
		goto oom;
	ids[il - 1] = '}';
	const char *vals[] = {ids};
	PGresult *res = NULL;
	res_t rc = run(st,
		       "SELECT id, committed_seq FROM agents WHERE id = ANY($1::integer[]) "
		       "ORDER BY id FOR UPDATE",
		       1, vals, NULL, NULL, &res);
	free(ids);
	for (int r = 0; rc == R_OK && res && r < PQntuples(res); r++) {
		agent_seq_t *x = store_find_agent(a, na, (int32_t)atoi(PQgetvalue(res, r, 0)));
		if (x)
			x->seq = strtoll(PQgetvalue(res, r, 1), NULL, 10);
	}
	PQclear(res);
	for (size_t i = 0; rc == R_OK && i < na; i++) {
		if (a[i].seq < 0) {
			snprintf(st->err, sizeof(st->err), "agent %d has no row", a[i].id);
			rc = R_OTHER;
		}
	}
	return rc;
oom:
	free(ids);
	snprintf(st->err, sizeof(st->err), "out of memory");
	return R_OTHER;
}

/* Mark replays and advance the in-memory committed_seq of each agent. */
void store_filter_replays(job_t **jobs, size_t n, agent_seq_t *a, size_t na)
{
	for (size_t i = 0; i < n; i++) {
		job_t *j = jobs[i];
		if (j->kind != JOB_BATCH)
			continue;
		agent_seq_t *x = store_find_agent(a, na, j->agent_id);
		j->replay = (int64_t)j->seq <= x->seq;
		j->dead_in_db = 0;
		if (!j->replay) {
			x->seq = (int64_t)j->seq;
			x->touched = true;
		}
	}
}

/* Of the images the agent's Hello names (a JSON array, bounded by conn.c),
 * those whose inventory is stored: Welcome.known_image_ids. */
static res_t known_images(store_t *st, job_t *j)
{
	const char *vals[] = {j->hello_images};
	PGresult *res = NULL;
	res_t rc = run(st,
		       "SELECT coalesce(json_agg(image_id), '[]')::text FROM images "
		       "WHERE image_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
		       1, vals, NULL, NULL, &res);
	if (rc == R_OK && res && PQntuples(res) == 1) {
		free(j->known_images);
		j->known_images = strdup(PQgetvalue(res, 0, 0)); /* NULL: none said */
	}
	PQclear(res);
	return rc;
}

res_t store_read_hello_seqs(store_t *st, job_t **jobs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (jobs[i]->kind != JOB_HELLO)
			continue;
		char v[16];
		snprintf(v, sizeof(v), "%d", jobs[i]->agent_id);
		const char *vals[] = {v};
		PGresult *res = NULL;
		res_t rc = run(st, "SELECT committed_seq FROM agents WHERE id = $1", 1, vals, NULL,
			       NULL, &res);
		if (rc == R_OK && res && PQntuples(res) == 1)
			jobs[i]->committed_seq = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		if (rc != R_OK)
			return rc;
		/* What the collector knows of the agent's containers, for the
		 * exceptions of runtime rules on the execs it replays before its
		 * next inventory (the newest first, bounded). */
		res = NULL;
		rc = run(st,
			 "SELECT coalesce(json_agg(json_build_object('id', c.id, 'name', c.name, "
			 "'image', c.image, 'image_digest', c.image_digest, 'labels', c.labels, "
			 "'repo_digests', c.facts->'repo_digests')), '[]')::text FROM (SELECT * "
			 "FROM containers WHERE agent_id = $1 AND state IS DISTINCT FROM 'removed' "
			 "ORDER BY last_seen DESC LIMIT 4096) c",
			 1, vals, NULL, NULL, &res);
		if (rc == R_OK && res && PQntuples(res) == 1) {
			free(jobs[i]->subjects);
			jobs[i]->subjects = strdup(PQgetvalue(res, 0, 0)); /* NULL: none known */
		}
		PQclear(res);
		if (rc != R_OK)
			return rc;
		if (jobs[i]->hello_images && (rc = known_images(st, jobs[i])) != R_OK)
			return rc;
	}
	return R_OK;
}

/* The whole group in one transaction. */
static res_t commit_fast(store_t *st, job_t **jobs, size_t n)
{
	agent_seq_t *agents = NULL;
	size_t na = 0;
	span_t *spans = NULL;
	res_t rc = store_sql(st, "BEGIN");
	for (size_t i = 0; rc == R_OK && i < n; i++)
		if (jobs[i]->kind == JOB_HELLO)
			rc = store_upsert_hello(st, jobs[i]);
	if (rc == R_OK)
		rc = store_lock_agents(st, jobs, n, &agents, &na);
	if (rc == R_OK && na) {
		store_filter_replays(jobs, n, agents, na);
		spans = calloc(n, sizeof(*spans));
		size_t ns = 0;
		for (size_t i = 0; spans && i < n; i++) {
			job_t *j = jobs[i];
			if (j->kind == JOB_BATCH && !j->replay && j->rows.rows.len) {
				spans[ns].p = j->rows.rows.data;
				spans[ns].n = j->rows.rows.len;
				ns++;
			}
		}
		if (!spans) {
			snprintf(st->err, sizeof(st->err), "out of memory");
			rc = R_OTHER;
		} else if (ns) {
			rc = store_copy(st, spans, ns);
		}
		for (size_t i = 0; rc == R_OK && i < n; i++)
			if (jobs[i]->kind == JOB_BATCH && !jobs[i]->replay)
				rc = store_put_rejects(st, jobs[i]);
		if (rc == R_OK)
			rc = store_apply_state(st, jobs, n);
		if (rc == R_OK)
			rc = store_set_committed(st, agents, na);
	}
	if (rc == R_OK)
		rc = store_read_hello_seqs(st, jobs, n);
	if (rc == R_OK)
		rc = store_sql(st, "COMMIT");
	free(spans);
	free(agents);
	return rc;
}

static store_rc_t finish(store_t *st, res_t rc)
{
	if (rc == R_OK)
		return STORE_OK;
	if (rc != R_CONN && st->pg)
		(void)store_sql(st, "ROLLBACK");
	return rc == R_CONN || !st->pg ? STORE_CONN_ERROR : STORE_ERROR;
}

store_rc_t store_commit_group(store_t *st, job_t **jobs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(jobs[i]->refused);
		jobs[i]->refused = NULL;
	}
	res_t rc = commit_fast(st, jobs, n);
	if (rc != R_DATA && rc != R_OTHER)
		return finish(st, rc);
	log_warn("%s a group of %zu job(s) was refused (%s); isolating", st->prefix, n, st->err);
	rc = store_sql(st, "ROLLBACK");
	if (rc == R_OK)
		rc = store_commit_isolating(st, jobs, n);
	if (rc != R_OK)
		for (size_t i = 0; i < n; i++) {
			free(jobs[i]->refused);
			jobs[i]->refused = NULL;
		}
	return finish(st, rc);
}

const char *store_last_error(const store_t *st)
{
	return st->err;
}
