/* An intrusive hash table keyed by u64: the caller embeds a struct
 * u64map_node in its own object, sets node.key, and the table links the
 * nodes; it never allocates per entry and never owns the objects. Used for
 * the broker's jobs by id and batches by id.
 *
 * Invariants: the bucket count is a power of two, at least min_buckets; it
 * doubles when count would pass it (load factor at most 1) and halves when
 * count falls below a quarter of it, so a table that held a burst gives its
 * memory back. Keys are taken as they are (low bits, the high half folded
 * in): sequential ids, what every user has, land one per bucket in order.
 * Not thread-safe: the owner's lock guards it.
 *
 * It lives in common/ because it knows nothing of jobs: any module (the
 * worker's leases, the client's pending calls) can use it. */
#ifndef JM_COMMON_U64MAP_H
#define JM_COMMON_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64map_node {
	struct u64map_node *next; /* bucket chain; the table's */
	uint64_t key;             /* set by the caller before insert */
};

/* The table's fields, spelled once so that a wrapper (broker/jobtable.h)
 * can expose them under its own name in an anonymous union. */
#define U64MAP_FIELDS                                                                              \
	struct u64map_node **buckets;                                                              \
	uint64_t mask;  /* bucket count - 1 */                                                     \
	uint64_t count; /* nodes in the table */                                                   \
	uint64_t min_buckets

struct u64map {
	U64MAP_FIELDS;
};

/* The object that embeds node as member. */
#define u64map_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

/* min_buckets is rounded up to a power of two (at least 8). 0 or JM_ENOMEM. */
int u64map_init(struct u64map *m, uint64_t min_buckets);
/* Frees the buckets, not the nodes' objects. Accepts a zeroed map. */
void u64map_fini(struct u64map *m);
/* The node with key, or NULL. */
struct u64map_node *u64map_find(const struct u64map *m, uint64_t key);
/* Links node (whose key must not be present); returns 0: a table that
 * cannot grow keeps its size and longer chains. */
int u64map_insert(struct u64map *m, struct u64map_node *node);
/* Unlinks node if it is in the table; never fails (a shrink that cannot
 * allocate keeps the larger table). */
void u64map_remove(struct u64map *m, struct u64map_node *node);
/* Calls fn for each node, in no order; fn may free the node it is given
 * (at teardown) but must not insert or remove others. */
void u64map_each(const struct u64map *m, void (*fn)(struct u64map_node *node, void *arg),
                 void *arg);

#endif
