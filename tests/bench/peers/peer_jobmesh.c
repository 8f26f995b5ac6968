/* peer_jobmesh: the jobmesh driver of `scripts/bench peers`. Runs one
 * workload against a broker that tests/bench/peers/run started, through the
 * public C SDK (the load is tests/bench/sdk_load.c, shared with
 * bench_broker), checks that the broker counts every job, and prints one
 * line of key=value figures on stdout.
 *
 * usage: peer_jobmesh --url URL --workload W [--jobs N] [--rounds N]
 *                     [--in-flight N]
 *   w1     submit N jobs one per call, one thread       jobs_per_s
 *   w1b    submit N jobs 100 per call, one thread, with   jobs_per_s
 *          --in-flight calls unanswered at once (default 1: each call
 *          waits for its reply; tests/bench/peers/run gives every
 *          system's driver the same depth)
 *   w1x32  submit N jobs one per call, 32 threads       jobs_per_s
 *   fill   submit N jobs 100 per call (before drain)    jobs_per_s
 *   drain  drain the N queued jobs, concurrency 4       jobs_per_s
 *   drain-sub  what a subscriber costs W2: drains the   jobs_per_s
 *          N queued jobs, then N more (queued untimed) with   without_sub
 *          a subscriber (the SDK's, to every topic) reading   events
 *          every event, then N more without, and so on:       with_each
 *          3 drains with it, 4 without, alternating, on the   without_each
 *          same server; jobs_per_s is the median with it,
 *          without_sub the median without
 *   w3     submit one job and wait for it, --rounds     p50_us p99_us
 *          times, with a worker of concurrency 1, in one call
 *          (jm_client_submit_wait; --w3-calls 2: jm_client_submit, then
 *          jm_client_wait)
 * Exits 1 when the counts do not add up. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jobmesh/client.h>

#include "clock.h"
#include "sdk_load.h"

#define QUEUE "bench"
/* drain-sub's drains with a subscriber; one more without. */
#define DRAIN_SUB_PAIRS 3

static atomic_ullong events_seen;

static void count_event(const jm_event *ev, void *arg)
{
	(void)ev;
	(void)arg;
	atomic_fetch_add(&events_seen, 1);
}

static void expect_count(const char *what, uint64_t got, uint64_t want)
{
	if (got != want) {
		fprintf(stderr, "peer_jobmesh: %s: the broker counts %llu, expected %llu\n", what,
		        (unsigned long long)got, (unsigned long long)want);
		exit(1);
	}
}

/* Drains the jobs queued in queue with concurrency 4 and checks that the
 * broker counts each completed and this process ran each; jobs/s. */
static double drain_checked(jm_client *client, const char *queue, int jobs)
{
	uint64_t handled = sdk_load_handled();
	uint64_t completed;
	double rate = sdk_load_drain(client, queue, jobs, 4, "peer-drain", &completed);
	expect_count("drain completed", completed, (uint64_t)jobs);
	expect_count("drain handled", sdk_load_handled() - handled, (uint64_t)jobs);
	expect_count("drain pending", sdk_load_queue_stats(client, queue).pending, 0);
	return rate;
}

/* One drain of jobs with or without a subscriber (the SDK's, to every
 * topic: each job event is delivered once per topic it carries, job/ and
 * queue/) reading every event. Drain i has its own queue: a queue keeps
 * 100,000 finished jobs, and a drain counts its queue's completed ones;
 * the first one's jobs were queued by the caller (the fill). */
static double drain_sub_once(jm_client *client, int i, bool subscribed, int jobs)
{
	char queue[32] = QUEUE;
	if (i > 0) {
		snprintf(queue, sizeof queue, QUEUE "-%d", i);
		sdk_load_enqueue(client, queue, jobs, 1, SDK_LOAD_BATCH);
	}
	jm_subscription *sub = NULL;
	unsigned long long seen = atomic_load(&events_seen);
	if (subscribed) {
		int rc = jm_client_subscribe(client, "", false, count_event, NULL, &sub);
		if (rc != 0)
			sdk_load_die("subscribe", rc);
		struct timespec settle = {0, 300 * 1000 * 1000}; /* its dial is async */
		nanosleep(&settle, NULL);
	}
	double rate = drain_checked(client, queue, jobs);
	if (subscribed) {
		/* The drain ends when the broker counts every job completed;
		 * the last publish round reaches the subscriber up to a round
		 * later (broker/events.c). Each job makes two events under two
		 * topics each. */
		uint64_t until = jm_mono_us() + 2000000;
		struct timespec step = {0, 1000 * 1000};
		while (atomic_load(&events_seen) - seen < 4ull * (unsigned)jobs &&
		       jm_mono_us() < until)
			nanosleep(&step, NULL);
		jm_subscription_close(sub);
		if (atomic_load(&events_seen) == seen) {
			fprintf(stderr, "peer_jobmesh: drain-sub: the subscriber saw no event\n");
			exit(1);
		}
	}
	return rate;
}

/* rates[0..n) as "r1,r2,...", whole jobs/s, into out (cap bytes). */
static void format_rates(const double *rates, int n, char *out, size_t cap)
{
	size_t used = 0;
	out[0] = '\0';
	for (int i = 0; i < n && used < cap; i++)
		used += (size_t)snprintf(out + used, cap - used, "%s%.0f", i ? "," : "", rates[i]);
}

/* What a subscriber costs W2, on one server: DRAIN_SUB_PAIRS drains with a
 * subscriber, each between two without (a single pair's cost ranged
 * 0.4-23 % across runs of one build: a drain lasts half a second on two
 * shared cores). Prints the median rate with and without, and each. */
static void drain_sub(jm_client *client, int jobs)
{
	double with[DRAIN_SUB_PAIRS], without[DRAIN_SUB_PAIRS + 1];
	for (int i = 0; i <= 2 * DRAIN_SUB_PAIRS; i++) {
		bool subscribed = i % 2 == 1;
		double rate = drain_sub_once(client, i, subscribed, jobs);
		if (subscribed)
			with[i / 2] = rate;
		else
			without[i / 2] = rate;
	}
	/* In drain order, before median sorts them. */
	char with_each[DRAIN_SUB_PAIRS * 12], without_each[(DRAIN_SUB_PAIRS + 1) * 12];
	format_rates(with, DRAIN_SUB_PAIRS, with_each, sizeof with_each);
	format_rates(without, DRAIN_SUB_PAIRS + 1, without_each, sizeof without_each);
	printf("jobs_per_s=%.0f without_sub=%.0f events=%llu with_each=%s without_each=%s\n",
	       sdk_load_median(with, DRAIN_SUB_PAIRS),
	       sdk_load_median(without, DRAIN_SUB_PAIRS + 1),
	       (unsigned long long)atomic_load(&events_seen), with_each, without_each);
}

int main(int argc, char **argv)
{
	const char *url = NULL, *workload = NULL;
	int jobs = 100000, rounds = 2000, in_flight = 1, w3_calls = 1;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--url") == 0)
			url = argv[i + 1];
		else if (strcmp(argv[i], "--workload") == 0)
			workload = argv[i + 1];
		else if (strcmp(argv[i], "--jobs") == 0)
			jobs = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--in-flight") == 0)
			in_flight = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--w3-calls") == 0)
			w3_calls = atoi(argv[i + 1]);
	}
	jobs = jobs / SDK_LOAD_BATCH * SDK_LOAD_BATCH;
	if (url == NULL || workload == NULL || jobs <= 0 || rounds <= 0 || in_flight < 1 ||
	    in_flight > 64 || w3_calls < 1 || w3_calls > 2) {
		fprintf(stderr,
		        "usage: peer_jobmesh --url URL --workload "
		        "w1|w1b|w1x32|fill|drain|drain-sub|w3 [--jobs N>=100] [--rounds N>=1] "
		        "[--in-flight 1..64] [--w3-calls 1|2]\n");
		return 2;
	}
	sdk_load_init("peer_jobmesh", url);
	jm_client *client;
	int rc = jm_client_open(&client, url);
	if (rc != 0)
		sdk_load_die("open", rc);

	if (strcmp(workload, "w3") == 0) {
		uint64_t *rtt = calloc((size_t)rounds, sizeof *rtt);
		if (rtt == NULL)
			sdk_load_die("calloc", JM_ENOMEM);
		struct sdk_load_worker w;
		sdk_load_worker_start(&w, QUEUE, 1, "peer-w3");
		sdk_load_round_trips(client, QUEUE, rounds, w3_calls == 2, rtt);
		sdk_load_worker_stop(&w);
		expect_count("w3 completed", sdk_load_queue_stats(client, QUEUE).completed,
		             (uint64_t)rounds);
		expect_count("w3 handled", sdk_load_handled(), (uint64_t)rounds);
		printf("p50_us=%llu p99_us=%llu\n", (unsigned long long)rtt[rounds / 2],
		       (unsigned long long)rtt[(size_t)rounds * 99 / 100]);
		free(rtt);
	} else if (strcmp(workload, "drain") == 0) {
		printf("jobs_per_s=%.0f\n", drain_checked(client, QUEUE, jobs));
	} else if (strcmp(workload, "drain-sub") == 0) {
		drain_sub(client, jobs);
	} else if (strcmp(workload, "w1b") == 0 && in_flight > 1) {
		double rate = sdk_load_enqueue_pipelined(client, QUEUE, jobs, (unsigned)in_flight);
		expect_count("queued", sdk_load_queue_stats(client, QUEUE).pending, (uint64_t)jobs);
		printf("jobs_per_s=%.0f\n", rate);
	} else {
		int threads = 1, per_call = 1;
		if (strcmp(workload, "w1b") == 0 || strcmp(workload, "fill") == 0)
			per_call = SDK_LOAD_BATCH;
		else if (strcmp(workload, "w1x32") == 0)
			threads = SDK_LOAD_PRODUCERS_MAX;
		else if (strcmp(workload, "w1") != 0) {
			fprintf(stderr, "peer_jobmesh: unknown workload %s\n", workload);
			return 2;
		}
		double rate = sdk_load_enqueue(client, QUEUE, jobs, threads, per_call);
		expect_count("queued", sdk_load_queue_stats(client, QUEUE).pending, (uint64_t)jobs);
		printf("jobs_per_s=%.0f\n", rate);
	}
	jm_client_close(client);
	return 0;
}
