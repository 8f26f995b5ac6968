/* What a SUBMIT's idempotency keys answer before admission (see
 * idempotency.h for the keys themselves).
 *
 * A job whose key names a job of its queue still inside the queue's key
 * window is answered with that job's id and admits nothing; a job whose key
 * an earlier job of the same SUBMIT carries gets that job's id. A batch is
 * admitted whole, so its keys answer it whole or not at all: every key
 * names a job of one earlier batch (a retry: the reply is that batch), or
 * none does (a new batch); anything between is refused, as are two jobs of
 * one batch with the same key. Called with the core lock held. */
#ifndef JM_BROKER_CORE_KEYS_H
#define JM_BROKER_CORE_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "core_internal.h"

struct key_plan {
	/* What admission takes: the jobs no key answered (all of them when
	 * none carries a key, and then jobs points at the request's own). */
	struct proto_submit admit;
	uint32_t count;   /* the request's jobs */
	uint64_t *ids;    /* per request job: its id (key_plan_finish) */
	int32_t *same_as; /* per request job: an earlier one with its key, or -1 */
	bool *existing;   /* per request job: answered by an earlier job */
	uint64_t *existing_ids;
	uint32_t existing_count;
	uint64_t batch_id;            /* a batch every key answered: that batch's id */
	struct proto_job_spec *specs; /* admit.jobs when a copy was needed */
};

/* Fills plan for submit at wall time now_us: 0, or JM_EINVAL / JM_ESTATE
 * (a batch the keys answer in part) / JM_ENOMEM with err naming the job. */
int key_plan_make(struct core *core, const struct proto_submit *submit, uint64_t now_us,
                  struct key_plan *plan, struct jm_err *err);
/* Gives the admitted jobs their ids (new_ids: plan->admit.jobs_count, in
 * order) and the jobs that share a key their first's. */
void key_plan_finish(struct key_plan *plan, const uint64_t *new_ids);
void key_plan_fini(struct key_plan *plan);

#endif
