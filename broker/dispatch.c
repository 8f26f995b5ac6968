#include "dispatch.h"

void dispatch_init(struct dispatch *d)
{
	TAILQ_INIT(&d->parked);
	d->parked_count = 0;
}

void dispatch_add(struct dispatch *d, struct parked_fetch *pf)
{
	TAILQ_INSERT_TAIL(&d->parked, pf, link);
	d->parked_count++;
}

void dispatch_remove(struct dispatch *d, struct parked_fetch *pf)
{
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
