// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: /proc/PID/cgroup text, /proc status, stat and cmdline
 * text, and process connector datagrams, through the agent's pure parsers.
 * The first byte picks the parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "ctr.h"
#include "proc_connector.h"
#include "procfs.h"

static void nop_exec(void *arg, uint32_t pid, uint32_t tgid)
{
	(void)arg;
	(void)pid;
	(void)tgid;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0] % 5;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	switch (sel) {
	case 0: {
		cgroup_match_t m;
		if (cgroup_parse(buf, len, &m) && strlen(m.id) != CGROUP_ID_LEN)
			abort();
		break;
	}
	case 1: {
		procfs_status_t st;
		procfs_parse_status(buf, len, &st);
		break;
	}
	case 2: {
		uint64_t start;
		uint32_t ppid;
		char state;
		procfs_parse_stat(buf, len, &start, &ppid, &state);
		uint64_t ino;
		procfs_parse_ns_link(buf, len, &ino);
		break;
	}
	case 3: {
		ctr_strv_t argv = {0};
		bool trunc = false;
		procfs_parse_cmdline(buf, len, 8192, &argv, &trunc);
		size_t total = 0;
		for (size_t i = 0; i < argv.n; i++)
			total += strlen(argv.v[i]) + 1;
		if (total > 8192)
			abort();
		ctr_strv_clear(&argv);
		break;
	}
	default: {
		proc_connector_cbs_t cbs = {NULL, nop_exec, NULL};
		proc_connector_parse((const uint8_t *)buf, len, &cbs, NULL);
		break;
	}
	}
	return 0;
}
