/* The worker's held leases (worker/held.c): an entry's abandon eventfd is
 * made only when a handler asks for it, is readable at once when the
 * abandon came first, turns readable when it comes later, and is the same
 * descriptor at every call. Single-threaded. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_held_abandon_fd_is_made_when_asked_and_turns_readable),
	    cmocka_unit_test(test_held_abandon_fd_asked_after_the_abandon_is_readable_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
