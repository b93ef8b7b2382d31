// SPDX-License-Identifier: Apache-2.0
/*
 * Private to rules/: the judgment being built for one event, and the small
 * string helpers the rules share.
 */
#ifndef VIGIL_RULES_INT_H
#define VIGIL_RULES_INT_H

#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rules/rules.h"

/* Longest finding key and summary kept (keys are paths, names, caps). */
#define RULES_KEY_MAX 256
#define RULES_SUMMARY_MAX 512

/* Built-in rules at most (catalog.c checks). */
#define RULES_MAX 64
/* Limits of a rules file. */
#define RULES_FILE_MAX (1024 * 1024)
#define RULES_GLOB_MAX 256
#define RULES_REASON_MAX 1024
#define RULES_EXCEPTIONS_MAX 10000
#define RULES_REGISTRIES_MAX 1000

/* An exception: findings of rule (or every rule) on what matches every
 * given selector are not raised. Selectors are fnmatch(3) globs. */
typedef struct {
	int rule;	 /* index of the built-in rule; -1 = every rule */
	char *image;	 /* NULL = any */
	char *digest;	 /* image digest or a repo digest */
	char *label_key; /* with label_value: a label key = value glob */
	char *label_value;
	char *agent;
	char *container; /* the container's name */
	char *reason;
	int64_t expires_ns; /* 0 = never */
	int line;	    /* in the rules file */
} rules_exception_t;

struct rules {
	atomic_int refs;
	unsigned char enabled[RULES_MAX];
	unsigned char severity[RULES_MAX];
	rules_exception_t *exc;
	size_t n_exc;
	char **registries; /* allowed image registries (prefixes); none = rule off */
	size_t n_registries;
	char *origin; /* the file, or NULL for the built-in defaults */
};

/* Number of built-in rules, and the index of rule id (-1 if none). */
size_t rules_count(void);
int rules_index(const char *id);

/* Who a finding is about, for exceptions. */
typedef struct {
	const char *name, *image, *digest;
	const char *const *repo_digests;
	size_t n_repo_digests;
	const char *const *label_keys, *const *label_values;
	size_t n_labels;
} rules_subject_t;

/* True if an exception in force covers rule on subject. */
bool rules_excepted(const rules_ctx_t *ctx, const rules_subject_t *subj, const char *rule);
/* The subject of container id as last seen on this connection, or NULL. */
const rules_subject_t *rules_subjects_get(rules_subjects_t *s, const char *id);
/* Remember container c (copies what exceptions look at). */
void rules_subjects_put(rules_subjects_t *s, const Vigil__V1__Container *c);
/* The subject of container c itself; labels go to the caller's arrays of
 * at least RULES_LABELS_MAX entries. */
#define RULES_LABELS_MAX 128
void rules_subject_of(const Vigil__V1__Container *c, rules_subject_t *subj, const char **keys,
		      const char **values);

/* The posture judgment of one container. */
typedef struct {
	const rules_ctx_t *ctx;
	const rules_subject_t *subj;
	json_t *hits; /* [{"r","k","s","m"}], one per (rule, key) */
	json_t *unk;  /* [rule id], rules whose input is unknown */
	json_t *off;  /* [rule id], rules that would fire but are off or excepted */
	int oom;
} judgment_t;

/* Record a finding of rule (if in force) with key and a printf summary. */
void judgment_hit(judgment_t *j, const char *rule, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Record that rule (if in force) could not be judged. */
void judgment_unknown(judgment_t *j, const char *rule);

/* A JSON string of s (NULL: ""), cut to cap bytes and made valid UTF-8
 * without control characters: strings from containers. */
json_t *rules_text(const char *s, size_t cap);
/* True if runtime.c's table of process names is sorted (a unit test). */
bool rules_names_sorted(void);
/* The last component of path ("" for NULL). */
const char *rules_basename(const char *path);
/* True if s is one of the NULL-terminated names. */
bool rules_in(const char *s, const char *const *names);
/* True if hay contains needle, ignoring ASCII case. */
bool rules_contains_ci(const char *hay, const char *needle);

#endif
