/* Idempotency keys of a SUBMIT (see core_keys.h). */
#include "core_keys.h"

#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "idempotency.h"

/* spec's key as a C string in buf (PROTO_KEY_MAX + 1 bytes). */
static const char *key_text(const struct proto_job_spec *spec, char *buf)
{
	memcpy(buf, spec->key.ptr, spec->key.len);
	buf[spec->key.len] = '\0';
	return buf;
}

static bool same_key(const struct proto_job_spec *a, const struct proto_job_spec *b)
{
	return a->key.len == b->key.len && memcmp(a->key.ptr, b->key.ptr, a->key.len) == 0 &&
	       strcmp(a->attrs.queue, b->attrs.queue) == 0;
}

/* The existing job spec's key names in its queue, while it matches. */
static const struct job *key_match(struct core *core, const struct proto_job_spec *spec,
                                   uint64_t now_us)
{
	struct queue *q = queue_find(&core->state.queues, spec->attrs.queue);
	if (q == NULL)
		return NULL;
	char buf[PROTO_KEY_MAX + 1];
	const struct job *job = idem_find(q, key_text(spec, buf));
	return job && idem_is_fresh(job, q->policy.key_window_ms, now_us) ? job : NULL;
}

/* A batch answered in part, or by jobs of several batches: refused. */
static int batch_keys_check(const struct proto_submit *submit, struct key_plan *plan,
                            struct core *core, struct jm_err *err)
{
	uint32_t n = submit->jobs_count;
	char buf[PROTO_KEY_MAX + 1];
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; submit->jobs[i].key.len && j < i; j++)
			if (same_key(&submit->jobs[i], &submit->jobs[j]))
				return jm_err_set(
				    err, JM_EINVAL,
				    "job %u: idempotency key \"%s\" is job %u's too: the "
				    "jobs of a batch need different keys",
				    i, key_text(&submit->jobs[i], buf), j);
	if (plan->existing_count == 0)
		return 0;
	uint32_t first = 0; /* the first job a key answered */
	while (!plan->existing[first])
		first++;
	const struct job *anchor = jobtable_find(&core->state.jobs, plan->ids[first]);
	uint64_t batch_id = anchor ? job_batch_id(anchor) : 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct job *job =
		    plan->existing[i] ? jobtable_find(&core->state.jobs, plan->ids[i]) : NULL;
		if (job != NULL && batch_id != 0 && job_batch_id(job) == batch_id)
			continue;
		const char *what = submit->jobs[i].key.len == 0 ? "has no idempotency key"
		                   : job == NULL                ? "idempotency key names no job"
		                                 : "key names a job of another batch";
		return jm_err_set(err, JM_ESTATE,
		                  "job %u %s, but job %u's key names job %llu: a batch is admitted "
		                  "whole, so resend it with the keys it was first sent with (a "
		                  "retry) or with new ones",
		                  i, what, first, (unsigned long long)plan->ids[first]);
	}
	plan->batch_id = batch_id;
	return 0;
}

int key_plan_make(struct core *core, const struct proto_submit *submit, uint64_t now_us,
                  struct key_plan *plan, struct jm_err *err)
{
	memset(plan, 0, sizeof *plan);
	uint32_t n = submit->jobs_count;
	plan->count = n;
	plan->admit = *submit;
	bool any_key = false;
	for (uint32_t i = 0; i < n && !any_key; i++)
		any_key = submit->jobs[i].key.len > 0;
	if (!any_key)
		return 0;
	plan->ids = jm_calloc(n, sizeof *plan->ids);
	plan->same_as = jm_calloc(n, sizeof *plan->same_as);
	plan->existing = jm_calloc(n, sizeof *plan->existing);
	plan->existing_ids = jm_calloc(n, sizeof *plan->existing_ids);
	plan->specs = jm_calloc(n, sizeof *plan->specs);
	if (!plan->ids || !plan->same_as || !plan->existing || !plan->existing_ids || !plan->specs)
		return jm_err_set(err, JM_ENOMEM, "broker out of memory for %u keys", n);
	uint32_t admit_count = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct proto_job_spec *spec = &submit->jobs[i];
		plan->same_as[i] = -1;
		if (spec->key.len == 0) {
			plan->specs[admit_count++] = *spec;
			continue;
		}
		const struct job *job = key_match(core, spec, now_us);
		if (job != NULL) {
			plan->ids[i] = job->id;
			plan->existing[i] = true;
			plan->existing_ids[plan->existing_count++] = job->id;
			continue;
		}
		/* Linear in the keyed jobs before it: a SUBMIT holds at most
		 * PROTO_JOBS_PER_MESSAGE_MAX jobs. */
		for (uint32_t j = 0; j < i && plan->same_as[i] < 0; j++)
			if (!plan->existing[j] && plan->same_as[j] < 0 &&
			    same_key(spec, &submit->jobs[j]))
				plan->same_as[i] = (int32_t)j;
		if (plan->same_as[i] < 0)
			plan->specs[admit_count++] = *spec;
	}
	if (submit->as_batch) {
		int rc = batch_keys_check(submit, plan, core, err);
		if (rc != 0)
			return rc;
	}
	plan->admit.jobs = plan->specs;
	plan->admit.jobs_count = admit_count;
	return 0;
}

void key_plan_finish(struct key_plan *plan, const uint64_t *new_ids)
{
	if (plan->ids == NULL)
		return;
	uint32_t k = 0;
	for (uint32_t i = 0; i < plan->count; i++)
		if (!plan->existing[i] && plan->same_as[i] < 0)
			plan->ids[i] = new_ids[k++];
	for (uint32_t i = 0; i < plan->count; i++)
		if (plan->same_as[i] >= 0)
			plan->ids[i] = plan->ids[plan->same_as[i]];
}

void key_plan_fini(struct key_plan *plan)
{
	free(plan->ids);
	free(plan->same_as);
	free(plan->existing);
	free(plan->existing_ids);
	free(plan->specs);
}
