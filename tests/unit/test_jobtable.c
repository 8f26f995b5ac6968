/* The job table (jobtable.h): jobs found by id across pages, a page gone
 * with its last job, a reserved page that makes an insert certain, and
 * each visiting every job once. */
#include "jm_test.h"

#include <stdlib.h>
#include <string.h>

#include "jobtable.h"

#define JOBS 100

static struct job jobs[JOBS];

/* Counts each job of jobs[] seen (by its place in the array). */
static void count_cb(struct job *job, void *arg)
{
	uint64_t *seen = arg;
	seen[job - jobs]++;
}

static void test_jobs_are_found_across_pages_and_pages_go_with_their_last_job(void **state)
{
	(void)state;
	struct jobtable t;
	assert_int_equal(jobtable_init(&t), 0);
	for (int i = 0; i < JOBS; i++) {
		/* Consecutive ids, then a sparse one far away. */
		jobs[i].id = i < JOBS - 1 ? 1000 + (uint64_t)i : (1ull << 40) + 7;
		assert_int_equal(jobtable_insert(&t, &jobs[i]), 0);
	}
	assert_int_equal(t.count, JOBS);
	for (int i = 0; i < JOBS; i++)
		assert_ptr_equal(jobtable_find(&t, jobs[i].id), &jobs[i]);
	assert_null(jobtable_find(&t, 999));
	assert_null(jobtable_find(&t, (1ull << 40) + 8)); /* same page, no job */
	uint64_t seen[JOBS] = {0};
	jobtable_each(&t, count_cb, seen);
	for (int i = 0; i < JOBS; i++)
		assert_int_equal(seen[i], 1);
	uint64_t pages = t.pages.count;
	jobtable_remove(&t, &jobs[JOBS - 1]); /* alone in its page */
	assert_int_equal(t.pages.count, pages - 1);
	jobtable_remove(&t, &jobs[JOBS - 1]); /* not there: nothing happens */
	for (int i = 0; i < JOBS - 1; i++)
		jobtable_remove(&t, &jobs[i]);
	assert_int_equal(t.count, 0);
	assert_int_equal(t.pages.count, 0);
	jobtable_fini(&t);
}

static void test_a_reserved_page_takes_its_job_and_an_empty_table_is_walked(void **state)
{
	(void)state;
	struct jobtable t;
	assert_int_equal(jobtable_init(&t), 0);
	uint64_t seen[JOBS] = {0};
	jobtable_each(&t, count_cb, seen);
	assert_int_equal(jobtable_reserve(&t, 77), 0);
	assert_int_equal(t.pages.count, 1);
	assert_null(jobtable_find(&t, 77));
	jobs[0].id = 77;
	assert_int_equal(jobtable_insert(&t, &jobs[0]), 0);
	assert_int_equal(t.pages.count, 1);
	assert_ptr_equal(jobtable_find(&t, 77), &jobs[0]);
	jobtable_fini(&t); /* frees the page, not the job */
	struct jobtable zeroed;
	memset(&zeroed, 0, sizeof zeroed);
	jobtable_each(&zeroed, count_cb, seen);
	jobtable_fini(&zeroed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jobs_are_found_across_pages_and_pages_go_with_their_last_job),
	    cmocka_unit_test(test_a_reserved_page_takes_its_job_and_an_empty_table_is_walked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
