// SPDX-License-Identifier: Apache-2.0
/*
 * One worker thread: an event loop that runs a share of the simulated
 * agents (agent i belongs to worker i % threads), its timers (overall
 * deadline, end of --duration) and its counters.
 */
#ifndef VIGIL_LG_WORKER_H
#define VIGIL_LG_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "lg_gen.h"
#include "lg_run.h"

typedef struct lg_worker lg_worker_t;

/* Build worker id of run (agents id, id + threads, ...). run must outlive
 * it. Return NULL on failure (logged). Caller frees with lg_worker_free. */
lg_worker_t *lg_worker_new(const lg_run_t *run, uint32_t id);
/* Start the thread. Return 0 or -1. */
int lg_worker_start(lg_worker_t *w) __attribute__((warn_unused_result));
/* Ask the worker to stop at once (any thread). */
void lg_worker_stop(lg_worker_t *w);
/* Wait for the thread to end. */
void lg_worker_join(lg_worker_t *w);
/* Whether the worker's loop has ended (any thread). */
bool lg_worker_finished(lg_worker_t *w);
/* Whether the overall deadline ended the worker's loop. */
bool lg_worker_timed_out(lg_worker_t *w);
/* Counters; the histogram may be read only after lg_worker_join. */
lg_stats_t *lg_worker_stats(lg_worker_t *w);
void lg_worker_free(lg_worker_t *w);

/* For the agents of this worker (worker thread only). */
struct event_base *lg_worker_base(lg_worker_t *w);
const lg_run_t *lg_worker_run(lg_worker_t *w);
lg_gen_t *lg_worker_gen(lg_worker_t *w);
/* Record that one more agent has finished (done or failed). */
void lg_worker_agent_done(lg_worker_t *w);

#endif
