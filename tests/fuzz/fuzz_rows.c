// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: a Batch as an agent could send it, through
 * rows_encode_batch. Checks that rows tile the buffer, that each is one
 * well-formed 16-column tuple, and that every JSON written is valid; then
 * plans the batch's state ops (stateplan_build, twice over: two batches of
 * two agents) and checks the plan is valid JSON naming only those agents.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ingest/rows.h"
#include "ingest/stateplan.h"
#include "rules/rules.h"

#define RECV_NS (INT64_C(1700000000) * 1000000000)
#define DAY_NS (INT64_C(86400) * 1000000000)

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Abort unless [start, end) is one tuple of ROWS_EVENT_COLUMNS fields whose
 * last (details) is NULL or jsonb holding valid JSON. */
static void check_row(const uint8_t *d, size_t start, size_t end)
{
	if (end < start + 2 || (d[start] << 8 | d[start + 1]) != ROWS_EVENT_COLUMNS)
		abort();
	size_t pos = start + 2;
	for (int i = 0; i < ROWS_EVENT_COLUMNS; i++) {
		if (end - pos < 4)
			abort();
		uint32_t len = be32(d + pos);
		pos += 4;
		if (len == 0xffffffffu)
			continue;
		if (len > end - pos)
			abort();
		if (i == ROWS_EVENT_COLUMNS - 1) {
			if (len < 1 || d[pos] != 1)
				abort();
			json_t *j = json_loadb((const char *)d + pos + 1, len - 1, 0, NULL);
			if (!j)
				abort();
			json_decref(j);
		}
		pos += len;
	}
	if (pos != end)
		abort();
}

/* Abort unless the plan of ops (as agents 7 and 8) is valid JSON whose
 * every element names agent 7 or 8. */
static void check_plan(const json_t *ops)
{
	stateplan_src_t src[] = {{7, ops}, {8, ops}, {7, ops}};
	int empty = 0;
	char *text = stateplan_build(src, 3, &empty);
	if (!text)
		abort();
	json_t *plan = json_loads(text, 0, NULL);
	if (!plan)
		abort();
	const char *key;
	json_t *list;
	json_object_foreach(plan, key, list)
	{
		size_t i;
		json_t *e;
		json_array_foreach(list, i, e)
		{
			json_int_t a = json_integer_value(json_object_get(e, "a"));
			if (a != 7 && a != 8)
				abort();
		}
	}
	json_decref(plan);
	free(text);

	/* the findings plan of the same ops: valid JSON, every element of an
	 * agent of the group */
	rules_plan_src_t fsrc[] = {{7, ops}, {8, ops}, {7, ops}};
	text = rules_plan_build(fsrc, 3, &empty);
	if (!text)
		abort();
	plan = json_loads(text, 0, NULL);
	if (!plan)
		abort();
	json_object_foreach(plan, key, list)
	{
		size_t i;
		json_t *e;
		json_array_foreach(list, i, e)
		{
			json_int_t a = json_integer_value(json_object_get(e, "a"));
			if (a != 7 && a != 8)
				abort();
		}
	}
	json_decref(plan);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Vigil__V1__Batch *b = vigil__v1__batch__unpack(NULL, size, data);
	if (!b)
		return 0;
	rows_range_t range = {RECV_NS - DAY_NS, RECV_NS + DAY_NS};
	rows_batch_t out;
	static rules_t *rules;
	static rules_subjects_t *subjects;
	if (!rules && (!(rules = rules_new_default()) || !(subjects = rules_subjects_new())))
		abort();
	rules_ctx_t ctx = {rules, subjects, "fuzz-agent", RECV_NS};
	if (rows_encode_batch(b, 7, RECV_NS, range, &ctx, &out) != 0)
		abort(); /* only out of memory may fail */
	if (out.n_rows + out.n_rejects != b->n_events || out.clamped > b->n_events)
		abort();
	size_t prev = 0;
	for (size_t r = 0; r < out.n_rows; r++) {
		if (out.row[r].end <= prev || out.row[r].idx >= b->n_events)
			abort();
		check_row(out.rows.data, prev, out.row[r].end);
		prev = out.row[r].end;
	}
	if (prev != out.rows.len)
		abort();
	if (out.state_ops) {
		char *s = json_dumps(out.state_ops, JSON_COMPACT);
		if (!s)
			abort();
		json_t *back = json_loads(s, 0, NULL);
		if (!back)
			abort();
		json_decref(back);
		free(s);
		check_plan(out.state_ops);
	}
	rows_batch_free(&out);
	vigil__v1__batch__free_unpacked(b, NULL);
	return 0;
}
