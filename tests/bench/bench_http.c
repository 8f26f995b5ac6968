/* bench_http: the broker's HTTP API on loopback, driven by plain sockets.
 *
 *   H1  POST /v1/queues/bench/jobs (one job each), keep-alive, over 1 and
 *       32 connections for a few seconds each: jobs/s (each 202 is durable)
 *   H2  submit, then GET /v1/jobs/{id}/result?wait=10 until it completes on
 *       a jobmesh-worker: round trip p50 / p99 over 300 jobs
 *   H3  drain a 3,000-job batch through jobmesh-worker (concurrency 8,
 *       handler "true") with 0 and with 100 SSE clients watching the batch:
 *       jobs/s of the drain, and the events each client got
 *   H4  a W2-like drain (issue 12): a batch of 10,000 jobs of 100 bytes
 *       submitted through the C SDK, drained by an in-process SDK worker of
 *       concurrency 4 with a no-op handler, with 0 SSE clients, with 100 on
 *       the batch reading every event, and with 100 on the batch asking for
 *       its progress only (kind=batch, as the SDKs' batch waits do): jobs/s
 *       and the broker's CPU per job; --h4-rounds N repeats the three and
 *       prints the median of each and what the clients cost
 *
 * usage: bench_http [--fsync POLICY] [--seconds N] [--only-h4] [--h4-rounds N]
 * A benchmark: it prints figures and asserts only that counts add up. */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker_proc.h"
#include "clock.h"
#include "harness.h"
#include "sdk_load.h"

#define CONNS_MAX 32
#define SSE_CLIENTS 100
#define H2_JOBS 300
#define H3_JOBS 3000

static int http_port;
static const char *fsync_policy = "batch";
static int seconds = 3;
static bool only_h4;
static int h4_round_count = 1;

static void die(const char *what)
{
	fprintf(stderr, "bench_http: %s\n", what);
	exit(1);
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		die("cannot connect to the broker's HTTP port");
	return fd;
}

/* One request on fd; returns the status and copies up to body_size-1 bytes
 * of the body (NUL-terminated) into body. */
static int exchange(int fd, const char *method, const char *path, const char *json, char *body,
                    size_t body_size)
{
	char req[1024];
	int len = snprintf(req, sizeof req,
	                   "%s %s HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
	                   "Content-Length: %zu\r\n\r\n%s",
	                   method, path, json ? strlen(json) : 0, json ? json : "");
	if (write(fd, req, (size_t)len) != len)
		die("write failed");
	char buf[65536];
	size_t got = 0;
	char *head_end = NULL;
	while (head_end == NULL) {
		ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
		if (n <= 0)
			die("the broker closed the connection");
		got += (size_t)n;
		buf[got] = '\0';
		head_end = strstr(buf, "\r\n\r\n");
	}
	int status = atoi(buf + 9);
	const char *cl = strcasestr(buf, "Content-Length:");
	size_t content = cl ? (size_t)atol(cl + 15) : 0;
	size_t have = got - (size_t)(head_end + 4 - buf);
	while (have < content) {
		ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
		if (n <= 0)
			die("the broker closed the connection mid-body");
		got += (size_t)n;
		have += (size_t)n;
	}
	buf[got] = '\0';
	if (body)
		snprintf(body, body_size, "%s", head_end + 4);
	return status;
}

/* ---- H1 --------------------------------------------------------------------- */

static atomic_bool h1_stop;
static atomic_ulong h1_done;

static void *h1_main(void *arg)
{
	int fd = dial();
	while (!atomic_load(&h1_stop)) {
		if (exchange(
		        fd, "POST", "/v1/queues/bench/jobs",
		        "{\"type\":\"t\",\"payload\":\"0123456789012345678901234567890123456789\"}",
		        NULL, 0) != 202)
			die("a submit was not accepted");
		atomic_fetch_add(&h1_done, 1);
	}
	close(fd);
	return NULL;
}

static void h1(int conns)
{
	pthread_t threads[CONNS_MAX];
	atomic_store(&h1_stop, false);
	atomic_store(&h1_done, 0);
	uint64_t start = jm_mono_us();
	for (int i = 0; i < conns; i++)
		pthread_create(&threads[i], NULL, h1_main, NULL);
	usleep((useconds_t)seconds * 1000000);
	atomic_store(&h1_stop, true);
	for (int i = 0; i < conns; i++)
		pthread_join(threads[i], NULL);
	double s = (double)(jm_mono_us() - start) / 1e6;
	printf("H1 submit over HTTP, %2d keep-alive connection%s: %8.0f jobs/s (%lu in %.1f s)\n",
	       conns, conns == 1 ? " " : "s", (double)atomic_load(&h1_done) / s,
	       atomic_load(&h1_done), s);
}

/* ---- H2 --------------------------------------------------------------------- */

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void h2(void)
{
	int fd = dial();
	uint64_t took[H2_JOBS];
	char body[4096], path[128];
	for (int i = 0; i < H2_JOBS; i++) {
		uint64_t t0 = jm_mono_us();
		if (exchange(fd, "POST", "/v1/queues/rt/jobs", "{\"type\":\"t\",\"payload\":\"x\"}",
		             body, sizeof body) != 202)
			die("a submit was not accepted");
		const char *id = strstr(body, "\"id\":\"");
		if (id == NULL)
			die("no id in the reply");
		snprintf(path, sizeof path, "/v1/jobs/%ld/result?wait=10", atol(id + 6));
		if (exchange(fd, "GET", path, NULL, body, sizeof body) != 200)
			die("a job did not complete within 10 s");
		took[i] = jm_mono_us() - t0;
	}
	close(fd);
	qsort(took, H2_JOBS, sizeof took[0], compare_u64);
	printf("H2 submit + result?wait round trip (jobmesh-worker, exec handler): p50 %.2f ms, "
	       "p99 %.2f ms\n",
	       (double)took[H2_JOBS / 2] / 1000, (double)took[H2_JOBS * 99 / 100] / 1000);
}

/* ---- H3 --------------------------------------------------------------------- */

struct sse_reader {
	pthread_t thread;
	int fd;
	atomic_ulong events;
	atomic_bool answered; /* the response has started */
	atomic_bool
	    saw_completed; /* a "completed" state: on a kind=batch stream, the batch's end */
};

static void *sse_main(void *arg)
{
	struct sse_reader *r = arg;
	char buf[65536];
	for (;;) {
		ssize_t n = read(r->fd, buf, sizeof buf);
		if (n <= 0)
			break;
		atomic_store(&r->answered, true);
		for (ssize_t i = 0; i + 3 < n; i++)
			if (memcmp(buf + i, "id: ", 4) == 0)
				atomic_fetch_add(&r->events, 1);
		if (memmem(buf, (size_t)n, "\"state\":\"completed\"", 19))
			atomic_store(&r->saw_completed, true);
	}
	return NULL;
}

static void h3(struct harness *h, int clients, const char *queue)
{
	int fd = dial();
	static char jobs[H3_JOBS * 48 + 64];
	size_t len = (size_t)snprintf(jobs, sizeof jobs, "{\"jobs\":[");
	for (int i = 0; i < H3_JOBS; i++)
		len += (size_t)snprintf(jobs + len, sizeof jobs - len,
		                        "%s{\"queue\":\"%s\",\"type\":\"t\"}", i ? "," : "", queue);
	snprintf(jobs + len, sizeof jobs - len, "]}");
	char body[256], path[128];
	char *big = malloc(1 << 20);
	/* exchange's request buffer is small: send this one by hand. */
	char head[256];
	int head_len = snprintf(head, sizeof head,
	                        "POST /v1/batches HTTP/1.1\r\nHost: b\r\nContent-Type: "
	                        "application/json\r\nContent-Length: %zu\r\n\r\n",
	                        strlen(jobs));
	if (write(fd, head, (size_t)head_len) != head_len ||
	    write(fd, jobs, strlen(jobs)) != (ssize_t)strlen(jobs))
		die("write failed");
	ssize_t n = read(fd, big, (1 << 20) - 1);
	if (n <= 0 || strncmp(big, "HTTP/1.1 202", 12) != 0)
		die("the batch was not accepted");
	big[n] = '\0';
	long batch_id = atol(strstr(big, "\"id\":\"") + 6);
	free(big);
	static struct sse_reader readers[SSE_CLIENTS];
	for (int i = 0; i < clients; i++) {
		readers[i].fd = dial();
		atomic_store(&readers[i].events, 0);
		char req[256];
		int rl = snprintf(req, sizeof req,
		                  "GET /v1/events?topic=batch/%ld HTTP/1.1\r\nHost: b\r\n\r\n",
		                  batch_id);
		if (write(readers[i].fd, req, (size_t)rl) != rl)
			die("write failed");
		pthread_create(&readers[i].thread, NULL, sse_main, &readers[i]);
	}
	char concurrency[] = "8";
	const char *args[] = {"--queue", queue,         "--concurrency", concurrency, "--handler",
	                      "t=true",  "--log-level", "warn",          NULL};
	struct harness_proc worker;
	uint64_t start = jm_mono_us();
	if (harness_worker_start(h, queue, args, &worker) != 0)
		die("cannot start jobmesh-worker");
	snprintf(path, sizeof path, "/v1/batches/%ld", batch_id);
	for (int i = 0; i < 100000; i++) {
		exchange(fd, "GET", path, NULL, body, sizeof body);
		if (strstr(body, "\"state\":\"completed\""))
			break;
		usleep(20000); /* polling here only measures; the broker does not poll */
	}
	double s = (double)(jm_mono_us() - start) / 1e6;
	harness_stop(&worker, SIGTERM, 10000, NULL);
	unsigned long events = 0;
	for (int i = 0; i < clients; i++) {
		shutdown(readers[i].fd, SHUT_RDWR);
		pthread_join(readers[i].thread, NULL);
		close(readers[i].fd);
		events += atomic_load(&readers[i].events);
	}
	close(fd);
	printf("H3 drain %d jobs (8 exec slots), %3d SSE clients on the batch: %6.0f jobs/s",
	       H3_JOBS, clients, H3_JOBS / s);
	if (clients)
		printf(" (%lu events per client)", events / (unsigned long)clients);
	printf("\n");
}

/* ---- H4 --------------------------------------------------------------------- */

#define H4_JOBS 10000 /* a batch's most (PROTO_JOBS_PER_MESSAGE_MAX) */

/* One H4 drain with clients SSE readers on the batch, each asking for
 * kind (NULL: every kind); jobs/s. */
static double h4(struct harness *h, const struct harness_proc *broker, int clients,
                 const char *kind, const char *queue)
{
	jm_client *client;
	if (jm_client_open(&client, h->broker_url) != 0)
		die("cannot open an SDK client");
	static jm_job_spec specs[H4_JOBS];
	static uint64_t ids[H4_JOBS];
	for (int i = 0; i < H4_JOBS; i++)
		specs[i] = sdk_load_spec(queue);
	uint64_t batch_id = 0;
	int rc = jm_client_submit_many(client, specs, H4_JOBS, true, ids, &batch_id);
	if (rc != 0)
		sdk_load_die("submitting the batch", rc);
	static struct sse_reader readers[SSE_CLIENTS];
	for (int i = 0; i < clients; i++) {
		readers[i].fd = dial();
		atomic_store(&readers[i].events, 0);
		atomic_store(&readers[i].answered, false);
		atomic_store(&readers[i].saw_completed, false);
		char req[256];
		int rl =
		    snprintf(req, sizeof req,
		             "GET /v1/events?topic=batch/%llu%s%s HTTP/1.1\r\nHost: b\r\n\r\n",
		             (unsigned long long)batch_id, kind ? "&kind=" : "", kind ? kind : "");
		if (write(readers[i].fd, req, (size_t)rl) != rl)
			die("write failed");
		pthread_create(&readers[i].thread, NULL, sse_main, &readers[i]);
	}
	/* Every client's stream has started before the drain does (bounded). */
	uint64_t until = jm_mono_us() + 60 * 1000000ull;
	int answered = 0;
	for (int i = 0; i < clients; i++) {
		while (!atomic_load(&readers[i].answered) && jm_mono_us() < until)
			usleep(1000);
		answered += atomic_load(&readers[i].answered);
	}
	if (answered < clients)
		printf("H4: only %d of %d SSE clients were answered within 60 s\n", answered,
		       clients);
	double user_ms, system_ms, user_end_ms, system_end_ms;
	broker_proc_cpu_split_ms(broker->pid, &user_ms, &system_ms);
	double rate = sdk_load_drain(client, queue, H4_JOBS, 4, queue, NULL);
	broker_proc_cpu_split_ms(broker->pid, &user_end_ms, &system_end_ms);
	double user_us = (user_end_ms - user_ms) * 1000.0 / H4_JOBS;
	double system_us = (system_end_ms - system_ms) * 1000.0 / H4_JOBS;
	/* Untimed: a progress-only client has the batch's final event a
	 * publish round after the drain (bounded). */
	int saw_end = 0;
	until = jm_mono_us() + 5 * 1000000ull;
	for (int i = 0; kind && i < clients; i++) {
		while (!atomic_load(&readers[i].saw_completed) && jm_mono_us() < until)
			usleep(1000);
		saw_end += atomic_load(&readers[i].saw_completed);
	}
	unsigned long events = 0;
	for (int i = 0; i < clients; i++) {
		shutdown(readers[i].fd, SHUT_RDWR);
		pthread_join(readers[i].thread, NULL);
		close(readers[i].fd);
		events += atomic_load(&readers[i].events);
	}
	jm_client_close(client);
	printf("H4 W2-like drain of a %d-job batch (SDK worker, concurrency 4), %3d SSE clients%s: "
	       "%6.0f jobs/s, broker %.1f us CPU/job (user %.1f, system %.1f)",
	       H4_JOBS, clients, kind ? " (kind=batch)" : "", rate, user_us + system_us, user_us,
	       system_us);
	if (clients)
		printf(" (%lu events per client)", events / (unsigned long)clients);
	if (kind)
		printf(" (%d of %d saw the batch complete)", saw_end, clients);
	printf("\n");
	return rate;
}

#define H4_ROUNDS_MAX 20

/* rounds of H4's three drains, each on its own queue (a queue keeps its
 * finished jobs); with more than one, the medians and the cost of each
 * kind of client against none. */
static void h4_rounds(struct harness *h, const struct harness_proc *broker, int rounds)
{
	double none[H4_ROUNDS_MAX], all[H4_ROUNDS_MAX], progress[H4_ROUNDS_MAX];
	for (int r = 0; r < rounds; r++) {
		char queue[32];
		snprintf(queue, sizeof queue, "w2-sse0-%d", r);
		none[r] = h4(h, broker, 0, NULL, queue);
		snprintf(queue, sizeof queue, "w2-sse100-%d", r);
		all[r] = h4(h, broker, SSE_CLIENTS, NULL, queue);
		snprintf(queue, sizeof queue, "w2-sse100-batch-%d", r);
		progress[r] = h4(h, broker, SSE_CLIENTS, "batch", queue);
	}
	if (rounds < 2)
		return;
	double n = sdk_load_median(none, rounds), a = sdk_load_median(all, rounds),
	       p = sdk_load_median(progress, rounds);
	printf(
	    "H4 medians of %d rounds: 0 clients %.0f jobs/s; 100 reading every event %.0f "
	    "(they cost %.1f %%); 100 asking for the batch's progress %.0f (they cost %.1f %%)\n",
	    rounds, n, a, 100.0 * (1 - a / n), p, 100.0 * (1 - p / n));
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--fsync") == 0 && i + 1 < argc)
			fsync_policy = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--only-h4") == 0)
			only_h4 = true;
		else if (strcmp(argv[i], "--h4-rounds") == 0 && i + 1 < argc)
			h4_round_count = atoi(argv[++i]);
		else
			die("usage: bench_http [--fsync POLICY] [--seconds N] [--only-h4] "
			    "[--h4-rounds N]");
	}
	if (h4_round_count < 1 || h4_round_count > H4_ROUNDS_MAX) {
		fprintf(stderr, "bench_http: --h4-rounds takes 1 to %d\n", H4_ROUNDS_MAX);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct harness h;
	struct harness_proc broker;
	const char *broker_args[] = {"--fsync", fsync_policy, "--log-level", "warn", NULL};
	if (harness_init(&h, "bench_http") != 0 ||
	    harness_broker_start(&h, broker_args, &broker) != 0)
		die("cannot start the broker");
	const char *colon = strrchr(h.http_url, ':');
	if (colon == NULL)
		die("the broker printed no http URL");
	http_port = atoi(colon + 1);
	printf("bench_http: broker %s, fsync %s\n", h.http_url, fsync_policy);
	sdk_load_init("bench_http", h.broker_url);
	if (only_h4)
		goto h4_runs;
	h1(1);
	h1(32);
	const char *worker_args[] = {"--queue", "rt",          "--concurrency", "4", "--handler",
	                             "t=cat",   "--log-level", "warn",          NULL};
	struct harness_proc worker;
	if (harness_worker_start(&h, "rt-worker", worker_args, &worker) != 0)
		die("cannot start jobmesh-worker");
	h2();
	harness_stop(&worker, SIGTERM, 10000, NULL);
	h3(&h, 0, "drain0");
	h3(&h, SSE_CLIENTS, "drain100");
h4_runs:
	h4_rounds(&h, &broker, h4_round_count);
	harness_stop(&broker, SIGTERM, 10000, NULL);
	harness_fini(&h);
	return 0;
}
