/* kill -9 of the broker in the middle of a prefetched drain.
 *
 * JOBS jobs are queued; an in-process SDK worker (concurrency 4, the
 * prefetch buffer on, a no-op handler that counts every run) drains them
 * from a real broker process. At a seeded random point of the drain the
 * broker is SIGKILLed and restarted on the same journal; the worker keeps
 * running through the outage (its fetches and settles retry). Then:
 *  - no job is lost: every job ends completed, with the result of its own
 *    payload, and the queue holds nothing pending, active or failed;
 *  - no job is completed twice: the queue counts exactly JOBS completions;
 *  - no job ran twice before the kill, and no more jobs ran twice than the
 *    worker can hold when the broker dies (slots, buffer and unanswered
 *    settles): a delivery whose LEASE record the crash lost is delivered
 *    again, which at-least-once allows, and nothing else is.
 * JOBMESH_TEST_SEED=N replays a run. */
#include "jm_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jobmesh/client.h>
#include <jobmesh/worker.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"

#define JOBS 4000
#define SUBMIT_BATCH 100
#define CONCURRENCY 4
#define PREFETCH 128
#define QUEUE "pdrain"
#define WAIT_MS 60000
/* A job the worker holds at a kill: running, buffered, or settled and not
 * yet answered (settler limit: 2 x (slots + prefetch)). */
#define HELD_MAX (3 * (CONCURRENCY + PREFETCH))

struct runs {
	pthread_mutex_t mu;
	uint32_t count[JOBS];         /* runs per job, by payload sequence */
	uint64_t second_run_us[JOBS]; /* monotonic start of its second run */
	uint32_t total;
	uint32_t bad_payloads;
};

struct fixture {
	struct harness h;
	struct harness_proc broker;
	bool broker_running;
	jm_client *client;
	jm_worker *worker;
	pthread_t worker_thread;
	bool worker_running;
	struct runs runs;
	uint64_t ids[JOBS];
};

/* The handler: payload "p<seq>", result "r-p<seq>". */
static int count_run_handler(jm_job *job, void *arg)
{
	struct runs *runs = arg;
	size_t len = 0;
	const char *payload = jm_job_payload(job, &len);
	char text[16] = {0};
	unsigned seq = JOBS;
	if (len > 1 && len < sizeof text) {
		memcpy(text, payload, len);
		if (text[0] != 'p' || sscanf(text + 1, "%u", &seq) != 1)
			seq = JOBS;
	}
	pthread_mutex_lock(&runs->mu);
	if (seq >= JOBS) {
		runs->bad_payloads++;
	} else {
		if (runs->count[seq]++ == 1)
			runs->second_run_us[seq] = jm_mono_us();
		runs->total++;
	}
	pthread_mutex_unlock(&runs->mu);
	char result[20];
	int result_len = snprintf(result, sizeof result, "r-%s", text);
	jm_job_set_result(job, result, (size_t)result_len);
	return JM_HANDLER_OK;
}

static void *worker_main(void *arg)
{
	jm_worker_run(arg);
	return NULL;
}

static void broker_start(struct fixture *f)
{
	const char *args[] = {"--fsync", "batch", "--backoff-base-ms", "10", "--backoff-cap-ms",
	                      "20",      NULL};
	int rc = harness_broker_start(&f->h, args, &f->broker);
	if (rc != 0) {
		harness_print_logs(&f->h, 30);
		fail_msg("broker did not start: %s", jm_strerror(rc));
	}
	f->broker_running = true;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	if (f == NULL)
		return 0;
	if (f->worker_running) {
		jm_worker_stop(f->worker, false);
		pthread_join(f->worker_thread, NULL);
	}
	jm_worker_free(f->worker);
	jm_client_close(f->client);
	pthread_mutex_destroy(&f->runs.mu);
	fixture_end(state, &f->h, f->broker_running ? &f->broker : NULL);
	return 0;
}

static void submit_all(struct fixture *f)
{
	static char payloads[JOBS][16];
	jm_job_spec specs[SUBMIT_BATCH];
	for (int first = 0; first < JOBS; first += SUBMIT_BATCH) {
		for (int i = 0; i < SUBMIT_BATCH; i++) {
			int seq = first + i;
			int len = snprintf(payloads[seq], sizeof payloads[seq], "p%d", seq);
			/* A 10 s run timeout keeps the settle budget, and a lease
			 * whose settle was given up, short. */
			specs[i] = (jm_job_spec){.queue = QUEUE,
			                         .type = "count",
			                         .payload = payloads[seq],
			                         .payload_len = (size_t)len,
			                         .timeout_ms = 10000};
		}
		assert_jm_ok(jm_client_submit_many(f->client, specs, SUBMIT_BATCH, false,
		                                   &f->ids[first], NULL));
	}
}

struct runs_wait {
	struct runs *runs;
	uint32_t at_least;
};

static bool runs_reached_cb(void *arg)
{
	struct runs_wait *w = arg;
	pthread_mutex_lock(&w->runs->mu);
	bool reached = w->runs->total >= w->at_least;
	pthread_mutex_unlock(&w->runs->mu);
	return reached;
}

/* The queue's counts; false (and *out zeroed) when the broker did not
 * answer. */
static bool queue_stats(struct fixture *f, jm_queue_stats *out)
{
	memset(out, 0, sizeof *out);
	jm_queue_stats *queues = NULL;
	size_t count = 0;
	if (jm_client_stats(f->client, &queues, &count) != 0)
		return false;
	for (size_t i = 0; i < count; i++)
		if (strcmp(queues[i].name, QUEUE) == 0)
			*out = queues[i];
	free(queues);
	return true;
}

/* What the broker last said about the queue while the test waited, so a
 * timeout tells a broker that stopped answering from a drain that stalled. */
static jm_queue_stats last_stats;
static unsigned stats_answered, stats_unanswered;

static bool all_completed_cb(void *arg)
{
	jm_queue_stats stats;
	if (!queue_stats(arg, &stats)) {
		stats_unanswered++;
		return false;
	}
	stats_answered++;
	last_stats = stats;
	return stats.completed >= JOBS;
}

static unsigned test_seed(void)
{
	const char *env = getenv("JOBMESH_TEST_SEED");
	if (env != NULL && *env != '\0')
		return (unsigned)strtoul(env, NULL, 10);
	return (unsigned)(jm_wall_us() ^ (uint64_t)getpid());
}

static void test_kill_during_prefetched_drain_loses_and_completes_twice_nothing(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	*state = f;
	pthread_mutex_init(&f->runs.mu, NULL);
	assert_jm_ok(harness_init(&f->h, "prefetch-crash"));
	unsigned seed = test_seed();
	printf("prefetch crash seed %u (JOBMESH_TEST_SEED=%u replays it)\n", seed, seed);
	fflush(stdout);
	uint32_t kill_at = JOBS / 8 + (uint32_t)(rand_r(&seed) % (JOBS * 3 / 8));

	broker_start(f);
	assert_jm_ok(jm_client_open(&f->client, f->h.broker_url));
	jm_client_set_timeout_ms(f->client, 2000);
	submit_all(f);

	const char *queues[] = {QUEUE};
	jm_worker_options opts = {.broker_url = f->h.broker_url,
	                          .worker_id = "prefetch-crash",
	                          .queues = queues,
	                          .queues_count = 1,
	                          .concurrency = CONCURRENCY,
	                          .prefetch = PREFETCH,
	                          .heartbeat_ms = 200,
	                          .drain_timeout_ms = 2000};
	assert_jm_ok(jm_worker_new(&f->worker, &opts));
	assert_jm_ok(jm_worker_register(f->worker, "count", count_run_handler, &f->runs));
	assert_int_equal(pthread_create(&f->worker_thread, NULL, worker_main, f->worker), 0);
	f->worker_running = true;

	struct runs_wait reached = {&f->runs, kill_at};
	if (!harness_wait_for(WAIT_MS, runs_reached_cb, &reached, "the drain to reach the kill"))
		fixture_fail_with_logs(&f->h, NULL, "the worker ran %u jobs, never %u",
		                       f->runs.total, kill_at);
	assert_jm_ok(harness_kill(&f->broker));
	f->broker_running = false;
	uint64_t killed_us = jm_mono_us();
	pthread_mutex_lock(&f->runs.mu);
	uint32_t runs_at_kill = f->runs.total;
	pthread_mutex_unlock(&f->runs.mu);
	broker_start(f);
	printf("killed the broker after %u runs (asked for %u); restarted\n", runs_at_kill,
	       kill_at);

	if (!harness_wait_for(WAIT_MS, all_completed_cb, f, "every job to complete"))
		fixture_fail_with_logs(&f->h, NULL,
		                       "not every job completed after the restart: the broker "
		                       "answered %u stats calls (last: %llu completed, %llu "
		                       "pending, %llu active) and left %u unanswered",
		                       stats_answered, (unsigned long long)last_stats.completed,
		                       (unsigned long long)last_stats.pending,
		                       (unsigned long long)last_stats.active, stats_unanswered);
	jm_worker_stop(f->worker, true);
	pthread_join(f->worker_thread, NULL);
	f->worker_running = false;

	jm_queue_stats stats;
	assert_true(queue_stats(f, &stats));
	printf("queue: %llu completed, %llu pending, %llu active, %llu failed\n",
	       (unsigned long long)stats.completed, (unsigned long long)stats.pending,
	       (unsigned long long)stats.active, (unsigned long long)stats.failed);
	assert_int_equal(stats.completed, JOBS);
	assert_int_equal(stats.pending + stats.delayed + stats.active + stats.failed, 0);
	assert_int_equal(f->runs.bad_payloads, 0);

	uint32_t ran_twice = 0;
	for (int seq = 0; seq < JOBS; seq++) {
		jm_job_info info = {0};
		assert_jm_ok(jm_client_result(f->client, f->ids[seq], &info));
		char want[20];
		int want_len = snprintf(want, sizeof want, "r-p%d", seq);
		if (info.state != JM_STATE_COMPLETED || !info.has_result ||
		    info.result_len != (size_t)want_len ||
		    memcmp(info.result, want, info.result_len))
			fail_msg(
			    "job %llu (p%d): state %d, result \"%s\"; expected completed with %s",
			    (unsigned long long)f->ids[seq], seq, info.state,
			    info.has_result ? (const char *)info.result : "", want);
		jm_job_info_fini(&info);
		assert_true(f->runs.count[seq] >= 1);
		if (f->runs.count[seq] > 1) {
			ran_twice++;
			if (f->runs.second_run_us[seq] < killed_us)
				fail_msg(
				    "job p%d ran twice before the broker was killed: a delivery "
				    "was repeated without a crash",
				    seq);
		}
	}
	printf("%u of %d jobs ran twice (at most %d can be in the worker's hands)\n", ran_twice,
	       JOBS, HELD_MAX);
	assert_true(ran_twice <= HELD_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(
	        test_kill_during_prefetched_drain_loses_and_completes_twice_nothing,
	        fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
