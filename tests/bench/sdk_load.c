/* The SDK load shared by the jobmesh benchmarks (see sdk_load.h). */
#include "sdk_load.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

static char sdk_load_payload[SDK_LOAD_PAYLOAD_BYTES + 1];
static const char *sdk_load_program = "bench";
static const char *sdk_load_url;
static atomic_uint_fast64_t sdk_load_handled_count;

void sdk_load_init(const char *program, const char *broker_url)
{
	sdk_load_program = program;
	sdk_load_url = broker_url;
	memset(sdk_load_payload, 'x', SDK_LOAD_PAYLOAD_BYTES);
}

void sdk_load_die(const char *what, int rc)
{
	fprintf(stderr, "%s: %s: %s (%s)\n", sdk_load_program, what, jm_strerror(rc),
	        jm_client_last_error());
	exit(1);
}

jm_job_spec sdk_load_spec(const char *queue)
{
	return (jm_job_spec){.queue = queue,
	                     .type = "noop",
	                     .payload = sdk_load_payload,
	                     .payload_len = SDK_LOAD_PAYLOAD_BYTES};
}

struct sdk_load_producer {
	jm_client *client;
	const char *queue;
	int jobs;
	int per_call;
};

static void *sdk_load_producer_main(void *arg)
{
	struct sdk_load_producer *p = arg;
	jm_job_spec specs[SDK_LOAD_BATCH];
	uint64_t ids[SDK_LOAD_BATCH];
	for (int i = 0; i < SDK_LOAD_BATCH; i++)
		specs[i] = sdk_load_spec(p->queue);
	for (int done = 0; done < p->jobs; done += p->per_call) {
		int rc = p->per_call == 1
		             ? jm_client_submit(p->client, &specs[0], &ids[0])
		             : jm_client_submit_many(p->client, specs, (size_t)p->per_call, false,
		                                     ids, NULL);
		if (rc != 0)
			sdk_load_die("submit", rc);
	}
	return NULL;
}

double sdk_load_enqueue(jm_client *client, const char *queue, int jobs, int threads, int per_call)
{
	pthread_t tids[SDK_LOAD_PRODUCERS_MAX];
	struct sdk_load_producer producers[SDK_LOAD_PRODUCERS_MAX];
	if (threads < 1 || threads > SDK_LOAD_PRODUCERS_MAX || per_call < 1 ||
	    per_call > SDK_LOAD_BATCH)
		sdk_load_die("enqueue: threads or per_call out of range", JM_EINVAL);
	uint64_t start = jm_mono_us();
	int calls = jobs / per_call;
	for (int t = 0; t < threads; t++) {
		int thread_calls = calls / threads + (t < calls % threads);
		producers[t] =
		    (struct sdk_load_producer){client, queue, thread_calls * per_call, per_call};
		if (pthread_create(&tids[t], NULL, sdk_load_producer_main, &producers[t]) != 0)
			sdk_load_die("pthread_create", JM_ENOMEM);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	return jobs / ((jm_mono_us() - start) / 1e6);
}

static atomic_int sdk_load_async_failed;

static void sdk_load_many_done_cb(void *arg, int rc, const uint64_t *job_ids, size_t count,
                                  const char *error)
{
	(void)arg;
	(void)job_ids;
	if (rc != 0 || count != SDK_LOAD_BATCH) {
		fprintf(stderr, "%s: asynchronous submit: %s (%s)\n", sdk_load_program,
		        jm_strerror(rc), error);
		atomic_store(&sdk_load_async_failed, 1);
	}
}

double sdk_load_enqueue_pipelined(jm_client *client, const char *queue, int jobs,
                                  unsigned in_flight)
{
	jm_job_spec specs[SDK_LOAD_BATCH];
	for (int i = 0; i < SDK_LOAD_BATCH; i++)
		specs[i] = sdk_load_spec(queue);
	jm_submitter *submitter;
	int rc = jm_submitter_open(client, in_flight, &submitter);
	if (rc != 0)
		sdk_load_die("submitter", rc);
	uint64_t start = jm_mono_us();
	for (int done = 0; done < jobs; done += SDK_LOAD_BATCH) {
		rc = jm_client_submit_many_async(submitter, specs, SDK_LOAD_BATCH,
		                                 sdk_load_many_done_cb, NULL);
		if (rc != 0)
			sdk_load_die("asynchronous submit", rc);
	}
	jm_submitter_close(submitter); /* waits for every reply */
	double rate = jobs / ((jm_mono_us() - start) / 1e6);
	if (atomic_load(&sdk_load_async_failed))
		sdk_load_die("asynchronous submit", JM_EIO);
	return rate;
}

jm_queue_stats sdk_load_queue_stats(jm_client *client, const char *queue)
{
	jm_queue_stats *queues;
	size_t count;
	int rc = jm_client_stats(client, &queues, &count);
	if (rc != 0)
		sdk_load_die("stats", rc);
	jm_queue_stats found;
	memset(&found, 0, sizeof found);
	for (size_t i = 0; i < count; i++)
		if (strcmp(queues[i].name, queue) == 0)
			found = queues[i];
	free(queues);
	return found;
}

static int sdk_load_noop_handler(jm_job *job, void *arg)
{
	(void)job;
	(void)arg;
	atomic_fetch_add(&sdk_load_handled_count, 1);
	return JM_HANDLER_OK;
}

uint64_t sdk_load_handled(void)
{
	return atomic_load(&sdk_load_handled_count);
}

static void *sdk_load_worker_main(void *arg)
{
	jm_worker_run(((struct sdk_load_worker *)arg)->worker);
	return NULL;
}

void sdk_load_worker_start(struct sdk_load_worker *w, const char *queue, unsigned concurrency,
                           const char *worker_id)
{
	const char *queues[] = {queue};
	jm_worker_options opts = {.broker_url = sdk_load_url,
	                          .worker_id = worker_id,
	                          .queues = queues,
	                          .queues_count = 1,
	                          .concurrency = concurrency};
	int rc = jm_worker_new(&w->worker, &opts);
	if (rc == 0)
		rc = jm_worker_register(w->worker, "noop", sdk_load_noop_handler, NULL);
	if (rc != 0)
		sdk_load_die("worker", rc);
	if (pthread_create(&w->thread, NULL, sdk_load_worker_main, w) != 0)
		sdk_load_die("pthread_create", JM_ENOMEM);
}

void sdk_load_worker_stop(struct sdk_load_worker *w)
{
	jm_worker_stop(w->worker, true);
	pthread_join(w->thread, NULL);
	jm_worker_free(w->worker);
}

double sdk_load_drain(jm_client *client, const char *queue, int jobs, unsigned concurrency,
                      const char *worker_id, uint64_t *completed)
{
	struct sdk_load_worker w;
	uint64_t handled = sdk_load_handled();
	uint64_t start = jm_mono_us();
	sdk_load_worker_start(&w, queue, concurrency, worker_id);
	uint64_t deadline = start + 600ull * 1000000;
	/* The end is timed to a millisecond: first this process's handler
	 * count, read without asking the broker anything, then the broker's
	 * completed count (the last settles' sync), asked every millisecond
	 * for the few that takes. (Asking every 20 ms from the start put a
	 * drain's end on a 20 ms grid: ±5 % on a 0.4 s drain.) */
	struct timespec step = {0, 1000 * 1000};
	while (sdk_load_handled() - handled < (uint64_t)jobs && jm_mono_us() < deadline)
		nanosleep(&step, NULL);
	while (sdk_load_queue_stats(client, queue).completed < (uint64_t)jobs &&
	       jm_mono_us() < deadline)
		nanosleep(&step, NULL);
	double seconds = (jm_mono_us() - start) / 1e6;
	uint64_t drained = sdk_load_queue_stats(client, queue).completed;
	sdk_load_worker_stop(&w);
	if (completed != NULL)
		*completed = drained;
	return drained / seconds;
}

static int sdk_load_compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void sdk_load_round_trips(jm_client *client, const char *queue, int count, bool two_calls,
                          uint64_t *rtt_us)
{
	jm_job_spec spec = sdk_load_spec(queue);
	for (int i = 0; i < count; i++) {
		uint64_t t0 = jm_mono_us();
		uint64_t id;
		jm_job_info info = {0};
		int rc;
		if (two_calls) {
			rc = jm_client_submit(client, &spec, &id);
			if (rc == 0)
				rc = jm_client_wait(client, id, 10000, &info);
		} else {
			rc = jm_client_submit_wait(client, &spec, 10000, &info);
		}
		if (rc != 0 || info.state != JM_STATE_COMPLETED)
			sdk_load_die("round trip", rc);
		jm_job_info_fini(&info);
		rtt_us[i] = jm_mono_us() - t0;
	}
	qsort(rtt_us, (size_t)count, sizeof rtt_us[0], sdk_load_compare_u64);
}

static int sdk_load_compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double sdk_load_median(double *values, int n)
{
	qsort(values, (size_t)n, sizeof *values, sdk_load_compare_doubles);
	return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}
