// SPDX-License-Identifier: Apache-2.0
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
	CTR_HAVE_NNP = 1u << 16,     /* no_new_privs */
	CTR_HAVE_SECMODE = 1u << 17, /* seccomp_mode, seccomp_filters */
	CTR_HAVE_MAC = 1u << 18,     /* mac_label */
	CTR_HAVE_LIMITS = 1u << 19,  /* the cgroup was read (each limit says if known) */
	CTR_HAVE_USERNS = 1u << 20,  /* host_user, host_cgroup */
	CTR_HAVE_DEVICES = 1u << 21,
	CTR_HAVE_ROOTPROP = 1u << 22, /* rootfs_propagation */
	CTR_HAVE_PORTS = 1u << 23,
	CTR_HAVE_DIGESTS = 1u << 24, /* repo_digests */
	CTR_HAVE_UPPER = 1u << 25,   /* upperdir (not reported: used for drift) */
};

/* Which sources knew a container (found_by). */
enum {
	CTR_SRC_CGROUP = 1u << 0,
	CTR_SRC_OCI = 1u << 1,
	CTR_SRC_API = 1u << 2,
};

/* A cgroup limit: known, then unlimited or value. */
typedef struct {
	bool known, unlimited;
	uint64_t value;
} ctr_limit_t;

typedef struct {
	bool known, unlimited;
	uint64_t quota_us, period_us;
} ctr_cpu_t;

typedef struct {
	char *host_path, *path, *permissions, *type;
	int64_t major, minor;
} ctr_device_t;

typedef struct {
	char *container_port, *host_ip;
	uint32_t host_port;
} ctr_port_t;

typedef struct {
	char *key, *value;
} ctr_label_t;

typedef struct {
	char *source, *destination, *type;
	char *propagation; /* "" = unknown */
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
	/* Facts with their own unknown state (Vigil__V1__Tristate, ...). */
	int no_new_privs;	  /* Vigil__V1__Tristate */
	int seccomp_mode;	  /* Vigil__V1__SeccompMode */
	uint32_t seccomp_filters; /* with CTR_HAVE_SECMODE */
	char *mac_label;
	ctr_limit_t mem_limit, pids_limit;
	ctr_cpu_t cpu_limit;
	int host_user, host_cgroup; /* Vigil__V1__Tristate */
	ctr_device_t *devices;
	size_t n_devices;
	char *rootfs_propagation;
	uint32_t restart_retries;
	ctr_port_t *ports;
	size_t n_ports;
	ctr_strv_t repo_digests;
	unsigned found_by; /* CTR_SRC_* */
	char *upperdir;	   /* overlay upper layer of the root (host path) */
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
/* ctr_add_mount with a propagation mode ("" = unknown). */
int ctr_add_mount_prop(ctr_t *c, const char *src, const char *dst, const char *type, bool ro,
		       const char *propagation);
/* Add a device (strings capped, NULL = ""); at most 256 are kept. */
int ctr_add_device(ctr_t *c, const char *host_path, const char *path, const char *perms,
		   const char *type, int64_t major, int64_t minor);
/* Add a published port; at most 256 are kept. */
int ctr_add_port(ctr_t *c, const char *container_port, const char *host_ip, uint32_t host_port);

/* The normalized name of a propagation mount option ("rshared", ...), or
 * NULL if opt is not one. */
const char *ctr_propagation_name(const char *opt);
/* Replace *field with a capped, repaired copy of s. */
int ctr_set_str(char **field, const char *s, bool *truncated);

/* Fill out (initialized by the caller with VIGIL__V1__CONTAINER__INIT) with
 * pointers into c and arrays allocated here; release them with
 * ctr_pb_release. c must outlive out. Return 0, or -1 on OOM. */
int ctr_to_pb(const ctr_t *c, Vigil__V1__Container *out);
void ctr_pb_release(Vigil__V1__Container *out);

#endif
