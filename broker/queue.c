/* Queues (see queue.h). Ready jobs are held in lanes by type and group
 * (lanes.h); each lane runs by priority, highest first, and within a
 * priority in the order the jobs became ready. */
#include "heap.h"
#include "clock.h"
#include "idempotency.h"
#include "queue.h"

#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

int queue_registry_init(struct queue_registry *reg, const struct queue_policy *defaults,
                        uint32_t max_queues)
{
	reg->max_queues = max_queues;
	reg->default_policy = *defaults;
	return namemap_init(&reg->queues);
}

static void free_queue_cb(struct namemap_entry *e, void *arg)
{
	struct queue *q = container_of(e, struct queue, by_name);
	idem_fini(q);
	lanes_fini(&q->lanes);
	free(q);
}

void queue_registry_fini(struct queue_registry *reg)
{
	if (reg->queues.buckets == NULL)
		return;
	namemap_each(&reg->queues, free_queue_cb, NULL);
	namemap_fini(&reg->queues);
}

struct queue *queue_find(const struct queue_registry *reg, const char *name)
{
	struct namemap_entry *e = namemap_find(&reg->queues, name);
	return e ? container_of(e, struct queue, by_name) : NULL;
}

static void find_reclaimable_cb(struct namemap_entry *e, void *arg)
{
	struct queue **found = arg;
	struct queue *q = container_of(e, struct queue, by_name);
	if (*found == NULL && !q->pinned && queue_unfinished(q) == 0 && q->finished_count == 0 &&
	    !queue_has_own_settings(q) && !lanes_any(&q->lanes))
		*found = q;
}

int queue_get(struct queue_registry *reg, const char *name, struct queue **out)
{
	struct queue *q = queue_find(reg, name);
	if (q != NULL) {
		*out = q;
		return 0;
	}
	if (reg->queues.count >= reg->max_queues) {
		struct queue *empty = NULL;
		namemap_each(&reg->queues, find_reclaimable_cb, &empty);
		if (empty == NULL)
			return JM_ELIMIT;
		reg->reclaimed++;
		queue_drop_if_empty(reg, empty);
	}
	q = jm_calloc(1, sizeof *q);
	if (q == NULL)
		return JM_ENOMEM;
	strncpy(q->name, name, PROTO_NAME_MAX);
	q->policy = reg->default_policy;
	for (uint32_t i = 0; i < reg->overrides_count; i++)
		if (strcmp(reg->overrides[i].name, name) == 0)
			q->policy.max_active = reg->overrides[i].max_active;
	for (int i = 0; i < QUEUE_FINISHED_STATES_; i++)
		TAILQ_INIT(&q->finished[i]);
	lanes_init(&q->lanes);
	lanes_set_group_limit(&q->lanes, q->policy.group_limit);
	deadline_init(&q->rate_timer, DEADLINE_QUEUE_RATE);
	q->by_name.name = q->name;
	if (namemap_insert(&reg->queues, &q->by_name) != 0) {
		free(q);
		return JM_ENOMEM;
	}
	*out = q;
	return 0;
}

struct each_queue {
	void (*fn)(struct queue *q, void *arg);
	void *arg;
};

static void each_queue_cb(struct namemap_entry *e, void *arg)
{
	struct each_queue *each = arg;
	each->fn(container_of(e, struct queue, by_name), each->arg);
}

void queue_each(const struct queue_registry *reg, void (*fn)(struct queue *q, void *arg), void *arg)
{
	struct each_queue each = {fn, arg};
	namemap_each(&reg->queues, each_queue_cb, &each);
}

bool queue_has_capacity(const struct queue *q)
{
	return queue_may_start(q, 0);
}

bool queue_may_start(const struct queue *q, uint32_t picked)
{
	if (q->paused)
		return false;
	if (q->policy.max_active != 0 && q->active + picked >= q->policy.max_active)
		return false;
	/* Under a rate limit one start at a time: the next is spaced by it. */
	return q->policy.rate_jobs == 0 ||
	       (picked == 0 && jm_mono_us() >= queue_rate_ready_mono_us(q));
}

/* The spacing of starts under q's rate limit, at least 1 µs. */
static uint64_t rate_interval_us(const struct queue *q)
{
	uint64_t us = q->policy.rate_period_ms * 1000 / q->policy.rate_jobs;
	return us ? us : 1;
}

void queue_started(struct queue *q, uint64_t now_mono_us)
{
	/* Kept with or without a rate: a rate set later spaces from it. */
	q->rate_last_start_mono_us = now_mono_us;
}

static void restarted_cb(struct queue *q, void *arg)
{
	q->rate_last_start_mono_us = *(const uint64_t *)arg;
}

void queue_registry_restarted(struct queue_registry *reg, uint64_t now_mono_us)
{
	queue_each(reg, restarted_cb, &now_mono_us);
}

uint64_t queue_rate_ready_mono_us(const struct queue *q)
{
	if (q->policy.rate_jobs == 0 || q->paused || q->rate_last_start_mono_us == 0)
		return 0;
	return q->rate_last_start_mono_us + rate_interval_us(q);
}

/* One finished state's retention: the count and the age each change only
 * when the change's mask has their bit. */
static void keep_apply(struct queue_keep *keep, uint32_t mask, uint32_t count_bit, uint64_t count,
                       uint32_t age_bit, uint64_t age_ms)
{
	if (mask & count_bit)
		keep->count = count;
	if (mask & age_bit)
		keep->age_ms = age_ms;
}

void queue_settings_apply(const struct queue_registry *reg, struct queue *q,
                          const struct proto_queue_settings *s)
{
	struct queue_policy p = reg->default_policy;
	for (uint32_t i = 0; i < reg->overrides_count; i++)
		if (strcmp(reg->overrides[i].name, q->name) == 0)
			p.max_active = reg->overrides[i].max_active;
	uint32_t m = s->set_mask;
	if (m & PROTO_QSET_MAX_ACTIVE)
		p.max_active = s->max_active;
	if (m & PROTO_QSET_RATE) {
		p.rate_jobs = s->rate_jobs;
		p.rate_period_ms = s->rate_period_ms;
	}
	if (m & PROTO_QSET_MAX_ATTEMPTS)
		p.max_attempts = s->max_attempts;
	/* keep_finished is all three (an older client or journal); the
	 * per-state settings come after it and win. */
	for (int i = 0; i < QUEUE_FINISHED_STATES_; i++)
		keep_apply(&p.keep[i], m, PROTO_QSET_KEEP_FINISHED, s->keep_finished,
		           PROTO_QSET_KEEP_AGE, s->keep_finished_age_ms);
	keep_apply(&p.keep[QUEUE_COMPLETED], m, PROTO_QSET_KEEP_COMPLETED, s->keep_completed,
	           PROTO_QSET_KEEP_COMPLETED_AGE, s->keep_completed_age_ms);
	keep_apply(&p.keep[QUEUE_FAILED], m, PROTO_QSET_KEEP_FAILED, s->keep_failed,
	           PROTO_QSET_KEEP_FAILED_AGE, s->keep_failed_age_ms);
	keep_apply(&p.keep[QUEUE_CANCELLED], m, PROTO_QSET_KEEP_CANCELLED, s->keep_cancelled,
	           PROTO_QSET_KEEP_CANCELLED_AGE, s->keep_cancelled_age_ms);
	/* Stored as the per-state settings only. */
	if (m & PROTO_QSET_KEEP_FINISHED)
		m = (m & ~(uint32_t)PROTO_QSET_KEEP_FINISHED) | PROTO_QSET_KEEP_COMPLETED |
		    PROTO_QSET_KEEP_FAILED | PROTO_QSET_KEEP_CANCELLED;
	if (m & PROTO_QSET_KEEP_AGE)
		m = (m & ~(uint32_t)PROTO_QSET_KEEP_AGE) | PROTO_QSET_KEEP_COMPLETED_AGE |
		    PROTO_QSET_KEEP_FAILED_AGE | PROTO_QSET_KEEP_CANCELLED_AGE;
	if (m & PROTO_QSET_KEY_WINDOW)
		p.key_window_ms = s->key_window_ms;
	if (m & PROTO_QSET_GROUP_LIMIT)
		p.group_limit = s->group_limit;
	q->policy = p;
	lanes_set_group_limit(&q->lanes, p.group_limit);
	q->paused = (m & PROTO_QSET_PAUSED) && s->paused;
	q->own_settings = m & ~(uint32_t)PROTO_QSET_PAUSED;
	if (q->paused)
		q->own_settings |= PROTO_QSET_PAUSED;
}

void queue_settings_fill(const struct queue *q, struct proto_queue_settings *out)
{
	memset(out, 0, sizeof *out);
	memcpy(out->queue, q->name, sizeof out->queue);
	out->set_mask = q->own_settings;
	out->paused = q->paused;
	out->max_active = q->policy.max_active;
	out->rate_jobs = q->policy.rate_jobs;
	out->rate_period_ms = q->policy.rate_jobs ? q->policy.rate_period_ms : 0;
	out->max_attempts = q->policy.max_attempts;
	/* An older client shows these: the completed jobs'. */
	out->keep_finished = q->policy.keep[QUEUE_COMPLETED].count;
	out->keep_finished_age_ms = q->policy.keep[QUEUE_COMPLETED].age_ms;
	out->key_window_ms = q->policy.key_window_ms;
	out->group_limit = q->policy.group_limit;
	out->keep_completed = q->policy.keep[QUEUE_COMPLETED].count;
	out->keep_completed_age_ms = q->policy.keep[QUEUE_COMPLETED].age_ms;
	out->keep_failed = q->policy.keep[QUEUE_FAILED].count;
	out->keep_failed_age_ms = q->policy.keep[QUEUE_FAILED].age_ms;
	out->keep_cancelled = q->policy.keep[QUEUE_CANCELLED].count;
	out->keep_cancelled_age_ms = q->policy.keep[QUEUE_CANCELLED].age_ms;
}

void queue_policy_keep_all(struct queue_policy *p, uint64_t count, uint64_t age_ms)
{
	for (int i = 0; i < QUEUE_FINISHED_STATES_; i++)
		p->keep[i] = (struct queue_keep){count, age_ms};
}

bool queue_has_own_settings(const struct queue *q)
{
	return q->own_settings != 0 || q->paused;
}

uint64_t queue_unfinished(const struct queue *q)
{
	return q->lanes.ready_count + q->delayed + q->active;
}

void queue_drop_if_empty(struct queue_registry *reg, struct queue *q)
{
	/* A job made for q and not yet placed (a submit being admitted)
	 * holds a lane. */
	if (queue_unfinished(q) != 0 || q->finished_count != 0 || queue_has_own_settings(q) ||
	    lanes_any(&q->lanes))
		return;
	namemap_remove(&reg->queues, &q->by_name);
	idem_fini(q);
	lanes_fini(&q->lanes);
	free(q);
}

void queue_ready_push(struct queue *q, struct job *job)
{
	lanes_push(&q->lanes, job);
}

void queue_ready_push_front(struct queue *q, struct job *job)
{
	lanes_push_front(&q->lanes, job);
}

struct job *queue_ready_peek(const struct queue *q)
{
	return lanes_peek(&q->lanes);
}

struct job *queue_ready_next(struct queue *q, const proto_name *types, uint32_t types_count)
{
	return lanes_next(&q->lanes, types, types_count);
}

void queue_ready_remove(struct queue *q, struct job *job)
{
	lanes_remove(&q->lanes, job);
}

uint64_t queue_ready_count(const struct queue *q)
{
	return q->lanes.ready_count;
}

uint64_t queue_oldest_ready_us(const struct queue *q)
{
	return lanes_oldest_updated_us(&q->lanes);
}

int queue_job_made(struct queue *q, struct job *job, const char *group)
{
	return lanes_take(&q->lanes, job->attrs.type, group, &job->attrs.group);
}

void queue_job_freed(struct queue *q, const struct job *job)
{
	lanes_give(&q->lanes, job->attrs.type, job->attrs.group);
}

void queue_job_started(struct queue *q, const struct job *job)
{
	lanes_started(&q->lanes, job);
}

void queue_job_ended(struct queue *q, const struct job *job)
{
	lanes_ended(&q->lanes, job);
}
