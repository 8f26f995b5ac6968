/* Clocks. Monotonic time measures intervals inside one process; wall time
 * (microseconds since the Unix epoch) is what is stored in the journal,
 * because it still means something after a restart. */
#ifndef JM_COMMON_CLOCK_H
#define JM_COMMON_CLOCK_H

#include <stdint.h>

uint64_t jm_mono_us(void);
uint64_t jm_wall_us(void);

/* A seam for tests: from now on jm_wall_us() reads step_us (may be
 * negative) away from the system's wall clock, as after an operator or NTP
 * stepped it. 0 restores it. jm_mono_us() is never affected. */
void jm_clock_step_wall_us(int64_t step_us);

#endif
