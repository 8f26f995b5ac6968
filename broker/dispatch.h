/* Parked fetches, oldest first, indexed by the queues they wait on.
 *
 * A worker's fetch that found nothing waits here, unanswered, until a job
 * for one of its queues becomes ready or its wait runs out. At most one
 * fetch is parked per (worker, slot): NNG's REQ may resend a request, and
 * a worker may give up on one; either way the newer request replaces the
 * older.
 *
 * Besides the list of all parked fetches (oldest first), each queue name
 * that some parked fetch waits on has its own list of them (oldest first),
 * so handing out ready jobs (core_pump) looks only at queues that have
 * waiters, and at the waiters of those queues, never at every parked fetch
 * on every submit and settle.
 *
 * Invariants: a parked fetch is linked in the list of every queue it names
 * (one link per name, names unique per fetch) and in the list of all; a
 * queue's entry exists exactly while some fetch waits on it. Not
 * thread-safe (core lock). */
#ifndef JM_BROKER_DISPATCH_H
#define JM_BROKER_DISPATCH_H

#include <stdint.h>
#include <sys/queue.h>

#include "deadline.h"
#include "message.h"
#include "workers.h"

struct request;
struct parked_fetch;
struct dispatch_queue;

/* A parked fetch's place in one queue's list of waiters. */
struct dispatch_link {
	struct parked_fetch *pf;
	struct dispatch_queue *dq;
	TAILQ_ENTRY(dispatch_link) link;
};

/* The fetches waiting on one queue name, oldest first. */
struct dispatch_queue {
	proto_name name;
	TAILQ_HEAD(, dispatch_link) waiters;
	TAILQ_ENTRY(dispatch_queue) link;
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
	struct dispatch_link links[]; /* one per distinct queue it names */
};

struct dispatch {
	TAILQ_HEAD(, parked_fetch) parked;
	TAILQ_HEAD(, dispatch_queue) queues; /* those with waiters */
	uint32_t parked_count;
	uint32_t queues_count;
	uint64_t parked_seq;
};

void dispatch_init(struct dispatch *d);
/* A zeroed parked fetch with room for a link per queue of fetch; NULL when
 * out of memory. Free it with dispatch_fetch_free once it is removed (or
 * was never added). */
struct parked_fetch *dispatch_fetch_new(const struct proto_fetch *fetch);
void dispatch_fetch_free(struct parked_fetch *pf); /* accepts NULL */
/* Links pf (made by dispatch_fetch_new(fetch); fetch is pf->req's) as the
 * newest waiter of each of fetch's queues. JM_ENOMEM (nothing linked) when
 * a queue's entry cannot be made. */
int dispatch_add(struct dispatch *d, struct parked_fetch *pf, const struct proto_fetch *fetch);
void dispatch_remove(struct dispatch *d, struct parked_fetch *pf);
struct parked_fetch *dispatch_first(const struct dispatch *d);
struct parked_fetch *dispatch_next(const struct parked_fetch *pf);
/* The queues with waiters, in no promised order. */
struct dispatch_queue *dispatch_queue_first(const struct dispatch *d);
struct dispatch_queue *dispatch_queue_next(const struct dispatch_queue *dq);
/* The oldest fetch waiting on dq (never NULL: dq exists only with waiters). */
struct parked_fetch *dispatch_queue_oldest(const struct dispatch_queue *dq);
/* The fetch parked for (w, slot), or NULL. */
struct parked_fetch *dispatch_find_slot(const struct dispatch *d, const struct worker *w,
                                        uint32_t slot);

#endif
