// SPDX-License-Identifier: Apache-2.0
/*
 * Posture rules: judge one container's settings. Every rule first asks
 * whether its input is known (the agent lists what no source established
 * in unknown_facts, and absent limits or Tristate UNKNOWN say the same);
 * an unknown input raises nothing and is reported as unknown.
 */
#include "rules/rules.h"
#include "rules/rules_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef Vigil__V1__Container ctr_t;

bool rules_fact_unknown(const ctr_t *c, const char *name)
{
	for (size_t i = 0; i < c->n_unknown_facts; i++)
		if (c->unknown_facts[i] && strcmp(c->unknown_facts[i], name) == 0)
			return true;
	return false;
}

/* A bool fact: 1 true, 0 false, -1 unknown. */
static int fact_bool(const ctr_t *c, const char *name, protobuf_c_boolean v)
{
	return rules_fact_unknown(c, name) ? -1 : v ? 1 : 0;
}

static int tristate(Vigil__V1__Tristate t)
{
	return t == VIGIL__V1__TRISTATE__TRISTATE_TRUE	  ? 1
	       : t == VIGIL__V1__TRISTATE__TRISTATE_FALSE ? 0
							  : -1;
}

/* rule fires when v is 1, is unknown when v is -1. */
static void judge_bool(judgment_t *j, const char *rule, int v, const char *summary)
{
	if (v < 0)
		judgment_unknown(j, rule);
	else if (v)
		judgment_hit(j, rule, "", "%s", summary);
}

/* --- capabilities ---------------------------------------------------------- */

/* What Docker and Podman grant by default (runc's default bounding set). */
static const char *const default_caps[] = {
	"CHOWN",
	"DAC_OVERRIDE",
	"FSETID",
	"FOWNER",
	"MKNOD",
	"NET_RAW",
	"SETGID",
	"SETUID",
	"SETFCAP",
	"SETPCAP",
	"NET_BIND_SERVICE",
	"SYS_CHROOT",
	"KILL",
	"AUDIT_WRITE",
	NULL,
};

static void judge_caps(judgment_t *j, const ctr_t *c, int privileged)
{
	if (privileged == 1)
		return; /* "privileged" says it all */
	if (!c->init_pid && !c->n_cap_bounding) {
		judgment_unknown(j, "cap_added");
		return;
	}
	for (size_t i = 0; i < c->n_cap_bounding; i++) {
		const char *cap = c->cap_bounding[i] ? c->cap_bounding[i] : "";
		if (strncmp(cap, "CAP_", 4) == 0)
			cap += 4;
		if (!cap[0] || rules_in(cap, default_caps))
			continue;
		judgment_hit(j, "cap_added", cap, "capability %s added", cap);
	}
}

/* --- mounts -------------------------------------------------------------------- */

/* path without a trailing slash, with /var/run as /run, into buf. */
static const char *norm_path(const char *path, char *buf, size_t len)
{
	if (strncmp(path, "/var/run/", 9) == 0 || strcmp(path, "/var/run") == 0)
		path += 4;
	snprintf(buf, len, "%s", path);
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return buf;
}

/* True if path is dir or lies under it. */
static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static const char *const socket_names[] = {"docker.sock", "containerd.sock", "crio.sock",
					   "podman.sock", "dockershim.sock", NULL};
/* Directories that hold a runtime's socket. */
static const char *const socket_dirs[] = {
	"/run",	       "/run/docker", "/run/containerd", "/run/crio",
	"/run/podman", "/run/user",   "/var/lib/docker", NULL};
static const char *const sensitive_dirs[] = {"/boot", "/dev",  "/etc",	"/lib", "/proc", "/sys",
					     "/usr",  "/root", "/home", "/run", NULL};
/* File systems that are not a host path even with a path as source. */
static const char *const pseudo_fs[] = {"proc",	  "sysfs",   "tmpfs",	   "devpts",
					"mqueue", "cgroup",  "cgroup2",	   "devtmpfs",
					"shm",	  "overlay", "securityfs", NULL};

/* A file the runtime made for this very container and mounted into it (its
 * hosts, hostname, resolv.conf, .containerenv), kept in the runtime's
 * directory of that container: Podman's .../overlay-containers/ID/userdata/,
 * Docker's .../docker/containers/ID/. Not a host path the container was
 * given. Only those names directly in that directory, and no "..". */
static bool runtime_own_file(const char *src, const char *id)
{
	static const char *const dirs[][2] = {{"/overlay-containers/", "/userdata/"},
					      {"/docker/containers/", "/"}};
	static const char *const names[] = {"hosts", "hostname", "resolv.conf", ".containerenv",
					    NULL};
	if (!id || strlen(id) < 12 || strstr(src, "/..") || strchr(id, '/'))
		return false;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char dir[RULES_KEY_MAX];
		snprintf(dir, sizeof(dir), "%s%s%s", dirs[i][0], id, dirs[i][1]);
		const char *at = strstr(src, dir);
		if (at && rules_in(at + strlen(dir), names))
			return true;
	}
	return false;
}

static bool host_path_mount(const Vigil__V1__Mount *m)
{
	return m->source && m->source[0] == '/' && !(m->type && rules_in(m->type, pseudo_fs));
}

static void judge_mounts(judgment_t *j, const ctr_t *c)
{
	if (rules_fact_unknown(c, "mounts")) {
		judgment_unknown(j, "runtime_socket");
		judgment_unknown(j, "sensitive_mount");
		judgment_unknown(j, "shared_propagation");
		return;
	}
	bool propagation_known = false;
	for (size_t i = 0; i < c->n_mounts; i++) {
		const Vigil__V1__Mount *m = c->mounts[i];
		const char *prop = m->propagation ? m->propagation : "";
		if (prop[0])
			propagation_known = true;
		if (strcmp(prop, "shared") == 0 || strcmp(prop, "rshared") == 0)
			judgment_hit(j, "shared_propagation", m->destination ? m->destination : "",
				     "mount %s has %s propagation",
				     m->destination ? m->destination : "", prop);
		if (!host_path_mount(m))
			continue;
		char buf[RULES_KEY_MAX];
		const char *src = norm_path(m->source, buf, sizeof(buf));
		if (rules_in(rules_basename(src), socket_names) || rules_in(src, socket_dirs)) {
			judgment_hit(j, "runtime_socket", m->source,
				     "runtime socket %s mounted at %s", m->source, m->destination);
			continue;
		}
		if (runtime_own_file(src, c->id))
			continue;
		bool sensitive = strcmp(src, "/") == 0;
		for (size_t k = 0; !sensitive && sensitive_dirs[k]; k++)
			sensitive = under(src, sensitive_dirs[k]);
		if (sensitive)
			judgment_hit(j, "sensitive_mount", m->source,
				     "host path %s mounted %s at %s", m->source,
				     m->read_only ? "read-only" : "writable", m->destination);
	}
	const char *rp = c->rootfs_propagation ? c->rootfs_propagation : "";
	if (strcmp(rp, "shared") == 0 || strcmp(rp, "rshared") == 0)
		judgment_hit(j, "shared_propagation", "/", "root filesystem has %s propagation",
			     rp);
	else if (!rp[0] && !propagation_known && rules_fact_unknown(c, "rootfs_propagation"))
		judgment_unknown(j, "shared_propagation");
}

/* --- profiles, limits, devices, restart, image ----------------------------- */

static void judge_seccomp(judgment_t *j, const ctr_t *c)
{
	switch (c->seccomp_mode) {
	case VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_DISABLED:
		judgment_hit(j, "seccomp_unconfined", "", "seccomp disabled for the container");
		return;
	case VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_STRICT:
	case VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_FILTER:
		return;
	default:
		break;
	}
	const char *p = c->seccomp_profile ? c->seccomp_profile : "";
	if (rules_fact_unknown(c, "seccomp_profile") || !p[0])
		judgment_unknown(j, "seccomp_unconfined");
	else if (strcmp(p, "unconfined") == 0)
		judgment_hit(j, "seccomp_unconfined", "", "seccomp profile unconfined");
}

static void judge_apparmor(judgment_t *j, const ctr_t *c)
{
	const char *l = c->mac_label ? c->mac_label : "";
	if (l[0] && !rules_fact_unknown(c, "mac_label")) {
		/* AppArmor labels are "unconfined" or "PROFILE (mode)"; SELinux
		 * labels have colons: AppArmor is not what confines those. */
		if (strcmp(l, "unconfined") == 0)
			judgment_hit(j, "apparmor_unconfined", "", "AppArmor unconfined");
		return;
	}
	const char *p = c->apparmor_profile ? c->apparmor_profile : "";
	if (rules_fact_unknown(c, "apparmor_profile") || !p[0])
		judgment_unknown(j, "apparmor_unconfined");
	else if (strcmp(p, "unconfined") == 0)
		judgment_hit(j, "apparmor_unconfined", "", "AppArmor profile unconfined");
}

static void judge_limit(judgment_t *j, const char *rule, const Vigil__V1__Limit *l,
			const char *summary)
{
	if (!l)
		judgment_unknown(j, rule);
	else if (l->unlimited)
		judgment_hit(j, rule, "", "%s", summary);
}

/* Devices every container has. */
static const char *const std_devices[] = {
	"/dev/null", "/dev/zero",    "/dev/full", "/dev/random",   "/dev/urandom",
	"/dev/tty",  "/dev/console", "/dev/ptmx", "/dev/pts/ptmx", NULL};

static void judge_devices(judgment_t *j, const ctr_t *c)
{
	/* an agent that names no source (found_by) predates the devices fact */
	if (rules_fact_unknown(c, "devices") || !c->found_by || !c->found_by[0]) {
		judgment_unknown(j, "host_device");
		return;
	}
	for (size_t i = 0; i < c->n_devices; i++) {
		const Vigil__V1__Device *d = c->devices[i];
		const char *host = d->path_on_host && d->path_on_host[0] ? d->path_on_host : NULL;
		const char *in = d->path_in_container ? d->path_in_container : "";
		const char *key = host ? host : in;
		if (!key[0] || rules_in(in, std_devices) || (host && rules_in(host, std_devices)))
			continue;
		judgment_hit(j, "host_device", key, "host device %s passed in as %s", key, in);
	}
}

static void judge_restart(judgment_t *j, const ctr_t *c)
{
	const char *p = c->restart_policy ? c->restart_policy : "";
	if (rules_fact_unknown(c, "restart_policy") || !p[0]) {
		judgment_unknown(j, "restart_policy");
		return;
	}
	if (strcmp(p, "always") == 0)
		judgment_hit(j, "restart_policy", "", "restart policy always");
	else if (strcmp(p, "on-failure") == 0 &&
		 (c->restart_max_retries == 0 || c->restart_max_retries > 5))
		judgment_hit(j, "restart_policy", "", "restart policy on-failure with %s retries",
			     c->restart_max_retries ? "more than 5" : "unbounded");
}

static void judge_image(judgment_t *j, const ctr_t *c)
{
	const char *img = c->image ? c->image : "";
	if (!img[0]) {
		judgment_unknown(j, "image_mutable_tag");
		return;
	}
	if (strchr(img, '@'))
		return; /* pinned by digest */
	const char *slash = strrchr(img, '/');
	const char *colon = strrchr(slash ? slash : img, ':');
	const char *tag = colon ? colon + 1 : "latest";
	if (strcmp(tag, "latest") == 0)
		judgment_hit(j, "image_mutable_tag", img, "image %s runs by the tag latest", img);
	else
		judgment_hit(j, "image_mutable_tag", img, "image %s runs by a tag, not a digest",
			     img);
}

/* The registry and path of an image reference: "docker.io/library/nginx"
 * for "nginx", as docker and podman read short names. */
static void image_path(const char *img, char *buf, size_t len)
{
	const char *slash = strchr(img, '/');
	size_t first = slash ? (size_t)(slash - img) : 0;
	bool has_registry = slash && (memchr(img, '.', first) || memchr(img, ':', first) ||
				      strncmp(img, "localhost/", 10) == 0);
	if (has_registry)
		snprintf(buf, len, "%s", img);
	else if (slash)
		snprintf(buf, len, "docker.io/%s", img);
	else
		snprintf(buf, len, "docker.io/library/%s", img);
}

/* True if image path lies under allowed prefix (a registry, or a registry
 * and a path). */
static bool allowed(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(path, prefix, n) != 0)
		return false;
	return (n && prefix[n - 1] == '/') || path[n] == '/' || path[n] == '\0' || path[n] == '@' ||
	       path[n] == ':';
}

static void judge_registry(judgment_t *j, const ctr_t *c)
{
	const rules_t *r = j->ctx->rules;
	if (!r->n_registries)
		return; /* no allow-list: the rule does not apply */
	const char *img = c->image ? c->image : "";
	if (!img[0]) {
		judgment_unknown(j, "image_registry");
		return;
	}
	char path[RULES_SUMMARY_MAX];
	image_path(img, path, sizeof(path));
	for (size_t i = 0; i < r->n_registries; i++)
		if (allowed(path, r->registries[i]))
			return;
	char reg[RULES_KEY_MAX];
	snprintf(reg, sizeof(reg), "%.*s", (int)strcspn(path, "/"), path);
	judgment_hit(j, "image_registry", reg, "image %s comes from %s, not an allowed registry",
		     img, reg);
}

int rules_judge_container(const rules_ctx_t *ctx, const ctr_t *c, const rules_evidence_t *ev,
			  json_t *ops)
{
	rules_subjects_put(ctx->subjects, c);
	const char *keys[RULES_LABELS_MAX], *values[RULES_LABELS_MAX];
	rules_subject_t subj;
	rules_subject_of(c, &subj, keys, values);
	judgment_t j = {ctx, &subj, json_array(), json_array(), json_array(), 0};
	int privileged = fact_bool(c, "privileged", c->privileged);
	judge_bool(&j, "privileged", privileged, "privileged container");
	judge_caps(&j, c, privileged);
	judge_bool(&j, "host_pid", fact_bool(c, "host_pid", c->host_pid), "host PID namespace");
	judge_bool(&j, "host_ipc", fact_bool(c, "host_ipc", c->host_ipc), "host IPC namespace");
	judge_bool(&j, "host_uts", fact_bool(c, "host_uts", c->host_uts), "host UTS namespace");
	judge_bool(&j, "host_network", fact_bool(c, "host_net", c->host_net),
		   "host network namespace");
	judge_mounts(&j, c);
	judge_seccomp(&j, c);
	judge_apparmor(&j, c);
	judge_bool(&j, "rootfs_writable",
		   fact_bool(c, "read_only_rootfs", c->read_only_rootfs) < 0 ? -1
									     : !c->read_only_rootfs,
		   "root filesystem writable");
	judge_bool(&j, "run_as_root", c->user_known ? c->uid == 0 : -1, "runs as uid 0");
	judge_limit(&j, "no_memory_limit", c->memory_limit, "no memory limit");
	judge_limit(&j, "no_pids_limit", c->pids_limit, "no PIDs limit");
	judge_devices(&j, c);
	int nnp = tristate(c->no_new_privs);
	judge_bool(&j, "no_new_privs_unset", nnp < 0 ? -1 : !nnp, "no_new_privs not set");
	judge_restart(&j, c);
	judge_image(&j, c);
	judge_registry(&j, c);

	json_t *op = json_object();
	if (!op || j.oom || !j.hits || !j.unk || !j.off) {
		json_decref(op);
		json_decref(j.hits);
		json_decref(j.unk);
		json_decref(j.off);
		return -1;
	}
	json_object_set_new(op, "op", json_string("posture"));
	json_object_set_new(op, "id", json_string_nocheck(c->id ? c->id : ""));
	json_object_set_new(op, "ts", json_integer(ev->ts_ns));
	json_object_set_new(op, "seq", json_integer((json_int_t)ev->seq));
	json_object_set_new(op, "idx", json_integer(ev->idx));
	json_object_set_new(op, "hits", j.hits);
	json_object_set_new(op, "unk", j.unk);
	if (json_array_size(j.off))
		json_object_set_new(op, "off", j.off);
	else
		json_decref(j.off);
	return json_array_append_new(ops, op);
}
