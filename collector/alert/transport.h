// SPDX-License-Identifier: Apache-2.0
/*
 * The senders' connections to receivers: TCP plus TLS with the receiver's
 * certificate verified against a configured CA and the host name (or IP
 * address) the receiver was configured with. Blocking calls with a
 * deadline, made on a sender thread only; the only alert file that touches
 * OpenSSL's SSL objects.
 */
#ifndef VIGIL_ALERT_TRANSPORT_H
#define VIGIL_ALERT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A client TLS context trusting the CA(s) in one file. */
typedef struct alert_tls alert_tls_t;
/* One verified TLS connection. */
typedef struct alert_conn alert_conn_t;

/* Build a context that trusts ca_file (the system's CAs if empty).
 * Return NULL with err set. Caller frees with alert_tls_free. */
alert_tls_t *alert_tls_new(const char *ca_file, char *err, size_t errlen);
void alert_tls_free(alert_tls_t *t);

/* Connect to host:port and complete a verified TLS handshake before
 * deadline_ns (vtime_mono_ns). Return the connection (caller closes), or
 * NULL with err set (refused, timed out, certificate not verified...). */
alert_conn_t *alert_conn_open(alert_tls_t *t, const char *host, int port, int64_t deadline_ns,
			      char *err, size_t errlen);

/* Write all len bytes before deadline_ns. Return 0, or -1 with err set. */
int alert_conn_write(alert_conn_t *c, const void *buf, size_t len, int64_t deadline_ns, char *err,
		     size_t errlen) __attribute__((warn_unused_result));

/* Read up to cap bytes, waiting until deadline_ns. Return the count, 0 at
 * the end of the stream, or -1 with err set (including a timeout). */
ssize_t alert_conn_read(alert_conn_t *c, void *buf, size_t cap, int64_t deadline_ns, char *err,
			size_t errlen);

/* Whether the peer has neither closed nor reset the connection (it sends
 * nothing on a syslog connection, so anything readable means it is gone). */
int alert_conn_alive(alert_conn_t *c);

/* Close (with a TLS close_notify when the connection is healthy) and free;
 * NULL is fine. */
void alert_conn_close(alert_conn_t *c);

#endif
