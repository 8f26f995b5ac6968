/* SHA-256: the FIPS 180-4 example vectors, the million 'a's, and a split
 * update giving the same digest as one call. */
#include <stdio.h>
#include <string.h>

/* cmocka.h needs these first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sha256.h"

static void hex_of(const uint8_t d[JM_SHA256_BYTES], char out[65])
{
	for (int i = 0; i < JM_SHA256_BYTES; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void assert_digest(const char *data, size_t len, const char *want)
{
	uint8_t d[JM_SHA256_BYTES];
	char hex[65];
	jm_sha256(data, len, d);
	hex_of(d, hex);
	assert_string_equal(hex, want);
}

static void test_fips_examples_give_their_digests(void **state)
{
	(void)state;
	assert_digest("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	assert_digest(two, strlen(two),
	              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_digest("test", 4,
	              "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

static void test_a_million_a_in_odd_pieces_gives_the_fips_digest(void **state)
{
	(void)state;
	char chunk[997];
	memset(chunk, 'a', sizeof chunk);
	struct jm_sha256 s;
	jm_sha256_init(&s);
	size_t left = 1000000;
	while (left > 0) {
		size_t take = left < sizeof chunk ? left : sizeof chunk;
		jm_sha256_update(&s, chunk, take);
		left -= take;
	}
	uint8_t d[JM_SHA256_BYTES];
	char hex[65];
	jm_sha256_final(&s, d);
	hex_of(d, hex);
	assert_string_equal(hex,
	                    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_lengths_around_the_padding_boundary_match_one_shot(void **state)
{
	(void)state;
	char buf[130];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)('0' + i % 10);
	for (size_t len = 50; len <= 130; len++) {
		uint8_t one[JM_SHA256_BYTES], split[JM_SHA256_BYTES];
		jm_sha256(buf, len, one);
		struct jm_sha256 s;
		jm_sha256_init(&s);
		jm_sha256_update(&s, buf, len / 3);
		jm_sha256_update(&s, buf + len / 3, len - len / 3);
		jm_sha256_final(&s, split);
		assert_memory_equal(one, split, JM_SHA256_BYTES);
	}
}

static void test_hmac_gives_the_rfc_4231_digests(void **state)
{
	(void)state;
	uint8_t d[JM_SHA256_BYTES];
	char hex[65];
	const char *data = "what do ya want for nothing?";
	jm_hmac_sha256("Jefe", 4, data, strlen(data), d);
	hex_of(d, hex);
	assert_string_equal(hex,
	                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* A key longer than the block is hashed first. */
	uint8_t key[131];
	memset(key, 0xaa, sizeof key);
	data = "Test Using Larger Than Block-Size Key - Hash Key First";
	jm_hmac_sha256(key, sizeof key, data, strlen(data), d);
	hex_of(d, hex);
	assert_string_equal(hex,
	                    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	uint8_t other[JM_SHA256_BYTES];
	memcpy(other, d, sizeof other);
	assert_true(jm_equal_secret(d, other, sizeof d));
	other[31] ^= 1;
	assert_false(jm_equal_secret(d, other, sizeof d));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fips_examples_give_their_digests),
	    cmocka_unit_test(test_a_million_a_in_odd_pieces_gives_the_fips_digest),
	    cmocka_unit_test(test_lengths_around_the_padding_boundary_match_one_shot),
	    cmocka_unit_test(test_hmac_gives_the_rfc_4231_digests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
