/* The timer thread, deadline firing and the retention sweep.
 *
 * One heap orders every deadline (deadline.h); the thread sleeps until the
 * earliest, fires what is due, and hands ready jobs to parked fetches. The
 * retention sweep is one of those deadlines, once a second: it drops
 * finished jobs past their queue's count or age limit. */
#include "core_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"

static void retention_sweep(struct core *core, struct outbox *out);

void core_deadline_fired(struct core *core, struct deadline *d, struct outbox *out)
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
		                   (unsigned long long)job->attrs.timeout_ms);
		struct jm_err err = {0};
		if (core_settle_failure(core, job, error, (size_t)len, false, out, &err) != 0) {
			jm_warn("job %llu: timing out failed: %s", (unsigned long long)job->id,
			        jm_err_text(&err));
			deadline_heap_set(&core->state.deadlines, d, jm_mono_us() + 1000000);
		}
		break;
	}
	case DEADLINE_FETCH:
		core_unpark_fetch(core, container_of(d, struct parked_fetch, timer), out, true);
		break;
	case DEADLINE_WAIT: {
		struct waiter *w = container_of(d, struct waiter, timer);
		TAILQ_REMOVE(&w->job->more->waiters, w, link);
		core_reply_job(core, w->req, w->job, true, out);
		free(w);
		break;
	}
	case DEADLINE_WORKER_LOST:
		core_worker_lost(core, container_of(d, struct worker, lost_timer), out);
		break;
	case DEADLINE_RETENTION:
		retention_sweep(core, out);
		break;
	case DEADLINE_BATCH_EVENT:
		core_publish_batch(core, container_of(d, struct batch, event_timer));
		break;
	case DEADLINE_SCHEDULE:
		core_schedule_fired(core, schedule_of_timer(d), out);
		break;
	case DEADLINE_QUEUE_RATE:
		core_queue_rate_fired(core, container_of(d, struct queue, rate_timer), out);
		break;
	}
}

void *core_timer_main(void *arg)
{
	struct core *core = arg;
	pthread_mutex_lock(&core->lock);
	while (!core->stopping) {
		struct outbox out;
		core_outbox_init(&out);
		uint64_t now = jm_mono_us();
		struct deadline *d;
		while ((d = deadline_heap_peek(&core->state.deadlines)) != NULL && d->at_us <= now)
			core_deadline_fired(core, d, &out);
		core_pump(core, &out);
		if (out.head) {
			core_unlock_and_flush(core, &out);
			pthread_mutex_lock(&core->lock);
			continue;
		}
		if (core->committed) {
			core->committed = false;
			compactor_consider(core);
		}
		d = deadline_heap_peek(&core->state.deadlines);
		if (d == NULL) {
			pthread_cond_wait(&core->timer_wake, &core->lock);
		} else {
			struct timespec until = jm_timespec_of_us(d->at_us);
			pthread_cond_timedwait(&core->timer_wake, &core->lock, &until);
		}
	}
	pthread_mutex_unlock(&core->lock);
	return NULL;
}

struct retention_pass {
	struct core *core;
	struct outbox *out;
	uint64_t now_us;
};

/* Drops from the head of each of q's finished lists (oldest first) while
 * the list is over its state's count or its head over its age: each state
 * on its own, so dead letters kept without limit never hold back (or get
 * swept with) the completed jobs. */
static void retention_queue_cb(struct queue *q, void *arg)
{
	struct retention_pass *pass = arg;
	const uint64_t *counts[QUEUE_FINISHED_STATES_] = {&q->completed, &q->failed, &q->cancelled};
	for (int i = 0; i < QUEUE_FINISHED_STATES_; i++) {
		const struct queue_keep *keep = &q->policy.keep[i];
		uint64_t max_age_us = keep->age_ms * 1000;
		struct job *job;
		while ((job = TAILQ_FIRST(&q->finished[i])) != NULL) {
			bool too_many = *counts[i] > keep->count;
			bool too_old = max_age_us && job->updated_us + max_age_us < pass->now_us;
			if (!too_many && !too_old)
				break;
			uint64_t id = job->id;
			struct proto_record rec = {.version = PROTO_RECORD_VERSION,
			                           .type = PROTO_REC_DROP};
			rec.u.drop.job_id = id;
			rec.u.drop.at_us = pass->now_us;
			struct jm_err err = {0};
			if (core_commit(pass->core, &rec, &err) != 0)
				return; /* journal refuses: keep everything */
			job = TAILQ_FIRST(&q->finished[i]);
			if (job != NULL && job->id == id)
				break; /* not dropped (a waiter holds it): next sweep */
		}
	}
}

static void retention_sweep(struct core *core, struct outbox *out)
{
	struct retention_pass pass = {core, out, jm_wall_us()};
	if (journal_is_writable(core->journal, NULL))
		queue_each(&core->state.queues, retention_queue_cb, &pass);
	deadline_heap_set(&core->state.deadlines, &core->retention_timer,
	                  jm_mono_us() + RETENTION_SWEEP_MS * 1000);
	compactor_consider(core);
}
