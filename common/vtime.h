/* Clocks in the units the protocol uses. */
#ifndef VIGIL_VTIME_H
#define VIGIL_VTIME_H

#include <stdint.h>

/* Unix time in nanoseconds (wall clock). */
int64_t vtime_now_ns(void);
/* Monotonic time in nanoseconds, for deadlines and latencies. */
int64_t vtime_mono_ns(void);

#endif
