/*
 * One container as the agent knows it: the fields of vigil.v1.Container,
 * owned strings, and which of them a source actually knew (have bits), so
 * records from several sources merge field by field.
 */
#ifndef VIGIL_AGENT_CTR_H
#define VIGIL_AGENT_CTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/v1/events.pb-c.h"

enum {
	CTR_HAVE_NAME = 1u << 0,
	CTR_HAVE_IMAGE = 1u << 1,
	CTR_HAVE_LABELS = 1u << 2,
	CTR_HAVE_COMMAND = 1u << 3,
	CTR_HAVE_USER = 1u << 4,
	CTR_HAVE_PRIV = 1u << 5,
	CTR_HAVE_CAPS = 1u << 6,
	CTR_HAVE_NS = 1u << 7,
	CTR_HAVE_MOUNTS = 1u << 8,
	CTR_HAVE_ROFS = 1u << 9,
	CTR_HAVE_PROFILES = 1u << 10,
	CTR_HAVE_PID = 1u << 11,
	CTR_HAVE_TIMES = 1u << 12,
	CTR_HAVE_STATE = 1u << 13,
	CTR_HAVE_RUNTIME = 1u << 14,
	CTR_HAVE_RESTART = 1u << 15,
};

typedef struct {
	char *key, *value;
} ctr_label_t;

typedef struct {
	char *source, *destination, *type;
	bool read_only;
} ctr_mount_t;

typedef struct {
	char **v;
	size_t n;
} ctr_strv_t;

typedef struct {
	char *id;
	unsigned have;
	bool truncated; /* some string was capped */
	char *name;
	int runtime; /* Vigil__V1__Runtime */
	char *image, *image_digest;
	ctr_label_t *labels;
	size_t n_labels;
	ctr_strv_t command;
	uint32_t uid, gid;
	bool privileged;
	ctr_strv_t cap_eff, cap_bnd;
	bool host_pid, host_net, host_ipc, host_uts;
	ctr_mount_t *mounts;
	size_t n_mounts;
	bool ro_rootfs;
	char *seccomp, *apparmor;
	char *restart_policy;
	size_t list_bytes; /* text added by ctr_add_label/ctr_add_mount (a bound) */
	uint32_t init_pid;
	int64_t created_ns, started_ns;
	char *state;
} ctr_t;

/* A new empty record for id (copied). Caller frees with ctr_free. */
ctr_t *ctr_new(const char *id);
void ctr_free(ctr_t *c);
/* A deep copy, NULL on OOM. */
ctr_t *ctr_dup(const ctr_t *c);

/* Take into dst every field src knows and dst does not (src keeps its
 * copies). Return 0, or -1 on OOM. */
int ctr_merge(ctr_t *dst, const ctr_t *src) __attribute__((warn_unused_result));
/* ctr_merge limited to the have bits in mask. */
int ctr_merge_mask(ctr_t *dst, const ctr_t *src, unsigned mask) __attribute__((warn_unused_result));

/* True if the security-relevant settings differ (times and state aside). */
bool ctr_settings_differ(const ctr_t *a, const ctr_t *b);

/* String vector helpers: push a copy made by text_dup_n (capped, repaired). */
int ctr_strv_push(ctr_strv_t *v, const char *s, size_t n, bool *truncated);
void ctr_strv_clear(ctr_strv_t *v);
int ctr_add_label(ctr_t *c, const char *k, const char *v, size_t max_labels);
int ctr_add_mount(ctr_t *c, const char *src, const char *dst, const char *type, bool ro);
/* Replace *field with a capped, repaired copy of s. */
int ctr_set_str(char **field, const char *s, bool *truncated);

/* Fill out (initialized by the caller with VIGIL__V1__CONTAINER__INIT) with
 * pointers into c and arrays allocated here; release them with
 * ctr_pb_release. c must outlive out. Return 0, or -1 on OOM. */
int ctr_to_pb(const ctr_t *c, Vigil__V1__Container *out);
void ctr_pb_release(Vigil__V1__Container *out);

#endif
