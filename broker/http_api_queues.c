/* A queue's runtime settings over HTTP: GET and PATCH
 * /v1/queues/{queue}/settings, POST /v1/queues/{queue}/pause and /resume.
 * Each is a QUEUE_SET (an empty mask reads), so the checks, the journaling
 * and the wording are the core's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_call.h"
#include "http_json.h"

static const char *const no_params[] = {NULL};

static void settings_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_queue_settings *s = &reply->u.queue_settings;
	json_t *rate = s->rate_jobs ? json_pack("{s:I,s:I}", "jobs", (json_int_t)s->rate_jobs,
	                                        "period_ms", (json_int_t)s->rate_period_ms)
	                            : json_null();
	json_t *o = json_pack(
	    "{s:s,s:b,s:I,s:o,s:I,s:I,s:I,s:I,s:I}", "queue", s->queue, "paused", s->paused,
	    "max_active", (json_int_t)s->max_active, "rate", rate, "max_attempts",
	    (json_int_t)s->max_attempts, "keep_finished", (json_int_t)s->keep_finished,
	    "keep_finished_age_ms", (json_int_t)s->keep_finished_age_ms, "key_window_ms",
	    (json_int_t)s->key_window_ms, "group_limit", (json_int_t)s->group_limit);
	http_json_keep(o, s->keep_completed, s->keep_completed_age_ms, s->keep_failed,
	               s->keep_failed_age_ms, s->keep_cancelled, s->keep_cancelled_age_ms);
	http_reply_json(call, 200, o);
}

/* A retention count member: an integer 0..PROTO_KEEP_MAX, or null for no
 * limit. False after replying. */
static bool keep_member(struct http_call *call, json_t *o, const char *name, uint64_t *out,
                        uint32_t *mask, uint32_t bit)
{
	json_t *v = json_object_get(o, name);
	if (v == NULL)
		return true;
	if (json_is_null(v)) {
		*out = PROTO_KEEP_ALL;
		*mask |= bit;
		return true;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > PROTO_KEEP_MAX) {
		http_reply_error(call, 400, "field_range",
		                 "%s must be an integer from 0 to %llu, or null for no limit", name,
		                 (unsigned long long)PROTO_KEEP_MAX);
		return false;
	}
	*out = (uint64_t)json_integer_value(v);
	*mask |= bit;
	return true;
}

/* An integer member of o in min..max into *out, setting bit in *mask;
 * absent: untouched. False after replying. */
static bool member(struct http_call *call, json_t *o, const char *name, long long min,
                   long long max, uint64_t *out, uint32_t *mask, uint32_t bit)
{
	json_t *v = json_object_get(o, name);
	if (v == NULL)
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		http_reply_error(call, 400, "field_range",
		                 "%s must be an integer from %lld to %lld", name, min, max);
		return false;
	}
	*out = (uint64_t)json_integer_value(v);
	*mask |= bit;
	return true;
}

/* PATCH's body into the request's settings; false after replying. */
static bool patch_body(struct http_call *call, struct proto_queue_settings *p)
{
	struct http_bad bad;
	const char *type = http_call_header(call, "Content-Type");
	call->body_json =
	    http_json_parse(call->body ? (const char *)call->body : "", call->body_len, type, &bad);
	if (call->body_json == NULL) {
		http_reply_error(call, bad.status, bad.code, "%s", bad.message);
		return false;
	}
	json_t *o = call->body_json;
	static const char *const allowed[] = {"paused",
	                                      "max_active",
	                                      "rate",
	                                      "max_attempts",
	                                      "keep_finished",
	                                      "keep_finished_age_ms",
	                                      "keep_completed",
	                                      "keep_completed_age_ms",
	                                      "keep_failed",
	                                      "keep_failed_age_ms",
	                                      "keep_cancelled",
	                                      "keep_cancelled_age_ms",
	                                      "key_window_ms",
	                                      "group_limit",
	                                      NULL};
	const char *key;
	json_t *value;
	if (!json_is_object(o)) {
		http_reply_error(call, 400, "field_type", "the body must be an object of settings");
		return false;
	}
	json_object_foreach(o, key, value)
	{
		bool known = false;
		for (int i = 0; allowed[i]; i++)
			known = known || strcmp(key, allowed[i]) == 0;
		if (!known) {
			http_reply_error(
			    call, 400, "unknown_field",
			    "unknown field \"%.64s\": allowed are paused, max_active, "
			    "rate, max_attempts, keep_finished, keep_finished_age_ms, "
			    "keep_completed, keep_completed_age_ms, keep_failed, "
			    "keep_failed_age_ms, keep_cancelled, keep_cancelled_age_ms, "
			    "key_window_ms, group_limit",
			    key);
			return false;
		}
	}
	json_t *paused = json_object_get(o, "paused");
	if (paused != NULL) {
		if (!json_is_boolean(paused)) {
			http_reply_error(call, 400, "field_type", "paused must be true or false");
			return false;
		}
		p->paused = json_is_true(paused);
		p->set_mask |= PROTO_QSET_PAUSED;
	}
	uint64_t v = 0; /* member leaves it alone when the field is absent */
	const long long day_ms = 24ll * 3600 * 1000;
	if (!member(call, o, "max_active", 0, UINT32_MAX, &v, &p->set_mask, PROTO_QSET_MAX_ACTIVE))
		return false;
	p->max_active = (uint32_t)v;
	if (!member(call, o, "max_attempts", 1, PROTO_ATTEMPTS_MAX, &v, &p->set_mask,
	            PROTO_QSET_MAX_ATTEMPTS))
		return false;
	p->max_attempts = (uint32_t)v;
	if (!member(call, o, "group_limit", 0, UINT32_MAX, &v, &p->set_mask,
	            PROTO_QSET_GROUP_LIMIT))
		return false;
	p->group_limit = (uint32_t)v;
	const long long age_max = (long long)PROTO_KEEP_AGE_MS_MAX;
	if (!keep_member(call, o, "keep_finished", &p->keep_finished, &p->set_mask,
	                 PROTO_QSET_KEEP_FINISHED) ||
	    !member(call, o, "keep_finished_age_ms", 0, age_max, &p->keep_finished_age_ms,
	            &p->set_mask, PROTO_QSET_KEEP_AGE) ||
	    !keep_member(call, o, "keep_completed", &p->keep_completed, &p->set_mask,
	                 PROTO_QSET_KEEP_COMPLETED) ||
	    !member(call, o, "keep_completed_age_ms", 0, age_max, &p->keep_completed_age_ms,
	            &p->set_mask, PROTO_QSET_KEEP_COMPLETED_AGE) ||
	    !keep_member(call, o, "keep_failed", &p->keep_failed, &p->set_mask,
	                 PROTO_QSET_KEEP_FAILED) ||
	    !member(call, o, "keep_failed_age_ms", 0, age_max, &p->keep_failed_age_ms, &p->set_mask,
	            PROTO_QSET_KEEP_FAILED_AGE) ||
	    !keep_member(call, o, "keep_cancelled", &p->keep_cancelled, &p->set_mask,
	                 PROTO_QSET_KEEP_CANCELLED) ||
	    !member(call, o, "keep_cancelled_age_ms", 0, age_max, &p->keep_cancelled_age_ms,
	            &p->set_mask, PROTO_QSET_KEEP_CANCELLED_AGE) ||
	    !member(call, o, "key_window_ms", 1, 3650 * day_ms, &p->key_window_ms, &p->set_mask,
	            PROTO_QSET_KEY_WINDOW))
		return false;
	json_t *rate = json_object_get(o, "rate");
	if (rate != NULL) {
		p->set_mask |= PROTO_QSET_RATE;
		if (json_is_null(rate))
			return true;
		uint32_t ignored = 0;
		if (!json_is_object(rate) || json_object_size(rate) != 2 ||
		    !json_object_get(rate, "jobs") || !json_object_get(rate, "period_ms")) {
			http_reply_error(call, 400, "field_type",
			                 "rate must be {\"jobs\": N, \"period_ms\": MS} or null");
			return false;
		}
		if (!member(call, rate, "jobs", 1, PROTO_RATE_JOBS_MAX, &v, &ignored, 0))
			return false;
		p->rate_jobs = (uint32_t)v;
		if (!member(call, rate, "period_ms", 1, (long long)PROTO_RATE_PERIOD_MS_MAX,
		            &p->rate_period_ms, &ignored, 0))
			return false;
	}
	return true;
}

void http_api_queue_settings(struct http_call *call, const char *action)
{
	const char *queue = call->segments[2];
	if (!http_queue_name_ok(call, queue))
		return;
	if (!http_query_only(call, no_params))
		return;
	struct proto_queue_settings *p = &call->req.msg.u.queue_settings;
	memset(p, 0, sizeof *p);
	memcpy(p->queue, queue, strlen(queue) + 1);
	if (strcmp(action, "pause") == 0 || strcmp(action, "resume") == 0) {
		p->set_mask = PROTO_QSET_PAUSED;
		p->paused = strcmp(action, "pause") == 0;
	} else if (strcmp(call->method, "PATCH") == 0 && !patch_body(call, p)) {
		return;
	}
	call->req.msg.type = PROTO_QUEUE_SET;
	call->what = "queue-set";
	http_call_core(call, settings_cb);
}
