// SPDX-License-Identifier: Apache-2.0
/*
 * A Batch becomes a writer job: the collector's field caps applied, its
 * events encoded as rows, those that cannot be stored kept as dead letters
 * (their bytes as the agent sent them), and the memory it holds counted
 * and held to the frame's budget. A batch with too many bad events, or
 * one over its budget, is refused whole with the reason.
 */
#ifndef VIGIL_INGEST_BATCHJOB_H
#define VIGIL_INGEST_BATCHJOB_H

#include <stddef.h>
#include <stdint.h>

#include "collector.h"
#include "ingest/budget.h"
#include "ingest/ingest.h"
#include "ingest/rows.h"
#include "wire.h"

typedef enum {
	BATCHJOB_OK = 0,
	BATCHJOB_NOMEM,
	BATCHJOB_REFUSED, /* why says why; the batch is not to be stored */
} batchjob_rc_t;

/* Scan the AgentMessage payload p[0..n) into scan and unpack it into
 * arena within its budget (budget.h). Return the message (it lives in
 * arena), or NULL: with *code (a vigil.v1.ErrorCode) and why set when the
 * frame is refused for its size, else the bytes are no message. */
Vigil__V1__AgentMessage *batchjob_unpack(wire_arena_t *arena, const uint8_t *p, uint32_t n,
					 size_t max_events, budget_scan_t *scan, int *code,
					 char *why, size_t why_len);

/* Fill job j (a new JOB_BATCH) from batch b, unpacked from the AgentMessage
 * payload[0..len) that scan describes (its spans move into the job), for
 * agent_id, received at recv_ns, judged with rules (may be NULL). Sets the
 * rows, dead letters, raw copy, seq and bytes; the caller sets the rest. */
batchjob_rc_t batchjob_fill(collector_t *col, job_t *j, Vigil__V1__Batch *b, const uint8_t *payload,
			    size_t len, budget_scan_t *scan, int32_t agent_id, int64_t recv_ns,
			    rows_range_t range, const rules_ctx_t *rules, char *why, size_t why_len)
	__attribute__((warn_unused_result));

#endif
