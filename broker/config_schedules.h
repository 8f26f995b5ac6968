/* Schedules the broker's --config declares (schedule: {NAME: {cron: ...,
 * queue: ..., type: ...}}), each handed over as one --schedule record
 * (common/config.h), checked when the flags are read and put once the
 * core is open, as `jobmesh schedule add` would put them: an unchanged
 * schedule writes nothing, a changed one keeps its last run. */
#ifndef JM_BROKER_CONFIG_SCHEDULES_H
#define JM_BROKER_CONFIG_SCHEDULES_H

#include "core.h"
#include "err.h"
#include "message.h"

#define CONFIG_SCHEDULES_MAX 256

struct config_schedules {
	struct proto_schedule_info items[CONFIG_SCHEDULES_MAX];
	char expr[CONFIG_SCHEDULES_MAX][PROTO_SCHEDULE_EXPR_MAX + 1];
	char *texts[CONFIG_SCHEDULES_MAX]; /* the records, owned */
	uint32_t count;
};

/* Parses one record ("NAME" US "field=value" RS ...; fields cron or every,
 * tz, queue, type, payload, priority, max_attempts, timeout_ms) into cs,
 * which keeps a copy. 0, or JM_EINVAL / JM_ELIMIT / JM_ENOMEM with err
 * naming the schedule and field. */
int config_schedules_add(struct config_schedules *cs, const char *record, struct jm_err *err);
/* Frees cs's copies and cs itself; accepts NULL. */
void config_schedules_free(struct config_schedules *cs);

/* Puts every declared schedule into core: 0, or the first error. */
int config_schedules_declare(const struct config_schedules *cs, struct core *core,
                             struct jm_err *err);

#endif
