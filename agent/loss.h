// SPDX-License-Identifier: Apache-2.0
/*
 * Loss accounting: what the agent could not observe or keep (process
 * events the kernel dropped, execs gone before they were read, events too
 * large for a batch, torn spool records, breaks of the API's event
 * stream, pids the pid map had no room for), counted per kind with the
 * time range since the last report, and a total. Pure: the agent feeds it
 * and puts it into its AGENT_STATUS events.
 */
#ifndef VIGIL_AGENT_LOSS_H
#define VIGIL_AGENT_LOSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/v1/events.pb-c.h"

typedef enum {
	LOSS_PROC_CONNECTOR_OVERRUN,
	LOSS_EXEC_UNREAD,
	LOSS_EVENT_TOO_LARGE,
	LOSS_SPOOL_TORN_RECORD,
	LOSS_API_EVENT_GAP,
	LOSS_PID_UNTRACKED,
	LOSS_BATCH_REFUSED, /* events of batches the collector refused for good */
	LOSS_N
} loss_kind_t;

typedef struct {
	uint64_t count, total;
	uint64_t source_total; /* last value of the source's own counter */
	int64_t first_ns, last_ns;
} loss_counter_t;

typedef struct {
	loss_counter_t c[LOSS_N];
} loss_t;

/* The kind's name in Loss.what. */
const char *loss_name(loss_kind_t k);

/* Count n losses of kind k at now_ns. Return true if nothing was pending
 * before (the first loss since the last report). */
bool loss_add(loss_t *l, loss_kind_t k, uint64_t n, int64_t now_ns);

/* A source keeps its own running total: count what it added since the
 * last call. A total that went down (the source restarted) counts from
 * zero. Return as loss_add (false if nothing is new). */
bool loss_observe(loss_t *l, loss_kind_t k, uint64_t source_total, int64_t now_ns);

bool loss_pending(const loss_t *l);

/* Fill msgs (LOSS_N of them) and ptrs with each kind that ever happened;
 * the strings are static. Return how many. */
size_t loss_to_pb(const loss_t *l, Vigil__V1__Loss *msgs, Vigil__V1__Loss **ptrs);

/* The pending counts were stored: start the next period. */
void loss_reported(loss_t *l);

#endif
