/* Runtime queue settings: pause, resume, limits (the broker journals them). */
#include <jobmesh/client.h>

#include <stdio.h>
#include <string.h>

#include "client_internal.h"

int jm_client_queue_set(jm_client *client, const char *queue, const jm_queue_settings *changes,
                        jm_queue_settings *out)
{
	if (client == NULL || queue == NULL || changes == NULL)
		return client_fail(JM_EINVAL,
		                   "queue-set: client, queue and changes must not be NULL");
	int rc = client_check_queue("queue-set", queue);
	if (rc != 0)
		return rc;
	struct proto_msg req = {.type = PROTO_QUEUE_SET};
	struct proto_queue_settings *p = &req.u.queue_settings;
	snprintf(p->queue, sizeof p->queue, "%s", queue);
	p->set_mask = changes->set_mask;
	p->paused = changes->paused;
	p->max_active = changes->max_active;
	p->rate_jobs = changes->rate_jobs;
	p->rate_period_ms = changes->rate_period_ms;
	p->max_attempts = changes->max_attempts;
	p->keep_finished = changes->keep_finished;
	p->keep_finished_age_ms = changes->keep_finished_age_ms;
	p->key_window_ms = changes->key_window_ms;
	p->group_limit = changes->group_limit;
	p->keep_completed = changes->keep_completed;
	p->keep_completed_age_ms = changes->keep_completed_age_ms;
	p->keep_failed = changes->keep_failed;
	p->keep_failed_age_ms = changes->keep_failed_age_ms;
	p->keep_cancelled = changes->keep_cancelled;
	p->keep_cancelled_age_ms = changes->keep_cancelled_age_ms;
	struct rpc_reply reply;
	rc = client_call(client, "queue-set", &req, PROTO_QUEUE_SETTINGS, client_timeout(client),
	                 &reply);
	if (rc != 0)
		return rc;
	if (out != NULL) {
		const struct proto_queue_settings *r = &reply.msg.u.queue_settings;
		memset(out, 0, sizeof *out);
		snprintf(out->name, sizeof out->name, "%s", r->queue);
		out->set_mask = r->set_mask;
		out->paused = r->paused;
		out->max_active = r->max_active;
		out->rate_jobs = r->rate_jobs;
		out->rate_period_ms = r->rate_period_ms;
		out->max_attempts = r->max_attempts;
		out->keep_finished = r->keep_finished;
		out->keep_finished_age_ms = r->keep_finished_age_ms;
		out->key_window_ms = r->key_window_ms;
		out->group_limit = r->group_limit;
		out->keep_completed = r->keep_completed;
		out->keep_completed_age_ms = r->keep_completed_age_ms;
		out->keep_failed = r->keep_failed;
		out->keep_failed_age_ms = r->keep_failed_age_ms;
		out->keep_cancelled = r->keep_cancelled;
		out->keep_cancelled_age_ms = r->keep_cancelled_age_ms;
	}
	rpc_reply_fini(&reply);
	return 0;
}
