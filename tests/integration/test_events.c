/* Events through the SDK against real processes: a jobmesh-broker, a
 * jobmesh-worker running shell handlers, and jm_client_subscribe /
 * jm_client_wait / jm_client_wait_batch, on an ipc:// address in a fresh
 * temp dir. */
#include "jm_test.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jobmesh/client.h>

#include "fixture.h"
#include "harness.h"
#include "stack.h"

#define WAIT_MS 60000

/* A broker with fast retries (the tests wait on them) and a client. */
static struct stack *fixture_start(void **state, const char *name)
{
	return stack_open(state, name, fixture_fast_retries, NULL, STACK_CLIENT);
}

static uint64_t elapsed_ms(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)((now.tv_sec - start->tv_sec) * 1000 +
	                  (now.tv_nsec - start->tv_nsec) / 1000000);
}

/* Submits jobs_count jobs of queue/type as one batch; ids get the job ids. */
static uint64_t submit_batch(struct stack *f, const char *queue, const char *type,
                             size_t jobs_count, uint64_t *ids)
{
	jm_job_spec *specs = calloc(jobs_count, sizeof *specs);
	assert_non_null(specs);
	for (size_t i = 0; i < jobs_count; i++)
		specs[i] =
		    (jm_job_spec){.queue = queue, .type = type, .payload = "x", .payload_len = 1};
	uint64_t batch_id = 0;
	int rc = jm_client_submit_many(f->client, specs, jobs_count, true, ids, &batch_id);
	free(specs);
	if (rc != 0)
		fail_msg("submit batch: %s", jm_client_last_error());
	assert_true(batch_id != 0);
	return batch_id;
}

/* ---- every job state change of a 1,000-job batch ----------------------- */

#define BIG_BATCH 1000
#define EVENTS_PER_JOB_MAX 8

struct job_trace {
	int states[EVENTS_PER_JOB_MAX];
	unsigned attempts[EVENTS_PER_JOB_MAX];
	unsigned count;
	bool overflow;
};

struct recorder {
	pthread_mutex_t lock;
	uint64_t batch_id;
	const uint64_t *ids; /* BIG_BATCH ids, ascending (as the broker gave them) */
	struct job_trace jobs[BIG_BATCH];
	unsigned unknown_jobs; /* job events for ids not in the batch */
	unsigned batch_events;
	jm_event last_batch; /* the latest batch event (pointers cleared) */
	bool batch_finished; /* a batch event said it is no longer running */
};

static int find_id(const uint64_t *ids, size_t count, uint64_t id)
{
	size_t lo = 0, hi = count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ids[mid] == id)
			return (int)mid;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void record_cb(const jm_event *ev, void *arg)
{
	struct recorder *r = arg;
	pthread_mutex_lock(&r->lock);
	if (ev->kind == JM_EVENT_JOB_STATE) {
		int at = find_id(r->ids, BIG_BATCH, ev->job_id);
		if (at < 0 || ev->batch_id != r->batch_id) {
			r->unknown_jobs++;
		} else {
			struct job_trace *t = &r->jobs[at];
			if (t->count == EVENTS_PER_JOB_MAX) {
				t->overflow = true;
			} else {
				t->states[t->count] = ev->state;
				t->attempts[t->count] = ev->attempt;
				t->count++;
			}
		}
	} else if (ev->kind == JM_EVENT_BATCH && ev->batch_id == r->batch_id) {
		r->batch_events++;
		r->last_batch = *ev;
		r->last_batch.topic = r->last_batch.queue = r->last_batch.type = NULL;
		r->last_batch.message = r->last_batch.worker_id = NULL;
		if (ev->state != JM_BATCH_RUNNING)
			r->batch_finished = true;
	}
	pthread_mutex_unlock(&r->lock);
}

static bool recorder_saw_final_batch_event(void *arg)
{
	struct recorder *r = arg;
	pthread_mutex_lock(&r->lock);
	bool seen = r->batch_finished;
	pthread_mutex_unlock(&r->lock);
	return seen;
}

static void test_subscriber_sees_every_state_change_of_a_thousand_job_batch_in_order(void **state)
{
	struct stack *f = fixture_start(state, "events-batch");
	static uint64_t ids[BIG_BATCH];
	uint64_t batch_id = submit_batch(f, "ev", "echo", BIG_BATCH, ids);
	for (size_t i = 1; i < BIG_BATCH; i++)
		assert_true(ids[i] > ids[i - 1]);

	struct recorder *r = calloc(1, sizeof *r);
	assert_non_null(r);
	pthread_mutex_init(&r->lock, NULL);
	r->batch_id = batch_id;
	r->ids = ids;
	char topic[40];
	snprintf(topic, sizeof topic, "batch/%" PRIu64, batch_id);
	jm_subscription *sub = NULL;
	assert_jm_ok(jm_client_subscribe(f->client, topic, true, record_cb, r, &sub));

	/* The jobs wait for a worker, so every active and completed event is
	 * published after the subscription is connected. */
	fixture_worker_start(&f->h, "w-events", "ev", "8", "echo=cat");
	jm_batch_info batch;
	int rc = jm_client_wait_batch(f->client, batch_id, WAIT_MS, &batch);
	if (rc != 0) {
		harness_print_logs(&f->h, 30);
		fail_msg("wait_batch: %d %s", rc, jm_client_last_error());
	}
	assert_int_equal(batch.state, JM_BATCH_COMPLETED);
	assert_int_equal(batch.completed, BIG_BATCH);
	jm_batch_info_fini(&batch);
	/* The final event may trail the status a little. */
	assert_true(
	    harness_wait_for(10000, recorder_saw_final_batch_event, r, "the batch's final event"));
	jm_subscription_close(sub);

	assert_int_equal(r->unknown_jobs, 0);
	for (size_t i = 0; i < BIG_BATCH; i++) {
		const struct job_trace *t = &r->jobs[i];
		assert_false(t->overflow);
		/* A pending event (attempt 0) may come first: the submit's events
		 * can trail its reply. Then exactly active, completed at
		 * attempt 1. */
		unsigned at = 0;
		if (at < t->count && t->states[at] == JM_STATE_PENDING) {
			assert_int_equal(t->attempts[at], 0);
			at++;
		}
		if (t->count - at != 2)
			fail_msg("job %" PRIu64 ": %u events after pending, expected 2 (active, "
			         "completed)",
			         ids[i], t->count - at);
		assert_int_equal(t->states[at], JM_STATE_ACTIVE);
		assert_int_equal(t->attempts[at], 1);
		assert_int_equal(t->states[at + 1], JM_STATE_COMPLETED);
		assert_int_equal(t->attempts[at + 1], 1);
	}
	assert_true(r->batch_events >= 1);
	assert_int_equal(r->last_batch.state, JM_BATCH_COMPLETED);
	assert_int_equal(r->last_batch.done, BIG_BATCH);
	assert_int_equal(r->last_batch.failed, 0);
	assert_int_equal(r->last_batch.total, BIG_BATCH);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* ---- waits ------------------------------------------------------------- */

static void test_wait_on_an_already_finished_job_returns_at_once(void **state)
{
	struct stack *f = fixture_start(state, "events-wait-done");
	fixture_worker_start(&f->h, "w-done", "done", "1", "echo=cat");
	jm_job_spec spec = {.queue = "done", .type = "echo", .payload = "hi", .payload_len = 2};
	uint64_t id = 0;
	assert_jm_ok(jm_client_submit(f->client, &spec, &id));
	jm_job_info info;
	assert_jm_ok(jm_client_wait(f->client, id, WAIT_MS, &info));
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	jm_job_info_fini(&info);

	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	assert_jm_ok(jm_client_wait(f->client, id, WAIT_MS, &info));
	uint64_t took_ms = elapsed_ms(&start);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	assert_string_equal((char *)info.result, "hi");
	jm_job_info_fini(&info);
	if (took_ms > 1000)
		fail_msg("wait on a finished job took %" PRIu64 " ms", took_ms);
}

static void test_wait_batch_returns_when_the_batch_finishes(void **state)
{
	struct stack *f = fixture_start(state, "events-wait-batch");
	enum { JOBS = 20 };
	uint64_t ids[JOBS];
	uint64_t batch_id = submit_batch(f, "wb", "slow", JOBS, ids);
	/* Nobody serves the queue yet: the wait runs out, reporting it running. */
	jm_batch_info batch;
	assert_jm_code(jm_client_wait_batch(f->client, batch_id, 300, &batch), JM_ETIMEDOUT);
	assert_int_equal(batch.state, JM_BATCH_RUNNING);
	assert_int_equal(batch.total, JOBS);
	jm_batch_info_fini(&batch);

	fixture_worker_start(&f->h, "w-batch", "wb", "4", "slow=sleep 0.1; cat");
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	assert_jm_ok(jm_client_wait_batch(f->client, batch_id, WAIT_MS, &batch));
	assert_int_equal(batch.state, JM_BATCH_COMPLETED);
	assert_int_equal(batch.completed, JOBS);
	assert_int_equal(batch.failed + batch.cancelled + batch.active, 0);
	assert_true(batch.finished_us >= batch.created_us);
	jm_batch_info_fini(&batch);
	for (int i = 0; i < JOBS; i++) {
		jm_job_info info;
		assert_jm_ok(jm_client_status(f->client, ids[i], &info));
		assert_int_equal(info.state, JM_STATE_COMPLETED);
		assert_true(info.batch_id == batch_id);
		jm_job_info_fini(&info);
	}

	/* A finished batch: at once. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	assert_jm_ok(jm_client_wait_batch(f->client, batch_id, WAIT_MS, &batch));
	assert_int_equal(batch.state, JM_BATCH_COMPLETED);
	jm_batch_info_fini(&batch);
	uint64_t took_ms = elapsed_ms(&start);
	if (took_ms > 1000)
		fail_msg("wait_batch on a finished batch took %" PRIu64 " ms", took_ms);
}

static void test_batch_status_of_a_job_id_is_not_found(void **state)
{
	struct stack *f = fixture_start(state, "events-batch-ids");
	uint64_t ids[2];
	uint64_t batch_id = submit_batch(f, "ids", "t", 2, ids);
	jm_batch_info batch;
	assert_jm_code(jm_client_batch_status(f->client, ids[0], &batch), JM_ENOTFOUND);
	jm_batch_info_fini(&batch);
	jm_job_info job;
	assert_jm_code(jm_client_status(f->client, batch_id, &job), JM_ENOTFOUND);
	jm_job_info_fini(&job);
	jm_batch_info *running = NULL;
	size_t running_count = 0;
	assert_jm_ok(jm_client_batches(f->client, &running, &running_count));
	assert_int_equal(running_count, 1);
	assert_true(running[0].id == batch_id);
	jm_batch_infos_free(running, running_count);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(
	        test_subscriber_sees_every_state_change_of_a_thousand_job_batch_in_order,
	        stack_close),
	    cmocka_unit_test_teardown(test_wait_on_an_already_finished_job_returns_at_once,
	                              stack_close),
	    cmocka_unit_test_teardown(test_wait_batch_returns_when_the_batch_finishes, stack_close),
	    cmocka_unit_test_teardown(test_batch_status_of_a_job_id_is_not_found, stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
