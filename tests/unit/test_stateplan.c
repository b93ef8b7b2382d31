// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for collector/stateplan.c: ops of several batches collapse to
 * at most one row write per statement, in an order that gives the same
 * final rows as applying the ops one by one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ingest/stateplan.h"

static json_t *up(const char *id, const char *state)
{
	return json_pack("{s:s, s:{s:s, s:s, s:s}}", "op", "upsert", "c", "id", id, "name", id,
			 "state", state);
}

static json_t *stop(const char *id, int code, int64_t ts)
{
	return json_pack("{s:s, s:s, s:i, s:I}", "op", "stopped", "id", id, "exit_code", code, "ts",
			 (json_int_t)ts);
}

static json_t *full(const char *const *ids, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(ids[i]));
	return json_pack("{s:s, s:o}", "op", "full", "ids", a);
}

/* Build the plan of srcs and parse it back. */
static json_t *plan_of(const stateplan_src_t *src, size_t n, int *empty)
{
	char *text = stateplan_build(src, n, empty);
	assert_non_null(text);
	json_error_t err;
	json_t *p = json_loads(text, 0, &err);
	free(text);
	assert_non_null(p);
	return p;
}

/* The elements of plan[key] as "agent:id" strings joined by spaces
 * (for full: "agent:id1,id2,..."). */
static void keys_of(const json_t *plan, const char *key, char *out, size_t len)
{
	out[0] = '\0';
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(plan, key), i, e)
	{
		char item[256];
		int a = (int)json_integer_value(json_object_get(e, "a"));
		if (strcmp(key, "full") == 0) {
			snprintf(item, sizeof(item), "%d:", a);
			size_t k;
			json_t *id;
			json_array_foreach(json_object_get(e, "ids"), k, id)
			{
				if (k)
					strncat(item, ",", sizeof(item) - strlen(item) - 1);
				strncat(item, json_string_value(id),
					sizeof(item) - strlen(item) - 1);
			}
		} else {
			snprintf(item, sizeof(item), "%d:%s", a,
				 json_string_value(json_object_get(e, "id")));
		}
		if (out[0])
			strncat(out, " ", len - strlen(out) - 1);
		strncat(out, item, len - strlen(out) - 1);
	}
}

static void nothing_to_do(void **state)
{
	(void)state;
	json_t *ops = json_array();
	stateplan_src_t src[] = {{1, ops}};
	int empty = 0;
	json_t *p = plan_of(src, 1, &empty);
	assert_true(empty);
	assert_int_equal(json_array_size(json_object_get(p, "up")), 0);
	json_decref(p);
	json_decref(ops);
}

static void last_upsert_wins_and_stops_split_around_it(void **state)
{
	(void)state;
	json_t *b1 = json_array(), *b2 = json_array();
	json_array_append_new(b1, up("c1", "running"));
	json_array_append_new(b1, stop("c1", 3, 100));
	json_array_append_new(b1, stop("c2", 1, 101));
	json_array_append_new(b2, stop("c1", 4, 200)); /* pre: before the last upsert */
	json_array_append_new(b2, up("c1", "exited"));
	json_array_append_new(b2, stop("c2", 2, 300)); /* c2: only the last stop */
	stateplan_src_t src[] = {{7, b1}, {7, b2}};
	int empty = 1;
	json_t *p = plan_of(src, 2, &empty);
	assert_false(empty);
	char buf[512];
	keys_of(p, "up", buf, sizeof(buf));
	assert_string_equal(buf, "7:c1");
	json_t *u = json_array_get(json_object_get(p, "up"), 0);
	assert_string_equal(json_string_value(json_object_get(u, "state")), "exited");
	keys_of(p, "pre", buf, sizeof(buf));
	assert_string_equal(buf, "7:c1");
	assert_int_equal(json_integer_value(json_object_get(
				 json_array_get(json_object_get(p, "pre"), 0), "exit_code")),
			 4);
	keys_of(p, "post", buf, sizeof(buf));
	assert_string_equal(buf, "7:c2");
	assert_int_equal(json_integer_value(json_object_get(
				 json_array_get(json_object_get(p, "post"), 0), "ts")),
			 300);
	json_decref(p);
	json_decref(b1);
	json_decref(b2);
}

static void stop_after_upsert_is_post(void **state)
{
	(void)state;
	json_t *b = json_array();
	json_array_append_new(b, up("c1", "running"));
	json_array_append_new(b, stop("c1", 137, 500));
	stateplan_src_t src[] = {{3, b}};
	int empty;
	json_t *p = plan_of(src, 1, &empty);
	char buf[256];
	keys_of(p, "pre", buf, sizeof(buf));
	assert_string_equal(buf, "");
	keys_of(p, "up", buf, sizeof(buf));
	assert_string_equal(buf, "3:c1");
	keys_of(p, "post", buf, sizeof(buf));
	assert_string_equal(buf, "3:c1");
	json_decref(p);
	json_decref(b);
}

static void agents_are_kept_apart(void **state)
{
	(void)state;
	json_t *b1 = json_array(), *b2 = json_array();
	json_array_append_new(b1, up("same", "running"));
	json_array_append_new(b2, up("same", "running"));
	stateplan_src_t src[] = {{2, b1}, {1, b2}};
	int empty;
	json_t *p = plan_of(src, 2, &empty);
	char buf[256];
	keys_of(p, "up", buf, sizeof(buf));
	assert_string_equal(buf, "1:same 2:same");
	json_decref(p);
	json_decref(b1);
	json_decref(b2);
}

static void full_keeps_what_was_touched_after_it(void **state)
{
	(void)state;
	static const char *const first[] = {"a", "b", "c"};
	static const char *const last[] = {"a", "b"};
	json_t *b1 = json_array(), *b2 = json_array(), *other = json_array();
	json_array_append_new(b1, up("x", "running")); /* before the full: not kept */
	json_array_append_new(b1, full(first, 3));
	json_array_append_new(b1, full(last, 2));      /* the last full wins */
	json_array_append_new(b2, up("d", "running")); /* after it: kept */
	json_array_append_new(b2, stop("e", 0, 9));    /* after it: kept */
	json_array_append_new(other, full(first, 1));
	stateplan_src_t src[] = {{5, b1}, {6, other}, {5, b2}};
	int empty;
	json_t *p = plan_of(src, 3, &empty);
	char buf[256];
	keys_of(p, "full", buf, sizeof(buf));
	assert_string_equal(buf, "5:a,b,d,e 6:a");
	json_decref(p);
	json_decref(b1);
	json_decref(b2);
	json_decref(other);
}

static void full_without_ids_removes_all(void **state)
{
	(void)state;
	json_t *b = json_array();
	json_array_append_new(b, json_pack("{s:s}", "op", "full"));
	stateplan_src_t src[] = {{4, b}};
	int empty = 1;
	json_t *p = plan_of(src, 1, &empty);
	assert_false(empty);
	char buf[64];
	keys_of(p, "full", buf, sizeof(buf));
	assert_string_equal(buf, "4:");
	json_decref(p);
	json_decref(b);
}

static void unknown_ops_are_ignored(void **state)
{
	(void)state;
	json_t *b = json_array();
	json_array_append_new(b, json_pack("{s:s}", "op", "frobnicate"));
	json_array_append_new(b, json_pack("{s:i}", "op", 3));
	json_array_append_new(b, json_string("not an object"));
	stateplan_src_t src[] = {{4, b}};
	int empty = 0;
	json_t *p = plan_of(src, 1, &empty);
	assert_true(empty);
	json_decref(p);
	json_decref(b);
}

static json_t *status(int64_t ts, int events, int batches, int64_t first, int64_t last)
{
	json_t *d = json_pack("{s:i, s:i, s:[]}", "dropped_events", events, "dropped_batches",
			      batches, "sources");
	if (first)
		json_object_set_new(d, "drop_first_ns", json_integer(first));
	if (last)
		json_object_set_new(d, "drop_last_ns", json_integer(last));
	return json_pack("{s:s, s:I, s:o}", "op", "status", "ts", (json_int_t)ts, "d", d);
}

static void status_latest_wins_and_drops_add_up(void **state)
{
	(void)state;
	json_t *b1 = json_array(), *b2 = json_array(), *quiet = json_array();
	json_array_append_new(b1, status(2000, 300, 1, 50, 60));
	json_array_append_new(b1, status(1000, 0, 0, 0, 0)); /* older, sent late */
	json_array_append_new(b2, status(3000, 400, 2, 40, 55));
	json_array_append_new(quiet, status(5, 0, 0, 0, 0));
	stateplan_src_t src[] = {{8, b1}, {9, quiet}, {8, b2}};
	int empty = 1;
	json_t *p = plan_of(src, 3, &empty);
	assert_false(empty);
	json_t *st = json_object_get(p, "status");
	assert_int_equal(json_array_size(st), 2);
	json_t *s8 = json_array_get(st, 0), *s9 = json_array_get(st, 1);
	assert_int_equal(json_integer_value(json_object_get(s8, "a")), 8);
	assert_int_equal(json_integer_value(json_object_get(s8, "ts")), 3000);
	assert_int_equal(json_integer_value(json_object_get(s8, "dropped_events")), 700);
	assert_int_equal(json_integer_value(json_object_get(s8, "dropped_batches")), 3);
	assert_int_equal(json_integer_value(json_object_get(s8, "drop_first_ns")), 40);
	assert_int_equal(json_integer_value(json_object_get(s8, "drop_last_ns")), 60);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(s8, "d"), "dropped_events")),
		400);
	assert_int_equal(json_integer_value(json_object_get(s9, "dropped_events")), 0);
	assert_null(json_object_get(s9, "drop_first_ns"));
	json_decref(p);
	json_decref(b1);
	json_decref(b2);
	json_decref(quiet);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nothing_to_do),
		cmocka_unit_test(last_upsert_wins_and_stops_split_around_it),
		cmocka_unit_test(stop_after_upsert_is_post),
		cmocka_unit_test(agents_are_kept_apart),
		cmocka_unit_test(full_keeps_what_was_touched_after_it),
		cmocka_unit_test(full_without_ids_removes_all),
		cmocka_unit_test(unknown_ops_are_ignored),
		cmocka_unit_test(status_latest_wins_and_drops_add_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
