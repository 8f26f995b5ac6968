/* The read views: stats, batches, batch status, workers, the dead-letter
 * list and hello. Each is an in-memory view that changes nothing. */
#include "core_internal.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "core_query.h"
#include "events.h"

struct stats_fill {
	struct proto_queue_stats *queues;
	uint32_t count;
	const struct request *req; /* its token sees only its queues */
	const struct core *core;
	bool oom;
};

struct takes_type {
	const char *queue, *type;
	bool taken;
};

static void worker_takes_cb(struct worker *w, void *arg)
{
	struct takes_type *t = arg;
	t->taken = t->taken || worker_takes(w, t->queue, t->type);
}

struct unroutable_fill {
	struct stats_fill *fill;
	const struct queue *q;
	struct proto_queue_stats *qs;
};

static void unroutable_type_cb(const struct lane_type *lt, void *arg)
{
	struct unroutable_fill *u = arg;
	struct proto_queue_stats *qs = u->qs;
	if (lt->ready_count == 0 || u->fill->oom)
		return;
	struct takes_type t = {u->q->name, lt->type, false};
	worker_each(&u->fill->core->state.workers, worker_takes_cb, &t);
	if (t.taken)
		return;
	qs->unroutable += lt->ready_count;
	if (qs->unroutable_types_count == PROTO_UNROUTABLE_TYPES_MAX)
		return;
	if (qs->unroutable_types == NULL) {
		qs->unroutable_types =
		    calloc(PROTO_UNROUTABLE_TYPES_MAX, sizeof *qs->unroutable_types);
		if (qs->unroutable_types == NULL) {
			u->fill->oom = true;
			return;
		}
	}
	memcpy(qs->unroutable_types[qs->unroutable_types_count++], lt->type, sizeof(proto_name));
}

/* Counts q's ready jobs whose type no worker the broker knows takes (by
 * the types its fetches name), and lists up to PROTO_UNROUTABLE_TYPES_MAX
 * of those types: one look per ready lane and worker. */
static void stats_fill_unroutable(struct stats_fill *fill, const struct queue *q,
                                  struct proto_queue_stats *qs)
{
	struct unroutable_fill u = {fill, q, qs};
	lanes_each_type(&q->lanes, unroutable_type_cb, &u);
}

static void stats_fill_cb(struct queue *q, void *arg)
{
	struct stats_fill *fill = arg;
	if (!core_auth_visible(fill->req, q->name))
		return;
	struct proto_queue_stats *qs = &fill->queues[fill->count++];
	memcpy(qs->name, q->name, sizeof qs->name);
	qs->pending = queue_ready_count(q);
	qs->delayed = q->delayed;
	qs->active = q->active;
	qs->completed = q->completed;
	qs->failed = q->failed;
	core_query_queue_extras(q, qs);
	stats_fill_unroutable(fill, q, qs);
}

static int compare_queue_stats(const void *a, const void *b)
{
	return strcmp(((const struct proto_queue_stats *)a)->name,
	              ((const struct proto_queue_stats *)b)->name);
}

void handle_stats(struct core *core, struct request *req, struct outbox *out)
{
	uint32_t count = core->state.queues.queues.count;
	struct stats_fill fill = {calloc(count ? count : 1, sizeof *fill.queues), 0, req, core,
	                          false};
	if (fill.queues == NULL) {
		core_reply_errorf(core, req, out, JM_ENOMEM, "stats: broker out of memory");
		return;
	}
	queue_each(&core->state.queues, stats_fill_cb, &fill);
	if (fill.oom) {
		core_reply_errorf(core, req, out, JM_ENOMEM, "stats: broker out of memory");
	} else {
		qsort(fill.queues, fill.count, sizeof *fill.queues, compare_queue_stats);
		struct proto_msg msg = {.type = PROTO_STATS_REPLY};
		msg.u.stats_reply.queues_count = fill.count;
		msg.u.stats_reply.queues = fill.queues;
		core_reply_view(core, req, &msg, out);
	}
	for (uint32_t i = 0; i < fill.count; i++)
		free(fill.queues[i].unroutable_types);
	free(fill.queues);
}

static void reply_batch(struct core *core, struct request *req, const struct batch *b,
                        struct outbox *out)
{
	struct proto_batch_error errors[PROTO_BATCH_ERRORS_MAX];
	struct proto_msg msg = {.type = PROTO_BATCH};
	batch_info(b, &msg.u.batch, errors);
	core_reply_view(core, req, &msg, out);
}

void handle_batch_status(struct core *core, struct request *req, struct outbox *out)
{
	uint64_t batch_id = req->msg.u.job_ref.job_id;
	struct batch *b = batch_find(&core->state.batches, batch_id);
	/* Another tenant's batch is not found, as its jobs are not. */
	if (b == NULL || !core_auth_batch_visible(core, req, b))
		core_reply_errorf(core, req, out, JM_ENOTFOUND,
		                  "batch-status: batch %llu not found: no such id, or all its jobs "
		                  "left retention",
		                  (unsigned long long)batch_id);
	else
		reply_batch(core, req, b, out);
}

/* BATCHES lists every running batch and this many of those that finished
 * last, so a page opened later still shows how they ended. A finished batch
 * is held only while its jobs are, so job retention bounds them too. */
#define BATCHES_FINISHED_LISTED 50

struct batches_fill {
	struct proto_batch_info *infos;
	struct proto_batch_error *errors;
	uint32_t count;
	uint32_t cap;
	const struct core *core;
	const struct request *req; /* its token sees only its queues' batches */
	/* The latest finished, unordered; the earliest finish is evicted. */
	const struct batch *finished[BATCHES_FINISHED_LISTED];
	uint32_t finished_count;
};

static void batches_fill_one(struct batches_fill *fill, const struct batch *b)
{
	if (fill->count == fill->cap)
		return;
	batch_info(b, &fill->infos[fill->count],
	           &fill->errors[(size_t)fill->count * PROTO_BATCH_ERRORS_MAX]);
	fill->count++;
}

static void batches_fill_cb(struct batch *b, void *arg)
{
	struct batches_fill *fill = arg;
	if (!core_auth_batch_visible(fill->core, fill->req, b))
		return;
	if (!batch_is_finished(b)) {
		batches_fill_one(fill, b);
		return;
	}
	if (fill->finished_count < BATCHES_FINISHED_LISTED) {
		fill->finished[fill->finished_count++] = b;
		return;
	}
	uint32_t oldest = 0;
	for (uint32_t i = 1; i < BATCHES_FINISHED_LISTED; i++)
		if (fill->finished[i]->finished_us < fill->finished[oldest]->finished_us)
			oldest = i;
	if (b->finished_us > fill->finished[oldest]->finished_us)
		fill->finished[oldest] = b;
}

static int compare_batch_ids(const void *a, const void *b)
{
	uint64_t x = ((const struct proto_batch_info *)a)->batch_id;
	uint64_t y = ((const struct proto_batch_info *)b)->batch_id;
	return x < y ? -1 : x > y;
}

void handle_batches(struct core *core, struct request *req, struct outbox *out)
{
	uint32_t cap = core->state.batches.count < PROTO_JOBS_PER_MESSAGE_MAX
	                   ? (uint32_t)core->state.batches.count
	                   : PROTO_JOBS_PER_MESSAGE_MAX;
	struct batches_fill fill = {
	    .infos = calloc(cap + 1, sizeof *fill.infos),
	    .errors = calloc((size_t)(cap + 1) * PROTO_BATCH_ERRORS_MAX, sizeof *fill.errors),
	    .cap = cap,
	    .core = core,
	    .req = req};
	if (fill.infos == NULL || fill.errors == NULL) {
		free(fill.infos);
		free(fill.errors);
		core_reply_errorf(core, req, out, JM_ENOMEM, "batches: broker out of memory");
		return;
	}
	batch_each(&core->state.batches, batches_fill_cb, &fill);
	for (uint32_t i = 0; i < fill.finished_count; i++)
		batches_fill_one(&fill, fill.finished[i]);
	/* Sorting moves the infos, not the errors they point at. */
	qsort(fill.infos, fill.count, sizeof *fill.infos, compare_batch_ids);
	struct proto_msg msg = {.type = PROTO_BATCHES_REPLY};
	msg.u.batches_reply.batches_count = fill.count;
	msg.u.batches_reply.batches = fill.infos;
	core_reply_view(core, req, &msg, out);
	free(fill.infos);
	free(fill.errors);
}

struct workers_fill {
	struct proto_worker_info *infos;
	uint64_t *job_ids;
	uint32_t count;
	uint32_t ids_used;
	uint32_t cap;
	const struct request *req; /* its token sees only its queues' workers */
};

/* A token sees a worker that serves at least one of its queues. */
static bool worker_visible(const struct request *req, const struct worker *w)
{
	if (req->identity == NULL)
		return true;
	for (uint32_t i = 0; i < w->queues_count; i++)
		if (core_auth_visible(req, w->queues[i]))
			return true;
	return false;
}

static void workers_fill_cb(struct worker *w, void *arg)
{
	struct workers_fill *fill = arg;
	if (fill->count == fill->cap || !worker_visible(fill->req, w))
		return;
	struct proto_worker_info *info = &fill->infos[fill->count++];
	memcpy(info->worker_id, w->id, sizeof info->worker_id);
	info->host = (struct proto_bytes){(const uint8_t *)w->host, (uint32_t)strlen(w->host)};
	info->pid = w->pid;
	info->concurrency = w->concurrency;
	info->queues_count = w->queues_count;
	info->queues = w->queues;
	info->active_jobs = w->held_count;
	info->first_seen_us = w->first_seen_us;
	info->last_seen_us = w->last_seen_us;
	info->draining = w->draining;
	info->job_ids = &fill->job_ids[fill->ids_used];
	struct job *job;
	TAILQ_FOREACH(job, &w->held, more->holder_link)
	{
		if (info->job_ids_count == PROTO_JOBS_PER_MESSAGE_MAX)
			break;
		info->job_ids[info->job_ids_count++] = job->id;
	}
	fill->ids_used += info->job_ids_count;
}

static void count_held_cb(struct worker *w, void *arg)
{
	*(uint64_t *)arg += w->held_count;
}

static int compare_worker_ids(const void *a, const void *b)
{
	return strcmp(((const struct proto_worker_info *)a)->worker_id,
	              ((const struct proto_worker_info *)b)->worker_id);
}

void handle_workers(struct core *core, struct request *req, struct outbox *out)
{
	uint32_t cap = core->state.workers.workers.count;
	uint64_t held = 0;
	worker_each(&core->state.workers, count_held_cb, &held);
	struct workers_fill fill = {calloc(cap + 1, sizeof *fill.infos),
	                            calloc(held + 1, sizeof *fill.job_ids),
	                            0,
	                            0,
	                            cap,
	                            req};
	if (fill.infos == NULL || fill.job_ids == NULL) {
		free(fill.infos);
		free(fill.job_ids);
		core_reply_errorf(core, req, out, JM_ENOMEM, "workers: broker out of memory");
		return;
	}
	worker_each(&core->state.workers, workers_fill_cb, &fill);
	qsort(fill.infos, fill.count, sizeof *fill.infos, compare_worker_ids);
	struct proto_msg msg = {.type = PROTO_WORKERS_REPLY};
	msg.u.workers_reply.workers_count = fill.count;
	msg.u.workers_reply.workers = fill.infos;
	core_reply_view(core, req, &msg, out);
	free(fill.infos);
	free(fill.job_ids);
}

void handle_hello(struct core *core, struct request *req, struct outbox *out)
{
	struct proto_msg msg = {.type = PROTO_HELLO_REPLY};
	msg.u.hello_reply.broker_version =
	    (struct proto_bytes){(const uint8_t *)BROKER_VERSION, sizeof BROKER_VERSION - 1};
	const char *url = core->events ? events_url(core->events) : "";
	msg.u.hello_reply.events_url =
	    (struct proto_bytes){(const uint8_t *)url, (uint32_t)strlen(url)};
	if (req->identity != NULL) {
		const char *role = auth_role_name(req->identity->role);
		msg.u.hello_reply.identity = (struct proto_bytes){
		    (const uint8_t *)req->identity->name, (uint32_t)strlen(req->identity->name)};
		msg.u.hello_reply.role =
		    (struct proto_bytes){(const uint8_t *)role, (uint32_t)strlen(role)};
	}
	core_reply_view(core, req, &msg, out);
}

void handle_dead_list(struct core *core, struct request *req, struct outbox *out)
{
	const struct proto_dead_list *list = &req->msg.u.dead_list;
	struct queue *q = queue_find(&core->state.queues, list->queue);
	uint32_t cap = q ? (q->failed < list->limit ? (uint32_t)q->failed : list->limit) : 0;
	struct proto_job_info *infos = calloc(cap + 1, sizeof *infos);
	if (infos == NULL) {
		core_reply_errorf(core, req, out, JM_ENOMEM, "dead-list: broker out of memory");
		return;
	}
	uint32_t count = 0;
	uint64_t payload_bytes = 0;
	struct job *job;
	if (q)
		TAILQ_FOREACH(job, &q->finished[QUEUE_FAILED], finished_link)
		{
			if (count == cap)
				break;
			if (list->with_payload) {
				/* Fewer jobs rather than a reply too big to send. */
				if (count > 0 &&
				    payload_bytes + job->payload_len > PROTO_LIST_PAYLOAD_BYTES_MAX)
					break;
				payload_bytes += job->payload_len;
			}
			core_fill_job_info(job, false, &infos[count]);
			if (list->with_payload)
				infos[count].payload =
				    (struct proto_bytes){job->payload, job->payload_len};
			count++;
		}
	struct proto_msg msg = {.type = PROTO_JOB_LIST};
	msg.u.job_list.jobs_count = count;
	msg.u.job_list.jobs = infos;
	core_reply_view(core, req, &msg, out);
	free(infos);
}
