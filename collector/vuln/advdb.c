/*
 * Advisory storage (see advdb.h): the one file of collector/vuln/ that
 * speaks libpq. Rows are staged in COPY text format, one staging table for
 * both kinds: 'a' rows (an advisory) and 'r' rows (one affected range of
 * the advisory staged with the same seq).
 */
#include "vuln/advdb.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

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
