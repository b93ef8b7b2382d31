// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the frame codec (proto/frame.c): frame_check on a table of
 * byte streams, and the header writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

#define MAX 16u		   /* a small maximum keeps the boundary cases short */
#define NO_LEN 0xdeadbeefu /* *payload_len must stay untouched */
#define DEF_MAX FRAME_DEFAULT_MAX_BYTES

struct frame_case {
	const char *what;
	uint8_t bytes[32];
	size_t len;
	uint32_t max;
	frame_status_t want;
	uint32_t want_len;
};

static const struct frame_case cases[] = {
	{"no bytes", {0}, 0, MAX, FRAME_NEED_MORE, NO_LEN},
	{"1 header byte", {0}, 1, MAX, FRAME_NEED_MORE, NO_LEN},
	{"2 header bytes", {0, 0}, 2, MAX, FRAME_NEED_MORE, NO_LEN},
	{"3 header bytes", {0, 0, 0}, 3, MAX, FRAME_NEED_MORE, NO_LEN},
	{"header only", {0, 0, 0, 3}, 4, MAX, FRAME_NEED_MORE, 3},
	{"partial payload", {0, 0, 0, 3, 'a', 'b'}, 6, MAX, FRAME_NEED_MORE, 3},
	{"exact frame", {0, 0, 0, 3, 'a', 'b', 'c'}, 7, MAX, FRAME_OK, 3},
	{"frame and the next one", {0, 0, 0, 1, 'a', 0, 0}, 7, MAX, FRAME_OK, 1},
	{"one byte payload", {0, 0, 0, 1, 'x'}, 5, MAX, FRAME_OK, 1},
	{"empty", {0, 0, 0, 0}, 4, MAX, FRAME_EMPTY, 0},
	{"empty with more bytes", {0, 0, 0, 0, 1, 2}, 6, MAX, FRAME_EMPTY, 0},
	{"max, incomplete", {0, 0, 0, MAX}, 4, MAX, FRAME_NEED_MORE, MAX},
	{"max, complete", {0, 0, 0, MAX}, 4 + MAX, MAX, FRAME_OK, MAX},
	{"max + 1", {0, 0, 0, MAX + 1}, 4, MAX, FRAME_TOO_LARGE, MAX + 1},
	{"too large with payload", {0, 0, 0, MAX + 1}, 4 + MAX + 1, MAX, FRAME_TOO_LARGE, MAX + 1},
	{"big-endian order", {0x01, 0x02, 0x03, 0x04}, 4, UINT32_MAX, FRAME_NEED_MORE, 0x01020304u},
	{"all ones", {0xff, 0xff, 0xff, 0xff}, 4, MAX, FRAME_TOO_LARGE, 0xffffffffu},
	{"all ones, no max", {0xff, 0xff, 0xff, 0xff}, 4, UINT32_MAX, FRAME_NEED_MORE, 0xffffffffu},
	{"default max + 1", {0, 0x40, 0, 1}, 4, DEF_MAX, FRAME_TOO_LARGE, DEF_MAX + 1},
	{"default max", {0, 0x40, 0, 0}, 4, DEF_MAX, FRAME_NEED_MORE, DEF_MAX},
	{"max 0 refuses everything", {0, 0, 0, 1, 'a'}, 5, 0, FRAME_TOO_LARGE, 1},
};

static void test_frame_check_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct frame_case *c = &cases[i];
		/* Copy into a buffer of exactly len bytes so ASan catches overreads. */
		uint8_t *buf = malloc(c->len ? c->len : 1);
		assert_non_null(buf);
		memcpy(buf, c->bytes, c->len);
		uint32_t got_len = NO_LEN;
		frame_status_t st = frame_check(buf, c->len, c->max, &got_len);
		if (st != c->want || got_len != c->want_len)
			fail_msg("case '%s': got %s/%u, want %s/%u", c->what, frame_status_str(st),
				 got_len, frame_status_str(c->want), c->want_len);
		free(buf);
	}
}

static void test_frame_default_max(void **state)
{
	(void)state;
	assert_int_equal(FRAME_HEADER_BYTES, 4);
	assert_int_equal(FRAME_DEFAULT_MAX_BYTES, 4 * 1024 * 1024);
}

static void test_frame_put_header(void **state)
{
	(void)state;
	static const struct {
		uint32_t n;
		uint8_t want[4];
	} tab[] = {
		{0, {0, 0, 0, 0}},
		{1, {0, 0, 0, 1}},
		{255, {0, 0, 0, 0xff}},
		{256, {0, 0, 1, 0}},
		{0x01020304u, {1, 2, 3, 4}},
		{FRAME_DEFAULT_MAX_BYTES, {0, 0x40, 0, 0}},
		{0xffffffffu, {0xff, 0xff, 0xff, 0xff}},
	};
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		uint8_t out[FRAME_HEADER_BYTES + 1];
		memset(out, 0xaa, sizeof(out));
		frame_put_header(out, tab[i].n);
		assert_memory_equal(out, tab[i].want, 4);
		assert_int_equal(out[4], 0xaa); /* writes 4 bytes, no more */
	}
}

static void test_frame_round_trip(void **state)
{
	(void)state;
	static const uint32_t lens[] = {1,
					2,
					127,
					128,
					255,
					256,
					65535,
					65536,
					1u << 20,
					FRAME_DEFAULT_MAX_BYTES - 1,
					FRAME_DEFAULT_MAX_BYTES};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t hdr[FRAME_HEADER_BYTES];
		frame_put_header(hdr, lens[i]);
		uint32_t got = 0;
		assert_int_equal(frame_check(hdr, sizeof(hdr), FRAME_DEFAULT_MAX_BYTES, &got),
				 FRAME_NEED_MORE);
		assert_int_equal(got, lens[i]);
	}
	/* A whole frame: header then payload. */
	uint8_t frame[FRAME_HEADER_BYTES + 5];
	frame_put_header(frame, 5);
	memcpy(frame + FRAME_HEADER_BYTES, "hello", 5);
	uint32_t got = 0;
	assert_int_equal(frame_check(frame, sizeof(frame), MAX, &got), FRAME_OK);
	assert_int_equal(got, 5);
	for (size_t len = 0; len < sizeof(frame); len++)
		assert_int_equal(frame_check(frame, len, MAX, &got), FRAME_NEED_MORE);
}

static void test_frame_status_str(void **state)
{
	(void)state;
	assert_string_equal(frame_status_str(FRAME_OK), "ok");
	assert_string_equal(frame_status_str(FRAME_NEED_MORE), "incomplete");
	assert_string_equal(frame_status_str(FRAME_EMPTY), "empty frame");
	assert_string_equal(frame_status_str(FRAME_TOO_LARGE), "frame too large");
	assert_string_equal(frame_status_str((frame_status_t)99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_check_table), cmocka_unit_test(test_frame_default_max),
		cmocka_unit_test(test_frame_put_header),  cmocka_unit_test(test_frame_round_trip),
		cmocka_unit_test(test_frame_status_str),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
