// SPDX-License-Identifier: Apache-2.0
/*
 * Storing advisories (schema/0009_advisories.sql) and matches
 * (schema/0010_images.sql). One import is one transaction. Advisories are staged with COPY into a temporary table as
 * they are read, then merged: an id not stored yet is new, one whose
 * content hash is unchanged is left alone, one whose hash changed has its
 * row and its affected ranges replaced; new and changed ones are queued for
 * the matcher (vuln_advisory_queue) and channel vigil_vuln is notified.
 * Nothing is written if the import fails: advdb_free rolls back what was
 * not committed. Blocking libpq: for
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

/* ---- matching (schema/0010_images.sql) ----
 * A connection of the matcher: each pass below is one short transaction
 * under the advisory lock 'vigil vuln match', so passes of several
 * collectors and of the import command never interleave. */

typedef struct {
	long long images;     /* new images matched */
	long long advisories; /* queued advisories matched again */
	long long candidates; /* (package, affected range) pairs tested */
	long long matches;    /* matches written */
	long long removed;    /* matches re-matched advisories no longer have */
	long long bad;	      /* pairs passed over: a version does not parse */
} advdb_match_counts_t;

/* Connect to conninfo for matching; with listen, also LISTEN vigil_vuln
 * (advdb_wait). Return NULL with err set. */
advdb_t *advdb_match_open(const char *conninfo, int listen, char *err, size_t errlen);

/* Hold the matching lock for the session until advdb_free: the import
 * takes it before its commit, so that it matches what it queued itself
 * and can say what changed. Return 0, or -1 with err set. */
int advdb_match_hold(advdb_t *db, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Match up to max new images (matched_at IS NULL) against every advisory.
 * Return the number of images taken (0: none left), or -1 with err set. */
int advdb_match_images(advdb_t *db, int max, advdb_match_counts_t *c, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Match up to max queued advisories (vuln_advisory_queue) again against
 * every matched image; only what changed is written. Return the number
 * taken (0: none left), or -1. */
int advdb_match_advisories(advdb_t *db, int max, advdb_match_counts_t *c, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Refresh the statistics of images and vuln_matches, after many images
 * were matched: the advisory passes' plans count on them. Return 0, or -1
 * with err set. */
int advdb_match_analyze(advdb_t *db, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Bring the "vulnerable image running" findings (rule) in line with what
 * runs: vigil_vuln_findings(). Return the findings written, or -1. */
long long advdb_vuln_findings(advdb_t *db, int min_severity, const char *rule, char *err,
			      size_t errlen);

/* Wait up to ms for a notification on vigil_vuln or for stop_fd to become
 * readable. Return ADVDB_WAIT_*. */
enum {
	ADVDB_WAIT_LOST = -1,
	ADVDB_WAIT_TIMEOUT = 0,
	ADVDB_WAIT_NOTIFIED = 1,
	ADVDB_WAIT_STOP = 2
};
int advdb_wait(advdb_t *db, long long ms, int stop_fd);

#endif
