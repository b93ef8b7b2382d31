// SPDX-License-Identifier: Apache-2.0
/*
 * The node's containers: merge what each source knows (/proc and cgroups,
 * the Docker-Engine API, OCI runtime state and bundles) into one
 * vigil.v1.Container per container, compare each scan with the last and
 * emit CONTAINER_STARTED / CONTAINER_STOPPED (with the exit code when the
 * process connector or the API told it) / CONTAINER_CHANGED events, and
 * build full INVENTORY snapshots. Also maps pids to containers for exec
 * events (from scans, fork and exit events).
 */
#ifndef VIGIL_AGENT_INVENTORY_H
#define VIGIL_AGENT_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctr.h"
#include "docker_api.h"
#include "hostinfo.h"
#include "settings.h"
#include "vigil/v1/events.pb-c.h"

typedef struct inventory inventory_t;

/* Receives each event the inventory produces; ev is borrowed. */
typedef void (*inventory_emit_cb)(void *arg, const Vigil__V1__Event *ev);

/* s and host are borrowed. api may be NULL (source off). */
inventory_t *inventory_new(const settings_t *s, const hostinfo_t *host, inventory_emit_cb emit,
			   void *arg);
void inventory_free(inventory_t *inv);
void inventory_set_api(inventory_t *inv, docker_api_t *api);

/* Called by each scan once the sources are read and before the differences
 * are reported, to deliver what is queued elsewhere (exit statuses from the
 * process connector: a container's init can exit while the scan reads it
 * gone, a moment before the kernel sends its status). */
void inventory_set_settle(inventory_t *inv, void (*settle)(void *arg), void *arg);

/* Scan every source, emit the differences. Return the number of running
 * containers. */
size_t inventory_scan(inventory_t *inv);

/* Emit a full INVENTORY snapshot of what the last scan found (several
 * partial ones if it would not fit in one batch of max_bytes). */
void inventory_snapshot(inventory_t *inv, size_t max_bytes);

/* Call fn for each running container of the last scan (c is borrowed
 * for the call). */
void inventory_foreach(const inventory_t *inv, void (*fn)(void *arg, const ctr_t *c), void *arg);

/* The id of the container pid runs in (NUL-terminated, borrowed until the
 * next call), or NULL if it is not in a container. Reads /proc/PID/cgroup
 * if pid is not known yet; *known is set if the container is already in
 * the inventory. */
const char *inventory_container_of(inventory_t *inv, uint32_t pid, bool *known);

/* Process connector hints. */
void inventory_note_fork(inventory_t *inv, uint32_t parent, uint32_t child);
/* Return true if pid was the init process of a known container (a scan
 * soon will report it stopped with this status). */
bool inventory_note_exit(inventory_t *inv, uint32_t pid, uint32_t status);
/* The API reported a container's death with its exit code. */
void inventory_note_die(inventory_t *inv, const char *id, bool exit_known, int exit_code);

/* Where the exec of pid (parent ppid) in container id comes from:
 * TRISTATE_TRUE if an exec session into the container started it or an
 * ancestor (its parent is outside the container: runc exec, the API's
 * exec), FALSE if the container's own processes did, UNKNOWN if it cannot
 * tell (the container is not in the inventory yet, the parent is gone).
 * Remembers the answer for pid's children. known: as from
 * inventory_container_of. */
int inventory_exec_session(inventory_t *inv, uint32_t pid, uint32_t ppid, const char *id,
			   bool known);

/* The overlay upper layer (host path) of container id's root, or NULL.
 * Borrowed until the next scan. */
const char *inventory_upperdir(const inventory_t *inv, const char *id);

/* Remember pid's real and effective uid (read at its exec). */
void inventory_note_uids(inventory_t *inv, uint32_t pid, uint32_t ruid, uint32_t euid);

/* A uid-change event of pid: return true (with the uids it had) if a
 * process of a container whose real uid was not 0 now has real or
 * effective uid 0. The new uids are remembered either way. */
bool inventory_note_uid_change(inventory_t *inv, uint32_t pid, uint32_t ruid, uint32_t euid,
			       uint32_t *old_ruid, uint32_t *old_euid);

/* Runtimes seen ("podman", "runc", ...) for the host facts. */
size_t inventory_runtimes(const inventory_t *inv, const char **out, size_t max);
/* OCI state directories found at the last scan (-1: none exists). */
int inventory_oci_dirs_found(const inventory_t *inv);
/* Time the last scan took. */
int64_t inventory_last_scan_ns(const inventory_t *inv);
size_t inventory_count(const inventory_t *inv);
/* Pids the pid map had no room for, since the start. */
uint64_t inventory_pids_untracked(const inventory_t *inv);
/* True if the last scan held a container back (being created, or waiting
 * for its API record): scan again soon. */
bool inventory_wants_rescan(const inventory_t *inv);

#endif
