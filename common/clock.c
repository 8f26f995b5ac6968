#include "clock.h"

#include <time.h>

static uint64_t clock_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t jm_mono_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

static int64_t wall_step_us; /* jm_clock_step_wall_us; atomic */

uint64_t jm_wall_us(void)
{
	return clock_us(CLOCK_REALTIME) +
	       (uint64_t)__atomic_load_n(&wall_step_us, __ATOMIC_RELAXED);
}

void jm_clock_step_wall_us(int64_t step_us)
{
	__atomic_store_n(&wall_step_us, step_us, __ATOMIC_RELAXED);
}
