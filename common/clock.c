#include "clock.h"

#include <stdint.h>

/* Past this many seconds from now a deadline saturates: ~292 billion years
 * would overflow a 64-bit time_t; 2^40 s (~35,000 years) never does. */
#define CLOCK_MAX_DELAY_S (1ull << 40)

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

struct timespec jm_timespec_after_us(clockid_t clock, uint64_t us)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	uint64_t sec = us / 1000000u;
	if (sec > CLOCK_MAX_DELAY_S)
		sec = CLOCK_MAX_DELAY_S;
	uint64_t nsec = (uint64_t)ts.tv_nsec + (us % 1000000u) * 1000u;
	ts.tv_sec += (time_t)(sec + nsec / 1000000000u);
	ts.tv_nsec = (long)(nsec % 1000000000u);
	return ts;
}

struct timespec jm_timespec_after_ms(clockid_t clock, uint64_t ms)
{
	if (ms > CLOCK_MAX_DELAY_S * 1000u)
		ms = CLOCK_MAX_DELAY_S * 1000u;
	return jm_timespec_after_us(clock, ms * 1000u);
}

struct timespec jm_timespec_of_us(uint64_t us)
{
	return (struct timespec){.tv_sec = (time_t)(us / 1000000u),
	                         .tv_nsec = (long)(us % 1000000u) * 1000};
}

void jm_cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
}
