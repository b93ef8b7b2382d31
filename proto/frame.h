// SPDX-License-Identifier: Apache-2.0
/*
 * Frame codec for the agent <-> collector stream: a 4-byte big-endian
 * length N, then N bytes of one protobuf message. Pure functions over
 * buffers; no I/O, so tests and fuzzers call them directly.
 */
#ifndef VIGIL_FRAME_H
#define VIGIL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_BYTES 4u
#define FRAME_DEFAULT_MAX_BYTES (4u * 1024u * 1024u)

typedef enum {
	FRAME_OK = 0,	 /* a whole frame is present */
	FRAME_NEED_MORE, /* not enough bytes yet */
	FRAME_EMPTY,	 /* length 0: protocol error */
	FRAME_TOO_LARGE, /* length above the maximum: protocol error */
} frame_status_t;

/* Inspect the start of a stream of len bytes. Set *payload_len to the
 * announced length whenever the header is complete (also for errors). */
frame_status_t frame_check(const uint8_t *buf, size_t len, uint32_t max_bytes,
			   uint32_t *payload_len);

/* Write the 4-byte header announcing payload_len bytes. */
void frame_put_header(uint8_t out[FRAME_HEADER_BYTES], uint32_t payload_len);

/* Return a fixed name for st. */
const char *frame_status_str(frame_status_t st);

#endif
