/* Wire bodies of the schedule requests (see message.h): SCHEDULE_PUT,
 * SCHEDULE_DELETE, SCHEDULES. The expression and zone are only bounded
 * here; the broker judges them (common/cron.h) and answers a bad one with
 * an ERROR naming the field. */
#include "msg_fields.h"

#include <string.h>

#include "job_spec.h"

/* A put's template obeys the job spec rules. */
static int schedule_put_check(const void *base, struct jm_err *err)
{
	const struct proto_schedule_info *s = base;
	if (s->expr.len == 0)
		return jm_err_set(err, JM_EINVAL,
		                  "schedule expression is empty: use a cron expression (5 or 6 "
		                  "fields) or @every DURATION");
	return proto_job_spec_check(s->queue, strlen(s->queue), s->type, strlen(s->type),
	                            s->payload.len, s->priority, s->max_attempts, err);
}

/* [name, expr, zone, queue, type, payload, priority, max_attempts,
 *  timeout_ms, last_fired_us, next_run_us] */
static const struct field schedule_info_field[] = {
    F_NAME(struct proto_schedule_info, name, "schedule name"),
    F_TEXT(struct proto_schedule_info, expr, PROTO_SCHEDULE_EXPR_MAX),
    F_TEXT(struct proto_schedule_info, zone, PROTO_SCHEDULE_ZONE_MAX),
    F_NAME(struct proto_schedule_info, queue, "queue name"),
    F_NAME(struct proto_schedule_info, type, "type name"),
    F_BIN(struct proto_schedule_info, payload, UINT32_MAX), /* size: by the spec rules */
    F_I32(struct proto_schedule_info, priority),
    F_U32(struct proto_schedule_info, max_attempts),
    F_U64(struct proto_schedule_info, timeout_ms),
    F_U64(struct proto_schedule_info, last_fired_us),
    F_U64(struct proto_schedule_info, next_run_us),
};
const struct fields msg_schedule_put_fields = FIELDS_OF(schedule_info_field, schedule_put_check);
static const struct fields schedule_info_fields =
    FIELDS_OF(schedule_info_field, schedule_put_check);
static const struct field schedule_info_elem = F_ELEM_STRUCT(&schedule_info_fields);

/* SCHEDULE_DELETE: [name] */
static const struct field schedule_ref_field[] = {
    F_NAME(struct proto_schedule_ref, name, "schedule name"),
};
const struct fields msg_schedule_ref_fields = FIELDS_OF(schedule_ref_field, NULL);

/* SCHEDULES: [[schedule_info...]] */
static const struct field schedules_field[] = {
    F_LIST(struct proto_schedules, schedules, schedules_count, "schedules", "schedules", "schedule",
           0, UINT32_MAX, &schedule_info_elem),
};
const struct fields msg_schedules_fields = FIELDS_OF(schedules_field, NULL);
