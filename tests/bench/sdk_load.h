/* sdk_load: the load the jobmesh benchmarks put on a broker through the
 * public SDKs (jobmesh/client.h, jobmesh/worker.h), shared by bench_broker
 * and the peers benchmark's jobmesh driver so both measure the same code:
 * producers submitting one job or a batch per call from N threads, a
 * worker of concurrency C with a no-op handler draining a queue, and
 * submit-then-wait round trips.
 *
 * Every job is a "noop" job with a SDK_LOAD_PAYLOAD_BYTES payload. Errors
 * are fatal: a benchmark whose load failed has no figure to print, so each
 * function prints what failed and exits 1. */
#ifndef JM_BENCH_SDK_LOAD_H
#define JM_BENCH_SDK_LOAD_H

#include <pthread.h>
#include <stdint.h>

#include <jobmesh/client.h>
#include <jobmesh/worker.h>

#define SDK_LOAD_PAYLOAD_BYTES 100
#define SDK_LOAD_BATCH 100
#define SDK_LOAD_PRODUCERS_MAX 32

/* Names the program in error messages and sets the broker the workers
 * dial. broker_url must outlive every other call. */
void sdk_load_init(const char *program, const char *broker_url);

/* Prints "<program>: what: <error> (<detail>)" and exits 1. */
void sdk_load_die(const char *what, int rc) __attribute__((noreturn));

/* A noop job for queue with the shared payload. */
jm_job_spec sdk_load_spec(const char *queue);

/* Submits jobs jobs into queue from threads threads (at most
 * SDK_LOAD_PRODUCERS_MAX), per_call per request (1, or up to
 * SDK_LOAD_BATCH through jm_client_submit_many); returns jobs/s. */
double sdk_load_enqueue(jm_client *client, const char *queue, int jobs, int threads, int per_call);

/* Submits jobs jobs into queue from one thread, SDK_LOAD_BATCH per
 * request through jm_client_submit_many_async with up to in_flight
 * requests unanswered at once (1..64); returns jobs/s, counted until the
 * last reply. The same one thread and 100 jobs per request as
 * sdk_load_enqueue(.., 1, SDK_LOAD_BATCH), pipelined. */
double sdk_load_enqueue_pipelined(jm_client *client, const char *queue, int jobs,
                                  unsigned in_flight);

/* The broker's counters for queue (all zero when it does not exist). */
jm_queue_stats sdk_load_queue_stats(jm_client *client, const char *queue);

/* A worker of the SDK running in a thread of this process with the no-op
 * handler registered for "noop". */
struct sdk_load_worker {
	jm_worker *worker;
	pthread_t thread;
};

void sdk_load_worker_start(struct sdk_load_worker *w, const char *queue, unsigned concurrency,
                           const char *worker_id);
/* Drains (lets running handlers finish), joins and frees the worker. */
void sdk_load_worker_stop(struct sdk_load_worker *w);

/* How many times the no-op handler ran in this process, all workers. */
uint64_t sdk_load_handled(void);

/* Starts a worker of the given concurrency on queue, where jobs jobs are
 * queued, waits (up to 600 s) until the broker counts them all completed,
 * and stops it; returns jobs/s from the worker's start. *completed (if not
 * NULL) receives the broker's completed count at the end. */
double sdk_load_drain(jm_client *client, const char *queue, int jobs, unsigned concurrency,
                      const char *worker_id, uint64_t *completed);

/* count times in sequence: submit one job to queue and wait until it is
 * completed (a worker must be running on queue), in one call
 * (jm_client_submit_wait), or with two_calls in two (jm_client_submit,
 * then jm_client_wait). rtt_us (count entries) receives each round trip
 * in microseconds, sorted ascending. */
void sdk_load_round_trips(jm_client *client, const char *queue, int count, bool two_calls,
                          uint64_t *rtt_us);

/* The median of values[0..n) (n > 0; sorts them in place). */
double sdk_load_median(double *values, int n);

#endif
