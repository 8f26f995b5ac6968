/* The broker core (see core.h and core_internal.h): the lock, the outbox,
 * replies, commit, the request table, open and stop. The requests
 * themselves are answered in core_jobs.c, core_workers.c and core_views.c. */
#include "core_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "record.h"

void core_outbox_init(struct outbox *out)
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

/* A read of one job (status, result, wait) only waited for the record it
 * reports: among the replies one sync releases, it goes before the
 * acknowledgements of writes (journal_when_durable_first). */
static bool request_is_job_read(const struct request *req)
{
	return req->msg.type == PROTO_STATUS || req->msg.type == PROTO_RESULT ||
	       req->msg.type == PROTO_WAIT || req->msg.type == PROTO_SUBMIT_WAIT;
}

/* Releases each reply to the journal; call without the core lock. The
 * replies that depend on nothing unwritten (a delivery to a parked fetch)
 * go first, before the others are queued on the journal's lock. */
static void outbox_flush(struct core *core, struct outbox *out)
{
	struct request **link = &out->head;
	while (*link) {
		struct request *req = *link;
		if (req->reply_lsn == 0) {
			*link = req->outbox_next;
			req->on_reply(req, 0);
		} else {
			link = &req->outbox_next;
		}
	}
	struct request *req = out->head;
	while (req) {
		struct request *next = req->outbox_next;
		if (request_is_job_read(req))
			journal_when_durable_first(core->journal, req->reply_lsn,
			                           request_durable_cb, req);
		else
			journal_when_durable(core->journal, req->reply_lsn, request_durable_cb,
			                     req);
		req = next;
	}
	core_outbox_init(out);
}

/* Drops the core lock, releases out and, if lead, writes this thread's
 * records itself (journal_lead_end), counted so that core_stop can wait
 * for every release to finish before the journal closes. */
static void unlock_release(struct core *core, struct outbox *out, bool lead)
{
	if (core->committed) {
		core->committed = false;
		compactor_consider(core);
	}
	if (out->head == NULL && !lead) {
		pthread_mutex_unlock(&core->lock);
		return;
	}
	core->flushes_running++;
	pthread_mutex_unlock(&core->lock);
	outbox_flush(core, out);
	if (lead)
		journal_lead_end(core->journal);
	pthread_mutex_lock(&core->lock);
	if (--core->flushes_running == 0)
		pthread_cond_broadcast(&core->flushes_done);
	pthread_mutex_unlock(&core->lock);
}

void core_unlock_and_flush(struct core *core, struct outbox *out)
{
	unlock_release(core, out, false);
}

void core_reply(struct core *core, struct request *req, const struct proto_msg *msg,
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

void core_reply_errorf(struct core *core, struct request *req, struct outbox *out, int code,
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

void core_fill_job_info(const struct job *job, bool with_result, struct proto_job_info *info)
{
	memset(info, 0, sizeof *info);
	info->job_id = job->id;
	state_job_attrs(job, &info->attrs);
	info->state = job->state;
	info->attempt = job->attempt;
	info->updated_us = job->updated_us;
	/* A delayed job's ready time; a pending run of a schedule's, the time
	 * it was scheduled for (core_schedules.c). */
	info->run_at_us = job->state == PROTO_STATE_DELAYED ||
	                          (job->state == PROTO_STATE_PENDING && job->attempt == 0)
	                      ? job->run_at_us
	                      : 0;
	const struct job_more *more = job->more;
	if (with_result && job->state == PROTO_STATE_COMPLETED) {
		info->has_result = true;
		if (more)
			info->result = (struct proto_bytes){more->result, more->result_len};
	}
	if (more == NULL)
		return;
	if (more->last_error)
		info->last_error = (struct proto_bytes){(const uint8_t *)more->last_error,
		                                        (uint32_t)strlen(more->last_error)};
	info->progress_done = more->progress_done;
	info->progress_total = more->progress_total;
	if (more->progress_message)
		info->progress_message =
		    (struct proto_bytes){(const uint8_t *)more->progress_message,
		                         (uint32_t)strlen(more->progress_message)};
}

/* Whether req (STATUS, RESULT or WAIT) asked for the job's payload. */
static bool request_wants_payload(const struct request *req)
{
	switch (req->msg.type) {
	case PROTO_STATUS:
	case PROTO_RESULT:
		return req->msg.u.job_ref.with_payload;
	case PROTO_WAIT:
		return req->msg.u.wait.with_payload;
	default:
		return false;
	}
}

void core_reply_job(struct core *core, struct request *req, const struct job *job, bool with_result,
                    struct outbox *out)
{
	struct proto_msg msg = {.type = PROTO_JOB};
	core_fill_job_info(job, with_result, &msg.u.job);
	if (request_wants_payload(req))
		msg.u.job.payload = (struct proto_bytes){job->payload, job->payload_len};
	core_reply(core, req, &msg, out);
	/* Wait for this job's latest change only: while the journal refuses
	 * writes, reads of everything already durable still answer. */
	req->reply_lsn = job_last_lsn(job, core->last_lsn);
}

/* A reply about many things at once (counters, lists) is an in-memory
 * view and waits for nothing: it may include a change whose record is
 * still being synced, never one that was refused. */
void core_reply_view(struct core *core, struct request *req, const struct proto_msg *msg,
                     struct outbox *out)
{
	core_reply(core, req, msg, out);
	req->reply_lsn = 0;
}

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

int core_journal(struct core *core, const struct proto_record *rec, uint64_t *lsn,
                 struct jm_err *err)
{
	jm_buf_reset(&core->scratch);
	int rc = proto_record_encode(rec, &core->scratch);
	if (rc != 0)
		return jm_err_set(err, rc, "encoding a %s record failed",
		                  proto_record_type_name(rec->type));
	return journal_append(core->journal, core->scratch.data, core->scratch.len, lsn, err);
}

/* Whether applying rec to the state cannot fail: it allocates nothing and
 * finds what it changes. Only such records are applied after journaling
 * without a reservation. */
static bool applies_infallibly(struct core *core, const struct proto_record *rec)
{
	switch (rec->type) {
	case PROTO_REC_META:
		return true;  /* two counters */
	case PROTO_REC_QUEUE: /* settings of a queue that exists */
		return queue_find(&core->state.queues, rec->u.queue.settings.queue) != NULL;
	case PROTO_REC_DROP: { /* unlinks and frees */
		const struct job *job = jobtable_find(&core->state.jobs, rec->u.drop.job_id);
		return job != NULL && state_job_is_finished(job) && !job_has_waiters(job);
	}
	case PROTO_REC_SCHEDULE: /* a delete unlinks and frees */
		return rec->u.schedule.deleted;
	default:
		return false;
	}
}

/* Appends rec to the journal and applies it. The one way state changes. */
int core_commit(struct core *core, const struct proto_record *rec, struct jm_err *err)
{
	/* Changes of a job reserve what they need first (core_records.c). */
	if (rec->type == PROTO_REC_LEASE || rec->type == PROTO_REC_SETTLE ||
	    rec->type == PROTO_REC_CANCEL || rec->type == PROTO_REC_REVIVE)
		return core_commit_many(core, rec, 1, err);
	/* Nothing is journaled that the state would not hold. */
	if (!applies_infallibly(core, rec))
		return jm_err_set(err, JM_ESTATE,
		                  "a %s record that could fail to apply was not journaled (a "
		                  "bug: it must be prepared first)",
		                  proto_record_type_name(rec->type));
	uint64_t lsn;
	int rc = core_journal(core, rec, &lsn, err);
	if (rc != 0)
		return rc;
	const struct job *prior = jobtable_find(&core->state.jobs, record_job_id(rec));
	uint64_t prior_since_us = prior ? prior->updated_us : 0;
	rc = state_apply(&core->state, rec, jm_wall_us(), err);
	if (rc != 0) {
		/* applies_infallibly was wrong: say so loudly. */
		jm_error("applying a %s record after journaling it failed: %s",
		         proto_record_type_name(rec->type), jm_err_text(err));
		return rc;
	}
	core_committed(core, rec, lsn, prior_since_us);
	return 0;
}

void core_committed(struct core *core, const struct proto_record *rec, uint64_t lsn,
                    uint64_t prior_since_us)
{
	core->last_lsn = lsn;
	core->committed = true;
	metrics_committed(rec, prior_since_us);
	uint64_t job_id = record_job_id(rec);
	if (job_id && rec->type != PROTO_REC_DROP) {
		struct job *job = jobtable_find(&core->state.jobs, job_id);
		if (job) {
			job->last_lsn_low = (uint32_t)lsn;
			core_publish_job_state(core, job);
			if (job->batch)
				core_batch_touched(core, job->batch);
		}
	}
}

uint64_t core_random(struct core *core)
{
	/* xorshift64*: jitter needs spread, not secrecy. */
	uint64_t x = core->random_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	core->random_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

void core_attach_events(struct core *core, struct events *ev)
{
	pthread_mutex_lock(&core->lock);
	core->events = ev;
	pthread_mutex_unlock(&core->lock);
}

/* Every request the broker answers, in the order the refusal of any other
 * lists them. A new request is one row here and its handler. */
static const struct {
	enum proto_type type;
	const char *name;
	core_handler_fn handle;
} requests[] = {
    {PROTO_SUBMIT, "submit", handle_submit},
    {PROTO_SUBMIT_WAIT, "submit-wait", handle_submit_wait},
    {PROTO_FETCH, "fetch", handle_fetch},
    {PROTO_SETTLE, "settle", handle_settle},
    {PROTO_STATUS, "status", handle_status},
    {PROTO_RESULT, "result", handle_result},
    {PROTO_WAIT, "wait", handle_wait},
    {PROTO_STATS, "stats", handle_stats},
    {PROTO_HEARTBEAT, "heartbeat", handle_heartbeat},
    {PROTO_CANCEL, "cancel", handle_cancel},
    {PROTO_PROGRESS, "progress", handle_progress},
    {PROTO_BATCH_STATUS, "batch-status", handle_batch_status},
    {PROTO_BATCHES, "batches", handle_batches},
    {PROTO_WORKERS, "workers", handle_workers},
    {PROTO_HELLO, "hello", handle_hello},
    {PROTO_DEAD_LIST, "dead-list", handle_dead_list},
    {PROTO_REVIVE, "revive", handle_revive},
    {PROTO_JOB_QUERY, "job-query", handle_job_query},
    {PROTO_SCHEDULE_PUT, "schedule-put", handle_schedule_put},
    {PROTO_SCHEDULE_DELETE, "schedule-delete", handle_schedule_delete},
    {PROTO_SCHEDULE_LIST, "schedule-list", handle_schedule_list},
    {PROTO_QUEUE_SET, "queue-set", handle_queue_set},
    {PROTO_DEAD_REMOVE, "dead-remove", handle_revive},
};

#define REQUESTS_COUNT (sizeof requests / sizeof requests[0])

static core_handler_fn handler_of(enum proto_type type)
{
	for (size_t i = 0; i < REQUESTS_COUNT; i++)
		if (requests[i].type == type)
			return requests[i].handle;
	return NULL;
}

static void reply_unsupported(struct core *core, struct request *req, struct outbox *out)
{
	char names[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < REQUESTS_COUNT && used < sizeof names; i++) {
		const char *sep = i == 0 ? "" : i + 1 == REQUESTS_COUNT ? " or " : ", ";
		int n = snprintf(names + used, sizeof names - used, "%s%s", sep, requests[i].name);
		if (n > 0)
			used += (size_t)n;
	}
	core_reply_errorf(core, req, out, JM_EUNSUPPORTED,
	                  "%s is not a request the broker answers: send %s",
	                  proto_type_name(req->msg.type), names);
}

void core_handle(struct core *core, struct request *req)
{
	struct outbox out;
	core_outbox_init(&out);
	/* This thread waits for nothing after the request: rather than wake
	 * the journal writer, it syncs its records itself when the writer is
	 * idle (journal.h), and the reply goes out from here. */
	journal_lead_begin(core->journal);
	pthread_mutex_lock(&core->lock);
	struct deadline *earliest = deadline_heap_peek(&core->state.deadlines);
	uint64_t earliest_us = earliest ? earliest->at_us : UINT64_MAX;
	core_handler_fn handle = handler_of(req->msg.type);
	if (core->stopping)
		core_reply_errorf(core, req, &out, JM_ECLOSED, "the broker is shutting down");
	else if (handle == NULL)
		reply_unsupported(core, req, &out);
	else if (!core_auth_refused(core, req, &out))
		handle(core, req, &out);
	/* Wake the timer if this request scheduled something earlier. */
	earliest = deadline_heap_peek(&core->state.deadlines);
	if (earliest && earliest->at_us < earliest_us)
		pthread_cond_signal(&core->timer_wake);
	unlock_release(core, &out, true);
}

void core_pipe_gone(struct core *core, uint32_t pipe_id)
{
	struct outbox out;
	core_outbox_init(&out);
	pthread_mutex_lock(&core->lock);
	struct parked_fetch *pf = dispatch_first(&core->dispatch);
	while (pf) {
		struct parked_fetch *next = dispatch_next(pf);
		if (pf->pipe_id == pipe_id)
			core_unpark_fetch(core, pf, &out, true);
		pf = next;
	}
	core_worker_pipe_gone(core, pipe_id);
	core_unlock_and_flush(core, &out);
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
	int rc = core_commit(core, &meta, err);
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
	/* The timer sleeps until a monotonic deadline (deadline.h). */
	jm_cond_init_monotonic(&core->timer_wake);
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
	/* The rate limits' spacing starts at the broker's start (queue.h). */
	queue_registry_restarted(&core->state.queues, jm_mono_us());
	if (core->state.replay_skipped)
		jm_info("replay skipped %llu record(s) already contained in the snapshot",
		        (unsigned long long)core->state.replay_skipped);
	deadline_heap_set(&core->state.deadlines, &core->retention_timer,
	                  jm_mono_us() + RETENTION_SWEEP_MS * 1000);
	if (pthread_create(&core->timer_thread, NULL, core_timer_main, core) != 0) {
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
	core_outbox_init(&out);
	pthread_mutex_lock(&core->lock);
	core->stopping = true;
	struct parked_fetch *pf;
	while ((pf = dispatch_first(&core->dispatch)) != NULL)
		core_unpark_fetch(core, pf, &out, true);
	/* Waiters hang off jobs; answer each with the job's current state. */
	struct deadline_heap *heap = &core->state.deadlines;
	for (uint32_t i = 0; i < heap->count;) {
		struct deadline *d = heap->items[i];
		if (d->kind == DEADLINE_WAIT)
			core_deadline_fired(core, d, &out);
		else
			i++;
	}
	pthread_cond_signal(&core->timer_wake);
	pthread_cond_broadcast(&core->compactor_wake);
	core_unlock_and_flush(core, &out);
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
