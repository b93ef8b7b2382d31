// SPDX-License-Identifier: Apache-2.0
/*
 * Who a finding is about, for exceptions: a container's name, image,
 * digests and labels; the cache of them per agent connection (an exec
 * names only its container id); and the matching of exceptions.
 */
#include "rules/rules.h"
#include "rules/rules_int.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

/* Containers remembered per connection: past this the cache starts over
 * (the agent resends its containers in its periodic snapshots). */
#define SUBJECTS_MAX 8192
#define SUBJECTS_BUCKETS 1024
#define SUBJECT_STR_MAX 512
#define SUBJECT_DIGESTS_MAX 16

typedef struct entry {
	struct entry *next;
	char *id;
	rules_subject_t subj;
	char *strs[3]; /* name, image, digest */
	char **digests;
	char **keys, **values;
} entry_t;

struct rules_subjects {
	entry_t *bucket[SUBJECTS_BUCKETS];
	size_t n;
};

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % SUBJECTS_BUCKETS;
}

static char *dup_capped(const char *s)
{
	return s ? strndup(s, SUBJECT_STR_MAX) : NULL;
}

static void entry_free(entry_t *e)
{
	free(e->id);
	for (int i = 0; i < 3; i++)
		free(e->strs[i]);
	for (size_t i = 0; i < e->subj.n_repo_digests; i++)
		free(e->digests[i]);
	free(e->digests);
	for (size_t i = 0; i < e->subj.n_labels; i++) {
		free(e->keys[i]);
		free(e->values[i]);
	}
	free(e->keys);
	free(e->values);
	free(e);
}

static void clear(rules_subjects_t *s)
{
	for (size_t b = 0; b < SUBJECTS_BUCKETS; b++) {
		while (s->bucket[b]) {
			entry_t *e = s->bucket[b];
			s->bucket[b] = e->next;
			entry_free(e);
		}
	}
	s->n = 0;
}

rules_subjects_t *rules_subjects_new(void)
{
	return calloc(1, sizeof(rules_subjects_t));
}

void rules_subjects_free(rules_subjects_t *s)
{
	if (!s)
		return;
	clear(s);
	free(s);
}

static entry_t **find(rules_subjects_t *s, const char *id)
{
	entry_t **p = &s->bucket[hash(id)];
	while (*p && strcmp((*p)->id, id) != 0)
		p = &(*p)->next;
	return p;
}

const rules_subject_t *rules_subjects_get(rules_subjects_t *s, const char *id)
{
	if (!s || !id)
		return NULL;
	entry_t *e = *find(s, id);
	return e ? &e->subj : NULL;
}

/* A copy of what c says about itself; NULL when out of memory. */
static entry_t *entry_of(const Vigil__V1__Container *c)
{
	entry_t *e = calloc(1, sizeof(*e));
	size_t nd =
		c->n_repo_digests < SUBJECT_DIGESTS_MAX ? c->n_repo_digests : SUBJECT_DIGESTS_MAX;
	size_t nl = c->n_labels < RULES_LABELS_MAX ? c->n_labels : RULES_LABELS_MAX;
	if (!e || !(e->id = strdup(c->id)) || (nd && !(e->digests = calloc(nd, sizeof(char *)))) ||
	    (nl && (!(e->keys = calloc(nl, sizeof(char *))) ||
		    !(e->values = calloc(nl, sizeof(char *)))))) {
		if (e)
			entry_free(e);
		return NULL;
	}
	e->strs[0] = dup_capped(c->name);
	e->strs[1] = dup_capped(c->image);
	e->strs[2] = dup_capped(c->image_digest);
	for (size_t i = 0; i < nd; i++)
		e->digests[i] = dup_capped(c->repo_digests[i]);
	for (size_t i = 0; i < nl; i++) {
		e->keys[i] = dup_capped(c->labels[i]->key);
		e->values[i] = dup_capped(c->labels[i]->value);
	}
	e->subj = (rules_subject_t){e->strs[0],
				    e->strs[1],
				    e->strs[2],
				    (const char *const *)e->digests,
				    nd,
				    (const char *const *)e->keys,
				    (const char *const *)e->values,
				    nl};
	return e;
}

void rules_subjects_put(rules_subjects_t *s, const Vigil__V1__Container *c)
{
	if (!s || !c->id || !c->id[0])
		return;
	entry_t *e = entry_of(c);
	if (!e)
		return; /* out of memory: exceptions by name do not apply to its execs */
	entry_t **p = find(s, c->id);
	if (*p) {
		e->next = (*p)->next;
		entry_free(*p);
		*p = e;
		return;
	}
	if (s->n >= SUBJECTS_MAX) {
		clear(s);
		p = find(s, c->id);
	}
	*p = e;
	s->n++;
}

/* json's string at key, or NULL. */
static char *jstr(const json_t *o, const char *key)
{
	return (char *)json_string_value(json_object_get(o, key));
}

void rules_subjects_load(rules_subjects_t *s, const char *json)
{
	json_t *a = json_loads(json, 0, NULL);
	size_t i;
	json_t *o;
	json_array_foreach(a, i, o)
	{
		Vigil__V1__Container c = VIGIL__V1__CONTAINER__INIT;
		Vigil__V1__Label labels[RULES_LABELS_MAX];
		Vigil__V1__Label *lp[RULES_LABELS_MAX];
		char *digests[SUBJECT_DIGESTS_MAX];
		c.id = jstr(o, "id");
		if (!c.id)
			continue;
		c.name = jstr(o, "name");
		c.image = jstr(o, "image");
		c.image_digest = jstr(o, "image_digest");
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(o, "labels"), k, v)
		{
			if (c.n_labels == RULES_LABELS_MAX || !json_is_string(v))
				break;
			vigil__v1__label__init(&labels[c.n_labels]);
			labels[c.n_labels].key = (char *)k;
			labels[c.n_labels].value = (char *)json_string_value(v);
			lp[c.n_labels] = &labels[c.n_labels];
			c.n_labels++;
		}
		c.labels = lp;
		size_t j;
		json_array_foreach(json_object_get(o, "repo_digests"), j, v)
		{
			if (c.n_repo_digests == SUBJECT_DIGESTS_MAX || !json_is_string(v))
				break;
			digests[c.n_repo_digests++] = (char *)json_string_value(v);
		}
		c.repo_digests = digests;
		rules_subjects_put(s, &c);
	}
	json_decref(a);
}

void rules_subject_of(const Vigil__V1__Container *c, rules_subject_t *subj, const char **keys,
		      const char **values)
{
	size_t nl = c->n_labels < RULES_LABELS_MAX ? c->n_labels : RULES_LABELS_MAX;
	for (size_t i = 0; i < nl; i++) {
		keys[i] = c->labels[i]->key;
		values[i] = c->labels[i]->value;
	}
	*subj = (rules_subject_t){
		c->name,	   c->image, c->image_digest, (const char *const *)c->repo_digests,
		c->n_repo_digests, keys,     values,	      nl};
}

/* glob matches s (NULL glob: anything; NULL s: nothing). */
static bool glob(const char *glob, const char *s)
{
	return !glob || (s && fnmatch(glob, s, 0) == 0);
}

static bool matches(const rules_exception_t *x, const rules_ctx_t *ctx, const rules_subject_t *subj)
{
	if (!glob(x->agent, ctx->agent))
		return false;
	if (!subj)
		return !x->image && !x->digest && !x->label_key && !x->container;
	if (!glob(x->image, subj->image) || !glob(x->container, subj->name))
		return false;
	if (x->digest) {
		bool any = glob(x->digest, subj->digest);
		for (size_t i = 0; !any && i < subj->n_repo_digests; i++)
			any = glob(x->digest, subj->repo_digests[i]);
		if (!any)
			return false;
	}
	if (x->label_key) {
		bool any = false;
		for (size_t i = 0; !any && i < subj->n_labels; i++)
			any = glob(x->label_key, subj->label_keys[i]) &&
			      glob(x->label_value, subj->label_values[i]);
		if (!any)
			return false;
	}
	return true;
}

bool rules_excepted(const rules_ctx_t *ctx, const rules_subject_t *subj, const char *rule)
{
	const rules_t *r = ctx->rules;
	if (!r->n_exc)
		return false;
	int idx = rules_index(rule);
	for (size_t i = 0; i < r->n_exc; i++) {
		const rules_exception_t *x = &r->exc[i];
		if ((x->rule == -1 || x->rule == idx) &&
		    (!x->expires_ns || x->expires_ns > ctx->now_ns) && matches(x, ctx, subj))
			return true;
	}
	return false;
}
