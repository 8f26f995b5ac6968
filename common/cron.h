/* Cron expressions and fixed intervals: parse once, then ask for the next
 * run after a given instant in an IANA time zone.
 *
 * Accepted text:
 *   5 fields  "minute hour day-of-month month day-of-week"
 *   6 fields  "second minute hour day-of-month month day-of-week"
 *   macros    @yearly @annually @monthly @weekly @daily @midnight @hourly
 *   interval  "@every DURATION" (DURATION as 30s, 5m, 1h, 1h30m, 2d; 1 s to
 *             366 d, whole seconds)
 * Each field takes `*`, a number, a range `a-b`, a step `*` `/n`, `a-b/n` or
 * `a/n` (a to the field's end), and comma-separated lists of those. Months
 * take jan-dec and days of the week sun-sat (any case); day-of-week 7 is
 * Sunday, as 0 is.
 *
 * Day-of-month vs day-of-week follows Vixie cron: when both fields are
 * restricted (neither starts with `*`), a day matches if either matches;
 * otherwise only the restricted one counts.
 *
 * Wall time to instant (the DST rule, test_cron.c shows each case):
 * - A wall time that does not exist (a spring-forward gap) runs once, at the
 *   first valid instant after it: the moment the clocks jump (02:30 in
 *   Europe/Berlin on the last Sunday of March runs at 03:00 CEST). Several
 *   missing wall times collapse into that one run.
 * - A wall time that occurs twice (a fall-back overlap) runs once, at its
 *   first occurrence (the summer-time one); its repeat is skipped.
 * Intervals ignore the zone: runs fall on whole multiples of the interval
 * since 1970-01-01T00:00:00Z, so they never drift and a restart finds the
 * same grid.
 *
 * Time zones are read from the system's zoneinfo (/usr/share/zoneinfo, the
 * tzdata package) through localtime_r/mktime; cron_next switches TZ under a
 * process-wide lock and puts it back, so no other code in the process may
 * rely on TZ or localtime while a computation runs (none does). */
#ifndef JM_COMMON_CRON_H
#define JM_COMMON_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#define CRON_TEXT_MAX 256
#define CRON_ZONE_MAX 64

struct cron_expr {
	uint64_t seconds; /* bit n: second n (0-59) */
	uint64_t minutes; /* bit n: minute n (0-59) */
	uint32_t hours;   /* bit n: hour n (0-23) */
	uint32_t mdays;   /* bit n: day n (1-31) */
	uint16_t months;  /* bit n: month n (1-12) */
	uint8_t wdays;    /* bit n: weekday n (0 = Sunday .. 6) */
	bool mday_star;   /* day-of-month field started with '*' */
	bool wday_star;   /* day-of-week field started with '*' */
	int64_t every_s;  /* > 0: a fixed interval; the fields are unused */
};

/* Parses text into out. On a bad expression returns JM_EINVAL with a
 * one-line message in err naming the field and what it allows. */
int cron_parse(const char *text, struct cron_expr *out, struct jm_err *err);

/* Parses a duration such as "30s", "5m", "1h30m", "2d" into whole seconds
 * (1 s to 366 d); JM_EINVAL with a message otherwise. */
int cron_parse_duration(const char *text, int64_t *out_s, struct jm_err *err);

/* Checks that zone names an IANA zone in the system's zoneinfo ("UTC",
 * "Europe/Berlin"); JM_EINVAL (bad name) or JM_ENOTFOUND (not installed). */
int cron_zone_check(const char *zone, struct jm_err *err);

/* The first run strictly after after_us (Unix microseconds), in zone (NULL
 * or "" means UTC), into *next_us (whole seconds, as microseconds). Returns
 * JM_EINVAL for a bad zone and JM_ENOTFOUND when the expression has no run in
 * the next 8 years (for example "0 0 30 2 *"). */
int cron_next(const struct cron_expr *expr, const char *zone, int64_t after_us, int64_t *next_us,
              struct jm_err *err);

#endif
