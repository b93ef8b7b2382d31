// SPDX-License-Identifier: Apache-2.0
/* Protobuf unpack/pack with framing (see wire.h). */
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>

#include "frame.h"

Vigil__V1__AgentMessage *wire_agent_unpack(const uint8_t *buf, size_t len)
{
	Vigil__V1__AgentMessage *m = vigil__v1__agent_message__unpack(NULL, len, buf);
	if (m && m->msg_case == VIGIL__V1__AGENT_MESSAGE__MSG__NOT_SET) {
		vigil__v1__agent_message__free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}

void wire_agent_free(Vigil__V1__AgentMessage *msg)
{
	if (msg)
		vigil__v1__agent_message__free_unpacked(msg, NULL);
}

#define ARENA_MIN_CHUNK (64 * 1024)
#define ARENA_ALIGN 16

typedef struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	_Alignas(ARENA_ALIGN) uint8_t data[];
} arena_chunk_t;

#define ARENA_KEEP_MAX (1024 * 1024) /* a larger chunk is not kept for reuse */

struct wire_arena {
	arena_chunk_t *chunks; /* current first */
	size_t used;	       /* bytes handed out since the last reset */
	size_t budget;	       /* most bytes to hand out before a reset */
	bool over;	       /* an allocation was refused for the budget */
};

wire_arena_t *wire_arena_new(void)
{
	return calloc(1, sizeof(wire_arena_t));
}

static void *arena_alloc(void *ad, size_t n)
{
	wire_arena_t *a = ad;
	n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (n > a->budget - a->used) {
		a->over = true;
		return NULL; /* protobuf-c then fails the unpack */
	}
	a->used += n;
	arena_chunk_t *c = a->chunks;
	if (!c || c->cap - c->used < n) {
		/* grow geometrically so a big message takes few chunks */
		size_t cap = c && c->cap < SIZE_MAX / 4 ? c->cap * 2 : ARENA_MIN_CHUNK;
		while (cap < n)
			cap *= 2;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = a->chunks;
		a->chunks = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

static void arena_nofree(void *ad, void *p)
{
	(void)ad;
	(void)p;
}

void wire_arena_reset(wire_arena_t *a)
{
	if (!a)
		return;
	a->used = 0;
	a->over = false;
	/* keep the largest chunk of a reasonable size, free the rest */
	arena_chunk_t *keep = NULL;
	for (arena_chunk_t *c = a->chunks; c; c = c->next)
		if (c->cap <= ARENA_KEEP_MAX && (!keep || c->cap > keep->cap))
			keep = c;
	for (arena_chunk_t *c = a->chunks, *next; c; c = next) {
		next = c->next;
		if (c != keep)
			free(c);
	}
	if (keep) {
		keep->next = NULL;
		keep->used = 0;
	}
	a->chunks = keep;
}

void wire_arena_free(wire_arena_t *a)
{
	if (!a)
		return;
	for (arena_chunk_t *c = a->chunks, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

Vigil__V1__AgentMessage *wire_agent_unpack_in(wire_arena_t *a, const uint8_t *buf, size_t len,
					      size_t budget)
{
	a->budget = a->used + budget;
	ProtobufCAllocator al = {arena_alloc, arena_nofree, a};
	Vigil__V1__AgentMessage *m = vigil__v1__agent_message__unpack(&al, len, buf);
	if (m && m->msg_case == VIGIL__V1__AGENT_MESSAGE__MSG__NOT_SET)
		return NULL;
	return m;
}

bool wire_arena_over_budget(const wire_arena_t *a)
{
	return a->over;
}

Vigil__V1__CollectorMessage *wire_collector_unpack(const uint8_t *buf, size_t len)
{
	Vigil__V1__CollectorMessage *m = vigil__v1__collector_message__unpack(NULL, len, buf);
	if (m && m->msg_case == VIGIL__V1__COLLECTOR_MESSAGE__MSG__NOT_SET) {
		vigil__v1__collector_message__free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}

void wire_collector_free(Vigil__V1__CollectorMessage *msg)
{
	if (msg)
		vigil__v1__collector_message__free_unpacked(msg, NULL);
}

static uint8_t *frame_alloc(size_t payload, uint32_t max_bytes, size_t *out_len)
{
	if (payload == 0 || payload > max_bytes)
		return NULL;
	uint8_t *out = malloc(FRAME_HEADER_BYTES + payload);
	if (!out)
		return NULL;
	frame_put_header(out, (uint32_t)payload);
	*out_len = FRAME_HEADER_BYTES + payload;
	return out;
}

uint8_t *wire_frame_collector(const Vigil__V1__CollectorMessage *msg, uint32_t max_bytes,
			      size_t *out_len)
{
	size_t n = vigil__v1__collector_message__get_packed_size(msg);
	uint8_t *out = frame_alloc(n, max_bytes, out_len);
	if (out)
		vigil__v1__collector_message__pack(msg, out + FRAME_HEADER_BYTES);
	return out;
}

uint8_t *wire_frame_agent(const Vigil__V1__AgentMessage *msg, uint32_t max_bytes, size_t *out_len)
{
	size_t n = vigil__v1__agent_message__get_packed_size(msg);
	uint8_t *out = frame_alloc(n, max_bytes, out_len);
	if (out)
		vigil__v1__agent_message__pack(msg, out + FRAME_HEADER_BYTES);
	return out;
}

uint8_t *wire_pack_event(const Vigil__V1__Event *ev, size_t *out_len)
{
	size_t n = vigil__v1__event__get_packed_size(ev);
	uint8_t *out = malloc(n ? n : 1);
	if (!out)
		return NULL;
	vigil__v1__event__pack(ev, out);
	*out_len = n;
	return out;
}

uint8_t *wire_batch_event(const uint8_t *payload, size_t len, uint32_t idx, size_t *out_len)
{
	Vigil__V1__AgentMessage *m = wire_agent_unpack(payload, len);
	uint8_t *out = NULL;
	if (m && m->msg_case == VIGIL__V1__AGENT_MESSAGE__MSG_BATCH && idx < m->batch->n_events)
		out = wire_pack_event(m->batch->events[idx], out_len);
	wire_agent_free(m);
	return out;
}

const char *wire_runtime_name(int runtime)
{
	switch (runtime) {
	case VIGIL__V1__RUNTIME__RUNTIME_DOCKER:
		return "docker";
	case VIGIL__V1__RUNTIME__RUNTIME_PODMAN:
		return "podman";
	case VIGIL__V1__RUNTIME__RUNTIME_CONTAINERD:
		return "containerd";
	case VIGIL__V1__RUNTIME__RUNTIME_CRIO:
		return "cri-o";
	case VIGIL__V1__RUNTIME__RUNTIME_RUNC:
		return "runc";
	default:
		return "unknown";
	}
}
