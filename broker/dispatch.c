/* Parked fetches, indexed by (queue, job type) (dispatch.h). */
#include "dispatch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void dispatch_init(struct dispatch *d)
{
	TAILQ_INIT(&d->parked);
	TAILQ_INIT(&d->queues);
	memset(&d->by_key, 0, sizeof d->by_key);
	d->parked_count = 0;
	d->queues_count = 0;
}

struct parked_fetch *dispatch_fetch_new(const struct proto_fetch *fetch)
{
	uint32_t types = fetch->types_count ? fetch->types_count : 1;
	return calloc(1, sizeof(struct parked_fetch) +
	                     (size_t)fetch->queues_count * types * sizeof(struct dispatch_link));
}

void dispatch_fetch_free(struct parked_fetch *pf)
{
	free(pf);
}

/* "name/type" ('/' is in no name, so the key is unique) into key. */
static void pair_key(char key[2 * sizeof(proto_name)], const char *name, const char *type)
{
	snprintf(key, 2 * sizeof(proto_name), "%s/%s", name, type);
}

/* The entry of (name, type), or NULL. */
static struct dispatch_queue *dispatch_queue_find(const struct dispatch *d, const char *name,
                                                  const char *type)
{
	if (d->by_key.buckets == NULL)
		return NULL;
	char key[2 * sizeof(proto_name)];
	pair_key(key, name, type);
	struct namemap_entry *e = namemap_find(&d->by_key, key);
	return e ? container_of(e, struct dispatch_queue, by_key) : NULL;
}

static void dispatch_unlink(struct dispatch *d, struct dispatch_link *l)
{
	struct dispatch_queue *dq = l->dq;
	TAILQ_REMOVE(&dq->waiters, l, link);
	if (TAILQ_EMPTY(&dq->waiters)) {
		TAILQ_REMOVE(&d->queues, dq, link);
		namemap_remove(&d->by_key, &dq->by_key);
		d->queues_count--;
		free(dq);
		if (d->queues_count == 0)
			namemap_fini(&d->by_key); /* nobody waits: no table */
	}
}

/* Links pf as the newest waiter of (name, type); a pair it already waits
 * on is linked once. */
static int link_pair(struct dispatch *d, struct parked_fetch *pf, const char *name,
                     const char *type)
{
	struct dispatch_queue *dq = dispatch_queue_find(d, name, type);
	if (dq != NULL) {
		for (uint32_t k = 0; k < pf->links_count; k++)
			if (pf->links[k].dq == dq)
				return 0;
	} else {
		if (d->by_key.buckets == NULL && namemap_init(&d->by_key) != 0)
			return JM_ENOMEM;
		dq = calloc(1, sizeof *dq);
		if (dq == NULL) {
			if (d->queues_count == 0)
				namemap_fini(&d->by_key);
			return JM_ENOMEM;
		}
		memcpy(dq->name, name, sizeof dq->name);
		memcpy(dq->type, type, strnlen(type, PROTO_NAME_MAX));
		pair_key(dq->key, name, type);
		dq->by_key.name = dq->key;
		TAILQ_INIT(&dq->waiters);
		TAILQ_INSERT_TAIL(&d->queues, dq, link);
		(void)namemap_insert(&d->by_key, &dq->by_key); /* never fails */
		d->queues_count++;
	}
	struct dispatch_link *l = &pf->links[pf->links_count++];
	l->pf = pf;
	l->dq = dq;
	TAILQ_INSERT_TAIL(&dq->waiters, l, link);
	return 0;
}

int dispatch_add(struct dispatch *d, struct parked_fetch *pf, const struct proto_fetch *fetch)
{
	pf->links_count = 0;
	for (uint32_t i = 0; i < fetch->queues_count; i++) {
		uint32_t types = fetch->types_count ? fetch->types_count : 1;
		for (uint32_t t = 0; t < types; t++) {
			const char *type = fetch->types_count ? fetch->types[t] : "";
			if (link_pair(d, pf, fetch->queues[i], type) != 0) {
				while (pf->links_count > 0)
					dispatch_unlink(d, &pf->links[--pf->links_count]);
				return JM_ENOMEM;
			}
		}
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
