// SPDX-License-Identifier: Apache-2.0
/*
 * Advisory and match storage (see advdb.h): the one file of
 * collector/vuln/ that speaks libpq. Rows are staged in COPY text format, one staging table for
 * both kinds: 'a' rows (an advisory) and 'r' rows (one affected range of
 * the advisory staged with the same seq).
 */
#include "vuln/advdb.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "vuln/match.h"

#define FLUSH_BYTES (1024 * 1024)
#define IMPORT_LOCK "SELECT pg_advisory_xact_lock(hashtext('vigil advisories import'))"

struct advdb {
	PGconn *pg;
	bool in_copy, committed;
	long long seq;
	char *buf;
	size_t len, cap;
};

static int failf(char *err, size_t errlen, const char *what, const char *msg)
{
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	snprintf(err, errlen, "database: %s: %.*s", what, (int)n, msg);
	return -1;
}

/* Run one statement; return 0, or -1 with err set. */
static int exec(advdb_t *db, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(db->pg, sql);
	ExecStatusType s = PQresultStatus(r);
	int rc = (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
			 ? 0
			 : failf(err, errlen, "import", PQresultErrorMessage(r));
	PQclear(r);
	return rc;
}

static const char *const STAGE_SQL =
	"CREATE TEMP TABLE advisory_stage ("
	" seq bigint NOT NULL, kind char(1) NOT NULL, id text NOT NULL, ecosystems text[],"
	" modified text, published text, withdrawn text, aliases text[], summary text,"
	" severity smallint NOT NULL, sha256 text, raw_size integer, source text,"
	" ecosystem text, distro text, release text, package text, introduced text,"
	" fixed text, last_affected text) ON COMMIT DROP";

advdb_t *advdb_begin(const char *conninfo, char *err, size_t errlen)
{
	advdb_t *db = calloc(1, sizeof(*db));
	if (!db) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	db->pg = PQconnectdb(conninfo);
	if (PQstatus(db->pg) != CONNECTION_OK) {
		failf(err, errlen, "cannot connect", PQerrorMessage(db->pg));
		advdb_free(db);
		return NULL;
	}
	PGresult *r = NULL;
	if (exec(db, "BEGIN", err, errlen) || exec(db, IMPORT_LOCK, err, errlen) ||
	    exec(db, STAGE_SQL, err, errlen) ||
	    PQresultStatus(r = PQexec(db->pg, "COPY advisory_stage FROM STDIN")) != PGRES_COPY_IN) {
		if (r)
			failf(err, errlen, "cannot stage", PQresultErrorMessage(r));
		PQclear(r);
		advdb_free(db);
		return NULL;
	}
	PQclear(r);
	db->in_copy = true;
	return db;
}

/* ---- COPY text ------------------------------------------------------------ */

static bool reserve(advdb_t *db, size_t more)
{
	if (db->len + more <= db->cap)
		return true;
	size_t cap = db->cap ? db->cap : 64 * 1024;
	while (cap < db->len + more)
		cap *= 2;
	char *b = realloc(db->buf, cap);
	if (!b)
		return false;
	db->buf = b;
	db->cap = cap;
	return true;
}

/* Append s escaped for COPY text (NULL as \N), then sep. */
static bool put(advdb_t *db, const char *s, char sep)
{
	if (!s) {
		if (!reserve(db, 3))
			return false;
		memcpy(db->buf + db->len, "\\N", 2);
		db->len += 2;
		db->buf[db->len++] = sep;
		return true;
	}
	size_t n = strlen(s);
	if (!reserve(db, 2 * n + 1))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i], e = c == '\\'   ? '\\'
				   : c == '\t' ? 't'
				   : c == '\n' ? 'n'
				   : c == '\r' ? 'r'
					       : 0;
		if (e) {
			db->buf[db->len++] = '\\';
			db->buf[db->len++] = e;
		} else {
			db->buf[db->len++] = c;
		}
	}
	db->buf[db->len++] = sep;
	return true;
}

/* A text[] literal of n strings: {"a","b\"c"}; NULL if out of memory. */
static char *array_literal(const char *const *v, size_t n)
{
	size_t len = 3;
	for (size_t i = 0; i < n; i++)
		len += 2 * strlen(v[i]) + 3;
	char *out = malloc(len), *p = out;
	if (!out)
		return NULL;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		*p++ = '"';
		for (const char *s = v[i]; *s; s++) {
			if (*s == '"' || *s == '\\')
				*p++ = '\\';
			*p++ = *s;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

static int flush(advdb_t *db, char *err, size_t errlen)
{
	if (db->len > 0 && PQputCopyData(db->pg, db->buf, (int)db->len) != 1)
		return failf(err, errlen, "cannot stage", PQerrorMessage(db->pg));
	db->len = 0;
	return 0;
}

int advdb_add(advdb_t *db, const osv_advisory_t *adv, const char *source, char *err, size_t errlen)
{
	char seq[24], sev[8], size[24];
	snprintf(seq, sizeof(seq), "%lld", ++db->seq);
	snprintf(sev, sizeof(sev), "%d", (int)adv->severity);
	snprintf(size, sizeof(size), "%zu", adv->raw_size);
	char *ecos = array_literal(adv->ecosystems, adv->n_ecosystems);
	char *aliases = array_literal(adv->aliases, adv->n_aliases);
	bool ok = ecos && aliases && put(db, seq, '\t') && put(db, "a", '\t') &&
		  put(db, adv->id, '\t') && put(db, ecos, '\t') && put(db, adv->modified, '\t') &&
		  put(db, adv->published, '\t') && put(db, adv->withdrawn, '\t') &&
		  put(db, aliases, '\t') && put(db, adv->summary, '\t') && put(db, sev, '\t') &&
		  put(db, adv->sha256, '\t') && put(db, size, '\t') && put(db, source, '\t');
	for (int i = 0; ok && i < 7; i++) /* the range columns */
		ok = put(db, NULL, i == 6 ? '\n' : '\t');
	free(ecos);
	free(aliases);
	for (size_t i = 0; ok && i < adv->n_ranges; i++) {
		const osv_range_t *r = &adv->ranges[i];
		snprintf(sev, sizeof(sev), "%d", (int)r->severity);
		ok = put(db, seq, '\t') && put(db, "r", '\t') && put(db, adv->id, '\t');
		for (int k = 0; ok && k < 6; k++)
			ok = put(db, NULL, '\t');
		ok = ok && put(db, sev, '\t');
		for (int k = 0; ok && k < 3; k++)
			ok = put(db, NULL, '\t');
		ok = ok && put(db, r->ecosystem, '\t') && put(db, r->distro, '\t') &&
		     put(db, r->release, '\t') && put(db, r->package, '\t') &&
		     put(db, r->introduced, '\t') && put(db, r->fixed, '\t') &&
		     put(db, r->last_affected, '\n');
	}
	if (!ok) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return db->len >= FLUSH_BYTES ? flush(db, err, errlen) : 0;
}

/* ---- the merge ------------------------------------------------------------ */

static const char *const MERGE_SQL[] = {
	/* the last read of each id */
	"CREATE TEMP TABLE advisory_pick ON COMMIT DROP AS"
	" SELECT DISTINCT ON (id) * FROM advisory_stage WHERE kind = 'a' ORDER BY id, seq DESC",
	"CREATE TEMP TABLE advisory_class ON COMMIT DROP AS"
	" SELECT p.id, p.seq, CASE WHEN a.id IS NULL THEN 'new'"
	" WHEN a.content_sha256 = p.sha256 THEN 'unchanged' ELSE 'changed' END AS what"
	" FROM advisory_pick p LEFT JOIN advisories a ON a.id = p.id",
	"DELETE FROM advisory_affected f USING advisory_class c"
	" WHERE f.advisory_id = c.id AND c.what = 'changed'",
	"INSERT INTO advisories (id, ecosystems, modified, published, withdrawn, aliases,"
	" summary, severity, content_sha256, raw_size, source)"
	" SELECT p.id, p.ecosystems, p.modified::timestamptz, p.published::timestamptz,"
	" p.withdrawn::timestamptz, p.aliases, p.summary, p.severity, p.sha256, p.raw_size,"
	" p.source FROM advisory_pick p JOIN advisory_class c USING (id)"
	" WHERE c.what <> 'unchanged'"
	" ON CONFLICT (id) DO UPDATE SET ecosystems = EXCLUDED.ecosystems,"
	" modified = EXCLUDED.modified, published = EXCLUDED.published,"
	" withdrawn = EXCLUDED.withdrawn, aliases = EXCLUDED.aliases,"
	" summary = EXCLUDED.summary, severity = EXCLUDED.severity,"
	" content_sha256 = EXCLUDED.content_sha256, raw_size = EXCLUDED.raw_size,"
	" source = EXCLUDED.source, changed_at = now()",
	/* the aliases the exposure answers look up (schema/0013_vuln_speed.sql) */
	"DELETE FROM advisory_aliases x USING advisory_class c"
	" WHERE x.advisory_id = c.id AND c.what = 'changed'",
	"INSERT INTO advisory_aliases (alias, advisory_id)"
	" SELECT DISTINCT x.alias, p.id FROM advisory_pick p JOIN advisory_class c USING (id)"
	" CROSS JOIN LATERAL unnest(p.aliases) AS x(alias) WHERE c.what <> 'unchanged'",
	/* the matcher takes them from here (schema/0010_images.sql) */
	"INSERT INTO vuln_advisory_queue (advisory_id) SELECT id FROM advisory_class"
	" WHERE what <> 'unchanged' ON CONFLICT DO NOTHING",
	"SELECT pg_notify('vigil_vuln', 'advisories')",
};

static const char *const COUNT_SQL =
	"SELECT (SELECT count(*) FROM advisory_class WHERE what = 'new'),"
	" (SELECT count(*) FROM advisory_class WHERE what = 'changed'),"
	" (SELECT count(*) FROM advisory_class WHERE what = 'unchanged'),"
	" (SELECT count(*) FROM advisory_stage WHERE kind = 'a')"
	" - (SELECT count(*) FROM advisory_class)";

static const char *const RANGES_SQL =
	"INSERT INTO advisory_affected (advisory_id, ecosystem, distro, release, package,"
	" introduced, fixed, last_affected, severity)"
	" SELECT s.id, s.ecosystem, s.distro, s.release, s.package, s.introduced, s.fixed,"
	" s.last_affected, s.severity FROM advisory_stage s"
	" JOIN advisory_class c ON c.id = s.id AND c.seq = s.seq"
	" WHERE s.kind = 'r' AND c.what <> 'unchanged'";

int advdb_commit(advdb_t *db, advdb_counts_t *counts, char *err, size_t errlen)
{
	if (flush(db, err, errlen) != 0)
		return -1;
	db->in_copy = false;
	if (PQputCopyEnd(db->pg, NULL) != 1)
		return failf(err, errlen, "cannot stage", PQerrorMessage(db->pg));
	PGresult *r;
	int rc = 0;
	while ((r = PQgetResult(db->pg))) {
		if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK)
			rc = failf(err, errlen, "cannot stage", PQresultErrorMessage(r));
		PQclear(r);
	}
	for (size_t i = 0; rc == 0 && i < sizeof(MERGE_SQL) / sizeof(MERGE_SQL[0]); i++)
		rc = exec(db, MERGE_SQL[i], err, errlen);
	if (rc != 0)
		return -1;
	r = PQexec(db->pg, RANGES_SQL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = failf(err, errlen, "import", PQresultErrorMessage(r));
	else
		counts->ranges = atoll(PQcmdTuples(r));
	PQclear(r);
	if (rc != 0)
		return -1;
	r = PQexec(db->pg, COUNT_SQL);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		rc = failf(err, errlen, "import", PQresultErrorMessage(r));
	} else {
		counts->fresh = atoll(PQgetvalue(r, 0, 0));
		counts->changed = atoll(PQgetvalue(r, 0, 1));
		counts->unchanged = atoll(PQgetvalue(r, 0, 2));
		counts->repeated = atoll(PQgetvalue(r, 0, 3));
	}
	PQclear(r);
	if (rc != 0 || exec(db, "COMMIT", err, errlen) != 0)
		return -1;
	db->committed = true;
	/* the matcher's joins need fresh statistics after a large import; the
	 * autovacuum daemon would get there, a minute or so later */
	if (counts->fresh + counts->changed >= 1000)
		PQclear(PQexec(db->pg, "ANALYZE advisories, advisory_affected, advisory_aliases"));
	return 0;
}

void advdb_free(advdb_t *db)
{
	if (!db)
		return;
	if (db->pg && PQstatus(db->pg) == CONNECTION_OK && !db->committed) {
		if (db->in_copy) {
			PQputCopyEnd(db->pg, "import abandoned");
			PGresult *r;
			while ((r = PQgetResult(db->pg)))
				PQclear(r);
		}
		PQclear(PQexec(db->pg, "ROLLBACK"));
	}
	PQfinish(db->pg);
	free(db->buf);
	free(db);
}

/* ---- matching ------------------------------------------------------------- */

#define MATCH_LOCK "SELECT pg_advisory_xact_lock(hashtext('vigil vuln match'))"

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* NOTICEs ("relation already exists, skipping") are not news */
}

advdb_t *advdb_match_open(const char *conninfo, int listen, char *err, size_t errlen)
{
	advdb_t *db = calloc(1, sizeof(*db));
	if (!db) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
	const char *vals[] = {conninfo, "10", "vigil-matcher", NULL};
	db->pg = PQconnectdbParams(keys, vals, 1);
	db->committed = true; /* nothing to roll back between passes */
	if (PQstatus(db->pg) != CONNECTION_OK) {
		failf(err, errlen, "cannot connect", PQerrorMessage(db->pg));
		advdb_free(db);
		return NULL;
	}
	PQsetNoticeProcessor(db->pg, quiet, NULL);
	/* a pass sorts and hashes some 100,000 candidate rows: in memory */
	if (exec(db, "SET work_mem = '64MB'", err, errlen) != 0 ||
	    (listen && exec(db, "LISTEN vigil_vuln", err, errlen) != 0)) {
		advdb_free(db);
		return NULL;
	}
	return db;
}

int advdb_match_hold(advdb_t *db, char *err, size_t errlen)
{
	return exec(db, "SELECT pg_advisory_lock(hashtext('vigil vuln match'))", err, errlen);
}

/* Run sql with params (text); its result, or NULL with err set. */
static PGresult *query(advdb_t *db, const char *sql, int n, const char *const *vals,
		       ExecStatusType want, char *err, size_t errlen)
{
	PGresult *r = PQexecParams(db->pg, sql, n, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(r) == want)
		return r;
	failf(err, errlen, "match", PQresultErrorMessage(r));
	PQclear(r);
	return NULL;
}

/* Begin a pass: lock, then take up to max ids with pick_sql ($1 = max) as
 * a text[] literal in *ids (caller frees). Return the number taken, or -1
 * (the transaction is then rolled back). */
static int pass_begin(advdb_t *db, const char *pick_sql, int max, char **ids, char *err,
		      size_t errlen)
{
	char m[16];
	snprintf(m, sizeof(m), "%d", max);
	const char *vals[] = {m};
	*ids = NULL;
	if (exec(db, "BEGIN", err, errlen) != 0)
		return -1;
	db->committed = false;
	PGresult *r = NULL;
	if (exec(db, MATCH_LOCK, err, errlen) != 0 ||
	    !(r = query(db, pick_sql, 1, vals, PGRES_TUPLES_OK, err, errlen)))
		return -1;
	int n = atoi(PQgetvalue(r, 0, 0));
	*ids = strdup(PQgetvalue(r, 0, 1));
	PQclear(r);
	if (!*ids) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return n;
}

static void pass_abort(advdb_t *db)
{
	if (!db->committed && PQstatus(db->pg) == CONNECTION_OK)
		PQclear(PQexec(db->pg, "ROLLBACK"));
	db->committed = true;
	db->len = 0;
}

static int pass_commit(advdb_t *db, char *err, size_t errlen)
{
	if (exec(db, "COMMIT", err, errlen) != 0)
		return -1;
	db->committed = true;
	return 0;
}

/* The candidates: columns image_id, package, source, installed version,
 * the version compared (the source's), distro, advisory id, introduced,
 * fixed, last_affected, severity; in (image, package, version, advisory)
 * order so that ranges of one advisory on one package are adjacent. */
#define CANDIDATES_SQL(where)                                                              \
	"SELECT p.image_id, p.name, p.source_name, p.version, p.source_version, i.distro," \
	" f.advisory_id, f.introduced, f.fixed, f.last_affected,"                          \
	" CASE WHEN f.severity > 0 THEN f.severity ELSE a.severity END"                    \
	" FROM images i JOIN image_packages p ON p.image_id = i.image_id"                  \
	" JOIN advisory_affected f ON f.distro = i.distro AND f.release = i.release"       \
	" AND f.package = p.source_name"                                                   \
	" JOIN advisories a ON a.id = f.advisory_id AND a.withdrawn IS NULL WHERE " where  \
	" ORDER BY p.image_id, p.name, p.version, f.advisory_id"

/* The candidates of the advisories in $1 (text[]) on the images already
 * matched, the same columns and order. The package rows of all their
 * source packages are read at once (a bitmap scan visits each page of
 * image_packages once), then hashed with the ranges and the images:
 * reading them package by package, or probing every image of a release
 * for each package, visits pages a hundred thousand times. The pass plans
 * it so (enable_nestloop off): the row estimates of an array of ids are
 * guesses. */
#define ADVISORY_CANDIDATES_SQL                                                                 \
	"WITH f AS MATERIALIZED (SELECT * FROM (SELECT f.advisory_id, f.distro, f.release,"     \
	" f.package, f.introduced, f.fixed, f.last_affected, (SELECT CASE WHEN f.severity > 0"  \
	" THEN f.severity ELSE a.severity END FROM advisories a WHERE a.id = f.advisory_id"     \
	" AND a.withdrawn IS NULL) AS severity FROM advisory_affected f"                        \
	" WHERE f.advisory_id = ANY($1::text[])) x WHERE severity IS NOT NULL),"                \
	" p AS MATERIALIZED (SELECT image_id, name, source_name, version, source_version"       \
	" FROM image_packages WHERE source_name = ANY (ARRAY(SELECT DISTINCT package FROM f)))" \
	" SELECT p.image_id, p.name, p.source_name, p.version, p.source_version, i.distro,"     \
	" f.advisory_id, f.introduced, f.fixed, f.last_affected, f.severity"                    \
	" FROM p JOIN f ON f.package = p.source_name JOIN images i ON i.image_id = p.image_id"  \
	" AND i.distro = f.distro AND i.release = f.release WHERE i.matched_at IS NOT NULL"     \
	" ORDER BY p.image_id, p.name, p.version, f.advisory_id"

/* Test each candidate of r and COPY the matches into table. */
static int write_matches(advdb_t *db, PGresult *r, const char *table, advdb_match_counts_t *c,
			 char *err, size_t errlen)
{
	int n = PQntuples(r);
	c->candidates += n;
	int last = -1; /* the row of the last match written */
	for (int i = 0; i < n; i++) {
		if (last >= 0 && strcmp(PQgetvalue(r, i, 6), PQgetvalue(r, last, 6)) == 0 &&
		    strcmp(PQgetvalue(r, i, 1), PQgetvalue(r, last, 1)) == 0 &&
		    strcmp(PQgetvalue(r, i, 3), PQgetvalue(r, last, 3)) == 0 &&
		    strcmp(PQgetvalue(r, i, 0), PQgetvalue(r, last, 0)) == 0)
			continue; /* another range of an advisory already matched */
		version_eco_t eco;
		if (!match_eco(PQgetvalue(r, i, 5), &eco))
			continue;
#define COL(k) (PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k))
		match_rc_t m = match_affected(eco, PQgetvalue(r, i, 4), COL(7), COL(8), COL(9));
		if (m == MATCH_BAD_VERSION)
			c->bad++;
		if (m != MATCH_AFFECTED)
			continue;
		last = i;
		c->matches++;
		if (!put(db, PQgetvalue(r, i, 0), '\t') || !put(db, PQgetvalue(r, i, 1), '\t') ||
		    !put(db, PQgetvalue(r, i, 2), '\t') || !put(db, PQgetvalue(r, i, 3), '\t') ||
		    !put(db, PQgetvalue(r, i, 6), '\t') || !put(db, COL(8), '\t') ||
		    !put(db, PQgetvalue(r, i, 10), '\n')) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
#undef COL
	}
	if (db->len == 0)
		return 0;
	char sql[128];
	snprintf(sql, sizeof(sql),
		 "COPY %s (image_id, package, source_name, version, advisory_id, fixed, severity)"
		 " FROM STDIN",
		 table);
	PGresult *cr = PQexec(db->pg, sql);
	int rc = 0;
	if (PQresultStatus(cr) != PGRES_COPY_IN)
		rc = failf(err, errlen, "cannot write matches", PQresultErrorMessage(cr));
	PQclear(cr);
	for (size_t off = 0; rc == 0 && off < db->len; off += FLUSH_BYTES) {
		size_t chunk = db->len - off < FLUSH_BYTES ? db->len - off : FLUSH_BYTES;
		if (PQputCopyData(db->pg, db->buf + off, (int)chunk) != 1)
			rc = failf(err, errlen, "cannot write matches", PQerrorMessage(db->pg));
	}
	db->len = 0;
	if (rc == 0 && PQputCopyEnd(db->pg, NULL) != 1)
		rc = failf(err, errlen, "cannot write matches", PQerrorMessage(db->pg));
	while (rc == 0 && (cr = PQgetResult(db->pg))) {
		if (rc == 0 && PQresultStatus(cr) != PGRES_COMMAND_OK)
			rc = failf(err, errlen, "cannot write matches", PQresultErrorMessage(cr));
		PQclear(cr);
	}
	return rc;
}

/* Matches by severity of the images in $1 (text[]) from scratch. */
#define COUNTS_SQL                                                                              \
	"ARRAY[count(*) FILTER (WHERE m.severity = 0), count(*) FILTER (WHERE m.severity = 1)," \
	" count(*) FILTER (WHERE m.severity = 2), count(*) FILTER (WHERE m.severity = 3),"      \
	" count(*) FILTER (WHERE m.severity = 4), count(*) FILTER (WHERE m.severity = "         \
	"5)]::integer[]"

int advdb_match_images(advdb_t *db, int max, advdb_match_counts_t *c, char *err, size_t errlen)
{
	char *ids = NULL;
	int n = pass_begin(
		db,
		"SELECT count(*), coalesce(array_agg(image_id), '{}')::text FROM ("
		"SELECT image_id FROM images WHERE matched_at IS NULL ORDER BY first_seen"
		" LIMIT $1) s",
		max, &ids, err, errlen);
	const char *vals[] = {ids};
	PGresult *r = NULL;
	if (n > 0 &&
	    (!(r = query(db, "DELETE FROM vuln_matches WHERE image_id = ANY($1::text[])", 1, vals,
			 PGRES_COMMAND_OK, err, errlen)) ||
	     (PQclear(r), !(r = query(db, CANDIDATES_SQL("i.image_id = ANY($1::text[])"), 1, vals,
				      PGRES_TUPLES_OK, err, errlen))) ||
	     write_matches(db, r, "vuln_matches", c, err, errlen) != 0 ||
	     (PQclear(r),
	      !(r = query(db,
			  "UPDATE images i SET matched_at = now(), vuln_counts = s.c"
			  " FROM unnest($1::text[]) AS t(id) CROSS JOIN LATERAL (SELECT " COUNTS_SQL
			  " AS c FROM vuln_matches m WHERE m.image_id = t.id)"
			  " s WHERE i.image_id = t.id",
			  1, vals, PGRES_COMMAND_OK, err, errlen)))))
		n = -1;
	PQclear(r);
	free(ids);
	if (n < 0 || pass_commit(db, err, errlen) != 0) {
		pass_abort(db);
		return -1;
	}
	c->images += n;
	return n;
}

static const char *const ADVISORY_SQL[] = {
	"CREATE TEMP TABLE IF NOT EXISTS vuln_stage (image_id text, package text,"
	" source_name text, version text, advisory_id text, fixed text, severity smallint)"
	" ON COMMIT DELETE ROWS",
	"CREATE TEMP TABLE IF NOT EXISTS vuln_delta (image_id text, severity smallint,"
	" n bigint) ON COMMIT DELETE ROWS",
	"SET LOCAL enable_nestloop = off",
};

/* A match of vuln_stage s and one of vuln_matches m are the same row. */
#define SAME_MATCH                                                                            \
	"s.advisory_id = m.advisory_id AND s.image_id = m.image_id AND s.package = m.package" \
	" AND s.version = m.version AND s.source_name = m.source_name"                        \
	" AND s.fixed IS NOT DISTINCT FROM m.fixed AND s.severity = m.severity"

/* After the stage is filled with what the advisories in $1 match now:
 * write only the difference to vuln_matches (the matches they no longer
 * have out, the new ones in; a match that stays is not touched) and apply
 * it to the images' counts. The first statement returns the rows removed
 * by image and severity. */
static const char *const ADVISORY_REMOVE_SQL =
	"WITH d AS (DELETE FROM vuln_matches m WHERE m.advisory_id = ANY($1::text[])"
	" AND NOT EXISTS (SELECT 1 FROM vuln_stage s WHERE " SAME_MATCH ")"
	" RETURNING m.image_id, m.severity) INSERT INTO vuln_delta"
	" SELECT image_id, severity, -count(*) FROM d GROUP BY 1, 2 RETURNING -n";

static const char *const ADVISORY_APPLY_SQL[] = {
	"ANALYZE vuln_stage",
	"WITH w AS (INSERT INTO vuln_matches (image_id, package, source_name, version,"
	" advisory_id, fixed, severity) SELECT * FROM vuln_stage s WHERE NOT EXISTS"
	" (SELECT 1 FROM vuln_matches m WHERE " SAME_MATCH ") RETURNING image_id, severity)"
	" INSERT INTO vuln_delta SELECT image_id, severity, count(*) FROM w GROUP BY 1, 2",
	"UPDATE images i SET vuln_counts = ARRAY[i.vuln_counts[1] + d.n0, i.vuln_counts[2] + d.n1,"
	" i.vuln_counts[3] + d.n2, i.vuln_counts[4] + d.n3, i.vuln_counts[5] + d.n4,"
	" i.vuln_counts[6] + d.n5] FROM (SELECT image_id,"
	" coalesce(sum(n) FILTER (WHERE severity = 0), 0) AS n0,"
	" coalesce(sum(n) FILTER (WHERE severity = 1), 0) AS n1,"
	" coalesce(sum(n) FILTER (WHERE severity = 2), 0) AS n2,"
	" coalesce(sum(n) FILTER (WHERE severity = 3), 0) AS n3,"
	" coalesce(sum(n) FILTER (WHERE severity = 4), 0) AS n4,"
	" coalesce(sum(n) FILTER (WHERE severity = 5), 0) AS n5"
	" FROM vuln_delta GROUP BY image_id HAVING bool_or(n <> 0)) d"
	" WHERE i.image_id = d.image_id",
};

int advdb_match_advisories(advdb_t *db, int max, advdb_match_counts_t *c, char *err, size_t errlen)
{
	char *ids = NULL;
	int n = pass_begin(db,
			   "SELECT count(*), coalesce(array_agg(advisory_id), '{}')::text FROM ("
			   "SELECT advisory_id FROM vuln_advisory_queue ORDER BY queued_at,"
			   " advisory_id LIMIT $1) s",
			   max, &ids, err, errlen);
	const char *vals[] = {ids};
	PGresult *r = NULL;
	for (size_t i = 0; n > 0 && i < sizeof(ADVISORY_SQL) / sizeof(ADVISORY_SQL[0]); i++)
		if (exec(db, ADVISORY_SQL[i], err, errlen) != 0)
			n = -1;
	if (n > 0) {
		r = query(db, ADVISORY_CANDIDATES_SQL, 1, vals, PGRES_TUPLES_OK, err, errlen);
		if (!r || write_matches(db, r, "vuln_stage", c, err, errlen) != 0)
			n = -1;
		PQclear(r);
		r = NULL;
	}
	if (n > 0 && (exec(db, "SET LOCAL enable_nestloop = on", err, errlen) != 0 ||
		      exec(db, ADVISORY_APPLY_SQL[0], err, errlen) != 0))
		n = -1;
	if (n > 0) {
		r = query(db, ADVISORY_REMOVE_SQL, 1, vals, PGRES_TUPLES_OK, err, errlen);
		for (int i = 0; r && i < PQntuples(r); i++)
			c->removed += atoll(PQgetvalue(r, i, 0));
		if (!r)
			n = -1;
		PQclear(r);
		r = NULL;
	}
	for (size_t i = 1; n > 0 && i < sizeof(ADVISORY_APPLY_SQL) / sizeof(ADVISORY_APPLY_SQL[0]);
	     i++)
		if (exec(db, ADVISORY_APPLY_SQL[i], err, errlen) != 0)
			n = -1;
	if (n > 0 && !(r = query(db, "DELETE FROM vuln_advisory_queue WHERE advisory_id = ANY($1)",
				 1, vals, PGRES_COMMAND_OK, err, errlen)))
		n = -1;
	PQclear(r);
	free(ids);
	if (n < 0 || pass_commit(db, err, errlen) != 0) {
		pass_abort(db);
		return -1;
	}
	c->advisories += n;
	return n;
}

int advdb_match_analyze(advdb_t *db, char *err, size_t errlen)
{
	return exec(db, "ANALYZE images, vuln_matches", err, errlen);
}

long long advdb_vuln_findings(advdb_t *db, int min_severity, const char *rule, char *err,
			      size_t errlen)
{
	char sev[8];
	snprintf(sev, sizeof(sev), "%d", min_severity);
	const char *vals[] = {sev, rule};
	if (exec(db, "BEGIN", err, errlen) != 0)
		return -1;
	db->committed = false;
	PGresult *r = NULL;
	long long n = -1;
	if (exec(db, MATCH_LOCK, err, errlen) == 0 &&
	    (r = query(db, "SELECT vigil_vuln_findings($1::smallint, $2)", 2, vals, PGRES_TUPLES_OK,
		       err, errlen)))
		n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (n < 0 || pass_commit(db, err, errlen) != 0) {
		pass_abort(db);
		return -1;
	}
	return n;
}

int advdb_wait(advdb_t *db, long long ms, int stop_fd)
{
	struct pollfd p[2] = {{.fd = PQsocket(db->pg), .events = POLLIN},
			      {.fd = stop_fd, .events = POLLIN}};
	if (p[0].fd < 0)
		return ADVDB_WAIT_LOST;
	bool notified = false;
	for (;;) {
		PGnotify *nt;
		while ((nt = PQnotifies(db->pg)) != NULL) {
			notified = true;
			PQfreemem(nt);
		}
		if (notified)
			return ADVDB_WAIT_NOTIFIED;
		int r = poll(p, 2, ms > INT_MAX ? INT_MAX : (int)ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? ADVDB_WAIT_TIMEOUT : ADVDB_WAIT_LOST;
		if (p[1].revents)
			return ADVDB_WAIT_STOP;
		if (!PQconsumeInput(db->pg))
			return ADVDB_WAIT_LOST;
		ms = 0; /* what arrived is read; a notification returns above */
	}
}
