/* The read-only collection endpoints and batches: queues, workers,
 * dead-letter lists, batch status (see http_call.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "http_call.h"
#include "http_json.h"

static const char *const no_params[] = {NULL};

/* ---- GET /v1/queues ---------------------------------------------------------- */

static void queues_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_stats_reply *s = &reply->u.stats_reply;
	uint64_t now = jm_wall_us();
	json_t *queues = json_array();
	for (uint32_t i = 0; i < s->queues_count; i++)
		json_array_append_new(queues, http_json_queue(&s->queues[i], now));
	http_reply_json(call, 200, json_pack("{s:o}", "queues", queues));
}

void http_api_queues(struct http_call *call)
{
	if (!http_query_only(call, no_params))
		return;
	call->req.msg.type = PROTO_STATS;
	call->what = "stats";
	http_call_core(call, queues_cb);
}

/* ---- GET /v1/workers ------------------------------------------------------------ */

static void workers_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_workers_reply *w = &reply->u.workers_reply;
	json_t *workers = json_array();
	for (uint32_t i = 0; i < w->workers_count; i++)
		json_array_append_new(workers, http_json_worker(&w->workers[i]));
	http_reply_json(call, 200, json_pack("{s:o}", "workers", workers));
}

void http_api_workers(struct http_call *call)
{
	if (!http_query_only(call, no_params))
		return;
	call->req.msg.type = PROTO_WORKERS;
	call->what = "workers";
	http_call_core(call, workers_cb);
}

/* ---- GET /v1/queues/{queue}/dead ------------------------------------------------ */

static void dead_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_job_list *list = &reply->u.job_list;
	json_t *jobs = json_array();
	for (uint32_t i = 0; i < list->jobs_count; i++) {
		json_t *job = http_json_job(&list->jobs[i]);
		if (job)
			http_json_add_payload(job, &list->jobs[i].payload);
		json_array_append_new(jobs, job);
	}
	http_reply_json(call, 200,
	                json_pack("{s:s,s:o}", "queue", call->segments[2], "jobs", jobs));
}

void http_api_dead(struct http_call *call)
{
	static const char *const allowed[] = {"limit", NULL};
	const char *queue = call->segments[2];
	if (!http_queue_name_ok(call, queue))
		return;
	uint64_t limit;
	if (!http_query_only(call, allowed) || !http_query_u64(call, "limit", 1, 1000, 100, &limit))
		return;
	call->req.msg.type = PROTO_DEAD_LIST;
	memcpy(call->req.msg.u.dead_list.queue, queue, strlen(queue) + 1);
	call->req.msg.u.dead_list.limit = (uint32_t)limit;
	call->req.msg.u.dead_list.with_payload = true;
	call->what = "dead-list";
	http_call_core(call, dead_cb);
}

/* ---- GET /v1/batches/{id}, /v1/batches ------------------------------------------- */

static void batch_cb(struct http_call *call, const struct proto_msg *reply)
{
	http_reply_json(call, 200, http_json_batch(&reply->u.batch));
}

void http_api_batch(struct http_call *call)
{
	uint64_t id;
	if (!http_parse_id(call->segments[2], &id)) {
		http_reply_error(
		    call, 400, "id_invalid",
		    "batch id \"%.40s\" is invalid: use the decimal id the broker returned",
		    call->segments[2]);
		return;
	}
	if (!http_query_only(call, no_params))
		return;
	call->req.msg.type = PROTO_BATCH_STATUS;
	call->req.msg.u.job_ref.job_id = id;
	call->what = "batch-status";
	http_call_core(call, batch_cb);
}

static void batches_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_batches_reply *b = &reply->u.batches_reply;
	json_t *batches = json_array();
	for (uint32_t i = 0; i < b->batches_count; i++)
		json_array_append_new(batches, http_json_batch(&b->batches[i]));
	http_reply_json(call, 200, json_pack("{s:o}", "batches", batches));
}

void http_api_batches(struct http_call *call)
{
	if (!http_query_only(call, no_params))
		return;
	call->req.msg.type = PROTO_BATCHES;
	call->what = "batches";
	http_call_core(call, batches_cb);
}
