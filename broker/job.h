/* A job as the broker holds it in memory.
 *
 * Invariants (checked by state.c): a job is in exactly one place that
 * matches its state —
 *   pending    in its queue's ready heap (ready_index set)
 *   delayed    timer set to run_at_us (DEADLINE_JOB_READY)
 *   active     held by a worker (more->holder, holder_link), timer = lease
 *              deadline
 *   completed, failed, cancelled
 *              in its queue's finished list, kept until retention drops it
 *
 * Layout (issue 12: memory per queued job). One allocation holds the job
 * and its payload (payload[] at the end). What every job has stays here;
 * what few jobs have (an error, a result, progress, parked waiters) is in
 * struct job_more, allocated the first time a job needs it. The queue is
 * job->queue and the type an interned name (job_types.h), so no job holds a
 * name of its own; the batch id is job->batch's (job_batch_id()). Fields
 * that only one state uses share memory: the ready-heap slot (pending) with
 * the timer (delayed, active), and holder_link (active) with finished_link.
 * A new per-job field goes here only if most jobs need it; else into
 * struct job_more. */
#ifndef JM_BROKER_JOB_H
#define JM_BROKER_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "deadline.h"
#include "message.h"
#include "proto_limits.h"
#include "u64map.h"

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
	uint32_t group;        /* interned group (job_groups.h); 0: none. It
	                          fills what was padding: no job grows */
};

/* The rarely used part of a job (see above): NULL until needed (a lease
 * needs it: the broker allocates it before journaling one), freed with
 * the job. */
struct job_more {
	/* active: the worker holding the lease, the process it went to, and
	 * the number of heartbeats that worker had sent when the lease was
	 * granted (see workers.c); NULL and 0 otherwise. */
	struct worker *holder;
	uint64_t lease_token; /* active: what the worker was handed (random, never
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
};

struct job {
	/* jobtable.c links table_node; its key is the job's id. */
	union {
		struct u64map_node table_node;
		struct {
			struct u64map_node *table_next_; /* table_node.next */
			uint64_t id;                     /* table_node.key */
		};
	};
	struct queue *queue;
	struct batch *batch; /* NULL when not in a batch, or once dropped */
	struct job_more *more;
	struct job_attrs attrs;

	uint64_t lease; /* delivery number: grows with each, orders replay */
	uint64_t updated_us;
	uint64_t run_at_us;
	uint64_t last_lsn; /* journal position of its latest change (this boot) */

	/* pending: position in the queue's ready heap; FIFO order within a
	 * priority comes from ready_seq, given when the job became ready.
	 * delayed and active: the timer (JOB_READY, LEASE). ready_index lies
	 * on timer.heap_index and ready_seq on timer.at_us (job_layout_check
	 * below), so "not in the heap" (UINT32_MAX, DEADLINE_UNSET) reads the
	 * same through either, whichever state the job left. */
	union {
		struct deadline timer;
		struct {
			uint64_t ready_seq;
			uint32_t ready_index;
		};
	};

	union {
		TAILQ_ENTRY(job) holder_link;   /* active: in holder->held */
		TAILQ_ENTRY(job) finished_link; /* finished: in queue->finished */
	};

	uint32_t snapshot_bytes; /* its share of state->live_bytes while placed */
	uint32_t payload_len;
	uint16_t attempt;  /* at most max_attempts (a lease past it fails the job) */
	uint8_t state;     /* enum proto_job_state */
	uint8_t payload[]; /* payload_len bytes; allocated as JOB_BYTES() */
};

/* What a job with payload_len bytes of payload takes: the payload starts
 * inside the struct's tail padding, so this is less than sizeof(struct
 * job) + payload_len (with 100 bytes, one 16-byte malloc step less). */
#define JOB_BYTES(payload_len)                                                                     \
	(offsetof(struct job, payload) + (payload_len) > sizeof(struct job)                        \
	     ? offsetof(struct job, payload) + (payload_len)                                       \
	     : sizeof(struct job))

_Static_assert(sizeof(struct job_attrs) == 32, "the group must fit in job_attrs' padding");

/* The unions above read as intended only with these layouts. */
_Static_assert(offsetof(struct job, id) ==
                   offsetof(struct job, table_node) + offsetof(struct u64map_node, key),
               "job id must lie on table_node.key");
_Static_assert(offsetof(struct job, ready_index) ==
                   offsetof(struct job, timer) + offsetof(struct deadline, heap_index),
               "ready_index must lie on timer.heap_index");
_Static_assert(offsetof(struct job, ready_seq) ==
                   offsetof(struct job, timer) + offsetof(struct deadline, at_us),
               "ready_seq must lie on timer.at_us");
_Static_assert(DEADLINE_UNSET == UINT32_MAX, "not in the heap must read the same");

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
