// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for common/ratelimit.c: the bucket key of a client
 * address (IPv4, IPv4-mapped IPv6, IPv6 by /64) and the table of buckets
 * (refill, sharing a /64, and a flood of new clients that neither evicts a
 * throttled client's bucket nor gets a fresh burst of its own).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

#define SEC INT64_C(1000000000)
#define T0 (INT64_C(1000) * SEC)

struct key_case {
	const char *peer;
	const char *key;
};

static const struct key_case key_cases[] = {
	{"192.0.2.7", "192.0.2.7"},
	{"127.0.0.1", "127.0.0.1"},
	{"::ffff:192.0.2.7", "192.0.2.7"},
	{"::FFFF:192.0.2.7", "192.0.2.7"},
	{"::ffff:c000:207", "192.0.2.7"},
	{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
	{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
	{"2001:0db8:0001:0002:0000:0000:0000:0009", "2001:db8:1:2::/64"},
	{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
	{"2001:db8::1", "2001:db8::/64"},
	{"::1", "::/64"},
	{"fe80::1%lo", "fe80::/64"},
	{"64:ff9b::c000:207", "64:ff9b::/64"}, /* NAT64, not IPv4-mapped */
	{"?", "?"},
	{"", ""},
	{"not an address", "not an address"},
	{"1.2.3.4.5", "1.2.3.4.5"},
};

static void test_keys(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
		char key[RATELIMIT_KEY_LEN];
		ratelimit_key(key_cases[i].peer, key);
		if (strcmp(key, key_cases[i].key) != 0)
			fail_msg("peer '%s': key '%s', want '%s'", key_cases[i].peer, key,
				 key_cases[i].key);
	}
	char long_peer[200], key[RATELIMIT_KEY_LEN];
	memset(long_peer, 'x', sizeof(long_peer) - 1);
	long_peer[sizeof(long_peer) - 1] = '\0';
	ratelimit_key(long_peer, key);
	assert_int_equal(strlen(key), RATELIMIT_KEY_LEN - 1);
}

static int takes(rate_slot_t *t, const char *key, int n, int64_t now)
{
	int ok = 0;
	for (int i = 0; i < n; i++)
		ok += ratelimit_take_key(t, key, 1.0, 3.0, now);
	return ok;
}

static void test_buckets(void **state)
{
	(void)state;
	rate_slot_t *t = ratelimit_new();
	assert_non_null(t);
	/* a new bucket starts full: 3, then 1 a second */
	assert_int_equal(takes(t, "a", 5, T0), 3);
	assert_int_equal(takes(t, "a", 5, T0 + SEC / 2), 0);
	assert_int_equal(takes(t, "a", 5, T0 + SEC), 1);
	assert_int_equal(takes(t, "a", 5, T0 + 100 * SEC), 3); /* not above the burst */
	/* two addresses of one /64 are one client; another /64 is another */
	char k1[RATELIMIT_KEY_LEN], k2[RATELIMIT_KEY_LEN], k3[RATELIMIT_KEY_LEN];
	ratelimit_key("2001:db8:5:6::1", k1);
	ratelimit_key("2001:db8:5:6:8000::2", k2);
	ratelimit_key("2001:db8:5:7::1", k3);
	assert_int_equal(takes(t, k1, 2, T0), 2);
	assert_int_equal(takes(t, k2, 5, T0), 1);
	assert_int_equal(takes(t, k3, 5, T0), 3);
	free(t);
}

static void test_flood_keeps_throttled_bucket(void **state)
{
	(void)state;
	rate_slot_t *t = ratelimit_new();
	assert_non_null(t);
	assert_int_equal(takes(t, "victim", 10, T0), 3); /* throttled now */
	/* five times as many new clients as slots, each spending its burst,
	 * so every bucket in the table is below full */
	int granted = 0;
	char key[32];
	for (int i = 0; i < 5 * RATELIMIT_SLOTS; i++) {
		snprintf(key, sizeof(key), "flood-%d", i);
		granted += takes(t, key, 3, T0);
	}
	/* those that found no free slot shared one bucket of 3 */
	assert_true(granted <= 3 * RATELIMIT_SLOTS + 3);
	assert_true(granted >= 3 * RATELIMIT_SLOTS / 2);
	/* the throttled client kept its empty bucket: no fresh burst */
	assert_int_equal(takes(t, "victim", 10, T0), 0);
	assert_int_equal(takes(t, "victim", 10, T0 + SEC), 1);
	/* a newcomer now draws on the shared bucket, which the flood emptied */
	assert_int_equal(takes(t, "late", 3, T0 + SEC), 1);
	/* once buckets are full again (burst / rate = 3 s) their slots are
	 * free to take, and a newcomer gets a bucket of its own */
	assert_int_equal(takes(t, "later", 5, T0 + 10 * SEC), 3);
	assert_int_equal(takes(t, "victim", 10, T0 + 10 * SEC), 3);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_flood_keeps_throttled_bucket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
