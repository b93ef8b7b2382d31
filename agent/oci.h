// SPDX-License-Identifier: Apache-2.0
/*
 * OCI runtime state and bundles: runc/crun state.json (id, init pid,
 * creation time, bundle path) and the bundle's config.json (the OCI
 * runtime spec: command, user, capabilities, mounts, namespaces, read-only
 * root, seccomp, AppArmor). Parsers are pure; oci_scan_* read directories.
 */
#ifndef VIGIL_AGENT_OCI_H
#define VIGIL_AGENT_OCI_H

#include <stddef.h>
#include <stdint.h>

#include "ctr.h"

typedef struct {
	char id[128];
	uint32_t init_pid;
	int64_t created_ns;
	char bundle[1024]; /* "" if unknown */
	int runtime;	   /* from the manager labels: podman, cri-o, ... else runc */
} oci_state_t;

/* Parse a runc (or crun) state.json. Return 0, or -1 if it is not one. */
int oci_parse_state(const char *json, size_t len, oci_state_t *out);

/* Parse crun's ID/status file (pid, bundle, created; no id: dir_id, the
 * name of its directory, is the id). Return 0, or -1 if it is not one. */
int oci_parse_crun_status(const char *json, size_t len, const char *dir_id, oci_state_t *out);

/* The runtime that owns a state directory: containerd's runc root
 * (.../containerd/...) is containerd, Docker's (/run/docker/...) is
 * Docker; -1 if the directory does not tell. */
int oci_dir_runtime(const char *dir);

/* Fill c from an OCI runtime spec (config.json): every field the spec
 * fixes gets its have bit. Strings are capped and repaired. Return 0, or
 * -1 if the text is not a spec object (c may be partly filled). */
int oci_parse_spec(const char *json, size_t len, ctr_t *c, size_t max_labels);

/* Called for each container found by a scan. */
typedef void (*oci_found_cb)(void *arg, const oci_state_t *st);

/* Read every DIR/ID/state.json (or crun's DIR/ID/status) under the
 * comma-separated dirs.
 * Return the number of readable state dirs, or -1 if none exists. */
int oci_scan_state_dirs(const char *dirs, oci_found_cb cb, void *arg);

/* Read every DIR/NAMESPACE/ID/ (containerd shim v2 bundles, which hold
 * config.json and an init.pid) under the comma-separated dirs. */
int oci_scan_containerd(const char *dirs, oci_found_cb cb, void *arg);

/* Read BUNDLE/config.json into c (oci_parse_spec). Return 0 or -1. */
int oci_load_bundle(const char *bundle, ctr_t *c, size_t max_labels);

#endif
