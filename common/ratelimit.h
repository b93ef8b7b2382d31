// SPDX-License-Identifier: Apache-2.0
/*
 * Rate limits per client address as pure code: which bucket a client
 * address falls into, and the fixed table of token buckets. No I/O, no
 * clock (the caller passes the time) and no lock (the caller holds one if
 * several threads share a table), so unit tests drive it directly. Used by
 * the HTTPS server (ratelimit_take in http_int.h) and by enrollment.
 */
#ifndef VIGIL_RATELIMIT_H
#define VIGIL_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_KEY_LEN 64
#define RATELIMIT_SLOTS 4096 /* buckets of clients, and one shared after them */
#define RATELIMIT_PROBES 8   /* slots a client's bucket may be in */

typedef struct rate_slot rate_slot_t;

/* Write the bucket key of peer (a numeric address as the socket gives it)
 * into key (RATELIMIT_KEY_LEN bytes): an IPv4 address as itself; an
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d, a dual-stack listener's IPv4
 * client) as that IPv4 address; any other IPv6 address as its /64
 * ("2001:db8:1:2::/64"), the least a site or a host is given, so one
 * client cannot take a fresh bucket per address. A zone (%eth0) is
 * dropped. Anything else is its own key, cut to fit. */
void ratelimit_key(const char *peer, char *key);

/* A table of RATELIMIT_SLOTS buckets and a shared one, all unused, or NULL
 * when out of memory. Free with free(). */
rate_slot_t *ratelimit_new(void);

/* Take one token from the bucket of key at now_ns (a monotonic clock): a
 * bucket fills at rate per second up to burst, and a new one starts full.
 * Return false if it is empty (the request is refused). */
bool ratelimit_take_key(rate_slot_t *table, const char *key, double rate, double burst,
			int64_t now_ns);

#endif
