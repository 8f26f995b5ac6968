/* Parked fetches, indexed by queue (dispatch.h). */
#include "dispatch.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void dispatch_init(struct dispatch *d)
{
	TAILQ_INIT(&d->parked);
	TAILQ_INIT(&d->queues);
	d->parked_count = 0;
	d->queues_count = 0;
}

struct parked_fetch *dispatch_fetch_new(const struct proto_fetch *fetch)
{
	return calloc(1, sizeof(struct parked_fetch) +
	                     fetch->queues_count * sizeof(struct dispatch_link));
}

void dispatch_fetch_free(struct parked_fetch *pf)
{
	free(pf);
}

/* The entry of queue name, or NULL. A linear walk: only queues some parked
 * fetch waits on have one, and workers share a few queues. */
static struct dispatch_queue *dispatch_queue_find(const struct dispatch *d, const char *name)
{
	struct dispatch_queue *dq;
	TAILQ_FOREACH(dq, &d->queues, link)
	if (strcmp(dq->name, name) == 0)
		return dq;
	return NULL;
}

static void dispatch_unlink(struct dispatch *d, struct dispatch_link *l)
{
	struct dispatch_queue *dq = l->dq;
	TAILQ_REMOVE(&dq->waiters, l, link);
	if (TAILQ_EMPTY(&dq->waiters)) {
		TAILQ_REMOVE(&d->queues, dq, link);
		d->queues_count--;
		free(dq);
	}
}

int dispatch_add(struct dispatch *d, struct parked_fetch *pf, const struct proto_fetch *fetch)
{
	pf->links_count = 0;
	for (uint32_t i = 0; i < fetch->queues_count; i++) {
		const char *name = fetch->queues[i];
		struct dispatch_queue *dq = dispatch_queue_find(d, name);
		if (dq != NULL) {
			/* A name given twice is linked once. */
			bool twice = false;
			for (uint32_t k = 0; k < pf->links_count && !twice; k++)
				twice = pf->links[k].dq == dq;
			if (twice)
				continue;
		} else {
			dq = calloc(1, sizeof *dq);
			if (dq == NULL) {
				while (pf->links_count > 0)
					dispatch_unlink(d, &pf->links[--pf->links_count]);
				return JM_ENOMEM;
			}
			memcpy(dq->name, name, sizeof dq->name);
			TAILQ_INIT(&dq->waiters);
			TAILQ_INSERT_TAIL(&d->queues, dq, link);
			d->queues_count++;
		}
		struct dispatch_link *l = &pf->links[pf->links_count++];
		l->pf = pf;
		l->dq = dq;
		TAILQ_INSERT_TAIL(&dq->waiters, l, link);
	}
	pf->seq = ++d->parked_seq;
	TAILQ_INSERT_TAIL(&d->parked, pf, link);
	d->parked_count++;
	return 0;
}

void dispatch_remove(struct dispatch *d, struct parked_fetch *pf)
{
	while (pf->links_count > 0)
		dispatch_unlink(d, &pf->links[--pf->links_count]);
	TAILQ_REMOVE(&d->parked, pf, link);
	d->parked_count--;
}

struct parked_fetch *dispatch_first(const struct dispatch *d)
{
	return TAILQ_FIRST(&d->parked);
}

struct parked_fetch *dispatch_next(const struct parked_fetch *pf)
{
	return TAILQ_NEXT(pf, link);
}

struct dispatch_queue *dispatch_queue_first(const struct dispatch *d)
{
	return TAILQ_FIRST(&d->queues);
}

struct dispatch_queue *dispatch_queue_next(const struct dispatch_queue *dq)
{
	return TAILQ_NEXT(dq, link);
}

struct parked_fetch *dispatch_queue_oldest(const struct dispatch_queue *dq)
{
	return TAILQ_FIRST(&dq->waiters)->pf;
}

struct parked_fetch *dispatch_find_slot(const struct dispatch *d, const struct worker *w,
                                        uint32_t slot)
{
	if (w->parked_fetches == 0)
		return NULL;
	struct parked_fetch *pf;
	TAILQ_FOREACH(pf, &d->parked, link)
	if (pf->worker == w && pf->slot == slot)
		return pf;
	return NULL;
}
