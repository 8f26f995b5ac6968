/* Runtime queue settings and the flow control they drive: QUEUE_SET
 * (pause, resume, active and rate limits, retention, default attempts, the
 * key window), journaled as one QUEUE record holding all the queue has of
 * its own, and the rate timer that wakes parked fetches when a
 * rate-limited queue may start a job again. The check itself is
 * queue_has_capacity's (queue.c). */
#include "core_internal.h"

#include <string.h>

#include "clock.h"
#include "log.h"

/* q's settings after applying req's changes to what q has now. */
static void merge_settings(const struct queue *q, const struct proto_queue_settings *req,
                           struct proto_queue_settings *out)
{
	queue_settings_fill(q, out);
	uint32_t m = req->set_mask;
	if (m & PROTO_QSET_PAUSED)
		out->paused = req->paused;
	if (m & PROTO_QSET_MAX_ACTIVE)
		out->max_active = req->max_active;
	if (m & PROTO_QSET_RATE) {
		out->rate_jobs = req->rate_jobs;
		out->rate_period_ms = req->rate_jobs ? req->rate_period_ms : 0;
	}
	if (m & PROTO_QSET_MAX_ATTEMPTS)
		out->max_attempts = req->max_attempts;
	/* keep_finished is all three states; the per-state ones after it win.
	 * The record holds the per-state settings only (queue_settings_apply
	 * still reads keep_finished in an older journal's records). */
	if (m & PROTO_QSET_KEEP_FINISHED) {
		out->keep_completed = out->keep_failed = out->keep_cancelled = req->keep_finished;
		m = (m & ~(uint32_t)PROTO_QSET_KEEP_FINISHED) | PROTO_QSET_KEEP_COMPLETED |
		    PROTO_QSET_KEEP_FAILED | PROTO_QSET_KEEP_CANCELLED;
	}
	if (m & PROTO_QSET_KEEP_AGE) {
		out->keep_completed_age_ms = out->keep_failed_age_ms = out->keep_cancelled_age_ms =
		    req->keep_finished_age_ms;
		m = (m & ~(uint32_t)PROTO_QSET_KEEP_AGE) | PROTO_QSET_KEEP_COMPLETED_AGE |
		    PROTO_QSET_KEEP_FAILED_AGE | PROTO_QSET_KEEP_CANCELLED_AGE;
	}
	if (req->set_mask & PROTO_QSET_KEEP_COMPLETED)
		out->keep_completed = req->keep_completed;
	if (req->set_mask & PROTO_QSET_KEEP_COMPLETED_AGE)
		out->keep_completed_age_ms = req->keep_completed_age_ms;
	if (req->set_mask & PROTO_QSET_KEEP_FAILED)
		out->keep_failed = req->keep_failed;
	if (req->set_mask & PROTO_QSET_KEEP_FAILED_AGE)
		out->keep_failed_age_ms = req->keep_failed_age_ms;
	if (req->set_mask & PROTO_QSET_KEEP_CANCELLED)
		out->keep_cancelled = req->keep_cancelled;
	if (req->set_mask & PROTO_QSET_KEEP_CANCELLED_AGE)
		out->keep_cancelled_age_ms = req->keep_cancelled_age_ms;
	out->keep_finished = out->keep_completed;
	out->keep_finished_age_ms = out->keep_completed_age_ms;
	if (m & PROTO_QSET_KEY_WINDOW)
		out->key_window_ms = req->key_window_ms;
	if (m & PROTO_QSET_GROUP_LIMIT)
		out->group_limit = req->group_limit;
	out->set_mask = q->own_settings | m;
	/* Resuming is going back to the default, not a setting to keep. */
	if ((out->set_mask & PROTO_QSET_PAUSED) && !out->paused)
		out->set_mask &= ~(uint32_t)PROTO_QSET_PAUSED;
	if ((out->set_mask & PROTO_QSET_RATE) && out->rate_jobs == 0)
		out->set_mask &= ~(uint32_t)PROTO_QSET_RATE;
}

static bool settings_equal(const struct proto_queue_settings *a,
                           const struct proto_queue_settings *b)
{
	return a->set_mask == b->set_mask && a->paused == b->paused &&
	       a->max_active == b->max_active && a->rate_jobs == b->rate_jobs &&
	       a->rate_period_ms == b->rate_period_ms && a->max_attempts == b->max_attempts &&
	       a->keep_finished == b->keep_finished &&
	       a->keep_finished_age_ms == b->keep_finished_age_ms &&
	       a->key_window_ms == b->key_window_ms && a->group_limit == b->group_limit &&
	       a->keep_completed == b->keep_completed &&
	       a->keep_completed_age_ms == b->keep_completed_age_ms &&
	       a->keep_failed == b->keep_failed && a->keep_failed_age_ms == b->keep_failed_age_ms &&
	       a->keep_cancelled == b->keep_cancelled &&
	       a->keep_cancelled_age_ms == b->keep_cancelled_age_ms;
}

void handle_queue_set(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_queue_settings *want = &req->msg.u.queue_settings;
	struct state *s = &core->state;
	struct queue *q = queue_find(&s->queues, want->queue);
	if (q == NULL && want->set_mask == 0) {
		/* Nothing to change on a queue nobody used: its defaults. */
		struct queue_policy p = s->queues.default_policy;
		struct queue shadow = {.policy = p};
		memcpy(shadow.name, want->queue, sizeof shadow.name);
		struct proto_msg msg = {.type = PROTO_QUEUE_SETTINGS};
		queue_settings_fill(&shadow, &msg.u.queue_settings);
		core_reply_view(core, req, &msg, out);
		return;
	}
	struct jm_err err = {0};
	if (want->set_mask != 0 && !journal_is_writable(core->journal, &err)) {
		core_reply_errorf(core, req, out, err.code, "queue-set: %s", jm_err_text(&err));
		return;
	}
	bool created = q == NULL;
	int rc = created ? queue_get(&s->queues, want->queue, &q) : 0;
	if (rc != 0) {
		core_reply_errorf(core, req, out, rc, "queue-set: queue %s cannot be created: %s",
		                  want->queue,
		                  rc == JM_ELIMIT ? "the queue limit (--max-queues) is reached"
		                                  : jm_strerror(rc));
		return;
	}
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_QUEUE};
	merge_settings(q, want, &rec.u.queue.settings);
	rec.u.queue.at_us = jm_wall_us();
	struct proto_queue_settings now;
	queue_settings_fill(q, &now);
	if (!settings_equal(&now, &rec.u.queue.settings)) {
		bool was_held = !queue_has_capacity(q);
		rc = core_commit(core, &rec, &err);
		if (rc != 0) {
			if (created)
				queue_drop_if_empty(&s->queues, q);
			core_reply_errorf(core, req, out, rc, "queue-set: %s", jm_err_text(&err));
			return;
		}
		/* A new rate or none: the next start is one new interval
		 * after the last (queue_rate_ready_mono_us); the timer is set
		 * again by the next fetch held back. */
		deadline_heap_remove(&s->deadlines, &q->rate_timer);
		jm_info("queue %s: settings changed (paused %s, limit %u, rate %u per %llu ms)",
		        q->name, q->paused ? "yes" : "no", q->policy.max_active,
		        q->policy.rate_jobs, (unsigned long long)q->policy.rate_period_ms);
		(void)was_held;
	}
	struct proto_msg msg = {.type = PROTO_QUEUE_SETTINGS};
	queue_settings_fill(q, &msg.u.queue_settings);
	core_reply(core, req, &msg, out);
	core_pump(core, out);
}

void core_queue_rate_wait(struct core *core, struct queue *q)
{
	uint64_t at = queue_rate_ready_mono_us(q);
	if (at == 0 || queue_ready_count(q) == 0 || q->rate_timer.heap_index != DEADLINE_UNSET)
		return;
	if (deadline_heap_set(&core->state.deadlines, &q->rate_timer, at) != 0)
		jm_warn("queue %s: no room for its rate timer: parked fetches wait for their "
		        "next request",
		        q->name);
}

void core_queue_rate_fired(struct core *core, struct queue *q, struct outbox *out)
{
	(void)q;
	core_pump(core, out);
}
