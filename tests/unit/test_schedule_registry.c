/* broker/schedules: applying SCHEDULE and SCHEDULE_FIRE records, the anchor
 * and next run, and the catch-up rule (schedule_due_run). */
#include "jm_test.h"

#include <time.h>

#include "clock.h"
#include "schedules.h"

#define S_US 1000000ULL

static struct proto_record put_rec(const char *name, const char *expr, const char *zone,
                                   uint64_t anchor_us)
{
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_SCHEDULE};
	struct proto_rec_schedule *r = &rec.u.schedule;
	snprintf(r->name, sizeof r->name, "%s", name);
	r->expr = (struct proto_bytes){(const uint8_t *)expr, (uint32_t)strlen(expr)};
	r->zone = (struct proto_bytes){(const uint8_t *)zone, (uint32_t)strlen(zone)};
	snprintf(r->queue, sizeof r->queue, "q");
	snprintf(r->type, sizeof r->type, "t");
	r->payload = (struct proto_bytes){(const uint8_t *)"abc", 3};
	r->last_fired_us = anchor_us;
	r->at_us = anchor_us;
	return rec;
}

static struct proto_record fire_rec(const char *name, uint64_t run_us)
{
	struct proto_record rec = {.version = PROTO_RECORD_VERSION,
	                           .type = PROTO_REC_SCHEDULE_FIRE};
	snprintf(rec.u.schedule_fire.name, sizeof rec.u.schedule_fire.name, "%s", name);
	rec.u.schedule_fire.scheduled_for_us = run_us;
	return rec;
}

struct fixture {
	struct schedule_registry reg;
	struct deadline_heap heap;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	schedules_init(&f->reg);
	deadline_heap_init(&f->heap);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	schedules_fini(&f->reg);
	deadline_heap_fini(&f->heap);
	free(f);
	return 0;
}

static void test_a_put_runs_first_after_its_anchor_and_a_fire_moves_the_anchor(void **state)
{
	struct fixture *f = *state;
	struct jm_err err;
	uint64_t t0 = 1796000000ULL * S_US + 250000; /* a wall time mid-second */
	struct proto_record rec = put_rec("tick", "@every 10s", "", t0);
	assert_jm_ok_err(schedules_apply(&f->reg, &f->heap, &rec, t0, &err), &err);
	struct schedule *s = schedules_find(&f->reg, "tick");
	assert_non_null(s);
	assert_int_equal(s->next_run_us, 1796000010ULL * S_US);
	assert_true(deadline_is_set(&s->timer));
	assert_int_equal(s->payload_len, 3);
	rec = fire_rec("tick", s->next_run_us);
	assert_jm_ok_err(schedules_apply(&f->reg, &f->heap, &rec, t0 + 10 * S_US, &err), &err);
	assert_int_equal(s->anchor_us, 1796000010ULL * S_US);
	assert_int_equal(s->next_run_us, 1796000020ULL * S_US);
	/* A fire older than the anchor (replayed over a snapshot) is ignored. */
	rec = fire_rec("tick", 1796000000ULL * S_US);
	assert_jm_ok_err(schedules_apply(&f->reg, &f->heap, &rec, t0, &err), &err);
	assert_int_equal(s->anchor_us, 1796000010ULL * S_US);
}

static void test_missed_runs_collapse_into_the_latest_due_one(void **state)
{
	struct fixture *f = *state;
	struct jm_err err;
	uint64_t t0 = 1796000000ULL * S_US;
	struct proto_record rec = put_rec("sec", "* * * * * *", "Europe/Berlin", t0);
	assert_jm_ok_err(schedules_apply(&f->reg, &f->heap, &rec, t0, &err), &err);
	rec = put_rec("every", "@every 5s", "", t0);
	assert_jm_ok_err(schedules_apply(&f->reg, &f->heap, &rec, t0, &err), &err);
	rec = put_rec("daily", "0 9 * * *", "America/New_York", t0);
	assert_jm_ok_err(schedules_apply(&f->reg, &f->heap, &rec, t0, &err), &err);
	struct schedule *sec = schedules_find(&f->reg, "sec");
	struct schedule *every = schedules_find(&f->reg, "every");
	struct schedule *daily = schedules_find(&f->reg, "daily");
	/* Not due yet: nothing to run. */
	assert_int_equal(schedule_due_run(sec, t0 + 500000), 0);
	assert_int_equal(schedule_due_run(every, t0 + 4 * S_US), 0);
	/* Down for an hour and a half: one run, the latest due. */
	uint64_t back = t0 + 5400 * S_US + 700000;
	assert_int_equal(schedule_due_run(sec, back), t0 + 5400 * S_US);
	assert_int_equal(schedule_due_run(every, back), t0 + 5400 * S_US);
	/* Down for three days: the last 09:00 New York before now. */
	uint64_t run = schedule_due_run(daily, t0 + 3 * 86400 * S_US);
	assert_true(run > t0 + 2 * 86400 * S_US && run <= t0 + 3 * 86400 * S_US);
	time_t run_s = (time_t)(run / S_US);
	struct tm tm;
	gmtime_r(&run_s, &tm);
	assert_int_equal(tm.tm_hour, 14); /* 09:00 EST, late November */
	assert_int_equal(tm.tm_min, 0);
	/* After that run is journaled, the next one is in the future. */
	rec = fire_rec("sec", t0 + 5400 * S_US);
	assert_jm_ok_err(schedules_apply(&f->reg, &f->heap, &rec, back, &err), &err);
	assert_int_equal(sec->next_run_us, t0 + 5401 * S_US);
}

static void test_a_replace_keeps_the_anchor_and_a_delete_removes_the_timer(void **state)
{
	struct fixture *f = *state;
	struct jm_err err;
	uint64_t t0 = 1796000000ULL * S_US;
	struct proto_record rec = put_rec("a", "@every 1m", "", t0);
	assert_jm_ok_err(schedules_apply(&f->reg, &f->heap, &rec, t0, &err), &err);
	rec = put_rec("a", "@every 2m", "", t0 + 30 * S_US);
	assert_jm_ok_err(schedules_apply(&f->reg, &f->heap, &rec, t0, &err), &err);
	assert_int_equal(f->reg.count, 1);
	assert_int_equal(f->heap.count, 1);
	struct schedule *a = schedules_find(&f->reg, "a");
	assert_int_equal(a->cron.every_s, 120);
	assert_int_equal(a->anchor_us, t0 + 30 * S_US); /* the record's, as the core wrote it */
	struct proto_record del = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_SCHEDULE};
	snprintf(del.u.schedule.name, sizeof del.u.schedule.name, "a");
	del.u.schedule.deleted = true;
	assert_jm_ok_err(schedules_apply(&f->reg, &f->heap, &del, t0, &err), &err);
	assert_int_equal(f->reg.count, 0);
	assert_int_equal(f->heap.count, 0);
	assert_null(schedules_find(&f->reg, "a"));
}

static void test_a_stored_schedule_whose_zone_is_gone_is_kept_but_never_runs(void **state)
{
	struct fixture *f = *state;
	struct jm_err err;
	uint64_t t0 = 1796000000ULL * S_US;
	struct proto_record rec = put_rec("z", "0 9 * * *", "Gone/Zone", t0);
	assert_jm_ok_err(schedules_apply(&f->reg, &f->heap, &rec, t0, &err), &err);
	struct schedule *z = schedules_find(&f->reg, "z");
	assert_non_null(z);
	assert_int_equal(z->next_run_us, 0);
	assert_false(deadline_is_set(&z->timer));
	assert_int_equal(schedule_due_run(z, t0 + 86400 * S_US), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_a_put_runs_first_after_its_anchor_and_a_fire_moves_the_anchor, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_missed_runs_collapse_into_the_latest_due_one,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_replace_keeps_the_anchor_and_a_delete_removes_the_timer, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_stored_schedule_whose_zone_is_gone_is_kept_but_never_runs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
