/* Admission of a SUBMIT: all of its jobs or none (DESIGN.md, "Security
 * model": reserve, then journal, then apply).
 *
 * 1. Check: the journal is writable, every delay fits the clock, every
 *    queue may take its jobs (--max-queue-jobs) and the jobs fit in the job
 *    memory (--max-payload-memory).
 * 2. Reserve: create missing queues (and the batch), allocate every job and
 *    its payload copy, make room in each ready heap and the deadline heap,
 *    encode every record. A failure here undoes the reservation: nothing
 *    was journaled and the state is as before.
 * 3. Journal every record in one journal_append_many (all or none).
 * 4. Apply: state_apply_prepared_job, which cannot fail.
 * So no record is journaled that the state does not hold, and a client
 * told that its submit failed finds none of its jobs after a restart.
 * test_admission fails every allocation of a submit in turn to check it. */
#include "core_internal.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "core_keys.h"
#include "heap.h"
#include "idempotency.h"
#include "log.h"

#define ADMIT_RUN_AT_MAX_US (3653ull * 24 * 3600 * 1000000)

/* One distinct queue of the request, with what it takes. */
struct admit_queue {
	struct queue *q;
	bool created; /* by this request: dropped again if it is refused */
	uint32_t jobs;
};

struct admission {
	uint32_t count;
	struct proto_record *recs;
	struct job **jobs;
	struct queue **job_queues; /* each job's, looked up once */
	size_t *lens;
	uint64_t *ids;
	struct admit_queue *queues;
	uint32_t queues_count;
	struct batch *batch;
	bool batch_created;
	struct jm_buf bodies;
	uint64_t bytes; /* what the new jobs add to live_bytes */
};

static void admission_fini(struct admission *a)
{
	free(a->recs);
	free(a->lens);
	free(a->ids);
	free(a->queues);
	free(a->jobs);
	free(a->job_queues);
	jm_buf_fini(&a->bodies);
}

/* The request's queues may be reclaimed again (queue_get). */
static void admission_unpin(struct admission *a)
{
	for (uint32_t i = 0; i < a->queues_count; i++)
		a->queues[i].q->pinned = false;
}

/* Undoes a reservation that will not be applied. */
static void admission_undo(struct core *core, struct admission *a)
{
	admission_unpin(a);
	for (uint32_t i = 0; a->jobs && i < a->count; i++)
		if (a->jobs[i])
			state_job_discard(&core->state, a->jobs[i]);
	if (a->batch_created)
		batch_remove(&core->state.batches, a->batch);
	for (uint32_t i = 0; i < a->queues_count; i++)
		if (a->queues[i].created)
			queue_drop_if_empty(&core->state.queues, a->queues[i].q);
}

/* The entry of q in a->queues, added if new. */
static struct admit_queue *admit_queue_of(struct admission *a, struct queue *q)
{
	for (uint32_t i = 0; i < a->queues_count; i++)
		if (a->queues[i].q == q)
			return &a->queues[i];
	/* Pinned, so that creating a later queue of this request cannot
	 * reclaim this one while it is still empty. */
	q->pinned = true;
	a->queues[a->queues_count] = (struct admit_queue){.q = q};
	return &a->queues[a->queues_count++];
}

/* Fills rec from spec; job ids are assigned from next_id. */
static void fill_record(struct proto_record *rec, const struct proto_job_spec *spec,
                        const struct queue_policy *policy, uint64_t job_id, uint64_t batch_id,
                        uint64_t now)
{
	memset(rec, 0, sizeof *rec);
	rec->version = PROTO_RECORD_VERSION;
	rec->type = PROTO_REC_JOB;
	struct proto_rec_job *r = &rec->u.job;
	r->job_id = job_id;
	/* The spec's attributes as given, with the queue's defaults resolved
	 * and what only the broker knows filled in. */
	r->attrs = spec->attrs;
	if (r->attrs.max_attempts == 0)
		r->attrs.max_attempts = policy->max_attempts;
	if (r->attrs.timeout_ms == 0)
		r->attrs.timeout_ms = policy->timeout_ms;
	r->attrs.batch_id = batch_id;
	r->attrs.created_us = now;
	r->payload = spec->payload;
	r->key = spec->key;
	r->updated_us = now;
	r->run_at_us = spec->delay_ms ? now + spec->delay_ms * 1000 : 0;
	if (spec->run_at_us > now)
		r->run_at_us = spec->run_at_us;
	r->state = r->run_at_us ? PROTO_STATE_DELAYED : PROTO_STATE_PENDING;
}

/* Step 1 for what needs no allocation. 0, or an error in err. */
static int admit_check_specs(const struct proto_submit *submit, uint64_t now, struct jm_err *err)
{
	for (uint32_t i = 0; i < submit->jobs_count; i++) {
		uint64_t delay_ms = submit->jobs[i].delay_ms;
		if (delay_ms > (UINT64_MAX - now) / 1000 - 1)
			return jm_err_set(err, JM_EINVAL,
			                  "job %u: delay_ms %llu is too large: its run time would "
			                  "overflow the clock (at most %llu ms from now)",
			                  i, (unsigned long long)delay_ms,
			                  (unsigned long long)((UINT64_MAX - now) / 1000 - 1));
		uint64_t run_at_us = submit->jobs[i].run_at_us;
		if (run_at_us > now && run_at_us - now > ADMIT_RUN_AT_MAX_US)
			return jm_err_set(err, JM_EINVAL,
			                  "job %u: run_at_us %llu is more than 10 years from now: "
			                  "give a time within 10 years",
			                  i, (unsigned long long)run_at_us);
	}
	return 0;
}

/* Steps 1 and 2. 0 with everything reserved, or an error in err with the
 * reservation undone. */
static int admit_reserve(struct core *core, const struct proto_submit *submit, struct admission *a,
                         uint64_t now, struct jm_err *err)
{
	struct state *s = &core->state;
	uint32_t n = submit->jobs_count;
	a->count = n;
	/* Only jobs is read before it is written (undo discards the jobs
	 * prepared so far): the others are filled in order before any read,
	 * so they skip calloc's zeroing (recs alone is ~46 KB per 100 jobs,
	 * and fill_record clears each record it fills). */
	size_t slots = n ? n : 1;
	a->recs = jm_malloc(slots * sizeof *a->recs);
	a->jobs = jm_calloc(slots, sizeof *a->jobs);
	a->lens = jm_malloc(slots * sizeof *a->lens);
	a->ids = jm_malloc(slots * sizeof *a->ids);
	a->queues = jm_malloc(slots * sizeof *a->queues);
	a->job_queues = jm_malloc(slots * sizeof *a->job_queues);
	if (!a->recs || !a->jobs || !a->lens || !a->ids || !a->queues || !a->job_queues)
		return jm_err_set(err, JM_ENOMEM, "broker out of memory for %u jobs", n);
	struct admit_queue *prev = NULL; /* the previous job's */
	uint32_t keyless = n;            /* a job whose key found no room */
	for (uint32_t i = 0; i < n; i++) {
		const char *name = submit->jobs[i].attrs.queue;
		/* Jobs of one submit mostly share a queue: no lookup for a
		 * name the previous job had. */
		if (prev && strcmp(name, prev->q->name) == 0) {
			a->job_queues[i] = prev->q;
			prev->jobs++;
			if (submit->jobs[i].key.len > 0 && idem_reserve(prev->q) != 0) {
				keyless = i;
				break;
			}
			continue;
		}
		struct queue *q = queue_find(&s->queues, name);
		bool created = q == NULL;
		int rc = created ? queue_get(&s->queues, name, &q) : 0;
		if (rc != 0) {
			admission_undo(core, a);
			if (rc == JM_ELIMIT)
				return jm_err_set(err, rc,
				                  "job %u: queue %s cannot be created: there are "
				                  "already %u queues, the limit (--max-queues)",
				                  i, name, s->queues.max_queues);
			return jm_err_set(err, rc, "job %u: queue %s cannot be created: %s", i,
			                  name, jm_strerror(rc));
		}
		prev = admit_queue_of(a, q);
		prev->created = prev->created || created;
		prev->jobs++;
		a->job_queues[i] = q;
		if (submit->jobs[i].key.len > 0 && idem_reserve(q) != 0) {
			keyless = i;
			break;
		}
	}
	if (keyless < n) { /* its queue's table of keys could not be made */
		admission_undo(core, a);
		return jm_err_set(err, JM_ENOMEM, "job %u: broker out of memory for its key",
		                  keyless);
	}
	uint64_t max_jobs = s->config.max_queue_jobs;
	for (uint32_t i = 0; max_jobs && i < a->queues_count; i++) {
		struct admit_queue *aq = &a->queues[i];
		uint64_t have = queue_unfinished(aq->q);
		if (have + aq->jobs > max_jobs) {
			/* The text first: undo may free a queue it names. */
			jm_err_set(err, JM_ELIMIT,
			           "queue %s holds %llu unfinished jobs; %u more would pass its "
			           "limit of %llu (--max-queue-jobs)",
			           aq->q->name, (unsigned long long)have, aq->jobs,
			           (unsigned long long)max_jobs);
			admission_undo(core, a);
			return JM_ELIMIT;
		}
	}
	uint64_t batch_id = submit->as_batch ? s->next_job_id : 0;
	uint64_t next_id = s->next_job_id + (submit->as_batch ? 1 : 0);
	for (uint32_t i = 0; i < n; i++) {
		const struct queue_policy *policy = &a->job_queues[i]->policy;
		fill_record(&a->recs[i], &submit->jobs[i], policy, next_id + i, batch_id, now);
		a->ids[i] = next_id + i;
	}
	/* Every job's share of live_bytes is known before any is allocated. */
	for (uint32_t i = 0; i < n; i++) {
		a->bytes += state_new_job_bound(&a->recs[i].u.job);
	}
	uint64_t max_mem = s->config.max_payload_memory;
	if (max_mem && s->live_bytes + a->bytes > max_mem) {
		admission_undo(core, a);
		return jm_err_set(
		    err, JM_ELIMIT,
		    "%u jobs of %llu bytes would bring the payload memory from %llu "
		    "to %llu bytes, over the limit of %llu (--max-payload-memory)",
		    n, (unsigned long long)a->bytes, (unsigned long long)s->live_bytes,
		    (unsigned long long)(s->live_bytes + a->bytes), (unsigned long long)max_mem);
	}
	int rc = 0;
	uint32_t delayed = 0;
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		a->jobs[i] = state_job_prepare(s, &a->recs[i].u.job, a->job_queues[i]);
		if (a->jobs[i] == NULL)
			rc = JM_ENOMEM;
		delayed += a->recs[i].u.job.state == PROTO_STATE_DELAYED;
	}
	/* A delayed job may be due at once and go to its ready lane (whose
	 * room state_job_prepare made): room in the deadline heap for every
	 * job. One more deadline for the batch's event timer. */
	if (rc == 0)
		rc = deadline_heap_reserve(&s->deadlines, delayed + 1);
	if (rc == 0 && batch_id) {
		a->batch_created = true;
		rc = batch_get(&s->batches, batch_id, now, &a->batch);
		if (rc != 0)
			a->batch_created = false;
	}
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		size_t before = a->bodies.len;
		rc = proto_record_encode(&a->recs[i], &a->bodies);
		a->lens[i] = a->bodies.len - before;
	}
	if (rc != 0) {
		admission_undo(core, a);
		return jm_err_set(err, rc, "reserving %u jobs: %s", n,
		                  rc == JM_ENOMEM ? "broker out of memory" : jm_strerror(rc));
	}
	return 0;
}

int core_admit_one(struct core *core, struct queue *q, const struct proto_rec_job *r,
                   struct job **job, struct jm_err *err)
{
	struct state *s = &core->state;
	uint64_t max_jobs = s->config.max_queue_jobs;
	uint64_t have = queue_unfinished(q);
	if (max_jobs && have + 1 > max_jobs)
		return jm_err_set(err, JM_ELIMIT,
		                  "queue %s holds %llu unfinished jobs; 1 more would pass its "
		                  "limit of %llu (--max-queue-jobs)",
		                  q->name, (unsigned long long)have, (unsigned long long)max_jobs);
	uint64_t bytes = state_new_job_bound(r);
	uint64_t max_mem = s->config.max_payload_memory;
	if (max_mem && s->live_bytes + bytes > max_mem)
		return jm_err_set(err, JM_ELIMIT,
		                  "a job of %llu bytes would bring the payload memory from %llu "
		                  "to %llu bytes, over the limit of %llu (--max-payload-memory)",
		                  (unsigned long long)bytes, (unsigned long long)s->live_bytes,
		                  (unsigned long long)(s->live_bytes + bytes),
		                  (unsigned long long)max_mem);
	/* Room in the deadline heap for a delay, the schedule's timer and a
	 * batch's event timer (its ready lane's room comes with the job). */
	int rc = deadline_heap_reserve(&s->deadlines, 3);
	*job = rc == 0 ? state_job_prepare(s, r, q) : NULL;
	if (*job == NULL)
		return jm_err_set(err, JM_ENOMEM, "job %llu: broker out of memory",
		                  (unsigned long long)r->job_id);
	return 0;
}

/* Admits submit's jobs and answers: with SUBMITTED (wait_ms NULL), or,
 * for a SUBMIT_WAIT's one job, once that job finished or *wait_ms passed
 * (core_wait_for_job). */
static void submit_and_answer(struct core *core, struct request *req,
                              const struct proto_submit *submit, const uint32_t *wait_ms,
                              struct outbox *out)
{
	const char *what = proto_type_name(req->msg.type);
	struct jm_err err = {0};
	if (!journal_is_writable(core->journal, &err)) {
		core_reply_errorf(core, req, out, err.code, "%s: %s", what, jm_err_text(&err));
		return;
	}
	uint64_t now = jm_wall_us();
	struct admission a = {0};
	struct key_plan keys;
	int rc = admit_check_specs(submit, now, &err);
	if (rc == 0)
		rc = key_plan_make(core, submit, now, &keys, &err);
	else
		memset(&keys, 0, sizeof keys);
	if (rc == 0 && keys.admit.jobs_count > 0)
		rc = admit_reserve(core, &keys.admit, &a, now, &err);
	uint64_t last_lsn = 0;
	if (rc == 0 && a.count > 0) {
		rc = journal_append_many(core->journal, a.bodies.data, a.lens, a.count, &last_lsn,
		                         &err);
		if (rc != 0)
			admission_undo(core, &a);
	}
	if (rc != 0) {
		core_reply_errorf(core, req, out, rc, "%s: %s", what, jm_err_text(&err));
		admission_fini(&a);
		key_plan_fini(&keys);
		return;
	}
	struct state *s = &core->state;
	uint64_t applied_us = jm_wall_us();
	for (uint32_t i = 0; i < a.count; i++) {
		state_apply_prepared_job(s, &a.recs[i].u.job, a.jobs[i], applied_us);
		core_committed(core, &a.recs[i], last_lsn - a.count + 1 + i, 0);
	}
	admission_unpin(&a);
	key_plan_finish(&keys, a.ids);
	if (wait_ms != NULL) {
		uint64_t job_id = keys.ids ? keys.ids[0] : a.ids[0];
		admission_fini(&a);
		key_plan_fini(&keys);
		core_pump(core, out);
		/* The answer waits for the job's last record, so nobody waits
		 * for its admission's records yet: the completion's sync will
		 * cover them too (journal_lead_defer). */
		struct job *job = jobtable_find(&s->jobs, job_id);
		if (job == NULL) /* a key matched a job whose retention ran out */
			core_reply_errorf(core, req, out, JM_ENOTFOUND,
			                  "%s: job %llu is gone already: its retention ran out",
			                  what, (unsigned long long)job_id);
		else if (core_wait_for_job(core, req, job, *wait_ms, out))
			journal_lead_defer(core->journal);
		return;
	}
	struct proto_msg msg = {.type = PROTO_SUBMITTED};
	msg.u.submitted.batch_id = a.batch ? a.batch->id : keys.batch_id;
	msg.u.submitted.ids_count = keys.count;
	msg.u.submitted.ids = keys.ids ? keys.ids : a.ids;
	msg.u.submitted.existing_ids_count = keys.existing_count;
	msg.u.submitted.existing_ids = keys.existing_ids;
	/* Waits for the latest record, which covers the admission of the
	 * jobs keys answered too (a retry never hears of a job that a crash
	 * could still lose). */
	core_reply(core, req, &msg, out);
	admission_fini(&a);
	key_plan_fini(&keys);
	core_pump(core, out);
}

void handle_submit(struct core *core, struct request *req, struct outbox *out)
{
	submit_and_answer(core, req, &req->msg.u.submit, NULL, out);
}

void handle_submit_wait(struct core *core, struct request *req, struct outbox *out)
{
	struct proto_submit one = {.jobs_count = 1, .jobs = &req->msg.u.submit_wait.job};
	submit_and_answer(core, req, &one, &req->msg.u.submit_wait.timeout_ms, out);
}
