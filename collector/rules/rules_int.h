/*
 * Private to rules/: the judgment being built for one event, and the small
 * string helpers the rules share.
 */
#ifndef VIGIL_RULES_INT_H
#define VIGIL_RULES_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "rules/rules.h"

/* Longest finding key and summary kept (keys are paths, names, caps). */
#define RULES_KEY_MAX 256
#define RULES_SUMMARY_MAX 512

/* The posture judgment of one container. */
typedef struct {
	const rules_t *rules;
	json_t *hits; /* [{"r","k","s","m"}], one per (rule, key) */
	json_t *unk;  /* [rule id], rules whose input is unknown */
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
/* The last component of path ("" for NULL). */
const char *rules_basename(const char *path);
/* True if s is one of the NULL-terminated names. */
bool rules_in(const char *s, const char *const *names);
/* True if hay contains needle, ignoring ASCII case. */
bool rules_contains_ci(const char *hay, const char *needle);

#endif
