/* jm_hex_digit: every digit of both cases, and every other byte refused. */
#include <string.h>

/* cmocka.h needs these first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "hex.h"

static void test_hex_digit_reads_both_cases(void **state)
{
	(void)state;
	const char *lower = "0123456789abcdef", *upper = "0123456789ABCDEF";
	for (int i = 0; i < 16; i++) {
		assert_int_equal(jm_hex_digit(lower[i]), i);
		assert_int_equal(jm_hex_digit(upper[i]), i);
	}
}

static void test_hex_digit_refuses_every_other_byte(void **state)
{
	(void)state;
	for (int c = -128; c < 128; c++) {
		if (c != 0 && strchr("0123456789abcdefABCDEF", c) != NULL)
			continue;
		assert_int_equal(jm_hex_digit((char)c), -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hex_digit_reads_both_cases),
	    cmocka_unit_test(test_hex_digit_refuses_every_other_byte),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
