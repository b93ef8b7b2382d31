// SPDX-License-Identifier: Apache-2.0
/*
 * The alert outbox in PostgreSQL (schema/0004_alerts.sql), seen from one
 * sender: the receivers in force, claiming due rows with FOR UPDATE SKIP
 * LOCKED (so collectors sharing the database never take the same row),
 * and settling a claim: delivered rows leave, failed ones are due again
 * after a backoff. One connection per sender thread, used blocking on that
 * thread only; the only alert file that includes libpq-fe.h.
 */
#ifndef VIGIL_ALERT_OUTBOX_H
#define VIGIL_ALERT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "alert/payload.h"

typedef struct outbox outbox_t;

/* A receiver in force, as the trigger needs it. */
typedef struct {
	const char *name;
	int min_severity;
	int64_t update_interval_ms;
} outbox_receiver_t;

/* A connection (made lazily) to conninfo, named app_name. NULL when out of
 * memory. */
outbox_t *outbox_new(const char *conninfo, const char *app_name);
void outbox_free(outbox_t *o);

/* The last error, for logging (never NULL). */
const char *outbox_error(const outbox_t *o);

/* Register recv[0..n) as served (now): upsert them. A receiver that no
 * collector has registered for RECEIVER_TTL is no longer queued for (the
 * trigger looks at updated_at), so a collector without receivers leaves
 * the others' alone, and alerts stop when none serves them any more; each
 * sender registers its receiver again every minute. Return 0, or -1
 * (outbox_error says why). */
int outbox_set_receivers(outbox_t *o, const outbox_receiver_t *recv, size_t n)
	__attribute__((warn_unused_result));

/* Begin a transaction and claim up to limit due rows of receiver, oldest
 * first, each after every earlier non-update row of its finding. Fill
 * items (borrowed: valid until outbox_settle); title, control and
 * remediation are left NULL. Return the count (0: the transaction is
 * already closed), or -1. */
int outbox_claim(outbox_t *o, const char *receiver, int limit, alert_item_t *items)
	__attribute__((warn_unused_result));

/* How a claimed row ends. */
enum {
	OUTBOX_FAILED = 0,
	OUTBOX_SENT = 1,
	OUTBOX_DROPPED = 2
};

/* Settle a claim and commit: items[i] with done[i] OUTBOX_SENT or
 * OUTBOX_DROPPED (obsolete, not sent) leave the outbox, the sent ones
 * recorded in alert_sent; the failed ones count an attempt and are due
 * again after backoff_ms[i] (err says why). Return 0, or -1 (the claim
 * rolls back: every row is due again). */
int outbox_settle(outbox_t *o, const char *receiver, const alert_item_t *items, int n,
		  const int *done, const int64_t *backoff_ms, const char *err)
	__attribute__((warn_unused_result));

/* Roll back an open claim (every row stays due). */
void outbox_abort(outbox_t *o);

#endif
