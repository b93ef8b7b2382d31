// SPDX-License-Identifier: Apache-2.0
/* The container inventory (see inventory.h). */
#include "inventory.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "ctr.h"
#include "kfacts.h"
#include "log.h"
#include "oci.h"
#include "pidmap.h"
#include "procfs.h"
#include "vtime.h"
#include "wire.h"

#define ID_MAX 128
/* Processes the pid map follows at most (a fork storm is refused past it). */
#define PIDMAP_MAX 16384

typedef struct {
	ctr_t *c;
	bool exit_known;
	int exit_code;
} entry_t;

typedef struct {
	char id[ID_MAX];
	uint32_t pid;
	ctr_t *c;
	bool seen;
} oci_entry_t;

/* A process found in a container by the /proc walk. */
typedef struct {
	uint32_t pid, ppid;
	uint64_t start; /* since boot, in clock ticks (/proc/PID/stat) */
	size_t idx;
} cproc_t;

typedef struct {
	char id[ID_MAX];
	int64_t since;
} waiting_t;

/* Containers held back at once at most (then they are reported without
 * waiting for their API record). */
#define WAITING_MAX 4096

typedef struct {
	char id[ID_MAX];
	int runtime;
	unsigned src; /* CTR_SRC_*: who found it */
	uint32_t init_pid;
	uint64_t init_start; /* init's start time (cproc_t.start) */
	bool exit_known;
	int exit_code;
} found_t;

struct inventory {
	const settings_t *s;
	const hostinfo_t *host;
	inventory_emit_cb emit;
	void *arg;
	docker_api_t *api;
	void (*settle)(void *arg);
	void *settle_arg;
	kfacts_t *kf;
	entry_t *cur;
	size_t n_cur;
	oci_entry_t *oci;
	size_t n_oci;
	pidmap_t *pm;
	uint64_t host_ns[4];
	bool have_host_ns;
	uint64_t host_capbnd;
	int64_t boot_s;
	long clk_tck;
	int oci_dirs;
	int64_t last_scan_ns;
	unsigned runtimes_seen; /* bit per Vigil__V1__Runtime */
	bool primed;		/* a first scan happened: later ones emit changes */
	bool rescan;		/* a container was caught half-made: scan again soon */
	/* containers held back until their API record arrives (grows: a
	 * burst of new containers all get their API metadata) */
	waiting_t *waiting;
	size_t n_waiting, cap_waiting;
	bool crun_seen;
	char lookup[ID_MAX];
	/* scan scratch */
	found_t *found;
	size_t n_found, cap_found;
	cproc_t *procs;
	size_t n_procs, cap_procs;
};

static const char *const ns_names[4] = {"pid", "net", "ipc", "uts"};

/* ---- helpers ------------------------------------------------------------------- */

static ssize_t cur_find(const inventory_t *inv, const char *id)
{
	for (size_t i = 0; i < inv->n_cur; i++)
		if (strcmp(inv->cur[i].c->id, id) == 0)
			return (ssize_t)i;
	return -1;
}

static void event_init(Vigil__V1__Event *e, Vigil__V1__EventKind kind, const char *id)
{
	vigil__v1__event__init(e);
	e->time_ns = vtime_now_ns();
	e->kind = kind;
	e->severity = VIGIL__V1__SEVERITY__SEVERITY_INFO;
	e->container_id = (char *)(id ? id : "");
}

static void emit_container(inventory_t *inv, Vigil__V1__EventKind kind, const ctr_t *c)
{
	Vigil__V1__Container pc = VIGIL__V1__CONTAINER__INIT;
	if (ctr_to_pb(c, &pc) != 0)
		return;
	Vigil__V1__Event e;
	event_init(&e, kind, c->id);
	Vigil__V1__ContainerStarted st = VIGIL__V1__CONTAINER_STARTED__INIT;
	Vigil__V1__ContainerChanged ch = VIGIL__V1__CONTAINER_CHANGED__INIT;
	if (kind == VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STARTED) {
		st.container = &pc;
		e.body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STARTED;
		e.container_started = &st;
	} else {
		ch.container = &pc;
		e.body_case = VIGIL__V1__EVENT__BODY_CONTAINER_CHANGED;
		e.container_changed = &ch;
	}
	inv->emit(inv->arg, &e);
	ctr_pb_release(&pc);
}

static void emit_stopped(inventory_t *inv, const entry_t *en)
{
	if (en->exit_known)
		log_debug("container %.12s stopped (init %u, exit status %d)", en->c->id,
			  en->c->init_pid, en->exit_code);
	else
		log_info("container %.12s stopped (init %u); its exit status is unknown", en->c->id,
			 en->c->init_pid);
	Vigil__V1__Event e;
	event_init(&e, VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STOPPED, en->c->id);
	Vigil__V1__ContainerStopped st = VIGIL__V1__CONTAINER_STOPPED__INIT;
	st.exit_code_known = en->exit_known;
	st.exit_code = en->exit_code;
	st.init_pid = en->c->init_pid;
	e.body_case = VIGIL__V1__EVENT__BODY_CONTAINER_STOPPED;
	e.container_stopped = &st;
	inv->emit(inv->arg, &e);
}

/* ---- sources ---------------------------------------------------------------------- */

static ctr_t *procfs_record(inventory_t *inv, const found_t *f)
{
	const char *root = inv->s->proc_root;
	ctr_t *c = ctr_new(f->id);
	if (!c)
		return NULL;
	c->runtime = f->runtime;
	c->found_by = f->src;
	c->have |= CTR_HAVE_RUNTIME;
	if (!f->init_pid)
		return c;
	c->init_pid = f->init_pid;
	c->have |= CTR_HAVE_PID;
	char buf[8192];
	ssize_t n = procfs_read(root, f->init_pid, "status", buf, sizeof(buf));
	procfs_status_t st;
	bool have_st = n > 0 && procfs_parse_status(buf, (size_t)n, &st) == 0;
	if (inv->kf)
		kfacts_read(inv->kf, c, have_st ? &st : NULL);
	if (have_st) {
		if (st.have_uid) {
			c->uid = st.uid;
			c->gid = st.gid;
			c->have |= CTR_HAVE_USER;
		}
		if (st.have_caps && procfs_cap_names(st.cap_eff, &c->cap_eff) == 0 &&
		    procfs_cap_names(st.cap_bnd, &c->cap_bnd) == 0) {
			c->have |= CTR_HAVE_CAPS;
			/* every capability the host has, in effect: privileged */
			c->privileged = inv->host_capbnd &&
					(st.cap_bnd & inv->host_capbnd) == inv->host_capbnd &&
					(st.cap_eff & inv->host_capbnd) == inv->host_capbnd;
			c->have |= CTR_HAVE_PRIV;
		}
	}
	if (inv->have_host_ns) {
		bool host[4];
		bool ok = true;
		for (int i = 0; i < 4 && ok; i++) {
			uint64_t ino;
			ok = procfs_ns(root, f->init_pid, ns_names[i], &ino) == 0;
			host[i] = ok && ino == inv->host_ns[i];
		}
		if (ok) {
			c->host_pid = host[0];
			c->host_net = host[1];
			c->host_ipc = host[2];
			c->host_uts = host[3];
			c->have |= CTR_HAVE_NS;
		}
	}
	n = procfs_read(root, f->init_pid, "cmdline", buf, sizeof(buf));
	if (n > 0 && procfs_parse_cmdline(buf, (size_t)n, (size_t)inv->s->argv_max_bytes,
					  &c->command, &c->truncated) == 0)
		c->have |= CTR_HAVE_COMMAND;
	n = procfs_read(root, f->init_pid, "stat", buf, sizeof(buf));
	uint64_t start;
	uint32_t ppid;
	if (n > 0 && inv->boot_s && procfs_parse_stat(buf, (size_t)n, &start, &ppid, NULL) == 0) {
		c->started_ns = (inv->boot_s * 1000000000) +
				(int64_t)(start * 1000000000 / (uint64_t)inv->clk_tck);
		c->have |= CTR_HAVE_TIMES;
	}
	return c;
}

static oci_entry_t *oci_find(inventory_t *inv, const char *id)
{
	for (size_t i = 0; i < inv->n_oci; i++)
		if (strcmp(inv->oci[i].id, id) == 0)
			return &inv->oci[i];
	return NULL;
}

static void oci_found(void *arg, const oci_state_t *st)
{
	inventory_t *inv = arg;
	if (st->runtime >= 0 && st->runtime < 32)
		inv->runtimes_seen |= 1u << st->runtime;
	oci_entry_t *e = oci_find(inv, st->id);
	if (e && e->pid == st->init_pid) {
		e->seen = true;
		return;
	}
	ctr_t *c = ctr_new(st->id);
	if (!c)
		return;
	c->runtime = st->runtime;
	c->have |= CTR_HAVE_RUNTIME;
	if (st->init_pid) {
		c->init_pid = st->init_pid;
		c->have |= CTR_HAVE_PID;
	}
	if (st->created_ns) {
		c->created_ns = st->created_ns;
		c->have |= CTR_HAVE_TIMES;
	}
	if (st->bundle[0] && oci_load_bundle(st->bundle, c, (size_t)inv->s->labels_max) != 0)
		log_debug("oci: %s: no readable config.json in %s", st->id, st->bundle);
	if (!e) {
		oci_entry_t *no = realloc(inv->oci, (inv->n_oci + 1) * sizeof(*no));
		if (!no) {
			ctr_free(c);
			return;
		}
		inv->oci = no;
		e = &no[inv->n_oci++];
		memset(e, 0, sizeof(*e));
		snprintf(e->id, sizeof(e->id), "%s", st->id);
	} else {
		ctr_free(e->c);
	}
	e->c = c;
	e->pid = st->init_pid;
	e->seen = true;
}

static void oci_scan(inventory_t *inv)
{
	for (size_t i = 0; i < inv->n_oci; i++)
		inv->oci[i].seen = false;
	int a = oci_scan_state_dirs(inv->s->oci_state_dirs, oci_found, inv);
	int b = oci_scan_containerd(inv->s->containerd_dirs, oci_found, inv);
	inv->oci_dirs = (a < 0 && b < 0) ? -1 : (a > 0 ? a : 0) + (b > 0 ? b : 0);
	if (strstr(inv->s->oci_state_dirs, "crun") && a > 0)
		inv->crun_seen = true;
	for (size_t i = 0; i < inv->n_oci;) {
		if (!inv->oci[i].seen) {
			ctr_free(inv->oci[i].c);
			inv->oci[i] = inv->oci[--inv->n_oci];
		} else {
			i++;
		}
	}
}

/* ---- the /proc walk ------------------------------------------------------------------ */

static size_t found_add(inventory_t *inv, const char *id, int runtime, unsigned src)
{
	for (size_t i = 0; i < inv->n_found; i++) {
		if (strcmp(inv->found[i].id, id) == 0) {
			inv->found[i].src |= src;
			return i;
		}
	}
	if (inv->n_found == inv->cap_found) {
		size_t nc = inv->cap_found ? inv->cap_found * 2 : 64;
		found_t *nf = realloc(inv->found, nc * sizeof(*nf));
		if (!nf)
			return SIZE_MAX;
		inv->found = nf;
		inv->cap_found = nc;
	}
	found_t *f = &inv->found[inv->n_found];
	memset(f, 0, sizeof(*f));
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->runtime = runtime;
	f->src = src;
	return inv->n_found++;
}

static void proc_add(inventory_t *inv, uint32_t pid, size_t idx)
{
	if (inv->n_procs == inv->cap_procs) {
		size_t nc = inv->cap_procs ? inv->cap_procs * 2 : 256;
		cproc_t *np = realloc(inv->procs, nc * sizeof(*np));
		if (!np)
			return;
		inv->procs = np;
		inv->cap_procs = nc;
	}
	inv->procs[inv->n_procs++] = (cproc_t){.pid = pid, .idx = idx};
}

static void walk_proc(inventory_t *inv)
{
	inv->n_found = 0;
	inv->n_procs = 0;
	DIR *d = opendir(inv->s->proc_root);
	if (!d) {
		log_warn("inventory: cannot read %s: %s", inv->s->proc_root, strerror(errno));
		return;
	}
	pidmap_next_gen(inv->pm);
	struct dirent *de;
	char buf[8192];
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		char *end;
		unsigned long pid = strtoul(de->d_name, &end, 10);
		if (*end || pid == 0 || pid > UINT32_MAX - 1)
			continue;
		/* a process that exits now is simply not found */
		ssize_t n =
			procfs_read(inv->s->proc_root, (uint32_t)pid, "cgroup", buf, sizeof(buf));
		cgroup_match_t m;
		if (n <= 0 || !cgroup_parse(buf, (size_t)n, &m))
			continue;
		size_t idx = found_add(inv, m.id, m.runtime, CTR_SRC_CGROUP);
		if (idx == SIZE_MAX)
			continue;
		proc_add(inv, (uint32_t)pid, idx);
		pidmap_put(inv->pm, (uint32_t)pid, m.id);
	}
	closedir(d);
	/* OCI containers whose cgroup does not name them: find them by pid */
	for (size_t i = 0; i < inv->n_oci; i++) {
		oci_entry_t *o = &inv->oci[i];
		if (!o->pid || pidmap_find(inv->pm, o->pid))
			continue;
		char p[64];
		snprintf(p, sizeof(p), "%s/%u", inv->s->proc_root, o->pid);
		if (access(p, F_OK) != 0)
			continue;
		size_t idx = found_add(inv, o->id, o->c ? o->c->runtime : 0, CTR_SRC_OCI);
		if (idx == SIZE_MAX)
			continue;
		proc_add(inv, o->pid, idx);
		pidmap_put(inv->pm, o->pid, o->id);
	}
	/* zombies are gone already (a dead init waits for its reaper): drop
	 * them, and the containers that have nothing else */
	size_t live = 0;
	for (size_t i = 0; i < inv->n_procs; i++) {
		cproc_t *p = &inv->procs[i];
		ssize_t n = procfs_read(inv->s->proc_root, p->pid, "stat", buf, sizeof(buf));
		char state = '?';
		if (n <= 0 || procfs_parse_stat(buf, (size_t)n, &p->start, &p->ppid, &state) != 0 ||
		    state == 'Z' || state == 'X') {
			pidmap_del(inv->pm, p->pid);
			continue;
		}
		inv->procs[live++] = *p;
	}
	inv->n_procs = live;
	size_t kept = 0;
	for (size_t f = 0; f < inv->n_found; f++) {
		bool any = false;
		for (size_t i = 0; i < inv->n_procs && !any; i++)
			any = inv->procs[i].idx == f;
		if (!any)
			continue;
		for (size_t i = 0; i < inv->n_procs; i++)
			if (inv->procs[i].idx == f)
				inv->procs[i].idx = kept;
		inv->found[kept++] = inv->found[f];
	}
	inv->n_found = kept;
	pidmap_prune(inv->pm);
	/* init: of the processes whose parent is outside the container (the
	 * runtime's exec'd processes are too), the one started first. Not the
	 * lowest pid: pids wrap (pid_max is 32768 on many machines), and an
	 * exec'd process may get a lower one than the container's init. */
	for (size_t i = 0; i < inv->n_procs; i++) {
		cproc_t *p = &inv->procs[i];
		pidmap_slot_t *ps = pidmap_find(inv->pm, p->ppid);
		bool parent_inside = ps && strcmp(ps->id, inv->found[p->idx].id) == 0;
		found_t *f = &inv->found[p->idx];
		if (parent_inside)
			continue;
		if (!f->init_pid || p->start < f->init_start ||
		    (p->start == f->init_start && p->pid < f->init_pid)) {
			f->init_pid = p->pid;
			f->init_start = p->start;
		}
	}
}

/* ---- scan ------------------------------------------------------------------------------ */

static void api_add(void *arg, const ctr_t *c)
{
	inventory_t *inv = arg;
	found_add(inv, c->id, c->runtime, CTR_SRC_API);
}

/* Is init still the runtime's own "runc init" (the container is being
 * made)? */
static bool being_created(const ctr_t *pr)
{
	if (pr->command.n < 2 || strcmp(pr->command.v[1], "init") != 0)
		return false;
	const char *b = strrchr(pr->command.v[0], '/');
	b = b ? b + 1 : pr->command.v[0];
	return strcmp(b, "runc") == 0 || strcmp(b, "crun") == 0;
}

#define API_WAIT_NS (INT64_C(2000) * 1000000)

/* Hold back a new Docker/Podman container (up to API_WAIT_NS) while the
 * API source works and has not inspected it yet, so that its start event
 * carries the API's view. Return true to skip it in this scan. */
static bool hold_new(inventory_t *inv, const char *id, int64_t now);

static bool wait_for_api(inventory_t *inv, const char *id, int runtime, int64_t now)
{
	if (!inv->api || !docker_api_ok(inv->api) ||
	    (runtime != VIGIL__V1__RUNTIME__RUNTIME_PODMAN &&
	     runtime != VIGIL__V1__RUNTIME__RUNTIME_DOCKER))
		return false;
	return hold_new(inv, id, now);
}

/* Hold back a container not reported yet, for at most API_WAIT_NS from the
 * first time it was held (a bound, so that nothing a container does can
 * keep it hidden). Return true to skip it in this scan. */
static bool hold_new(inventory_t *inv, const char *id, int64_t now)
{
	if (cur_find(inv, id) >= 0)
		return false;
	for (size_t i = 0; i < inv->n_waiting; i++)
		if (strcmp(inv->waiting[i].id, id) == 0)
			return now - inv->waiting[i].since < API_WAIT_NS;
	if (inv->n_waiting == inv->cap_waiting) {
		size_t nc = inv->cap_waiting ? inv->cap_waiting * 2 : 64;
		waiting_t *nw = nc <= WAITING_MAX ? realloc(inv->waiting, nc * sizeof(*nw)) : NULL;
		if (!nw)
			return false;
		inv->waiting = nw;
		inv->cap_waiting = nc;
	}
	snprintf(inv->waiting[inv->n_waiting].id, ID_MAX, "%s", id);
	inv->waiting[inv->n_waiting++].since = now;
	return true;
}

/* Did the cgroup path name the runtime (docker-ID.scope, libpod-ID,
 * crio-ID, ...)? A bare id is runc-style only by default: then the source
 * that found the container says better (containerd's k8s.io state is
 * containerd's). */
static bool cgroup_names_runtime(const found_t *f)
{
	return (f->src & CTR_SRC_CGROUP) && f->runtime != VIGIL__V1__RUNTIME__RUNTIME_UNKNOWN &&
	       f->runtime != VIGIL__V1__RUNTIME__RUNTIME_RUNC;
}

/* Merge into m what each source knows of f, field by field: the kernel's
 * view (pr) first, then the API's record, the OCI bundle, the rest of pr.
 * Return 0, or -1 on OOM. */
static int merge_sources(inventory_t *inv, const found_t *f, ctr_t *pr, const ctr_t *api, ctr_t *m)
{
	oci_entry_t *o = oci_find(inv, f->id);
	if (o)
		pr->found_by |= CTR_SRC_OCI;
	if (api)
		pr->found_by |= CTR_SRC_API;
	/* the kernel's view first: pid, namespaces, capabilities, user,
	 * the security facts of init, limits, root propagation, paused or
	 * not; and the runtime that the cgroup path names */
	int rc = ctr_merge_mask(m, pr,
				CTR_HAVE_PID | CTR_HAVE_NS | CTR_HAVE_CAPS | CTR_HAVE_USER |
					CTR_HAVE_NNP | CTR_HAVE_SECMODE | CTR_HAVE_MAC |
					CTR_HAVE_LIMITS | CTR_HAVE_USERNS | CTR_HAVE_ROOTPROP |
					CTR_HAVE_UPPER | CTR_HAVE_STATE |
					(cgroup_names_runtime(f) ? CTR_HAVE_RUNTIME : 0));
	if (api)
		rc |= ctr_merge(m, api);
	if (o && o->c && (!o->pid || !m->init_pid || o->pid == m->init_pid))
		rc |= ctr_merge(m, o->c);
	rc |= ctr_merge(m, pr);
	return rc;
}

size_t inventory_scan(inventory_t *inv)
{
	int64_t t0 = vtime_mono_ns();
	oci_scan(inv);
	walk_proc(inv);
	if (inv->api) {
		docker_api_refresh(inv->api);
		if (docker_api_ok(inv->api))
			docker_api_foreach(inv->api, api_add, inv);
	}
	if (inv->settle)
		inv->settle(inv->settle_arg);
	inv->rescan = false;
	entry_t *next = calloc(inv->n_found ? inv->n_found : 1, sizeof(*next));
	if (!next)
		return inv->n_cur;
	size_t n_next = 0;
	for (size_t i = 0; i < inv->n_found; i++) {
		found_t *f = &inv->found[i];
		ctr_t *pr = procfs_record(inv, f);
		ctr_t *m = ctr_new(f->id);
		if (!pr || !m) {
			ctr_free(pr);
			ctr_free(m);
			continue;
		}
		const ctr_t *api = inv->api && docker_api_ok(inv->api)
					   ? docker_api_get(inv->api, f->id)
					   : NULL;
		/* A new container whose first process has no command line is
		 * caught mid-creation: runc's first "init" stage is exiting
		 * (status 0) and the real init, a higher pid, follows. Taking
		 * the exiting one as init would report a stop with exit code 0
		 * and a second start. Wait for a later scan (2 s at most). */
		bool half_made = pr->command.n == 0 && hold_new(inv, f->id, t0);
		if (inv->primed && (being_created(pr) || half_made ||
				    (!api && wait_for_api(inv, f->id, f->runtime, t0)))) {
			inv->rescan = true;
			ctr_free(pr);
			ctr_free(m);
			continue;
		}
		int rc = merge_sources(inv, f, pr, api, m);
		ctr_free(pr);
		if (rc != 0) {
			ctr_free(m);
			continue;
		}
		if (!m->name || !m->name[0]) {
			char shortid[13];
			snprintf(shortid, sizeof(shortid), "%s", m->id);
			if (ctr_set_str(&m->name, shortid, NULL) != 0) {
				ctr_free(m);
				continue;
			}
		}
		/* running, or paused as the kernel (or the API) says */
		bool paused = m->state && strcmp(m->state, "paused") == 0;
		if (ctr_set_str(&m->state, paused ? "paused" : "running", NULL) != 0) {
			ctr_free(m);
			continue;
		}
		if (m->runtime >= 0 && m->runtime < 32)
			inv->runtimes_seen |= 1u << m->runtime;
		next[n_next++].c = m;
	}
	/* differences with the last scan; the first scan is the baseline that
	 * the snapshot reports */
	for (size_t i = 0; i < n_next && inv->primed; i++) {
		ssize_t k = cur_find(inv, next[i].c->id);
		if (k < 0) {
			emit_container(inv, VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STARTED,
				       next[i].c);
			continue;
		}
		entry_t *old = &inv->cur[k];
		if (old->exit_known && old->c->init_pid != next[i].c->init_pid) {
			/* restarted in between: the old run stopped */
			log_info("container %.12s restarted (init %u, then %u)", old->c->id,
				 old->c->init_pid, next[i].c->init_pid);
			emit_stopped(inv, old);
			emit_container(inv, VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_STARTED,
				       next[i].c);
			continue;
		}
		next[i].exit_known = old->exit_known;
		next[i].exit_code = old->exit_code;
		/* a container on its way out reads half gone: no change to report */
		if (!old->exit_known && (ctr_settings_differ(old->c, next[i].c) ||
					 strcmp(old->c->state, next[i].c->state) != 0))
			emit_container(inv, VIGIL__V1__EVENT_KIND__EVENT_KIND_CONTAINER_CHANGED,
				       next[i].c);
	}
	for (size_t k = 0; k < inv->n_cur; k++) {
		bool still = false;
		for (size_t i = 0; i < n_next && !still; i++)
			still = strcmp(next[i].c->id, inv->cur[k].c->id) == 0;
		if (!still && inv->primed)
			emit_stopped(inv, &inv->cur[k]);
		ctr_free(inv->cur[k].c);
	}
	free(inv->cur);
	inv->cur = next;
	inv->n_cur = n_next;
	for (size_t i = 0; i < inv->n_waiting;) {
		if (cur_find(inv, inv->waiting[i].id) >= 0 ||
		    t0 - inv->waiting[i].since > 60 * API_WAIT_NS)
			inv->waiting[i] = inv->waiting[--inv->n_waiting];
		else
			i++;
	}
	inv->last_scan_ns = vtime_mono_ns() - t0;
	inv->primed = true;
	return n_next;
}

void inventory_snapshot(inventory_t *inv, size_t max_bytes)
{
	Vigil__V1__HostInfo h = VIGIL__V1__HOST_INFO__INIT;
	h.hostname = (char *)inv->host->hostname;
	h.os = (char *)inv->host->os;
	h.kernel = (char *)inv->host->kernel;
	h.boot_id = (char *)inv->host->boot_id;
	h.agent_version = (char *)inv->host->agent_version;
	const char *rt[8];
	h.n_runtimes = inventory_runtimes(inv, rt, 8);
	h.runtimes = (char **)rt;
	Vigil__V1__Container *pcs = calloc(inv->n_cur ? inv->n_cur : 1, sizeof(*pcs));
	Vigil__V1__Container **ptrs = calloc(inv->n_cur ? inv->n_cur : 1, sizeof(*ptrs));
	if (!pcs || !ptrs) {
		free(pcs);
		free(ptrs);
		return;
	}
	size_t n = 0;
	for (size_t i = 0; i < inv->n_cur; i++) {
		vigil__v1__container__init(&pcs[n]);
		if (ctr_to_pb(inv->cur[i].c, &pcs[n]) == 0) {
			ptrs[n] = &pcs[n];
			n++;
		}
	}
	Vigil__V1__Inventory in = VIGIL__V1__INVENTORY__INIT;
	in.host = &h;
	in.containers = ptrs;
	in.n_containers = n;
	in.full = true;
	Vigil__V1__Event e;
	event_init(&e, VIGIL__V1__EVENT_KIND__EVENT_KIND_INVENTORY, NULL);
	e.body_case = VIGIL__V1__EVENT__BODY_INVENTORY;
	e.inventory = &in;
	if (vigil__v1__event__get_packed_size(&e) + 64 <= max_bytes) {
		inv->emit(inv->arg, &e);
	} else {
		/* Too large for one batch: parts of as many containers as fit,
		 * then a last part, full, that lists every container id. */
		char **ids = calloc(n ? n : 1, sizeof(*ids));
		in.full = false;
		in.n_containers = 0;
		size_t base = vigil__v1__event__get_packed_size(&e) + 64;
		size_t start = 0;
		while (start < n) {
			size_t used = base, k = 0;
			while (start + k < n) {
				/* a container costs its size, a tag and a length */
				size_t sz =
					vigil__v1__container__get_packed_size(ptrs[start + k]) + 6;
				if (k > 0 && used + sz > max_bytes)
					break;
				used += sz;
				k++;
			}
			in.containers = ptrs + start;
			in.n_containers = k;
			inv->emit(inv->arg, &e);
			start += k;
		}
		if (ids) {
			for (size_t i = 0; i < n; i++)
				ids[i] = ptrs[i]->id;
			in.containers = NULL;
			in.n_containers = 0;
			in.all_ids = ids;
			in.n_all_ids = n;
			in.full = true;
			inv->emit(inv->arg, &e);
			free(ids);
		}
	}
	for (size_t i = 0; i < n; i++)
		ctr_pb_release(&pcs[i]);
	free(pcs);
	free(ptrs);
}

const char *inventory_container_of(inventory_t *inv, uint32_t pid, bool *known)
{
	*known = false;
	pidmap_slot_t *s = pidmap_find(inv->pm, pid);
	if (s) {
		snprintf(inv->lookup, sizeof(inv->lookup), "%s", s->id);
	} else {
		char buf[8192];
		ssize_t n = procfs_read(inv->s->proc_root, pid, "cgroup", buf, sizeof(buf));
		cgroup_match_t m;
		if (n <= 0 || !cgroup_parse(buf, (size_t)n, &m))
			return NULL;
		snprintf(inv->lookup, sizeof(inv->lookup), "%s", m.id);
		pidmap_put(inv->pm, pid, m.id);
	}
	*known = cur_find(inv, inv->lookup) >= 0;
	return inv->lookup;
}

void inventory_note_fork(inventory_t *inv, uint32_t parent, uint32_t child)
{
	pidmap_slot_t *s = pidmap_find(inv->pm, parent);
	if (s) {
		pidmap_slot_t p = *s; /* pm_put may move the table */
		pidmap_slot_t *c = pidmap_put(inv->pm, child, p.id);
		if (c) {
			c->flags = p.flags;
			c->ruid = p.ruid;
			c->euid = p.euid;
		}
	}
}

int inventory_exec_session(inventory_t *inv, uint32_t pid, uint32_t ppid, const char *id,
			   bool known)
{
	pidmap_slot_t *s = pidmap_find(inv->pm, pid);
	if (!s || strcmp(s->id, id) != 0)
		return VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN;
	if (s->flags & PIDMAP_F_EXEC_SESSION)
		return VIGIL__V1__TRISTATE__TRISTATE_TRUE;
	ssize_t k = cur_find(inv, id);
	uint32_t init = k >= 0 ? inv->cur[k].c->init_pid : 0;
	int answer = VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN;
	if (init == pid)
		answer = VIGIL__V1__TRISTATE__TRISTATE_FALSE;
	/* walk up the ancestors (a bounded number) until one whose origin is
	 * known, the container's init, or one outside the container */
	uint32_t cur = init == pid ? 0 : ppid;
	char buf[8192];
	for (int step = 0; step < 32 && cur; step++) {
		if (init && cur == init) {
			answer = VIGIL__V1__TRISTATE__TRISTATE_FALSE;
			break;
		}
		pidmap_slot_t *p = pidmap_find(inv->pm, cur);
		if (p && strcmp(p->id, id) == 0 &&
		    (p->flags & (PIDMAP_F_EXEC_SESSION | PIDMAP_F_OWN))) {
			answer = p->flags & PIDMAP_F_EXEC_SESSION
					 ? VIGIL__V1__TRISTATE__TRISTATE_TRUE
					 : VIGIL__V1__TRISTATE__TRISTATE_FALSE;
			break;
		}
		ssize_t n = procfs_read(inv->s->proc_root, cur, "cgroup", buf, sizeof(buf));
		cgroup_match_t m;
		if (n <= 0)
			break; /* gone: cannot tell */
		if (!cgroup_parse(buf, (size_t)n, &m) || strcmp(m.id, id) != 0) {
			/* started from outside; the container's own init is too,
			 * so only a container already known can say */
			if (known && init)
				answer = VIGIL__V1__TRISTATE__TRISTATE_TRUE;
			break;
		}
		n = procfs_read(inv->s->proc_root, cur, "stat", buf, sizeof(buf));
		uint64_t start;
		uint32_t up = 0;
		if (n <= 0 || procfs_parse_stat(buf, (size_t)n, &start, &up, NULL) != 0)
			break;
		cur = up;
	}
	s = pidmap_find(inv->pm, pid);
	if (s) {
		if (answer == VIGIL__V1__TRISTATE__TRISTATE_TRUE)
			s->flags |= PIDMAP_F_EXEC_SESSION;
		else if (answer == VIGIL__V1__TRISTATE__TRISTATE_FALSE)
			s->flags |= PIDMAP_F_OWN;
	}
	return answer;
}

const char *inventory_upperdir(const inventory_t *inv, const char *id)
{
	ssize_t k = cur_find(inv, id);
	if (k < 0 || !(inv->cur[k].c->have & CTR_HAVE_UPPER))
		return NULL;
	return inv->cur[k].c->upperdir;
}

void inventory_note_uids(inventory_t *inv, uint32_t pid, uint32_t ruid, uint32_t euid)
{
	pidmap_slot_t *s = pidmap_find(inv->pm, pid);
	if (!s)
		return;
	s->ruid = ruid;
	s->euid = euid;
	s->flags |= PIDMAP_F_UIDS;
}

bool inventory_note_uid_change(inventory_t *inv, uint32_t pid, uint32_t ruid, uint32_t euid,
			       uint32_t *old_ruid, uint32_t *old_euid)
{
	pidmap_slot_t *s = pidmap_find(inv->pm, pid);
	if (!s)
		return false;
	bool was_known = s->flags & PIDMAP_F_UIDS;
	*old_ruid = s->ruid;
	*old_euid = s->euid;
	s->ruid = ruid;
	s->euid = euid;
	s->flags |= PIDMAP_F_UIDS;
	return was_known && *old_ruid != 0 && (ruid == 0 || euid == 0) &&
	       !(*old_euid == 0 && euid == 0 && ruid != 0);
}

bool inventory_note_exit(inventory_t *inv, uint32_t pid, uint32_t status)
{
	pidmap_slot_t *s = pidmap_find(inv->pm, pid);
	if (!s)
		return false;
	char id[ID_MAX];
	snprintf(id, sizeof(id), "%s", s->id);
	pidmap_del(inv->pm, pid);
	ssize_t k = cur_find(inv, id);
	if (k < 0 || inv->cur[k].c->init_pid != pid)
		return false;
	entry_t *e = &inv->cur[k];
	e->exit_known = true;
	e->exit_code =
		(status & 0x7f) == 0 ? (int)((status >> 8) & 0xff) : 128 + (int)(status & 0x7f);
	return true;
}

void inventory_note_die(inventory_t *inv, const char *id, bool exit_known, int exit_code)
{
	ssize_t k = cur_find(inv, id);
	if (k < 0 || !exit_known || inv->cur[k].exit_known)
		return;
	inv->cur[k].exit_known = true;
	inv->cur[k].exit_code = exit_code;
}

size_t inventory_runtimes(const inventory_t *inv, const char **out, size_t max)
{
	size_t n = 0;
	for (int r = 1; r < 32 && n < max; r++)
		if (inv->runtimes_seen & (1u << r))
			out[n++] = wire_runtime_name(r);
	if (inv->crun_seen && n < max)
		out[n++] = "crun";
	return n;
}

int inventory_oci_dirs_found(const inventory_t *inv)
{
	return inv->oci_dirs;
}

int64_t inventory_last_scan_ns(const inventory_t *inv)
{
	return inv->last_scan_ns;
}

uint64_t inventory_pids_untracked(const inventory_t *inv)
{
	return pidmap_refused(inv->pm);
}

void inventory_foreach(const inventory_t *inv, void (*fn)(void *arg, const ctr_t *c), void *arg)
{
	for (size_t i = 0; i < inv->n_cur; i++)
		fn(arg, inv->cur[i].c);
}

size_t inventory_count(const inventory_t *inv)
{
	return inv->n_cur;
}

inventory_t *inventory_new(const settings_t *s, const hostinfo_t *host, inventory_emit_cb emit,
			   void *arg)
{
	inventory_t *inv = calloc(1, sizeof(*inv));
	if (!inv)
		return NULL;
	inv->s = s;
	inv->host = host;
	inv->emit = emit;
	inv->arg = arg;
	inv->pm = pidmap_new(PIDMAP_MAX);
	if (!inv->pm) {
		free(inv);
		return NULL;
	}
	inv->clk_tck = sysconf(_SC_CLK_TCK);
	if (inv->clk_tck <= 0)
		inv->clk_tck = 100;
	inv->boot_s = procfs_boot_time(s->proc_root);
	inv->kf = kfacts_new(s->proc_root, s->cgroup_root ? s->cgroup_root : "/sys/fs/cgroup");
	/* the host's namespaces are init's; where /proc/1/ns is not readable
	 * (some sandboxes), the agent's own, as it runs in the host's */
	uint32_t refs[2] = {1, (uint32_t)getpid()};
	for (int r = 0; r < 2 && !inv->have_host_ns; r++) {
		inv->have_host_ns = true;
		for (int i = 0; i < 4; i++)
			if (procfs_ns(s->proc_root, refs[r], ns_names[i], &inv->host_ns[i]) != 0)
				inv->have_host_ns = false;
	}
	if (!inv->have_host_ns)
		log_warn("inventory: cannot read %s/1/ns: host namespace sharing is not reported",
			 s->proc_root);
	char buf[8192];
	ssize_t n = procfs_read(s->proc_root, 1, "status", buf, sizeof(buf));
	procfs_status_t st;
	if (n > 0 && procfs_parse_status(buf, (size_t)n, &st) == 0 && st.have_caps)
		inv->host_capbnd = st.cap_bnd;
	return inv;
}

void inventory_set_api(inventory_t *inv, docker_api_t *api)
{
	inv->api = api;
}

void inventory_set_settle(inventory_t *inv, void (*settle)(void *arg), void *arg)
{
	inv->settle = settle;
	inv->settle_arg = arg;
}

void inventory_free(inventory_t *inv)
{
	if (!inv)
		return;
	for (size_t i = 0; i < inv->n_cur; i++)
		ctr_free(inv->cur[i].c);
	free(inv->cur);
	for (size_t i = 0; i < inv->n_oci; i++)
		ctr_free(inv->oci[i].c);
	free(inv->oci);
	pidmap_free(inv->pm);
	free(inv->waiting);
	kfacts_free(inv->kf);
	free(inv->found);
	free(inv->procs);
	free(inv);
}

bool inventory_wants_rescan(const inventory_t *inv)
{
	return inv->rescan;
}
