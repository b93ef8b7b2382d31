// SPDX-License-Identifier: Apache-2.0
/* The agent's object graph and timers (see agent.h). */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "batcher.h"
#include "docker_api.h"
#include "hostinfo.h"
#include "images.h"
#include "inventory.h"
#include "log.h"
#include "loss.h"
#include "proc_connector.h"
#include "procfs.h"
#include "spool.h"
#include "text.h"
#include "tls.h"
#include "uplink.h"
#include "vtime.h"

/* Keep a batch well below the collector's default 4 MiB frame limit. */
#define BATCH_MAX_BYTES (3u * 1024 * 1024)
#define TICK_MS 250
#define QUICK_SCAN_MS 50
/* Quick scans (on a new container's first exec, an exit, an API event)
 * keep at least this gap, and ten times the last scan's duration, after
 * the previous scan: /proc scanning stays bounded however many unknown
 * containers appear. */
#define QUICK_SCAN_GAP_MS 200

typedef struct {
	const char *name;
	bool ok;
	char error[256];
} source_t;

enum {
	SRC_PROCFS,
	SRC_PROC_CONNECTOR,
	SRC_DOCKER_API,
	SRC_OCI,
	SRC_IMAGES,
	N_SRC
};

struct agent {
	struct event_base *base;
	settings_t *s;
	hostinfo_t host;
	SSL_CTX *ctx;
	spool_t *spool;
	batcher_t *batcher;
	uplink_t *uplink;
	inventory_t *inv;
	images_t *images; /* NULL: image_inventory = off */
	docker_api_t *api;
	proc_connector_t *pc;
	struct event *scan_ev, *quick_ev, *snapshot_ev, *status_ev, *tick_ev;
	source_t src[N_SRC];
	bool status_due;
	bool shutting_down;
	int64_t shutdown_deadline_ns;
	int64_t last_fsync_ns;
	uint64_t last_append_seq;
	uint64_t execs_seen, execs_incomplete;
	loss_t loss;
	int64_t last_scan_end_ns; /* monotonic */
};

static struct timeval tv_ms(int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	return tv;
}

static void arm(struct event *ev, int64_t ms)
{
	struct timeval tv = tv_ms(ms);
	evtimer_add(ev, &tv);
}

/* ---- events in ---------------------------------------------------------------- */

/* Scan again in ms, or later to keep the gap after the last scan. */
static void quick_scan(agent_t *a, int64_t ms)
{
	if (evtimer_pending(a->quick_ev, NULL))
		return;
	int64_t gap_ms = inventory_last_scan_ns(a->inv) / 100000; /* 10 x its duration */
	if (gap_ms < QUICK_SCAN_GAP_MS)
		gap_ms = QUICK_SCAN_GAP_MS;
	int64_t since_ms = (vtime_mono_ns() - a->last_scan_end_ns) / 1000000;
	if (a->last_scan_end_ns && since_ms + ms < gap_ms)
		ms = gap_ms - since_ms;
	arm(a->quick_ev, ms);
}

static void emit(void *arg, const Vigil__V1__Event *ev)
{
	agent_t *a = arg;
	batcher_add(a->batcher, ev);
}

static void sink(void *arg, const uint8_t *body, size_t len, uint32_t n_events, int64_t first_ns,
		 int64_t last_ns)
{
	agent_t *a = arg;
	a->last_append_seq = spool_append(a->spool, body, len, n_events, first_ns, last_ns);
	if (a->last_append_seq)
		uplink_kick(a->uplink);
}

/* Put ev into a batch of its own (an image inventory can fill one); return
 * the batch's spool seq, 0 if it was not stored. */
static uint64_t emit_alone(void *arg, const Vigil__V1__Event *ev)
{
	agent_t *a = arg;
	if (a->shutting_down)
		return 0;
	batcher_flush(a->batcher);
	a->last_append_seq = 0;
	if (batcher_add(a->batcher, ev) != 0)
		return 0;
	batcher_flush(a->batcher);
	return a->last_append_seq;
}

static void images_failed(void *arg)
{
	agent_t *a = arg;
	a->status_due = true;
}

static void set_source(agent_t *a, int i, bool ok, const char *error)
{
	source_t *s = &a->src[i];
	if (s->ok == ok && strcmp(s->error, error ? error : "") == 0)
		return;
	s->ok = ok;
	snprintf(s->error, sizeof(s->error), "%s", error ? error : "");
	a->status_due = true;
}

static void emit_status(agent_t *a)
{
	spool_stats_t st;
	spool_get_stats(a->spool, &st);
	/* A drop report goes out only while connected: written while the
	 * collector is away, it could be dropped in turn by a full spool. The
	 * counts wait in the spool's meta file until then. */
	spool_drops_t drops;
	bool have_drops =
		uplink_state(a->uplink) == UPLINK_ST_READY && spool_take_drops(a->spool, &drops);
	Vigil__V1__AgentStatus as = VIGIL__V1__AGENT_STATUS__INIT;
	as.spool_bytes = st.bytes;
	as.spool_capacity = st.capacity;
	as.cert_not_after_ns = uplink_cert_not_after_ns(a->uplink);
	as.cert_renewed_ns = uplink_renewed_ns(a->uplink);
	if (have_drops) {
		as.dropped_batches = drops.batches;
		as.dropped_events = drops.events;
		as.drop_first_ns = drops.first_ns;
		as.drop_last_ns = drops.last_ns;
	}
	/* the image reader's counts go out with each status, due or not */
	if (a->images)
		images_status(a->images, a->src[SRC_IMAGES].error,
			      sizeof(a->src[SRC_IMAGES].error));
	Vigil__V1__SourceStatus ss[N_SRC];
	Vigil__V1__SourceStatus *sp[N_SRC];
	for (int i = 0; i < N_SRC; i++) {
		vigil__v1__source_status__init(&ss[i]);
		ss[i].name = (char *)a->src[i].name;
		ss[i].ok = a->src[i].ok;
		ss[i].error = a->src[i].error;
		sp[i] = &ss[i];
	}
	as.sources = sp;
	as.n_sources = N_SRC;
	Vigil__V1__Loss lm[LOSS_N];
	Vigil__V1__Loss *lp[LOSS_N];
	bool losses = loss_pending(&a->loss);
	as.n_losses = loss_to_pb(&a->loss, lm, lp);
	as.losses = lp;
	Vigil__V1__Event e = VIGIL__V1__EVENT__INIT;
	e.time_ns = vtime_now_ns();
	e.kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_AGENT_STATUS;
	bool failing = false;
	for (int i = 0; i < N_SRC; i++)
		failing |= !a->src[i].ok;
	e.severity = have_drops		 ? VIGIL__V1__SEVERITY__SEVERITY_HIGH
		     : failing || losses ? VIGIL__V1__SEVERITY__SEVERITY_MEDIUM
					 : VIGIL__V1__SEVERITY__SEVERITY_INFO;
	e.container_id = "";
	e.body_case = VIGIL__V1__EVENT__BODY_AGENT_STATUS;
	e.agent_status = &as;
	if (have_drops)
		log_warn("reporting a gap: %" PRIu64 " batches (%" PRIu64 " events) dropped",
			 drops.batches, drops.events);
	/* its own batch, so that we know whether it was stored */
	batcher_flush(a->batcher);
	batcher_add(a->batcher, &e);
	a->last_append_seq = 0;
	batcher_flush(a->batcher);
	if (!a->last_append_seq && have_drops)
		spool_restore_drops(a->spool, &drops);
	if (a->last_append_seq)
		loss_reported(&a->loss);
	a->status_due = false;
}

/* The controlling tty and the login uid of an exec'ing process. */
static void exec_tty_login(agent_t *a, uint32_t pid, Vigil__V1__ProcessExec *x)
{
	char buf[1024];
	ssize_t n = procfs_read(a->s->proc_root, pid, "stat", buf, sizeof(buf));
	uint32_t tty;
	if (n > 0 && procfs_parse_stat_tty(buf, (size_t)n, &tty) == 0)
		x->tty = tty ? VIGIL__V1__TRISTATE__TRISTATE_TRUE
			     : VIGIL__V1__TRISTATE__TRISTATE_FALSE;
	n = procfs_read(a->s->proc_root, pid, "loginuid", buf, sizeof(buf));
	if (n > 0 && procfs_parse_u32(buf, (size_t)n, &x->login_uid) == 0)
		x->login_uid_known = true;
}

/* The parent's executable and argv[0], read at once (it may be gone). */
static void exec_parent(agent_t *a, uint32_t ppid, char **exe, char **argv0, bool *truncated)
{
	if (!ppid)
		return;
	char buf[4096];
	ssize_t n = procfs_readlink(a->s->proc_root, ppid, "exe", buf, sizeof(buf));
	if (n >= 0)
		*exe = text_dup_n(buf, (size_t)n, 0, truncated);
	n = procfs_read(a->s->proc_root, ppid, "cmdline", buf, sizeof(buf));
	if (n > 0)
		*argv0 = text_dup_n(buf, strnlen(buf, (size_t)n), 0, truncated);
}

/* Drift: is the executable (path as the container sees it) a file of the
 * container's writable upper layer? Compare the exe's inode with the file
 * at the same path under the overlay upperdir. */
static int exe_in_upper(agent_t *a, uint32_t pid, const char *path, const char *id, int memfd)
{
	if (memfd == VIGIL__V1__TRISTATE__TRISTATE_TRUE)
		return VIGIL__V1__TRISTATE__TRISTATE_FALSE;
	const char *upper = inventory_upperdir(a->inv, id);
	size_t pl = strlen(path);
	/* a deleted file, or not a path: cannot tell */
	if (!upper || path[0] != '/' || strstr(path, "/../") ||
	    (pl > 10 && strcmp(path + pl - 10, " (deleted)") == 0))
		return VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN;
	char p[8192];
	snprintf(p, sizeof(p), "%s/%u/exe", a->s->proc_root, pid);
	struct stat se, su;
	if (stat(p, &se) != 0)
		return VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN;
	/* the upper layer is the container's to shape: resolve the path inside
	 * it (a symlink there must not lead the agent onto the host) */
	int dfd = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN;
	struct open_how how = {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
			       .resolve =
				       RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
	int fd = (int)syscall(SYS_openat2, dfd, path + 1, &how, sizeof(how));
	int err = errno;
	close(dfd);
	if (fd < 0)
		return err == ENOENT || err == ENOTDIR ? VIGIL__V1__TRISTATE__TRISTATE_FALSE
						       : VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN;
	int rc = fstat(fd, &su);
	close(fd);
	if (rc != 0)
		return VIGIL__V1__TRISTATE__TRISTATE_UNKNOWN;
	/* overlay shows an upper file with the upper file's inode; a regular
	 * file there is what the container runs */
	if (S_ISREG(su.st_mode) && su.st_ino == se.st_ino)
		return VIGIL__V1__TRISTATE__TRISTATE_TRUE;
	return S_ISREG(su.st_mode) ? VIGIL__V1__TRISTATE__TRISTATE_TRUE
				   : VIGIL__V1__TRISTATE__TRISTATE_FALSE;
}

static void on_uid(void *arg, uint32_t pid, uint32_t tgid, uint32_t ruid, uint32_t euid)
{
	agent_t *a = arg;
	uint32_t old_r, old_e;
	if (a->shutting_down || pid != tgid ||
	    !inventory_note_uid_change(a->inv, tgid, ruid, euid, &old_r, &old_e))
		return;
	bool known;
	const char *id = inventory_container_of(a->inv, tgid, &known);
	if (!id)
		return;
	char cid[129];
	snprintf(cid, sizeof(cid), "%s", id);
	Vigil__V1__ProcessUidChange u = VIGIL__V1__PROCESS_UID_CHANGE__INIT;
	u.pid = tgid;
	u.old_real_uid = old_r;
	u.old_effective_uid = old_e;
	u.new_real_uid = ruid;
	u.new_effective_uid = euid;
	char buf[4096];
	char *exe = NULL, *arg0 = NULL;
	ssize_t n = procfs_readlink(a->s->proc_root, tgid, "exe", buf, sizeof(buf));
	if (n >= 0)
		exe = text_dup_n(buf, (size_t)n, 0, NULL);
	n = procfs_read(a->s->proc_root, tgid, "cmdline", buf, sizeof(buf));
	if (n > 0)
		arg0 = text_dup_n(buf, strnlen(buf, (size_t)n), 0, NULL);
	u.executable = exe ? exe : "";
	u.argv0 = arg0 ? arg0 : "";
	Vigil__V1__Event e = VIGIL__V1__EVENT__INIT;
	e.time_ns = vtime_now_ns();
	e.kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_PROCESS_UID_CHANGE;
	e.severity = VIGIL__V1__SEVERITY__SEVERITY_MEDIUM;
	e.container_id = cid;
	e.body_case = VIGIL__V1__EVENT__BODY_PROCESS_UID_CHANGE;
	e.process_uid_change = &u;
	emit(a, &e);
	free(exe);
	free(arg0);
}

static void on_exec(void *arg, uint32_t pid, uint32_t tgid)
{
	agent_t *a = arg;
	if (a->shutting_down)
		return;
	(void)pid;
	bool known = false;
	const char *id = inventory_container_of(a->inv, tgid, &known);
	if (!id && !a->s->host_execs)
		return;
	char cid[129];
	snprintf(cid, sizeof(cid), "%s", id ? id : "");
	const char *root = a->s->proc_root;
	bool incomplete = false, truncated = false;
	char buf[16384];
	Vigil__V1__ProcessExec x = VIGIL__V1__PROCESS_EXEC__INIT;
	x.pid = tgid;
	ssize_t n = procfs_read(root, tgid, "status", buf, sizeof(buf));
	procfs_status_t st;
	if (n > 0 && procfs_parse_status(buf, (size_t)n, &st) == 0) {
		x.ppid = st.ppid;
		x.uid = st.uid;
		x.gid = st.gid;
		x.real_uid = st.ruid;
		x.real_gid = st.rgid;
		if (id && st.have_uid)
			inventory_note_uids(a->inv, tgid, st.ruid, st.uid);
	} else {
		incomplete = true;
	}
	exec_tty_login(a, tgid, &x);
	ctr_strv_t argv = {0};
	n = procfs_read(root, tgid, "cmdline", buf, sizeof(buf));
	if (n <= 0 || procfs_parse_cmdline(buf, (size_t)n, (size_t)a->s->argv_max_bytes, &argv,
					   &truncated) != 0)
		incomplete = true; /* unreadable, zeroed by the process, or no memory */
	/* cmdline is capped at what we read: say so if it filled the buffer */
	if (n >= (ssize_t)sizeof(buf) - 1)
		truncated = true;
	char link[4096], link_exe[4096] = "";
	char *exe = NULL, *cwd = NULL;
	n = procfs_readlink(root, tgid, "exe", link, sizeof(link));
	if (n >= 0) {
		exe = text_dup_n(link, (size_t)n, 0, &truncated);
		memcpy(link_exe, link, (size_t)n + 1);
	} else {
		incomplete = true;
	}
	n = procfs_readlink(root, tgid, "cwd", link, sizeof(link));
	if (n >= 0)
		cwd = text_dup_n(link, (size_t)n, 0, &truncated);
	else
		incomplete = true;
	char *pexe = NULL, *parg0 = NULL;
	exec_parent(a, x.ppid, &pexe, &parg0, &truncated);
	if (exe) {
		x.exe_memfd = strncmp(exe, "/memfd:", 7) == 0 ? VIGIL__V1__TRISTATE__TRISTATE_TRUE
							      : VIGIL__V1__TRISTATE__TRISTATE_FALSE;
		if (id)
			x.exe_upper_layer = exe_in_upper(a, tgid, link_exe, id, x.exe_memfd);
	}
	if (id)
		x.exec_session = inventory_exec_session(a->inv, tgid, x.ppid, cid, known);
	x.parent_executable = pexe ? pexe : "";
	x.parent_argv0 = parg0 ? parg0 : "";
	x.executable = exe ? exe : "";
	x.cwd = cwd ? cwd : "";
	x.argv = argv.v;
	x.n_argv = argv.n;
	x.truncated = truncated;
	x.incomplete = incomplete;
	Vigil__V1__Event e = VIGIL__V1__EVENT__INIT;
	e.time_ns = vtime_now_ns();
	e.kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_PROCESS_EXEC;
	e.severity = VIGIL__V1__SEVERITY__SEVERITY_INFO;
	e.container_id = cid;
	e.body_case = VIGIL__V1__EVENT__BODY_PROCESS_EXEC;
	e.process_exec = &x;
	emit(a, &e);
	a->execs_seen++;
	if (incomplete) {
		a->execs_incomplete++;
		if (loss_add(&a->loss, LOSS_EXEC_UNREAD, 1, e.time_ns))
			a->status_due = true;
	}
	free(exe);
	free(cwd);
	free(pexe);
	free(parg0);
	ctr_strv_clear(&argv);
	if (id && !known)
		quick_scan(a, QUICK_SCAN_MS);
}

static void on_fork(void *arg, uint32_t parent, uint32_t child_pid, uint32_t child_tgid)
{
	agent_t *a = arg;
	if (child_pid == child_tgid)
		inventory_note_fork(a->inv, parent, child_tgid);
}

static void on_exit_ev(void *arg, uint32_t pid, uint32_t tgid, uint32_t status)
{
	agent_t *a = arg;
	if (pid != tgid)
		return;
	if (inventory_note_exit(a->inv, tgid, status))
		quick_scan(a, QUICK_SCAN_MS);
}

static void drain_connector(void *arg)
{
	proc_connector_drain(arg);
}

static void api_change(void *arg)
{
	quick_scan(arg, QUICK_SCAN_MS);
}

static void api_die(void *arg, const char *id, bool exit_known, int exit_code)
{
	agent_t *a = arg;
	inventory_note_die(a->inv, id, exit_known, exit_code);
}

static void api_status(void *arg, bool ok, const char *error)
{
	agent_t *a = arg;
	set_source(a, SRC_DOCKER_API, ok, error);
}

/* ---- timers --------------------------------------------------------------------- */

static void scan(agent_t *a)
{
	if (a->shutting_down)
		return;
	inventory_scan(a->inv);
	a->last_scan_end_ns = vtime_mono_ns();
	if (a->images && uplink_state(a->uplink) == UPLINK_ST_READY)
		images_sync(a->images, a->inv);
	if (inventory_wants_rescan(a->inv))
		quick_scan(a, 4 * QUICK_SCAN_MS);
	int dirs = inventory_oci_dirs_found(a->inv);
	if (dirs < 0)
		set_source(a, SRC_OCI, false, "no OCI runtime state directory exists");
	else
		set_source(a, SRC_OCI, true, "");
	log_debug("scan: %zu containers in %.1f ms", inventory_count(a->inv),
		  (double)inventory_last_scan_ns(a->inv) / 1e6);
}

static void scan_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	agent_t *a = arg;
	scan(a);
	arm(a->scan_ev, a->s->scan_interval_ms);
}

static void quick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	scan(arg);
}

static void snapshot_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	agent_t *a = arg;
	if (!a->shutting_down)
		inventory_snapshot(a->inv, BATCH_MAX_BYTES);
	arm(a->snapshot_ev, a->s->snapshot_interval_ms);
}

static void status_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	agent_t *a = arg;
	a->status_due = true;
	arm(a->status_ev, a->s->status_interval_ms);
}

/* Take the sources' own loss counters into the loss table. A first loss
 * since the last report makes a status event due at once; later ones wait
 * for the periodic one. */
static void observe_losses(agent_t *a)
{
	int64_t now = vtime_now_ns();
	bool first = false;
	if (a->pc)
		first |= loss_observe(&a->loss, LOSS_PROC_CONNECTOR_OVERRUN,
				      proc_connector_overruns(a->pc), now);
	first |= loss_observe(&a->loss, LOSS_EVENT_TOO_LARGE,
			      batcher_oversized(a->batcher) + uplink_events_too_large(a->uplink),
			      now);
	first |= loss_observe(&a->loss, LOSS_BATCH_REFUSED, uplink_events_refused(a->uplink), now);
	spool_stats_t st;
	spool_get_stats(a->spool, &st);
	first |= loss_observe(&a->loss, LOSS_SPOOL_TORN_RECORD, st.torn_records, now);
	if (a->api) {
		docker_api_gaps_t g;
		docker_api_get_gaps(a->api, &g);
		first |= loss_observe(&a->loss, LOSS_API_EVENT_GAP, g.count, now);
	}
	first |= loss_observe(&a->loss, LOSS_PID_UNTRACKED, inventory_pids_untracked(a->inv), now);
	if (first)
		a->status_due = true;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	agent_t *a = arg;
	int64_t now = vtime_mono_ns();
	int64_t oldest = batcher_oldest_ns(a->batcher);
	if (oldest && now - oldest >= a->s->batch_delay_ms * 1000000)
		batcher_flush(a->batcher);
	observe_losses(a);
	spool_drops_t d;
	if (uplink_state(a->uplink) == UPLINK_ST_READY && spool_take_drops(a->spool, &d)) {
		spool_restore_drops(a->spool, &d);
		a->status_due = true;
	}
	if (a->status_due && !a->shutting_down)
		emit_status(a);
	if (a->s->spool_fsync_ms && now - a->last_fsync_ns >= a->s->spool_fsync_ms * 1000000) {
		spool_sync(a->spool);
		a->last_fsync_ns = now;
	}
	if (a->shutting_down) {
		if (uplink_all_acked(a->uplink) || now >= a->shutdown_deadline_ns) {
			if (!uplink_all_acked(a->uplink))
				log_info("shutdown: %s; unacknowledged batches stay in the spool",
					 uplink_state(a->uplink) == UPLINK_ST_READY
						 ? "timeout waiting for acknowledgements"
						 : "collector not connected");
			else
				log_info("shutdown: every batch is acknowledged");
			uplink_stop(a->uplink);
			event_base_loopexit(a->base, NULL);
			return;
		}
	}
	/* the batch delay decides how soon the next tick comes */
	int64_t next = TICK_MS;
	if (batcher_pending(a->batcher)) {
		int64_t left =
			a->s->batch_delay_ms - (now - batcher_oldest_ns(a->batcher)) / 1000000;
		if (left < next)
			next = left < 1 ? 1 : left;
	}
	arm(a->tick_ev, next);
}

static size_t apply_limits(agent_t *a);

static void on_ready(void *arg, uint64_t committed, char *const *known, size_t n_known)
{
	agent_t *a = arg;
	/* a full snapshot after every connect, in batches the collector takes */
	inventory_snapshot(a->inv, apply_limits(a));
	a->status_due = true;
	if (a->images) {
		images_welcome(a->images, committed, known, n_known);
		images_sync(a->images, a->inv);
	}
}

static size_t hello_images(void *arg, char ***ids)
{
	agent_t *a = arg;
	*ids = NULL;
	return a->images ? images_hello_ids(a->images, a->inv, ids) : 0;
}

/* The image reader, if image_inventory is on. */
static void start_images(agent_t *a)
{
	if (!a->s->image_inventory) {
		set_source(a, SRC_IMAGES, false, "disabled (image_inventory = off)");
		return;
	}
	images_cbs_t cbs = {emit_alone, images_failed};
	char err[256];
	/* an event of its own in a batch: the batch limit less its framing */
	a->images = images_new(a->base, a->s, BATCH_MAX_BYTES - 16, &cbs, a, err, sizeof(err));
	if (!a->images) {
		log_warn("image inventory: %s; images are not reported", err);
		set_source(a, SRC_IMAGES, false, err);
		return;
	}
	set_source(a, SRC_IMAGES, true, "");
}

/* ---- life cycle ----------------------------------------------------------------- */

static SSL_CTX *build_tls(const settings_t *s, char *err, size_t errlen)
{
	tls_files_t f = {s->tls_cert, s->tls_key, s->ca, s->tls_min_version};
	return tls_client_ctx_new(&f, err, errlen);
}

/* The settings' limits, batches within the collector's too. Return the
 * byte limit of a batch. */
static size_t apply_limits(agent_t *a)
{
	text_set_max((size_t)a->s->string_max_bytes);
	size_t max_events = (size_t)a->s->batch_max_events, max_bytes = BATCH_MAX_BYTES;
	if (a->uplink)
		uplink_fit_limits(a->uplink, &max_events, &max_bytes);
	batcher_set_limits(a->batcher, max_events, max_bytes);
	return max_bytes;
}

static void start_api(agent_t *a)
{
	const char *sock = a->s->docker_socket;
	if (!sock[0] || strcmp(sock, "none") == 0) {
		set_source(a, SRC_DOCKER_API, false, "disabled (docker_socket = none)");
		return;
	}
	docker_api_cbs_t cbs = {api_change, api_die, api_status};
	a->api = docker_api_new(a->base, sock, a->s->api_timeout_ms, (size_t)a->s->labels_max, &cbs,
				a);
	if (!a->api) {
		set_source(a, SRC_DOCKER_API, false, "out of memory");
		return;
	}
	set_source(a, SRC_DOCKER_API, false, "connecting");
	inventory_set_api(a->inv, a->api);
}

agent_t *agent_new(struct event_base *base, settings_t *s, char *err, size_t errlen)
{
	agent_t *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->base = base;
	a->s = s;
	a->src[SRC_PROCFS].name = "procfs";
	a->src[SRC_PROC_CONNECTOR].name = "proc_connector";
	a->src[SRC_DOCKER_API].name = "docker_api";
	a->src[SRC_OCI].name = "oci";
	a->src[SRC_IMAGES].name = "image_inventory";
	a->src[SRC_PROCFS].ok = true;
	hostinfo_read(&a->host, s->hostname, s->proc_root);
	text_set_max((size_t)s->string_max_bytes);
	a->ctx = build_tls(s, err, errlen);
	if (!a->ctx)
		goto fail;
	a->spool = spool_open(s->spool_dir, (uint64_t)s->spool_max_bytes, s->spool_fsync_ms, err,
			      errlen);
	if (!a->spool)
		goto fail;
	a->batcher = batcher_new((size_t)s->batch_max_events, BATCH_MAX_BYTES, sink, a);
	a->inv = inventory_new(s, &a->host, emit, a);
	if (a->batcher && a->inv)
		start_images(a);
	uplink_cbs_t ucbs = {on_ready, hello_images};
	a->uplink = a->batcher && a->inv ? uplink_new(base, s, a->spool, &a->host, a->ctx, &ucbs, a)
					 : NULL;
	a->scan_ev = evtimer_new(base, scan_cb, a);
	a->quick_ev = evtimer_new(base, quick_cb, a);
	a->snapshot_ev = evtimer_new(base, snapshot_cb, a);
	a->status_ev = evtimer_new(base, status_cb, a);
	a->tick_ev = evtimer_new(base, tick_cb, a);
	if (!a->uplink || !a->scan_ev || !a->quick_ev || !a->snapshot_ev || !a->status_ev ||
	    !a->tick_ev) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (s->proc_connector) {
		proc_connector_cbs_t pcbs = {on_fork, on_exec, on_exit_ev, on_uid};
		char perr[256];
		a->pc = proc_connector_new(base, &pcbs, a, perr, sizeof(perr));
		if (!a->pc) {
			log_warn("proc_connector: %s; exec events are not reported, container "
				 "starts and stops are found by scans",
				 perr);
			set_source(a, SRC_PROC_CONNECTOR, false, perr);
		} else {
			set_source(a, SRC_PROC_CONNECTOR, true, "");
			inventory_set_settle(a->inv, drain_connector, a->pc);
		}
	} else {
		set_source(a, SRC_PROC_CONNECTOR, false, "disabled (proc_connector = false)");
	}
	start_api(a);
	return a;
fail:
	agent_free(a);
	return NULL;
}

void agent_start(agent_t *a)
{
	if (a->api)
		docker_api_start(a->api);
	/* the first scan is the baseline: no start events for what runs already */
	inventory_scan(a->inv);
	size_t n = inventory_count(a->inv);
	log_info("agent %s on %s: %zu containers found in %.1f ms; sources: proc_connector %s, "
		 "docker_api %s",
		 a->host.agent_version, a->host.hostname, n,
		 (double)inventory_last_scan_ns(a->inv) / 1e6,
		 a->src[SRC_PROC_CONNECTOR].ok ? "ok" : "failing",
		 a->api ? a->s->docker_socket : "off");
	a->status_due = true;
	a->last_fsync_ns = vtime_mono_ns();
	arm(a->scan_ev, a->s->scan_interval_ms);
	arm(a->snapshot_ev, a->s->snapshot_interval_ms);
	arm(a->status_ev, a->s->status_interval_ms);
	arm(a->tick_ev, 10);
	uplink_start(a->uplink);
}

void agent_reload(agent_t *a)
{
	char err[512];
	SSL_CTX *ctx = build_tls(a->s, err, sizeof(err));
	if (!ctx) {
		log_error("reload: TLS: %s; keeping the old certificates", err);
	} else {
		uplink_set_tls(a->uplink, ctx);
		tls_ctx_unref(a->ctx);
		a->ctx = ctx;
		log_info("reload: certificates reloaded; used from the next connection");
	}
	apply_limits(a);
	hostinfo_read(&a->host, a->s->hostname, a->s->proc_root);
	arm(a->scan_ev, a->s->scan_interval_ms);
	arm(a->snapshot_ev, a->s->snapshot_interval_ms);
	arm(a->status_ev, a->s->status_interval_ms);
	a->status_due = true;
}

void agent_shutdown(agent_t *a)
{
	if (a->shutting_down)
		return;
	emit_status(a);
	a->shutting_down = true;
	batcher_flush(a->batcher);
	spool_sync(a->spool);
	a->shutdown_deadline_ns = vtime_mono_ns() + a->s->shutdown_timeout_ms * 1000000;
	log_info("shutdown: spool synced; waiting up to %" PRId64
		 " ms for the collector to acknowledge it",
		 a->s->shutdown_timeout_ms);
	evtimer_del(a->scan_ev);
	evtimer_del(a->quick_ev);
	evtimer_del(a->snapshot_ev);
	arm(a->tick_ev, 10);
}

void agent_free(agent_t *a)
{
	if (!a)
		return;
	if (a->batcher && a->spool && a->uplink)
		batcher_flush(a->batcher);
	images_free(a->images);
	proc_connector_free(a->pc);
	docker_api_free(a->api);
	uplink_free(a->uplink);
	batcher_free(a->batcher);
	inventory_free(a->inv);
	spool_close(a->spool);
	tls_ctx_unref(a->ctx);
	if (a->scan_ev)
		event_free(a->scan_ev);
	if (a->quick_ev)
		event_free(a->quick_ev);
	if (a->snapshot_ev)
		event_free(a->snapshot_ev);
	if (a->status_ev)
		event_free(a->status_ev);
	if (a->tick_ev)
		event_free(a->tick_ev);
	free(a);
}
