/* RFC 3339 timestamps, as `jobmesh submit --run-at` takes them. */
#ifndef JM_COMMON_RFC3339_H
#define JM_COMMON_RFC3339_H

#include <stdint.h>

#include "err.h"

/* Parses text as YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) ('t',
 * 'z' and a space for 'T' taken too) into microseconds since 1970 UTC
 * (fraction digits past 6 are dropped). 0, or JM_EINVAL with err naming
 * the text and the form allowed. Times before 1970 are refused. */
int jm_rfc3339_parse(const char *text, uint64_t *out_us, struct jm_err *err);

#endif
