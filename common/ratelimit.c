// SPDX-License-Identifier: Apache-2.0
/*
 * Token buckets per client address (see ratelimit.h), used by the HTTPS
 * server (a token bucket per client, http_rate_limit per second,
 * http_rate_burst at most; X-Forwarded-For is never read; a request
 * refused is a 429) and by enrollment on the agent port. The client is
 * the socket peer's IPv4 address or IPv6 /64.
 *
 * The buckets are a fixed table: a client's bucket is in one of
 * RATELIMIT_PROBES slots from the hash of its key. A newcomer takes a slot
 * that is unused or whose bucket has filled up again (its client has been
 * quiet for burst / rate seconds): forgetting a full bucket gives its
 * client nothing it would not have anyway, since a new bucket starts full.
 * A bucket that is not full is never evicted, however many newcomers
 * arrive, so flooding the table from many addresses cannot hand a
 * throttled client a fresh burst. A newcomer that finds no such slot draws
 * on one bucket shared by all such newcomers (the last slot), so a flood
 * of new addresses is throttled as one client until slots free up.
 */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtime.h"

struct rate_slot {
	char key[RATELIMIT_KEY_LEN]; /* "" = unused */
	double tokens;
	int64_t last_ns;
};

void ratelimit_key(const char *peer, char *key)
{
	char addr[RATELIMIT_KEY_LEN];
	size_t n = strcspn(peer, "%");
	if (n >= sizeof(addr))
		n = sizeof(addr) - 1;
	memcpy(addr, peer, n);
	addr[n] = '\0';
	struct in_addr v4;
	struct in6_addr v6;
	if (inet_pton(AF_INET, addr, &v4) == 1) {
		inet_ntop(AF_INET, &v4, key, RATELIMIT_KEY_LEN);
	} else if (inet_pton(AF_INET6, addr, &v6) == 1 && IN6_IS_ADDR_V4MAPPED(&v6)) {
		memcpy(&v4, &v6.s6_addr[12], 4);
		inet_ntop(AF_INET, &v4, key, RATELIMIT_KEY_LEN);
	} else if (inet_pton(AF_INET6, addr, &v6) == 1) {
		memset(&v6.s6_addr[8], 0, 8);
		char net[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, &v6, net, sizeof(net));
		snprintf(key, RATELIMIT_KEY_LEN, "%s/64", net);
	} else {
		snprintf(key, RATELIMIT_KEY_LEN, "%s", peer);
	}
}

rate_slot_t *ratelimit_new(void)
{
	return calloc(RATELIMIT_SLOTS + 1, sizeof(rate_slot_t));
}

/* The tokens of s at now, refilled but not above burst. */
/* FNV-1a of the key: where its bucket's probes start. */
static uint32_t key_hash(const char *s)
{
	uint32_t x = 2166136261u;
	for (; *s; s++)
		x = (x ^ (uint8_t)*s) * 16777619u;
	return x;
}

static double level(const rate_slot_t *s, double rate, double burst, int64_t now)
{
	double t = s->tokens + (double)(now - s->last_ns) / 1e9 * rate;
	return t > burst ? burst : t;
}

bool ratelimit_take_key(rate_slot_t *table, const char *key, double rate, double burst,
			int64_t now_ns)
{
	uint32_t b = key_hash(key);
	rate_slot_t *slot = NULL, *vacant = NULL;
	for (uint32_t i = 0; i < RATELIMIT_PROBES; i++) {
		rate_slot_t *s = &table[(b + i) % RATELIMIT_SLOTS];
		if (s->key[0] && strcmp(s->key, key) == 0) {
			slot = s;
			break;
		}
		if (!vacant && (!s->key[0] || level(s, rate, burst, now_ns) >= burst))
			vacant = s;
	}
	if (!slot && vacant) {
		slot = vacant;
		snprintf(slot->key, sizeof(slot->key), "%s", key);
		slot->tokens = burst;
		slot->last_ns = now_ns;
	}
	if (!slot) {
		slot = &table[RATELIMIT_SLOTS];
		if (!slot->key[0]) { /* first use: it starts full too */
			snprintf(slot->key, sizeof(slot->key), "(shared)");
			slot->tokens = burst;
			slot->last_ns = now_ns;
		}
	}
	slot->tokens = level(slot, rate, burst, now_ns);
	slot->last_ns = now_ns;
	if (slot->tokens < 1.0)
		return false;
	slot->tokens -= 1.0;
	return true;
}
