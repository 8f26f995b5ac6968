/* Parked fetches, oldest first, indexed by the queues they wait on.
 *
 * A worker's fetch that found nothing waits here, unanswered, until a job
 * for one of its queues becomes ready or its wait runs out. At most one
 * fetch is parked per (worker, slot): NNG's REQ may resend a request, and
 * a worker may give up on one; either way the newer request replaces the
 * older.
 *
 * Besides the list of all parked fetches (oldest first), each (queue, job
 * type) that some parked fetch waits on has its own list of them (oldest
 * first), so handing out ready jobs (core_pump) looks only at the lanes
 * (lanes.h) that have waiters, and at the oldest waiter of each, never at
 * every parked fetch on every submit and settle. A fetch that names job
 * types waits on (queue, type) for each of its queues and types; one that
 * names none (any type) waits on (queue, "") and is woken by a job of any
 * type. So a parked fetch is woken only by a job it can take.
 *
 * Invariants: a parked fetch is linked in the list of every (queue, type)
 * it names (one link per pair, pairs unique per fetch) and in the list of
 * all; a pair's entry exists exactly while some fetch waits on it. Not
 * thread-safe (core lock). */
#ifndef JM_BROKER_DISPATCH_H
#define JM_BROKER_DISPATCH_H

#include <stdint.h>
#include <sys/queue.h>

#include "deadline.h"
#include "message.h"
#include "namemap.h"
#include "workers.h"

struct request;
struct parked_fetch;
struct dispatch_queue;

/* A parked fetch's place in one (queue, type)'s list of waiters. */
struct dispatch_link {
	struct parked_fetch *pf;
	struct dispatch_queue *dq;
	TAILQ_ENTRY(dispatch_link) link;
};

/* The fetches waiting on one queue name and job type ("": any type),
 * oldest first. */
struct dispatch_queue {
	proto_name name;
	proto_name type;
	char key[2 * sizeof(proto_name)]; /* "name/type": by_key's name */
	TAILQ_HEAD(, dispatch_link) waiters;
	TAILQ_ENTRY(dispatch_queue) link;
	struct namemap_entry by_key;
};

struct parked_fetch {
	struct request *req; /* its msg.u.fetch names the queues */
	struct worker *worker;
	uint32_t slot;
	uint32_t pipe_id;
	struct deadline timer; /* DEADLINE_FETCH */
	uint64_t seq;          /* grows with every park: lower is older */
	TAILQ_ENTRY(parked_fetch) link;
	uint32_t links_count;
	struct dispatch_link links[]; /* one per distinct (queue, type) */
};

struct dispatch {
	TAILQ_HEAD(, parked_fetch) parked;
	TAILQ_HEAD(, dispatch_queue) queues; /* those with waiters */
	struct namemap by_key;               /* the same, by "name/type"; no table while none */
	uint32_t parked_count;
	uint32_t queues_count;
	uint64_t parked_seq;
};

void dispatch_init(struct dispatch *d);
/* A zeroed parked fetch with room for a link per (queue, type) of fetch; NULL when
 * out of memory. Free it with dispatch_fetch_free once it is removed (or
 * was never added). */
struct parked_fetch *dispatch_fetch_new(const struct proto_fetch *fetch);
void dispatch_fetch_free(struct parked_fetch *pf); /* accepts NULL */
/* Links pf (made by dispatch_fetch_new(fetch); fetch is pf->req's) as the
 * newest waiter of each of fetch's (queue, type) pairs. JM_ENOMEM (nothing
 * linked) when a pair's entry cannot be made. */
int dispatch_add(struct dispatch *d, struct parked_fetch *pf, const struct proto_fetch *fetch);
void dispatch_remove(struct dispatch *d, struct parked_fetch *pf);
struct parked_fetch *dispatch_first(const struct dispatch *d);
struct parked_fetch *dispatch_next(const struct parked_fetch *pf);
/* The (queue, type) pairs with waiters, in no promised order. */
struct dispatch_queue *dispatch_queue_first(const struct dispatch *d);
struct dispatch_queue *dispatch_queue_next(const struct dispatch_queue *dq);
/* The oldest fetch waiting on dq (never NULL: dq exists only with waiters). */
struct parked_fetch *dispatch_queue_oldest(const struct dispatch_queue *dq);
/* The fetch parked for (w, slot), or NULL. */
struct parked_fetch *dispatch_find_slot(const struct dispatch *d, const struct worker *w,
                                        uint32_t slot);

#endif
