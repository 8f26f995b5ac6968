/* A job as the broker holds it in memory.
 *
 * Invariants (checked by state.c): a job is in exactly one place that
 * matches its state —
 *   pending    in its queue's ready lane (ready_link; lanes.h)
 *   delayed    timer set to run_at_us (DEADLINE_JOB_READY)
 *   active     held by a worker (more->holder, more->holder_link), timer =
 *              lease deadline
 *   completed, failed, cancelled
 *              in its queue's finished list, kept until retention drops it
 *
 * Layout (issue 12: memory per queued job). One allocation holds the job
 * and its payload (payload[] at the end). What every job has stays here;
 * what few jobs have (an error, a result, progress, parked waiters, and
 * what only a leased job needs) is in struct job_more, allocated the first
 * time a job needs it. The queue is job->queue and the type an interned
 * name (job_types.h), so no job holds a name of its own; the batch id is
 * job->batch's (job_batch_id()); the job table (jobtable.h) keeps no link
 * in the job. The places of the states share one 16-byte union: the ready
 * list's link (pending), the timer (delayed, active), the finished list's
 * link; an active job's link in its holder's list is in job_more. With a
 * payload of 100 bytes the job takes one 224-byte malloc chunk (glibc: n +
 * 8 rounded up to 16): the payload starts at byte 115, and 116 would cost
 * the next 16-byte step. A new per-job field therefore goes into struct
 * job_more, or into the 4 bytes of padding at the end of struct
 * job_attrs, unless most jobs need it. */
#ifndef JM_BROKER_JOB_H
#define JM_BROKER_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "deadline.h"
#include "message.h"
#include "proto_limits.h"

struct batch;
struct idem_key;
struct queue;
struct worker;
struct waiter;

/* What a job was submitted with (max_attempts and timeout_ms resolved);
 * state_job_attrs() gives the wire form, with the queue and batch id. */
struct job_attrs {
	const char *type; /* interned (job_types.h): a proto_name array, so
	                     copying sizeof(proto_name) bytes from it is valid */
	uint64_t timeout_ms;
	uint64_t created_us;
	int16_t priority;      /* PROTO_PRIORITY_MIN..MAX */
	uint16_t max_attempts; /* 1..PROTO_ATTEMPTS_MAX */
	uint32_t group;        /* its group, an index into its queue's group
	                          records (lanes.h); 0: none. It fills what was
	                          padding: no job grows */
};

_Static_assert(sizeof(struct job_attrs) == 32, "the group must fit in job_attrs' padding");

/* The rarely used part of a job (see above): NULL until needed (a lease
 * needs it: the broker allocates it before journaling one), freed with
 * the job. */
struct job_more {
	/* active: the worker holding the lease, the process it went to, and
	 * the number of heartbeats that worker had sent when the lease was
	 * granted (see workers.c); NULL and 0 otherwise. */
	struct worker *holder;
	TAILQ_ENTRY(job) holder_link; /* active: in holder->held */
	uint64_t lease_token;         /* active: what the worker was handed (random, never
	                                 0; 0 from a version 1 journal: unsettleable) */
	uint64_t holder_instance;
	uint64_t holder_heartbeat_mark;
	bool lease_reported; /* a heartbeat of the holder has listed this lease */

	char *last_error; /* NUL-terminated or NULL */
	uint8_t *result;
	uint32_t result_len;
	struct idem_key *key; /* its idempotency key (idempotency.h), or NULL */

	/* The handler's latest progress in this attempt; memory only. */
	uint64_t progress_done;
	uint64_t progress_total;
	char *progress_message;
	TAILQ_HEAD(, waiter) waiters; /* parked WAIT requests */
	/* The job's share of state->live_bytes while placed (state.c): kept
	 * here once the job has this part, since what it adds changes it. */
	uint32_t snapshot_bytes;
};

struct job {
	uint64_t id;
	struct queue *queue;
	struct batch *batch; /* NULL when not in a batch, or once dropped */
	struct job_more *more;
	struct job_attrs attrs;

	uint64_t lease; /* delivery number: grows with each, orders replay */
	uint64_t updated_us;
	uint64_t run_at_us;

	/* Where its state keeps it (see above). Leaving a list sets the timer
	 * unset again (state.c), so "not in the deadline heap" reads true
	 * whichever state the job left. */
	union {
		struct deadline timer;          /* delayed, active */
		TAILQ_ENTRY(job) ready_link;    /* pending: in its lane's ready list */
		TAILQ_ENTRY(job) finished_link; /* finished: in queue->finished */
	};

	/* The low 32 bits of the journal position of its latest change (this
	 * boot); job_last_lsn() gives it back whole. */
	uint32_t last_lsn_low;
	uint32_t payload_len;
	uint16_t attempt;  /* at most max_attempts (a lease past it fails the job) */
	uint8_t state;     /* enum proto_job_state */
	uint8_t payload[]; /* payload_len bytes; allocated as JOB_BYTES() */
};

/* What a job with payload_len bytes of payload takes: the payload starts
 * inside the struct's tail padding, so this is less than sizeof(struct
 * job) + payload_len. */
#define JOB_BYTES(payload_len)                                                                     \
	(offsetof(struct job, payload) + (payload_len) > sizeof(struct job)                        \
	     ? offsetof(struct job, payload) + (payload_len)                                       \
	     : sizeof(struct job))

/* The memory figure of issue 12 rests on this: a job with a 100-byte
 * payload fits a 224-byte malloc chunk (at most 216 bytes asked). */
_Static_assert(offsetof(struct job, payload) + 100 <= 216,
               "a job with 100 bytes of payload must fit 224-byte malloc chunks");

/* The journal position of job's latest change, given last_lsn, the
 * newest position the core has journaled. Exact while fewer than 2^32
 * records separate the two; past that it gives a later position, which
 * is still safe to wait for (a reply waits for no less than it should). */
static inline uint64_t job_last_lsn(const struct job *job, uint64_t last_lsn)
{
	return last_lsn - (uint32_t)((uint32_t)last_lsn - job->last_lsn_low);
}

TAILQ_HEAD(job_list, job);

/* Readers of the rarely used part: what a job without one has. */
static inline const char *job_last_error(const struct job *job)
{
	return job->more ? job->more->last_error : NULL;
}

static inline struct worker *job_holder(const struct job *job)
{
	return job->more ? job->more->holder : NULL;
}

static inline struct idem_key *job_key(const struct job *job)
{
	return job->more ? job->more->key : NULL;
}

static inline bool job_has_waiters(const struct job *job)
{
	return job->more && !TAILQ_EMPTY(&job->more->waiters);
}

#endif
