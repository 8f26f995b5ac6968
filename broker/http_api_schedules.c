/* The schedule endpoints: GET /v1/schedules, GET/PUT/DELETE
 * /v1/schedules/{name}. Each builds the NNG request (SCHEDULE_LIST, _PUT,
 * _DELETE) and hands it to the core, so the checks and the error wording
 * (a bad cron field, an unknown zone) are the core's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_call.h"
#include "http_json.h"

static const char *const no_params[] = {NULL};

static json_t *schedule_json(const struct proto_schedule_info *s)
{
	json_t *obj = json_object();
	json_object_set_new(obj, "name", json_string(s->name));
	json_object_set_new(
	    obj, "schedule",
	    json_stringn(s->expr.len ? (const char *)s->expr.ptr : "", s->expr.len));
	json_object_set_new(obj, "tz",
	                    s->zone.len ? json_stringn((const char *)s->zone.ptr, s->zone.len)
	                                : json_string("UTC"));
	json_object_set_new(obj, "queue", json_string(s->queue));
	json_object_set_new(obj, "type", json_string(s->type));
	json_object_set_new(
	    obj, "payload",
	    json_stringn(s->payload.len ? (const char *)s->payload.ptr : "", s->payload.len));
	json_object_set_new(obj, "priority", json_integer(s->priority));
	json_object_set_new(obj, "max_attempts", json_integer(s->max_attempts));
	json_object_set_new(obj, "timeout_ms", json_integer((json_int_t)s->timeout_ms));
	json_object_set_new(obj, "next_run_us", json_integer((json_int_t)s->next_run_us));
	json_object_set_new(obj, "last_run_us", json_integer((json_int_t)s->last_fired_us));
	return obj;
}

static bool name_ok(struct http_call *call, const char *name)
{
	size_t len = strlen(name);
	if (proto_name_is_valid(name, len) && len <= PROTO_NAME_MAX)
		return true;
	http_reply_error(call, 400, "schedule_name_invalid",
	                 "schedule name \"%.80s\" is invalid: %s", name, PROTO_NAME_RULE);
	return false;
}

/* ---- GET /v1/schedules[/{name}] --------------------------------------------- */

static void list_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_schedules *l = &reply->u.schedules;
	if (call->segments_count == 3) {
		for (uint32_t i = 0; i < l->schedules_count; i++)
			if (strcmp(l->schedules[i].name, call->segments[2]) == 0) {
				http_reply_json(call, 200, schedule_json(&l->schedules[i]));
				return;
			}
		http_reply_error(call, 404, "not_found", "schedule %s not found",
		                 call->segments[2]);
		return;
	}
	json_t *arr = json_array();
	for (uint32_t i = 0; i < l->schedules_count; i++)
		json_array_append_new(arr, schedule_json(&l->schedules[i]));
	http_reply_json(call, 200, json_pack("{s:o}", "schedules", arr));
}

static void list(struct http_call *call)
{
	call->req.msg.type = PROTO_SCHEDULE_LIST;
	call->what = "schedule-list";
	http_call_core(call, list_cb);
}

/* ---- PUT /v1/schedules/{name} ----------------------------------------------- */

static void put_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_schedules *l = &reply->u.schedules;
	if (l->schedules_count != 1) {
		http_reply_error(call, 503, "internal",
		                 "schedule-put: the broker returned no schedule");
		return;
	}
	http_reply_json(call, 200, schedule_json(&l->schedules[0]));
}

/* A string member of obj, or NULL (absent); false after replying when it
 * is not a string. */
static bool member_text(struct http_call *call, json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_string(v)) {
		http_reply_error(call, 400, "field_invalid", "%s must be a string", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

static bool member_int(struct http_call *call, json_t *obj, const char *key, long long min,
                       long long max, long long *out)
{
	json_t *v = json_object_get(obj, key);
	*out = 0;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		http_reply_error(call, 400, "field_invalid", "%s must be an integer in %lld..%lld",
		                 key, min, max);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

static void put(struct http_call *call)
{
	const char *name = call->segments[2];
	struct http_bad bad;
	const char *type = http_call_header(call, "Content-Type");
	call->body_json =
	    http_json_parse(call->body ? (const char *)call->body : "", call->body_len, type, &bad);
	if (call->body_json == NULL) {
		http_reply_error(call, bad.status, bad.code, "%s", bad.message);
		return;
	}
	json_t *o = call->body_json;
	if (!json_is_object(o)) {
		http_reply_error(
		    call, 400, "body_invalid",
		    "the body must be an object: {\"cron\" or \"every\", \"tz\", \"queue\", "
		    "\"type\", \"payload\", ...}");
		return;
	}
	const char *cron, *every, *tz, *queue, *jtype, *payload;
	long long priority, attempts, timeout_ms;
	if (!member_text(call, o, "cron", &cron) || !member_text(call, o, "every", &every) ||
	    !member_text(call, o, "tz", &tz) || !member_text(call, o, "queue", &queue) ||
	    !member_text(call, o, "type", &jtype) || !member_text(call, o, "payload", &payload) ||
	    !member_int(call, o, "priority", -1000, 1000, &priority) ||
	    !member_int(call, o, "max_attempts", 0, 1000, &attempts) ||
	    !member_int(call, o, "timeout_ms", 0, UINT32_MAX, &timeout_ms))
		return;
	if ((cron == NULL) == (every == NULL)) {
		http_reply_error(call, 400, "field_invalid", "give exactly one of cron and every");
		return;
	}
	if (queue == NULL || jtype == NULL || strlen(queue) > PROTO_NAME_MAX ||
	    strlen(jtype) > PROTO_NAME_MAX) {
		http_reply_error(call, 400, "field_invalid", "queue and type are required: %s",
		                 PROTO_NAME_RULE);
		return;
	}
	char *expr = malloc(PROTO_SCHEDULE_EXPR_MAX + 16);
	if (expr == NULL || http_call_keep(call, expr) != 0) {
		http_reply_error(call, 503, "out_of_memory", "broker out of memory");
		return;
	}
	snprintf(expr, PROTO_SCHEDULE_EXPR_MAX + 16, "%s%s", every ? "@every " : "",
	         every ? every : cron);
	struct proto_schedule_info *p = &call->req.msg.u.schedule_put;
	call->req.msg.type = PROTO_SCHEDULE_PUT;
	snprintf(p->name, sizeof p->name, "%s", name);
	p->expr = (struct proto_bytes){(const uint8_t *)expr, (uint32_t)strlen(expr)};
	if (tz != NULL)
		p->zone = (struct proto_bytes){(const uint8_t *)tz, (uint32_t)strlen(tz)};
	snprintf(p->queue, sizeof p->queue, "%s", queue);
	snprintf(p->type, sizeof p->type, "%s", jtype);
	if (payload != NULL)
		p->payload =
		    (struct proto_bytes){(const uint8_t *)payload, (uint32_t)strlen(payload)};
	p->priority = (int32_t)priority;
	p->max_attempts = (uint32_t)attempts;
	p->timeout_ms = (uint64_t)timeout_ms;
	call->what = "schedule-put";
	http_call_core(call, put_cb);
}

/* ---- DELETE /v1/schedules/{name} -------------------------------------------- */

static void delete_cb(struct http_call *call, const struct proto_msg *reply)
{
	(void)reply;
	http_reply_json(call, 200, json_pack("{s:s}", "deleted", call->segments[2]));
}

static void delete (struct http_call *call)
{
	call->req.msg.type = PROTO_SCHEDULE_DELETE;
	snprintf(call->req.msg.u.schedule_ref.name, sizeof call->req.msg.u.schedule_ref.name, "%s",
	         call->segments[2]);
	call->what = "schedule-delete";
	http_call_core(call, delete_cb);
}

void http_api_schedules(struct http_call *call)
{
	if (!http_query_only(call, no_params))
		return;
	if (call->segments_count == 3 && !name_ok(call, call->segments[2]))
		return;
	if (strcmp(call->method, "GET") == 0)
		list(call);
	else if (strcmp(call->method, "PUT") == 0)
		put(call);
	else
		delete (call);
}
