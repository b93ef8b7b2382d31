// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's bounded disk spool. Every batch is written here before it is
 * sent and deleted once the collector acknowledged it, so nothing is lost
 * while the collector is away (within the spool size).
 *
 * Layout: DIR/seg-NNNNNNNNNNNNNNNNNNNN files of records, DIR/meta (last
 * sequence number, acknowledged sequence, pending drops). A record is a
 * 48-byte header (magic, payload length, seq, event count, first and last
 * event time, the seq of the record it is a piece of, CRC32C of header
 * and payload) and the payload. A record torn by a crash, or damaged,
 * fails its CRC and is skipped; reading goes on at the next valid record.
 * Sequence numbers increase by one per record and survive restarts (the
 * highest of meta and the records, plus one).
 *
 * Replacement: a stored batch above the collector's limits is appended
 * again in pieces under new numbers (spool_replace), and its own number is
 * skipped from then on: the meta file lists the skipped ranges above the
 * acknowledged seq, and it is written once every piece is, so a replacement
 * that an agent crash cut short leaves pieces that are skipped at the next
 * open (their record is replaced again), never both. The collector accepts
 * the gaps this leaves in the numbers.
 *
 * Bounds: the segment files never exceed max_bytes together. When a batch
 * does not fit, the oldest segment is dropped; its unacknowledged batches
 * are counted (batches, events, time range) and reported by the agent as
 * an AGENT_STATUS event. A write that fails (full file system) drops that
 * batch the same way; the agent keeps running.
 *
 * fsync policy: with fsync_ms = 0 every append is fdatasync'ed before it
 * is sent; otherwise spool_sync (called every fsync_ms) syncs what was
 * written since. A power cut loses at most the batches appended in the
 * last fsync_ms that the collector had not yet acknowledged; a crash of
 * the agent alone loses nothing (the data is in the page cache).
 */
#ifndef VIGIL_AGENT_SPOOL_H
#define VIGIL_AGENT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_HEADER_BYTES 48u

typedef struct spool spool_t;

typedef struct {
	uint64_t batches, events;
	int64_t first_ns, last_ns; /* event time range of what was dropped */
} spool_drops_t;

typedef struct {
	uint64_t seq;
	uint32_t n_events;
	int64_t first_ns, last_ns;
	uint8_t *data; /* malloc'd payload; caller frees */
	size_t len;
} spool_rec_t;

typedef struct {
	uint64_t bytes;	   /* size of the segment files */
	uint64_t capacity; /* max_bytes */
	uint64_t last_seq, acked_seq;
	uint64_t segments;
	uint64_t torn_records; /* records skipped for a bad checksum */
	uint64_t write_errors;
	spool_drops_t dropped_total; /* since start */
} spool_stats_t;

/* Open (creating) the spool in dir. Return NULL with err set. */
spool_t *spool_open(const char *dir, uint64_t max_bytes, int64_t fsync_ms, char *err,
		    size_t errlen);
/* Sync and close. NULL is fine. */
void spool_close(spool_t *sp);

/* Append one batch payload of n_events events. Return its seq, or 0 if it
 * could not be stored (counted as a drop). */
uint64_t spool_append(spool_t *sp, const uint8_t *data, size_t len, uint32_t n_events,
		      int64_t first_ns, int64_t last_ns);

/* Read the first stored record with seq > after that is not skipped.
 * Return 1 and fill out, 0 if there is none, -1 on an I/O error. */
int spool_read_after(spool_t *sp, uint64_t after, spool_rec_t *out);

/* One piece of a replaced record: events of its payload (borrowed). */
typedef struct {
	const uint8_t *data;
	size_t len;
	uint32_t n_events;
	int64_t first_ns, last_ns;
} spool_piece_t;

/* Replace record r (from spool_read_after) by the n pieces: append them
 * as new records (n = 0 is fine: r's events are all gone) and skip r for
 * good, across restarts. Return 0 once done (or if r was replaced
 * already), -1 if not now (a write failed or too many replacements are
 * not yet acknowledged): r stays, any piece written is skipped. */
int spool_replace(spool_t *sp, const spool_rec_t *r, const spool_piece_t *pieces, size_t n)
	__attribute__((warn_unused_result));

/* Everything up to seq is committed by the collector: forget it. */
void spool_ack(spool_t *sp, uint64_t seq);

/* The collector says committed_seq: acknowledge up to it, and if it is
 * above our last seq (a wiped spool), continue numbering after it. On the
 * first call after open, batches appended since open whose numbers the
 * collector already committed (so they were never sent) are appended again
 * under new numbers. */
void spool_set_committed(spool_t *sp, uint64_t committed);

/* fdatasync what was appended since the last sync. */
void spool_sync(spool_t *sp);

/* Move the drops not yet reported into out. Return true if there were. */
bool spool_take_drops(spool_t *sp, spool_drops_t *out);

/* Put drops taken by spool_take_drops back (their report could not be
 * stored). */
void spool_restore_drops(spool_t *sp, const spool_drops_t *d);

void spool_get_stats(const spool_t *sp, spool_stats_t *out);

/* CRC32C (Castagnoli) of n bytes, continuing from crc (start with 0). */
uint32_t spool_crc32c(uint32_t crc, const void *data, size_t n);

#endif
