#include "heap.h"
#include "batches.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

#define BATCH_MIN_BUCKETS 256

static struct batch *batch_of(struct u64map_node *node)
{
	return node ? u64map_entry(node, struct batch, node) : NULL;
}

int batch_registry_init(struct batch_registry *reg)
{
	return u64map_init(&reg->map, BATCH_MIN_BUCKETS);
}

static void batch_free(struct batch *b)
{
	for (uint32_t i = 0; i < b->errors_count; i++)
		free(b->errors[i].text);
	free(b->current_operation);
	free(b);
}

static void free_cb(struct u64map_node *node, void *arg)
{
	batch_free(batch_of(node));
}

void batch_registry_fini(struct batch_registry *reg)
{
	u64map_each(&reg->map, free_cb, NULL);
	u64map_fini(&reg->map);
}

struct batch *batch_find(const struct batch_registry *reg, uint64_t id)
{
	return batch_of(u64map_find(&reg->map, id));
}

int batch_get(struct batch_registry *reg, uint64_t id, uint64_t created_us, struct batch **out)
{
	struct batch *b = batch_find(reg, id);
	if (b == NULL) {
		b = jm_calloc(1, sizeof *b);
		if (b == NULL)
			return JM_ENOMEM;
		b->id = id;
		b->created_us = created_us;
		deadline_init(&b->event_timer, DEADLINE_BATCH_EVENT);
		b->node.key = id;
		if (u64map_insert(&reg->map, &b->node) != 0) {
			free(b);
			return JM_ENOMEM;
		}
	}
	if (created_us && created_us < b->created_us)
		b->created_us = created_us;
	*out = b;
	return 0;
}

void batch_remove(struct batch_registry *reg, struct batch *b)
{
	u64map_remove(&reg->map, &b->node);
	batch_free(b);
}

struct each_ctx {
	void (*fn)(struct batch *b, void *arg);
	void *arg;
};

static void each_cb(struct u64map_node *node, void *arg)
{
	struct each_ctx *ctx = arg;
	ctx->fn(batch_of(node), ctx->arg);
}

void batch_each(const struct batch_registry *reg, void (*fn)(struct batch *b, void *arg), void *arg)
{
	struct each_ctx ctx = {fn, arg};
	u64map_each(&reg->map, each_cb, &ctx);
}

bool batch_is_finished(const struct batch *b)
{
	return b->completed + b->failed + b->cancelled >= b->total;
}

uint32_t batch_state(const struct batch *b)
{
	if (!batch_is_finished(b))
		return PROTO_BATCH_RUNNING;
	return b->failed + b->cancelled ? PROTO_BATCH_FAILED : PROTO_BATCH_COMPLETED;
}

static char *copy_text(const char *text, size_t len)
{
	if (len > PROTO_ERROR_TEXT_MAX)
		len = PROTO_ERROR_TEXT_MAX;
	char *copy = jm_malloc(len + 1);
	if (copy) {
		memcpy(copy, text, len);
		copy[len] = '\0';
	}
	return copy;
}

void batch_add_error(struct batch *b, uint64_t job_id, const char *text)
{
	struct batch_error *slot = &b->errors[b->errors_next];
	if (b->errors_count == PROTO_BATCH_ERRORS_MAX)
		free(slot->text);
	else
		b->errors_count++;
	slot->job_id = job_id;
	slot->text = copy_text(text ? text : "", text ? strlen(text) : 0);
	b->errors_next = (b->errors_next + 1) % PROTO_BATCH_ERRORS_MAX;
}

void batch_note_queue(struct batch *b, const char *queue)
{
	if (b->queue[0] == '\0')
		snprintf(b->queue, sizeof b->queue, "%s", queue);
	else if (strcmp(b->queue, queue) != 0)
		b->mixed = true;
}

void batch_set_operation(struct batch *b, const char *text, size_t len)
{
	free(b->current_operation);
	b->current_operation = copy_text(text, len);
}

void batch_info(const struct batch *b, struct proto_batch_info *info,
                struct proto_batch_error *errors)
{
	memset(info, 0, sizeof *info);
	info->batch_id = b->id;
	info->state = batch_state(b);
	info->total = b->total;
	info->completed = b->completed;
	info->failed = b->failed;
	info->cancelled = b->cancelled;
	info->active = b->active;
	if (b->current_operation)
		info->current_operation = (struct proto_bytes){
		    (const uint8_t *)b->current_operation, (uint32_t)strlen(b->current_operation)};
	uint32_t first = b->errors_count == PROTO_BATCH_ERRORS_MAX ? b->errors_next : 0;
	for (uint32_t i = 0; i < b->errors_count; i++) {
		const struct batch_error *e = &b->errors[(first + i) % PROTO_BATCH_ERRORS_MAX];
		errors[i].job_id = e->job_id;
		errors[i].text = (struct proto_bytes){(const uint8_t *)(e->text ? e->text : ""),
		                                      e->text ? (uint32_t)strlen(e->text) : 0};
	}
	info->errors_count = b->errors_count;
	info->errors = errors;
	info->created_us = b->created_us;
	info->finished_us = batch_is_finished(b) ? b->finished_us : 0;
}
