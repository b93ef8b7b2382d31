// SPDX-License-Identifier: Apache-2.0
/* Kernel facts of a container's init (see kfacts.h). */
#include "kfacts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"

/* mountinfo of one container: more is cut (and the mount list marked
 * truncated) */
#define MOUNTINFO_READ_MAX (256 * 1024)

struct kfacts {
	char *proc_root, *cgroup_root;
	bool v2_at_root; /* pure v2: the unified hierarchy is cgroup_root itself */
	uint64_t host_user, host_cgroup;
	bool have_host_user, have_host_cgroup;
	char *scratch; /* MOUNTINFO_READ_MAX + 1 */
};

kfacts_t *kfacts_new(const char *proc_root, const char *cgroup_root)
{
	kfacts_t *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->proc_root = strdup(proc_root);
	k->cgroup_root = strdup(cgroup_root);
	k->scratch = malloc(MOUNTINFO_READ_MAX + 1);
	if (!k->proc_root || !k->cgroup_root || !k->scratch) {
		kfacts_free(k);
		return NULL;
	}
	char p[1024];
	snprintf(p, sizeof(p), "%s/cgroup.controllers", cgroup_root);
	k->v2_at_root = access(p, F_OK) == 0;
	uint32_t refs[2] = {1, (uint32_t)getpid()};
	for (int r = 0; r < 2; r++) {
		if (!k->have_host_user)
			k->have_host_user =
				procfs_ns(proc_root, refs[r], "user", &k->host_user) == 0;
		if (!k->have_host_cgroup)
			k->have_host_cgroup =
				procfs_ns(proc_root, refs[r], "cgroup", &k->host_cgroup) == 0;
	}
	return k;
}

void kfacts_free(kfacts_t *k)
{
	if (!k)
		return;
	free(k->proc_root);
	free(k->cgroup_root);
	free(k->scratch);
	free(k);
}

static void status_facts(ctr_t *c, const procfs_status_t *st)
{
	if (st->have_nnp) {
		c->no_new_privs = st->no_new_privs ? VIGIL__V1__TRISTATE__TRISTATE_TRUE
						   : VIGIL__V1__TRISTATE__TRISTATE_FALSE;
		c->have |= CTR_HAVE_NNP;
	}
	if (st->have_seccomp) {
		static const int modes[3] = {VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_DISABLED,
					     VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_STRICT,
					     VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_FILTER};
		c->seccomp_mode = modes[st->seccomp];
		c->seccomp_filters = st->have_filters ? st->seccomp_filters : 0;
		c->have |= CTR_HAVE_SECMODE;
	}
}

static void label_fact(kfacts_t *k, ctr_t *c)
{
	char buf[4096], clean[4096];
	ssize_t n = procfs_read(k->proc_root, c->init_pid, "attr/current", buf, sizeof(buf));
	if (n < 0)
		return; /* no LSM that has a label: unknown, not "none" */
	procfs_clean_label(buf, (size_t)n, clean, sizeof(clean));
	if (ctr_set_str(&c->mac_label, clean, &c->truncated) == 0)
		c->have |= CTR_HAVE_MAC;
}

static void ns_facts(kfacts_t *k, ctr_t *c)
{
	uint64_t ino;
	int user = 0, cg = 0;
	if (k->have_host_user && procfs_ns(k->proc_root, c->init_pid, "user", &ino) == 0) {
		user = ino == k->host_user ? 2 : 1;
	} else {
		char buf[1024];
		ssize_t n = procfs_read(k->proc_root, c->init_pid, "uid_map", buf, sizeof(buf));
		if (n >= 0)
			user = procfs_uid_map_is_host(buf, (size_t)n) ? 2 : 1;
	}
	if (k->have_host_cgroup && procfs_ns(k->proc_root, c->init_pid, "cgroup", &ino) == 0)
		cg = ino == k->host_cgroup ? 2 : 1;
	/* both or neither: one have bit covers the pair */
	if (user && cg) {
		c->host_user = user == 2 ? VIGIL__V1__TRISTATE__TRISTATE_TRUE
					 : VIGIL__V1__TRISTATE__TRISTATE_FALSE;
		c->host_cgroup = cg == 2 ? VIGIL__V1__TRISTATE__TRISTATE_TRUE
					 : VIGIL__V1__TRISTATE__TRISTATE_FALSE;
		c->have |= CTR_HAVE_USERNS;
	}
}

/* Read one limit file of the cgroup dir. Return 0 or -1. */
static int read_limit(const char *dir, const char *file, cgroup_limit_t *out)
{
	char buf[128];
	ssize_t n = procfs_read(dir, 0, file, buf, sizeof(buf));
	if (n <= 0)
		return -1;
	return cgroup_parse_limit(buf, (size_t)n, out);
}

/* The directory of controller (v1) or of the unified hierarchy. */
static bool cg_dir(kfacts_t *k, const char *cgfile, size_t len, const char *controller, char *dir,
		   size_t cap)
{
	char path[1024];
	if (controller[0]) {
		if (!cgroup_path_of(cgfile, len, controller, path, sizeof(path)))
			return false;
		snprintf(dir, cap, "%s/%s%s", k->cgroup_root, controller, path);
	} else {
		if (!cgroup_path_of(cgfile, len, "", path, sizeof(path)))
			return false;
		snprintf(dir, cap, "%s%s%s", k->cgroup_root, k->v2_at_root ? "" : "/unified", path);
	}
	return true;
}

static void limit_facts(kfacts_t *k, ctr_t *c)
{
	char cgfile[8192], dir[1200];
	ssize_t n = procfs_read(k->proc_root, c->init_pid, "cgroup", cgfile, sizeof(cgfile));
	if (n <= 0)
		return;
	size_t len = (size_t)n;
	cgroup_limit_t l;
	bool v2 = cg_dir(k, cgfile, len, "", dir, sizeof(dir));
	char v2dir[1200];
	snprintf(v2dir, sizeof(v2dir), "%s", v2 ? dir : "");
	/* memory */
	if ((cg_dir(k, cgfile, len, "memory", dir, sizeof(dir)) &&
	     read_limit(dir, "memory.limit_in_bytes", &l) == 0) ||
	    (v2 && read_limit(v2dir, "memory.max", &l) == 0)) {
		c->mem_limit = (ctr_limit_t){true, l.unlimited, l.value};
	}
	if ((cg_dir(k, cgfile, len, "pids", dir, sizeof(dir)) &&
	     read_limit(dir, "pids.max", &l) == 0) ||
	    (v2 && read_limit(v2dir, "pids.max", &l) == 0)) {
		c->pids_limit = (ctr_limit_t){true, l.unlimited, l.value};
	}
	cgroup_limit_t period;
	char buf[128];
	if (cg_dir(k, cgfile, len, "cpu", dir, sizeof(dir)) &&
	    read_limit(dir, "cpu.cfs_quota_us", &l) == 0 &&
	    read_limit(dir, "cpu.cfs_period_us", &period) == 0 && !period.unlimited) {
		c->cpu_limit =
			(ctr_cpu_t){true, l.unlimited, l.unlimited ? 0 : l.value, period.value};
	} else if (v2 && (n = procfs_read(v2dir, 0, "cpu.max", buf, sizeof(buf))) > 0) {
		bool unl;
		uint64_t q, p;
		if (cgroup_parse_cpu_max(buf, (size_t)n, &unl, &q, &p) == 0)
			c->cpu_limit = (ctr_cpu_t){true, unl, q, p};
	}
	if (c->mem_limit.known || c->pids_limit.known || c->cpu_limit.known)
		c->have |= CTR_HAVE_LIMITS;
	/* paused: the freezer (v1) or the cgroup's own freeze (v2) */
	bool frozen, have_frozen = false;
	if (cg_dir(k, cgfile, len, "freezer", dir, sizeof(dir)) &&
	    (n = procfs_read(dir, 0, "freezer.state", buf, sizeof(buf))) > 0)
		have_frozen = cgroup_parse_frozen(buf, (size_t)n, false, &frozen) == 0;
	if (!have_frozen && v2 &&
	    (n = procfs_read(v2dir, 0, "cgroup.events", buf, sizeof(buf))) > 0)
		have_frozen = cgroup_parse_frozen(buf, (size_t)n, true, &frozen) == 0;
	if (have_frozen && ctr_set_str(&c->state, frozen ? "paused" : "running", NULL) == 0)
		c->have |= CTR_HAVE_STATE;
}

/* File systems every container gets from its runtime: not reported. */
static bool kernel_fs(const char *t)
{
	static const char *const names[] = {"proc",	  "sysfs",   "devpts",	"mqueue",
					    "cgroup",	  "cgroup2", "tmpfs",	"devtmpfs",
					    "securityfs", "debugfs", "tracefs", "bpf"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(t, names[i]) == 0)
			return true;
	return false;
}

typedef struct {
	ctr_t *c;
	int rc;
	bool root_seen;
} mi_ctx_t;

static bool mi_mount(void *arg, const procfs_mount_t *m)
{
	mi_ctx_t *x = arg;
	ctr_t *c = x->c;
	if (strcmp(m->mount_point, "/") == 0) {
		/* the last "/" is the container's root (a chroot'd tree may stack) */
		if (ctr_set_str(&c->rootfs_propagation, m->propagation, NULL) != 0)
			x->rc = -1;
		char upper[2048];
		free(c->upperdir);
		c->upperdir = NULL;
		if (strcmp(m->fstype, "overlay") == 0 &&
		    procfs_mount_opt(m->super_opts, "upperdir", upper, sizeof(upper)) &&
		    upper[0] == '/') {
			c->upperdir = strdup(upper);
			if (!c->upperdir)
				x->rc = -1;
		}
		x->root_seen = true;
		return x->rc == 0;
	}
	if (kernel_fs(m->fstype))
		return true;
	/* a bind mount shows the path inside its file system as root */
	const char *src = strcmp(m->root, "/") != 0 ? m->root : m->source;
	if (ctr_add_mount_prop(c, src, m->mount_point, m->fstype, m->read_only, m->propagation) !=
	    0)
		x->rc = -1;
	return x->rc == 0;
}

void kfacts_from_mountinfo(const char *buf, size_t len, ctr_t *c)
{
	mi_ctx_t x = {c, 0, false};
	int n = procfs_parse_mountinfo(buf, len, mi_mount, &x);
	if (x.rc != 0 || n <= 0)
		return;
	c->have |= CTR_HAVE_MOUNTS;
	if (x.root_seen) {
		c->have |= CTR_HAVE_ROOTPROP;
		if (c->upperdir)
			c->have |= CTR_HAVE_UPPER;
	}
}

void kfacts_read(kfacts_t *k, ctr_t *c, const procfs_status_t *st)
{
	if (!c->init_pid)
		return;
	if (st)
		status_facts(c, st);
	label_fact(k, c);
	ns_facts(k, c);
	limit_facts(k, c);
	ssize_t n = procfs_read(k->proc_root, c->init_pid, "mountinfo", k->scratch,
				MOUNTINFO_READ_MAX + 1);
	if (n > 0) {
		if ((size_t)n >= MOUNTINFO_READ_MAX)
			c->truncated = true;
		kfacts_from_mountinfo(k->scratch, (size_t)n, c);
	}
}
