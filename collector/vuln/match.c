// SPDX-License-Identifier: Apache-2.0
/* The matcher's version test (see match.h). */
#include "vuln/match.h"

#include <string.h>

bool match_eco(const char *distro, version_eco_t *eco)
{
	if (!distro)
		return false;
	if (strcmp(distro, "debian") == 0 || strcmp(distro, "ubuntu") == 0) {
		*eco = VERSION_DPKG;
		return true;
	}
	if (strcmp(distro, "alpine") == 0) {
		*eco = VERSION_APK;
		return true;
	}
	return false;
}

match_rc_t match_affected(version_eco_t eco, const char *installed, const char *introduced,
			  const char *fixed, const char *last_affected)
{
	int c = 0;
	if (introduced && introduced[0] && strcmp(introduced, "0") != 0) {
		if (version_cmp(eco, installed, introduced, &c) != VERSION_OK)
			return MATCH_BAD_VERSION;
		if (c < 0)
			return MATCH_NO;
	}
	if (fixed) {
		if (version_cmp(eco, installed, fixed, &c) != VERSION_OK)
			return MATCH_BAD_VERSION;
		return c < 0 ? MATCH_AFFECTED : MATCH_NO;
	}
	if (last_affected) {
		if (version_cmp(eco, installed, last_affected, &c) != VERSION_OK)
			return MATCH_BAD_VERSION;
		return c <= 0 ? MATCH_AFFECTED : MATCH_NO;
	}
	/* no fix yet: every version from introduced on; installed must still
	 * be a version for the answer to mean anything */
	return version_check(eco, installed) ? MATCH_BAD_VERSION : MATCH_AFFECTED;
}
