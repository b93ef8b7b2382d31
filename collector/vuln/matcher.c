// SPDX-License-Identifier: Apache-2.0
/* The matcher thread and its passes (see matcher.h). */
#include "vuln/matcher.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ERR_LEN 512
#define RETRY_MAX_MS 30000

int vuln_match_queued(advdb_t *db, advdb_match_counts_t *c, char *err, size_t errlen)
{
	int n;
	long long before = c->images;
	while ((n = advdb_match_images(db, VULN_IMAGES_PER_PASS, c, err, errlen)) > 0)
		;
	if (n < 0)
		return -1;
	if (c->images - before >= VULN_ANALYZE_IMAGES && advdb_match_analyze(db, err, errlen) != 0)
		return -1;
	while ((n = advdb_match_advisories(db, VULN_ADVISORIES_PER_PASS, c, err, errlen)) > 0)
		;
	return n < 0 ? -1 : 0;
}

void vuln_match_summary(const advdb_match_counts_t *c, char *out, size_t outlen)
{
	snprintf(out, outlen,
		 "matched %lld new images and %lld advisories: %lld candidate pairs, %lld "
		 "matches written, %lld removed",
		 c->images, c->advisories, c->candidates, c->matches, c->removed);
	if (c->bad) {
		size_t l = strlen(out);
		snprintf(out + l, outlen - l, "; %lld pairs passed over (a version does not parse)",
			 c->bad);
	}
}

struct vuln_matcher {
	vuln_matcher_cfg_t cfg;
	char *conninfo;
	pthread_t thread;
	int stop_pipe[2];
};

static void logf_(const vuln_matcher_t *m, vuln_log_level_t lvl, const char *what,
		  const char *detail)
{
	char line[ERR_LEN + 128];
	snprintf(line, sizeof(line), "vuln matcher: %s%s%s", what, detail ? ": " : "",
		 detail ? detail : "");
	if (m->cfg.log)
		m->cfg.log(lvl, line);
}

/* One round: what is queued, then the findings. Return 0 or -1 (err). */
static int round_(vuln_matcher_t *m, advdb_t *db, char *err, size_t errlen)
{
	advdb_match_counts_t c = {0};
	if (vuln_match_queued(db, &c, err, errlen) != 0)
		return -1;
	if (c.images || c.advisories) {
		char line[ERR_LEN];
		vuln_match_summary(&c, line, sizeof(line));
		logf_(m, VULN_LOG_INFO, line, NULL);
	}
	long long f = advdb_vuln_findings(db, m->cfg.min_severity, VULN_FINDING_RULE, err, errlen);
	return f < 0 ? -1 : 0;
}

/* Wait up to wait_ms; true when told to stop. */
static bool stopped(vuln_matcher_t *m, int64_t wait_ms)
{
	struct pollfd p = {.fd = m->stop_pipe[0], .events = POLLIN};
	return poll(&p, 1, (int)wait_ms) > 0;
}

static void *run(void *arg)
{
	vuln_matcher_t *m = arg;
	advdb_t *db = NULL;
	char err[ERR_LEN];
	int64_t backoff = 500;
	bool warned = false;
	for (;;) {
		if (!db && !(db = advdb_match_open(m->conninfo, 1, err, sizeof(err)))) {
			if (!warned)
				logf_(m, VULN_LOG_WARN, "cannot connect; retrying", err);
			warned = true;
			if (stopped(m, backoff))
				break;
			backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
			continue;
		}
		if (round_(m, db, err, sizeof(err)) != 0) {
			logf_(m, VULN_LOG_WARN, "pass failed; retrying", err);
			advdb_free(db);
			db = NULL;
			if (stopped(m, backoff))
				break;
			backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
			continue;
		}
		if (warned)
			logf_(m, VULN_LOG_INFO, "connected", NULL);
		warned = false;
		backoff = 500;
		int w = advdb_wait(db, m->cfg.interval_ms, m->stop_pipe[0]);
		if (w == ADVDB_WAIT_STOP)
			break;
		if (w == ADVDB_WAIT_LOST) {
			advdb_free(db);
			db = NULL;
		}
	}
	advdb_free(db);
	return NULL;
}

vuln_matcher_t *vuln_matcher_start(const vuln_matcher_cfg_t *cfg, char *err, size_t errlen)
{
	vuln_matcher_t *m = calloc(1, sizeof(*m));
	if (!m || !(m->conninfo = strdup(cfg->conninfo))) {
		free(m);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->cfg = *cfg;
	m->cfg.conninfo = m->conninfo;
	if (pipe2(m->stop_pipe, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "cannot make a pipe");
		free(m->conninfo);
		free(m);
		return NULL;
	}
	if (pthread_create(&m->thread, NULL, run, m) != 0) {
		snprintf(err, errlen, "cannot start the thread");
		close(m->stop_pipe[0]);
		close(m->stop_pipe[1]);
		free(m->conninfo);
		free(m);
		return NULL;
	}
	return m;
}

void vuln_matcher_free(vuln_matcher_t *m)
{
	if (!m)
		return;
	if (write(m->stop_pipe[1], "x", 1) != 1) {
		/* the thread reads none; a full pipe already says stop */
	}
	pthread_join(m->thread, NULL);
	close(m->stop_pipe[0]);
	close(m->stop_pipe[1]);
	free(m->conninfo);
	free(m);
}
