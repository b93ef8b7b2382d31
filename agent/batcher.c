// SPDX-License-Identifier: Apache-2.0
/* Events -> batches (see batcher.h). */
#include "batcher.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "vtime.h"

/* Field 2 of Batch (events), wire type 2; field 1 (seq), varint; field 2 of
 * AgentMessage (batch), wire type 2. */
#define TAG_BATCH_EVENTS 0x12
#define TAG_BATCH_SEQ 0x08
#define TAG_AGENT_BATCH 0x12

struct batcher {
	size_t max_events, max_bytes;
	batcher_sink_cb sink;
	void *arg;
	uint8_t *buf;
	size_t len, cap;
	uint32_t n;
	int64_t first_ns, last_ns; /* event times */
	int64_t oldest_mono;
	uint64_t oversized;
};

static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

batcher_t *batcher_new(size_t max_events, size_t max_bytes, batcher_sink_cb sink, void *arg)
{
	batcher_t *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->max_events = max_events;
	b->max_bytes = max_bytes;
	b->sink = sink;
	b->arg = arg;
	return b;
}

void batcher_free(batcher_t *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b);
}

void batcher_set_limits(batcher_t *b, size_t max_events, size_t max_bytes)
{
	b->max_events = max_events;
	b->max_bytes = max_bytes;
}

void batcher_flush(batcher_t *b)
{
	if (!b->n)
		return;
	b->sink(b->arg, b->buf, b->len, b->n, b->first_ns, b->last_ns);
	b->len = 0;
	b->n = 0;
	b->oldest_mono = 0;
	/* do not keep a large buffer around when idle */
	if (b->cap > 256 * 1024) {
		free(b->buf);
		b->buf = NULL;
		b->cap = 0;
	}
}

int batcher_add(batcher_t *b, const Vigil__V1__Event *ev)
{
	size_t n = vigil__v1__event__get_packed_size(ev);
	size_t need = 1 + varint_len(n) + n;
	if (need > b->max_bytes) {
		b->oversized++;
		log_warn("batcher: an event of %zu bytes is above the batch limit of %zu; dropped",
			 n, b->max_bytes);
		return -1;
	}
	if (b->n && (b->len + need > b->max_bytes || b->n >= b->max_events))
		batcher_flush(b);
	if (b->len + need > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + need)
			cap *= 2;
		uint8_t *nb = realloc(b->buf, cap);
		if (!nb)
			return -1;
		b->buf = nb;
		b->cap = cap;
	}
	uint8_t *p = b->buf + b->len;
	*p++ = TAG_BATCH_EVENTS;
	p += varint_put(p, n);
	vigil__v1__event__pack(ev, p);
	b->len += need;
	if (!b->n) {
		b->first_ns = b->last_ns = ev->time_ns;
		b->oldest_mono = vtime_mono_ns();
	}
	if (ev->time_ns < b->first_ns)
		b->first_ns = ev->time_ns;
	if (ev->time_ns > b->last_ns)
		b->last_ns = ev->time_ns;
	b->n++;
	if (b->n >= b->max_events)
		batcher_flush(b);
	return 0;
}

int64_t batcher_oldest_ns(const batcher_t *b)
{
	return b->n ? b->oldest_mono : 0;
}

size_t batcher_pending(const batcher_t *b)
{
	return b->n;
}

uint64_t batcher_oversized(const batcher_t *b)
{
	return b->oversized;
}

uint8_t *batch_frame(uint64_t seq, const uint8_t *body, size_t len, size_t *out_len)
{
	size_t batch_len = 1 + varint_len(seq) + len;
	size_t msg_len = 1 + varint_len(batch_len) + batch_len;
	if (msg_len > UINT32_MAX)
		return NULL;
	uint8_t *out = malloc(FRAME_HEADER_BYTES + msg_len);
	if (!out)
		return NULL;
	frame_put_header(out, (uint32_t)msg_len);
	uint8_t *p = out + FRAME_HEADER_BYTES;
	*p++ = TAG_AGENT_BATCH;
	p += varint_put(p, batch_len);
	*p++ = TAG_BATCH_SEQ;
	p += varint_put(p, seq);
	if (len)
		memcpy(p, body, len);
	*out_len = FRAME_HEADER_BYTES + msg_len;
	return out;
}

size_t batch_body_max(uint32_t max_frame_bytes)
{
	return max_frame_bytes > BATCH_FRAME_OVERHEAD ? max_frame_bytes - BATCH_FRAME_OVERHEAD : 0;
}

/* Read the varint at *off (below len). Return 0, or -1 if it is cut or too
 * long. */
static int varint_get(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *off < len; shift += 7) {
		uint8_t c = p[(*off)++];
		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return 0;
	}
	return -1;
}

int batch_split(const uint8_t *body, size_t len, size_t max_events, size_t max_bytes,
		batch_piece_t **out, uint32_t *too_large)
{
	batch_piece_t *pc = NULL;
	size_t n = 0, cap = 0;
	uint32_t dropped = 0;
	bool open = false; /* pc[n - 1] takes more events */
	size_t off = 0;
	while (off < len) {
		size_t start = off;
		uint64_t ev_len;
		if (body[off++] != TAG_BATCH_EVENTS || varint_get(body, len, &off, &ev_len) != 0 ||
		    ev_len > len - off)
			goto bad;
		off += (size_t)ev_len;
		size_t field = off - start;
		if (field > max_bytes) {
			dropped++;
			open = false; /* a piece is one run of the body */
			continue;
		}
		batch_piece_t *last = n ? &pc[n - 1] : NULL;
		if (open && last->n_events < max_events && last->len + field <= max_bytes) {
			last->len += field;
			last->n_events++;
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			batch_piece_t *np = realloc(pc, ncap * sizeof(*np));
			if (!np) {
				free(pc);
				return -2;
			}
			pc = np;
			cap = ncap;
		}
		pc[n++] = (batch_piece_t){start, field, 1};
		open = true;
	}
	if (n > (size_t)INT32_MAX)
		goto bad;
	*out = pc;
	*too_large = dropped;
	return (int)n;
bad:
	free(pc);
	return -1;
}
