// SPDX-License-Identifier: Apache-2.0
/* Inside collector/alert/: a receiver and how each kind delivers. */
#ifndef VIGIL_ALERT_INT_H
#define VIGIL_ALERT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "alert/payload.h"
#include "alert/transport.h"

#define ALERT_SYSLOG_MAX_MSG 8192 /* RFC 5425 receivers SHOULD take this */

typedef struct receiver receiver_t;

struct receiver {
	const char *name; /* "webhook" or "syslog": the outbox's receiver */
	/* Rows per claim: 1 where each delivery is acknowledged (a crash then
	 * repeats at most the one under way), more where none is. */
	int batch;
	/* Deliver one alert before deadline_ns. Return 0, or -1 with err set. */
	int (*send)(receiver_t *r, const alert_item_t *it, int64_t deadline_ns, char *err,
		    size_t errlen);
	/* After a batch: whether what was written reached a live receiver
	 * (NULL: each send already confirmed it). Return 0, or -1. */
	int (*confirm)(receiver_t *r, char *err, size_t errlen);
	/* Connections opened so far: a frame counts only if the connection it
	 * went to is the one confirm found alive (syslog). */
	uint64_t conn_gen;
	alert_tls_t *tls;
	char host[256];
	int port;
	alert_url_t url;    /* webhook */
	const char *token;  /* webhook bearer token, "" for none */
	alert_conn_t *conn; /* syslog: kept open between messages */
};

int deliver_webhook(receiver_t *r, const alert_item_t *it, int64_t deadline_ns, char *err,
		    size_t errlen);
int deliver_syslog(receiver_t *r, const alert_item_t *it, int64_t deadline_ns, char *err,
		   size_t errlen);
int deliver_syslog_confirm(receiver_t *r, char *err, size_t errlen);

#endif
