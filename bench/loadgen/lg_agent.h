// SPDX-License-Identifier: Apache-2.0
/*
 * One simulated agent: a mutual-TLS connection to the collector with the
 * agent's own certificate, Hello/Welcome, a window of unacknowledged
 * batches kept as encoded frames, and reconnection with jittered
 * exponential backoff that resumes from the collector's committed_seq,
 * resending unacknowledged batches byte for byte.
 */
#ifndef VIGIL_LG_AGENT_H
#define VIGIL_LG_AGENT_H

#include <stdint.h>

#include "lg_worker.h"

typedef struct lg_agent lg_agent_t;

/* Build agent index, run by worker w (which must outlive it). Return NULL
 * when out of memory. Caller frees with lg_agent_free. */
lg_agent_t *lg_agent_new(lg_worker_t *w, uint32_t index);
/* Connect after delay_us. */
void lg_agent_start(lg_agent_t *a, int64_t delay_us);
/* The run's --duration is over: build no more batches; finish once all
 * sent ones are acknowledged (at once with --idle). */
void lg_agent_end_generation(lg_agent_t *a);
/* Close any connection and free a. Accepts NULL. */
void lg_agent_free(lg_agent_t *a);

#endif
