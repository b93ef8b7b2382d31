// SPDX-License-Identifier: Apache-2.0
/*
 * The agents' listening socket: accepts on the main thread, refuses
 * connections above max_connections, and hands the rest to the workers in
 * turn.
 */
#ifndef VIGIL_LISTENER_H
#define VIGIL_LISTENER_H

#include <stddef.h>

#include "collector.h"

struct event_base;
typedef struct listener listener_t;

/* Listen on addr ("host:port", "[v6]:port"). Return NULL with err set. */
listener_t *listener_new(struct event_base *base, collector_t *col, const char *addr, char *err,
			 size_t errlen);
/* Stop accepting (the socket stays bound until listener_free). */
void listener_disable(listener_t *l);
void listener_free(listener_t *l);

#endif
