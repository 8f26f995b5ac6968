/* Retry backoff: exponential with full jitter, capped.
 *
 * The n-th retry waits a random time in [delay/2, delay] where
 * delay = min(cap, base * 2^(n-1)): retries of many jobs that failed
 * together (a payment API went down) spread out instead of arriving as one
 * wave, and no retry waits less than half its nominal delay. */
#ifndef JM_BROKER_BACKOFF_H
#define JM_BROKER_BACKOFF_H

#include <stdint.h>

struct backoff_policy {
	uint64_t base_ms; /* first retry's nominal delay */
	uint64_t cap_ms;  /* no delay exceeds this */
};

/* Delay before retry number `retry` (1 for the first retry). random is any
 * 64-bit random value: the caller owns the randomness, so tests can fix it. */
uint64_t backoff_delay_ms(const struct backoff_policy *policy, uint32_t retry, uint64_t random);

#endif
