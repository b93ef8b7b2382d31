// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the JSON the agent takes from runtimes — runc/crun
 * state.json, OCI config.json, Docker-API inspect, list and event
 * objects. The first byte picks the parser. Every string that comes out
 * must be valid UTF-8 within the cap.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctr.h"
#include "docker_api.h"
#include "oci.h"
#include "text.h"
#include "utf8.h"

static void check_str(const char *s)
{
	if (s && (!utf8_valid(s, strlen(s)) || strlen(s) > 256))
		abort();
}

static void check(const ctr_t *c)
{
	check_str(c->name);
	check_str(c->image);
	check_str(c->seccomp);
	for (size_t i = 0; i < c->n_labels; i++) {
		check_str(c->labels[i].key);
		check_str(c->labels[i].value);
	}
	for (size_t i = 0; i < c->command.n; i++)
		check_str(c->command.v[i]);
	for (size_t i = 0; i < c->n_mounts; i++)
		check_str(c->mounts[i].source);
}

static void id_cb(void *arg, const char *id)
{
	(void)arg;
	if (strlen(id) != 64)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	text_set_max(256);
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	switch (data[0] % 5) {
	case 0: {
		oci_state_t st;
		oci_parse_state(buf, len, &st);
		oci_parse_crun_status(buf, len, "dir-id", &st);
		break;
	}
	case 1: {
		ctr_t *c = ctr_new("x");
		if (oci_parse_spec(buf, len, c, 8) == 0)
			check(c);
		ctr_free(c);
		break;
	}
	case 2: {
		ctr_t *c = ctr_new("x");
		if (docker_parse_inspect(buf, len, c, 8) == 0)
			check(c);
		ctr_free(c);
		break;
	}
	case 3: {
		docker_parse_list(buf, len, id_cb, NULL);
		ctr_strv_t digests = {0};
		docker_parse_image_digests(buf, len, &digests);
		if (digests.n > 64)
			abort();
		ctr_strv_clear(&digests);
		break;
	}
	default: {
		docker_event_t ev;
		docker_parse_event(buf, len, &ev);
		break;
	}
	}
	return 0;
}
