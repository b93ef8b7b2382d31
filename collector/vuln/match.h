// SPDX-License-Identifier: Apache-2.0
/*
 * The version test of the matcher: does an installed package version fall
 * in an advisory's affected interval? Pure code on strings (vuln/version.h
 * compares), so the matcher, the unit tests and a fuzzer call it directly.
 *
 * An interval is [introduced, fixed), or [introduced, last_affected] when
 * there is no fixed version, or [introduced, every later version) when
 * there is neither; introduced NULL (or OSV's "0") is the first version.
 */
#ifndef VIGIL_VULN_MATCH_H
#define VIGIL_VULN_MATCH_H

#include <stdbool.h>

#include "vuln/version.h"

typedef enum {
	MATCH_NO = 0,
	MATCH_AFFECTED = 1,
	MATCH_BAD_VERSION = -1, /* a version does not parse by the ecosystem's rules */
} match_rc_t;

/* The version rules of an image's os-release ID ("debian", "ubuntu":
 * dpkg; "alpine": apk). Return false for a system without advisories. */
bool match_eco(const char *distro, version_eco_t *eco);

/* Decide whether installed is in the interval. */
match_rc_t match_affected(version_eco_t eco, const char *installed, const char *introduced,
			  const char *fixed, const char *last_affected);

#endif
