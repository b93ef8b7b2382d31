// SPDX-License-Identifier: Apache-2.0
/*
 * The rule engine: judges every container state and every exec that the
 * collector stores, on the worker thread that encodes the batch, so a
 * finding is written in the same transaction as its evidence.
 *
 * Posture rules look at a container's settings (privileged, capabilities,
 * namespaces, mounts, profiles, limits, image); runtime rules look at one
 * exec or uid change. A judgment is appended as an op to the batch's state
 * ops (rows.h), where the plan of a commit group (rules_plan_build) finds
 * it in order with the containers' stops and removals:
 *
 *   {"op":"posture","id":C,"ts":NS,"seq":S,"idx":I,
 *    "hits":[{"r":RULE,"k":KEY,"s":SEV,"m":SUMMARY}...],"unk":[RULE...],
 *    "off":[RULE...]}
 *   {"op":"runtime","id":C,"ts":NS,"seq":S,"idx":I,
 *    "r":RULE,"k":KEY,"s":SEV,"m":SUMMARY,"d":{exe, argv0, pid, uid}}
 *
 * A posture op lists every posture finding the container has now (the
 * others are resolved) and, under "unk", the rules whose input no source
 * could establish: those raise nothing and are counted as unknown; "off"
 * (if any) names the rules that would fire but are switched off or
 * excepted (their findings resolve as such, not as a fixed setting).
 * Pure code: no I/O, no database; strings from agents are kept as bytes.
 */
#ifndef VIGIL_RULES_H
#define VIGIL_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "vigil/v1/events.pb-c.h"

typedef enum {
	RULE_POSTURE,
	RULE_RUNTIME,
	RULE_VULN, /* raised by the matcher of vulnerable images, not at ingest */
} rule_kind_t;

/* A built-in rule. Severities are Vigil__V1__Severity values. */
typedef struct {
	const char *id; /* stable, lower_snake_case */
	rule_kind_t kind;
	int severity; /* default; a rules file may override it */
	const char *title;
	const char *control; /* the standard and version it implements */
	const char *rationale;
	const char *remediation;
} rule_info_t;

/* The built-in rules, in a fixed order; NULL past the end. */
const rule_info_t *rules_builtin(size_t i);
/* The built-in rule named id, or NULL. */
const rule_info_t *rules_find(const char *id);
/* The rule kind and a severity by name ("posture", "high"), or NULL. */
const char *rules_kind_name(rule_kind_t k);
const char *rules_severity_name(int severity);

/* The rules in force: which are enabled and at what severity. Immutable
 * once built, so worker threads share it without locks. */
typedef struct rules rules_t;

/* Every built-in rule enabled at its default severity, with one
 * reference. NULL when out of memory. */
rules_t *rules_new_default(void);
/* Take another reference to r (any thread); drop one, freeing r with the
 * last (NULL is fine). */
rules_t *rules_ref(rules_t *r);
void rules_unref(rules_t *r);

/* Where the rules in force live: threads take a reference for as long as
 * they judge (a batch, a request) while a reload swaps in new rules. */
typedef struct rules_slot rules_slot_t;
/* A slot holding r (it takes r's reference). NULL when out of memory. */
rules_slot_t *rules_slot_new(rules_t *r);
/* The rules in force, with a reference the caller drops (rules_unref). */
rules_t *rules_slot_get(rules_slot_t *s);
/* Put r in force (the slot takes r's reference). */
void rules_slot_set(rules_slot_t *s, rules_t *r);
void rules_slot_free(rules_slot_t *s);
/* Whether rule id is in force, and at what severity. */
int rules_enabled(const rules_t *r, const char *id);
int rules_severity(const rules_t *r, const char *id);

/* True if the agent lists fact name of c (a Container field name) as one
 * no source could establish: unknown, not false. */
bool rules_fact_unknown(const Vigil__V1__Container *c, const char *name);

/* Read a rules file (YAML, at most 1 MiB) into rules in force, with one
 * reference: built-in rules switched off or re-rated, exceptions, the
 * registry allow-list (README.md, "Rules file"). On any error return NULL
 * with err set to "FILE:LINE:COLUMN: what" and nothing applied. */
rules_t *rules_load(const char *path, char *err, size_t errlen);
/* The same from text; origin names it in errors. Pure: no I/O. */
rules_t *rules_parse(const char *text, size_t len, const char *origin, char *err, size_t errlen);
/* Print the rules in force, one per line (id, kind, severity, enabled,
 * title), then the exceptions and the allowed registries. */
void rules_print(const rules_t *r, FILE *out);
/* Exceptions in force and registries allowed, for listings. */
size_t rules_exception_count(const rules_t *r);
size_t rules_registry_count(const rules_t *r);

/* What the collector knows of the containers of one agent connection: the
 * name, image and labels of each, for the exceptions of runtime rules (an
 * exec names only its container id). Bounded; owned by one thread. */
typedef struct rules_subjects rules_subjects_t;
rules_subjects_t *rules_subjects_new(void);
void rules_subjects_free(rules_subjects_t *s);
/* Remember the containers of json, an array of {id, name, image,
 * image_digest, labels: {k: v}, repo_digests: [..]} (what the database
 * knows of an agent's containers when it connects). Invalid entries are
 * skipped. */
void rules_subjects_load(rules_subjects_t *s, const char *json);

/* Everything a judgment needs besides the event. */
typedef struct {
	const rules_t *rules;
	rules_subjects_t *subjects; /* may be NULL: exceptions by image, name or
				       label then apply to posture rules only */
	const char *agent;	    /* the agent's identity */
	int64_t now_ns;		    /* exceptions past their expiry are ignored */
} rules_ctx_t;

/* Where a judged event sits: its batch and position, and its time. */
typedef struct {
	uint64_t seq;
	uint32_t idx;
	int64_t ts_ns;
} rules_evidence_t;

/* Judge container c: remember it in ctx->subjects and append one posture
 * op to ops. Return 0, or -1 when out of memory. */
int rules_judge_container(const rules_ctx_t *ctx, const Vigil__V1__Container *c,
			  const rules_evidence_t *ev, json_t *ops)
	__attribute__((warn_unused_result));

/* Judge exec x in container container_id: append a runtime op to ops for
 * each rule it breaks. Return 0, or -1 when out of memory. */
int rules_judge_exec(const rules_ctx_t *ctx, const char *container_id,
		     const Vigil__V1__ProcessExec *x, const rules_evidence_t *ev, json_t *ops)
	__attribute__((warn_unused_result));

/* Judge uid change u in container container_id (a process became root). */
int rules_judge_uid_change(const rules_ctx_t *ctx, const char *container_id,
			   const Vigil__V1__ProcessUidChange *u, const rules_evidence_t *ev,
			   json_t *ops) __attribute__((warn_unused_result));

/* One batch's state ops, for the plan of a commit group. */
typedef struct {
	int32_t agent_id;
	const json_t *ops;
} rules_plan_src_t;

/* The findings plan of src[0..n) in queue order, as compact JSON text for
 * vigil_apply_findings():
 *   {"posture":[..],"runtime":[..],"full":[..]}
 * posture: the last posture op of each (agent, container), with "a";
 * runtime: one element per (agent, container, rule, key) with the count
 * "n", the first evidence and the last ("lts","lseq","lidx");
 * full: per agent, the ids of its last full inventory and every id it
 * touched after it: findings of its other containers are resolved (a
 * container that stopped is still there: its findings stay open until
 * it is removed).
 * *empty is set when there is nothing to apply. NULL when out of memory.
 * Caller frees the result. */
char *rules_plan_build(const rules_plan_src_t *src, size_t n, int *empty);

#endif
