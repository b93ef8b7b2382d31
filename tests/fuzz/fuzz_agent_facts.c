// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the parsers behind the agent's security facts
 * (/proc/PID/mountinfo into a container record, cgroup paths and limit
 * files, uid_map, LSM labels, stat's tty, loginuid). The first byte picks
 * the parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "ctr.h"
#include "kfacts.h"
#include "procfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	switch (data[0] % 4) {
	case 0: {
		ctr_t *c = ctr_new("x");
		if (!c)
			return 0;
		kfacts_from_mountinfo(buf, len, c);
		if (c->n_mounts > 1024)
			abort();
		ctr_free(c);
		break;
	}
	case 1: {
		char p[256];
		static const char *const ctl[] = {"", "memory", "pids", "cpu"};
		for (size_t i = 0; i < 4; i++)
			if (cgroup_path_of(buf, len, ctl[i], p, sizeof(p)) &&
			    (p[0] != '/' || strstr(p, "..")))
				abort();
		break;
	}
	case 2: {
		cgroup_limit_t l;
		cgroup_parse_limit(buf, len, &l);
		bool unl;
		uint64_t q, per;
		if (cgroup_parse_cpu_max(buf, len, &unl, &q, &per) == 0 && per == 0)
			abort();
		uint32_t u;
		procfs_parse_u32(buf, len, &u);
		procfs_uid_map_is_host(buf, len);
		break;
	}
	default: {
		char out[64];
		if (procfs_clean_label(buf, len, out, sizeof(out)) >= sizeof(out))
			abort();
		uint32_t tty;
		procfs_parse_stat_tty(buf, len, &tty);
		break;
	}
	}
	return 0;
}
