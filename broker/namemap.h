/* Objects by name: an intrusive chained hash table. The object embeds a
 * struct namemap_entry whose name points at the object's own name. Used for
 * queues and workers. Not thread-safe (core lock). */
#ifndef JM_BROKER_NAMEMAP_H
#define JM_BROKER_NAMEMAP_H

#include <stddef.h>
#include <stdint.h>

struct namemap_entry {
	const char *name;
	struct namemap_entry *next;
};

struct namemap {
	struct namemap_entry **buckets;
	uint32_t buckets_count; /* power of two */
	uint32_t count;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

int namemap_init(struct namemap *map);
void namemap_fini(struct namemap *map); /* frees the table, not the objects */
struct namemap_entry *namemap_find(const struct namemap *map, const char *name);
/* entry->name must be set and not present; returns 0 (a table that cannot
 * grow keeps longer chains). */
int namemap_insert(struct namemap *map, struct namemap_entry *entry);
void namemap_remove(struct namemap *map, struct namemap_entry *entry);
/* Calls fn for each entry; fn may remove the entry it is given. */
void namemap_each(const struct namemap *map, void (*fn)(struct namemap_entry *e, void *arg),
                  void *arg);

#endif
