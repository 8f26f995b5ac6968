/* RFC 3339 timestamps (see rfc3339.h). timegm does the calendar. */
#define _DEFAULT_SOURCE
#include "rfc3339.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <jobmesh/error.h>

#define RFC3339_FORM                                                                               \
	"use an RFC 3339 time such as 2026-12-01T09:30:00Z or 2026-12-01T10:30:00+01:00"

/* Reads exactly n digits at *p into *out; false if they are not there. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, const char *any)
{
	if (**p == '\0' || strchr(any, **p) == NULL)
		return false;
	(*p)++;
	return true;
}

int jm_rfc3339_parse(const char *text, uint64_t *out_us, struct jm_err *err)
{
	const char *p = text ? text : "";
	int year, month, day, hour, minute, second;
	bool ok = digits(&p, 4, &year) && expect(&p, "-") && digits(&p, 2, &month) &&
	          expect(&p, "-") && digits(&p, 2, &day) && expect(&p, "Tt ") &&
	          digits(&p, 2, &hour) && expect(&p, ":") && digits(&p, 2, &minute) &&
	          expect(&p, ":") && digits(&p, 2, &second);
	uint64_t frac_us = 0;
	if (ok && *p == '.') {
		p++;
		int places = 0;
		while (isdigit((unsigned char)*p)) {
			if (places < 6) {
				frac_us = frac_us * 10 + (uint64_t)(*p - '0');
				places++;
			}
			p++;
		}
		ok = places > 0;
		for (; places < 6; places++)
			frac_us *= 10;
	}
	long offset_s = 0;
	if (ok && (*p == 'Z' || *p == 'z')) {
		p++;
	} else if (ok && (*p == '+' || *p == '-')) {
		int sign = *p == '-' ? -1 : 1, oh = 0, om = 0;
		p++;
		ok = digits(&p, 2, &oh) && expect(&p, ":") && digits(&p, 2, &om) && oh <= 23 &&
		     om <= 59;
		offset_s = sign * (oh * 3600L + om * 60L);
	} else {
		ok = false;
	}
	ok = ok && *p == '\0' && month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 &&
	     minute <= 59 && second <= 60;
	if (!ok)
		return jm_err_set(err, JM_EINVAL, "time \"%.64s\" is not valid: %s",
		                  text ? text : "", RFC3339_FORM);
	struct tm tm = {.tm_year = year - 1900,
	                .tm_mon = month - 1,
	                .tm_mday = day,
	                .tm_hour = hour,
	                .tm_min = minute,
	                .tm_sec = second};
	time_t t = timegm(&tm);
	/* timegm normalises: 2026-02-31 would become March 3rd. */
	if (tm.tm_mday != day || tm.tm_mon != month - 1)
		return jm_err_set(err, JM_EINVAL,
		                  "time \"%.64s\": day %d does not exist in that month: %s", text,
		                  day, RFC3339_FORM);
	int64_t s = (int64_t)t - offset_s;
	if (s < 0)
		return jm_err_set(err, JM_EINVAL, "time \"%.64s\" is before 1970: %s", text,
		                  RFC3339_FORM);
	*out_us = (uint64_t)s * 1000000 + frac_us;
	return 0;
}
