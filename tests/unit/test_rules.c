// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for collector/rules/: posture and runtime judgments (table
 * driven), unknown inputs, exceptions, the findings plan of a commit group,
 * and the rules file's errors with their line and column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "rules/rules.h"
#include "rules/rules_int.h"

#define NOW_NS INT64_C(1800000000000000000)

static rules_ctx_t ctx_of(const rules_t *r, rules_subjects_t *s, const char *agent)
{
	return (rules_ctx_t){r, s, agent, NOW_NS};
}

/* A hardened container: no posture rule fires, none is unknown. */
static void hardened(Vigil__V1__Container *c)
{
	static char *caps[] = {"CAP_NET_BIND_SERVICE"};
	static Vigil__V1__Limit mem = VIGIL__V1__LIMIT__INIT, pids = VIGIL__V1__LIMIT__INIT;
	vigil__v1__container__init(c);
	c->id = "c1";
	c->name = "web";
	c->image = "registry.example/web@sha256:abcd";
	c->uid = 1000;
	c->user_known = 1;
	c->init_pid = 42;
	c->cap_bounding = caps;
	c->n_cap_bounding = 1;
	c->read_only_rootfs = 1;
	c->seccomp_mode = VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_FILTER;
	c->mac_label = "containers-default (enforce)";
	c->no_new_privs = VIGIL__V1__TRISTATE__TRISTATE_TRUE;
	mem.value = 1 << 28;
	pids.value = 100;
	c->memory_limit = &mem;
	c->pids_limit = &pids;
	c->restart_policy = "no";
	c->rootfs_propagation = "rprivate";
	c->found_by = "cgroup,oci"; /* an agent that reports devices */
}

/* The posture op of c judged with r (default rules if NULL). */
static json_t *posture(const rules_t *r, const Vigil__V1__Container *c, const char *agent)
{
	rules_t *def = r ? NULL : rules_new_default();
	rules_ctx_t ctx = ctx_of(r ? r : def, NULL, agent);
	json_t *ops = json_array();
	rules_evidence_t ev = {7, 3, NOW_NS};
	assert_int_equal(rules_judge_container(&ctx, c, &ev, ops), 0);
	assert_int_equal(json_array_size(ops), 1);
	json_t *op = json_incref(json_array_get(ops, 0));
	json_decref(ops);
	rules_unref(def);
	return op;
}

static bool has_hit(const json_t *op, const char *rule, const char *key)
{
	size_t i;
	json_t *h;
	json_array_foreach(json_object_get(op, "hits"), i, h)
	{
		if (!strcmp(json_string_value(json_object_get(h, "r")), rule) &&
		    (!key || !strcmp(json_string_value(json_object_get(h, "k")), key)))
			return true;
	}
	return false;
}

static bool has_unknown(const json_t *op, const char *rule)
{
	size_t i;
	json_t *u;
	json_array_foreach(json_object_get(op, "unk"), i, u)
	{
		if (!strcmp(json_string_value(u), rule))
			return true;
	}
	return false;
}

static void test_hardened_raises_nothing(void **state)
{
	(void)state;
	Vigil__V1__Container c;
	hardened(&c);
	json_t *op = posture(NULL, &c, "a");
	assert_int_equal(json_array_size(json_object_get(op, "hits")), 0);
	assert_int_equal(json_array_size(json_object_get(op, "unk")), 0);
	assert_int_equal(json_integer_value(json_object_get(op, "seq")), 7);
	assert_int_equal(json_integer_value(json_object_get(op, "idx")), 3);
	json_decref(op);
}

typedef void (*mutate_fn)(Vigil__V1__Container *c);

static void m_privileged(Vigil__V1__Container *c)
{
	c->privileged = 1;
}
static void m_caps(Vigil__V1__Container *c)
{
	static char *caps[] = {"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_BPF"};
	c->cap_bounding = caps;
	c->n_cap_bounding = 3;
}
static void m_root(Vigil__V1__Container *c)
{
	c->uid = 0;
}
static void m_nouser(Vigil__V1__Container *c)
{
	c->user_known = 0;
}
static Vigil__V1__Mount mnt[2];
static Vigil__V1__Mount *mntp[2] = {&mnt[0], &mnt[1]};
static void set_mount(Vigil__V1__Container *c, const char *src, const char *type, int ro,
		      const char *prop)
{
	vigil__v1__mount__init(&mnt[0]);
	mnt[0].source = (char *)src;
	mnt[0].destination = "/mnt";
	mnt[0].type = (char *)type;
	mnt[0].read_only = ro;
	mnt[0].propagation = (char *)prop;
	c->mounts = mntp;
	c->n_mounts = 1;
}
static void m_sock(Vigil__V1__Container *c)
{
	set_mount(c, "/var/run/docker.sock", "bind", 0, "rprivate");
}
static void m_podman_sock(Vigil__V1__Container *c)
{
	set_mount(c, "/run/user/1000/podman/podman.sock", "bind", 0, "");
}
static void m_etc(Vigil__V1__Container *c)
{
	set_mount(c, "/etc/", "bind", 1, "rprivate");
}
static void m_rootfs_mount(Vigil__V1__Container *c)
{
	set_mount(c, "/", "bind", 0, "rslave");
}
static void m_proc_fs(Vigil__V1__Container *c)
{
	set_mount(c, "/proc", "proc", 0, ""); /* the container's own /proc */
}
#define OWN_ID "baa7d79f5bbe0d17d92c4d839b2e1208cc6ed818c3e4dc29fc0e823f06738dca"
static void m_own_hosts(Vigil__V1__Container *c)
{
	c->id = OWN_ID; /* Podman's hosts file of this very container */
	set_mount(c, "/run/containers/storage/overlay-containers/" OWN_ID "/userdata/hosts", "bind",
		  0, "rprivate");
}
static void m_other_hosts(Vigil__V1__Container *c)
{
	c->id = "0123456789ab0123456789ab"; /* another container's: a host path to this one */
	set_mount(c, "/run/containers/storage/overlay-containers/" OWN_ID "/userdata/hosts", "bind",
		  0, "rprivate");
}
static void m_own_escape(Vigil__V1__Container *c)
{
	c->id = OWN_ID;
	set_mount(c, "/run/containers/storage/overlay-containers/" OWN_ID "/userdata/hosts/../../x",
		  "bind", 0, "rprivate");
}
static void m_data(Vigil__V1__Container *c)
{
	set_mount(c, "/srv/etcd", "bind", 0, "shared");
}
static void m_seccomp_off(Vigil__V1__Container *c)
{
	c->seccomp_mode = VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_DISABLED;
}
static void m_seccomp_unknown(Vigil__V1__Container *c)
{
	c->seccomp_mode = VIGIL__V1__SECCOMP_MODE__SECCOMP_MODE_UNKNOWN;
	c->seccomp_profile = "";
}
static void m_apparmor_off(Vigil__V1__Container *c)
{
	c->mac_label = "unconfined";
}
static void m_selinux(Vigil__V1__Container *c)
{
	c->mac_label = "system_u:system_r:container_t:s0:c1,c2";
}
static void m_no_limits(Vigil__V1__Container *c)
{
	static Vigil__V1__Limit unl = VIGIL__V1__LIMIT__INIT;
	unl.unlimited = 1;
	c->memory_limit = &unl;
	c->pids_limit = NULL; /* unknown */
}
static void m_nnp(Vigil__V1__Container *c)
{
	c->no_new_privs = VIGIL__V1__TRISTATE__TRISTATE_FALSE;
}
static void m_restart(Vigil__V1__Container *c)
{
	c->restart_policy = "on-failure";
	c->restart_max_retries = 10;
}
static void m_latest(Vigil__V1__Container *c)
{
	c->image = "nginx";
}
static void m_device(Vigil__V1__Container *c)
{
	static Vigil__V1__Device d[2];
	static Vigil__V1__Device *dp[2] = {&d[0], &d[1]};
	vigil__v1__device__init(&d[0]);
	vigil__v1__device__init(&d[1]);
	d[0].path_on_host = "/dev/null";
	d[0].path_in_container = "/dev/null";
	d[1].path_on_host = "/dev/sda";
	d[1].path_in_container = "/dev/xvda";
	c->devices = dp;
	c->n_devices = 2;
}
static void m_older_agent(Vigil__V1__Container *c)
{
	m_device(c);
	c->found_by = ""; /* predates the devices fact */
}
static void m_unknown_facts(Vigil__V1__Container *c)
{
	static char *unk[] = {"privileged", "mounts", "host_pid"};
	c->privileged = 1;
	c->unknown_facts = unk;
	c->n_unknown_facts = 3;
	c->host_pid = 1;
}

static const struct {
	const char *name;
	mutate_fn m;
	const char *rule, *key; /* expected hit (key NULL: any) or NULL */
	const char *absent;	/* a rule that must not fire */
	const char *unknown;	/* a rule that must be unknown */
} posture_cases[] = {
	{"privileged", m_privileged, "privileged", "", "cap_added", NULL},
	{"caps", m_caps, "cap_added", "SYS_ADMIN", NULL, NULL},
	{"caps bpf", m_caps, "cap_added", "BPF", NULL, NULL},
	{"root", m_root, "run_as_root", "", NULL, NULL},
	{"user unknown", m_nouser, NULL, NULL, "run_as_root", "run_as_root"},
	{"docker.sock", m_sock, "runtime_socket", "/var/run/docker.sock", "sensitive_mount", NULL},
	{"podman.sock", m_podman_sock, "runtime_socket", NULL, NULL, NULL},
	{"/etc", m_etc, "sensitive_mount", "/etc/", NULL, NULL},
	{"/ writable", m_rootfs_mount, "sensitive_mount", "/", "shared_propagation", NULL},
	{"proc fs", m_proc_fs, NULL, NULL, "sensitive_mount", NULL},
	{"own hosts file", m_own_hosts, NULL, NULL, "sensitive_mount", NULL},
	{"another's hosts file", m_other_hosts, "sensitive_mount", NULL, NULL, NULL},
	{"own dir, escaped", m_own_escape, "sensitive_mount", NULL, NULL, NULL},
	{"shared", m_data, "shared_propagation", "/mnt", "sensitive_mount", NULL},
	{"seccomp off", m_seccomp_off, "seccomp_unconfined", "", NULL, NULL},
	{"seccomp unknown", m_seccomp_unknown, NULL, NULL, NULL, "seccomp_unconfined"},
	{"apparmor off", m_apparmor_off, "apparmor_unconfined", "", NULL, NULL},
	{"selinux", m_selinux, NULL, NULL, "apparmor_unconfined", NULL},
	{"no memory limit", m_no_limits, "no_memory_limit", "", NULL, "no_pids_limit"},
	{"nnp", m_nnp, "no_new_privs_unset", "", NULL, NULL},
	{"restart", m_restart, "restart_policy", "", NULL, NULL},
	{"latest", m_latest, "image_mutable_tag", "nginx", NULL, NULL},
	{"device", m_device, "host_device", "/dev/sda", NULL, NULL},
	{"older agent", m_older_agent, NULL, NULL, "host_device", "host_device"},
	{"unknown facts", m_unknown_facts, NULL, NULL, "privileged", "privileged"},
	{"unknown mounts", m_unknown_facts, NULL, NULL, "host_pid", "sensitive_mount"},
};

static void test_posture_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(posture_cases) / sizeof(posture_cases[0]); i++) {
		Vigil__V1__Container c;
		hardened(&c);
		posture_cases[i].m(&c);
		json_t *op = posture(NULL, &c, "a");
		if (posture_cases[i].rule &&
		    !has_hit(op, posture_cases[i].rule, posture_cases[i].key))
			fail_msg("%s: %s not raised", posture_cases[i].name, posture_cases[i].rule);
		if (posture_cases[i].absent && has_hit(op, posture_cases[i].absent, NULL))
			fail_msg("%s: %s raised", posture_cases[i].name, posture_cases[i].absent);
		if (posture_cases[i].unknown && !has_unknown(op, posture_cases[i].unknown))
			fail_msg("%s: %s not unknown", posture_cases[i].name,
				 posture_cases[i].unknown);
		json_decref(op);
	}
}

/* The runtime ops of one exec, as "rule:key" strings joined by spaces. */
static char *runtime(const rules_ctx_t *ctx, const char *cid, const char *exe, const char *argv0,
		     const char *arg1, Vigil__V1__Tristate tty)
{
	Vigil__V1__ProcessExec x = VIGIL__V1__PROCESS_EXEC__INIT;
	char *argv[3] = {(char *)argv0, (char *)arg1, NULL};
	x.executable = (char *)exe;
	x.argv = argv;
	x.n_argv = arg1 ? 2 : 1;
	x.tty = tty;
	json_t *ops = json_array();
	rules_evidence_t ev = {1, 0, NOW_NS};
	assert_int_equal(rules_judge_exec(ctx, cid, &x, &ev, ops), 0);
	static char buf[512];
	buf[0] = '\0';
	size_t i;
	json_t *op;
	json_array_foreach(ops, i, op)
	{
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s:%s", i ? " " : "",
			 json_string_value(json_object_get(op, "r")),
			 json_string_value(json_object_get(op, "k")));
	}
	json_decref(ops);
	return buf;
}

static void test_runtime_table(void **state)
{
	(void)state;
	static const struct {
		const char *exe, *argv0, *arg1;
		Vigil__V1__Tristate tty;
		const char *want;
	} cases[] = {
		{"/bin/busybox", "sh", NULL, VIGIL__V1__TRISTATE__TRISTATE_TRUE,
		 "terminal_shell:sh"},
		{"/bin/bash", "bash", "-c", VIGIL__V1__TRISTATE__TRISTATE_FALSE, ""},
		{"/bin/bash", "bash", NULL, VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN, ""},
		{"/usr/bin/apk", "apk", "add", 0, "package_manager:apk"},
		{"/usr/bin/python3", "pip", "install", 0, "package_manager:pip"},
		{"/dev/shm/.x", ".x", NULL, 0, "exec_from_tmp:/dev/shm/.x"},
		{"/var/tmp/a", "a", NULL, 0, "exec_from_tmp:/var/tmp/a"},
		{"/tmpfoo/a", "a", NULL, 0, ""},
		{"/memfd:x (deleted)", "x", NULL, 0, "fileless_exec:/memfd:x (deleted)"},
		{"/usr/bin/ncat", "ncat", "-e", 0, "reverse_shell:ncat"},
		{"/usr/bin/nc", "nc", "-z", 0, ""},
		{"/usr/bin/socat", "socat", "EXEC:/bin/sh", 0, "reverse_shell:socat"},
		{"/sbin/modprobe", "modprobe", "x", 0, "escape_tool:modprobe"},
		{"/usr/bin/find", "find", "/home/.ssh/id_rsa", 0, "credential_search:find"},
		{"/bin/grep", "grep", "PASSWORD", 0, "credential_search:grep"},
		{"/bin/grep", "grep", "error", 0, ""},
		{"/opt/x/xmrig", "xmrig", NULL, 0, "crypto_miner:xmrig"},
		{"/opt/m", "m", "stratum+tcp://pool:3333", 0, "crypto_miner:m"},
		{"/usr/bin/curl", "curl", "-sS", 0, ""},
	};
	rules_t *r = rules_new_default();
	rules_ctx_t ctx = ctx_of(r, NULL, "a");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = runtime(&ctx, "c1", cases[i].exe, cases[i].argv0, cases[i].arg1,
					  cases[i].tty);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s %s: got '%s', want '%s'", cases[i].exe,
				 cases[i].arg1 ? cases[i].arg1 : "", got, cases[i].want);
	}
	assert_true(rules_names_sorted());
	/* a setuid-root binary run by uid 1000 */
	Vigil__V1__ProcessExec x = VIGIL__V1__PROCESS_EXEC__INIT;
	char *argv[] = {"passwd", NULL};
	x.executable = "/usr/bin/passwd";
	x.argv = argv;
	x.n_argv = 1;
	x.real_uid = 1000;
	json_t *ops = json_array();
	rules_evidence_t ev = {1, 0, NOW_NS};
	assert_int_equal(rules_judge_exec(&ctx, "c1", &x, &ev, ops), 0);
	assert_int_equal(json_array_size(ops), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ops, 0), "r")),
			    "setuid_root");
	json_decref(ops);
	/* a process of the node itself is not judged */
	assert_string_equal(runtime(&ctx, "", "/usr/bin/apt-get", "apt-get", NULL, 0), "");
	rules_unref(r);
}

static const char *const RULES_YAML =
	"rules:\n"
	"  package_manager: {enabled: false}\n"
	"  privileged: {severity: low}\n"
	"registries: [registry.example, docker.io/library]\n"
	"exceptions:\n"
	"  - {rule: crypto_miner, reason: bench, container: \"bench-*\"}\n"
	"  - {rule: privileged, reason: exporter, label: \"app=export*\"}\n"
	"  - {rule: \"*\", reason: lab, agent: \"lab-*\"}\n"
	"  - {rule: escape_tool, reason: old, image: \"*\", expires: 2020-01-01}\n";

static void test_rules_file_in_force(void **state)
{
	(void)state;
	char err[256];
	rules_t *r = rules_parse(RULES_YAML, strlen(RULES_YAML), "t.yaml", err, sizeof(err));
	assert_non_null(r);
	assert_false(rules_enabled(r, "package_manager"));
	assert_int_equal(rules_severity(r, "privileged"), 2);
	assert_int_equal(rules_exception_count(r), 4);

	/* exceptions of runtime rules find the container through the subjects */
	rules_subjects_t *subj = rules_subjects_new();
	rules_ctx_t ctx = ctx_of(r, subj, "node-1");
	Vigil__V1__Container c;
	hardened(&c);
	c.id = "bench1";
	c.name = "bench-miner";
	json_decref(posture(r, &c, "node-1")); /* no subjects: not remembered */
	assert_string_equal(runtime(&ctx, "bench1", "/x/xmrig", "xmrig", NULL, 0),
			    "crypto_miner:xmrig");
	json_t *ops = json_array();
	rules_evidence_t ev = {1, 0, NOW_NS};
	assert_int_equal(rules_judge_container(&ctx, &c, &ev, ops), 0);
	json_decref(ops);
	assert_string_equal(runtime(&ctx, "bench1", "/x/xmrig", "xmrig", NULL, 0), "");
	assert_string_equal(runtime(&ctx, "bench1", "/bin/nsenter", "nsenter", NULL, 0),
			    "escape_tool:nsenter"); /* that exception expired */
	assert_string_equal(runtime(&ctx, "bench1", "/usr/bin/apt", "apt", NULL, 0), "");

	/* by label; the registry allow-list */
	static Vigil__V1__Label lab = VIGIL__V1__LABEL__INIT;
	static Vigil__V1__Label *labs[] = {&lab};
	lab.key = "app";
	lab.value = "exporter";
	hardened(&c);
	c.privileged = 1;
	c.image = "quay.io/x/exporter:v1";
	json_t *op = posture(r, &c, "node-1");
	assert_true(has_hit(op, "privileged", ""));
	assert_true(has_hit(op, "image_registry", "quay.io"));
	json_decref(op);
	c.labels = labs;
	c.n_labels = 1;
	c.image = "nginx:1.25";
	op = posture(r, &c, "node-1");
	assert_false(has_hit(op, "privileged", NULL));
	assert_false(has_hit(op, "image_registry", NULL)); /* docker.io/library/nginx */
	json_decref(op);
	op = posture(r, &c, "lab-3"); /* every rule excepted for lab-* */
	assert_int_equal(json_array_size(json_object_get(op, "hits")), 0);
	json_decref(op);

	/* by image digest: the image id or a registry digest */
	static const char yaml[] =
		"exceptions:\n"
		"  - {rule: privileged, reason: pinned, image_digest: \"sha256:aa*\"}\n"
		"  - {rule: host_pid, reason: mirror, image_digest: \"*/mirror@sha256:cc*\"}\n";
	rules_t *rd = rules_parse(yaml, strlen(yaml), "d.yaml", err, sizeof(err));
	assert_non_null(rd);
	hardened(&c);
	c.privileged = 1;
	c.host_pid = 1;
	c.image_digest = "sha256:aabbcc";
	op = posture(rd, &c, "node-1");
	assert_false(has_hit(op, "privileged", NULL));
	assert_true(has_hit(op, "host_pid", ""));
	json_decref(op);
	char *repo[] = {"registry.example/mirror@sha256:ccdd"};
	c.image_digest = "sha256:ff";
	c.repo_digests = repo;
	c.n_repo_digests = 1;
	op = posture(rd, &c, "node-1");
	assert_true(has_hit(op, "privileged", ""));
	assert_false(has_hit(op, "host_pid", NULL));
	json_decref(op);
	rules_unref(rd);
	rules_subjects_free(subj);
	rules_unref(r);
}

static void test_rules_file_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"rules:\n  nope: {enabled: true}\n", "f:2:3: unknown rule \"nope\""},
		{"rules:\n  privileged: {enabled: maybe}\n", "f:2:25: expected true or false"},
		{"rules:\n  privileged: {color: red}\n", "f:2:16: unknown setting \"color\""},
		{"colour: 1\n", "f:1:1: unknown key \"colour\""},
		{"exceptions:\n  - {rule: privileged, image: x}\n", "f:2:5: an exception gives"},
		{"exceptions:\n  - {reason: r, image: x}\n", "f:2:5: an exception names its rule"},
		{"exceptions:\n  - {rule: privileged, reason: r, label: novalue}\n",
		 "label must be key=value"},
		{"exceptions:\n  - {rule: privileged, reason: r, image: x, expires: soon}\n",
		 "expires must be a date"},
		{"exceptions:\n  - {rule: privileged, reason: r, image: x}\n"
		 "  - {rule: privileged, reason: s, image: x}\n",
		 "f:3:5: the same exception as on line 2"},
		{"registries: &a [x]\nexceptions: *a\n", "f:2:1: aliases are not allowed"},
		{"rules: {a: [\n", "f:2:1:"},
		{"- 1\n", "f:1:1: expected a mapping"},
		{"registries: [a]\nrules: {}\nregistries: [b]\n",
		 "f:3:1: \"registries\" given twice"},
		{"rules:\n  privileged: {enabled: true, enabled: false}\n",
		 "f:2:31: \"enabled\" given twice"},
	};
	char err[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rules_t *r =
			rules_parse(cases[i].text, strlen(cases[i].text), "f", err, sizeof(err));
		if (r || !strstr(err, cases[i].want))
			fail_msg("case %zu: got '%s', want '%s'", i, r ? "(accepted)" : err,
				 cases[i].want);
	}
	/* a glob too long */
	char text[600];
	snprintf(text, sizeof(text),
		 "exceptions:\n  - {rule: privileged, reason: r, image: %0300d}\n", 0);
	assert_null(rules_parse(text, strlen(text), "f", err, sizeof(err)));
	assert_non_null(strstr(err, "longer than 256 bytes"));
	/* empty is the defaults */
	rules_t *r = rules_parse("", 0, "f", err, sizeof(err));
	assert_non_null(r);
	assert_true(rules_enabled(r, "privileged"));
	rules_unref(r);
}

/* --- the findings plan ------------------------------------------------------ */

static json_t *pos_op(const char *id, int seq)
{
	return json_pack("{s:s, s:s, s:I, s:i, s:i, s:[{s:s, s:s, s:i, s:s}], s:[]}", "op",
			 "posture", "id", id, "ts", (json_int_t)NOW_NS, "seq", seq, "idx", 0,
			 "hits", "r", "privileged", "k", "", "s", 5, "m", "privileged", "unk");
}

static json_t *rt_op(const char *id, const char *rule, const char *key, int seq, int idx)
{
	return json_pack("{s:s, s:s, s:I, s:i, s:i, s:s, s:s, s:i, s:s, s:{}}", "op", "runtime",
			 "id", id, "ts", (json_int_t)NOW_NS, "seq", seq, "idx", idx, "r", rule, "k",
			 key, "s", 4, "m", "m", "d");
}

static json_t *stop_op(const char *id)
{
	return json_pack("{s:s, s:s, s:I}", "op", "stopped", "id", id, "ts", (json_int_t)NOW_NS);
}

static json_t *plan(json_t *ops_a, json_t *ops_b, int *empty)
{
	rules_plan_src_t src[] = {{1, ops_a}, {2, ops_b}};
	char *text = rules_plan_build(src, ops_b ? 2 : 1, empty);
	assert_non_null(text);
	json_t *p = json_loads(text, 0, NULL);
	assert_non_null(p);
	free(text);
	return p;
}

static void test_plan(void **state)
{
	(void)state;
	json_t *a = json_array(), *b = json_array();
	/* agent 1: c1 posture twice (the last wins), stopped after (its
	 * findings stay); runtime hits counted per (container, rule, key) */
	json_array_append_new(a, pos_op("c1", 1));
	json_array_append_new(a, rt_op("c1", "drift", "/x", 1, 1));
	json_array_append_new(a, pos_op("c1", 2));
	json_array_append_new(a, rt_op("c1", "drift", "/x", 2, 5));
	json_array_append_new(a, rt_op("c1", "drift", "/y", 2, 6));
	json_array_append_new(a, stop_op("c1"));
	json_array_append_new(a, stop_op("c2"));
	json_array_append_new(a, pos_op("c2", 3));
	/* agent 2: the same container id is another container */
	json_array_append_new(b, rt_op("c1", "drift", "/x", 9, 0));
	json_array_append_new(
		b, json_pack("{s:s, s:[s]}", "op", "full", "ids", "c9")); /* c1 not listed */
	json_array_append_new(b, rt_op("c3", "drift", "/z", 9, 2));
	int empty = 1;
	json_t *p = plan(a, b, &empty);
	assert_false(empty);
	json_t *posture = json_object_get(p, "posture"), *rt = json_object_get(p, "runtime");
	json_t *full = json_object_get(p, "full");
	assert_int_equal(json_array_size(posture), 2);
	json_t *e;
	size_t i;
	json_array_foreach(posture, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));
		assert_int_equal(json_integer_value(json_object_get(e, "seq")),
				 strcmp(id, "c1") == 0 ? 2 : 3);
	}
	assert_null(json_object_get(p, "gone")); /* a stop resolves nothing */
	assert_int_equal(json_array_size(rt), 4);
	json_t *x = json_array_get(rt, 0); /* agent 1, c1, drift, /x */
	assert_int_equal(json_integer_value(json_object_get(x, "a")), 1);
	assert_int_equal(json_integer_value(json_object_get(x, "n")), 2);
	assert_int_equal(json_integer_value(json_object_get(x, "seq")), 1);
	assert_int_equal(json_integer_value(json_object_get(x, "idx")), 1);
	assert_int_equal(json_integer_value(json_object_get(x, "lseq")), 2);
	assert_int_equal(json_integer_value(json_object_get(x, "lidx")), 5);
	assert_int_equal(json_array_size(full), 1);
	json_t *ids = json_object_get(json_array_get(full, 0), "ids");
	assert_int_equal(json_array_size(ids), 2); /* c9, and c3 touched after */
	json_decref(p);
	json_decref(a);
	json_decref(b);

	/* only status and upserts: nothing about findings */
	a = json_array();
	json_array_append_new(a, json_pack("{s:s}", "op", "status"));
	p = plan(a, NULL, &empty);
	assert_true(empty);
	json_decref(p);
	json_decref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hardened_raises_nothing),
		cmocka_unit_test(test_posture_table),
		cmocka_unit_test(test_runtime_table),
		cmocka_unit_test(test_rules_file_in_force),
		cmocka_unit_test(test_rules_file_errors),
		cmocka_unit_test(test_plan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
