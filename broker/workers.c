#include "workers.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

int worker_registry_init(struct worker_registry *reg, uint32_t max_workers)
{
	reg->max_workers = max_workers;
	return namemap_init(&reg->workers);
}

static void free_worker_cb(struct namemap_entry *e, void *arg)
{
	struct worker *w = container_of(e, struct worker, by_id);
	free(w->types);
	free(w);
}

void worker_registry_fini(struct worker_registry *reg)
{
	if (reg->workers.buckets == NULL)
		return;
	namemap_each(&reg->workers, free_worker_cb, NULL);
	namemap_fini(&reg->workers);
}

struct worker *worker_find(const struct worker_registry *reg, const char *id)
{
	struct namemap_entry *e = namemap_find(&reg->workers, id);
	return e ? container_of(e, struct worker, by_id) : NULL;
}

int worker_get(struct worker_registry *reg, const char *id, uint64_t now_us, struct worker **out)
{
	struct worker *w = worker_find(reg, id);
	if (w != NULL) {
		*out = w;
		return 0;
	}
	if (reg->workers.count >= reg->max_workers)
		return JM_ELIMIT;
	w = calloc(1, sizeof *w);
	if (w == NULL)
		return JM_ENOMEM;
	strncpy(w->id, id, PROTO_NAME_MAX);
	w->first_seen_us = now_us;
	w->last_seen_us = now_us;
	TAILQ_INIT(&w->held);
	deadline_init(&w->lost_timer, DEADLINE_WORKER_LOST);
	w->by_id.name = w->id;
	if (namemap_insert(&reg->workers, &w->by_id) != 0) {
		free(w);
		return JM_ENOMEM;
	}
	*out = w;
	return 0;
}

void worker_remove(struct worker_registry *reg, struct worker *w)
{
	assert(w->held_count == 0 && w->parked_fetches == 0);
	assert(!deadline_is_set(&w->lost_timer));
	namemap_remove(&reg->workers, &w->by_id);
	free(w->types);
	free(w);
}

void worker_note_fetch(struct worker *w, const struct proto_fetch *fetch)
{
	uint32_t queues = fetch->queues_count < PROTO_QUEUES_PER_FETCH_MAX
	                      ? fetch->queues_count
	                      : PROTO_QUEUES_PER_FETCH_MAX;
	if (queues > 0) {
		w->queues_count = queues;
		memcpy(w->queues, fetch->queues, queues * sizeof w->queues[0]);
	}
	size_t bytes = fetch->types_count * sizeof(proto_name);
	if (fetch->types_count == w->types_count &&
	    (bytes == 0 || memcmp(w->types, fetch->types, bytes) == 0))
		return;
	free(w->types);
	w->types = NULL;
	w->types_count = 0;
	if (bytes == 0 || (w->types = malloc(bytes)) == NULL)
		return;
	memcpy(w->types, fetch->types, bytes);
	w->types_count = fetch->types_count;
}

bool worker_takes(const struct worker *w, const char *queue, const char *type)
{
	bool on_queue = false;
	for (uint32_t i = 0; i < w->queues_count && !on_queue; i++)
		on_queue = strcmp(w->queues[i], queue) == 0;
	if (!on_queue)
		return false;
	if (w->types_count == 0)
		return true;
	for (uint32_t i = 0; i < w->types_count; i++)
		if (strcmp(w->types[i], type) == 0)
			return true;
	return false;
}

struct each_worker {
	void (*fn)(struct worker *w, void *arg);
	void *arg;
};

static void each_worker_cb(struct namemap_entry *e, void *arg)
{
	struct each_worker *each = arg;
	each->fn(container_of(e, struct worker, by_id), each->arg);
}

void worker_each(const struct worker_registry *reg, void (*fn)(struct worker *w, void *arg),
                 void *arg)
{
	struct each_worker each = {fn, arg};
	namemap_each(&reg->workers, each_worker_cb, &each);
}
