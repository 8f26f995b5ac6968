/* Schedules in the core: a run is submitted as a SUBMIT's job is (the same
 * queue resolution and job spec rules, journaled before anyone hears of
 * it), in one SCHEDULE_FIRE record that also moves the schedule's anchor,
 * so a crash either keeps both the job and the anchor or neither: a run is
 * never doubled nor lost (schedules.h has the catch-up rule). */
#include "core_internal.h"

#include <string.h>

#include "clock.h"
#include "log.h"

#define SCHEDULE_RETRY_US 1000000

/* Tries again in a second: the journal or the queue registry refused. */
static void retry_later(struct core *core, struct schedule *s, const char *why)
{
	jm_warn("schedule %s: run not submitted, trying again in 1 s: %s", s->name, why);
	deadline_heap_set(&core->state.deadlines, &s->timer, jm_mono_us() + SCHEDULE_RETRY_US);
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
	memcpy(r->queue, s->queue, sizeof r->queue);
	memcpy(r->type, s->type, sizeof r->type);
	r->payload = (struct proto_bytes){s->payload, s->payload_len};
	r->priority = s->priority;
	r->max_attempts = s->max_attempts ? s->max_attempts : q->policy.max_attempts;
	r->timeout_ms = s->timeout_ms ? s->timeout_ms : q->policy.timeout_ms;
	r->state = PROTO_STATE_PENDING;
	r->created_us = now;
	r->updated_us = now;
	rc = core_commit(core, &rec, &err);
	if (rc != 0) {
		retry_later(core, s, jm_err_text(&err));
		return;
	}
	jm_debug("schedule %s: run for %llu us submitted as job %llu", f->name,
	         (unsigned long long)run, (unsigned long long)r->job_id);
	core_pump(core, out);
}
