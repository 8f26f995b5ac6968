/* CRC32C: known vectors (the iSCSI ones of RFC 3720 §B.4 and "123456789"),
 * extension across split points, and the hardware and software paths
 * agreeing at every length and alignment. */
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs these first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "crc32c.h"

static void test_check_string_gives_the_castagnoli_check_value(void **state)
{
	(void)state;
	assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c_extend_sw(0, "123456789", 9), 0xE3069283u);
}

static void test_empty_input_gives_zero(void **state)
{
	(void)state;
	assert_int_equal(crc32c("", 0), 0u);
	assert_int_equal(crc32c_extend(0x12345678u, "", 0), 0x12345678u);
}

static void test_rfc3720_vectors_match(void **state)
{
	(void)state;
	uint8_t buf[32];
	memset(buf, 0, sizeof buf);
	assert_int_equal(crc32c(buf, sizeof buf), 0x8A9136AAu);
	memset(buf, 0xFF, sizeof buf);
	assert_int_equal(crc32c(buf, sizeof buf), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(crc32c(buf, sizeof buf), 0x46DD794Eu);
	assert_int_equal(crc32c_extend_sw(0, buf, sizeof buf), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(crc32c(buf, sizeof buf), 0x113FDB5Cu);
	assert_int_equal(crc32c_extend_sw(0, buf, sizeof buf), 0x113FDB5Cu);
}

static void test_extend_at_any_split_equals_whole(void **state)
{
	(void)state;
	uint8_t buf[97];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 131u + 7u);
	uint32_t whole = crc32c(buf, sizeof buf);
	for (size_t split = 0; split <= sizeof buf; split++) {
		uint32_t head = crc32c(buf, split);
		assert_int_equal(crc32c_extend(head, buf + split, sizeof buf - split), whole);
		assert_int_equal(crc32c_extend_sw(crc32c_extend_sw(0, buf, split), buf + split,
		                                  sizeof buf - split),
		                 whole);
	}
}

static void test_hardware_and_software_agree_at_every_length_and_alignment(void **state)
{
	(void)state;
	enum { max_len = 300 };
	uint8_t *buf = malloc(max_len + 8);
	assert_non_null(buf);
	uint32_t seed = 12345;
	for (size_t i = 0; i < max_len + 8; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
	for (size_t align = 0; align < 8; align++)
		for (size_t len = 0; len <= max_len; len++)
			assert_int_equal(crc32c_extend(0, buf + align, len),
			                 crc32c_extend_sw(0, buf + align, len));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_string_gives_the_castagnoli_check_value),
	    cmocka_unit_test(test_empty_input_gives_zero),
	    cmocka_unit_test(test_rfc3720_vectors_match),
	    cmocka_unit_test(test_extend_at_any_split_equals_whole),
	    cmocka_unit_test(test_hardware_and_software_agree_at_every_length_and_alignment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
