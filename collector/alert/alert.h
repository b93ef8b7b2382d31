// SPDX-License-Identifier: Apache-2.0
/*
 * Alert forwarding: findings at or above alert_min_severity reach each
 * configured receiver (an HTTPS webhook with OCSF JSON, syslog over TLS)
 * at least once. The findings' trigger queues them in the outbox in the
 * finding's own transaction (schema/0004_alerts.sql); one sender thread
 * per receiver, with its own database connection, claims due rows (FOR
 * UPDATE SKIP LOCKED, so collectors share the outbox), delivers them at a
 * bounded rate, and retries failures with exponential backoff.
 */
#ifndef VIGIL_ALERT_H
#define VIGIL_ALERT_H

#include <stddef.h>

#include "collector.h"

typedef struct alert alert_t;

/* Read and check the alert settings of col (borrowed; must outlive the
 * result). Return the senders, not started (none when no receiver is
 * set), or NULL with err set. Caller frees with alert_free. */
alert_t *alert_new(collector_t *col, char *err, size_t errlen);

/* Put the receivers in force in the database (every collector of a fleet
 * carries the same alert settings) and start one sender per receiver.
 * Return 0, or -1 after logging why. */
int alert_start(alert_t *a) __attribute__((warn_unused_result));

/* Stop the senders (a delivery under way finishes or times out; what is
 * not settled is delivered again later) and free a. NULL is fine. */
void alert_free(alert_t *a);

#endif
