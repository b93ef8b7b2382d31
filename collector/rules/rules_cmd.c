// SPDX-License-Identifier: Apache-2.0
/* `vigil-collector rules list` and `rules check FILE` (see rules_cmd.h). */
#include "rules/rules_cmd.h"

#include <stdio.h>
#include <string.h>

#include "rules/rules.h"

int rules_cmd_run(int argc, char **argv, const char *rules_file)
{
	char err[1024];
	const char *what = argc > 0 ? argv[0] : "";
	if (!strcmp(what, "check") && argc == 2) {
		rules_t *r = rules_load(argv[1], err, sizeof(err));
		if (!r) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		printf("%s: valid (%zu exceptions, %zu allowed registries)\n", argv[1],
		       rules_exception_count(r), rules_registry_count(r));
		rules_unref(r);
		return 0;
	}
	if (!strcmp(what, "list") && argc == 1) {
		rules_t *r = rules_file && rules_file[0] ? rules_load(rules_file, err, sizeof(err))
							 : rules_new_default();
		if (!r) {
			fprintf(stderr, "%s\n", r ? "out of memory" : err);
			return 1;
		}
		rules_print(r, stdout);
		rules_unref(r);
		return 0;
	}
	fprintf(stderr, "usage: vigil-collector rules list [-c FILE]\n"
			"       vigil-collector rules check RULES-FILE\n");
	return 2;
}
