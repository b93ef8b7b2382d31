// SPDX-License-Identifier: Apache-2.0
/*
 * Latency histogram with log-linear buckets (about 3% relative precision,
 * 1 µs to days). One per worker thread; merged at the end. Not thread-safe.
 */
#ifndef VIGIL_LG_HIST_H
#define VIGIL_LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB 32u /* sub-buckets per power of two */
#define LG_HIST_BUCKETS (2u * LG_HIST_SUB + 58u * LG_HIST_SUB)

typedef struct {
	uint64_t count[LG_HIST_BUCKETS];
	uint64_t total;
	uint64_t max_us;
} lg_hist_t;

/* Record one value in microseconds (negative values count as 0). */
void lg_hist_add(lg_hist_t *h, int64_t us);
/* Add every count of src into dst. */
void lg_hist_merge(lg_hist_t *dst, const lg_hist_t *src);
/* Return the q-quantile (0 < q <= 1) in microseconds: the midpoint of the
 * bucket holding it, or 0 if h is empty. */
double lg_hist_quantile_us(const lg_hist_t *h, double q);

#endif
