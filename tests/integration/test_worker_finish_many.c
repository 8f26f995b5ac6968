/* jm_job_finish_many through a real broker: an in-process SDK worker
 * (concurrency 4, prefetch on) whose handler defers every job to a list,
 * and a finisher thread that ends what the list holds in batches (a NULL
 * among them, skipped) with the outcome the payload asks for:
 *  - "ok<seq>": completed, with the result "r-ok<seq>";
 *  - "perm<seq>": failed permanently: dead-lettered at its first attempt,
 *    with its error text;
 *  - "back<seq>": handed back (released) the first time, which is not an
 *    attempt, then completed on its second delivery.
 * Every job ends in the state it asked for, the handed-back ones ran twice
 * at attempt 1 and the others once, and a stop (drain) after it returns. */
#include "jm_test.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/client.h>
#include <jobmesh/worker.h>

#include "fixture.h"
#include "harness.h"

#define JOBS 300
#define QUEUE "many"
#define WAIT_MS 60000
#define FINISH_BATCH 40

struct deferred {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	jm_job *jobs[JOBS * 2]; /* waiting to be finished; every delivery fits */
	size_t count;
	unsigned runs[JOBS];
	bool stop;
};

struct fixture {
	struct harness h;
	struct harness_proc broker;
	jm_client *client;
	jm_worker *worker;
	pthread_t worker_thread, finisher_thread;
	bool worker_running, finisher_running;
	struct deferred d;
	uint64_t ids[JOBS];
};

/* "ok17" -> 17 (and *kind "ok"); JOBS when it is not one of ours. */
static unsigned payload_seq(jm_job *job, char *kind, size_t kind_size)
{
	size_t len = 0;
	const char *payload = jm_job_payload(job, &len);
	char text[24] = {0};
	unsigned seq = JOBS;
	if (len == 0 || len >= sizeof text)
		return JOBS;
	memcpy(text, payload, len);
	size_t letters = strcspn(text, "0123456789");
	if (letters == 0 || letters >= kind_size || sscanf(text + letters, "%u", &seq) != 1)
		return JOBS;
	memcpy(kind, text, letters);
	kind[letters] = '\0';
	return seq < JOBS ? seq : JOBS;
}

static int defer_handler(jm_job *job, void *arg)
{
	struct deferred *d = arg;
	pthread_mutex_lock(&d->mu);
	d->jobs[d->count++] = job;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->mu);
	return JM_HANDLER_DEFERRED;
}

/* The outcome job asks for (its result or error set); counts its run. */
static int outcome_for(struct deferred *d, jm_job *job)
{
	char kind[8];
	unsigned seq = payload_seq(job, kind, sizeof kind);
	if (seq >= JOBS) {
		jm_job_set_error(job, "not a payload of this test");
		return JM_HANDLER_PERMANENT;
	}
	unsigned run = ++d->runs[seq]; /* under d->mu */
	if (strcmp(kind, "perm") == 0) {
		jm_job_set_error(job, "refused for good");
		return JM_HANDLER_PERMANENT;
	}
	if (strcmp(kind, "back") == 0 && run == 1) {
		jm_job_set_error(job, "not now");
		return JM_HANDLER_RELEASE;
	}
	char result[32];
	int len = snprintf(result, sizeof result, "r-%s%u", kind, seq);
	jm_job_set_result(job, result, (size_t)len);
	return JM_HANDLER_OK;
}

static void *finisher_main(void *arg)
{
	struct deferred *d = arg;
	jm_job *batch[FINISH_BATCH + 1];
	int outcomes[FINISH_BATCH + 1];
	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (d->count == 0 && !d->stop)
			pthread_cond_wait(&d->cond, &d->mu);
		if (d->count == 0)
			break;
		size_t n = 0;
		batch[n] = NULL; /* skipped */
		outcomes[n++] = JM_HANDLER_OK;
		while (d->count > 0 && n < FINISH_BATCH + 1) {
			jm_job *job = d->jobs[--d->count];
			outcomes[n] = outcome_for(d, job);
			batch[n++] = job;
		}
		pthread_mutex_unlock(&d->mu);
		jm_job_finish_many(batch, outcomes, n);
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static void *worker_main(void *arg)
{
	jm_worker_run(arg);
	return NULL;
}

static void finisher_stop(struct fixture *f)
{
	if (!f->finisher_running)
		return;
	pthread_mutex_lock(&f->d.mu);
	f->d.stop = true;
	pthread_cond_signal(&f->d.cond);
	pthread_mutex_unlock(&f->d.mu);
	pthread_join(f->finisher_thread, NULL);
	f->finisher_running = false;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	if (f == NULL)
		return 0;
	if (f->worker_running) {
		/* Deferred jobs must end for the stop to return: the finisher
		 * runs until the worker is joined. */
		jm_worker_stop(f->worker, false);
		pthread_join(f->worker_thread, NULL);
	}
	finisher_stop(f);
	jm_worker_free(f->worker);
	jm_client_close(f->client);
	pthread_cond_destroy(&f->d.cond);
	pthread_mutex_destroy(&f->d.mu);
	fixture_end(state, &f->h, &f->broker);
	return 0;
}

static void submit_all(struct fixture *f)
{
	static const char *const kinds[] = {"ok", "perm", "back"};
	static char payloads[JOBS][16];
	for (int seq = 0; seq < JOBS; seq++) {
		int len =
		    snprintf(payloads[seq], sizeof payloads[seq], "%s%d", kinds[seq % 3], seq);
		jm_job_spec spec = {.queue = QUEUE,
		                    .type = "defer",
		                    .payload = payloads[seq],
		                    .payload_len = (size_t)len,
		                    .max_attempts = 3};
		assert_jm_ok(jm_client_submit(f->client, &spec, &f->ids[seq]));
	}
}

static void test_jobs_finished_many_at_a_time_end_as_each_asked(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	*state = f;
	pthread_mutex_init(&f->d.mu, NULL);
	pthread_cond_init(&f->d.cond, NULL);
	fixture_broker_up(&f->h, "finish-many", fixture_fast_retries, NULL, &f->broker);
	assert_jm_ok(jm_client_open(&f->client, f->h.broker_url));
	submit_all(f);

	const char *queues[] = {QUEUE};
	jm_worker_options opts = {.broker_url = f->h.broker_url,
	                          .worker_id = "finish-many",
	                          .queues = queues,
	                          .queues_count = 1,
	                          .concurrency = 4};
	assert_jm_ok(jm_worker_new(&f->worker, &opts));
	assert_jm_ok(jm_worker_register(f->worker, "defer", defer_handler, &f->d));
	assert_int_equal(pthread_create(&f->finisher_thread, NULL, finisher_main, &f->d), 0);
	f->finisher_running = true;
	assert_int_equal(pthread_create(&f->worker_thread, NULL, worker_main, f->worker), 0);
	f->worker_running = true;

	for (int seq = 0; seq < JOBS; seq++) {
		jm_job_info info;
		fixture_wait_finished(&f->h, f->client, f->ids[seq], WAIT_MS, &info);
		char expected[32];
		snprintf(expected, sizeof expected, "r-%s%d", seq % 3 == 0 ? "ok" : "back", seq);
		if (seq % 3 == 1) {
			assert_int_equal(info.state, JM_STATE_FAILED);
			assert_int_equal(info.attempt, 1); /* permanent: no retry */
			assert_non_null(strstr(info.last_error, "refused for good"));
		} else {
			assert_int_equal(info.state, JM_STATE_COMPLETED);
			assert_int_equal(info.attempt, 1); /* a hand-back is no attempt */
			assert_true(info.has_result);
			assert_string_equal((const char *)info.result, expected);
		}
		jm_job_info_fini(&info);
	}

	jm_worker_stop(f->worker, true);
	assert_int_equal(pthread_join(f->worker_thread, NULL), 0);
	f->worker_running = false;
	finisher_stop(f);
	for (int seq = 0; seq < JOBS; seq++)
		assert_int_equal(f->d.runs[seq], seq % 3 == 2 ? 2u : 1u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_jobs_finished_many_at_a_time_end_as_each_asked,
	                              fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
