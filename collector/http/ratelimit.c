/*
 * The rate limit of the HTTPS server (see http_int.h): a token bucket per
 * socket peer (http_rate_limit per second, http_rate_burst at most), in a
 * fixed table where a new peer takes the least recently used of a few
 * slots. X-Forwarded-For is never read. A request refused is a 429.
 */
#include "http/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtime.h"

#define RATE_SLOTS 4096
#define RATE_PROBES 8

struct rate_slot {
	char ip[48];
	double tokens;
	int64_t last_ns;
};

rate_slot_t *ratelimit_new(void)
{
	return calloc(RATE_SLOTS, sizeof(rate_slot_t));
}

/* Take one token from peer's bucket. Return false if it is empty. */
bool ratelimit_take(http_t *h, const char *peer)
{
	double rate = (double)SETTING(h->col, http_rate_limit);
	double burst = (double)SETTING(h->col, http_rate_burst);
	if (rate <= 0)
		return true;
	int64_t now = vtime_mono_ns();
	uint32_t b = http_fnv(peer);
	rate_slot_t *slot = NULL, *oldest = NULL;
	for (int i = 0; i < RATE_PROBES; i++) {
		rate_slot_t *s = &h->rate[(b + (uint32_t)i) % RATE_SLOTS];
		if (strcmp(s->ip, peer) == 0) {
			slot = s;
			break;
		}
		if (!oldest || s->last_ns < oldest->last_ns)
			oldest = s;
	}
	if (!slot) {
		slot = oldest;
		snprintf(slot->ip, sizeof(slot->ip), "%s", peer);
		slot->tokens = burst;
		slot->last_ns = now;
	}
	slot->tokens += (double)(now - slot->last_ns) / 1e9 * rate;
	if (slot->tokens > burst)
		slot->tokens = burst;
	slot->last_ns = now;
	if (slot->tokens < 1.0)
		return false;
	slot->tokens -= 1.0;
	return true;
}
