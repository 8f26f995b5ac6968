/* JSON for the HTTP API (see http_json.h). */
#include "http_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "err.h"
#include "job_spec.h"
#include "limits.h"
#include "rfc3339.h"

int http_bad_set(struct http_bad *bad, uint16_t status, const char *code, const char *fmt, ...)
{
	bad->status = status;
	snprintf(bad->code, sizeof bad->code, "%s", code);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(bad->message, sizeof bad->message, fmt, ap);
	va_end(ap);
	return -1;
}

uint16_t http_status_of(int jm_code)
{
	switch (jm_code) {
	case JM_EINVAL:
	case JM_EPROTO:
	case JM_EBADNAME:
	case JM_EVERSION:
		return 400;
	case JM_ENOTFOUND:
		return 404;
	case JM_ESTATE:
	case JM_ESTALE:
		return 409;
	case JM_ETOOBIG:
		return 413;
	case JM_ELIMIT:
		return 429;
	case JM_EAUTH:
		return 401;
	case JM_EFORBIDDEN:
		return 403;
	case JM_EUNSUPPORTED:
		return 405;
	case JM_ETIMEDOUT:
		return 504;
	default: /* ENOSPC, ENOMEM, ECLOSED, EIO, ...: the broker cannot now */
		return 503;
	}
}

const char *http_code_of(int jm_code)
{
	switch (jm_code) {
	case JM_EINVAL:
		return "invalid_field";
	case JM_EPROTO:
		return "malformed_request";
	case JM_EBADNAME:
		return "name_invalid";
	case JM_EVERSION:
		return "version_unsupported";
	case JM_ENOTFOUND:
		return "not_found";
	case JM_ESTATE:
		return "state_conflict";
	case JM_ESTALE:
		return "lease_stale";
	case JM_ETOOBIG:
		return "too_big";
	case JM_ELIMIT:
		return "limit_reached";
	case JM_EAUTH:
		return "unauthorized";
	case JM_EFORBIDDEN:
		return "forbidden";
	case JM_EUNSUPPORTED:
		return "unsupported";
	case JM_ENOSPC:
		return "journal_not_writable";
	case JM_ENOMEM:
		return "out_of_memory";
	case JM_ECLOSED:
		return "shutting_down";
	case JM_ENOTLEADER:
		return "not_leader";
	case JM_ENOSTANDBY:
		return "no_standby";
	default:
		return "unavailable";
	}
}

json_t *http_json_id(uint64_t id)
{
	char text[24];
	snprintf(text, sizeof text, "%llu", (unsigned long long)id);
	return json_string(text);
}

json_t *http_json_id_or_null(uint64_t id)
{
	return id ? http_json_id(id) : json_null();
}

json_t *http_json_text(const struct proto_bytes *b)
{
	if (b->len == 0)
		return json_null();
	json_t *s = json_stringn((const char *)b->ptr, b->len);
	/* Not UTF-8: show what can be shown rather than fail the reply. */
	return s ? s : json_string("(not UTF-8)");
}

json_t *http_json_job(const struct proto_job_info *j)
{
	json_t *progress = json_pack("{s:I,s:I,s:o}", "done", (json_int_t)j->progress_done, "total",
	                             (json_int_t)j->progress_total, "message",
	                             http_json_text(&j->progress_message));
	return json_pack(
	    "{s:o,s:s,s:s,s:s,s:i,s:i,s:i,s:I,s:I,s:o,s:o,s:o,s:o,s:o}", "id",
	    http_json_id(j->job_id), "queue", j->attrs.queue, "type", j->attrs.type, "state",
	    proto_state_name((int)j->state), "priority", (int)j->attrs.priority, "attempt",
	    (int)j->attempt, "max_attempts", (int)j->attrs.max_attempts, "created_us",
	    (json_int_t)j->attrs.created_us, "updated_us", (json_int_t)j->updated_us, "run_at_us",
	    j->run_at_us ? json_integer((json_int_t)j->run_at_us) : json_null(), "last_error",
	    http_json_text(&j->last_error), "batch_id", http_json_id_or_null(j->attrs.batch_id),
	    "progress", progress ? progress : json_null(), "group",
	    j->attrs.group[0] ? json_string(j->attrs.group) : json_null());
}

static const char base64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *base64(const struct proto_bytes *b)
{
	size_t out_len = 4 * ((b->len + 2) / 3);
	char *out = malloc(out_len + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (uint32_t i = 0; i < b->len; i += 3) {
		uint32_t v = (uint32_t)b->ptr[i] << 16;
		if (i + 1 < b->len)
			v |= (uint32_t)b->ptr[i + 1] << 8;
		if (i + 2 < b->len)
			v |= b->ptr[i + 2];
		out[o++] = base64_digits[(v >> 18) & 63];
		out[o++] = base64_digits[(v >> 12) & 63];
		out[o++] = i + 1 < b->len ? base64_digits[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < b->len ? base64_digits[v & 63] : '=';
	}
	json_t *s = json_stringn(out, o);
	free(out);
	return s;
}

/* obj[name] = bytes as a JSON string when they are UTF-8; else null and
 * obj[name_base64] = their base64. Returns whether they were text. */
static bool add_bytes(json_t *obj, const char *name, const struct proto_bytes *bytes)
{
	json_t *text = json_stringn(bytes->len ? (const char *)bytes->ptr : "", bytes->len);
	if (text == NULL) {
		char key[64];
		snprintf(key, sizeof key, "%s_base64", name);
		json_object_set_new(obj, name, json_null());
		json_object_set_new(obj, key, base64(bytes));
		return false;
	}
	json_object_set_new(obj, name, text);
	return true;
}

void http_json_add_payload(json_t *obj, const struct proto_bytes *payload)
{
	add_bytes(obj, "payload", payload);
}

void http_json_add_result(json_t *obj, const struct proto_bytes *result)
{
	if (!add_bytes(obj, "result", result))
		return;
	json_t *data =
	    result->len ? json_loadb((const char *)result->ptr, result->len, JSON_DECODE_ANY, NULL)
	                : NULL;
	if (data)
		json_object_set_new(obj, "data", data);
}

static const char *batch_state_name(uint32_t state)
{
	switch (state) {
	case PROTO_BATCH_RUNNING:
		return "running";
	case PROTO_BATCH_COMPLETED:
		return "completed";
	case PROTO_BATCH_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}

json_t *http_json_batch(const struct proto_batch_info *b)
{
	json_t *errors = json_array();
	for (uint32_t i = 0; i < b->errors_count; i++)
		json_array_append_new(errors, json_pack("{s:o,s:o}", "job_id",
		                                        http_json_id(b->errors[i].job_id), "error",
		                                        http_json_text(&b->errors[i].text)));
	return json_pack("{s:o,s:s,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:I,s:o}", "id",
	                 http_json_id(b->batch_id), "state", batch_state_name(b->state), "total",
	                 (json_int_t)b->total, "completed", (json_int_t)b->completed, "failed",
	                 (json_int_t)b->failed, "cancelled", (json_int_t)b->cancelled, "active",
	                 (json_int_t)b->active, "current_operation",
	                 http_json_text(&b->current_operation), "errors", errors, "created_us",
	                 (json_int_t)b->created_us, "finished_us",
	                 b->finished_us ? json_integer((json_int_t)b->finished_us) : json_null());
}

json_t *http_json_worker(const struct proto_worker_info *w)
{
	json_t *queues = json_array();
	for (uint32_t i = 0; i < w->queues_count; i++)
		json_array_append_new(queues, json_string(w->queues[i]));
	json_t *jobs = json_array();
	for (uint32_t i = 0; i < w->job_ids_count; i++)
		json_array_append_new(jobs, http_json_id(w->job_ids[i]));
	return json_pack("{s:s,s:o,s:I,s:i,s:o,s:i,s:I,s:I,s:b,s:o}", "id", w->worker_id, "host",
	                 http_json_text(&w->host), "pid", (json_int_t)w->pid, "concurrency",
	                 (int)w->concurrency, "queues", queues, "active_jobs", (int)w->active_jobs,
	                 "first_seen_us", (json_int_t)w->first_seen_us, "last_seen_us",
	                 (json_int_t)w->last_seen_us, "draining", (int)w->draining, "job_ids",
	                 jobs);
}

json_t *http_json_queue(const struct proto_queue_stats *q, uint64_t now_us)
{
	double oldest_s = q->oldest_pending_us && now_us > q->oldest_pending_us
	                      ? (double)(now_us - q->oldest_pending_us) / 1e6
	                      : 0;
	json_t *rate = q->rate_jobs ? json_pack("{s:I,s:I}", "jobs", (json_int_t)q->rate_jobs,
	                                        "period_ms", (json_int_t)q->rate_period_ms)
	                            : json_null();
	json_t *obj =
	    json_pack("{s:s,s:{s:I,s:I,s:I,s:I,s:I,s:I},s:f,s:o,s:b,s:o}", "name", q->name,
	              "counts", "pending", (json_int_t)q->pending, "delayed",
	              (json_int_t)q->delayed, "active", (json_int_t)q->active, "completed",
	              (json_int_t)q->completed, "failed", (json_int_t)q->failed, "cancelled",
	              (json_int_t)q->cancelled, "oldest_pending_age_seconds", oldest_s,
	              "max_active", q->max_active ? json_integer(q->max_active) : json_null(),
	              "paused", q->paused, "rate", rate);
	if (obj == NULL)
		return NULL;
	/* The rest of the runtime settings (as GET /v1/queues/{q}/settings
	 * names them), and which are the queue's own rather than the broker's
	 * defaults: readers of the dashboard see them without the admin role
	 * that the settings endpoint needs. */
	static const struct {
		uint32_t bit;
		const char *name;
	} own[] = {
	    {PROTO_QSET_PAUSED, "paused"},
	    {PROTO_QSET_MAX_ACTIVE, "max_active"},
	    {PROTO_QSET_RATE, "rate"},
	    {PROTO_QSET_MAX_ATTEMPTS, "max_attempts"},
	    {PROTO_QSET_KEEP_FINISHED, "keep_finished"},
	    {PROTO_QSET_KEEP_AGE, "keep_finished_age_ms"},
	    {PROTO_QSET_KEY_WINDOW, "key_window_ms"},
	    {PROTO_QSET_GROUP_LIMIT, "group_limit"},
	    {PROTO_QSET_KEEP_COMPLETED, "keep_completed"},
	    {PROTO_QSET_KEEP_COMPLETED_AGE, "keep_completed_age_ms"},
	    {PROTO_QSET_KEEP_FAILED, "keep_failed"},
	    {PROTO_QSET_KEEP_FAILED_AGE, "keep_failed_age_ms"},
	    {PROTO_QSET_KEEP_CANCELLED, "keep_cancelled"},
	    {PROTO_QSET_KEEP_CANCELLED_AGE, "keep_cancelled_age_ms"},
	};
	json_t *names = json_array();
	for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
		if (q->own_settings & own[i].bit)
			json_array_append_new(names, json_string(own[i].name));
	json_object_set_new(obj, "max_attempts", json_integer(q->max_attempts));
	json_object_set_new(obj, "keep_finished", json_integer((json_int_t)q->keep_finished));
	json_object_set_new(obj, "keep_finished_age_ms",
	                    json_integer((json_int_t)q->keep_finished_age_ms));
	json_object_set_new(obj, "key_window_ms", json_integer((json_int_t)q->key_window_ms));
	json_object_set_new(obj, "group_limit", json_integer((json_int_t)q->group_limit));
	http_json_keep(obj, q->keep_finished, q->keep_finished_age_ms, q->keep_failed,
	               q->keep_failed_age_ms, q->keep_cancelled, q->keep_cancelled_age_ms);
	json_object_set_new(obj, "own_settings", names);
	/* Pending jobs whose type no connected worker of the queue handles. */
	json_t *types = json_array();
	for (uint32_t i = 0; types && i < q->unroutable_types_count; i++)
		json_array_append_new(types, json_string(q->unroutable_types[i]));
	json_object_set_new(
	    obj, "unroutable",
	    types ? json_pack("{s:I,s:o}", "jobs", (json_int_t)q->unroutable, "types", types)
	          : json_null());
	return obj;
}

void http_json_keep(json_t *obj, uint64_t completed, uint64_t completed_age_ms, uint64_t failed,
                    uint64_t failed_age_ms, uint64_t cancelled, uint64_t cancelled_age_ms)
{
	const struct {
		const char *count, *age;
		uint64_t n, ms;
	} keep[] = {
	    {"keep_completed", "keep_completed_age_ms", completed, completed_age_ms},
	    {"keep_failed", "keep_failed_age_ms", failed, failed_age_ms},
	    {"keep_cancelled", "keep_cancelled_age_ms", cancelled, cancelled_age_ms},
	};
	for (size_t i = 0; obj != NULL && i < sizeof keep / sizeof keep[0]; i++) {
		json_object_set_new(obj, keep[i].count,
		                    keep[i].n == PROTO_KEEP_ALL
		                        ? json_null()
		                        : json_integer((json_int_t)keep[i].n));
		json_object_set_new(obj, keep[i].age, json_integer((json_int_t)keep[i].ms));
	}
	/* What older readers know: the completed jobs'. */
	json_object_set_new(obj, "keep_finished",
	                    json_incref(json_object_get(obj, "keep_completed")));
	json_object_set_new(obj, "keep_finished_age_ms",
	                    json_integer((json_int_t)completed_age_ms));
}

json_t *http_json_event(const struct proto_event *ev, const char **kind)
{
	switch (ev->kind) {
	case PROTO_EVENT_JOB_STATE:
		*kind = "job_state";
		return json_pack(
		    "{s:o,s:o,s:s,s:s,s:s,s:i,s:o,s:o,s:I}", "job_id", http_json_id(ev->job_id),
		    "batch_id", http_json_id_or_null(ev->batch_id), "queue", ev->queue, "type",
		    ev->type, "state", proto_state_name((int)ev->state), "attempt",
		    (int)ev->attempt, "worker_id",
		    ev->worker_id[0] ? json_string(ev->worker_id) : json_null(), "error",
		    http_json_text(&ev->message), "at_us", (json_int_t)ev->at_us);
	case PROTO_EVENT_JOB_PROGRESS:
		*kind = "job_progress";
		return json_pack("{s:o,s:o,s:s,s:I,s:I,s:o,s:I}", "job_id",
		                 http_json_id(ev->job_id), "batch_id",
		                 http_json_id_or_null(ev->batch_id), "queue", ev->queue, "done",
		                 (json_int_t)ev->done, "total", (json_int_t)ev->total, "message",
		                 http_json_text(&ev->message), "at_us", (json_int_t)ev->at_us);
	case PROTO_EVENT_BATCH:
		*kind = "batch";
		return json_pack("{s:o,s:s,s:I,s:I,s:I,s:o,s:I}", "batch_id",
		                 http_json_id(ev->batch_id), "state", batch_state_name(ev->state),
		                 "completed", (json_int_t)ev->done, "failed",
		                 (json_int_t)ev->failed, "total", (json_int_t)ev->total,
		                 "current_operation", http_json_text(&ev->message), "at_us",
		                 (json_int_t)ev->at_us);
	case PROTO_EVENT_WORKER_JOINED:
	case PROTO_EVENT_WORKER_LOST:
		*kind = ev->kind == PROTO_EVENT_WORKER_JOINED ? "worker_joined" : "worker_lost";
		return json_pack("{s:s,s:o,s:I}", "worker_id", ev->worker_id, "reason",
		                 http_json_text(&ev->message), "at_us", (json_int_t)ev->at_us);
	default:
		*kind = "unknown";
		return NULL;
	}
}

/* Bounded appends for http_json_job_state_text: what snprintf would
 * write, without parsing a format per event (the event stream writes two
 * of these per job). full once something did not fit. */
struct text_out {
	char *at;
	char *end; /* one byte is kept for the NUL */
	bool full;
};

static void text_put(struct text_out *o, const char *s, size_t len)
{
	if (o->full || (size_t)(o->end - o->at) <= len) {
		o->full = true;
		return;
	}
	memcpy(o->at, s, len);
	o->at += len;
}

#define TEXT_PUT_LITERAL(o, s) text_put((o), (s), sizeof(s) - 1)

static void text_put_u64(struct text_out *o, uint64_t v)
{
	char digits[JM_DECIMAL_U64_MAX];
	text_put(o, digits, jm_decimal_u64(digits, v));
}

/* As "%lld" of (long long)v, and "%d" of (int)v: negative past the top. */
static void text_put_i64(struct text_out *o, int64_t v)
{
	if (v < 0) {
		TEXT_PUT_LITERAL(o, "-");
		text_put_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		text_put_u64(o, (uint64_t)v);
	}
}

/* A name as a JSON string: names follow PROTO_NAME_RULE, so nothing in
 * them needs escaping. */
static void text_put_name(struct text_out *o, const char *name)
{
	TEXT_PUT_LITERAL(o, "\"");
	text_put(o, name, strnlen(name, PROTO_NAME_MAX));
	TEXT_PUT_LITERAL(o, "\"");
}

size_t http_json_job_state_text(const struct proto_event *ev, char *out, size_t cap)
{
	if (ev->kind != PROTO_EVENT_JOB_STATE || ev->message.len != 0 || cap == 0)
		return 0;
	struct text_out o = {.at = out, .end = out + cap};
	TEXT_PUT_LITERAL(&o, "{\"job_id\":\"");
	text_put_u64(&o, ev->job_id);
	TEXT_PUT_LITERAL(&o, "\",\"batch_id\":");
	if (ev->batch_id) {
		TEXT_PUT_LITERAL(&o, "\"");
		text_put_u64(&o, ev->batch_id);
		TEXT_PUT_LITERAL(&o, "\"");
	} else {
		TEXT_PUT_LITERAL(&o, "null");
	}
	TEXT_PUT_LITERAL(&o, ",\"queue\":");
	text_put_name(&o, ev->queue);
	TEXT_PUT_LITERAL(&o, ",\"type\":");
	text_put_name(&o, ev->type);
	TEXT_PUT_LITERAL(&o, ",\"state\":\"");
	const char *state = proto_state_name((int)ev->state);
	text_put(&o, state, strlen(state));
	TEXT_PUT_LITERAL(&o, "\",\"attempt\":");
	text_put_i64(&o, (int32_t)ev->attempt);
	TEXT_PUT_LITERAL(&o, ",\"worker_id\":");
	if (ev->worker_id[0])
		text_put_name(&o, ev->worker_id);
	else
		TEXT_PUT_LITERAL(&o, "null");
	TEXT_PUT_LITERAL(&o, ",\"error\":null,\"at_us\":");
	text_put_i64(&o, (int64_t)ev->at_us);
	TEXT_PUT_LITERAL(&o, "}");
	if (o.full)
		return 0;
	*o.at = '\0';
	return (size_t)(o.at - out);
}

json_t *http_json_parse(const void *body, size_t len, const char *content_type,
                        struct http_bad *bad)
{
	if (content_type == NULL || strncmp(content_type, "application/json", 16) != 0 ||
	    (content_type[16] != '\0' && content_type[16] != ';')) {
		http_bad_set(bad, 415, "unsupported_media_type",
		             "Content-Type \"%s\" is not accepted: send application/json",
		             content_type ? content_type : "");
		return NULL;
	}
	json_error_t error;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &error);
	if (root == NULL) {
		http_bad_set(bad, 400, "malformed_json", "body is not valid JSON at byte %d: %s",
		             error.position, error.text);
		return NULL;
	}
	return root;
}

static const char *kind_of(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* A name field: required string that passes PROTO_NAME_RULE. */
static bool name_field(json_t *v, const char *field, const char *label, proto_name out,
                       struct http_bad *bad)
{
	const char *sep = label[0] ? ": " : "";
	if (v == NULL)
		return http_bad_set(bad, 400, "field_missing", "%s%sfield \"%s\" is required",
		                    label, sep, field),
		       false;
	if (!json_is_string(v))
		return http_bad_set(bad, 400, "field_type",
		                    "%s%sfield \"%s\" must be a string, got %s", label, sep, field,
		                    kind_of(v)),
		       false;
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (!proto_name_is_valid(s, len) || len > PROTO_NAME_MAX) {
		char code[48];
		snprintf(code, sizeof code, "%s_name_invalid", field);
		return http_bad_set(bad, 400, code, "%s%s%s name \"%.80s\" is invalid: %s", label,
		                    sep, field, s, PROTO_NAME_RULE),
		       false;
	}
	memcpy(out, s, len + 1);
	return true;
}

static bool int_field(json_t *obj, const char *field, const char *label, long long min,
                      long long max, long long *out, struct http_bad *bad)
{
	json_t *v = json_object_get(obj, field);
	const char *sep = label[0] ? ": " : "";
	*out = 0;
	if (v == NULL)
		return true;
	if (!json_is_integer(v))
		return http_bad_set(bad, 400, "field_type",
		                    "%s%sfield \"%s\" must be an integer, got %s", label, sep,
		                    field, kind_of(v)),
		       false;
	long long value = json_integer_value(v);
	if (value < min || value > max)
		return http_bad_set(bad, 400, "field_range",
		                    "%s%s%s %lld is out of range: use %lld..%lld", label, sep,
		                    field, value, min, max),
		       false;
	*out = value;
	return true;
}

bool http_json_job_spec(json_t *obj, const char *queue, const char *label,
                        struct proto_job_spec *spec, char **payload_out, struct http_bad *bad)
{
	static const char *const allowed[] = {
	    "queue",    "type",       "payload",         "data",   "priority", "max_attempts",
	    "delay_ms", "timeout_ms", "idempotency_key", "run_at", "group",    NULL};
	const char *sep = label[0] ? ": " : "";
	memset(spec, 0, sizeof *spec);
	*payload_out = NULL;
	if (!json_is_object(obj))
		return http_bad_set(bad, 400, "field_type", "%s%sa job must be an object, got %s",
		                    label, sep, kind_of(obj)),
		       false;
	const char *key;
	json_t *value;
	json_object_foreach(obj, key, value)
	{
		bool known = false;
		for (int i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0 && (queue == NULL || i != 0))
				known = true;
		if (!known)
			return http_bad_set(
			           bad, 400, "unknown_field",
			           "%s%sunknown field \"%.64s\": allowed are %stype, payload, "
			           "data, priority, max_attempts, delay_ms, timeout_ms, "
			           "idempotency_key, run_at, group",
			           label, sep, key, queue ? "" : "queue, "),
			       false;
	}
	if (queue) {
		memcpy(spec->attrs.queue, queue, strlen(queue) + 1);
	} else if (!name_field(json_object_get(obj, "queue"), "queue", label, spec->attrs.queue,
	                       bad)) {
		return false;
	}
	if (!name_field(json_object_get(obj, "type"), "type", label, spec->attrs.type, bad))
		return false;
	json_t *group = json_object_get(obj, "group");
	if (group && !json_is_null(group) &&
	    !name_field(group, "group", label, spec->attrs.group, bad))
		return false;
	long long priority, attempts, delay, timeout;
	if (!int_field(obj, "priority", label, PROTO_PRIORITY_MIN, PROTO_PRIORITY_MAX, &priority,
	               bad) ||
	    !int_field(obj, "max_attempts", label, 0, PROTO_ATTEMPTS_MAX, &attempts, bad) ||
	    !int_field(obj, "delay_ms", label, 0, 365ll * 24 * 3600 * 1000, &delay, bad) ||
	    !int_field(obj, "timeout_ms", label, 0, 7ll * 24 * 3600 * 1000, &timeout, bad))
		return false;
	spec->attrs.priority = (int32_t)priority;
	spec->attrs.max_attempts = (uint32_t)attempts;
	spec->delay_ms = (uint64_t)delay;
	spec->attrs.timeout_ms = (uint64_t)timeout;
	json_t *idem = json_object_get(obj, "idempotency_key");
	if (idem) {
		struct jm_err err;
		if (!json_is_string(idem))
			return http_bad_set(
			           bad, 400, "field_type",
			           "%s%sfield \"idempotency_key\" must be a string, got %s", label,
			           sep, kind_of(idem)),
			       false;
		spec->key = (struct proto_bytes){(const uint8_t *)json_string_value(idem),
		                                 (uint32_t)json_string_length(idem)};
		if (spec->key.len == 0 ||
		    proto_idempotency_key_check(spec->key.ptr, spec->key.len, &err) != 0)
			return http_bad_set(bad, 400, "key_invalid",
			                    "%s%sidempotency key is invalid: %s", label, sep,
			                    PROTO_KEY_RULE),
			       false;
	}
	json_t *run_at = json_object_get(obj, "run_at");
	if (run_at) {
		struct jm_err err;
		if (!json_is_string(run_at))
			return http_bad_set(
			           bad, 400, "field_type",
			           "%s%sfield \"run_at\" must be an RFC 3339 string, got %s", label,
			           sep, kind_of(run_at)),
			       false;
		if (jm_rfc3339_parse(json_string_value(run_at), &spec->run_at_us, &err) != 0)
			return http_bad_set(bad, 400, "field_range", "%s%s%s", label, sep,
			                    jm_err_text(&err)),
			       false;
		if (spec->delay_ms)
			return http_bad_set(bad, 400, "field_conflict",
			                    "%s%sgive \"delay_ms\" or \"run_at\", not both", label,
			                    sep),
			       false;
	}
	json_t *payload = json_object_get(obj, "payload");
	json_t *data = json_object_get(obj, "data");
	if (payload && data)
		return http_bad_set(
		           bad, 400, "payload_conflict",
		           "%s%sgive \"payload\" (a string) or \"data\" (any JSON), not both",
		           label, sep),
		       false;
	if (payload) {
		if (!json_is_string(payload))
			return http_bad_set(bad, 400, "field_type",
			                    "%s%sfield \"payload\" must be a string, got %s (send "
			                    "structured values as \"data\")",
			                    label, sep, kind_of(payload)),
			       false;
		size_t len = json_string_length(payload);
		spec->payload = (struct proto_bytes){
		    len ? (const uint8_t *)json_string_value(payload) : NULL, (uint32_t)len};
		if (len > UINT32_MAX)
			return http_bad_set(bad, 413, "payload_too_big", "%s%spayload is too big",
			                    label, sep),
			       false;
	} else if (data) {
		size_t len;
		char *text = http_json_dump(data, &len);
		if (text == NULL)
			return http_bad_set(bad, 503, "out_of_memory", "broker out of memory"),
			       false;
		*payload_out = text;
		spec->payload = (struct proto_bytes){(const uint8_t *)text, (uint32_t)len};
	}
	return true;
}

uint32_t http_state_parse(const char *name)
{
	for (uint32_t s = PROTO_STATE_PENDING; s <= PROTO_STATE_CANCELLED; s++)
		if (strcmp(name, proto_state_name((int)s)) == 0)
			return s;
	return 0;
}

char *http_json_dump(const json_t *value, size_t *len)
{
	char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	if (text && len)
		*len = strlen(text);
	return text;
}
