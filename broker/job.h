/* A job as the broker holds it in memory.
 *
 * Invariants (checked by state.c): a job is in exactly one place that
 * matches its state —
 *   pending    in its queue's ready heap (ready_index set)
 *   delayed    timer set to run_at_us (DEADLINE_JOB_READY)
 *   active     held by a worker (holder, holder_link), timer = lease deadline
 *   completed, failed, cancelled
 *              in its queue's finished list, kept until retention drops it
 */
#ifndef JM_BROKER_JOB_H
#define JM_BROKER_JOB_H

#include <stdbool.h>
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

struct job {
	uint64_t id;
	struct proto_job_attrs attrs; /* as admitted (max_attempts resolved) */
	struct batch *batch;          /* NULL when not in a batch, or once dropped */
	struct queue *queue;          /* attrs.queue's */
	uint8_t *payload;
	uint32_t payload_len;

	uint32_t state; /* enum proto_job_state */
	uint32_t attempt;
	uint64_t lease;       /* delivery number: grows with each, orders replay */
	uint64_t lease_token; /* active: what the worker was handed (random, never
	                         0; 0 from a version 1 journal: unsettleable) */
	uint64_t updated_us;
	uint64_t run_at_us;
	uint64_t last_lsn;       /* journal position of its latest change (this boot) */
	uint64_t snapshot_bytes; /* its share of state->live_bytes while placed */

	char *last_error;     /* NUL-terminated or NULL */
	struct idem_key *key; /* its idempotency key (idempotency.h), or NULL */

	/* The handler's latest progress in this attempt; memory only. */
	uint64_t progress_done;
	uint64_t progress_total;
	char *progress_message;
	uint8_t *result;
	uint32_t result_len;

	/* pending: position in the queue's ready heap; FIFO order within a
	 * priority comes from ready_seq, given when the job became ready. */
	uint32_t ready_index;
	uint64_t ready_seq;

	struct deadline timer; /* JOB_READY while delayed, LEASE while active */

	/* active: the worker holding the lease, and the number of heartbeats
	 * that worker had sent when the lease was granted (see workers.c). */
	struct worker *holder;
	uint64_t holder_instance; /* the holder process the lease went to */
	uint64_t holder_heartbeat_mark;
	bool lease_reported; /* a heartbeat of the holder has listed this lease */
	TAILQ_ENTRY(job) holder_link;

	TAILQ_ENTRY(job) finished_link; /* in queue->finished */
	TAILQ_HEAD(, waiter) waiters;   /* parked WAIT requests */
	struct u64map_node table_node;  /* jobtable.c: key is id */
};

TAILQ_HEAD(job_list, job);

#endif
