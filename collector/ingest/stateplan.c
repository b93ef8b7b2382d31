// SPDX-License-Identifier: Apache-2.0
/*
 * Container state changes of a commit group, collapsed into a plan of
 * set-based statements (see stateplan.h).
 */
#include "ingest/stateplan.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
	OP_UPSERT,
	OP_STOPPED
} op_kind_t;

typedef struct {
	int32_t agent;
	const char *id;
	size_t ord; /* position in the group, over all ops */
	op_kind_t kind;
	json_t *op;
} entry_t;

typedef struct {
	int32_t agent;
	size_t ord;
	json_t *ids;
} full_t;

typedef struct {
	int32_t agent;
	json_int_t ts;	   /* of the latest status */
	const json_t *d;   /* its details */
	json_int_t events; /* drops, summed */
	json_int_t batches;
	json_int_t first; /* earliest drop_first_ns, 0 = none */
	json_int_t last;  /* latest drop_last_ns */
} status_t;

/* Fold one status op of agent a into the agent's entry of st[0..*n). */
static void fold_status(status_t *st, size_t *n, int32_t a, const json_t *op)
{
	size_t x = 0;
	while (x < *n && st[x].agent != a)
		x++;
	if (x == *n)
		st[(*n)++] = (status_t){.agent = a, .ts = INT64_MIN};
	status_t *s = &st[x];
	const json_t *d = json_object_get(op, "d");
	json_int_t ts = json_integer_value(json_object_get(op, "ts"));
	if (ts >= s->ts) {
		s->ts = ts;
		s->d = d;
	}
	s->events += json_integer_value(json_object_get(d, "dropped_events"));
	s->batches += json_integer_value(json_object_get(d, "dropped_batches"));
	json_int_t f = json_integer_value(json_object_get(d, "drop_first_ns"));
	json_int_t l = json_integer_value(json_object_get(d, "drop_last_ns"));
	if (f && (!s->first || f < s->first))
		s->first = f;
	if (l > s->last)
		s->last = l;
}

static int plan_status(const status_t *s, json_t *out)
{
	json_t *o = json_pack("{s:i, s:I, s:O, s:I, s:I}", "a", (json_int_t)s->agent, "ts", s->ts,
			      "d", s->d ? s->d : json_null(), "dropped_events", s->events,
			      "dropped_batches", s->batches);
	if (o && s->first)
		json_object_set_new(o, "drop_first_ns", json_integer(s->first));
	if (o && s->last)
		json_object_set_new(o, "drop_last_ns", json_integer(s->last));
	return o ? json_array_append_new(out, o) : -1;
}

static int entry_cmp(const void *a, const void *b)
{
	const entry_t *x = a, *y = b;
	if (x->agent != y->agent)
		return x->agent < y->agent ? -1 : 1;
	int c = strcmp(x->id, y->id);
	if (c)
		return c;
	return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static const char *str_or_empty(const json_t *v)
{
	const char *s = json_string_value(v);
	return s ? s : "";
}

/* A shallow copy of object o with "a" set to agent (NULL when out of
 * memory). */
static json_t *with_agent(const json_t *o, int32_t agent)
{
	json_t *c = json_copy((json_t *)o);
	if (c && json_object_set_new(c, "a", json_integer(agent)) != 0) {
		json_decref(c);
		return NULL;
	}
	return c;
}

static int append_with_agent(json_t *arr, const json_t *o, int32_t agent)
{
	json_t *c = with_agent(o, agent);
	return c ? json_array_append_new(arr, c) : -1;
}

/* Add the full op of the agent (if any) to out: its ids, and the ids
 * touched after it among entries e[0..n) (all of that agent). */
static int plan_full(const full_t *f, const entry_t *e, size_t n, json_t *out)
{
	json_t *ids = json_array();
	if (!ids || json_array_extend(ids, f->ids) != 0)
		goto fail;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		bool later = false;
		while (j < n && strcmp(e[j].id, e[i].id) == 0)
			later |= e[j++].ord > f->ord;
		if (later && json_array_append_new(ids, json_string(e[i].id)) != 0)
			goto fail;
		i = j;
	}
	json_t *o = json_pack("{s:i, s:o}", "a", (json_int_t)f->agent, "ids", ids);
	return o ? json_array_append_new(out, o) : -1;
fail:
	json_decref(ids);
	return -1;
}

/* Plan the ops of one (agent, id): e[0..n) in order. */
static int plan_key(const entry_t *e, size_t n, json_t *pre, json_t *up, json_t *post)
{
	const entry_t *u = NULL, *before = NULL, *after = NULL;
	for (size_t i = 0; i < n; i++)
		if (e[i].kind == OP_UPSERT)
			u = &e[i];
	for (size_t i = 0; i < n; i++) {
		if (e[i].kind != OP_STOPPED)
			continue;
		if (u && e[i].ord < u->ord)
			before = &e[i];
		else
			after = &e[i];
	}
	if (before && append_with_agent(pre, before->op, before->agent) != 0)
		return -1;
	if (u && append_with_agent(up, json_object_get(u->op, "c"), u->agent) != 0)
		return -1;
	if (after && append_with_agent(post, after->op, after->agent) != 0)
		return -1;
	return 0;
}

char *stateplan_build(const stateplan_src_t *src, size_t n, int *empty)
{
	size_t n_ops = 0;
	for (size_t i = 0; i < n; i++)
		n_ops += json_array_size(src[i].ops);
	entry_t *e = calloc(n_ops ? n_ops : 1, sizeof(*e));
	full_t *f = calloc(n_ops ? n_ops : 1, sizeof(*f));
	status_t *st = calloc(n_ops ? n_ops : 1, sizeof(*st));
	json_t *pre = json_array(), *up = json_array(), *post = json_array();
	json_t *full = json_array(), *status = json_array();
	char *text = NULL;
	if (!e || !f || !st || !pre || !up || !post || !full || !status)
		goto done;

	size_t ne = 0, nf = 0, nst = 0, ord = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k;
		json_t *op;
		json_array_foreach(src[i].ops, k, op)
		{
			const char *what = str_or_empty(json_object_get(op, "op"));
			int32_t a = src[i].agent_id;
			ord++;
			if (strcmp(what, "upsert") == 0 || strcmp(what, "stopped") == 0) {
				bool ups = what[0] == 'u';
				const json_t *idv =
					ups ? json_object_get(json_object_get(op, "c"), "id")
					    : json_object_get(op, "id");
				e[ne++] = (entry_t){a, str_or_empty(idv), ord,
						    ups ? OP_UPSERT : OP_STOPPED, op};
			} else if (strcmp(what, "full") == 0) {
				size_t x = 0;
				while (x < nf && f[x].agent != a)
					x++;
				f[x] = (full_t){a, ord, json_object_get(op, "ids")};
				nf += x == nf;
			} else if (strcmp(what, "status") == 0) {
				fold_status(st, &nst, a, op);
			}
		}
	}
	qsort(e, ne, sizeof(*e), entry_cmp);

	for (size_t i = 0; i < ne;) {
		size_t j = i;
		while (j < ne && e[j].agent == e[i].agent && strcmp(e[j].id, e[i].id) == 0)
			j++;
		if (plan_key(&e[i], j - i, pre, up, post) != 0)
			goto done;
		i = j;
	}
	for (size_t x = 0; x < nf; x++) {
		size_t lo = 0;
		while (lo < ne && e[lo].agent != f[x].agent)
			lo++;
		size_t hi = lo;
		while (hi < ne && e[hi].agent == f[x].agent)
			hi++;
		if (!json_is_array(f[x].ids))
			f[x].ids = NULL;
		full_t fx = f[x];
		json_t *none = NULL;
		if (!fx.ids && !(fx.ids = none = json_array()))
			goto done;
		int rc = plan_full(&fx, &e[lo], hi - lo, full);
		json_decref(none);
		if (rc != 0)
			goto done;
	}
	for (size_t x = 0; x < nst; x++)
		if (plan_status(&st[x], status) != 0)
			goto done;
	*empty = json_array_size(pre) + json_array_size(up) + json_array_size(post) +
			 json_array_size(full) + json_array_size(status) ==
		 0;
	json_t *plan = json_pack("{s:O, s:O, s:O, s:O, s:O}", "pre", pre, "up", up, "post", post,
				 "full", full, "status", status);
	if (plan)
		text = json_dumps(plan, JSON_COMPACT);
	json_decref(plan);
done:
	json_decref(pre);
	json_decref(up);
	json_decref(post);
	json_decref(full);
	json_decref(status);
	free(e);
	free(f);
	free(st);
	return text;
}
