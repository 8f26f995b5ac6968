/* common/cron: parsing, the next run in UTC, the Vixie day rule, intervals,
 * refusals with their messages, and the DST rule on the transition days of
 * Europe/Berlin and America/New_York (2026). */
#include "jm_test.h"

#include <time.h>

#include "cron.h"

/* Unix microseconds of a UTC calendar time. */
static int64_t utc_us(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return (int64_t)timegm(&tm) * 1000000;
}

static int64_t next_after(const char *text, const char *zone, int64_t after_us)
{
	struct cron_expr e;
	struct jm_err err;
	assert_jm_ok_err(cron_parse(text, &e, &err), &err);
	int64_t next = 0;
	assert_jm_ok_err(cron_next(&e, zone, after_us, &next, &err), &err);
	return next;
}

/* The message a refused expression gets must contain want. */
static void assert_refused(const char *text, const char *want)
{
	struct cron_expr e;
	struct jm_err err;
	jm_err_clear(&err);
	if (cron_parse(text, &e, &err) != JM_EINVAL)
		fail_msg("cron \"%s\" was not refused", text);
	if (strstr(jm_err_text(&err), want) == NULL)
		fail_msg("cron \"%s\": message \"%s\" lacks \"%s\"", text, jm_err_text(&err), want);
}

static void test_a_step_minute_field_runs_on_its_multiples(void **state)
{
	(void)state;
	int64_t t = utc_us(2026, 5, 4, 10, 7, 30);
	t = next_after("*/15 * * * *", "UTC", t);
	assert_int_equal(t, utc_us(2026, 5, 4, 10, 15, 0));
	t = next_after("*/15 * * * *", "UTC", t);
	assert_int_equal(t, utc_us(2026, 5, 4, 10, 30, 0));
	assert_int_equal(next_after("*/15 * * * *", "UTC", utc_us(2026, 5, 4, 23, 59, 59)),
	                 utc_us(2026, 5, 5, 0, 0, 0));
}

static void test_six_fields_put_the_seconds_first(void **state)
{
	(void)state;
	int64_t t = utc_us(2026, 1, 1, 0, 0, 0);
	assert_int_equal(next_after("*/20 * * * * *", "UTC", t), utc_us(2026, 1, 1, 0, 0, 20));
	assert_int_equal(next_after("5 0 12 * * *", "UTC", t), utc_us(2026, 1, 1, 12, 0, 5));
	/* the next run is strictly after, even in the same second */
	assert_int_equal(next_after("* * * * * *", "UTC", t + 500000), t + 1000000);
}

static void test_names_lists_and_ranges_select_months_and_weekdays(void **state)
{
	(void)state;
	/* 2026-06-30 is a Tuesday; the next weekday 09:00 in jan or jul is
	 * Wednesday 2026-07-01. */
	int64_t t = utc_us(2026, 6, 30, 12, 0, 0);
	assert_int_equal(next_after("0 9 * JAN,jul mon-fri", "UTC", t),
	                 utc_us(2026, 7, 1, 9, 0, 0));
	/* Saturday and Sunday (7 and 0 both mean Sunday) */
	assert_int_equal(next_after("0 9 * * 6,7", "UTC", t), utc_us(2026, 7, 4, 9, 0, 0));
	assert_int_equal(next_after("0 9 * * sun", "UTC", utc_us(2026, 7, 4, 10, 0, 0)),
	                 utc_us(2026, 7, 5, 9, 0, 0));
	/* a/n runs from a to the field's end: minutes 50 and 55 */
	assert_int_equal(next_after("50/5 * * * *", "UTC", utc_us(2026, 7, 1, 0, 51, 0)),
	                 utc_us(2026, 7, 1, 0, 55, 0));
	assert_int_equal(next_after("10-20/5,40 8 * * *", "UTC", utc_us(2026, 7, 1, 8, 20, 0)),
	                 utc_us(2026, 7, 1, 8, 40, 0));
}

static void test_day_of_month_and_day_of_week_follow_the_vixie_rule(void **state)
{
	(void)state;
	/* From Sunday 2026-02-01: the 13th is a Friday in March 2026. */
	int64_t t = utc_us(2026, 2, 1, 0, 0, 0);
	/* both restricted: the 13th OR a Friday, so Friday 2026-02-06 first */
	assert_int_equal(next_after("0 0 13 * fri", "UTC", t), utc_us(2026, 2, 6, 0, 0, 0));
	/* only one restricted: that one alone */
	assert_int_equal(next_after("0 0 13 * *", "UTC", t), utc_us(2026, 2, 13, 0, 0, 0));
	assert_int_equal(next_after("0 0 * * fri", "UTC", t), utc_us(2026, 2, 6, 0, 0, 0));
	/* a field starting with '*' counts as unrestricted: */ /* every other day AND Friday */
	assert_int_equal(next_after("0 0 */2 * fri", "UTC", t), utc_us(2026, 2, 13, 0, 0, 0));
}

static void test_every_runs_on_a_grid_since_the_epoch(void **state)
{
	(void)state;
	int64_t t = utc_us(2026, 3, 1, 10, 7, 12) + 300000;
	assert_int_equal(next_after("@every 30s", "UTC", t), utc_us(2026, 3, 1, 10, 7, 30));
	assert_int_equal(next_after("@every 5m", "Europe/Berlin", t),
	                 utc_us(2026, 3, 1, 10, 10, 0));
	assert_int_equal(next_after("@every 1h30m", "UTC", utc_us(2026, 3, 1, 0, 0, 0)),
	                 utc_us(2026, 3, 1, 1, 30, 0));
	assert_int_equal(next_after("@every 1s", "UTC", t), utc_us(2026, 3, 1, 10, 7, 13));
	int64_t s = 0;
	struct jm_err err;
	assert_jm_ok_err(cron_parse_duration("2d", &s, &err), &err);
	assert_int_equal(s, 2 * 86400);
}

static void test_macros_name_their_fields(void **state)
{
	(void)state;
	int64_t t = utc_us(2026, 3, 11, 10, 7, 12); /* a Wednesday */
	assert_int_equal(next_after("@daily", "UTC", t), utc_us(2026, 3, 12, 0, 0, 0));
	assert_int_equal(next_after("@hourly", "UTC", t), utc_us(2026, 3, 11, 11, 0, 0));
	assert_int_equal(next_after("@weekly", "UTC", t), utc_us(2026, 3, 15, 0, 0, 0));
	assert_int_equal(next_after("@monthly", "UTC", t), utc_us(2026, 4, 1, 0, 0, 0));
	assert_int_equal(next_after("@yearly", "UTC", t), utc_us(2027, 1, 1, 0, 0, 0));
}

static void test_bad_expressions_are_refused_naming_the_field(void **state)
{
	(void)state;
	assert_refused("0 25 * * *", "field 2 of 5 (hour): out of range \"25\": use 0-23");
	assert_refused("61 * * * *", "field 1 of 5 (minute)");
	assert_refused("0 0 0 * *", "(day-of-month): out of range \"0\": use 1-31");
	assert_refused("0 0 * foo *", "(month): bad value \"foo\": use 1-12 or jan-dec");
	assert_refused("0 0 * * 8", "(day-of-week): out of range \"8\": use 0-7 or sun-sat");
	assert_refused("0 0 * * 5-2", "range runs backwards \"5-2\"");
	assert_refused("*/0 * * * *", "bad step \"*/0\"");
	assert_refused("1,,2 * * * *", "empty list item in \"1,,2\"");
	assert_refused("0 0 * *", "4 fields: use 5 (minute hour day-of-month month day-of-week)");
	assert_refused("0 0 0 0 * * *", "more than 6 fields");
	assert_refused("", "cron expression is empty");
	assert_refused("@often", "unknown macro");
	assert_refused("@every 0s", "duration \"0s\" is invalid");
	assert_refused("@every 5x", "use numbers with units s, m, h or d");
	assert_refused("@every 400d", "1s to 366d");
	assert_refused("61 0 0 1 1 *", "field 1 of 6 (second)");
}

static void test_an_expression_that_never_matches_is_reported(void **state)
{
	(void)state;
	struct cron_expr e;
	struct jm_err err;
	assert_jm_ok_err(cron_parse("0 0 30 2 *", &e, &err), &err);
	int64_t next = 0;
	assert_jm_code(cron_next(&e, "UTC", utc_us(2026, 1, 1, 0, 0, 0), &next, &err),
	               JM_ENOTFOUND);
	assert_non_null(strstr(jm_err_text(&err), "no run in the next"));
}

static void test_unknown_and_malformed_zones_are_refused(void **state)
{
	(void)state;
	struct jm_err err;
	assert_jm_ok_err(cron_zone_check("Europe/Berlin", &err), &err);
	assert_jm_ok_err(cron_zone_check("UTC", &err), &err);
	assert_jm_code(cron_zone_check("Mars/Olympus_Mons", &err), JM_ENOTFOUND);
	assert_non_null(strstr(jm_err_text(&err), "time zone \"Mars/Olympus_Mons\" is unknown"));
	assert_jm_code(cron_zone_check("../../etc/passwd", &err), JM_EINVAL);
	assert_jm_code(cron_zone_check("/etc/localtime", &err), JM_EINVAL);
	assert_jm_code(cron_zone_check("", &err), JM_EINVAL);
	assert_jm_code(cron_zone_check("zone.tab", &err), JM_ENOTFOUND); /* not a TZif file */
	struct cron_expr e;
	assert_jm_ok_err(cron_parse("0 0 * * *", &e, &err), &err);
	int64_t next = 0;
	assert_jm_code(cron_next(&e, "Nowhere/City", 0, &next, &err), JM_ENOTFOUND);
}

static void test_a_daily_run_keeps_its_wall_time_across_dst(void **state)
{
	(void)state;
	/* 09:00 Berlin is 08:00Z in winter, 07:00Z in summer. */
	int64_t t = next_after("0 9 * * *", "Europe/Berlin", utc_us(2026, 3, 28, 12, 0, 0));
	assert_int_equal(t, utc_us(2026, 3, 29, 7, 0, 0));
	assert_int_equal(next_after("0 9 * * *", "Europe/Berlin", utc_us(2026, 3, 28, 0, 0, 0)),
	                 utc_us(2026, 3, 28, 8, 0, 0));
}

/* Europe/Berlin, 2026-03-29: 02:00 CET (01:00Z) jumps to 03:00 CEST. */
static void test_a_wall_time_in_the_spring_gap_runs_once_when_the_clocks_jump(void **state)
{
	(void)state;
	int64_t t = next_after("30 2 * * *", "Europe/Berlin", utc_us(2026, 3, 29, 0, 0, 0));
	assert_int_equal(t, utc_us(2026, 3, 29, 1, 0, 0)); /* 03:00 CEST */
	t = next_after("30 2 * * *", "Europe/Berlin", t);
	assert_int_equal(t, utc_us(2026, 3, 30, 0, 30, 0)); /* 02:30 CEST next day */
	/* Every 15 minutes: 01:45 CET, then 02:00-02:45 (missing) and 03:00
	 * collapse into one run at 03:00 CEST, then 03:15 CEST. */
	t = next_after("*/15 * * * *", "Europe/Berlin", utc_us(2026, 3, 29, 0, 40, 0));
	assert_int_equal(t, utc_us(2026, 3, 29, 0, 45, 0));
	t = next_after("*/15 * * * *", "Europe/Berlin", t);
	assert_int_equal(t, utc_us(2026, 3, 29, 1, 0, 0));
	t = next_after("*/15 * * * *", "Europe/Berlin", t);
	assert_int_equal(t, utc_us(2026, 3, 29, 1, 15, 0));
}

/* Europe/Berlin, 2026-10-25: 03:00 CEST (01:00Z) falls back to 02:00 CET,
 * so 02:00-02:59 occurs at 00:00Z-00:59Z and again at 01:00Z-01:59Z. */
static void test_a_wall_time_in_the_autumn_overlap_runs_once_at_its_first_occurrence(void **state)
{
	(void)state;
	int64_t t = next_after("30 2 * * *", "Europe/Berlin", utc_us(2026, 10, 24, 23, 0, 0));
	assert_int_equal(t, utc_us(2026, 10, 25, 0, 30, 0)); /* 02:30 CEST */
	t = next_after("30 2 * * *", "Europe/Berlin", t);
	assert_int_equal(t, utc_us(2026, 10, 26, 1, 30, 0)); /* not 02:30 CET on the 25th */
	/* Asked from inside the repeat, the repeated wall times are passed. */
	assert_int_equal(next_after("*/20 * * * *", "Europe/Berlin", utc_us(2026, 10, 25, 1, 5, 0)),
	                 utc_us(2026, 10, 25, 2, 0, 0)); /* 03:00 CET */
	/* Hourly at :00: 02:00 CEST (00:00Z), then 03:00 CET (02:00Z). */
	t = next_after("0 * * * *", "Europe/Berlin", utc_us(2026, 10, 24, 23, 30, 0));
	assert_int_equal(t, utc_us(2026, 10, 25, 0, 0, 0));
	t = next_after("0 * * * *", "Europe/Berlin", t);
	assert_int_equal(t, utc_us(2026, 10, 25, 2, 0, 0));
}

/* America/New_York, 2026: 02:00 EST (07:00Z) jumps to 03:00 EDT on March 8;
 * 02:00 EDT (06:00Z) falls back to 01:00 EST on November 1. */
static void test_new_york_transition_days_follow_the_same_rule(void **state)
{
	(void)state;
	int64_t t = next_after("15 2 * * *", "America/New_York", utc_us(2026, 3, 8, 5, 0, 0));
	assert_int_equal(t, utc_us(2026, 3, 8, 7, 0, 0)); /* 03:00 EDT */
	assert_int_equal(next_after("15 2 * * *", "America/New_York", t),
	                 utc_us(2026, 3, 9, 6, 15, 0));
	t = next_after("30 1 * * *", "America/New_York", utc_us(2026, 11, 1, 4, 0, 0));
	assert_int_equal(t, utc_us(2026, 11, 1, 5, 30, 0)); /* 01:30 EDT */
	assert_int_equal(next_after("30 1 * * *", "America/New_York", t),
	                 utc_us(2026, 11, 2, 6, 30, 0)); /* 01:30 EST the next day */
	/* Seconds precision around the jump: 01:59:59 EST then 03:00:00 EDT. */
	t = next_after("* * * * * *", "America/New_York", utc_us(2026, 3, 8, 6, 59, 58));
	assert_int_equal(t, utc_us(2026, 3, 8, 6, 59, 59));
	assert_int_equal(next_after("* * * * * *", "America/New_York", t), t + 1000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_step_minute_field_runs_on_its_multiples),
	    cmocka_unit_test(test_six_fields_put_the_seconds_first),
	    cmocka_unit_test(test_names_lists_and_ranges_select_months_and_weekdays),
	    cmocka_unit_test(test_day_of_month_and_day_of_week_follow_the_vixie_rule),
	    cmocka_unit_test(test_every_runs_on_a_grid_since_the_epoch),
	    cmocka_unit_test(test_macros_name_their_fields),
	    cmocka_unit_test(test_bad_expressions_are_refused_naming_the_field),
	    cmocka_unit_test(test_an_expression_that_never_matches_is_reported),
	    cmocka_unit_test(test_unknown_and_malformed_zones_are_refused),
	    cmocka_unit_test(test_a_daily_run_keeps_its_wall_time_across_dst),
	    cmocka_unit_test(test_a_wall_time_in_the_spring_gap_runs_once_when_the_clocks_jump),
	    cmocka_unit_test(
	        test_a_wall_time_in_the_autumn_overlap_runs_once_at_its_first_occurrence),
	    cmocka_unit_test(test_new_york_transition_days_follow_the_same_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
