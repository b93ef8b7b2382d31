// SPDX-License-Identifier: Apache-2.0
/* From an unpacked Batch to a writer job (see batchjob.h). */
#include "ingest/batchjob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

Vigil__V1__AgentMessage *batchjob_unpack(wire_arena_t *arena, const uint8_t *p, uint32_t n,
					 size_t max_events, budget_scan_t *scan, int *code,
					 char *why, size_t why_len)
{
	*code = 0;
	if (budget_scan(p, n, max_events, scan) != 0)
		return NULL;
	if (scan->n_events * (sizeof(Vigil__V1__Event) + sizeof(void *)) > budget_unpack(n)) {
		*code = VIGIL__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE;
		snprintf(why, why_len, "frame of %u bytes would take more than %zu bytes unpacked",
			 n, budget_unpack(n));
		return NULL;
	}
	if (scan->n_events > max_events) {
		*code = VIGIL__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE;
		snprintf(why, why_len, "batch of %zu events is above the limit of %zu",
			 scan->n_events, max_events);
		return NULL;
	}
	/* Unpacked, a frame of tiny fields is many times its size on the
	 * wire: the arena refuses to grow past the frame's budget. */
	Vigil__V1__AgentMessage *msg = wire_agent_unpack_in(arena, p, n, budget_unpack(n));
	if (!msg && wire_arena_over_budget(arena)) {
		*code = VIGIL__V1__ERROR_CODE__ERROR_CODE_BAD_MESSAGE;
		snprintf(why, why_len, "frame of %u bytes would take more than %zu bytes unpacked",
			 n, budget_unpack(n));
	}
	return msg;
}

/* Memory a JSON value takes, estimated from its compact text. */
static size_t json_cost(const json_t *v)
{
	return v ? json_dumpb(v, NULL, 0, JSON_COMPACT) * 3 : 0;
}

/* The events that cannot become rows, kept as dead letters with their
 * bytes as the agent sent them. */
static int add_dead(job_t *j, const uint8_t *payload, const budget_scan_t *scan)
{
	if (!j->rows.n_rejects)
		return 0;
	j->dead = calloc(j->rows.n_rejects, sizeof(*j->dead));
	if (!j->dead)
		return -1;
	for (size_t i = 0; i < j->rows.n_rejects; i++) {
		dead_event_t *d = &j->dead[j->n_dead++];
		d->idx = j->rows.reject[i].idx;
		d->reason = strdup(j->rows.reject[i].reason);
		const budget_span_t *sp = &scan->spans[d->idx];
		d->payload = malloc(sp->len ? sp->len : 1);
		if (!d->reason || !d->payload)
			return -1;
		memcpy(d->payload, payload + sp->off, sp->len);
		d->payload_len = sp->len;
	}
	return 0;
}

/* What job j holds, in bytes. */
static size_t job_cost(const job_t *j, size_t n_events)
{
	size_t bytes =
		sizeof(*j) + j->raw_len + j->rows.rows.cap +
		n_events * (sizeof(rows_row_t) + sizeof(rows_reject_t) + sizeof(budget_span_t));
	for (size_t i = 0; i < j->n_dead; i++)
		bytes += sizeof(dead_event_t) + j->dead[i].payload_len + strlen(j->dead[i].reason) +
			 1;
	return bytes + json_cost(j->rows.state_ops) + json_cost(j->rows.images);
}

batchjob_rc_t batchjob_fill(collector_t *col, job_t *j, Vigil__V1__Batch *b, const uint8_t *payload,
			    size_t len, budget_scan_t *scan, int32_t agent_id, int64_t recv_ns,
			    rows_range_t range, const rules_ctx_t *rules, char *why, size_t why_len)
{
	if (!scan->is_batch || scan->n_events != b->n_events || (b->n_events && !scan->spans)) {
		snprintf(why, why_len, "batch of %zu events not laid out as one Batch message",
			 b->n_events);
		return BATCHJOB_REFUSED;
	}
	budget_caps_t caps = {(size_t)SETTING(col, event_string_max),
			      (size_t)SETTING(col, event_argv_max),
			      (size_t)SETTING(col, event_list_max)};
	size_t cut = 0;
	for (size_t i = 0; i < b->n_events; i++) {
		if (!(scan->marks[i] & BUDGET_MARK_NUL) && budget_caps_event(b->events[i], &caps)) {
			scan->marks[i] |= BUDGET_MARK_CUT;
			cut++;
		}
	}
	if (rows_encode_marked(b, agent_id, recv_ns, range, rules, scan->marks, &j->rows) != 0)
		return BATCHJOB_NOMEM;
	size_t bad = j->rows.n_rejects, max_bad = (size_t)SETTING(col, max_bad_events_per_batch);
	if (bad > max_bad) {
		snprintf(why, why_len,
			 "batch %llu refused whole: %zu of its %zu events cannot be stored (first: "
			 "event %u, %s), more than max_bad_events_per_batch (%zu)",
			 (unsigned long long)b->seq, bad, b->n_events, j->rows.reject[0].idx,
			 j->rows.reject[0].reason, max_bad);
		atomic_fetch_add(&col->counters.batches_refused, 1);
		return BATCHJOB_REFUSED;
	}
	if (add_dead(j, payload, scan) != 0 || !(j->raw = malloc(len ? len : 1)))
		return BATCHJOB_NOMEM;
	memcpy(j->raw, payload, len);
	j->raw_len = len;
	j->spans = scan->spans;
	j->n_spans = scan->n_events;
	scan->spans = NULL;
	j->seq = b->seq;
	uint8_t *fit = j->rows.rows.len ? realloc(j->rows.rows.data, j->rows.rows.len) : NULL;
	if (fit) { /* the encoder reserved for typical rows: give back the rest */
		j->rows.rows.data = fit;
		j->rows.rows.cap = j->rows.rows.len;
	}
	j->bytes = job_cost(j, b->n_events);
	if (j->bytes > budget_job(len, b->n_events)) {
		snprintf(why, why_len,
			 "batch %llu refused whole: it takes %zu bytes once encoded, above the %zu "
			 "a frame of %zu bytes may take",
			 (unsigned long long)b->seq, j->bytes, budget_job(len, b->n_events), len);
		atomic_fetch_add(&col->counters.batches_refused, 1);
		return BATCHJOB_REFUSED;
	}
	if (cut)
		atomic_fetch_add(&col->counters.events_cut, cut);
	return BATCHJOB_OK;
}
