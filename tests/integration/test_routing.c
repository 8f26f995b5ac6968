/* Routing by job type through real processes: a worker fetches only the
 * types it has handlers for, so two workers on one queue with different
 * handlers each get only their own jobs (none fails for want of a
 * handler), and a type no connected worker handles waits, is reported as
 * unroutable by stats and the CLI, and runs once a worker for it joins. */
#include "jm_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/client.h>

#include "fixture.h"
#include "harness.h"
#include "stack.h"

#define JOBS_PER_TYPE 12

static uint64_t submit(struct stack *f, const char *queue, const char *type)
{
	/* One attempt: a job given to a worker without its handler would be
	 * failed there and dead-lettered at once. */
	jm_job_spec spec = {
	    .queue = queue, .type = type, .payload = "p", .payload_len = 1, .max_attempts = 1};
	uint64_t id;
	if (jm_client_submit(f->client, &spec, &id) != 0)
		fail_msg("submit: %s", jm_client_last_error());
	return id;
}

/* Waits for id to complete and checks that its result is want (which
 * names the worker that ran it). */
static void assert_completed_by(struct stack *f, uint64_t id, const char *want)
{
	jm_job_info info = {0};
	assert_jm_ok(jm_client_wait(f->client, id, 30000, &info));
	if (info.state != JM_STATE_COMPLETED)
		fail_msg("job %llu (type %s) ended in state %d: %s", (unsigned long long)id,
		         info.type, info.state, info.last_error);
	assert_int_equal(info.attempt, 1);
	assert_true(info.has_result);
	assert_string_equal((const char *)info.result, want);
	jm_job_info_fini(&info);
}

struct unroutable_watch {
	struct stack *f;
	const char *queue;
	uint64_t want;
	uint64_t seen;
	char types[256];
};

/* True once the queue's stats report want unroutable jobs. */
static bool unroutable_is(void *arg)
{
	struct unroutable_watch *w = arg;
	jm_queue_stats *queues;
	size_t count;
	if (jm_client_stats(w->f->client, &queues, &count) != 0)
		return false;
	for (size_t i = 0; i < count; i++) {
		if (strcmp(queues[i].name, w->queue) != 0)
			continue;
		w->seen = queues[i].unroutable;
		w->types[0] = '\0';
		for (unsigned t = 0; t < queues[i].unroutable_types_count; t++) {
			size_t used = strlen(w->types);
			snprintf(w->types + used, sizeof w->types - used, "%s%s", t ? "," : "",
			         queues[i].unroutable_types[t]);
		}
	}
	free(queues);
	return w->seen == w->want;
}

static void test_each_type_goes_only_to_the_worker_with_its_handler(void **state)
{
	struct stack *f = stack_open(state, "routing", NULL, NULL, STACK_CLIENT);
	const char *args_a[] = {"--queue",        "mixed", "--concurrency", "2", "--handler",
	                        "a=printf ran-a", NULL};
	const char *args_b[] = {"--queue",        "mixed", "--concurrency", "2", "--handler",
	                        "b=printf ran-b", NULL};
	struct harness_proc wa, wb, wc;
	assert_jm_ok(harness_worker_start(&f->h, "w-a", args_a, &wa));
	assert_jm_ok(harness_worker_start(&f->h, "w-b", args_b, &wb));

	/* Interleaved, so each worker's fetch finds the other's type first. */
	uint64_t a[JOBS_PER_TYPE], b[JOBS_PER_TYPE], c[2];
	for (int i = 0; i < JOBS_PER_TYPE; i++) {
		a[i] = submit(f, "mixed", "a");
		b[i] = submit(f, "mixed", "b");
	}
	c[0] = submit(f, "mixed", "c");
	c[1] = submit(f, "mixed", "c");
	for (int i = 0; i < JOBS_PER_TYPE; i++) {
		assert_completed_by(f, a[i], "ran-a");
		assert_completed_by(f, b[i], "ran-b");
	}

	/* Nobody handles c: its jobs wait, and stats say why. */
	struct unroutable_watch watch = {f, "mixed", 2, 0, ""};
	if (!harness_wait_for(20000, unroutable_is, &watch, "2 unroutable jobs in stats"))
		fail_msg("stats report %llu unroutable jobs (%s), not 2",
		         (unsigned long long)watch.seen, watch.types);
	assert_string_equal(watch.types, "c");
	for (int i = 0; i < 2; i++) {
		jm_job_info info = {0};
		assert_jm_ok(jm_client_status(f->client, c[i], &info));
		assert_int_equal(info.state, JM_STATE_PENDING);
		assert_int_equal(info.attempt, 0);
		jm_job_info_fini(&info);
	}
	const char *stats_args[] = {"stats", NULL};
	char *out = NULL, *errs = NULL;
	assert_int_equal(stack_run_cli(f, stats_args, &out, &errs), 0);
	if (strstr(out, "2 unroutable (c)") == NULL)
		fail_msg("jobmesh stats does not report the unroutable jobs:\n%s", out);
	free(out);
	free(errs);

	/* A worker for c joins: they run there, and nothing is unroutable. */
	const char *args_c[] = {"--queue", "mixed", "--handler", "c=printf ran-c", NULL};
	assert_jm_ok(harness_worker_start(&f->h, "w-c", args_c, &wc));
	assert_completed_by(f, c[0], "ran-c");
	assert_completed_by(f, c[1], "ran-c");
	watch.want = 0;
	assert_true(harness_wait_for(20000, unroutable_is, &watch, "no unroutable jobs"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_each_type_goes_only_to_the_worker_with_its_handler,
	                              stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
