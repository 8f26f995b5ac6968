/* common/clock: "now + N" as the absolute timespec a timed wait takes. */
#include "jm_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "clock.h"

static uint64_t ts_us(struct timespec ts)
{
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void test_after_ms_is_that_far_ahead_on_the_clock_given(void **state)
{
	(void)state;
	const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME};
	const uint64_t delays_ms[] = {0, 1, 999, 1000, 1001, 59999, 86400000};
	for (size_t c = 0; c < 2; c++) {
		for (size_t d = 0; d < sizeof delays_ms / sizeof *delays_ms; d++) {
			struct timespec now;
			clock_gettime(clocks[c], &now);
			struct timespec at = jm_timespec_after_ms(clocks[c], delays_ms[d]);
			struct timespec later;
			clock_gettime(clocks[c], &later);
			assert_true(at.tv_nsec >= 0 && at.tv_nsec < 1000000000L);
			assert_true(ts_us(at) >= ts_us(now) + delays_ms[d] * 1000u);
			assert_true(ts_us(at) <= ts_us(later) + delays_ms[d] * 1000u + 1);
		}
	}
}

static void test_after_us_carries_nanoseconds_into_seconds(void **state)
{
	(void)state;
	for (uint64_t us = 0; us < 3000000u; us += 999983u) {
		struct timespec at = jm_timespec_after_us(CLOCK_MONOTONIC, us);
		assert_true(at.tv_nsec >= 0 && at.tv_nsec < 1000000000L);
	}
}

static void test_a_huge_delay_saturates_in_the_future(void **state)
{
	(void)state;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct timespec at = jm_timespec_after_ms(CLOCK_REALTIME, UINT64_MAX);
	assert_true(at.tv_sec > now.tv_sec + 365ll * 24 * 3600 * 1000);
	at = jm_timespec_after_us(CLOCK_REALTIME, UINT64_MAX);
	assert_true(at.tv_sec > now.tv_sec + 365ll * 24 * 3600 * 1000);
}

/* A default (CLOCK_REALTIME) condvar would read the monotonic deadline
 * as a moment in 1970 and return at once. */
static void test_a_timed_wait_on_a_monotonic_condvar_returns_after_the_delay(void **state)
{
	(void)state;
	pthread_cond_t cond;
	jm_cond_init_monotonic(&cond);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	uint64_t began = jm_mono_us();
	struct timespec until = jm_timespec_after_ms(CLOCK_MONOTONIC, 20);
	pthread_mutex_lock(&mu);
	int rc = 0;
	while (rc == 0) /* a spurious wakeup waits again */
		rc = pthread_cond_timedwait(&cond, &mu, &until);
	pthread_mutex_unlock(&mu);
	assert_int_equal(rc, ETIMEDOUT);
	assert_true(jm_mono_us() - began >= 20000u);
	pthread_cond_destroy(&cond);
}

static void test_of_us_splits_seconds_and_nanoseconds(void **state)
{
	(void)state;
	struct timespec ts = jm_timespec_of_us(3000001u);
	assert_int_equal(ts.tv_sec, 3);
	assert_int_equal(ts.tv_nsec, 1000);
	ts = jm_timespec_of_us(999999u);
	assert_int_equal(ts.tv_sec, 0);
	assert_int_equal(ts.tv_nsec, 999999000L);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_after_ms_is_that_far_ahead_on_the_clock_given),
	    cmocka_unit_test(test_after_us_carries_nanoseconds_into_seconds),
	    cmocka_unit_test(test_a_huge_delay_saturates_in_the_future),
	    cmocka_unit_test(test_a_timed_wait_on_a_monotonic_condvar_returns_after_the_delay),
	    cmocka_unit_test(test_of_us_splits_seconds_and_nanoseconds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
