// SPDX-License-Identifier: Apache-2.0
/*
 * Container state changes of a whole commit group, planned for a few
 * set-based statements instead of one statement per change.
 *
 * Each stored batch carries its ops in order (rows.h): "upsert" (the full
 * container record), "stopped" (exit code and time) and "full" (the ids an
 * agent has right now; every other container of the agent is removed).
 * Applying them one by one costs PostgreSQL an executor start per op; the
 * plan keeps only what decides the final rows:
 *
 *   per (agent, container id):
 *     up    the last upsert;
 *     pre   the last stop before that upsert (its exit code and time stay
 *           on the row when the upsert's own state is not "running");
 *     post  the last stop after the last upsert (or the last stop at all);
 *   per agent:
 *     full    the last "full" op, its ids joined by every id the agent
 *             touched after it (those are not removed);
 *     status  the details of its latest "status" op (AgentStatus), and
 *             what all of them say the agent dropped: events and batches
 *             summed, the earliest first drop, the latest last drop.
 *
 * vigil_apply_state() applies pre, up, post, full, status in that order, so
 * each statement writes a row at most once. Pure code: no database.
 */
#ifndef VIGIL_STATEPLAN_H
#define VIGIL_STATEPLAN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct {
	int32_t agent_id;
	const json_t *ops; /* the batch's ops array (rows_batch_t.state_ops) */
} stateplan_src_t;

/* The plan for src[0..n) in queue order, as compact JSON text
 * {"pre":[..],"up":[..],"post":[..],"full":[..],"status":[..]}; every element carries
 * its agent as "a". *empty is set when there is nothing to apply (the
 * result is then still valid JSON). NULL when out of memory.
 * Caller frees the result. */
char *stateplan_build(const stateplan_src_t *src, size_t n, int *empty);

#endif
