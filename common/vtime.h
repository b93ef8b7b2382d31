// SPDX-License-Identifier: Apache-2.0
/* Clocks in the units the protocol uses. */
#ifndef VIGIL_VTIME_H
#define VIGIL_VTIME_H

#include <stdint.h>

/* Unix time in nanoseconds (wall clock). */
int64_t vtime_now_ns(void);
/* Monotonic time in nanoseconds, for deadlines and latencies. */
int64_t vtime_mono_ns(void);

/* Parse an RFC 3339 time ("2026-11-23T06:19:20.103138939Z", "... +01:00";
 * 'T', 't' or ' ' between date and time; at most 9 fraction digits are
 * kept) into Unix nanoseconds. Times before 1970 or after 2262 (past
 * int64 nanoseconds) are refused. Return 0, or -1 if s is not such a time. */
int vtime_parse_rfc3339(const char *s, int64_t *out_ns);

#endif
