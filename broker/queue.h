/* Named queues: each orders its ready jobs (higher priority first, FIFO
 * within a priority) in lanes by job type and group (lanes.h: intrusive
 * lists with priority levels, nothing beside the jobs) and counts its jobs
 * by state. Queues are created on first use and live as long as the
 * broker. Not thread-safe (core lock). */
#ifndef JM_BROKER_QUEUE_H
#define JM_BROKER_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "backoff.h"
#include "job.h"
#include "lanes.h"
#include "namemap.h"

/* The finished states, each with its own retention and list. */
enum queue_finished {
	QUEUE_COMPLETED = 0,
	QUEUE_FAILED = 1, /* dead-lettered */
	QUEUE_CANCELLED = 2,
	QUEUE_FINISHED_STATES_ = 3,
};

/* Which of the lists a job in a finished state (PROTO_STATE_COMPLETED,
 * _FAILED, _CANCELLED) is on. */
static inline enum queue_finished queue_finished_of(uint32_t state)
{
	return (enum queue_finished)(state - PROTO_STATE_COMPLETED);
}

/* How many finished jobs of one state a queue keeps, and how long. */
struct queue_keep {
	uint64_t count;  /* PROTO_KEEP_ALL: no count limit */
	uint64_t age_ms; /* 0: no age limit */
};

/* Per-queue behaviour; every queue gets the broker-wide defaults. */
struct queue_policy {
	uint32_t max_attempts; /* for jobs that don't set their own */
	uint64_t timeout_ms;   /* run timeout for jobs that don't set one */
	struct backoff_policy backoff;
	struct queue_keep keep[QUEUE_FINISHED_STATES_]; /* retention by state */
	uint32_t max_active;    /* active jobs across all workers; 0: no limit */
	uint64_t key_window_ms; /* an idempotency key matches this long */
	uint32_t rate_jobs;     /* at most this many starts per period; 0: none */
	uint64_t rate_period_ms;
	uint32_t group_limit; /* active jobs per group (lanes.h); 0: none */
};

/* A per-queue setting given before the queue exists (--queue-limit). */
struct queue_override {
	char name[PROTO_NAME_MAX + 1];
	uint32_t max_active;
};

struct queue {
	char name[PROTO_NAME_MAX + 1];
	struct queue_policy policy;

	struct lanes lanes; /* ready jobs by type and group (lanes.h) */

	uint64_t delayed, active, completed, failed, cancelled;
	/* Finished jobs, one list per state (enum queue_finished), oldest
	 * first: retention drops from each head on its own. */
	struct job_list finished[QUEUE_FINISHED_STATES_];
	uint64_t finished_count; /* on the three lists */

	bool pinned;         /* a request holds it: never reclaimed (core_admit.c) */
	struct namemap keys; /* idempotency keys (idempotency.h); empty until one */

	/* Runtime settings (QUEUE records): which of policy's settings are the
	 * queue's own (enum proto_queue_setting), and whether it is paused. A
	 * queue with either is never reclaimed. */
	uint32_t own_settings;
	bool paused;
	/* The rate limit spaces starts evenly, one interval after the last
	 * start (monotonic; 0: none yet). Not journaled: at start the broker
	 * counts as having just started a job of every queue
	 * (queue_registry_restarted), so a restart never lets a start come
	 * sooner than one interval after the last one before it. */
	uint64_t rate_last_start_mono_us;
	struct deadline rate_timer; /* DEADLINE_QUEUE_RATE: wakes parked fetches */

	struct namemap_entry by_name;
};

struct queue_registry {
	struct namemap queues;
	uint32_t max_queues;
	uint64_t reclaimed; /* empty queues dropped to make room */
	struct queue_policy default_policy;
	const struct queue_override *overrides; /* borrowed, lives as long */
	uint32_t overrides_count;
};

int queue_registry_init(struct queue_registry *reg, const struct queue_policy *defaults,
                        uint32_t max_queues);
/* Frees every queue (not their jobs). */
void queue_registry_fini(struct queue_registry *reg);
struct queue *queue_find(const struct queue_registry *reg, const char *name);
/* Finds name or creates it with the default policy. At max_queues it first
 * reclaims a queue that holds no job at all and is not pinned (so queue
 * names made up by a flood of submits, once their jobs are gone, never lock
 * a real queue out); JM_ELIMIT when there is none, JM_ENOMEM. The name must
 * already be valid. */
int queue_get(struct queue_registry *reg, const char *name, struct queue **out);
/* Calls fn for each queue, in no particular order. */
void queue_each(const struct queue_registry *reg, void (*fn)(struct queue *q, void *arg),
                void *arg);

/* True when q may hand out another job now: not paused, under its
 * max_active, and its rate limit allows a start (the one check of flow
 * control: dispatch asks only this). */
bool queue_has_capacity(const struct queue *q);
/* The same, with picked more of its jobs already chosen for this fetch. */
bool queue_may_start(const struct queue *q, uint32_t picked);
/* A job of q was started (leased) at monotonic now_mono_us: the rate
 * limit's next start is one interval later. */
void queue_started(struct queue *q, uint64_t now_mono_us);
/* The broker (re)started at monotonic now_mono_us, after replay: every
 * queue counts as having started a job then. The spacing of starts is not
 * journaled, and a start just before a crash may not even have reached the
 * journal, so this is the rule that keeps the rate across a restart
 * whatever happened before it: the first start after it waits one interval
 * (period / N) from the broker's start. */
void queue_registry_restarted(struct queue_registry *reg, uint64_t now_mono_us);
/* When the rate limit lets q start its next job (monotonic µs); 0 when it
 * is not what holds q back. */
uint64_t queue_rate_ready_mono_us(const struct queue *q);
/* Sets q's runtime settings from s (a QUEUE record's): the settings s's
 * mask names are q's own, the others the broker's defaults again. */
void queue_settings_apply(const struct queue_registry *reg, struct queue *q,
                          const struct proto_queue_settings *s);
/* Fills out with q's settings as they are, set_mask naming its own. */
void queue_settings_fill(const struct queue *q, struct proto_queue_settings *out);
/* Sets all three states' retention (--keep-finished and its like). */
void queue_policy_keep_all(struct queue_policy *p, uint64_t count, uint64_t age_ms);
/* Does q have settings a snapshot must keep (a QUEUE record)? */
bool queue_has_own_settings(const struct queue *q);

/* Jobs in q that are not finished: pending, delayed and active. */
uint64_t queue_unfinished(const struct queue *q);
/* Removes q if it holds no job at all and frees it (a queue created for a
 * request that was then refused). */
void queue_drop_if_empty(struct queue_registry *reg, struct queue *q);
/* Ready jobs (lanes.h). A job made for q takes room in its (type, group)
 * lane (queue_job_made: group is the job's group name, "" for none; it
 * sets job->attrs.group) and gives it back when freed (queue_job_freed):
 * pushing it when it becomes ready then cannot fail. */
int queue_job_made(struct queue *q, struct job *job, const char *group);
void queue_job_freed(struct queue *q, const struct job *job);
void queue_ready_push(struct queue *q, struct job *job);
/* Puts back a job just taken out (first of its priority in its lane). */
void queue_ready_push_front(struct queue *q, struct job *job);
/* The ready job that runs first by priority and id across the lanes'
 * heads, ignoring groups' turns: for tests and views. */
struct job *queue_ready_peek(const struct queue *q);
/* The job dispatch gives next to a fetch of types (none: any type), or
 * NULL: groups take turns (lanes_next); the job stays ready. */
struct job *queue_ready_next(struct queue *q, const proto_name *types, uint32_t types_count);
/* Takes job (ready in q) out of its lane. */
void queue_ready_remove(struct queue *q, struct job *job);
/* A job of q became active / left the active state (per-group limit). */
void queue_job_started(struct queue *q, const struct job *job);
void queue_job_ended(struct queue *q, const struct job *job);
/* Ready jobs in q. */
uint64_t queue_ready_count(const struct queue *q);
/* When q's longest-waiting ready job became ready (its updated_us; the
 * first job of each level of each lane), or 0 with none ready. */
uint64_t queue_oldest_ready_us(const struct queue *q);

#endif
