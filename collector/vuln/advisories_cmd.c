// SPDX-License-Identifier: Apache-2.0
/* `vigil-collector advisories import` (see advisories_cmd.h): read each
 * path, parse each document, stage what can be matched, then merge and
 * commit once, and print what was loaded and what was skipped and why.
 * Then match what the import queued (and any image not matched yet)
 * against the fleet's images, and print what changed: a failure there
 * leaves the import in place and the work queued for the collectors'
 * matchers. */
#include "vuln/advisories_cmd.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vuln/advdb.h"
#include "vuln/advsrc.h"
#include "vuln/matcher.h"
#include "vuln/osv.h"

#define ERR_LEN 1024

typedef struct {
	advdb_t *db;
	size_t read;
	size_t skipped[OSV_WHY_COUNT];
	char first_skipped[OSV_WHY_COUNT][300]; /* "FILE: ID" of the first */
	size_t ignored[OSV_WHY_COUNT];
	char err[ERR_LEN];
} import_t;

static void source_name(const advsrc_doc_t *doc, char *out, size_t outlen)
{
	char f[512], m[512];
	if (doc->member)
		snprintf(out, outlen, "%s (member %s)", advsrc_printable(doc->file, f, sizeof(f)),
			 advsrc_printable(doc->member, m, sizeof(m)));
	else
		snprintf(out, outlen, "%s", advsrc_printable(doc->file, f, sizeof(f)));
}

static int on_doc(void *ctx, const advsrc_doc_t *doc)
{
	import_t *im = ctx;
	char source[1100], why[ERR_LEN];
	source_name(doc, source, sizeof(source));
	osv_advisory_t *adv = osv_parse(doc->data, doc->len, why, sizeof(why));
	if (!adv) {
		snprintf(im->err, sizeof(im->err), "%.500s: %.500s", source, why);
		return -1;
	}
	im->read++;
	for (int i = 0; i < OSV_WHY_COUNT; i++)
		im->ignored[i] += adv->ignored[i];
	int rc = 0;
	if (adv->skipped != OSV_WHY_NONE) {
		if (im->skipped[adv->skipped]++ == 0)
			snprintf(im->first_skipped[adv->skipped], sizeof(im->first_skipped[0]),
				 "%.200s: %s", source, adv->id);
	} else if (advdb_add(im->db, adv, source, why, sizeof(why)) != 0) {
		snprintf(im->err, sizeof(im->err), "%.500s: %.500s", source, why);
		rc = -1;
	}
	osv_free(adv);
	return rc;
}

static void report(const import_t *im, const advsrc_stats_t *st, const advdb_counts_t *c)
{
	size_t skipped = 0;
	for (int i = 0; i < OSV_WHY_COUNT; i++)
		skipped += im->skipped[i];
	printf("advisories: %zu read (%zu files, %zu archives with %zu members): %lld new, "
	       "%lld changed, %lld unchanged, %zu skipped; %lld affected ranges written\n",
	       im->read, st->files, st->archives, st->members, c->fresh, c->changed, c->unchanged,
	       skipped, c->ranges);
	for (int i = 0; i < OSV_WHY_COUNT; i++)
		if (im->skipped[i])
			printf("skipped %zu: %s (first: %s)\n", im->skipped[i],
			       osv_why_name((osv_why_t)i), im->first_skipped[i]);
	for (int i = 0; i < OSV_WHY_COUNT; i++)
		if (im->ignored[i])
			printf("ignored %zu affected entries: %s\n", im->ignored[i],
			       osv_why_name((osv_why_t)i));
	if (c->repeated)
		printf("repeated %lld: ids read more than once; the last read was kept\n",
		       c->repeated);
	if (st->not_json)
		printf("passed over %zu archive members: not *.json\n", st->not_json);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Match what the import queued on db (which holds the matching lock). */
static int rematch(advdb_t *db, const char *why)
{
	char err[ERR_LEN], line[ERR_LEN];
	advdb_match_counts_t c = {0};
	double t0 = now_s();
	int rc = db ? vuln_match_queued(db, &c, err, sizeof(err)) : -1;
	if (!db)
		snprintf(err, sizeof(err), "%s", why);
	advdb_free(db);
	if (rc != 0) {
		fprintf(stderr,
			"vigil-collector advisories import: matching: %s (the import is "
			"committed; the collectors' matchers take it up)\n",
			err);
		return 1;
	}
	vuln_match_summary(&c, line, sizeof(line));
	printf("%s in %.2f s\n", line, now_s() - t0);
	return 0;
}

static int import(const char *conninfo, int n_paths, char **paths)
{
	static import_t im; /* large; one import per process */
	memset(&im, 0, sizeof(im));
	advsrc_stats_t st = {0};
	advdb_counts_t counts = {0};
	double t0 = now_s();
	im.db = advdb_begin(conninfo, im.err, sizeof(im.err));
	int rc = im.db ? 0 : -1;
	for (int i = 0; rc == 0 && i < n_paths; i++)
		rc = advsrc_read(paths[i], on_doc, &im, &st, im.err, sizeof(im.err));
	/* the matching lock first: no collector takes up the queue before us */
	advdb_t *mdb = NULL;
	char why[ERR_LEN] = "";
	if (rc == 0 && (!(mdb = advdb_match_open(conninfo, 0, why, sizeof(why))) ||
			advdb_match_hold(mdb, why, sizeof(why)) != 0)) {
		advdb_free(mdb);
		mdb = NULL;
	}
	if (rc == 0)
		rc = advdb_commit(im.db, &counts, im.err, sizeof(im.err));
	advdb_free(im.db);
	if (rc != 0) {
		advdb_free(mdb);
		fprintf(stderr, "vigil-collector advisories import: %s\n", im.err);
		fprintf(stderr, "vigil-collector advisories import: nothing imported (the "
				"import was rolled back)\n");
		return 1;
	}
	report(&im, &st, &counts);
	printf("imported in %.2f s\n", now_s() - t0);
	fflush(stdout);
	return rematch(mdb, why);
}

int advisories_command(const char *conninfo, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[0], "import") == 0)
		return import(conninfo, argc - 1, argv + 1);
	fprintf(stderr, "usage: vigil-collector advisories import PATH... [options]\n"
			"  PATH: an OSV JSON file, a directory of them, or an OSV all.zip\n");
	return 2;
}
