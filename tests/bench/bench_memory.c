/* Broker memory per queued job and replay time, through real processes
 * (issue 12). Run a Release build (scripts/bench memory):
 *
 *   (a) memory: a fresh broker (--fsync batch, the default); its VmRSS is
 *       read, then --jobs jobs of 100 bytes are submitted 100 per call from
 *       one thread (the peers benchmark's W2 fill), and its VmHWM is read:
 *       (VmHWM after − VmRSS before) ÷ jobs, the figure the peers table
 *       prints;
 *   (b) replay: a broker (--fsync off, to build fast) takes --replay-jobs
 *       live pending jobs from 4 producer threads, 100 per call, and stops
 *       (SIGTERM); a new broker then starts on the same data dir, timed
 *       from spawn to its "listening" line (it serves from then on), and
 *       its CPU time then (user + system, steadier than wall time on a
 *       shared machine) and VmHWM are read; the start is repeated
 *       --restarts times.
 *
 * Usage: bench_memory [--jobs N] [--replay-jobs M] [--restarts R]
 *        (defaults 100000, 1000000, 3; --replay-jobs 0 skips (b)).
 * It prints figures and asserts nothing beyond the broker's own counts. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/client.h>

#include "broker_proc.h"
#include "clock.h"
#include "harness.h"
#include "sdk_load.h"

#define READY_MS 180000

static long arg_long(int argc, char **argv, const char *name, long fallback)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return atol(argv[i + 1]);
	return fallback;
}

static jm_client *client_open(struct harness *h)
{
	jm_client *client;
	int rc = jm_client_open(&client, h->broker_url);
	if (rc != 0)
		sdk_load_die("client open", rc);
	jm_client_set_timeout_ms(client, 60000);
	sdk_load_init("bench_memory", h->broker_url);
	return client;
}

static void check_queued(jm_client *client, const char *queue, long jobs)
{
	jm_queue_stats st = sdk_load_queue_stats(client, queue);
	if ((long)st.pending != jobs) {
		fprintf(stderr, "bench_memory: queue %s holds %llu pending jobs, not %ld\n", queue,
		        (unsigned long long)st.pending, jobs);
		exit(1);
	}
}

static void bench_per_job(struct harness *h, long jobs)
{
	printf("(a) memory per queued job: %ld jobs of %d bytes, %d per submit\n", jobs,
	       SDK_LOAD_PAYLOAD_BYTES, SDK_LOAD_BATCH);
	char data[300];
	snprintf(data, sizeof data, "%s/data-memory", h->dir);
	struct harness_proc broker;
	if (broker_proc_spawn_timed(h, "memory", data, NULL, READY_MS, &broker) < 0)
		exit(1);
	jm_client *client = client_open(h);
	uint64_t rss_before_kb = broker_proc_status_kb(broker.pid, "VmRSS:");
	double per_s = sdk_load_enqueue(client, "memory", (int)jobs, 1, SDK_LOAD_BATCH);
	uint64_t hwm_kb = broker_proc_status_kb(broker.pid, "VmHWM:");
	uint64_t rss_kb = broker_proc_status_kb(broker.pid, "VmRSS:");
	check_queued(client, "memory", jobs);
	jm_client_close(client);
	printf("  VmRSS before %.1f MB; after: VmHWM %.1f MB, VmRSS %.1f MB\n",
	       (double)rss_before_kb / 1024.0, (double)hwm_kb / 1024.0, (double)rss_kb / 1024.0);
	printf("  bytes per queued job: %.0f (VmHWM growth), %.0f (VmRSS growth); "
	       "submitted at %.0f jobs/s\n",
	       (double)(hwm_kb - rss_before_kb) * 1024.0 / (double)jobs,
	       (double)(rss_kb - rss_before_kb) * 1024.0 / (double)jobs, per_s);
	fflush(stdout);
	harness_stop(&broker, SIGTERM, 60000, NULL);
}

static void bench_replay(struct harness *h, long jobs, int restarts)
{
	printf("(b) replay of %ld live pending jobs of %d bytes\n", jobs, SDK_LOAD_PAYLOAD_BYTES);
	char data[300];
	snprintf(data, sizeof data, "%s/data-replay", h->dir);
	const char *off[] = {"--fsync", "off", NULL};
	struct harness_proc broker;
	if (broker_proc_spawn_timed(h, "replay", data, off, READY_MS, &broker) < 0)
		exit(1);
	jm_client *client = client_open(h);
	double per_s = sdk_load_enqueue(client, "replay", (int)jobs, 4, SDK_LOAD_BATCH);
	check_queued(client, "replay", jobs);
	jm_client_close(client);
	printf("  built at %.0f jobs/s (4 threads, %d per submit, --fsync off)\n", per_s,
	       SDK_LOAD_BATCH);
	harness_stop(&broker, SIGTERM, 60000, NULL);
	for (int i = 0; i < restarts; i++) {
		double ready_ms =
		    broker_proc_spawn_timed(h, "replay", data, off, READY_MS, &broker);
		if (ready_ms < 0)
			exit(1);
		double cpu_ms = broker_proc_cpu_ms(broker.pid);
		uint64_t hwm_kb = broker_proc_status_kb(broker.pid, "VmHWM:");
		uint64_t rss_kb = broker_proc_status_kb(broker.pid, "VmRSS:");
		client = client_open(h);
		check_queued(client, "replay", jobs);
		jm_client_close(client);
		printf("  start %d to \"listening\": %.0f ms (broker CPU %.0f ms); VmHWM %.1f MB, "
		       "VmRSS %.1f MB (%.0f bytes/job at peak)\n",
		       i + 1, ready_ms, cpu_ms, (double)hwm_kb / 1024.0, (double)rss_kb / 1024.0,
		       (double)hwm_kb * 1024.0 / (double)jobs);
		fflush(stdout);
		harness_stop(&broker, SIGTERM, 60000, NULL);
	}
}

int main(int argc, char **argv)
{
	long jobs = arg_long(argc, argv, "--jobs", 100000);
	long replay_jobs = arg_long(argc, argv, "--replay-jobs", 1000000);
	int restarts = (int)arg_long(argc, argv, "--restarts", 3);
	jobs = jobs < SDK_LOAD_BATCH ? SDK_LOAD_BATCH : jobs - jobs % SDK_LOAD_BATCH;
	if (replay_jobs > 0)
		replay_jobs = replay_jobs < SDK_LOAD_BATCH
		                  ? SDK_LOAD_BATCH
		                  : replay_jobs - replay_jobs % SDK_LOAD_BATCH;
	signal(SIGPIPE, SIG_IGN);
	struct harness h;
	if (harness_init(&h, "bench-memory") != 0)
		return 1;
	printf("bench_memory: broker %s\n", harness_bin("jobmesh-broker"));
	bench_per_job(&h, jobs);
	if (replay_jobs > 0)
		bench_replay(&h, replay_jobs, restarts < 1 ? 1 : restarts);
	harness_fini(&h);
	return 0;
}
