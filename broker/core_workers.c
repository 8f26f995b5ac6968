/* Requests from workers: fetch (parked while nothing is ready, then served
 * by core_pump), settle, heartbeats (which reconcile the leases a worker
 * reports against those it holds) and progress; and the loss of a worker,
 * by silence or by a restart under the same id.
 *
 * Fencing: a lease is handed to one worker id and one process of it (its
 * instance) under a token of 64 random bits. A settle or progress counts
 * only when all three match (lease_holds); anything else is JM_ESTALE and
 * changes nothing, so neither a guessed token nor another process naming
 * the holder's id can end someone else's attempt. A request under a known
 * id from a new instance takes the id over (requeueing the old process's
 * leases) only once that process is gone (worker_is_gone). */
#include "core_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "events.h"
#include "heap.h"
#include "log.h"

static void worker_restarted(struct core *core, struct worker *w, uint64_t instance,
                             struct outbox *out);

static void mark_pipe_gone_cb(struct worker *w, void *arg)
{
	if (w->pipe_id != 0 && w->pipe_id == *(const uint32_t *)arg)
		w->pipe_gone = true;
}

/* True when the process behind w is gone: its connection closed, or silent
 * past the dead-after window. Only then may another instance take the id. */
static bool worker_is_gone(const struct core *core, const struct worker *w)
{
	uint64_t silent_us = jm_mono_us() - w->last_seen_mono_us;
	return w->pipe_gone || silent_us >= core->state.config.dead_after_ms * 1000;
}

/* A request from worker id, instance, on connection pipe_id: a sign of life,
 * and its joined event the first time. A new instance under a known id
 * takes the id over when may_take_over (fetch, heartbeat) and the old
 * process is gone; otherwise the request is refused (JM_ESTATE, with why in
 * why) and nothing changes, not even the worker's liveness. */
static int worker_seen(struct core *core, const char *id, uint64_t instance, uint32_t pipe_id,
                       bool may_take_over, struct outbox *out, struct worker **wp, char *why,
                       size_t why_size)
{
	struct worker *w = worker_find(&core->state.workers, id);
	if (w != NULL && w->instance != 0 && w->instance != instance) {
		if (!may_take_over || !worker_is_gone(core, w)) {
			uint64_t silent_ms = (jm_mono_us() - w->last_seen_mono_us) / 1000;
			snprintf(why, why_size,
			         "worker id %s belongs to a running process (instance %016llx, "
			         "heard from %llu ms ago on an open connection), not to instance "
			         "%016llx: give each worker process its own id, or wait until "
			         "the old one has been silent for %llu ms",
			         id, (unsigned long long)w->instance, (unsigned long long)silent_ms,
			         (unsigned long long)instance,
			         (unsigned long long)core->state.config.dead_after_ms);
			return JM_ESTATE;
		}
		worker_restarted(core, w, instance, out);
		w->instance = 0;
	}
	int rc = state_worker_seen(&core->state, id, jm_wall_us(), wp);
	if (rc != 0) {
		snprintf(why, why_size, "worker %s: %s", id,
		         rc == JM_ELIMIT ? "too many workers" : jm_strerror(rc));
		return rc;
	}
	w = *wp;
	if (w->instance == 0)
		w->instance = instance;
	w->pipe_id = pipe_id;
	w->pipe_gone = false;
	if (!w->announced) {
		w->announced = true;
		core_publish_worker(core, w, PROTO_EVENT_WORKER_JOINED, NULL);
	}
	return 0;
}

void core_worker_pipe_gone(struct core *core, uint32_t pipe_id)
{
	/* Called per closed connection; a broker has few workers. */
	struct worker_registry *reg = &core->state.workers;
	worker_each(reg, mark_pipe_gone_cb, &pipe_id);
}

/* The SETTLE record that ends job's attempt as a failure: retry with
 * backoff while attempts remain (unless permanent), else dead-letter. */
static void failure_record(struct core *core, struct job *job, const char *error, size_t error_len,
                           bool permanent, struct proto_record *rec)
{
	uint64_t now = jm_wall_us();
	*rec = (struct proto_record){.version = PROTO_RECORD_VERSION, .type = PROTO_REC_SETTLE};
	struct proto_rec_settle *s = &rec->u.settle;
	s->job_id = job->id;
	s->lease = job->lease;
	s->at_us = now;
	if (error_len > PROTO_ERROR_TEXT_MAX)
		error_len = PROTO_ERROR_TEXT_MAX;
	s->data = (struct proto_bytes){(const uint8_t *)error, (uint32_t)error_len};
	if (permanent || job->attempt >= job->attrs.max_attempts) {
		s->outcome = PROTO_OUTCOME_DEAD;
	} else {
		s->outcome = PROTO_OUTCOME_RETRY;
		uint64_t delay_ms =
		    backoff_delay_ms(&job->queue->policy.backoff, job->attempt, core_random(core));
		s->run_at_us = now + delay_ms * 1000;
	}
}

/* Ends the current attempt of an active job that did not complete: retry
 * with backoff while attempts remain (unless permanent), else dead-letter. */
int core_settle_failure(struct core *core, struct job *job, const char *error, size_t error_len,
                        bool permanent, struct outbox *out, struct jm_err *err)
{
	struct proto_record rec;
	failure_record(core, job, error, error_len, permanent, &rec);
	int rc = core_commit(core, &rec, err);
	if (rc == 0 && state_job_is_finished(job))
		core_release_waiters(core, job, out);
	return rc;
}

static int settle_released(struct core *core, struct job *job, struct jm_err *err)
{
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_SETTLE};
	rec.u.settle.job_id = job->id;
	rec.u.settle.lease = job->lease;
	rec.u.settle.outcome = PROTO_OUTCOME_RELEASED;
	rec.u.settle.at_us = jm_wall_us();
	return core_commit(core, &rec, err);
}

/* The LEASE record that leases job to worker w's current instance under a
 * fresh token. */
static int lease_record(struct core *core, struct job *job, const struct worker *w,
                        struct proto_record *rec, struct jm_err *err)
{
	*rec = (struct proto_record){.version = PROTO_RECORD_VERSION, .type = PROTO_REC_LEASE};
	int rc = token_pool_draw(&core->lease_tokens, &rec->u.lease.token, err);
	if (rc != 0)
		return rc;
	/* The lease's fields live in the job's rarely used part: allocated
	 * before the record is journaled, so that applying it cannot fail. */
	if (state_job_more(job) == NULL)
		return jm_err_set(err, JM_ENOMEM, "leasing job %llu: broker out of memory",
		                  (unsigned long long)job->id);
	rec->u.lease.instance = w->instance;
	rec->u.lease.job_id = job->id;
	/* The first lease of a job in this boot starts at boot_epoch << 32:
	 * one a crash made us forget can never be granted again. */
	uint64_t boot_floor = core->state.boot_epoch << 32;
	rec->u.lease.lease = job->lease + 1 > boot_floor ? job->lease + 1 : boot_floor;
	rec->u.lease.attempt = job->attempt + 1;
	memcpy(rec->u.lease.worker_id, w->id, sizeof rec->u.lease.worker_id);
	rec->u.lease.at_us = jm_wall_us();
	return 0;
}

/* Picks up to max ready jobs of fetch's types (none named: any type) from
 * fetch's queues (in the order given, each within its max_active and its
 * groups' limit) into jobs, without taking them: each comes out of its
 * lane as dispatch gives it (groups take turns, lanes.h), counted as
 * started against its group's limit while picking, and all go back in
 * where they were (first of their level, in reverse) before this returns;
 * the LEASE records take them out for good. Returns how many. */
static uint32_t pick_jobs(struct core *core, const struct proto_fetch *fetch, struct job **jobs,
                          uint32_t max)
{
	uint32_t picked = 0;
	for (uint32_t qi = 0; qi < fetch->queues_count && picked < max; qi++) {
		struct queue *q = queue_find(&core->state.queues, fetch->queues[qi]);
		if (q == NULL)
			continue;
		uint32_t in_q = 0; /* picked from q already (a queue named twice) */
		for (uint32_t i = 0; i < picked; i++)
			in_q += jobs[i]->queue == q;
		struct job *job;
		while (picked < max && queue_may_start(q, in_q) &&
		       (job = queue_ready_next(q, fetch->types, fetch->types_count)) != NULL) {
			queue_ready_remove(q, job);
			queue_job_started(q, job);
			jobs[picked++] = job;
			in_q++;
		}
	}
	for (uint32_t i = picked; i-- > 0;) {
		queue_job_ended(jobs[i]->queue, jobs[i]);
		queue_ready_push_front(jobs[i]->queue, jobs[i]);
	}
	return picked;
}

/* Takes up to max_jobs ready jobs from queues (in the order given), leases
 * them to w, all or none (core_commit_many), and encodes the JOBS reply.
 * Returns how many were leased. */
static uint32_t take_jobs(struct core *core, struct request *req, struct worker *w,
                          const struct proto_fetch *fetch, struct outbox *out, bool reply_if_none)
{
	uint32_t max_jobs = fetch->max_jobs;
	struct proto_delivery *deliveries = NULL;
	struct job **jobs = NULL;
	struct proto_record *recs = NULL;
	uint32_t taken = 0;
	/* No more than are ready anywhere: a record is a few hundred bytes. */
	if (core->state.ready_jobs < max_jobs)
		max_jobs = (uint32_t)core->state.ready_jobs;
	if (max_jobs > 0) {
		deliveries = jm_calloc(max_jobs, sizeof *deliveries);
		jobs = jm_calloc(max_jobs, sizeof *jobs);
		recs = jm_calloc(max_jobs, sizeof *recs);
		if (deliveries == NULL || jobs == NULL || recs == NULL) {
			free(deliveries);
			free(jobs);
			free(recs);
			core_reply_errorf(core, req, out, JM_ENOMEM, "fetch: broker out of memory");
			return 0;
		}
		taken = pick_jobs(core, fetch, jobs, max_jobs);
	}
	struct jm_err err = {0};
	int rc = 0;
	for (uint32_t i = 0; rc == 0 && i < taken; i++)
		rc = lease_record(core, jobs[i], w, &recs[i], &err);
	if (rc == 0)
		rc = core_commit_many(core, recs, taken, &err);
	if (rc != 0) {
		/* Nothing was leased; a parked fetch stays parked. */
		jm_warn("fetch: leasing %u job(s) failed: %s", taken, jm_err_text(&err));
		taken = 0;
	}
	uint64_t now_mono = jm_mono_us();
	for (uint32_t i = 0; i < taken; i++) {
		struct job *job = jobs[i];
		queue_started(job->queue, now_mono);
		if (job->batch)
			batch_set_operation(job->batch, job->attrs.type, strlen(job->attrs.type));
		struct proto_delivery *d = &deliveries[i];
		d->job_id = job->id;
		d->lease = job->more->lease_token;
		d->attempt = job->attempt;
		state_job_attrs(job, &d->attrs);
		d->payload = (struct proto_bytes){job->payload, job->payload_len};
	}
	for (uint32_t qi = 0; qi < fetch->queues_count; qi++) {
		/* A queue held back by its rate wakes its parked fetches when
		 * its next start is due. */
		struct queue *q = queue_find(&core->state.queues, fetch->queues[qi]);
		if (q)
			core_queue_rate_wait(core, q);
	}
	free(jobs);
	free(recs);
	if (taken > 0 || reply_if_none) {
		struct proto_msg msg = {.type = PROTO_JOBS};
		msg.u.jobs.jobs_count = taken;
		msg.u.jobs.jobs = deliveries;
		core_reply(core, req, &msg, out);
		/* A delivery does not wait for its LEASE record to be synced:
		 * if a crash loses the record, the job is pending again after
		 * replay and runs again, which at-least-once allows. The
		 * worker's SETTLE is appended after the LEASE, so the SETTLE's
		 * durable reply covers both. This saves one sync per job. */
		req->reply_lsn = 0;
	}
	free(deliveries);
	return taken;
}

static void reply_no_jobs(struct core *core, struct request *req, struct outbox *out)
{
	struct proto_msg msg = {.type = PROTO_JOBS};
	core_reply(core, req, &msg, out);
}

void core_unpark_fetch(struct core *core, struct parked_fetch *pf, struct outbox *out,
                       bool answer_empty)
{
	dispatch_remove(&core->dispatch, pf);
	deadline_heap_remove(&core->state.deadlines, &pf->timer);
	pf->worker->parked_fetches--;
	if (answer_empty)
		reply_no_jobs(core, pf->req, out);
	dispatch_fetch_free(pf);
}

/* The oldest parked fetch that waits on a (queue, type) with a job it may
 * take now, or NULL. Looks only at pairs with waiters (dispatch.h), and at
 * the oldest waiter of each. */
static struct parked_fetch *pump_candidate(struct core *core)
{
	struct parked_fetch *best = NULL;
	for (struct dispatch_queue *dq = dispatch_queue_first(&core->dispatch); dq != NULL;
	     dq = dispatch_queue_next(dq)) {
		struct parked_fetch *oldest = dispatch_queue_oldest(dq);
		if (best != NULL && best->seq < oldest->seq)
			continue;
		struct queue *q = queue_find(&core->state.queues, dq->name);
		if (q != NULL && queue_has_capacity(q) && lanes_can_give(&q->lanes, dq->type))
			best = oldest;
	}
	return best;
}

/* Hands ready jobs to parked fetches, oldest fetch first. */
void core_pump(struct core *core, struct outbox *out)
{
	while (core->state.ready_jobs > 0) {
		struct parked_fetch *pf = pump_candidate(core);
		/* A candidate takes at least one job, unless the journal refuses
		 * a lease: then nobody gets one now. */
		if (pf == NULL ||
		    take_jobs(core, pf->req, pf->worker, &pf->req->msg.u.fetch, out, false) == 0)
			return;
		core_unpark_fetch(core, pf, out, false);
	}
}

void handle_fetch(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_fetch *fetch = &req->msg.u.fetch;
	struct worker *w;
	uint64_t now = jm_mono_us();
	char why[400];
	int rc = worker_seen(core, fetch->worker_id, fetch->instance, req->pipe_id, true, out, &w,
	                     why, sizeof why);
	if (rc != 0) {
		core_reply_errorf(core, req, out, rc, "fetch: %s", why);
		return;
	}
	worker_note_fetch(w, fetch);
	/* One parked fetch per (worker, slot): a newer request from the same
	 * slot means the older one was given up on (or resent by NNG). */
	struct parked_fetch *old = dispatch_find_slot(&core->dispatch, w, fetch->slot);
	if (old)
		core_unpark_fetch(core, old, out, true);
	if (w->draining) {
		reply_no_jobs(core, req, out);
		return;
	}
	struct jm_err err = {0};
	if (!journal_is_writable(core->journal, &err)) {
		core_reply_errorf(core, req, out, err.code, "fetch: %s", jm_err_text(&err));
		return;
	}
	if (take_jobs(core, req, w, fetch, out, fetch->wait_ms == 0) > 0 || fetch->wait_ms == 0)
		return;
	struct parked_fetch *pf = dispatch_fetch_new(fetch);
	if (pf == NULL) {
		core_reply_errorf(core, req, out, JM_ENOMEM, "fetch: broker out of memory");
		return;
	}
	pf->req = req;
	pf->worker = w;
	pf->slot = fetch->slot;
	pf->pipe_id = req->pipe_id;
	deadline_init(&pf->timer, DEADLINE_FETCH);
	uint32_t wait_ms =
	    fetch->wait_ms < core->config.wait_max_ms ? fetch->wait_ms : core->config.wait_max_ms;
	if (deadline_heap_set(&core->state.deadlines, &pf->timer, now + (uint64_t)wait_ms * 1000)) {
		dispatch_fetch_free(pf);
		core_reply_errorf(core, req, out, JM_ENOMEM, "fetch: broker out of memory");
		return;
	}
	if (dispatch_add(&core->dispatch, pf, fetch) != 0) {
		deadline_heap_remove(&core->state.deadlines, &pf->timer);
		dispatch_fetch_free(pf);
		core_reply_errorf(core, req, out, JM_ENOMEM, "fetch: broker out of memory");
		return;
	}
	w->parked_fetches++;
}

/* The active job whose lease worker w's process instance holds under
 * token, or why not: JM_ENOTFOUND for no such job, JM_ESTALE (and a log
 * line naming the reason) for a lease that is not that process's. */
static int lease_holds(struct core *core, const char *what, const struct worker *w,
                       uint64_t instance, uint64_t job_id, uint64_t token, struct job **out)
{
	struct job *job = jobtable_find(&core->state.jobs, job_id);
	if (job == NULL)
		return JM_ENOTFOUND;
	const char *reason = NULL;
	if (job->state != PROTO_STATE_ACTIVE)
		reason = "the job is not running (it was requeued, cancelled or finished)";
	else if (job_holder(job) != w || job->more->holder_instance != instance)
		reason = "the lease is held by another worker or process";
	else if (job->more->lease_token == 0)
		reason = "the lease predates lease tokens (journal version 1)";
	else if (job->more->lease_token != token)
		reason = "the lease token does not match the current delivery";
	if (reason != NULL) {
		jm_info("job %llu: %s from worker %s (instance %016llx) refused as stale: %s",
		        (unsigned long long)job_id, what, w->id, (unsigned long long)instance,
		        reason);
		return JM_ESTALE;
	}
	*out = job;
	return 0;
}

static void reply_settled(struct core *core, struct request *req, int32_t *codes, uint32_t count,
                          struct outbox *out)
{
	struct proto_msg msg = {.type = PROTO_SETTLED};
	msg.u.settled.codes_count = count;
	msg.u.settled.codes = codes;
	core_reply(core, req, &msg, out);
}

/* The SETTLE record that ends job's attempt as the worker said. */
static void settle_record(struct core *core, struct job *job, const struct proto_settle_item *item,
                          struct proto_record *rec)
{
	if (item->outcome == PROTO_SETTLE_FAILED) {
		failure_record(core, job, (const char *)item->data.ptr, item->data.len,
		               item->permanent, rec);
		return;
	}
	*rec = (struct proto_record){.version = PROTO_RECORD_VERSION, .type = PROTO_REC_SETTLE};
	rec->u.settle.job_id = job->id;
	rec->u.settle.lease = job->lease;
	rec->u.settle.at_us = jm_wall_us();
	if (item->outcome == PROTO_SETTLE_COMPLETED) {
		rec->u.settle.outcome = PROTO_OUTCOME_COMPLETED;
		rec->u.settle.data = item->data;
	} else {
		rec->u.settle.outcome = PROTO_OUTCOME_RELEASED;
	}
}

struct settle_ref {
	uint64_t job_id;
	uint32_t rec;
};

static int settle_ref_cmp(const void *a, const void *b)
{
	const struct settle_ref *x = a, *y = b;
	if (x->job_id != y->job_id)
		return x->job_id < y->job_id ? -1 : 1;
	return x->rec < y->rec ? -1 : x->rec > y->rec;
}

/* Drops from recs (with jobs and at alongside) every record of a job an
 * earlier one already settles: a job named twice in one request is
 * settled once, the later item is stale. Returns the new count; 0 with
 * nothing dropped when out of memory (*oom). */
static uint32_t settle_drop_repeats(struct proto_record *recs, struct job **jobs, uint32_t *at,
                                    int32_t *codes, uint32_t n, bool *oom)
{
	*oom = false;
	if (n < 2)
		return n;
	struct settle_ref *refs = jm_calloc(n, sizeof *refs);
	bool *repeat = jm_calloc(n, sizeof *repeat);
	if (refs == NULL || repeat == NULL) {
		free(refs);
		free(repeat);
		*oom = true;
		return 0;
	}
	for (uint32_t i = 0; i < n; i++)
		refs[i] = (struct settle_ref){recs[i].u.settle.job_id, i};
	qsort(refs, n, sizeof *refs, settle_ref_cmp);
	for (uint32_t i = 1; i < n; i++)
		if (refs[i].job_id == refs[i - 1].job_id)
			repeat[refs[i].rec] = true;
	uint32_t kept = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (repeat[i]) {
			codes[at[i]] = JM_ESTALE;
			continue;
		}
		recs[kept] = recs[i];
		jobs[kept] = jobs[i];
		at[kept++] = at[i];
	}
	free(refs);
	free(repeat);
	return kept;
}

void handle_settle(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_settle *settle = &req->msg.u.settle;
	struct worker *w;
	struct jm_err err = {0};
	char why[400];
	int rc = worker_seen(core, settle->worker_id, settle->instance, req->pipe_id, false, out,
	                     &w, why, sizeof why);
	if (rc == JM_ESTATE) {
		/* Not the process that holds this id's leases: every item is
		 * stale, and nothing changed. */
		jm_info("settle of %" PRIu32 " job(s) refused as stale: %s", settle->items_count,
		        why);
		int32_t *codes = calloc(settle->items_count, sizeof *codes);
		if (codes == NULL) {
			core_reply_errorf(core, req, out, JM_ENOMEM,
			                  "settle: broker out of memory");
			return;
		}
		for (uint32_t i = 0; i < settle->items_count; i++)
			codes[i] = JM_ESTALE;
		reply_settled(core, req, codes, settle->items_count, out);
		free(codes);
		return;
	}
	if (rc == 0 && !journal_is_writable(core->journal, &err)) {
		rc = err.code;
		snprintf(why, sizeof why, "%s", jm_err_text(&err));
	}
	if (rc != 0) {
		core_reply_errorf(core, req, out, rc, "settle: %s", why);
		return;
	}
	/* Every item the lease holds for is settled, all or none
	 * (core_commit_many); the others are refused one by one. */
	uint32_t count = settle->items_count;
	int32_t *codes = jm_calloc(count ? count : 1, sizeof *codes);
	struct proto_record *recs = jm_calloc(count ? count : 1, sizeof *recs);
	struct job **jobs = jm_calloc(count ? count : 1, sizeof *jobs);
	uint32_t *at = jm_calloc(count ? count : 1, sizeof *at);
	uint32_t n = 0;
	bool oom = codes == NULL || recs == NULL || jobs == NULL || at == NULL;
	for (uint32_t i = 0; !oom && i < count; i++) {
		const struct proto_settle_item *item = &settle->items[i];
		struct job *job;
		codes[i] = lease_holds(core, "settle", w, settle->instance, item->job_id,
		                       item->lease, &job);
		if (codes[i] != 0)
			continue;
		settle_record(core, job, item, &recs[n]);
		jobs[n] = job;
		at[n++] = i;
	}
	if (!oom)
		n = settle_drop_repeats(recs, jobs, at, codes, n, &oom);
	if (!oom && n > 0 && core_commit_many(core, recs, n, &err) != 0) {
		jm_warn("settle of %u job(s) failed: %s", n, jm_err_text(&err));
		for (uint32_t k = 0; k < n; k++)
			codes[at[k]] = err.code ? err.code : JM_EIO;
		n = 0;
	}
	for (uint32_t k = 0; !oom && k < n; k++)
		if (state_job_is_finished(jobs[k]))
			core_release_waiters(core, jobs[k], out);
	if (oom)
		core_reply_errorf(core, req, out, JM_ENOMEM, "settle: broker out of memory");
	else
		reply_settled(core, req, codes, count, out);
	free(codes);
	free(recs);
	free(jobs);
	free(at);
	core_pump(core, out); /* a queue under max_active may have room now */
}

static bool heartbeat_lists(const struct proto_heartbeat *hb, const struct job *job)
{
	for (uint32_t i = 0; i < hb->leases_count; i++)
		if (hb->leases[i].job_id == job->id &&
		    hb->leases[i].lease == job->more->lease_token)
			return true;
	return false;
}

static void answer_parked_fetches_of(struct core *core, struct worker *w, struct outbox *out)
{
	struct parked_fetch *pf = dispatch_first(&core->dispatch);
	while (pf && w->parked_fetches > 0) {
		struct parked_fetch *next = dispatch_next(pf);
		if (pf->worker == w)
			core_unpark_fetch(core, pf, out, true);
		pf = next;
	}
}

void handle_heartbeat(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_heartbeat *hb = &req->msg.u.heartbeat;
	struct worker *w;
	char why[400];
	int rc = worker_seen(core, hb->worker_id, hb->instance, req->pipe_id, true, out, &w, why,
	                     sizeof why);
	if (rc != 0) {
		if (rc == JM_ESTATE)
			jm_warn("heartbeat refused: %s", why);
		core_reply_errorf(core, req, out, rc, "heartbeat: %s", why);
		return;
	}
	w->heartbeats++;
	size_t host_len = hb->host.len < PROTO_HOST_MAX ? hb->host.len : PROTO_HOST_MAX;
	memcpy(w->host, hb->host.ptr ? (const char *)hb->host.ptr : "", host_len);
	w->host[host_len] = '\0';
	w->pid = hb->pid;
	w->concurrency = hb->concurrency;
	w->queues_count = hb->queues_count < PROTO_QUEUES_PER_FETCH_MAX
	                      ? hb->queues_count
	                      : PROTO_QUEUES_PER_FETCH_MAX;
	if (w->queues_count > 0) /* an empty list decodes as NULL */
		memcpy(w->queues, hb->queues, w->queues_count * sizeof w->queues[0]);
	if (hb->draining && !w->draining)
		jm_info("worker %s is draining", w->id);
	w->draining = hb->draining;
	if (w->draining)
		answer_parked_fetches_of(core, w, out);

	/* A lease this process reported before and reports no more was dropped
	 * without a settle reaching us (a process that restarted under the same
	 * id was handled by worker_seen): that counts as an attempt. One
	 * granted a while ago and never reported never reached it: hand it
	 * back without counting. */
	struct job *job = TAILQ_FIRST(&w->held);
	while (job) {
		struct job *next = TAILQ_NEXT(job, more->holder_link);
		struct jm_err err = {0};
		int settled = 0;
		if (heartbeat_lists(hb, job)) {
			job->more->lease_reported = true;
		} else if (job->more->lease_reported) {
			char error[160];
			int len = snprintf(error, sizeof error,
			                   "worker %s dropped the job without settling it", w->id);
			jm_warn("job %llu: %s", (unsigned long long)job->id, error);
			settled =
			    core_settle_failure(core, job, error, (size_t)len, false, out, &err);
		} else if (w->heartbeats >=
		           job->more->holder_heartbeat_mark + WORKER_UNREPORTED_BEATS) {
			jm_warn("job %llu: lease %llu never reached worker %s: requeued",
			        (unsigned long long)job->id, (unsigned long long)job->lease, w->id);
			settled = settle_released(core, job, &err);
		}
		if (settled != 0)
			jm_warn("job %llu: requeue failed: %s", (unsigned long long)job->id,
			        jm_err_text(&err));
		job = next;
	}

	/* Leases the worker reports but no longer holds must be abandoned. */
	struct proto_lease_ref *abandon =
	    calloc(hb->leases_count ? hb->leases_count : 1, sizeof *abandon);
	if (abandon == NULL) {
		core_reply_errorf(core, req, out, JM_ENOMEM, "heartbeat: broker out of memory");
		return;
	}
	uint32_t abandon_count = 0;
	for (uint32_t i = 0; i < hb->leases_count; i++) {
		struct job *held = jobtable_find(&core->state.jobs, hb->leases[i].job_id);
		if (held == NULL || job_holder(held) != w ||
		    held->more->lease_token != hb->leases[i].lease)
			abandon[abandon_count++] = hb->leases[i];
	}
	struct proto_msg msg = {.type = PROTO_HEARTBEAT_REPLY};
	msg.u.heartbeat_reply.abandon_count = abandon_count;
	msg.u.heartbeat_reply.abandon = abandon;
	core_reply(core, req, &msg, out);
	free(abandon);
	core_pump(core, out);
}

/* Requeues every lease w holds as a failed attempt with error. false when
 * the journal refused one (the rest stay held). */
static bool worker_leases_lost(struct core *core, struct worker *w, const char *error,
                               size_t error_len, struct outbox *out)
{
	struct job *job;
	while ((job = TAILQ_FIRST(&w->held)) != NULL) {
		struct jm_err err = {0};
		if (core_settle_failure(core, job, error, error_len, false, out, &err) != 0) {
			jm_warn("worker %s: requeue of job %llu failed: %s", w->id,
			        (unsigned long long)job->id, jm_err_text(&err));
			return false;
		}
	}
	return true;
}

void core_worker_lost(struct core *core, struct worker *w, struct outbox *out)
{
	uint64_t silent_ms = (jm_mono_us() - w->last_seen_mono_us) / 1000;
	jm_warn("worker %s lost: no sign of life for %llu ms; requeueing its %u job(s)", w->id,
	        (unsigned long long)silent_ms, w->held_count);
	char error[256];
	int len = snprintf(error, sizeof error, "worker %s lost: no sign of life for %llu ms",
	                   w->id, (unsigned long long)silent_ms);
	if (!worker_leases_lost(core, w, error, (size_t)len, out)) {
		/* The journal refuses: try again after another window. */
		deadline_heap_set(&core->state.deadlines, &w->lost_timer,
		                  jm_mono_us() + core->state.config.dead_after_ms * 1000);
		return;
	}
	answer_parked_fetches_of(core, w, out);
	core_publish_worker(core, w, PROTO_EVENT_WORKER_LOST, error);
	worker_remove(&core->state.workers, w);
}

/* A new process took over w's id (a supervisor restarted a crashed worker
 * under the same name): the old one is gone, and its leases with it. They
 * count as an attempt exactly as a lost worker's do, or a job that kills
 * its worker would run forever. Fetches the old process left parked are
 * answered (to nobody) so no delivery goes to a dead pipe in w's name. */
static void worker_restarted(struct core *core, struct worker *w, uint64_t instance,
                             struct outbox *out)
{
	char error[256];
	int len = snprintf(error, sizeof error,
	                   "worker %s lost: it restarted (process %016llx replaced by %016llx)",
	                   w->id, (unsigned long long)w->instance, (unsigned long long)instance);
	jm_warn("%s; requeueing its %u job(s)", error, w->held_count);
	worker_leases_lost(core, w, error, (size_t)len, out);
	answer_parked_fetches_of(core, w, out);
	core_publish_worker(core, w, PROTO_EVENT_WORKER_LOST, error);
	w->announced = false; /* the new process gets its joined event */
	/* Draining is what the old process said of itself: the new one
	 * fetches until it says so (its fetches would otherwise be answered
	 * "no jobs" until its first heartbeat, and it would back off). */
	w->draining = false;
}

void handle_progress(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_progress *p = &req->msg.u.progress;
	struct worker *w;
	char why[400];
	int32_t code = worker_seen(core, p->worker_id, p->instance, req->pipe_id, false, out, &w,
	                           why, sizeof why);
	struct job *job = NULL;
	if (code == JM_ESTATE) {
		jm_info("progress of job %llu refused as stale: %s", (unsigned long long)p->job_id,
		        why);
		code = JM_ESTALE;
	} else if (code == 0) {
		code = lease_holds(core, "progress", w, p->instance, p->job_id, p->lease, &job);
	}
	if (code == 0) {
		/* Progress is memory only: without memory for it, it is lost. */
		struct job_more *more = state_job_more(job);
		if (more) {
			more->progress_done = p->done;
			more->progress_total = p->total;
			free(more->progress_message);
			more->progress_message = NULL;
		}
		if (more && p->message.len) {
			more->progress_message = malloc(p->message.len + 1);
			if (more->progress_message) {
				memcpy(more->progress_message, p->message.ptr, p->message.len);
				more->progress_message[p->message.len] = '\0';
			}
		}
		if (core->events) {
			struct proto_event ev = {.kind = PROTO_EVENT_JOB_PROGRESS,
			                         .at_us = jm_wall_us()};
			ev.job_id = job->id;
			ev.batch_id = job_batch_id(job);
			memcpy(ev.queue, job->queue->name, sizeof ev.queue);
			memcpy(ev.type, job->attrs.type, sizeof ev.type);
			ev.state = job->state;
			ev.attempt = job->attempt;
			ev.done = p->done;
			ev.total = p->total;
			ev.message = p->message;
			memcpy(ev.worker_id, w->id, sizeof ev.worker_id);
			events_push_job(core->events, &ev, 0);
		}
		if (job->batch) {
			if (p->message.len)
				batch_set_operation(job->batch, (const char *)p->message.ptr,
				                    p->message.len);
			core_batch_touched(core, job->batch);
		}
	}
	reply_settled(core, req, &code, 1, out);
}
