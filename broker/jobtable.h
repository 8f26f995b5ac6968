/* Jobs by id, in pages of JOBTABLE_PAGE_SLOTS consecutive ids: a u64map
 * (common/u64map.h) finds a page by id / JOBTABLE_PAGE_SLOTS, and the page
 * holds a pointer for each id in its range. Ids are given out in sequence,
 * so live jobs fill their pages: ~9 bytes a job (a page of 32 pointers and
 * its header), where a chained table cost 8 in the job and 8-16 in buckets
 * (issue 12: memory per queued job). A job alone in its page (one
 * long-delayed job among short ones) costs the page, 288 bytes; a page goes
 * when its last job does. Not thread-safe (the core lock guards it). */
#ifndef JM_BROKER_JOBTABLE_H
#define JM_BROKER_JOBTABLE_H

#include <stdint.h>

#include "job.h"
#include "u64map.h"

#define JOBTABLE_PAGE_SLOTS 32u

struct jobtable {
	struct u64map pages;
	uint64_t count; /* jobs in the table */
};

int jobtable_init(struct jobtable *t);
/* Frees the table, not the jobs. Accepts a zeroed table. */
void jobtable_fini(struct jobtable *t);
struct job *jobtable_find(const struct jobtable *t, uint64_t id);
/* Makes sure inserting a job with this id cannot fail (its page exists);
 * 0 or JM_ENOMEM. A page made here and never filled stays until a job of
 * its range comes and goes. */
int jobtable_reserve(struct jobtable *t, uint64_t id);
/* Inserts job (whose id must not be present); 0 or JM_ENOMEM (never after
 * jobtable_reserve of its id). */
int jobtable_insert(struct jobtable *t, struct job *job);
void jobtable_remove(struct jobtable *t, struct job *job);

/* Calls fn for each job, in id order within a page, pages in no order; fn
 * may free the job it is given (at teardown) but must not insert or remove
 * jobs. Accepts a zeroed table. */
void jobtable_each(const struct jobtable *t, void (*fn)(struct job *job, void *arg), void *arg);

#endif
