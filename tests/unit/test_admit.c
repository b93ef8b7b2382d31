// SPDX-License-Identifier: Apache-2.0
/* Admission of pending connections (common/admit.c): keys by address and
 * /64, the per-address cap, the budget and which connection it drops. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "admit.h"

static struct sockaddr_storage addr(const char *text, socklen_t *len)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		*len = sizeof(*s4);
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
		s6->sin6_family = AF_INET6;
		*len = sizeof(*s6);
	}
	return ss;
}

static void key_of(const char *text, uint8_t key[ADMIT_KEY_LEN])
{
	socklen_t len;
	struct sockaddr_storage ss = addr(text, &len);
	admit_key((struct sockaddr *)&ss, len, key);
}

static void test_keys(void **state)
{
	(void)state;
	uint8_t a[ADMIT_KEY_LEN], b[ADMIT_KEY_LEN];
	char s[64];
	key_of("192.0.2.1", a);
	key_of("::ffff:192.0.2.1", b); /* IPv4-mapped: the same client */
	assert_memory_equal(a, b, ADMIT_KEY_LEN);
	admit_key_str(a, s, sizeof(s));
	assert_string_equal(s, "192.0.2.1");
	key_of("192.0.2.2", b);
	assert_memory_not_equal(a, b, ADMIT_KEY_LEN);
	key_of("2001:db8:1:2:aaaa::1", a); /* one /64 */
	key_of("2001:db8:1:2:ffff:1:2:3", b);
	assert_memory_equal(a, b, ADMIT_KEY_LEN);
	admit_key_str(a, s, sizeof(s));
	assert_string_equal(s, "2001:db8:1:2::/64");
	key_of("2001:db8:1:3::1", b); /* the next /64 */
	assert_memory_not_equal(a, b, ADMIT_KEY_LEN);
	admit_key(NULL, 0, a);
	admit_key_str(a, s, sizeof(s));
	assert_string_equal(s, "local");
}

static admit_verdict_t add(admit_t *a, admit_entry_t *e, const char *text, size_t max_pending,
			   size_t per_addr, admit_silent_fn silent, admit_entry_t **victim)
{
	socklen_t len;
	struct sockaddr_storage ss = addr(text, &len);
	return admit_add(a, e, (struct sockaddr *)&ss, len, max_pending, per_addr, silent, victim);
}

static void test_per_address_cap(void **state)
{
	(void)state;
	admit_t a = {0};
	admit_entry_t e[6] = {0};
	admit_entry_t *victim;
	for (int i = 0; i < 3; i++)
		assert_int_equal(add(&a, &e[i], "2001:db8::1", 100, 3, NULL, &victim), ADMIT_OK);
	/* the same /64 from another address: refused, not listed */
	assert_int_equal(add(&a, &e[3], "2001:db8::ffff", 100, 3, NULL, &victim),
			 ADMIT_REFUSED_ADDR);
	assert_false(e[3].listed);
	assert_null(victim);
	assert_int_equal(add(&a, &e[4], "2001:db8:0:1::1", 100, 3, NULL, &victim), ADMIT_OK);
	/* one proves itself: its address has a place again */
	admit_remove(&a, &e[1]);
	admit_remove(&a, &e[1]); /* twice is fine */
	assert_int_equal(add(&a, &e[3], "2001:db8::ffff", 100, 3, NULL, &victim), ADMIT_OK);
	assert_int_equal(a.n, 4);
}

static admit_entry_t *talking; /* the entry that has sent something */

static bool silent_unless_talking(admit_entry_t *e)
{
	return e != talking;
}

static bool none_silent(admit_entry_t *e)
{
	(void)e;
	return false;
}

static void test_budget_drops_oldest_silent(void **state)
{
	(void)state;
	admit_t a = {0};
	admit_entry_t e[8] = {0};
	admit_entry_t *victim;
	assert_int_equal(add(&a, &e[0], "10.0.0.1", 3, 8, NULL, &victim), ADMIT_OK);
	assert_int_equal(add(&a, &e[1], "10.0.0.2", 3, 8, NULL, &victim), ADMIT_OK);
	assert_int_equal(add(&a, &e[2], "10.0.0.3", 3, 8, NULL, &victim), ADMIT_OK);
	/* full: the oldest goes */
	assert_int_equal(add(&a, &e[3], "10.0.0.4", 3, 8, NULL, &victim), ADMIT_OK_DROPPED);
	assert_ptr_equal(victim, &e[0]);
	assert_false(e[0].listed);
	assert_int_equal(a.n, 3);
	/* the oldest (e[1]) is mid-handshake: the oldest silent one (e[2]) goes */
	talking = &e[1];
	assert_int_equal(add(&a, &e[4], "10.0.0.5", 3, 8, silent_unless_talking, &victim),
			 ADMIT_OK_DROPPED);
	assert_ptr_equal(victim, &e[2]);
	/* listed now: e[1] (talking), e[3], e[4]. Without a predicate every
	 * one counts as silent: the oldest goes. */
	admit_remove(&a, &e[3]);
	assert_int_equal(add(&a, &e[5], "10.0.0.6", 2, 8, NULL, &victim), ADMIT_OK_DROPPED);
	assert_ptr_equal(victim, &e[1]);
	/* every pending one making progress (a fleet reconnecting at once):
	 * the newcomer is refused, no handshake under way is thrown away */
	assert_int_equal(add(&a, &e[6], "10.0.0.7", 2, 8, none_silent, &victim),
			 ADMIT_REFUSED_FULL);
	assert_null(victim);
	assert_false(e[6].listed);
	assert_int_equal(a.n, 2);
	assert_ptr_equal(a.oldest, &e[4]);
	assert_ptr_equal(a.newest, &e[5]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_per_address_cap),
		cmocka_unit_test(test_budget_drops_oldest_silent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
