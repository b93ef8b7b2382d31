// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's connection to a collector: mutual TLS with host-name
 * verification, Hello -> Welcome{committed_seq} -> Batches read from the
 * spool after committed_seq (cut first where the Welcome's max_batch_events
 * or max_frame_bytes is below them), Acks delete from the spool, heartbeats, a
 * liveness deadline, jittered exponential backoff and failover across the
 * configured collector addresses. One state enum, changed in one place;
 * one function leaves a connection and logs why.
 */
#ifndef VIGIL_AGENT_UPLINK_H
#define VIGIL_AGENT_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "hostinfo.h"
#include "settings.h"
#include "spool.h"
#include "tls.h"

typedef struct uplink uplink_t;

typedef enum {
	UPLINK_ST_WAIT = 0,   /* not connected; a timer is armed for the next attempt */
	UPLINK_ST_CONNECTING, /* TCP connect and TLS handshake */
	UPLINK_ST_HELLO,      /* Hello sent, waiting for Welcome */
	UPLINK_ST_READY,      /* sending batches, receiving Acks */
	UPLINK_ST_STOPPED,
} uplink_state_t;

typedef struct {
	/* Welcome arrived: the collector has everything up to committed, and
	 * the inventories of known (n_known of the Hello's image ids;
	 * borrowed for the call). */
	void (*on_ready)(void *arg, uint64_t committed, char *const *known, size_t n_known);
	/* A Hello is about to be sent: set *ids to the image ids to list
	 * (borrowed while the Hello is packed) and return how many. May be
	 * NULL. */
	size_t (*hello_images)(void *arg, char ***ids);
} uplink_cbs_t;

/* s, sp and host are borrowed and must outlive the uplink. ctx: a client
 * TLS context (one reference is taken). */
uplink_t *uplink_new(struct event_base *base, const settings_t *s, spool_t *sp,
		     const hostinfo_t *host, SSL_CTX *ctx, const uplink_cbs_t *cbs, void *arg);
void uplink_free(uplink_t *u);

/* Start connecting. */
void uplink_start(uplink_t *u);
/* New batches are in the spool: send them if the window allows. */
void uplink_kick(uplink_t *u);
/* Use ctx for the next connections (SIGHUP). */
void uplink_set_tls(uplink_t *u, SSL_CTX *ctx);
/* Close the connection (sending nothing more) and stay down. */
void uplink_stop(uplink_t *u);

uplink_state_t uplink_state(const uplink_t *u);
const char *uplink_state_str(uplink_state_t st);
/* True when connected and every spooled batch is acknowledged. */
bool uplink_all_acked(const uplink_t *u);
uint64_t uplink_reconnects(const uplink_t *u);

/* Lower a batch's limits (events, body bytes) to what the collector takes
 * (its last Welcome; the default frame limit before any). */
void uplink_fit_limits(const uplink_t *u, size_t *max_events, size_t *max_bytes);
/* Events dropped since start because a spooled batch had to be cut to the
 * collector's limits and each was larger than any batch may be. */
uint64_t uplink_events_too_large(const uplink_t *u);
/* Events of batches the collector refused for good (ERROR_CODE_BATCH_REFUSED),
 * dropped from the spool since start. */
uint64_t uplink_events_refused(const uplink_t *u);

/* The end of validity (Unix ns) of the certificate the next connection
 * presents, or 0; when it was last renewed over the uplink (0: not since
 * start). Renewal: at two thirds of the certificate's lifetime the uplink
 * sends a RenewRequest (a CSR of the key in use) once per connection,
 * writes the renewed chain over tls_cert and reconnects with it once the
 * batches in flight are acknowledged; a refusal is retried later with a
 * backoff. */
int64_t uplink_cert_not_after_ns(const uplink_t *u);
int64_t uplink_renewed_ns(const uplink_t *u);

/* Split "host:port" or "[v6]:port" into host and port. Pure.
 * Return 0, or -1 if it does not parse. */
int uplink_parse_address(const char *s, char *host, size_t hostlen, char *port, size_t portlen);

#endif
