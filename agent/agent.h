// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's object graph on one event loop: sources (/proc walk, process
 * connector, Docker API, OCI state) -> inventory and exec events ->
 * batcher -> spool -> uplink, with the timers that drive them (scan,
 * snapshot, status, batch delay, fsync).
 */
#ifndef VIGIL_AGENT_AGENT_H
#define VIGIL_AGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "settings.h"

typedef struct agent agent_t;

/* Build the agent on base with settings s (borrowed; main keeps it and
 * applies reloads to it). Return NULL with err set. */
agent_t *agent_new(struct event_base *base, settings_t *s, char *err, size_t errlen);
void agent_free(agent_t *a);

/* First scan, then connect. */
void agent_start(agent_t *a);

/* Settings were reloaded: re-read certificates, limits and intervals. */
void agent_reload(agent_t *a);

/* SIGTERM: stop taking events, flush the batcher into the spool, sync it,
 * and try to get it acknowledged within shutdown_timeout; then leave the
 * loop. */
void agent_shutdown(agent_t *a);

#endif
