/* The broker core (see core.h).
 *
 * Locking: one mutex, core->lock, guards the state, the parked requests and
 * the deadline heap. Every entry point takes it, does its work without
 * blocking (journal_append only copies), collects finished requests in an
 * outbox, drops the lock, and only then releases the outbox to the journal
 * (journal_when_durable), whose callback sends. So no callback into nng or
 * the journal ever runs under the core lock. */
#include "core.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "core_query.h"
#include "dispatch.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "record.h"

struct waiter {
	struct request *req;
	struct job *job;
	struct deadline timer; /* DEADLINE_WAIT */
	TAILQ_ENTRY(waiter) link;
};

struct core {
	pthread_mutex_t lock;
	pthread_cond_t timer_wake;
	pthread_t timer_thread;
	bool timer_running;
	bool stopping;

	struct core_config config;
	struct state state;
	struct dispatch dispatch;
	struct journal *journal;
	struct jm_buf scratch; /* record encoding */
	uint64_t last_lsn;     /* last record appended */
	uint64_t random_state;
	struct deadline retention_timer;
	struct events *events; /* NULL until attached (and during replay) */

	/* Compaction runs on its own thread; the timer thread asks for it. */
	pthread_t compactor_thread;
	bool compactor_running;
	bool compaction_wanted;
	bool compacting;
	pthread_cond_t compactor_wake;

	/* Outboxes being released after the lock was dropped: core_stop waits
	 * for them, so none reaches the journal after it closes. */
	uint32_t flushes_running;
	pthread_cond_t flushes_done;
};

#define BROKER_VERSION "0.1.0"
#define COMPACT_CHUNK_JOBS 1000

#define RETENTION_SWEEP_MS 1000

/* ---- outbox ------------------------------------------------------------ */

static void outbox_init(struct outbox *out)
{
	out->head = NULL;
	out->tail = &out->head;
}

static void outbox_push(struct outbox *out, struct request *req)
{
	req->outbox_next = NULL;
	*out->tail = req;
	out->tail = &req->outbox_next;
}

static void request_durable_cb(void *arg, int status)
{
	struct request *req = arg;
	req->on_reply(req, status);
}

/* Releases each reply to the journal; call without the core lock. */
static void outbox_flush(struct core *core, struct outbox *out)
{
	struct request *req = out->head;
	while (req) {
		struct request *next = req->outbox_next;
		if (req->reply_lsn == 0)
			req->on_reply(req, 0); /* depends on nothing unwritten */
		else
			journal_when_durable(core->journal, req->reply_lsn, request_durable_cb,
			                     req);
		req = next;
	}
	outbox_init(out);
}

/* Drops the core lock and releases out, counted so that core_stop can wait
 * for every release to finish. */
static void unlock_and_flush(struct core *core, struct outbox *out)
{
	if (out->head == NULL) {
		pthread_mutex_unlock(&core->lock);
		return;
	}
	core->flushes_running++;
	pthread_mutex_unlock(&core->lock);
	outbox_flush(core, out);
	pthread_mutex_lock(&core->lock);
	if (--core->flushes_running == 0)
		pthread_cond_broadcast(&core->flushes_done);
	pthread_mutex_unlock(&core->lock);
}

/* ---- replies ----------------------------------------------------------- */

static void reply_encode(struct core *core, struct request *req, const struct proto_msg *msg,
                         struct outbox *out)
{
	jm_buf_reset(&req->reply);
	int rc = proto_encode(msg, &req->reply);
	if (rc != 0) {
		jm_buf_reset(&req->reply);
		jm_error("encoding a %s reply failed: %s", proto_type_name(msg->type),
		         jm_strerror(rc));
		proto_encode_error(&req->reply, rc, "the broker failed to encode its reply");
	}
	req->reply_lsn = core->last_lsn;
	outbox_push(out, req);
}

static void reply_error(struct core *core, struct request *req, struct outbox *out, int code,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void reply_error(struct core *core, struct request *req, struct outbox *out, int code,
                        const char *fmt, ...)
{
	char text[JM_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	jm_buf_reset(&req->reply);
	proto_encode_error(&req->reply, code, "%s", text);
	req->reply_lsn = 0; /* an error changed nothing */
	outbox_push(out, req);
}

void core_reply_error(struct request *req, int code, const char *text)
{
	jm_buf_reset(&req->reply);
	proto_encode_error(&req->reply, code, "%s", text);
	req->reply_lsn = 0;
	req->on_reply(req, 0);
}

void fill_job_info(const struct job *job, bool with_result, struct proto_job_info *info)
{
	memset(info, 0, sizeof *info);
	info->job_id = job->id;
	memcpy(info->queue, job->queue->name, sizeof info->queue);
	memcpy(info->type, job->type, sizeof info->type);
	info->state = job->state;
	info->priority = job->priority;
	info->attempt = job->attempt;
	info->max_attempts = job->max_attempts;
	info->created_us = job->created_us;
	info->updated_us = job->updated_us;
	info->run_at_us = job->state == PROTO_STATE_DELAYED ? job->run_at_us : 0;
	if (job->last_error)
		info->last_error = (struct proto_bytes){(const uint8_t *)job->last_error,
		                                        (uint32_t)strlen(job->last_error)};
	if (with_result && job->state == PROTO_STATE_COMPLETED) {
		info->has_result = true;
		info->result = (struct proto_bytes){job->result, job->result_len};
	}
	info->batch_id = job->batch_id;
	info->progress_done = job->progress_done;
	info->progress_total = job->progress_total;
	if (job->progress_message)
		info->progress_message =
		    (struct proto_bytes){(const uint8_t *)job->progress_message,
		                         (uint32_t)strlen(job->progress_message)};
}

static void reply_job(struct core *core, struct request *req, const struct job *job,
                      bool with_result, struct outbox *out)
{
	struct proto_msg msg = {.type = PROTO_JOB};
	fill_job_info(job, with_result, &msg.u.job);
	reply_encode(core, req, &msg, out);
	/* Wait for this job's latest change only: while the journal refuses
	 * writes, reads of everything already durable still answer. */
	req->reply_lsn = job->last_lsn;
}

/* A reply about many things at once (counters, lists) is an in-memory
 * view and waits for nothing: it may include a change whose record is
 * still being synced, never one that was refused. */
static void reply_view(struct core *core, struct request *req, const struct proto_msg *msg,
                       struct outbox *out)
{
	reply_encode(core, req, msg, out);
	req->reply_lsn = 0;
}

/* ---- events --------------------------------------------------------------- */

/* Publishes ev under each topic of a job: job/<id>, queue/<name> and, in a
 * batch, batch/<id>. */
static void publish_for_job(struct core *core, const struct job *job, const struct proto_event *ev,
                            uint64_t lsn)
{
	char topic[PROTO_NAME_MAX + 32];
	snprintf(topic, sizeof topic, "job/%llu", (unsigned long long)job->id);
	events_push(core->events, topic, ev, lsn);
	snprintf(topic, sizeof topic, "queue/%s", job->queue->name);
	events_push(core->events, topic, ev, lsn);
	if (job->batch_id) {
		snprintf(topic, sizeof topic, "batch/%llu", (unsigned long long)job->batch_id);
		events_push(core->events, topic, ev, lsn);
	}
}

static void publish_batch(struct core *core, struct batch *b)
{
	struct proto_event ev = {.kind = PROTO_EVENT_BATCH, .at_us = jm_wall_us()};
	ev.batch_id = b->id;
	ev.state = batch_state(b);
	ev.done = b->completed;
	ev.failed = b->failed + b->cancelled;
	ev.total = b->total;
	if (b->current_operation)
		ev.message = (struct proto_bytes){(const uint8_t *)b->current_operation,
		                                  (uint32_t)strlen(b->current_operation)};
	char topic[48];
	snprintf(topic, sizeof topic, "batch/%llu", (unsigned long long)b->id);
	events_push(core->events, topic, &ev, core->last_lsn);
	b->last_event_us = ev.at_us;
	b->event_due = false;
	deadline_heap_remove(&core->state.deadlines, &b->event_timer);
}

/* A batch changed. Its event is coalesced to one per
 * BATCH_EVENT_INTERVAL_MS, but a finished batch's goes out at once. */
static void batch_touched(struct core *core, struct batch *b)
{
	if (core->events == NULL)
		return;
	uint64_t now = jm_wall_us();
	uint64_t next_us = b->last_event_us + BATCH_EVENT_INTERVAL_MS * 1000;
	if (batch_is_finished(b) || now >= next_us) {
		publish_batch(core, b);
	} else if (!b->event_due) {
		b->event_due = true;
		deadline_heap_set(&core->state.deadlines, &b->event_timer, next_us);
	}
}

static void publish_job_state(struct core *core, const struct job *job)
{
	if (core->events == NULL)
		return;
	struct proto_event ev = {.kind = PROTO_EVENT_JOB_STATE, .at_us = job->updated_us};
	ev.job_id = job->id;
	ev.batch_id = job->batch_id;
	memcpy(ev.queue, job->queue->name, sizeof ev.queue);
	memcpy(ev.type, job->type, sizeof ev.type);
	ev.state = job->state;
	ev.attempt = job->attempt;
	if (job->holder)
		memcpy(ev.worker_id, job->holder->id, sizeof ev.worker_id);
	if (job->last_error &&
	    (job->state == PROTO_STATE_FAILED || job->state == PROTO_STATE_DELAYED))
		ev.message = (struct proto_bytes){(const uint8_t *)job->last_error,
		                                  (uint32_t)strlen(job->last_error)};
	publish_for_job(core, job, &ev, core->last_lsn);
}

static void publish_worker(struct core *core, const struct worker *w, uint32_t kind,
                           const char *why)
{
	if (core->events == NULL)
		return;
	struct proto_event ev = {.kind = kind, .at_us = jm_wall_us()};
	memcpy(ev.worker_id, w->id, sizeof ev.worker_id);
	if (why)
		ev.message = (struct proto_bytes){(const uint8_t *)why, (uint32_t)strlen(why)};
	char topic[PROTO_NAME_MAX + 16];
	snprintf(topic, sizeof topic, "worker/%s", w->id);
	events_push(core->events, topic, &ev, core->last_lsn);
}

static void worker_restarted(struct core *core, struct worker *w, uint64_t instance,
                             struct outbox *out);

/* A request from worker id: a sign of life, and its joined event the first
 * time. instance is the process behind the id (0: the request does not
 * say); a new one means the previous process is gone with its leases. */
static int worker_seen(struct core *core, const char *id, uint64_t instance, struct outbox *out,
                       struct worker **wp)
{
	int rc = state_worker_seen(&core->state, id, jm_wall_us(), wp);
	if (rc != 0)
		return rc;
	struct worker *w = *wp;
	if (instance != 0 && w->instance != instance) {
		if (w->instance != 0)
			worker_restarted(core, w, instance, out);
		w->instance = instance;
	}
	if (!w->announced) {
		w->announced = true;
		publish_worker(core, w, PROTO_EVENT_WORKER_JOINED, NULL);
	}
	return 0;
}

/* ---- committing changes ------------------------------------------------ */

/* The job a record changes, or 0. */
static uint64_t record_job_id(const struct proto_record *rec)
{
	switch (rec->type) {
	case PROTO_REC_JOB:
		return rec->u.job.job_id;
	case PROTO_REC_LEASE:
		return rec->u.lease.job_id;
	case PROTO_REC_SETTLE:
		return rec->u.settle.job_id;
	case PROTO_REC_CANCEL:
		return rec->u.cancel.job_id;
	case PROTO_REC_DROP:
		return rec->u.drop.job_id;
	case PROTO_REC_REVIVE:
		return rec->u.revive.job_id;
	default:
		return 0;
	}
}

/* Appends rec to the journal and applies it. The one way state changes. */
static int commit(struct core *core, const struct proto_record *rec, struct jm_err *err)
{
	jm_buf_reset(&core->scratch);
	int rc = proto_record_encode(rec, &core->scratch);
	if (rc != 0)
		return jm_err_set(err, rc, "encoding a %s record failed",
		                  proto_record_type_name(rec->type));
	uint64_t lsn;
	rc = journal_append(core->journal, core->scratch.data, core->scratch.len, &lsn, err);
	if (rc != 0)
		return rc;
	core->last_lsn = lsn;
	const struct job *prior = jobtable_find(&core->state.jobs, record_job_id(rec));
	uint64_t prior_since_us = prior ? prior->updated_us : 0;
	rc = state_apply(&core->state, rec, jm_wall_us(), err);
	if (rc != 0) {
		jm_error("applying a %s record after journaling it failed: %s",
		         proto_record_type_name(rec->type), jm_err_text(err));
		return rc;
	}
	metrics_committed(rec, prior_since_us);
	uint64_t job_id = record_job_id(rec);
	if (job_id && rec->type != PROTO_REC_DROP) {
		struct job *job = jobtable_find(&core->state.jobs, job_id);
		if (job) {
			job->last_lsn = lsn;
			publish_job_state(core, job);
			if (job->batch)
				batch_touched(core, job->batch);
		}
	}
	return 0;
}

static uint64_t next_random(struct core *core)
{
	/* xorshift64*: jitter needs spread, not secrecy. */
	uint64_t x = core->random_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	core->random_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Answers every waiter of a job that has just finished. */
static void release_waiters(struct core *core, struct job *job, struct outbox *out)
{
	struct waiter *w;
	while ((w = TAILQ_FIRST(&job->waiters)) != NULL) {
		TAILQ_REMOVE(&job->waiters, w, link);
		deadline_heap_remove(&core->state.deadlines, &w->timer);
		reply_job(core, w->req, job, true, out);
		free(w);
	}
}

/* Ends the current attempt of an active job that did not complete: retry
 * with backoff while attempts remain (unless permanent), else dead-letter. */
static int settle_failure(struct core *core, struct job *job, const char *error, size_t error_len,
                          bool permanent, struct outbox *out, struct jm_err *err)
{
	uint64_t now = jm_wall_us();
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_SETTLE};
	struct proto_rec_settle *s = &rec.u.settle;
	s->job_id = job->id;
	s->lease = job->lease;
	s->at_us = now;
	if (error_len > PROTO_ERROR_TEXT_MAX)
		error_len = PROTO_ERROR_TEXT_MAX;
	s->data = (struct proto_bytes){(const uint8_t *)error, (uint32_t)error_len};
	if (permanent || job->attempt >= job->max_attempts) {
		s->outcome = PROTO_OUTCOME_DEAD;
	} else {
		s->outcome = PROTO_OUTCOME_RETRY;
		uint64_t delay_ms =
		    backoff_delay_ms(&job->queue->policy.backoff, job->attempt, next_random(core));
		s->run_at_us = now + delay_ms * 1000;
	}
	int rc = commit(core, &rec, err);
	if (rc == 0 && state_job_is_finished(job))
		release_waiters(core, job, out);
	return rc;
}

static int settle_released(struct core *core, struct job *job, struct jm_err *err)
{
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_SETTLE};
	rec.u.settle.job_id = job->id;
	rec.u.settle.lease = job->lease;
	rec.u.settle.outcome = PROTO_OUTCOME_RELEASED;
	rec.u.settle.at_us = jm_wall_us();
	return commit(core, &rec, err);
}

/* Leases job to worker w: one LEASE record. */
static int lease_job(struct core *core, struct job *job, struct worker *w, struct jm_err *err)
{
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_LEASE};
	rec.u.lease.job_id = job->id;
	/* The first lease of a job in this boot starts at boot_epoch << 32:
	 * one a crash made us forget can never be granted again. */
	uint64_t boot_floor = core->state.boot_epoch << 32;
	rec.u.lease.lease = job->lease + 1 > boot_floor ? job->lease + 1 : boot_floor;
	rec.u.lease.attempt = job->attempt + 1;
	memcpy(rec.u.lease.worker_id, w->id, sizeof rec.u.lease.worker_id);
	rec.u.lease.at_us = jm_wall_us();
	return commit(core, &rec, err);
}

/* ---- fetch and dispatch -------------------------------------------------- */

/* Takes up to max_jobs ready jobs from queues (in the order given), leases
 * them to w and encodes the JOBS reply. Returns how many were leased. */
static uint32_t take_jobs(struct core *core, struct request *req, struct worker *w,
                          const struct proto_fetch *fetch, struct outbox *out, bool reply_if_none)
{
	uint32_t max_jobs = fetch->max_jobs;
	struct proto_delivery *deliveries = NULL;
	uint32_t taken = 0;
	if (core->state.ready_jobs > 0) {
		deliveries = calloc(max_jobs, sizeof *deliveries);
		if (deliveries == NULL) {
			reply_error(core, req, out, JM_ENOMEM, "fetch: broker out of memory");
			return 0;
		}
	}
	bool journal_refuses = false;
	for (uint32_t qi = 0;
	     deliveries && qi < fetch->queues_count && taken < max_jobs && !journal_refuses; qi++) {
		struct queue *q = queue_find(&core->state.queues, fetch->queues[qi]);
		struct job *job;
		while (q && taken < max_jobs && queue_has_capacity(q) &&
		       (job = queue_ready_peek(q)) != NULL) {
			struct jm_err err = {0};
			if (lease_job(core, job, w, &err) != 0) {
				jm_warn("fetch: leasing job %llu failed: %s",
				        (unsigned long long)job->id, jm_err_text(&err));
				journal_refuses = true;
				break;
			}
			if (job->batch)
				batch_set_operation(job->batch, job->type, strlen(job->type));
			struct proto_delivery *d = &deliveries[taken++];
			d->job_id = job->id;
			d->lease = job->lease;
			d->attempt = job->attempt;
			memcpy(d->queue, q->name, sizeof d->queue);
			memcpy(d->type, job->type, sizeof d->type);
			d->payload = (struct proto_bytes){job->payload, job->payload_len};
			d->timeout_ms = job->timeout_ms;
		}
	}
	if (taken > 0 || reply_if_none) {
		struct proto_msg msg = {.type = PROTO_JOBS};
		msg.u.jobs.jobs_count = taken;
		msg.u.jobs.jobs = deliveries;
		reply_encode(core, req, &msg, out);
		/* A delivery does not wait for its LEASE record to be synced:
		 * if a crash loses the record, the job is pending again after
		 * replay and runs again, which at-least-once allows. The
		 * worker's ACK is appended after the LEASE, so the ACK's
		 * durable reply covers both. This saves one sync per job. */
		req->reply_lsn = 0;
	}
	free(deliveries);
	return taken;
}

static void reply_no_jobs(struct core *core, struct request *req, struct outbox *out)
{
	struct proto_msg msg = {.type = PROTO_JOBS};
	reply_encode(core, req, &msg, out);
}

static void unpark_fetch(struct core *core, struct parked_fetch *pf, struct outbox *out,
                         bool answer_empty)
{
	dispatch_remove(&core->dispatch, pf);
	deadline_heap_remove(&core->state.deadlines, &pf->timer);
	pf->worker->parked_fetches--;
	if (answer_empty)
		reply_no_jobs(core, pf->req, out);
	free(pf);
}

/* Hands ready jobs to parked fetches, oldest fetch first. */
static void pump(struct core *core, struct outbox *out)
{
	struct parked_fetch *pf = dispatch_first(&core->dispatch);
	while (pf && core->state.ready_jobs > 0) {
		struct parked_fetch *next = dispatch_next(pf);
		if (take_jobs(core, pf->req, pf->worker, &pf->req->msg.u.fetch, out, false) > 0)
			unpark_fetch(core, pf, out, false);
		pf = next;
	}
}

static void handle_fetch(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_fetch *fetch = &req->msg.u.fetch;
	struct worker *w;
	uint64_t now = jm_wall_us();
	int rc = worker_seen(core, fetch->worker_id, fetch->instance, out, &w);
	if (rc != 0) {
		reply_error(core, req, out, rc, "fetch: worker %s: %s", fetch->worker_id,
		            rc == JM_ELIMIT ? "too many workers" : jm_strerror(rc));
		return;
	}
	/* One parked fetch per (worker, slot): a newer request from the same
	 * slot means the older one was given up on (or resent by NNG). */
	struct parked_fetch *old = dispatch_find_slot(&core->dispatch, w, fetch->slot);
	if (old)
		unpark_fetch(core, old, out, true);
	if (w->draining) {
		reply_no_jobs(core, req, out);
		return;
	}
	struct jm_err err = {0};
	if (!journal_is_writable(core->journal, &err)) {
		reply_error(core, req, out, JM_ENOSPC, "fetch: %s", jm_err_text(&err));
		return;
	}
	if (take_jobs(core, req, w, fetch, out, fetch->wait_ms == 0) > 0 || fetch->wait_ms == 0)
		return;
	struct parked_fetch *pf = calloc(1, sizeof *pf);
	if (pf == NULL) {
		reply_error(core, req, out, JM_ENOMEM, "fetch: broker out of memory");
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
		free(pf);
		reply_error(core, req, out, JM_ENOMEM, "fetch: broker out of memory");
		return;
	}
	dispatch_add(&core->dispatch, pf);
	w->parked_fetches++;
}

/* ---- submit, ack, fail --------------------------------------------------- */

static void handle_submit(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_submit *submit = &req->msg.u.submit;
	struct jm_err err = {0};
	if (!journal_is_writable(core->journal, &err)) {
		reply_error(core, req, out, JM_ENOSPC, "submit: %s", jm_err_text(&err));
		return;
	}
	/* Resolve every queue first, so a submit is admitted whole or not. */
	for (uint32_t i = 0; i < submit->jobs_count; i++) {
		struct queue *q;
		int rc = queue_get(&core->state.queues, submit->jobs[i].queue, &q);
		if (rc != 0) {
			reply_error(core, req, out, rc,
			            "submit: job %u: queue %s cannot be created: %s (at most %u "
			            "queues)",
			            i, submit->jobs[i].queue, jm_strerror(rc),
			            core->state.queues.max_queues);
			return;
		}
	}
	uint64_t *ids = malloc(submit->jobs_count * sizeof *ids);
	if (ids == NULL) {
		reply_error(core, req, out, JM_ENOMEM, "submit: broker out of memory");
		return;
	}
	/* Batches share the job id counter: an id names one or the other. */
	uint64_t batch_id = submit->as_batch ? core->state.next_job_id++ : 0;
	uint64_t now = jm_wall_us();
	for (uint32_t i = 0; i < submit->jobs_count; i++) {
		const struct proto_job_spec *spec = &submit->jobs[i];
		const struct queue_policy *policy =
		    &queue_find(&core->state.queues, spec->queue)->policy;
		struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_JOB};
		struct proto_rec_job *r = &rec.u.job;
		r->job_id = core->state.next_job_id;
		r->batch_id = batch_id;
		memcpy(r->queue, spec->queue, sizeof r->queue);
		memcpy(r->type, spec->type, sizeof r->type);
		r->payload = spec->payload;
		r->priority = spec->priority;
		r->max_attempts = spec->max_attempts ? spec->max_attempts : policy->max_attempts;
		r->timeout_ms = spec->timeout_ms ? spec->timeout_ms : policy->timeout_ms;
		r->state = spec->delay_ms ? PROTO_STATE_DELAYED : PROTO_STATE_PENDING;
		r->created_us = now;
		r->updated_us = now;
		r->run_at_us = spec->delay_ms ? now + spec->delay_ms * 1000 : 0;
		int rc = commit(core, &rec, &err);
		if (rc != 0) {
			/* Only a journal that started failing mid-request gets
			 * here; what was appended stays and will be written. */
			free(ids);
			reply_error(core, req, out, rc, "submit: job %u of %u: %s", i,
			            submit->jobs_count, jm_err_text(&err));
			return;
		}
		ids[i] = r->job_id;
	}
	struct proto_msg msg = {.type = PROTO_SUBMITTED};
	msg.u.submitted.batch_id = batch_id;
	msg.u.submitted.ids_count = submit->jobs_count;
	msg.u.submitted.ids = ids;
	reply_encode(core, req, &msg, out);
	free(ids);
	pump(core, out);
}

/* The job a worker names by (job_id, lease), or a code saying why not. */
static int find_lease(struct core *core, uint64_t job_id, uint64_t lease, struct job **out)
{
	struct job *job = jobtable_find(&core->state.jobs, job_id);
	if (job == NULL)
		return JM_ENOTFOUND;
	if (job->state != PROTO_STATE_ACTIVE || job->lease != lease)
		return JM_ESTALE;
	*out = job;
	return 0;
}

static void reply_settled(struct core *core, struct request *req, int32_t *codes, uint32_t count,
                          struct outbox *out)
{
	struct proto_msg msg = {.type = PROTO_SETTLED};
	msg.u.settled.codes_count = count;
	msg.u.settled.codes = codes;
	reply_encode(core, req, &msg, out);
}

/* The common start of ACK and FAIL: a sign of life from the worker, a
 * journal that takes writes, and an array for one code per item. Returns
 * NULL after replying with the error. */
static int32_t *settle_begin(struct core *core, struct request *req, const char *what,
                             const char *worker_id, uint32_t items_count, struct outbox *out)
{
	struct worker *w;
	struct jm_err err = {0};
	int rc = worker_seen(core, worker_id, 0, out, &w);
	if (rc == 0 && !journal_is_writable(core->journal, &err))
		rc = JM_ENOSPC;
	if (rc != 0) {
		reply_error(core, req, out, rc, "%s: %s", what,
		            rc == JM_ENOSPC ? jm_err_text(&err) : jm_strerror(rc));
		return NULL;
	}
	int32_t *codes = calloc(items_count, sizeof *codes);
	if (codes == NULL)
		reply_error(core, req, out, JM_ENOMEM, "%s: broker out of memory", what);
	return codes;
}

static void handle_ack(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_ack *ack = &req->msg.u.ack;
	struct jm_err err = {0};
	int32_t *codes = settle_begin(core, req, "ack", ack->worker_id, ack->items_count, out);
	if (codes == NULL)
		return;
	for (uint32_t i = 0; i < ack->items_count; i++) {
		const struct proto_ack_item *item = &ack->items[i];
		struct job *job;
		codes[i] = find_lease(core, item->job_id, item->lease, &job);
		if (codes[i] != 0)
			continue;
		struct proto_record rec = {.version = PROTO_RECORD_VERSION,
		                           .type = PROTO_REC_SETTLE};
		rec.u.settle.job_id = job->id;
		rec.u.settle.lease = job->lease;
		rec.u.settle.outcome = PROTO_OUTCOME_COMPLETED;
		rec.u.settle.at_us = jm_wall_us();
		rec.u.settle.data = item->result;
		codes[i] = commit(core, &rec, &err);
		if (codes[i] == 0)
			release_waiters(core, job, out);
	}
	reply_settled(core, req, codes, ack->items_count, out);
	free(codes);
	pump(core, out); /* a queue under max_active may have room now */
}

static void handle_fail(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_fail *fail = &req->msg.u.fail;
	struct jm_err err = {0};
	int32_t *codes = settle_begin(core, req, "fail", fail->worker_id, fail->items_count, out);
	if (codes == NULL)
		return;
	for (uint32_t i = 0; i < fail->items_count; i++) {
		const struct proto_fail_item *item = &fail->items[i];
		struct job *job;
		codes[i] = find_lease(core, item->job_id, item->lease, &job);
		if (codes[i] != 0)
			continue;
		if (item->released)
			codes[i] = settle_released(core, job, &err);
		else
			codes[i] = settle_failure(core, job, (const char *)item->error.ptr,
			                          item->error.len, item->permanent, out, &err);
	}
	reply_settled(core, req, codes, fail->items_count, out);
	free(codes);
	pump(core, out);
}

/* ---- reads and waits ------------------------------------------------------ */

static void reply_not_found(struct core *core, struct request *req, const char *what,
                            uint64_t job_id, struct outbox *out)
{
	reply_error(core, req, out, JM_ENOTFOUND,
	            "%s: job %llu not found: no such id, or its retention ran out", what,
	            (unsigned long long)job_id);
}

static void handle_status(struct core *core, struct request *req, bool with_result,
                          struct outbox *out)
{
	uint64_t job_id = req->msg.u.job_ref.job_id;
	struct job *job = jobtable_find(&core->state.jobs, job_id);
	if (job == NULL)
		reply_not_found(core, req, with_result ? "result" : "status", job_id, out);
	else
		reply_job(core, req, job, with_result, out);
}

static void handle_wait(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_wait *wait = &req->msg.u.wait;
	struct job *job = jobtable_find(&core->state.jobs, wait->job_id);
	if (job == NULL) {
		reply_not_found(core, req, "wait", wait->job_id, out);
		return;
	}
	if (state_job_is_finished(job) || wait->timeout_ms == 0) {
		reply_job(core, req, job, true, out);
		return;
	}
	uint32_t timeout_ms = wait->timeout_ms < core->config.wait_max_ms
	                          ? wait->timeout_ms
	                          : core->config.wait_max_ms;
	struct waiter *w = calloc(1, sizeof *w);
	if (w != NULL) {
		deadline_init(&w->timer, DEADLINE_WAIT);
		if (deadline_heap_set(&core->state.deadlines, &w->timer,
		                      jm_wall_us() + (uint64_t)timeout_ms * 1000) != 0) {
			free(w);
			w = NULL;
		}
	}
	if (w == NULL) {
		reply_error(core, req, out, JM_ENOMEM, "wait: broker out of memory");
		return;
	}
	w->req = req;
	w->job = job;
	TAILQ_INSERT_TAIL(&job->waiters, w, link);
}

struct stats_fill {
	struct proto_queue_stats *queues;
	uint32_t count;
};

static void stats_fill_cb(struct queue *q, void *arg)
{
	struct stats_fill *fill = arg;
	struct proto_queue_stats *qs = &fill->queues[fill->count++];
	memcpy(qs->name, q->name, sizeof qs->name);
	qs->pending = q->ready_count;
	qs->delayed = q->delayed;
	qs->active = q->active;
	qs->completed = q->completed;
	qs->failed = q->failed;
	core_query_queue_extras(q, qs);
}

static int compare_queue_stats(const void *a, const void *b)
{
	return strcmp(((const struct proto_queue_stats *)a)->name,
	              ((const struct proto_queue_stats *)b)->name);
}

static void handle_stats(struct core *core, struct request *req, struct outbox *out)
{
	uint32_t count = core->state.queues.queues.count;
	struct stats_fill fill = {calloc(count ? count : 1, sizeof *fill.queues), 0};
	if (fill.queues == NULL) {
		reply_error(core, req, out, JM_ENOMEM, "stats: broker out of memory");
		return;
	}
	queue_each(&core->state.queues, stats_fill_cb, &fill);
	qsort(fill.queues, fill.count, sizeof *fill.queues, compare_queue_stats);
	struct proto_msg msg = {.type = PROTO_STATS_REPLY};
	msg.u.stats_reply.queues_count = fill.count;
	msg.u.stats_reply.queues = fill.queues;
	reply_view(core, req, &msg, out);
	free(fill.queues);
}

/* ---- heartbeats and lost workers ----------------------------------------- */

static bool heartbeat_lists(const struct proto_heartbeat *hb, const struct job *job)
{
	for (uint32_t i = 0; i < hb->leases_count; i++)
		if (hb->leases[i].job_id == job->id && hb->leases[i].lease == job->lease)
			return true;
	return false;
}

static void answer_parked_fetches_of(struct core *core, struct worker *w, struct outbox *out)
{
	struct parked_fetch *pf = dispatch_first(&core->dispatch);
	while (pf && w->parked_fetches > 0) {
		struct parked_fetch *next = dispatch_next(pf);
		if (pf->worker == w)
			unpark_fetch(core, pf, out, true);
		pf = next;
	}
}

static void handle_heartbeat(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_heartbeat *hb = &req->msg.u.heartbeat;
	struct worker *w;
	int rc = worker_seen(core, hb->worker_id, hb->instance, out, &w);
	if (rc != 0) {
		reply_error(core, req, out, rc, "heartbeat: worker %s: %s", hb->worker_id,
		            rc == JM_ELIMIT ? "too many workers" : jm_strerror(rc));
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
		struct job *next = TAILQ_NEXT(job, holder_link);
		struct jm_err err = {0};
		int settled = 0;
		if (heartbeat_lists(hb, job)) {
			job->lease_reported = true;
		} else if (job->lease_reported) {
			char error[160];
			int len = snprintf(error, sizeof error,
			                   "worker %s dropped the job without settling it", w->id);
			jm_warn("job %llu: %s", (unsigned long long)job->id, error);
			settled = settle_failure(core, job, error, (size_t)len, false, out, &err);
		} else if (w->heartbeats >= job->holder_heartbeat_mark + WORKER_UNREPORTED_BEATS) {
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
		reply_error(core, req, out, JM_ENOMEM, "heartbeat: broker out of memory");
		return;
	}
	uint32_t abandon_count = 0;
	for (uint32_t i = 0; i < hb->leases_count; i++) {
		struct job *held = jobtable_find(&core->state.jobs, hb->leases[i].job_id);
		if (held == NULL || held->holder != w || held->lease != hb->leases[i].lease)
			abandon[abandon_count++] = hb->leases[i];
	}
	struct proto_msg msg = {.type = PROTO_HEARTBEAT_REPLY};
	msg.u.heartbeat_reply.abandon_count = abandon_count;
	msg.u.heartbeat_reply.abandon = abandon;
	reply_encode(core, req, &msg, out);
	free(abandon);
	pump(core, out);
}

/* Requeues every lease w holds as a failed attempt with error. false when
 * the journal refused one (the rest stay held). */
static bool worker_leases_lost(struct core *core, struct worker *w, const char *error,
                               size_t error_len, struct outbox *out)
{
	struct job *job;
	while ((job = TAILQ_FIRST(&w->held)) != NULL) {
		struct jm_err err = {0};
		if (settle_failure(core, job, error, error_len, false, out, &err) != 0) {
			jm_warn("worker %s: requeue of job %llu failed: %s", w->id,
			        (unsigned long long)job->id, jm_err_text(&err));
			return false;
		}
	}
	return true;
}

static void worker_lost(struct core *core, struct worker *w, struct outbox *out)
{
	uint64_t silent_ms = (jm_wall_us() - w->last_seen_us) / 1000;
	jm_warn("worker %s lost: no sign of life for %llu ms; requeueing its %u job(s)", w->id,
	        (unsigned long long)silent_ms, w->held_count);
	char error[256];
	int len = snprintf(error, sizeof error, "worker %s lost: no sign of life for %llu ms",
	                   w->id, (unsigned long long)silent_ms);
	if (!worker_leases_lost(core, w, error, (size_t)len, out)) {
		/* The journal refuses: try again after another window. */
		deadline_heap_set(&core->state.deadlines, &w->lost_timer,
		                  jm_wall_us() + core->state.config.dead_after_ms * 1000);
		return;
	}
	answer_parked_fetches_of(core, w, out);
	publish_worker(core, w, PROTO_EVENT_WORKER_LOST, error);
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
	publish_worker(core, w, PROTO_EVENT_WORKER_LOST, error);
	w->announced = false; /* the new process gets its joined event */
}

/* ---- the timer ----------------------------------------------------------- */

static void retention_sweep(struct core *core, struct outbox *out);

static void deadline_fired(struct core *core, struct deadline *d, struct outbox *out)
{
	deadline_heap_remove(&core->state.deadlines, d);
	switch (d->kind) {
	case DEADLINE_JOB_READY:
		state_job_due(&core->state, container_of(d, struct job, timer));
		break;
	case DEADLINE_LEASE: {
		struct job *job = container_of(d, struct job, timer);
		char error[128];
		int len = snprintf(error, sizeof error, "timed out after %llu ms",
		                   (unsigned long long)job->timeout_ms);
		struct jm_err err = {0};
		if (settle_failure(core, job, error, (size_t)len, false, out, &err) != 0) {
			jm_warn("job %llu: timing out failed: %s", (unsigned long long)job->id,
			        jm_err_text(&err));
			deadline_heap_set(&core->state.deadlines, d, jm_wall_us() + 1000000);
		}
		break;
	}
	case DEADLINE_FETCH:
		unpark_fetch(core, container_of(d, struct parked_fetch, timer), out, true);
		break;
	case DEADLINE_WAIT: {
		struct waiter *w = container_of(d, struct waiter, timer);
		TAILQ_REMOVE(&w->job->waiters, w, link);
		reply_job(core, w->req, w->job, true, out);
		free(w);
		break;
	}
	case DEADLINE_WORKER_LOST:
		worker_lost(core, container_of(d, struct worker, lost_timer), out);
		break;
	case DEADLINE_RETENTION:
		retention_sweep(core, out);
		break;
	case DEADLINE_BATCH_EVENT:
		publish_batch(core, container_of(d, struct batch, event_timer));
		break;
	}
}

static void *timer_main(void *arg)
{
	struct core *core = arg;
	pthread_mutex_lock(&core->lock);
	while (!core->stopping) {
		struct outbox out;
		outbox_init(&out);
		uint64_t now = jm_wall_us();
		struct deadline *d;
		while ((d = deadline_heap_peek(&core->state.deadlines)) != NULL && d->at_us <= now)
			deadline_fired(core, d, &out);
		pump(core, &out);
		if (out.head) {
			unlock_and_flush(core, &out);
			pthread_mutex_lock(&core->lock);
			continue;
		}
		d = deadline_heap_peek(&core->state.deadlines);
		if (d == NULL) {
			pthread_cond_wait(&core->timer_wake, &core->lock);
		} else {
			struct timespec until = {(time_t)(d->at_us / 1000000),
			                         (long)(d->at_us % 1000000) * 1000};
			pthread_cond_timedwait(&core->timer_wake, &core->lock, &until);
		}
	}
	pthread_mutex_unlock(&core->lock);
	return NULL;
}

/* ---- retention ------------------------------------------------------------- */

struct retention_pass {
	struct core *core;
	struct outbox *out;
	uint64_t now_us;
};

static void retention_queue_cb(struct queue *q, void *arg)
{
	struct retention_pass *pass = arg;
	uint64_t max_age_us = q->policy.keep_finished_age_ms * 1000;
	struct job *job;
	while ((job = TAILQ_FIRST(&q->finished)) != NULL) {
		bool too_many = q->finished_count > q->policy.keep_finished;
		bool too_old = max_age_us && job->updated_us + max_age_us < pass->now_us;
		if (!too_many && !too_old)
			break;
		struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_DROP};
		rec.u.drop.job_id = job->id;
		rec.u.drop.at_us = pass->now_us;
		struct jm_err err = {0};
		if (commit(pass->core, &rec, &err) != 0)
			break; /* journal refuses: keep everything */
	}
}

static void retention_sweep(struct core *core, struct outbox *out)
{
	struct retention_pass pass = {core, out, jm_wall_us()};
	if (journal_is_writable(core->journal, NULL))
		queue_each(&core->state.queues, retention_queue_cb, &pass);
	deadline_heap_set(&core->state.deadlines, &core->retention_timer,
	                  pass.now_us + RETENTION_SWEEP_MS * 1000);
	uint64_t log_bytes = journal_log_bytes(core->journal);
	if (core->config.compact_min_bytes && !core->compacting &&
	    log_bytes >= core->config.compact_min_bytes &&
	    log_bytes >= journal_snapshot_bytes(core->journal)) {
		core->compaction_wanted = true;
		pthread_cond_signal(&core->compactor_wake);
	}
}

/* ---- cancel, progress, batches, workers, dead-letter -------------------- */

static void handle_cancel(struct core *core, struct request *req, struct outbox *out)
{
	uint64_t job_id = req->msg.u.job_ref.job_id;
	struct job *job = jobtable_find(&core->state.jobs, job_id);
	if (job == NULL) {
		reply_not_found(core, req, "cancel", job_id, out);
		return;
	}
	if (state_job_is_finished(job)) {
		reply_error(core, req, out, JM_ESTATE,
		            "cancel: job %llu is already %s: only pending, delayed or active jobs "
		            "can be cancelled",
		            (unsigned long long)job_id, proto_state_name(job->state));
		return;
	}
	struct jm_err err = {0};
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_CANCEL};
	rec.u.cancel.job_id = job_id;
	rec.u.cancel.at_us = jm_wall_us();
	if (!journal_is_writable(core->journal, &err) || commit(core, &rec, &err) != 0) {
		reply_error(core, req, out, err.code ? err.code : JM_ENOSPC, "cancel: %s",
		            jm_err_text(&err));
		return;
	}
	/* An active job's worker learns it from its next heartbeat reply. */
	release_waiters(core, job, out);
	reply_job(core, req, job, false, out);
}

static void handle_progress(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_progress *p = &req->msg.u.progress;
	struct worker *w;
	int32_t code = worker_seen(core, p->worker_id, 0, out, &w);
	struct job *job = NULL;
	if (code == 0)
		code = find_lease(core, p->job_id, p->lease, &job);
	if (code == 0 && job->holder != w)
		code = JM_ESTALE;
	if (code == 0) {
		job->progress_done = p->done;
		job->progress_total = p->total;
		free(job->progress_message);
		job->progress_message = NULL;
		if (p->message.len) {
			job->progress_message = malloc(p->message.len + 1);
			if (job->progress_message) {
				memcpy(job->progress_message, p->message.ptr, p->message.len);
				job->progress_message[p->message.len] = '\0';
			}
		}
		if (core->events) {
			struct proto_event ev = {.kind = PROTO_EVENT_JOB_PROGRESS,
			                         .at_us = jm_wall_us()};
			ev.job_id = job->id;
			ev.batch_id = job->batch_id;
			memcpy(ev.queue, job->queue->name, sizeof ev.queue);
			memcpy(ev.type, job->type, sizeof ev.type);
			ev.state = job->state;
			ev.attempt = job->attempt;
			ev.done = p->done;
			ev.total = p->total;
			ev.message = p->message;
			memcpy(ev.worker_id, w->id, sizeof ev.worker_id);
			publish_for_job(core, job, &ev, 0);
		}
		if (job->batch) {
			if (p->message.len)
				batch_set_operation(job->batch, (const char *)p->message.ptr,
				                    p->message.len);
			batch_touched(core, job->batch);
		}
	}
	reply_settled(core, req, &code, 1, out);
}

static void reply_batch(struct core *core, struct request *req, const struct batch *b,
                        struct outbox *out)
{
	struct proto_batch_error errors[PROTO_BATCH_ERRORS_MAX];
	struct proto_msg msg = {.type = PROTO_BATCH};
	batch_info(b, &msg.u.batch, errors);
	reply_view(core, req, &msg, out);
}

static void handle_batch_status(struct core *core, struct request *req, struct outbox *out)
{
	uint64_t batch_id = req->msg.u.job_ref.job_id;
	struct batch *b = batch_find(&core->state.batches, batch_id);
	if (b == NULL)
		reply_error(core, req, out, JM_ENOTFOUND,
		            "batch-status: batch %llu not found: no such id, or all its jobs "
		            "left retention",
		            (unsigned long long)batch_id);
	else
		reply_batch(core, req, b, out);
}

struct batches_fill {
	struct proto_batch_info *infos;
	struct proto_batch_error *errors;
	uint32_t count;
	uint32_t cap;
};

static void batches_fill_cb(struct batch *b, void *arg)
{
	struct batches_fill *fill = arg;
	if (batch_is_finished(b) || fill->count == fill->cap)
		return;
	batch_info(b, &fill->infos[fill->count],
	           &fill->errors[(size_t)fill->count * PROTO_BATCH_ERRORS_MAX]);
	fill->count++;
}

static int compare_batch_ids(const void *a, const void *b)
{
	uint64_t x = ((const struct proto_batch_info *)a)->batch_id;
	uint64_t y = ((const struct proto_batch_info *)b)->batch_id;
	return x < y ? -1 : x > y;
}

static void handle_batches(struct core *core, struct request *req, struct outbox *out)
{
	uint32_t cap = core->state.batches.count < PROTO_JOBS_PER_MESSAGE_MAX
	                   ? (uint32_t)core->state.batches.count
	                   : PROTO_JOBS_PER_MESSAGE_MAX;
	struct batches_fill fill = {
	    calloc(cap + 1, sizeof *fill.infos),
	    calloc((size_t)(cap + 1) * PROTO_BATCH_ERRORS_MAX, sizeof *fill.errors), 0, cap};
	if (fill.infos == NULL || fill.errors == NULL) {
		free(fill.infos);
		free(fill.errors);
		reply_error(core, req, out, JM_ENOMEM, "batches: broker out of memory");
		return;
	}
	batch_each(&core->state.batches, batches_fill_cb, &fill);
	qsort(fill.infos, fill.count, sizeof *fill.infos, compare_batch_ids);
	struct proto_msg msg = {.type = PROTO_BATCHES_REPLY};
	msg.u.batches_reply.batches_count = fill.count;
	msg.u.batches_reply.batches = fill.infos;
	reply_view(core, req, &msg, out);
	free(fill.infos);
	free(fill.errors);
}

struct workers_fill {
	struct proto_worker_info *infos;
	uint64_t *job_ids;
	uint32_t count;
	uint32_t ids_used;
	uint32_t cap;
};

static void workers_fill_cb(struct worker *w, void *arg)
{
	struct workers_fill *fill = arg;
	if (fill->count == fill->cap)
		return;
	struct proto_worker_info *info = &fill->infos[fill->count++];
	memcpy(info->worker_id, w->id, sizeof info->worker_id);
	info->host = (struct proto_bytes){(const uint8_t *)w->host, (uint32_t)strlen(w->host)};
	info->pid = w->pid;
	info->concurrency = w->concurrency;
	info->queues_count = w->queues_count;
	info->queues = w->queues;
	info->active_jobs = w->held_count;
	info->first_seen_us = w->first_seen_us;
	info->last_seen_us = w->last_seen_us;
	info->draining = w->draining;
	info->job_ids = &fill->job_ids[fill->ids_used];
	struct job *job;
	TAILQ_FOREACH(job, &w->held, holder_link)
	{
		if (info->job_ids_count == PROTO_JOBS_PER_MESSAGE_MAX)
			break;
		info->job_ids[info->job_ids_count++] = job->id;
	}
	fill->ids_used += info->job_ids_count;
}

static void count_held_cb(struct worker *w, void *arg)
{
	*(uint64_t *)arg += w->held_count;
}

static int compare_worker_ids(const void *a, const void *b)
{
	return strcmp(((const struct proto_worker_info *)a)->worker_id,
	              ((const struct proto_worker_info *)b)->worker_id);
}

static void handle_workers(struct core *core, struct request *req, struct outbox *out)
{
	uint32_t cap = core->state.workers.workers.count;
	uint64_t held = 0;
	worker_each(&core->state.workers, count_held_cb, &held);
	struct workers_fill fill = {calloc(cap + 1, sizeof *fill.infos),
	                            calloc(held + 1, sizeof *fill.job_ids), 0, 0, cap};
	if (fill.infos == NULL || fill.job_ids == NULL) {
		free(fill.infos);
		free(fill.job_ids);
		reply_error(core, req, out, JM_ENOMEM, "workers: broker out of memory");
		return;
	}
	worker_each(&core->state.workers, workers_fill_cb, &fill);
	qsort(fill.infos, fill.count, sizeof *fill.infos, compare_worker_ids);
	struct proto_msg msg = {.type = PROTO_WORKERS_REPLY};
	msg.u.workers_reply.workers_count = fill.count;
	msg.u.workers_reply.workers = fill.infos;
	reply_view(core, req, &msg, out);
	free(fill.infos);
	free(fill.job_ids);
}

static void handle_hello(struct core *core, struct request *req, struct outbox *out)
{
	struct proto_msg msg = {.type = PROTO_HELLO_REPLY};
	msg.u.hello_reply.broker_version =
	    (struct proto_bytes){(const uint8_t *)BROKER_VERSION, sizeof BROKER_VERSION - 1};
	const char *url = core->events ? events_url(core->events) : "";
	msg.u.hello_reply.events_url =
	    (struct proto_bytes){(const uint8_t *)url, (uint32_t)strlen(url)};
	reply_view(core, req, &msg, out);
}

static void handle_dead_list(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_dead_list *list = &req->msg.u.dead_list;
	struct queue *q = queue_find(&core->state.queues, list->queue);
	uint32_t cap = q ? (q->failed < list->limit ? (uint32_t)q->failed : list->limit) : 0;
	struct proto_job_info *infos = calloc(cap + 1, sizeof *infos);
	if (infos == NULL) {
		reply_error(core, req, out, JM_ENOMEM, "dead-list: broker out of memory");
		return;
	}
	uint32_t count = 0;
	struct job *job;
	if (q)
		TAILQ_FOREACH(job, &q->finished, finished_link)
		{
			if (count == cap)
				break;
			if (job->state == PROTO_STATE_FAILED)
				fill_job_info(job, false, &infos[count++]);
		}
	struct proto_msg msg = {.type = PROTO_JOB_LIST};
	msg.u.job_list.jobs_count = count;
	msg.u.job_list.jobs = infos;
	reply_view(core, req, &msg, out);
	free(infos);
}

static int revive_job(struct core *core, struct job *job, struct jm_err *err)
{
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_REVIVE};
	rec.u.revive.job_id = job->id;
	rec.u.revive.at_us = jm_wall_us();
	rec.u.revive.lease = job->lease;
	return commit(core, &rec, err);
}

static void handle_revive(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_revive *revive = &req->msg.u.revive;
	struct jm_err err = {0};
	if (!journal_is_writable(core->journal, &err)) {
		reply_error(core, req, out, JM_ENOSPC, "revive: %s", jm_err_text(&err));
		return;
	}
	struct queue *q = queue_find(&core->state.queues, revive->queue);
	if (revive->job_id) {
		struct job *job = jobtable_find(&core->state.jobs, revive->job_id);
		if (job == NULL || job->queue != q) {
			reply_error(core, req, out, JM_ENOTFOUND,
			            "revive: job %llu not found in queue %s",
			            (unsigned long long)revive->job_id, revive->queue);
			return;
		}
		if (job->state != PROTO_STATE_FAILED) {
			reply_error(core, req, out, JM_ESTATE,
			            "revive: job %llu is %s: only dead-lettered (failed) jobs can "
			            "be retried",
			            (unsigned long long)job->id, proto_state_name(job->state));
			return;
		}
	}
	uint32_t cap =
	    q ? (uint32_t)(q->failed < PROTO_JOBS_PER_MESSAGE_MAX ? q->failed
	                                                          : PROTO_JOBS_PER_MESSAGE_MAX)
	      : 0;
	uint64_t *ids = calloc(cap + 1, sizeof *ids);
	if (ids == NULL) {
		reply_error(core, req, out, JM_ENOMEM, "revive: broker out of memory");
		return;
	}
	uint32_t count = 0;
	struct job *job = q ? TAILQ_FIRST(&q->finished) : NULL;
	while (job && count < cap) {
		/* Revived jobs leave the finished list: take next first. */
		struct job *next = TAILQ_NEXT(job, finished_link);
		if (job->state == PROTO_STATE_FAILED &&
		    (revive->job_id == 0 || revive->job_id == job->id)) {
			if (revive_job(core, job, &err) != 0)
				break;
			ids[count++] = job->id;
		}
		job = next;
	}
	struct proto_msg msg = {.type = PROTO_REVIVED};
	msg.u.revived.ids_count = count;
	msg.u.revived.ids = ids;
	reply_encode(core, req, &msg, out);
	free(ids);
	pump(core, out);
}

/* ---- compaction -------------------------------------------------------------- */

static void collect_id_cb(struct job *job, void *arg)
{
	struct jm_buf *ids = arg;
	jm_buf_append(ids, &job->id, sizeof job->id);
}

/* Encodes the snapshot record of each id that still exists into chunk,
 * framed as [u32 length][body]. Runs under the core lock. */
static int encode_chunk(struct core *core, const uint64_t *ids, size_t count, struct jm_buf *chunk)
{
	struct jm_buf body;
	jm_buf_init(&body);
	int rc = 0;
	for (size_t i = 0; i < count && rc == 0; i++) {
		struct job *job = jobtable_find(&core->state.jobs, ids[i]);
		if (job == NULL)
			continue;
		struct proto_record rec;
		state_job_snapshot(job, &rec);
		jm_buf_reset(&body);
		rc = proto_record_encode(&rec, &body);
		uint32_t len = (uint32_t)body.len;
		if (rc == 0)
			rc = jm_buf_append(chunk, &len, sizeof len);
		if (rc == 0)
			rc = jm_buf_append(chunk, body.data, body.len);
	}
	jm_buf_fini(&body);
	return rc;
}

/* Writes a snapshot of the live state while service goes on: the rotation
 * and each chunk of COMPACT_CHUNK_JOBS jobs hold the core lock briefly.
 * Called and returns without the lock. */
static int compact(struct core *core, uint64_t *longest_pause_us, struct jm_err *err)
{
	uint64_t started_us = jm_mono_us();
	uint64_t log_bytes_before = journal_log_bytes(core->journal);
	struct jm_buf ids, chunk;
	jm_buf_init(&ids);
	jm_buf_init(&chunk);
	struct journal_snapshot *snap = NULL;
	uint64_t pause_max = 0;

	pthread_mutex_lock(&core->lock);
	uint64_t t0 = jm_mono_us();
	int rc = journal_rotate(core->journal, &snap, err);
	struct proto_record meta = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_META};
	meta.u.meta.next_job_id = core->state.next_job_id;
	meta.u.meta.boot_epoch = core->state.boot_epoch;
	if (rc == 0) {
		rc = jm_buf_reserve(&ids, core->state.jobs.count * sizeof(uint64_t));
		if (rc == 0)
			jobtable_each(&core->state.jobs, collect_id_cb, &ids);
	}
	pause_max = jm_mono_us() - t0;
	pthread_mutex_unlock(&core->lock);

	if (rc == 0) {
		jm_buf_reset(&chunk);
		rc = proto_record_encode(&meta, &chunk);
		if (rc == 0)
			rc = journal_snapshot_append(snap, chunk.data, chunk.len, err);
	}
	const uint64_t *all = (const uint64_t *)ids.data;
	size_t total = ids.len / sizeof(uint64_t);
	for (size_t at = 0; rc == 0 && at < total; at += COMPACT_CHUNK_JOBS) {
		size_t count = total - at < COMPACT_CHUNK_JOBS ? total - at : COMPACT_CHUNK_JOBS;
		jm_buf_reset(&chunk);
		pthread_mutex_lock(&core->lock);
		t0 = jm_mono_us();
		rc = encode_chunk(core, all + at, count, &chunk);
		uint64_t pause = jm_mono_us() - t0;
		pthread_mutex_unlock(&core->lock);
		if (pause > pause_max)
			pause_max = pause;
		for (size_t off = 0; rc == 0 && off < chunk.len;) {
			uint32_t len;
			memcpy(&len, chunk.data + off, sizeof len);
			rc = journal_snapshot_append(snap, chunk.data + off + sizeof len, len, err);
			off += sizeof len + len;
		}
	}
	if (rc == 0)
		rc = journal_snapshot_commit(snap, err);
	else if (snap)
		journal_snapshot_abort(snap);
	jm_buf_fini(&ids);
	jm_buf_fini(&chunk);
	if (rc != 0) {
		if (err->code == 0)
			jm_err_set(err, rc, "%s", jm_strerror(rc));
		jm_err_prefix(err, "compaction");
		jm_warn("%s", jm_err_text(err));
		return rc;
	}
	jm_info("compaction: %zu jobs; journal since last snapshot %llu bytes, snapshot %llu "
	        "bytes; took %llu ms, longest pause %llu us",
	        total, (unsigned long long)log_bytes_before,
	        (unsigned long long)journal_snapshot_bytes(core->journal),
	        (unsigned long long)(jm_mono_us() - started_us) / 1000,
	        (unsigned long long)pause_max);
	if (longest_pause_us)
		*longest_pause_us = pause_max;
	return 0;
}

static void *compactor_main(void *arg)
{
	struct core *core = arg;
	pthread_mutex_lock(&core->lock);
	for (;;) {
		while (!core->compaction_wanted && !core->stopping)
			pthread_cond_wait(&core->compactor_wake, &core->lock);
		if (core->stopping)
			break;
		core->compaction_wanted = false;
		core->compacting = true;
		pthread_mutex_unlock(&core->lock);
		struct jm_err err = {0};
		compact(core, NULL, &err);
		pthread_mutex_lock(&core->lock);
		core->compacting = false;
		pthread_cond_broadcast(&core->compactor_wake);
	}
	pthread_mutex_unlock(&core->lock);
	return NULL;
}

int core_compact(struct core *core, uint64_t *longest_pause_us, struct jm_err *err)
{
	pthread_mutex_lock(&core->lock);
	while (core->compacting)
		pthread_cond_wait(&core->compactor_wake, &core->lock);
	core->compacting = true;
	pthread_mutex_unlock(&core->lock);
	int rc = compact(core, longest_pause_us, err);
	pthread_mutex_lock(&core->lock);
	core->compacting = false;
	pthread_cond_broadcast(&core->compactor_wake);
	pthread_mutex_unlock(&core->lock);
	return rc;
}

void core_attach_events(struct core *core, struct events *ev)
{
	pthread_mutex_lock(&core->lock);
	core->events = ev;
	pthread_mutex_unlock(&core->lock);
}

/* ---- entry points ------------------------------------------------------------ */

void core_handle(struct core *core, struct request *req)
{
	struct outbox out;
	outbox_init(&out);
	pthread_mutex_lock(&core->lock);
	struct deadline *earliest = deadline_heap_peek(&core->state.deadlines);
	uint64_t earliest_us = earliest ? earliest->at_us : UINT64_MAX;
	if (core->stopping) {
		reply_error(core, req, &out, JM_ECLOSED, "the broker is shutting down");
	} else {
		switch (req->msg.type) {
		case PROTO_SUBMIT:
			handle_submit(core, req, &out);
			break;
		case PROTO_FETCH:
			handle_fetch(core, req, &out);
			break;
		case PROTO_ACK:
			handle_ack(core, req, &out);
			break;
		case PROTO_FAIL:
			handle_fail(core, req, &out);
			break;
		case PROTO_STATUS:
			handle_status(core, req, false, &out);
			break;
		case PROTO_RESULT:
			handle_status(core, req, true, &out);
			break;
		case PROTO_WAIT:
			handle_wait(core, req, &out);
			break;
		case PROTO_STATS:
			handle_stats(core, req, &out);
			break;
		case PROTO_HEARTBEAT:
			handle_heartbeat(core, req, &out);
			break;
		case PROTO_CANCEL:
			handle_cancel(core, req, &out);
			break;
		case PROTO_PROGRESS:
			handle_progress(core, req, &out);
			break;
		case PROTO_BATCH_STATUS:
			handle_batch_status(core, req, &out);
			break;
		case PROTO_BATCHES:
			handle_batches(core, req, &out);
			break;
		case PROTO_WORKERS:
			handle_workers(core, req, &out);
			break;
		case PROTO_HELLO:
			handle_hello(core, req, &out);
			break;
		case PROTO_DEAD_LIST:
			handle_dead_list(core, req, &out);
			break;
		case PROTO_REVIVE:
			handle_revive(core, req, &out);
			break;
		case PROTO_JOB_QUERY: {
			struct proto_msg list;
			if (core_query_jobs(&core->state, &req->msg.u.job_query, &list) != 0)
				reply_error(core, req, &out, JM_ENOMEM,
				            "job-query: broker out of memory");
			else
				reply_view(core, req, &list, &out);
			core_query_free(&list);
			break;
		}
		default:
			reply_error(core, req, &out, JM_EUNSUPPORTED,
			            "%s is not a request the broker answers: send submit, fetch, "
			            "ack, fail, status, result, wait, stats, heartbeat, cancel, "
			            "progress, batch-status, batches, workers, hello, dead-list, "
			            "revive or job-query",
			            proto_type_name(req->msg.type));
			break;
		}
	}
	/* Wake the timer if this request scheduled something earlier. */
	earliest = deadline_heap_peek(&core->state.deadlines);
	if (earliest && earliest->at_us < earliest_us)
		pthread_cond_signal(&core->timer_wake);
	unlock_and_flush(core, &out);
}

void core_pipe_gone(struct core *core, uint32_t pipe_id)
{
	struct outbox out;
	outbox_init(&out);
	pthread_mutex_lock(&core->lock);
	struct parked_fetch *pf = dispatch_first(&core->dispatch);
	while (pf) {
		struct parked_fetch *next = dispatch_next(pf);
		if (pf->pipe_id == pipe_id)
			unpark_fetch(core, pf, &out, true);
		pf = next;
	}
	unlock_and_flush(core, &out);
}

struct replay_ctx {
	struct core *core;
	uint64_t now_us;
};

static int replay_apply_cb(void *arg, const uint8_t *body, size_t len, const char *file,
                           uint64_t offset, struct jm_err *err)
{
	struct replay_ctx *ctx = arg;
	struct proto_record rec;
	int rc = proto_record_decode(body, len, &rec, err);
	if (rc == 0) {
		rc = state_apply(&ctx->core->state, &rec, ctx->now_us, err);
		proto_record_fini(&rec);
	}
	if (rc != 0)
		jm_err_prefix(err, "journal %s: record at byte %llu", file,
		              (unsigned long long)offset);
	return rc;
}

struct durable_wait {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool done;
	int status;
};

static void durable_wait_cb(void *arg, int status)
{
	struct durable_wait *wait = arg;
	pthread_mutex_lock(&wait->lock);
	wait->done = true;
	wait->status = status;
	pthread_cond_signal(&wait->done_cond);
	pthread_mutex_unlock(&wait->lock);
}

/* Starts a new boot epoch: a META record with the epoch after the highest
 * replayed, made durable before anything is served (see proto/record.h). */
static int begin_boot_epoch(struct core *core, struct jm_err *err)
{
	struct proto_record meta = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_META};
	meta.u.meta.next_job_id = core->state.next_job_id;
	meta.u.meta.boot_epoch = core->state.boot_epoch + 1;
	int rc = commit(core, &meta, err);
	if (rc != 0)
		return jm_err_prefix(err, "starting boot epoch %llu",
		                     (unsigned long long)meta.u.meta.boot_epoch);
	struct durable_wait wait = {.done = false};
	pthread_mutex_init(&wait.lock, NULL);
	pthread_cond_init(&wait.done_cond, NULL);
	journal_when_durable(core->journal, core->last_lsn, durable_wait_cb, &wait);
	pthread_mutex_lock(&wait.lock);
	while (!wait.done)
		pthread_cond_wait(&wait.done_cond, &wait.lock);
	pthread_mutex_unlock(&wait.lock);
	pthread_cond_destroy(&wait.done_cond);
	pthread_mutex_destroy(&wait.lock);
	if (wait.status != 0)
		return jm_err_set(err, wait.status,
		                  "the journal closed before boot epoch %llu "
		                  "was durable",
		                  (unsigned long long)meta.u.meta.boot_epoch);
	return 0;
}

int core_open(struct core **out, const struct core_config *config, struct journal *journal,
              struct journal_replay_stats *replay_stats, struct jm_err *err)
{
	struct core *core = calloc(1, sizeof *core);
	if (core == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	core->config = *config;
	core->journal = journal;
	core->random_state = jm_wall_us() | 1;
	jm_buf_init(&core->scratch);
	dispatch_init(&core->dispatch);
	deadline_init(&core->retention_timer, DEADLINE_RETENTION);
	pthread_mutex_init(&core->lock, NULL);
	pthread_cond_init(&core->timer_wake, NULL);
	pthread_cond_init(&core->compactor_wake, NULL);
	pthread_cond_init(&core->flushes_done, NULL);
	int rc = state_init(&core->state, &config->state);
	if (rc != 0) {
		core_free(core);
		return jm_err_set(err, rc, "initialising state: %s", jm_strerror(rc));
	}
	struct replay_ctx ctx = {core, jm_wall_us()};
	core->state.replaying = true;
	rc = journal_replay(journal, replay_apply_cb, &ctx, replay_stats, err);
	core->state.replaying = false;
	if (rc == 0)
		rc = journal_start(journal, err);
	if (rc == 0)
		rc = begin_boot_epoch(core, err);
	if (rc != 0) {
		core_free(core);
		return rc;
	}
	if (core->state.replay_skipped)
		jm_info("replay skipped %llu record(s) already contained in the snapshot",
		        (unsigned long long)core->state.replay_skipped);
	deadline_heap_set(&core->state.deadlines, &core->retention_timer,
	                  jm_wall_us() + RETENTION_SWEEP_MS * 1000);
	if (pthread_create(&core->timer_thread, NULL, timer_main, core) != 0) {
		core_free(core);
		return jm_err_set(err, JM_ENOMEM, "cannot start the timer thread");
	}
	core->timer_running = true;
	if (pthread_create(&core->compactor_thread, NULL, compactor_main, core) == 0)
		core->compactor_running = true;
	else
		jm_warn("cannot start the compaction thread: the journal will not be compacted");
	*out = core;
	return 0;
}

void core_stop(struct core *core)
{
	struct outbox out;
	outbox_init(&out);
	pthread_mutex_lock(&core->lock);
	core->stopping = true;
	struct parked_fetch *pf;
	while ((pf = dispatch_first(&core->dispatch)) != NULL)
		unpark_fetch(core, pf, &out, true);
	/* Waiters hang off jobs; answer each with the job's current state. */
	struct deadline_heap *heap = &core->state.deadlines;
	for (uint32_t i = 0; i < heap->count;) {
		struct deadline *d = heap->items[i];
		if (d->kind == DEADLINE_WAIT)
			deadline_fired(core, d, &out);
		else
			i++;
	}
	pthread_cond_signal(&core->timer_wake);
	pthread_cond_broadcast(&core->compactor_wake);
	unlock_and_flush(core, &out);
	pthread_mutex_lock(&core->lock);
	while (core->flushes_running > 0)
		pthread_cond_wait(&core->flushes_done, &core->lock);
	pthread_mutex_unlock(&core->lock);
	if (core->timer_running) {
		pthread_join(core->timer_thread, NULL);
		core->timer_running = false;
	}
	if (core->compactor_running) {
		pthread_join(core->compactor_thread, NULL);
		core->compactor_running = false;
	}
}

void core_free(struct core *core)
{
	if (core == NULL)
		return;
	if (core->timer_running)
		core_stop(core);
	state_fini(&core->state);
	jm_buf_fini(&core->scratch);
	pthread_cond_destroy(&core->timer_wake);
	pthread_cond_destroy(&core->compactor_wake);
	pthread_cond_destroy(&core->flushes_done);
	pthread_mutex_destroy(&core->lock);
	free(core);
}

void core_lock(struct core *core)
{
	pthread_mutex_lock(&core->lock);
}

void core_unlock(struct core *core)
{
	pthread_mutex_unlock(&core->lock);
}

struct state *core_state(struct core *core)
{
	return &core->state;
}
