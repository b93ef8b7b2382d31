// SPDX-License-Identifier: Apache-2.0
/* Log-linear latency histogram (see lg_hist.h). */
#include "lg_hist.h"

/* Values below 2*SUB get one bucket each; above, each power of two is
 * split into SUB equal buckets. */
static unsigned bucket_of(uint64_t v)
{
	if (v < 2 * LG_HIST_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= 6 */
	unsigned shift = msb - 5u;			   /* keeps 6 bits */
	unsigned b =
		2 * LG_HIST_SUB + (msb - 6u) * LG_HIST_SUB + (unsigned)((v >> shift) - LG_HIST_SUB);
	return b < LG_HIST_BUCKETS ? b : LG_HIST_BUCKETS - 1;
}

/* The [lo, hi) range of values that bucket b holds. */
static void bucket_range(unsigned b, double *lo, double *hi)
{
	if (b < 2 * LG_HIST_SUB) {
		*lo = b;
		*hi = b + 1.0;
		return;
	}
	unsigned k = b - 2 * LG_HIST_SUB;
	unsigned shift = k / LG_HIST_SUB + 1u;
	double width = (double)(UINT64_C(1) << shift);
	*lo = (double)(k % LG_HIST_SUB + LG_HIST_SUB) * width;
	*hi = *lo + width;
}

void lg_hist_add(lg_hist_t *h, int64_t us)
{
	uint64_t v = us > 0 ? (uint64_t)us : 0;
	h->count[bucket_of(v)]++;
	h->total++;
	if (v > h->max_us)
		h->max_us = v;
}

void lg_hist_merge(lg_hist_t *dst, const lg_hist_t *src)
{
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
		dst->count[i] += src->count[i];
	dst->total += src->total;
	if (src->max_us > dst->max_us)
		dst->max_us = src->max_us;
}

double lg_hist_quantile_us(const lg_hist_t *h, double q)
{
	if (h->total == 0)
		return 0.0;
	uint64_t rank = (uint64_t)(q * (double)h->total + 0.5);
	if (rank < 1)
		rank = 1;
	if (rank > h->total)
		rank = h->total;
	uint64_t seen = 0;
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			double lo, hi;
			bucket_range(i, &lo, &hi);
			double mid = (lo + hi) / 2.0;
			return mid > (double)h->max_us ? (double)h->max_us : mid;
		}
	}
	return (double)h->max_us;
}
