#include "jobtable.h"

#define JOBTABLE_MIN_BUCKETS 1024

int jobtable_init(struct jobtable *t)
{
	return u64map_init(&t->map, JOBTABLE_MIN_BUCKETS);
}

void jobtable_fini(struct jobtable *t)
{
	u64map_fini(&t->map);
}

struct job *jobtable_find(const struct jobtable *t, uint64_t id)
{
	struct u64map_node *node = u64map_find(&t->map, id);
	return node ? u64map_entry(node, struct job, table_node) : NULL;
}

int jobtable_insert(struct jobtable *t, struct job *job)
{
	job->table_node.key = job->id;
	return u64map_insert(&t->map, &job->table_node);
}

void jobtable_remove(struct jobtable *t, struct job *job)
{
	u64map_remove(&t->map, &job->table_node);
}

struct each_ctx {
	void (*fn)(struct job *job, void *arg);
	void *arg;
};

static void each_cb(struct u64map_node *node, void *arg)
{
	struct each_ctx *ctx = arg;
	ctx->fn(u64map_entry(node, struct job, table_node), ctx->arg);
}

void jobtable_each(const struct jobtable *t, void (*fn)(struct job *job, void *arg), void *arg)
{
	struct each_ctx ctx = {fn, arg};
	u64map_each(&t->map, each_cb, &ctx);
}
