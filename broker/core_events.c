/* Events the core publishes as state changes (see events.h): a job's state
 * and progress under job/<id>, queue/<name> and batch/<id>; a batch's
 * counters, coalesced; workers joining and being lost. Nothing is published
 * before core_attach_events, so replay publishes nothing. */
#include "core_internal.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "events.h"

void core_publish_batch(struct core *core, struct batch *b)
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
	b->last_event_us = jm_mono_us();
	b->event_due = false;
	deadline_heap_remove(&core->state.deadlines, &b->event_timer);
}

/* A batch changed. Its event is coalesced to one per
 * BATCH_EVENT_INTERVAL_MS, but a finished batch's goes out at once. */
void core_batch_touched(struct core *core, struct batch *b)
{
	if (core->events == NULL)
		return;
	uint64_t now = jm_mono_us();
	uint64_t next_us = b->last_event_us + BATCH_EVENT_INTERVAL_MS * 1000;
	if (batch_is_finished(b) || now >= next_us) {
		core_publish_batch(core, b);
	} else if (!b->event_due) {
		b->event_due = true;
		deadline_heap_set(&core->state.deadlines, &b->event_timer, next_us);
	}
}

void core_publish_job_state(struct core *core, const struct job *job)
{
	/* Every change of every job comes here: with nobody listening, not
	 * even the event and its topics are made (a submit of many spent ~7 %
	 * of its CPU on them). */
	if (!events_listened_to(core->events))
		return;
	struct proto_event ev = {.kind = PROTO_EVENT_JOB_STATE, .at_us = job->updated_us};
	ev.job_id = job->id;
	ev.batch_id = job_batch_id(job);
	memcpy(ev.queue, job->queue->name, sizeof ev.queue);
	memcpy(ev.type, job->attrs.type, sizeof ev.type);
	ev.state = job->state;
	ev.attempt = job->attempt;
	if (job_holder(job))
		memcpy(ev.worker_id, job_holder(job)->id, sizeof ev.worker_id);
	const char *last_error = job_last_error(job);
	if (last_error && (job->state == PROTO_STATE_FAILED || job->state == PROTO_STATE_DELAYED))
		ev.message =
		    (struct proto_bytes){(const uint8_t *)last_error, (uint32_t)strlen(last_error)};
	events_push_job(core->events, &ev, core->last_lsn);
}

void core_publish_worker(struct core *core, const struct worker *w, uint32_t kind, const char *why)
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
