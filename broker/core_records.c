/* Committing records to the journal and the state, all or none (DESIGN.md,
 * "Security model": reserve, then journal, then apply).
 *
 * Every change of a live broker but a submit (core_admit.c) goes through
 * core_commit_many: a fetch's LEASE records, a settle's SETTLE records, a
 * cancel, a revive, a requeue. Before anything is journaled it reserves
 * what applying the records will need:
 * - room in the deadline heap for one entry a record (a lease's deadline,
 *   a retry's ready time, a batch's event timer);
 * - room in the ready heap of each queue a SETTLE or REVIVE may make a job
 *   pending in;
 * - the copy of each SETTLE's text (result or error).
 * Then it journals every record in one journal_append_many (all or none),
 * then applies them, which cannot fail. A failure before the journal
 * leaves the state and the journal as they were, so no record is journaled
 * that the state does not hold. test_admission fails every allocation of a
 * fetch and of a settle in turn to check it.
 *
 * JOB records and SCHEDULE puts allocate as they apply; they reserve in
 * core_admit.c (a submit, a schedule's run) and core_schedules.c (a put)
 * and are journaled there. META, QUEUE, DROP and a SCHEDULE delete apply
 * without allocating; core_commit journals only those (and what comes
 * here), refusing any other record before it is journaled. */
#include "core_internal.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "heap.h"
#include "log.h"

/* Reserves deadline heap room for applying recs and copies each SETTLE's text into
 * copies[i]. 0, or JM_ENOMEM with every copy freed (the heaps may have
 * grown: that is capacity, not state). */
static int records_reserve(struct core *core, const struct proto_record *recs, uint32_t count,
                           uint8_t **copies)
{
	struct state *s = &core->state;
	/* One more deadline for a batch's event timer (core_batch_touched). */
	int rc = deadline_heap_reserve(&s->deadlines, count + 1);
	/* A job that becomes ready needs no room: its lane holds room for
	 * every job of its type (lanes.h). */
	for (uint32_t i = 0; rc == 0 && i < count; i++)
		if (recs[i].type == PROTO_REC_SETTLE)
			rc = state_settle_prepare(&recs[i].u.settle, &copies[i]);
	if (rc != 0) {
		for (uint32_t i = 0; i < count; i++) {
			free(copies[i]);
			copies[i] = NULL;
		}
		return JM_ENOMEM;
	}
	return 0;
}

/* Applies rec, whose room was reserved, journaled at lsn. */
static void record_apply(struct core *core, const struct proto_record *rec, uint8_t *copy,
                         uint64_t lsn, uint64_t now_us)
{
	uint64_t job_id = rec->type == PROTO_REC_SETTLE   ? rec->u.settle.job_id
	                  : rec->type == PROTO_REC_LEASE  ? rec->u.lease.job_id
	                  : rec->type == PROTO_REC_CANCEL ? rec->u.cancel.job_id
	                  : rec->type == PROTO_REC_REVIVE ? rec->u.revive.job_id
	                                                  : 0;
	const struct job *prior = job_id ? jobtable_find(&core->state.jobs, job_id) : NULL;
	uint64_t prior_since_us = prior ? prior->updated_us : 0;
	if (rec->type == PROTO_REC_SETTLE) {
		state_apply_prepared_settle(&core->state, &rec->u.settle, copy, now_us);
	} else {
		struct jm_err err = {0};
		/* A LEASE, CANCEL or REVIVE allocates nothing but reserved room. */
		if (state_apply(&core->state, rec, now_us, &err) != 0)
			jm_error("applying a %s record after journaling it failed: %s",
			         proto_record_type_name(rec->type), jm_err_text(&err));
	}
	core_committed(core, rec, lsn, prior_since_us);
}

int core_commit_many(struct core *core, const struct proto_record *recs, uint32_t count,
                     struct jm_err *err)
{
	if (count == 0)
		return 0;
	/* The record a caller built must fit the state: a bug otherwise,
	 * refused before it is journaled. */
	for (uint32_t i = 0; i < count; i++)
		if (recs[i].type == PROTO_REC_SETTLE &&
		    !state_settle_fits(&core->state, &recs[i].u.settle))
			return jm_err_set(err, JM_ESTATE,
			                  "settle for job %llu does not fit its state",
			                  (unsigned long long)recs[i].u.settle.job_id);
	uint8_t *one_copy = NULL;
	uint8_t **copies = count == 1 ? &one_copy : jm_calloc(count, sizeof *copies);
	size_t one_len;
	size_t *lens = count == 1 ? &one_len : jm_calloc(count, sizeof *lens);
	struct jm_buf bodies;
	jm_buf_init(&bodies);
	int rc = copies && lens ? 0 : JM_ENOMEM;
	if (rc == 0)
		rc = records_reserve(core, recs, count, copies);
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		size_t before = bodies.len;
		rc = proto_record_encode(&recs[i], &bodies);
		lens[i] = bodies.len - before;
	}
	if (rc != 0) {
		jm_err_set(err, rc, "%u %s record(s): %s", count,
		           proto_record_type_name(recs[0].type),
		           rc == JM_ENOMEM ? "broker out of memory" : jm_strerror(rc));
	} else {
		uint64_t last_lsn = 0;
		rc = journal_append_many(core->journal, bodies.data, lens, count, &last_lsn, err);
		if (rc == 0) {
			uint64_t now_us = jm_wall_us();
			for (uint32_t i = 0; i < count; i++) {
				record_apply(core, &recs[i], copies[i], last_lsn - count + 1 + i,
				             now_us);
				copies[i] = NULL;
			}
		}
	}
	for (uint32_t i = 0; copies && i < count; i++)
		free(copies[i]);
	if (count > 1) {
		free(copies);
		free(lens);
	}
	jm_buf_fini(&bodies);
	return rc;
}
