/* Binary min-heap of deadlines keyed by at_us; each deadline knows its own
 * index, so removal and rescheduling are O(log n). */
#include "heap.h"
#include "deadline.h"

#include <stdlib.h>

#include <jobmesh/error.h>

void deadline_init(struct deadline *d, enum deadline_kind kind)
{
	d->at_us = 0;
	d->heap_index = DEADLINE_UNSET;
	d->kind = kind;
}

bool deadline_is_set(const struct deadline *d)
{
	return d->heap_index != DEADLINE_UNSET;
}

void deadline_heap_init(struct deadline_heap *heap)
{
	heap->items = NULL;
	heap->count = 0;
	heap->cap = 0;
}

void deadline_heap_fini(struct deadline_heap *heap)
{
	/* The owners may already be freed (teardown): don't touch them. */
	free(heap->items);
	deadline_heap_init(heap);
}

static void place(struct deadline_heap *heap, uint32_t index, struct deadline *d)
{
	heap->items[index] = d;
	d->heap_index = index;
}

static void sift_up(struct deadline_heap *heap, uint32_t index)
{
	struct deadline *d = heap->items[index];
	while (index > 0) {
		uint32_t parent = (index - 1) / 2;
		if (heap->items[parent]->at_us <= d->at_us)
			break;
		place(heap, index, heap->items[parent]);
		index = parent;
	}
	place(heap, index, d);
}

static void sift_down(struct deadline_heap *heap, uint32_t index)
{
	struct deadline *d = heap->items[index];
	for (;;) {
		uint32_t child = 2 * index + 1;
		if (child >= heap->count)
			break;
		if (child + 1 < heap->count &&
		    heap->items[child + 1]->at_us < heap->items[child]->at_us)
			child++;
		if (d->at_us <= heap->items[child]->at_us)
			break;
		place(heap, index, heap->items[child]);
		index = child;
	}
	place(heap, index, d);
}

int deadline_heap_reserve(struct deadline_heap *heap, uint32_t extra)
{
	uint64_t need = (uint64_t)heap->count + extra;
	if (need <= heap->cap)
		return 0;
	if (need > UINT32_MAX / 2)
		return JM_ENOMEM;
	uint32_t cap = heap->cap ? heap->cap : 64;
	while (cap < need)
		cap *= 2;
	struct deadline **items = jm_realloc(heap->items, cap * sizeof *items);
	if (items == NULL)
		return JM_ENOMEM;
	heap->items = items;
	heap->cap = cap;
	return 0;
}

int deadline_heap_set(struct deadline_heap *heap, struct deadline *d, uint64_t at_us)
{
	if (deadline_is_set(d)) {
		uint64_t old = d->at_us;
		d->at_us = at_us;
		if (at_us < old)
			sift_up(heap, d->heap_index);
		else
			sift_down(heap, d->heap_index);
		return 0;
	}
	if (heap->count == heap->cap) {
		uint32_t cap = heap->cap ? heap->cap * 2 : 64;
		struct deadline **items = jm_realloc(heap->items, cap * sizeof *items);
		if (items == NULL)
			return JM_ENOMEM;
		heap->items = items;
		heap->cap = cap;
	}
	d->at_us = at_us;
	place(heap, heap->count++, d);
	sift_up(heap, d->heap_index);
	return 0;
}

void deadline_heap_remove(struct deadline_heap *heap, struct deadline *d)
{
	if (!deadline_is_set(d))
		return;
	uint32_t index = d->heap_index;
	d->heap_index = DEADLINE_UNSET;
	struct deadline *last = heap->items[--heap->count];
	if (index == heap->count)
		return;
	place(heap, index, last);
	if (index > 0 && heap->items[(index - 1) / 2]->at_us > last->at_us)
		sift_up(heap, index);
	else
		sift_down(heap, index);
}

struct deadline *deadline_heap_peek(const struct deadline_heap *heap)
{
	return heap->count ? heap->items[0] : NULL;
}
