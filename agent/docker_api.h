// SPDX-License-Identifier: Apache-2.0
/*
 * The Docker-Engine-API source (Docker, or Podman's `podman system
 * service`): HTTP/1.1 over a unix socket, non-blocking on the agent's
 * event loop, every request under a timeout. It lists the running
 * containers, inspects each new one (names, image and digest, labels,
 * user, privileged, capabilities, mounts, host namespaces, restart policy)
 * and follows the /events stream. The JSON parsers are pure functions
 * that the unit tests and fuzzers call directly.
 */
#ifndef VIGIL_AGENT_DOCKER_API_H
#define VIGIL_AGENT_DOCKER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "ctr.h"

typedef struct docker_api docker_api_t;

typedef struct {
	char action[32]; /* start, die, destroy, ... */
	char id[128];
	bool exit_known;
	int exit_code;
} docker_event_t;

typedef struct {
	/* The set of known containers changed (new inspect, gone, event). */
	void (*on_change)(void *arg);
	/* A container died; exit code from the API. */
	void (*on_die)(void *arg, const char *id, bool exit_known, int exit_code);
	/* The source started or stopped working; error is "" when ok. */
	void (*on_status)(void *arg, bool ok, const char *error);
} docker_api_cbs_t;

/* Parse GET /containers/ID/json into c (a record made by ctr_new; its id
 * is replaced by the one in the JSON). Return 0, or -1 if it is not an
 * inspect object. */
int docker_parse_inspect(const char *json, size_t len, ctr_t *c, size_t max_labels);

/* Parse GET /containers/json: call cb(arg, id) for each running (or paused) container
 * with a valid id. Return the count, or -1 if it is not a list. */
int docker_parse_list(const char *json, size_t len, void (*cb)(void *arg, const char *id),
		      void *arg);

/* Parse GET /images/ID/json: its RepoDigests ("repo@sha256:...", at most
 * 64, capped and repaired) into out. Return 0, or -1 if it is not an
 * image object. */
int docker_parse_image_digests(const char *json, size_t len, ctr_strv_t *out);

/* Parse one object of the /events stream. Return 0, or -1 if it is not a
 * container event. */
int docker_parse_event(const char *json, size_t len, docker_event_t *out);

/* A source on socket path. Nothing happens until docker_api_start. */
docker_api_t *docker_api_new(struct event_base *base, const char *path, int64_t timeout_ms,
			     size_t max_labels, const docker_api_cbs_t *cbs, void *arg);
void docker_api_free(docker_api_t *d);

/* Connect the event stream and list the containers. */
void docker_api_start(docker_api_t *d);

/* List again (if no request is under way): new containers are inspected,
 * vanished ones forgotten. */
void docker_api_refresh(docker_api_t *d);

/* The inspected record of a running container, or NULL. Borrowed: valid
 * until the next callback. */
const ctr_t *docker_api_get(const docker_api_t *d, const char *id);

/* Call cb for each running container the API knows. */
void docker_api_foreach(const docker_api_t *d, void (*cb)(void *arg, const ctr_t *c), void *arg);

/* Breaks of the event stream after it had been open (each reconnect asks
 * for the events since the break), with the time range of the breaks. */
typedef struct {
	uint64_t count;
	int64_t first_ns, last_ns;
} docker_api_gaps_t;

void docker_api_get_gaps(const docker_api_t *d, docker_api_gaps_t *out);

bool docker_api_ok(const docker_api_t *d);
const char *docker_api_error(const docker_api_t *d);

#endif
