// SPDX-License-Identifier: Apache-2.0
/*
 * Runtime rules: judge one exec (or uid change) in a container. A process
 * is known by two names, the base names of its argv[0] and of its
 * executable (busybox runs "sh" as /bin/busybox); a rule matches either.
 */
#include "rules/rules.h"
#include "rules/rules_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef Vigil__V1__ProcessExec exec_t;

/* Append one runtime op for rule with key and summary. */
static int add_op(const rules_ctx_t *ctx, json_t *ops, const char *cid, const char *rule,
		  const char *key, const rules_evidence_t *ev, const exec_t *x, const char *fmt,
		  ...) __attribute__((format(printf, 8, 9)));
static int add_op(const rules_ctx_t *ctx, json_t *ops, const char *cid, const char *rule,
		  const char *key, const rules_evidence_t *ev, const exec_t *x, const char *fmt,
		  ...)
{
	const rules_t *r = ctx->rules;
	if (!rules_enabled(r, rule) ||
	    rules_excepted(ctx, rules_subjects_get(ctx->subjects, cid), rule))
		return 0;
	char m[RULES_SUMMARY_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	json_t *op = json_object();
	json_t *d = json_object();
	if (!op || !d) {
		json_decref(op);
		json_decref(d);
		return -1;
	}
	if (x) {
		json_object_set_new(d, "pid", json_integer(x->pid));
		json_object_set_new(d, "uid", json_integer(x->uid));
		json_object_set_new(d, "exe", rules_text(x->executable, RULES_KEY_MAX));
		json_object_set_new(d, "argv0",
				    rules_text(x->n_argv ? x->argv[0] : "", RULES_KEY_MAX));
	}
	int rc = json_object_set_new(op, "op", json_string("runtime"));
	/* the id as every other op carries it (rows.c checked it) */
	rc |= json_object_set_new(op, "id", json_string_nocheck(cid));
	rc |= json_object_set_new(op, "ts", json_integer(ev->ts_ns));
	rc |= json_object_set_new(op, "seq", json_integer((json_int_t)ev->seq));
	rc |= json_object_set_new(op, "idx", json_integer(ev->idx));
	rc |= json_object_set_new(op, "r", json_string(rule));
	rc |= json_object_set_new(op, "k", rules_text(key, RULES_KEY_MAX));
	rc |= json_object_set_new(op, "s", json_integer(rules_severity(r, rule)));
	rc |= json_object_set_new(op, "m", rules_text(m, sizeof(m)));
	rc |= json_object_set_new(op, "d", d);
	if (rc) {
		json_decref(op);
		return -1;
	}
	return json_array_append_new(ops, op);
}

/* What a process name is, as bits: one table, one binary search per name
 * (every exec of the fleet passes here). */
enum {
	N_SHELL = 1 << 0,
	N_PACKAGE = 1 << 1,
	N_ESCAPE = 1 << 2,
	N_NETCAT = 1 << 3,
	N_SOCAT = 1 << 4,
	N_SEARCH = 1 << 5,
	N_MINER = 1 << 6,
};
typedef struct {
	const char *name;
	unsigned cls;
} name_class_t;
/* Sorted by name (strcmp order; test_rules checks). */
static const name_class_t name_classes[] = {
	{"ack", N_SEARCH},
	{"ag", N_SEARCH},
	{"apk", N_PACKAGE},
	{"apt", N_PACKAGE},
	{"apt-get", N_PACKAGE},
	{"aptitude", N_PACKAGE},
	{"ash", N_SHELL},
	{"bash", N_SHELL},
	{"ccminer", N_MINER},
	{"cgminer", N_MINER},
	{"chroot", N_ESCAPE},
	{"cpuminer", N_MINER},
	{"csh", N_SHELL},
	{"dash", N_SHELL},
	{"debugfs", N_ESCAPE},
	{"dnf", N_PACKAGE},
	{"dpkg", N_PACKAGE},
	{"egrep", N_SEARCH},
	{"ethminer", N_MINER},
	{"fgrep", N_SEARCH},
	{"find", N_SEARCH},
	{"fish", N_SHELL},
	{"gem", N_PACKAGE},
	{"grep", N_SEARCH},
	{"insmod", N_ESCAPE},
	{"ksh", N_SHELL},
	{"locate", N_SEARCH},
	{"lolminer", N_MINER},
	{"microdnf", N_PACKAGE},
	{"minerd", N_MINER},
	{"mksh", N_SHELL},
	{"modprobe", N_ESCAPE},
	{"mount", N_ESCAPE},
	{"nbminer", N_MINER},
	{"nc", N_NETCAT},
	{"nc.openbsd", N_NETCAT},
	{"nc.traditional", N_NETCAT},
	{"ncat", N_NETCAT},
	{"netcat", N_NETCAT},
	{"npm", N_PACKAGE},
	{"nsenter", N_ESCAPE},
	{"pip", N_PACKAGE},
	{"pip3", N_PACKAGE},
	{"rg", N_SEARCH},
	{"rmmod", N_ESCAPE},
	{"rpm", N_PACKAGE},
	{"sh", N_SHELL},
	{"socat", N_SOCAT},
	{"t-rex", N_MINER},
	{"tcsh", N_SHELL},
	{"unshare", N_ESCAPE},
	{"xmr-stak", N_MINER},
	{"xmrig", N_MINER},
	{"yarn", N_PACKAGE},
	{"yum", N_PACKAGE},
	{"zsh", N_SHELL},
	{"zypper", N_PACKAGE},
};
#define N_NAMES (sizeof(name_classes) / sizeof(name_classes[0]))

static int cmp_name(const void *key, const void *elem)
{
	return strcmp(key, ((const name_class_t *)elem)->name);
}

/* Which first letters and lengths the table has: most names of a fleet's
 * execs are ruled out with two bit tests, without a string compare. */
#define NAME_LEN_MAX 15
static uint16_t name_hint[256]; /* bit n: a name of length n starts so */
static pthread_once_t name_hint_once = PTHREAD_ONCE_INIT;

static void name_hint_init(void)
{
	for (size_t i = 0; i < N_NAMES; i++) {
		size_t len = strlen(name_classes[i].name);
		if (len <= NAME_LEN_MAX)
			name_hint[(unsigned char)name_classes[i].name[0]] |= (uint16_t)(1u << len);
	}
}

static unsigned name_class(const char *name)
{
	size_t len = strnlen(name, NAME_LEN_MAX + 1);
	if (!len || len > NAME_LEN_MAX)
		return 0;
	pthread_once(&name_hint_once, name_hint_init);
	if (!(name_hint[(unsigned char)name[0]] & (1u << len)))
		return 0;
	const name_class_t *c = bsearch(name, name_classes, N_NAMES, sizeof(*c), cmp_name);
	return c ? c->cls : 0;
}

bool rules_names_sorted(void)
{
	for (size_t i = 1; i < N_NAMES; i++)
		if (strcmp(name_classes[i - 1].name, name_classes[i].name) >= 0)
			return false;
	return true;
}

static const char *const secrets[] = {"id_rsa",	   "id_dsa",   "id_ecdsa",	"id_ed25519",
				      ".pem",	   "shadow",   "password",	"private key",
				      "BEGIN RSA", "BEGIN EC", "BEGIN OPENSSH", NULL};

typedef struct {
	const char *n0; /* base name of argv[0] */
	const char *ne; /* base name of the executable */
	unsigned c0, ce;
} names_t;

/* The name of the two that is of class cls, or NULL. */
static const char *named(const names_t *n, unsigned cls)
{
	if (n->c0 & cls)
		return n->n0;
	if (n->ce & cls)
		return n->ne;
	return NULL;
}

/* An argument after argv[0] contains needle (case_fold: ignoring case). */
static bool any_arg(const exec_t *x, const char *needle, bool case_fold)
{
	for (size_t i = 1; i < x->n_argv; i++)
		if (x->argv[i] && (case_fold ? rules_contains_ci(x->argv[i], needle)
					     : strstr(x->argv[i], needle) != NULL))
			return true;
	return false;
}

static bool has_arg(const exec_t *x, const char *arg)
{
	for (size_t i = 1; i < x->n_argv; i++)
		if (x->argv[i] && strcmp(x->argv[i], arg) == 0)
			return true;
	return false;
}

/* An argument names a stratum+tcp:// or stratum+ssl:// URL. Every exec
 * of the fleet passes here: one pass for the rare '+' per argument. */
static bool stratum_url(const exec_t *x)
{
	for (size_t i = 1; i < x->n_argv; i++) {
		const char *a = x->argv[i];
		for (const char *p = a ? strchr(a, '+') : NULL; p; p = strchr(p + 1, '+'))
			if (p - a >= 7 && !strncmp(p - 7, "stratum", 7) &&
			    (!strncmp(p + 1, "tcp://", 6) || !strncmp(p + 1, "ssl://", 6)))
				return true;
	}
	return false;
}

/* An argument names bash's /dev/tcp/ or /dev/udp/ (network redirection). */
static bool dev_socket(const exec_t *x)
{
	for (size_t i = 1; i < x->n_argv; i++)
		for (const char *p = x->argv[i] ? strstr(x->argv[i], "/dev/") : NULL; p;
		     p = strstr(p + 5, "/dev/"))
			if (!strncmp(p + 5, "tcp/", 4) || !strncmp(p + 5, "udp/", 4))
				return true;
	return false;
}

/* nc -e/-c, socat exec:/system:, a shell with /dev/tcp or /dev/udp. */
static bool reverse_shell(const exec_t *x, const names_t *n)
{
	if (named(n, N_NETCAT))
		return has_arg(x, "-e") || has_arg(x, "-c") || any_arg(x, "--exec", false) ||
		       any_arg(x, "--sh-exec", false) || any_arg(x, "--lua-exec", false);
	if (named(n, N_SOCAT))
		return any_arg(x, "exec:", true) || any_arg(x, "system:", true);
	if (named(n, N_SHELL))
		return dev_socket(x);
	return false;
}

static int judge_exec_rules(const rules_ctx_t *r, const char *cid, const exec_t *x,
			    const rules_evidence_t *ev, json_t *ops)
{
	names_t n = {rules_basename(x->n_argv ? x->argv[0] : ""), rules_basename(x->executable), 0,
		     0};
	n.c0 = name_class(n.n0);
	n.ce = name_class(n.ne);
	const char *exe = x->executable ? x->executable : "";
	const char *hit;
	int rc = 0;

	if ((hit = named(&n, N_SHELL)) && x->tty == VIGIL__V1__TRISTATE__TRISTATE_TRUE)
		rc |= add_op(r, ops, cid, "terminal_shell", hit, ev, x, "shell %s with a terminal",
			     hit);
	if ((hit = named(&n, N_PACKAGE)))
		rc |= add_op(r, ops, cid, "package_manager", hit, ev, x, "package manager %s run",
			     hit);
	static const char *const tmp_dirs[] = {"/tmp/", "/var/tmp/", "/dev/shm/", NULL};
	for (size_t i = 0; exe[0] == '/' && tmp_dirs[i]; i++)
		if (exe[1] == tmp_dirs[i][1] && strncmp(exe, tmp_dirs[i], strlen(tmp_dirs[i])) == 0)
			rc |= add_op(r, ops, cid, "exec_from_tmp", exe, ev, x, "%s executed", exe);
	if (x->exe_memfd == VIGIL__V1__TRISTATE__TRISTATE_TRUE ||
	    (exe[0] == '/' && exe[1] == 'm' && strncmp(exe, "/memfd:", 7) == 0) ||
	    (exe[0] == 'm' && strncmp(exe, "memfd:", 6) == 0))
		rc |= add_op(r, ops, cid, "fileless_exec", exe, ev, x, "%s executed from memory",
			     exe);
	else if (x->exe_upper_layer == VIGIL__V1__TRISTATE__TRISTATE_TRUE)
		rc |= add_op(r, ops, cid, "drift", exe, ev, x,
			     "%s is not in the image (written after start)", exe);
	if (reverse_shell(x, &n))
		rc |= add_op(r, ops, cid, "reverse_shell", n.n0[0] ? n.n0 : n.ne, ev, x,
			     "%s hands a shell to the network", n.n0[0] ? n.n0 : n.ne);
	if ((hit = named(&n, N_ESCAPE)))
		rc |= add_op(r, ops, cid, "escape_tool", hit, ev, x, "%s run", hit);
	/* one finding per container: every command of the session counts */
	if (x->exec_session == VIGIL__V1__TRISTATE__TRISTATE_TRUE)
		rc |= add_op(r, ops, cid, "exec_session", "", ev, x,
			     "exec session into the container: %s%s", n.n0[0] ? n.n0 : n.ne,
			     x->tty == VIGIL__V1__TRISTATE__TRISTATE_TRUE ? " (interactive)" : "");
	if ((hit = named(&n, N_SEARCH))) {
		for (size_t i = 0; secrets[i]; i++)
			if (any_arg(x, secrets[i], true)) {
				rc |= add_op(r, ops, cid, "credential_search", hit, ev, x,
					     "%s searching for %s", hit, secrets[i]);
				break;
			}
	}
	/* a setuid-root binary run by a non-root user (an older agent sends
	 * no real uid: 0) */
	if (x->uid == 0 && x->real_uid != 0)
		rc |= add_op(r, ops, cid, "setuid_root", rules_basename(exe), ev, x,
			     "%s runs as root for uid %u (setuid)", exe, x->real_uid);
	if ((hit = named(&n, N_MINER)))
		rc |= add_op(r, ops, cid, "crypto_miner", hit, ev, x, "miner %s run", hit);
	else if (stratum_url(x))
		rc |= add_op(r, ops, cid, "crypto_miner", n.n0[0] ? n.n0 : n.ne, ev, x,
			     "%s talks the stratum mining protocol", n.n0[0] ? n.n0 : n.ne);
	return rc ? -1 : 0;
}

int rules_judge_exec(const rules_ctx_t *r, const char *container_id, const exec_t *x,
		     const rules_evidence_t *ev, json_t *ops)
{
	if (!container_id || !container_id[0])
		return 0; /* a process of the node, not of a container */
	return judge_exec_rules(r, container_id, x, ev, ops);
}

int rules_judge_uid_change(const rules_ctx_t *r, const char *container_id,
			   const Vigil__V1__ProcessUidChange *u, const rules_evidence_t *ev,
			   json_t *ops)
{
	if (!container_id || !container_id[0])
		return 0;
	/* a setuid binary runs with effective uid 0 from its exec on: what
	 * counts is the real uid it had */
	bool was_root = u->old_real_uid == 0;
	bool is_root = u->new_real_uid == 0 || u->new_effective_uid == 0;
	if (was_root || !is_root)
		return 0;
	const char *exe = u->executable && u->executable[0] ? u->executable : u->argv0;
	exec_t x = VIGIL__V1__PROCESS_EXEC__INIT;
	x.pid = u->pid;
	x.uid = u->new_effective_uid;
	x.executable = (char *)(u->executable ? u->executable : "");
	char *argv0 = u->argv0 ? u->argv0 : (char *)"";
	x.argv = &argv0;
	x.n_argv = 1;
	return add_op(r, ops, container_id, "setuid_root", rules_basename(exe), ev, &x,
		      "%s became root (uid %u to %u)", exe ? exe : "", u->old_real_uid,
		      u->new_effective_uid);
}
