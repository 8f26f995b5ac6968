/* Jobs by id (see jobtable.h). */
#include "jobtable.h"

#include <stdlib.h>

#include "heap.h"

#include <jobmesh/error.h>

#define JOBTABLE_MIN_PAGES 64

struct jobpage {
	struct u64map_node node; /* key: id / JOBTABLE_PAGE_SLOTS */
	uint32_t count;          /* non-NULL slots */
	struct job *slots[JOBTABLE_PAGE_SLOTS];
};

int jobtable_init(struct jobtable *t)
{
	t->count = 0;
	return u64map_init(&t->pages, JOBTABLE_MIN_PAGES);
}

static void free_page_cb(struct u64map_node *node, void *arg)
{
	(void)arg;
	free(u64map_entry(node, struct jobpage, node));
}

void jobtable_fini(struct jobtable *t)
{
	if (t->pages.buckets == NULL)
		return;
	u64map_each(&t->pages, free_page_cb, NULL);
	u64map_fini(&t->pages);
	t->count = 0;
}

static struct jobpage *page_of(const struct jobtable *t, uint64_t id)
{
	struct u64map_node *node = u64map_find(&t->pages, id / JOBTABLE_PAGE_SLOTS);
	return node ? u64map_entry(node, struct jobpage, node) : NULL;
}

struct job *jobtable_find(const struct jobtable *t, uint64_t id)
{
	struct jobpage *page = page_of(t, id);
	return page ? page->slots[id % JOBTABLE_PAGE_SLOTS] : NULL;
}

int jobtable_reserve(struct jobtable *t, uint64_t id)
{
	if (page_of(t, id) != NULL)
		return 0;
	struct jobpage *page = jm_calloc(1, sizeof *page);
	if (page == NULL)
		return JM_ENOMEM;
	page->node.key = id / JOBTABLE_PAGE_SLOTS;
	return u64map_insert(&t->pages, &page->node);
}

int jobtable_insert(struct jobtable *t, struct job *job)
{
	int rc = jobtable_reserve(t, job->id);
	if (rc != 0)
		return rc;
	struct jobpage *page = page_of(t, job->id);
	page->slots[job->id % JOBTABLE_PAGE_SLOTS] = job;
	page->count++;
	t->count++;
	return 0;
}

void jobtable_remove(struct jobtable *t, struct job *job)
{
	struct jobpage *page = page_of(t, job->id);
	if (page == NULL || page->slots[job->id % JOBTABLE_PAGE_SLOTS] != job)
		return;
	page->slots[job->id % JOBTABLE_PAGE_SLOTS] = NULL;
	t->count--;
	if (--page->count == 0) {
		u64map_remove(&t->pages, &page->node);
		free(page);
	}
}

struct each_ctx {
	void (*fn)(struct job *job, void *arg);
	void *arg;
};

static void each_cb(struct u64map_node *node, void *arg)
{
	struct each_ctx *ctx = arg;
	struct jobpage *page = u64map_entry(node, struct jobpage, node);
	for (uint32_t i = 0; i < JOBTABLE_PAGE_SLOTS; i++)
		if (page->slots[i] != NULL)
			ctx->fn(page->slots[i], ctx->arg);
}

void jobtable_each(const struct jobtable *t, void (*fn)(struct job *job, void *arg), void *arg)
{
	if (t->pages.buckets == NULL)
		return;
	struct each_ctx ctx = {fn, arg};
	u64map_each(&t->pages, each_cb, &ctx);
}
