/* Queues (see queue.h). The ready list runs by priority, highest first,
 * and within a priority in the order the jobs became ready (each joins the
 * end of its level). */
#include "heap.h"
#include "clock.h"
#include "idempotency.h"
#include "queue.h"

#include <assert.h>
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
	free(q->levels);
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
	    !queue_has_own_settings(q))
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
	TAILQ_INIT(&q->finished);
	TAILQ_INIT(&q->ready);
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
	if (m & PROTO_QSET_KEEP_FINISHED)
		p.keep_finished = s->keep_finished;
	if (m & PROTO_QSET_KEEP_AGE)
		p.keep_finished_age_ms = s->keep_finished_age_ms;
	if (m & PROTO_QSET_KEY_WINDOW)
		p.key_window_ms = s->key_window_ms;
	q->policy = p;
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
	out->keep_finished = q->policy.keep_finished;
	out->keep_finished_age_ms = q->policy.keep_finished_age_ms;
	out->key_window_ms = q->policy.key_window_ms;
}

bool queue_has_own_settings(const struct queue *q)
{
	return q->own_settings != 0 || q->paused;
}

/* PROTO_PRIORITY_MIN..MAX: never more levels than this. */
#define READY_LEVELS_MAX ((uint32_t)(PROTO_PRIORITY_MAX - PROTO_PRIORITY_MIN + 1))

int queue_ready_reserve(struct queue *q, uint32_t extra)
{
	uint32_t need = q->levels_count + (extra < READY_LEVELS_MAX ? extra : READY_LEVELS_MAX);
	if (need > READY_LEVELS_MAX)
		need = READY_LEVELS_MAX;
	if (need <= q->levels_cap)
		return 0;
	uint32_t cap = q->levels_cap ? q->levels_cap : 4;
	while (cap < need)
		cap *= 2;
	struct ready_level *levels = jm_realloc(q->levels, cap * sizeof *levels);
	if (levels == NULL)
		return JM_ENOMEM;
	q->levels = levels;
	q->levels_cap = cap;
	return 0;
}

/* The index of priority's level in q->levels (highest priority first), or
 * where it would go; *found says which. */
static uint32_t level_index(const struct queue *q, int16_t priority, bool *found)
{
	uint32_t lo = 0, hi = q->levels_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (q->levels[mid].priority > priority)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < q->levels_count && q->levels[lo].priority == priority;
	return lo;
}

uint64_t queue_unfinished(const struct queue *q)
{
	return q->ready_count + q->delayed + q->active;
}

void queue_drop_if_empty(struct queue_registry *reg, struct queue *q)
{
	if (queue_unfinished(q) != 0 || q->finished_count != 0 || queue_has_own_settings(q))
		return;
	namemap_remove(&reg->queues, &q->by_name);
	idem_fini(q);
	free(q->levels);
	free(q);
}

int queue_ready_push(struct queue *q, struct job *job)
{
	bool found;
	uint32_t i = level_index(q, job->attrs.priority, &found);
	if (found) {
		struct ready_level *level = &q->levels[i];
		TAILQ_INSERT_AFTER(&q->ready, level->last, job, ready_link);
		level->last = job;
	} else {
		if (q->levels_count == q->levels_cap && queue_ready_reserve(q, 1) != 0)
			return JM_ENOMEM;
		/* Before the first job of the next lower level, or last. */
		if (i < q->levels_count)
			TAILQ_INSERT_BEFORE(q->levels[i].first, job, ready_link);
		else
			TAILQ_INSERT_TAIL(&q->ready, job, ready_link);
		memmove(&q->levels[i + 1], &q->levels[i],
		        (q->levels_count - i) * sizeof q->levels[0]);
		q->levels_count++;
		q->levels[i] = (struct ready_level){job, job, job->attrs.priority};
	}
	q->ready_count++;
	return 0;
}

struct job *queue_ready_peek(const struct queue *q)
{
	return TAILQ_FIRST(&q->ready);
}

struct job *queue_ready_next(const struct queue *q, const struct job *job)
{
	(void)q;
	return TAILQ_NEXT(job, ready_link);
}

void queue_ready_remove(struct queue *q, struct job *job)
{
	bool found;
	uint32_t i = level_index(q, job->attrs.priority, &found);
	assert(found);
	struct ready_level *level = &q->levels[i];
	if (level->first == job && level->last == job) {
		memmove(&q->levels[i], &q->levels[i + 1],
		        (q->levels_count - i - 1) * sizeof q->levels[0]);
		q->levels_count--;
	} else if (level->first == job) {
		level->first = TAILQ_NEXT(job, ready_link);
	} else if (level->last == job) {
		level->last = TAILQ_PREV(job, job_list, ready_link);
	}
	TAILQ_REMOVE(&q->ready, job, ready_link);
	q->ready_count--;
}

uint64_t queue_oldest_ready_us(const struct queue *q)
{
	uint64_t oldest = 0;
	for (uint32_t i = 0; i < q->levels_count; i++) {
		uint64_t us = q->levels[i].first->updated_us;
		if (oldest == 0 || us < oldest)
			oldest = us;
	}
	return oldest;
}
