/* jm_decimal_u64 writes what "%llu" writes, at every digit-count boundary. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs these first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "decimal.h"

static void assert_decimal(uint64_t v)
{
	char want[32], got[JM_DECIMAL_U64_MAX + 1];
	int want_len = snprintf(want, sizeof want, "%" PRIu64, v);
	memset(got, 'x', sizeof got);
	size_t len = jm_decimal_u64(got, v);
	assert_int_equal(len, (size_t)want_len);
	assert_memory_equal(got, want, len);
	assert_int_equal(got[len], 'x'); /* nothing written past the digits */
}

static void test_decimal_matches_printf_at_every_power_of_ten(void **state)
{
	(void)state;
	assert_decimal(0);
	assert_decimal(UINT64_MAX);
	uint64_t p = 1;
	for (int i = 0; i < 20; i++) {
		assert_decimal(p - 1);
		assert_decimal(p);
		assert_decimal(p + 1);
		if (i < 19)
			p *= 10;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decimal_matches_printf_at_every_power_of_ten),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
