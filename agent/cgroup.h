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

#endif
