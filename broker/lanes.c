/* Ready lanes (see lanes.h). */
#include "lanes.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

#include "heap.h"

void lanes_init(struct lanes *l)
{
	memset(l, 0, sizeof *l);
	TAILQ_INIT(&l->ready);
}

static void free_lane_cb(struct namemap_entry *e, void *arg)
{
	(void)arg;
	struct lane *lane = container_of(e, struct lane, by_type);
	free(lane->heap);
	free(lane);
}

void lanes_fini(struct lanes *l)
{
	if (l->by_type.buckets == NULL)
		return;
	namemap_each(&l->by_type, free_lane_cb, NULL);
	namemap_fini(&l->by_type);
	lanes_init(l);
}

struct lane *lanes_find(const struct lanes *l, const char *type)
{
	if (l->by_type.buckets == NULL)
		return NULL;
	struct namemap_entry *e = namemap_find(&l->by_type, type);
	return e ? container_of(e, struct lane, by_type) : NULL;
}

bool lanes_any(const struct lanes *l)
{
	return l->by_type.count > 0;
}

int lanes_take(struct lanes *l, const char *type)
{
	if (l->by_type.buckets == NULL && namemap_init(&l->by_type) != 0)
		return JM_ENOMEM;
	struct lane *lane = lanes_find(l, type);
	bool created = lane == NULL;
	if (created) {
		lane = jm_calloc(1, sizeof *lane);
		if (lane == NULL)
			return JM_ENOMEM;
		lane->type = type;
		lane->by_type.name = type;
	}
	if (lane->jobs + 1 > lane->cap) {
		if (lane->cap >= UINT32_MAX / 2)
			goto fail_free_lane;
		uint32_t cap = lane->cap ? lane->cap * 2 : 16;
		struct job **heap = jm_realloc(lane->heap, cap * sizeof *heap);
		if (heap == NULL)
			goto fail_free_lane;
		lane->heap = heap;
		lane->cap = cap;
	}
	lane->jobs++;
	if (created)
		(void)namemap_insert(&l->by_type, &lane->by_type); /* never fails */
	return 0;

fail_free_lane:
	if (created) {
		free(lane->heap);
		free(lane);
	}
	return JM_ENOMEM;
}

void lanes_give(struct lanes *l, const char *type)
{
	struct lane *lane = lanes_find(l, type);
	assert(lane != NULL && lane->jobs > 0);
	if (--lane->jobs > 0)
		return;
	/* Only a teardown (state_fini) frees jobs that are still ready. */
	if (lane->ready_count > 0) {
		TAILQ_REMOVE(&l->ready, lane, ready_link);
		l->ready_lanes--;
		l->ready_count -= lane->ready_count;
	}
	namemap_remove(&l->by_type, &lane->by_type);
	free(lane->heap);
	free(lane);
}

bool lanes_runs_before(const struct job *a, const struct job *b)
{
	if (a->attrs.priority != b->attrs.priority)
		return a->attrs.priority > b->attrs.priority;
	return a->ready_seq < b->ready_seq;
}

static void place(struct lane *lane, uint32_t index, struct job *job)
{
	lane->heap[index] = job;
	job->ready_index = index;
}

static void sift_up(struct lane *lane, uint32_t index)
{
	struct job *job = lane->heap[index];
	while (index > 0) {
		uint32_t parent = (index - 1) / 2;
		if (!lanes_runs_before(job, lane->heap[parent]))
			break;
		place(lane, index, lane->heap[parent]);
		index = parent;
	}
	place(lane, index, job);
}

static void sift_down(struct lane *lane, uint32_t index)
{
	struct job *job = lane->heap[index];
	for (;;) {
		uint32_t child = 2 * index + 1;
		if (child >= lane->ready_count)
			break;
		if (child + 1 < lane->ready_count &&
		    lanes_runs_before(lane->heap[child + 1], lane->heap[child]))
			child++;
		if (!lanes_runs_before(lane->heap[child], job))
			break;
		place(lane, index, lane->heap[child]);
		index = child;
	}
	place(lane, index, job);
}

void lanes_push(struct lanes *l, struct job *job)
{
	struct lane *lane = lanes_find(l, job->attrs.type);
	/* lanes_take made the lane and its room when the job was made. */
	assert(lane != NULL && lane->ready_count < lane->cap);
	if (lane->ready_count == 0) {
		TAILQ_INSERT_TAIL(&l->ready, lane, ready_link);
		l->ready_lanes++;
	}
	place(lane, lane->ready_count++, job);
	sift_up(lane, job->ready_index);
	l->ready_count++;
}

void lanes_remove(struct lanes *l, struct job *job)
{
	uint32_t index = job->ready_index;
	if (index == UINT32_MAX)
		return;
	struct lane *lane = lanes_find(l, job->attrs.type);
	assert(lane != NULL && index < lane->ready_count && lane->heap[index] == job);
	job->ready_index = UINT32_MAX;
	l->ready_count--;
	struct job *last = lane->heap[--lane->ready_count];
	if (lane->ready_count == 0) {
		TAILQ_REMOVE(&l->ready, lane, ready_link);
		l->ready_lanes--;
	}
	if (index == lane->ready_count)
		return;
	place(lane, index, last);
	if (index > 0 && lanes_runs_before(last, lane->heap[(index - 1) / 2]))
		sift_up(lane, index);
	else
		sift_down(lane, index);
}

struct job *lanes_peek_type(const struct lanes *l, const char *type)
{
	const struct lane *lane = lanes_find(l, type);
	return lane && lane->ready_count ? lane->heap[0] : NULL;
}

struct job *lanes_peek(const struct lanes *l)
{
	struct job *best = NULL;
	const struct lane *lane;
	TAILQ_FOREACH(lane, &l->ready, ready_link)
	if (best == NULL || lanes_runs_before(lane->heap[0], best))
		best = lane->heap[0];
	return best;
}

uint64_t lanes_oldest_updated_us(const struct lanes *l)
{
	uint64_t oldest = 0;
	const struct lane *lane;
	TAILQ_FOREACH(lane, &l->ready, ready_link)
	for (uint32_t i = 0; i < lane->ready_count; i++)
		if (oldest == 0 || lane->heap[i]->updated_us < oldest)
			oldest = lane->heap[i]->updated_us;
	return oldest;
}
