#include "heap.h"
#include "u64map.h"

#include <stdlib.h>

#include <jobmesh/error.h>

#define U64MAP_MIN_BUCKETS 8u

static uint64_t bucket_of(uint64_t mask, uint64_t key)
{
	/* The keys are ids given out in sequence (jobs, batches, calls): taken
	 * as they are, n consecutive ids fill n consecutive buckets, one each,
	 * so chains stay empty or short and a run of inserts or lookups (a
	 * replay, a submit of many jobs) walks the bucket array in order
	 * instead of missing the cache on every key, as a multiplicative hash
	 * that scatters them did (a quarter of replay time). The high half is
	 * folded in for keys that differ only there. */
	return (key ^ (key >> 32)) & mask;
}

int u64map_init(struct u64map *m, uint64_t min_buckets)
{
	uint64_t n = U64MAP_MIN_BUCKETS;
	while (n < min_buckets && n < (1ull << 62))
		n *= 2;
	m->buckets = jm_calloc(n, sizeof *m->buckets);
	if (m->buckets == NULL)
		return JM_ENOMEM;
	m->mask = n - 1;
	m->count = 0;
	m->min_buckets = n;
	return 0;
}

void u64map_fini(struct u64map *m)
{
	free(m->buckets);
	m->buckets = NULL;
	m->mask = 0;
	m->count = 0;
}

struct u64map_node *u64map_find(const struct u64map *m, uint64_t key)
{
	for (struct u64map_node *n = m->buckets[bucket_of(m->mask, key)]; n; n = n->next)
		if (n->key == key)
			return n;
	return NULL;
}

/* Moves every node into a table of count buckets; 0 or JM_ENOMEM (m
 * unchanged then). */
static int rehash(struct u64map *m, uint64_t count)
{
	struct u64map_node **buckets = jm_calloc(count, sizeof *buckets);
	if (buckets == NULL)
		return JM_ENOMEM;
	for (uint64_t i = 0; i <= m->mask; i++) {
		struct u64map_node *n = m->buckets[i];
		while (n) {
			struct u64map_node *next = n->next;
			uint64_t b = bucket_of(count - 1, n->key);
			n->next = buckets[b];
			buckets[b] = n;
			n = next;
		}
	}
	free(m->buckets);
	m->buckets = buckets;
	m->mask = count - 1;
	return 0;
}

int u64map_insert(struct u64map *m, struct u64map_node *node)
{
	/* A table that cannot grow keeps working with longer chains, so an
	 * insert never fails: callers apply records that are already
	 * journaled and must not fail half-way. */
	if (m->count > m->mask)
		(void)rehash(m, (m->mask + 1) * 2);
	uint64_t b = bucket_of(m->mask, node->key);
	node->next = m->buckets[b];
	m->buckets[b] = node;
	m->count++;
	return 0;
}

void u64map_remove(struct u64map *m, struct u64map_node *node)
{
	struct u64map_node **link = &m->buckets[bucket_of(m->mask, node->key)];
	while (*link && *link != node)
		link = &(*link)->next;
	if (*link != node)
		return;
	*link = node->next;
	node->next = NULL;
	m->count--;
	uint64_t buckets = m->mask + 1;
	if (buckets > m->min_buckets && m->count < buckets / 4)
		(void)rehash(m, buckets / 2); /* on ENOMEM the larger table stays */
}

void u64map_each(const struct u64map *m, void (*fn)(struct u64map_node *node, void *arg), void *arg)
{
	for (uint64_t i = 0; m->buckets && i <= m->mask; i++) {
		struct u64map_node *n = m->buckets[i];
		while (n) {
			struct u64map_node *next = n->next; /* fn may free n */
			fn(n, arg);
			n = next;
		}
	}
}
