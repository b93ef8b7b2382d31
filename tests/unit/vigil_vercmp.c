// SPDX-License-Identifier: Apache-2.0
/*
 * vigil-vercmp: compare versions with collector/vuln/version.c, for the
 * property test against dpkg --compare-versions
 * (tests/integration/test_version_property.py).
 *
 *   vigil-vercmp dpkg|apk|rpm < pairs
 *
 * Each input line is two versions separated by one space; each output line
 * is <, = or >, or "! A|B reason" when a version does not parse.
 */
#include <stdio.h>
#include <string.h>

#include "vuln/version.h"

int main(int argc, char **argv)
{
	version_eco_t eco;
	if (argc == 2 && strcmp(argv[1], "dpkg") == 0)
		eco = VERSION_DPKG;
	else if (argc == 2 && strcmp(argv[1], "apk") == 0)
		eco = VERSION_APK;
	else if (argc == 2 && strcmp(argv[1], "rpm") == 0)
		eco = VERSION_RPM;
	else {
		fprintf(stderr, "usage: vigil-vercmp dpkg|apk|rpm < pairs\n");
		return 2;
	}
	char line[2 * VERSION_MAX_LEN + 16];
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		char *b = strchr(line, ' ');
		if (!b) {
			puts("! line is not two versions");
			continue;
		}
		*b++ = '\0';
		int r = 0;
		version_rc_t rc = version_cmp(eco, line, b, &r);
		if (rc == VERSION_OK)
			puts(r < 0 ? "<" : (r > 0 ? ">" : "="));
		else if (rc == VERSION_BAD_A)
			printf("! A %s\n", version_check(eco, line));
		else
			printf("! B %s\n", version_check(eco, b));
	}
	return 0;
}
