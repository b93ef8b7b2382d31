// SPDX-License-Identifier: Apache-2.0
/* The alert outbox seen from one sender thread (see outbox.h). */
#include "alert/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

struct outbox {
	char *conninfo;
	char *app_name;
	PGconn *pg;
	PGresult *claim; /* the open claim's rows */
	char err[512];
};

outbox_t *outbox_new(const char *conninfo, const char *app_name)
{
	outbox_t *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->conninfo = strdup(conninfo);
	o->app_name = strdup(app_name);
	if (!o->conninfo || !o->app_name) {
		outbox_free(o);
		return NULL;
	}
	return o;
}

void outbox_free(outbox_t *o)
{
	if (!o)
		return;
	PQclear(o->claim);
	if (o->pg)
		PQfinish(o->pg);
	free(o->conninfo);
	free(o->app_name);
	free(o);
}

const char *outbox_error(const outbox_t *o)
{
	return o->err;
}

static void set_error(outbox_t *o, const char *what)
{
	const char *m = o->pg ? PQerrorMessage(o->pg) : "out of memory";
	snprintf(o->err, sizeof(o->err), "%s: %.*s", what, (int)strcspn(m, "\n"), m);
}

static int ensure(outbox_t *o)
{
	if (o->pg && PQstatus(o->pg) == CONNECTION_OK)
		return 0;
	if (o->pg)
		PQfinish(o->pg);
	const char *keys[] = {"dbname", "application_name", "options", "connect_timeout", NULL};
	const char *vals[] = {o->conninfo, o->app_name,
			      "-c TimeZone=UTC -c statement_timeout=30000", "10", NULL};
	o->pg = PQconnectdbParams(keys, vals, 1);
	if (!o->pg || PQstatus(o->pg) != CONNECTION_OK) {
		set_error(o, "cannot connect to PostgreSQL");
		return -1;
	}
	return 0;
}

/* Run sql with params; return 0 if it gave want, else -1 with the error. */
static int run(outbox_t *o, const char *sql, int n, const char *const *params, ExecStatusType want,
	       PGresult **keep)
{
	PGresult *r = PQexecParams(o->pg, sql, n, NULL, params, NULL, NULL, 0);
	int ok = r && PQresultStatus(r) == want;
	if (!ok)
		set_error(o, "outbox");
	if (ok && keep)
		*keep = r;
	else
		PQclear(r);
	return ok ? 0 : -1;
}

int outbox_set_receivers(outbox_t *o, const outbox_receiver_t *recv, size_t n)
{
	if (ensure(o) != 0)
		return -1;
	if (run(o, "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char sev[16], ms[32];
		snprintf(sev, sizeof(sev), "%d", recv[i].min_severity);
		snprintf(ms, sizeof(ms), "%lld", (long long)recv[i].update_interval_ms);
		const char *p[] = {recv[i].name, sev, ms};
		if (run(o,
			"INSERT INTO alert_receivers (name, min_severity, update_interval) "
			"VALUES ($1, $2, $3::bigint * interval '1 millisecond') "
			"ON CONFLICT (name) DO UPDATE SET min_severity = EXCLUDED.min_severity, "
			"update_interval = EXCLUDED.update_interval, updated_at = now()",
			3, p, PGRES_COMMAND_OK, NULL) != 0)
			goto fail;
	}
	if (run(o, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL) != 0)
		goto fail;
	return 0;
fail:
	outbox_abort(o);
	return -1;
}

static const char claim_sql[] =
	"SELECT o.id, o.finding_id, o.action, f.rule, f.key, f.kind, f.state, f.summary,"
	" f.severity, (extract(epoch FROM f.first_seen) * 1000)::bigint,"
	" (extract(epoch FROM f.last_seen) * 1000)::bigint,"
	" (extract(epoch FROM CASE o.action WHEN 'resolved' THEN coalesce(f.resolved_at,"
	"   o.created_at) WHEN 'opened' THEN f.first_seen ELSE f.last_seen END) * 1000)::bigint,"
	" f.count, f.details::text, f.resolved_reason, f.container_id, c.name, c.image,"
	" c.image_digest, c.labels::text, a.name, a.hostname "
	"FROM alert_outbox o "
	"LEFT JOIN findings f ON f.id = o.finding_id "
	"LEFT JOIN containers c ON c.agent_id = f.agent_id AND c.id = f.container_id "
	"LEFT JOIN agents a ON a.id = f.agent_id "
	"WHERE o.receiver = $1 AND o.next_at <= now() "
	"  AND NOT EXISTS (SELECT 1 FROM alert_outbox p WHERE p.receiver = o.receiver"
	"    AND p.finding_id = o.finding_id AND p.id < o.id AND p.action <> 'update') "
	"ORDER BY o.next_at, o.id LIMIT $2 "
	"FOR UPDATE OF o SKIP LOCKED";

static const char *col(PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

static int64_t col_i64(PGresult *r, int row, int c)
{
	const char *v = col(r, row, c);
	return v ? strtoll(v, NULL, 10) : 0;
}

int outbox_claim(outbox_t *o, const char *receiver, int limit, alert_item_t *items)
{
	PQclear(o->claim);
	o->claim = NULL;
	if (ensure(o) != 0 || run(o, "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL) != 0)
		return -1;
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *p[] = {receiver, lim};
	if (run(o, claim_sql, 2, p, PGRES_TUPLES_OK, &o->claim) != 0) {
		outbox_abort(o);
		return -1;
	}
	int n = PQntuples(o->claim);
	PGresult *r = o->claim;
	for (int i = 0; i < n; i++) {
		alert_item_t *it = &items[i];
		memset(it, 0, sizeof(*it));
		it->outbox_id = col_i64(r, i, 0);
		it->finding_id = col_i64(r, i, 1);
		it->action = col(r, i, 2);
		it->rule = col(r, i, 3);
		it->key = col(r, i, 4);
		it->kind = col(r, i, 5);
		it->state = col(r, i, 6);
		it->summary = col(r, i, 7);
		it->severity = (int)col_i64(r, i, 8);
		it->first_ms = col_i64(r, i, 9);
		it->last_ms = col_i64(r, i, 10);
		it->time_ms = col_i64(r, i, 11);
		it->count = col_i64(r, i, 12);
		it->details_json = col(r, i, 13);
		it->resolved_reason = col(r, i, 14);
		it->container_id = col(r, i, 15);
		it->container_name = col(r, i, 16);
		it->image = col(r, i, 17);
		it->image_digest = col(r, i, 18);
		it->labels_json = col(r, i, 19);
		it->agent = col(r, i, 20);
		it->hostname = col(r, i, 21);
	}
	if (n == 0)
		outbox_abort(o);
	return n;
}

/* Append "v" to a Postgres array literal in buf (values are numbers or
 * plain words). */
static void arr_add(char *buf, size_t cap, const char *v)
{
	size_t l = strlen(buf);
	snprintf(buf + l, cap - l, "%s%s", l > 1 ? "," : "", v);
}

int outbox_settle(outbox_t *o, const char *receiver, const alert_item_t *items, int n,
		  const int *done, const int64_t *backoff_ms, const char *err)
{
	/* up to 64 rows of 21-digit ids and words: sized generously */
	enum {
		CAP = 64 * 32 + 8
	};
	char gone[CAP] = "{", sent_f[CAP] = "{", sent_a[CAP] = "{", sent_n[CAP] = "{";
	char fail_id[CAP] = "{", fail_ms[CAP] = "{";
	for (int i = 0; i < n && i < 64; i++) {
		char id[32], v[32];
		snprintf(id, sizeof(id), "%lld", (long long)items[i].outbox_id);
		if (done[i] == OUTBOX_FAILED) {
			snprintf(v, sizeof(v), "%lld", (long long)backoff_ms[i]);
			arr_add(fail_id, CAP, id);
			arr_add(fail_ms, CAP, v);
			continue;
		}
		arr_add(gone, CAP, id);
		int later = 0; /* alert_sent keeps the last of a finding's rows */
		for (int j = i + 1; j < n; j++)
			later |= done[j] == OUTBOX_SENT &&
				 items[j].finding_id == items[i].finding_id;
		if (done[i] != OUTBOX_SENT || later)
			continue;
		snprintf(id, sizeof(id), "%lld", (long long)items[i].finding_id);
		snprintf(v, sizeof(v), "%lld", (long long)items[i].count);
		arr_add(sent_f, CAP, id);
		arr_add(sent_a, CAP, items[i].action ? items[i].action : "update");
		arr_add(sent_n, CAP, v);
	}
	strcat(gone, "}");
	strcat(sent_f, "}");
	strcat(sent_a, "}");
	strcat(sent_n, "}");
	strcat(fail_id, "}");
	strcat(fail_ms, "}");
	const char *pg[] = {gone};
	const char *ps[] = {receiver, sent_f, sent_a, sent_n};
	const char *pf[] = {fail_id, fail_ms, err ? err : ""};
	int rc = run(o, "DELETE FROM alert_outbox WHERE id = ANY ($1::bigint[])", 1, pg,
		     PGRES_COMMAND_OK, NULL);
	if (rc == 0)
		rc = run(
			o,
			"INSERT INTO alert_sent (receiver, finding_id, action, count, sent_at) "
			"SELECT $1, f, a, n, now() FROM unnest($2::bigint[], $3::text[],"
			" $4::bigint[]) AS s(f, a, n) "
			"ON CONFLICT (receiver, finding_id) DO UPDATE SET action = EXCLUDED.action,"
			" count = EXCLUDED.count, sent_at = EXCLUDED.sent_at",
			4, ps, PGRES_COMMAND_OK, NULL);
	if (rc == 0)
		rc = run(o,
			 "UPDATE alert_outbox o SET attempts = o.attempts + 1, last_error = $3,"
			 " next_at = now() + b.ms * interval '1 millisecond' "
			 "FROM unnest($1::bigint[], $2::bigint[]) AS b(id, ms) WHERE o.id = b.id",
			 3, pf, PGRES_COMMAND_OK, NULL);
	if (rc == 0)
		rc = run(o, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL);
	PQclear(o->claim);
	o->claim = NULL;
	if (rc != 0)
		outbox_abort(o);
	return rc;
}

void outbox_abort(outbox_t *o)
{
	if (!o)
		return;
	PQclear(o->claim);
	o->claim = NULL;
	if (o->pg && PQstatus(o->pg) == CONNECTION_OK && PQtransactionStatus(o->pg) != PQTRANS_IDLE)
		PQclear(PQexec(o->pg, "ROLLBACK"));
}
