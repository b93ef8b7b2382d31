// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target: version comparison by ecosystem
 * (collector/vuln/version.c). The first byte picks the ecosystem; the rest
 * is split at NUL bytes into three versions a, b, c. Checks that parsing
 * and comparing agree, that a version equals itself, that comparison is
 * antisymmetric, and that it is transitive on a, b, c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vuln/version.h"

static int cmp(version_eco_t eco, const char *a, const char *b)
{
	int r = 99;
	version_rc_t rc = version_cmp(eco, a, b, &r);
	if (rc != VERSION_OK)
		abort();
	if (r < -1 || r > 1)
		abort();
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	version_eco_t eco = (version_eco_t)(data[0] % 3);
	char *s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	const char *v[3] = {"", "", ""};
	size_t nv = 0;
	for (char *p = s; p < s + size && nv < 3; p += strlen(p) + 1)
		v[nv++] = p;

	int ok[3];
	for (int i = 0; i < 3; i++) {
		ok[i] = version_check(eco, v[i]) == NULL;
		int r = 99;
		version_rc_t rc = version_cmp(eco, v[i], "1", &r);
		if (ok[i] != (rc == VERSION_OK))
			abort();
		if (ok[i] && cmp(eco, v[i], v[i]) != 0)
			abort();
	}
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			if (!ok[i] || !ok[j]) {
				int r = 99;
				if (version_cmp(eco, v[i], v[j], &r) == VERSION_OK || r != 99)
					abort();
				continue;
			}
			if (cmp(eco, v[i], v[j]) != -cmp(eco, v[j], v[i]))
				abort();
		}
	if (ok[0] && ok[1] && ok[2]) {
		int ab = cmp(eco, v[0], v[1]), bc = cmp(eco, v[1], v[2]);
		int ac = cmp(eco, v[0], v[2]);
		if (ab <= 0 && bc <= 0 && ac > 0)
			abort();
		if (ab >= 0 && bc >= 0 && ac < 0)
			abort();
		if (ab == 0 && bc == 0 && ac != 0)
			abort();
	}
	free(s);
	return 0;
}
