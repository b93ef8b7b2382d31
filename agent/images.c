// SPDX-License-Identifier: Apache-2.0
/* The node's image inventories sent once per image (see images.h). */
#include "images.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imageinv.h"
#include "log.h"
#include "utf8.h"
#include "vtime.h"

#define BUCKETS 4096
#define ENTRIES_MAX 65536u /* entries kept; past it, images not running are forgotten */
#define POLL_MAX 16	   /* results taken per loop callback */
#define FIELD_MAX 255	   /* bytes of a string field the collector stores */
#define STATE_FILE_MAX (4u << 20)
#define CTR_PREFIX "container:"

/* An image id (digest or content address), or "container:ID" for a
 * container without a digest. */
typedef struct img {
	struct img *next;
	char *key;
	char *content_id;     /* container keys: the content address read, or NULL */
	char *ctr_id, *image; /* the container of the last submit and its image name */
	uint64_t seq;	      /* spool batch its inventory went into (0: none) */
	uint32_t tried_gen;   /* connection it was last submitted in */
	uint32_t seen_pass;   /* sync pass that last saw it running */
	uint32_t first_pass;  /* sync pass that first saw it */
	uint32_t hello_gen;   /* Hello that listed it */
	bool known;	      /* the collector stores its inventory */
	bool pending;	      /* submitted; its result is not polled yet */
} img_t;

struct images {
	const settings_t *s;
	images_cbs_t cbs;
	void *arg;
	size_t max_event_bytes;
	imageinv_t *w;
	struct event *ev;
	img_t *buckets[BUCKETS];
	size_t n_entries;
	uint32_t gen;  /* connections (Welcomes) so far */
	uint32_t pass; /* sync passes */
	uint32_t hello;
	char **hello_ids;
	size_t n_hello; /* ids in the last Hello */
	bool dirty;	/* the state file is behind */
	char *state_path;
	/* for the status */
	uint64_t reads, not_read, partial, sent, same_content;
	char last_failure[512];
};

/* ---- the table -------------------------------------------------------------- */

static size_t bucket_of(const char *key)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % BUCKETS;
}

static img_t *find(images_t *im, const char *key)
{
	for (img_t *e = im->buckets[bucket_of(key)]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static img_t *get(images_t *im, const char *key)
{
	img_t *e = find(im, key);
	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		return NULL;
	}
	size_t b = bucket_of(key);
	e->next = im->buckets[b];
	im->buckets[b] = e;
	im->n_entries++;
	return e;
}

static void entry_free(img_t *e)
{
	free(e->key);
	free(e->content_id);
	free(e->ctr_id);
	free(e->image);
	free(e);
}

/* Drop the entries for which drop(e) says so. */
static void sweep(images_t *im, bool (*drop)(const images_t *im, const img_t *e))
{
	for (size_t b = 0; b < BUCKETS; b++) {
		img_t **pp = &im->buckets[b];
		while (*pp) {
			img_t *e = *pp;
			if (!e->pending && drop(im, e)) {
				*pp = e->next;
				entry_free(e);
				im->n_entries--;
			} else {
				pp = &e->next;
			}
		}
	}
}

static bool is_ctr_key(const char *key)
{
	return strncmp(key, CTR_PREFIX, sizeof(CTR_PREFIX) - 1) == 0;
}

static int set_str(char **field, const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		return -1;
	free(*field);
	*field = d;
	return 0;
}

/* ---- the state file: container id -> content address ------------------------ */

static bool valid_content_id(const char *s)
{
	size_t p = strlen("rootfs:sha256:");
	return strncmp(s, "rootfs:sha256:", p) == 0 && strlen(s) == p + 64 &&
	       strspn(s + p, "0123456789abcdef") == 64;
}

static void state_load(images_t *im)
{
	FILE *f = fopen(im->state_path, "re");
	if (!f)
		return;
	char line[512];
	size_t bytes = 0;
	while (fgets(line, sizeof(line), f) && bytes < STATE_FILE_MAX &&
	       im->n_entries < ENTRIES_MAX) {
		bytes += strlen(line);
		char key[300], cid[128];
		if (sscanf(line, "%299s %127s", key, cid) != 2 || !is_ctr_key(key) ||
		    strlen(key) > IMAGEINV_MAX_IMAGE_ID || !valid_content_id(cid))
			continue;
		img_t *e = get(im, key);
		if (e)
			set_str(&e->content_id, cid);
	}
	fclose(f);
}

/* Write the state file anew (a temporary file renamed over it). A failure
 * costs only a read after the next restart. */
static void state_save(images_t *im)
{
	if (!im->dirty)
		return;
	im->dirty = false;
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", im->state_path);
	FILE *f = fopen(tmp, "we");
	if (!f) {
		log_info("images: cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	for (size_t b = 0; b < BUCKETS; b++)
		for (img_t *e = im->buckets[b]; e; e = e->next)
			if (is_ctr_key(e->key) && e->content_id)
				fprintf(f, "%s %s\n", e->key, e->content_id);
	if (fclose(f) != 0 || rename(tmp, im->state_path) != 0) {
		log_info("images: cannot write %s: %s", im->state_path, strerror(errno));
		unlink(tmp);
	}
}

/* ---- the event ---------------------------------------------------------------- */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

/* A copy of s cut to what the collector stores (FIELD_MAX bytes of UTF-8)
 * into buf. */
static char *field(char *buf, size_t n, const char *s)
{
	snprintf(buf, n < FIELD_MAX + 1 ? n : FIELD_MAX + 1, "%s", s ? s : "");
	utf8_sanitize(buf);
	return buf;
}

/* How many of inv's packages fit into one event of max bytes with the rest
 * of ev; the others are cut. */
static size_t packages_that_fit(const Vigil__V1__Event *ev, Vigil__V1__Package **pk, size_t n,
				size_t max)
{
	Vigil__V1__ImageInventory *ii = ev->image_inventory;
	size_t all = ii->n_packages;
	ii->n_packages = 0;
	size_t used = vigil__v1__event__get_packed_size(ev) + 64; /* lengths that grow */
	ii->n_packages = all;
	size_t k = 0;
	for (; k < n; k++) {
		size_t sz = vigil__v1__package__get_packed_size(pk[k]);
		sz += 1 + varint_len(sz);
		if (used + sz > max)
			break;
		used += sz;
	}
	return k;
}

/* Put the inventory of r into the event path as image image_id, read from
 * container ctr_id (image name image). Return the batch's seq, 0 if it was
 * not stored. */
static uint64_t send_inventory(images_t *im, const char *image_id, const char *ctr_id,
			       const char *image, const imageinv_result_t *r)
{
	const pkgdb_inv_t *inv = r->inv;
	Vigil__V1__Package *pks = calloc(inv->n_pkgs ? inv->n_pkgs : 1, sizeof(*pks));
	Vigil__V1__Package **pp = calloc(inv->n_pkgs ? inv->n_pkgs : 1, sizeof(*pp));
	if (!pks || !pp) {
		free(pks);
		free(pp);
		return 0;
	}
	for (size_t i = 0; i < inv->n_pkgs; i++) {
		const pkgdb_pkg_t *p = &inv->pkgs[i];
		vigil__v1__package__init(&pks[i]);
		pks[i].name = p->name;
		pks[i].version = p->version;
		pks[i].arch = p->arch;
		pks[i].source_name = p->source_name;
		pks[i].source_version = p->source_version;
		pp[i] = &pks[i];
	}
	char f_image[FIELD_MAX + 1], f_os[4][FIELD_MAX + 1], reason[FIELD_MAX + 1];
	Vigil__V1__ImageInventory ii = VIGIL__V1__IMAGE_INVENTORY__INIT;
	ii.image_id = (char *)image_id;
	ii.image = field(f_image, sizeof(f_image), image);
	ii.container_id = (char *)ctr_id;
	ii.os_id = field(f_os[0], sizeof(f_os[0]), inv->os_id);
	ii.os_version_id = field(f_os[1], sizeof(f_os[1]), inv->os_version);
	ii.os_codename = field(f_os[2], sizeof(f_os[2]), inv->os_codename);
	ii.os_pretty = field(f_os[3], sizeof(f_os[3]), inv->os_pretty);
	ii.format = (char *)pkgdb_format_name(inv->format);
	ii.status = (char *)pkgdb_status_name(inv->status);
	ii.reason = field(reason, sizeof(reason), inv->reason);
	ii.packages = pp;
	ii.n_packages = inv->n_pkgs;
	ii.packages_cut = (uint32_t)inv->n_over_cap;
	ii.read_ms = (uint32_t)(r->read_ns / 1000000);
	Vigil__V1__Event e = VIGIL__V1__EVENT__INIT;
	e.time_ns = vtime_now_ns();
	e.kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_IMAGE_INVENTORY;
	e.severity = VIGIL__V1__SEVERITY__SEVERITY_INFO;
	e.container_id = (char *)ctr_id;
	e.body_case = VIGIL__V1__EVENT__BODY_IMAGE_INVENTORY;
	e.image_inventory = &ii;
	if (vigil__v1__event__get_packed_size(&e) > im->max_event_bytes) {
		/* a batch must hold it: report what fits, and say so */
		size_t k = packages_that_fit(&e, pp, inv->n_pkgs, im->max_event_bytes);
		ii.n_packages = k;
		ii.packages_cut += (uint32_t)(inv->n_pkgs - k);
		if (inv->status == PKGDB_ST_OK) {
			ii.status = (char *)pkgdb_status_name(PKGDB_ST_PARTIAL);
			snprintf(reason, sizeof(reason),
				 "%zu packages over the batch limit of %zu bytes left out",
				 inv->n_pkgs - k, im->max_event_bytes);
		}
	}
	uint64_t seq = im->cbs.emit(im->arg, &e);
	free(pks);
	free(pp);
	return seq;
}

/* ---- results ----------------------------------------------------------------- */

/* Count a read and note a failure; again: its content was sent already. */
static void note_outcome(images_t *im, const char *key, const char *ctr_id,
			 const imageinv_result_t *r, bool again)
{
	const pkgdb_inv_t *inv = r->inv;
	if (!r->cached)
		im->reads++;
	if (inv->status == PKGDB_ST_OK)
		return;
	if (inv->status == PKGDB_ST_NOT_READ)
		im->not_read++;
	else
		im->partial++;
	snprintf(im->last_failure, sizeof(im->last_failure), "%s %s: %s", key,
		 pkgdb_status_name(inv->status), inv->reason);
	utf8_sanitize(im->last_failure);
	log_info("images: %s, read from container %.12s: %s", im->last_failure, ctr_id,
		 again				    ? "sent before"
		 : inv->status == PKGDB_ST_NOT_READ ? "sent as not read"
						    : "sent in part");
	if (im->cbs.failed)
		im->cbs.failed(im->arg);
}

static void on_result(images_t *im, const imageinv_result_t *r)
{
	img_t *e = find(im, r->image_id);
	if (!e)
		return;
	e->pending = false;
	if (!r->inv || r->exited || strcmp(r->inv->reason, "out of memory") == 0) {
		e->tried_gen = 0; /* another container of it, at the next scan */
		return;
	}
	img_t *target = e;
	if (is_ctr_key(e->key)) {
		if (!r->content_id[0] || set_str(&e->content_id, r->content_id) != 0) {
			e->tried_gen = 0;
			return;
		}
		im->dirty = true;
		target = get(im, r->content_id);
		if (!target)
			return;
		target->seen_pass = im->pass;
	}
	bool again = target->known || target->seq;
	note_outcome(im, target->key, e->ctr_id ? e->ctr_id : "", r, again);
	if (again) {
		im->same_content++; /* another container's read sent it already */
		return;
	}
	target->tried_gen = im->gen;
	target->seq = send_inventory(im, target->key, e->ctr_id ? e->ctr_id : "", e->image, r);
	if (target->seq) {
		im->sent++;
		log_debug("images: %s (%zu packages, %s) sent in batch %" PRIu64, target->key,
			  r->inv->n_pkgs, pkgdb_status_name(r->inv->status), target->seq);
	}
}

static void results_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	images_t *im = arg;
	imageinv_result_t res[POLL_MAX];
	size_t n = imageinv_poll(im->w, res, POLL_MAX);
	for (size_t i = 0; i < n; i++) {
		on_result(im, &res[i]);
		imageinv_result_clear(&res[i]);
	}
	state_save(im);
}

/* ---- sync, Hello, Welcome ---------------------------------------------------- */

/* Submit a read of e through container c. Return false if the queue is
 * full (try again at the next sync). */
static bool submit(images_t *im, img_t *e, const ctr_t *c)
{
	imageinv_submit_t rc = imageinv_submit(im->w, (pid_t)c->init_pid, e->key);
	if (rc == IMAGEINV_FULL)
		return false;
	e->tried_gen = im->gen;
	if (rc == IMAGEINV_QUEUED || rc == IMAGEINV_CACHED) {
		e->pending = true;
		if (set_str(&e->ctr_id, c->id) != 0 || set_str(&e->image, c->image) != 0)
			log_debug("images: out of memory noting container %.12s", c->id);
	}
	return true;
}

static bool done(const images_t *im, const img_t *e)
{
	return e->known || e->seq || e->pending || e->tried_gen == im->gen;
}

typedef struct {
	images_t *im;
	bool full;
} sync_t;

static void sync_one(void *arg, const ctr_t *c)
{
	sync_t *sy = arg;
	images_t *im = sy->im;
	if (!c->init_pid || !c->id)
		return;
	char key[IMAGEINV_MAX_IMAGE_ID + 1];
	bool digest = c->image_digest && c->image_digest[0];
	if (digest)
		snprintf(key, sizeof(key), "%s", c->image_digest);
	else
		snprintf(key, sizeof(key), CTR_PREFIX "%s", c->id);
	img_t *e = get(im, key);
	if (!e)
		return;
	e->seen_pass = im->pass;
	if (!e->first_pass)
		e->first_pass = im->pass;
	/* without a digest, wait for the next scan: a source may still name
	 * it (the API answers after the first scan) */
	if (!digest && e->first_pass == im->pass)
		return;
	if (!digest && e->content_id) {
		img_t *ce = find(im, e->content_id);
		if (ce)
			ce->seen_pass = im->pass;
		if (ce && (ce->known || ce->seq))
			return; /* its content is stored or on its way */
	}
	if (sy->full || done(im, e))
		return;
	if (!submit(im, e, c))
		sy->full = true;
}

static bool gone(const images_t *im, const img_t *e)
{
	/* a container that stopped; past the cap, any image not running */
	return e->seen_pass != im->pass && (is_ctr_key(e->key) || im->n_entries > ENTRIES_MAX);
}

void images_sync(images_t *im, const inventory_t *inv)
{
	im->pass++;
	sync_t sy = {im, false};
	inventory_foreach(inv, sync_one, &sy);
	size_t before = im->n_entries;
	sweep(im, gone);
	if (im->n_entries != before)
		im->dirty = true;
	state_save(im);
}

typedef struct {
	images_t *im;
	size_t n;
} hello_t;

static void hello_add(hello_t *h, const char *id)
{
	img_t *e = id ? get(h->im, id) : NULL;
	if (!e || e->hello_gen == h->im->hello || h->n >= IMAGES_HELLO_MAX)
		return;
	e->hello_gen = h->im->hello;
	h->im->hello_ids[h->n++] = e->key;
}

static void hello_one(void *arg, const ctr_t *c)
{
	hello_t *h = arg;
	if (c->image_digest && c->image_digest[0]) {
		if (strlen(c->image_digest) <= IMAGEINV_MAX_IMAGE_ID)
			hello_add(h, c->image_digest);
		return;
	}
	char key[IMAGEINV_MAX_IMAGE_ID + 1];
	snprintf(key, sizeof(key), CTR_PREFIX "%s", c->id ? c->id : "");
	img_t *e = find(h->im, key);
	if (e && e->content_id)
		hello_add(h, e->content_id);
}

size_t images_hello_ids(images_t *im, const inventory_t *inv, char ***ids)
{
	im->hello++;
	hello_t h = {im, 0};
	if (!im->hello_ids)
		im->hello_ids = calloc(IMAGES_HELLO_MAX, sizeof(*im->hello_ids));
	if (im->hello_ids)
		inventory_foreach(inv, hello_one, &h);
	*ids = im->hello_ids;
	im->n_hello = h.n;
	return h.n;
}

void images_welcome(images_t *im, uint64_t committed, char *const *known, size_t n)
{
	im->gen++;
	for (size_t b = 0; b < BUCKETS; b++)
		for (img_t *e = im->buckets[b]; e; e = e->next)
			if (e->hello_gen == im->hello)
				e->known = false;
	size_t stored = 0;
	for (size_t i = 0; i < n; i++) {
		img_t *e = known[i] ? find(im, known[i]) : NULL;
		if (e && e->hello_gen == im->hello && !e->known) {
			e->known = true;
			stored++;
		}
	}
	if (im->n_hello)
		log_info("images: the collector stores %zu of the %zu images of the Hello", stored,
			 im->n_hello);
	/* committed and still not stored: its batch was lost; send it again */
	for (size_t b = 0; b < BUCKETS; b++)
		for (img_t *e = im->buckets[b]; e; e = e->next)
			if (e->hello_gen == im->hello && !e->known && e->seq && e->seq <= committed)
				e->seq = 0;
}

void images_status(const images_t *im, char *text, size_t n)
{
	snprintf(text, n,
		 "%" PRIu64 " images read, %" PRIu64 " not read, %" PRIu64 " partial, %" PRIu64
		 " inventories sent%s%s",
		 im->reads, im->not_read, im->partial, im->sent,
		 im->last_failure[0] ? "; last: " : "", im->last_failure);
	utf8_sanitize(text);
}

/* ---- life cycle ---------------------------------------------------------------- */

images_t *images_new(struct event_base *base, const settings_t *s, size_t max_event_bytes,
		     const images_cbs_t *cbs, void *arg, char *err, size_t errlen)
{
	images_t *im = calloc(1, sizeof(*im));
	if (!im) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	im->s = s;
	im->cbs = *cbs;
	im->arg = arg;
	im->max_event_bytes = max_event_bytes;
	/* an inventory is kept until it is sent: few are wanted again */
	imageinv_opts_t o = {.proc_root = s->proc_root,
			     .cache_max = 16,
			     .budget_ms = (int)s->image_read_budget_ms,
			     .max_file = (size_t)s->image_file_max_bytes,
			     .max_rpmdb = (size_t)s->image_rpmdb_max_bytes,
			     .max_pkgs = (size_t)s->image_packages_max};
	size_t pl = strlen(s->spool_dir) + sizeof("/images");
	im->state_path = malloc(pl);
	im->w = imageinv_new(&o);
	if (!im->state_path || !im->w) {
		snprintf(err, errlen, "cannot start the image reader");
		images_free(im);
		return NULL;
	}
	snprintf(im->state_path, pl, "%s/images", s->spool_dir);
	im->ev = event_new(base, imageinv_fd(im->w), EV_READ | EV_PERSIST, results_cb, im);
	if (!im->ev || event_add(im->ev, NULL) != 0) {
		snprintf(err, errlen, "out of memory");
		images_free(im);
		return NULL;
	}
	state_load(im);
	return im;
}

void images_free(images_t *im)
{
	if (!im)
		return;
	if (im->ev)
		event_free(im->ev);
	imageinv_free(im->w);
	for (size_t b = 0; b < BUCKETS; b++)
		while (im->buckets[b]) {
			img_t *e = im->buckets[b];
			im->buckets[b] = e->next;
			entry_free(e);
		}
	free(im->hello_ids);
	free(im->state_path);
	free(im);
}
