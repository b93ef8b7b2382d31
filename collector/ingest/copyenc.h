// SPDX-License-Identifier: Apache-2.0
/*
 * Encoder for PostgreSQL's binary COPY format: a growable buffer and one
 * function per column type. Pure code: no libpq, no I/O.
 */
#ifndef VIGIL_COPYENC_H
#define VIGIL_COPYENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool oom; /* an allocation failed; the content is incomplete */
} copybuf_t;

void copybuf_init(copybuf_t *b);
void copybuf_free(copybuf_t *b);
void copybuf_reset(copybuf_t *b);
void copybuf_append(copybuf_t *b, const void *p, size_t n);
/* Make room for n more bytes now (a hint; failures show up as oom later). */
void copybuf_reserve(copybuf_t *b, size_t n);

/* The file header ("PGCOPY\n\377\r\n\0", flags, extension) and the trailer. */
void copy_header(copybuf_t *b);
void copy_trailer(copybuf_t *b);

/* Start a row of nfields columns; then one call per column, in order. */
void copy_tuple(copybuf_t *b, uint16_t nfields);
void copy_null(copybuf_t *b);
void copy_bool(copybuf_t *b, bool v);
void copy_int2(copybuf_t *b, int16_t v);
void copy_int4(copybuf_t *b, int32_t v);
void copy_int8(copybuf_t *b, int64_t v);
void copy_text(copybuf_t *b, const char *s, size_t n);
void copy_bytea(copybuf_t *b, const void *p, size_t n);
/* text[] with one dimension; n == 0 writes an empty array. */
void copy_text_array(copybuf_t *b, char *const *items, size_t n);
void copy_jsonb(copybuf_t *b, const char *json, size_t n);
/* timestamptz from Unix nanoseconds (stored with microsecond precision). */
void copy_timestamptz(copybuf_t *b, int64_t unix_ns);

#endif
