#include "backoff.h"

uint64_t backoff_delay_ms(const struct backoff_policy *policy, uint32_t retry, uint64_t random)
{
	uint64_t delay = policy->base_ms;
	for (uint32_t i = 1; i < retry && delay < policy->cap_ms; i++)
		delay *= 2;
	if (delay > policy->cap_ms)
		delay = policy->cap_ms;
	uint64_t half = delay / 2;
	uint64_t span = delay - half + 1;
	return half + random % span;
}
