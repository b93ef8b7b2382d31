// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target: the OSV advisory parser (collector/vuln/osv.c) and the
 * matcher's version test (collector/vuln/match.c) on what it keeps. Any
 * bytes: a document parses into an advisory or is refused with a message;
 * a parsed advisory has an id and a severity on the scale, and each range
 * names its ecosystem, distro, release and package with versions that
 * parse by the release's rules, so the version test never meets a version
 * it cannot read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vuln/match.h"
#include "vuln/osv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	err[0] = '\0';
	osv_advisory_t *adv = osv_parse((const char *)data, size, err, sizeof(err));
	if (!adv) {
		if (!err[0] || !memchr(err, '\0', sizeof(err)))
			abort(); /* a refusal always says why */
		return 0;
	}
	if (!adv->id || !adv->id[0] || adv->severity > OSV_SEV_CRITICAL || !adv->modified)
		abort();
	if (adv->skipped == OSV_WHY_NONE && adv->n_ranges == 0)
		abort();
	for (size_t i = 0; i < adv->n_ranges; i++) {
		const osv_range_t *r = &adv->ranges[i];
		version_eco_t eco;
		if (!r->ecosystem || !r->package || !r->release || !match_eco(r->distro, &eco))
			abort();
		const char *v[] = {r->introduced, r->fixed, r->last_affected};
		for (int k = 0; k < 3; k++)
			if (v[k] && strcmp(v[k], "0") != 0 && version_check(eco, v[k]))
				abort();
		/* each bound against the interval itself: a version that parses */
		for (int k = 0; k < 3; k++)
			if (v[k] && strcmp(v[k], "0") != 0 &&
			    match_affected(eco, v[k], r->introduced, r->fixed, r->last_affected) ==
				    MATCH_BAD_VERSION)
				abort();
		if (r->fixed && strcmp(r->fixed, "0") != 0 &&
		    match_affected(eco, r->fixed, r->introduced, r->fixed, NULL) != MATCH_NO)
			abort(); /* the fixed version is never affected */
	}
	osv_free(adv);
	return 0;
}
