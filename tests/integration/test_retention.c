/* Retention per finished state through real processes: a queue keeps its
 * completed, failed (dead-lettered) and cancelled jobs each to its own
 * count, dead letters stay by default, the settings survive a kill -9, and
 * `jobmesh dead-letter remove` drops exactly the jobs it names, for good
 * (journaled: still gone after a restart). */
#include "jm_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/client.h>

#include "fixture.h"
#include "harness.h"
#include "stack.h"

#define OK_JOBS 5
#define BAD_JOBS 4
#define CANCELLED_JOBS 3

static uint64_t submit(struct stack *f, const char *queue, const char *type)
{
	jm_job_spec spec = {
	    .queue = queue, .type = type, .payload = "p", .payload_len = 1, .max_attempts = 1};
	uint64_t id = 0;
	if (jm_client_submit(f->client, &spec, &id) != 0)
		fail_msg("submit: %s", jm_client_last_error());
	return id;
}

/* Waits for job id to end in state (a worker runs it). */
static void await_state(struct stack *f, uint64_t id, int state)
{
	jm_job_info info = {0};
	assert_jm_ok(jm_client_wait(f->client, id, 60000, &info));
	if (info.state != state)
		fail_msg("job %llu ended in state %d, not %d", (unsigned long long)id, info.state,
		         state);
	jm_job_info_fini(&info);
}

/* The job's state, or 0 when the broker no longer has it. */
static int state_of(struct stack *f, uint64_t id)
{
	jm_job_info info = {0};
	int rc = jm_client_status(f->client, id, &info);
	if (rc == JM_ENOTFOUND)
		return 0;
	assert_jm_ok(rc);
	int state = info.state;
	jm_job_info_fini(&info);
	return state;
}

struct counts_watch {
	struct stack *f;
	const char *queue;
	uint64_t completed, failed, cancelled; /* wanted */
	uint64_t seen_completed, seen_failed, seen_cancelled;
};

static bool counts_are(void *arg)
{
	struct counts_watch *w = arg;
	jm_queue_stats *queues;
	size_t count;
	if (jm_client_stats(w->f->client, &queues, &count) != 0)
		return false;
	for (size_t i = 0; i < count; i++)
		if (strcmp(queues[i].name, w->queue) == 0) {
			w->seen_completed = queues[i].completed;
			w->seen_failed = queues[i].failed;
			w->seen_cancelled = queues[i].cancelled;
		}
	free(queues);
	return w->seen_completed == w->completed && w->seen_failed == w->failed &&
	       w->seen_cancelled == w->cancelled;
}

static void await_counts(struct stack *f, const char *queue, uint64_t completed, uint64_t failed,
                         uint64_t cancelled)
{
	struct counts_watch w = {f, queue, completed, failed, cancelled, 0, 0, 0};
	/* Retention sweeps once a second. */
	if (!harness_wait_for(10000, counts_are, &w, "the queue's counts"))
		fail_msg(
		    "queue %s: completed %llu failed %llu cancelled %llu, wanted %llu %llu %llu",
		    queue, (unsigned long long)w.seen_completed, (unsigned long long)w.seen_failed,
		    (unsigned long long)w.seen_cancelled, (unsigned long long)completed,
		    (unsigned long long)failed, (unsigned long long)cancelled);
}

static void restart(struct stack *f, bool kill9)
{
	jm_client_close(f->client);
	f->client = NULL;
	if (kill9)
		assert_jm_ok(harness_kill(&f->broker)); /* replayed from the journal */
	else                                            /* a clean stop writes a snapshot */
		assert_int_equal(harness_stop(&f->broker, SIGTERM, 10000, NULL), 0);
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	assert_jm_ok(jm_client_open(&f->client, f->h.broker_url));
}

/* A worker on queue: type "ok" completes, "bad" fails (max_attempts 1:
 * dead-lettered), one at a time so jobs finish in submit order. */
static void start_worker(struct stack *f, const char *queue)
{
	const char *args[] = {"--queue", queue,       "--concurrency", "1", "--handler",
	                      "ok=cat",  "--handler", "bad=exit 1",    NULL};
	assert_jm_ok(harness_worker_start(&f->h, "w-retention", args, &f->worker));
}

static void test_each_finished_state_keeps_to_its_own_limit_and_dead_letters_stay(void **state)
{
	struct stack *f = stack_open(state, "retention_states", NULL, NULL, STACK_CLIENT);
	/* keep-completed=2, keep-cancelled=1; failed left at its default
	 * (no limit). Paused first: the cancelled jobs never start. */
	jm_queue_settings want = {.set_mask = JM_QSET_KEEP_COMPLETED | JM_QSET_KEEP_CANCELLED |
	                                      JM_QSET_PAUSED,
	                          .keep_completed = 2,
	                          .keep_cancelled = 1,
	                          .paused = true},
	                  got;
	assert_jm_ok(jm_client_queue_set(f->client, "r", &want, &got));
	assert_true(got.keep_completed == 2 && got.keep_cancelled == 1);
	assert_true(got.keep_failed == JM_KEEP_ALL && got.keep_failed_age_ms == 0);
	uint64_t cancelled[CANCELLED_JOBS], ok[OK_JOBS], bad[BAD_JOBS];
	for (int i = 0; i < CANCELLED_JOBS; i++) {
		cancelled[i] = submit(f, "r", "ok");
		jm_job_info info = {0};
		assert_jm_ok(jm_client_cancel(f->client, cancelled[i], &info));
		jm_job_info_fini(&info);
	}
	assert_jm_ok(jm_client_queue_set(
	    f->client, "r", &(jm_queue_settings){.set_mask = JM_QSET_PAUSED, .paused = false},
	    NULL));
	start_worker(f, "r");
	for (int i = 0; i < OK_JOBS; i++)
		ok[i] = submit(f, "r", "ok");
	for (int i = 0; i < BAD_JOBS; i++)
		bad[i] = submit(f, "r", "bad");
	for (int i = 0; i < OK_JOBS; i++)
		await_state(f, ok[i], JM_STATE_COMPLETED);
	for (int i = 0; i < BAD_JOBS; i++)
		await_state(f, bad[i], JM_STATE_FAILED);
	await_counts(f, "r", 2, BAD_JOBS, 1);
	for (int round = 0; round < 2; round++) {
		/* The latest of each kept, the older dropped; every dead letter. */
		for (int i = 0; i < OK_JOBS; i++)
			assert_int_equal(state_of(f, ok[i]),
			                 i >= OK_JOBS - 2 ? JM_STATE_COMPLETED : 0);
		for (int i = 0; i < CANCELLED_JOBS; i++)
			assert_int_equal(state_of(f, cancelled[i]),
			                 i == CANCELLED_JOBS - 1 ? JM_STATE_CANCELLED : 0);
		for (int i = 0; i < BAD_JOBS; i++)
			assert_int_equal(state_of(f, bad[i]), JM_STATE_FAILED);
		if (round == 1)
			break;
		restart(f, true);
		assert_jm_ok(jm_client_queue_set(f->client, "r", &(jm_queue_settings){0}, &got));
		assert_int_equal(got.set_mask, JM_QSET_KEEP_COMPLETED | JM_QSET_KEEP_CANCELLED);
		assert_true(got.keep_completed == 2 && got.keep_cancelled == 1);
		assert_true(got.keep_failed == JM_KEEP_ALL);
		assert_true(got.keep_completed_age_ms == 7ull * 24 * 3600 * 1000);
		await_counts(f, "r", 2, BAD_JOBS, 1);
	}
	/* keep-finished=N is all three states (as before): dead letters too. */
	char *out = NULL, *errs = NULL;
	const char *set[] = {"queue", "set", "r", "keep-finished=1", "--json", NULL};
	assert_int_equal(stack_run_cli(f, set, &out, &errs), 0);
	if (strstr(out, "\"keep_failed\": 1") == NULL ||
	    strstr(out, "\"keep_completed\": 1") == NULL)
		fail_msg("queue set keep-finished=1 printed: %s", out);
	free(out);
	free(errs);
	await_counts(f, "r", 1, 1, 1);
	assert_int_equal(state_of(f, bad[BAD_JOBS - 1]), JM_STATE_FAILED);
	assert_int_equal(state_of(f, bad[0]), 0);
	/* A bad value is refused, naming what is allowed; nothing changes. */
	const char *wrong[] = {"queue", "set", "r", "keep-failed=lots", NULL};
	assert_int_not_equal(stack_run_cli(f, wrong, &out, &errs), 0);
	if (strstr(errs, "unlimited") == NULL)
		fail_msg("keep-failed=lots said: %s", errs);
	free(out);
	free(errs);
	assert_jm_ok(jm_client_queue_set(f->client, "r", &(jm_queue_settings){0}, &got));
	assert_true(got.keep_failed == 1);
}

/* Runs `jobmesh dead-letter remove r [id]`: its exit code, stdout in *out. */
static int cli_remove(struct stack *f, const char *id, char **out)
{
	char *errs = NULL;
	const char *args[] = {"dead-letter", "remove", "r", id, NULL};
	int code = stack_run_cli(f, args, out, &errs);
	free(errs);
	return code;
}

static void test_dead_letter_remove_drops_exactly_the_named_jobs_for_good(void **state)
{
	struct stack *f = stack_open(state, "retention_remove", NULL, NULL, STACK_CLIENT);
	start_worker(f, "r");
	uint64_t bad[BAD_JOBS];
	for (int i = 0; i < BAD_JOBS; i++)
		bad[i] = submit(f, "r", "bad");
	uint64_t done = submit(f, "r", "ok");
	for (int i = 0; i < BAD_JOBS; i++)
		await_state(f, bad[i], JM_STATE_FAILED);
	await_state(f, done, JM_STATE_COMPLETED);
	char id[32], *out = NULL;
	/* A completed job is no dead letter: refused, nothing removed. */
	snprintf(id, sizeof id, "%llu", (unsigned long long)done);
	assert_int_not_equal(cli_remove(f, id, &out), 0);
	free(out);
	assert_int_equal(state_of(f, done), JM_STATE_COMPLETED);
	snprintf(id, sizeof id, "%llu", (unsigned long long)bad[1]);
	assert_int_equal(cli_remove(f, id, &out), 0);
	char want[64];
	snprintf(want, sizeof want, "removed 1 job: %s\n", id);
	assert_string_equal(out, want);
	free(out);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < BAD_JOBS; i++)
			assert_int_equal(state_of(f, bad[i]), i == 1 ? 0 : JM_STATE_FAILED);
		assert_int_equal(state_of(f, done), JM_STATE_COMPLETED);
		if (round == 0)
			restart(f, true);
	}
	/* All of the queue's: the other three, in one journaled step. */
	uint64_t *ids = NULL;
	size_t count = 0;
	assert_jm_ok(jm_client_dead_remove(f->client, "r", 0, &ids, &count));
	assert_int_equal(count, BAD_JOBS - 1);
	free(ids);
	restart(f, true);
	for (int i = 0; i < BAD_JOBS; i++)
		assert_int_equal(state_of(f, bad[i]), 0);
	assert_int_equal(state_of(f, done), JM_STATE_COMPLETED);
	await_counts(f, "r", 1, 0, 0);
	restart(f, false); /* from the snapshot too */
	assert_int_equal(state_of(f, bad[0]), 0);
	await_counts(f, "r", 1, 0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(
	        test_each_finished_state_keeps_to_its_own_limit_and_dead_letters_stay, stack_close),
	    cmocka_unit_test_teardown(test_dead_letter_remove_drops_exactly_the_named_jobs_for_good,
	                              stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
