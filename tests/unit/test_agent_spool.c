// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for agent/spool.c and agent/batcher.c: records survive a
 * restart with their sequence numbers, acknowledged ones go, torn or
 * damaged records are skipped and the rest delivered, a full spool drops
 * the oldest batches and counts them; batches frame as valid
 * AgentMessages; a batch above the collector's limits is cut into pieces
 * and replaced by them exactly once, across restarts and a replacement cut
 * short.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cmocka.h>

#include "batcher.h"
#include "frame.h"
#include "log.h"
#include "spool.h"
#include "wire.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_LVL_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/vigil-spool-test-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		char p[600];
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	umount2(dir, MNT_DETACH); /* a test's tmpfs, if it failed before its umount */
	rmdir(dir);
	return 0;
}

static spool_t *open_sp(uint64_t max)
{
	char err[256];
	spool_t *sp = spool_open(dir, max, 1000, err, sizeof(err));
	if (!sp)
		fail_msg("spool_open: %s", err);
	return sp;
}

static uint64_t put(spool_t *sp, int i, size_t len)
{
	uint8_t *buf = malloc(len);
	memset(buf, 'a' + i % 26, len);
	uint64_t seq = spool_append(sp, buf, len, (uint32_t)(i + 1), 1000 + i, 2000 + i);
	free(buf);
	return seq;
}

static void test_append_read_ack_restart(void **state)
{
	(void)state;
	spool_t *sp = open_sp(1 << 20);
	for (int i = 0; i < 10; i++)
		assert_int_equal(put(sp, i, 100), (uint64_t)i + 1);
	spool_rec_t r;
	uint64_t after = 0;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(spool_read_after(sp, after, &r), 1);
		assert_int_equal(r.seq, after + 1);
		assert_int_equal(r.len, 100);
		assert_int_equal(r.n_events, (uint32_t)i + 1);
		assert_int_equal(r.data[0], 'a' + i);
		after = r.seq;
		free(r.data);
	}
	assert_int_equal(spool_read_after(sp, after, &r), 0);
	spool_ack(sp, 4);
	spool_close(sp);
	/* a restart keeps the sequence and what is not acknowledged */
	sp = open_sp(1 << 20);
	spool_stats_t st;
	spool_get_stats(sp, &st);
	assert_int_equal(st.last_seq, 10);
	assert_int_equal(st.acked_seq, 4);
	assert_int_equal(spool_read_after(sp, 4, &r), 1);
	assert_int_equal(r.seq, 5);
	free(r.data);
	assert_int_equal(put(sp, 0, 10), 11);
	/* everything acknowledged: the records go, the numbering stays */
	spool_ack(sp, 11);
	spool_close(sp);
	sp = open_sp(1 << 20);
	assert_int_equal(put(sp, 3, 10), 12);
	/* a collector that has more than us (a wiped spool): number after it;
	 * batch 12, written before it answered, was never sent: it goes out
	 * again as 101 instead of being taken as acknowledged */
	spool_set_committed(sp, 100);
	assert_int_equal(spool_read_after(sp, 100, &r), 1);
	assert_int_equal(r.seq, 101);
	assert_int_equal(r.data[0], 'a' + 3);
	free(r.data);
	assert_int_equal(put(sp, 0, 10), 102);
	/* only the first answer after open renumbers */
	spool_set_committed(sp, 101);
	assert_int_equal(spool_read_after(sp, 101, &r), 1);
	assert_int_equal(r.seq, 102);
	free(r.data);
	assert_int_equal(spool_read_after(sp, 102, &r), 0);
	spool_close(sp);
}

/* A power cut lost batches 4..5 after the collector committed them; the
 * agent restarts at seq 4 and writes 4..6 before it reconnects. The
 * collector says 5: 4 and 5 must be sent again under new numbers, 6 as is. */
static void test_reused_numbers_after_power_cut(void **state)
{
	(void)state;
	spool_t *sp = open_sp(1 << 20);
	for (int i = 0; i < 3; i++)
		assert_int_equal(put(sp, i, 50), (uint64_t)i + 1);
	spool_ack(sp, 3);
	spool_close(sp);
	sp = open_sp(1 << 20);
	for (int i = 10; i < 13; i++)
		assert_int_equal(put(sp, i, 50), (uint64_t)i - 6);
	spool_set_committed(sp, 5);
	spool_rec_t r;
	uint64_t after = 5;
	int want[] = {'a' + 12, 'a' + 10, 'a' + 11}; /* 6 as is, then 4 and 5 renumbered */
	uint64_t want_seq[] = {6, 7, 8};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(spool_read_after(sp, after, &r), 1);
		assert_int_equal(r.seq, want_seq[i]);
		assert_int_equal(r.data[0], want[i]);
		after = r.seq;
		free(r.data);
	}
	assert_int_equal(spool_read_after(sp, after, &r), 0);
	spool_close(sp);
}

static void test_torn_record_is_skipped(void **state)
{
	(void)state;
	spool_t *sp = open_sp(1 << 20);
	for (int i = 0; i < 5; i++)
		put(sp, i, 200);
	spool_close(sp);
	/* damage record 3 (seq 3) in the middle, and tear the file's end */
	DIR *d = opendir(dir);
	struct dirent *de;
	char seg[600] = "";
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "seg-", 4) == 0)
			snprintf(seg, sizeof(seg), "%s/%s", dir, de->d_name);
	closedir(d);
	assert_true(seg[0]);
	int fd = open(seg, O_RDWR);
	size_t rec = SPOOL_HEADER_BYTES + 200;
	assert_int_equal(pwrite(fd, "XXXX", 4, (off_t)(2 * rec + SPOOL_HEADER_BYTES + 50)), 4);
	assert_int_equal(pwrite(fd, "torn", 4, (off_t)(5 * rec)), 4); /* a half record */
	close(fd);
	sp = open_sp(1 << 20);
	spool_stats_t st;
	spool_get_stats(sp, &st);
	assert_int_equal(st.torn_records >= 1, 1);
	uint64_t seen[8], n = 0, after = 0;
	spool_rec_t r;
	while (spool_read_after(sp, after, &r) == 1) {
		seen[n++] = r.seq;
		after = r.seq;
		free(r.data);
	}
	assert_int_equal(n, 4);
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[1], 2);
	assert_int_equal(seen[2], 4);
	assert_int_equal(seen[3], 5);
	/* new records never reuse a sequence number */
	assert_int_equal(put(sp, 0, 10), 6);
	spool_close(sp);
}

static void test_full_spool_drops_oldest_and_counts(void **state)
{
	(void)state;
	spool_t *sp = open_sp(64 * 1024); /* segments of 64 KiB: one at a time */
	for (int i = 0; i < 100; i++)
		assert_true(put(sp, i, 2000) > 0);
	spool_stats_t st;
	spool_get_stats(sp, &st);
	assert_true(st.bytes <= 64 * 1024);
	spool_drops_t d;
	assert_true(spool_take_drops(sp, &d));
	assert_true(d.batches > 0);
	/* every batch is either still stored or counted as dropped */
	uint64_t stored = 0, after = 0;
	spool_rec_t r;
	while (spool_read_after(sp, after, &r) == 1) {
		stored++;
		after = r.seq;
		free(r.data);
	}
	assert_int_equal(stored + d.batches, 100);
	/* batch i carries i + 1 events at times 1000 + i .. 2000 + i */
	assert_int_equal(d.first_ns, 1000);
	assert_int_equal(d.last_ns, 2000 + (int64_t)d.batches - 1);
	assert_int_equal(d.events, d.batches * (d.batches + 1) / 2);
	assert_false(spool_take_drops(sp, &d));
	/* a batch larger than the spool is refused and counted */
	assert_int_equal(put(sp, 0, 100 * 1024), 0);
	assert_true(spool_take_drops(sp, &d));
	assert_int_equal(d.batches, 1);
	spool_close(sp);
}

/* The file system fills before the spool's cap: the oldest batches go,
 * counted, and the newest are kept; the drop counts are in the meta file
 * after a sync. Needs a small tmpfs (root); skipped otherwise. The
 * teardown unmounts it. */
static void test_full_filesystem_drops_oldest(void **state)
{
	(void)state;
	if (mount("tmpfs", dir, "tmpfs", 0, "size=96k") != 0)
		skip();
	spool_t *sp = open_sp(16 << 20); /* segments of 2 MiB: far above the disk */
	uint64_t last = 0;
	for (int i = 0; i < 100; i++) {
		uint64_t seq = put(sp, i, 4000);
		assert_true(seq > 0); /* the newest always gets in */
		last = seq;
	}
	spool_stats_t st;
	spool_get_stats(sp, &st);
	assert_true(st.bytes < 96 * 1024);
	spool_sync(sp);
	char path[300], text[256] = "";
	snprintf(path, sizeof(path), "%s/meta", dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	spool_drops_t d;
	assert_true(spool_take_drops(sp, &d));
	assert_true(d.batches > 0);
	/* the meta file carried the pending drops */
	char expect[64];
	snprintf(expect, sizeof(expect), " %llu ", (unsigned long long)d.batches);
	assert_non_null(strstr(text, expect));
	uint64_t stored = 0, after = 0;
	spool_rec_t r;
	while (spool_read_after(sp, after, &r) == 1) {
		stored++;
		after = r.seq;
		free(r.data);
	}
	assert_int_equal(after, last);
	assert_int_equal(stored + d.batches, 100);
	spool_close(sp);
}

static void test_crc32c(void **state)
{
	(void)state;
	/* the standard check value of CRC-32C */
	assert_int_equal(spool_crc32c(0, "123456789", 9), 0xe3069283u);
}

static uint8_t *g_body;
static size_t g_len;
static uint32_t g_n;

static void sink(void *arg, const uint8_t *body, size_t len, uint32_t n, int64_t f, int64_t l)
{
	(void)arg;
	(void)f;
	(void)l;
	free(g_body);
	g_body = malloc(len);
	memcpy(g_body, body, len);
	g_len = len;
	g_n = n;
}

static void test_batcher_frames_decode(void **state)
{
	(void)state;
	batcher_t *b = batcher_new(3, 1 << 20, sink, NULL);
	char *argv[] = {"sh", "-c", "id"};
	for (int i = 0; i < 3; i++) {
		Vigil__V1__ProcessExec x = VIGIL__V1__PROCESS_EXEC__INIT;
		x.pid = 100 + (uint32_t)i;
		x.argv = argv;
		x.n_argv = 3;
		Vigil__V1__Event e = VIGIL__V1__EVENT__INIT;
		e.time_ns = 5 + i;
		e.kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_PROCESS_EXEC;
		e.body_case = VIGIL__V1__EVENT__BODY_PROCESS_EXEC;
		e.process_exec = &x;
		assert_int_equal(batcher_add(b, &e), 0);
	}
	/* max_events reached: flushed by itself */
	assert_int_equal(g_n, 3);
	assert_int_equal(batcher_pending(b), 0);
	size_t flen;
	uint8_t *frame = batch_frame(300, g_body, g_len, &flen);
	uint32_t plen;
	assert_int_equal(frame_check(frame, flen, FRAME_DEFAULT_MAX_BYTES, &plen), FRAME_OK);
	Vigil__V1__AgentMessage *m = wire_agent_unpack(frame + FRAME_HEADER_BYTES, plen);
	assert_non_null(m);
	assert_int_equal(m->msg_case, VIGIL__V1__AGENT_MESSAGE__MSG_BATCH);
	assert_int_equal(m->batch->seq, 300);
	assert_int_equal(m->batch->n_events, 3);
	assert_int_equal(m->batch->events[2]->process_exec->pid, 102);
	assert_string_equal(m->batch->events[1]->process_exec->argv[2], "id");
	wire_agent_free(m);
	free(frame);
	/* an event larger than a batch may be is refused */
	batcher_set_limits(b, 10, 16);
	Vigil__V1__Event e = VIGIL__V1__EVENT__INIT;
	e.container_id = "0123456789abcdef0123456789abcdef";
	assert_int_equal(batcher_add(b, &e), -1);
	assert_int_equal(batcher_oversized(b), 1);
	batcher_free(b);
	free(g_body);
	g_body = NULL;
}

/* A body of n exec events; event i has an argv of sizes[i] bytes. */
static uint8_t *exec_body(batcher_t *b, const size_t *sizes, int n, size_t *len)
{
	for (int i = 0; i < n; i++) {
		char *arg = malloc(sizes[i] + 1);
		memset(arg, 'x', sizes[i]);
		arg[sizes[i]] = '\0';
		char *argv[] = {arg};
		Vigil__V1__ProcessExec x = VIGIL__V1__PROCESS_EXEC__INIT;
		x.pid = 1000 + (uint32_t)i;
		x.argv = argv;
		x.n_argv = 1;
		Vigil__V1__Event e = VIGIL__V1__EVENT__INIT;
		e.kind = VIGIL__V1__EVENT_KIND__EVENT_KIND_PROCESS_EXEC;
		e.body_case = VIGIL__V1__EVENT__BODY_PROCESS_EXEC;
		e.process_exec = &x;
		assert_int_equal(batcher_add(b, &e), 0);
		free(arg);
	}
	batcher_flush(b);
	assert_int_equal(g_n, (uint32_t)n);
	*len = g_len;
	uint8_t *body = g_body;
	g_body = NULL;
	return body;
}

/* The pids of the events of body[off..off+len), appended to pids. */
static size_t piece_pids(const uint8_t *body, size_t off, size_t len, uint32_t *pids, size_t n)
{
	size_t flen;
	uint8_t *frame = batch_frame(1, body + off, len, &flen);
	Vigil__V1__AgentMessage *m =
		wire_agent_unpack(frame + FRAME_HEADER_BYTES, flen - FRAME_HEADER_BYTES);
	assert_non_null(m);
	for (size_t i = 0; i < m->batch->n_events; i++)
		pids[n++] = m->batch->events[i]->process_exec->pid;
	wire_agent_free(m);
	free(frame);
	return n;
}

static void test_batch_split(void **state)
{
	(void)state;
	batcher_t *b = batcher_new(100, 1 << 20, sink, NULL);
	size_t sizes[] = {10, 20, 10, 5000, 30, 10, 10};
	size_t len;
	uint8_t *body = exec_body(b, sizes, 7, &len);
	batch_piece_t *pc;
	uint32_t too_large;
	/* by events: 3 + 3 + 1, every event once, in order */
	assert_int_equal(batch_split(body, len, 3, 1 << 20, &pc, &too_large), 3);
	assert_int_equal(too_large, 0);
	uint32_t pids[16];
	size_t n = 0;
	size_t total = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pc[i].off, total);
		total += pc[i].len;
		n = piece_pids(body, pc[i].off, pc[i].len, pids, n);
	}
	assert_int_equal(total, len);
	assert_int_equal(pc[0].n_events, 3);
	assert_int_equal(pc[2].n_events, 1);
	assert_int_equal(n, 7);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pids[i], 1000 + i);
	free(pc);
	/* by bytes: the 5000-byte event fits no piece and is left out; a
	 * piece never spans it */
	assert_int_equal(batch_split(body, len, 100, 100, &pc, &too_large), 2);
	assert_int_equal(too_large, 1);
	n = 0;
	for (int i = 0; i < 2; i++) {
		assert_true(pc[i].len <= 100);
		n = piece_pids(body, pc[i].off, pc[i].len, pids, n);
	}
	assert_int_equal(n, 6);
	uint32_t want[] = {1000, 1001, 1002, 1004, 1005, 1006};
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pids[i], want[i]);
	free(pc);
	/* every event too large: no piece */
	pc = (batch_piece_t *)1;
	assert_int_equal(batch_split(body, len, 100, 8, &pc, &too_large), 0);
	assert_null(pc);
	assert_int_equal(too_large, 7);
	/* a body that is not a run of events */
	assert_int_equal(batch_split(body, len - 1, 100, 1 << 20, &pc, &too_large), -1);
	uint8_t junk[] = {0x08, 0x01};
	assert_int_equal(batch_split(junk, sizeof(junk), 100, 1 << 20, &pc, &too_large), -1);
	/* frame limits */
	assert_int_equal(batch_body_max(4u << 20), (4u << 20) - BATCH_FRAME_OVERHEAD);
	assert_int_equal(batch_body_max(10), 0);
	size_t flen;
	uint8_t *frame = batch_frame(UINT64_MAX, body, batch_body_max(4096), &flen);
	assert_true(flen - FRAME_HEADER_BYTES <= 4096);
	free(frame);
	free(body);
	batcher_free(b);
}

/* Record 3 of 1..4 is replaced by two pieces: read order 1, 2, 4, then the
 * pieces 5 and 6; 3 is never read again, after a restart either, and the
 * pieces stay once 3 is acknowledged and forgotten. */
static void test_replace_skips_for_good(void **state)
{
	(void)state;
	spool_t *sp = open_sp(1 << 20);
	for (int i = 0; i < 4; i++)
		assert_int_equal(put(sp, i, 100), (uint64_t)i + 1);
	spool_rec_t r;
	assert_int_equal(spool_read_after(sp, 2, &r), 1);
	assert_int_equal(r.seq, 3);
	spool_piece_t pieces[2] = {{r.data, 60, 2, 1, 2}, {r.data + 60, 40, 1, 1, 2}};
	assert_int_equal(spool_replace(sp, &r, pieces, 2), 0);
	/* once is enough */
	assert_int_equal(spool_replace(sp, &r, pieces, 2), 0);
	free(r.data);
	uint64_t want[] = {1, 2, 4, 5, 6};
	size_t want_len[] = {100, 100, 100, 60, 40};
	for (int round = 0; round < 2; round++) {
		uint64_t after = 0;
		for (int i = 0; i < 5; i++) {
			assert_int_equal(spool_read_after(sp, after, &r), 1);
			assert_int_equal(r.seq, want[i]);
			assert_int_equal(r.len, want_len[i]);
			after = r.seq;
			free(r.data);
		}
		assert_int_equal(spool_read_after(sp, after, &r), 0);
		spool_close(sp);
		sp = open_sp(1 << 20);
	}
	spool_ack(sp, 4);
	spool_close(sp);
	sp = open_sp(1 << 20);
	assert_int_equal(spool_read_after(sp, 4, &r), 1);
	assert_int_equal(r.seq, 5);
	free(r.data);
	spool_stats_t st;
	spool_get_stats(sp, &st);
	assert_int_equal(st.last_seq, 6);
	/* replaced by nothing (every event too large): skipped, and when
	 * the spool is full, its segment goes without counting it as lost */
	assert_int_equal(put(sp, 7, 100), 7);
	assert_int_equal(spool_read_after(sp, 6, &r), 1);
	assert_int_equal(r.seq, 7);
	assert_int_equal(spool_replace(sp, &r, NULL, 0), 0);
	free(r.data);
	assert_int_equal(spool_read_after(sp, 6, &r), 0);
	spool_ack(sp, 6);
	spool_close(sp);
	sp = open_sp(4096);
	assert_int_equal(spool_read_after(sp, 6, &r), 0);
	assert_int_equal(put(sp, 8, 4000), 8);
	spool_drops_t d;
	assert_false(spool_take_drops(sp, &d));
	assert_int_equal(spool_read_after(sp, 6, &r), 1);
	assert_int_equal(r.seq, 8);
	free(r.data);
	spool_close(sp);
}

static void copy_file(const char *from, const char *to)
{
	char buf[8192];
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	assert_non_null(in);
	assert_non_null(out);
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	fclose(out);
}

/* The agent stopped after writing the pieces, before the meta file said
 * they replace record 2: at the next open the pieces are skipped and
 * record 2 is read (and replaced) again, so no event is sent twice. */
static void test_unfinished_replacement(void **state)
{
	(void)state;
	char meta[600], saved[600];
	snprintf(meta, sizeof(meta), "%s/meta", dir);
	snprintf(saved, sizeof(saved), "%s/meta.saved", dir);
	spool_t *sp = open_sp(1 << 20);
	for (int i = 0; i < 3; i++)
		assert_int_equal(put(sp, i, 100), (uint64_t)i + 1);
	spool_sync(sp);
	copy_file(meta, saved);
	spool_rec_t r;
	assert_int_equal(spool_read_after(sp, 1, &r), 1);
	spool_piece_t pieces[2] = {{r.data, 50, 1, 1, 2}, {r.data + 50, 50, 1, 1, 2}};
	assert_int_equal(spool_replace(sp, &r, pieces, 2), 0);
	free(r.data);
	spool_close(sp);
	copy_file(saved, meta);
	unlink(saved);
	sp = open_sp(1 << 20);
	uint64_t after = 0;
	uint64_t want[] = {1, 2, 3};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(spool_read_after(sp, after, &r), 1);
		assert_int_equal(r.seq, want[i]);
		assert_int_equal(r.len, 100);
		after = r.seq;
		if (r.seq == 2) {
			/* replaced again under new numbers */
			spool_piece_t p2[1] = {{r.data, 100, 2, 1, 2}};
			assert_int_equal(spool_replace(sp, &r, p2, 1), 0);
		}
		free(r.data);
	}
	assert_int_equal(spool_read_after(sp, after, &r), 1);
	assert_int_equal(r.seq, 6);
	free(r.data);
	assert_int_equal(spool_read_after(sp, 6, &r), 0);
	spool_close(sp);
	/* and so it stays */
	sp = open_sp(1 << 20);
	assert_int_equal(spool_read_after(sp, 3, &r), 1);
	assert_int_equal(r.seq, 6);
	free(r.data);
	assert_int_equal(spool_read_after(sp, 1, &r), 1);
	assert_int_equal(r.seq, 3);
	free(r.data);
	spool_close(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reused_numbers_after_power_cut, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_append_read_ack_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_record_is_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_spool_drops_oldest_and_counts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_full_filesystem_drops_oldest, setup, teardown),
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_batcher_frames_decode),
		cmocka_unit_test(test_batch_split),
		cmocka_unit_test_setup_teardown(test_replace_skips_for_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unfinished_replacement, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
