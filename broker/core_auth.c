/* Authorization in the core: the one place every request passes, from the
 * NNG server and from the HTTP API alike (see auth.h). The core knows each
 * job's queue, so a request that names jobs by id is judged here by the
 * job's queue; a job of a queue the token may not see is reported as not
 * found, so a tenant cannot probe another's ids. A batch is judged by its
 * jobs' queues the same way. */
#include "core_internal.h"

#include "auth.h"

static bool job_hidden(const struct core *core, const struct auth_identity *id, uint64_t job_id)
{
	struct job *job = jobtable_find(&core->state.jobs, job_id);
	return job != NULL && !auth_queue_visible(id, job->queue->name);
}

/* The first job id in req whose queue the identity may not see, or 0. */
static uint64_t first_hidden_job(const struct core *core, const struct request *req)
{
	const struct auth_identity *id = req->identity;
	const struct proto_msg *m = &req->msg;
	switch (m->type) {
	case PROTO_STATUS:
	case PROTO_RESULT:
	case PROTO_CANCEL:
		return job_hidden(core, id, m->u.job_ref.job_id) ? m->u.job_ref.job_id : 0;
	case PROTO_WAIT:
		return job_hidden(core, id, m->u.wait.job_id) ? m->u.wait.job_id : 0;
	case PROTO_PROGRESS:
		return job_hidden(core, id, m->u.progress.job_id) ? m->u.progress.job_id : 0;
	case PROTO_SETTLE:
		for (uint32_t i = 0; i < m->u.settle.items_count; i++)
			if (job_hidden(core, id, m->u.settle.items[i].job_id))
				return m->u.settle.items[i].job_id;
		return 0;
	case PROTO_HEARTBEAT:
		for (uint32_t i = 0; i < m->u.heartbeat.leases_count; i++)
			if (job_hidden(core, id, m->u.heartbeat.leases[i].job_id))
				return m->u.heartbeat.leases[i].job_id;
		return 0;
	default:
		return 0;
	}
}

bool core_auth_refused(struct core *core, struct request *req, struct outbox *out)
{
	if (req->identity == NULL)
		return false;
	struct jm_err err = {0};
	if (auth_allows(req->identity, &req->msg, &err) != 0) {
		core_reply_errorf(core, req, out, err.code, "%s", jm_err_text(&err));
		return true;
	}
	uint64_t hidden = first_hidden_job(core, req);
	if (hidden == 0)
		return false;
	core_reply_errorf(core, req, out, JM_ENOTFOUND,
	                  "%s: job %llu not found: no such id, or its retention ran out",
	                  proto_type_name(req->msg.type), (unsigned long long)hidden);
	return true;
}

bool core_auth_visible(const struct request *req, const char *queue)
{
	return req->identity == NULL || auth_queue_visible(req->identity, queue);
}

bool core_auth_batch_visible(const struct core *core, const struct request *req,
                             const struct batch *b)
{
	if (req->identity == NULL)
		return true;
	if (!b->mixed)
		return b->queue[0] != '\0' && auth_queue_visible(req->identity, b->queue);
	/* Jobs in several queues: each one still held must be visible. A
	 * batch's jobs take the ids right after its own (core_admit.c), at
	 * most a submit's worth. */
	uint64_t seen = 0;
	for (uint64_t id = b->id + 1; id <= b->id + b->total && seen < b->jobs_present; id++) {
		const struct job *job = jobtable_find(&core->state.jobs, id);
		if (job == NULL || job->batch != b)
			continue;
		seen++;
		if (!auth_queue_visible(req->identity, job->queue->name))
			return false;
	}
	return true;
}
