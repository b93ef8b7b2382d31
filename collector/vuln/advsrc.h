// SPDX-License-Identifier: Apache-2.0
/*
 * Reading advisory documents for an import: a JSON file, a directory
 * (recursively, its *.json files in name order) or an all.zip archive as
 * the OSV databases publish them (its *.json members, read with libzip).
 * Each document is capped at OSV_MAX_BYTES, an archive at
 * ADVSRC_MAX_ARCHIVE_BYTES uncompressed and ADVSRC_MAX_MEMBERS members.
 */
#ifndef VIGIL_VULN_ADVSRC_H
#define VIGIL_VULN_ADVSRC_H

#include <stddef.h>
#include <stdint.h>

#define ADVSRC_MAX_ARCHIVE_BYTES (INT64_C(8) * 1024 * 1024 * 1024)
#define ADVSRC_MAX_MEMBERS 2000000
#define ADVSRC_MAX_DEPTH 16

typedef struct {
	const char *file;   /* the path read */
	const char *member; /* the archive member, NULL for a plain file */
	const char *data;   /* borrowed for the call */
	size_t len;
} advsrc_doc_t;

/* Called for each document; return 0 to go on, -1 to stop. */
typedef int (*advsrc_fn)(void *ctx, const advsrc_doc_t *doc);

typedef struct {
	size_t files;	 /* plain files read */
	size_t archives; /* archives opened */
	size_t members;	 /* archive members read */
	size_t not_json; /* archive members passed over: not *.json */
} advsrc_stats_t;

/* Read every document under path and hand each to fn. Return 0, or -1 with
 * err set ("FILE: why" or "FILE (member M): why"), or -1 as fn returned it
 * (err untouched). */
int advsrc_read(const char *path, advsrc_fn fn, void *ctx, advsrc_stats_t *st, char *err,
		size_t errlen);

/* Copy s into out (outlen > 0) with every byte that is not printable
 * ASCII replaced by '?': file and member names in messages. */
const char *advsrc_printable(const char *s, char *out, size_t outlen);

#endif
