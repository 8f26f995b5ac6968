/* peer_beanstalkd: the beanstalkd driver of `scripts/bench peers`, in C
 * like jobmesh's, speaking beanstalkd's text protocol (put, reserve,
 * delete; doc/protocol.txt of beanstalkd 1.12) over TCP with TCP_NODELAY.
 * Runs one workload against a beanstalkd that tests/bench/peers/run
 * started, checks the server's counts with stats-tube, and prints one line
 * of key=value figures on stdout.
 *
 * usage: peer_beanstalkd --port P --workload W [--jobs N] [--rounds N]
 *                        [--in-flight N]
 *   w1     put N jobs one by one, one connection        jobs_per_s
 *   w1b    put N jobs 100 per write (pipelined), --in-flight writes
 *          (1..64, default 1) sent before their replies are read
 *                                                       jobs_per_s
 *   w1x32  put N jobs one by one from 32 connections    jobs_per_s
 *   fill   as w1b (queues jobs for drain)               jobs_per_s
 *   drain  4 connections reserve+delete until empty     jobs_per_s
 *   w3     put a job, a worker connection reserves and deletes it and
 *          puts a reply on tube "done", which the producer reserves and
 *          deletes: --rounds times                      p50_us p99_us
 * Every job body is 100 bytes. Exits 1 when the counts do not add up. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BODY_BYTES 100
#define BATCH 100
#define PRODUCERS 32
#define DRAINERS 4
/* The most W1b writes unanswered at once: their replies, ~17 bytes a put,
 * must fit in the socket buffers (see conn_open and producer_main). */
#define IN_FLIGHT_MAX 64

static int port;
static char body[BODY_BYTES + 1];

/* One connection with a read buffer for the server's lines and bodies. */
struct conn {
	int fd;
	char buf[65536];
	size_t start, end;
};

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "peer_beanstalkd: %s%s%s\n", what, detail ? ": " : "",
	        detail ? detail : "");
	exit(1);
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void conn_open(struct conn *c)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	/* Room for the replies of IN_FLIGHT_MAX writes ahead (~110 KB), set
	 * before connect so that the window is sized for it. */
	int rcvbuf = 1 << 20;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd >= 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0)
		fail("connect to 127.0.0.1", NULL);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->start = c->end = 0;
}

static void conn_write(struct conn *c, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(c->fd, data, len);
		if (n <= 0)
			fail("write", NULL);
		data += n;
		len -= (size_t)n;
	}
}

/* Reads until the buffer holds need bytes from start. */
static void conn_fill(struct conn *c, size_t need)
{
	if (need > sizeof c->buf)
		fail("reply larger than the buffer", NULL);
	if (c->start + need > sizeof c->buf) {
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
	}
	while (c->end - c->start < need) {
		ssize_t n = read(c->fd, c->buf + c->end, sizeof c->buf - c->end);
		if (n <= 0)
			fail("read: server closed the connection", NULL);
		c->end += (size_t)n;
	}
}

/* Next reply line without its "\r\n", NUL-terminated in place; valid until
 * the next read on c. */
static char *conn_line(struct conn *c)
{
	for (size_t have = 1;; have = c->end - c->start + 1) {
		conn_fill(c, have);
		char *p = memmem(c->buf + c->start, c->end - c->start, "\r\n", 2);
		if (p != NULL) {
			*p = '\0';
			char *line = c->buf + c->start;
			c->start = (size_t)(p + 2 - c->buf);
			return line;
		}
	}
}

/* Skips a body of len bytes and its "\r\n". */
static void conn_skip(struct conn *c, size_t len)
{
	conn_fill(c, len + 2);
	c->start += len + 2;
}

static void command(struct conn *c, const char *cmd, const char *want_prefix)
{
	conn_write(c, cmd, strlen(cmd));
	char *line = conn_line(c);
	if (strncmp(line, want_prefix, strlen(want_prefix)) != 0)
		fail(cmd, line);
}

static size_t put_command(char *out, size_t size, const char *data, size_t len)
{
	int n = snprintf(out, size, "put 1024 0 60 %zu\r\n", len);
	memcpy(out + n, data, len);
	memcpy(out + n + len, "\r\n", 2);
	return (size_t)n + len + 2;
}

static void expect_inserted(struct conn *c)
{
	char *line = conn_line(c);
	if (strncmp(line, "INSERTED ", 9) != 0)
		fail("put", line);
}

/* Reserves one job (blocking); returns its id. */
static uint64_t reserve(struct conn *c, const char *cmd, int *timed_out)
{
	conn_write(c, cmd, strlen(cmd));
	char *line = conn_line(c);
	unsigned long long id;
	size_t len;
	if (timed_out != NULL && strcmp(line, "TIMED_OUT") == 0) {
		*timed_out = 1;
		return 0;
	}
	if (sscanf(line, "RESERVED %llu %zu", &id, &len) != 2)
		fail("reserve", line);
	conn_skip(c, len);
	return id;
}

static void delete_job(struct conn *c, uint64_t id)
{
	char cmd[64];
	snprintf(cmd, sizeof cmd, "delete %llu\r\n", (unsigned long long)id);
	command(c, cmd, "DELETED");
}

/* A counter of tube from stats-tube ("current-jobs-ready" ...); 0 for a
 * tube that no longer exists (beanstalkd drops an empty, unwatched one). */
static uint64_t tube_stat(const char *tube, const char *key)
{
	struct conn c;
	conn_open(&c);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "stats-tube %s\r\n", tube);
	conn_write(&c, cmd, strlen(cmd));
	char *line = conn_line(&c);
	size_t len;
	if (strcmp(line, "NOT_FOUND") == 0) { /* a tube nobody uses or fills */
		close(c.fd);
		return 0;
	}
	if (sscanf(line, "OK %zu", &len) != 1)
		fail("stats-tube", line);
	conn_fill(&c, len + 2);
	char *yaml = c.buf + c.start;
	yaml[len] = '\0';
	char pattern[96];
	snprintf(pattern, sizeof pattern, "\n%s: ", key);
	char *at = strstr(yaml, pattern);
	if (at == NULL)
		fail("stats-tube has no", key);
	uint64_t value = strtoull(at + strlen(pattern), NULL, 10);
	close(c.fd);
	return value;
}

static void expect_stat(const char *tube, const char *key, uint64_t want)
{
	uint64_t got = tube_stat(tube, key);
	if (got != want) {
		fprintf(stderr, "peer_beanstalkd: %s %s is %llu, expected %llu\n", tube, key,
		        (unsigned long long)got, (unsigned long long)want);
		exit(1);
	}
}

struct producer {
	pthread_t thread;
	int jobs;
	int per_write;
	int in_flight; /* writes sent before their replies are read */
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	static _Thread_local char out[BATCH * (BODY_BYTES + 64)];
	struct conn *c = malloc(sizeof *c);
	if (c == NULL)
		fail("malloc", NULL);
	conn_open(c);
	/* Up to in_flight writes unanswered: the replies (~17 bytes a put)
	 * of all of them fit in the socket buffers, so writing ahead before
	 * reading cannot block both ends. */
	int writes = p->jobs / p->per_write, sent = 0;
	for (int answered = 0; answered < writes; answered++) {
		for (; sent < writes && sent - answered < p->in_flight; sent++) {
			size_t len = 0;
			for (int i = 0; i < p->per_write; i++)
				len += put_command(out + len, sizeof out - len, body, BODY_BYTES);
			conn_write(c, out, len);
		}
		for (int i = 0; i < p->per_write; i++)
			expect_inserted(c);
	}
	close(c->fd);
	free(c);
	return NULL;
}

/* Puts jobs jobs from threads connections, per_write per write, in_flight
 * writes unanswered at once on each; jobs/s. */
static double put_jobs(int jobs, int threads, int per_write, int in_flight)
{
	struct producer producers[PRODUCERS];
	int writes = jobs / per_write;
	uint64_t start = now_us();
	for (int t = 0; t < threads; t++) {
		producers[t].jobs = (writes / threads + (t < writes % threads)) * per_write;
		producers[t].per_write = per_write;
		producers[t].in_flight = in_flight;
		if (pthread_create(&producers[t].thread, NULL, producer_main, &producers[t]) != 0)
			fail("pthread_create", NULL);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(producers[t].thread, NULL);
	double rate = jobs / ((now_us() - start) / 1e6);
	expect_stat("default", "current-jobs-ready", (uint64_t)jobs);
	return rate;
}

static atomic_uint_fast64_t drained;

/* Reserves and deletes until the tube is empty: every job was queued
 * before the drain started, so a reserve that times out at once means
 * none is left to hand out. */
static void *drainer_main(void *arg)
{
	(void)arg;
	struct conn *c = malloc(sizeof *c);
	if (c == NULL)
		fail("malloc", NULL);
	conn_open(c);
	for (;;) {
		int timed_out = 0;
		uint64_t id = reserve(c, "reserve-with-timeout 0\r\n", &timed_out);
		if (timed_out)
			break;
		delete_job(c, id);
		atomic_fetch_add(&drained, 1);
	}
	close(c->fd);
	free(c);
	return NULL;
}

static double drain(int jobs)
{
	pthread_t threads[DRAINERS];
	uint64_t start = now_us();
	for (int t = 0; t < DRAINERS; t++)
		if (pthread_create(&threads[t], NULL, drainer_main, NULL) != 0)
			fail("pthread_create", NULL);
	for (int t = 0; t < DRAINERS; t++)
		pthread_join(threads[t], NULL);
	double rate = (double)atomic_load(&drained) / ((now_us() - start) / 1e6);
	if (atomic_load(&drained) != (uint64_t)jobs) {
		fprintf(stderr, "peer_beanstalkd: drained %llu jobs, expected %d\n",
		        (unsigned long long)atomic_load(&drained), jobs);
		exit(1);
	}
	expect_stat("default", "current-jobs-ready", 0);
	expect_stat("default", "current-jobs-reserved", 0);
	expect_stat("default", "cmd-delete", (uint64_t)jobs);
	return rate;
}

/* The W3 worker: reserves from "jobs", deletes, replies on "done"; a job
 * whose body starts with "stop" ends it. */
static void *w3_worker_main(void *arg)
{
	uint64_t *handled = arg;
	struct conn *c = malloc(sizeof *c);
	char out[BODY_BYTES + 64];
	if (c == NULL)
		fail("malloc", NULL);
	conn_open(c);
	command(c, "watch jobs\r\n", "WATCHING");
	command(c, "ignore default\r\n", "WATCHING");
	command(c, "use done\r\n", "USING");
	for (;;) {
		conn_write(c, "reserve\r\n", 9);
		char *line = conn_line(c);
		unsigned long long id;
		size_t len;
		if (sscanf(line, "RESERVED %llu %zu", &id, &len) != 2)
			fail("reserve", line);
		conn_fill(c, len + 2);
		int stop = len >= 4 && memcmp(c->buf + c->start, "stop", 4) == 0;
		c->start += len + 2;
		delete_job(c, id);
		if (stop)
			break;
		(*handled)++;
		char reply[32];
		int n = snprintf(reply, sizeof reply, "%llu", id);
		conn_write(c, out, put_command(out, sizeof out, reply, (size_t)n));
		expect_inserted(c);
	}
	close(c->fd);
	free(c);
	return NULL;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void round_trips(int rounds)
{
	uint64_t handled = 0;
	pthread_t worker;
	if (pthread_create(&worker, NULL, w3_worker_main, &handled) != 0)
		fail("pthread_create", NULL);
	uint64_t *rtt = calloc((size_t)rounds, sizeof *rtt);
	struct conn *c = malloc(sizeof *c);
	char out[BODY_BYTES + 64];
	if (rtt == NULL || c == NULL)
		fail("malloc", NULL);
	conn_open(c);
	command(c, "use jobs\r\n", "USING");
	command(c, "watch done\r\n", "WATCHING");
	command(c, "ignore default\r\n", "WATCHING");
	size_t put_len = put_command(out, sizeof out, body, BODY_BYTES);
	for (int i = 0; i < rounds; i++) {
		uint64_t t0 = now_us();
		conn_write(c, out, put_len);
		expect_inserted(c);
		delete_job(c, reserve(c, "reserve\r\n", NULL));
		rtt[i] = now_us() - t0;
	}
	conn_write(c, out, put_command(out, sizeof out, "stop", 4));
	expect_inserted(c);
	pthread_join(worker, NULL);
	close(c->fd);
	free(c);
	if (handled != (uint64_t)rounds) {
		fprintf(stderr, "peer_beanstalkd: worker handled %llu jobs, expected %d\n",
		        (unsigned long long)handled, rounds);
		exit(1);
	}
	expect_stat("jobs", "current-jobs-ready", 0);
	expect_stat("done", "current-jobs-ready", 0);
	qsort(rtt, (size_t)rounds, sizeof rtt[0], compare_u64);
	printf("p50_us=%llu p99_us=%llu\n", (unsigned long long)rtt[rounds / 2],
	       (unsigned long long)rtt[(size_t)rounds * 99 / 100]);
	free(rtt);
}

int main(int argc, char **argv)
{
	const char *workload = NULL;
	int jobs = 100000, rounds = 2000, in_flight = 1;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--workload") == 0)
			workload = argv[i + 1];
		else if (strcmp(argv[i], "--jobs") == 0)
			jobs = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--in-flight") == 0)
			in_flight = atoi(argv[i + 1]);
	}
	jobs = jobs / BATCH * BATCH;
	if (port <= 0 || port > 65535 || workload == NULL || jobs <= 0 || rounds <= 0 ||
	    in_flight < 1 || in_flight > IN_FLIGHT_MAX) {
		fprintf(stderr,
		        "usage: peer_beanstalkd --port P --workload "
		        "w1|w1b|w1x32|fill|drain|w3 [--jobs N>=100] [--rounds N>=1] "
		        "[--in-flight 1..%d]\n",
		        IN_FLIGHT_MAX);
		return 2;
	}
	memset(body, 'x', BODY_BYTES);
	if (strcmp(workload, "w1") == 0)
		printf("jobs_per_s=%.0f\n", put_jobs(jobs, 1, 1, 1));
	else if (strcmp(workload, "w1b") == 0)
		printf("jobs_per_s=%.0f\n", put_jobs(jobs, 1, BATCH, in_flight));
	else if (strcmp(workload, "fill") == 0)
		printf("jobs_per_s=%.0f\n", put_jobs(jobs, 1, BATCH, 1));
	else if (strcmp(workload, "w1x32") == 0)
		printf("jobs_per_s=%.0f\n", put_jobs(jobs, PRODUCERS, 1, 1));
	else if (strcmp(workload, "drain") == 0)
		printf("jobs_per_s=%.0f\n", drain(jobs));
	else if (strcmp(workload, "w3") == 0)
		round_trips(rounds);
	else {
		fprintf(stderr, "peer_beanstalkd: unknown workload %s\n", workload);
		return 2;
	}
	return 0;
}
