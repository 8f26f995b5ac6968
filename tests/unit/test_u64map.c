/* common/u64map: an intrusive u64-keyed hash table. Finding, growing past
 * its buckets, shrinking back after removals, chains of colliding keys,
 * and each() that may free what it is given. */
#include "jm_test.h"

#include <stdbool.h>

#include "u64map.h"

struct item {
	uint64_t payload;
	struct u64map_node node;
};

static struct item *item_of(struct u64map_node *node)
{
	return node ? u64map_entry(node, struct item, node) : NULL;
}

static struct item *items_new(size_t count, uint64_t first_key)
{
	struct item *items = calloc(count, sizeof *items);
	assert_non_null(items);
	for (size_t i = 0; i < count; i++) {
		items[i].node.key = first_key + i;
		items[i].payload = (first_key + i) * 3;
	}
	return items;
}

static void test_insert_then_find_returns_the_embedding_object(void **state)
{
	(void)state;
	struct u64map m;
	assert_jm_ok(u64map_init(&m, 0));
	struct item a = {.payload = 7, .node.key = 42};
	struct item b = {.payload = 9, .node.key = UINT64_MAX};
	assert_jm_ok(u64map_insert(&m, &a.node));
	assert_jm_ok(u64map_insert(&m, &b.node));
	assert_ptr_equal(item_of(u64map_find(&m, 42)), &a);
	assert_ptr_equal(item_of(u64map_find(&m, UINT64_MAX)), &b);
	assert_null(u64map_find(&m, 43));
	assert_null(u64map_find(&m, 0));
	assert_int_equal(m.count, 2);
	u64map_fini(&m);
}

static void test_min_buckets_round_up_to_a_power_of_two(void **state)
{
	(void)state;
	struct u64map m;
	assert_jm_ok(u64map_init(&m, 1000));
	assert_int_equal(m.mask + 1, 1024);
	u64map_fini(&m);
	assert_jm_ok(u64map_init(&m, 1));
	assert_int_equal(m.mask + 1, 8);
	u64map_fini(&m);
}

static void test_table_grows_past_its_buckets_and_keeps_every_node(void **state)
{
	(void)state;
	enum { COUNT = 100000 };
	struct u64map m;
	assert_jm_ok(u64map_init(&m, 8));
	struct item *items = items_new(COUNT, 1);
	for (size_t i = 0; i < COUNT; i++) {
		assert_jm_ok(u64map_insert(&m, &items[i].node));
		assert_true(m.count <= m.mask + 1); /* load factor at most 1 */
	}
	assert_int_equal(m.count, COUNT);
	assert_true(m.mask + 1 >= COUNT);
	for (size_t i = 0; i < COUNT; i++)
		assert_ptr_equal(item_of(u64map_find(&m, i + 1)), &items[i]);
	assert_null(u64map_find(&m, COUNT + 1));
	u64map_fini(&m);
	free(items);
}

static void test_table_shrinks_after_removals_but_not_below_its_minimum(void **state)
{
	(void)state;
	enum { COUNT = 4096 };
	struct u64map m;
	assert_jm_ok(u64map_init(&m, 64));
	struct item *items = items_new(COUNT, 1000);
	for (size_t i = 0; i < COUNT; i++)
		assert_jm_ok(u64map_insert(&m, &items[i].node));
	uint64_t grown = m.mask + 1;
	assert_true(grown >= COUNT);
	/* Remove all but 10: the table halves as it empties, and what is left
	 * is still found. */
	for (size_t i = 10; i < COUNT; i++) {
		u64map_remove(&m, &items[i].node);
		assert_true(m.mask + 1 == 64 || m.count >= (m.mask + 1) / 4);
	}
	assert_int_equal(m.count, 10);
	assert_int_equal(m.mask + 1, 64);
	for (size_t i = 0; i < 10; i++)
		assert_ptr_equal(item_of(u64map_find(&m, 1000 + i)), &items[i]);
	for (size_t i = 10; i < COUNT; i++)
		assert_null(u64map_find(&m, 1000 + i));
	u64map_fini(&m);
	free(items);
}

static void test_removing_from_the_middle_of_a_chain_keeps_the_rest(void **state)
{
	(void)state;
	struct u64map m;
	assert_jm_ok(u64map_init(&m, 8));
	/* Eight keys that all hash to bucket 0 of 8 (the table's hash, spelled
	 * out): one chain of eight, and the table stays at 8 buckets. */
	struct item items[8];
	size_t n = 0;
	uint64_t first_bucket_key = 0;
	for (uint64_t key = 1; n < 8 && key < 100000; key++) {
		uint64_t bucket = (key * 0x9E3779B97F4A7C15ull >> 17) & 7;
		if (bucket != 0)
			continue;
		if (n == 0)
			first_bucket_key = key;
		items[n] = (struct item){.payload = key, .node.key = key};
		n++;
	}
	assert_int_equal(n, 8);
	for (size_t i = 0; i < n; i++)
		assert_jm_ok(u64map_insert(&m, &items[i].node));
	assert_int_equal(m.mask + 1, 8);
	u64map_remove(&m, &items[3].node);
	u64map_remove(&m, &items[0].node);
	u64map_remove(&m, &items[7].node);
	for (size_t i = 0; i < n; i++) {
		bool removed = i == 3 || i == 0 || i == 7;
		if (removed)
			assert_null(u64map_find(&m, items[i].node.key));
		else
			assert_ptr_equal(item_of(u64map_find(&m, items[i].node.key)), &items[i]);
	}
	assert_null(u64map_find(&m, first_bucket_key));
	assert_int_equal(m.count, 5);
	u64map_fini(&m);
}

static void test_removing_a_node_not_in_the_table_changes_nothing(void **state)
{
	(void)state;
	struct u64map m;
	assert_jm_ok(u64map_init(&m, 8));
	struct item in = {.node.key = 5};
	struct item twin = {.node.key = 5}; /* same key, another object */
	struct item out = {.node.key = 6};
	assert_jm_ok(u64map_insert(&m, &in.node));
	u64map_remove(&m, &twin.node);
	u64map_remove(&m, &out.node);
	assert_int_equal(m.count, 1);
	assert_ptr_equal(item_of(u64map_find(&m, 5)), &in);
	u64map_fini(&m);
}

struct each_seen {
	uint64_t count;
	uint64_t key_sum;
};

static void count_and_free_cb(struct u64map_node *node, void *arg)
{
	struct each_seen *seen = arg;
	seen->count++;
	seen->key_sum += node->key;
	free(item_of(node));
}

static void test_each_visits_every_node_once_and_may_free_it(void **state)
{
	(void)state;
	enum { COUNT = 3000 };
	struct u64map m;
	assert_jm_ok(u64map_init(&m, 8));
	uint64_t key_sum = 0;
	for (uint64_t key = 1; key <= COUNT; key++) {
		struct item *it = calloc(1, sizeof *it);
		assert_non_null(it);
		it->node.key = key * 7919; /* not sequential */
		key_sum += it->node.key;
		assert_jm_ok(u64map_insert(&m, &it->node));
	}
	struct each_seen seen = {0};
	u64map_each(&m, count_and_free_cb, &seen);
	assert_int_equal(seen.count, COUNT);
	assert_int_equal(seen.key_sum, key_sum);
	u64map_fini(&m);
}

static void test_fini_of_a_zeroed_map_is_harmless(void **state)
{
	(void)state;
	struct u64map m = {0};
	struct each_seen seen = {0};
	u64map_each(&m, count_and_free_cb, &seen);
	assert_int_equal(seen.count, 0);
	u64map_fini(&m);
}

static void test_sequential_keys_land_one_per_bucket(void **state)
{
	/* Ids are given out in sequence: each gets a bucket of its own, so a
	 * lookup walks no chain (and a run of them walks buckets in order). */
	struct u64map m;
	assert_jm_ok(u64map_init(&m, 1024));
	struct item *items = items_new(1024, 5000);
	for (size_t i = 0; i < 1024; i++)
		assert_jm_ok(u64map_insert(&m, &items[i].node));
	assert_int_equal(m.mask + 1, 1024);
	for (uint64_t b = 0; b <= m.mask; b++) {
		assert_non_null(m.buckets[b]);
		assert_null(m.buckets[b]->next);
	}
	for (size_t i = 0; i < 1024; i++)
		assert_ptr_equal(item_of(u64map_find(&m, 5000 + i)), &items[i]);
	u64map_fini(&m);
	free(items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_insert_then_find_returns_the_embedding_object),
	    cmocka_unit_test(test_min_buckets_round_up_to_a_power_of_two),
	    cmocka_unit_test(test_table_grows_past_its_buckets_and_keeps_every_node),
	    cmocka_unit_test(test_table_shrinks_after_removals_but_not_below_its_minimum),
	    cmocka_unit_test(test_removing_from_the_middle_of_a_chain_keeps_the_rest),
	    cmocka_unit_test(test_removing_a_node_not_in_the_table_changes_nothing),
	    cmocka_unit_test(test_each_visits_every_node_once_and_may_free_it),
	    cmocka_unit_test(test_fini_of_a_zeroed_map_is_harmless),
	    cmocka_unit_test(test_sequential_keys_land_one_per_bucket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
