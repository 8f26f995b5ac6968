/* Ready lanes by (type, group), dispatched by deficit round robin (see
 * lanes.h). */
#include "lanes.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

#include "heap.h"

/* PROTO_PRIORITY_MIN..MAX: never more levels than this in a lane. */
#define LEVELS_MAX ((uint32_t)(PROTO_PRIORITY_MAX - PROTO_PRIORITY_MIN + 1))

void lanes_init(struct lanes *l)
{
	memset(l, 0, sizeof *l);
	TAILQ_INIT(&l->ready);
}

static void free_lane_cb(struct u64map_node *node, void *arg)
{
	(void)arg;
	struct lane *lane = u64map_entry(node, struct lane, node);
	free(lane->levels);
	free(lane);
}

static void free_type_cb(struct namemap_entry *e, void *arg)
{
	(void)arg;
	struct lane_type *lt = container_of(e, struct lane_type, by_type);
	u64map_each(&lt->lanes, free_lane_cb, NULL);
	u64map_fini(&lt->lanes);
	free(lt);
}

static void free_group_cb(struct u64map_node *node, void *arg)
{
	(void)arg;
	free(u64map_entry(node, struct lane_group, node));
}

void lanes_fini(struct lanes *l)
{
	if (l->by_type.buckets != NULL) {
		namemap_each(&l->by_type, free_type_cb, NULL);
		namemap_fini(&l->by_type);
	}
	if (l->groups.buckets != NULL)
		u64map_each(&l->groups, free_group_cb, NULL);
	u64map_fini(&l->groups);
	if (l->groups_by_name.buckets != NULL)
		namemap_fini(&l->groups_by_name);
	uint32_t limit = l->group_limit;
	lanes_init(l);
	l->group_limit = limit;
}

struct lane_type *lanes_find_type(const struct lanes *l, const char *type)
{
	if (l->by_type.buckets == NULL)
		return NULL;
	struct namemap_entry *e = namemap_find(&l->by_type, type);
	return e ? container_of(e, struct lane_type, by_type) : NULL;
}

static struct lane *lane_find(const struct lanes *l, const char *type, uint32_t group)
{
	struct lane_type *lt = lanes_find_type(l, type);
	struct u64map_node *node = lt ? u64map_find(&lt->lanes, group) : NULL;
	return node ? u64map_entry(node, struct lane, node) : NULL;
}

static struct lane_group *group_find(const struct lanes *l, uint32_t group)
{
	if (l->groups.buckets == NULL)
		return NULL;
	struct u64map_node *node = u64map_find(&l->groups, group);
	return node ? u64map_entry(node, struct lane_group, node) : NULL;
}

static struct lane_group *group_named(const struct lanes *l, const char *name)
{
	if (l->groups_by_name.buckets == NULL)
		return NULL;
	struct namemap_entry *e = namemap_find(&l->groups_by_name, name);
	return e ? container_of(e, struct lane_group, by_name) : NULL;
}

const char *lanes_group_name(const struct lanes *l, uint32_t group_index)
{
	const struct lane_group *lg = group_index ? group_find(l, group_index) : NULL;
	return lg ? lg->name : "";
}

/* An index no group of l has (never 0). */
static uint32_t group_index_new(struct lanes *l)
{
	do {
		if (++l->next_group == 0)
			l->next_group = 1;
	} while (group_find(l, l->next_group) != NULL);
	return l->next_group;
}

bool lanes_any(const struct lanes *l)
{
	return l->by_type.count > 0;
}

static bool group_is_held(const struct lanes *l, const struct lane_group *lg)
{
	return l->group_limit != 0 && lg->active >= l->group_limit;
}

/* Puts lane in or out of its type's ring as the invariant says (new
 * members at the back), and its type in or out of l->ready. */
static void ring_sync(struct lanes *l, struct lane *lane)
{
	struct lane_type *lt = lane->lt;
	bool belongs = lane->ready_count > 0 && !group_is_held(l, lane->lg);
	if (belongs && !lane->in_ring) {
		TAILQ_INSERT_TAIL(&lt->ring, lane, ring_link);
		lane->in_ring = true;
	} else if (!belongs && lane->in_ring) {
		TAILQ_REMOVE(&lt->ring, lane, ring_link);
		lane->in_ring = false;
	}
	bool ready = !TAILQ_EMPTY(&lt->ring);
	if (ready && !lt->in_ready)
		TAILQ_INSERT_TAIL(&l->ready, lt, ready_link);
	else if (!ready && lt->in_ready)
		TAILQ_REMOVE(&l->ready, lt, ready_link);
	lt->in_ready = ready;
}

/* The parts of a lane that may be missing: each made and linked only once
 * all could be, so that a failure changes nothing. */
int lanes_take(struct lanes *l, const char *type, const char *group_name, uint32_t *group_index)
{
	if (l->by_type.buckets == NULL && namemap_init(&l->by_type) != 0)
		return JM_ENOMEM;
	if (l->groups.buckets == NULL && u64map_init(&l->groups, 8) != 0)
		return JM_ENOMEM;
	if (l->groups_by_name.buckets == NULL && namemap_init(&l->groups_by_name) != 0)
		return JM_ENOMEM;
	struct lane_group *lg = group_named(l, group_name), *new_lg = NULL;
	uint32_t group = lg ? (uint32_t)lg->node.key : group_name[0] ? group_index_new(l) : 0;
	struct lane_type *lt = lanes_find_type(l, type), *new_lt = NULL;
	struct lane *lane = lane_find(l, type, group), *new_lane = NULL;
	if (lt == NULL) {
		lt = new_lt = jm_calloc(1, sizeof *lt);
		if (lt == NULL || u64map_init(&lt->lanes, 8) != 0)
			goto fail_free;
		lt->type = type;
		lt->by_type.name = type;
		TAILQ_INIT(&lt->ring);
	}
	if (lg == NULL) {
		lg = new_lg = jm_calloc(1, sizeof *lg);
		if (lg == NULL)
			goto fail_free;
		lg->node.key = group;
		strncpy(lg->name, group_name, PROTO_NAME_MAX);
		lg->by_name.name = lg->name;
		TAILQ_INIT(&lg->lanes);
	}
	if (lane == NULL) {
		lane = new_lane = jm_calloc(1, sizeof *lane);
		if (lane == NULL)
			goto fail_free;
		lane->node.key = group;
		TAILQ_INIT(&lane->ready);
	}
	/* Room for a level per job, at most one per priority. */
	if (lane->jobs + 1 > lane->levels_cap && lane->levels_cap < LEVELS_MAX) {
		uint32_t cap = lane->levels_cap ? lane->levels_cap * 2 : 1;
		if (cap > LEVELS_MAX)
			cap = LEVELS_MAX;
		struct lane_level *levels = jm_realloc(lane->levels, cap * sizeof *levels);
		if (levels == NULL)
			goto fail_free;
		lane->levels = levels;
		lane->levels_cap = cap;
	}
	if (new_lt)
		(void)namemap_insert(&l->by_type, &lt->by_type); /* never fails */
	if (new_lg) {
		(void)u64map_insert(&l->groups, &lg->node); /* never fails */
		(void)namemap_insert(&l->groups_by_name, &lg->by_name);
	}
	if (new_lane) {
		lane->lt = lt;
		lane->lg = lg;
		(void)u64map_insert(&lt->lanes, &lane->node);
		lt->lanes_count++;
		TAILQ_INSERT_TAIL(&lg->lanes, lane, group_link);
		lg->lanes_count++;
	}
	lane->jobs++;
	*group_index = group;
	return 0;

fail_free:
	if (new_lane) {
		free(new_lane->levels);
		free(new_lane);
	}
	free(new_lg);
	if (new_lt) {
		u64map_fini(&new_lt->lanes);
		free(new_lt);
	}
	return JM_ENOMEM;
}

void lanes_give(struct lanes *l, const char *type, uint32_t group)
{
	struct lane *lane = lane_find(l, type, group);
	assert(lane != NULL && lane->jobs > 0);
	if (--lane->jobs > 0)
		return;
	struct lane_type *lt = lane->lt;
	struct lane_group *lg = lane->lg;
	/* Only a teardown (state_fini) frees jobs that are still ready. */
	l->ready_count -= lane->ready_count;
	lt->ready_count -= lane->ready_count;
	lane->ready_count = 0;
	ring_sync(l, lane);
	u64map_remove(&lt->lanes, &lane->node);
	TAILQ_REMOVE(&lg->lanes, lane, group_link);
	free(lane->levels);
	free(lane);
	if (--lg->lanes_count == 0) {
		u64map_remove(&l->groups, &lg->node);
		namemap_remove(&l->groups_by_name, &lg->by_name);
		free(lg);
	}
	if (--lt->lanes_count == 0) {
		namemap_remove(&l->by_type, &lt->by_type);
		u64map_fini(&lt->lanes);
		free(lt);
	}
}

static void sync_group(struct lanes *l, struct lane_group *lg)
{
	struct lane *lane;
	TAILQ_FOREACH(lane, &lg->lanes, group_link)
	ring_sync(l, lane);
}

static void sync_group_cb(struct u64map_node *node, void *arg)
{
	sync_group(arg, u64map_entry(node, struct lane_group, node));
}

void lanes_set_group_limit(struct lanes *l, uint32_t limit)
{
	if (limit == l->group_limit)
		return;
	l->group_limit = limit;
	if (l->groups.buckets != NULL)
		u64map_each(&l->groups, sync_group_cb, l);
}

void lanes_started(struct lanes *l, const struct job *job)
{
	struct lane_group *lg = group_find(l, job->attrs.group);
	assert(lg != NULL); /* the job's lane holds it */
	lg->active++;
	if (l->group_limit != 0 && lg->active == l->group_limit)
		sync_group(l, lg);
}

void lanes_ended(struct lanes *l, const struct job *job)
{
	struct lane_group *lg = group_find(l, job->attrs.group);
	assert(lg != NULL && lg->active > 0);
	lg->active--;
	if (l->group_limit != 0 && lg->active + 1 == l->group_limit)
		sync_group(l, lg);
}

bool lanes_runs_before(const struct job *a, const struct job *b)
{
	if (a->attrs.priority != b->attrs.priority)
		return a->attrs.priority > b->attrs.priority;
	return a->id < b->id;
}

/* The index of priority's level in lane->levels (highest priority first),
 * or where it would go; *found says which. */
static uint32_t level_index(const struct lane *lane, int16_t priority, bool *found)
{
	uint32_t lo = 0, hi = lane->levels_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (lane->levels[mid].priority > priority)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < lane->levels_count && lane->levels[lo].priority == priority;
	return lo;
}

/* Links job into lane: last (or first) of its priority's level. */
static void link_job(struct lanes *l, struct lane *lane, struct job *job, bool front)
{
	bool found;
	uint32_t i = level_index(lane, job->attrs.priority, &found);
	if (found) {
		struct lane_level *level = &lane->levels[i];
		if (front) {
			TAILQ_INSERT_BEFORE(level->first, job, ready_link);
			level->first = job;
		} else {
			TAILQ_INSERT_AFTER(&lane->ready, level->last, job, ready_link);
			level->last = job;
		}
	} else {
		/* lanes_take made room: a level per job, up to one per priority. */
		assert(lane->levels_count < lane->levels_cap);
		if (i < lane->levels_count)
			TAILQ_INSERT_BEFORE(lane->levels[i].first, job, ready_link);
		else
			TAILQ_INSERT_TAIL(&lane->ready, job, ready_link);
		memmove(&lane->levels[i + 1], &lane->levels[i],
		        (lane->levels_count - i) * sizeof lane->levels[0]);
		lane->levels_count++;
		lane->levels[i] = (struct lane_level){job, job, job->attrs.priority};
	}
	lane->ready_count++;
	lane->lt->ready_count++;
	l->ready_count++;
	if (lane->ready_count == 1)
		ring_sync(l, lane);
}

void lanes_push(struct lanes *l, struct job *job)
{
	struct lane *lane = lane_find(l, job->attrs.type, job->attrs.group);
	assert(lane != NULL); /* lanes_take made it when the job was made */
	link_job(l, lane, job, false);
}

void lanes_push_front(struct lanes *l, struct job *job)
{
	struct lane *lane = lane_find(l, job->attrs.type, job->attrs.group);
	assert(lane != NULL);
	link_job(l, lane, job, true);
}

void lanes_remove(struct lanes *l, struct job *job)
{
	struct lane *lane = lane_find(l, job->attrs.type, job->attrs.group);
	assert(lane != NULL && lane->ready_count > 0);
	bool found;
	uint32_t i = level_index(lane, job->attrs.priority, &found);
	assert(found);
	struct lane_level *level = &lane->levels[i];
	if (level->first == job && level->last == job) {
		memmove(&lane->levels[i], &lane->levels[i + 1],
		        (lane->levels_count - i - 1) * sizeof lane->levels[0]);
		lane->levels_count--;
	} else if (level->first == job) {
		level->first = TAILQ_NEXT(job, ready_link);
	} else if (level->last == job) {
		level->last = TAILQ_PREV(job, job_list, ready_link);
	}
	TAILQ_REMOVE(&lane->ready, job, ready_link);
	lane->ready_count--;
	lane->lt->ready_count--;
	l->ready_count--;
	if (lane->ready_count == 0)
		ring_sync(l, lane);
}

/* Does lane a's best job go before lane b's: its group served longer ago,
 * then priority and readiness. */
static bool lane_goes_before(const struct lane *a, const struct lane *b)
{
	if (a->lg->served != b->lg->served)
		return a->lg->served < b->lg->served;
	return lanes_runs_before(TAILQ_FIRST(&a->ready), TAILQ_FIRST(&b->ready));
}

struct job *lanes_next(struct lanes *l, const proto_name *types, uint32_t types_count)
{
	struct lane *best = NULL;
	if (types_count == 0) {
		struct lane_type *lt;
		TAILQ_FOREACH(lt, &l->ready, ready_link)
		{
			struct lane *front = TAILQ_FIRST(&lt->ring);
			if (best == NULL || lane_goes_before(front, best))
				best = front;
		}
	} else {
		for (uint32_t i = 0; i < types_count; i++) {
			struct lane_type *lt = lanes_find_type(l, types[i]);
			struct lane *front = lt ? TAILQ_FIRST(&lt->ring) : NULL;
			if (front != NULL && (best == NULL || lane_goes_before(front, best)))
				best = front;
		}
	}
	if (best == NULL)
		return NULL;
	/* One job served: the lane goes to the back of its ring. */
	struct lane_type *lt = best->lt;
	if (TAILQ_NEXT(best, ring_link) != NULL) {
		TAILQ_REMOVE(&lt->ring, best, ring_link);
		TAILQ_INSERT_TAIL(&lt->ring, best, ring_link);
	}
	best->lg->served = ++l->served_clock;
	return TAILQ_FIRST(&best->ready);
}

bool lanes_can_give(const struct lanes *l, const char *type)
{
	if (type[0] == '\0')
		return !TAILQ_EMPTY(&l->ready);
	const struct lane_type *lt = lanes_find_type(l, type);
	return lt != NULL && !TAILQ_EMPTY(&lt->ring);
}

struct each_type {
	void (*fn)(const struct lane_type *lt, void *arg);
	void *arg;
};

static void each_type_cb(struct namemap_entry *e, void *arg)
{
	struct each_type *each = arg;
	each->fn(container_of(e, struct lane_type, by_type), each->arg);
}

void lanes_each_type(const struct lanes *l, void (*fn)(const struct lane_type *lt, void *arg),
                     void *arg)
{
	if (l->by_type.buckets == NULL)
		return;
	struct each_type each = {fn, arg};
	namemap_each(&l->by_type, each_type_cb, &each);
}

struct scan {
	uint64_t oldest;
	struct job *best;
};

static void scan_lane_cb(struct u64map_node *node, void *arg)
{
	struct scan *s = arg;
	const struct lane *lane = u64map_entry(node, struct lane, node);
	for (uint32_t i = 0; i < lane->levels_count; i++)
		if (s->oldest == 0 || lane->levels[i].first->updated_us < s->oldest)
			s->oldest = lane->levels[i].first->updated_us;
	struct job *head = TAILQ_FIRST(&lane->ready);
	if (head != NULL && (s->best == NULL || lanes_runs_before(head, s->best)))
		s->best = head;
}

static void scan_type_cb(const struct lane_type *lt, void *arg)
{
	if (lt->ready_count)
		u64map_each(&lt->lanes, scan_lane_cb, arg);
}

uint64_t lanes_oldest_updated_us(const struct lanes *l)
{
	struct scan s = {0, NULL};
	lanes_each_type(l, scan_type_cb, &s);
	return s.oldest;
}

struct job *lanes_peek(const struct lanes *l)
{
	struct scan s = {0, NULL};
	lanes_each_type(l, scan_type_cb, &s);
	return s.best;
}
