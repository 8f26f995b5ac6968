/* Ready lanes (broker/lanes.c): one heap per (job type, group), ordered by
 * priority then readiness (one list with priority levels); groups of a type take turns (deficit
 * round robin, one job a turn), a group at the per-group limit is skipped until one of its jobs
 * ends, a fetch's types look only at their own lanes, and a lane lives while a job of it exists
 * with room for all of them. */
#include "jm_test.h"

#include "lanes.h"

#define JOBS 256

static struct job jobs[JOBS];
static uint64_t next_seq;

/* Job i of type (a static string stands in for the interned name) and
 * group, made (its lane taken) but not ready. */
static struct job *make(struct lanes *l, int i, const char *type, const char *group, int priority)
{
	struct job *job = &jobs[i];
	memset(job, 0, sizeof *job);
	job->id = (uint64_t)i + 1;
	job->attrs.type = type;
	job->attrs.priority = (int16_t)priority;
	assert_jm_ok(lanes_take(l, type, group, &job->attrs.group));
	return job;
}

static struct job *ready(struct lanes *l, struct job *job)
{
	job->updated_us = ++next_seq * 10;
	lanes_push(l, job);
	return job;
}

/* What dispatch does: the next job for types, taken out of its lane. */
static struct job *take(struct lanes *l, const proto_name *types, uint32_t count)
{
	struct job *job = lanes_next(l, types, count);
	if (job)
		lanes_remove(l, job);
	return job;
}

static void give_all(struct lanes *l, int count)
{
	for (int i = 0; i < count; i++)
		lanes_give(l, jobs[i].attrs.type, jobs[i].attrs.group);
	assert_false(lanes_any(l));
	lanes_fini(l);
}

static void test_a_fetch_gets_only_its_types_in_priority_then_fifo_order(void **state)
{
	(void)state;
	struct lanes l;
	lanes_init(&l);
	struct job *a1 = ready(&l, make(&l, 0, "a", "", 0));
	struct job *b1 = ready(&l, make(&l, 1, "b", "", 0));
	struct job *a2 = ready(&l, make(&l, 2, "a", "", 5));
	struct job *a3 = ready(&l, make(&l, 3, "a", "", 0));
	assert_int_equal(l.ready_count, 4);
	proto_name b[1] = {"b"}, c[1] = {"c"}, ab[2] = {"a", "b"};
	assert_null(take(&l, c, 1));
	assert_true(lanes_can_give(&l, "a"));
	assert_false(lanes_can_give(&l, "c"));
	assert_ptr_equal(take(&l, b, 1), b1);
	assert_false(lanes_can_give(&l, "b"));
	/* No group: the order across types is priority, then the older id. */
	struct job *b2 = ready(&l, make(&l, 4, "b", "", 0));
	assert_ptr_equal(lanes_peek(&l), a2);
	assert_ptr_equal(take(&l, ab, 2), a2);
	assert_ptr_equal(take(&l, NULL, 0), a1);
	assert_ptr_equal(take(&l, NULL, 0), a3);
	assert_int_equal(lanes_oldest_updated_us(&l), b2->updated_us);
	assert_ptr_equal(take(&l, ab, 2), b2);
	assert_null(take(&l, NULL, 0));
	assert_false(lanes_can_give(&l, ""));
	assert_int_equal(l.ready_count, 0);
	assert_int_equal(lanes_oldest_updated_us(&l), 0);
	give_all(&l, 5);
}

static void test_a_job_put_back_keeps_its_place(void **state)
{
	(void)state;
	struct lanes l;
	lanes_init(&l);
	for (int i = 0; i < 4; i++)
		ready(&l, make(&l, i, "t", "", i == 3 ? 7 : 0));
	/* Taken out and put back in reverse, as a fetch's picks are. */
	struct job *x = take(&l, NULL, 0), *y = take(&l, NULL, 0);
	assert_ptr_equal(x, &jobs[3]);
	assert_ptr_equal(y, &jobs[0]);
	lanes_push_front(&l, y);
	lanes_push_front(&l, x);
	int want[] = {3, 0, 1, 2};
	for (int k = 0; k < 4; k++)
		assert_ptr_equal(take(&l, NULL, 0), &jobs[want[k]]);
	give_all(&l, 4);
}

/* The fairness bound (lanes.h): 2 groups, the small one's k-th job goes
 * within 2k dispatches of it becoming ready, however many the greedy one
 * has. */
static void test_a_greedy_group_does_not_starve_a_small_one(void **state)
{
	(void)state;
	struct lanes l;
	lanes_init(&l);
	const int greedy = 200, small = 10;
	for (int i = 0; i < greedy; i++)
		ready(&l, make(&l, i, "t", "greedy", 0));
	for (int i = 0; i < 3; i++) /* the greedy group gets a head start */
		assert_string_equal(lanes_group_name(&l, take(&l, NULL, 0)->attrs.group), "greedy");
	for (int i = 0; i < small; i++)
		ready(&l, make(&l, greedy + i, "t", "small", 0));
	int small_seen = 0, last_small_at = 0;
	for (int k = 1; k <= 2 * small; k++) {
		struct job *job = take(&l, NULL, 0);
		if (strcmp(lanes_group_name(&l, job->attrs.group), "small") == 0) {
			/* FIFO within the group. */
			assert_ptr_equal(job, &jobs[greedy + small_seen]);
			small_seen++;
			last_small_at = k;
		}
	}
	assert_int_equal(small_seen, small);
	assert_true(last_small_at <= 2 * small);
	/* Then the greedy group has the queue to itself. */
	for (int i = 0; i < greedy - 3 - small; i++)
		assert_string_equal(lanes_group_name(&l, take(&l, NULL, 0)->attrs.group), "greedy");
	assert_null(take(&l, NULL, 0));
	give_all(&l, greedy + small);
}

static void test_priority_holds_within_a_group_while_groups_take_turns(void **state)
{
	(void)state;
	struct lanes l;
	lanes_init(&l);
	ready(&l, make(&l, 0, "t", "x", 0));
	ready(&l, make(&l, 1, "t", "x", 9));
	ready(&l, make(&l, 2, "t", "y", 1));
	ready(&l, make(&l, 3, "t", "y", 5));
	/* x's ring turn first (it became ready first), its best job; then y's. */
	assert_ptr_equal(take(&l, NULL, 0), &jobs[1]);
	assert_ptr_equal(take(&l, NULL, 0), &jobs[3]);
	assert_ptr_equal(take(&l, NULL, 0), &jobs[0]);
	assert_ptr_equal(take(&l, NULL, 0), &jobs[2]);
	give_all(&l, 4);
}

static void test_groups_take_turns_across_types(void **state)
{
	(void)state;
	struct lanes l;
	lanes_init(&l);
	for (int i = 0; i < 6; i++)
		ready(&l, make(&l, i, "a", "greedy", 0));
	ready(&l, make(&l, 6, "b", "small", 0));
	ready(&l, make(&l, 7, "b", "small", 0));
	proto_name ab[2] = {"a", "b"};
	assert_ptr_equal(take(&l, ab, 2), &jobs[0]);
	/* b's job is younger than a's next, but its group was served less
	 * recently (never). */
	assert_ptr_equal(take(&l, ab, 2), &jobs[6]);
	assert_ptr_equal(take(&l, ab, 2), &jobs[1]);
	assert_ptr_equal(take(&l, ab, 2), &jobs[7]);
	for (int i = 2; i < 6; i++)
		assert_ptr_equal(take(&l, ab, 2), &jobs[i]);
	give_all(&l, 8);
}

static void test_a_group_at_its_limit_waits_until_one_of_its_jobs_ends(void **state)
{
	(void)state;
	struct lanes l;
	lanes_init(&l);
	lanes_set_group_limit(&l, 1);
	for (int i = 0; i < 3; i++)
		ready(&l, make(&l, i, "t", "g", 0));
	ready(&l, make(&l, 3, "t", "h", 0));
	struct job *g0 = take(&l, NULL, 0);
	assert_ptr_equal(g0, &jobs[0]);
	lanes_started(&l, g0);
	struct job *h0 = take(&l, NULL, 0);
	assert_ptr_equal(h0, &jobs[3]);
	lanes_started(&l, h0);
	/* Both groups at their limit: nothing, though g has ready jobs. */
	assert_null(lanes_next(&l, NULL, 0));
	assert_false(lanes_can_give(&l, ""));
	assert_false(lanes_can_give(&l, "t"));
	assert_int_equal(l.ready_count, 2);
	lanes_ended(&l, g0);
	assert_true(lanes_can_give(&l, "t"));
	struct job *g1 = take(&l, NULL, 0);
	assert_ptr_equal(g1, &jobs[1]);
	lanes_started(&l, g1);
	assert_null(lanes_next(&l, NULL, 0));
	/* Lifting the limit lets g go on at once. */
	lanes_set_group_limit(&l, 0);
	assert_ptr_equal(take(&l, NULL, 0), &jobs[2]);
	lanes_ended(&l, g1);
	lanes_ended(&l, h0);
	give_all(&l, 4);
}

static void test_group_names_are_held_once_per_queue_while_a_job_has_them(void **state)
{
	(void)state;
	struct lanes l;
	lanes_init(&l);
	struct job *x1 = make(&l, 0, "a", "tenant-42", 0);
	struct job *x2 = make(&l, 1, "b", "tenant-42", 0);
	struct job *none = make(&l, 2, "a", "", 0);
	assert_int_equal(none->attrs.group, 0);
	assert_true(x1->attrs.group != 0);
	assert_int_equal(x1->attrs.group, x2->attrs.group);
	assert_string_equal(lanes_group_name(&l, x1->attrs.group), "tenant-42");
	assert_string_equal(lanes_group_name(&l, 0), "");
	uint32_t index = x1->attrs.group;
	lanes_give(&l, "a", index);
	assert_string_equal(lanes_group_name(&l, index), "tenant-42");
	lanes_give(&l, "b", index);
	assert_string_equal(lanes_group_name(&l, index), ""); /* gone */
	lanes_give(&l, "a", 0);
	assert_false(lanes_any(&l));
	/* A teardown may free jobs that are still ready. */
	ready(&l, make(&l, 3, "b", "t", 0));
	lanes_give(&l, "b", jobs[3].attrs.group);
	assert_int_equal(l.ready_count, 0);
	assert_true(TAILQ_EMPTY(&l.ready));
	lanes_fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_fetch_gets_only_its_types_in_priority_then_fifo_order),
	    cmocka_unit_test(test_a_job_put_back_keeps_its_place),
	    cmocka_unit_test(test_a_greedy_group_does_not_starve_a_small_one),
	    cmocka_unit_test(test_priority_holds_within_a_group_while_groups_take_turns),
	    cmocka_unit_test(test_groups_take_turns_across_types),
	    cmocka_unit_test(test_a_group_at_its_limit_waits_until_one_of_its_jobs_ends),
	    cmocka_unit_test(test_group_names_are_held_once_per_queue_while_a_job_has_them),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
