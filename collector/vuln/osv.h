// SPDX-License-Identifier: Apache-2.0
/*
 * The OSV advisory parser (https://ossf.github.io/osv-schema/), for the
 * ecosystems Vigil matches: Debian ("Debian:12"), Ubuntu
 * ("Ubuntu:22.04:LTS", "Ubuntu:Pro:18.04:LTS") and Alpine ("Alpine:v3.19").
 * Pure code on a buffer: no I/O, so the unit tests and a fuzzer call it
 * directly.
 *
 * An advisory becomes one row of facts and the affected version intervals
 * of its packages, each interval [introduced, fixed) or [introduced,
 * last_affected] by the ecosystem's version rules. Every version is checked
 * by vuln/version.h. What cannot be matched (an entry without a package or
 * without an ECOSYSTEM range or versions) is ignored with a reason; an
 * advisory left with nothing is skipped with a reason. What is wrong (bad
 * JSON, a missing or mistyped field, an unknown ecosystem, a version that
 * does not parse) is an error naming the field.
 */
#ifndef VIGIL_VULN_OSV_H
#define VIGIL_VULN_OSV_H

#include <stddef.h>

/* Severity on one scale, whatever the source called it. */
typedef enum {
	OSV_SEV_UNKNOWN = 0,
	OSV_SEV_NEGLIGIBLE,
	OSV_SEV_LOW,
	OSV_SEV_MEDIUM,
	OSV_SEV_HIGH,
	OSV_SEV_CRITICAL,
} osv_severity_t;

/* Largest advisory document read, in bytes. */
#define OSV_MAX_BYTES (4 * 1024 * 1024)

typedef struct {
	const char *ecosystem;	   /* "Debian:12" */
	const char *distro;	   /* os-release ID: "debian", "ubuntu", "alpine" */
	const char *release;	   /* "12", "22.04", "3.19" */
	const char *package;	   /* the source package */
	const char *introduced;	   /* NULL: from the first version */
	const char *fixed;	   /* NULL: no fix */
	const char *last_affected; /* NULL: none named */
	osv_severity_t severity;
} osv_range_t;

/* Why an advisory was skipped or an affected entry ignored. */
typedef enum {
	OSV_WHY_NONE = 0,
	OSV_WHY_NO_AFFECTED,  /* no affected[] entries */
	OSV_WHY_NO_PACKAGE,   /* an entry without package */
	OSV_WHY_NO_RANGE,     /* an entry with neither an ECOSYSTEM range nor versions */
	OSV_WHY_NOTHING_LEFT, /* every entry was ignored */
	OSV_WHY_COUNT,
} osv_why_t;

typedef struct {
	const char *id;
	const char *modified;  /* RFC 3339, as written */
	const char *published; /* NULL if absent */
	const char *withdrawn; /* NULL if absent */
	const char *summary;   /* "" if absent */
	const char **aliases;  /* aliases and upstream ids */
	size_t n_aliases;
	const char **ecosystems; /* distinct, of the ranges kept */
	size_t n_ecosystems;
	osv_severity_t severity; /* the highest named anywhere */
	osv_range_t *ranges;
	size_t n_ranges;
	size_t ignored[OSV_WHY_COUNT]; /* affected entries ignored, by reason */
	osv_why_t skipped;	       /* not OSV_WHY_NONE: nothing to store */
	char sha256[65];	       /* of the canonical JSON: change detection */
	size_t raw_size;
} osv_advisory_t;

/* Parse one advisory of len bytes. Return it (free with osv_free), or
 * NULL with err set to "FIELD: what is wrong" ("affected[0].package.
 * ecosystem: unknown ecosystem 'PyPI' ..."). */
osv_advisory_t *osv_parse(const char *buf, size_t len, char *err, size_t errlen);

void osv_free(osv_advisory_t *adv);

/* "unknown", "negligible", "low", "medium", "high", "critical". */
const char *osv_severity_name(osv_severity_t sev);

/* A reason in words: "no ECOSYSTEM range or versions". */
const char *osv_why_name(osv_why_t why);

#endif
