// SPDX-License-Identifier: Apache-2.0
/*
 * Enrollment of the simulated agents with a join token, the way
 * `vigil-agent enroll` does it: for each agent an EC P-256 key made here, a
 * CSR of it, and one EnrollRequest over a TLS connection without a client
 * certificate (the collector's verified first); the EnrollResponse's
 * certificate, chain and assigned name become the agent's identity.
 *
 * Also the handshake storm: many full mutual-TLS handshakes, each followed
 * by Hello/Welcome (or not) and a close.
 *
 * Both run on their own blocking threads (concurrency connections at a
 * time), before and instead of the event loops of a normal run.
 */
#ifndef VIGIL_LG_ENROLL_H
#define VIGIL_LG_ENROLL_H

#include <stdbool.h>
#include <stdint.h>

#include "lg_cert.h"
#include "lg_hist.h"
#include "lg_run.h"

typedef struct {
	const char *token;
	const char *out_dir; /* NULL, or write NAME.key (0600) and NAME.crt here */
	uint32_t concurrency;
	bool force;	/* EnrollRequest.force */
	int timeout_ms; /* each step of one attempt */
} lg_enroll_opts_t;

typedef struct {
	uint32_t enrolled, failed;
	uint64_t retries; /* attempts again after a connection failure */
	uint32_t renamed; /* agents the collector gave another name than asked */
	double elapsed_s; /* first key made to last certificate kept (and written) */
	lg_hist_t lat;	  /* per agent: key generation to certificate kept */
} lg_enroll_result_t;

/* Enroll run->agents agents named run->prefix + index as 5 digits (the
 * host names sent) with machine ids unique to this run; fill
 * out[0..agents). Agents that fail keep an empty identity. Return 0 when
 * every agent was enrolled, else -1 (the first failures are logged). */
int lg_enroll_all(const lg_run_t *run, const lg_enroll_opts_t *o, lg_ident_t *out,
		  lg_enroll_result_t *res);

typedef struct {
	uint64_t handshakes;
	uint32_t concurrency;
	bool no_hello; /* close right after the handshake */
	int timeout_ms;
} lg_storm_opts_t;

typedef struct {
	uint64_t ok, failed;
	double elapsed_s;
	lg_hist_t lat; /* connect to Welcome (no_hello: to the collector's close) */
} lg_storm_result_t;

/* Make o->handshakes connections with run->ids (client i of the storm uses
 * identities i, i + concurrency, ... in turn, so no two live connections
 * share a name when agents >= concurrency). Return 0 if all succeeded. */
int lg_storm_run(const lg_run_t *run, const lg_storm_opts_t *o, lg_storm_result_t *res);

#endif
