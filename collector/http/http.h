// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTPS server of the query API and the status page: its own port,
 * thread and event_base (libevent evhttp over TLS). Agents never reach it;
 * it shares only the collector's read-only state and counters.
 */
#ifndef VIGIL_HTTP_H
#define VIGIL_HTTP_H

#include <stddef.h>

#include "collector.h"

typedef struct http http_t;

/* Bind http_listen, build the TLS context and load the web files.
 * Return NULL with err set. */
http_t *http_new(collector_t *col, char *err, size_t errlen);
/* Start the server thread. Return 0 or -1. */
int http_start(http_t *h) __attribute__((warn_unused_result));
/* SIGHUP: rebuild the TLS context (new connections use it). Any thread. */
void http_reload(http_t *h);
/* Stop the thread, close every connection and free. Accepts NULL. */
void http_free(http_t *h);

#endif
