#include "heap.h"
#include "namemap.h"

#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

#define NAMEMAP_BUCKETS_INITIAL 64

static uint32_t name_hash(const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

int namemap_init(struct namemap *map)
{
	map->buckets = jm_calloc(NAMEMAP_BUCKETS_INITIAL, sizeof *map->buckets);
	if (map->buckets == NULL)
		return JM_ENOMEM;
	map->buckets_count = NAMEMAP_BUCKETS_INITIAL;
	map->count = 0;
	return 0;
}

void namemap_fini(struct namemap *map)
{
	free(map->buckets);
	map->buckets = NULL;
	map->buckets_count = 0;
	map->count = 0;
}

struct namemap_entry *namemap_find(const struct namemap *map, const char *name)
{
	uint32_t b = name_hash(name) & (map->buckets_count - 1);
	for (struct namemap_entry *e = map->buckets[b]; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

static int grow(struct namemap *map)
{
	uint32_t buckets_count = map->buckets_count * 2;
	struct namemap_entry **buckets = jm_calloc(buckets_count, sizeof *buckets);
	if (buckets == NULL)
		return JM_ENOMEM;
	for (uint32_t i = 0; i < map->buckets_count; i++) {
		struct namemap_entry *e = map->buckets[i];
		while (e) {
			struct namemap_entry *next = e->next;
			uint32_t b = name_hash(e->name) & (buckets_count - 1);
			e->next = buckets[b];
			buckets[b] = e;
			e = next;
		}
	}
	free(map->buckets);
	map->buckets = buckets;
	map->buckets_count = buckets_count;
	return 0;
}

int namemap_insert(struct namemap *map, struct namemap_entry *entry)
{
	/* Longer chains when the table cannot grow: an insert never fails. */
	if (map->count >= map->buckets_count)
		(void)grow(map);
	uint32_t b = name_hash(entry->name) & (map->buckets_count - 1);
	entry->next = map->buckets[b];
	map->buckets[b] = entry;
	map->count++;
	return 0;
}

void namemap_remove(struct namemap *map, struct namemap_entry *entry)
{
	struct namemap_entry **link =
	    &map->buckets[name_hash(entry->name) & (map->buckets_count - 1)];
	while (*link && *link != entry)
		link = &(*link)->next;
	if (*link == entry) {
		*link = entry->next;
		map->count--;
	}
}

void namemap_each(const struct namemap *map, void (*fn)(struct namemap_entry *e, void *arg),
                  void *arg)
{
	for (uint32_t i = 0; i < map->buckets_count; i++) {
		struct namemap_entry *e = map->buckets[i];
		while (e) {
			struct namemap_entry *next = e->next;
			fn(e, arg);
			e = next;
		}
	}
}
