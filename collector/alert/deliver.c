// SPDX-License-Identifier: Apache-2.0
/* Delivering one alert: an HTTPS POST to the webhook (a 2xx answer is a
 * delivery; a redirect is never followed), or an RFC 5425 frame on the
 * syslog connection (see alert_int.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert/alert_int.h"
#include "vtime.h"

int deliver_webhook(receiver_t *r, const alert_item_t *it, int64_t deadline_ns, char *err,
		    size_t errlen)
{
	char *body = alert_ocsf_json(it);
	if (!body) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t blen = strlen(body);
	int v6 = strchr(r->url.host, ':') != NULL;
	char host[300], auth[600] = "";
	snprintf(host, sizeof(host), "%s%s%s", v6 ? "[" : "", r->url.host, v6 ? "]" : "");
	if (r->url.port != 443)
		snprintf(host + strlen(host), sizeof(host) - strlen(host), ":%d", r->url.port);
	if (r->token[0])
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", r->token);
	char head[2048];
	int hl = snprintf(head, sizeof(head),
			  "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: vigil-collector/%s\r\n"
			  "Content-Type: application/json\r\nContent-Length: %zu\r\n"
			  "Idempotency-Key: vigil-alert-%" PRId64 "\r\n%sConnection: close\r\n\r\n",
			  r->url.path, host, VIGIL_VERSION, blen, it->outbox_id, auth);
	int rc = -1;
	alert_conn_t *c = NULL;
	if (hl <= 0 || (size_t)hl >= sizeof(head)) {
		snprintf(err, errlen, "request head too long");
		goto out;
	}
	c = alert_conn_open(r->tls, r->url.host, r->url.port, deadline_ns, err, errlen);
	if (!c || alert_conn_write(c, head, (size_t)hl, deadline_ns, err, errlen) != 0 ||
	    alert_conn_write(c, body, blen, deadline_ns, err, errlen) != 0)
		goto out;
	char buf[256];
	size_t have = 0;
	int status = 0, st = 0;
	while (st == 0 && have < sizeof(buf)) {
		ssize_t n = alert_conn_read(c, buf + have, sizeof(buf) - have, deadline_ns, err,
					    errlen);
		if (n <= 0) {
			if (n == 0)
				snprintf(err, errlen, "closed without an answer");
			goto out;
		}
		have += (size_t)n;
		st = alert_http_status(buf, have, &status);
	}
	if (st != 1) {
		snprintf(err, errlen, "answer is not HTTP");
	} else if (status >= 200 && status < 300) {
		rc = 0;
	} else if (status >= 300 && status < 400) {
		snprintf(err, errlen, "answered %d (a redirect: not followed)", status);
	} else {
		snprintf(err, errlen, "answered %d", status);
	}
out:
	alert_conn_close(c);
	free(body);
	return rc;
}

int deliver_syslog(receiver_t *r, const alert_item_t *it, int64_t deadline_ns, char *err,
		   size_t errlen)
{
	size_t len = 0;
	char *frame = alert_syslog_frame(it, ALERT_SYSLOG_MAX_MSG, &len);
	if (!frame) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (r->conn && !alert_conn_alive(r->conn)) {
		alert_conn_close(r->conn);
		r->conn = NULL;
	}
	if (!r->conn &&
	    (r->conn = alert_conn_open(r->tls, r->host, r->port, deadline_ns, err, errlen)))
		r->conn_gen++;
	int rc = -1;
	if (r->conn && alert_conn_write(r->conn, frame, len, deadline_ns, err, errlen) == 0)
		rc = 0;
	if (rc != 0) {
		alert_conn_close(r->conn);
		r->conn = NULL;
	}
	free(frame);
	return rc;
}

int deliver_syslog_confirm(receiver_t *r, char *err, size_t errlen)
{
	if (r->conn && alert_conn_alive(r->conn))
		return 0;
	snprintf(err, errlen, "connection closed by the receiver");
	alert_conn_close(r->conn);
	r->conn = NULL;
	return -1;
}
