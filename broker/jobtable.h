/* Jobs by id: a chained hash table that doubles when full. Not thread-safe
 * (the core lock guards it). */
#ifndef JM_BROKER_JOBTABLE_H
#define JM_BROKER_JOBTABLE_H

#include <stdint.h>

#include "job.h"

struct jobtable {
	struct job **buckets;
	uint64_t mask; /* buckets - 1; buckets is a power of two */
	uint64_t count;
};

int jobtable_init(struct jobtable *t);
/* Frees the table, not the jobs. */
void jobtable_fini(struct jobtable *t);
struct job *jobtable_find(const struct jobtable *t, uint64_t id);
/* Inserts job (whose id must not be present); 0 or JM_ENOMEM. */
int jobtable_insert(struct jobtable *t, struct job *job);
void jobtable_remove(struct jobtable *t, struct job *job);

/* Calls fn for each job; fn may free the job it is given (at teardown)
 * but must not insert or remove others. */
void jobtable_each(const struct jobtable *t, void (*fn)(struct job *job, void *arg), void *arg);

#endif
