/* A queue's ready list, one per lane (lanes.h; here one type and no
 * group, so one lane): highest priority first, first come first served
 * within a priority, jobs leaving from anywhere, and the oldest ready time
 * read from each level's first job. Jobs here are bare structs: only the
 * fields the list reads are set. */
#include "jm_test.h"

#include <stdlib.h>
#include <string.h>

#include "queue.h"

#define JOBS 12

struct fixture {
	struct queue_registry reg;
	struct queue *q;
	struct job jobs[JOBS];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct queue_policy defaults = {.max_attempts = 3};
	if (f == NULL || queue_registry_init(&f->reg, &defaults, 8) != 0 ||
	    queue_get(&f->reg, "q", &f->q) != 0)
		return -1;
	for (int i = 0; i < JOBS; i++) {
		f->jobs[i].id = (uint64_t)i + 1;
		f->jobs[i].queue = f->q;
		f->jobs[i].updated_us = 1000 + (uint64_t)i;
		f->jobs[i].attrs.type = "t";
		if (queue_job_made(f->q, &f->jobs[i], "") != 0)
			return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < JOBS; i++)
		queue_job_freed(f->q, &f->jobs[i]);
	queue_registry_fini(&f->reg);
	free(f);
	return 0;
}

/* The one lane of the fixture's jobs. */
static const struct lane *lane_of(const struct queue *q)
{
	const struct lane_type *lt = lanes_find_type(&q->lanes, "t");
	assert_non_null(lt);
	struct u64map_node *node = u64map_find(&lt->lanes, 0);
	assert_non_null(node);
	return u64map_entry(node, struct lane, node);
}

/* The ids of q's ready jobs in run order, as "1 2 3". */
static const char *order(const struct queue *q)
{
	static char text[256];
	size_t len = 0;
	text[0] = '\0';
	const struct job *j;
	TAILQ_FOREACH(j, &lane_of(q)->ready, ready_link)
	len += (size_t)snprintf(text + len, sizeof text - len, "%s%llu", len ? " " : "",
	                        (unsigned long long)j->id);
	return text;
}

static void push(struct fixture *f, int index, int16_t priority)
{
	f->jobs[index].attrs.priority = priority;
	queue_ready_push(f->q, &f->jobs[index]);
}

static void test_higher_priority_first_and_first_come_within_one(void **state)
{
	struct fixture *f = *state;
	push(f, 0, 0);
	push(f, 1, 5);
	push(f, 2, 0);
	push(f, 3, -7);
	push(f, 4, 5);
	push(f, 5, 1000);
	push(f, 6, -1000);
	assert_string_equal(order(f->q), "6 2 5 1 3 4 7");
	assert_int_equal(queue_ready_count(f->q), 7);
	assert_int_equal(lane_of(f->q)->levels_count, 5);
}

static void test_jobs_leave_from_anywhere_and_levels_follow(void **state)
{
	struct fixture *f = *state;
	push(f, 0, 0);
	push(f, 1, 0);
	push(f, 2, 0);
	push(f, 3, 9);
	queue_ready_remove(f->q, &f->jobs[1]); /* the middle of a level */
	assert_string_equal(order(f->q), "4 1 3");
	queue_ready_remove(f->q, &f->jobs[2]); /* a level's last */
	push(f, 4, 0);                         /* joins after the new last */
	assert_string_equal(order(f->q), "4 1 5");
	queue_ready_remove(f->q, &f->jobs[3]); /* a level's only job: it goes */
	assert_int_equal(lane_of(f->q)->levels_count, 1);
	queue_ready_remove(f->q, &f->jobs[0]); /* a level's first */
	assert_string_equal(order(f->q), "5");
	push(f, 5, 3); /* a level before the only one */
	push(f, 6, -3);
	assert_string_equal(order(f->q), "6 5 7");
	queue_ready_remove(f->q, &f->jobs[4]);
	queue_ready_remove(f->q, &f->jobs[5]);
	queue_ready_remove(f->q, &f->jobs[6]);
	assert_null(queue_ready_peek(f->q));
	assert_int_equal(queue_ready_count(f->q), 0);
	assert_int_equal(lane_of(f->q)->levels_count, 0);
}

static void test_oldest_ready_time_is_the_oldest_first_of_a_level(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(queue_oldest_ready_us(f->q), 0);
	push(f, 3, 0); /* updated 1003 */
	push(f, 1, 2); /* updated 1001 */
	push(f, 0, 0); /* updated 1000, behind 1003 in its level */
	assert_int_equal(queue_oldest_ready_us(f->q), 1001);
	queue_ready_remove(f->q, &f->jobs[1]);
	assert_int_equal(queue_oldest_ready_us(f->q), 1003);
}

/* A lane has room for a level per job made for it (lanes_take), so a job
 * becoming ready never allocates. */
static void test_reserved_room_lets_new_levels_in_without_allocating(void **state)
{
	struct fixture *f = *state;
	uint32_t cap = lane_of(f->q)->levels_cap;
	assert_true(cap >= JOBS);
	for (int i = 0; i < JOBS; i++)
		push(f, i, (int16_t)(i * 10 - 50));
	assert_int_equal(lane_of(f->q)->levels_cap, cap);
	assert_int_equal(lane_of(f->q)->levels_count, JOBS);
	assert_string_equal(order(f->q), "12 11 10 9 8 7 6 5 4 3 2 1");
	for (int i = 0; i < JOBS; i++)
		queue_ready_remove(f->q, &f->jobs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_higher_priority_first_and_first_come_within_one,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jobs_leave_from_anywhere_and_levels_follow, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_oldest_ready_time_is_the_oldest_first_of_a_level,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_reserved_room_lets_new_levels_in_without_allocating, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
