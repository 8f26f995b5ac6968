/* The broker's in-memory state, changed only by applying journal records.
 *
 * Every change — live or during replay — goes through state_apply() with a
 * decoded proto_record, so what the broker did and what it rebuilds after a
 * crash cannot differ. The live path (core.c) appends a record to the
 * journal and applies it under the core lock; replay applies the same
 * records in journal order.
 *
 * Replay is tolerant in one way: compaction writes a snapshot while service
 * goes on, so a record after the snapshot may describe a change the
 * snapshot already holds. Such a record (a lease or settle older than the
 * job's lease, an event for a job already dropped) is skipped and counted.
 *
 * Delayed jobs that come due need no record: being due is a function of
 * run_at_us and the clock. */
#ifndef JM_BROKER_STATE_H
#define JM_BROKER_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "batches.h"
#include "deadline.h"
#include "err.h"
#include "job_types.h"
#include "jobtable.h"
#include "queue.h"
#include "record.h"
#include "schedules.h"
#include "workers.h"

struct state_config {
	struct queue_policy queue_defaults;
	const struct queue_override *queue_overrides; /* borrowed */
	uint32_t queue_overrides_count;
	uint32_t max_queues;
	uint32_t max_workers;
	uint64_t max_queue_jobs;     /* unfinished jobs per queue; 0: no limit */
	uint64_t max_payload_memory; /* live_bytes the jobs may take; 0: no limit */
	uint64_t dead_after_ms;      /* a worker silent this long is lost */
	uint64_t lease_grace_ms;     /* past a job's run timeout before the broker
	                                fails the attempt itself */
};

struct state {
	struct state_config config;
	struct jobtable jobs;
	struct job_types types; /* the jobs' type names (job.h) */
	struct queue_registry queues;
	struct worker_registry workers;
	struct batch_registry batches;
	struct deadline_heap deadlines;
	struct schedule_registry schedules;
	uint64_t next_job_id; /* batches take their ids from it too, so an id
	                         names a job or a batch, never both */
	uint64_t boot_epoch;  /* this boot's, once core_open wrote its META */
	uint64_t ready_jobs;  /* pending jobs in all queues */
	/* What the live jobs would take in a snapshot: the sum of each job's
	 * bound when placed (state_job_placed_bytes), kept by place/unplace (never by walking the
	 * jobs). Compaction compares the journal with it (compactor.c). */
	uint64_t live_bytes;
	bool replaying;
	uint64_t replay_skipped;
	uint64_t workers_evicted; /* forgotten to make room (state_worker_seen) */
};

int state_init(struct state *s, const struct state_config *config);
/* Frees every job, queue and worker. */
void state_fini(struct state *s);

/* Applies rec at time now_us. Live, a record that does not fit the state is
 * a bug in the caller and returns JM_ESTATE; while replaying it is skipped
 * (see above). */
int state_apply(struct state *s, const struct proto_record *rec, uint64_t now_us,
                struct jm_err *err);

/* Admission (core_admit.c): a new job's memory is allocated before its
 * record is journaled, so that applying the record cannot fail.
 * state_job_prepare copies r's payload and takes its type name; q is r's
 * queue (pinned by the caller until the job is applied or discarded). NULL
 * when out of memory. */
struct job *state_job_prepare(struct state *s, const struct proto_rec_job *r, struct queue *q);
/* Frees a prepared job that was never applied. */
void state_job_discard(struct state *s, struct job *job);
/* Applies the JOB record r of a new job that job (from state_job_prepare)
 * holds. The caller reserved everything it needs: r's queue and batch
 * exist, and the queue's ready heap and the deadline heap have room for
 * it. Cannot fail. */
void state_apply_prepared_job(struct state *s, const struct proto_rec_job *r, struct job *job,
                              uint64_t now_us);

/* Admission of a SETTLE (core_records.c): its text is copied before its
 * record is journaled, so that applying it cannot fail. state_settle_prepare
 * sets *copy (NULL when there is nothing to copy); JM_ENOMEM. */
int state_settle_prepare(const struct proto_rec_settle *r, uint8_t **copy);
/* Whether r ends the current attempt of an active job (else applying it
 * live is a bug, and replay skips it). */
bool state_settle_fits(const struct state *s, const struct proto_rec_settle *r);
/* Applies r, which fits, with copy from state_settle_prepare (owned from
 * here on). The caller reserved room in r's job's ready heap and in the
 * deadline heap. Cannot fail. */
void state_apply_prepared_settle(struct state *s, const struct proto_rec_settle *r, uint8_t *copy,
                                 uint64_t now_us);

/* A delayed job's time has come: it becomes pending. */
void state_job_due(struct state *s, struct job *job);

/* Records a sign of life from worker id: creates it if new and moves its
 * lost deadline to now + dead_after. */
int state_worker_seen(struct state *s, const char *id, uint64_t now_us, struct worker **out);

bool state_job_is_finished(const struct job *job);

/* The id of job's batch, 0 when it is in none. */
static inline uint64_t job_batch_id(const struct job *job)
{
	return job->batch ? job->batch->id : 0;
}

/* job's attributes in their wire form (queue name and batch id filled in). */
void state_job_attrs(const struct job *job, struct proto_job_attrs *out);

/* job's rarely used part (job.h), allocated if it has none yet; NULL when
 * out of memory. */
struct job_more *state_job_more(struct job *job);

/* An upper bound on the bytes job's snapshot record takes in a snapshot
 * file, framing included (see state.c). */
uint64_t state_job_snapshot_bound(const struct job *job);
/* What job added to live_bytes when it was placed (0 when it is not). */
uint64_t state_job_placed_bytes(const struct job *job);

/* state_job_snapshot_bound of the new job that JOB record r makes: what
 * admitting it adds to live_bytes (core_admit.c checks the limit by it). */
uint64_t state_new_job_bound(const struct proto_rec_job *r);

/* Fills rec (type JOB) with a snapshot of job, borrowing its buffers. */
void state_job_snapshot(const struct job *job, struct proto_record *rec);

#endif
