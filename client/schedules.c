/* Schedules: put, delete and list them (the broker runs them). */
#include <jobmesh/client.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

void jm_schedules_free(jm_schedule *schedules, size_t count)
{
	if (schedules == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(schedules[i].name);
		free(schedules[i].expr);
		free(schedules[i].zone);
		free(schedules[i].queue);
		free(schedules[i].type);
		free(schedules[i].payload);
	}
	free(schedules);
}

static char *dup_name(const char *name)
{
	return strdup(name);
}

/* Fills *out (zeroed) from info; false when out of memory. */
static bool schedule_from_proto(const struct proto_schedule_info *info, jm_schedule *out)
{
	out->name = dup_name(info->name);
	out->expr = client_dup_bytes(&info->expr);
	out->zone = client_dup_bytes(&info->zone);
	out->queue = dup_name(info->queue);
	out->type = dup_name(info->type);
	out->payload = client_dup_bytes(&info->payload);
	out->payload_len = info->payload.len;
	out->priority = info->priority;
	out->max_attempts = info->max_attempts;
	out->timeout_ms = info->timeout_ms;
	out->last_fired_us = info->last_fired_us;
	out->next_run_us = info->next_run_us;
	return out->name && out->expr && out->zone && out->queue && out->type && out->payload;
}

/* Copies the reply's schedules into a new array. */
static int schedules_copy(const char *op, const struct proto_schedules *list,
                          jm_schedule **schedules, size_t *count)
{
	jm_schedule *copy = calloc(list->schedules_count ? list->schedules_count : 1, sizeof *copy);
	if (copy == NULL)
		return client_fail(JM_ENOMEM, "%s: out of memory", op);
	for (uint32_t i = 0; i < list->schedules_count; i++) {
		if (!schedule_from_proto(&list->schedules[i], &copy[i])) {
			jm_schedules_free(copy, i + 1);
			return client_fail(JM_ENOMEM, "%s: out of memory", op);
		}
	}
	*schedules = copy;
	*count = list->schedules_count;
	return 0;
}

static int check_name(const char *op, const char *name)
{
	if (name == NULL || !proto_name_is_valid(name, strlen(name)))
		return client_fail(
		    JM_EBADNAME,
		    "%s: schedule name \"%s\" is invalid: use 1-%d of A-Z a-z 0-9 . _ -", op,
		    name ? name : "", PROTO_NAME_MAX);
	return 0;
}

int jm_client_schedule_put(jm_client *client, const jm_schedule *s, jm_schedule **out)
{
	if (out != NULL)
		*out = NULL;
	if (client == NULL || s == NULL || s->expr == NULL || s->queue == NULL || s->type == NULL)
		return client_fail(
		    JM_EINVAL, "schedule-put: client, schedule, expr, queue and type must not be "
		               "NULL");
	int rc = check_name("schedule-put", s->name);
	if (rc == 0)
		rc = client_check_queue("schedule-put", s->queue);
	if (rc != 0)
		return rc;
	if (strlen(s->type) > PROTO_NAME_MAX)
		return client_fail(JM_EBADNAME, "schedule-put: type name is longer than %d bytes",
		                   PROTO_NAME_MAX);
	const char *zone = s->zone ? s->zone : "";
	struct proto_msg req = {.type = PROTO_SCHEDULE_PUT};
	struct proto_schedule_info *p = &req.u.schedule_put;
	snprintf(p->name, sizeof p->name, "%s", s->name);
	p->expr = (struct proto_bytes){(const uint8_t *)s->expr, (uint32_t)strlen(s->expr)};
	p->zone = (struct proto_bytes){(const uint8_t *)zone, (uint32_t)strlen(zone)};
	snprintf(p->queue, sizeof p->queue, "%s", s->queue);
	snprintf(p->type, sizeof p->type, "%s", s->type);
	p->payload =
	    (struct proto_bytes){s->payload_len ? s->payload : NULL, (uint32_t)s->payload_len};
	p->priority = s->priority;
	p->max_attempts = s->max_attempts;
	p->timeout_ms = s->timeout_ms;
	struct rpc_reply reply;
	rc = client_call(client, "schedule-put", &req, PROTO_SCHEDULES, client_timeout(client),
	                 &reply);
	if (rc != 0)
		return rc;
	if (out != NULL) {
		size_t count = 0;
		rc = schedules_copy("schedule-put", &reply.msg.u.schedules, out, &count);
	}
	rpc_reply_fini(&reply);
	return rc;
}

int jm_client_schedule_delete(jm_client *client, const char *name)
{
	if (client == NULL)
		return client_fail(JM_EINVAL, "schedule-delete: client must not be NULL");
	int rc = check_name("schedule-delete", name);
	if (rc != 0)
		return rc;
	struct proto_msg req = {.type = PROTO_SCHEDULE_DELETE};
	snprintf(req.u.schedule_ref.name, sizeof req.u.schedule_ref.name, "%s", name);
	struct rpc_reply reply;
	rc = client_call(client, "schedule-delete", &req, PROTO_SCHEDULES, client_timeout(client),
	                 &reply);
	if (rc == 0)
		rpc_reply_fini(&reply);
	return rc;
}

int jm_client_schedule_list(jm_client *client, jm_schedule **schedules, size_t *count)
{
	if (schedules != NULL)
		*schedules = NULL;
	if (count != NULL)
		*count = 0;
	if (client == NULL || schedules == NULL || count == NULL)
		return client_fail(JM_EINVAL,
		                   "schedule-list: client, schedules and count must not be NULL");
	struct proto_msg req = {.type = PROTO_SCHEDULE_LIST};
	struct rpc_reply reply;
	int rc = client_call(client, "schedule-list", &req, PROTO_SCHEDULES, client_timeout(client),
	                     &reply);
	if (rc != 0)
		return rc;
	rc = schedules_copy("schedule-list", &reply.msg.u.schedules, schedules, count);
	rpc_reply_fini(&reply);
	return rc;
}
