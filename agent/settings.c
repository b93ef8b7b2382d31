// SPDX-License-Identifier: Apache-2.0
/* vigil-agent's settings table (see settings.h). */
#include "settings.h"

#include <stdio.h>
#include <string.h>

#define S(field) offsetof(settings_t, field)
#define KiB INT64_C(1024)
#define MiB (INT64_C(1024) * 1024)
#define HOUR_MS INT64_C(3600000)

const cfg_setting_t settings_table[] = {
	{"collectors", CFG_T_STR, "localhost:7443", true, S(collectors), 0, 0,
	 "collector addresses host:port, comma-separated; tried in order, with failover"},
	{"server_name", CFG_T_STR, "", true, S(server_name), 0, 0,
	 "name the collector certificate must match; empty = the host part of each address"},
	{"tls_cert", CFG_T_STR, "/etc/vigil/agent.crt", true, S(tls_cert), 0, 0,
	 "agent certificate chain (PEM, clientAuth); reloaded on SIGHUP"},
	{"tls_key", CFG_T_STR, "/etc/vigil/agent.key", true, S(tls_key), 0, 0,
	 "agent private key (PEM)"},
	{"ca", CFG_T_STR, "/etc/vigil/ca.crt", true, S(ca), 0, 0,
	 "CA bundle (PEM) the collector certificate must chain to"},
	{"tls_min_version", CFG_T_STR, "1.3", true, S(tls_min_version), 0, 0,
	 "lowest TLS version: 1.3 or 1.2"},
	{"spool_dir", CFG_T_STR, "/var/lib/vigil-agent/spool", false, S(spool_dir), 0, 0,
	 "directory of the disk spool (batches are written here before they are sent)"},
	{"spool_max_bytes", CFG_T_BYTES, "256MiB", false, S(spool_max_bytes), 64 * KiB,
	 1024 * 1024 * MiB, "spool size; when full the oldest batches are dropped and reported"},
	{"spool_fsync", CFG_T_MS, "1s", false, S(spool_fsync_ms), 0, HOUR_MS,
	 "fsync the spool at most this often; 0 = after every batch"},
	{"batch_max_events", CFG_T_INT, "1000", true, S(batch_max_events), 1, 100000,
	 "most events in one batch"},
	{"batch_delay", CFG_T_MS, "100ms", true, S(batch_delay_ms), 1, 60000,
	 "longest time an event waits for its batch to fill"},
	{"max_inflight_batches", CFG_T_INT, "32", true, S(max_inflight_batches), 1, 4096,
	 "batches sent and not yet acknowledged"},
	{"backoff_min", CFG_T_MS, "500ms", true, S(backoff_min_ms), 10, HOUR_MS,
	 "first reconnection delay (jittered, doubled after each failed round)"},
	{"backoff_max", CFG_T_MS, "30s", true, S(backoff_max_ms), 10, HOUR_MS,
	 "longest reconnection delay"},
	{"connect_timeout", CFG_T_MS, "10s", true, S(connect_timeout_ms), 100, HOUR_MS,
	 "time allowed for connect, TLS handshake and Welcome"},
	{"heartbeat_interval", CFG_T_MS, "30s", true, S(heartbeat_interval_ms), 100, HOUR_MS,
	 "heartbeat period when idle (the collector's Welcome may ask for less)"},
	{"scan_interval", CFG_T_MS, "10s", true, S(scan_interval_ms), 100, HOUR_MS,
	 "period of the container scan (/proc, OCI state, API); changes become events"},
	{"snapshot_interval", CFG_T_MS, "10m", true, S(snapshot_interval_ms), 1000, 24 * HOUR_MS,
	 "period of the full inventory snapshot (also sent after each connect)"},
	{"status_interval", CFG_T_MS, "60s", true, S(status_interval_ms), 1000, 24 * HOUR_MS,
	 "period of the agent-status event (spool level, drops, sources)"},
	{"proc_root", CFG_T_STR, "/proc", false, S(proc_root), 0, 0,
	 "where procfs is mounted (the host's)"},
	{"cgroup_root", CFG_T_STR, "/sys/fs/cgroup", false, S(cgroup_root), 0, 0,
	 "where the cgroup file systems are mounted (v2, or v1 controllers and unified/)"},
	{"docker_socket", CFG_T_STR, "/run/docker.sock", true, S(docker_socket), 0, 0,
	 "Docker-Engine-API unix socket (Docker or podman system service); none = off"},
	{"api_timeout", CFG_T_MS, "5s", true, S(api_timeout_ms), 100, HOUR_MS,
	 "time allowed for an API answer; after it the source is reported failing"},
	{"oci_state_dirs", CFG_T_STR,
	 "/run/runc,/run/crun,/run/docker/runtime-runc/moby,/run/containerd/runc/k8s.io", true,
	 S(oci_state_dirs), 0, 0,
	 "runc/crun state directories (ID/state.json, crun's ID/status), comma-separated"},
	{"containerd_dirs", CFG_T_STR, "/run/containerd/io.containerd.runtime.v2.task", true,
	 S(containerd_dirs), 0, 0, "containerd shim task directories (NAMESPACE/ID/config.json)"},
	{"proc_connector", CFG_T_BOOL, "true", false, S(proc_connector), 0, 0,
	 "listen to the kernel process connector for exec/exit events"},
	{"host_execs", CFG_T_BOOL, "false", true, S(host_execs), 0, 0,
	 "also report execs of processes outside containers"},
	{"string_max_bytes", CFG_T_BYTES, "4KiB", true, S(string_max_bytes), 64, 1 * MiB,
	 "longest string taken from a container (name, label, path, argument)"},
	{"argv_max_bytes", CFG_T_BYTES, "32KiB", true, S(argv_max_bytes), 256, 4 * MiB,
	 "longest command line (all arguments) taken from a process or container"},
	{"labels_max", CFG_T_INT, "128", true, S(labels_max), 0, 100000,
	 "most labels kept per container"},
	{"shutdown_timeout", CFG_T_MS, "5s", false, S(shutdown_timeout_ms), 0, HOUR_MS,
	 "on SIGTERM, time allowed to send and get acknowledged what is spooled"},
	{"image_inventory", CFG_T_BOOL, "true", false, S(image_inventory), 0, 0,
	 "read the package inventory of each image among the running containers and send it "
	 "once"},
	{"image_read_budget", CFG_T_MS, "2s", false, S(image_read_budget_ms), 10, 60000,
	 "time allowed to read one image's inventory (what is read by then is sent, partial)"},
	{"image_file_max_bytes", CFG_T_BYTES, "16MiB", false, S(image_file_max_bytes), 64 * KiB,
	 256 * MiB, "largest dpkg status, status.d, apk database or os-release file read"},
	{"image_rpmdb_max_bytes", CFG_T_BYTES, "32MiB", false, S(image_rpmdb_max_bytes), 64 * KiB,
	 1024 * MiB, "largest rpmdb.sqlite read (it is read into memory)"},
	{"image_packages_max", CFG_T_INT, "20000", false, S(image_packages_max), 1, 20000,
	 "most packages kept per image (the rest are counted as cut)"},
	{"hostname", CFG_T_STR, "", true, S(hostname), 0, 0,
	 "host name to report; empty = the kernel's"},
	{"log_level", CFG_T_STR, "info", true, S(log_level), 0, 0, "error, warn, info or debug"},
	{NULL, 0, NULL, false, 0, 0, 0, NULL},
};

int settings_validate(const settings_t *s, char *err, size_t errlen)
{
	if (!s->collectors[0]) {
		snprintf(err, errlen, "collectors must name at least one host:port");
		return -1;
	}
	if (!s->tls_cert[0] || !s->tls_key[0] || !s->ca[0]) {
		snprintf(err, errlen, "tls_cert, tls_key and ca must be set");
		return -1;
	}
	if (!s->spool_dir[0]) {
		snprintf(err, errlen, "spool_dir must be set");
		return -1;
	}
	if (s->backoff_min_ms > s->backoff_max_ms) {
		snprintf(err, errlen, "backoff_min must not exceed backoff_max");
		return -1;
	}
	if (strcmp(s->tls_min_version, "1.2") != 0 && strcmp(s->tls_min_version, "1.3") != 0) {
		snprintf(err, errlen, "tls_min_version must be 1.2 or 1.3");
		return -1;
	}
	return 0;
}
