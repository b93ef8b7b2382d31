// SPDX-License-Identifier: Apache-2.0
/*
 * The one place that turns frame payloads into protobuf-c messages and
 * back. Everything unpacked here is freed here.
 */
#ifndef VIGIL_WIRE_H
#define VIGIL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/v1/protocol.pb-c.h"

#define WIRE_PROTOCOL_VERSION 1u

/* Unpack one AgentMessage payload. Return NULL if the bytes are not a valid
 * message or carry no known body. Caller owns the result: wire_agent_free. */
Vigil__V1__AgentMessage *wire_agent_unpack(const uint8_t *buf, size_t len);
void wire_agent_free(Vigil__V1__AgentMessage *msg);

/* An arena for unpacking: one allocation per chunk instead of one per
 * field, reused from frame to frame. Not thread-safe; one per thread. */
typedef struct wire_arena wire_arena_t;

wire_arena_t *wire_arena_new(void);
/* Forget everything unpacked into a (keeps the largest chunk). */
void wire_arena_reset(wire_arena_t *a);
void wire_arena_free(wire_arena_t *a);

/* Like wire_agent_unpack, but the message lives in a until the next
 * wire_arena_reset or wire_arena_free; never free it otherwise. Return NULL
 * also when unpacking would take more than budget bytes of memory. */
Vigil__V1__AgentMessage *wire_agent_unpack_in(wire_arena_t *a, const uint8_t *buf, size_t len,
					      size_t budget);
/* True if an unpack into a since its last reset failed for its budget. */
bool wire_arena_over_budget(const wire_arena_t *a);

Vigil__V1__CollectorMessage *wire_collector_unpack(const uint8_t *buf, size_t len);
void wire_collector_free(Vigil__V1__CollectorMessage *msg);

/* Pack msg as one frame (header + payload) into a new malloc'd buffer.
 * Return NULL if it would exceed max_bytes. Caller frees *out with free(). */
uint8_t *wire_frame_collector(const Vigil__V1__CollectorMessage *msg, uint32_t max_bytes,
			      size_t *out_len);
uint8_t *wire_frame_agent(const Vigil__V1__AgentMessage *msg, uint32_t max_bytes, size_t *out_len);

/* From the payload of an AgentMessage carrying a Batch, pack event idx
 * alone as a vigil.v1.Event. Return NULL if there is no such event.
 * Caller frees the result with free(). */
uint8_t *wire_batch_event(const uint8_t *payload, size_t len, uint32_t idx, size_t *out_len);

/* The name of a vigil.v1.Runtime value ("docker", "podman", "containerd",
 * "cri-o", "runc"), or "unknown". */
const char *wire_runtime_name(int runtime);

/* Pack one event. Caller frees the result with free(). */
uint8_t *wire_pack_event(const Vigil__V1__Event *ev, size_t *out_len);

#endif
