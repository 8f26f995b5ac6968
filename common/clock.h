/* Clocks. Monotonic time measures intervals inside one process; wall time
 * (microseconds since the Unix epoch) is what is stored in the journal,
 * because it still means something after a restart.
 *
 * Timed waits take an absolute struct timespec on the clock of what they
 * wait on; jm_timespec_after_ms is the one place that computes "now + N". */
#ifndef JM_COMMON_CLOCK_H
#define JM_COMMON_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

uint64_t jm_mono_us(void);
uint64_t jm_wall_us(void);

/* The moment ms milliseconds from now on clock, as the absolute timespec
 * that pthread_cond_timedwait, sem_timedwait and pthread_timedjoin_np take.
 * clock must be the one the waited-on object measures: CLOCK_MONOTONIC for
 * a condition variable made with pthread_condattr_setclock(CLOCK_MONOTONIC),
 * CLOCK_REALTIME for a default one, a semaphore or pthread_timedjoin_np. A
 * delay too long for time_t saturates (the wait is then unbounded in
 * practice, never in the past). */
struct timespec jm_timespec_after_ms(clockid_t clock, uint64_t ms);
/* The same, for a delay in microseconds. */
struct timespec jm_timespec_after_us(clockid_t clock, uint64_t us);
/* Initialises cv (default attributes otherwise) to measure
 * CLOCK_MONOTONIC: its timed waits take jm_timespec_after_*(CLOCK_MONOTONIC,
 * ...), which a step of the wall clock does not move. */
void jm_cond_init_monotonic(pthread_cond_t *cv);
/* us microseconds as a timespec: an absolute time read as jm_mono_us() or
 * jm_wall_us() read it, or a duration for nanosleep. */
struct timespec jm_timespec_of_us(uint64_t us);

/* A seam for tests: from now on jm_wall_us() reads step_us (may be
 * negative) away from the system's wall clock, as after an operator or NTP
 * stepped it. 0 restores it. jm_mono_us() is never affected. */
void jm_clock_step_wall_us(int64_t step_us);

#endif
