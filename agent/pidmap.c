// SPDX-License-Identifier: Apache-2.0
/* The pid map (see pidmap.h). */
#include "pidmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMPTY 0u
#define TOMB UINT32_MAX
#define MIN_CAP 256

struct pidmap {
	pidmap_slot_t *t;
	size_t cap;	   /* a power of two, or 0 */
	size_t live, tomb; /* entries, tombstones */
	size_t max;
	uint32_t gen;
	uint64_t refused;
};

pidmap_t *pidmap_new(size_t max_entries)
{
	pidmap_t *pm = calloc(1, sizeof(*pm));
	if (pm)
		pm->max = max_entries ? max_entries : 1;
	return pm;
}

void pidmap_free(pidmap_t *pm)
{
	if (!pm)
		return;
	free(pm->t);
	free(pm);
}

static size_t slot_of(const pidmap_t *pm, uint32_t pid)
{
	return (pid * 2654435761u) & (pm->cap - 1);
}

pidmap_slot_t *pidmap_find(pidmap_t *pm, uint32_t pid)
{
	if (!pm->cap || pid == EMPTY || pid == TOMB)
		return NULL;
	size_t i = slot_of(pm, pid);
	for (size_t n = 0; n < pm->cap; n++) {
		pidmap_slot_t *s = &pm->t[(i + n) & (pm->cap - 1)];
		if (s->pid == pid)
			return s;
		if (s->pid == EMPTY)
			return NULL;
	}
	return NULL;
}

/* Insert a copy of s into a table known to have room and no s->pid. */
static void insert(pidmap_t *pm, const pidmap_slot_t *s)
{
	size_t i = slot_of(pm, s->pid);
	for (size_t n = 0; n < pm->cap; n++) {
		pidmap_slot_t *t = &pm->t[(i + n) & (pm->cap - 1)];
		if (t->pid == EMPTY) {
			*t = *s;
			pm->live++;
			return;
		}
	}
}

/* Rebuild at capacity ncap, keeping the entries keep() accepts. */
static int rebuild(pidmap_t *pm, size_t ncap, bool prune)
{
	pidmap_slot_t *nt = calloc(ncap, sizeof(*nt));
	if (!nt)
		return -1;
	pidmap_slot_t *old = pm->t;
	size_t ocap = pm->cap;
	pm->t = nt;
	pm->cap = ncap;
	pm->live = pm->tomb = 0;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].pid == EMPTY || old[i].pid == TOMB ||
		    (prune && pm->gen - old[i].gen > 1))
			continue;
		insert(pm, &old[i]);
	}
	free(old);
	return 0;
}

/* The smallest capacity that holds n entries at most half full. */
static size_t cap_for(size_t n)
{
	size_t c = MIN_CAP;
	while (c < 2 * (n + 1))
		c *= 2;
	return c;
}

pidmap_slot_t *pidmap_put(pidmap_t *pm, uint32_t pid, const char *id)
{
	if (pid == EMPTY || pid == TOMB)
		return NULL;
	pidmap_slot_t *s = pidmap_find(pm, pid);
	if (s) {
		if (strncmp(s->id, id, sizeof(s->id) - 1) != 0) {
			snprintf(s->id, sizeof(s->id), "%s", id);
			s->flags = 0;
		}
		s->gen = pm->gen;
		return s;
	}
	if (pm->live >= pm->max) {
		pm->refused++;
		return NULL;
	}
	if ((pm->live + pm->tomb + 1) * 2 > pm->cap) {
		/* tombstones first: a storm of short-lived pids leaves many */
		size_t ncap =
			pm->tomb > pm->live ? cap_for(pm->live + 1) : cap_for(2 * pm->live + 1);
		if (ncap < pm->cap && pm->tomb <= pm->live)
			ncap = pm->cap;
		if (rebuild(pm, ncap, false) != 0)
			return NULL;
	}
	pidmap_slot_t n;
	memset(&n, 0, sizeof(n));
	n.pid = pid;
	n.gen = pm->gen;
	snprintf(n.id, sizeof(n.id), "%s", id);
	insert(pm, &n);
	return pidmap_find(pm, pid);
}

void pidmap_del(pidmap_t *pm, uint32_t pid)
{
	pidmap_slot_t *s = pidmap_find(pm, pid);
	if (!s)
		return;
	s->pid = TOMB;
	pm->live--;
	pm->tomb++;
}

void pidmap_next_gen(pidmap_t *pm)
{
	pm->gen++;
}

void pidmap_prune(pidmap_t *pm)
{
	if (!pm->cap)
		return;
	/* count what stays, to size the table for it */
	size_t keep = 0;
	for (size_t i = 0; i < pm->cap; i++)
		if (pm->t[i].pid != EMPTY && pm->t[i].pid != TOMB && pm->gen - pm->t[i].gen <= 1)
			keep++;
	rebuild(pm, cap_for(keep), true);
}

size_t pidmap_count(const pidmap_t *pm)
{
	return pm->live;
}

size_t pidmap_bytes(const pidmap_t *pm)
{
	return pm->cap * sizeof(pidmap_slot_t);
}

uint64_t pidmap_refused(const pidmap_t *pm)
{
	return pm->refused;
}
