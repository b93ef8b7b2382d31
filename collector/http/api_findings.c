// SPDX-License-Identifier: Apache-2.0
/*
 * The findings API. GET /api/v1/findings serves the findings table (one
 * row per rule, container and key, with its lifecycle), newest last_seen
 * first, in keyset pages or as an NDJSON/CSV export; the first page also
 * counts the matching findings by severity and the rules that could not
 * be judged on the matching running containers (containers.rules_unknown),
 * so that "nothing found" is never mistaken for "nothing judged".
 * GET /api/v1/rules lists the built-in rules and how they are in force.
 *
 * Rows are rendered by PostgreSQL (row_to_json) and completed here with
 * the rule's title, control and remediation from the catalog; every
 * string from an agent stays JSON-escaped text.
 */
#include "http/api_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "rules/rules.h"

#define EXPORT_PAGE 2000
#define RULE_FILTER_MAX 16

enum {
	ST_ANY,
	ST_OPEN, /* open or reopened */
	ST_REOPENED,
	ST_RESOLVED,
};

typedef struct {
	api_fmt_t fmt;
	bool has_since, has_until;
	int64_t since, until, limit, sent;
	const char *agent, *container, *image;
	char rules[RULE_FILTER_MAX * 64 + 4]; /* text[] literal of the rule filter, or "" */
	int kind;			      /* -1 any, else rule_kind_t */
	int state;
	int severity; /* lowest, 0 any */
	bool has_cursor;
	api_fcursor_t cursor;
	bool header_sent;
} fstate_t;

/* Placeholders of the bound filters (0: not given). */
typedef struct {
	int since, until, agent, container, image, rules, kind, severity, judged;
} fph_t;

static const char *const FINDING_CSV[] = {
	"last_seen",	   "first_seen",  "severity", "state", "rule",
	"title",	   "key",	  "summary",  "agent", "container_id",
	"container_name",  "image",	  "kind",     "count", "resolved_at",
	"resolved_reason", "remediation", "id",	      NULL};

static const char *str_or(const char *s, const char *def)
{
	return s ? s : def;
}

/* ---- parameters ---------------------------------------------------------------------------- */

/* rule=: a comma list of rule ids, each one of the catalog's. */
static bool get_rules(hreq_t *r, fstate_t *st)
{
	const char *v = qparams_get(hreq_params(r), "rule");
	if (!v)
		return true;
	size_t o = 0;
	st->rules[o++] = '{';
	int n = 0;
	for (const char *p = v;;) {
		size_t l = strcspn(p, ",");
		char id[64];
		if (l == 0 || l >= sizeof(id) || n >= RULE_FILTER_MAX)
			return api_bad_param(r, "rule",
					     "must be a comma-separated list of rule ids");
		memcpy(id, p, l);
		id[l] = '\0';
		if (!rules_find(id))
			return api_bad_param(r, "rule", "unknown rule (see /api/v1/rules)");
		o += (size_t)snprintf(st->rules + o, sizeof(st->rules) - o, "%s%s", n++ ? "," : "",
				      id);
		p += l;
		if (!*p)
			break;
		p++;
	}
	snprintf(st->rules + o, sizeof(st->rules) - o, "}");
	return true;
}

static bool get_choice(hreq_t *r, const char *name, const char *const *names, int *out,
		       const char *why)
{
	const char *v = qparams_get(hreq_params(r), name);
	if (!v)
		return true;
	for (int i = 0; names[i]; i++)
		if (!strcmp(v, names[i])) {
			*out = i;
			return true;
		}
	return api_bad_param(r, name, why);
}

/* since/until: both optional (a finding has no partition to bound). */
static bool get_times(hreq_t *r, fstate_t *st)
{
	qparams_t *q = hreq_params(r);
	const char *s = qparams_get(q, "since"), *u = qparams_get(q, "until");
	int64_t now = hreq_now_us(r);
	if (s && api_parse_time(s, now, &st->since) != 0)
		return api_bad_param(r, "since", "not a time (RFC 3339, Unix seconds, or 24h ago)");
	if (u && api_parse_time(u, now, &st->until) != 0)
		return api_bad_param(r, "until", "not a time (RFC 3339, Unix seconds, or 24h ago)");
	st->has_since = s != NULL;
	st->has_until = u != NULL;
	if (s && u && st->since >= st->until)
		return api_bad_param(r, "until", "must be after since");
	return true;
}

static bool get_export_limit(hreq_t *r, fstate_t *st)
{
	const char *v = qparams_get(hreq_params(r), "limit");
	int64_t max = SETTING(hreq_col(r), http_export_max_rows);
	st->limit = max;
	if (v && api_parse_int(v, 1, INT64_MAX / 2, &st->limit) != 0)
		return api_bad_param(r, "limit", "must be a positive integer");
	if (st->limit > max)
		st->limit = max;
	return true;
}

static bool parse_findings(hreq_t *r, fstate_t *st)
{
	static const char *const states[] = {"all", "open", "reopened", "resolved", NULL};
	static const char *const kinds[] = {"posture", "runtime", NULL};
	const char *sev = qparams_get(hreq_params(r), "severity");
	const char *cursor = qparams_get(hreq_params(r), "cursor");
	st->kind = -1;
	if (!get_rules(r, st) ||
	    !get_choice(r, "state", states, &st->state,
			"must be open, reopened, resolved or all") ||
	    !get_choice(r, "kind", kinds, &st->kind, "must be posture or runtime") ||
	    !api_get_str(r, "agent", &st->agent) || !api_get_str(r, "container", &st->container) ||
	    !api_get_str(r, "image", &st->image) || !get_times(r, st) ||
	    !api_get_format(r, true, &st->fmt))
		return false;
	if (sev && (st->severity = api_severity_parse(sev)) < 0)
		return api_bad_param(r, "severity", "must be info, low, medium, high or critical");
	if (cursor) {
		if (st->fmt != API_FMT_JSON || api_fcursor_parse(cursor, &st->cursor) != 0)
			return api_bad_param(r, "cursor", "not a cursor from next_cursor");
		st->has_cursor = true;
	}
	if (st->fmt == API_FMT_JSON ? !api_get_limit(r, 100, &st->limit) : !get_export_limit(r, st))
		return false;
	return api_no_unknown(r);
}

/* The rules the unknown count covers: enabled ones that pass the rule,
 * kind and severity filters, as a text[] literal. */
static void judged_rules(hreq_t *r, const fstate_t *st, sbuf_t *out)
{
	rules_t *in = rules_slot_get(hreq_col(r)->rules);
	sbuf_add(out, "{");
	int n = 0;
	const rule_info_t *ri;
	for (size_t i = 0; (ri = rules_builtin(i)) != NULL; i++) {
		if (!rules_enabled(in, ri->id) || (st->kind >= 0 && (int)ri->kind != st->kind) ||
		    rules_severity(in, ri->id) < st->severity)
			continue;
		if (st->rules[0]) { /* "{a,b}": match a whole element */
			size_t l = strlen(ri->id);
			const char *p = st->rules + 1;
			bool hit = false;
			while (!hit && (p = strstr(p, ri->id)) != NULL) {
				hit = (p[-1] == '{' || p[-1] == ',') &&
				      (p[l] == ',' || p[l] == '}');
				p += l;
			}
			if (!hit)
				continue;
		}
		sbuf_printf(out, "%s%s", n++ ? "," : "", ri->id);
	}
	sbuf_add(out, "}");
	rules_unref(in);
}

/* ---- the statement ----------------------------------------------------------------------- */

static void bind_time(qb_t *q, int64_t us, int *ph)
{
	char t[40];
	api_format_time(us, t, sizeof(t));
	*ph = qb_add(q, t);
}

static void bind(hreq_t *r, qb_t *q, const fstate_t *st, bool counts, fph_t *ph)
{
	memset(ph, 0, sizeof(*ph));
	char n[16];
	if (st->has_since)
		bind_time(q, st->since, &ph->since);
	if (st->has_until)
		bind_time(q, st->until, &ph->until);
	if (st->agent)
		ph->agent = qb_add(q, st->agent);
	if (st->container)
		ph->container = qb_add(q, st->container);
	if (st->image)
		ph->image = qb_add(q, st->image);
	if (st->rules[0])
		ph->rules = qb_add(q, st->rules);
	if (st->kind >= 0)
		ph->kind = qb_add(q, rules_kind_name((rule_kind_t)st->kind));
	if (st->severity > 0) {
		snprintf(n, sizeof(n), "%d", st->severity);
		ph->severity = qb_add(q, n);
	}
	if (counts) {
		sbuf_t j;
		sbuf_init(&j);
		judged_rules(r, st, &j);
		ph->judged = qb_add(q, j.oom ? "{}" : j.s);
		sbuf_free(&j);
	}
}

/* The filters on findings f (no cursor), as " AND ..." conditions. */
static void where(qb_t *q, const fstate_t *st, const fph_t *ph)
{
	sbuf_t *b = &q->sql;
	static const char *const state_sql[] = {"", " AND f.state <> 'resolved'",
						" AND f.state = 'reopened'",
						" AND f.state = 'resolved'"};
	sbuf_add(b, state_sql[st->state]);
	/* in the window: raised before until, not resolved before since */
	if (ph->until)
		sbuf_printf(b, " AND f.first_seen < $%d::timestamptz", ph->until);
	if (ph->since)
		sbuf_printf(b, " AND (f.resolved_at IS NULL OR f.resolved_at >= $%d::timestamptz)",
			    ph->since);
	if (ph->agent)
		sbuf_printf(b, " AND f.agent_id = (SELECT id FROM agents WHERE name = $%d::text)",
			    ph->agent);
	if (ph->container)
		sbuf_printf(b, " AND f.container_id = $%d::text", ph->container);
	if (ph->image)
		sbuf_printf(b,
			    " AND EXISTS (SELECT 1 FROM containers ci WHERE ci.agent_id = "
			    "f.agent_id AND ci.id = f.container_id AND ci.image = $%d::text)",
			    ph->image);
	if (ph->rules)
		sbuf_printf(b, " AND f.rule = ANY($%d::text[])", ph->rules);
	if (ph->kind)
		sbuf_printf(b, " AND f.kind = $%d::text", ph->kind);
	if (ph->severity)
		sbuf_printf(b, " AND f.severity >= $%d::smallint", ph->severity);
}

/* The counts of the first page: matching findings by severity, and
 * (container, rule) pairs not judged on the matching running containers. */
static void counts_ctes(qb_t *q, const fstate_t *st, const fph_t *ph)
{
	sbuf_t *b = &q->sql;
	sbuf_add(b, "fs AS (SELECT f.severity, count(*) AS n FROM findings f WHERE true");
	where(q, st, ph);
	sbuf_add(b, " GROUP BY f.severity), "
		    "fu AS (SELECT count(*) AS n, count(DISTINCT (c.agent_id, c.id)) AS nc "
		    "FROM containers c CROSS JOIN LATERAL unnest(c.rules_unknown) AS ur(rule) "
		    "WHERE c.state = 'running' AND c.rules_unknown IS NOT NULL");
	sbuf_printf(b, " AND ur.rule = ANY($%d::text[])", ph->judged);
	if (ph->agent)
		sbuf_printf(b, " AND c.agent_id = (SELECT id FROM agents WHERE name = $%d::text)",
			    ph->agent);
	if (ph->container)
		sbuf_printf(b, " AND c.id = $%d::text", ph->container);
	if (ph->image)
		sbuf_printf(b, " AND c.image = $%d::text", ph->image);
	sbuf_add(b, "), ");
}

static void findings_done(hreq_t *r, apidb_job_t *job);
static void findings_stream_done(hreq_t *r, apidb_job_t *job);

/* Run one page of st: limit rows after the cursor; with the counts on the
 * first JSON page. Columns: row JSON, cursor, then (counts) unknown pairs,
 * unknown containers, {severity: n}. */
static void findings_query(hreq_t *r, fstate_t *st, bool audit, int64_t limit)
{
	bool counts = st->fmt == API_FMT_JSON && !st->has_cursor;
	qb_t q;
	qb_init(&q, audit);
	fph_t ph;
	bind(r, &q, st, counts, &ph);
	qb_sql(&q, audit ? ", " : "WITH ");
	if (counts)
		counts_ctes(&q, st, &ph);
	qb_sql(&q, "fp AS (SELECT row_to_json(x)::text AS j, (extract(epoch FROM x.last_seen) * "
		   "1000000)::bigint || '.' || x.id AS cur, x.last_seen, x.id FROM (SELECT f.id, "
		   "a.name AS agent, f.container_id, c.name AS container_name, c.image, "
		   "c.state AS container_state, f.rule, f.key, f.kind, CASE f.severity WHEN 1 "
		   "THEN 'info' WHEN 2 THEN 'low' WHEN 3 THEN 'medium' WHEN 4 THEN 'high' WHEN 5 "
		   "THEN 'critical' ELSE 'unspecified' END AS severity, f.state, f.summary, "
		   "f.first_seen, f.last_seen, f.count, json_build_object('agent', a.name, 'seq', "
		   "f.evidence_seq, 'idx', f.evidence_idx) AS evidence, json_build_object('seq', "
		   "f.last_seq, 'idx', f.last_idx) AS last_evidence, f.details, f.resolved_at, "
		   "f.resolved_reason FROM findings f JOIN agents a ON a.id = f.agent_id "
		   "LEFT JOIN containers c ON c.agent_id = f.agent_id AND c.id = f.container_id "
		   "WHERE true");
	where(&q, st, &ph);
	/* An export pages by id, which never changes: a finding seen again
	 * while the export runs moves in last_seen order, and would be skipped
	 * or sent twice. */
	bool by_id = st->fmt != API_FMT_JSON;
	if (st->has_cursor && by_id) {
		qb_sql(&q, " AND f.id < ");
		qb_param_int(&q, st->cursor.id);
		qb_sql(&q, "::bigint");
	} else if (st->has_cursor) {
		qb_sql(&q, " AND (f.last_seen, f.id) < (");
		qb_time(&q, st->cursor.ts_us);
		qb_sql(&q, ", ");
		qb_param_int(&q, st->cursor.id);
		qb_sql(&q, "::bigint)");
	}
	qb_sql(&q, by_id ? " ORDER BY f.id DESC LIMIT "
			 : " ORDER BY f.last_seen DESC, f.id DESC LIMIT ");
	qb_param_int(&q, limit);
	qb_sql(&q, ") x) SELECT fp.j, fp.cur");
	qb_sql(&q, counts ? ", (SELECT n FROM fu), (SELECT nc FROM fu), "
			    "(SELECT json_object_agg(severity, n) FROM fs)::text"
			  : "");
	qb_sql(&q, by_id ? " FROM (VALUES (1)) one LEFT JOIN fp ON true ORDER BY fp.id DESC"
			 : " FROM (VALUES (1)) one LEFT JOIN fp ON true "
			   "ORDER BY fp.last_seen DESC, fp.id DESC");
	hreq_run(r, &q, st->fmt == API_FMT_JSON ? findings_done : findings_stream_done);
}

/* ---- answers ---------------------------------------------------------------------------------- */

/* A row completed with its rule's title, control and remediation; NULL if
 * the row is not a JSON object. The caller owns the result. */
static json_t *finding_obj(const char *row)
{
	json_t *o = row ? json_loads(row, 0, NULL) : NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	const rule_info_t *ri =
		rules_find(str_or(json_string_value(json_object_get(o, "rule")), ""));
	json_object_set_new(o, "title", ri ? json_string(ri->title) : json_null());
	json_object_set_new(o, "control", ri ? json_string(ri->control) : json_null());
	json_object_set_new(o, "remediation", ri ? json_string(ri->remediation) : json_null());
	return o;
}

static void add_finding(sbuf_t *b, const char *row)
{
	json_t *o = finding_obj(row);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	sbuf_add(b, s ? s : "null");
	free(s);
	json_decref(o);
}

/* Rows with a finding (the LEFT JOIN leaves one empty row when none). */
static size_t found_rows(const apidb_job_t *job)
{
	size_t n = 0;
	while (n < job->n_rows && apidb_cell(job, n, 0))
		n++;
	return n;
}

static void add_time(sbuf_t *b, const char *key, bool has, int64_t us)
{
	char t[40];
	api_format_time(us, t, sizeof(t));
	sbuf_printf(b, ",\"%s\":%s%s%s", key, has ? "\"" : "", has ? t : "null", has ? "\"" : "");
}

static void add_counts(sbuf_t *b, const apidb_job_t *job)
{
	const char *u = apidb_cell(job, 0, 2), *uc = apidb_cell(job, 0, 3);
	json_t *by = json_loads(str_or(apidb_cell(job, 0, 4), "{}"), 0, NULL);
	long long total = 0;
	sbuf_add(b, ",\"by_severity\":{");
	for (int s = 5; s >= 1; s--) {
		char k[4];
		snprintf(k, sizeof(k), "%d", s);
		json_int_t n = json_integer_value(json_object_get(by, k));
		total += n;
		sbuf_printf(b, "%s\"%s\":%lld", s < 5 ? "," : "", rules_severity_name(s),
			    (long long)n);
	}
	json_decref(by);
	sbuf_printf(b, "},\"total\":%lld,\"unknown\":%lld,\"unknown_containers\":%lld", total,
		    u ? atoll(u) : 0, uc ? atoll(uc) : 0);
}

static void findings_done(hreq_t *r, apidb_job_t *job)
{
	fstate_t *st = hreq_state(r);
	if (job->status != APIDB_OK) {
		hreq_db_error(r, job);
		apidb_job_free(job);
		return;
	}
	size_t rows = found_rows(job);
	size_t n = rows > (size_t)st->limit ? (size_t)st->limit : rows;
	sbuf_t b;
	sbuf_init(&b);
	sbuf_add(&b, "{\"findings\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			sbuf_add(&b, ",");
		add_finding(&b, apidb_cell(job, i, 0));
	}
	const char *cur = rows > n && n ? apidb_cell(job, n - 1, 1) : NULL;
	sbuf_printf(&b, "],\"count\":%zu,\"limit\":%lld", n, (long long)st->limit);
	add_time(&b, "since", st->has_since, st->since);
	add_time(&b, "until", st->has_until, st->until);
	sbuf_printf(&b, ",\"next_cursor\":%s%s%s", cur ? "\"" : "", cur ? cur : "null",
		    cur ? "\"" : "");
	if (job->n_cols >= 5)
		add_counts(&b, job);
	sbuf_add(&b, "}");
	if (b.oom)
		hreq_error(r, 500, "internal", NULL, "out of memory");
	else
		hreq_reply(r, 200, "application/json", b.s, b.len);
	sbuf_free(&b);
	apidb_job_free(job);
}

static void findings_stream_more(hreq_t *r)
{
	fstate_t *st = hreq_state(r);
	int64_t left = st->limit - st->sent;
	findings_query(r, st, false, left < EXPORT_PAGE ? left : EXPORT_PAGE);
}

static void findings_stream_done(hreq_t *r, apidb_job_t *job)
{
	fstate_t *st = hreq_state(r);
	if (job->status != APIDB_OK) {
		if (!st->header_sent) {
			hreq_db_error(r, job);
		} else { /* mid-stream: end it; the client sees a short export */
			log_warn("findings export ended early: %s", job->error);
			hreq_stream_end(r);
		}
		apidb_job_free(job);
		return;
	}
	sbuf_t b;
	sbuf_init(&b);
	bool csv = st->fmt == API_FMT_CSV;
	if (!st->header_sent) {
		st->header_sent = true;
		hreq_stream_start(r, csv ? "text/csv; charset=utf-8" : "application/x-ndjson",
				  csv ? "findings.csv" : NULL);
		if (csv)
			api_csv_header(&b, FINDING_CSV);
	}
	size_t rows = found_rows(job);
	for (size_t i = 0; i < rows; i++) {
		if (csv) {
			json_t *o = finding_obj(apidb_cell(job, i, 0));
			api_csv_obj(&b, o, FINDING_CSV);
			json_decref(o);
		} else {
			add_finding(&b, apidb_cell(job, i, 0));
			sbuf_add(&b, "\n");
		}
	}
	st->sent += (int64_t)rows;
	bool more = rows == EXPORT_PAGE && st->sent < st->limit &&
		    api_fcursor_parse(apidb_cell(job, rows - 1, 1), &st->cursor) == 0;
	st->has_cursor = true;
	apidb_job_free(job);
	hreq_stream_chunk(r, &b, more ? findings_stream_more : NULL);
	sbuf_free(&b);
}

void api_findings(hreq_t *r)
{
	fstate_t *st = calloc(1, sizeof(*st));
	if (!st) {
		hreq_error(r, 500, "internal", NULL, "out of memory");
		return;
	}
	hreq_set_state(r, st, free);
	if (!parse_findings(r, st))
		return;
	if (st->fmt == API_FMT_JSON)
		findings_query(r, st, true, st->limit + 1);
	else
		findings_query(r, st, true, st->limit < EXPORT_PAGE ? st->limit : EXPORT_PAGE);
}

/* ---- rules ------------------------------------------------------------------------------------ */

void api_rules(hreq_t *r)
{
	static const char *const kinds[] = {"posture", "runtime", NULL};
	int kind = -1, enabled;
	if (!get_choice(r, "kind", kinds, &kind, "must be posture or runtime") ||
	    !api_get_bool(r, "enabled", &enabled) || !api_no_unknown(r))
		return;
	collector_t *col = hreq_col(r);
	bool engine = SETTING(col, rules);
	rules_t *in = rules_slot_get(col->rules);
	json_t *list = json_array();
	const rule_info_t *ri;
	for (size_t i = 0; (ri = rules_builtin(i)) != NULL; i++) {
		int on = engine && rules_enabled(in, ri->id);
		if ((kind >= 0 && (int)ri->kind != kind) || (enabled >= 0 && on != enabled))
			continue;
		json_array_append_new(
			list,
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "id", ri->id,
				  "kind", rules_kind_name(ri->kind), "title", ri->title, "severity",
				  str_or(rules_severity_name(rules_severity(in, ri->id)),
					 "unspecified"),
				  "default_severity",
				  str_or(rules_severity_name(ri->severity), "unspecified"),
				  "enabled", on, "control", ri->control, "rationale", ri->rationale,
				  "remediation", ri->remediation));
	}
	rules_unref(in);
	json_t *o = json_pack("{s:o, s:I, s:b}", "rules", list, "count",
			      (json_int_t)json_array_size(list), "engine", engine);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (s)
		hreq_reply(r, 200, "application/json", s, strlen(s));
	else
		hreq_error(r, 500, "internal", NULL, "out of memory");
	free(s);
}
