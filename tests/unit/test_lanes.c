/* Ready lanes (broker/lanes.c): one heap per job type, ordered by
 * priority then readiness; a fetch's types look only at their own lanes,
 * a fetch of any type at the head of each; a lane lives while a job of its
 * type exists and always has room for all of them. */
#include "jm_test.h"

#include "lanes.h"

#define JOBS 6

static struct job jobs[JOBS];
static uint64_t next_seq;

/* Job i of type (a static string stands in for the interned name), made
 * (its lane taken) but not ready. */
static struct job *make(struct lanes *l, int i, const char *type, int priority)
{
	struct job *job = &jobs[i];
	memset(job, 0, sizeof *job);
	job->id = (uint64_t)i + 1;
	job->attrs.type = type;
	job->attrs.priority = (int16_t)priority;
	job->ready_index = UINT32_MAX;
	assert_jm_ok(lanes_take(l, type));
	return job;
}

static void ready(struct lanes *l, struct job *job)
{
	job->ready_seq = ++next_seq;
	job->updated_us = next_seq * 10;
	lanes_push(l, job);
}

static void test_each_type_has_its_own_lane_in_priority_then_fifo_order(void **state)
{
	(void)state;
	struct lanes l;
	lanes_init(&l);
	struct job *a1 = make(&l, 0, "a", 0), *b1 = make(&l, 1, "b", 0);
	struct job *a2 = make(&l, 2, "a", 5), *a3 = make(&l, 3, "a", 0);
	ready(&l, a1);
	ready(&l, b1);
	ready(&l, a2);
	ready(&l, a3);
	assert_int_equal(l.ready_count, 4);
	assert_int_equal(l.ready_lanes, 2);
	/* Type a: the higher priority first, then in the order they became
	 * ready; type b sees only its own. */
	assert_ptr_equal(lanes_peek_type(&l, "a"), a2);
	assert_ptr_equal(lanes_peek_type(&l, "b"), b1);
	assert_null(lanes_peek_type(&l, "c"));
	/* Any type: the head that runs first across lanes. */
	assert_ptr_equal(lanes_peek(&l), a2);
	lanes_remove(&l, a2);
	assert_ptr_equal(lanes_peek(&l), a1);
	lanes_remove(&l, a1);
	assert_ptr_equal(lanes_peek(&l), b1); /* older than a3 */
	lanes_remove(&l, b1);
	assert_int_equal(l.ready_lanes, 1); /* b's lane left the ready list */
	assert_ptr_equal(lanes_peek_type(&l, "a"), a3);
	assert_int_equal(lanes_oldest_updated_us(&l), a3->updated_us);
	lanes_remove(&l, a3);
	lanes_remove(&l, a3); /* not ready: left alone */
	assert_null(lanes_peek(&l));
	assert_int_equal(l.ready_count, 0);
	assert_int_equal(lanes_oldest_updated_us(&l), 0);
	for (int i = 0; i < 4; i++)
		lanes_give(&l, jobs[i].attrs.type);
	assert_false(lanes_any(&l));
	lanes_fini(&l);
}

static void test_removing_a_job_from_the_middle_keeps_the_order(void **state)
{
	(void)state;
	struct lanes l;
	lanes_init(&l);
	for (int i = 0; i < JOBS; i++)
		ready(&l, make(&l, i, "t", i % 3));
	/* Priorities 0 1 2 0 1 2: heads 2 (jobs 2, 5), then 1 (1, 4), then 0. */
	lanes_remove(&l, &jobs[4]);
	int want[] = {2, 5, 1, 0, 3};
	for (int k = 0; k < 5; k++) {
		struct job *head = lanes_peek_type(&l, "t");
		assert_ptr_equal(head, &jobs[want[k]]);
		lanes_remove(&l, head);
	}
	assert_null(lanes_peek(&l));
	for (int i = 0; i < JOBS; i++)
		lanes_give(&l, "t");
	lanes_fini(&l);
}

static void test_a_lane_lives_while_a_job_of_its_type_exists(void **state)
{
	(void)state;
	struct lanes l;
	lanes_init(&l);
	make(&l, 0, "a", 0);
	make(&l, 1, "a", 0);
	assert_non_null(lanes_find(&l, "a"));
	assert_true(lanes_find(&l, "a")->cap >= 2);
	lanes_give(&l, "a");
	assert_non_null(lanes_find(&l, "a"));
	lanes_give(&l, "a");
	assert_null(lanes_find(&l, "a"));
	/* A teardown may free jobs that are still ready. */
	ready(&l, make(&l, 2, "b", 0));
	lanes_give(&l, "b");
	assert_int_equal(l.ready_count, 0);
	assert_int_equal(l.ready_lanes, 0);
	lanes_fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_each_type_has_its_own_lane_in_priority_then_fifo_order),
	    cmocka_unit_test(test_removing_a_job_from_the_middle_keeps_the_order),
	    cmocka_unit_test(test_a_lane_lives_while_a_job_of_its_type_exists),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
