// SPDX-License-Identifier: Apache-2.0
/*
 * What one agent frame may cost the collector, decided from its bytes
 * rather than trusted from the agent: a scan of a Batch payload before it
 * is unpacked (event count, each event's span, events holding a NUL byte
 * in a string), the memory budgets of a frame once unpacked and once
 * encoded, and the collector's own caps on the fields of an event. Pure
 * code over buffers and unpacked messages: no I/O.
 */
#ifndef VIGIL_INGEST_BUDGET_H
#define VIGIL_INGEST_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/rows.h"
#include "vigil/v1/protocol.pb-c.h"

/* Bytes a frame of n payload bytes may take once unpacked (the arena's
 * limit), and once encoded as a job of n_events (raw copy, rows, state,
 * dead letters): proportional to the frame and to its events (at most
 * max_batch_events), plus a constant for a small frame. */
size_t budget_unpack(size_t n);
size_t budget_job(size_t n, size_t n_events);

typedef struct budget_span {
	uint32_t off, len; /* of the event's bytes in the AgentMessage payload */
} budget_span_t;

/* Per event marks (budget_scan_t.marks, budget_caps_event's result). */
#define BUDGET_MARK_NUL ROWS_MARK_NUL /* a string holds a NUL byte: refused */
#define BUDGET_MARK_CUT ROWS_MARK_CUT /* a field was capped by the collector */

typedef struct {
	bool is_batch;	      /* the payload is an AgentMessage with a Batch */
	size_t n_events;      /* events of the Batch (counted even past max) */
	budget_span_t *spans; /* n_events spans when n_events <= max (owned) */
	uint8_t *marks;	      /* n_events marks, or NULL (owned) */
	size_t n_nul;	      /* events marked BUDGET_MARK_NUL */
} budget_scan_t;

/* Scan the AgentMessage payload buf[0..len) without unpacking it. For a
 * Batch, count its events and, if there are at most max_events, record
 * each one's span and whether a string in it holds a NUL byte. Return 0,
 * or -1 if the bytes are not a well-formed message or memory ran out
 * (the unpack would refuse them too). Free with budget_scan_free. */
int budget_scan(const uint8_t *buf, size_t len, size_t max_events, budget_scan_t *out)
	__attribute__((warn_unused_result));
void budget_scan_free(budget_scan_t *s);

typedef struct {
	size_t string_max; /* bytes of one string */
	size_t strv_max;   /* bytes of one repeated string field (argv, command) */
	size_t list_max;   /* items of one repeated field */
} budget_caps_t;

/* Apply caps to event e in place (its strings are cut on a UTF-8
 * boundary, its lists shortened; an Inventory's container list and an
 * ImageInventory's packages keep their own limits). Return true if
 * anything was cut; a cut ProcessExec also gets its truncated flag. */
bool budget_caps_event(Vigil__V1__Event *e, const budget_caps_t *caps);

#endif
