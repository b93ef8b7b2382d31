// SPDX-License-Identifier: Apache-2.0
/* Image inventories read from containers' roots on a worker thread, cached
 * per image (see imageinv.h). */
#include "imageinv.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pkgdb_sqlite.h"
#include "vtime.h"

#define MIB (1024u * 1024)

static imageinv_opts_t opts_fill(const imageinv_opts_t *o)
{
	imageinv_opts_t r = o ? *o : (imageinv_opts_t){0};
	if (!r.proc_root)
		r.proc_root = "/proc";
	if (!r.queue_max)
		r.queue_max = 64;
	if (!r.cache_max)
		r.cache_max = 256;
	if (r.budget_ms <= 0)
		r.budget_ms = 2000;
	if (!r.max_file)
		r.max_file = 16 * MIB;
	if (!r.max_rpmdb)
		r.max_rpmdb = 32 * MIB;
	if (!r.max_pkgs || r.max_pkgs > PKGDB_MAX_PACKAGES)
		r.max_pkgs = PKGDB_MAX_PACKAGES;
	return r;
}

/* --- one read ---------------------------------------------------------- */

typedef struct {
	int root;
	imageinv_opts_t o;
	int64_t deadline;
	pkgdb_inv_t *inv;
	bool oom;
	EVP_MD_CTX *md; /* the content address of what was read, or NULL */
} reader_t;

/* Add to the content address: the path, what came of it, and the bytes
 * read, each with its length, so that no two reads hash alike. */
static void hash_read(reader_t *r, const char *path, const char *what, const char *buf, size_t len)
{
	if (!r->md)
		return;
	uint64_t n[3] = {strlen(path), strlen(what), len};
	if (EVP_DigestUpdate(r->md, n, sizeof(n)) != 1 ||
	    EVP_DigestUpdate(r->md, path, n[0]) != 1 || EVP_DigestUpdate(r->md, what, n[1]) != 1 ||
	    (len && EVP_DigestUpdate(r->md, buf, len) != 1))
		r->oom = true;
}

static bool over_budget(reader_t *r)
{
	if (vtime_mono_ns() <= r->deadline)
		return false;
	pkgdb_inv_partial(r->inv, "time budget of %d ms spent", r->o.budget_ms);
	return true;
}

/* Read path; absent is ROOTFS_ABSENT and no note, any other failure is
 * noted in the inventory (partial, or not read when nothing else is). */
static rootfs_rc_t read_file(reader_t *r, const char *path, size_t max, char **buf, size_t *len)
{
	rootfs_rc_t rc = rootfs_read(r->root, path, max, buf, len);
	if (rc != ROOTFS_ABSENT)
		hash_read(r, path, rootfs_rc_name(rc), rc == ROOTFS_OK ? *buf : NULL,
			  rc == ROOTFS_OK ? *len : 0);
	if (rc == ROOTFS_TOO_BIG)
		pkgdb_inv_partial(r->inv, "%s: over the cap of %zu bytes", path, max);
	else if (rc != ROOTFS_OK && rc != ROOTFS_ABSENT)
		pkgdb_inv_partial(r->inv, "%s: %s", path, rootfs_rc_name(rc));
	return rc;
}

static void read_os(reader_t *r)
{
	static const char *const paths[] = {"/etc/os-release", "/usr/lib/os-release"};
	for (size_t i = 0; i < 2; i++) {
		char *buf;
		size_t len;
		rootfs_rc_t rc = read_file(r, paths[i], 64 * 1024, &buf, &len);
		if (rc == ROOTFS_ABSENT)
			continue;
		if (rc == ROOTFS_OK) {
			if (pkgdb_parse_os_release(buf, len, r->inv) < 0)
				r->oom = true;
			free(buf);
		}
		return;
	}
}

static bool ends_with(const char *s, const char *sfx)
{
	size_t n = strlen(s), k = strlen(sfx);
	return n >= k && strcmp(s + n - k, sfx) == 0;
}

/* The dpkg status file and status.d/ (distroless). True if either exists. */
static bool read_dpkg(reader_t *r)
{
	bool found = false;
	char *buf;
	size_t len;
	rootfs_rc_t rc = read_file(r, "/var/lib/dpkg/status", r->o.max_file, &buf, &len);
	if (rc != ROOTFS_ABSENT)
		found = true;
	if (rc == ROOTFS_OK) {
		if (pkgdb_parse_dpkg(buf, len, false, r->inv) < 0)
			r->oom = true;
		free(buf);
	}
	char **names = NULL;
	size_t n = 0;
	bool more = false;
	rc = rootfs_list(r->root, "/var/lib/dpkg/status.d", r->o.max_pkgs, &names, &n, &more);
	if (rc != ROOTFS_OK) {
		if (rc != ROOTFS_ABSENT)
			pkgdb_inv_partial(r->inv, "/var/lib/dpkg/status.d: %s", rootfs_rc_name(rc));
		return found || rc != ROOTFS_ABSENT;
	}
	found = true;
	if (more)
		pkgdb_inv_partial(r->inv, "/var/lib/dpkg/status.d: over %zu files", r->o.max_pkgs);
	for (size_t i = 0; i < n && !r->oom; i++) {
		if (ends_with(names[i], ".md5sums") || names[i][0] == '.')
			continue;
		if (over_budget(r))
			break;
		char path[512];
		snprintf(path, sizeof(path), "/var/lib/dpkg/status.d/%s", names[i]);
		if (read_file(r, path, r->o.max_file, &buf, &len) != ROOTFS_OK)
			continue;
		if (pkgdb_parse_dpkg(buf, len, true, r->inv) < 0)
			r->oom = true;
		free(buf);
	}
	rootfs_names_free(names, n);
	return found;
}

static bool read_apk(reader_t *r)
{
	char *buf;
	size_t len;
	rootfs_rc_t rc = read_file(r, "/lib/apk/db/installed", r->o.max_file, &buf, &len);
	if (rc == ROOTFS_ABSENT)
		return false;
	if (rc == ROOTFS_OK) {
		if (pkgdb_parse_apk(buf, len, r->inv) < 0)
			r->oom = true;
		free(buf);
	}
	return true;
}

static bool exists(reader_t *r, const char *path)
{
	int fd;
	rootfs_rc_t rc = rootfs_open(r->root, path, false, &fd);
	if (rc == ROOTFS_OK)
		close(fd);
	if (rc != ROOTFS_ABSENT)
		hash_read(r, path, "exists", NULL, 0);
	return rc != ROOTFS_ABSENT;
}

static bool read_rpm(reader_t *r)
{
	static const char *const dirs[] = {"/var/lib/rpm", "/usr/lib/sysimage/rpm"};
	char path[64];
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/rpmdb.sqlite", dirs[i]);
		char *buf;
		size_t len;
		rootfs_rc_t rc = read_file(r, path, r->o.max_rpmdb, &buf, &len);
		if (rc == ROOTFS_ABSENT)
			continue;
		if (rc == ROOTFS_OK) {
			if (pkgdb_sqlite_read((uint8_t *)buf, len, r->inv, r->deadline) < 0 &&
			    r->inv->status != PKGDB_ST_NOT_READ)
				r->oom = true;
			free(buf);
		}
		return true;
	}
	static const char *const old[][2] = {{"Packages", "Berkeley DB"}, {"Packages.db", "ndb"}};
	for (size_t i = 0; i < 2; i++)
		for (size_t k = 0; k < 2; k++) {
			snprintf(path, sizeof(path), "%s/%s", dirs[i], old[k][0]);
			if (!exists(r, path))
				continue;
			pkgdb_inv_not_read(r->inv, "%s: the %s rpm database format is not read",
					   path, old[k][1]);
			return true;
		}
	return false;
}

/* Write "rootfs:sha256:HEX" of md's digest into id. */
static void content_id(EVP_MD_CTX *md, char id[IMAGEINV_CONTENT_ID_LEN])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	id[0] = '\0';
	if (EVP_DigestFinal_ex(md, d, &n) != 1 || n != 32)
		return;
	int k = snprintf(id, IMAGEINV_CONTENT_ID_LEN, "rootfs:sha256:");
	for (unsigned i = 0; i < n; i++)
		k += snprintf(id + k, IMAGEINV_CONTENT_ID_LEN - (size_t)k, "%02x", d[i]);
}

/* imageinv_read_root that also writes the content address of what it read
 * into id (if not NULL; "" when it could not be computed). */
static pkgdb_inv_t *read_root_id(int root_fd, const imageinv_opts_t *o, const rootfs_proc_t *proc,
				 bool *exited, char *id)
{
	reader_t r = {.root = root_fd, .o = opts_fill(o)};
	if (id) {
		id[0] = '\0';
		r.md = EVP_MD_CTX_new();
		if (!r.md || EVP_DigestInit_ex(r.md, EVP_sha256(), NULL) != 1) {
			EVP_MD_CTX_free(r.md);
			return NULL;
		}
	}
	r.deadline = vtime_mono_ns() + (int64_t)r.o.budget_ms * 1000000;
	if (exited)
		*exited = false;
	if (!(r.inv = pkgdb_inv_new()))
		return NULL;
	r.inv->max_pkgs = r.o.max_pkgs;
	read_os(&r);
	if (!r.oom && !over_budget(&r)) {
		if (read_dpkg(&r))
			r.inv->format = PKGDB_FMT_DPKG;
		else if (read_apk(&r))
			r.inv->format = PKGDB_FMT_APK;
		else if (!over_budget(&r) && read_rpm(&r))
			r.inv->format = PKGDB_FMT_RPM;
	}
	pkgdb_inv_finish(r.inv);
	/* a database that was there but gave nothing is not read, not partial */
	if (r.inv->status == PKGDB_ST_PARTIAL && r.inv->n_pkgs == 0 &&
	    r.inv->format != PKGDB_FMT_NONE) {
		r.inv->status = PKGDB_ST_NOT_READ;
	}
	if (r.md && !r.oom)
		content_id(r.md, id);
	EVP_MD_CTX_free(r.md);
	if (r.oom) {
		pkgdb_inv_free(r.inv);
		return NULL;
	}
	if (proc && !rootfs_proc_alive(proc, r.o.proc_root)) {
		pkgdb_inv_not_read(r.inv, "the container's process exited during the read");
		if (exited)
			*exited = true;
	}
	return r.inv;
}

pkgdb_inv_t *imageinv_read_root(int root_fd, const imageinv_opts_t *o, const rootfs_proc_t *proc,
				bool *exited)
{
	return read_root_id(root_fd, o, proc, exited, NULL);
}

/* imageinv_read_pid with the content address (see read_root_id). */
static pkgdb_inv_t *read_pid_id(pid_t pid, const imageinv_opts_t *o, bool *exited, char *id)
{
	imageinv_opts_t f = opts_fill(o);
	rootfs_proc_t proc;
	pkgdb_inv_t *inv;
	if (exited)
		*exited = false;
	if (id)
		id[0] = '\0';
	int root = -1;
	if (rootfs_proc_open(&proc, f.proc_root, pid) < 0 ||
	    (root = rootfs_proc_root(&proc, f.proc_root)) < 0) {
		if (!(inv = pkgdb_inv_new()))
			return NULL;
		pkgdb_inv_not_read(inv, "the container's process exited before the read");
		if (exited)
			*exited = true;
		rootfs_proc_close(&proc);
		return inv;
	}
	inv = read_root_id(root, &f, &proc, exited, id);
	close(root);
	rootfs_proc_close(&proc);
	return inv;
}

pkgdb_inv_t *imageinv_read_pid(pid_t pid, const imageinv_opts_t *o, bool *exited)
{
	return read_pid_id(pid, o, exited, NULL);
}

/* --- the worker -------------------------------------------------------- */

typedef struct {
	char *image_id;
	pid_t pid;
} job_t;

typedef struct {
	char *image_id;
	pkgdb_inv_t *inv;
	uint64_t used;
	char content_id[IMAGEINV_CONTENT_ID_LEN];
} cached_t;

struct imageinv {
	imageinv_opts_t o;
	char *proc_root;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	int efd;
	job_t *jobs; /* FIFO of n_jobs, capacity queue_max */
	size_t n_jobs;
	char *current; /* the image being read, or NULL */
	imageinv_result_t *results;
	size_t n_results;
	cached_t *cache;
	size_t n_cache;
	uint64_t tick;
};

static size_t load(const imageinv_t *w)
{
	return w->n_jobs + (w->current ? 1 : 0) + w->n_results;
}

static void notify(imageinv_t *w)
{
	uint64_t one = 1;
	ssize_t n = write(w->efd, &one, sizeof(one));
	(void)n; /* EAGAIN: already readable */
}

static cached_t *cache_find(imageinv_t *w, const char *image_id)
{
	for (size_t i = 0; i < w->n_cache; i++)
		if (strcmp(w->cache[i].image_id, image_id) == 0) {
			w->cache[i].used = ++w->tick;
			return &w->cache[i];
		}
	return NULL;
}

/* Keep inv (a new reference) and its content address for image_id,
 * evicting the least recent. */
static void cache_put(imageinv_t *w, const char *image_id, pkgdb_inv_t *inv, const char *cid)
{
	char *id = strdup(image_id);
	if (!id)
		return;
	cached_t *slot = NULL;
	if (w->n_cache < w->o.cache_max) {
		slot = &w->cache[w->n_cache++];
	} else {
		slot = &w->cache[0];
		for (size_t i = 1; i < w->n_cache; i++)
			if (w->cache[i].used < slot->used)
				slot = &w->cache[i];
		free(slot->image_id);
		pkgdb_inv_free(slot->inv);
	}
	*slot = (cached_t){id, pkgdb_inv_ref(inv), ++w->tick, ""};
	snprintf(slot->content_id, sizeof(slot->content_id), "%s", cid);
}

static void push_result(imageinv_t *w, imageinv_result_t *res)
{
	w->results[w->n_results++] = *res;
	notify(w);
}

static void *worker_main(void *arg)
{
	imageinv_t *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && w->n_jobs == 0)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stop)
			break;
		job_t job = w->jobs[0];
		memmove(w->jobs, w->jobs + 1, --w->n_jobs * sizeof(*w->jobs));
		w->current = job.image_id;
		pthread_mutex_unlock(&w->mu);

		int64_t t0 = vtime_mono_ns();
		bool exited = false;
		imageinv_result_t res = {.image_id = job.image_id, .pid = job.pid};
		pkgdb_inv_t *inv = read_pid_id(job.pid, &w->o, &exited, res.content_id);
		res.inv = inv;
		res.exited = exited;
		res.read_ns = vtime_mono_ns() - t0;
		if (!inv && (inv = pkgdb_inv_new()) != NULL) {
			pkgdb_inv_not_read(inv, "out of memory");
			res.inv = inv;
		}

		pthread_mutex_lock(&w->mu);
		w->current = NULL;
		if (inv && !exited && strcmp(inv->reason, "out of memory") != 0)
			cache_put(w, job.image_id, inv, res.content_id);
		if (inv) {
			push_result(w, &res);
		} else {
			free(job.image_id);
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

imageinv_t *imageinv_new(const imageinv_opts_t *o)
{
	imageinv_t *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->o = opts_fill(o);
	w->proc_root = strdup(w->o.proc_root);
	w->jobs = calloc(w->o.queue_max, sizeof(*w->jobs));
	w->results = calloc(w->o.queue_max, sizeof(*w->results));
	w->cache = calloc(w->o.cache_max, sizeof(*w->cache));
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!w->proc_root || !w->jobs || !w->results || !w->cache || w->efd < 0)
		goto fail;
	w->o.proc_root = w->proc_root;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		goto fail;
	}
	return w;
fail:
	if (w->efd >= 0)
		close(w->efd);
	free(w->cache);
	free(w->results);
	free(w->jobs);
	free(w->proc_root);
	free(w);
	return NULL;
}

void imageinv_free(imageinv_t *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	for (size_t i = 0; i < w->n_jobs; i++)
		free(w->jobs[i].image_id);
	for (size_t i = 0; i < w->n_results; i++)
		imageinv_result_clear(&w->results[i]);
	for (size_t i = 0; i < w->n_cache; i++) {
		free(w->cache[i].image_id);
		pkgdb_inv_free(w->cache[i].inv);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	close(w->efd);
	free(w->cache);
	free(w->results);
	free(w->jobs);
	free(w->proc_root);
	free(w);
}

static bool pending(const imageinv_t *w, const char *image_id)
{
	if (w->current && strcmp(w->current, image_id) == 0)
		return true;
	for (size_t i = 0; i < w->n_jobs; i++)
		if (strcmp(w->jobs[i].image_id, image_id) == 0)
			return true;
	return false;
}

imageinv_submit_t imageinv_submit(imageinv_t *w, pid_t pid, const char *image_id)
{
	if (!image_id || !image_id[0] || strlen(image_id) > IMAGEINV_MAX_IMAGE_ID || pid <= 0)
		return IMAGEINV_INVALID;
	imageinv_submit_t rc;
	pthread_mutex_lock(&w->mu);
	cached_t *c = cache_find(w, image_id);
	if (pending(w, image_id)) {
		rc = IMAGEINV_PENDING;
	} else if (load(w) >= w->o.queue_max) {
		rc = IMAGEINV_FULL;
	} else if (!(image_id = strdup(image_id))) {
		rc = IMAGEINV_INVALID;
	} else if (c) {
		imageinv_result_t res = {.image_id = (char *)image_id,
					 .pid = pid,
					 .inv = pkgdb_inv_ref(c->inv),
					 .cached = true};
		memcpy(res.content_id, c->content_id, sizeof(res.content_id));
		push_result(w, &res);
		rc = IMAGEINV_CACHED;
	} else {
		w->jobs[w->n_jobs++] = (job_t){(char *)image_id, pid};
		pthread_cond_signal(&w->cv);
		rc = IMAGEINV_QUEUED;
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int imageinv_fd(const imageinv_t *w)
{
	return w->efd;
}

size_t imageinv_poll(imageinv_t *w, imageinv_result_t *out, size_t max)
{
	pthread_mutex_lock(&w->mu);
	size_t n = w->n_results < max ? w->n_results : max;
	memcpy(out, w->results, n * sizeof(*out));
	w->n_results -= n;
	memmove(w->results, w->results + n, w->n_results * sizeof(*w->results));
	if (w->n_results == 0) { /* drain the eventfd: nothing left to poll */
		uint64_t v;
		ssize_t k = read(w->efd, &v, sizeof(v));
		(void)k;
	}
	pthread_mutex_unlock(&w->mu);
	return n;
}

void imageinv_result_clear(imageinv_result_t *r)
{
	if (!r)
		return;
	free(r->image_id);
	pkgdb_inv_free(r->inv);
	memset(r, 0, sizeof(*r));
}

pkgdb_inv_t *imageinv_cached(imageinv_t *w, const char *image_id)
{
	pthread_mutex_lock(&w->mu);
	cached_t *c = image_id ? cache_find(w, image_id) : NULL;
	pkgdb_inv_t *inv = c ? pkgdb_inv_ref(c->inv) : NULL;
	pthread_mutex_unlock(&w->mu);
	return inv;
}
