/* Durability figures through real processes (run a Release build):
 *
 *   (a) durable enqueue throughput per fsync policy: one job per submit
 *       from 1 and from 32 threads, and 100 jobs per submit from 1 thread;
 *   (b) replay: time from start to "listening" and peak memory (VmHWM,
 *       read just after ready) for 1,000,000 live pending jobs of ~100-byte
 *       payloads;
 *   (c) journal bytes per job before and after compaction, and the longest
 *       submit latency a client sees while compaction runs against the same
 *       client on the same broker without compaction.
 *
 * Usage: bench_durability [--jobs N] (replay size, default 1000000). The
 * whole run takes a few minutes on a 2-core machine. */
#include <errno.h>
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jobmesh/client.h>

#include "broker_proc.h"
#include "clock.h"
#include "harness.h"
#include "message.h"
#include "rpc.h"

#define RUN_MS 1500
#define THREADS_MAX 32
#define PAYLOAD_BYTES 100
#define BUILD_BATCH 1000
#define BUILD_THREADS 4
#define READY_MS 180000

static char payload[PAYLOAD_BYTES + 1];

static void die(const char *what)
{
	fprintf(stderr, "bench_durability: %s: %s\n", what, jm_client_last_error());
	exit(1);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- (a) throughput ------------------------------------------------------ */

struct load {
	jm_client *client;
	const char *queue;
	size_t per_submit;
	uint64_t end_us;
	atomic_uint_fast64_t jobs;
	atomic_uint_fast64_t errors;
	/* latency tracking (one thread only) */
	uint64_t max_latency_us;
	uint64_t latency_sum_us;
	uint64_t calls;
	atomic_bool stop;
};

static void *load_main(void *arg)
{
	struct load *l = arg;
	jm_job_spec specs[100];
	uint64_t ids[100];
	for (size_t i = 0; i < l->per_submit; i++)
		specs[i] = (jm_job_spec){.queue = l->queue,
		                         .type = "t",
		                         .payload = payload,
		                         .payload_len = PAYLOAD_BYTES};
	while (!atomic_load(&l->stop) && jm_mono_us() < l->end_us) {
		uint64_t t0 = jm_mono_us();
		int rc = l->per_submit == 1 ? jm_client_submit(l->client, &specs[0], &ids[0])
		                            : jm_client_submit_many(l->client, specs, l->per_submit,
		                                                    false, ids, NULL);
		uint64_t took = jm_mono_us() - t0;
		if (rc != 0) {
			atomic_fetch_add(&l->errors, 1);
			sleep_ms(1);
			continue;
		}
		atomic_fetch_add(&l->jobs, l->per_submit);
		l->calls++;
		l->latency_sum_us += took;
		if (took > l->max_latency_us)
			l->max_latency_us = took;
	}
	return NULL;
}

/* jobs/s of threads submitting per_submit jobs per call for RUN_MS. */
static double measure(jm_client *client, int threads, size_t per_submit)
{
	struct load l = {.client = client, .queue = "bench", .per_submit = per_submit};
	pthread_t tids[THREADS_MAX];
	uint64_t t0 = jm_mono_us();
	l.end_us = t0 + RUN_MS * 1000ull;
	for (int i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, load_main, &l) != 0)
			die("pthread_create");
	for (int i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	double secs = (double)(jm_mono_us() - t0) / 1e6;
	if (atomic_load(&l.errors))
		fprintf(stderr, "  (%" PRIuFAST64 " submits failed: %s)\n", atomic_load(&l.errors),
		        jm_client_last_error());
	return (double)atomic_load(&l.jobs) / secs;
}

static void bench_throughput(struct harness *h)
{
	const char *policies[] = {"always", "batch", "everysec", "off"};
	printf("\n(a) durable enqueue throughput, jobs/s (%d-byte payloads, %d ms per cell)\n",
	       PAYLOAD_BYTES, RUN_MS);
	printf("  %-10s %14s %14s %18s\n", "fsync", "1 thr x 1", "32 thr x 1",
	       "1 thr x 100/submit");
	for (size_t p = 0; p < sizeof policies / sizeof policies[0]; p++) {
		char data[300];
		snprintf(data, sizeof data, "%s/data-%s", h->dir, policies[p]);
		const char *args[] = {"--data", data, "--fsync", policies[p], NULL};
		struct harness_proc broker;
		if (harness_broker_start(h, args, &broker) != 0)
			die("broker start");
		jm_client *client;
		if (jm_client_open(&client, h->broker_url) != 0)
			die("client");
		double one = measure(client, 1, 1);
		double many = measure(client, 32, 1);
		double batched = measure(client, 1, 100);
		printf("  %-10s %14.0f %14.0f %18.0f\n", policies[p], one, many, batched);
		fflush(stdout);
		jm_client_close(client);
		harness_stop(&broker, SIGTERM, 30000, NULL);
	}
}

/* ---- helpers for (b) and (c) --------------------------------------------- */

struct builder {
	jm_client *client;
	const char *queue;
	atomic_long remaining; /* batches left */
	atomic_uint_fast64_t errors;
};

static void *builder_main(void *arg)
{
	struct builder *b = arg;
	static __thread jm_job_spec specs[BUILD_BATCH];
	static __thread uint64_t ids[BUILD_BATCH];
	for (size_t i = 0; i < BUILD_BATCH; i++)
		specs[i] = (jm_job_spec){.queue = b->queue,
		                         .type = "t",
		                         .payload = payload,
		                         .payload_len = PAYLOAD_BYTES};
	while (atomic_fetch_sub(&b->remaining, 1) > 0) {
		int tries = 0;
		while (jm_client_submit_many(b->client, specs, BUILD_BATCH, false, ids, NULL) !=
		       0) {
			atomic_fetch_add(&b->errors, 1);
			if (++tries > 20)
				die("build submit");
			sleep_ms(10);
		}
	}
	return NULL;
}

/* Submits jobs (a multiple of BUILD_BATCH) to queue; returns seconds. */
static double build_jobs(jm_client *client, const char *queue, long jobs)
{
	struct builder b = {.client = client, .queue = queue};
	atomic_store(&b.remaining, jobs / BUILD_BATCH);
	pthread_t tids[BUILD_THREADS];
	uint64_t t0 = jm_mono_us();
	for (int i = 0; i < BUILD_THREADS; i++)
		if (pthread_create(&tids[i], NULL, builder_main, &b) != 0)
			die("pthread_create");
	for (int i = 0; i < BUILD_THREADS; i++)
		pthread_join(tids[i], NULL);
	return (double)(jm_mono_us() - t0) / 1e6;
}

static uint64_t dir_bytes(const char *dir, int *segments, int *snapshots)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	uint64_t total = 0;
	struct dirent *e;
	if (segments)
		*segments = 0;
	if (snapshots)
		*snapshots = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[600];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct stat st;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			total += (uint64_t)st.st_blocks * 512;
		if (segments && strncmp(e->d_name, "journal-", 8) == 0)
			(*segments)++;
		if (snapshots && strstr(e->d_name, ".snap") != NULL)
			(*snapshots)++;
	}
	closedir(d);
	return total;
}

/* Spawns a broker named name on data with extra args and waits (up to
 * READY_MS) for "listening"; returns ms from spawn to ready. */
static double broker_spawn_timed(struct harness *h, const char *name, const char *data,
                                 const char *const *extra, struct harness_proc *out)
{
	double ms = broker_proc_spawn_timed(h, name, data, extra, READY_MS, out);
	if (ms < 0)
		die("broker not listening");
	return ms;
}

/* ---- (b) replay ------------------------------------------------------------ */

static void bench_replay(struct harness *h, long jobs)
{
	printf("\n(b) replay of %ld live pending jobs (%d-byte payloads)\n", jobs, PAYLOAD_BYTES);
	char data[300];
	snprintf(data, sizeof data, "%s/data-replay", h->dir);
	const char *off[] = {"--fsync", "off", "--compact-min-bytes", "0", NULL};
	struct harness_proc broker;
	broker_spawn_timed(h, "replay", data, off, &broker);
	jm_client *client;
	if (jm_client_open(&client, h->broker_url) != 0)
		die("client");
	jm_client_set_timeout_ms(client, 30000);
	double secs = build_jobs(client, "replay", jobs);
	jm_client_close(client);
	printf("  built in %.1f s (%.0f jobs/s, batches of %d, %d threads, --fsync off)\n", secs,
	       (double)jobs / secs, BUILD_BATCH, BUILD_THREADS);
	uint64_t t0 = jm_mono_us();
	int status = -1;
	harness_stop(&broker, SIGTERM, 60000, &status);
	printf("  SIGTERM stop took %.0f ms (exit %d)\n", (double)(jm_mono_us() - t0) / 1000.0,
	       status);
	uint64_t bytes = dir_bytes(data, NULL, NULL);
	printf("  journal on disk: %.1f MB (%.0f bytes/job)\n", (double)bytes / 1e6,
	       (double)bytes / (double)jobs);
	fflush(stdout);

	double ready_ms = broker_spawn_timed(h, "replay", data, off, &broker);
	uint64_t hwm_kb = broker_proc_status_kb(broker.pid, "VmHWM:");
	uint64_t rss_kb = broker_proc_status_kb(broker.pid, "VmRSS:");
	printf("  restart to \"listening\": %.0f ms; VmHWM %.1f MB, VmRSS %.1f MB (%.0f bytes/job "
	       "peak)\n",
	       ready_ms, (double)hwm_kb / 1024.0, (double)rss_kb / 1024.0,
	       (double)hwm_kb * 1024.0 / (double)jobs);
	fflush(stdout);
	harness_stop(&broker, SIGTERM, 60000, NULL);
}

/* ---- (c) compaction -------------------------------------------------------- */

/* Fetches up to count jobs of queue as one worker and acks them. */
static long complete_jobs(struct rpc *rpc, const char *queue, long count)
{
	long done = 0;
	proto_name queues[1];
	snprintf(queues[0], sizeof queues[0], "%s", queue);
	struct proto_settle_item *items = calloc(1000, sizeof *items);
	while (done < count) {
		struct proto_msg req = {.type = PROTO_FETCH};
		strcpy(req.u.fetch.worker_id, "bench-worker");
		req.u.fetch.instance = 1;
		req.u.fetch.queues_count = 1;
		req.u.fetch.queues = queues;
		req.u.fetch.max_jobs = (uint32_t)(count - done < 1000 ? count - done : 1000);
		req.u.fetch.wait_ms = 0;
		struct rpc_reply reply = {0};
		struct jm_err err = {0};
		if (rpc_call(rpc, &req, 30000, &reply, &err) != 0 || reply.msg.type != PROTO_JOBS) {
			fprintf(stderr, "fetch failed: %s\n", jm_err_text(&err));
			break;
		}
		uint32_t got = reply.msg.u.jobs.jobs_count;
		for (uint32_t i = 0; i < got; i++)
			items[i] =
			    (struct proto_settle_item){.job_id = reply.msg.u.jobs.jobs[i].job_id,
			                               .lease = reply.msg.u.jobs.jobs[i].lease,
			                               .outcome = PROTO_SETTLE_COMPLETED,
			                               .data = {(const uint8_t *)"ok", 2}};
		rpc_reply_fini(&reply);
		if (got == 0)
			break;
		req = (struct proto_msg){.type = PROTO_SETTLE};
		strcpy(req.u.settle.worker_id, "bench-worker");
		req.u.settle.instance = 1;
		req.u.settle.items_count = got;
		req.u.settle.items = items;
		if (rpc_call(rpc, &req, 30000, &reply, &err) != 0) {
			fprintf(stderr, "ack failed: %s\n", jm_err_text(&err));
			break;
		}
		rpc_reply_fini(&reply);
		done += got;
	}
	free(items);
	return done;
}

struct prober {
	jm_client *client;
	atomic_bool stop;
	uint64_t max_us;
	uint64_t sum_us;
	uint64_t calls;
	uint64_t errors;
	bool warm;
};

static void *prober_main(void *arg)
{
	struct prober *p = arg;
	jm_job_spec spec = {
	    .queue = "probe", .type = "t", .payload = payload, .payload_len = PAYLOAD_BYTES};
	while (!atomic_load(&p->stop) && p->calls < 10000000) {
		uint64_t id, t0 = jm_mono_us();
		if (jm_client_submit(p->client, &spec, &id) != 0) {
			p->errors++;
			sleep_ms(1);
			continue;
		}
		uint64_t took = jm_mono_us() - t0;
		if (!p->warm) {
			p->warm = true; /* the first call also waits for the connection */
			continue;
		}
		p->calls++;
		p->sum_us += took;
		if (took > p->max_us)
			p->max_us = took;
	}
	return NULL;
}

static bool log_has(struct harness *h, const char *name, size_t from, const char *needle)
{
	size_t len = 0;
	char *text = harness_read_file(harness_path(h, name), &len);
	bool has = text && len > from && strstr(text + from, needle) != NULL;
	free(text);
	return has;
}

static void bench_compaction(struct harness *h)
{
	enum { SUBMITTED = 300000, COMPLETED = 250000, KEEP = 1000 };
	printf("\n(c) compaction: %d jobs submitted, %d completed, --keep-finished %d\n", SUBMITTED,
	       COMPLETED, KEEP);
	char data[300];
	snprintf(data, sizeof data, "%s/data-compact", h->dir);
	char keep[16];
	snprintf(keep, sizeof keep, "%d", KEEP);
	const char *never[] = {"--fsync", "batch", "--keep-finished", keep, "--compact-min-bytes",
	                       "0",       NULL};
	const char *soon[] = {"--fsync", "batch", "--keep-finished", keep, "--compact-min-bytes",
	                      "1048576", NULL};
	struct harness_proc broker;
	broker_spawn_timed(h, "compact", data, never, &broker);
	jm_client *client;
	if (jm_client_open(&client, h->broker_url) != 0)
		die("client");
	jm_client_set_timeout_ms(client, 30000);
	build_jobs(client, "work", SUBMITTED);
	struct rpc *rpc;
	struct jm_err err = {0};
	if (rpc_open(&rpc, h->broker_url, &err) != 0)
		die("rpc");
	long done = complete_jobs(rpc, "work", COMPLETED);
	rpc_close(rpc);
	/* Retention drops finished jobs past KEEP on its next sweeps. */
	sleep_ms(2500);
	jm_client_close(client);
	harness_stop(&broker, SIGTERM, 60000, NULL);
	int segments = 0, snapshots = 0;
	uint64_t before = dir_bytes(data, &segments, &snapshots);
	long live = SUBMITTED - done + KEEP;
	printf("  completed %ld; live jobs about %ld\n", done, live);
	printf("  before: %.1f MB in %d segment(s), %d snapshot(s): %.0f bytes/job submitted, "
	       "%.0f bytes/live job\n",
	       (double)before / 1e6, segments, snapshots, (double)before / SUBMITTED,
	       (double)before / (double)live);
	fflush(stdout);

	/* Baseline: the same client load on the same journal, no compaction. */
	broker_spawn_timed(h, "compact", data, never, &broker);
	jm_client_open(&client, h->broker_url);
	struct prober base = {.client = client};
	pthread_t tid;
	pthread_create(&tid, NULL, prober_main, &base);
	sleep_ms(3000);
	atomic_store(&base.stop, true);
	pthread_join(tid, NULL);
	jm_client_close(client);
	harness_stop(&broker, SIGTERM, 60000, NULL);

	/* With compaction due at once: it starts at the first sweep. */
	struct stat st;
	size_t err_from = stat(harness_path(h, "compact.err"), &st) == 0 ? (size_t)st.st_size : 0;
	broker_spawn_timed(h, "compact", data, soon, &broker);
	jm_client_open(&client, h->broker_url);
	struct prober during = {.client = client};
	pthread_create(&tid, NULL, prober_main, &during);
	uint64_t t0 = jm_mono_us();
	bool compacted = false;
	while (jm_mono_us() - t0 < 60000000ull) {
		if (log_has(h, "compact.err", err_from, "compaction: ")) {
			compacted = true;
			break;
		}
		sleep_ms(20);
	}
	sleep_ms(300);
	atomic_store(&during.stop, true);
	pthread_join(tid, NULL);
	jm_client_close(client);
	harness_stop(&broker, SIGTERM, 60000, NULL);
	uint64_t after = dir_bytes(data, &segments, &snapshots);
	if (!compacted) {
		printf("  compaction: did not run within 60 s\n");
		return;
	}
	char *log = harness_read_file(harness_path(h, "compact.err"), NULL);
	char *line = log ? strstr(log + err_from, "compaction: ") : NULL;
	if (line) {
		char *end = strchr(line, '\n');
		if (end)
			*end = '\0';
		printf("  broker: %s\n", line);
	}
	free(log);
	printf("  after:  %.1f MB in %d segment(s), %d snapshot(s): %.0f bytes/live job "
	       "(%.1fx smaller)\n",
	       (double)after / 1e6, segments, snapshots, (double)after / (double)live,
	       after ? (double)before / (double)after : 0.0);
	printf("  single-submit latency, --fsync batch, one client submitting back to back\n"
	       "  (during: from the restart until the compaction's log line + 300 ms)\n");
	printf("    %-38s %15s %22s\n", "", "before", "during compaction");
	printf("    %-38s %12.2f ms %19.2f ms\n", "max", (double)base.max_us / 1000.0,
	       (double)during.max_us / 1000.0);
	printf("    %-38s %12.3f ms %19.3f ms\n", "mean",
	       base.calls ? (double)base.sum_us / (double)base.calls / 1000.0 : 0.0,
	       during.calls ? (double)during.sum_us / (double)during.calls / 1000.0 : 0.0);
	printf("    %-38s %12" PRIu64 " %22" PRIu64 "\n", "submits", base.calls, during.calls);
	if (base.errors || during.errors)
		printf("    errors: %" PRIu64 " before, %" PRIu64 " during\n", base.errors,
		       during.errors);
}

int main(int argc, char **argv)
{
	long jobs = 1000000;
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--jobs") == 0)
			jobs = atol(argv[++i]);
	if (jobs < BUILD_BATCH)
		jobs = BUILD_BATCH;
	jobs -= jobs % BUILD_BATCH;
	memset(payload, 'x', PAYLOAD_BYTES);
	signal(SIGPIPE, SIG_IGN);
	struct harness h;
	if (harness_init(&h, "bench-durability") != 0)
		return 1;
	uint64_t t0 = jm_mono_us();
	printf("bench_durability: broker %s\n", harness_bin("jobmesh-broker"));
	bench_throughput(&h);
	bench_replay(&h, jobs);
	bench_compaction(&h);
	printf("\ntotal %.0f s\n", (double)(jm_mono_us() - t0) / 1e6);
	harness_fini(&h);
	return 0;
}
