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
	static const char *const ns[] = {"pid", "net", "ipc", "uts"};
	char p[512], target[64], rel[32];
	snprintf(rel, sizeof(rel), "%d/ns", pid);
	dir(rel);
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%d/ns/%s", root, pid, ns[i]);
		snprintf(target, sizeof(target), "%s:[%u]", ns[i], base + (unsigned)i);
		assert_int_equal(symlink(target, p), 0);
	}
}

static void process(int pid, const char *cgroup, bool with_stat)
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
			"%d (sh) S 1 %d %d 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 "
			"1000000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0\n",
			pid, pid, pid);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_skips_vanished_and_unreadable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
