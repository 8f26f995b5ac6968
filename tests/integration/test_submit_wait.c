/* Submit and wait in one round trip (jm_client_submit_wait, the SUBMIT_WAIT
 * request) against a real broker and worker: the answer carries the job's
 * outcome; a job the answer reported survives kill -9 of the broker right
 * after it, whether the answer said completed or (on timeout) pending; an
 * idempotency key waits for the job it matched; a request of the wrong
 * role or with a bad job is refused and stores nothing. */
#include "jm_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/client.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"
#include "rpc.h"
#include "stack.h"

#define QUEUE "sw"
#define WAIT_MS 10000

static jm_job_spec spec_of(const char *payload)
{
	return (jm_job_spec){
	    .queue = QUEUE, .type = "echo", .payload = payload, .payload_len = strlen(payload)};
}

static void expect_result(const jm_job_info *info, const char *want)
{
	assert_int_equal(info->state, JM_STATE_COMPLETED);
	assert_true(info->has_result);
	assert_int_equal(info->result_len, strlen(want));
	assert_memory_equal(info->result, want, strlen(want));
}

/* kill -9, then the same data directory again; the client reopened. */
static void broker_kill9_and_restart(struct stack *f)
{
	jm_client_close(f->client);
	f->client = NULL;
	assert_jm_ok(harness_kill(&f->broker));
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	assert_jm_ok(jm_client_open(&f->client, f->h.broker_url));
}

static void test_the_answer_is_the_completed_job_with_its_result(void **state)
{
	struct stack *f = stack_open(state, "submit_wait_done", NULL, NULL, STACK_CLIENT);
	fixture_worker_start(&f->h, "w-echo", QUEUE, "2", "echo=printf 'done:'; cat");
	jm_job_spec spec = spec_of("first");
	jm_job_info info;
	assert_jm_ok(jm_client_submit_wait(f->client, &spec, WAIT_MS, &info));
	assert_true(info.id > 0);
	expect_result(&info, "done:first");
	uint64_t first = info.id;
	jm_job_info_fini(&info);
	/* Several in a row, each its own job. */
	for (int i = 0; i < 20; i++) {
		char payload[16];
		snprintf(payload, sizeof payload, "n%d", i);
		spec = spec_of(payload);
		assert_jm_ok(jm_client_submit_wait(f->client, &spec, WAIT_MS, &info));
		char want[32];
		snprintf(want, sizeof want, "done:%s", payload);
		expect_result(&info, want);
		assert_true(info.id > first);
		first = info.id;
		jm_job_info_fini(&info);
	}
	/* What it answered is on disk: kill -9 right after the answer. */
	spec = spec_of("last");
	assert_jm_ok(jm_client_submit_wait(f->client, &spec, WAIT_MS, &info));
	uint64_t last = info.id;
	jm_job_info_fini(&info);
	broker_kill9_and_restart(f);
	assert_jm_ok(jm_client_result(f->client, last, &info));
	expect_result(&info, "done:last");
	jm_job_info_fini(&info);
}

static void test_a_timed_out_wait_reports_the_pending_job_which_survives_kill_9(void **state)
{
	struct stack *f = stack_open(state, "submit_wait_timeout", NULL, NULL, STACK_CLIENT);
	jm_job_spec spec = spec_of("nobody runs me yet");
	jm_job_info info;
	assert_int_equal(jm_client_submit_wait(f->client, &spec, 300, &info), JM_ETIMEDOUT);
	assert_true(info.id > 0);
	assert_int_equal(info.state, JM_STATE_PENDING);
	assert_non_null(strstr(jm_client_last_error(), "still pending"));
	uint64_t id = info.id;
	jm_job_info_fini(&info);
	/* timeout 0: the answer comes at once, as a submit and a status. */
	spec = spec_of("at once");
	assert_int_equal(jm_client_submit_wait(f->client, &spec, 0, &info), JM_ETIMEDOUT);
	assert_int_equal(info.state, JM_STATE_PENDING);
	uint64_t second = info.id;
	assert_true(second > id);
	jm_job_info_fini(&info);

	broker_kill9_and_restart(f);
	assert_jm_ok(jm_client_status(f->client, id, &info));
	assert_int_equal(info.state, JM_STATE_PENDING);
	jm_job_info_fini(&info);
	assert_jm_ok(jm_client_status(f->client, second, &info));
	assert_int_equal(info.state, JM_STATE_PENDING);
	jm_job_info_fini(&info);
	/* And both run once a worker comes. */
	fixture_worker_start(&f->h, "w-late", QUEUE, "1", "echo=printf 'late:'; cat");
	fixture_wait_finished(&f->h, f->client, id, WAIT_MS, &info);
	expect_result(&info, "late:nobody runs me yet");
	jm_job_info_fini(&info);
	fixture_wait_finished(&f->h, f->client, second, WAIT_MS, &info);
	expect_result(&info, "late:at once");
	jm_job_info_fini(&info);
}

static void test_an_idempotency_key_waits_for_the_job_it_matched(void **state)
{
	struct stack *f = stack_open(state, "submit_wait_key", NULL, NULL, STACK_CLIENT);
	fixture_worker_start(&f->h, "w-key", QUEUE, "1", "echo=printf 'ran:'; cat");
	jm_job_spec spec = spec_of("charge 42");
	spec.idempotency_key = "order-42";
	jm_job_info info;
	assert_jm_ok(jm_client_submit_wait(f->client, &spec, WAIT_MS, &info));
	expect_result(&info, "ran:charge 42");
	uint64_t id = info.id;
	jm_job_info_fini(&info);
	spec = spec_of("charge 42 again");
	spec.idempotency_key = "order-42";
	assert_jm_ok(jm_client_submit_wait(f->client, &spec, WAIT_MS, &info));
	assert_int_equal(info.id, id);
	expect_result(&info, "ran:charge 42"); /* the first job's, run once */
	jm_job_info_fini(&info);
	jm_queue_stats *stats = NULL;
	size_t count = 0;
	assert_jm_ok(jm_client_stats(f->client, &stats, &count));
	assert_int_equal(count, 1);
	assert_int_equal(stats[0].completed, 1);
	free(stats);
}

static void test_a_bad_job_is_refused_with_what_is_wrong_and_nothing_is_stored(void **state)
{
	struct stack *f = stack_open(state, "submit_wait_bad", NULL, NULL, STACK_RPC);
	/* Past the SDK's own checks: the broker judges the raw request. */
	struct proto_msg req = {.type = PROTO_SUBMIT_WAIT};
	req.u.submit_wait.timeout_ms = 100;
	snprintf(req.u.submit_wait.job.attrs.queue, sizeof req.u.submit_wait.job.attrs.queue, "%s",
	         QUEUE);
	snprintf(req.u.submit_wait.job.attrs.type, sizeof req.u.submit_wait.job.attrs.type, "t");
	req.u.submit_wait.job.run_at_us = jm_wall_us() + 20ull * 366 * 24 * 3600 * 1000000;
	struct rpc_reply reply;
	struct jm_err err = {0};
	assert_int_equal(rpc_call(f->rpc, &req, 5000, &reply, &err), JM_EINVAL);
	assert_non_null(strstr(err.msg, "submit-wait: job 0: run_at_us"));
	assert_non_null(strstr(err.msg, "give a time within 10 years"));

	struct proto_msg stats = {.type = PROTO_STATS};
	assert_jm_ok(rpc_call(f->rpc, &stats, 5000, &reply, &err));
	assert_int_equal(reply.msg.type, PROTO_STATS_REPLY);
	assert_int_equal(reply.msg.u.stats_reply.queues_count, 0);
	rpc_reply_fini(&reply);
}

static void test_the_cli_submits_and_waits_with_exit_codes_by_state(void **state)
{
	struct stack *f = stack_open(state, "submit_wait_cli", NULL, NULL, 0);
	fixture_worker_start(&f->h, "w-cli", QUEUE, "1", "echo=printf 'done:'; cat");
	char *out = NULL, *errs = NULL;
	const char *done[] = {"submit", "--queue", QUEUE, "--type", "echo", "--payload",
	                      "hi",     "--wait",  "10",  "--json", NULL};
	assert_int_equal(stack_run_cli(f, done, &out, &errs), 0);
	assert_non_null(strstr(out, "\"state\": \"completed\""));
	assert_non_null(strstr(out, "\"result\": \"done:hi\""));
	free(out);
	free(errs);
	/* Nobody serves "idle": 12, the job's state, and the job stays. */
	const char *idle[] = {"submit", "--queue", "idle", "--type", "t", "--wait", "1", NULL};
	assert_int_equal(stack_run_cli(f, idle, &out, &errs), 12);
	assert_non_null(strstr(out, "pending"));
	assert_non_null(strstr(errs, "is still pending after 1 s"));
	free(out);
	free(errs);
	const char *lines[] = {"submit",        "--queue", QUEUE, "--type", "echo",
	                       "--stdin-lines", "--wait",  "1",   NULL};
	assert_int_equal(stack_run_cli(f, lines, &out, &errs), 2);
	assert_non_null(strstr(errs, "--wait waits for one job"));
	free(out);
	free(errs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_the_answer_is_the_completed_job_with_its_result,
	                              stack_close),
	    cmocka_unit_test_teardown(
	        test_a_timed_out_wait_reports_the_pending_job_which_survives_kill_9, stack_close),
	    cmocka_unit_test_teardown(test_an_idempotency_key_waits_for_the_job_it_matched,
	                              stack_close),
	    cmocka_unit_test_teardown(
	        test_a_bad_job_is_refused_with_what_is_wrong_and_nothing_is_stored, stack_close),
	    cmocka_unit_test_teardown(test_the_cli_submits_and_waits_with_exit_codes_by_state,
	                              stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
