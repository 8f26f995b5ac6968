/* The worker's held leases (worker/held.c): an entry's abandon eventfd is
 * made only when a handler asks for it, is readable at once when the
 * abandon came first, turns readable when it comes later, and is the same
 * descriptor at every call; lookups by key find every one of thousands of
 * entries (the set's hash grows as it fills) and none that was removed,
 * one at a time or many at once. Single-threaded. */
#include "jm_test.h"

#include <poll.h>

#include "../../worker/held.h"

static bool readable_now(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static void test_held_abandon_fd_is_made_when_asked_and_turns_readable(void **state)
{
	(void)state;
	struct held_set set;
	held_init(&set);
	struct held_lease *entry = held_add(&set, 7, 1);
	assert_non_null(entry);
	assert_int_equal(entry->abandon_fd, -1); /* nothing made per delivery */
	int fd = held_abandon_fd(&set, entry);
	assert_true(fd >= 0);
	assert_int_equal(held_abandon_fd(&set, entry), fd);
	assert_false(readable_now(fd));
	assert_true(held_mark_abandon(&set, 7, 1));
	assert_true(readable_now(fd));
	held_remove(&set, entry);
	held_fini(&set);
}

static void test_held_abandon_fd_asked_after_the_abandon_is_readable_at_once(void **state)
{
	(void)state;
	struct held_set set;
	held_init(&set);
	struct held_lease *entry = held_add(&set, 8, 2);
	assert_non_null(entry);
	assert_true(held_mark_abandon(&set, 8, 2));
	int fd = held_abandon_fd(&set, entry);
	assert_true(fd >= 0);
	assert_true(readable_now(fd));
	assert_int_equal(held_abandon_fd(&set, NULL), -1);
	held_fini(&set); /* closes what is left */
}

#define MANY 3000u

/* held.c allocates with the C library, not through cmocka (whose free
 * this file's free is). */
#undef free
static void free_real(void *ptr)
{
	free(ptr);
}

static void test_held_finds_each_of_thousands_of_entries_by_key_and_no_removed_one(void **state)
{
	(void)state;
	struct held_set set;
	held_init(&set);
	static struct held_lease *entries[MANY + 1];
	for (uint64_t id = 1; id <= MANY; id++) {
		entries[id] = held_add(&set, id, id * 2);
		assert_non_null(entries[id]);
	}
	/* Every third one goes, 50 at a time through held_remove_many, the
	 * rest of those one by one. */
	struct held_lease *gone[50];
	size_t gone_count = 0;
	for (uint64_t id = 3; id <= MANY; id += 3) {
		if (id < MANY / 2) {
			gone[gone_count++] = entries[id];
			if (gone_count == 50) {
				held_remove_many(&set, gone, gone_count);
				gone_count = 0;
			}
		} else {
			held_remove(&set, entries[id]);
		}
		entries[id] = NULL;
	}
	gone[gone_count++] = NULL; /* skipped */
	held_remove_many(&set, gone, gone_count);
	assert_int_equal(set.count, MANY - MANY / 3);

	held_set_settled_ref(&set, 1, 2); /* settled: out of heartbeats */
	struct proto_lease_ref *refs = NULL;
	assert_int_equal(held_snapshot(&set, &refs), MANY - MANY / 3 - 1);
	free_real(refs);
	for (uint64_t id = 1; id <= MANY; id++) {
		assert_false(held_mark_abandon(&set, id, id * 2 + 1)); /* another lease */
		assert_true(held_mark_abandon(&set, id, id * 2) == (entries[id] != NULL));
		if (entries[id] != NULL)
			assert_true(atomic_load(&entries[id]->abandon));
	}
	held_fini(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
	        test_held_finds_each_of_thousands_of_entries_by_key_and_no_removed_one),
	    cmocka_unit_test(test_held_abandon_fd_is_made_when_asked_and_turns_readable),
	    cmocka_unit_test(test_held_abandon_fd_asked_after_the_abandon_is_readable_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
