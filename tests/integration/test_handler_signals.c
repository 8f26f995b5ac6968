/* A handler stopped by the worker gets the SIGTERM itself: a handler given
 * as a script path is exec'd, not run under a /bin/sh -c whose death would
 * end the kill grace at once, so the script's TERM trap runs, on a cancel
 * and on a run timeout. After a cancel, the worker says the job was
 * cancelled instead of blaming another worker. Real broker, real worker,
 * real shell scripts. */
#include "jm_test.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/client.h>

#include "fixture.h"
#include "harness.h"
#include "stack.h"

#define WAIT_MS 30000

/* A script that says it started, then waits; on TERM its trap takes a
 * moment (longer than the old shell-dies-then-SIGKILL race) and leaves
 * <dir>/trapped-<job id>. */
static const char trap_script[] =
    "#!/bin/sh\n"
    "dir=$(dirname \"$0\")\n"
    "trap 'sleep 0.3; echo trapped > \"$dir/trapped-$JOBMESH_JOB_ID\"; exit 1' TERM\n"
    "echo started > \"$dir/started-$JOBMESH_JOB_ID\"\n"
    "sleep 60 &\n"
    "wait $!\n";

/* A broker, a client, and a worker running the trap script with a kill
 * grace far longer than the trap needs. */
static struct stack *start(void **state, const char *name)
{
	struct stack *f = stack_open(state, name, NULL, NULL, STACK_CLIENT);
	const char *script = harness_write_file(&f->h, "trap.sh", trap_script, 0755);
	assert_non_null(script);
	char handler[HARNESS_DIR_MAX + 32];
	snprintf(handler, sizeof handler, "t=%s", script);
	const char *args[] = {
	    "--queue",        "q",   "--handler",       handler, "--worker-id", "w",
	    "--heartbeat-ms", "100", "--kill-grace-ms", "20000", NULL};
	assert_jm_ok(harness_worker_start(&f->h, "w", args, &f->worker));
	return f;
}

static uint64_t submit(struct stack *f, uint64_t timeout_ms)
{
	jm_job_spec spec = {.queue = "q",
	                    .type = "t",
	                    .payload = "p",
	                    .payload_len = 1,
	                    .max_attempts = 1,
	                    .timeout_ms = timeout_ms};
	uint64_t id;
	if (jm_client_submit(f->client, &spec, &id) != 0)
		fail_msg("submit: %s", jm_client_last_error());
	return id;
}

struct file_wait {
	char path[HARNESS_DIR_MAX + 64];
};

static bool file_exists_cb(void *arg)
{
	FILE *fp = fopen(((struct file_wait *)arg)->path, "r");
	if (fp != NULL)
		fclose(fp);
	return fp != NULL;
}

/* Waits for <dir>/<prefix>-<id>; fails the test with the logs if it never
 * appears. */
static void await_file(struct stack *f, const char *prefix, uint64_t id)
{
	struct file_wait w;
	snprintf(w.path, sizeof w.path, "%s/%s-%" PRIu64, f->h.dir, prefix, id);
	if (!harness_wait_for(WAIT_MS, file_exists_cb, &w, w.path))
		fixture_fail_with_logs(&f->h, NULL, "%s never appeared", w.path);
}

struct log_wait {
	const char *path;
	const char *text;
};

static bool log_has_cb(void *arg)
{
	struct log_wait *w = arg;
	return fixture_count_in_file(w->path, w->text) > 0;
}

static void test_a_cancelled_script_handler_runs_its_term_trap(void **state)
{
	struct stack *f = start(state, "handler-cancel");
	uint64_t id = submit(f, 0);
	await_file(f, "started", id);
	jm_job_info info = {0};
	assert_jm_ok(jm_client_cancel(f->client, id, &info));
	assert_int_equal(info.state, JM_STATE_CANCELLED);
	jm_job_info_fini(&info);
	await_file(f, "trapped", id);

	/* The worker's outcome is refused (the job is cancelled), and it
	 * says why in those words. */
	struct log_wait w = {harness_path(&f->h, "w.err"), "the job was cancelled"};
	if (!harness_wait_for(WAIT_MS, log_has_cb, &w, "the worker to log the cancel"))
		fixture_fail_with_logs(&f->h, NULL, "no \"%s\" in the worker's log", w.text);
	assert_int_equal(fixture_count_in_file(w.path, "another worker meanwhile"), 0);
}

static void test_a_timed_out_script_handler_runs_its_term_trap(void **state)
{
	struct stack *f = start(state, "handler-timeout");
	uint64_t id = submit(f, 500);
	await_file(f, "trapped", id);
	jm_job_info info = {0};
	fixture_wait_finished(&f->h, f->client, id, WAIT_MS, &info);
	assert_int_equal(info.state, JM_STATE_FAILED);
	assert_non_null(strstr(info.last_error, "timed out after 500 ms"));
	jm_job_info_fini(&info);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_a_cancelled_script_handler_runs_its_term_trap,
	                              stack_close),
	    cmocka_unit_test_teardown(test_a_timed_out_script_handler_runs_its_term_trap,
	                              stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
