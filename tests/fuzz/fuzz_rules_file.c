// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: rules-file text through rules_parse (libyaml's loader
 * and the checks of every key). A file is either refused with an error
 * that names a line and column, or gives rules that judge a container.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	err[0] = '\0';
	rules_t *r = rules_parse((const char *)data, size, "fuzz", err, sizeof(err));
	if (!r) {
		if (strncmp(err, "fuzz:", 5) != 0)
			abort(); /* every refusal names where */
		return 0;
	}
	Vigil__V1__Container c = VIGIL__V1__CONTAINER__INIT;
	c.id = "c1";
	c.name = "web";
	c.image = "docker.io/library/nginx:latest";
	c.privileged = 1;
	rules_ctx_t ctx = {r, NULL, "agent-1", 0};
	rules_evidence_t ev = {1, 0, 0};
	json_t *ops = json_array();
	if (rules_judge_container(&ctx, &c, &ev, ops) != 0)
		abort();
	json_decref(ops);
	rules_unref(r);
	return 0;
}
