// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the binary COPY encoder (collector/copyenc.c): every
 * column type against bytes computed by hand from PostgreSQL's binary
 * send formats, and the buffer's growth and failure flag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/copyenc.h"

static int setup(void **state)
{
	copybuf_t *b = malloc(sizeof(*b));
	if (!b)
		return -1;
	copybuf_init(b);
	*state = b;
	return 0;
}

static int teardown(void **state)
{
	copybuf_t *b = *state;
	copybuf_free(b);
	free(b);
	return 0;
}

/* Compare the whole buffer with want, printing the first difference. */
#define assert_buf(b, ...)                                    \
	do {                                                  \
		static const uint8_t want_[] = {__VA_ARGS__}; \
		check_buf((b), want_, sizeof(want_));         \
	} while (0)

static void check_buf(const copybuf_t *b, const uint8_t *want, size_t n)
{
	assert_false(b->oom);
	for (size_t i = 0; i < n && i < b->len; i++)
		if (b->data[i] != want[i])
			fail_msg("byte %zu: got 0x%02x, want 0x%02x", i, b->data[i], want[i]);
	assert_int_equal(b->len, n);
}

static void test_copy_header_trailer(void **state)
{
	copybuf_t *b = *state;
	copy_header(b);
	assert_buf(b, 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0, /* signature */
		   0, 0, 0, 0,						       /* flags */
		   0, 0, 0, 0); /* header extension length */
	copybuf_reset(b);
	copy_trailer(b);
	assert_buf(b, 0xff, 0xff);
	copybuf_reset(b);
	copy_tuple(b, 16);
	assert_buf(b, 0x00, 0x10);
	copybuf_reset(b);
	copy_tuple(b, 0x0102);
	assert_buf(b, 0x01, 0x02);
}

static void test_copy_null_bool(void **state)
{
	copybuf_t *b = *state;
	copy_null(b);
	assert_buf(b, 0xff, 0xff, 0xff, 0xff);
	copybuf_reset(b);
	copy_bool(b, true);
	copy_bool(b, false);
	assert_buf(b, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0);
}

static void test_copy_int2(void **state)
{
	copybuf_t *b = *state;
	copy_int2(b, 0);
	copy_int2(b, 0x1234);
	copy_int2(b, -2);
	copy_int2(b, INT16_MIN);
	copy_int2(b, INT16_MAX);
	assert_buf(b, 0, 0, 0, 2, 0x00, 0x00, /* 0 */
		   0, 0, 0, 2, 0x12, 0x34,    /* 0x1234 */
		   0, 0, 0, 2, 0xff, 0xfe,    /* -2 */
		   0, 0, 0, 2, 0x80, 0x00,    /* INT16_MIN */
		   0, 0, 0, 2, 0x7f, 0xff);   /* INT16_MAX */
}

static void test_copy_int4(void **state)
{
	copybuf_t *b = *state;
	copy_int4(b, 0x01020304);
	copy_int4(b, -1);
	copy_int4(b, INT32_MIN);
	copy_int4(b, 7);
	assert_buf(b, 0, 0, 0, 4, 0x01, 0x02, 0x03, 0x04, /* 0x01020304 */
		   0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff,	  /* -1 */
		   0, 0, 0, 4, 0x80, 0x00, 0x00, 0x00,	  /* INT32_MIN */
		   0, 0, 0, 4, 0x00, 0x00, 0x00, 0x07);	  /* 7 */
}

static void test_copy_int8(void **state)
{
	copybuf_t *b = *state;
	copy_int8(b, INT64_C(0x0102030405060708));
	copy_int8(b, -2);
	copy_int8(b, INT64_MIN);
	copy_int8(b, INT64_MAX);
	assert_buf(b, 0, 0, 0, 8, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* 0x0102... */
		   0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,	  /* -2 */
		   0, 0, 0, 8, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	  /* INT64_MIN */
		   0, 0, 0, 8, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);	  /* INT64_MAX */
}

static void test_copy_text(void **state)
{
	copybuf_t *b = *state;
	copy_text(b, "abc", 3);
	copy_text(b, "", 0); /* empty, not NULL */
	copy_text(b, "h\xc3\xa9!", 4);
	copy_text(b, "xyz", 1);			     /* n bytes, not up to the NUL */
	assert_buf(b, 0, 0, 0, 3, 'a', 'b', 'c',     /* "abc" */
		   0, 0, 0, 0,			     /* "" */
		   0, 0, 0, 4, 'h', 0xc3, 0xa9, '!', /* "hé!" */
		   0, 0, 0, 1, 'x');
	copybuf_reset(b);
	static const uint8_t raw[] = {0x00, 0xff, 0x10};
	copy_bytea(b, raw, sizeof(raw));
	assert_buf(b, 0, 0, 0, 3, 0x00, 0xff, 0x10);
}

static void test_copy_text_array(void **state)
{
	copybuf_t *b = *state;
	copy_text_array(b, NULL, 0);
	assert_buf(b, 0, 0, 0, 12, /* length */
		   0, 0, 0, 0,	   /* 0 dimensions */
		   0, 0, 0, 0,	   /* no nulls */
		   0, 0, 0, 25);   /* element type: text */
	copybuf_reset(b);
	char *items[] = {"a", "bc"};
	copy_text_array(b, items, 2);
	assert_buf(b, 0, 0, 0, 31, /* 12 + 8 + (4 + 1) + (4 + 2) */
		   0, 0, 0, 1,	   /* 1 dimension */
		   0, 0, 0, 0,	   /* no nulls */
		   0, 0, 0, 25,	   /* text */
		   0, 0, 0, 2,	   /* dimension 1 has 2 elements */
		   0, 0, 0, 1,	   /* lower bound 1 */
		   0, 0, 0, 1, 'a', 0, 0, 0, 2, 'b', 'c');
	copybuf_reset(b);
	char *one_empty[] = {""};
	copy_text_array(b, one_empty, 1);
	assert_buf(b, 0, 0, 0, 24, /* 12 + 8 + 4 */
		   0, 0, 0, 1,	   /* 1 dimension */
		   0, 0, 0, 0,	   /* no nulls */
		   0, 0, 0, 25,	   /* text */
		   0, 0, 0, 1,	   /* 1 element */
		   0, 0, 0, 1,	   /* lower bound */
		   0, 0, 0, 0);	   /* "" */
}

static void test_copy_jsonb(void **state)
{
	copybuf_t *b = *state;
	copy_jsonb(b, "{\"a\":1}", 7);
	assert_buf(b, 0, 0, 0, 8, /* 1 version byte + 7 */
		   0x01,	  /* jsonb format version */
		   '{', '"', 'a', '"', ':', '1', '}');
	copybuf_reset(b);
	copy_jsonb(b, "", 0);
	assert_buf(b, 0, 0, 0, 1, 0x01);
}

static void test_copy_timestamptz(void **state)
{
	copybuf_t *b = *state;
	/* 2000-01-01T00:00:00Z is PostgreSQL's epoch: 0. */
	copy_timestamptz(b, INT64_C(946684800) * 1000000000);
	assert_buf(b, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0);
	copybuf_reset(b);
	/* 1970-01-01T00:00:00Z: -946684800000000 us. */
	copy_timestamptz(b, 0);
	assert_buf(b, 0, 0, 0, 8, 0xff, 0xfc, 0xa2, 0xfe, 0xc4, 0xc8, 0x20, 0x00);
	copybuf_reset(b);
	/* 2023-11-14T22:13:20.123456789Z: nanoseconds are dropped,
	 * 753315200123456 us = 0x0002ad22dce84240. */
	copy_timestamptz(b, INT64_C(1700000000123456789));
	assert_buf(b, 0, 0, 0, 8, 0x00, 0x02, 0xad, 0x22, 0xdc, 0xe8, 0x42, 0x40);
	copybuf_reset(b);
	/* One microsecond after the PostgreSQL epoch. */
	copy_timestamptz(b, INT64_C(946684800) * 1000000000 + 1999);
	assert_buf(b, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1);
}

static void test_copy_whole_file(void **state)
{
	copybuf_t *b = *state;
	copy_header(b);
	copy_tuple(b, 3);
	copy_int4(b, 1);
	copy_text(b, "x", 1);
	copy_null(b);
	copy_trailer(b);
	assert_buf(b, 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0, /* signature */
		   0, 0, 0, 0, 0, 0, 0, 0, /* flags, extension */
		   0, 3,		   /* tuple of 3 fields */
		   0, 0, 0, 4, 0, 0, 0, 1, /* int4 1 */
		   0, 0, 0, 1, 'x',	   /* text "x" */
		   0xff, 0xff, 0xff, 0xff, /* NULL */
		   0xff, 0xff);		   /* trailer */
}

static void test_copybuf_growth(void **state)
{
	copybuf_t *b = *state;
	assert_int_equal(b->len, 0);
	assert_null(b->data);
	copybuf_append(b, "", 0); /* nothing to add: no allocation */
	assert_int_equal(b->len, 0);
	/* Grow well past the first allocation with a known pattern. */
	uint8_t chunk[1000];
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 7);
	for (int k = 0; k < 100; k++)
		copybuf_append(b, chunk, sizeof(chunk));
	assert_false(b->oom);
	assert_int_equal(b->len, 100000);
	assert_true(b->cap >= b->len);
	for (int k = 0; k < 100; k++)
		assert_memory_equal(b->data + k * 1000, chunk, sizeof(chunk));
	/* Reset keeps the allocation and empties the buffer. */
	size_t cap = b->cap;
	uint8_t *data = b->data;
	copybuf_reset(b);
	assert_int_equal(b->len, 0);
	assert_int_equal(b->cap, cap);
	assert_ptr_equal(b->data, data);
	copy_int2(b, 1);
	assert_buf(b, 0, 0, 0, 2, 0, 1);
}

static void test_copybuf_oversize(void **state)
{
	copybuf_t *b = *state;
	copy_int2(b, 5);
	/* Values PostgreSQL cannot take (length above INT32_MAX) set oom;
	 * the data pointer is never read for them. */
	copy_text(b, "x", (size_t)INT32_MAX + 1);
	assert_true(b->oom);
	assert_int_equal(b->len, 6);
	/* Once oom is set, nothing more is appended. */
	copy_int4(b, 1);
	assert_int_equal(b->len, 6);
	copybuf_reset(b);
	assert_false(b->oom);
	copy_jsonb(b, "x", (size_t)INT32_MAX);
	assert_true(b->oom);
	copybuf_reset(b);
	copy_int2(b, 1);
	assert_buf(b, 0, 0, 0, 2, 0, 1);
	copybuf_free(b);
	assert_null(b->data);
	assert_int_equal(b->len, 0);
	assert_int_equal(b->cap, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_copy_header_trailer), T(test_copy_null_bool), T(test_copy_int2),
		T(test_copy_int4),	     T(test_copy_int8),	     T(test_copy_text),
		T(test_copy_text_array),     T(test_copy_jsonb),     T(test_copy_timestamptz),
		T(test_copy_whole_file),     T(test_copybuf_growth), T(test_copybuf_oversize),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
