// SPDX-License-Identifier: Apache-2.0
/*
 * Package version comparison by each ecosystem's own rules: dpkg (Debian,
 * Ubuntu), apk (Alpine) and rpm. Pure code on strings: no I/O, no
 * allocation, bounded work (versions longer than VERSION_MAX_LEN do not
 * parse), so the advisory import, the matcher, the unit tests and the
 * fuzzer call it directly.
 */
#ifndef VIGIL_VULN_VERSION_H
#define VIGIL_VULN_VERSION_H

#include <stddef.h>

/* Longest version string that parses, in bytes. */
#define VERSION_MAX_LEN 256

typedef enum {
	VERSION_DPKG, /* [epoch:]upstream[-revision], Debian policy 5.6.12 */
	VERSION_APK,  /* N[.N]...[a-z][_suffix[N]]...[-rN], Alpine's apk */
	VERSION_RPM,  /* [epoch:]version[-release], rpmvercmp segments */
} version_eco_t;

typedef enum {
	VERSION_OK = 0,
	VERSION_BAD_A = -1, /* a does not parse (b may not either) */
	VERSION_BAD_B = -2, /* a parses, b does not */
} version_rc_t;

/* The name of an ecosystem's version rules ("dpkg", "apk", "rpm"). */
const char *version_eco_name(version_eco_t eco);

/* Check that v is a version by eco's rules. Return NULL if it is, else a
 * static sentence saying what is wrong ("epoch is not a number"). */
const char *version_check(version_eco_t eco, const char *v);

/* Compare a and b by eco's rules and set *result to -1, 0 or 1 (a older,
 * equal, newer). Return VERSION_OK, or VERSION_BAD_A / VERSION_BAD_B when a
 * or b does not parse (*result is then left as it was). */
version_rc_t version_cmp(version_eco_t eco, const char *a, const char *b, int *result)
	__attribute__((warn_unused_result));

#endif
