/* The jobmesh worker SDK: register a C handler per job type and run.
 *
 * jm_worker_run() starts `concurrency` fetch loops on one connection; each
 * leases a job, runs its handler on that thread, and acknowledges the
 * outcome under the job's lease. A heartbeat thread tells the broker the
 * worker is alive and which leases it holds, and learns which ones to
 * abandon (run timeout passed). A progress thread sends what handlers
 * report with jm_job_progress. */
#ifndef JOBMESH_WORKER_H
#define JOBMESH_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jobmesh/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct jm_worker jm_worker;
/* Valid during the handler call; a deferred job until jm_job_finish. */
typedef struct jm_job jm_job;

/* What a handler returns. */
enum jm_handler_outcome {
	JM_HANDLER_OK = 0,        /* completed; the result is what was set */
	JM_HANDLER_RETRY = 1,     /* failed; retry with backoff if attempts remain */
	JM_HANDLER_PERMANENT = 2, /* failed; never retry, dead-letter now */
	/* Not run (or stopped for another job's sake): hand it back to the
	 * broker, which queues it again without counting an attempt. The
	 * error text, if set, says why. */
	JM_HANDLER_RELEASE = 3,
	/* The handler handed the job to another thread, which ends it later
	 * with jm_job_finish; the slot goes on to its next job at once, and
	 * the SDK touches the job no more until then (it may be finished and
	 * freed before the handler even returned). A deferred job counts as
	 * running: a drain waits for it, and a stop marks it abandoned (its
	 * owner must then finish it soon: jm_worker_run waits for that). */
	JM_HANDLER_DEFERRED = 4,
};

typedef int (*jm_handler_fn)(jm_job *job, void *arg);

#define JM_WORKER_PREFETCH_NONE ((unsigned)-1)

typedef struct jm_worker_options {
	const char *broker_url;    /* NULL: $JOBMESH_BROKER or the default */
	const char *worker_id;     /* NULL: "<host>-<pid>" */
	const char *const *queues; /* queues to fetch from, in priority order */
	size_t queues_count;
	unsigned concurrency; /* jobs run at once; 0 means 1 */
	/* The most deliveries fetched ahead of free slots, waiting in a local
	 * buffer so a drain takes many jobs per round trip: 0 means
	 * 64 x concurrency (at most 1000), JM_WORKER_PREFETCH_NONE none (fetch
	 * only for idle slots). The buffer holds about what the slots run in
	 * two fetch round trips, so long jobs are not hoarded. A buffered
	 * job is a lease the worker holds (listed in heartbeats); one that
	 * waits past 1 s (or a tenth of its run timeout) is handed back unrun,
	 * not counted as an attempt, as is every buffered job at a stop. */
	unsigned prefetch;
	uint32_t heartbeat_ms;     /* 0: 1000 */
	uint32_t drain_timeout_ms; /* 0: 30000 */
	/* What the worker presents to a broker with --auth or TLS; NULL:
	 * $JOBMESH_TOKEN, $JOBMESH_TLS_CA, $JOBMESH_TLS_CERT, $JOBMESH_TLS_KEY. */
	const char *token;
	const char *tls_ca;
	const char *tls_cert;
	const char *tls_key;
} jm_worker_options;

int jm_worker_new(jm_worker **out, const jm_worker_options *opts);
/* Registers fn for jobs of type; a job of an unregistered type fails
 * permanently with a message saying so. Call before jm_worker_run. */
int jm_worker_register(jm_worker *worker, const char *type, jm_handler_fn fn, void *arg);
/* Runs until jm_worker_stop; returns 0 after a clean drain. */
int jm_worker_run(jm_worker *worker);
/* Asks run to return. drain: stop fetching and let running handlers finish
 * (up to drain_timeout_ms); otherwise hand leases back at once. Safe to call
 * from any thread; a signal handler should only set a flag or write to a
 * pipe and call this from a thread. */
void jm_worker_stop(jm_worker *worker, bool drain);
void jm_worker_free(jm_worker *worker); /* accepts NULL */

/* The job being handled. Pointers stay valid until the handler returns. */
uint64_t jm_job_id(const jm_job *job);
const char *jm_job_queue(const jm_job *job);
const char *jm_job_type(const jm_job *job);
unsigned jm_job_attempt(const jm_job *job);
uint64_t jm_job_timeout_ms(const jm_job *job);
const void *jm_job_payload(const jm_job *job, size_t *len);
/* Sets the result sent with the ack (copied; at most 1 MiB). */
int jm_job_set_result(jm_job *job, const void *data, size_t len);
/* Sets the error text sent with a failure (copied, truncated to 1 KiB). */
int jm_job_set_error(jm_job *job, const char *message);
/* True once the broker asked to abandon this attempt (its run timeout
 * passed or it was cancelled): the handler should stop soon. */
bool jm_job_should_abandon(const jm_job *job);
/* A descriptor that becomes readable once jm_job_should_abandon() turns
 * true, for handlers that wait in poll() (the exec handler does); -1 when
 * none could be made. Made at the first call for this job (a handler that
 * never asks costs no descriptor). Owned by the worker: poll it, never read
 * or close it. */
int jm_job_abandon_fd(const jm_job *job);

/* Ends a deferred job (JM_HANDLER_DEFERRED) with its outcome, from any
 * thread, exactly once; the job is freed. Sends its last progress report
 * first if one is unsent (a broker round trip). */
void jm_job_finish(jm_job *job, int outcome);
/* jm_job_finish for jobs[i] with outcomes[i], i < count, in that order,
 * their outcomes handed on to be settled together (one hand-off instead of
 * one per job: for an owner that ends many jobs at a time). All jobs are
 * of one worker; NULL entries are skipped. */
void jm_job_finish_many(jm_job *const *jobs, const int *outcomes, size_t count);

/* Reports that the job has done `done` of `total` steps (total >= 1,
 * done <= total), with an optional message saying what it is doing now
 * (copied; NULL for none; cut to 1 KiB at a UTF-8 boundary; control
 * characters become spaces, bytes that are not UTF-8 '?'). Returns at
 * once: the value is stored and a worker thread sends it, at most about 10
 * per second per job, the latest value winning; a value still unsent when
 * the handler returns is sent before the job's outcome. Safe from any
 * thread while the handler runs. Returns 0; JM_EINVAL for a bad range
 * (nothing stored); JM_ESTALE once the broker refused the job's lease (the
 * job is then abandoned: jm_job_should_abandon() is true, stop). */
int jm_job_progress(jm_job *job, uint64_t done, uint64_t total, const char *message);
/* jm_job_progress for a fraction 0..1, sent as a whole number of 10000
 * (0.25: 2500 of 10000). JM_EINVAL outside 0..1 or for NaN. */
int jm_job_progress_fraction(jm_job *job, double fraction, const char *message);

#ifdef __cplusplus
}
#endif
#endif
