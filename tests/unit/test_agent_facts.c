// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the parsers behind the agent's security facts: the
 * security lines of /proc/PID/status, stat's tty, mountinfo (propagation,
 * overlay upperdir, octal escapes), uid_map, LSM labels, cgroup paths and
 * limits (v1 and v2), crun's status file, OCI devices and propagation, the
 * API's devices, ports, retry count and no-new-privileges, and which facts
 * a container record reports as unknown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup.h"
#include "ctr.h"
#include "docker_api.h"
#include "kfacts.h"
#include "loss.h"
#include "oci.h"
#include "pidmap.h"
#include "procfs.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_status_security(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool have_nnp, nnp, have_sc;
		unsigned sc;
		bool have_f;
		uint32_t filters, ruid, euid;
	} cases[] = {
		{"PPid:\t1\nUid:\t1000\t0\t0\t0\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:"
		 "\t3\n",
		 true, true, true, 2, true, 3, 1000, 0},
		{"PPid:\t1\nUid:\t0\t0\t0\t0\nNoNewPrivs:\t0\nSeccomp:\t0\n", true, false, true, 0,
		 false, 0, 0, 0},
		/* old kernel: none of the lines */
		{"PPid:\t1\nUid:\t5\t6\t6\t6\n", false, false, false, 0, false, 0, 5, 6},
		/* a mode the kernel does not have is not taken */
		{"PPid:\t1\nSeccomp:\t7\nNoNewPrivs:\tx\n", false, false, false, 0, false, 0, 0, 0},
		/* truncated: the value is cut */
		{"PPid:\t1\nSeccomp:", false, false, false, 0, false, 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		procfs_status_t st;
		assert_int_equal(procfs_parse_status(cases[i].text, strlen(cases[i].text), &st), 0);
		assert_int_equal(st.have_nnp, cases[i].have_nnp);
		assert_int_equal(st.no_new_privs, cases[i].nnp);
		assert_int_equal(st.have_seccomp, cases[i].have_sc);
		assert_int_equal(st.seccomp, cases[i].sc);
		assert_int_equal(st.have_filters, cases[i].have_f);
		assert_int_equal(st.seccomp_filters, cases[i].filters);
		assert_int_equal(st.ruid, cases[i].ruid);
		assert_int_equal(st.uid, cases[i].euid);
	}
}

static void test_stat_tty(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int rc;
		uint32_t tty;
	} cases[] = {
		{"42 (sh) S 1 42 42 34816 42 4194560 1", 0, 34816},
		{"42 (a b) c) S 1 42 42 0 -1 4194560", 0, 0},
		{"42 (x) S 1 42 42 -5 1", 0, 0},
		{"42 (x) S 1 42", -1, 0},
		{"no paren", -1, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t tty = 99;
		assert_int_equal(procfs_parse_stat_tty(cases[i].text, strlen(cases[i].text), &tty),
				 cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(tty, cases[i].tty);
	}
}

typedef struct {
	procfs_mount_t m[8];
	int n;
} mounts_t;

static bool collect(void *arg, const procfs_mount_t *m)
{
	mounts_t *x = arg;
	if (x->n < 8)
		x->m[x->n++] = *m;
	return true;
}

static const char mountinfo[] =
	"1400 1200 0:90 / / rw,relatime master:1 - overlay overlay "
	"rw,lowerdir=/var/lib/l/1:/var/lib/l/2,upperdir=/var/lib/c/"
	"diff,workdir=/var/lib/c/work\n"
	"1401 1400 0:92 / /proc rw,nosuid - proc proc rw\n"
	"1402 1400 8:1 /srv/with\\040space /data ro,relatime shared:7 - ext4 /dev/sda1 rw\n"
	"1403 1400 8:1 /x /y rw unbindable - ext4 /dev/sda1 rw\n"
	"garbage line without separator\n"
	"1404 1400 8:1 / /z rw - ext4\n";

static void test_mountinfo(void **state)
{
	(void)state;
	mounts_t x = {0};
	assert_int_equal(procfs_parse_mountinfo(mountinfo, strlen(mountinfo), collect, &x), 5);
	assert_string_equal(x.m[0].mount_point, "/");
	assert_string_equal(x.m[0].fstype, "overlay");
	assert_string_equal(x.m[0].propagation, "slave");
	char up[256];
	assert_true(procfs_mount_opt(x.m[0].super_opts, "upperdir", up, sizeof(up)));
	assert_string_equal(up, "/var/lib/c/diff");
	assert_false(procfs_mount_opt(x.m[0].super_opts, "upperdir", up, 4));
	assert_false(procfs_mount_opt(x.m[0].super_opts, "nosuch", up, sizeof(up)));
	assert_string_equal(x.m[1].propagation, "private");
	assert_string_equal(x.m[2].root, "/srv/with space");
	assert_true(x.m[2].read_only);
	assert_string_equal(x.m[2].propagation, "shared");
	assert_string_equal(x.m[3].propagation, "unbindable");
	assert_string_equal(x.m[4].source, "");

	/* into a container record: root facts, and the mounts that are not
	 * the kernel's own */
	ctr_t *c = ctr_new(ID);
	kfacts_from_mountinfo(mountinfo, strlen(mountinfo), c);
	assert_true(c->have & CTR_HAVE_ROOTPROP);
	assert_true(c->have & CTR_HAVE_UPPER);
	assert_true(c->have & CTR_HAVE_MOUNTS);
	assert_string_equal(c->rootfs_propagation, "slave");
	assert_string_equal(c->upperdir, "/var/lib/c/diff");
	assert_int_equal(c->n_mounts, 3);
	assert_string_equal(c->mounts[0].source, "/srv/with space");
	assert_string_equal(c->mounts[0].destination, "/data");
	assert_string_equal(c->mounts[0].propagation, "shared");
	assert_true(c->mounts[0].read_only);
	ctr_free(c);

	/* nothing parses: nothing known */
	c = ctr_new(ID);
	kfacts_from_mountinfo("x\ny\n", 4, c);
	assert_false(c->have & (CTR_HAVE_MOUNTS | CTR_HAVE_ROOTPROP));
	ctr_free(c);
}

static void test_uid_map_and_label(void **state)
{
	(void)state;
	static const struct {
		const char *t;
		bool host;
	} maps[] = {
		{"         0          0 4294967295\n", true},
		{"0 0 4294967295", true},
		{"         0     100000      65536\n", false},
		{"0 0 4294967295\n1 2 3\n", false},
		{"", false},
		{"0 0", false},
	};
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		assert_int_equal(procfs_uid_map_is_host(maps[i].t, strlen(maps[i].t)),
				 maps[i].host);
	char out[32];
	assert_int_equal(procfs_clean_label("docker-default (enforce)\n", 25, out, sizeof(out)),
			 24);
	assert_string_equal(out, "docker-default (enforce)");
	assert_int_equal(procfs_clean_label("a\x01"
					    "b\0junk",
					    8, out, sizeof(out)),
			 3);
	assert_string_equal(out, "a?b");
	assert_int_equal(procfs_clean_label("abcdef", 6, out, 4), 3);
	uint32_t u;
	assert_int_equal(procfs_parse_u32("4294967295", 10, &u), 0);
	assert_int_equal(u, UINT32_MAX);
	assert_int_equal(procfs_parse_u32("1000\n", 5, &u), 0);
	assert_int_equal(u, 1000);
	assert_int_equal(procfs_parse_u32("4294967296", 10, &u), -1);
	assert_int_equal(procfs_parse_u32("12x", 3, &u), -1);
	assert_int_equal(procfs_parse_u32("", 0, &u), -1);
}

static void test_cgroup_paths(void **state)
{
	(void)state;
	const char *hybrid = "12:pids:/system.slice/libpod-" ID ".scope\n"
			     "5:cpu,cpuacct:/system.slice/libpod-" ID ".scope\n"
			     "4:memory:/x/y\n"
			     "1:name=systemd:/s\n"
			     "0::/u/v\n";
	char p[256];
	assert_true(cgroup_path_of(hybrid, strlen(hybrid), "memory", p, sizeof(p)));
	assert_string_equal(p, "/x/y");
	assert_true(cgroup_path_of(hybrid, strlen(hybrid), "cpu", p, sizeof(p)));
	assert_string_equal(p, "/system.slice/libpod-" ID ".scope");
	assert_true(cgroup_path_of(hybrid, strlen(hybrid), "", p, sizeof(p)));
	assert_string_equal(p, "/u/v");
	assert_false(cgroup_path_of(hybrid, strlen(hybrid), "cpuacc", p, sizeof(p)));
	assert_false(cgroup_path_of(hybrid, strlen(hybrid), "systemd", p, sizeof(p)));
	assert_false(cgroup_path_of(hybrid, strlen(hybrid), "memory", p, 4));
	const char *evil = "4:memory:/../../etc\n0::relative\n";
	assert_false(cgroup_path_of(evil, strlen(evil), "memory", p, sizeof(p)));
	assert_false(cgroup_path_of(evil, strlen(evil), "", p, sizeof(p)));

	static const struct {
		const char *t;
		int rc;
		bool unl;
		uint64_t v;
	} limits[] = {
		{"max\n", 0, true, 0},
		{"-1\n", 0, true, 0},
		{"9223372036854771712\n", 0, true, 0},
		{"536870912\n", 0, false, 536870912},
		{"100", 0, false, 100},
		{"", -1, false, 0},
		{"12abc", -1, false, 0},
		{"99999999999999999999999", -1, false, 0},
		{"-5", -1, false, 0},
	};
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		cgroup_limit_t l;
		assert_int_equal(cgroup_parse_limit(limits[i].t, strlen(limits[i].t), &l),
				 limits[i].rc);
		if (limits[i].rc == 0) {
			assert_int_equal(l.unlimited, limits[i].unl);
			assert_int_equal(l.value, limits[i].v);
		}
	}
	static const struct {
		const char *t;
		int rc;
		bool unl;
		uint64_t q, p;
	} cpus[] = {
		{"max 100000\n", 0, true, 0, 100000}, {"50000 100000\n", 0, false, 50000, 100000},
		{"50000 0", -1, false, 0, 0},	      {"max", -1, false, 0, 0},
		{"x 100", -1, false, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cpus) / sizeof(cpus[0]); i++) {
		bool unl;
		uint64_t q, pp;
		assert_int_equal(cgroup_parse_cpu_max(cpus[i].t, strlen(cpus[i].t), &unl, &q, &pp),
				 cpus[i].rc);
		if (cpus[i].rc == 0) {
			assert_int_equal(unl, cpus[i].unl);
			assert_int_equal(q, cpus[i].q);
			assert_int_equal(pp, cpus[i].p);
		}
	}
}

static void test_cgroup_frozen(void **state)
{
	(void)state;
	static const struct {
		const char *t;
		bool v2;
		int rc;
		bool frozen;
	} cases[] = {
		{"FROZEN\n", false, 0, true},
		{"FREEZING\n", false, 0, true},
		{"THAWED\n", false, 0, false},
		{"frozen", false, -1, false},
		{"populated 1\nfrozen 1\n", true, 0, true},
		{"populated 1\nfrozen 0\n", true, 0, false},
		{"populated 1\n", true, -1, false},
		{"frozen 2\n", true, -1, false},
		{"frozen 10\n", true, -1, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool f = !cases[i].frozen;
		assert_int_equal(
			cgroup_parse_frozen(cases[i].t, strlen(cases[i].t), cases[i].v2, &f),
			cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(f, cases[i].frozen);
	}
}

static void test_crun_and_oci_facts(void **state)
{
	(void)state;
	const char *status = "{\"pid\":4321,\"process-start-time\":123,\"cgroup-path\":\"/x\","
			     "\"rootfs\":\"/r\",\"systemd-cgroup\":\"true\",\"bundle\":\"/var/lib/"
			     "containers/storage/overlay-containers/" ID "/userdata\","
			     "\"created\":\"2026-01-02T03:04:05Z\",\"owner\":\"root\"}";
	oci_state_t st;
	assert_int_equal(oci_parse_crun_status(status, strlen(status), ID, &st), 0);
	assert_string_equal(st.id, ID);
	assert_int_equal(st.init_pid, 4321);
	assert_true(st.created_ns > 0);
	assert_string_equal(st.bundle,
			    "/var/lib/containers/storage/overlay-containers/" ID "/userdata");
	/* runc's parser needs the id inside */
	assert_int_equal(oci_parse_state(status, strlen(status), &st), -1);
	assert_int_equal(oci_parse_crun_status("{\"pid\":\"x\"}", 11, ID, &st), -1);
	assert_int_equal(oci_dir_runtime("/run/containerd/runc/k8s.io"),
			 VIGIL__V1__RUNTIME__RUNTIME_CONTAINERD);
	assert_int_equal(oci_dir_runtime("/run/docker/runtime-runc/moby"),
			 VIGIL__V1__RUNTIME__RUNTIME_DOCKER);
	assert_int_equal(oci_dir_runtime("/run/runc"), -1);

	const char *spec =
		"{\"process\":{\"noNewPrivileges\":true,\"args\":[\"sh\"]},"
		"\"root\":{\"path\":\"rootfs\"},"
		"\"mounts\":[{\"destination\":\"/d\",\"type\":\"bind\",\"source\":\"/s\","
		"\"options\":[\"rbind\",\"rshared\",\"ro\"]}],"
		"\"linux\":{\"rootfsPropagation\":\"rslave\",\"devices\":[{\"path\":\"/dev/fuse\","
		"\"type\":\"c\",\"major\":10,\"minor\":229,\"fileMode\":438},{\"type\":\"c\"}]},"
		"\"annotations\":{\"io.container.manager\":\"libpod\"}}";
	ctr_t *c = ctr_new(ID);
	assert_int_equal(oci_parse_spec(spec, strlen(spec), c, 16), 0);
	assert_true(c->have & CTR_HAVE_NNP);
	assert_int_equal(c->no_new_privs, VIGIL__V1__TRISTATE__TRISTATE_TRUE);
	assert_int_equal(c->n_mounts, 1);
	assert_string_equal(c->mounts[0].propagation, "rshared");
	assert_true(c->mounts[0].read_only);
	assert_string_equal(c->rootfs_propagation, "rslave");
	assert_int_equal(c->n_devices, 1);
	assert_string_equal(c->devices[0].path, "/dev/fuse");
	assert_string_equal(c->devices[0].permissions, "0666");
	assert_int_equal(c->devices[0].major, 10);
	assert_int_equal(c->devices[0].minor, 229);
	assert_int_equal(c->runtime, VIGIL__V1__RUNTIME__RUNTIME_PODMAN);
	ctr_free(c);
}

static void test_api_facts(void **state)
{
	(void)state;
	const char *j =
		"{\"Id\":\"" ID "\",\"Name\":\"/web\",\"Config\":{\"Image\":\"busybox\"},"
		"\"HostConfig\":{\"Privileged\":false,\"SecurityOpt\":[\"no-new-privileges\"],"
		"\"RestartPolicy\":{\"Name\":\"on-failure\",\"MaximumRetryCount\":5},"
		"\"Devices\":[{\"PathOnHost\":\"/dev/null\",\"PathInContainer\":\"/dev/mynull\","
		"\"CgroupPermissions\":\"rwm\"}],"
		"\"PortBindings\":{\"80/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"9999\"}]}},"
		"\"NetworkSettings\":{\"Ports\":{\"80/tcp\":[{\"HostIp\":\"127.0.0.1\","
		"\"HostPort\":\"8080\"}],\"53/udp\":null}},"
		"\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/s\",\"Destination\":\"/d\","
		"\"RW\":true,\"Propagation\":\"rshared\"}],"
		"\"RepoDigests\":[\"docker.io/library/busybox@sha256:abc\"]}";
	ctr_t *c = ctr_new("");
	assert_int_equal(docker_parse_inspect(j, strlen(j), c, 16), 0);
	assert_int_equal(c->no_new_privs, VIGIL__V1__TRISTATE__TRISTATE_TRUE);
	assert_string_equal(c->restart_policy, "on-failure");
	assert_int_equal(c->restart_retries, 5);
	assert_int_equal(c->n_devices, 1);
	assert_string_equal(c->devices[0].host_path, "/dev/null");
	assert_string_equal(c->devices[0].path, "/dev/mynull");
	assert_string_equal(c->devices[0].permissions, "rwm");
	assert_int_equal(c->n_ports, 1);
	assert_string_equal(c->ports[0].container_port, "80/tcp");
	assert_string_equal(c->ports[0].host_ip, "127.0.0.1");
	assert_int_equal(c->ports[0].host_port, 8080);
	assert_string_equal(c->mounts[0].propagation, "rshared");
	assert_int_equal(c->repo_digests.n, 1);
	assert_true(c->have & CTR_HAVE_DIGESTS);
	ctr_free(c);

	/* nothing published: known, none; "no-new-privileges:false" */
	const char *k = "{\"Id\":\"" ID "\",\"HostConfig\":{\"SecurityOpt\":"
			"[\"no-new-privileges:false\"]},\"NetworkSettings\":{\"Ports\":{}}}";
	c = ctr_new("");
	assert_int_equal(docker_parse_inspect(k, strlen(k), c, 16), 0);
	assert_int_equal(c->no_new_privs, VIGIL__V1__TRISTATE__TRISTATE_FALSE);
	assert_true(c->have & CTR_HAVE_PORTS);
	assert_int_equal(c->n_ports, 0);
	assert_false(c->have & CTR_HAVE_DIGESTS);
	ctr_free(c);
}

static int n_listed_ids;
static void count_id(void *arg, const char *id)
{
	(void)arg;
	(void)id;
	n_listed_ids++;
}

static void test_api_images_and_paused(void **state)
{
	(void)state;
	const char *img = "{\"Id\":\"sha256:fcc9\",\"RepoDigests\":[\"localhost/b@sha256:224c\","
			  "7,\"docker.io/library/b@sha256:aaaa\"]}";
	ctr_strv_t d = {0};
	assert_int_equal(docker_parse_image_digests(img, strlen(img), &d), 0);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.v[0], "localhost/b@sha256:224c");
	ctr_strv_clear(&d);
	assert_int_equal(docker_parse_image_digests("{\"Id\":\"x\"}", 10, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(docker_parse_image_digests("[]", 2, &d), -1);
	assert_int_equal(docker_parse_image_digests("{}", 2, &d), -1);
	/* a paused container is listed; an exited one is not */
	const char *list = "[{\"Id\":\"" ID "\",\"State\":\"paused\"},"
			   "{\"Id\":\"" ID "\",\"State\":\"exited\"},"
			   "{\"Id\":\"" ID "\",\"State\":\"running\"}]";
	n_listed_ids = 0;
	assert_int_equal(docker_parse_list(list, strlen(list), count_id, NULL), 2);
	assert_int_equal(n_listed_ids, 2);
}

static bool listed(const Vigil__V1__Container *pc, const char *name)
{
	for (size_t i = 0; i < pc->n_unknown_facts; i++)
		if (strcmp(pc->unknown_facts[i], name) == 0)
			return true;
	return false;
}

static void test_unknown_facts(void **state)
{
	(void)state;
	/* a record no source filled: every fact unknown, none false */
	ctr_t *c = ctr_new(ID);
	Vigil__V1__Container pc = VIGIL__V1__CONTAINER__INIT;
	assert_int_equal(ctr_to_pb(c, &pc), 0);
	const char *names[] = {
		"privileged", "read_only_rootfs", "host_pid",	     "host_net",
		"host_ipc",   "host_uts",	  "seccomp_profile", "apparmor_profile",
		"mounts",     "devices",	  "ports",	     "mac_label"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_true(listed(&pc, names[i]));
	assert_int_equal(pc.no_new_privs, VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN);
	assert_int_equal(pc.seccomp_mode, VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_UNKNOWN);
	assert_null(pc.memory_limit);
	assert_null(pc.cpu_limit);
	assert_int_equal(pc.host_user, VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN);
	ctr_pb_release(&pc);

	/* known facts: not listed, values carried; a merge keeps them */
	c->have |= CTR_HAVE_PRIV | CTR_HAVE_LIMITS | CTR_HAVE_NNP | CTR_HAVE_SECMODE;
	c->privileged = false;
	c->no_new_privs = VIGIL__V1__TRISTATE__TRISTATE_FALSE;
	c->seccomp_mode = VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_FILTER;
	c->seccomp_filters = 2;
	c->mem_limit = (ctr_limit_t){true, false, 1 << 20};
	c->pids_limit = (ctr_limit_t){true, true, 0};
	ctr_t *d = ctr_dup(c);
	assert_non_null(d);
	assert_false(ctr_settings_differ(c, d));
	Vigil__V1__Container pd = VIGIL__V1__CONTAINER__INIT;
	assert_int_equal(ctr_to_pb(d, &pd), 0);
	assert_false(listed(&pd, "privileged"));
	assert_true(listed(&pd, "read_only_rootfs"));
	assert_int_equal(pd.no_new_privs, VIGIL__V1__TRISTATE__TRISTATE_FALSE);
	assert_int_equal(pd.seccomp_filters, 2);
	assert_non_null(pd.memory_limit);
	assert_int_equal(pd.memory_limit->value, 1 << 20);
	assert_true(pd.pids_limit->unlimited);
	assert_null(pd.cpu_limit);
	/* it packs and unpacks */
	size_t n = vigil__v1__container__get_packed_size(&pd);
	uint8_t *buf = malloc(n);
	vigil__v1__container__pack(&pd, buf);
	Vigil__V1__Container *u = vigil__v1__container__unpack(NULL, n, buf);
	assert_non_null(u);
	assert_int_equal(u->n_unknown_facts, pd.n_unknown_facts);
	assert_int_equal(u->memory_limit->value, 1 << 20);
	vigil__v1__container__free_unpacked(u, NULL);
	free(buf);
	ctr_pb_release(&pd);
	/* a fact becoming known is a change */
	d->have |= CTR_HAVE_ROFS;
	assert_true(ctr_settings_differ(c, d));
	ctr_free(d);
	ctr_free(c);
}

static void test_pidmap_bounded(void **state)
{
	(void)state;
	pidmap_t *pm = pidmap_new(1000);
	assert_non_null(pm);
	/* a storm of short-lived processes: tombstones do not fill the map */
	for (uint32_t pid = 1; pid <= 200000; pid++) {
		assert_non_null(pidmap_put(pm, pid, ID));
		if (pid > 10)
			pidmap_del(pm, pid - 10);
	}
	assert_int_equal(pidmap_count(pm), 10);
	assert_int_equal(pidmap_refused(pm), 0);
	assert_true(pidmap_bytes(pm) <= 4096 * sizeof(pidmap_slot_t));
	/* live ones past the cap are refused and counted */
	for (uint32_t pid = 300000; pid < 302000; pid++)
		pidmap_put(pm, pid, ID);
	assert_int_equal(pidmap_count(pm), 1000);
	assert_int_equal(pidmap_refused(pm), 1010);
	assert_non_null(pidmap_find(pm, 300000));
	assert_null(pidmap_find(pm, 301999));
	/* a reused pid in another container forgets what was known */
	pidmap_slot_t *s = pidmap_find(pm, 300000);
	s->flags = PIDMAP_F_EXEC_SESSION;
	s = pidmap_put(pm, 300000, "other");
	assert_int_equal(s->flags, 0);
	/* two scans without them: gone, and the table shrinks */
	size_t big = pidmap_bytes(pm);
	pidmap_next_gen(pm);
	pidmap_next_gen(pm);
	pidmap_prune(pm);
	assert_int_equal(pidmap_count(pm), 0);
	assert_non_null(pidmap_put(pm, 7, ID));
	assert_int_equal(pidmap_count(pm), 1);
	assert_non_null(pidmap_find(pm, 7));
	assert_true(pidmap_bytes(pm) < big);
	pidmap_free(pm);
}

static void test_loss_accounting(void **state)
{
	(void)state;
	loss_t l;
	memset(&l, 0, sizeof(l));
	Vigil__V1__Loss m[LOSS_N], *p[LOSS_N];
	assert_int_equal(loss_to_pb(&l, m, p), 0);
	assert_false(loss_pending(&l));
	/* the first loss since a report says so; the next ones do not */
	assert_true(loss_add(&l, LOSS_EXEC_UNREAD, 1, 100));
	assert_false(loss_add(&l, LOSS_EXEC_UNREAD, 2, 300));
	/* a source's running total: only what is new counts */
	assert_false(loss_observe(&l, LOSS_PROC_CONNECTOR_OVERRUN, 5, 200));
	assert_false(loss_observe(&l, LOSS_PROC_CONNECTOR_OVERRUN, 5, 250));
	assert_false(loss_observe(&l, LOSS_PROC_CONNECTOR_OVERRUN, 7, 400));
	assert_int_equal(loss_to_pb(&l, m, p), 2);
	assert_string_equal(p[0]->what, "proc_connector_overrun");
	assert_int_equal(p[0]->count, 7);
	assert_int_equal(p[0]->first_ns, 200);
	assert_int_equal(p[0]->last_ns, 400);
	assert_string_equal(p[1]->what, "exec_unread");
	assert_int_equal(p[1]->count, 3);
	assert_int_equal(p[1]->first_ns, 100);
	/* reported: the totals stay, the period starts again */
	loss_reported(&l);
	assert_false(loss_pending(&l));
	assert_int_equal(loss_to_pb(&l, m, p), 2);
	assert_int_equal(p[0]->count, 0);
	assert_int_equal(p[0]->total, 7);
	assert_int_equal(p[0]->first_ns, 0);
	/* a source that restarted counts from zero */
	assert_true(loss_observe(&l, LOSS_PROC_CONNECTOR_OVERRUN, 2, 500));
	assert_int_equal(l.c[LOSS_PROC_CONNECTOR_OVERRUN].total, 9);
	assert_false(loss_add(&l, LOSS_N, 1, 1));
	assert_string_equal(loss_name(LOSS_PID_UNTRACKED), "pid_untracked");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_security),
		cmocka_unit_test(test_stat_tty),
		cmocka_unit_test(test_mountinfo),
		cmocka_unit_test(test_uid_map_and_label),
		cmocka_unit_test(test_cgroup_paths),
		cmocka_unit_test(test_crun_and_oci_facts),
		cmocka_unit_test(test_api_facts),
		cmocka_unit_test(test_api_images_and_paused),
		cmocka_unit_test(test_unknown_facts),
		cmocka_unit_test(test_pidmap_bounded),
		cmocka_unit_test(test_cgroup_frozen),
		cmocka_unit_test(test_loss_accounting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
