/* The whole job lifecycle through real processes: a jobmesh-broker, real
 * jobmesh-worker processes running shell handlers, and the client SDK,
 * all on an ipc:// address in a fresh temp dir. */
#include "jm_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/client.h>

#include "fixture.h"
#include "harness.h"
#include "stack.h"

#define WAIT_MS 60000

/* A broker with fast retries (the tests wait on them) plus extra, and a
 * client. */
static struct stack *fixture_start(void **state, const char *name, const char *const *extra)
{
	return stack_open(state, name, fixture_fast_retries, extra, STACK_CLIENT);
}

static uint64_t submit(struct stack *f, const char *queue, const char *type, const char *payload,
                       unsigned max_attempts)
{
	jm_job_spec spec = {.queue = queue,
	                    .type = type,
	                    .payload = payload,
	                    .payload_len = strlen(payload),
	                    .max_attempts = max_attempts};
	uint64_t id = 0;
	int rc = jm_client_submit(f->client, &spec, &id);
	if (rc != 0)
		fail_msg("submit: %s", jm_client_last_error());
	return id;
}

/* 1,000 jobs through one worker with concurrency 4: each runs once and
 * completes with its own result. */
static void test_thousand_jobs_complete_exactly_once_with_results(void **state)
{
	struct stack *f = fixture_start(state, "thousand", NULL);
	char handler[512];
	snprintf(handler, sizeof handler,
	         "echo=echo \"$JOBMESH_JOB_ID\" >> %s/runs.log; printf 'r-'; cat", f->h.dir);
	fixture_worker_start(&f->h, "w-thousand", "bulk", "4", handler);

	enum { JOBS = 1000, PER_CALL = 100 };
	static uint64_t ids[JOBS];
	static char payloads[JOBS][32];
	jm_job_spec specs[PER_CALL];
	for (int i = 0; i < JOBS; i += PER_CALL) {
		for (int k = 0; k < PER_CALL; k++) {
			snprintf(payloads[i + k], sizeof payloads[i + k], "payload-%d", i + k);
			specs[k] = (jm_job_spec){.queue = "bulk",
			                         .type = "echo",
			                         .payload = payloads[i + k],
			                         .payload_len = strlen(payloads[i + k])};
		}
		assert_jm_ok(
		    jm_client_submit_many(f->client, specs, PER_CALL, false, &ids[i], NULL));
	}
	for (int i = 0; i < JOBS; i++) {
		jm_job_info info = {0};
		fixture_wait_finished(&f->h, f->client, ids[i], WAIT_MS, &info);
		assert_int_equal(info.state, JM_STATE_COMPLETED);
		assert_int_equal(info.attempt, 1);
		char expected[64];
		snprintf(expected, sizeof expected, "r-%.31s", payloads[i]);
		assert_int_equal(info.result_len, strlen(expected));
		assert_memory_equal(info.result, expected, info.result_len);
		jm_job_info_fini(&info);
	}
	/* Each id ran exactly once. */
	char *runs = harness_read_file(harness_path(&f->h, "runs.log"), NULL);
	assert_non_null(runs);
	static unsigned char seen[JOBS + 1];
	memset(seen, 0, sizeof seen);
	int lines = 0;
	for (char *line = strtok(runs, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long id = strtoull(line, NULL, 10);
		assert_true(id >= ids[0] && id <= ids[JOBS - 1]);
		seen[id - ids[0]]++;
		lines++;
	}
	free(runs);
	assert_int_equal(lines, JOBS);
	for (int i = 0; i < JOBS; i++)
		assert_int_equal(seen[i], 1);

	jm_queue_stats *queues;
	size_t count;
	assert_jm_ok(jm_client_stats(f->client, &queues, &count));
	assert_int_equal(count, 1);
	assert_string_equal(queues[0].name, "bulk");
	assert_int_equal(queues[0].completed, JOBS);
	assert_int_equal(queues[0].pending + queues[0].active + queues[0].failed, 0);
	free(queues);
}

static void test_handler_failing_twice_completes_at_attempt_three(void **state)
{
	struct stack *f = fixture_start(state, "flaky", NULL);
	fixture_worker_start(
	    &f->h, "w-flaky", "flaky", "2",
	    "flaky=if [ \"$JOBMESH_ATTEMPT\" -lt 3 ]; then echo \"boom $JOBMESH_ATTEMPT\" >&2;"
	    " exit 1; fi; printf done");
	uint64_t id = submit(f, "flaky", "flaky", "x", 0);
	jm_job_info info = {0};
	fixture_wait_finished(&f->h, f->client, id, WAIT_MS, &info);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	assert_int_equal(info.attempt, 3);
	assert_int_equal(info.max_attempts, 3);
	assert_string_equal((char *)info.result, "done");
	jm_job_info_fini(&info);
}

static void test_always_failing_job_is_dead_lettered_after_max_attempts(void **state)
{
	struct stack *f = fixture_start(state, "doomed", NULL);
	fixture_worker_start(&f->h, "w-doomed", "doomed", "1",
	                     "doomed=echo 'payment API said no' >&2; exit 7");
	uint64_t id = submit(f, "doomed", "doomed", "x", 4);
	jm_job_info info = {0};
	fixture_wait_finished(&f->h, f->client, id, WAIT_MS, &info);
	assert_int_equal(info.state, JM_STATE_FAILED);
	assert_int_equal(info.attempt, 4);
	assert_non_null(strstr(info.last_error, "payment API said no"));
	assert_non_null(strstr(info.last_error, "7"));
	jm_job_info_fini(&info);
	jm_queue_stats *queues;
	size_t count;
	assert_jm_ok(jm_client_stats(f->client, &queues, &count));
	assert_int_equal(queues[0].failed, 1);
	free(queues);
}

static void test_permanent_failure_is_not_retried(void **state)
{
	struct stack *f = fixture_start(state, "permanent", NULL);
	char handler[512];
	snprintf(handler, sizeof handler,
	         "bad=echo run >> %s/permanent.log; echo 'invalid card' >&2; exit 100", f->h.dir);
	fixture_worker_start(&f->h, "w-permanent", "cards", "1", handler);
	uint64_t id = submit(f, "cards", "bad", "x", 5);
	jm_job_info info = {0};
	fixture_wait_finished(&f->h, f->client, id, WAIT_MS, &info);
	assert_int_equal(info.state, JM_STATE_FAILED);
	assert_int_equal(info.attempt, 1);
	assert_non_null(strstr(info.last_error, "invalid card"));
	jm_job_info_fini(&info);
	size_t len = 0;
	char *log = harness_read_file(harness_path(&f->h, "permanent.log"), &len);
	assert_non_null(log);
	assert_string_equal(log, "run\n");
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_thousand_jobs_complete_exactly_once_with_results,
	                              stack_close),
	    cmocka_unit_test_teardown(test_handler_failing_twice_completes_at_attempt_three,
	                              stack_close),
	    cmocka_unit_test_teardown(test_always_failing_job_is_dead_lettered_after_max_attempts,
	                              stack_close),
	    cmocka_unit_test_teardown(test_permanent_failure_is_not_retried, stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
