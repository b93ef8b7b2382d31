// SPDX-License-Identifier: Apache-2.0
/*
 * vigil-agent's settings table: every setting has a config-file key, a
 * --flag, a default and a help line (see common/config.h).
 */
#ifndef VIGIL_AGENT_SETTINGS_H
#define VIGIL_AGENT_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct {
	char *collectors;  /* host:port[,host:port...] tried in order */
	char *server_name; /* name the collector certificate must carry; "" = host part */
	char *tls_cert;
	char *tls_key;
	char *ca;
	char *tls_min_version;
	char *spool_dir;
	int64_t spool_max_bytes;
	int64_t spool_fsync_ms; /* 0 = fsync every batch */
	int64_t batch_max_events;
	int64_t batch_delay_ms;
	int64_t max_inflight_batches;
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
	int64_t connect_timeout_ms;
	int64_t heartbeat_interval_ms;
	int64_t scan_interval_ms;
	int64_t snapshot_interval_ms;
	int64_t status_interval_ms;
	char *proc_root;
	char *cgroup_root;
	char *docker_socket; /* "" or "none" disables the source */
	int64_t api_timeout_ms;
	char *oci_state_dirs; /* comma-separated */
	char *containerd_dirs;
	int64_t proc_connector; /* bool */
	int64_t host_execs;	/* bool: also report execs outside containers */
	int64_t string_max_bytes;
	int64_t argv_max_bytes;
	int64_t labels_max;
	int64_t shutdown_timeout_ms;
	int64_t image_inventory; /* bool */
	int64_t image_read_budget_ms;
	int64_t image_file_max_bytes;
	int64_t image_rpmdb_max_bytes;
	int64_t image_packages_max;
	char *hostname; /* "" = uname */
	char *log_level;
} settings_t;

extern const cfg_setting_t settings_table[];

/* Check the relations between settings that the table cannot express.
 * Return 0, or -1 with err set. */
int settings_validate(const settings_t *s, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
