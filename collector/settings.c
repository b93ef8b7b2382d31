/* The collector's settings table (see settings.h). */
#include "settings.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define S(field) offsetof(settings_t, field)
#define MiB (INT64_C(1024) * 1024)

#ifndef VIGIL_WEB_ROOT
#define VIGIL_WEB_ROOT "/usr/share/vigil/web"
#endif

const cfg_setting_t settings_table[] = {
	{"listen", CFG_T_STR, "0.0.0.0:7443", false, S(listen), 0, 0,
	 "address:port the agents connect to ([::1]:7443 for IPv6)"},
	{"tls_cert", CFG_T_STR, "", true, S(tls_cert), 0, 0,
	 "collector certificate chain (PEM); reloaded on SIGHUP"},
	{"tls_key", CFG_T_STR, "", true, S(tls_key), 0, 0, "collector private key (PEM)"},
	{"agent_ca", CFG_T_STR, "", true, S(agent_ca), 0, 0,
	 "CA bundle (PEM) that agent certificates must chain to"},
	{"tls_min_version", CFG_T_STR, "1.3", true, S(tls_min_version), 0, 0,
	 "lowest TLS version accepted: 1.3 or 1.2"},
	{"db", CFG_T_STR, "dbname=vigil", false, S(db), 0, 0,
	 "PostgreSQL connection string (libpq conninfo or URI)"},
	{"workers", CFG_T_INT, "0", false, S(workers), 0, 256,
	 "connection event loops (threads); 0 = one per core"},
	{"db_writers", CFG_T_INT, "2", false, S(db_writers), 1, 64,
	 "PostgreSQL writer connections; an agent always uses the same one"},
	{"max_frame_bytes", CFG_T_BYTES, "4MiB", false, S(max_frame_bytes), 64, 256 * MiB,
	 "largest frame accepted from an agent"},
	{"max_batch_events", CFG_T_INT, "20000", true, S(max_batch_events), 1, 10000000,
	 "most events one batch may carry (bounds the memory one frame can take)"},
	{"max_connections", CFG_T_INT, "10000", true, S(max_connections), 1, 1000000,
	 "agent connections accepted at once; more are closed at accept"},
	{"max_inflight_batches", CFG_T_INT, "16", true, S(max_inflight_batches), 1, 1024,
	 "unacknowledged batches per connection before it stops being read"},
	{"queue_high_bytes", CFG_T_BYTES, "128MiB", true, S(queue_high_bytes), 1 * MiB,
	 64 * 1024 * MiB, "queued batch bytes above which connections stop being read"},
	{"queue_low_bytes", CFG_T_BYTES, "64MiB", true, S(queue_low_bytes), 0, 64 * 1024 * MiB,
	 "queued batch bytes below which reading resumes"},
	{"group_max_events", CFG_T_INT, "20000", true, S(group_max_events), 1, 10000000,
	 "most events committed in one transaction (group commit)"},
	{"handshake_timeout", CFG_T_MS, "10s", true, S(handshake_timeout_ms), 100, 3600000,
	 "time allowed for the TLS handshake"},
	{"hello_timeout", CFG_T_MS, "10s", true, S(hello_timeout_ms), 100, 3600000,
	 "time allowed between handshake and Hello"},
	{"frame_timeout", CFG_T_MS, "30s", true, S(frame_timeout_ms), 100, 3600000,
	 "time allowed for a started frame to arrive whole"},
	{"idle_timeout", CFG_T_MS, "90s", true, S(idle_timeout_ms), 1000, 86400000,
	 "connection closed after this long without a frame"},
	{"heartbeat_interval", CFG_T_MS, "30s", true, S(heartbeat_interval_ms), 100, 3600000,
	 "heartbeat period the collector asks of agents"},
	{"drain_timeout", CFG_T_MS, "30s", false, S(drain_timeout_ms), 0, 3600000,
	 "on SIGTERM, time allowed to commit and acknowledge queued batches"},
	{"duplicate_policy", CFG_T_STR, "replace", false, S(duplicate_policy), 0, 0,
	 "a second connection of a connected agent: replace (close the old one) or reject"},
	{"retention_days", CFG_T_INT, "30", true, S(retention_days), 1, 36500,
	 "daily event partitions older than this are dropped"},
	{"partitions_ahead_days", CFG_T_INT, "3", true, S(partitions_ahead_days), 1, 365,
	 "daily event partitions created ahead of time"},
	{"db_retry_max", CFG_T_MS, "10s", true, S(db_retry_max_ms), 100, 600000,
	 "longest wait between PostgreSQL reconnection attempts"},
	{"db_timeout", CFG_T_MS, "60s", true, S(db_timeout_ms), 1000, 3600000,
	 "a PostgreSQL command not answered within this is abandoned and the connection reset"},
	{"log_level", CFG_T_STR, "info", true, S(log_level), 0, 0, "error, warn, info or debug"},
	{"revoked_agents", CFG_T_STR, "", true, S(revoked_agents), 0, 0,
	 "file of revoked agent identities (CN or sha256:...), one per line; re-read on SIGHUP"},
	{"http_listen", CFG_T_STR, "", false, S(http_listen), 0, 0,
	 "address:port of the HTTPS query API and status page; empty = off"},
	{"http_tls_cert", CFG_T_STR, "", true, S(http_tls_cert), 0, 0,
	 "HTTPS certificate chain (PEM); empty = tls_cert"},
	{"http_tls_key", CFG_T_STR, "", true, S(http_tls_key), 0, 0,
	 "HTTPS private key (PEM); empty = tls_key"},
	{"http_operator_ca", CFG_T_STR, "", true, S(http_operator_ca), 0, 0,
	 "CA bundle of operator client certificates for the API; empty = tokens only"},
	{"http_admin_cns", CFG_T_STR, "", true, S(http_admin_cns), 0, 0,
	 "comma-separated operator certificate CNs with the admin role (others: viewer)"},
	{"web_root", CFG_T_STR, VIGIL_WEB_ROOT, false, S(web_root), 0, 0,
	 "directory of the status page files, loaded at start"},
	{"http_max_connections", CFG_T_INT, "1000", true, S(http_max_connections), 1, 100000,
	 "HTTPS connections at once; more are closed at accept"},
	{"http_max_header_bytes", CFG_T_BYTES, "16KiB", false, S(http_max_header_bytes), 1024,
	 1 * MiB, "largest request line plus headers (413 above)"},
	{"http_max_body_bytes", CFG_T_BYTES, "16KiB", false, S(http_max_body_bytes), 256, 1 * MiB,
	 "largest request body (413 above); the sign-in form needs about 100 bytes"},
	{"http_timeout", CFG_T_MS, "30s", false, S(http_timeout_ms), 100, 3600000,
	 "HTTPS connection closed when a read or write makes no progress for this long"},
	{"http_request_timeout", CFG_T_MS, "10s", true, S(http_request_timeout_ms), 100, 3600000,
	 "time allowed for the TLS handshake and for each request's head and body (slow clients)"},
	{"http_rate_limit", CFG_T_INT, "50", true, S(http_rate_limit), 0, 10000000,
	 "requests per second per client address (socket peer); 0 = no limit"},
	{"http_rate_burst", CFG_T_INT, "200", true, S(http_rate_burst), 1, 10000000,
	 "requests a client address may make at once above http_rate_limit"},
	{"http_db_connections", CFG_T_INT, "8", false, S(http_db_connections), 1, 64,
	 "PostgreSQL connections of the query API"},
	{"http_query_timeout", CFG_T_MS, "10s", false, S(http_query_timeout_ms), 100, 600000,
	 "an API query running longer is cancelled (503)"},
	{"http_max_limit", CFG_T_INT, "1000", true, S(http_max_limit), 1, 100000,
	 "largest page size (limit=) of list endpoints; larger requests are capped"},
	{"http_default_window", CFG_T_MS, "24h", true, S(http_default_window_ms), 1000,
	 INT64_C(3162240000000), "time window of event queries that give no since="},
	{"http_max_window", CFG_T_MS, "744h", true, S(http_max_window_ms), 1000,
	 INT64_C(3162240000000), "widest time window of one event query (400 above)"},
	{"http_export_max_rows", CFG_T_INT, "1000000", true, S(http_export_max_rows), 1, 1000000000,
	 "most events one NDJSON/CSV export streams"},
	{"http_token_cache_ttl", CFG_T_MS, "5s", true, S(http_token_cache_ttl_ms), 0, 3600000,
	 "how long a token lookup is cached (a revoked token works at most this long)"},
	{"http_online_window", CFG_T_MS, "3m", true, S(http_online_window_ms), 1000, 86400000,
	 "an agent not connected here counts as online if seen within this (other collectors)"},
	{NULL, 0, NULL, false, 0, 0, 0, NULL},
};

int settings_validate(const settings_t *s, char *err, size_t errlen)
{
	if (!s->tls_cert[0] || !s->tls_key[0] || !s->agent_ca[0]) {
		snprintf(err, errlen, "tls_cert, tls_key and agent_ca must be set");
		return -1;
	}
	if (s->queue_low_bytes >= s->queue_high_bytes) {
		snprintf(err, errlen, "queue_low_bytes must be below queue_high_bytes");
		return -1;
	}
	if (strcmp(s->duplicate_policy, "replace") != 0 &&
	    strcmp(s->duplicate_policy, "reject") != 0) {
		snprintf(err, errlen, "duplicate_policy must be replace or reject");
		return -1;
	}
	if (strcmp(s->tls_min_version, "1.2") != 0 && strcmp(s->tls_min_version, "1.3") != 0) {
		snprintf(err, errlen, "tls_min_version must be 1.2 or 1.3");
		return -1;
	}
	if (s->http_listen[0] && s->http_rate_limit > 0 && s->http_rate_burst < 1) {
		snprintf(err, errlen, "http_rate_burst must be at least 1");
		return -1;
	}
	return 0;
}
