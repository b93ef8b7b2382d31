// SPDX-License-Identifier: Apache-2.0
/*
 * The findings plan of a commit group (rules_plan_build, see rules.h): the
 * posture, runtime and full-inventory ops of every batch, reduced to
 * what decides the findings rows, so vigil_apply_findings() writes each
 * row at most once per statement.
 */
#include "rules/rules.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* "agent\x1fpart..." as a map key, in buf. */
static const char *map_key(char *buf, size_t len, int32_t a, const char *p1, const char *p2,
			   const char *p3)
{
	snprintf(buf, len, "%" PRId32 "\x1f%s\x1f%s\x1f%s", a, p1, p2 ? p2 : "", p3 ? p3 : "");
	return buf;
}

typedef struct {
	json_t *posture;  /* key (a, id) -> {"op": the last posture op, "pos": n} */
	json_t *runtime;  /* key (a, id, r, k) -> plan element */
	json_t *full;	  /* agent -> {"a","ids":{id: true}} */
	json_t *rt_order; /* runtime keys in first-seen order */
} plan_t;

static int add_runtime(plan_t *p, int32_t a, const json_t *op)
{
	char key[1024];
	map_key(key, sizeof(key), a, str(op, "id"), str(op, "r"), str(op, "k"));
	json_t *e = json_object_get(p->runtime, key);
	json_t *seq = json_object_get(op, "seq"), *idx = json_object_get(op, "idx");
	json_t *ts = json_object_get(op, "ts");
	if (e) {
		json_object_set_new(e, "n",
				    json_integer(json_integer_value(json_object_get(e, "n")) + 1));
		json_object_set(e, "lts", ts);
		json_object_set(e, "lseq", seq);
		json_object_set(e, "lidx", idx);
		return 0;
	}
	e = json_pack("{s:i, s:O, s:O, s:O, s:O, s:O, s:I, s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "a",
		      (int)a, "id", json_object_get(op, "id"), "r", json_object_get(op, "r"), "k",
		      json_object_get(op, "k"), "s", json_object_get(op, "s"), "m",
		      json_object_get(op, "m"), "n", (json_int_t)1, "ts", ts, "seq", seq, "idx",
		      idx, "d", json_object_get(op, "d"), "lts", ts, "lseq", seq, "lidx", idx);
	if (!e || json_object_set_new(p->runtime, key, e) ||
	    json_array_append_new(p->rt_order, json_string_nocheck(key)))
		return -1;
	return 0;
}

/* Note that agent a touched container id after its last full inventory. */
static void touch(plan_t *p, int32_t a, const char *id)
{
	char k[16];
	snprintf(k, sizeof(k), "%" PRId32, a);
	json_t *f = json_object_get(p->full, k);
	if (f && id[0])
		json_object_set_new_nocheck(json_object_get(f, "ids"), id, json_true());
}

static int add_op(plan_t *p, int32_t a, const json_t *op, json_int_t pos)
{
	const char *what = str(op, "op");
	char key[1024];
	if (strcmp(what, "runtime") == 0) {
		touch(p, a, str(op, "id"));
		return add_runtime(p, a, op);
	}
	if (strcmp(what, "posture") == 0) {
		map_key(key, sizeof(key), a, str(op, "id"), NULL, NULL);
		touch(p, a, str(op, "id"));
		return json_object_set_new(p->posture, key,
					   json_pack("{s:O, s:I}", "op", op, "pos", pos));
	}
	if (strcmp(what, "stopped") == 0) {
		/* a stopped container is still there: its findings stay */
		touch(p, a, str(op, "id"));
		return 0;
	}
	if (strcmp(what, "upsert") == 0) {
		touch(p, a, str(json_object_get(op, "c"), "id"));
		return 0;
	}
	if (strcmp(what, "full") == 0) {
		char k[16];
		snprintf(k, sizeof(k), "%" PRId32, a);
		json_t *ids = json_object();
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(op, "ids"), i, v)
		{
			if (json_string_value(v))
				json_object_set_new_nocheck(ids, json_string_value(v), json_true());
		}
		return json_object_set_new(p->full, k,
					   json_pack("{s:i, s:o}", "a", (int)a, "ids", ids));
	}
	return 0; /* status and future ops: not about findings */
}

/* The plan's JSON from the maps. */
static json_t *plan_json(plan_t *p)
{
	json_t *out = json_pack("{s:[], s:[], s:[]}", "posture", "runtime", "full");
	if (!out)
		return NULL;
	const char *k;
	json_t *v;
	json_object_foreach(p->posture, k, v)
	{
		json_t *op = json_deep_copy(json_object_get(v, "op"));
		json_object_del(op, "op");
		int32_t a = (int32_t)strtol(k, NULL, 10);
		json_object_set_new(op, "a", json_integer(a));
		json_array_append_new(json_object_get(out, "posture"), op);
	}
	size_t i;
	json_array_foreach(p->rt_order, i, v)
	{
		json_array_append(json_object_get(out, "runtime"),
				  json_object_get(p->runtime, json_string_value(v)));
	}
	json_object_foreach(p->full, k, v)
	{
		json_t *ids = json_array();
		const char *id;
		json_t *t;
		json_object_foreach(json_object_get(v, "ids"), id, t)
		{
			json_array_append_new(ids, json_string_nocheck(id));
		}
		json_array_append_new(
			json_object_get(out, "full"),
			json_pack("{s:O, s:o}", "a", json_object_get(v, "a"), "ids", ids));
	}
	return out;
}

char *rules_plan_build(const rules_plan_src_t *src, size_t n, int *empty)
{
	plan_t p = {json_object(), json_object(), json_object(), json_array()};
	char *text = NULL;
	*empty = 1;
	if (!p.posture || !p.runtime || !p.full || !p.rt_order)
		goto out;
	json_int_t pos = 0;
	for (size_t s = 0; s < n; s++) {
		size_t i;
		json_t *op;
		json_array_foreach(src[s].ops, i, op)
		{
			if (add_op(&p, src[s].agent_id, op, pos++) != 0)
				goto out;
		}
	}
	json_t *out = plan_json(&p);
	if (!out)
		goto out;
	*empty = !json_object_size(p.posture) && !json_object_size(p.runtime) &&
		 !json_object_size(p.full);
	text = json_dumps(out, JSON_COMPACT);
	json_decref(out);
out:
	json_decref(p.posture);
	json_decref(p.runtime);
	json_decref(p.full);
	json_decref(p.rt_order);
	return text;
}
