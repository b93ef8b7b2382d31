// SPDX-License-Identifier: Apache-2.0
/*
 * The package inventory of each distinct image among the running
 * containers, read from a container's root file system through
 * /proc/PID/root (rootfs.h) and parsed by pkgdb.h: the OS from
 * /etc/os-release (or /usr/lib/os-release), then the first package
 * database found of dpkg (/var/lib/dpkg/status and status.d/), apk
 * (/lib/apk/db/installed) and rpm (rpmdb.sqlite under /var/lib/rpm or
 * /usr/lib/sysimage/rpm; the Berkeley DB and ndb formats are reported as
 * not read). Each read is bounded in time and bytes.
 *
 * The reads run on one worker thread of this module, never on the agent's
 * event loop. Hand-off:
 *
 *   imageinv_t *w = imageinv_new(&opts);      starts the worker
 *   imageinv_submit(w, pid, image_id);         from the loop, never blocks
 *   ... imageinv_fd(w) becomes readable ...    e.g. an EV_READ|EV_PERSIST event
 *   imageinv_poll(w, results, n);              from the loop, never blocks
 *   ... use results[i].inv, then imageinv_result_clear(&results[i]) ...
 *   imageinv_free(w);                          joins the worker
 *
 * Every submit that returns IMAGEINV_QUEUED or IMAGEINV_CACHED yields
 * exactly one result. Results are cached per image id (bounded count, least
 * recently used evicted), so an image is read once: a later submit of it
 * answers from the cache at once. A read whose container exited meanwhile
 * is discarded (status not read, "exited" in the reason, result.exited
 * set) and not cached: submit the image again with another of its
 * containers. What a container's processes changed in its root (a package
 * installed at run time, or a database made to lie) is what gets read.
 */
#ifndef VIGIL_AGENT_IMAGEINV_H
#define VIGIL_AGENT_IMAGEINV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pkgdb.h"
#include "rootfs.h"

#define IMAGEINV_MAX_IMAGE_ID 256 /* longer image ids are refused */
/* "rootfs:sha256:" and 64 hex digits, NUL included */
#define IMAGEINV_CONTENT_ID_LEN 80

typedef struct {
	const char *proc_root; /* where /proc is (NULL = "/proc"); copied */
	size_t queue_max;      /* queued + being read + results not polled (0 = 64) */
	size_t cache_max;      /* images kept (0 = 256) */
	int budget_ms;	       /* per image (0 = 2000) */
	size_t max_file;       /* bytes of a text database or os-release (0 = 16 MiB) */
	size_t max_rpmdb;      /* bytes of rpmdb.sqlite, read into memory (0 = 32 MiB) */
	size_t max_pkgs;       /* packages per image (0 = PKGDB_MAX_PACKAGES) */
} imageinv_opts_t;

/* Read the inventory of the root file system at root_fd (a directory fd,
 * O_PATH is fine) with the budget and caps of o (NULL = defaults). If proc
 * is given, check at the end that its process is still running: if not,
 * the inventory is marked not read ("exited") and *exited set (may be
 * NULL). Synchronous: call it from a worker thread, never the event loop.
 * Return a new inventory (one reference: pkgdb_inv_free), NULL on OOM. */
pkgdb_inv_t *imageinv_read_root(int root_fd, const imageinv_opts_t *o, const rootfs_proc_t *proc,
				bool *exited);

/* imageinv_read_root of the root of process pid, pinned with a pidfd first
 * so that a reused pid is never read. */
pkgdb_inv_t *imageinv_read_pid(pid_t pid, const imageinv_opts_t *o, bool *exited);

typedef struct imageinv imageinv_t;

typedef enum {
	IMAGEINV_QUEUED = 0, /* a result will come */
	IMAGEINV_CACHED,     /* read before: its result is ready to poll */
	IMAGEINV_PENDING,    /* already queued or being read: its one result will come */
	IMAGEINV_FULL,	     /* queue_max reached: submit again after polling */
	IMAGEINV_INVALID,    /* empty or too long image id, pid <= 0, or OOM */
} imageinv_submit_t;

typedef struct {
	char *image_id;	  /* owned */
	pid_t pid;	  /* the process read, as submitted */
	pkgdb_inv_t *inv; /* a reference, read-only (shared with the cache) */
	bool cached;	  /* answered from the cache */
	bool exited;	  /* the process exited during the read: discarded */
	int64_t read_ns;  /* time the read took (0 when cached) */
	/* The content address of what the read found: "rootfs:sha256:HEX" of
	 * the path, outcome and bytes of each file read (os-release, the
	 * package database files, in the order read), "" if the root could
	 * not be opened. Images without a digest are named by it. */
	char content_id[IMAGEINV_CONTENT_ID_LEN];
} imageinv_result_t;

/* Start the worker. o is copied (NULL = defaults). NULL on failure. */
imageinv_t *imageinv_new(const imageinv_opts_t *o);
/* Stop the worker (waiting for the read in progress, at most the time
 * budget), drop what was not polled, free w. Accepts NULL. */
void imageinv_free(imageinv_t *w);

/* Ask for the inventory of image_id, read through process pid (one of the
 * image's running containers). Never blocks on a read. */
imageinv_submit_t imageinv_submit(imageinv_t *w, pid_t pid, const char *image_id);

/* An fd that is readable while results wait to be polled (an eventfd). */
int imageinv_fd(const imageinv_t *w);

/* Move up to max finished results into out; return how many. The caller
 * owns them: imageinv_result_clear each. Never blocks. */
size_t imageinv_poll(imageinv_t *w, imageinv_result_t *out, size_t max);
void imageinv_result_clear(imageinv_result_t *r);

/* The cached inventory of image_id (a new reference the caller frees with
 * pkgdb_inv_free), or NULL if it is not cached. */
pkgdb_inv_t *imageinv_cached(imageinv_t *w, const char *image_id);

#endif
