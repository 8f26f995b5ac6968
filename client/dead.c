/* The dead-letter set of a queue: list it, and revive jobs from it. */
#include <jobmesh/client.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

int jm_client_dead_list(jm_client *client, const char *queue, unsigned limit, jm_job_info **jobs,
                        size_t *count)
{
	if (jobs != NULL)
		*jobs = NULL;
	if (count != NULL)
		*count = 0;
	if (client == NULL || jobs == NULL || count == NULL)
		return client_fail(JM_EINVAL, "dead-list: client, jobs and count must not be NULL");
	int rc = client_check_queue("dead-list", queue);
	if (rc != 0)
		return rc;
	if (limit < 1 || limit > PROTO_JOBS_PER_MESSAGE_MAX)
		return client_fail(JM_EINVAL, "dead-list: limit %u is out of range: use 1..%u",
		                   limit, PROTO_JOBS_PER_MESSAGE_MAX);
	struct proto_msg req = {.type = PROTO_DEAD_LIST};
	strcpy(req.u.dead_list.queue, queue);
	req.u.dead_list.limit = limit;
	struct rpc_reply reply;
	rc = client_call(client, "dead-list", &req, PROTO_JOB_LIST, client_timeout(client), &reply);
	if (rc != 0)
		return rc;
	const struct proto_job_list *list = &reply.msg.u.job_list;
	jm_job_info *copy = NULL;
	if (list->jobs_count > 0) {
		copy = calloc(list->jobs_count, sizeof *copy);
		if (copy == NULL) {
			rc = client_fail(JM_ENOMEM, "dead-list: out of memory for %" PRIu32 " jobs",
			                 list->jobs_count);
			goto done_free_reply;
		}
	}
	for (uint32_t i = 0; i < list->jobs_count; i++) {
		rc = client_job_from_proto(&list->jobs[i], &copy[i]);
		if (rc != 0) {
			jm_job_infos_free(copy, i + 1);
			rc = client_fail(rc, "dead-list: out of memory for %" PRIu32 " jobs",
			                 list->jobs_count);
			goto done_free_reply;
		}
	}
	*jobs = copy;
	*count = list->jobs_count;
done_free_reply:
	rpc_reply_fini(&reply);
	return rc;
}

/* REVIVE, or with remove the same message dropping the jobs instead. */
static int dead_take(jm_client *client, const char *what, const char *queue, uint64_t job_id,
                     bool remove, uint64_t **ids, size_t *count)
{
	if (ids != NULL)
		*ids = NULL;
	if (count != NULL)
		*count = 0;
	if (client == NULL || ids == NULL || count == NULL)
		return client_fail(JM_EINVAL, "%s: client, ids and count must not be NULL", what);
	int rc = client_check_queue(what, queue);
	if (rc != 0)
		return rc;
	/* A type of its own: an older broker refuses it rather than retry. */
	struct proto_msg req = {.type = remove ? PROTO_DEAD_REMOVE : PROTO_REVIVE};
	strcpy(req.u.revive.queue, queue);
	req.u.revive.job_id = job_id;
	struct rpc_reply reply;
	rc = client_call(client, what, &req, PROTO_REVIVED, client_timeout(client), &reply);
	if (rc == JM_ENOTFOUND && job_id != 0)
		return client_fail(rc, "%s: job %" PRIu64 " is not a dead-lettered job of queue %s",
		                   what, job_id, queue);
	if (rc != 0)
		return rc;
	const struct proto_revived *revived = &reply.msg.u.revived;
	if (revived->ids_count > 0) {
		*ids = malloc(revived->ids_count * sizeof **ids);
		if (*ids == NULL) {
			rc = client_fail(JM_ENOMEM, "%s: out of memory for %" PRIu32 " ids", what,
			                 revived->ids_count);
			goto done_free_reply;
		}
		memcpy(*ids, revived->ids, revived->ids_count * sizeof **ids);
		*count = revived->ids_count;
	}
done_free_reply:
	rpc_reply_fini(&reply);
	return rc;
}

int jm_client_revive(jm_client *client, const char *queue, uint64_t job_id, uint64_t **ids,
                     size_t *count)
{
	return dead_take(client, "revive", queue, job_id, false, ids, count);
}

int jm_client_dead_remove(jm_client *client, const char *queue, uint64_t job_id, uint64_t **ids,
                          size_t *count)
{
	return dead_take(client, "dead-letter remove", queue, job_id, true, ids, count);
}
