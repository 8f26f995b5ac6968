/* Parked fetches, oldest first.
 *
 * A worker's fetch that found nothing waits here, unanswered, until a job
 * for one of its queues becomes ready or its wait runs out. At most one
 * fetch is parked per (worker, slot): NNG's REQ may resend a request, and
 * a worker may give up on one; either way the newer request replaces the
 * older. Not thread-safe (core lock). */
#ifndef JM_BROKER_DISPATCH_H
#define JM_BROKER_DISPATCH_H

#include <stdint.h>
#include <sys/queue.h>

#include "deadline.h"
#include "workers.h"

struct request;

struct parked_fetch {
	struct request *req; /* its msg.u.fetch names the queues */
	struct worker *worker;
	uint32_t slot;
	uint32_t pipe_id;
	struct deadline timer; /* DEADLINE_FETCH */
	TAILQ_ENTRY(parked_fetch) link;
};

struct dispatch {
	TAILQ_HEAD(, parked_fetch) parked;
	uint32_t parked_count;
};

void dispatch_init(struct dispatch *d);
void dispatch_add(struct dispatch *d, struct parked_fetch *pf);
void dispatch_remove(struct dispatch *d, struct parked_fetch *pf);
struct parked_fetch *dispatch_first(const struct dispatch *d);
struct parked_fetch *dispatch_next(const struct parked_fetch *pf);
/* The fetch parked for (w, slot), or NULL. */
struct parked_fetch *dispatch_find_slot(const struct dispatch *d, const struct worker *w,
                                        uint32_t slot);

#endif
