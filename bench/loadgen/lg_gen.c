// SPDX-License-Identifier: Apache-2.0
/* Synthetic events and frames (see lg_gen.h). */
#include "lg_gen.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "frame.h"
#include "vigil/v1/protocol.pb-c.h"
#include "vtime.h"
#include "wire.h"

#define GEN_CONTAINERS 8u
#define GEN_ARGV 4u /* argv0, flag, argument, padding */
#define GEN_LABELS 3u

struct lg_gen_agent {
	uint32_t index;
	char id[GEN_CONTAINERS][65];
	char name[GEN_CONTAINERS][48];
	char image[GEN_CONTAINERS][80];
	char digest[GEN_CONTAINERS][72];
	char pod[GEN_CONTAINERS][64];
	Vigil__V1__Label label[GEN_CONTAINERS][GEN_LABELS];
	Vigil__V1__Label *label_ptr[GEN_CONTAINERS][GEN_LABELS];
	Vigil__V1__Container c[GEN_CONTAINERS];
};

struct lg_gen {
	lg_gen_params_t p;
	Vigil__V1__Event *ev;
	Vigil__V1__Event **evp;
	Vigil__V1__ProcessExec *px;
	Vigil__V1__ContainerStarted *cs;
	Vigil__V1__ContainerStopped *cx;
	char **argv;	    /* GEN_ARGV per event */
	char (*argbuf)[48]; /* one formatted argument per event */
	char *pad;	    /* pad_cap filler characters, NUL-terminated */
	size_t pad_cap;
};

/* splitmix64's finalizer: a cheap, well-mixed hash of x. */
static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static void hex_from(char *out, size_t nhex, uint64_t seed)
{
	static const char digits[] = "0123456789abcdef";
	uint64_t h = 0;
	for (size_t i = 0; i < nhex; i++) {
		if (i % 16 == 0)
			h = mix64(seed + i);
		out[i] = digits[h & 15];
		h >>= 4;
	}
	out[nhex] = '\0';
}

/* --- fixed content shared by every agent --------------------------------- */

typedef struct {
	const char *exe;
	const char *argv0;
	const char *flag;
	const char *arg_pre; /* the argument: pre, 8 hex digits, post */
	const char *arg_post;
} exec_kind_t;

static const exec_kind_t exec_kinds[] = {
	{"/usr/bin/curl", "curl", "-sS", "https://svc-", ".internal/healthz"},
	{"/bin/sh", "sh", "-c", "/app/bin/job --shard ", ""},
	{"/usr/bin/python3", "python3", "-m", "worker.task_", ""},
	{"/usr/local/bin/node", "node", "--max-old-space-size=512", "/srv/app/", ".js"},
	{"/usr/bin/git", "git", "fetch", "origin/feature-", ""},
	{"/bin/busybox", "wget", "-q", "http://10.0.0.1/", ".tar.gz"},
	{"/usr/sbin/nginx", "nginx", "-g", "daemon off; worker ", ";"},
	{"/usr/bin/java", "java", "-jar", "/opt/app/service-", ".jar"},
};
#define N_EXEC_KINDS (sizeof(exec_kinds) / sizeof(exec_kinds[0]))

static const char *const cwds[] = {"/",		"/app",	    "/tmp", "/srv/data", "/var/www/html",
				   "/home/app", "/opt/app", "/root"};
static const uint32_t uids[] = {0, 0, 1000, 33, 65534, 999, 1001, 0};

static char bad_arg[] = "bad-\xff-utf8";

static char *const cmd_words[] = {"/app/server", "--config", "/etc/app/config.yaml", "--port",
				  "8080"};
static char *const caps_default[] = {"CAP_CHOWN",	"CAP_DAC_OVERRIDE", "CAP_FOWNER",
				     "CAP_FSETID",	"CAP_KILL",	    "CAP_SETGID",
				     "CAP_SETUID",	"CAP_SETPCAP",	    "CAP_NET_BIND_SERVICE",
				     "CAP_NET_RAW",	"CAP_SYS_CHROOT",   "CAP_MKNOD",
				     "CAP_AUDIT_WRITE", "CAP_SETFCAP"};
static char *const caps_privileged[] = {"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE",
					"CAP_SYS_MODULE", "CAP_DAC_READ_SEARCH"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static Vigil__V1__Mount mount_data = {PROTOBUF_C_MESSAGE_INIT(&vigil__v1__mount__descriptor),
				      "/var/lib/app/data", "/data", 0, "bind"};
static Vigil__V1__Mount mount_conf = {PROTOBUF_C_MESSAGE_INIT(&vigil__v1__mount__descriptor),
				      "/etc/app", "/etc/app", 1, "bind"};
static Vigil__V1__Mount mount_sock = {PROTOBUF_C_MESSAGE_INIT(&vigil__v1__mount__descriptor),
				      "/var/run/docker.sock", "/var/run/docker.sock", 0, "bind"};
static Vigil__V1__Mount *mounts_normal[] = {&mount_data, &mount_conf};
static Vigil__V1__Mount *mounts_risky[] = {&mount_data, &mount_conf, &mount_sock};

/* --- per-agent data --------------------------------------------------------- */

lg_gen_agent_t *lg_gen_agent_new(uint32_t index)
{
	lg_gen_agent_t *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->index = index;
	static const char *const apps[] = {"web", "api",  "worker", "cache",
					   "db",  "cron", "proxy",  "debug"};
	for (uint32_t k = 0; k < GEN_CONTAINERS; k++) {
		uint64_t seed = mix64(((uint64_t)index << 8) | k);
		hex_from(a->id[k], 64, seed);
		snprintf(a->name[k], sizeof(a->name[k]), "lg%05u-%s-%u", index, apps[k], k);
		snprintf(a->image[k], sizeof(a->image[k]),
			 "registry.example.invalid/team/%s:1.%u.%u", apps[k], k,
			 (unsigned)(seed % 20));
		memcpy(a->digest[k], "sha256:", 7);
		hex_from(a->digest[k] + 7, 64, seed ^ 0xd16e57);
		snprintf(a->pod[k], sizeof(a->pod[k]), "%s-%.10s", apps[k], a->id[k] + 20);
		static char *const keys[GEN_LABELS] = {"app", "tier", "io.kubernetes.pod.name"};
		char *vals[GEN_LABELS] = {(char *)apps[k], k < 4 ? "frontend" : "backend",
					  a->pod[k]};
		for (uint32_t l = 0; l < GEN_LABELS; l++) {
			vigil__v1__label__init(&a->label[k][l]);
			a->label[k][l].key = keys[l];
			a->label[k][l].value = vals[l];
			a->label_ptr[k][l] = &a->label[k][l];
		}
		Vigil__V1__Container *c = &a->c[k];
		vigil__v1__container__init(c);
		bool privileged = k == GEN_CONTAINERS - 1;
		c->id = a->id[k];
		c->name = a->name[k];
		c->runtime = k % 2 ? VIGIL__V1__RUNTIME__RUNTIME_CONTAINERD
				   : VIGIL__V1__RUNTIME__RUNTIME_DOCKER;
		c->image = a->image[k];
		c->image_digest = a->digest[k];
		c->n_labels = GEN_LABELS;
		c->labels = a->label_ptr[k];
		c->n_command = NELEM(cmd_words);
		c->command = (char **)cmd_words;
		c->uid = privileged ? 0 : 1000;
		c->gid = c->uid;
		c->user_known = 1;
		c->privileged = privileged;
		c->n_cap_effective = privileged ? NELEM(caps_privileged) : NELEM(caps_default);
		c->cap_effective = (char **)(privileged ? caps_privileged : caps_default);
		c->n_cap_bounding = c->n_cap_effective;
		c->cap_bounding = c->cap_effective;
		c->host_pid = privileged;
		c->host_net = privileged;
		c->n_mounts = privileged ? NELEM(mounts_risky) : NELEM(mounts_normal);
		c->mounts = privileged ? mounts_risky : mounts_normal;
		c->read_only_rootfs = k % 3 == 0;
		c->seccomp_profile = privileged ? "unconfined" : "runtime/default";
		c->apparmor_profile = privileged ? "unconfined" : "docker-default";
		c->init_pid = 1000 + (uint32_t)(seed % 100000);
		c->created_ns =
			INT64_C(1700000000000000000) + (int64_t)(seed % 1000000) * 1000000000;
		c->started_ns = c->created_ns + 2000000000;
		c->state = "running";
	}
	return a;
}

void lg_gen_agent_free(lg_gen_agent_t *a)
{
	free(a);
}

/* --- generator ---------------------------------------------------------------- */

lg_gen_t *lg_gen_new(const lg_gen_params_t *p)
{
	lg_gen_t *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->p = *p;
	size_t n = p->batch_events;
	g->ev = calloc(n, sizeof(*g->ev));
	g->evp = calloc(n, sizeof(*g->evp));
	g->px = calloc(n, sizeof(*g->px));
	g->cs = calloc(n, sizeof(*g->cs));
	g->cx = calloc(n, sizeof(*g->cx));
	g->argv = calloc(n * GEN_ARGV, sizeof(*g->argv));
	g->argbuf = calloc(n, sizeof(*g->argbuf));
	g->pad_cap = p->event_bytes + 16;
	g->pad = malloc(g->pad_cap + 1);
	if (!g->ev || !g->evp || !g->px || !g->cs || !g->cx || !g->argv || !g->argbuf || !g->pad) {
		lg_gen_free(g);
		return NULL;
	}
	/* Filler that reads like an encoded payload argument. */
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint64_t h = 0;
	for (size_t i = 0; i < g->pad_cap; i++) {
		if (i % 10 == 0)
			h = mix64(i);
		g->pad[i] = alphabet[h & 63];
		h >>= 6;
	}
	g->pad[g->pad_cap] = '\0';
	for (size_t i = 0; i < n; i++) {
		vigil__v1__event__init(&g->ev[i]);
		vigil__v1__process_exec__init(&g->px[i]);
		vigil__v1__container_started__init(&g->cs[i]);
		vigil__v1__container_stopped__init(&g->cx[i]);
		g->evp[i] = &g->ev[i];
		g->px[i].argv = &g->argv[i * GEN_ARGV];
	}
	return g;
}

void lg_gen_free(lg_gen_t *g)
{
	if (!g)
		return;
	free(g->ev);
	free(g->evp);
	free(g->px);
	free(g->cs);
	free(g->cx);
	free(g->argv);
	free(g->argbuf);
	free(g->pad);
	free(g);
}

/* Fill event i of the scratch batch. */
static void fill_event(lg_gen_t *g, const lg_gen_agent_t *a, uint64_t seq, uint32_t i,
		       int64_t now_ns, bool bad)
{
	Vigil__V1__Event *e = &g->ev[i];
	uint64_t h = mix64(mix64(mix64(a->index) ^ seq) ^ i);
	uint32_t ck = (uint32_t)(h >> 12) % GEN_CONTAINERS;
	unsigned r = (unsigned)(h % 200);

	e->time_ns = now_ns + i; /* distinct and ordered within the batch */
	e->severity = VIGIL__V1__SEVERITY__SEVERITY_INFO;
	e->container_id = (char *)a->id[ck];

	if (!bad && r == 0) {
		e->kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STARTED;
		e->body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STARTED;
		g->cs[i].container = (Vigil__V1__Container *)&a->c[ck];
		e->container_started = &g->cs[i];
		if (a->c[ck].privileged)
			e->severity = VIGIL__V1__SEVERITY__SEVERITY_HIGH;
		return;
	}
	if (!bad && r == 1) {
		e->kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STOPPED;
		e->body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STOPPED;
		Vigil__V1__ContainerStopped *x = &g->cx[i];
		x->exit_code_known = 1;
		x->exit_code = (h >> 24) % 3 == 0 ? 137 : 0;
		x->init_pid = a->c[ck].init_pid;
		e->container_stopped = x;
		return;
	}

	const exec_kind_t *k = &exec_kinds[(h >> 16) % N_EXEC_KINDS];
	Vigil__V1__ProcessExec *x = &g->px[i];
	e->kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_PROCESS_EXEC;
	e->body_case = VIGIL__V1__EVENT__BODY_PROCESS_EXEC;
	e->process_exec = x;
	if ((h >> 40) % 100 < 3)
		e->severity = VIGIL__V1__SEVERITY__SEVERITY_LOW;
	x->pid = 100 + (uint32_t)((h >> 8) % 4000000);
	x->ppid = 1 + (uint32_t)((h >> 32) % x->pid);
	x->uid = uids[(h >> 20) % NELEM(uids)];
	x->gid = x->uid;
	x->executable = (char *)k->exe;
	x->cwd = (char *)cwds[(h >> 28) % NELEM(cwds)];
	snprintf(g->argbuf[i], sizeof(g->argbuf[i]), "%s%08x%s", k->arg_pre, (unsigned)(h >> 32),
		 k->arg_post);
	x->argv[0] = (char *)k->argv0;
	x->argv[1] = bad ? bad_arg : (char *)k->flag;
	x->argv[2] = g->argbuf[i];
	x->n_argv = 3;
	/* Pad with a fourth argument up to the wanted encoded size (the
	 * element costs a tag and a 1-2 byte length of its own). */
	size_t sz = vigil__v1__event__get_packed_size(e);
	size_t want = g->p.event_bytes;
	if (sz + 4 < want) {
		size_t pad = want - sz - (want - sz > 130 ? 3 : 2);
		if (pad > g->pad_cap)
			pad = g->pad_cap;
		x->argv[3] = g->pad + (g->pad_cap - pad);
		x->n_argv = 4;
	}
}

uint8_t *lg_gen_batch(lg_gen_t *g, const lg_gen_agent_t *a, uint64_t seq, uint64_t bno, size_t *len,
		      uint32_t *n_bad)
{
	uint32_t n = g->p.batch_events;
	int64_t now = vtime_now_ns();
	uint32_t bad_count = 0;
	for (uint32_t i = 0; i < n; i++) {
		bool bad = false;
		if (g->p.bad_every) {
			/* Global index: the agents' event streams interleaved. */
			uint64_t gi = (bno * n + i) * g->p.agents + a->index;
			bad = (gi + 1) % g->p.bad_every == 0;
		}
		bad_count += bad;
		fill_event(g, a, seq, i, now, bad);
	}
	Vigil__V1__Batch b = VIGIL__V1__BATCH__INIT;
	b.seq = seq;
	b.n_events = n;
	b.events = g->evp;
	Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_BATCH;
	m.batch = &b;
	*n_bad = bad_count;
	return wire_frame_agent(&m, g->p.max_frame, len);
}

uint8_t *lg_gen_hello(const char *name, uint32_t index, size_t *len)
{
	struct utsname u;
	char kernel[sizeof(u.release)] = "unknown";
	if (uname(&u) == 0)
		snprintf(kernel, sizeof(kernel), "%s", u.release);
	char boot[40];
	char hex[33];
	hex_from(hex, 32, mix64(index) ^ 0xb007);
	snprintf(boot, sizeof(boot), "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
		 hex + 20);
	Vigil__V1__Hello h = VIGIL__V1__HELLO__INIT;
	h.protocol_version = WIRE_PROTOCOL_VERSION;
	h.agent_version = "vigil-loadgen " VIGIL_VERSION;
	h.hostname = (char *)name;
	h.boot_id = boot;
	h.kernel = kernel;
	h.os = "Debian GNU/Linux 12 (bookworm)";
	h.agent_time_ns = vtime_now_ns();
	h.claimed_agent_id = (char *)name;
	Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_HELLO;
	m.hello = &h;
	return wire_frame_agent(&m, FRAME_DEFAULT_MAX_BYTES, len);
}

size_t lg_gen_heartbeat(uint8_t *buf, size_t cap)
{
	Vigil__V1__Heartbeat hb = VIGIL__V1__HEARTBEAT__INIT;
	hb.time_ns = vtime_now_ns();
	Vigil__V1__AgentMessage m = VIGIL__V1__AGENT_MESSAGE__INIT;
	m.msg_case = VIGIL__V1__AGENT_MESSAGE__MSG_HEARTBEAT;
	m.heartbeat = &hb;
	size_t n = vigil__v1__agent_message__get_packed_size(&m);
	if (n + FRAME_HEADER_BYTES > cap)
		return 0;
	frame_put_header(buf, (uint32_t)n);
	vigil__v1__agent_message__pack(&m, buf + FRAME_HEADER_BYTES);
	return n + FRAME_HEADER_BYTES;
}
