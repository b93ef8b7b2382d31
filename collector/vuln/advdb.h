/*
 * Storing advisories (schema/0009_advisories.sql): one import is one
 * transaction. Advisories are staged with COPY into a temporary table as
 * they are read, then merged: an id not stored yet is new, one whose
 * content hash is unchanged is left alone, one whose hash changed has its
 * row and its affected ranges replaced. Nothing is written if the import
 * fails: advdb_free rolls back what was not committed. Blocking libpq: for
 * the command line, never on an event loop.
 */
#ifndef VIGIL_VULN_ADVDB_H
#define VIGIL_VULN_ADVDB_H

#include <stddef.h>

#include "vuln/osv.h"

typedef struct advdb advdb_t;

typedef struct {
	long long fresh, changed, unchanged; /* distinct ids */
	long long ranges;		     /* affected ranges written */
	long long repeated;		     /* ids read more than once (the last kept) */
} advdb_counts_t;

/* Connect to conninfo, begin the import's transaction (serialised with
 * other imports) and start staging. Return NULL with err set. */
advdb_t *advdb_begin(const char *conninfo, char *err, size_t errlen);

/* Stage one advisory read from source ("FILE" or "FILE (member M)").
 * Return 0, or -1 with err set. */
int advdb_add(advdb_t *db, const osv_advisory_t *adv, const char *source, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Merge what was staged, fill counts and commit. Return 0, or -1 with err
 * set (nothing committed). */
int advdb_commit(advdb_t *db, advdb_counts_t *counts, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Roll back anything not committed and close. Accepts NULL. */
void advdb_free(advdb_t *db);

#endif
