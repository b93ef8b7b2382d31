// SPDX-License-Identifier: Apache-2.0
/*
 * The query API's handlers (see api.h): parameters are checked here (a bad
 * one is a 400 that names it), turned into one parameterized statement,
 * and run on the pool; PostgreSQL renders each row as JSON (row_to_json),
 * so every string from an agent reaches the client JSON-escaped. Every
 * read of stored data writes its audit_log row in the same statement.
 */
#include "http/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http/api_common.h"
#include "http/api_vuln.h"
#include "ingest/ingest.h"
#include "log.h"

#define EXPORT_PAGE 2000
#define CONTAINER_DEFAULT_WINDOW_US (INT64_C(7) * 86400 * 1000000)
#define IMAGE_DEFAULT_WINDOW_US (INT64_C(7) * 86400 * 1000000)

static const char SEVERITY_SQL[] =
	"CASE e.severity WHEN 1 THEN 'info' WHEN 2 THEN 'low' WHEN 3 THEN 'medium' "
	"WHEN 4 THEN 'high' WHEN 5 THEN 'critical' ELSE 'unspecified' END";

/* ---- agents ------------------------------------------------------------------------------- */

static void add_name(const char *name, void *arg)
{
	json_array_append_new(arg, json_string(name));
}

static void agents_done(hreq_t *r, apidb_job_t *job)
{
	if (job->status != APIDB_OK)
		hreq_db_error(r, job);
	else if (hreq_state(r)) /* one agent */
		job->n_rows ? hreq_reply(r, 200, "application/json", apidb_cell(job, 0, 0),
					 strlen(apidb_cell(job, 0, 0)))
			    : hreq_error(r, 404, "not_found", NULL, "no such agent");
	else
		api_reply_rows(r, job, "agents", job->n_rows, NULL);
	apidb_job_free(job);
}

static void h_agents(hreq_t *r, const char *one)
{
	const char *status;
	int64_t limit;
	if (!api_get_str(r, "status", &status) || !api_get_limit(r, 10000, &limit) ||
	    !api_no_unknown(r))
		return;
	if (status && strcmp(status, "online") != 0 && strcmp(status, "offline") != 0) {
		api_bad_param(r, "status", "must be online or offline");
		return;
	}
	json_t *names = json_array();
	collector_each_connected(hreq_col(r), add_name, names);
	char *connected = json_dumps(names, JSON_COMPACT);
	json_decref(names);
	qb_t q;
	qb_init(&q, true);
	qb_sql(&q, ", conn AS (SELECT jsonb_array_elements_text(");
	qb_param(&q, connected ? connected : "[]");
	free(connected);
	qb_sql(&q, "::jsonb) AS name) "
		   "SELECT row_to_json(x)::text FROM (SELECT a.name, a.hostname, a.agent_version, "
		   "a.os, a.kernel, a.boot_id, a.protocol_version, a.clock_skew_ms, a.first_seen, "
		   "a.last_seen, a.last_hello, a.committed_seq, "
		   "(a.name IN (SELECT name FROM conn)) AS connected_here, "
		   "(a.name IN (SELECT name FROM conn) OR a.last_seen > now() - ");
	qb_param_int(&q, SETTING(hreq_col(r), http_online_window_ms));
	qb_sql(&q, "::bigint * interval '1 millisecond') AS online, "
		   /* the latest status says which sources work; an hour-old one
		* no longer does */
		   "CASE WHEN a.status_at > ");
	qb_time(&q, hreq_now_us(r) - INT64_C(3600) * 1000000);
	qb_sql(&q, " THEN a.status->'sources' END AS sources, "
		   "CASE WHEN a.status_at > ");
	qb_time(&q, hreq_now_us(r) - INT64_C(3600) * 1000000);
	qb_sql(&q, " THEN a.status_at END AS status_at, "
		   "(SELECT count(*) FROM containers c WHERE c.agent_id = a.id "
		   "AND c.state = 'running') AS containers_running, "
		   /* what the agent had to drop (spool full), as its status
		* reports said, since it was first seen */
		   "CASE WHEN a.lost_events > 0 OR a.lost_batches > 0 THEN "
		   "jsonb_build_object('events', a.lost_events, 'batches', a.lost_batches, "
		   "'first', a.lost_first, 'last', a.lost_last) END AS lost, "
		   /* what the agent could not see, per kind, as its latest status
		* said: counts since the status before and totals since it
		* started (process connector overruns, execs gone before
		* read, event-stream gaps...) */
		   "a.status->'losses' AS losses "
		   "FROM agents a");
	if (one) {
		qb_sql(&q, " WHERE a.name = ");
		qb_param(&q, one);
		hreq_set_state(r, (void *)1, NULL);
	}
	qb_sql(&q, ") x WHERE true");
	if (status)
		qb_sql(&q, strcmp(status, "online") == 0 ? " AND x.online" : " AND NOT x.online");
	qb_sql(&q, " ORDER BY x.name LIMIT ");
	qb_param_int(&q, limit);
	hreq_run(r, &q, agents_done);
}

/* ---- containers ---------------------------------------------------------------------------- */

static const char *const CONTAINER_CSV[] = {
	"agent",	"hostname",	 "id",	      "name",	       "image",
	"image_digest", "runtime",	 "state",     "privileged",    "labels",
	"command",	"cap_effective", "host_pid",  "host_net",      "started_at",
	"stopped_at",	"first_seen",	 "last_seen", "findings_open", NULL};

typedef struct {
	api_fmt_t fmt;
} list_state_t;

static void containers_done(hreq_t *r, apidb_job_t *job)
{
	list_state_t *st = hreq_state(r);
	if (job->status != APIDB_OK) {
		hreq_db_error(r, job);
	} else if (st->fmt == API_FMT_CSV) {
		sbuf_t b;
		sbuf_init(&b);
		api_csv_header(&b, CONTAINER_CSV);
		for (size_t i = 0; i < job->n_rows; i++)
			api_csv_row(&b, apidb_cell(job, i, 0), CONTAINER_CSV);
		hreq_stream_start(r, "text/csv; charset=utf-8", "containers.csv");
		hreq_stream_chunk(r, &b, NULL);
		sbuf_free(&b);
	} else {
		api_reply_rows(r, job, "containers", job->n_rows, NULL);
	}
	apidb_job_free(job);
}

static void h_containers(hreq_t *r)
{
	const char *agent, *image, *digest, *name, *label, *id, *text;
	int priv, running;
	int64_t limit, since, until;
	list_state_t *st = calloc(1, sizeof(*st));
	if (!st) {
		hreq_error(r, 500, "internal", NULL, "out of memory");
		return;
	}
	hreq_set_state(r, st, free);
	if (!api_get_str(r, "agent", &agent) || !api_get_str(r, "image", &image) ||
	    !api_get_str(r, "digest", &digest) || !api_get_str(r, "name", &name) ||
	    !api_get_str(r, "label", &label) || !api_get_str(r, "id", &id) ||
	    !api_get_str(r, "q", &text) || !api_get_bool(r, "privileged", &priv) ||
	    !api_get_bool(r, "running", &running) || !api_get_limit(r, 100, &limit) ||
	    !api_get_window(r, CONTAINER_DEFAULT_WINDOW_US, &since, &until) ||
	    !api_get_format(r, false, &st->fmt) || !api_no_unknown(r))
		return;
	qb_t q;
	qb_init(&q, true);
	qb_sql(&q, "SELECT row_to_json(x)::text FROM (SELECT a.name AS agent, a.hostname, c.id, "
		   "c.name, c.runtime, c.image, c.image_digest, c.labels, c.command, c.uid, c.gid, "
		   "c.privileged, c.cap_effective, c.cap_bounding, c.host_pid, c.host_net, "
		   "c.host_ipc, c.host_uts, c.mounts, c.read_only_rootfs, c.seccomp_profile, "
		   "c.apparmor_profile, c.restart_policy, c.init_pid, c.state, c.created_at, "
		   "c.started_at, c.stopped_at, c.exit_code, c.first_seen, c.last_seen, "
		   /* the agent's newer facts (no_new_privs, limits, devices, ports,
		* repo digests...; null: no source could establish it) */
		   "c.facts, "
		   /* its open findings (open or reopened) and the worst of them */
		   "fo.n AS findings_open, CASE fo.s WHEN 1 THEN 'info' WHEN 2 THEN 'low' "
		   "WHEN 3 THEN 'medium' WHEN 4 THEN 'high' WHEN 5 THEN 'critical' END "
		   "AS findings_severity, c.rules_unknown "
		   "FROM containers c JOIN agents a ON a.id = c.agent_id "
		   "CROSS JOIN LATERAL (SELECT count(*) AS n, max(f.severity) AS s "
		   "FROM findings f WHERE f.agent_id = c.agent_id AND f.container_id = c.id "
		   "AND f.state <> 'resolved') fo WHERE c.last_seen >= ");
	qb_time(&q, since);
	qb_sql(&q, " AND c.first_seen < ");
	qb_time(&q, until);
	if (agent) {
		qb_sql(&q, " AND a.name = ");
		qb_param(&q, agent);
	}
	if (image) {
		qb_sql(&q, " AND c.image = ");
		qb_param(&q, image);
	}
	if (digest) {
		qb_sql(&q, " AND c.image_digest = ");
		qb_param(&q, digest);
	}
	if (name) {
		qb_sql(&q, " AND c.name = ");
		qb_param(&q, name);
	}
	if (id) {
		qb_sql(&q, " AND c.id = ");
		qb_param(&q, id);
	}
	if (text) {
		qb_sql(&q,
		       " AND (strpos(lower(coalesce(c.name, '') || ' ' || coalesce(c.image, '') "
		       "|| ' ' || c.id || ' ' || a.name), lower(");
		qb_param(&q, text);
		qb_sql(&q, ")) > 0)");
	}
	if (label) {
		const char *eq = strchr(label, '=');
		if (eq) {
			char *k = strndup(label, (size_t)(eq - label));
			qb_sql(&q, " AND c.labels @> jsonb_build_object(");
			qb_param(&q, k ? k : "");
			qb_sql(&q, "::text, ");
			qb_param(&q, eq + 1);
			qb_sql(&q, "::text)");
			free(k);
		} else {
			qb_sql(&q, " AND c.labels ? ");
			qb_param(&q, label);
		}
	}
	if (priv >= 0)
		qb_sql(&q, priv ? " AND c.privileged" : " AND NOT coalesce(c.privileged, false)");
	if (running >= 0)
		qb_sql(&q, running ? " AND c.state = 'running'"
				   : " AND c.state IS DISTINCT FROM 'running'");
	qb_sql(&q, " ORDER BY c.last_seen DESC, a.name, c.id LIMIT ");
	qb_param_int(&q, limit);
	qb_sql(&q, ") x");
	hreq_run(r, &q, containers_done);
}

/* ---- events --------------------------------------------------------------------- */

static const char *const EVENT_CSV[] = {"ts",  "agent", "kind",	   "severity", "container_id",
					"pid", "ppid",	"uid",	   "exe",      "argv",
					"cwd", "rule",	"summary", NULL};

typedef struct {
	api_fmt_t fmt;
	int64_t since, until, limit;
	const char *agent, *container, *exe, *argv;
	char kinds[64];
	int n_kinds, kind; /* kind: the one kind when n_kinds is 1 */
	int severity;
	bool has_cursor;
	api_cursor_t cursor;
	int64_t sent; /* streaming: rows sent so far */
	bool header_sent;
} events_state_t;

static void events_query(hreq_t *r, events_state_t *st, bool audit, int64_t limit);

/* Row i of a CSV page (events_query): cells 0, 2, 3... in EVENT_CSV's order. */
static void csv_line(sbuf_t *b, const apidb_job_t *job, size_t i)
{
	for (int c = 0; c < job->n_cols; c++) {
		if (c == 1)
			continue;
		if (c)
			sbuf_add(b, ",");
		api_csv_cell(b, apidb_cell(job, i, c));
	}
	sbuf_add(b, "\r\n");
}

static void events_stream_more(hreq_t *r);

static void events_stream_done(hreq_t *r, apidb_job_t *job)
{
	events_state_t *st = hreq_state(r);
	if (job->status != APIDB_OK) {
		if (!st->header_sent) {
			hreq_db_error(r, job);
		} else {
			/* mid-stream: end it; the client sees a short export */
			log_warn("export ended early: %s", job->error);
			hreq_stream_end(r);
		}
		apidb_job_free(job);
		return;
	}
	sbuf_t b;
	sbuf_init(&b);
	if (!st->header_sent) {
		st->header_sent = true;
		hreq_stream_start(r,
				  st->fmt == API_FMT_CSV ? "text/csv; charset=utf-8"
							 : "application/x-ndjson",
				  st->fmt == API_FMT_CSV ? "events.csv" : NULL);
		if (st->fmt == API_FMT_CSV)
			api_csv_header(&b, EVENT_CSV);
	}
	for (size_t i = 0; i < job->n_rows; i++) {
		if (st->fmt == API_FMT_CSV) {
			csv_line(&b, job, i);
		} else {
			sbuf_add(&b, apidb_cell(job, i, 0));
			sbuf_add(&b, "\n");
		}
	}
	st->sent += (int64_t)job->n_rows;
	bool more = job->n_rows == EXPORT_PAGE && st->sent < st->limit &&
		    api_cursor_parse(apidb_cell(job, job->n_rows - 1, 1), &st->cursor) == 0;
	st->has_cursor = true;
	apidb_job_free(job);
	hreq_stream_chunk(r, &b, more ? events_stream_more : NULL);
	sbuf_free(&b);
}

static void events_stream_more(hreq_t *r)
{
	events_state_t *st = hreq_state(r);
	int64_t left = st->limit - st->sent;
	events_query(r, st, false, left < EXPORT_PAGE ? left : EXPORT_PAGE);
}

static void events_done(hreq_t *r, apidb_job_t *job)
{
	events_state_t *st = hreq_state(r);
	if (job->status != APIDB_OK) {
		hreq_db_error(r, job);
		apidb_job_free(job);
		return;
	}
	size_t n = job->n_rows > (size_t)st->limit ? (size_t)st->limit : job->n_rows;
	char since[40], until[40], extra[400];
	api_format_time(st->since, since, sizeof(since));
	api_format_time(st->until, until, sizeof(until));
	const char *cur = job->n_rows > n && n ? apidb_cell(job, n - 1, 1) : NULL;
	snprintf(extra, sizeof(extra),
		 "\"limit\":%lld,\"since\":\"%s\",\"until\":\"%s\",\"next_cursor\":%s%s%s",
		 (long long)st->limit, since, until, cur ? "\"" : "", cur ? cur : "null",
		 cur ? "\"" : "");
	api_reply_rows(r, job, "events", n, extra);
	apidb_job_free(job);
}

/* '%' s '%' for LIKE, with LIKE's escape \ and its wildcards escaped.
 * The caller frees it; NULL when out of memory. */
static char *like_pattern(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(2 * n + 3), *o = p;
	if (!p)
		return NULL;
	*o++ = '%';
	for (; *s; s++) {
		if (*s == '\\' || *s == '%' || *s == '_')
			*o++ = '\\';
		*o++ = *s;
	}
	*o++ = '%';
	*o = '\0';
	return p;
}

static void events_query(hreq_t *r, events_state_t *st, bool audit, int64_t limit)
{
	qb_t q;
	qb_init(&q, audit);
	qb_listing(&q);
	/* column 1 is the row's cursor; column 0 the row as JSON, or for CSV
	 * its first cell (ts, as JSON writes it) with the others from 2 on,
	 * as text, so that the HTTP loop parses no JSON */
	qb_sql(&q, st->fmt == API_FMT_CSV ? "SELECT to_json(x.ts) #>> '{}', "
					  : "SELECT row_to_json(x)::text, ");
	qb_sql(&q, "(extract(epoch FROM x.ts) * 1000000)::bigint "
		   "|| '.' || x.agent_id || '.' || x.seq || '.' || x.idx");
	if (st->fmt == API_FMT_CSV)
		qb_sql(&q, ", x.agent, x.kind, x.severity, x.container_id, x.pid, x.ppid, x.uid, "
			   "x.exe, array_to_string(x.argv, ' '), x.cwd, x.rule, x.summary");
	qb_sql(&q, " FROM (SELECT e.ts, e.recv_ts, a.name AS agent, e.agent_id, e.seq, e.idx, "
		   "k.name AS kind, ");
	qb_sql(&q, SEVERITY_SQL);
	qb_sql(&q, " AS severity, e.container_id, e.pid, e.ppid, e.uid, e.exe, e.argv, e.cwd, "
		   "e.details->>'rule' AS rule, e.details->>'summary' AS summary, e.details "
		   "FROM events e JOIN agents a ON a.id = e.agent_id "
		   "LEFT JOIN event_kinds k ON k.kind = e.kind WHERE e.ts >= ");
	qb_time(&q, st->since);
	qb_sql(&q, " AND e.ts < ");
	qb_time(&q, st->until);
	if (st->agent) {
		qb_sql(&q, " AND e.agent_id = (SELECT id FROM agents WHERE name = ");
		qb_param(&q, st->agent);
		qb_sql(&q, ")");
	}
	if (st->container) {
		qb_sql(&q, " AND e.container_key = vigil_container_key(");
		qb_param(&q, st->container);
		qb_sql(&q, ") AND e.container_id = ");
		qb_param(&q, st->container);
	}
	if (st->n_kinds == 1) { /* "=": a rare kind's index gives the order */
		qb_sql(&q, " AND e.kind = ");
		qb_param_int(&q, st->kind);
		qb_sql(&q, "::smallint");
	} else if (st->kinds[0]) {
		qb_sql(&q, " AND e.kind = ANY(");
		qb_param(&q, st->kinds);
		qb_sql(&q, "::smallint[])");
	}
	if (st->severity > 0) {
		qb_sql(&q, " AND e.severity >= ");
		qb_param_int(&q, st->severity);
	}
	if (st->exe) {
		qb_sql(&q, " AND e.exe = ");
		qb_param(&q, st->exe);
	}
	if (st->argv) {
		/* a substring of the command line, tested twice alike: LIKE
		 * '%...%' (\ % _ escaped) on vigil_argv_text(argv) is what the
		 * trigram index of each ended day serves (schema/0012); strpos is
		 * what the partitions without one evaluate first, as it is the
		 * cheaper per row, and the planner does not count it as a second
		 * rare condition */
		char *pat = like_pattern(st->argv);
		qb_sql(&q, " AND vigil_argv_text(e.argv) LIKE ");
		qb_param(&q, pat ? pat : "");
		qb_sql(&q, " AND strpos(array_to_string(e.argv, ' '), ");
		qb_param(&q, st->argv);
		qb_sql(&q, ") > 0");
		q.oom |= !pat;
		free(pat);
	}
	if (st->has_cursor) {
		/* the plain bound is what the ts index scan starts from */
		qb_sql(&q, " AND e.ts <= ");
		qb_time(&q, st->cursor.ts_us);
		qb_sql(&q, " AND (e.ts, e.agent_id, e.seq, e.idx) < (");
		qb_time(&q, st->cursor.ts_us);
		qb_sql(&q, ", ");
		qb_param_int(&q, st->cursor.agent_id);
		qb_sql(&q, "::integer, ");
		qb_param_int(&q, st->cursor.seq);
		qb_sql(&q, "::bigint, ");
		qb_param_int(&q, st->cursor.idx);
		qb_sql(&q, "::integer)");
	}
	qb_sql(&q, " ORDER BY e.ts DESC, e.agent_id DESC, e.seq DESC, e.idx DESC LIMIT ");
	qb_param_int(&q, limit);
	qb_sql(&q, ") x");
	hreq_run(r, &q, st->fmt == API_FMT_JSON ? events_done : events_stream_done);
}

static bool parse_kinds(hreq_t *r, const char *v, events_state_t *st)
{
	char *out = st->kinds;
	size_t outlen = sizeof(st->kinds);
	/* a comma-separated list of kind names or numbers -> "{4,6}" */
	size_t o = 0;
	out[o++] = '{';
	const char *p = v;
	int n = 0;
	while (*p) {
		size_t l = strcspn(p, ",");
		char one[32];
		if (l == 0 || l >= sizeof(one) || n >= 8)
			return api_bad_param(r, "kind", "must be a comma-separated list of kinds");
		memcpy(one, p, l);
		one[l] = '\0';
		int k = api_kind_parse(one);
		if (k < 0)
			return api_bad_param(r, "kind", "unknown event kind");
		o += (size_t)snprintf(out + o, outlen - o, "%s%d", n ? "," : "", k);
		n++;
		st->kind = k;
		st->n_kinds = n;
		p += l;
		if (*p == ',')
			p++;
	}
	snprintf(out + o, outlen - o, "}");
	return true;
}

static void h_events(hreq_t *r)
{
	events_state_t *st = calloc(1, sizeof(*st));
	if (!st) {
		hreq_error(r, 500, "internal", NULL, "out of memory");
		return;
	}
	hreq_set_state(r, st, free);
	qparams_t *qp = hreq_params(r);
	const char *kind = qparams_get(qp, "kind");
	const char *sev = qparams_get(qp, "severity");
	const char *cursor = qparams_get(qp, "cursor");
	if (!api_get_window(r, SETTING(hreq_col(r), http_default_window_ms) * 1000, &st->since,
			    &st->until) ||
	    !api_get_str(r, "agent", &st->agent) || !api_get_str(r, "container", &st->container) ||
	    !api_get_str(r, "exe", &st->exe) || !api_get_str(r, "argv", &st->argv) ||
	    !api_get_format(r, true, &st->fmt))
		return;
	if (kind && !parse_kinds(r, kind, st))
		return;
	if (sev && (st->severity = api_severity_parse(sev)) < 0) {
		api_bad_param(r, "severity", "must be info, low, medium, high or critical");
		return;
	}
	if (cursor) {
		if (st->fmt != API_FMT_JSON || api_cursor_parse(cursor, &st->cursor) != 0) {
			api_bad_param(r, "cursor", "not a cursor from next_cursor");
			return;
		}
		st->has_cursor = true;
	}
	if (st->fmt == API_FMT_JSON) {
		if (!api_get_limit(r, 100, &st->limit) || !api_no_unknown(r))
			return;
		events_query(r, st, true, st->limit + 1);
		return;
	}
	/* exports stream pages until done or http_export_max_rows */
	const char *lim = qparams_get(qp, "limit");
	int64_t max = SETTING(hreq_col(r), http_export_max_rows);
	st->limit = max;
	if (lim) {
		if (api_parse_int(lim, 1, INT64_MAX / 2, &st->limit) != 0) {
			api_bad_param(r, "limit", "must be a positive integer");
			return;
		}
		if (st->limit > max)
			st->limit = max;
	}
	if (!api_no_unknown(r))
		return;
	events_query(r, st, true, st->limit < EXPORT_PAGE ? st->limit : EXPORT_PAGE);
}

/* ---- image search -------------------------------------------------------------------------------- */

static void images_done(hreq_t *r, apidb_job_t *job)
{
	if (job->status != APIDB_OK)
		hreq_db_error(r, job);
	else
		api_reply_rows(r, job, "nodes", job->n_rows, NULL);
	apidb_job_free(job);
}

static void h_images(hreq_t *r)
{
	const char *image, *digest;
	int64_t since, until, limit;
	if (!api_get_str(r, "image", &image) || !api_get_str(r, "digest", &digest) ||
	    !api_get_window(r, IMAGE_DEFAULT_WINDOW_US, &since, &until) ||
	    !api_get_limit(r, 1000, &limit) || !api_no_unknown(r))
		return;
	if (!image && !digest) {
		api_bad_param(r, "image", "give image= or digest=");
		return;
	}
	qb_t q;
	qb_init(&q, true);
	qb_sql(&q, "SELECT row_to_json(x)::text FROM (SELECT a.name AS agent, a.hostname, "
		   "count(*) AS containers, min(coalesce(c.started_at, c.first_seen)) AS "
		   "first_started, "
		   "max(coalesce(c.stopped_at, c.last_seen)) AS last_seen, "
		   "json_agg(json_build_object('id', c.id, 'name', c.name, 'image', c.image, "
		   "'image_digest', c.image_digest, 'state', c.state, 'started_at', c.started_at, "
		   "'stopped_at', c.stopped_at) ORDER BY c.started_at DESC) AS container_list "
		   "FROM containers c JOIN agents a ON a.id = c.agent_id WHERE ");
	if (image) {
		qb_sql(&q, "c.image = ");
		qb_param(&q, image);
	} else {
		qb_sql(&q, "c.image_digest = ");
		qb_param(&q, digest);
	}
	if (image && digest) {
		qb_sql(&q, " AND c.image_digest = ");
		qb_param(&q, digest);
	}
	qb_sql(&q, " AND coalesce(c.started_at, c.first_seen) < ");
	qb_time(&q, until);
	qb_sql(&q, " AND coalesce(c.stopped_at, c.last_seen) >= ");
	qb_time(&q, since);
	qb_sql(&q, " GROUP BY a.name, a.hostname ORDER BY a.name LIMIT ");
	qb_param_int(&q, limit);
	qb_sql(&q, ") x");
	hreq_run(r, &q, images_done);
}

/* ---- stats, metrics, audit, tokens ---------------------------------------------------------------- */

static double rate_between(const api_sample_t *a, const api_sample_t *b)
{
	double dt = (double)(b->t_us - a->t_us) / 1e6;
	if (dt <= 0 || b->events_stored < a->events_stored)
		return 0;
	return (double)(b->events_stored - a->events_stored) / dt;
}

static void stats_done(hreq_t *r, apidb_job_t *job)
{
	if (job->status != APIDB_OK) {
		hreq_db_error(r, job);
		apidb_job_free(job);
		return;
	}
	collector_t *col = hreq_col(r);
	api_server_stats_t s;
	hreq_server_stats(r, &s);
	counters_t *k = &col->counters;
	json_t *hist = json_array();
	for (size_t i = 1; i < s.n_samples; i++) {
		char t[40];
		api_format_time(s.samples[i].t_us, t, sizeof(t));
		json_array_append_new(hist,
				      json_pack("{s:s, s:f, s:i}", "t", t, "events_per_s",
						rate_between(&s.samples[i - 1], &s.samples[i]),
						"agents_connected", s.samples[i].agents_connected));
	}
	double rate = s.n_samples >= 2 ? rate_between(&s.samples[s.n_samples - 2],
						      &s.samples[s.n_samples - 1])
				       : 0;
	const char *agents = apidb_cell(job, 0, 0), *running = apidb_cell(job, 0, 1);
	json_t *o = json_pack(
		"{s:f, s:i, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
		"s:I, s:I}, s:o}",
		"events_per_s", rate, "agents_connected", collector_connected_count(col),
		"agents_known", (json_int_t)(agents ? atoll(agents) : 0), "containers_running",
		(json_int_t)(running ? atoll(running) : 0), "queue_bytes",
		(json_int_t)ingest_queued_bytes(col->ingest), "queue_jobs",
		(json_int_t)ingest_queued_jobs(col->ingest), "connections",
		(json_int_t)atomic_load(&col->n_conns), "counters", "events_stored",
		(json_int_t)atomic_load(&k->events_stored), "batches_acked",
		(json_int_t)atomic_load(&k->batches_acked), "events_dead",
		(json_int_t)atomic_load(&k->events_dead), "handshakes_failed",
		(json_int_t)atomic_load(&k->handshakes_failed), "protocol_errors",
		(json_int_t)atomic_load(&k->protocol_errors), "timeouts",
		(json_int_t)atomic_load(&k->timeouts), "db_errors",
		(json_int_t)atomic_load(&k->db_errors), "conns_accepted",
		(json_int_t)atomic_load(&k->conns_accepted), "conns_refused",
		(json_int_t)atomic_load(&k->conns_refused), "events_clamped",
		(json_int_t)atomic_load(&k->events_clamped), "history", hist);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (body)
		hreq_reply(r, 200, "application/json", body, strlen(body));
	else
		hreq_error(r, 500, "internal", NULL, "out of memory");
	free(body);
	apidb_job_free(job);
}

static void h_stats(hreq_t *r)
{
	if (!api_no_unknown(r))
		return;
	qb_t q;
	qb_init(&q, true);
	qb_sql(&q, "SELECT (SELECT count(*) FROM agents), "
		   "(SELECT count(*) FROM containers WHERE state = 'running')");
	hreq_run(r, &q, stats_done);
}

/* One metric of /metrics into b (Prometheus text format). */
#define COUNTER(name, help, v)                                                        \
	sbuf_printf(b,                                                                \
		    "# HELP vigil_" name " " help "\n# TYPE vigil_" name " counter\n" \
		    "vigil_" name " %llu\n",                                          \
		    (unsigned long long)(v))
#define GAUGE(name, help, v)                                                        \
	sbuf_printf(b,                                                              \
		    "# HELP vigil_" name " " help "\n# TYPE vigil_" name " gauge\n" \
		    "vigil_" name " %llu\n",                                        \
		    (unsigned long long)(v))

/* The agent port's and the storage's metrics. */
static void metrics_ingest(sbuf_t *b, collector_t *col)
{
	counters_t *k = &col->counters;
	COUNTER("connections_accepted_total", "Agent connections accepted.",
		atomic_load(&k->conns_accepted));
	COUNTER("connections_refused_total",
		"Agent connections closed at accept (max_connections, max_pending_per_address).",
		atomic_load(&k->conns_refused));
	COUNTER("pending_dropped_total",
		"Pending agent connections dropped for newer ones (max_pending_connections).",
		atomic_load(&k->pending_dropped));
	COUNTER("handshakes_failed_total", "Agent TLS handshakes refused or failed.",
		atomic_load(&k->handshakes_failed));
	COUNTER("protocol_errors_total", "Bad frames, messages or sequences from agents.",
		atomic_load(&k->protocol_errors));
	COUNTER("timeouts_total", "Agent connections closed by a timeout.",
		atomic_load(&k->timeouts));
	COUNTER("batches_acked_total", "Batches committed and acknowledged.",
		atomic_load(&k->batches_acked));
	COUNTER("batches_replayed_total", "Batches acknowledged that were already stored.",
		atomic_load(&k->batches_replayed));
	COUNTER("events_stored_total", "Events stored in PostgreSQL.",
		atomic_load(&k->events_stored));
	COUNTER("events_dead_lettered_total", "Events kept in dead_letters.",
		atomic_load(&k->events_dead));
	COUNTER("events_clamped_total", "Events whose time was outside the partitions.",
		atomic_load(&k->events_clamped));
	COUNTER("db_errors_total", "PostgreSQL errors of the storage writers.",
		atomic_load(&k->db_errors));
	COUNTER("group_commits_total", "Group-commit transactions.",
		atomic_load(&k->groups_committed));
	COUNTER("batches_refused_total",
		"Batches refused whole (max_bad_events_per_batch, or over their budget).",
		atomic_load(&k->batches_refused));
	COUNTER("events_cut_total", "Events with a field capped by the collector.",
		atomic_load(&k->events_cut));
	COUNTER("events_dead_dropped_total",
		"Dead letters not kept: past the agent's dead_letters_per_agent.",
		atomic_load(&k->events_dead_dropped));
	COUNTER("jobs_quarantined_total",
		"Batches kept whole in dead_letters after a database error no row explains.",
		atomic_load(&k->jobs_quarantined));
	COUNTER("enrollments_total", "Agent certificates issued at enrollment.",
		atomic_load(&k->enrolled));
	COUNTER("renewals_total", "Agent certificates issued at renewal.",
		atomic_load(&k->renewed));
	COUNTER("enroll_refused_total",
		"Enrollment and renewal requests refused (rate-limited ones included).",
		atomic_load(&k->enroll_refused));
	COUNTER("enroll_rate_limited_total",
		"Enrollment requests refused before any check: over their address's rate.",
		atomic_load(&k->enroll_rate_limited));
	COUNTER("jobs_dropped_total", "Queued jobs of closed connections, not written.",
		atomic_load(&k->jobs_dropped));
	GAUGE("connections", "Agent connections open.", atomic_load(&col->n_conns));
	GAUGE("connections_pending", "Agent connections before their Hello.",
	      atomic_load(&col->n_pending));
	GAUGE("agents_connected", "Agents with a live connection here.",
	      collector_connected_count(col));
	GAUGE("queue_bytes", "Batch bytes queued for PostgreSQL.",
	      ingest_queued_bytes(col->ingest));
	GAUGE("queue_jobs", "Jobs queued for PostgreSQL.", ingest_queued_jobs(col->ingest));
	GAUGE("db_writers_down", "Ingest writers that cannot reach PostgreSQL (/readyz: 503).",
	      atomic_load(&col->db_writers_down));
}

/* The HTTPS side's metrics. */
static void metrics_http(sbuf_t *b, const api_server_stats_t *s)
{
	GAUGE("http_connections", "HTTPS connections open.", s->connections);
	GAUGE("http_connections_pending", "HTTPS connections before their first request.",
	      s->connections_pending);
	COUNTER("http_connections_refused_total",
		"HTTPS connections closed at accept (http_max_connections, "
		"http_max_pending_per_address).",
		s->connections_refused);
	COUNTER("http_pending_dropped_total",
		"Pending HTTPS connections dropped for newer ones (http_max_pending_connections).",
		s->pending_dropped);
	GAUGE("http_db_pending", "API database jobs queued or running.", s->db_pending);
	sbuf_add(b, "# HELP vigil_http_requests_total HTTPS requests answered, by status class.\n"
		    "# TYPE vigil_http_requests_total counter\n");
	static const char *const cls[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	for (int i = 0; i < 6; i++)
		sbuf_printf(b, "vigil_http_requests_total{code=\"%s\"} %llu\n", cls[i],
			    (unsigned long long)s->requests[i]);
	COUNTER("http_rate_limited_total", "HTTPS requests refused by the rate limit.",
		s->rate_limited);
	COUNTER("http_auth_failures_total", "HTTPS requests without valid credentials.",
		s->auth_failures);
}
#undef COUNTER
#undef GAUGE

static void h_metrics(hreq_t *r)
{
	api_server_stats_t s;
	hreq_server_stats(r, &s);
	sbuf_t b;
	sbuf_init(&b);
	metrics_ingest(&b, hreq_col(r));
	metrics_http(&b, &s);
	if (b.oom)
		hreq_error(r, 500, "internal", NULL, "out of memory");
	else
		hreq_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.s, b.len);
	sbuf_free(&b);
}

static void ready_done(hreq_t *r, apidb_job_t *job)
{
	static const char ok[] = "{\"status\":\"ready\"}";
	if (job->status == APIDB_OK && job->n_rows == 1)
		hreq_reply(r, 200, "application/json", ok, sizeof(ok) - 1);
	else
		hreq_error(r, 503, "not_ready", NULL, "the database is not reachable");
	apidb_job_free(job);
}

/* Ready: not draining, every writer reaches PostgreSQL (ingest/ingest.c
 * keeps the count), and the API's database answers. A load balancer's
 * health check stops sending agents to a collector that is not. */
static void h_readyz(hreq_t *r)
{
	collector_t *col = hreq_col(r);
	int down = atomic_load(&col->db_writers_down);
	if (atomic_load(&col->draining)) {
		hreq_error(r, 503, "not_ready", NULL, "the collector is draining");
		return;
	}
	if (down > 0) {
		hreq_error(r, 503, "not_ready", NULL,
			   "%d of the ingest writers cannot reach the database", down);
		return;
	}
	qb_t q;
	qb_init(&q, false);
	qb_primary(&q); /* ready to ingest: the primary, whatever the replica */
	qb_sql(&q, "SELECT 1 WHERE to_regclass('api_tokens') IS NOT NULL");
	hreq_run(r, &q, ready_done);
}

static void audit_done(hreq_t *r, apidb_job_t *job)
{
	if (job->status != APIDB_OK)
		hreq_db_error(r, job);
	else
		api_reply_rows(r, job, hreq_state(r) ? "tokens" : "entries", job->n_rows, NULL);
	apidb_job_free(job);
}

static bool need_admin(hreq_t *r)
{
	if (hreq_role(r) == AUTH_ROLE_ADMIN)
		return true;
	hreq_error(r, 403, "forbidden", NULL, "this endpoint needs the admin role");
	return false;
}

static void h_audit(hreq_t *r)
{
	const char *principal;
	int64_t since, until, limit;
	if (!need_admin(r) || !api_get_str(r, "principal", &principal) ||
	    !api_get_window(r, SETTING(hreq_col(r), http_default_window_ms) * 1000, &since,
			    &until) ||
	    !api_get_limit(r, 100, &limit) || !api_no_unknown(r))
		return;
	qb_t q;
	qb_init(&q, true);
	qb_primary(&q); /* the API's own writes: read them where they are written */
	qb_sql(&q, "SELECT row_to_json(x)::text FROM (SELECT id, ts, principal, role, peer, "
		   "method, path, query FROM audit_log WHERE ts >= ");
	qb_time(&q, since);
	qb_sql(&q, " AND ts < ");
	qb_time(&q, until);
	if (principal) {
		qb_sql(&q, " AND principal = ");
		qb_param(&q, principal);
	}
	qb_sql(&q, " ORDER BY ts DESC, id DESC LIMIT ");
	qb_param_int(&q, limit);
	qb_sql(&q, ") x");
	hreq_run(r, &q, audit_done);
}

static void h_tokens(hreq_t *r)
{
	if (!need_admin(r) || !api_no_unknown(r))
		return;
	hreq_set_state(r, (void *)1, NULL);
	qb_t q;
	qb_init(&q, true);
	qb_primary(&q);
	qb_sql(&q, "SELECT row_to_json(x)::text FROM (SELECT name, role, created_at, expires_at, "
		   "revoked_at FROM api_tokens ORDER BY name, created_at) x");
	hreq_run(r, &q, audit_done);
}

static void h_whoami(hreq_t *r, const char *principal)
{
	if (!api_no_unknown(r))
		return;
	json_t *o = json_pack("{s:s, s:s}", "principal", principal, "role",
			      auth_role_name(hreq_role(r)));
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (s)
		hreq_reply(r, 200, "application/json", s, strlen(s));
	else
		hreq_error(r, 500, "internal", NULL, "out of memory");
	free(s);
}

/* ---- routing ------------------------------------------------------------------------------------------ */

/* The database queue is bounded: past http_db_queue requests waiting for a
 * connection, answer 503 (with Retry-After) rather than queue without end.
 * Return false after answering. */
static bool db_admit(hreq_t *r)
{
	collector_t *col = hreq_col(r);
	api_server_stats_t s;
	hreq_server_stats(r, &s);
	size_t conns = (size_t)SETTING(col, http_db_connections);
	size_t waiting = s.db_pending > conns ? s.db_pending - conns : 0;
	if (waiting < (size_t)SETTING(col, http_db_queue))
		return true;
	hreq_error(r, 503, "busy", NULL,
		   "%zu requests wait for the database (http_db_queue); retry later", waiting);
	return false;
}

bool api_dispatch(hreq_t *r, const char *path)
{
	if (strcmp(path, "/metrics") && strcmp(path, "/api/v1/openapi.json") &&
	    strcmp(path, "/api/v1/whoami") && !db_admit(r))
		return true;
	if (!strcmp(path, "/metrics")) {
		h_metrics(r);
	} else if (!strcmp(path, "/readyz")) {
		h_readyz(r);
	} else if (!strcmp(path, "/api/v1/openapi.json")) {
		size_t len = 0;
		const char *doc = hreq_openapi(r, &len);
		if (doc)
			hreq_reply(r, 200, "application/json", doc, len);
		else
			hreq_error(r, 404, "not_found", NULL, "openapi.json is not installed");
	} else if (!strcmp(path, "/api/v1/agents")) {
		h_agents(r, NULL);
	} else if (!strncmp(path, "/api/v1/agents/", 15)) {
		char name[256];
		if (api_path_segment(path + 15, strlen(path + 15), name, sizeof(name)) != 0) {
			hreq_error(r, 404, "not_found", NULL, "no such agent");
			return true;
		}
		h_agents(r, name);
	} else if (!strcmp(path, "/api/v1/containers")) {
		h_containers(r);
	} else if (!strcmp(path, "/api/v1/events")) {
		h_events(r);
	} else if (!strcmp(path, "/api/v1/findings")) {
		api_findings(r);
	} else if (api_vuln_route(r, path)) {
		/* /api/v1/vulnerabilities[/{id}], /api/v1/images/{digest}/vulnerabilities */
	} else if (!strcmp(path, "/api/v1/rules")) {
		api_rules(r);
	} else if (!strcmp(path, "/api/v1/images")) {
		h_images(r);
	} else if (!strcmp(path, "/api/v1/stats")) {
		h_stats(r);
	} else if (!strcmp(path, "/api/v1/audit")) {
		h_audit(r);
	} else if (!strcmp(path, "/api/v1/tokens")) {
		h_tokens(r);
	} else if (!strcmp(path, "/api/v1/whoami")) {
		h_whoami(r, hreq_principal(r));
	} else {
		return false;
	}
	return true;
}
