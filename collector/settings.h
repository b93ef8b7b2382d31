/*
 * The collector's settings table: every setting has a config-file key, a
 * --flag, a default and a help line (see common/config.h).
 */
#ifndef VIGIL_COLLECTOR_SETTINGS_H
#define VIGIL_COLLECTOR_SETTINGS_H

#include <stdint.h>

#include "config.h"

typedef struct {
	char *listen; /* host:port for agents */
	char *tls_cert;
	char *tls_key;
	char *agent_ca;
	char *tls_min_version;
	char *db;	    /* libpq connection string */
	int64_t workers;    /* event loops for connections; 0 = one per core */
	int64_t db_writers; /* PostgreSQL writer connections */
	int64_t max_frame_bytes;
	int64_t max_batch_events;
	int64_t max_connections;
	int64_t max_inflight_batches;
	int64_t queue_high_bytes;
	int64_t queue_low_bytes;
	int64_t group_max_events;
	int64_t handshake_timeout_ms;
	int64_t hello_timeout_ms;
	int64_t frame_timeout_ms;
	int64_t idle_timeout_ms;
	int64_t heartbeat_interval_ms;
	int64_t drain_timeout_ms;
	char *duplicate_policy; /* "replace" or "reject" */
	int64_t retention_days;
	int64_t partitions_ahead_days;
	int64_t db_retry_max_ms;
	int64_t db_timeout_ms;
	char *log_level;
	char *revoked_agents; /* file: one revoked identity per line */
	/* HTTPS query API and status page */
	char *http_listen; /* host:port; empty = off */
	char *http_tls_cert;
	char *http_tls_key;
	char *http_operator_ca; /* CA of operator client certificates */
	char *http_admin_cns;	/* comma-separated CNs with the admin role */
	char *web_root;		/* directory of the status page */
	int64_t http_max_connections;
	int64_t http_max_header_bytes;
	int64_t http_max_body_bytes;
	int64_t http_timeout_ms;
	int64_t http_request_timeout_ms;
	int64_t http_rate_limit;
	int64_t http_rate_burst;
	int64_t http_db_connections;
	int64_t http_query_timeout_ms;
	int64_t http_max_limit;
	int64_t http_default_window_ms;
	int64_t http_max_window_ms;
	int64_t http_export_max_rows;
	int64_t http_token_cache_ttl_ms;
	int64_t http_online_window_ms;
} settings_t;

extern const cfg_setting_t settings_table[];

/* Check the relations between settings that the table cannot express.
 * Return 0, or -1 with err set. */
int settings_validate(const settings_t *s, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
