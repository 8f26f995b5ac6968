/* What an acknowledged request promises across kill -9 of the broker.
 *
 * - A crash loop: a producer thread submits as fast as it can (single jobs
 *   and small batches) while a real jobmesh-worker completes them and an
 *   observer thread records completions; the broker is SIGKILLed at a
 *   seeded random moment and restarted, six times (five under --fsync batch,
 *   one under always). After each restart every acknowledged job exists with
 *   the payload it was submitted with, no id was handed out twice, the
 *   broker holds no more jobs than were acknowledged plus those whose submit
 *   failed in flight (a submit lost at the kill may exist, never twice), and
 *   every completion observed before the kill is still there with its
 *   result. JOBMESH_TEST_SEED=N replays a run.
 * - A lease taken before a crash survives it: the worker acks with it after
 *   the restart; unacked, the job is requeued after the dead-after window
 *   with the attempt counted. */
#include "jm_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jobmesh/client.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"
#include "message.h"
#include "rpc.h"

#define CRASH_ROUNDS 6
#define CRASH_ROUNDS_BATCH 5 /* the rest run under --fsync always */
#define KILL_DELAY_MIN_MS 50
#define KILL_DELAY_MAX_MS 400
#define CLIENT_TIMEOUT_MS 1000
#define PAUSE_WAIT_MS 15000
#define ACKED_MAX 400000 /* the producer stops there (a bound, never reached) */
#define SAMPLE_OLD 300   /* older jobs re-checked per round, at random */
#define QUEUE "dur"

struct acked_job {
	uint64_t id;
	uint32_t seq; /* payload "p<seq>"; its result is "r-p<seq>" */
};

/* What the threads share, under mu. */
struct crash_loop {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool pause;
	int paused; /* threads parked in pause */
	struct acked_job *acked;
	size_t acked_len;
	size_t acked_cap;
	uint64_t unacked_jobs; /* jobs in submits that failed */
	uint64_t submits_ok;
	uint64_t submits_failed;
	uint64_t submits_ok_mark; /* submits_ok when the main thread last looked */
	struct acked_job *done;   /* completions the observer saw */
	size_t done_len;
	size_t done_cap;
	size_t observe_next; /* index into acked */
	uint32_t next_seq;
	unsigned producer_seed;
	char thread_error[512];          /* first failure seen by a thread */
	char producer_last_failure[512]; /* the producer's latest failed submit */
	const char *url;
};

static void grow(struct acked_job **items, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t cap_new = *cap ? *cap * 2 : 4096;
	while (cap_new < need)
		cap_new *= 2;
	struct acked_job *p = realloc(*items, cap_new * sizeof *p);
	if (p == NULL)
		abort();
	*items = p;
	*cap = cap_new;
}

static void thread_fail(struct crash_loop *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void thread_fail(struct crash_loop *cl, const char *fmt, ...)
{
	pthread_mutex_lock(&cl->mu);
	if (cl->thread_error[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(cl->thread_error, sizeof cl->thread_error, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&cl->mu);
}

/* Parks while paused; returns false once stopped. Called with mu held. */
static bool park_if_paused(struct crash_loop *cl)
{
	while (cl->pause && !cl->stop) {
		cl->paused++;
		pthread_cond_broadcast(&cl->cv);
		pthread_cond_wait(&cl->cv, &cl->mu);
		cl->paused--;
	}
	return !cl->stop;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void *producer_main(void *arg)
{
	struct crash_loop *cl = arg;
	jm_client *client;
	if (jm_client_open(&client, cl->url) != 0) {
		thread_fail(cl, "producer: cannot open a client");
		return NULL;
	}
	jm_client_set_timeout_ms(client, CLIENT_TIMEOUT_MS);
	enum { BATCH_MAX = 5 };
	char payloads[BATCH_MAX][24];
	jm_job_spec specs[BATCH_MAX];
	uint64_t ids[BATCH_MAX];
	uint32_t seqs[BATCH_MAX];
	for (;;) {
		pthread_mutex_lock(&cl->mu);
		if (!park_if_paused(cl) || cl->acked_len >= ACKED_MAX) {
			pthread_mutex_unlock(&cl->mu);
			break;
		}
		unsigned r = (unsigned)rand_r(&cl->producer_seed);
		size_t count = r % 3 == 0 ? 2 + (r / 3) % (BATCH_MAX - 1) : 1;
		bool as_batch = (r / 16) % 2 == 0;
		for (size_t i = 0; i < count; i++)
			seqs[i] = cl->next_seq++;
		pthread_mutex_unlock(&cl->mu);

		for (size_t i = 0; i < count; i++) {
			int len = snprintf(payloads[i], sizeof payloads[i], "p%u", seqs[i]);
			specs[i] = (jm_job_spec){.queue = QUEUE,
			                         .type = "t",
			                         .payload = payloads[i],
			                         .payload_len = (size_t)len};
		}
		int rc = count == 1
		             ? jm_client_submit(client, &specs[0], &ids[0])
		             : jm_client_submit_many(client, specs, count, as_batch, ids, NULL);
		pthread_mutex_lock(&cl->mu);
		if (rc == 0) {
			grow(&cl->acked, &cl->acked_cap, cl->acked_len + count);
			for (size_t i = 0; i < count; i++)
				cl->acked[cl->acked_len++] = (struct acked_job){ids[i], seqs[i]};
			cl->submits_ok++;
		} else {
			cl->unacked_jobs += count;
			cl->submits_failed++;
			/* jm_client_last_error is per thread: keep it for the main
			 * thread's report. */
			snprintf(cl->producer_last_failure, sizeof cl->producer_last_failure,
			         "%s (%d)", jm_client_last_error(), rc);
		}
		pthread_mutex_unlock(&cl->mu);
		if (rc != 0 && rc != JM_ETRANSPORT && rc != JM_ETIMEDOUT)
			thread_fail(cl, "producer: submit refused: %s", jm_client_last_error());
		if (rc != 0)
			sleep_ms(2);
	}
	jm_client_close(client);
	return NULL;
}

static bool result_is(const jm_job_info *info, uint32_t seq)
{
	char expect[32];
	int len = snprintf(expect, sizeof expect, "r-p%u", seq);
	return info->has_result && info->result_len == (size_t)len &&
	       memcmp(info->result, expect, (size_t)len) == 0;
}

/* Follows acknowledged jobs in order and records each completion seen. */
static void *observer_main(void *arg)
{
	struct crash_loop *cl = arg;
	jm_client *client;
	if (jm_client_open(&client, cl->url) != 0) {
		thread_fail(cl, "observer: cannot open a client");
		return NULL;
	}
	jm_client_set_timeout_ms(client, CLIENT_TIMEOUT_MS);
	for (;;) {
		pthread_mutex_lock(&cl->mu);
		if (!park_if_paused(cl)) {
			pthread_mutex_unlock(&cl->mu);
			break;
		}
		bool have = cl->observe_next < cl->acked_len;
		struct acked_job job = have ? cl->acked[cl->observe_next] : (struct acked_job){0};
		pthread_mutex_unlock(&cl->mu);
		if (!have) {
			sleep_ms(5);
			continue;
		}
		jm_job_info info = {0};
		int rc = jm_client_wait(client, job.id, 200, &info);
		if (rc == 0 && info.state == JM_STATE_COMPLETED) {
			if (!result_is(&info, job.seq))
				thread_fail(cl,
				            "observer: job %llu completed with \"%.*s\", not r-p%u",
				            (unsigned long long)job.id, (int)info.result_len,
				            (char *)info.result, job.seq);
			pthread_mutex_lock(&cl->mu);
			grow(&cl->done, &cl->done_cap, cl->done_len + 1);
			cl->done[cl->done_len++] = job;
			cl->observe_next++;
			pthread_mutex_unlock(&cl->mu);
		} else if (rc == 0) {
			thread_fail(cl, "observer: job %llu ended %s: %s",
			            (unsigned long long)job.id, jm_job_state_name(info.state),
			            info.last_error);
		} else if (rc == JM_ENOTFOUND) {
			thread_fail(cl, "observer: acknowledged job %llu not found: %s",
			            (unsigned long long)job.id, jm_client_last_error());
		} else if (rc != JM_ETIMEDOUT) {
			sleep_ms(10); /* the broker is down */
		}
		jm_job_info_fini(&info);
	}
	jm_client_close(client);
	return NULL;
}

struct fixture {
	struct harness h;
	struct harness_proc broker;
	bool broker_running;
	struct harness_proc worker;
	bool worker_running;
	struct crash_loop cl;
	pthread_t producer, observer;
	bool threads_running;
};

static void threads_stop(struct fixture *f)
{
	if (!f->threads_running)
		return;
	pthread_mutex_lock(&f->cl.mu);
	f->cl.stop = true;
	pthread_cond_broadcast(&f->cl.cv);
	pthread_mutex_unlock(&f->cl.mu);
	pthread_join(f->producer, NULL);
	pthread_join(f->observer, NULL);
	f->threads_running = false;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	if (f == NULL)
		return 0;
	threads_stop(f);
	free(f->cl.acked);
	free(f->cl.done);
	pthread_mutex_destroy(&f->cl.mu);
	pthread_cond_destroy(&f->cl.cv);
	/* The worker first, while it can still hand its jobs back. */
	if (f->worker_running)
		harness_stop(&f->worker, SIGTERM, 5000, NULL);
	fixture_end(state, &f->h, f->broker_running ? &f->broker : NULL);
	return 0;
}

static struct fixture *fixture_new(const char *name)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	pthread_mutex_init(&f->cl.mu, NULL);
	pthread_cond_init(&f->cl.cv, NULL);
	assert_jm_ok(harness_init(&f->h, name));
	return f;
}

static void broker_start(struct fixture *f, const char *fsync)
{
	const char *args[] = {"--fsync", fsync, "--backoff-base-ms", "10", "--backoff-cap-ms",
	                      "20",      NULL};
	int rc = harness_broker_start(&f->h, args, &f->broker);
	if (rc != 0) {
		harness_print_logs(&f->h, 30);
		fail_msg("broker (--fsync %s) did not start: %s", fsync, jm_strerror(rc));
	}
	f->broker_running = true;
}

static void broker_kill(struct fixture *f)
{
	assert_jm_ok(harness_kill(&f->broker));
	f->broker_running = false;
}

/* Pauses both threads; on return no call of theirs is in flight. */
static void threads_pause(struct fixture *f)
{
	uint64_t deadline_us = jm_mono_us() + PAUSE_WAIT_MS * 1000ull;
	pthread_mutex_lock(&f->cl.mu);
	f->cl.pause = true;
	while (f->cl.paused < 2 && jm_mono_us() < deadline_us) {
		pthread_mutex_unlock(&f->cl.mu);
		sleep_ms(5);
		pthread_mutex_lock(&f->cl.mu);
	}
	int paused = f->cl.paused;
	pthread_mutex_unlock(&f->cl.mu);
	if (paused < 2)
		fail_msg("the producer and observer did not pause within %d ms", PAUSE_WAIT_MS);
}

static void threads_resume(struct fixture *f)
{
	pthread_mutex_lock(&f->cl.mu);
	f->cl.pause = false;
	pthread_cond_broadcast(&f->cl.cv);
	pthread_mutex_unlock(&f->cl.mu);
}

static bool producer_progressed_cb(void *arg)
{
	struct fixture *f = arg;
	pthread_mutex_lock(&f->cl.mu);
	bool moved = f->cl.submits_ok > f->cl.submits_ok_mark || f->cl.thread_error[0] != '\0';
	pthread_mutex_unlock(&f->cl.mu);
	return moved;
}

static void producer_progress_wait(struct fixture *f)
{
	pthread_mutex_lock(&f->cl.mu);
	f->cl.submits_ok_mark = f->cl.submits_ok;
	pthread_mutex_unlock(&f->cl.mu);
	if (!harness_wait_for(10000, producer_progressed_cb, f,
	                      "a submit to succeed after the restart")) {
		harness_print_logs(&f->h, 20);
		char last[sizeof f->cl.producer_last_failure];
		pthread_mutex_lock(&f->cl.mu);
		uint64_t failed = f->cl.submits_failed;
		memcpy(last, f->cl.producer_last_failure, sizeof last);
		pthread_mutex_unlock(&f->cl.mu);
		fail_msg("the producer made no progress after the restart: %llu submits failed "
		         "in all, the latest with: %s",
		         (unsigned long long)failed, last);
	}
}

static int id_compare(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Checks one acknowledged job: it exists on its queue, and if completed,
 * with the result of its own payload. */
static void check_acked_job(struct fixture *f, jm_client *client, struct acked_job job,
                            unsigned round, const char *why)
{
	jm_job_info info = {0};
	int rc = jm_client_result(client, job.id, &info);
	if (rc != 0) {
		harness_print_logs(&f->h, 20);
		fail_msg("round %u: %s job %llu (payload p%u): %d %s", round, why,
		         (unsigned long long)job.id, job.seq, rc, jm_client_last_error());
	}
	assert_string_equal(info.queue, QUEUE);
	if (info.state == JM_STATE_COMPLETED && !result_is(&info, job.seq))
		fail_msg("round %u: job %llu completed with \"%.*s\", expected r-p%u", round,
		         (unsigned long long)job.id, (int)info.result_len, (char *)info.result,
		         job.seq);
	if (info.state == JM_STATE_FAILED || info.state == JM_STATE_CANCELLED)
		fail_msg("round %u: job %llu is %s: %s", round, (unsigned long long)job.id,
		         jm_job_state_name(info.state), info.last_error);
	jm_job_info_fini(&info);
}

struct check_marks {
	size_t acked_checked; /* acked[0..] checked in full by earlier rounds */
	size_t done_checked;
};

/* The checks after a restart, with both threads paused. */
static void check_after_restart(struct fixture *f, unsigned round, struct check_marks *marks,
                                unsigned *sample_seed)
{
	struct crash_loop *cl = &f->cl;
	if (cl->thread_error[0] != '\0')
		fail_msg("round %u: %s", round, cl->thread_error);
	jm_client *client;
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	jm_client_set_timeout_ms(client, 5000);

	/* No id was handed out twice. */
	uint64_t *ids = malloc((cl->acked_len + 1) * sizeof *ids);
	assert_non_null(ids);
	for (size_t i = 0; i < cl->acked_len; i++)
		ids[i] = cl->acked[i].id;
	qsort(ids, cl->acked_len, sizeof *ids, id_compare);
	for (size_t i = 1; i < cl->acked_len; i++)
		if (ids[i] == ids[i - 1])
			fail_msg("round %u: id %llu was acknowledged for two submits", round,
			         (unsigned long long)ids[i]);
	free(ids);

	/* The broker holds every acknowledged job, and of the submits that
	 * failed in flight, at most each once. */
	jm_queue_stats *queues = NULL;
	size_t count = 0;
	assert_jm_ok(jm_client_stats(client, &queues, &count));
	uint64_t total = 0;
	for (size_t i = 0; i < count; i++)
		total += queues[i].pending + queues[i].delayed + queues[i].active +
		         queues[i].completed + queues[i].failed;
	free(queues);
	printf("round %u: %zu acknowledged, %llu in failed submits, broker holds %llu, "
	       "%zu completions observed\n",
	       round, cl->acked_len, (unsigned long long)cl->unacked_jobs,
	       (unsigned long long)total, cl->done_len);
	if (total < cl->acked_len || total > cl->acked_len + cl->unacked_jobs)
		fail_msg("round %u: broker holds %llu jobs; acknowledged %zu, failed in flight "
		         "%llu: expected between %zu and %llu",
		         round, (unsigned long long)total, cl->acked_len,
		         (unsigned long long)cl->unacked_jobs, cl->acked_len,
		         (unsigned long long)(cl->acked_len + cl->unacked_jobs));

	/* Every job acknowledged since the last round, and a sample of older
	 * ones, exists with its own payload's result. */
	for (size_t i = marks->acked_checked; i < cl->acked_len; i++)
		check_acked_job(f, client, cl->acked[i], round, "acknowledged");
	for (int i = 0; i < SAMPLE_OLD && marks->acked_checked > 0; i++)
		check_acked_job(f, client,
		                cl->acked[(size_t)rand_r(sample_seed) % marks->acked_checked],
		                round, "acknowledged (earlier round)");
	marks->acked_checked = cl->acked_len;

	/* Every completion seen before the kill is still a completion with the
	 * same result. */
	for (size_t i = marks->done_checked; i < cl->done_len; i++) {
		jm_job_info info = {0};
		struct acked_job job = cl->done[i];
		int rc = jm_client_result(client, job.id, &info);
		if (rc != 0)
			fail_msg("round %u: completed job %llu: %s", round,
			         (unsigned long long)job.id, jm_client_last_error());
		if (info.state != JM_STATE_COMPLETED || !result_is(&info, job.seq))
			fail_msg("round %u: job %llu was completed with r-p%u before the kill; now "
			         "%s with \"%.*s\"",
			         round, (unsigned long long)job.id, job.seq,
			         jm_job_state_name(info.state), (int)info.result_len,
			         info.result ? (char *)info.result : "");
		jm_job_info_fini(&info);
	}
	marks->done_checked = cl->done_len;
	jm_client_close(client);
}

static unsigned test_seed(void)
{
	const char *env = getenv("JOBMESH_TEST_SEED");
	if (env != NULL && *env != '\0')
		return (unsigned)strtoul(env, NULL, 10);
	return (unsigned)(jm_wall_us() ^ (uint64_t)getpid());
}

static void test_crash_loop_loses_and_duplicates_nothing_acknowledged(void **state)
{
	struct fixture *f = fixture_new("crashloop");
	*state = f;
	unsigned seed = test_seed();
	printf("crash loop seed %u (JOBMESH_TEST_SEED=%u replays it)\n", seed, seed);
	fflush(stdout);
	unsigned main_seed = seed;
	f->cl.producer_seed = seed * 2654435761u + 1;
	unsigned sample_seed = seed + 7;
	f->cl.next_seq = 1;

	broker_start(f, "batch");
	f->cl.url = f->h.broker_url;
	char handler[512];
	snprintf(handler, sizeof handler,
	         "t=echo \"$JOBMESH_JOB_ID\" >> %s/runs.log; printf r-; cat", f->h.dir);
	const char *wargs[] = {
	    "--queue",     QUEUE,          "--concurrency",  "4",   "--handler",       handler,
	    "--worker-id", "crash-worker", "--heartbeat-ms", "200", "--drain-timeout", "1",
	    NULL};
	assert_jm_ok(harness_worker_start(&f->h, "worker", wargs, &f->worker));
	f->worker_running = true;

	assert_int_equal(pthread_create(&f->producer, NULL, producer_main, &f->cl), 0);
	if (pthread_create(&f->observer, NULL, observer_main, &f->cl) != 0) {
		threads_stop(f);
		fail_msg("cannot start the observer thread");
	}
	f->threads_running = true;

	struct check_marks marks = {0};
	for (unsigned round = 1; round <= CRASH_ROUNDS; round++) {
		const char *fsync = round <= CRASH_ROUNDS_BATCH ? "batch" : "always";
		/* The clients redial with backoff (up to 1 s): the crash must hit
		 * a producer that is submitting, so wait for its next success. */
		producer_progress_wait(f);
		int delay_ms = KILL_DELAY_MIN_MS +
		               rand_r(&main_seed) % (KILL_DELAY_MAX_MS - KILL_DELAY_MIN_MS + 1);
		/* The moment of the crash is the random part of the test. */
		sleep_ms(delay_ms);
		broker_kill(f);
		threads_pause(f);
		printf("round %u (--fsync %s): killed after %d ms\n", round, fsync, delay_ms);
		broker_start(f, round < CRASH_ROUNDS_BATCH ? "batch" : "always");
		check_after_restart(f, round, &marks, &sample_seed);
		threads_resume(f);
	}
	threads_stop(f);
	if (f->cl.thread_error[0] != '\0')
		fail_msg("%s", f->cl.thread_error);
	printf("crash loop: %zu jobs acknowledged in %llu submits, %llu submits failed, %zu "
	       "completions observed\n",
	       f->cl.acked_len, (unsigned long long)f->cl.submits_ok,
	       (unsigned long long)f->cl.submits_failed, f->cl.done_len);
	assert_true(f->cl.acked_len > 0);
	if (f->cl.done_len == 0)
		printf("warning: the worker completed nothing observed: the completion checks "
		       "checked nothing this run\n");
}

/* ---- leases across a crash ------------------------------------------------ */

#define DEAD_AFTER_MS 3000

/* A raw REQ connection that plays the workers of these tests on queue
 * "leases". */
static struct rpc *rpc_connect(struct fixture *f)
{
	return fixture_rpc_open(f->h.broker_url);
}

static struct proto_delivery rpc_fetch(struct rpc *rpc, const char *worker)
{
	return fixture_rpc_fetch(rpc, worker, "leases", 5000, 10000);
}

static void lease_broker_start(struct fixture *f)
{
	char dead_after[32];
	snprintf(dead_after, sizeof dead_after, "%d", DEAD_AFTER_MS);
	const char *args[] = {"--dead-after-ms",
	                      dead_after,
	                      "--backoff-base-ms",
	                      "10",
	                      "--backoff-cap-ms",
	                      "20",
	                      NULL};
	assert_jm_ok(harness_broker_start(&f->h, args, &f->broker));
	f->broker_running = true;
}

static jm_job_info job_status(struct fixture *f, uint64_t id)
{
	jm_client *client;
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	jm_job_info info = {0};
	int rc = jm_client_result(client, id, &info);
	if (rc != 0)
		fail_msg("status of job %llu: %s", (unsigned long long)id, jm_client_last_error());
	jm_client_close(client);
	return info;
}

struct requeue_wait {
	struct fixture *f;
	jm_client *client;
	uint64_t id;
	jm_job_info info;
};

static bool job_left_active_cb(void *arg)
{
	struct requeue_wait *w = arg;
	jm_job_info_fini(&w->info);
	memset(&w->info, 0, sizeof w->info);
	return jm_client_status(w->client, w->id, &w->info) == 0 &&
	       w->info.state != JM_STATE_ACTIVE;
}

static void test_lease_survives_a_crash_and_expires_after_the_dead_after_window(void **state)
{
	struct fixture *f = fixture_new("lease");
	*state = f;
	lease_broker_start(f);

	/* A worker holding a lease at the crash acks with it after the
	 * restart. */
	struct rpc *rpc = rpc_connect(f);
	uint64_t kept = fixture_rpc_submit(rpc, "leases", "kept", 0);
	struct proto_delivery d = rpc_fetch(rpc, "w");
	assert_int_equal(d.job_id, kept);
	assert_int_equal(d.attempt, 1);
	/* A delivery does not wait for its LEASE record to sync; a later
	 * acknowledged record proves it durable (the journal keeps order). */
	fixture_rpc_submit(rpc, "barrier", "b", 0);
	broker_kill(f);
	rpc_close(rpc);
	lease_broker_start(f);
	uint64_t restarted_us = jm_mono_us();
	rpc = rpc_connect(f);
	jm_job_info info = job_status(f, kept);
	assert_int_equal(info.state, JM_STATE_ACTIVE);
	jm_job_info_fini(&info);
	assert_int_equal(fixture_rpc_ack(rpc, "w", kept, d.lease, "done-after-crash"), 0);
	uint64_t acked_after_ms = (jm_mono_us() - restarted_us) / 1000;
	assert_true(acked_after_ms < DEAD_AFTER_MS);
	info = job_status(f, kept);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	assert_int_equal(info.attempt, 1);
	assert_string_equal((char *)info.result, "done-after-crash");
	jm_job_info_fini(&info);

	/* A lease nobody acks after the crash expires with the dead-after
	 * window: the job is requeued and the attempt counts. */
	uint64_t orphan = fixture_rpc_submit(rpc, "leases", "orphan", 0);
	struct proto_delivery lost = rpc_fetch(rpc, "w2");
	assert_int_equal(lost.job_id, orphan);
	fixture_rpc_submit(rpc, "barrier", "b", 0);
	broker_kill(f);
	rpc_close(rpc);
	lease_broker_start(f);
	restarted_us = jm_mono_us();
	struct requeue_wait w = {.f = f, .id = orphan};
	assert_jm_ok(jm_client_open(&w.client, f->h.broker_url));
	assert_jm_ok(jm_client_status(w.client, orphan, &w.info));
	assert_int_equal(w.info.state, JM_STATE_ACTIVE);
	if (!harness_wait_for(DEAD_AFTER_MS + 5000, job_left_active_cb, &w,
	                      "the orphaned lease to be requeued")) {
		harness_print_logs(&f->h, 20);
		fail_msg("job %llu still %s", (unsigned long long)orphan,
		         jm_job_state_name(w.info.state));
	}
	uint64_t requeued_after_ms = (jm_mono_us() - restarted_us) / 1000;
	printf("orphaned lease requeued %llu ms after the restart (dead-after %d ms)\n",
	       (unsigned long long)requeued_after_ms, DEAD_AFTER_MS);
	/* Not before the window (less the start-up the harness waited for). */
	assert_true(requeued_after_ms + 1000 >= DEAD_AFTER_MS);
	assert_true(w.info.state == JM_STATE_PENDING || w.info.state == JM_STATE_DELAYED);
	assert_int_equal(w.info.attempt, 1);
	if (strstr(w.info.last_error, "w2") == NULL)
		fail_msg("last error should name the lost worker w2: \"%s\"", w.info.last_error);
	jm_job_info_fini(&w.info);
	jm_client_close(w.client);

	rpc = rpc_connect(f);
	struct proto_delivery again = rpc_fetch(rpc, "w3");
	assert_int_equal(again.job_id, orphan);
	assert_int_equal(again.attempt, 2);
	assert_true(again.lease != lost.lease); /* a fresh random token */
	assert_int_equal(fixture_rpc_ack(rpc, "w2", orphan, lost.lease, "zombie"), JM_ESTALE);
	assert_int_equal(fixture_rpc_ack(rpc, "w3", orphan, again.lease, "second-try"), 0);
	rpc_close(rpc);
	info = job_status(f, orphan);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	assert_int_equal(info.attempt, 2);
	assert_string_equal((char *)info.result, "second-try");
	jm_job_info_fini(&info);
}

struct flood {
	const char *url;
	atomic_bool stop;
	atomic_uint submits;
};

/* Keeps the journal writer busy syncing, so that a record appended now
 * waits for the sync in progress before it is written. */
static void *flood_main(void *arg)
{
	struct flood *fl = arg;
	jm_client *client;
	if (jm_client_open(&client, fl->url) != 0)
		return NULL;
	jm_client_set_timeout_ms(client, 500);
	jm_job_spec spec = {.queue = "flood", .type = "t", .payload = "f", .payload_len = 1};
	for (int i = 0; i < 100000 && !atomic_load(&fl->stop); i++) {
		uint64_t id;
		if (jm_client_submit(client, &spec, &id) == 0)
			atomic_fetch_add(&fl->submits, 1);
		else
			break; /* the broker is gone */
	}
	jm_client_close(client);
	return NULL;
}

/* A delivery is sent before its LEASE record is durable, so a crash right
 * after a fetch may forget the lease. The job is then handed out again;
 * the first holder, now a zombie, must not be able to complete the job the
 * second holder has (DESIGN.md: a stale lease is refused). Bounded tries
 * until the crash lands before the LEASE record is written. */
static void test_lease_forgotten_by_a_crash_cannot_complete_the_next_delivery(void **state)
{
	struct fixture *f = fixture_new("lostlease");
	*state = f;
	lease_broker_start(f);
	enum { TRIES = 15 };
	int hits = 0;
	for (int attempt = 0; attempt < TRIES && hits == 0; attempt++) {
		struct rpc *rpc = rpc_connect(f);
		uint64_t id = fixture_rpc_submit(rpc, "leases", "contested", 0);
		struct flood fl = {.url = f->h.broker_url};
		pthread_t flooder;
		assert_int_equal(pthread_create(&flooder, NULL, flood_main, &fl), 0);
		/* Bounded: a flooder that cannot submit fails the test, not hangs it. */
		uint64_t flood_deadline_us = jm_mono_us() + 10 * 1000000ull;
		while (atomic_load(&fl.submits) < 20 && jm_mono_us() < flood_deadline_us)
			sleep_ms(1);
		assert_true(atomic_load(&fl.submits) >= 20);
		struct proto_delivery first = rpc_fetch(rpc, "zombie");
		assert_int_equal(first.job_id, id);
		broker_kill(f); /* at once: the LEASE record may not be written */
		atomic_store(&fl.stop, true);
		pthread_join(flooder, NULL);
		rpc_close(rpc);
		lease_broker_start(f);
		jm_job_info info = job_status(f, id);
		int job_state = info.state;
		jm_job_info_fini(&info);
		rpc = rpc_connect(f);
		if (job_state == JM_STATE_ACTIVE) {
			/* The lease made it to disk: nothing to see this time. */
			assert_int_equal(fixture_rpc_ack(rpc, "zombie", id, first.lease, "zombie"),
			                 0);
			rpc_close(rpc);
			continue;
		}
		hits++;
		assert_int_equal(job_state, JM_STATE_PENDING);
		struct proto_delivery second = rpc_fetch(rpc, "healthy");
		assert_int_equal(second.job_id, id);
		printf("try %d: the crash forgot lease %llu of job %llu; redelivered with lease "
		       "%llu, attempt %u\n",
		       attempt, (unsigned long long)first.lease, (unsigned long long)id,
		       (unsigned long long)second.lease, second.attempt);
		int32_t zombie = fixture_rpc_ack(rpc, "zombie", id, first.lease, "zombie-result");
		if (zombie == 0) {
			info = job_status(f, id);
			fail_msg("job %llu: the zombie's ack with the forgotten lease %llu was "
			         "accepted while worker \"healthy\" holds lease %llu; the job is "
			         "now %s with \"%s\"",
			         (unsigned long long)id, (unsigned long long)first.lease,
			         (unsigned long long)second.lease, jm_job_state_name(info.state),
			         info.result ? (char *)info.result : "");
		}
		assert_int_equal(zombie, JM_ESTALE);
		assert_int_equal(
		    fixture_rpc_ack(rpc, "healthy", id, second.lease, "healthy-result"), 0);
		rpc_close(rpc);
		info = job_status(f, id);
		assert_int_equal(info.state, JM_STATE_COMPLETED);
		assert_string_equal((char *)info.result, "healthy-result");
		jm_job_info_fini(&info);
	}
	if (hits == 0)
		printf("the crash never landed before a LEASE record in %d tries: nothing "
		       "checked\n",
		       TRIES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_crash_loop_loses_and_duplicates_nothing_acknowledged,
	                              fixture_teardown),
	    cmocka_unit_test_teardown(
	        test_lease_survives_a_crash_and_expires_after_the_dead_after_window,
	        fixture_teardown),
	    cmocka_unit_test_teardown(
	        test_lease_forgotten_by_a_crash_cannot_complete_the_next_delivery,
	        fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
