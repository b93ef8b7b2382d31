// SPDX-License-Identifier: Apache-2.0
/* The agent's /proc scan against a made-up proc tree: processes that
 * vanish in the middle of the scan and entries that cannot be read are
 * skipped, the rest is found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hostinfo.h"
#include "inventory.h"
#include "settings.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static char root[64];

static void put(const char *rel, const char *text, size_t len)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static void dir(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void ns_links(int pid, unsigned base)
{
	static const char *const ns[] = {"pid", "net", "ipc", "uts", "user", "cgroup"};
	char p[512], target[64], rel[32];
	snprintf(rel, sizeof(rel), "%d/ns", pid);
	dir(rel);
	for (int i = 0; i < 6; i++) {
		snprintf(p, sizeof(p), "%s/%d/ns/%s", root, pid, ns[i]);
		snprintf(target, sizeof(target), "%s:[%u]", ns[i], base + (unsigned)i);
		assert_int_equal(symlink(target, p), 0);
	}
}

static void process_pp(int pid, const char *cgroup, bool with_stat, int ppid);

static void process(int pid, const char *cgroup, bool with_stat)
{
	process_pp(pid, cgroup, with_stat, 1);
}

static unsigned long next_start = 12345; /* the start time process_pp writes */

static void process_pp(int pid, const char *cgroup, bool with_stat, int ppid)
{
	char p[64], stat[256];
	snprintf(p, sizeof(p), "%d", pid);
	dir(p);
	if (cgroup) {
		snprintf(p, sizeof(p), "%d/cgroup", pid);
		put(p, cgroup, strlen(cgroup));
	}
	if (with_stat) {
		int n = snprintf(
			stat, sizeof(stat),
			"%d (sh) S %d %d %d 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 %lu "
			"1000000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0\n",
			pid, ppid, pid, pid, next_start);
		snprintf(p, sizeof(p), "%d/stat", pid);
		put(p, stat, (size_t)n);
		snprintf(p, sizeof(p), "%d/status", pid);
		static const char status[] =
			"Name:\tsh\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"
			"CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n";
		put(p, status, sizeof(status) - 1);
		snprintf(p, sizeof(p), "%d/cmdline", pid);
		put(p, "sh\0-c\0sleep 9\0", 14);
		ns_links(pid, 4026532000u + (unsigned)pid * 10);
	}
}

static void test_scan_skips_vanished_and_unreadable(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/vigil-proc-XXXXXX");
	assert_non_null(mkdtemp(root));
	static const char stat[] = "cpu  1 2 3 4\nintr 1 2 3\nbtime 1700000000\n";
	put("stat", stat, sizeof(stat) - 1);
	process(1, "0::/init.scope\n", true);
	/* a container process */
	process(100, "0::/system.slice/docker-" ID ".scope\n", true);
	/* its cgroup was read, then it exited before its stat was */
	process(101, "0::/system.slice/docker-" ID2 ".scope\n", false);
	/* entries that cannot be read: cgroup is a directory, or missing */
	process(102, NULL, false);
	dir("102/cgroup");
	process(103, NULL, false);
	/* garbage where the cgroup file should be */
	process(104, "\xff\xfe not a cgroup line", false);

	settings_t s;
	memset(&s, 0, sizeof(s));
	char err[256];
	assert_int_equal(cfg_defaults(settings_table, &s, err, sizeof(err)), 0);
	assert_int_equal(cfg_set(settings_table, &s, "proc_root", root, err, sizeof(err)), 0);
	assert_int_equal(
		cfg_set(settings_table, &s, "oci_state_dirs", "/nonexistent", err, sizeof(err)), 0);
	assert_int_equal(
		cfg_set(settings_table, &s, "containerd_dirs", "/nonexistent", err, sizeof(err)),
		0);
	hostinfo_t host;
	memset(&host, 0, sizeof(host));
	snprintf(host.hostname, sizeof(host.hostname), "test-node");
	inventory_t *inv = inventory_new(&s, &host, NULL, NULL);
	assert_non_null(inv);
	assert_int_equal(inventory_scan(inv), 1);
	assert_int_equal(inventory_count(inv), 1);
	bool known = false;
	const char *id = inventory_container_of(inv, 100, &known);
	assert_true(known);
	assert_string_equal(id, ID);
	inventory_free(inv);
	cfg_free(settings_table, &s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

static Vigil__V1__Container *snap; /* the last snapshot's first container */

static void keep_snapshot(void *arg, const Vigil__V1__Event *ev)
{
	(void)arg;
	if (ev->body_case != VIGIL__V1__EVENT__BODY_INVENTORY || !ev->inventory->n_containers)
		return;
	uint8_t buf[65536];
	size_t n = vigil__v1__container__pack(ev->inventory->containers[0], buf);
	if (snap)
		vigil__v1__container__free_unpacked(snap, NULL);
	snap = vigil__v1__container__unpack(NULL, n, buf);
}

/* A made-up node: a container (init 100, ppid 1) with a child, an exec
 * session (120, started by 50 outside the container) and its child, its
 * status, mountinfo and a pure v2 cgroup tree with limits. */
static void make_fact_tree(settings_t *s)
{
	snprintf(root, sizeof(root), "/tmp/vigil-proc-XXXXXX");
	assert_non_null(mkdtemp(root));
	static const char stat[] = "cpu  1 2 3 4\nbtime 1700000000\n";
	put("stat", stat, sizeof(stat) - 1);
	const char *cg = "0::/system.slice/docker-" ID ".scope\n";
	process(1, "0::/init.scope\n", true);
	process_pp(50, "0::/system.slice/runc.scope\n", true, 1); /* runc exec, outside */
	process_pp(100, cg, true, 1);				  /* the container's init */
	process_pp(110, cg, true, 100);
	process_pp(120, cg, true, 50);
	process_pp(121, cg, true, 110);
	static const char st100[] = "Name:\tsh\nPPid:\t1\nUid:\t0\t0\t0\t0\nNoNewPrivs:\t1\n"
				    "Seccomp:\t2\nSeccomp_filters:\t1\n"
				    "CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n";
	put("100/status", st100, sizeof(st100) - 1);
	static const char mi[] = "1 0 0:1 / / rw master:3 - overlay overlay rw,upperdir=/u/diff\n";
	put("100/mountinfo", mi, sizeof(mi) - 1);
	/* a pure v2 cgroup tree with limits */
	dir("cg");
	put("cg/cgroup.controllers", "cpu memory pids\n", 16);
	dir("cg/system.slice");
	dir("cg/system.slice/docker-" ID ".scope");
	put("cg/system.slice/docker-" ID ".scope/memory.max", "536870912\n", 10);
	put("cg/system.slice/docker-" ID ".scope/pids.max", "max\n", 4);
	put("cg/system.slice/docker-" ID ".scope/cpu.max", "50000 100000\n", 13);

	memset(s, 0, sizeof(*s));
	char err[256], cgroot[128];
	assert_int_equal(cfg_defaults(settings_table, s, err, sizeof(err)), 0);
	assert_int_equal(cfg_set(settings_table, s, "proc_root", root, err, sizeof(err)), 0);
	snprintf(cgroot, sizeof(cgroot), "%s/cg", root);
	assert_int_equal(cfg_set(settings_table, s, "cgroup_root", cgroot, err, sizeof(err)), 0);
	assert_int_equal(
		cfg_set(settings_table, s, "oci_state_dirs", "/nonexistent", err, sizeof(err)), 0);
	assert_int_equal(
		cfg_set(settings_table, s, "containerd_dirs", "/nonexistent", err, sizeof(err)), 0);
}

static void test_facts_exec_origin_and_uids(void **state)
{
	(void)state;
	settings_t s;
	make_fact_tree(&s);
	hostinfo_t host;
	memset(&host, 0, sizeof(host));
	inventory_t *inv = inventory_new(&s, &host, keep_snapshot, NULL);
	assert_non_null(inv);
	assert_int_equal(inventory_scan(inv), 1);
	inventory_snapshot(inv, 1 << 20);
	assert_non_null(snap);
	assert_int_equal(snap->init_pid, 100);
	assert_int_equal(snap->no_new_privs, VIGIL__V1__TRISTATE__TRISTATE_TRUE);
	assert_int_equal(snap->seccomp_mode, VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_FILTER);
	assert_int_equal(snap->seccomp_filters, 1);
	assert_non_null(snap->memory_limit);
	assert_int_equal(snap->memory_limit->value, 536870912);
	assert_true(snap->pids_limit->unlimited);
	assert_int_equal(snap->cpu_limit->quota_us, 50000);
	assert_string_equal(snap->rootfs_propagation, "slave");
	/* other namespaces than the host's (init is pid 1 here) */
	assert_int_equal(snap->host_user, VIGIL__V1__TRISTATE__TRISTATE_FALSE);
	assert_int_equal(snap->host_cgroup, VIGIL__V1__TRISTATE__TRISTATE_FALSE);
	assert_string_equal(snap->found_by, "cgroup");
	/* no LSM label file: unknown; no API or bundle: the kernel's mounts */
	bool mac_unknown = false, mounts_unknown = false, priv_unknown = false;
	for (size_t i = 0; i < snap->n_unknown_facts; i++) {
		mac_unknown |= strcmp(snap->unknown_facts[i], "mac_label") == 0;
		mounts_unknown |= strcmp(snap->unknown_facts[i], "mounts") == 0;
		priv_unknown |= strcmp(snap->unknown_facts[i], "privileged") == 0;
	}
	assert_true(mac_unknown);
	assert_false(mounts_unknown);
	assert_false(priv_unknown); /* from the capabilities */
	assert_string_equal(inventory_upperdir(inv, ID), "/u/diff");

	bool known;
	assert_non_null(inventory_container_of(inv, 110, &known));
	assert_true(known);
	assert_int_equal(inventory_exec_session(inv, 100, 1, ID, true),
			 VIGIL__V1__TRISTATE__TRISTATE_FALSE);
	assert_int_equal(inventory_exec_session(inv, 110, 100, ID, true),
			 VIGIL__V1__TRISTATE__TRISTATE_FALSE);
	assert_int_equal(inventory_exec_session(inv, 120, 50, ID, true),
			 VIGIL__V1__TRISTATE__TRISTATE_TRUE);
	/* a child of the exec session, by fork event or by its ancestors */
	inventory_note_fork(inv, 120, 130);
	assert_int_equal(inventory_exec_session(inv, 130, 120, ID, true),
			 VIGIL__V1__TRISTATE__TRISTATE_TRUE);
	assert_int_equal(inventory_exec_session(inv, 121, 110, ID, true),
			 VIGIL__V1__TRISTATE__TRISTATE_FALSE);
	/* a container not in the inventory yet cannot tell its init from an exec */
	assert_int_equal(inventory_exec_session(inv, 120, 50, ID2, false),
			 VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN);

	/* uid changes: only from a known non-root real uid to root */
	uint32_t or, oe;
	assert_false(inventory_note_uid_change(inv, 130, 0, 0, & or, &oe)); /* nothing known */
	inventory_note_uids(inv, 130, 1000, 0); /* a setuid-root binary */
	assert_true(inventory_note_uid_change(inv, 130, 0, 0, & or, &oe));
	assert_int_equal(or, 1000);
	assert_int_equal(oe, 0);
	assert_false(inventory_note_uid_change(inv, 130, 0, 0, & or, &oe)); /* root already */
	inventory_note_uids(inv, 121, 1000, 1000);
	assert_false(inventory_note_uid_change(inv, 121, 1000, 1001, & or, &oe));
	assert_true(inventory_note_uid_change(inv, 121, 1000, 0, & or, &oe));
	assert_false(inventory_note_uid_change(inv, 999, 0, 0, & or, &oe));

	vigil__v1__container__free_unpacked(snap, NULL);
	snap = NULL;
	inventory_free(inv);
	cfg_free(settings_table, &s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

/* Pids wrap (pid_max 32768 is common): a process that the runtime exec'd
 * into the container long after it started can have a lower pid than the
 * container's init. Init is the one started first, not the lowest pid. */
static void test_init_is_the_first_started_not_the_lowest_pid(void **state)
{
	(void)state;
	settings_t s;
	make_fact_tree(&s); /* init 100 and an exec session 120, started alike */
	const char *cg = "0::/system.slice/docker-" ID ".scope\n";
	next_start = 1000;
	process_pp(30000, "0::/system.slice/docker-" ID2 ".scope\n", true, 1); /* its init */
	next_start = 5000;
	process_pp(200, "0::/system.slice/docker-" ID2 ".scope\n", true, 50); /* exec'd later */
	next_start = 20000;
	process_pp(90, cg, true, 50); /* exec'd later into the first one too */
	next_start = 12345;
	hostinfo_t host;
	memset(&host, 0, sizeof(host));
	inventory_t *inv = inventory_new(&s, &host, NULL, NULL);
	assert_non_null(inv);
	assert_int_equal(inventory_scan(inv), 2);
	/* an exec session is a process whose parent is outside and that is not init */
	assert_int_equal(inventory_exec_session(inv, 200, 50, ID2, true),
			 VIGIL__V1__TRISTATE__TRISTATE_TRUE);
	assert_int_equal(inventory_exec_session(inv, 30000, 1, ID2, true),
			 VIGIL__V1__TRISTATE__TRISTATE_FALSE);
	/* same start time: the lower pid, as before (100, not 120) */
	assert_int_equal(inventory_exec_session(inv, 120, 50, ID, true),
			 VIGIL__V1__TRISTATE__TRISTATE_TRUE);
	assert_int_equal(inventory_exec_session(inv, 100, 1, ID, true),
			 VIGIL__V1__TRISTATE__TRISTATE_FALSE);
	/* and 90, lower but started later, is an exec session too */
	assert_int_equal(inventory_exec_session(inv, 90, 50, ID, true),
			 VIGIL__V1__TRISTATE__TRISTATE_TRUE);
	/* an exit of the exec'd process is no exit of the container */
	assert_false(inventory_note_exit(inv, 200, 0));
	assert_true(inventory_note_exit(inv, 30000, 3 << 8));
	inventory_free(inv);
	cfg_free(settings_table, &s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_skips_vanished_and_unreadable),
		cmocka_unit_test(test_facts_exec_origin_and_uids),
		cmocka_unit_test(test_init_is_the_first_started_not_the_lowest_pid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
