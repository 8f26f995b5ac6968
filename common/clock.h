/* Clocks. Monotonic time measures intervals inside one process; wall time
 * (microseconds since the Unix epoch) is what is stored in the journal,
 * because it still means something after a restart. */
#ifndef JM_COMMON_CLOCK_H
#define JM_COMMON_CLOCK_H

#include <stdint.h>

uint64_t jm_mono_us(void);
uint64_t jm_wall_us(void);

#endif
