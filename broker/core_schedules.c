/* Schedules in the core: a run is submitted as a SUBMIT's job is (the same
 * queue resolution and job spec rules, journaled before anyone hears of
 * it), in one SCHEDULE_FIRE record that also moves the schedule's anchor,
 * so a crash either keeps both the job and the anchor or neither: a run is
 * never doubled nor lost (schedules.h has the catch-up rule). */
#include "core_internal.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define SCHEDULE_RETRY_US 1000000

/* Tries again in a second: the journal, the queue registry or a limit
 * refused. A hold is logged once, when it starts (the retries that follow
 * at debug level), and once more when a run goes through again: a schedule
 * held for an hour by a full queue writes two lines, not 3,600. */
static void retry_later(struct core *core, struct schedule *s, const char *why)
{
	if (s->held_since_us == 0) {
		s->held_since_us = jm_wall_us();
		jm_warn("schedule %s: run not submitted, trying again every second (logged once "
		        "until a run goes through): %s",
		        s->name, why);
	} else {
		jm_debug("schedule %s: run still not submitted: %s", s->name, why);
	}
	s->held_retries++;
	deadline_heap_set(&core->state.deadlines, &s->timer, jm_mono_us() + SCHEDULE_RETRY_US);
}

/* A run went through: ends a hold, saying how long it lasted. */
static void hold_ended(struct schedule *s)
{
	if (s->held_since_us == 0)
		return;
	uint64_t now = jm_wall_us();
	jm_info(
	    "schedule %s: runs submitted again after %llu s held (%u tries refused)", s->name,
	    (unsigned long long)(now > s->held_since_us ? (now - s->held_since_us) / 1000000 : 0),
	    s->held_retries);
	s->held_since_us = 0;
	s->held_retries = 0;
}

void core_schedule_fired(struct core *core, struct schedule *s, struct outbox *out)
{
	uint64_t now = jm_wall_us();
	uint64_t run = schedule_due_run(s, now);
	if (run == 0) {
		/* Not due by the wall clock (it was set back): wait again. */
		schedules_arm(&core->state.deadlines, s, now);
		return;
	}
	struct jm_err err = {0};
	if (!journal_is_writable(core->journal, &err)) {
		retry_later(core, s, jm_err_text(&err));
		return;
	}
	struct queue *q;
	bool created = queue_find(&core->state.queues, s->queue) == NULL;
	int rc = queue_get(&core->state.queues, s->queue, &q);
	if (rc != 0) {
		jm_err_set(&err, rc, "queue %s cannot be created: %s (at most %u queues)", s->queue,
		           jm_strerror(rc), core->state.queues.max_queues);
		retry_later(core, s, jm_err_text(&err));
		return;
	}
	struct proto_record rec = {.version = PROTO_RECORD_VERSION,
	                           .type = PROTO_REC_SCHEDULE_FIRE};
	struct proto_rec_schedule_fire *f = &rec.u.schedule_fire;
	memcpy(f->name, s->name, sizeof f->name);
	f->scheduled_for_us = run;
	struct proto_rec_job *r = &f->job;
	r->job_id = core->state.next_job_id;
	memcpy(r->attrs.queue, s->queue, sizeof r->attrs.queue);
	memcpy(r->attrs.type, s->type, sizeof r->attrs.type);
	r->payload = (struct proto_bytes){s->payload, s->payload_len};
	r->attrs.priority = s->priority;
	r->attrs.max_attempts = s->max_attempts ? s->max_attempts : q->policy.max_attempts;
	r->attrs.timeout_ms = s->timeout_ms ? s->timeout_ms : q->policy.timeout_ms;
	r->state = PROTO_STATE_PENDING;
	/* run_at of a pending job names the run it is for (a worker or the
	 * status of the job can tell which run this was); it is cleared when
	 * the job is leased, as a delayed job's is. */
	r->run_at_us = run;
	r->attrs.created_us = now;
	r->updated_us = now;
	/* Admitted as a submit of its job is (core_admit.c): within the
	 * limits, and all it needs reserved before the record is journaled. */
	struct job *job = NULL;
	rc = core_admit_one(core, q, r, &job, &err);
	uint64_t lsn = 0;
	if (rc == 0) {
		jm_buf_reset(&core->scratch);
		rc = proto_record_encode(&rec, &core->scratch);
		if (rc != 0)
			jm_err_set(&err, rc, "encoding its record failed");
	}
	if (rc == 0)
		rc = journal_append(core->journal, core->scratch.data, core->scratch.len, &lsn,
		                    &err);
	if (rc != 0) {
		if (job)
			state_job_discard(&core->state, job);
		if (created)
			queue_drop_if_empty(&core->state.queues, q);
		retry_later(core, s, jm_err_text(&err));
		return;
	}
	hold_ended(s);
	uint64_t applied_us = jm_wall_us();
	state_apply_prepared_job(&core->state, r, job, applied_us);
	/* The schedule's timer fired and left the heap: re-arming it takes
	 * the room reserved. */
	(void)schedules_apply(&core->state.schedules, &core->state.deadlines, &rec, applied_us,
	                      &err);
	core_committed(core, &rec, lsn, 0);
	jm_debug("schedule %s: run for %llu us submitted as job %llu", f->name,
	         (unsigned long long)run, (unsigned long long)r->job_id);
	core_pump(core, out);
}

/* Fills info from s, borrowing its buffers. */
static void fill_info(const struct schedule *s, struct proto_schedule_info *info)
{
	memset(info, 0, sizeof *info);
	memcpy(info->name, s->name, sizeof info->name);
	info->expr = (struct proto_bytes){(const uint8_t *)s->expr, (uint32_t)strlen(s->expr)};
	info->zone = (struct proto_bytes){(const uint8_t *)s->zone, (uint32_t)strlen(s->zone)};
	memcpy(info->queue, s->queue, sizeof info->queue);
	memcpy(info->type, s->type, sizeof info->type);
	info->payload = (struct proto_bytes){s->payload, s->payload_len};
	info->priority = s->priority;
	info->max_attempts = s->max_attempts;
	info->timeout_ms = s->timeout_ms;
	/* A new schedule's anchor is its put time: it has not run yet. */
	info->last_fired_us = s->anchor_us != s->put_us ? s->anchor_us : 0;
	info->next_run_us = s->next_run_us;
}

static bool bytes_equal(const struct proto_bytes *b, const void *p, size_t len)
{
	return b->len == len && (len == 0 || memcmp(b->ptr, p, len) == 0);
}

/* A put that changes nothing is answered without a record (the YAML's
 * schedules are put at every start). */
static bool same_schedule(const struct schedule *s, const struct proto_schedule_info *p)
{
	return bytes_equal(&p->expr, s->expr, strlen(s->expr)) &&
	       bytes_equal(&p->zone, s->zone, strlen(s->zone)) && strcmp(p->queue, s->queue) == 0 &&
	       strcmp(p->type, s->type) == 0 &&
	       bytes_equal(&p->payload, s->payload, s->payload_len) && p->priority == s->priority &&
	       p->max_attempts == s->max_attempts && p->timeout_ms == s->timeout_ms;
}

static void reply_one(struct core *core, struct request *req, const struct schedule *s,
                      struct outbox *out)
{
	struct proto_schedule_info info;
	struct proto_msg msg = {.type = PROTO_SCHEDULES};
	if (s != NULL) {
		fill_info(s, &info);
		msg.u.schedules.schedules_count = 1;
		msg.u.schedules.schedules = &info;
	}
	core_reply(core, req, &msg, out);
}

/* Puts schedule p (checked, journaled unless identical): 0 with *out the
 * stored schedule, or an error in err naming it. */
static int schedule_put(struct core *core, const struct proto_schedule_info *p,
                        const struct schedule **out, struct jm_err *err)
{
	char expr[CRON_TEXT_MAX], zone[CRON_ZONE_MAX];
	if (p->expr.len >= sizeof expr || p->zone.len >= sizeof zone)
		return jm_err_set(err, JM_EINVAL,
		                  "schedule %s: expression or zone too long (at most %zu and %zu "
		                  "bytes)",
		                  p->name, sizeof expr - 1, sizeof zone - 1);
	memcpy(expr, p->expr.ptr, p->expr.len);
	expr[p->expr.len] = '\0';
	if (p->zone.len > 0)
		memcpy(zone, p->zone.ptr, p->zone.len);
	zone[p->zone.len] = '\0';
	struct cron_expr cron;
	uint64_t now = jm_wall_us();
	int64_t first = 0;
	int rc = schedules_check(expr, zone, &cron, err);
	if (rc == 0)
		rc = cron_next(&cron, zone, (int64_t)now, &first, err);
	if (rc != 0) {
		/* An unknown zone or a date that never comes is a bad argument
		 * here, not a missing object. */
		err->code = rc == JM_ENOTFOUND ? JM_EINVAL : rc;
		return jm_err_prefix(err, "schedule %s", p->name);
	}
	struct schedule *old = schedules_find(&core->state.schedules, p->name);
	if (old != NULL && same_schedule(old, p)) {
		*out = old;
		return 0;
	}
	if (old == NULL && core->state.schedules.count >= SCHEDULES_MAX)
		return jm_err_set(err, JM_ELIMIT,
		                  "schedule %s: at most %d schedules: remove one first", p->name,
		                  SCHEDULES_MAX);
	if (!journal_is_writable(core->journal, err))
		return jm_err_prefix(err, "schedule %s", p->name);
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_SCHEDULE};
	struct proto_rec_schedule *r = &rec.u.schedule;
	memcpy(r->name, p->name, sizeof r->name);
	r->expr = p->expr;
	r->zone = p->zone;
	memcpy(r->queue, p->queue, sizeof r->queue);
	memcpy(r->type, p->type, sizeof r->type);
	r->payload = p->payload;
	r->priority = p->priority;
	r->max_attempts = p->max_attempts;
	r->timeout_ms = p->timeout_ms;
	/* A replaced schedule keeps its anchor, so changing a template neither
	 * repeats nor skips a run; a new one runs first after now. */
	r->last_fired_us = old != NULL ? old->anchor_us : now;
	r->at_us = now;
	/* Prepared (allocated, its timer's room reserved), then journaled,
	 * then put, which cannot fail: nothing is journaled that the registry
	 * does not hold (test_core_schedules). */
	struct state *st = &core->state;
	struct schedule *prepared;
	rc = schedules_prepare_put(&st->schedules, &st->deadlines, r, &prepared, err);
	if (rc != 0)
		return rc;
	uint64_t lsn;
	rc = core_journal(core, &rec, &lsn, err);
	if (rc != 0) {
		schedules_discard(prepared);
		return jm_err_prefix(err, "schedule %s", p->name);
	}
	schedules_put_prepared(&st->schedules, &st->deadlines, prepared, jm_wall_us());
	core_committed(core, &rec, lsn, 0);
	*out = prepared;
	return 0;
}

void handle_schedule_put(struct core *core, struct request *req, struct outbox *out)
{
	struct jm_err err = {0};
	const struct schedule *s = NULL;
	int rc = schedule_put(core, &req->msg.u.schedule_put, &s, &err);
	if (rc != 0) {
		core_reply_errorf(core, req, out, err.code ? err.code : rc, "%s",
		                  jm_err_text(&err));
		return;
	}
	reply_one(core, req, s, out);
}

int core_schedule_declare(struct core *core, const struct proto_schedule_info *p,
                          struct jm_err *err)
{
	struct outbox out;
	core_outbox_init(&out);
	pthread_mutex_lock(&core->lock);
	const struct schedule *s = NULL;
	int rc = schedule_put(core, p, &s, err);
	core_unlock_and_flush(core, &out);
	return rc;
}

void handle_schedule_delete(struct core *core, struct request *req, struct outbox *out)
{
	const char *name = req->msg.u.schedule_ref.name;
	if (schedules_find(&core->state.schedules, name) == NULL) {
		core_reply_errorf(core, req, out, JM_ENOTFOUND,
		                  "schedule %s not found: `jobmesh schedule list` shows them",
		                  name);
		return;
	}
	struct jm_err err = {0};
	if (!journal_is_writable(core->journal, &err)) {
		core_reply_errorf(core, req, out, err.code, "schedule %s: %s", name,
		                  jm_err_text(&err));
		return;
	}
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_SCHEDULE};
	memcpy(rec.u.schedule.name, name, sizeof rec.u.schedule.name);
	rec.u.schedule.deleted = true;
	rec.u.schedule.at_us = jm_wall_us();
	/* A delete unlinks and frees: it cannot fail once journaled. */
	int rc = core_commit(core, &rec, &err);
	if (rc != 0) {
		core_reply_errorf(core, req, out, rc, "schedule %s: %s", name, jm_err_text(&err));
		return;
	}
	reply_one(core, req, NULL, out);
}

void handle_schedule_list(struct core *core, struct request *req, struct outbox *out)
{
	const struct schedule_registry *reg = &core->state.schedules;
	struct proto_schedule_info *infos = NULL;
	if (reg->count > 0) {
		infos = calloc(reg->count, sizeof *infos);
		if (infos == NULL) {
			core_reply_errorf(core, req, out, JM_ENOMEM,
			                  "schedule-list: broker out of memory");
			return;
		}
	}
	uint32_t n = 0;
	const struct schedule *s;
	/* A tenant sees the schedules whose runs go to its queues. */
	TAILQ_FOREACH(s, &reg->list, link)
	if (core_auth_visible(req, s->queue))
		fill_info(s, &infos[n++]);
	struct proto_msg msg = {.type = PROTO_SCHEDULES};
	msg.u.schedules.schedules_count = n;
	msg.u.schedules.schedules = infos;
	core_reply_view(core, req, &msg, out);
	free(infos);
}
