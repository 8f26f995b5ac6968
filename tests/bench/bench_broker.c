/* bench_broker: throughput and latency of a real jobmesh-broker on
 * loopback, driven by the client and worker SDKs in this process.
 *
 *   W1  enqueue 100,000 no-op jobs (~100-byte payload): one job per submit
 *       (sequential, and from many threads at once), and in batches of 100
 *   W2  drain 100,000 queued jobs with total worker concurrency 4
 *   W3  round trip: submit one job and wait until it is completed, 2,000
 *       times in sequence (p50 / p99)
 *
 * usage: bench_broker [--fsync POLICY] [--url tcp|ipc] [--jobs N]
 * Prints one line per figure. A benchmark, not a test: nothing is asserted
 * beyond the counts adding up. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include <jobmesh/client.h>
#include <jobmesh/worker.h>

#include "clock.h"
#include "harness.h"
#include "sdk_load.h"
#include "broker_proc.h"
#include "event_frame.h"
#include "rpc.h"
#include "sock_close.h"

#define PRODUCER_THREADS SDK_LOAD_PRODUCERS_MAX
#define BATCH SDK_LOAD_BATCH

static const char *broker_url;

/* A subscriber to every event. PUB must drop for one that never reads
 * rather than slow the broker down; one that reads shows what publishing
 * itself costs. Returns the open socket. */
static nng_socket event_subscriber(void)
{
	struct rpc *rpc;
	struct jm_err err = {0};
	struct proto_msg hello = {.type = PROTO_HELLO};
	struct rpc_reply reply = {0};
	if (rpc_open(&rpc, broker_url, &err) != 0 ||
	    rpc_call(rpc, &hello, 5000, &reply, &err) != 0) {
		fprintf(stderr, "bench_broker: hello: %s\n", jm_err_text(&err));
		exit(1);
	}
	char url[512];
	snprintf(url, sizeof url, "%.*s", (int)reply.msg.u.hello_reply.events_url.len,
	         (const char *)reply.msg.u.hello_reply.events_url.ptr);
	rpc_reply_fini(&reply);
	rpc_close(rpc);
	nng_socket sub;
	if (nng_sub0_open(&sub) != 0 || nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0) != 0 ||
	    nng_dial(sub, url, NULL, 0) != 0) {
		fprintf(stderr, "bench_broker: cannot subscribe to %s\n", url);
		exit(1);
	}
	return sub;
}

struct event_reader {
	nng_socket sub;
	pthread_t thread;
	uint64_t events;
	uint64_t frames;
};

/* Reads and counts events until the socket is closed. */
static void *event_reader_main(void *arg)
{
	struct event_reader *r = arg;
	for (;;) {
		nng_msg *msg;
		if (nng_recvmsg(r->sub, &msg, 0) != 0)
			break;
		/* A frame holds several events (proto/event_frame.h). */
		size_t pos = 0;
		struct proto_event_item item;
		while (proto_event_frame_next(nng_msg_body(msg), nng_msg_len(msg), &pos, &item,
		                              NULL) == 1)
			r->events++;
		r->frames++;
		nng_msg_free(msg);
	}
	return NULL;
}

static double enqueue(jm_client *client, const char *queue, int jobs, int threads, int per_call)
{
	return sdk_load_enqueue(client, queue, jobs, threads, per_call);
}

static pid_t broker_pid;

/* Drains jobs queued in queue with one worker of concurrency 4; jobs/s.
 * *cpu_us_per_job gets the broker's CPU time (user + system, from
 * /proc) per job over the drain: steadier than the rate on a shared
 * machine, and what a subscriber costs the broker itself. */
static double drain(jm_client *client, const char *queue, int jobs, const char *worker_id,
                    double *cpu_us_per_job)
{
	double cpu_ms = broker_proc_cpu_ms(broker_pid);
	double rate = sdk_load_drain(client, queue, jobs, 4, worker_id, NULL);
	*cpu_us_per_job = (broker_proc_cpu_ms(broker_pid) - cpu_ms) * 1000.0 / jobs;
	return rate;
}

int main(int argc, char **argv)
{
	const char *fsync = "batch";
	const char *transport = "tcp";
	int jobs = 100000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--fsync") == 0)
			fsync = argv[i + 1];
		else if (strcmp(argv[i], "--url") == 0)
			transport = argv[i + 1];
		else if (strcmp(argv[i], "--jobs") == 0)
			jobs = atoi(argv[i + 1]);
	}
	jobs = jobs / BATCH * BATCH;
	if (jobs <= 0)
		jobs = BATCH;

	struct harness h;
	if (harness_init(&h, "bench") != 0)
		return 1;
	/* Every completed job kept: a drain counts its queue's completed jobs,
	 * which a queue otherwise caps at 100,000 (--jobs above that would
	 * never see its drain end). */
	const char *listen = strcmp(transport, "tcp") == 0 ? "tcp://127.0.0.1:0" : NULL;
	const char *args[] = {"--fsync", fsync, "--keep-completed", "unlimited", "--listen",
	                      listen,    NULL};
	if (listen == NULL)
		args[4] = NULL; /* ipc: the harness's own --listen */
	struct harness_proc broker;
	if (harness_broker_start(&h, args, &broker) != 0)
		return 1;
	broker_url = h.broker_url;
	broker_pid = broker.pid;
	sdk_load_init("bench_broker", broker_url);
	jm_client *client;
	if (jm_client_open(&client, broker_url) != 0)
		return 1;
	printf("jobmesh bench: broker %s, fsync %s, data on %s, %d jobs of %d bytes\n", broker_url,
	       fsync, h.dir, jobs, SDK_LOAD_PAYLOAD_BYTES);

	int sequential = jobs / 10;
	printf("W1 enqueue, one job per submit, 1 thread:        %9.0f jobs/s (%d jobs)\n",
	       enqueue(client, "w1-seq", sequential, 1, 1), sequential);
	printf("W1 enqueue, one job per submit, %d threads:      %9.0f jobs/s (%d jobs)\n",
	       PRODUCER_THREADS, enqueue(client, "w1-par", jobs, PRODUCER_THREADS, 1), jobs);
	printf("W1 enqueue, batches of %d, 1 thread:            %9.0f jobs/s (%d jobs)\n", BATCH,
	       enqueue(client, "w1-batch", jobs, 1, BATCH), jobs);
	printf("W1 enqueue, batches of %d, 4 threads:           %9.0f jobs/s (%d jobs)\n", BATCH,
	       enqueue(client, "w2", jobs, 4, BATCH), jobs);

	/* W2: the jobs just queued in w2, drained by concurrency 4; then the
	 * same with a subscriber to every event that reads them all, and with
	 * one that never reads. */
	double cpu;
	double rate = drain(client, "w2", jobs, "bench-drain", &cpu);
	printf("W2 drain, worker concurrency 4:                  %9.0f jobs/s (%d jobs), broker "
	       "%.2f us CPU/job\n",
	       rate, jobs, cpu);
	struct event_reader reader = {.sub = event_subscriber()};
	if (pthread_create(&reader.thread, NULL, event_reader_main, &reader) != 0)
		return 1;
	enqueue(client, "w2-read", jobs, 4, BATCH);
	rate = drain(client, "w2-read", jobs, "bench-drain-read", &cpu);
	sock_close(reader.sub);
	pthread_join(reader.thread, NULL);
	printf("W2 drain, same, with a subscriber reading all:   %9.0f jobs/s (%d jobs), broker "
	       "%.2f us CPU/job (%llu events read in %llu frames)\n",
	       rate, jobs, cpu, (unsigned long long)reader.events,
	       (unsigned long long)reader.frames);
	nng_socket stalled = event_subscriber();
	enqueue(client, "w2-stalled", jobs, 4, BATCH);
	rate = drain(client, "w2-stalled", jobs, "bench-drain-stalled", &cpu);
	printf("W2 drain, same, with a subscriber never reading: %9.0f jobs/s (%d jobs), broker "
	       "%.2f us CPU/job\n",
	       rate, jobs, cpu);
	sock_close(stalled);
	/* Once more without one: the broker now holds the finished jobs of
	 * the runs above, as the runs with subscribers did. */
	enqueue(client, "w2-again", jobs, 4, BATCH);
	rate = drain(client, "w2-again", jobs, "bench-drain-again", &cpu);
	printf("W2 drain, again with no subscriber:              %9.0f jobs/s (%d jobs), broker "
	       "%.2f us CPU/job\n",
	       rate, jobs, cpu);

	/* W3: one job at a time, submit then wait for completion. */
	enum { ROUND_TRIPS = 2000 };
	static uint64_t rtt_us[ROUND_TRIPS];
	struct sdk_load_worker rt;
	sdk_load_worker_start(&rt, "w3", 1, "bench-rtt");
	sdk_load_round_trips(client, "w3", ROUND_TRIPS, false, rtt_us);
	printf("W3 submit+wait round trip, %d in sequence:     p50 %llu us, p99 %llu us\n",
	       ROUND_TRIPS, (unsigned long long)rtt_us[ROUND_TRIPS / 2],
	       (unsigned long long)rtt_us[ROUND_TRIPS * 99 / 100]);
	sdk_load_worker_stop(&rt);

	jm_client_close(client);
	harness_stop(&broker, SIGTERM, 10000, NULL);
	harness_fini(&h);
	return 0;
}
