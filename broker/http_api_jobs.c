/* The job endpoints: submit, read (with ?wait), list, cancel, retry
 * (see http_call.h for a call's life). Each builds the proto request the
 * NNG path would decode and hands it to the core, so limits, states and
 * error wording are the core's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "http_call.h"
#include "http_json.h"
#include "job_spec.h"

/* ---- POST /v1/queues/{queue}/jobs ----------------------------------------- */

static void reply_bad(struct http_call *call, const struct http_bad *bad)
{
	http_reply_error(call, bad->status, bad->code, "%s", bad->message);
}

static void submitted_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_submitted *s = &reply->u.submitted;
	char location[64];
	if (s->ids_count == 0) {
		http_reply_error(call, 503, "internal", "submit: the broker returned no ids");
		return;
	}
	json_t *body;
	if (call->with_result) { /* an array was sent: {"ids": [...]} */
		json_t *ids = json_array();
		for (uint32_t i = 0; i < s->ids_count; i++)
			json_array_append_new(ids, http_json_id(s->ids[i]));
		body = json_pack("{s:o}", "ids", ids);
	} else if (s->batch_id) { /* POST /v1/batches */
		json_t *ids = json_array();
		for (uint32_t i = 0; i < s->ids_count; i++)
			json_array_append_new(ids, http_json_id(s->ids[i]));
		body = json_pack("{s:o,s:o}", "id", http_json_id(s->batch_id), "job_ids", ids);
	} else if (s->existing_ids_count > 0) { /* an idempotency key matched */
		body = json_pack("{s:o,s:b}", "id", http_json_id(s->ids[0]), "existing", 1);
	} else {
		body = json_pack("{s:o,s:s}", "id", http_json_id(s->ids[0]), "state",
		                 call->limit ? "delayed" : "pending");
	}
	if (s->batch_id)
		snprintf(location, sizeof location, "/v1/batches/%llu",
		         (unsigned long long)s->batch_id);
	else
		snprintf(location, sizeof location, "/v1/jobs/%llu", (unsigned long long)s->ids[0]);
	size_t len = 0;
	char *text = body ? http_json_dump(body, &len) : NULL;
	json_decref(body);
	if (text == NULL) {
		http_reply_error(call, 503, "out_of_memory", "broker out of memory");
		return;
	}
	/* 200: every job was there already (a key matched each), nothing new. */
	int status = s->existing_ids_count == s->ids_count ? 200 : 202;
	http_reply(call, status, "application/json", text, len, "Location", location);
	free(text);
}

static void job_cb(struct http_call *call, const struct proto_msg *reply);

/* SUBMIT_WAIT's answer is a JOB, as a WAIT's: from here on the call is a
 * GET /v1/jobs/{id}/result?wait=, re-parking until its deadline. */
static void submit_wait_cb(struct http_call *call, const struct proto_msg *reply)
{
	call->job_id = reply->u.job.job_id;
	call->with_result = true;
	job_cb(call, reply);
}

/* Fills a SUBMIT from jobs (an array) or one job object, or with wait_s a
 * SUBMIT_WAIT of the one job. queue: from the URL, or NULL when each job
 * names its own. */
static void submit_jobs(struct http_call *call, json_t *root, const char *queue, bool as_batch,
                        uint64_t wait_s)
{
	bool many = json_is_array(root);
	size_t count = many ? json_array_size(root) : 1;
	if (count == 0 || count > PROTO_JOBS_PER_MESSAGE_MAX) {
		http_reply_error(call, count ? 413 : 400, count ? "too_many_jobs" : "no_jobs",
		                 "a request carries 1..%d jobs, got %zu",
		                 PROTO_JOBS_PER_MESSAGE_MAX, count);
		return;
	}
	struct proto_job_spec *specs = calloc(count, sizeof *specs);
	if (specs == NULL || http_call_keep(call, specs) != 0) {
		http_reply_error(call, 503, "out_of_memory", "broker out of memory");
		return;
	}
	uint32_t delayed = 0;
	for (size_t i = 0; i < count; i++) {
		char label[32] = "";
		if (many)
			snprintf(label, sizeof label, "job %zu", i);
		struct http_bad bad;
		char *payload = NULL;
		json_t *obj = many ? json_array_get(root, i) : root;
		if (!http_json_job_spec(obj, queue, label, &specs[i], &payload, &bad)) {
			reply_bad(call, &bad);
			return;
		}
		if (payload && http_call_keep(call, payload) != 0) {
			http_reply_error(call, 503, "out_of_memory", "broker out of memory");
			return;
		}
		delayed += specs[i].delay_ms > 0 || specs[i].run_at_us > jm_wall_us();
	}
	if (wait_s > 0) {
		call->deadline_us = jm_wall_us() + wait_s * 1000000;
		call->what = "submit-wait";
		call->req.msg.type = PROTO_SUBMIT_WAIT;
		call->req.msg.u.submit_wait.timeout_ms = (uint32_t)(wait_s * 1000);
		call->req.msg.u.submit_wait.job = specs[0];
		http_call_core(call, submit_wait_cb);
		return;
	}
	call->with_result = many && !as_batch; /* reply shape, see submitted_cb */
	call->limit = delayed;                 /* one job: its state */
	call->what = "submit";
	call->req.msg.type = PROTO_SUBMIT;
	call->req.msg.u.submit.as_batch = as_batch;
	call->req.msg.u.submit.jobs_count = (uint32_t)count;
	call->req.msg.u.submit.jobs = specs;
	http_call_core(call, submitted_cb);
}

/* The body as JSON, or false after replying. */
static bool body_json(struct http_call *call)
{
	struct http_bad bad;
	const char *type = http_call_header(call, "Content-Type");
	call->body_json =
	    http_json_parse(call->body ? (const char *)call->body : "", call->body_len, type, &bad);
	if (call->body_json == NULL) {
		reply_bad(call, &bad);
		return false;
	}
	return true;
}

/* The Idempotency-Key header: the key of a one-job body, as its "idempotency_key"
 * field would be. False after replying. */
static bool idempotency_header(struct http_call *call)
{
	const char *key = http_call_header(call, "Idempotency-Key");
	if (key == NULL)
		return true;
	struct jm_err err;
	size_t len = strlen(key);
	if (!json_is_object(call->body_json) ||
	    json_object_get(call->body_json, "idempotency_key")) {
		http_reply_error(call, 400, "key_conflict",
		                 "the Idempotency-Key header keys a one-job body without an "
		                 "\"idempotency_key\" field: give each job of an array its own");
		return false;
	}
	if (len == 0 || proto_idempotency_key_check(key, len, &err) != 0) {
		http_reply_error(call, 400, "key_invalid", "Idempotency-Key header is invalid: %s",
		                 PROTO_KEY_RULE);
		return false;
	}
	if (json_object_set_new(call->body_json, "idempotency_key", json_stringn(key, len)) != 0) {
		http_reply_error(call, 503, "out_of_memory", "broker out of memory");
		return false;
	}
	return true;
}

void http_api_submit(struct http_call *call)
{
	static const char *const allowed[] = {"wait", NULL};
	const char *queue = call->segments[2];
	uint64_t wait_s;
	if (!http_queue_name_ok(call, queue))
		return;
	if (!http_query_only(call, allowed) ||
	    !http_query_u64(call, "wait", 0, HTTP_WAIT_MAX_S, 0, &wait_s) || !body_json(call))
		return;
	if (!json_is_object(call->body_json) && !json_is_array(call->body_json)) {
		http_reply_error(call, 400, "field_type",
		                 "body must be a job object or an array of them");
		return;
	}
	if (wait_s > 0 && !json_is_object(call->body_json)) {
		http_reply_error(call, 400, "wait_one_job",
		                 "?wait= waits for one job: send a job object, not an array "
		                 "(for many, submit them and wait for each, or use a batch)");
		return;
	}
	if (!idempotency_header(call))
		return;
	submit_jobs(call, call->body_json, queue, false, wait_s);
}

void http_api_batch_submit(struct http_call *call)
{
	static const char *const none[] = {NULL};
	if (!http_query_only(call, none) || !body_json(call))
		return;
	json_t *root = call->body_json;
	if (!json_is_object(root)) {
		http_reply_error(call, 400, "field_type",
		                 "body must be an object {\"jobs\": [...]}");
		return;
	}
	const char *key;
	json_t *value;
	json_object_foreach(root, key, value)
	{
		if (strcmp(key, "jobs") != 0) {
			http_reply_error(call, 400, "unknown_field",
			                 "unknown field \"%.64s\": allowed is jobs", key);
			return;
		}
	}
	json_t *jobs = json_object_get(root, "jobs");
	if (!json_is_array(jobs)) {
		http_reply_error(
		    call, 400, jobs ? "field_type" : "field_missing",
		    "field \"jobs\" must be an array of job objects, each with its queue");
		return;
	}
	submit_jobs(call, jobs, NULL, true, 0);
}

/* ---- GET /v1/jobs/{id}, /v1/jobs/{id}/result ------------------------------ */

static bool path_id(struct http_call *call, uint32_t segment, const char *what, uint64_t *id)
{
	if (!http_parse_id(call->segments[segment], id)) {
		http_reply_error(
		    call, 400, "id_invalid",
		    "%s id \"%.40s\" is invalid: use the decimal id the broker returned", what,
		    call->segments[segment]);
		return false;
	}
	return true;
}

static void ask_job(struct http_call *call)
{
	memset(&call->req.msg, 0, sizeof call->req.msg);
	uint64_t now = jm_wall_us();
	if (call->deadline_us > now + 1000) {
		call->req.msg.type = PROTO_WAIT;
		call->req.msg.u.wait.job_id = call->job_id;
		call->req.msg.u.wait.timeout_ms = (uint32_t)((call->deadline_us - now) / 1000);
		call->req.msg.u.wait.with_payload = !call->with_result;
		call->what = "wait";
	} else {
		call->req.msg.type = call->with_result ? PROTO_RESULT : PROTO_STATUS;
		call->req.msg.u.job_ref.job_id = call->job_id;
		call->req.msg.u.job_ref.with_payload = !call->with_result;
		call->what = call->with_result ? "result" : "status";
	}
	http_call_core(call, job_cb);
}

static void job_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_job_info *job = &reply->u.job;
	bool finished = job->state == PROTO_STATE_COMPLETED || job->state == PROTO_STATE_FAILED ||
	                job->state == PROTO_STATE_CANCELLED;
	/* The core caps one park at its wait_max_ms: park again until ours. */
	if (!finished && call->deadline_us > jm_wall_us() + 1000) {
		ask_job(call);
		return;
	}
	json_t *body = http_json_job(job);
	if (body && !call->with_result)
		http_json_add_payload(body, &job->payload);
	if (body && call->with_result && job->has_result)
		http_json_add_result(body, &job->result);
	http_reply_json(call, call->with_result && !finished ? 202 : 200, body);
}

void http_api_job(struct http_call *call, bool with_result)
{
	static const char *const allowed[] = {"wait", NULL};
	uint64_t wait_s;
	if (!path_id(call, 2, "job", &call->job_id) || !http_query_only(call, allowed) ||
	    !http_query_u64(call, "wait", 0, HTTP_WAIT_MAX_S, 0, &wait_s))
		return;
	call->with_result = with_result;
	call->deadline_us = wait_s ? jm_wall_us() + wait_s * 1000000 : 0;
	ask_job(call);
}

/* ---- GET /v1/jobs ------------------------------------------------------------ */

static void jobs_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_job_list *list = &reply->u.job_list;
	json_t *jobs = json_array();
	for (uint32_t i = 0; i < list->jobs_count; i++)
		json_array_append_new(jobs, http_json_job(&list->jobs[i]));
	json_t *next = list->jobs_count == call->limit && list->jobs_count > 0
	                   ? http_json_id(list->jobs[list->jobs_count - 1].job_id)
	                   : json_null();
	http_reply_json(call, 200, json_pack("{s:o,s:o}", "jobs", jobs, "next_cursor", next));
}

void http_api_jobs(struct http_call *call)
{
	static const char *const allowed[] = {"queue", "state", "batch", "limit", "cursor", NULL};
	if (!http_query_only(call, allowed))
		return;
	struct proto_job_query *q = &call->req.msg.u.job_query;
	char text[PROTO_NAME_MAX + 8];
	if (http_query_get(call, "queue", text, sizeof text)) {
		if (!http_queue_name_ok(call, text))
			return;
		memcpy(q->queue, text, strlen(text) + 1);
	}
	if (http_query_get(call, "state", text, sizeof text) &&
	    (q->state = http_state_parse(text)) == 0) {
		http_reply_error(call, 400, "state_invalid",
		                 "state \"%.32s\" is unknown: use pending, delayed, active, "
		                 "completed, failed or cancelled",
		                 text);
		return;
	}
	if (http_query_get(call, "batch", text, sizeof text) &&
	    !http_parse_id(text, &q->batch_id)) {
		http_reply_error(call, 400, "id_invalid", "batch id \"%.32s\" is invalid", text);
		return;
	}
	if (http_query_get(call, "cursor", text, sizeof text) && !http_parse_id(text, &q->cursor)) {
		http_reply_error(call, 400, "cursor_invalid",
		                 "cursor \"%.32s\" is invalid: pass next_cursor from the last page",
		                 text);
		return;
	}
	uint64_t limit;
	if (!http_query_u64(call, "limit", 1, 1000, 100, &limit))
		return;
	q->limit = (uint32_t)limit;
	call->limit = q->limit;
	call->req.msg.type = PROTO_JOB_QUERY;
	call->what = "job-query";
	http_call_core(call, jobs_cb);
}

/* ---- POST /v1/jobs/{id}/cancel, /retry --------------------------------------- */

static void cancelled_cb(struct http_call *call, const struct proto_msg *reply)
{
	http_reply_json(call, 200, http_json_job(&reply->u.job));
}

void http_api_cancel(struct http_call *call)
{
	static const char *const none[] = {NULL};
	if (!path_id(call, 2, "job", &call->job_id) || !http_query_only(call, none))
		return;
	call->req.msg.type = PROTO_CANCEL;
	call->req.msg.u.job_ref.job_id = call->job_id;
	call->what = "cancel";
	http_call_core(call, cancelled_cb);
}

static void revived_cb(struct http_call *call, const struct proto_msg *reply)
{
	if (reply->u.revived.ids_count == 0) {
		http_reply_error(
		    call, 409, "state_conflict",
		    "retry: job %llu was not revived: only dead-lettered (failed) jobs "
		    "can be retried",
		    (unsigned long long)call->job_id);
		return;
	}
	http_reply_json(
	    call, 200,
	    json_pack("{s:o,s:s}", "id", http_json_id(call->job_id), "state", "pending"));
}

/* REVIVE names the queue: read the job's first. */
static void retry_status_cb(struct http_call *call, const struct proto_msg *reply)
{
	proto_name queue;
	memcpy(queue, reply->u.job.attrs.queue, sizeof queue);
	memset(&call->req.msg, 0, sizeof call->req.msg);
	call->req.msg.type = PROTO_REVIVE;
	memcpy(call->req.msg.u.revive.queue, queue, sizeof queue);
	call->req.msg.u.revive.job_id = call->job_id;
	call->what = "revive";
	http_call_core(call, revived_cb);
}

void http_api_retry(struct http_call *call)
{
	static const char *const none[] = {NULL};
	if (!path_id(call, 2, "job", &call->job_id) || !http_query_only(call, none))
		return;
	call->req.msg.type = PROTO_STATUS;
	call->req.msg.u.job_ref.job_id = call->job_id;
	call->what = "retry";
	http_call_core(call, retry_status_cb);
}

/* ---- POST /v1/queues/{q}/dead/retry ------------------------------------------ */

static void revived_all_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_revived *r = &reply->u.revived;
	json_t *ids = json_array();
	for (uint32_t i = 0; i < r->ids_count; i++)
		json_array_append_new(ids, http_json_id(r->ids[i]));
	http_reply_json(call, 200,
	                json_pack("{s:s,s:I,s:o}", "queue", call->segments[2], "revived",
	                          (json_int_t)r->ids_count, "ids", ids));
}

/* One REVIVE with no job id: every dead-lettered job of the queue (up to
 * PROTO_JOBS_PER_MESSAGE_MAX), journaled together, all or none. */
void http_api_retry_dead(struct http_call *call)
{
	static const char *const none[] = {NULL};
	const char *queue = call->segments[2];
	if (!http_queue_name_ok(call, queue))
		return;
	if (!http_query_only(call, none))
		return;
	call->req.msg.type = PROTO_REVIVE;
	memcpy(call->req.msg.u.revive.queue, queue, strlen(queue) + 1);
	call->req.msg.u.revive.job_id = 0;
	call->what = "revive";
	http_call_core(call, revived_all_cb);
}

/* ---- DELETE /v1/queues/{q}/dead[/{id}] -------------------------------------- */

static void removed_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_revived *r = &reply->u.revived;
	json_t *ids = json_array();
	for (uint32_t i = 0; i < r->ids_count; i++)
		json_array_append_new(ids, http_json_id(r->ids[i]));
	http_reply_json(call, 200,
	                json_pack("{s:s,s:I,s:o}", "queue", call->segments[2], "removed",
	                          (json_int_t)r->ids_count, "ids", ids));
}

/* A DEAD_REMOVE: the queue's dead letters (or the one named) are dropped
 * for good, journaled together, all or none. The admin role's alone
 * (auth.c: a type its table does not list). */
void http_api_remove_dead(struct http_call *call)
{
	static const char *const none[] = {NULL};
	const char *queue = call->segments[2];
	if (!http_queue_name_ok(call, queue))
		return;
	uint64_t id = 0;
	if (call->segments_count == 5 && !path_id(call, 4, "job", &id))
		return;
	if (!http_query_only(call, none))
		return;
	call->req.msg.type = PROTO_DEAD_REMOVE;
	memcpy(call->req.msg.u.revive.queue, queue, strlen(queue) + 1);
	call->req.msg.u.revive.job_id = id;
	call->what = "dead-letter remove";
	http_call_core(call, removed_cb);
}
