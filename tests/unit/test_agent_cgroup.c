// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for agent/cgroup.c and agent/text.c: /proc/PID/cgroup lines ->
 * container id and runtime, for cgroup v1, v2 and hybrid layouts and every
 * naming scheme; capped and repaired strings. Table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup.h"
#include "text.h"
#include "vtime.h"
#include "vigil/v1/events.pb-c.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

struct cg_case {
	const char *what;
	const char *text;
	bool found;
	const char *id;
	int runtime;
};

static const struct cg_case cg_cases[] = {
	{"v2 docker systemd scope", "0::/system.slice/docker-" ID ".scope\n", true, ID,
	 VIGIL__V1__RUNTIME__RUNTIME_DOCKER},
	{"v2 podman libpod scope", "0::/machine.slice/libpod-" ID ".scope\n", true, ID,
	 VIGIL__V1__RUNTIME__RUNTIME_PODMAN},
	{"v2 podman scope with a child cgroup", "0::/machine.slice/libpod-" ID ".scope/container\n",
	 true, ID, VIGIL__V1__RUNTIME__RUNTIME_PODMAN},
	{"v1 podman cgroupfs",
	 "4:memory:/libpod_parent/libpod-" ID "\n1:cpu:/libpod_parent/libpod-" ID "\n", true, ID,
	 VIGIL__V1__RUNTIME__RUNTIME_PODMAN},
	{"conmon is not the container", "0::/machine.slice/libpod-conmon-" ID ".scope\n", false, "",
	 0},
	{"containerd CRI scope",
	 "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/"
	 "cri-containerd-" ID ".scope\n",
	 true, ID, VIGIL__V1__RUNTIME__RUNTIME_CONTAINERD},
	{"cri-o scope", "0::/kubepods.slice/kubepods-pod1.slice/crio-" ID ".scope\n", true, ID,
	 VIGIL__V1__RUNTIME__RUNTIME_CRIO},
	{"cri-o conmon is not the container", "0::/kubepods.slice/crio-conmon-" ID ".scope\n",
	 false, "", 0},
	{"docker cgroupfs v1", "12:pids:/docker/" ID "\n11:memory:/docker/" ID "\n", true, ID,
	 VIGIL__V1__RUNTIME__RUNTIME_DOCKER},
	{"kubepods cgroupfs: runtime not telling", "3:cpu:/kubepods/besteffort/pod1234/" ID "\n",
	 true, ID, VIGIL__V1__RUNTIME__RUNTIME_UNKNOWN},
	{"plain runc path ending in the id (hybrid)",
	 "9:name=systemd:/" ID "\n4:memory:/" ID "\n0::/" ID "\n", true, ID,
	 VIGIL__V1__RUNTIME__RUNTIME_RUNC},
	{"innermost container wins", "0::/docker/" ID "/docker/" ID2 "\n", true, ID2,
	 VIGIL__V1__RUNTIME__RUNTIME_DOCKER},
	{"v2 line wins over v1", "4:memory:/docker/" ID "\n0::/libpod-" ID2 ".scope\n", true, ID2,
	 VIGIL__V1__RUNTIME__RUNTIME_PODMAN},
	{"host process", "0::/user.slice/user-0.slice/session-1.scope\n", false, "", 0},
	{"host in hybrid mode with a 32-hex name",
	 "4:memory:/process_api/345942edb86be32d84cc097a3f0f4533\n0::/\n", false, "", 0},
	{"uppercase hex is not an id",
	 "0::/docker-0123456789ABCDEF0123456789abcdef0123456789abcdef"
	 "0123456789abcdef.scope\n",
	 false, "", 0},
	{"63 digits",
	 "0::/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", false, "",
	 0},
	{"no trailing newline", "0::/docker-" ID ".scope", true, ID,
	 VIGIL__V1__RUNTIME__RUNTIME_DOCKER},
	{"garbage", "::::\n\n:\n0:", false, "", 0},
	{"empty", "", false, "", 0},
};

static void test_cgroup_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cg_cases) / sizeof(cg_cases[0]); i++) {
		const struct cg_case *c = &cg_cases[i];
		cgroup_match_t m;
		memset(&m, 0, sizeof(m));
		bool found = cgroup_parse(c->text, strlen(c->text), &m);
		if (found != c->found)
			fail_msg("%s: found %d, want %d", c->what, found, c->found);
		if (!found)
			continue;
		if (strcmp(m.id, c->id) != 0)
			fail_msg("%s: id %s", c->what, m.id);
		if (m.runtime != c->runtime)
			fail_msg("%s: runtime %d, want %d", c->what, m.runtime, c->runtime);
	}
}

static void test_text_cap_and_repair(void **state)
{
	(void)state;
	bool trunc = false;
	char *s = text_dup_n("ab\x01\xff"
			     "c",
			     5, 64, &trunc);
	assert_string_equal(s, "ab??c");
	assert_false(trunc);
	free(s);
	/* NUL bytes inside become visible */
	s = text_dup_n("a\0b", 3, 64, &trunc);
	assert_string_equal(s, "a?b");
	free(s);
	/* 1 MiB with invalid bytes: cut with the marker, at most max bytes */
	size_t n = 1024 * 1024;
	char *big = malloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (i % 7 == 0) ? (char)0xfe : 'x';
	s = text_dup_n(big, n, 4096, &trunc);
	assert_true(trunc);
	assert_true(strlen(s) <= 4096);
	size_t l = strlen(s);
	assert_string_equal(s + l - strlen(TEXT_TRUNC_MARKER), TEXT_TRUNC_MARKER);
	assert_non_null(strchr(s, '?'));
	free(s);
	/* a cut never splits a UTF-8 sequence: "é" is 2 bytes */
	for (size_t i = 0; i < n; i += 2) {
		big[i] = (char)0xc3;
		big[i + 1] = (char)0xa9;
	}
	for (size_t max = 32; max < 40; max++) {
		trunc = false;
		s = text_dup_n(big, n, max, &trunc);
		assert_true(trunc);
		assert_null(strchr(s, '?'));
		assert_true(strlen(s) <= max);
		free(s);
	}
	free(big);
	s = text_dup(NULL, NULL);
	assert_string_equal(s, "");
	free(s);
}

static void test_rfc3339(void **state)
{
	(void)state;
	int64_t ns = 0;
	assert_int_equal(vtime_parse_rfc3339("1970-01-01T00:00:01Z", &ns), 0);
	assert_int_equal(ns, 1000000000);
	assert_int_equal(vtime_parse_rfc3339("2024-02-29T12:00:00.5+01:00", &ns), 0);
	assert_int_equal(ns, INT64_C(1709204400500000000));
	assert_int_equal(vtime_parse_rfc3339("2026-11-23T06:19:20.103138939Z", &ns), 0);
	assert_int_equal(ns % 1000000000, 103138939);
	assert_int_equal(vtime_parse_rfc3339("0001-01-01T00:00:00Z", &ns), -1);
	assert_int_equal(vtime_parse_rfc3339("2024-13-01T00:00:00Z", &ns), -1);
	assert_int_equal(vtime_parse_rfc3339("2024-01-01", &ns), -1);
	assert_int_equal(vtime_parse_rfc3339("2024-01-01T00:00:00Zjunk", &ns), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroup_table),
		cmocka_unit_test(test_text_cap_and_repair),
		cmocka_unit_test(test_rfc3339),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
