// SPDX-License-Identifier: Apache-2.0
/*
 * Map a process to its container from the text of /proc/PID/cgroup
 * (cgroup v1 and v2 layouts; systemd scope names docker-ID.scope,
 * libpod-ID.scope, cri-containerd-ID.scope, crio-ID.scope; cgroupfs paths
 * /docker/ID, /libpod_parent/libpod-ID, kubepods/.../ID; plain runc paths
 * ending in the id). Pure: takes a buffer, does no I/O.
 */
#ifndef VIGIL_AGENT_CGROUP_H
#define VIGIL_AGENT_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CGROUP_ID_LEN 64

typedef struct {
	char id[CGROUP_ID_LEN + 1]; /* 64 lowercase hex digits */
	int runtime;		    /* Vigil__V1__Runtime; RUNTIME_UNKNOWN if not telling */
} cgroup_match_t;

/* Find the innermost container named by the len bytes of a
 * /proc/PID/cgroup file. Return true and fill out if there is one. */
bool cgroup_parse(const char *buf, size_t len, cgroup_match_t *out);

/* Find a container id in one cgroup path ("/a/b/docker-ID.scope").
 * Return true and fill out if there is one. */
bool cgroup_parse_path(const char *path, size_t len, cgroup_match_t *out);

/* True if the n bytes at s are a 64-digit lowercase hex container id. */
bool cgroup_is_id(const char *s, size_t n);

/* The cgroup path of a /proc/PID/cgroup text for one v1 controller
 * ("memory", "pids", "cpu"), or the v2 path ("0::PATH") when controller
 * is "". Copy it into out (cap bytes). Return true if found, it fits, and
 * it is absolute without "..". */
bool cgroup_path_of(const char *buf, size_t len, const char *controller, char *out, size_t cap);

/* A limit read from a cgroup file: unlimited ("max", v1's no-limit value
 * or -1), or a value. */
typedef struct {
	bool unlimited;
	uint64_t value;
} cgroup_limit_t;

/* Parse memory.max, memory.limit_in_bytes, pids.max or cpu.cfs_quota_us
 * (one number, "max" or "-1"; v1's memory "no limit" value, a page-rounded
 * LLONG_MAX, reads as unlimited). Return 0, or -1. */
int cgroup_parse_limit(const char *buf, size_t len, cgroup_limit_t *out);

/* Is a cgroup frozen? v1: the text of freezer.state ("FROZEN"; FREEZING
 * counts as frozen), v2: the text of cgroup.events ("frozen 1"). Return 0
 * and set *frozen, or -1 if the text does not say. */
int cgroup_parse_frozen(const char *buf, size_t len, bool v2, bool *frozen);

/* Parse cgroup v2 cpu.max ("max 100000", "50000 100000"). Return 0 or -1. */
int cgroup_parse_cpu_max(const char *buf, size_t len, bool *unlimited, uint64_t *quota_us,
			 uint64_t *period_us);

#endif
