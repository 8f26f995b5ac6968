/* JOB_QUERY and the STATS extras (see core_query.h).
 *
 * A job query scans the job table once and keeps the limit highest ids
 * below the cursor in a min-heap, so one page costs O(jobs log limit)
 * under the core lock; ids are never reused, so "ids below the last one
 * returned" pages without skipping or repeating a job that still exists. */
#include "core_query.h"

#include "core_internal.h"

#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "queue.h"

struct query_scan {
	const struct proto_job_query *query;
	const struct queue *queue; /* NULL: every queue */
	struct job **heap;         /* min-heap by id, at most query->limit */
	uint32_t count;
	const struct request *req; /* its token sees only its queues' jobs */
};

static void heap_sift_down(struct job **heap, uint32_t count, uint32_t i)
{
	for (;;) {
		uint32_t smallest = i;
		uint32_t l = 2 * i + 1, r = l + 1;
		if (l < count && heap[l]->id < heap[smallest]->id)
			smallest = l;
		if (r < count && heap[r]->id < heap[smallest]->id)
			smallest = r;
		if (smallest == i)
			return;
		struct job *t = heap[i];
		heap[i] = heap[smallest];
		heap[smallest] = t;
		i = smallest;
	}
}

static void heap_push(struct job **heap, uint32_t *count, struct job *job)
{
	uint32_t i = (*count)++;
	heap[i] = job;
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (heap[parent]->id <= heap[i]->id)
			break;
		struct job *t = heap[i];
		heap[i] = heap[parent];
		heap[parent] = t;
		i = parent;
	}
}

static void scan_cb(struct job *job, void *arg)
{
	struct query_scan *scan = arg;
	const struct proto_job_query *q = scan->query;
	if ((q->cursor && job->id >= q->cursor) || (q->state && job->state != q->state) ||
	    (q->batch_id && job_batch_id(job) != q->batch_id) ||
	    (q->queue[0] && job->queue != scan->queue) ||
	    !core_auth_visible(scan->req, job->queue->name))
		return;
	if (scan->count < q->limit) {
		heap_push(scan->heap, &scan->count, job);
	} else if (job->id > scan->heap[0]->id) {
		scan->heap[0] = job;
		heap_sift_down(scan->heap, scan->count, 0);
	}
}

static int compare_ids_desc(const void *a, const void *b)
{
	const struct proto_job_info *x = a, *y = b;
	return x->job_id < y->job_id ? 1 : x->job_id > y->job_id ? -1 : 0;
}

static int query_jobs(const struct state *s, const struct request *req, struct proto_msg *reply)
{
	const struct proto_job_query *query = &req->msg.u.job_query;
	memset(reply, 0, sizeof *reply);
	reply->type = PROTO_JOB_LIST;
	struct query_scan scan = {query, NULL, NULL, 0, req};
	if (query->queue[0]) {
		scan.queue = queue_find(&s->queues, query->queue);
		if (scan.queue == NULL)
			return 0; /* no such queue: no jobs */
	}
	scan.heap = malloc((size_t)query->limit * sizeof *scan.heap);
	struct proto_job_info *infos = calloc((size_t)query->limit, sizeof *infos);
	if (scan.heap == NULL || infos == NULL) {
		free(scan.heap);
		free(infos);
		return JM_ENOMEM;
	}
	jobtable_each(&s->jobs, scan_cb, &scan);
	for (uint32_t i = 0; i < scan.count; i++)
		core_fill_job_info(scan.heap[i], false, &infos[i]);
	free(scan.heap);
	qsort(infos, scan.count, sizeof *infos, compare_ids_desc);
	reply->u.job_list.jobs = infos;
	reply->u.job_list.jobs_count = scan.count;
	return 0;
}

void handle_job_query(struct core *core, struct request *req, struct outbox *out)
{
	struct proto_msg list;
	if (query_jobs(&core->state, req, &list) != 0)
		core_reply_errorf(core, req, out, JM_ENOMEM, "job-query: broker out of memory");
	else
		core_reply_view(core, req, &list, out);
	free(list.u.job_list.jobs);
}

void core_query_queue_extras(const struct queue *q, struct proto_queue_stats *stats)
{
	stats->cancelled = q->cancelled;
	stats->max_active = q->policy.max_active;
	stats->paused = q->paused;
	stats->rate_jobs = q->policy.rate_jobs;
	stats->rate_period_ms = q->policy.rate_jobs ? q->policy.rate_period_ms : 0;
	stats->own_settings = q->own_settings;
	stats->max_attempts = q->policy.max_attempts;
	stats->keep_finished = q->policy.keep[QUEUE_COMPLETED].count;
	stats->keep_finished_age_ms = q->policy.keep[QUEUE_COMPLETED].age_ms;
	stats->key_window_ms = q->policy.key_window_ms;
	stats->keep_failed = q->policy.keep[QUEUE_FAILED].count;
	stats->keep_failed_age_ms = q->policy.keep[QUEUE_FAILED].age_ms;
	stats->keep_cancelled = q->policy.keep[QUEUE_CANCELLED].count;
	stats->keep_cancelled_age_ms = q->policy.keep[QUEUE_CANCELLED].age_ms;
	stats->group_limit = q->policy.group_limit;
	/* The first job of each priority level: no walk over the ready jobs
	 * under the core lock on every stats call. */
	stats->oldest_pending_us = queue_oldest_ready_us(q);
}
