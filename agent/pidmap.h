// SPDX-License-Identifier: Apache-2.0
/*
 * The pid map: which container each known process runs in, with what the
 * agent learned of it at its exec (real and effective uid, exec-session
 * origin). Open addressing with a hard cap on entries, so that a fork
 * storm cannot grow the agent past its memory limit: past the cap new
 * pids are refused (and counted) and resolved from /proc instead. The
 * table shrinks again when it is pruned.
 */
#ifndef VIGIL_AGENT_PIDMAP_H
#define VIGIL_AGENT_PIDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PIDMAP_ID_MAX 128

enum {
	PIDMAP_F_UIDS = 1u << 0,	 /* ruid, euid known */
	PIDMAP_F_EXEC_SESSION = 1u << 1, /* started by an exec session (or its child) */
	PIDMAP_F_OWN = 1u << 2,		 /* the container's own process */
};

typedef struct {
	uint32_t pid;
	uint32_t gen; /* scan generation that last saw it */
	uint32_t ruid, euid;
	uint8_t flags; /* PIDMAP_F_* */
	char id[PIDMAP_ID_MAX];
} pidmap_slot_t;

typedef struct pidmap pidmap_t;

/* A map of at most max_entries pids. NULL on OOM. */
pidmap_t *pidmap_new(size_t max_entries);
void pidmap_free(pidmap_t *pm);

/* The slot of pid, or NULL. Valid until the next put or prune. */
pidmap_slot_t *pidmap_find(pidmap_t *pm, uint32_t pid);

/* Map pid to container id (copied, cut to PIDMAP_ID_MAX - 1); a pid that
 * moves to another container (pid reuse) forgets what was known of it.
 * Return its slot, or NULL if the map is full (counted) or on OOM. */
pidmap_slot_t *pidmap_put(pidmap_t *pm, uint32_t pid, const char *id);

void pidmap_del(pidmap_t *pm, uint32_t pid);

/* A scan starts: puts from now on belong to the new generation. */
void pidmap_next_gen(pidmap_t *pm);

/* Forget the pids that two scans in a row did not see (their exit event
 * was lost), drop tombstones, and shrink the table to fit. */
void pidmap_prune(pidmap_t *pm);

size_t pidmap_count(const pidmap_t *pm);
/* Bytes the table takes. */
size_t pidmap_bytes(const pidmap_t *pm);
/* Pids refused because the map was full, since the start. */
uint64_t pidmap_refused(const pidmap_t *pm);

#endif
