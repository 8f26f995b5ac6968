/* Cron expressions: parsing into bit sets, the calendar search over wall
 * time, and the mapping from wall time to an instant in a zone (cron.h
 * states the rules). The calendar search is pure arithmetic on a proleptic
 * Gregorian calendar; only the wall-to-instant step reads the zone, through
 * localtime_r under zone_lock with TZ switched for the call. */
#include "cron.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CRON_FIELD_ALLOWED "*, n, a-b, */n, a-b/n, a/n and lists a,b"
#define CRON_MAX_YEARS 8
#define CRON_MAX_EVERY_S (366LL * 86400)

struct field_spec {
	const char *name;
	int min;
	int max;
	const char *const *names; /* names[i] stands for min_name + i */
	int names_count;
	int min_name;
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const wday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

enum { F_SEC, F_MIN, F_HOUR, F_MDAY, F_MON, F_WDAY, F_COUNT };

static const struct field_spec field_specs[F_COUNT] = {
    [F_SEC] = {"second", 0, 59, NULL, 0, 0},
    [F_MIN] = {"minute", 0, 59, NULL, 0, 0},
    [F_HOUR] = {"hour", 0, 23, NULL, 0, 0},
    [F_MDAY] = {"day-of-month", 1, 31, NULL, 0, 0},
    [F_MON] = {"month", 1, 12, month_names, 12, 1},
    [F_WDAY] = {"day-of-week", 0, 7, wday_names, 7, 0},
};

/* A number or a name of spec; *end is set past it. False when neither. */
static bool parse_value(const char *s, const struct field_spec *spec, int *out, const char **end)
{
	if (isdigit((unsigned char)*s)) {
		long v = 0;
		while (isdigit((unsigned char)*s)) {
			v = v * 10 + (*s - '0');
			if (v > 1000)
				return false;
			s++;
		}
		*out = (int)v;
		*end = s;
		return true;
	}
	for (int i = 0; i < spec->names_count; i++) {
		if (strncasecmp(s, spec->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
			*out = spec->min_name + i;
			*end = s + 3;
			return true;
		}
	}
	return false;
}

static int field_error(struct jm_err *err, const char *text, int index, int fields,
                       const struct field_spec *spec, const char *what, const char *item)
{
	char range[80];
	if (spec->names != NULL)
		snprintf(range, sizeof range, "%d-%d or %s-%s", spec->min, spec->max,
		         spec->names[0], spec->names[spec->names_count - 1]);
	else
		snprintf(range, sizeof range, "%d-%d", spec->min, spec->max);
	return jm_err_set(
	    err, JM_EINVAL,
	    "cron \"%s\": field %d of %d (%s): %s \"%s\": use %s with " CRON_FIELD_ALLOWED, text,
	    index + 1, fields, spec->name, what, item, range);
}

/* Parses one comma-separated field (item, of length len) into *bits. */
static int parse_field(const char *item_text, size_t len, const struct field_spec *spec,
                       uint64_t *bits, const char *text, int index, int fields, struct jm_err *err)
{
	char buf[CRON_TEXT_MAX];
	if (len >= sizeof buf)
		return field_error(err, text, index, fields, spec, "too long", "");
	memcpy(buf, item_text, len);
	buf[len] = '\0';
	*bits = 0;
	if (buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,") != NULL)
		return field_error(err, text, index, fields, spec, "empty list item in", buf);
	char *save = NULL;
	char *copy = strdup(buf);
	if (copy == NULL)
		return jm_err_set(err, JM_ENOMEM, "cron: out of memory");
	int rc = 0;
	for (char *part = strtok_r(copy, ",", &save); part != NULL;
	     part = strtok_r(NULL, ",", &save)) {
		const char *s = part;
		int lo, hi, step = 1;
		bool ranged = false;
		if (*s == '*') {
			lo = spec->min;
			hi = spec->max;
			s++;
			ranged = true;
		} else {
			if (!parse_value(s, spec, &lo, &s)) {
				rc = field_error(err, text, index, fields, spec, "bad value", part);
				break;
			}
			hi = lo;
			if (*s == '-') {
				if (!parse_value(s + 1, spec, &hi, &s)) {
					rc = field_error(err, text, index, fields, spec,
					                 "bad range", part);
					break;
				}
				ranged = true;
			}
		}
		if (*s == '/') {
			const char *after;
			struct field_spec num = {spec->name, 1, spec->max, NULL, 0, 0};
			if (!parse_value(s + 1, &num, &step, &after) || step < 1 ||
			    step > spec->max) {
				rc = field_error(err, text, index, fields, spec, "bad step", part);
				break;
			}
			s = after;
			if (!ranged)
				hi = spec->max; /* "a/n": from a to the field's end */
		}
		if (*s != '\0') {
			rc =
			    field_error(err, text, index, fields, spec, "unexpected text in", part);
			break;
		}
		if (lo < spec->min || lo > spec->max || hi < spec->min || hi > spec->max) {
			rc = field_error(err, text, index, fields, spec, "out of range", part);
			break;
		}
		if (lo > hi) {
			rc = field_error(err, text, index, fields, spec, "range runs backwards",
			                 part);
			break;
		}
		for (int v = lo; v <= hi; v += step)
			*bits |= 1ULL << v;
	}
	free(copy);
	if (rc == 0 && *bits == 0)
		rc = field_error(err, text, index, fields, spec, "empty", buf);
	return rc;
}

int cron_parse_duration(const char *text, int64_t *out_s, struct jm_err *err)
{
	const char *s = text;
	int64_t total = 0;
	bool any = false;
	while (*s != '\0') {
		if (!isdigit((unsigned char)*s))
			goto bad;
		int64_t v = 0;
		while (isdigit((unsigned char)*s)) {
			v = v * 10 + (*s - '0');
			if (v > CRON_MAX_EVERY_S)
				goto bad;
			s++;
		}
		int64_t unit;
		switch (*s) {
		case 's':
			unit = 1;
			break;
		case 'm':
			unit = 60;
			break;
		case 'h':
			unit = 3600;
			break;
		case 'd':
			unit = 86400;
			break;
		default:
			goto bad;
		}
		s++;
		total += v * unit;
		if (total > CRON_MAX_EVERY_S)
			goto bad;
		any = true;
	}
	if (!any || total < 1)
		goto bad;
	*out_s = total;
	return 0;
bad:
	return jm_err_set(
	    err, JM_EINVAL,
	    "duration \"%s\" is invalid: use numbers with units s, m, h or d, as 30s, "
	    "5m, 1h30m (1s to 366d)",
	    text);
}

static const struct {
	const char *name;
	const char *fields;
} macros[] = {
    {"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
    {"@weekly", "0 0 0 * * 0"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
    {"@hourly", "0 0 * * * *"},
};

int cron_parse(const char *text, struct cron_expr *out, struct jm_err *err)
{
	memset(out, 0, sizeof *out);
	if (text == NULL || *text == '\0')
		return jm_err_set(
		    err, JM_EINVAL,
		    "cron expression is empty: use 5 fields (minute hour day-of-month "
		    "month day-of-week), 6 with seconds first, or @every DURATION");
	if (strlen(text) >= CRON_TEXT_MAX)
		return jm_err_set(err, JM_EINVAL, "cron expression is longer than %d bytes",
		                  CRON_TEXT_MAX - 1);
	if (strncmp(text, "@every", 6) == 0 && (text[6] == ' ' || text[6] == '\t')) {
		const char *d = text + 6;
		while (*d == ' ' || *d == '\t')
			d++;
		int rc = cron_parse_duration(d, &out->every_s, err);
		if (rc != 0)
			return jm_err_prefix(err, "cron \"%s\"", text);
		return 0;
	}
	const char *body = text;
	if (text[0] == '@') {
		body = NULL;
		for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
			if (strcmp(text, macros[i].name) == 0)
				body = macros[i].fields;
		if (body == NULL)
			return jm_err_set(
			    err, JM_EINVAL,
			    "cron \"%s\": unknown macro: use @yearly, @annually, @monthly, "
			    "@weekly, @daily, @midnight, @hourly or @every DURATION",
			    text);
	}
	const char *starts[F_COUNT + 1];
	size_t lens[F_COUNT + 1];
	int fields = 0;
	for (const char *s = body; *s != '\0';) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		if (fields == F_COUNT)
			return jm_err_set(err, JM_EINVAL,
			                  "cron \"%s\": more than 6 fields: use 5 (minute hour "
			                  "day-of-month month day-of-week) or 6 with seconds first",
			                  text);
		starts[fields] = s;
		while (*s != '\0' && *s != ' ' && *s != '\t')
			s++;
		lens[fields] = (size_t)(s - starts[fields]);
		fields++;
	}
	if (fields != 5 && fields != 6)
		return jm_err_set(err, JM_EINVAL,
		                  "cron \"%s\": %d field%s: use 5 (minute hour day-of-month month "
		                  "day-of-week) or 6 with seconds first",
		                  text, fields, fields == 1 ? "" : "s");
	int first = F_COUNT - fields; /* 5 fields: the seconds are "0" */
	uint64_t bits[F_COUNT];
	bits[F_SEC] = 1;
	for (int i = 0; i < fields; i++) {
		int rc = parse_field(starts[i], lens[i], &field_specs[first + i], &bits[first + i],
		                     text, i, fields, err);
		if (rc != 0)
			return rc;
	}
	out->seconds = bits[F_SEC];
	out->minutes = bits[F_MIN];
	out->hours = (uint32_t)bits[F_HOUR];
	out->mdays = (uint32_t)bits[F_MDAY];
	out->months = (uint16_t)bits[F_MON];
	uint64_t wd = bits[F_WDAY];
	if (wd & (1ULL << 7))
		wd |= 1; /* 7 is Sunday too */
	out->wdays = (uint8_t)(wd & 0x7f);
	out->mday_star = starts[F_MDAY - first][0] == '*';
	out->wday_star = starts[F_WDAY - first][0] == '*';
	return 0;
}

/* ---- the calendar ---- */

struct wall {
	int64_t year;
	int month, day, hour, minute, second;
};

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int weekday(const struct wall *w)
{
	int64_t days = days_from_civil(w->year, w->month, w->day);
	return (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
}

/* The wall time read as if it were UTC, in seconds. */
static int64_t wall_as_utc(const struct wall *w)
{
	return days_from_civil(w->year, w->month, w->day) * 86400 + w->hour * 3600 +
	       w->minute * 60 + w->second;
}

/* Carries any field past its end into the next larger one. */
static void wall_carry(struct wall *w)
{
	if (w->second > 59) {
		w->second = 0;
		w->minute++;
	}
	if (w->minute > 59) {
		w->minute = 0;
		w->hour++;
	}
	if (w->hour > 23) {
		w->hour = 0;
		w->day++;
	}
	if (w->day > days_in_month(w->year, w->month)) {
		w->day = 1;
		w->month++;
	}
	if (w->month > 12) {
		w->month = 1;
		w->year++;
	}
}

static bool day_matches(const struct cron_expr *e, const struct wall *w)
{
	bool mday = e->mdays & (1U << w->day);
	bool wday = e->wdays & (1U << weekday(w));
	if (e->mday_star || e->wday_star)
		return mday && wday;
	return mday || wday; /* Vixie: both restricted means either */
}

/* Moves *w forward to the first wall time at or after it that matches e;
 * false when none comes before year limit_year. */
static bool wall_next_match(const struct cron_expr *e, struct wall *w, int64_t limit_year)
{
	for (int steps = 0; steps < 1000000; steps++) {
		if (w->year > limit_year)
			return false;
		if (!(e->months & (1U << w->month))) {
			w->month++;
			w->day = 1;
			w->hour = w->minute = w->second = 0;
			if (w->month > 12) {
				w->month = 1;
				w->year++;
			}
		} else if (!day_matches(e, w)) {
			w->day++;
			w->hour = w->minute = w->second = 0;
			wall_carry(w);
		} else if (!(e->hours & (1U << w->hour))) {
			w->hour++;
			w->minute = w->second = 0;
			wall_carry(w);
		} else if (!(e->minutes & (1ULL << w->minute))) {
			w->minute++;
			w->second = 0;
			wall_carry(w);
		} else if (!(e->seconds & (1ULL << w->second))) {
			w->second++;
			wall_carry(w);
		} else {
			return true;
		}
	}
	return false;
}

/* ---- the zone ---- */

static pthread_mutex_t zone_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *zoneinfo_dir(void)
{
	return "/usr/share/zoneinfo";
}

int cron_zone_check(const char *zone, struct jm_err *err)
{
	size_t len = zone != NULL ? strlen(zone) : 0;
	bool ok = len > 0 && len < CRON_ZONE_MAX && zone[0] != '/';
	for (size_t i = 0; ok && i < len; i++) {
		char c = zone[i];
		ok = isalnum((unsigned char)c) || c == '/' || c == '_' || c == '+' || c == '-' ||
		     (c == '.' && i > 0 && zone[i - 1] != '/' && zone[i - 1] != '.');
	}
	if (!ok)
		return jm_err_set(
		    err, JM_EINVAL,
		    "time zone \"%s\" is invalid: use an IANA name such as UTC, "
		    "Europe/Berlin or America/New_York (1-%d of A-Z a-z 0-9 / _ + - .)",
		    zone != NULL ? zone : "", CRON_ZONE_MAX - 1);
	char path[256];
	snprintf(path, sizeof path, "%s/%s", zoneinfo_dir(), zone);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char magic[4] = {0};
	ssize_t got = fd >= 0 ? read(fd, magic, sizeof magic) : -1;
	if (fd >= 0)
		close(fd);
	if (got != 4 || memcmp(magic, "TZif", 4) != 0)
		return jm_err_set(
		    err, JM_ENOTFOUND,
		    "time zone \"%s\" is unknown: no zone file %s (use an IANA name such "
		    "as Europe/Berlin; the tzdata package provides them)",
		    zone, path);
	return 0;
}

/* UTC offset in seconds at instant t, in the zone TZ names (zone_lock). */
static int64_t zone_offset(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return tm.tm_gmtoff;
}

static void zone_wall(int64_t t, struct wall *w)
{
	time_t tt = (time_t)t;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	localtime_r(&tt, &tm);
	w->year = (int64_t)tm.tm_year + 1900;
	w->month = tm.tm_mon + 1;
	w->day = tm.tm_mday;
	w->hour = tm.tm_hour;
	w->minute = tm.tm_min;
	w->second = tm.tm_sec > 59 ? 59 : tm.tm_sec;
}

/* The first instant whose wall time is w; for a wall time in a gap, the
 * first instant after the gap (where the clocks jumped to). */
static int64_t zone_first_instant(const struct wall *w)
{
	int64_t local = wall_as_utc(w);
	int64_t off_before = zone_offset(local - 86400);
	int64_t off_after = zone_offset(local + 86400);
	int64_t t1 = local - off_before;
	int64_t t2 = local - off_after;
	bool ok1 = zone_offset(t1) == off_before;
	bool ok2 = zone_offset(t2) == off_after;
	if (ok1 && ok2)
		return t1 < t2 ? t1 : t2;
	if (ok1)
		return t1;
	if (ok2)
		return t2;
	/* A gap: the transition lies in (lo, hi]; find its first second. */
	int64_t lo = t1 < t2 ? t1 : t2;
	int64_t hi = t1 < t2 ? t2 : t1;
	int64_t off_lo = zone_offset(lo);
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if (zone_offset(mid) == off_lo)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

struct saved_tz {
	char value[CRON_ZONE_MAX + 2];
	bool was_set;
};

static void zone_enter(const char *zone, struct saved_tz *saved)
{
	pthread_mutex_lock(&zone_lock);
	const char *old = getenv("TZ");
	saved->was_set = old != NULL && strlen(old) < sizeof saved->value;
	if (saved->was_set)
		snprintf(saved->value, sizeof saved->value, "%s", old);
	setenv("TZ", zone, 1);
	tzset();
}

static void zone_leave(const struct saved_tz *saved)
{
	if (saved->was_set)
		setenv("TZ", saved->value, 1);
	else
		unsetenv("TZ");
	tzset();
	pthread_mutex_unlock(&zone_lock);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int cron_next(const struct cron_expr *expr, const char *zone, int64_t after_us, int64_t *next_us,
              struct jm_err *err)
{
	int64_t after_s = floor_div(after_us, 1000000);
	if (expr->every_s > 0) {
		*next_us = (floor_div(after_s, expr->every_s) + 1) * expr->every_s * 1000000;
		return 0;
	}
	if (zone == NULL || *zone == '\0')
		zone = "UTC";
	int rc = cron_zone_check(zone, err);
	if (rc != 0)
		return rc;
	struct saved_tz saved;
	zone_enter(zone, &saved);
	/* Start one wall second after `after` as read in its own offset, so the
	 * wall times of a gap just ahead are still searched (they run at the
	 * gap's end), and the repeat of an overlap is found already passed. */
	struct wall w;
	zone_wall(after_s, &w);
	int64_t limit_year = w.year + CRON_MAX_YEARS;
	w.second++;
	wall_carry(&w);
	rc = JM_ENOTFOUND;
	for (int tries = 0; tries < 100000; tries++) {
		if (!wall_next_match(expr, &w, limit_year))
			break;
		int64_t t = zone_first_instant(&w);
		if (t > after_s) {
			*next_us = t * 1000000;
			rc = 0;
			break;
		}
		w.second++; /* this wall time already ran (an overlap's repeat) */
		wall_carry(&w);
	}
	zone_leave(&saved);
	if (rc != 0)
		return jm_err_set(err, JM_ENOTFOUND,
		                  "cron expression has no run in the next %d years (check the "
		                  "day-of-month against the month)",
		                  CRON_MAX_YEARS);
	return 0;
}
