// SPDX-License-Identifier: Apache-2.0
/*
 * A blocking TLS connection to the collector, one per calling thread, for
 * the load generator's short exchanges (enrollment, handshake storms):
 * connect, handshake, send one frame, read one CollectorMessage, close.
 * Every step is bounded by the timeout given at open.
 */
#ifndef VIGIL_LG_BCONN_H
#define VIGIL_LG_BCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "lg_cert.h"
#include "lg_run.h"
#include "wire.h"

typedef struct {
	int fd;
	SSL *ssl;
} lg_bconn_t;

/* Connect to run's collector as agent index (its source address with
 * --source-addrs), presenting id (NULL: no client certificate), and finish
 * the TLS handshake with the collector certificate verified. Return 0, or
 * -1 with err set (c is then closed). */
int lg_bconn_open(lg_bconn_t *c, const lg_run_t *run, uint32_t index, const lg_ident_t *id,
		  int timeout_ms, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Send len bytes (a whole frame). Return 0, or -1 with err set. */
int lg_bconn_send(lg_bconn_t *c, const uint8_t *buf, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Read one frame; return its message (free with wire_collector_free), or
 * NULL with err set. */
Vigil__V1__CollectorMessage *lg_bconn_recv(lg_bconn_t *c, char *err, size_t errlen);
/* Send close_notify and wait (up to the timeout) for the collector to
 * close its side. Return 0, or -1 with err set. */
int lg_bconn_shutdown_wait(lg_bconn_t *c, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Close (close_notify first if graceful). Safe to call twice. */
void lg_bconn_close(lg_bconn_t *c, bool graceful);

#endif
