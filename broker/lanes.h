/* Ready lanes: the ready jobs of one queue, one lane per job type.
 *
 * Routing (issue 14): a worker fetches only the types it has handlers for,
 * so dispatch must find "the next job of type t in queue q" without
 * scanning the queue's ready jobs. Each lane is a binary heap ordered by
 * (priority desc, ready_seq asc): within a type, a higher priority first,
 * FIFO within a priority. A fetch that names its types looks at the head
 * of each of its types' lanes (O(types) per job, O(log n) to take it); a
 * fetch that names none (an older worker: any type) looks at the head of
 * every lane with ready jobs and takes the one that runs first, so a queue
 * with one type orders exactly as one heap did.
 *
 * A lane exists while any job of its queue and type exists (counted by
 * lanes_take/lanes_give when the job is made and freed), and its heap
 * always has room for all of them: pushing a job that became ready never
 * allocates, so applying a journal record cannot fail for want of memory.
 * That costs one pointer per job of the type, as the single heap did for
 * the jobs it had reserved.
 *
 * Invariants: a lane is in lanes->ready exactly while ready_count > 0;
 * job->ready_index is the job's slot in its lane's heap (UINT32_MAX when
 * not ready). Not thread-safe (core lock). */
#ifndef JM_BROKER_LANES_H
#define JM_BROKER_LANES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "job.h"
#include "namemap.h"

struct lane {
	const char *type;  /* interned (job_types.h); jobs of the lane hold it */
	struct job **heap; /* ready jobs, see above */
	uint32_t ready_count;
	uint32_t cap;  /* >= jobs */
	uint64_t jobs; /* jobs of this queue and type that exist */
	TAILQ_ENTRY(lane) ready_link;
	struct namemap_entry by_type;
};

struct lanes {
	struct namemap by_type;   /* buckets NULL until the first lane */
	TAILQ_HEAD(, lane) ready; /* lanes with ready jobs */
	uint32_t ready_lanes;
	uint64_t ready_count; /* ready jobs in all lanes */
};

void lanes_init(struct lanes *l);
/* Frees every lane (their jobs must be gone). */
void lanes_fini(struct lanes *l);
/* A job of type (interned) was made: its lane exists and has room for it.
 * 0 or JM_ENOMEM (nothing changed). */
int lanes_take(struct lanes *l, const char *type);
/* The job of type that lanes_take counted is freed: out of its lane, or
 * in a teardown that frees every job. */
void lanes_give(struct lanes *l, const char *type);
/* Does any lane exist (a job of the queue, in any state)? */
bool lanes_any(const struct lanes *l);

/* job (its type taken, not ready) becomes ready; sets ready_index. */
void lanes_push(struct lanes *l, struct job *job);
/* Takes job out of its lane; a job that is not ready is left alone. */
void lanes_remove(struct lanes *l, struct job *job);
/* The job of type that runs first, or NULL. */
struct job *lanes_peek_type(const struct lanes *l, const char *type);
/* The job of any type that runs first, or NULL (looks at every lane with
 * ready jobs). */
struct job *lanes_peek(const struct lanes *l);
/* The lane of type, or NULL. */
struct lane *lanes_find(const struct lanes *l, const char *type);
/* The earliest updated_us of a ready job (when it became ready), 0 when
 * none is: a scan of every ready job, for stats. */
uint64_t lanes_oldest_updated_us(const struct lanes *l);
/* True when a must run before b (priority desc, ready_seq asc). */
bool lanes_runs_before(const struct job *a, const struct job *b);

#endif
