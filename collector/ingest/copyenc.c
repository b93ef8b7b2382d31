// SPDX-License-Identifier: Apache-2.0
/* Binary COPY encoder (see copyenc.h). */
#include "ingest/copyenc.h"

#include <stdlib.h>
#include <string.h>

#define PG_TEXT_OID 25
/* Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch. */
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)

void copybuf_init(copybuf_t *b)
{
	memset(b, 0, sizeof(*b));
}

void copybuf_free(copybuf_t *b)
{
	free(b->data);
	copybuf_init(b);
}

void copybuf_reset(copybuf_t *b)
{
	b->len = 0;
	b->oom = false;
}

static bool reserve(copybuf_t *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->cap - b->len >= n)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	uint8_t *d = realloc(b->data, cap);
	if (!d) {
		b->oom = true;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

void copybuf_reserve(copybuf_t *b, size_t n)
{
	(void)reserve(b, n);
}

void copybuf_append(copybuf_t *b, const void *p, size_t n)
{
	if (n == 0 || !reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void put_u16(copybuf_t *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	copybuf_append(b, x, 2);
}

static void put_u32(copybuf_t *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	copybuf_append(b, x, 4);
}

static void put_u64(copybuf_t *b, uint64_t v)
{
	put_u32(b, (uint32_t)(v >> 32));
	put_u32(b, (uint32_t)v);
}

void copy_header(copybuf_t *b)
{
	static const uint8_t sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
	copybuf_append(b, sig, sizeof(sig));
	put_u32(b, 0); /* flags */
	put_u32(b, 0); /* header extension length */
}

void copy_trailer(copybuf_t *b)
{
	put_u16(b, 0xffff);
}

void copy_tuple(copybuf_t *b, uint16_t nfields)
{
	put_u16(b, nfields);
}

void copy_null(copybuf_t *b)
{
	put_u32(b, 0xffffffffu);
}

void copy_bool(copybuf_t *b, bool v)
{
	put_u32(b, 1);
	uint8_t x = v ? 1 : 0;
	copybuf_append(b, &x, 1);
}

void copy_int2(copybuf_t *b, int16_t v)
{
	put_u32(b, 2);
	put_u16(b, (uint16_t)v);
}

void copy_int4(copybuf_t *b, int32_t v)
{
	put_u32(b, 4);
	put_u32(b, (uint32_t)v);
}

void copy_int8(copybuf_t *b, int64_t v)
{
	put_u32(b, 8);
	put_u64(b, (uint64_t)v);
}

void copy_text(copybuf_t *b, const char *s, size_t n)
{
	if (n > INT32_MAX) {
		b->oom = true;
		return;
	}
	put_u32(b, (uint32_t)n);
	copybuf_append(b, s, n);
}

void copy_bytea(copybuf_t *b, const void *p, size_t n)
{
	copy_text(b, p, n);
}

void copy_text_array(copybuf_t *b, char *const *items, size_t n)
{
	size_t body = 12 + (n ? 8 : 0);
	for (size_t i = 0; i < n; i++)
		body += 4 + strlen(items[i]);
	if (body > INT32_MAX || n > INT32_MAX) {
		b->oom = true;
		return;
	}
	put_u32(b, (uint32_t)body);
	put_u32(b, n ? 1 : 0); /* dimensions */
	put_u32(b, 0);	       /* has nulls */
	put_u32(b, PG_TEXT_OID);
	if (n) {
		put_u32(b, (uint32_t)n); /* length of dimension 1 */
		put_u32(b, 1);		 /* lower bound */
	}
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(items[i]);
		put_u32(b, (uint32_t)l);
		copybuf_append(b, items[i], l);
	}
}

void copy_jsonb(copybuf_t *b, const char *json, size_t n)
{
	if (n >= INT32_MAX) {
		b->oom = true;
		return;
	}
	put_u32(b, (uint32_t)n + 1);
	uint8_t version = 1;
	copybuf_append(b, &version, 1);
	copybuf_append(b, json, n);
}

void copy_timestamptz(copybuf_t *b, int64_t unix_ns)
{
	int64_t us = unix_ns / 1000;
	put_u32(b, 8);
	put_u64(b, (uint64_t)(us - PG_EPOCH_OFFSET_US));
}
