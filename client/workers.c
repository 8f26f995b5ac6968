/* The workers the broker knows (jm_client_workers). */
#include <jobmesh/client.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

static void worker_info_fini(jm_worker_info *w)
{
	free(w->host);
	for (size_t i = 0; i < w->queues_count; i++)
		free(w->queues[i]);
	free(w->queues);
	free(w->job_ids);
}

void jm_workers_free(jm_worker_info *workers, size_t count)
{
	if (workers == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		worker_info_fini(&workers[i]);
	free(workers);
}

/* Fills *out (zeroed) from w; on JM_ENOMEM what was filled is for
 * worker_info_fini. */
static int worker_from_proto(const struct proto_worker_info *w, jm_worker_info *out)
{
	snprintf(out->id, sizeof out->id, "%s", w->worker_id);
	out->pid = w->pid;
	out->concurrency = w->concurrency;
	out->active_jobs = w->active_jobs;
	out->first_seen_us = w->first_seen_us;
	out->last_seen_us = w->last_seen_us;
	out->draining = w->draining;
	out->host = client_dup_bytes(&w->host);
	if (out->host == NULL)
		return JM_ENOMEM;
	if (w->queues_count > 0) {
		out->queues = calloc(w->queues_count, sizeof *out->queues);
		if (out->queues == NULL)
			return JM_ENOMEM;
		for (uint32_t i = 0; i < w->queues_count; i++) {
			out->queues[i] = strdup(w->queues[i]);
			if (out->queues[i] == NULL)
				return JM_ENOMEM;
			out->queues_count = i + 1;
		}
	}
	if (w->job_ids_count > 0) {
		out->job_ids = malloc(w->job_ids_count * sizeof *out->job_ids);
		if (out->job_ids == NULL)
			return JM_ENOMEM;
		memcpy(out->job_ids, w->job_ids, w->job_ids_count * sizeof *out->job_ids);
		out->job_ids_count = w->job_ids_count;
	}
	return 0;
}

int jm_client_workers(jm_client *client, jm_worker_info **workers, size_t *count)
{
	if (workers != NULL)
		*workers = NULL;
	if (count != NULL)
		*count = 0;
	if (client == NULL || workers == NULL || count == NULL)
		return client_fail(JM_EINVAL,
		                   "workers: client, workers and count must not be NULL");
	struct proto_msg req = {.type = PROTO_WORKERS};
	struct rpc_reply reply;
	int rc = client_call(client, "workers", &req, PROTO_WORKERS_REPLY, client_timeout(client),
	                     &reply);
	if (rc != 0)
		return rc;
	const struct proto_workers_reply *list = &reply.msg.u.workers_reply;
	jm_worker_info *copy = NULL;
	if (list->workers_count > 0) {
		copy = calloc(list->workers_count, sizeof *copy);
		if (copy == NULL) {
			rc =
			    client_fail(JM_ENOMEM, "workers: out of memory for %" PRIu32 " workers",
			                list->workers_count);
			goto done_free_reply;
		}
	}
	for (uint32_t i = 0; i < list->workers_count; i++) {
		rc = worker_from_proto(&list->workers[i], &copy[i]);
		if (rc != 0) {
			jm_workers_free(copy, i + 1);
			rc = client_fail(rc, "workers: out of memory for %" PRIu32 " workers",
			                 list->workers_count);
			goto done_free_reply;
		}
	}
	*workers = copy;
	*count = list->workers_count;
done_free_reply:
	rpc_reply_fini(&reply);
	return rc;
}
