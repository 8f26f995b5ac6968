/* Named schedules (see schedules.h): the registry, applying SCHEDULE and
 * SCHEDULE_FIRE records, the catch-up rule and the timer. */
#include "schedules.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "heap.h"
#include "log.h"

void schedules_init(struct schedule_registry *reg)
{
	TAILQ_INIT(&reg->list);
	reg->count = 0;
}

static void schedule_free(struct schedule *s)
{
	if (s == NULL)
		return;
	free(s->payload);
	free(s);
}

void schedules_fini(struct schedule_registry *reg)
{
	struct schedule *s;
	while ((s = TAILQ_FIRST(&reg->list)) != NULL) {
		TAILQ_REMOVE(&reg->list, s, link);
		schedule_free(s);
	}
	reg->count = 0;
}

struct schedule *schedules_find(const struct schedule_registry *reg, const char *name)
{
	struct schedule *s;
	TAILQ_FOREACH(s, &reg->list, link)
	if (strcmp(s->name, name) == 0)
		return s;
	return NULL;
}

struct schedule *schedule_of_timer(struct deadline *d)
{
	return (struct schedule *)((char *)d - offsetof(struct schedule, timer));
}

int schedules_check(const char *expr, const char *zone, struct cron_expr *out, struct jm_err *err)
{
	struct cron_expr local;
	int rc = cron_parse(expr, out != NULL ? out : &local, err);
	if (rc == 0 && zone != NULL && zone[0] != '\0')
		rc = cron_zone_check(zone, err);
	return rc;
}

/* The first run strictly after after_us; 0 when there is none. */
static uint64_t run_after(const struct schedule *s, uint64_t after_us)
{
	int64_t next = 0;
	struct jm_err err;
	if (cron_next(&s->cron, s->zone, (int64_t)after_us, &next, &err) != 0 || next <= 0)
		return 0;
	return (uint64_t)next;
}

uint64_t schedule_due_run(const struct schedule *s, uint64_t now_us)
{
	if (s->next_run_us == 0 || s->next_run_us > now_us)
		return 0;
	if (s->cron.every_s > 0) {
		uint64_t every_us = (uint64_t)s->cron.every_s * 1000000;
		return now_us / every_us * every_us;
	}
	/* The latest run at or before now: search windows that grow until one
	 * holds a run, so a dense expression walks few runs and a sparse one
	 * few windows. Never earlier than the next run (which is due). */
	static const uint64_t windows_s[] = {60, 3600, 86400, 31 * 86400, 366 * 86400};
	for (size_t i = 0; i < sizeof windows_s / sizeof windows_s[0]; i++) {
		uint64_t span = windows_s[i] * 1000000;
		uint64_t from = now_us > span ? now_us - span : 0;
		if (from < s->next_run_us)
			from = s->next_run_us - 1;
		uint64_t run = run_after(s, from);
		if (run == 0 || run > now_us)
			continue;
		for (uint32_t steps = 0; steps < 1000000; steps++) {
			uint64_t later = run_after(s, run);
			if (later == 0 || later > now_us)
				break;
			run = later;
		}
		return run;
	}
	return s->next_run_us;
}

void schedules_arm(struct deadline_heap *heap, struct schedule *s, uint64_t now_us)
{
	s->next_run_us = run_after(s, s->anchor_us);
	if (s->next_run_us == 0) {
		deadline_heap_remove(heap, &s->timer);
		return;
	}
	uint64_t mono_us = jm_mono_us();
	uint64_t at = s->next_run_us > now_us ? mono_us + (s->next_run_us - now_us) : mono_us;
	if (deadline_heap_set(heap, &s->timer, at) != 0)
		jm_error("schedule %s: out of memory arming its timer", s->name);
}

static int copy_text(char *dst, size_t cap, const struct proto_bytes *b, const char *what,
                     struct jm_err *err)
{
	if (b->len >= cap)
		return jm_err_set(err, JM_EINVAL, "schedule %s is longer than %zu bytes", what,
		                  cap - 1);
	if (b->len > 0)
		memcpy(dst, b->ptr, b->len);
	dst[b->len] = '\0';
	return 0;
}

int schedules_prepare_put(const struct schedule_registry *reg, struct deadline_heap *heap,
                          const struct proto_rec_schedule *r, struct schedule **out,
                          struct jm_err *err)
{
	*out = NULL;
	struct schedule *s = jm_calloc(1, sizeof *s);
	if (s == NULL)
		return jm_err_set(err, JM_ENOMEM, "schedule %s: out of memory", r->name);
	memcpy(s->name, r->name, sizeof s->name);
	int rc = copy_text(s->expr, sizeof s->expr, &r->expr, "expression", err);
	if (rc == 0)
		rc = copy_text(s->zone, sizeof s->zone, &r->zone, "time zone", err);
	if (rc == 0 && schedules_check(s->expr, s->zone, &s->cron, err) != 0) {
		/* Judged when it was put; failing now means the system changed
		 * under the journal (tzdata removed, say). Keep the schedule, so
		 * the broker still starts and a list shows it, but never run it
		 * until it is put again. */
		jm_warn("schedule %s: %s; it will not run until it is put again", r->name,
		        jm_err_text(err));
		memset(&s->cron, 0, sizeof s->cron);
		jm_err_clear(err);
	}
	if (rc == 0 && r->payload.len > 0) {
		s->payload = jm_malloc(r->payload.len);
		if (s->payload == NULL)
			rc = jm_err_set(err, JM_ENOMEM, "schedule %s: out of memory", r->name);
		else
			memcpy(s->payload, r->payload.ptr, r->payload.len);
	}
	if (rc == 0 && schedules_find(reg, r->name) == NULL && reg->count >= SCHEDULES_MAX)
		rc = jm_err_set(err, JM_ELIMIT, "schedule %s: at most %d schedules", r->name,
		                SCHEDULES_MAX);
	/* Room for its timer, so arming it cannot fail. */
	if (rc == 0 && deadline_heap_reserve(heap, 1) != 0)
		rc = jm_err_set(err, JM_ENOMEM, "schedule %s: out of memory", r->name);
	if (rc != 0) {
		schedule_free(s);
		return jm_err_prefix(err, "schedule %s", r->name);
	}
	s->payload_len = r->payload.len;
	memcpy(s->queue, r->queue, sizeof s->queue);
	memcpy(s->type, r->type, sizeof s->type);
	s->priority = r->priority;
	s->max_attempts = r->max_attempts;
	s->timeout_ms = r->timeout_ms;
	s->anchor_us = r->last_fired_us;
	s->put_us = r->at_us;
	deadline_init(&s->timer, DEADLINE_SCHEDULE);
	*out = s;
	return 0;
}

void schedules_discard(struct schedule *s)
{
	schedule_free(s);
}

void schedules_put_prepared(struct schedule_registry *reg, struct deadline_heap *heap,
                            struct schedule *s, uint64_t now_us)
{
	struct schedule *old = schedules_find(reg, s->name);
	if (old != NULL) {
		s->fired_count = old->fired_count;
		deadline_heap_remove(heap, &old->timer);
		TAILQ_INSERT_BEFORE(old, s, link);
		TAILQ_REMOVE(&reg->list, old, link);
		schedule_free(old);
	} else {
		struct schedule *at;
		TAILQ_FOREACH(at, &reg->list, link)
		if (strcmp(at->name, s->name) > 0)
			break;
		if (at != NULL)
			TAILQ_INSERT_BEFORE(at, s, link);
		else
			TAILQ_INSERT_TAIL(&reg->list, s, link);
		reg->count++;
	}
	schedules_arm(heap, s, now_us); /* the room was reserved */
}

static int apply_put(struct schedule_registry *reg, struct deadline_heap *heap,
                     const struct proto_rec_schedule *r, uint64_t now_us, struct jm_err *err)
{
	struct schedule *s;
	int rc = schedules_prepare_put(reg, heap, r, &s, err);
	if (rc == 0)
		schedules_put_prepared(reg, heap, s, now_us);
	return rc;
}

int schedules_apply(struct schedule_registry *reg, struct deadline_heap *heap,
                    const struct proto_record *rec, uint64_t now_us, struct jm_err *err)
{
	if (rec->type == PROTO_REC_SCHEDULE && !rec->u.schedule.deleted)
		return apply_put(reg, heap, &rec->u.schedule, now_us, err);
	const char *name =
	    rec->type == PROTO_REC_SCHEDULE ? rec->u.schedule.name : rec->u.schedule_fire.name;
	struct schedule *s = schedules_find(reg, name);
	if (s == NULL)
		return 0; /* deleted since (a fire after a delete cannot happen live) */
	if (rec->type == PROTO_REC_SCHEDULE) {
		deadline_heap_remove(heap, &s->timer);
		TAILQ_REMOVE(&reg->list, s, link);
		reg->count--;
		schedule_free(s);
		return 0;
	}
	if (rec->u.schedule_fire.scheduled_for_us > s->anchor_us)
		s->anchor_us = rec->u.schedule_fire.scheduled_for_us;
	s->fired_count++;
	schedules_arm(heap, s, now_us);
	return 0;
}

void schedules_snapshot(const struct schedule *s, struct proto_record *rec)
{
	memset(rec, 0, sizeof *rec);
	rec->version = PROTO_RECORD_VERSION;
	rec->type = PROTO_REC_SCHEDULE;
	struct proto_rec_schedule *r = &rec->u.schedule;
	memcpy(r->name, s->name, sizeof r->name);
	r->expr = (struct proto_bytes){(const uint8_t *)s->expr, (uint32_t)strlen(s->expr)};
	r->zone = (struct proto_bytes){(const uint8_t *)s->zone, (uint32_t)strlen(s->zone)};
	memcpy(r->queue, s->queue, sizeof r->queue);
	memcpy(r->type, s->type, sizeof r->type);
	r->payload = (struct proto_bytes){s->payload, s->payload_len};
	r->priority = s->priority;
	r->max_attempts = s->max_attempts;
	r->timeout_ms = s->timeout_ms;
	r->last_fired_us = s->anchor_us;
	r->at_us = s->put_us;
}
