// SPDX-License-Identifier: Apache-2.0
/*
 * What every worker thread of a load-generator run shares: the parameters
 * (read-only once the threads start) and the per-thread counters that the
 * main thread reads for progress lines and the final report.
 */
#ifndef VIGIL_LG_RUN_H
#define VIGIL_LG_RUN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "lg_cert.h"
#include "lg_hist.h"

typedef struct {
	struct sockaddr_storage addr; /* collector address */
	socklen_t addrlen;
	const char *server_name; /* checked against the collector certificate */
	SSL_CTX *ssl_ctx;
	const char *prefix;    /* agent name prefix */
	const lg_ident_t *ids; /* one per agent */
	uint32_t agents;
	uint32_t threads;
	uint32_t batch_events;
	uint32_t event_bytes;
	uint64_t batches_per_agent; /* 0: until the duration ends */
	double duration_s;	    /* 0: none */
	double rate;		    /* total events/s; 0: flat out */
	uint32_t window;	    /* unacked batches per agent */
	uint64_t bad_every;
	bool idle;
	double timeout_s;
	uint32_t backoff_min_ms; /* reconnection delay: jittered, doubling */
	uint32_t backoff_max_ms;
	double ramp_s;	       /* first connections spread over this */
	uint32_t source_addrs; /* 0: any; else bind to 127.1.0.1 + index % n */
	int64_t start_mono_ns;
} lg_run_t;

/* Counters of one worker; written by it, read by the main thread. */
typedef struct {
	_Atomic uint64_t events_sent; /* unique events, resends not counted */
	_Atomic uint64_t bad_sent;    /* of which with invalid UTF-8 */
	_Atomic uint64_t events_acked;
	_Atomic uint64_t batches_sent;
	_Atomic uint64_t batches_acked;
	_Atomic uint64_t resent_batches;
	_Atomic uint64_t reconnects;
	_Atomic uint64_t errors;	/* Error messages, failed connections, anomalies */
	_Atomic uint32_t connected;	/* agents welcomed and connected now */
	_Atomic uint32_t welcomed;	/* agents welcomed at least once */
	_Atomic uint32_t done;		/* agents finished */
	_Atomic uint32_t failed;	/* agents that gave up */
	_Atomic int64_t first_hello_ns; /* monotonic; 0 = none yet */
	_Atomic int64_t last_ack_ns;	/* monotonic; 0 = none yet */
	lg_hist_t ack_us;		/* owned by the worker until it stops */
	lg_hist_t outage_us;		/* a welcomed connection lost to the next Ack; the same */
} lg_stats_t;

#endif
