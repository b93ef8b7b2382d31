// SPDX-License-Identifier: Apache-2.0
/*
 * Events -> batches. Events are packed (protobuf) as they come and
 * collected into the body of a vigil.v1.Batch; a batch is closed when it
 * holds batch_max_events events, when it would exceed the byte limit, or
 * when its oldest event has waited batch_delay (the caller's timer calls
 * batcher_due). A closed batch goes to the sink (the spool), which
 * assigns its sequence number. batch_frame builds the wire frame of a
 * stored batch at send time; batch_split cuts a stored batch that is above
 * the collector's limits (Welcome) into batches that are not.
 */
#ifndef VIGIL_AGENT_BATCHER_H
#define VIGIL_AGENT_BATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/v1/events.pb-c.h"

typedef struct batcher batcher_t;

/* Receives a closed batch body: the encoded repeated Event fields. */
typedef void (*batcher_sink_cb)(void *arg, const uint8_t *body, size_t len, uint32_t n_events,
				int64_t first_ns, int64_t last_ns);

/* max_bytes bounds a batch body (keep it under the frame limit). */
batcher_t *batcher_new(size_t max_events, size_t max_bytes, batcher_sink_cb sink, void *arg);
void batcher_free(batcher_t *b);
void batcher_set_limits(batcher_t *b, size_t max_events, size_t max_bytes);

/* Add one event (packed here; ev is borrowed). Return 0, or -1 if the
 * event alone is larger than a batch may be (it is dropped and counted). */
int batcher_add(batcher_t *b, const Vigil__V1__Event *ev);

/* Close the current batch if it has events. */
void batcher_flush(batcher_t *b);

/* Monotonic time the oldest waiting event arrived, or 0 if none waits. */
int64_t batcher_oldest_ns(const batcher_t *b);
size_t batcher_pending(const batcher_t *b);
uint64_t batcher_oversized(const batcher_t *b);

/* The frame (4-byte length + AgentMessage{batch{seq, events}}) for a
 * stored batch body. Caller frees. Return NULL on OOM. */
uint8_t *batch_frame(uint64_t seq, const uint8_t *body, size_t len, size_t *out_len);

/* What framing adds to a batch body at most: the AgentMessage and Batch
 * tags and lengths and a seq of up to 10 bytes. */
#define BATCH_FRAME_OVERHEAD 17u

/* The largest batch body whose frame stays within max_frame_bytes (the
 * frame's length field, Welcome.max_frame_bytes). Pure. */
size_t batch_body_max(uint32_t max_frame_bytes);

/* One piece of a batch body: a run of whole events at off. */
typedef struct {
	size_t off, len;
	uint32_t n_events;
} batch_piece_t;

/* Cut a stored batch body into pieces of at most max_events events and
 * max_bytes bytes each, in order, every event in exactly one piece except
 * those that alone are larger than max_bytes: they are left out and
 * counted in *too_large. Pure. Set *out (malloc'd, caller frees; NULL
 * when there is no piece) and return how many pieces; -1 if body is not a
 * run of Event fields, -2 if memory ran out (then nothing is set). */
int batch_split(const uint8_t *body, size_t len, size_t max_events, size_t max_bytes,
		batch_piece_t **out, uint32_t *too_large) __attribute__((warn_unused_result));

#endif
