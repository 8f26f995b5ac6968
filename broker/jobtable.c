#include "jobtable.h"

#include <stdlib.h>

#include <jobmesh/error.h>

#define JOBTABLE_INITIAL_BUCKETS 1024

static uint64_t bucket_of(const struct jobtable *t, uint64_t id)
{
	/* Ids are sequential; a multiplicative hash spreads them anyway. */
	return (id * 0x9E3779B97F4A7C15ull >> 17) & t->mask;
}

int jobtable_init(struct jobtable *t)
{
	t->buckets = calloc(JOBTABLE_INITIAL_BUCKETS, sizeof *t->buckets);
	if (t->buckets == NULL)
		return JM_ENOMEM;
	t->mask = JOBTABLE_INITIAL_BUCKETS - 1;
	t->count = 0;
	return 0;
}

void jobtable_fini(struct jobtable *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->count = 0;
}

struct job *jobtable_find(const struct jobtable *t, uint64_t id)
{
	for (struct job *job = t->buckets[bucket_of(t, id)]; job; job = job->table_next)
		if (job->id == id)
			return job;
	return NULL;
}

static int grow(struct jobtable *t)
{
	uint64_t buckets_count = (t->mask + 1) * 2;
	struct job **buckets = calloc(buckets_count, sizeof *buckets);
	if (buckets == NULL)
		return JM_ENOMEM;
	struct job **old = t->buckets;
	uint64_t old_count = t->mask + 1;
	t->buckets = buckets;
	t->mask = buckets_count - 1;
	for (uint64_t i = 0; i < old_count; i++) {
		struct job *job = old[i];
		while (job) {
			struct job *next = job->table_next;
			uint64_t b = bucket_of(t, job->id);
			job->table_next = t->buckets[b];
			t->buckets[b] = job;
			job = next;
		}
	}
	free(old);
	return 0;
}

int jobtable_insert(struct jobtable *t, struct job *job)
{
	if (t->count >= t->mask + 1) {
		int rc = grow(t);
		if (rc != 0)
			return rc;
	}
	uint64_t b = bucket_of(t, job->id);
	job->table_next = t->buckets[b];
	t->buckets[b] = job;
	t->count++;
	return 0;
}

void jobtable_remove(struct jobtable *t, struct job *job)
{
	struct job **link = &t->buckets[bucket_of(t, job->id)];
	while (*link && *link != job)
		link = &(*link)->table_next;
	if (*link == job) {
		*link = job->table_next;
		job->table_next = NULL;
		t->count--;
	}
}

void jobtable_each(const struct jobtable *t, void (*fn)(struct job *job, void *arg), void *arg)
{
	for (uint64_t i = 0; i <= t->mask; i++) {
		struct job *job = t->buckets[i];
		while (job) {
			struct job *next = job->table_next; /* fn may free job */
			fn(job, arg);
			job = next;
		}
	}
}
