/* Requests about jobs from producers: submit, cancel, status, result,
 * wait (parked until the job finishes) and revive from the dead-letter set. */
#include "heap.h"
#include "core_internal.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

/* Answers every waiter of a job that has just finished. */
void core_release_waiters(struct core *core, struct job *job, struct outbox *out)
{
	struct waiter *w;
	while (job->more && (w = TAILQ_FIRST(&job->more->waiters)) != NULL) {
		TAILQ_REMOVE(&job->more->waiters, w, link);
		deadline_heap_remove(&core->state.deadlines, &w->timer);
		core_reply_job(core, w->req, job, true, out);
		free(w);
	}
}

static void reply_not_found(struct core *core, struct request *req, const char *what,
                            uint64_t job_id, struct outbox *out)
{
	core_reply_errorf(core, req, out, JM_ENOTFOUND,
	                  "%s: job %llu not found: no such id, or its retention ran out", what,
	                  (unsigned long long)job_id);
}

static void reply_status(struct core *core, struct request *req, bool with_result,
                         struct outbox *out)
{
	const struct proto_job_ref *ref = &req->msg.u.job_ref;
	struct job *job = jobtable_find(&core->state.jobs, ref->job_id);
	if (job == NULL) {
		reply_not_found(core, req, with_result ? "result" : "status", ref->job_id, out);
		return;
	}
	core_reply_job(core, req, job, with_result, out);
}

void handle_status(struct core *core, struct request *req, struct outbox *out)
{
	reply_status(core, req, false, out);
}

void handle_result(struct core *core, struct request *req, struct outbox *out)
{
	reply_status(core, req, true, out);
}

bool core_wait_for_job(struct core *core, struct request *req, struct job *job, uint32_t timeout_ms,
                       struct outbox *out)
{
	if (state_job_is_finished(job) || timeout_ms == 0) {
		core_reply_job(core, req, job, true, out);
		return false;
	}
	if (timeout_ms > core->config.wait_max_ms)
		timeout_ms = core->config.wait_max_ms;
	struct waiter *w = state_job_more(job) ? jm_calloc(1, sizeof *w) : NULL;
	if (w != NULL) {
		deadline_init(&w->timer, DEADLINE_WAIT);
		if (deadline_heap_set(&core->state.deadlines, &w->timer,
		                      jm_mono_us() + (uint64_t)timeout_ms * 1000) != 0) {
			free(w);
			w = NULL;
		}
	}
	if (w == NULL) {
		core_reply_errorf(core, req, out, JM_ENOMEM, "%s: broker out of memory",
		                  proto_type_name(req->msg.type));
		return false;
	}
	w->req = req;
	w->job = job;
	TAILQ_INSERT_TAIL(&job->more->waiters, w, link);
	return true;
}

void handle_wait(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_wait *wait = &req->msg.u.wait;
	struct job *job = jobtable_find(&core->state.jobs, wait->job_id);
	if (job == NULL) {
		reply_not_found(core, req, "wait", wait->job_id, out);
		return;
	}
	core_wait_for_job(core, req, job, wait->timeout_ms, out);
}

void handle_cancel(struct core *core, struct request *req, struct outbox *out)
{
	uint64_t job_id = req->msg.u.job_ref.job_id;
	struct job *job = jobtable_find(&core->state.jobs, job_id);
	if (job == NULL) {
		reply_not_found(core, req, "cancel", job_id, out);
		return;
	}
	if (state_job_is_finished(job)) {
		core_reply_errorf(
		    core, req, out, JM_ESTATE,
		    "cancel: job %llu is already %s: only pending, delayed or active jobs "
		    "can be cancelled",
		    (unsigned long long)job_id, proto_state_name(job->state));
		return;
	}
	struct jm_err err = {0};
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_CANCEL};
	rec.u.cancel.job_id = job_id;
	rec.u.cancel.at_us = jm_wall_us();
	if (!journal_is_writable(core->journal, &err) || core_commit(core, &rec, &err) != 0) {
		core_reply_errorf(core, req, out, err.code ? err.code : JM_ENOSPC, "cancel: %s",
		                  jm_err_text(&err));
		return;
	}
	/* An active job's worker learns it from its next heartbeat reply. */
	core_release_waiters(core, job, out);
	core_reply_job(core, req, job, false, out);
}

/* The jobs a REVIVE takes, journaled together (see handle_revive). */
struct revival {
	uint32_t count;
	struct proto_record *recs;
	size_t *lens;
	uint64_t *ids;
	struct jm_buf bodies;
};

static void revival_fini(struct revival *r)
{
	free(r->recs);
	free(r->lens);
	free(r->ids);
	jm_buf_fini(&r->bodies);
}

/* REVIVE: every dead-lettered job it names (one, or all of the queue's, at
 * most PROTO_JOBS_PER_MESSAGE_MAX), all or none, as admission does (and
 * DEAD_REMOVE the same with DROP records: the dead letters removed):
 * reserve room in the ready heap and encode every record, journal them in
 * one journal_append_many, then apply, which cannot fail. So a refused
 * bulk retry revives nothing, and the reply lists exactly the jobs
 * revived (POST /v1/queues/{q}/dead/retry answers their count). */
void handle_revive(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_revive *revive = &req->msg.u.revive;
	bool remove = req->msg.type == PROTO_DEAD_REMOVE;
	const char *verb = remove ? "dead-letter remove" : "revive";
	struct jm_err err = {0};
	if (!journal_is_writable(core->journal, &err)) {
		core_reply_errorf(core, req, out, err.code, "%s: %s", verb, jm_err_text(&err));
		return;
	}
	struct queue *q = queue_find(&core->state.queues, revive->queue);
	if (revive->job_id) {
		struct job *job = jobtable_find(&core->state.jobs, revive->job_id);
		if (job == NULL || job->queue != q) {
			core_reply_errorf(core, req, out, JM_ENOTFOUND,
			                  "%s: job %llu not found in queue %s", verb,
			                  (unsigned long long)revive->job_id, revive->queue);
			return;
		}
		if (job->state != PROTO_STATE_FAILED) {
			core_reply_errorf(
			    core, req, out, JM_ESTATE,
			    "%s: job %llu is %s: only dead-lettered (failed) jobs can "
			    "be %s",
			    verb, (unsigned long long)job->id, proto_state_name(job->state),
			    remove ? "removed" : "retried");
			return;
		}
	}
	uint32_t cap =
	    q ? (uint32_t)(q->failed < PROTO_JOBS_PER_MESSAGE_MAX ? q->failed
	                                                          : PROTO_JOBS_PER_MESSAGE_MAX)
	      : 0;
	struct revival r = {0};
	jm_buf_init(&r.bodies);
	r.recs = jm_calloc(cap + 1, sizeof *r.recs);
	r.lens = jm_calloc(cap + 1, sizeof *r.lens);
	r.ids = jm_calloc(cap + 1, sizeof *r.ids);
	int rc = r.recs && r.lens && r.ids ? 0 : JM_ENOMEM;
	if (rc != 0)
		jm_err_set(&err, rc, "broker out of memory");
	uint64_t now = jm_wall_us();
	for (struct job *job = q ? TAILQ_FIRST(&q->finished[QUEUE_FAILED]) : NULL;
	     rc == 0 && job != NULL && r.count < cap; job = TAILQ_NEXT(job, finished_link)) {
		if (revive->job_id != 0 && revive->job_id != job->id)
			continue;
		if (remove && job_has_waiters(job)) {
			/* A DROP would not apply: none of them is journaled. */
			rc = jm_err_set(&err, JM_ESTATE, "job %llu has a waiter: try again",
			                (unsigned long long)job->id);
			break;
		}
		struct proto_record *rec = &r.recs[r.count];
		rec->version = PROTO_RECORD_VERSION;
		if (remove) {
			rec->type = PROTO_REC_DROP;
			rec->u.drop.job_id = job->id;
			rec->u.drop.at_us = now;
		} else {
			rec->type = PROTO_REC_REVIVE;
			rec->u.revive.job_id = job->id;
			rec->u.revive.at_us = now;
			rec->u.revive.lease = job->lease;
		}
		size_t before = r.bodies.len;
		rc = proto_record_encode(rec, &r.bodies);
		if (rc != 0) {
			jm_err_set(&err, rc, "encoding a revive record failed");
			break;
		}
		r.lens[r.count] = r.bodies.len - before;
		r.ids[r.count++] = job->id;
	}
	uint64_t last_lsn = 0;
	if (rc == 0 && r.count > 0)
		rc = journal_append_many(core->journal, r.bodies.data, r.lens, r.count, &last_lsn,
		                         &err);
	if (rc != 0) {
		core_reply_errorf(core, req, out, rc, "%s: %s", verb, jm_err_text(&err));
		revival_fini(&r);
		return;
	}
	for (uint32_t i = 0; i < r.count; i++) {
		struct job *job = jobtable_find(&core->state.jobs, r.ids[i]);
		uint64_t prior_since_us = job ? job->updated_us : 0;
		if (state_apply(&core->state, &r.recs[i], jm_wall_us(), &err) != 0)
			jm_error("applying a %s record after journaling it failed: %s", verb,
			         jm_err_text(&err));
		else
			core_committed(core, &r.recs[i], last_lsn - r.count + 1 + i,
			               prior_since_us);
	}
	struct proto_msg msg = {.type = PROTO_REVIVED};
	msg.u.revived.ids_count = r.count;
	msg.u.revived.ids = r.ids;
	core_reply(core, req, &msg, out);
	revival_fini(&r);
	core_pump(core, out);
}
