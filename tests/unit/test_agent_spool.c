/*
 * Unit tests for agent/spool.c and agent/batcher.c: records survive a
 * restart with their sequence numbers, acknowledged ones go, torn or
 * damaged records are skipped and the rest delivered, a full spool drops
 * the oldest batches and counts them; batches frame as valid
 * AgentMessages.
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
