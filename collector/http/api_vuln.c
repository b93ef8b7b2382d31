// SPDX-License-Identifier: Apache-2.0
/*
 * The vulnerable-images API (see api_vuln.h). Each answer is one JSON
 * document that PostgreSQL renders from vuln_matches, images, containers
 * and advisories in one statement (audited like every read); values are
 * parameters, never SQL text. Exposure comes from what the fleet ran:
 * containers.image_digest names the image, started_at / stopped_at (and
 * state, last_seen) say when it ran, and the advisories known now judge it.
 */
#include "http/api_vuln.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api_common.h"

#define VULN_PREFIX "/api/v1/vulnerabilities"
#define IMAGES_PREFIX "/api/v1/images/"
#define IMAGE_SUFFIX "/vulnerabilities"

/* One document in row 0, column 0; NULL (nothing there) is a 404. */
static void doc_done(hreq_t *r, apidb_job_t *job, const char *what)
{
	const char *doc =
		job->status == APIDB_OK && job->n_rows == 1 ? apidb_cell(job, 0, 0) : NULL;
	if (job->status != APIDB_OK)
		hreq_db_error(r, job);
	else if (!doc)
		hreq_error(r, 404, "not_found", NULL, "%s", what);
	else
		hreq_reply(r, 200, "application/json", doc, strlen(doc));
	apidb_job_free(job);
}

static void exposure_done(hreq_t *r, apidb_job_t *job)
{
	doc_done(r, job, "no advisory has this id or alias");
}

static void image_done(hreq_t *r, apidb_job_t *job)
{
	doc_done(r, job, "no inventory of this image is stored");
}

static void summary_done(hreq_t *r, apidb_job_t *job)
{
	doc_done(r, job, "nothing");
}

/* ---- exposure -------------------------------------------------------------------------------- */

typedef struct {
	bool now; /* else the window [lo, hi] */
	int64_t lo, hi;
} when_t;

/* at=T, or from=/to= (either may be left out: the epoch, now), or neither
 * (running now). Return false after answering 400. */
static bool get_when(hreq_t *r, when_t *w)
{
	qparams_t *q = hreq_params(r);
	const char *at = qparams_get(q, "at"), *from = qparams_get(q, "from"),
		   *to = qparams_get(q, "to");
	int64_t now = hreq_now_us(r);
	const char *bad = "not a time (RFC 3339, Unix seconds, or 24h ago)";
	w->now = !at && !from && !to;
	w->lo = 0;
	w->hi = now;
	if (at && (from || to))
		return api_bad_param(r, "at", "give at= or from=/to=, not both");
	if (at) {
		if (api_parse_time(at, now, &w->lo) != 0)
			return api_bad_param(r, "at", bad);
		w->hi = w->lo;
	}
	if (from && api_parse_time(from, now, &w->lo) != 0)
		return api_bad_param(r, "from", bad);
	if (to && api_parse_time(to, now, &w->hi) != 0)
		return api_bad_param(r, "to", bad);
	if (w->lo > w->hi)
		return api_bad_param(r, "to", "must not be before from");
	return true;
}

/* The containers that ran in w: c is containers. */
static void when_sql(qb_t *q, const when_t *w)
{
	if (w->now) {
		qb_sql(q, "c.state = 'running'");
		return;
	}
	qb_sql(q, "coalesce(c.started_at, c.first_seen) <= ");
	qb_time(q, w->hi);
	qb_sql(q, " AND (c.stopped_at >= ");
	qb_time(q, w->lo);
	qb_sql(q, " OR (c.stopped_at IS NULL AND (c.state = 'running' OR c.last_seen >= ");
	qb_time(q, w->lo);
	qb_sql(q, ")))");
}

/* Start q's WITH list (after the audit's CTE when audited). */
static void with(qb_t *q)
{
	qb_sql(q, q->audit ? ", " : "WITH ");
}

void api_vuln_exposure(hreq_t *r, const char *id)
{
	when_t w;
	int64_t limit;
	if (!get_when(r, &w) || !api_get_limit(r, 100, &limit) || !api_no_unknown(r))
		return;
	qb_t q;
	qb_init(&q, true);
	char sql[512];
	int idp = qb_add(&q, id);
	with(&q);
	/* the advisories of the id or alias; the matches of each image */
	snprintf(sql, sizeof(sql),
		 "adv AS (SELECT id, aliases, severity, summary, published, withdrawn "
		 "FROM advisories WHERE id IN (SELECT $%d::text UNION SELECT advisory_id FROM "
		 "advisory_aliases WHERE alias = $%d)), ",
		 idp, idp);
	qb_sql(&q, sql);
	qb_sql(&q, "m AS MATERIALIZED (SELECT image_id, package, source_name, version, fixed, "
		   "advisory_id, severity FROM vuln_matches WHERE advisory_id IN (SELECT id FROM "
		   "adv)), ");
	/* the containers that ran one of them when asked (img: the image, by
	 * its digest or, for a container without one, by the inventory that
	 * named it), the first page of them, and what they have: only the
	 * listed ones get their packages */
	qb_sql(&q, "c AS MATERIALIZED (SELECT c.agent_id, c.id, c.name, c.image, c.image_digest, "
		   "c.state, c.started_at, c.stopped_at, c.image_digest AS img FROM containers c "
		   "WHERE c.image_digest IN (SELECT image_id FROM m) AND ");
	when_sql(&q, &w);
	qb_sql(&q, " UNION ALL SELECT c.agent_id, c.id, c.name, c.image, c.image_digest, c.state, "
		   "c.started_at, c.stopped_at, l.image_id FROM vuln_container_images l JOIN "
		   "containers c ON c.agent_id = l.agent_id AND c.id = l.container_id WHERE "
		   "l.image_id IN (SELECT image_id FROM m) AND coalesce(c.image_digest, '') = '' "
		   "AND ");
	when_sql(&q, &w);
	qb_sql(&q, "), cs AS MATERIALIZED (SELECT * FROM c ORDER BY agent_id, id LIMIT ");
	qb_param_int(&q, limit);
	qb_sql(&q,
	       "), pk AS (SELECT image_id, json_agg(json_build_object('package', package, "
	       "'source', source_name, 'installed', version, 'fixed', fixed, 'advisory', "
	       "advisory_id, 'severity', vigil_vuln_severity(severity)) ORDER BY package, "
	       "advisory_id) AS packages FROM m WHERE image_id IN (SELECT img FROM cs) GROUP BY "
	       "image_id), ci AS (SELECT img AS image_id, count(*) AS n FROM c GROUP BY 1) ");
	snprintf(sql, sizeof(sql),
		 "SELECT CASE WHEN EXISTS (SELECT 1 FROM adv) THEN json_build_object('id', "
		 "$%d::text, 'when', ",
		 idp);
	qb_sql(&q, sql);
	if (w.now) {
		qb_sql(&q, "'now'");
	} else {
		qb_sql(&q, "json_build_object('from', ");
		qb_time(&q, w.lo);
		qb_sql(&q, ", 'to', ");
		qb_time(&q, w.hi);
		qb_sql(&q, ")");
	}
	qb_sql(&q, ", 'advisories', (SELECT json_agg(json_build_object('id', id, 'aliases', "
		   "aliases, 'severity', vigil_vuln_severity(severity), 'summary', summary, "
		   "'published', published, 'withdrawn', withdrawn) ORDER BY id) FROM adv), ");
	qb_sql(&q, "'images_count', (SELECT count(DISTINCT image_id) FROM m), 'images', (SELECT "
		   "coalesce(json_agg(json_build_object('image_id', image_id, 'names', names, "
		   "'containers', n) ORDER BY n DESC, image_id), '[]') FROM (SELECT i.image_id, "
		   "i.names, coalesce(ci.n, 0) AS n FROM (SELECT DISTINCT image_id FROM m) x JOIN "
		   "images i USING (image_id) LEFT JOIN ci USING (image_id) ORDER BY n DESC, "
		   "image_id LIMIT ");
	qb_param_int(&q, limit);
	qb_sql(&q, ") y), ");
	qb_sql(&q, "'nodes', (SELECT coalesce(json_agg(json_build_object('agent', a.name, "
		   "'hostname', a.hostname, 'containers', x.n) ORDER BY x.n DESC, a.name), '[]') "
		   "FROM (SELECT agent_id, count(*) AS n FROM c GROUP BY agent_id) x "
		   "JOIN agents a ON a.id = x.agent_id), ");
	qb_sql(&q, "'containers', (SELECT coalesce(json_agg(json_build_object('agent', a.name, "
		   "'hostname', a.hostname, 'container_id', c.id, 'name', c.name, 'image', "
		   "c.image, 'image_digest', c.image_digest, 'state', c.state, 'started_at', "
		   "c.started_at, 'stopped_at', c.stopped_at, 'packages', pk.packages) ORDER BY "
		   "a.name, c.name, c.id), '[]') FROM cs c JOIN agents a ON a.id = c.agent_id "
		   "JOIN pk ON pk.image_id = c.img), 'count', (SELECT count(*) FROM c), "
		   "'limit', ");
	qb_param_int(&q, limit);
	qb_sql(&q, "::bigint)::text END");
	hreq_run(r, &q, exposure_done);
}

/* ---- one image ------------------------------------------------------------------------------- */

void api_vuln_image(hreq_t *r, const char *digest)
{
	const char *sev = qparams_get(hreq_params(r), "severity");
	int min = 0;
	int64_t limit;
	static const char *const names[] = {"unknown", "negligible", "low",
					    "medium",  "high",	     "critical"};
	if (sev) {
		min = -1;
		for (int i = 0; i < 6; i++)
			if (!strcmp(sev, names[i]))
				min = i;
		if (min < 0) {
			api_bad_param(r, "severity",
				      "must be unknown, negligible, low, medium, high or critical");
			return;
		}
	}
	if (!api_get_limit(r, 1000, &limit) || !api_no_unknown(r))
		return;
	qb_t q;
	qb_init(&q, true);
	char sql[16];
	int dp = qb_add(&q, digest);
	with(&q);
	/* its matches by advisory, the worst first */
	qb_sql(&q, "v AS (SELECT m.advisory_id, max(m.severity) AS severity, "
		   "json_agg(json_build_object('package', m.package, 'source', m.source_name, "
		   "'installed', m.version, 'fixed', m.fixed) ORDER BY m.package) AS packages "
		   "FROM vuln_matches m WHERE m.image_id = ");
	snprintf(sql, sizeof(sql), "$%d", dp);
	qb_sql(&q, sql);
	qb_sql(&q, " AND m.severity >= ");
	qb_param_int(&q, min);
	qb_sql(&q, " GROUP BY m.advisory_id) SELECT json_build_object('image', json_build_object("
		   "'image_id', i.image_id, 'names', i.names, 'os_id', i.os_id, 'os_version_id', "
		   "i.os_version_id, 'os_pretty', i.os_pretty, 'format', i.format, 'status', "
		   "i.status, 'reason', i.reason, 'packages', i.packages, ");
	qb_sql(&q, "'packages_cut', i.packages_cut, 'first_seen', i.first_seen, 'matched_at', "
		   "i.matched_at, 'max_severity', vigil_vuln_severity(i.vuln_max), 'counts', "
		   "json_build_object('unknown', i.vuln_counts[1], 'negligible', i.vuln_counts[2], "
		   "'low', i.vuln_counts[3], 'medium', i.vuln_counts[4], 'high', i.vuln_counts[5], "
		   "'critical', i.vuln_counts[6])), ");
	qb_sql(&q, "'containers_running', (SELECT count(*) FROM containers c WHERE "
		   "c.image_digest = i.image_id AND c.state = 'running'), ");
	qb_sql(&q,
	       "'vulnerabilities', (SELECT coalesce(json_agg(json_build_object('id', "
	       "x.advisory_id, 'aliases', a.aliases, 'severity', vigil_vuln_severity(x.severity), "
	       "'summary', a.summary, 'packages', x.packages) ORDER BY x.severity DESC, "
	       "x.advisory_id), '[]') FROM (SELECT * FROM v ORDER BY severity DESC, advisory_id "
	       "LIMIT ");
	qb_param_int(&q, limit);
	qb_sql(&q, ") x JOIN advisories a ON a.id = x.advisory_id), 'count', (SELECT count(*) "
		   "FROM v))::text FROM images i WHERE i.image_id = ");
	snprintf(sql, sizeof(sql), "$%d", dp);
	qb_sql(&q, sql);
	hreq_run(r, &q, image_done);
}

/* ---- the fleet -------------------------------------------------------------------------------- */

void api_vuln_summary(hreq_t *r)
{
	int64_t limit;
	if (!api_get_limit(r, 10, &limit) || !api_no_unknown(r))
		return;
	qb_t q;
	qb_init(&q, true);
	with(&q);
	/* running containers per image with a match; an image's score is its
	 * running containers times its worst severity */
	qb_sql(&q,
	       "run AS MATERIALIZED (SELECT c.image_digest AS image_id, c.agent_id, count(*) "
	       "AS n FROM containers c JOIN images i ON i.image_id = c.image_digest WHERE "
	       "c.state = 'running' AND i.vuln_max > 0 GROUP BY 1, 2), "
	       "img AS (SELECT i.image_id, i.names, i.vuln_max, i.vuln_counts, "
	       "coalesce((SELECT sum(n) FROM run WHERE run.image_id = i.image_id), 0) AS running "
	       "FROM images i WHERE i.vuln_max > 0) ");
	qb_sql(&q,
	       "SELECT json_build_object('images', (SELECT json_build_object('total', count(*), "
	       "'matched', count(matched_at), 'vulnerable', count(*) FILTER (WHERE vuln_max > "
	       "0)) FROM images), 'advisories', (SELECT count(*) FROM advisories WHERE "
	       "withdrawn IS NULL), 'containers_running', (SELECT count(*) FROM containers "
	       "WHERE state = 'running'), ");
	qb_sql(&q, "'by_severity', (SELECT json_object_agg(vigil_vuln_severity(s), "
		   "json_build_object('images', (SELECT count(*) FROM img WHERE img.vuln_max = s), "
		   "'containers_running', (SELECT coalesce(sum(running), 0) FROM img WHERE "
		   "img.vuln_max = s), 'matches', (SELECT coalesce(sum(vuln_counts[s + 1]), 0) "
		   "FROM img))) FROM generate_series(0, 5) s), ");
	qb_sql(&q, "'top_images', (SELECT coalesce(json_agg(json_build_object('image_id', "
		   "image_id, 'names', names, 'max_severity', vigil_vuln_severity(vuln_max), "
		   "'containers_running', running, 'score', running * vuln_max, 'counts', "
		   "vuln_counts) ORDER BY running * vuln_max DESC, vuln_counts[vuln_max + 1] DESC, "
		   "image_id), '[]') FROM (SELECT * FROM img WHERE running > 0 ORDER BY running * "
		   "vuln_max DESC, vuln_counts[vuln_max + 1] DESC, image_id LIMIT ");
	qb_param_int(&q, limit);
	qb_sql(&q,
	       ") t), 'top_nodes', (SELECT coalesce(json_agg(json_build_object('agent', "
	       "a.name, 'hostname', a.hostname, 'containers_running', x.n, 'images', x.k, "
	       "'max_severity', vigil_vuln_severity(x.s), 'score', x.score) ORDER BY x.score "
	       "DESC, a.name), '[]') FROM (SELECT run.agent_id, sum(run.n) AS n, count(*) AS k, "
	       "max(i.vuln_max) AS s, sum(run.n * i.vuln_max) AS score FROM run JOIN images i "
	       "USING (image_id) GROUP BY run.agent_id ORDER BY score DESC LIMIT ");
	qb_param_int(&q, limit);
	qb_sql(&q, ") x JOIN agents a ON a.id = x.agent_id))::text");
	hreq_run(r, &q, summary_done);
}

/* ---- routes ------------------------------------------------------------------------------------ */

bool api_vuln_route(hreq_t *r, const char *path)
{
	char seg[512];
	size_t pl = strlen(path);
	if (!strcmp(path, VULN_PREFIX)) {
		api_vuln_summary(r);
		return true;
	}
	if (!strncmp(path, VULN_PREFIX "/", sizeof(VULN_PREFIX))) {
		const char *s = path + sizeof(VULN_PREFIX);
		if (api_path_segment(s, strlen(s), seg, sizeof(seg)) != 0 || !seg[0])
			hreq_error(r, 404, "not_found", NULL, "not an advisory id");
		else
			api_vuln_exposure(r, seg);
		return true;
	}
	size_t ip = strlen(IMAGES_PREFIX), sl = strlen(IMAGE_SUFFIX);
	if (pl > ip + sl && !strncmp(path, IMAGES_PREFIX, ip) &&
	    !strcmp(path + pl - sl, IMAGE_SUFFIX)) {
		if (api_path_segment(path + ip, pl - ip - sl, seg, sizeof(seg)) != 0 || !seg[0])
			hreq_error(r, 404, "not_found", NULL, "not an image digest");
		else
			api_vuln_image(r, seg);
		return true;
	}
	return false;
}
