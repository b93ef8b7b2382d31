// SPDX-License-Identifier: Apache-2.0
/*
 * Turns one agent Batch into rows of the events table (binary COPY tuples)
 * and the container state changes it implies. Pure code: the caller owns
 * the unpacked batch and the result; nothing here touches the network or
 * the database.
 */
#ifndef VIGIL_ROWS_H
#define VIGIL_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ingest/copyenc.h"
#include "rules/rules.h"
#include "vigil/v1/protocol.pb-c.h"

/* Longest container id taken (a runtime's ids are 64 hex digits): an event
 * naming a longer one is refused, like one whose id is not UTF-8. */
#define ROWS_ID_MAX 256

/* An ImageInventory keeps at most this many packages (the rest count as
 * cut); each of its strings is at most ROWS_IMAGE_FIELD_MAX bytes of UTF-8,
 * or the event is refused. */
#define ROWS_IMAGE_PACKAGES_MAX 20000
#define ROWS_IMAGE_FIELD_MAX 256

/* Number of columns of the events table, in schema order. */
#define ROWS_EVENT_COLUMNS 16

typedef struct {
	int64_t lo_ns; /* event times outside [lo_ns, hi_ns) are replaced by */
	int64_t hi_ns; /* the receive time (no partition would take them)    */
} rows_range_t;

typedef struct {
	size_t end;   /* row i spans [row[i-1].end (or 0), row[i].end) */
	uint32_t idx; /* position of its event in the batch */
} rows_row_t;

typedef struct {
	uint32_t idx;	    /* position of the event in the batch */
	const char *reason; /* static text */
} rows_reject_t;

typedef struct {
	copybuf_t rows; /* COPY tuples without header or trailer */
	rows_row_t *row;
	size_t n_rows;
	rows_reject_t *reject; /* events that cannot become a row at all */
	size_t n_rejects;
	json_t *state_ops; /* NULL, or ops for vigil_apply_state() and findings */
	json_t *images;	   /* NULL, or the image inventories for vigil_apply_images() */
	size_t clamped;	   /* events whose time was replaced */
} rows_batch_t;

/* Encode every event of batch b sent by agent_id and received at recv_ns,
 * and judge each with the rules of ctx (NULL: no rules) into the state ops.
 * Return 0, or -1 when out of memory (out is then freed).
 * Caller frees out with rows_batch_free. */
int rows_encode_batch(const Vigil__V1__Batch *b, int32_t agent_id, int64_t recv_ns,
		      rows_range_t range, const rules_ctx_t *ctx, rows_batch_t *out)
	__attribute__((warn_unused_result));
/* Like rows_encode_batch, with marks[i] (ROWS_MARK_*; marks may be NULL)
 * saying what the collector found in event i before encoding it. */
#define ROWS_MARK_NUL 1u /* a string holds a NUL byte: the event is refused */
#define ROWS_MARK_CUT 2u /* a field was capped: its details say "truncated" */
int rows_encode_marked(const Vigil__V1__Batch *b, int32_t agent_id, int64_t recv_ns,
		       rows_range_t range, const rules_ctx_t *ctx, const uint8_t *marks,
		       rows_batch_t *out) __attribute__((warn_unused_result));
void rows_batch_free(rows_batch_t *out);

/* The container as a JSON object (the shape vigil_apply_state takes).
 * Caller owns the result (json_decref). */
json_t *rows_container_json(const Vigil__V1__Container *c);

/* The 64-bit index key of a container id: the first 8 bytes of MD5(id),
 * big-endian, as vigil_container_key() computes in SQL. */
int64_t rows_container_key(const char *id, size_t len);

#endif
