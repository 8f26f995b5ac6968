/* Schedules from the broker's config file (see config_schedules.h). */
#include "config_schedules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "flags.h"

#define FIELDS_RULE "cron or every, tz, queue, type, payload, priority, max_attempts, timeout_ms"

int config_schedules_add(struct config_schedules *cs, const char *text, struct jm_err *err)
{
	if (cs->count >= CONFIG_SCHEDULES_MAX)
		return jm_err_set(err, JM_ELIMIT, "at most %d schedules in a config",
		                  CONFIG_SCHEDULES_MAX);
	char *record = strdup(text);
	if (record == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	cs->texts[cs->count] = record; /* freed by config_schedules_free */
	char *unit = strchr(record, JM_CONFIG_UNIT);
	if (unit == NULL)
		return jm_err_set(err, JM_EINVAL,
		                  "schedule \"%.64s\": give it as a mapping in the config file "
		                  "(schedule: {NAME: {cron: ..., queue: ..., type: ...}})",
		                  record);
	*unit = '\0';
	const char *name = record;
	if (!proto_name_is_valid(name, strlen(name)) || strlen(name) > PROTO_NAME_MAX)
		return jm_err_set(err, JM_EINVAL, "schedule name \"%.64s\" is invalid: %s", name,
		                  PROTO_NAME_RULE);
	struct proto_schedule_info *p = &cs->items[cs->count];
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", name);
	const char *cron = NULL, *every = NULL;
	char *save = NULL;
	for (char *kv = strtok_r(unit + 1, (char[]){JM_CONFIG_RECORD, 0}, &save); kv != NULL;
	     kv = strtok_r(NULL, (char[]){JM_CONFIG_RECORD, 0}, &save)) {
		char *eq = strchr(kv, '=');
		if (eq == NULL)
			return jm_err_set(err, JM_EINVAL, "schedule %s: \"%.64s\" has no value",
			                  name, kv);
		*eq = '\0';
		const char *v = eq + 1;
		unsigned long long n;
		long long i;
		int rc = 0;
		if (strcmp(kv, "cron") == 0)
			cron = v;
		else if (strcmp(kv, "every") == 0)
			every = v;
		else if (strcmp(kv, "tz") == 0)
			p->zone = (struct proto_bytes){(const uint8_t *)v, (uint32_t)strlen(v)};
		else if (strcmp(kv, "payload") == 0)
			p->payload = (struct proto_bytes){(const uint8_t *)v, (uint32_t)strlen(v)};
		else if (strcmp(kv, "queue") == 0 || strcmp(kv, "type") == 0) {
			if (!proto_name_is_valid(v, strlen(v)) || strlen(v) > PROTO_NAME_MAX)
				return jm_err_set(err, JM_EINVAL,
				                  "schedule %s: %s name \"%.64s\" is invalid: %s",
				                  name, kv, v, PROTO_NAME_RULE);
			snprintf(kv[0] == 'q' ? p->queue : p->type, sizeof p->queue, "%s", v);
		} else if (strcmp(kv, "priority") == 0) {
			rc = jm_parse_i64("priority", v, PROTO_PRIORITY_MIN, PROTO_PRIORITY_MAX, &i,
			                  err);
			p->priority = (int32_t)i;
		} else if (strcmp(kv, "max_attempts") == 0) {
			rc = jm_parse_u64("max_attempts", v, 0, PROTO_ATTEMPTS_MAX, &n, err);
			p->max_attempts = (uint32_t)n;
		} else if (strcmp(kv, "timeout_ms") == 0) {
			rc = jm_parse_u64("timeout_ms", v, 0, 7ull * 24 * 3600 * 1000, &n, err);
			p->timeout_ms = n;
		} else {
			return jm_err_set(err, JM_EINVAL,
			                  "schedule %s: unknown field \"%.64s\": use %s", name, kv,
			                  FIELDS_RULE);
		}
		if (rc != 0)
			return jm_err_prefix(err, "schedule %s", name);
	}
	if ((cron == NULL) == (every == NULL))
		return jm_err_set(err, JM_EINVAL, "schedule %s: give exactly one of cron and every",
		                  name);
	if (p->queue[0] == '\0' || p->type[0] == '\0')
		return jm_err_set(err, JM_EINVAL, "schedule %s: queue and type are required", name);
	char *expr = cs->expr[cs->count];
	int len = snprintf(expr, sizeof cs->expr[0], "%s%s", every ? "@every " : "",
	                   every ? every : cron);
	if (len < 0 || (size_t)len >= sizeof cs->expr[0])
		return jm_err_set(err, JM_EINVAL, "schedule %s: expression over %d bytes", name,
		                  PROTO_SCHEDULE_EXPR_MAX);
	p->expr = (struct proto_bytes){(const uint8_t *)expr, (uint32_t)len};
	for (uint32_t i = 0; i < cs->count; i++)
		if (strcmp(cs->items[i].name, p->name) == 0)
			return jm_err_set(err, JM_EINVAL, "schedule %s is declared twice", name);
	cs->count++;
	return 0;
}

void config_schedules_free(struct config_schedules *cs)
{
	if (cs == NULL)
		return;
	for (uint32_t i = 0; i < CONFIG_SCHEDULES_MAX; i++)
		free(cs->texts[i]);
	free(cs);
}

int config_schedules_declare(const struct config_schedules *cs, struct core *core,
                             struct jm_err *err)
{
	for (uint32_t i = 0; i < cs->count; i++) {
		int rc = core_schedule_declare(core, &cs->items[i], err);
		if (rc != 0)
			return jm_err_prefix(err, "config");
	}
	return 0;
}
