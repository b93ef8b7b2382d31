// SPDX-License-Identifier: Apache-2.0
/* Loss accounting (see loss.h). */
#include "loss.h"

#include <string.h>

static const char *const names[LOSS_N] = {
	"proc_connector_overrun", "exec_unread",   "event_too_large", "spool_torn_record",
	"api_event_gap",	  "pid_untracked", "batch_refused",
};

const char *loss_name(loss_kind_t k)
{
	return k < LOSS_N ? names[k] : "unknown";
}

bool loss_pending(const loss_t *l)
{
	for (int k = 0; k < LOSS_N; k++)
		if (l->c[k].count)
			return true;
	return false;
}

bool loss_add(loss_t *l, loss_kind_t k, uint64_t n, int64_t now_ns)
{
	if (k >= LOSS_N || n == 0)
		return false;
	bool first = !loss_pending(l);
	loss_counter_t *c = &l->c[k];
	if (!c->count)
		c->first_ns = now_ns;
	c->last_ns = now_ns;
	c->count += n;
	c->total += n;
	return first;
}

bool loss_observe(loss_t *l, loss_kind_t k, uint64_t source_total, int64_t now_ns)
{
	if (k >= LOSS_N)
		return false;
	loss_counter_t *c = &l->c[k];
	uint64_t base = source_total >= c->source_total ? c->source_total : 0;
	c->source_total = source_total;
	return loss_add(l, k, source_total - base, now_ns);
}

size_t loss_to_pb(const loss_t *l, Vigil__V1__Loss *msgs, Vigil__V1__Loss **ptrs)
{
	size_t n = 0;
	for (int k = 0; k < LOSS_N; k++) {
		const loss_counter_t *c = &l->c[k];
		if (!c->total)
			continue;
		vigil__v1__loss__init(&msgs[n]);
		msgs[n].what = (char *)names[k];
		msgs[n].count = c->count;
		msgs[n].total = c->total;
		msgs[n].first_ns = c->count ? c->first_ns : 0;
		msgs[n].last_ns = c->count ? c->last_ns : 0;
		ptrs[n] = &msgs[n];
		n++;
	}
	return n;
}

void loss_reported(loss_t *l)
{
	for (int k = 0; k < LOSS_N; k++) {
		l->c[k].count = 0;
		l->c[k].first_ns = l->c[k].last_ns = 0;
	}
}
