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

/* Scan every source, emit the differences. Return the number of running
 * containers. */
size_t inventory_scan(inventory_t *inv);

/* Emit a full INVENTORY snapshot of what the last scan found (several
 * partial ones if it would not fit in one batch of max_bytes). */
void inventory_snapshot(inventory_t *inv, size_t max_bytes);

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

/* Runtimes seen ("podman", "runc", ...) for the host facts. */
size_t inventory_runtimes(const inventory_t *inv, const char **out, size_t max);
/* OCI state directories found at the last scan (-1: none exists). */
int inventory_oci_dirs_found(const inventory_t *inv);
/* Time the last scan took. */
int64_t inventory_last_scan_ns(const inventory_t *inv);
size_t inventory_count(const inventory_t *inv);
/* True if the last scan held a container back (being created, or waiting
 * for its API record): scan again soon. */
bool inventory_wants_rescan(const inventory_t *inv);

#endif
