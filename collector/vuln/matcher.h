// SPDX-License-Identifier: Apache-2.0
/*
 * The matcher: keeps vuln_matches (schema/0010_images.sql) in line with
 * the images and the advisories, incrementally, without asking any node
 * again.
 *
 * Why a thread of its own with its own connection: matching a new image
 * costs a join of its packages with the advisories and thousands of
 * version comparisons; the ingest path must not wait for it. The ingest
 * transaction that stores a new image notifies channel vigil_vuln (at
 * commit), as an import does; the thread LISTENs, wakes, matches what is
 * queued (images with matched_at NULL, vuln_advisory_queue) in short
 * passes, then brings the "vulnerable image running" findings in line with
 * what runs. It also wakes every interval: that catches containers that
 * started or stopped since (findings), and work queued while it was not
 * connected. `advisories import` runs the same passes itself after its
 * commit, so its output says what changed.
 */
#ifndef VIGIL_VULN_MATCHER_H
#define VIGIL_VULN_MATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "vuln/advdb.h"

/* The rule id of "vulnerable image running" findings (the rule catalog
 * has its entry; these findings are raised here, not at ingest). */
#define VULN_FINDING_RULE "vulnerable_image"

/* Images and advisories taken per pass (one short transaction each). */
#define VULN_IMAGES_PER_PASS 32
#define VULN_ADVISORIES_PER_PASS 256

/* New images matched in one go after which the statistics are refreshed
 * (the autovacuum daemon would get there, a minute or so later). */
#define VULN_ANALYZE_IMAGES 1000

/* Match everything queued, in passes. Return 0, or -1 with err set. */
int vuln_match_queued(advdb_t *db, advdb_match_counts_t *c, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* A line of what the matcher did ("matched 3 new images and 12 advisories:
 * 1234 candidate pairs, 56 matches written, 7 removed"). */
void vuln_match_summary(const advdb_match_counts_t *c, char *out, size_t outlen);

typedef enum {
	VULN_LOG_INFO,
	VULN_LOG_WARN,
	VULN_LOG_ERROR
} vuln_log_level_t;

typedef struct {
	const char *conninfo;
	int64_t interval_ms;
	int min_severity; /* 1 info .. 5 critical: findings at or above */
	void (*log)(vuln_log_level_t level, const char *msg); /* any thread */
} vuln_matcher_cfg_t;

typedef struct vuln_matcher vuln_matcher_t;

/* Start the matcher thread (it connects, and reconnects, by itself).
 * Return NULL with err set. */
vuln_matcher_t *vuln_matcher_start(const vuln_matcher_cfg_t *cfg, char *err, size_t errlen);

/* Stop the thread, wait for it and free. Accepts NULL. */
void vuln_matcher_free(vuln_matcher_t *m);

#endif
