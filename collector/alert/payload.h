// SPDX-License-Identifier: Apache-2.0
/*
 * What an alert says, in each receiver's format: an OCSF 1.1 Detection
 * Finding (class 2004) as JSON for the webhook, an RFC 5424 message in
 * RFC 5425 framing for syslog. Also the small parsers the senders need:
 * a webhook URL, a syslog host:port, an HTTP status line.
 * Pure code: no I/O. Strings from containers are attacker-controlled; the
 * builders escape them for their format (JSON stays ASCII, a syslog
 * message stays one line).
 */
#ifndef VIGIL_ALERT_PAYLOAD_H
#define VIGIL_ALERT_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

/* One outbox row with its finding, container and agent. Strings are
 * borrowed and may be NULL (unknown). */
typedef struct {
	int64_t outbox_id;
	int64_t finding_id;
	const char *action; /* opened, reopened, resolved, update */
	const char *rule, *key, *kind, *state, *summary;
	int severity;			    /* 1 info .. 5 critical */
	int64_t first_ms, last_ms, time_ms; /* Unix ms; time_ms: of this action */
	int64_t count;
	const char *details_json; /* the finding's details (JSON text) */
	const char *resolved_reason;
	const char *container_id, *container_name, *image, *image_digest;
	const char *labels_json; /* the container's labels (JSON object text) */
	const char *agent, *hostname;
	const char *title, *control, *remediation; /* from the rule catalogue */
} alert_item_t;

/* The OCSF activity of an action: 1 Create, 2 Update, 3 Close. */
int alert_ocsf_activity(const char *action);

/* Build the webhook body of it: one OCSF Detection Finding, compact JSON,
 * ASCII only. Caller frees. NULL when out of memory. */
char *alert_ocsf_json(const alert_item_t *it);

/* Build the syslog frame of it: "LEN SP MSG" (RFC 5425), MSG an RFC 5424
 * message of at most max_msg bytes on one line. Caller frees; *len is the
 * frame's length. NULL when out of memory. */
char *alert_syslog_frame(const alert_item_t *it, size_t max_msg, size_t *len);

/* Copy s into out (capacity cap, NUL-terminated) with every control
 * character, DEL, C1 control, line or paragraph separator, bidirectional
 * control and invalid UTF-8 byte written as a \xNN or \uNNNN escape, and
 * a backslash doubled; when extra is not NULL, its characters are
 * backslash-escaped too. Stops at a whole character or escape.
 * Return the length written. */
size_t alert_escape(const char *s, const char *extra, char *out, size_t cap);

typedef struct {
	char host[256];
	int port;
	char path[1024]; /* with the query; "/" when empty */
} alert_url_t;

/* Parse an https:// URL (host name, IPv4 or [IPv6], optional port, path).
 * Return 0, or -1 if it is not one. */
int alert_url_parse(const char *url, alert_url_t *out);

/* Parse "host:port" or "[v6]:port" into host and port. Return 0 or -1. */
int alert_hostport_parse(const char *s, char *host, size_t hostlen, int *port);

/* Parse the status line at the start of an HTTP response of len bytes.
 * Return 1 with *status set, 0 if more bytes are needed, -1 if the bytes
 * are not an HTTP/1.x status line. */
int alert_http_status(const char *buf, size_t len, int *status);

#endif
