/* The jobmesh C client SDK: submit jobs, read their state, wait for them.
 *
 * A jm_client holds one connection (an NNG REQ socket) to the broker and a
 * pool of contexts, so every call is thread-safe and many calls from many
 * threads are in flight at once. Calls return 0 or a negative JM_E... code
 * (jobmesh/error.h); jm_client_last_error() gives the detailed message of
 * the calling thread's last failure, such as the broker's explanation of a
 * refused submit. */
#ifndef JOBMESH_CLIENT_H
#define JOBMESH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jobmesh/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JM_DEFAULT_BROKER_URL "tcp://127.0.0.1:7400"

/* Limits the SDK checks before sending (the broker's defaults; the same
 * numbers as proto/limits.h): bytes of one job's payload, and jobs in one
 * batch (jm_client_submit_many with as_batch). */
#define JM_PAYLOAD_MAX_BYTES (1u << 20)
#define JM_BATCH_JOBS_MAX 10000u

typedef struct jm_client jm_client;

/* Connects to url; NULL means $JOBMESH_BROKER, else JM_DEFAULT_BROKER_URL.
 * Connection happens in the background and is retried with backoff, so this
 * succeeds while the broker is down; calls then wait up to their timeout. */
int jm_client_open(jm_client **out, const char *url);
void jm_client_close(jm_client *client); /* accepts NULL */

/* Timeout for calls other than wait (default 10000 ms). */
void jm_client_set_timeout_ms(jm_client *client, uint32_t timeout_ms);

/* Detailed text of this thread's last failed call ("" if none). */
const char *jm_client_last_error(void);

typedef struct jm_job_spec {
	const char *queue;    /* 1-64 of A-Z a-z 0-9 . _ - */
	const char *type;     /* same rule */
	const void *payload;  /* may be NULL when payload_len is 0 */
	size_t payload_len;
	int priority;         /* -1000..1000, higher first; 0 default */
	unsigned max_attempts;/* 0: queue default (3) */
	uint64_t delay_ms;    /* 0: ready now */
	uint64_t timeout_ms;  /* run timeout per attempt; 0: default */
} jm_job_spec;

/* Enqueues one job; on success *job_id is its id. */
int jm_client_submit(jm_client *client, const jm_job_spec *job, uint64_t *job_id);

/* Enqueues count jobs in one round trip, all or none. job_ids (count
 * entries) receives the ids in order. With as_batch the jobs form a batch
 * whose id goes to *batch_id (may be NULL otherwise). */
int jm_client_submit_many(jm_client *client, const jm_job_spec *jobs, size_t count,
			  bool as_batch, uint64_t *job_ids, uint64_t *batch_id);

enum jm_job_state {
	JM_STATE_PENDING = 1,
	JM_STATE_DELAYED = 2,
	JM_STATE_ACTIVE = 3,
	JM_STATE_COMPLETED = 4,
	JM_STATE_FAILED = 5, /* dead-lettered */
	JM_STATE_CANCELLED = 6,
};

const char *jm_job_state_name(int state);

typedef struct jm_job_info {
	uint64_t id;
	char queue[65];
	char type[65];
	int state; /* enum jm_job_state */
	int priority;
	unsigned attempt;
	unsigned max_attempts;
	uint64_t created_us; /* wall clock, microseconds since the epoch */
	uint64_t updated_us;
	uint64_t run_at_us;  /* when a delayed job becomes ready, else 0 */
	char *last_error;    /* NUL-terminated, "" if none; owned */
	bool has_result;
	void *result;        /* owned; NUL-terminated for convenience */
	size_t result_len;
} jm_job_info;

void jm_job_info_fini(jm_job_info *info); /* frees owned fields; accepts NULL */

/* State of a job, without its result. JM_ENOTFOUND for an unknown id. */
int jm_client_status(jm_client *client, uint64_t job_id, jm_job_info *out);
/* State of a job with its result (when completed). */
int jm_client_result(jm_client *client, uint64_t job_id, jm_job_info *out);
/* Waits until the job is completed, failed or cancelled, up to timeout_ms,
 * without polling: the broker answers when the job finishes. On timeout
 * returns JM_ETIMEDOUT with *out holding the latest state. */
int jm_client_wait(jm_client *client, uint64_t job_id, uint32_t timeout_ms, jm_job_info *out);

typedef struct jm_queue_stats {
	char name[65];
	uint64_t pending, delayed, active, completed, failed;
} jm_queue_stats;

/* Per-queue counters; *queues is malloc'd (free with free()). */
int jm_client_stats(jm_client *client, jm_queue_stats **queues, size_t *count);

#ifdef __cplusplus
}
#endif
#endif
