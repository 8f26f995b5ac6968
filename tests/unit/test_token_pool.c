/* token_pool: tokens are never 0, never repeat across many refills, and a
 * token handed out is not kept in the pool. */
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs these first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "token_pool.h"

#define DRAWS (TOKEN_POOL_SIZE * 300 + 7) /* many refills, the last one partly used */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_tokens_are_nonzero_and_distinct_across_refills(void **state)
{
	(void)state;
	struct token_pool pool = {0};
	uint64_t *seen = malloc(DRAWS * sizeof *seen);
	assert_non_null(seen);
	for (size_t i = 0; i < DRAWS; i++) {
		struct jm_err err = {0};
		assert_int_equal(token_pool_draw(&pool, &seen[i], &err), 0);
		assert_true(seen[i] != 0);
		assert_true(pool.left < TOKEN_POOL_SIZE);
	}
	/* 64 random bits: a repeat among 9,607 draws would mean the pool
	 * hands a block out twice (odds of chance ~2.5e-12). */
	qsort(seen, DRAWS, sizeof *seen, cmp_u64);
	for (size_t i = 1; i < DRAWS; i++)
		assert_true(seen[i] != seen[i - 1]);
	free(seen);
}

static void test_a_drawn_token_is_not_kept(void **state)
{
	(void)state;
	struct token_pool pool = {0};
	uint64_t token;
	struct jm_err err = {0};
	assert_int_equal(token_pool_draw(&pool, &token, &err), 0);
	assert_int_equal(pool.left, TOKEN_POOL_SIZE - 1);
	for (size_t i = 0; i < TOKEN_POOL_SIZE; i++)
		assert_true(pool.tokens[i] != token);
	/* The used slots are cleared, the unused ones hold tokens. */
	assert_true(pool.tokens[0] == 0);
	for (size_t i = 1; i < TOKEN_POOL_SIZE; i++)
		assert_true(pool.tokens[i] != 0); /* 0 by chance: 2^-64 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tokens_are_nonzero_and_distinct_across_refills),
	    cmocka_unit_test(test_a_drawn_token_is_not_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
