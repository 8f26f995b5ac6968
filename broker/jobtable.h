/* Jobs by id: a u64map (common/u64map.h) over the node in struct job. Not
 * thread-safe (the core lock guards it). */
#ifndef JM_BROKER_JOBTABLE_H
#define JM_BROKER_JOBTABLE_H

#include <stdint.h>

#include "job.h"
#include "u64map.h"

/* The map's fields stay readable as jobs.count (and jobs.buckets), as the
 * rest of the broker reads them. */
struct jobtable {
	union {
		struct u64map map;
		struct {
			U64MAP_FIELDS;
		};
	};
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
