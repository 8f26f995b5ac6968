/* SIGTERM to a jobmesh-worker with a deep queue of exec jobs: the worker
 * exits within a bound, hands back what it held but never started without
 * counting an attempt, and finishes (drain) or hands back (drain timeout
 * passed) the jobs it was running, as README "Workers and liveness" says.
 * Real broker, real worker, real shell handlers.
 *
 * The queue holds FAST_JOBS quick jobs and then SLOW_JOBS slow ones: the
 * quick ones make the worker measure short runs and open its prefetch
 * buffer, so when the first slow job starts the buffer holds slow jobs
 * fetched meanwhile, the case of a worker stopped with a full buffer. */
#include "jm_test.h"

#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/client.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"
#include "stack.h"

#define FAST_JOBS 300
#define SLOW_JOBS 2000
#define JOBS (FAST_JOBS + SLOW_JOBS)
#define CONCURRENCY "4"
#define WAIT_MS 60000
/* From SIGTERM to exit: a running slow job's remaining half second (or
 * the 1 s drain timeout and a kill) and one hand-back settle, with room for
 * a loaded machine; the fault this guards against held the exit for longer
 * than 5 s. */
#define STOP_BOUND_MS 5000

/* Payload "f": exit at once. Anything else: leave started-<id>, then
 * SLOW (a sleep, exec'd so the worker's SIGTERM reaches it). */
static const char handler_script[] = "#!/bin/sh\n"
                                     "dir=$(dirname \"$0\")\n"
                                     "read p\n"
                                     "[ \"$p\" = f ] && exit 0\n"
                                     "echo started > \"$dir/started-$JOBMESH_JOB_ID\"\n"
                                     "exec sleep \"$SLOW_S\"\n";

struct jobs {
	uint64_t ids[JOBS];
};

static void submit_all(struct stack *f, struct jobs *jobs)
{
	static jm_job_spec specs[JOBS];
	for (int i = 0; i < JOBS; i++)
		specs[i] = (jm_job_spec){.queue = "q",
		                         .type = "t",
		                         .payload = i < FAST_JOBS ? "f" : "s",
		                         .payload_len = 1,
		                         .max_attempts = 3};
	if (jm_client_submit_many(f->client, specs, JOBS, false, jobs->ids, NULL) != 0)
		fail_msg("submit %d jobs: %s", JOBS, jm_client_last_error());
}

/* How many started-<id> files the handler left. */
static int started_count(struct stack *f)
{
	DIR *dir = opendir(f->h.dir);
	if (dir == NULL)
		return 0;
	int count = 0;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL)
		if (strncmp(e->d_name, "started-", 8) == 0)
			count++;
	closedir(dir);
	return count;
}

static bool job_started(struct stack *f, uint64_t id)
{
	char path[HARNESS_DIR_MAX + 64];
	snprintf(path, sizeof path, "%s/started-%" PRIu64, f->h.dir, id);
	FILE *fp = fopen(path, "r");
	if (fp != NULL)
		fclose(fp);
	return fp != NULL;
}

static bool a_slow_job_started_cb(void *arg)
{
	return started_count(arg) > 0;
}

static uint64_t queue_active(struct stack *f)
{
	jm_queue_stats *queues = NULL;
	size_t count = 0;
	assert_jm_ok(jm_client_stats(f->client, &queues, &count));
	uint64_t active = 0;
	for (size_t i = 0; i < count; i++)
		if (strcmp(queues[i].name, "q") == 0)
			active = queues[i].active;
	free(queues);
	return active;
}

/* Starts the worker (--drain-timeout drain_s) with slow jobs of slow_s
 * seconds, waits until the first one runs, SIGTERMs the worker and returns
 * how long it took to exit (failing the test past STOP_BOUND_MS or on a
 * non-zero exit). */
static uint64_t stop_while_slow_jobs_run(struct stack *f, const char *slow_s, const char *drain_s)
{
	const char *script = harness_write_file(&f->h, "handler.sh", handler_script, 0755);
	assert_non_null(script);
	assert_int_equal(setenv("SLOW_S", slow_s, 1), 0); /* the worker passes it on */
	char handler[HARNESS_DIR_MAX + 32];
	snprintf(handler, sizeof handler, "t=%s", script);
	const char *args[] = {
	    "--queue",     "q", "--concurrency",   CONCURRENCY, "--handler",       handler,
	    "--worker-id", "w", "--drain-timeout", drain_s,     "--kill-grace-ms", "1000",
	    NULL};
	assert_jm_ok(harness_worker_start(&f->h, "w", args, &f->worker));
	if (!harness_wait_for(WAIT_MS, a_slow_job_started_cb, f, "a slow job to start"))
		fixture_fail_with_logs(&f->h, NULL, "no slow job started");
	uint64_t held = queue_active(f);
	print_message("worker holds %" PRIu64 " job(s) on %s slots at SIGTERM\n", held,
	              CONCURRENCY);
	uint64_t start_us = jm_mono_us();
	int status = -1;
	int rc = harness_stop(&f->worker, SIGTERM, 30000, &status);
	uint64_t took_ms = (jm_mono_us() - start_us) / 1000;
	print_message("the worker exited %" PRIu64 " ms after SIGTERM\n", took_ms);
	if (rc != 0 || status != 0 || took_ms > STOP_BOUND_MS)
		fixture_fail_with_logs(&f->h, NULL,
		                       "SIGTERM: exit %d (rc %d) after %" PRIu64
		                       " ms, expected 0 within %d ms",
		                       status, rc, took_ms, STOP_BOUND_MS);
	return took_ms;
}

/* Every job is completed, or pending with no attempt counted; none is
 * active, failed or counted an attempt it did not finish. Returns how
 * many slow jobs completed. */
static int check_accounting(struct stack *f, const struct jobs *jobs, bool running_finish)
{
	int slow_completed = 0;
	for (int i = 0; i < JOBS; i++) {
		jm_job_info info = {0};
		assert_jm_ok(jm_client_status(f->client, jobs->ids[i], &info));
		bool started = i >= FAST_JOBS && job_started(f, jobs->ids[i]);
		if (i < FAST_JOBS) {
			if (info.state != JM_STATE_COMPLETED)
				fixture_fail_with_logs(&f->h, NULL, "quick job %" PRIu64 " is %s",
				                       info.id, jm_job_state_name(info.state));
		} else if (started && running_finish) {
			/* Running at SIGTERM, within the drain timeout: finished. */
			if (info.state != JM_STATE_COMPLETED || info.attempt != 1)
				fixture_fail_with_logs(
				    &f->h, NULL,
				    "job %" PRIu64 " was running at SIGTERM: %s attempt %u, "
				    "expected completed at attempt 1",
				    info.id, jm_job_state_name(info.state), info.attempt);
			slow_completed++;
		} else if (info.state != JM_STATE_PENDING || info.attempt != 0) {
			/* Never started, or handed back past the drain timeout:
			 * back in the queue, no attempt counted. */
			fixture_fail_with_logs(&f->h, NULL,
			                       "job %" PRIu64 " (%s at SIGTERM) is %s attempt %u: "
			                       "expected pending with no attempt counted",
			                       info.id, started ? "running" : "not started",
			                       jm_job_state_name(info.state), info.attempt);
		}
		jm_job_info_fini(&info);
	}
	assert_int_equal(queue_active(f), 0);
	return slow_completed;
}

static void
test_sigterm_with_a_deep_queue_finishes_running_jobs_and_hands_back_the_rest(void **state)
{
	struct stack *f = stack_open(state, "stop-drain", NULL, NULL, STACK_CLIENT);
	static struct jobs jobs;
	submit_all(f, &jobs);
	/* A slow job of 0.5 s ends well inside a 3 s drain timeout. */
	stop_while_slow_jobs_run(f, "0.5", "3");
	int finished = check_accounting(f, &jobs, true);
	assert_true(finished >= 1);
	assert_int_equal(finished, started_count(f));
}

static void test_sigterm_past_the_drain_timeout_hands_running_jobs_back_uncounted(void **state)
{
	struct stack *f = stack_open(state, "stop-timeout", NULL, NULL, STACK_CLIENT);
	static struct jobs jobs;
	submit_all(f, &jobs);
	/* A slow job of 60 s outlives the 1 s drain timeout: SIGTERM, then
	 * handed back. */
	stop_while_slow_jobs_run(f, "60", "1");
	assert_int_equal(check_accounting(f, &jobs, false), 0);
	assert_true(started_count(f) >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(
	        test_sigterm_with_a_deep_queue_finishes_running_jobs_and_hands_back_the_rest,
	        stack_close),
	    cmocka_unit_test_teardown(
	        test_sigterm_past_the_drain_timeout_hands_running_jobs_back_uncounted, stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
