// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: a stream from an agent. frame_check on arbitrary
 * bytes; a whole frame's payload goes through wire_agent_unpack (and
 * wire_collector_unpack), and whatever unpacks must pack again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "frame.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t n = 0;
	frame_status_t st = frame_check(data, size, FRAME_DEFAULT_MAX_BYTES, &n);
	if (size >= FRAME_HEADER_BYTES && st == FRAME_NEED_MORE &&
	    (n == 0 || n > FRAME_DEFAULT_MAX_BYTES || n <= size - FRAME_HEADER_BYTES))
		abort();
	if (st != FRAME_OK)
		return 0;
	if (n == 0 || n > FRAME_DEFAULT_MAX_BYTES || n > size - FRAME_HEADER_BYTES)
		abort();
	const uint8_t *payload = data + FRAME_HEADER_BYTES;

	Vigil__V1__AgentMessage *m = wire_agent_unpack(payload, n);
	if (m) {
		size_t len = 0;
		uint8_t *again = wire_frame_agent(m, UINT32_MAX, &len);
		if (!again)
			abort();
		uint32_t n2 = 0;
		if (frame_check(again, len, UINT32_MAX, &n2) != FRAME_OK ||
		    n2 != len - FRAME_HEADER_BYTES)
			abort();
		/* Not required to succeed: protobuf-c accepts a field number 0
		 * spelled as a two-byte varint (0x80 0x00), keeps it as an
		 * unknown field and repacks it as 0x00, which it then refuses. */
		Vigil__V1__AgentMessage *m2 = wire_agent_unpack(again + FRAME_HEADER_BYTES, n2);
		if (m2 && m2->msg_case != m->msg_case)
			abort();
		wire_agent_free(m2);
		free(again);
	}
	wire_agent_free(m);

	wire_collector_free(wire_collector_unpack(payload, n));
	return 0;
}
