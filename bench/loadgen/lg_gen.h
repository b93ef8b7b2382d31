// SPDX-License-Identifier: Apache-2.0
/*
 * Deterministic synthetic events and the frames that carry them. The
 * content of event idx of batch seq of agent a depends only on (a, seq,
 * idx) (and on the flags), except time_ns, which is the generation time.
 * One generator per thread: it holds the scratch space that batches are
 * built in, so building a batch costs no allocation per event.
 */
#ifndef VIGIL_LG_GEN_H
#define VIGIL_LG_GEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint32_t batch_events; /* events per batch */
	uint32_t event_bytes;  /* approximate encoded size of one event */
	uint64_t bad_every;    /* every Nth event has invalid UTF-8; 0 = none */
	uint32_t agents;       /* agents in the run (for the global index) */
	uint32_t max_frame;    /* largest frame to build */
} lg_gen_params_t;

typedef struct lg_gen lg_gen_t;
typedef struct lg_gen_agent lg_gen_agent_t;

/* Build a generator. Return NULL when out of memory. Caller frees with
 * lg_gen_free. */
lg_gen_t *lg_gen_new(const lg_gen_params_t *p);
void lg_gen_free(lg_gen_t *g);

/* Per-agent fixed data (containers and their ids) for agent index.
 * Return NULL when out of memory. Caller frees with lg_gen_agent_free. */
lg_gen_agent_t *lg_gen_agent_new(uint32_t index);
void lg_gen_agent_free(lg_gen_agent_t *a);

/* Build the frame of batch seq of agent a; bno is the agent's batch number
 * in this run counted from 0 (it places the batch's events in the global
 * index used by bad_every). Set *len and *n_bad (events with invalid
 * UTF-8). Return a malloc'd frame owned by the caller, or NULL when out
 * of memory or when it would exceed max_frame. */
uint8_t *lg_gen_batch(lg_gen_t *g, const lg_gen_agent_t *a, uint64_t seq, uint64_t bno, size_t *len,
		      uint32_t *n_bad);

/* Build the Hello frame of agent name. Caller frees the result. */
uint8_t *lg_gen_hello(const char *name, uint32_t index, size_t *len);

/* Build a Heartbeat frame into buf (at least 32 bytes); return its length. */
size_t lg_gen_heartbeat(uint8_t *buf, size_t cap);

#endif
