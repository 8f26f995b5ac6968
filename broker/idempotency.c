/* Idempotency keys (see idempotency.h). */
#include "idempotency.h"

#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

#include "heap.h"
#include "queue.h"
#include "state.h"

int idem_reserve(struct queue *q)
{
	if (q->keys.buckets != NULL)
		return 0;
	return namemap_init(&q->keys);
}

int idem_prepare(struct job *job, const struct proto_bytes *key)
{
	if (key->len == 0)
		return 0;
	/* A key is held in the job's rarely used part: keyless jobs pay
	 * nothing for keys. */
	struct job_more *more = state_job_more(job);
	struct idem_key *k = more ? jm_calloc(1, sizeof *k + key->len + 1) : NULL;
	if (k == NULL)
		return JM_ENOMEM;
	memcpy(k->key, key->ptr, key->len);
	k->key[key->len] = '\0';
	k->by_key.name = k->key;
	k->job = job;
	more->key = k;
	return 0;
}

void idem_link(struct queue *q, struct job *job)
{
	struct idem_key *k = job_key(job);
	if (k == NULL || k->linked)
		return;
	struct namemap_entry *e = namemap_find(&q->keys, k->key);
	if (e != NULL) {
		struct idem_key *held = container_of(e, struct idem_key, by_key);
		if (held->job->id > job->id) {
			job->more->key = NULL;
			free(k);
			return;
		}
		idem_forget(held->job);
	}
	namemap_insert(&q->keys, &k->by_key);
	k->linked = true;
}

void idem_forget(struct job *job)
{
	struct idem_key *k = job_key(job);
	if (k == NULL)
		return;
	if (k->linked)
		namemap_remove(&job->queue->keys, &k->by_key);
	job->more->key = NULL;
	free(k);
}

struct job *idem_find(const struct queue *q, const char *key)
{
	if (q->keys.buckets == NULL)
		return NULL;
	struct namemap_entry *e = namemap_find(&q->keys, key);
	return e ? container_of(e, struct idem_key, by_key)->job : NULL;
}

bool idem_is_fresh(const struct job *job, uint64_t window_ms, uint64_t now_us)
{
	uint64_t created_us = job->attrs.created_us;
	return now_us < created_us || now_us - created_us < window_ms * 1000;
}

void idem_fini(struct queue *q)
{
	namemap_fini(&q->keys);
}
