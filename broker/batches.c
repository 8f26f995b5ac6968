#include "batches.h"

#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

#define BATCH_BUCKETS_INITIAL 256

static uint64_t bucket_of(const struct batch_registry *reg, uint64_t id)
{
	return (id * 0x9E3779B97F4A7C15ull >> 17) & reg->mask;
}

int batch_registry_init(struct batch_registry *reg)
{
	reg->buckets = calloc(BATCH_BUCKETS_INITIAL, sizeof *reg->buckets);
	if (reg->buckets == NULL)
		return JM_ENOMEM;
	reg->mask = BATCH_BUCKETS_INITIAL - 1;
	reg->count = 0;
	return 0;
}

static void batch_free(struct batch *b)
{
	for (uint32_t i = 0; i < b->errors_count; i++)
		free(b->errors[i].text);
	free(b->current_operation);
	free(b);
}

void batch_registry_fini(struct batch_registry *reg)
{
	for (uint64_t i = 0; reg->buckets && i <= reg->mask; i++) {
		struct batch *b = reg->buckets[i];
		while (b) {
			struct batch *next = b->next_in_bucket;
			batch_free(b);
			b = next;
		}
	}
	free(reg->buckets);
	reg->buckets = NULL;
	reg->count = 0;
}

struct batch *batch_find(const struct batch_registry *reg, uint64_t id)
{
	for (struct batch *b = reg->buckets[bucket_of(reg, id)]; b; b = b->next_in_bucket)
		if (b->id == id)
			return b;
	return NULL;
}

static int grow(struct batch_registry *reg)
{
	uint64_t count = (reg->mask + 1) * 2;
	struct batch **buckets = calloc(count, sizeof *buckets);
	if (buckets == NULL)
		return JM_ENOMEM;
	struct batch **old = reg->buckets;
	uint64_t old_count = reg->mask + 1;
	reg->buckets = buckets;
	reg->mask = count - 1;
	for (uint64_t i = 0; i < old_count; i++) {
		struct batch *b = old[i];
		while (b) {
			struct batch *next = b->next_in_bucket;
			uint64_t k = bucket_of(reg, b->id);
			b->next_in_bucket = reg->buckets[k];
			reg->buckets[k] = b;
			b = next;
		}
	}
	free(old);
	return 0;
}

int batch_get(struct batch_registry *reg, uint64_t id, uint64_t created_us, struct batch **out)
{
	struct batch *b = batch_find(reg, id);
	if (b == NULL) {
		if (reg->count > reg->mask && grow(reg) != 0)
			return JM_ENOMEM;
		b = calloc(1, sizeof *b);
		if (b == NULL)
			return JM_ENOMEM;
		b->id = id;
		b->created_us = created_us;
		deadline_init(&b->event_timer, DEADLINE_BATCH_EVENT);
		uint64_t k = bucket_of(reg, id);
		b->next_in_bucket = reg->buckets[k];
		reg->buckets[k] = b;
		reg->count++;
	}
	if (created_us && created_us < b->created_us)
		b->created_us = created_us;
	*out = b;
	return 0;
}

void batch_remove(struct batch_registry *reg, struct batch *b)
{
	struct batch **link = &reg->buckets[bucket_of(reg, b->id)];
	while (*link && *link != b)
		link = &(*link)->next_in_bucket;
	if (*link == b) {
		*link = b->next_in_bucket;
		reg->count--;
	}
	batch_free(b);
}

void batch_each(const struct batch_registry *reg, void (*fn)(struct batch *b, void *arg), void *arg)
{
	for (uint64_t i = 0; i <= reg->mask; i++)
		for (struct batch *b = reg->buckets[i]; b; b = b->next_in_bucket)
			fn(b, arg);
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
	char *copy = malloc(len + 1);
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
