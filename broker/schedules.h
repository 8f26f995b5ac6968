/* Named schedules: a cron expression or fixed interval, a time zone and a
 * job template. Changed only through state_apply (SCHEDULE and
 * SCHEDULE_FIRE records), so replay rebuilds exactly what ran.
 *
 * Each schedule remembers `anchor_us`, the scheduled-for time of its last
 * run (or the time it was first put, when it never ran): its next run is
 * the first run of its expression strictly after the anchor. The anchor
 * moves only with the SCHEDULE_FIRE record that carries the run's job, so
 * after a crash a run is either journaled with its job or not at all.
 *
 * Catch-up rule: when the timer fires at wall time now, the run submitted
 * is the latest run at or before now (schedule_due_run); runs missed while
 * the broker was down (or stalled) collapse into that one run, and the
 * next run is the first one after it, which is in the future.
 *
 * The timer is a monotonic deadline (deadline.h) at the wall-clock next run
 * converted as delayed jobs are; when it fires, the wall clock is asked
 * again, and a run that is not yet due (the wall clock was set back) is
 * re-armed instead of fired. */
#ifndef JM_BROKER_SCHEDULES_H
#define JM_BROKER_SCHEDULES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "cron.h"
#include "deadline.h"
#include "err.h"
#include "record.h"

#define SCHEDULES_MAX 10000

struct schedule {
	proto_name name;
	char expr[CRON_TEXT_MAX];
	char zone[CRON_ZONE_MAX]; /* "" = UTC */
	struct cron_expr cron;
	proto_name queue;
	proto_name type;
	uint8_t *payload; /* owned */
	uint32_t payload_len;
	int32_t priority;
	uint32_t max_attempts;  /* 0: the queue's default */
	uint64_t timeout_ms;    /* 0: the queue's default */
	uint64_t anchor_us;     /* last run's scheduled-for time, or the put time */
	uint64_t put_us;        /* when it was put (the record's at_us) */
	uint64_t fired_count;   /* runs since this broker started (not journaled) */
	uint64_t next_run_us;   /* wall time of the next run; 0: none */
	uint64_t held_since_us; /* a run refused (limit, journal) since: logged once; 0: none */
	uint32_t held_retries;  /* tries refused in the current hold */
	struct deadline timer;  /* DEADLINE_SCHEDULE */
	TAILQ_ENTRY(schedule) link;
};

struct schedule_registry {
	TAILQ_HEAD(, schedule) list; /* in name order */
	uint32_t count;
};

void schedules_init(struct schedule_registry *reg);
/* Frees every schedule; the heap must not be used with them afterwards. */
void schedules_fini(struct schedule_registry *reg);

struct schedule *schedules_find(const struct schedule_registry *reg, const char *name);

/* Checks a schedule's expression and zone as a put would: JM_EINVAL or
 * JM_ENOTFOUND with a one-line message; *out (optional) gets the parse. */
int schedules_check(const char *expr, const char *zone, struct cron_expr *out, struct jm_err *err);

/* A put in two steps, so that nothing is journaled the registry does not
 * hold (core_schedules.c): prepare allocates and checks everything the put
 * needs (the schedule, its payload copy, room for its timer in heap, the
 * SCHEDULES_MAX limit) before the record is journaled; *out is then the
 * caller's, to put or discard. put_prepared cannot fail: it replaces a
 * schedule of the same name (keeping its run count) or inserts s, and
 * arms its timer; now_us is wall time. */
int schedules_prepare_put(const struct schedule_registry *reg, struct deadline_heap *heap,
                          const struct proto_rec_schedule *r, struct schedule **out,
                          struct jm_err *err);
void schedules_put_prepared(struct schedule_registry *reg, struct deadline_heap *heap,
                            struct schedule *s, uint64_t now_us);
void schedules_discard(struct schedule *s);

/* Applies SCHEDULE (put or delete) and SCHEDULE_FIRE's schedule part, and
 * arms or removes the timer in heap; now_us is wall time. Replay's path:
 * a put prepares and puts at once. A delete and a fire cannot fail (a
 * fire re-arms the timer its firing took out of the heap). */
int schedules_apply(struct schedule_registry *reg, struct deadline_heap *heap,
                    const struct proto_record *rec, uint64_t now_us, struct jm_err *err);

/* The run to submit when s's timer fires at wall time now_us: the latest
 * run at or before now_us and at or after s's next run (the catch-up
 * rule), or 0 when the next run is not due yet. */
uint64_t schedule_due_run(const struct schedule *s, uint64_t now_us);

/* Re-arms s's timer for its next run, now_us being wall time. */
void schedules_arm(struct deadline_heap *heap, struct schedule *s, uint64_t now_us);

/* Fills rec (type SCHEDULE, a put) from s, borrowing its buffers: for
 * snapshots. */
void schedules_snapshot(const struct schedule *s, struct proto_record *rec);

/* The schedule a DEADLINE_SCHEDULE deadline belongs to. */
struct schedule *schedule_of_timer(struct deadline *d);

#endif
