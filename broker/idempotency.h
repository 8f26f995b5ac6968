/* Idempotency keys: per queue, a key names the job a submit carrying it
 * admitted, so a repeated submit (a client's retry, a double cron firing)
 * gets that job's id instead of a second job.
 *
 * A key lives with its job: it is stored in the job's JOB record (admission
 * and snapshots), linked when the record is applied and freed with the
 * job, so the keys a queue holds never outnumber its jobs and replay
 * rebuilds them with no record of their own. A key matches for the queue's
 * key window after its job's admission (created_us); past it, a new submit
 * with the key takes it over (the newer job, by id, holds a key: replay in
 * any order agrees). Not thread-safe (core lock). */
#ifndef JM_BROKER_IDEMPOTENCY_H
#define JM_BROKER_IDEMPOTENCY_H

#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "message.h"
#include "namemap.h"

struct queue;

/* One key of one job; owned by the job (job->more->key, job_key()). */
struct idem_key {
	struct namemap_entry by_key; /* in the queue's keys while linked */
	struct job *job;
	bool linked;
	char key[]; /* NUL-terminated, PROTO_KEY_MAX at most */
};

/* Makes q's key table exist so that linking cannot fail: 0 or JM_ENOMEM. */
int idem_reserve(struct queue *q);
/* Gives job a copy of key (unlinked); 0 (also for an empty key: no key) or
 * JM_ENOMEM. */
int idem_prepare(struct job *job, const struct proto_bytes *key);
/* Links job's prepared key into q (reserved): it takes the key over from a
 * job of a lower id; a job of a higher id keeps it, and job's copy is
 * freed. Cannot fail. */
void idem_link(struct queue *q, struct job *job);
/* Unlinks (if linked) and frees job's key. */
void idem_forget(struct job *job);
/* The job key names in q, or NULL; whether it still matches is the
 * caller's call (idem_is_fresh). */
struct job *idem_find(const struct queue *q, const char *key);
/* Does job's key still match at wall time now_us, window_ms after its
 * admission? */
bool idem_is_fresh(const struct job *job, uint64_t window_ms, uint64_t now_us);
/* Frees q's key table (its keys belong to jobs). */
void idem_fini(struct queue *q);

#endif
