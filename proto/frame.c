// SPDX-License-Identifier: Apache-2.0
/* Frame codec: length prefix and limits (see frame.h). */
#include "frame.h"

frame_status_t frame_check(const uint8_t *buf, size_t len, uint32_t max_bytes,
			   uint32_t *payload_len)
{
	if (len < FRAME_HEADER_BYTES)
		return FRAME_NEED_MORE;
	uint32_t n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 |
		     (uint32_t)buf[3];
	*payload_len = n;
	if (n == 0)
		return FRAME_EMPTY;
	if (n > max_bytes)
		return FRAME_TOO_LARGE;
	if (len - FRAME_HEADER_BYTES < n)
		return FRAME_NEED_MORE;
	return FRAME_OK;
}

void frame_put_header(uint8_t out[FRAME_HEADER_BYTES], uint32_t payload_len)
{
	out[0] = (uint8_t)(payload_len >> 24);
	out[1] = (uint8_t)(payload_len >> 16);
	out[2] = (uint8_t)(payload_len >> 8);
	out[3] = (uint8_t)payload_len;
}

const char *frame_status_str(frame_status_t st)
{
	switch (st) {
	case FRAME_OK:
		return "ok";
	case FRAME_NEED_MORE:
		return "incomplete";
	case FRAME_EMPTY:
		return "empty frame";
	case FRAME_TOO_LARGE:
		return "frame too large";
	}
	return "unknown";
}
