/* The broker's state machine, driven by records as the core and replay
 * drive it: ordering, leases, retries, dead-letter, replay tolerance. */
#include "jm_test.h"

#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "deadline.h"
#include "message.h"
#include "record.h"
#include "state.h"

#define NOW_US 1000000000000ull

static void config_defaults(struct state_config *c)
{
	memset(c, 0, sizeof *c);
	c->queue_defaults.max_attempts = 3;
	c->queue_defaults.timeout_ms = 1000;
	c->queue_defaults.backoff = (struct backoff_policy){100, 1000};
	queue_policy_keep_all(&c->queue_defaults, 100, c->queue_defaults.keep[0].age_ms);
	c->max_queues = 4;
	c->max_workers = 4;
	c->dead_after_ms = 5000;
	c->lease_grace_ms = 100;
}

static int setup(void **ctx)
{
	struct state *s = malloc(sizeof *s);
	struct state_config c;
	config_defaults(&c);
	assert_jm_ok(state_init(s, &c));
	*ctx = s;
	return 0;
}

static int teardown(void **ctx)
{
	state_fini(*ctx);
	free(*ctx);
	return 0;
}

static void submit_in_batch(struct state *s, uint64_t id, uint64_t batch_id, const char *queue,
                            int32_t priority, uint64_t run_at_us)
{
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_JOB};
	rec.u.job.job_id = id;
	rec.u.job.attrs.batch_id = batch_id;
	strcpy(rec.u.job.attrs.queue, queue);
	strcpy(rec.u.job.attrs.type, "t");
	rec.u.job.attrs.priority = priority;
	rec.u.job.attrs.max_attempts = 3;
	rec.u.job.attrs.timeout_ms = 1000;
	rec.u.job.state = run_at_us ? PROTO_STATE_DELAYED : PROTO_STATE_PENDING;
	rec.u.job.run_at_us = run_at_us;
	rec.u.job.attrs.created_us = NOW_US;
	struct jm_err err = {0};
	assert_jm_ok_err(state_apply(s, &rec, NOW_US, &err), &err);
}

static void submit(struct state *s, uint64_t id, const char *queue, int32_t priority,
                   uint64_t run_at_us)
{
	submit_in_batch(s, id, 0, queue, priority, run_at_us);
}

static int lease(struct state *s, uint64_t id, uint64_t lease_no, uint32_t attempt)
{
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_LEASE};
	rec.u.lease.job_id = id;
	rec.u.lease.lease = lease_no;
	rec.u.lease.attempt = attempt;
	strcpy(rec.u.lease.worker_id, "w1");
	rec.u.lease.at_us = NOW_US;
	struct jm_err err = {0};
	return state_apply(s, &rec, NOW_US, &err);
}

static int settle(struct state *s, uint64_t id, uint64_t lease_no, uint32_t outcome,
                  uint64_t run_at_us)
{
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_SETTLE};
	rec.u.settle.job_id = id;
	rec.u.settle.lease = lease_no;
	rec.u.settle.outcome = outcome;
	rec.u.settle.at_us = NOW_US;
	rec.u.settle.run_at_us = run_at_us;
	rec.u.settle.data = (struct proto_bytes){(const uint8_t *)"out", 3};
	struct jm_err err = {0};
	return state_apply(s, &rec, NOW_US, &err);
}

static uint64_t pop_ready(struct state *s, const char *queue)
{
	struct queue *q = queue_find(&s->queues, queue);
	struct job *job = q ? queue_ready_peek(q) : NULL;
	if (job == NULL)
		return 0;
	assert_jm_ok(lease(s, job->id, job->lease + 1, job->attempt + 1));
	return job->id;
}

static void test_higher_priority_runs_first_and_fifo_within_priority(void **ctx)
{
	struct state *s = *ctx;
	submit(s, 1, "q", 0, 0);
	submit(s, 2, "q", 5, 0);
	submit(s, 3, "q", 0, 0);
	submit(s, 4, "q", 5, 0);
	uint64_t expected[] = {2, 4, 1, 3};
	for (int i = 0; i < 4; i++)
		assert_int_equal(pop_ready(s, "q"), expected[i]);
	assert_int_equal(pop_ready(s, "q"), 0);
}

static void test_lease_makes_job_active_and_counts_it(void **ctx)
{
	struct state *s = *ctx;
	submit(s, 1, "q", 0, 0);
	assert_int_equal(pop_ready(s, "q"), 1);
	struct job *job = jobtable_find(&s->jobs, 1);
	assert_int_equal(job->state, PROTO_STATE_ACTIVE);
	assert_int_equal(job->attempt, 1);
	assert_int_equal(job->queue->active, 1);
	assert_int_equal(s->ready_jobs, 0);
	assert_non_null(worker_find(&s->workers, "w1"));
	assert_int_equal(worker_find(&s->workers, "w1")->held_count, 1);
}

static void test_settle_with_an_old_lease_is_refused(void **ctx)
{
	struct state *s = *ctx;
	submit(s, 1, "q", 0, 0);
	pop_ready(s, "q");
	assert_int_equal(settle(s, 1, 7, PROTO_OUTCOME_COMPLETED, 0), JM_ESTATE);
	assert_int_equal(jobtable_find(&s->jobs, 1)->state, PROTO_STATE_ACTIVE);
}

static void test_completed_job_keeps_its_result(void **ctx)
{
	struct state *s = *ctx;
	submit(s, 1, "q", 0, 0);
	pop_ready(s, "q");
	assert_jm_ok(settle(s, 1, 1, PROTO_OUTCOME_COMPLETED, 0));
	struct job *job = jobtable_find(&s->jobs, 1);
	assert_int_equal(job->state, PROTO_STATE_COMPLETED);
	assert_non_null(job->more);
	assert_int_equal(job->more->result_len, 3);
	assert_memory_equal(job->more->result, "out", 3);
	assert_int_equal(job->queue->completed, 1);
	assert_int_equal(job->queue->active, 0);
	assert_int_equal(worker_find(&s->workers, "w1")->held_count, 0);
}

static void test_retry_delays_the_job_until_its_run_at(void **ctx)
{
	struct state *s = *ctx;
	submit(s, 1, "q", 0, 0);
	pop_ready(s, "q");
	assert_jm_ok(settle(s, 1, 1, PROTO_OUTCOME_RETRY, NOW_US + 5000000));
	struct job *job = jobtable_find(&s->jobs, 1);
	assert_int_equal(job->state, PROTO_STATE_DELAYED);
	assert_string_equal(job_last_error(job), "out");
	assert_int_equal(job->timer.kind, DEADLINE_JOB_READY);
	/* run_at is wall time; its deadline is monotonic, 5 s from now. */
	assert_true(deadline_heap_peek(&s->deadlines)->at_us <= jm_mono_us() + 5000000);
	state_job_due(s, job);
	assert_int_equal(job->state, PROTO_STATE_PENDING);
	assert_int_equal(pop_ready(s, "q"), 1);
	assert_int_equal(job->attempt, 2);
}

static void test_released_lease_does_not_count_an_attempt(void **ctx)
{
	struct state *s = *ctx;
	submit(s, 1, "q", 0, 0);
	pop_ready(s, "q");
	assert_jm_ok(settle(s, 1, 1, PROTO_OUTCOME_RELEASED, 0));
	struct job *job = jobtable_find(&s->jobs, 1);
	assert_int_equal(job->state, PROTO_STATE_PENDING);
	assert_int_equal(job->attempt, 0);
}

static void test_dead_outcome_dead_letters_the_job(void **ctx)
{
	struct state *s = *ctx;
	submit(s, 1, "q", 0, 0);
	pop_ready(s, "q");
	assert_jm_ok(settle(s, 1, 1, PROTO_OUTCOME_DEAD, 0));
	struct job *job = jobtable_find(&s->jobs, 1);
	assert_int_equal(job->state, PROTO_STATE_FAILED);
	assert_int_equal(job->queue->failed, 1);
}

static void test_delayed_submit_waits_and_due_one_is_pending_at_once(void **ctx)
{
	struct state *s = *ctx;
	submit(s, 1, "q", 0, NOW_US + 1000000);
	submit(s, 2, "q", 0, NOW_US - 1);
	assert_int_equal(jobtable_find(&s->jobs, 1)->state, PROTO_STATE_DELAYED);
	assert_int_equal(jobtable_find(&s->jobs, 2)->state, PROTO_STATE_PENDING);
	assert_int_equal(queue_find(&s->queues, "q")->delayed, 1);
}

static void test_replay_skips_records_a_snapshot_already_holds(void **ctx)
{
	struct state *s = *ctx;
	submit(s, 1, "q", 0, 0);
	pop_ready(s, "q");
	assert_jm_ok(settle(s, 1, 1, PROTO_OUTCOME_COMPLETED, 0));
	s->replaying = true;
	/* An older lease and settle after the snapshot changed nothing. */
	assert_jm_ok(lease(s, 1, 1, 1));
	assert_jm_ok(settle(s, 1, 1, PROTO_OUTCOME_COMPLETED, 0));
	assert_int_equal(s->replay_skipped, 2);
	assert_int_equal(jobtable_find(&s->jobs, 1)->state, PROTO_STATE_COMPLETED);
}

static void test_job_record_over_an_existing_job_replaces_it(void **ctx)
{
	struct state *s = *ctx;
	submit(s, 1, "q", 0, 0);
	pop_ready(s, "q");
	struct job *job = jobtable_find(&s->jobs, 1);
	struct proto_record rec;
	state_job_snapshot(job, &rec);
	struct jm_err err = {0};
	assert_jm_ok_err(state_apply(s, &rec, NOW_US, &err), &err);
	assert_int_equal(s->jobs.count, 1);
	assert_int_equal(job->state, PROTO_STATE_ACTIVE);
	assert_int_equal(job->queue->active, 1);
	assert_int_equal(worker_find(&s->workers, "w1")->held_count, 1);
	assert_int_equal(s->next_job_id, 2);
}

static void test_batch_counts_follow_its_jobs(void **ctx)
{
	struct state *s = *ctx;
	submit_in_batch(s, 2, 1, "q", 0, 0);
	submit_in_batch(s, 3, 1, "q", 0, 0);
	submit_in_batch(s, 4, 1, "q", 0, 0);
	struct batch *b = batch_find(&s->batches, 1);
	assert_non_null(b);
	assert_int_equal(b->total, 3);
	assert_int_equal(b->pending, 3);
	assert_int_equal(s->next_job_id, 5);
	pop_ready(s, "q");
	pop_ready(s, "q");
	assert_int_equal(b->active, 2);
	assert_jm_ok(settle(s, 2, 1, PROTO_OUTCOME_COMPLETED, 0));
	assert_jm_ok(settle(s, 3, 1, PROTO_OUTCOME_DEAD, 0));
	assert_int_equal(b->completed, 1);
	assert_int_equal(b->failed, 1);
	assert_int_equal(b->errors_count, 1);
	assert_int_equal(batch_state(b), PROTO_BATCH_RUNNING);
	pop_ready(s, "q");
	assert_jm_ok(settle(s, 4, 1, PROTO_OUTCOME_COMPLETED, 0));
	assert_int_equal(batch_state(b), PROTO_BATCH_FAILED);
	assert_int_equal(b->finished_us, NOW_US);
}

static void test_dropped_jobs_still_count_in_their_batch(void **ctx)
{
	struct state *s = *ctx;
	submit_in_batch(s, 2, 1, "q", 0, 0);
	submit_in_batch(s, 3, 1, "q", 0, 0);
	for (uint64_t id = 2; id <= 3; id++) {
		pop_ready(s, "q");
		assert_jm_ok(settle(s, id, 1, PROTO_OUTCOME_COMPLETED, 0));
	}
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_DROP};
	rec.u.drop.job_id = 2;
	struct jm_err err = {0};
	assert_jm_ok_err(state_apply(s, &rec, NOW_US, &err), &err);
	struct batch *b = batch_find(&s->batches, 1);
	assert_int_equal(b->completed, 2);
	assert_int_equal(batch_state(b), PROTO_BATCH_COMPLETED);
	rec.u.drop.job_id = 3;
	assert_jm_ok_err(state_apply(s, &rec, NOW_US, &err), &err);
	assert_null(batch_find(&s->batches, 1));
}

static void test_queue_limit_is_enforced_while_every_queue_holds_jobs(void **ctx)
{
	struct state *s = *ctx;
	struct queue *q;
	const char *names[] = {"a", "b", "c", "d"};
	for (int i = 0; i < 4; i++)
		submit(s, (uint64_t)i + 1, names[i], 0, 0);
	assert_int_equal(queue_get(&s->queues, "e", &q), JM_ELIMIT);
	assert_null(queue_find(&s->queues, "e"));
}

static void test_an_empty_queue_is_reclaimed_for_a_new_one_at_the_limit(void **ctx)
{
	struct state *s = *ctx;
	struct queue *q;
	submit(s, 1, "a", 0, 0);
	submit(s, 2, "b", 0, 0);
	submit(s, 3, "c", 0, 0);
	assert_jm_ok(queue_get(&s->queues, "empty", &q));
	assert_jm_ok(queue_get(&s->queues, "e", &q)); /* reclaims "empty" */
	assert_null(queue_find(&s->queues, "empty"));
	assert_non_null(queue_find(&s->queues, "a"));
	/* A pinned empty queue (a request is admitting into it) stays. */
	q->pinned = true;
	assert_int_equal(queue_get(&s->queues, "f", &q), JM_ELIMIT);
	assert_non_null(queue_find(&s->queues, "e"));
}

/* live_bytes is the sum of each placed job's snapshot_bytes, and each is an
 * upper bound (never below, at most 110 bytes above) of what its snapshot
 * record takes framed in a snapshot file. */
static void check_live_bytes(struct state *s, const uint64_t *ids, int count)
{
	uint64_t sum = 0;
	struct jm_buf body;
	jm_buf_init(&body);
	for (int i = 0; i < count; i++) {
		struct job *job = jobtable_find(&s->jobs, ids[i]);
		if (job == NULL)
			continue;
		struct proto_record rec;
		state_job_snapshot(job, &rec);
		jm_buf_reset(&body);
		assert_jm_ok(proto_record_encode(&rec, &body));
		uint64_t framed = body.len + 8;
		if (state_job_placed_bytes(job) < framed ||
		    state_job_placed_bytes(job) > framed + 110)
			fail_msg("job %llu: bound %llu, encoded %llu", (unsigned long long)job->id,
			         (unsigned long long)state_job_placed_bytes(job),
			         (unsigned long long)framed);
		sum += state_job_placed_bytes(job);
	}
	jm_buf_fini(&body);
	assert_int_equal(s->live_bytes, sum);
}

static void test_live_bytes_bound_each_job_and_follow_it_to_the_drop(void **ctx)
{
	struct state *s = *ctx;
	static uint8_t payload[3000];
	memset(payload, 'p', sizeof payload);
	uint64_t ids[] = {1, 2, 3, 4};
	uint32_t sizes[] = {0, 10, 300, 3000};
	for (int i = 0; i < 4; i++) {
		struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_JOB};
		rec.u.job.job_id = ids[i];
		strcpy(rec.u.job.attrs.queue, "a-longer-queue-name");
		strcpy(rec.u.job.attrs.type, "t");
		rec.u.job.payload = (struct proto_bytes){payload, sizes[i]};
		rec.u.job.attrs.max_attempts = 3;
		rec.u.job.attrs.timeout_ms = 1000;
		rec.u.job.state = PROTO_STATE_PENDING;
		rec.u.job.attrs.created_us = rec.u.job.updated_us = NOW_US;
		struct jm_err err = {0};
		assert_jm_ok_err(state_apply(s, &rec, NOW_US, &err), &err);
	}
	check_live_bytes(s, ids, 4);
	uint64_t pending_bytes = s->live_bytes;
	/* A lease adds the worker id; a result or an error adds its bytes. */
	assert_int_equal(pop_ready(s, "a-longer-queue-name"), 1);
	assert_int_equal(pop_ready(s, "a-longer-queue-name"), 2);
	check_live_bytes(s, ids, 4);
	assert_true(s->live_bytes > pending_bytes);
	assert_jm_ok(settle(s, 1, 1, PROTO_OUTCOME_COMPLETED, 0));
	assert_jm_ok(settle(s, 2, 1, PROTO_OUTCOME_RETRY, NOW_US + 5000000));
	check_live_bytes(s, ids, 4);
	struct proto_record cancel = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_CANCEL};
	cancel.u.cancel.job_id = 2;
	struct jm_err err = {0};
	assert_jm_ok_err(state_apply(s, &cancel, NOW_US, &err), &err);
	check_live_bytes(s, ids, 4);
	/* Dropping a finished job takes its share out; the rest stay. */
	uint64_t before = s->live_bytes;
	uint64_t share = state_job_placed_bytes(jobtable_find(&s->jobs, 1));
	struct proto_record drop = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_DROP};
	drop.u.drop.job_id = 1;
	assert_jm_ok_err(state_apply(s, &drop, NOW_US, &err), &err);
	assert_int_equal(s->live_bytes, before - share);
	check_live_bytes(s, ids, 4);
	drop.u.drop.job_id = 2;
	assert_jm_ok_err(state_apply(s, &drop, NOW_US, &err), &err);
	/* 3 and 4 are still pending: finish and drop them too. */
	for (uint64_t id = 3; id <= 4; id++) {
		cancel.u.cancel.job_id = id;
		assert_jm_ok_err(state_apply(s, &cancel, NOW_US, &err), &err);
		drop.u.drop.job_id = id;
		assert_jm_ok_err(state_apply(s, &drop, NOW_US, &err), &err);
	}
	assert_int_equal(s->live_bytes, 0);
}

static void test_backoff_doubles_and_stays_within_cap(void **ctx)
{
	struct backoff_policy p = {100, 1000};
	assert_int_equal(backoff_delay_ms(&p, 1, 0), 50);
	assert_int_equal(backoff_delay_ms(&p, 1, 50), 100);
	assert_int_equal(backoff_delay_ms(&p, 2, 0), 100);
	assert_int_equal(backoff_delay_ms(&p, 3, 0), 200);
	for (uint64_t r = 0; r < 1000; r++) {
		uint64_t d = backoff_delay_ms(&p, 30, r * 7919);
		assert_true(d >= 500 && d <= 1000);
	}
}

static void test_deadline_heap_pops_in_time_order(void **ctx)
{
	struct deadline_heap heap;
	deadline_heap_init(&heap);
	struct deadline d[64];
	for (int i = 0; i < 64; i++) {
		deadline_init(&d[i], DEADLINE_WAIT);
		assert_jm_ok(deadline_heap_set(&heap, &d[i], (uint64_t)((i * 37) % 64)));
	}
	deadline_heap_remove(&heap, &d[5]);
	assert_jm_ok(deadline_heap_set(&heap, &d[6], 1000));
	uint64_t last = 0;
	int popped = 0;
	struct deadline *top;
	while ((top = deadline_heap_peek(&heap)) != NULL) {
		assert_true(top->at_us >= last);
		last = top->at_us;
		deadline_heap_remove(&heap, top);
		popped++;
	}
	assert_int_equal(popped, 63);
	assert_int_equal(last, 1000);
	deadline_heap_fini(&heap);
}

static void cancel_and_drop(struct state *s, uint64_t id)
{
	struct jm_err err = {0};
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_CANCEL};
	rec.u.cancel.job_id = id;
	assert_jm_ok_err(state_apply(s, &rec, NOW_US, &err), &err);
	rec = (struct proto_record){.version = PROTO_RECORD_VERSION, .type = PROTO_REC_DROP};
	rec.u.drop.job_id = id;
	assert_jm_ok_err(state_apply(s, &rec, NOW_US, &err), &err);
}

static void test_jobs_of_one_type_share_its_name_until_the_last_is_dropped(void **ctx)
{
	struct state *s = *ctx;
	submit(s, 1, "q", 0, 0);
	submit(s, 2, "other", 0, 0);
	const char *type = jobtable_find(&s->jobs, 1)->attrs.type;
	assert_string_equal(type, "t");
	assert_ptr_equal(jobtable_find(&s->jobs, 2)->attrs.type, type);
	assert_int_equal(s->types.types.count, 1);
	cancel_and_drop(s, 1);
	assert_int_equal(s->types.types.count, 1);
	assert_string_equal(jobtable_find(&s->jobs, 2)->attrs.type, "t");
	cancel_and_drop(s, 2);
	assert_int_equal(s->types.types.count, 0);
	/* A new job of that type interns it again. */
	submit(s, 3, "q", 0, 0);
	assert_string_equal(jobtable_find(&s->jobs, 3)->attrs.type, "t");
	assert_int_equal(s->types.types.count, 1);
}

static void test_a_queued_job_has_no_rarely_used_part_until_it_is_leased(void **ctx)
{
	struct state *s = *ctx;
	submit_in_batch(s, 1, 9, "q", -5, 0);
	struct job *job = jobtable_find(&s->jobs, 1);
	assert_null(job->more);
	assert_null(job_holder(job));
	assert_null(job_last_error(job));
	assert_false(job_has_waiters(job));
	/* The wire form is whole again: queue, type and batch id included. */
	struct proto_job_attrs attrs;
	state_job_attrs(job, &attrs);
	assert_string_equal(attrs.queue, "q");
	assert_string_equal(attrs.type, "t");
	assert_int_equal(attrs.batch_id, 9);
	assert_int_equal(attrs.priority, -5);
	assert_int_equal(attrs.max_attempts, 3);
	assert_int_equal(attrs.timeout_ms, 1000);
	assert_int_equal(attrs.created_us, NOW_US);
	assert_int_equal(pop_ready(s, "q"), 1);
	assert_non_null(job->more);
	assert_string_equal(job_holder(job)->id, "w1");
	/* Released, it keeps the part but no holder. */
	assert_jm_ok(settle(s, 1, 1, PROTO_OUTCOME_RELEASED, 0));
	assert_null(job_holder(job));
	assert_int_equal(job->more->lease_token, 0);
}

static void test_a_job_moves_between_ready_heap_and_timer_without_losing_its_place(void **ctx)
{
	/* The ready-heap slot and the timer share memory (job.h): a job
	 * going pending -> active -> delayed -> pending must leave each
	 * structure as the next one expects. */
	struct state *s = *ctx;
	for (uint64_t id = 1; id <= 5; id++)
		submit(s, id, "q", 0, 0);
	struct job *job = jobtable_find(&s->jobs, 1);
	assert_int_equal(pop_ready(s, "q"), 1);
	assert_true(deadline_is_set(&job->timer));
	assert_jm_ok(settle(s, 1, 1, PROTO_OUTCOME_RETRY, NOW_US + 60000000));
	assert_int_equal(job->timer.kind, DEADLINE_JOB_READY);
	assert_true(deadline_is_set(&job->timer));
	state_job_due(s, job);
	assert_int_equal(job->state, PROTO_STATE_PENDING);
	assert_false(deadline_heap_peek(&s->deadlines) == &job->timer);
	/* It became ready last: it comes out after 2..5. */
	for (uint64_t id = 2; id <= 5; id++)
		assert_int_equal(pop_ready(s, "q"), id);
	assert_int_equal(pop_ready(s, "q"), 1);
	assert_int_equal(queue_ready_count(queue_find(&s->queues, "q")), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_higher_priority_runs_first_and_fifo_within_priority, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lease_makes_job_active_and_counts_it, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_settle_with_an_old_lease_is_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_completed_job_keeps_its_result, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retry_delays_the_job_until_its_run_at, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_released_lease_does_not_count_an_attempt, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_dead_outcome_dead_letters_the_job, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_delayed_submit_waits_and_due_one_is_pending_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replay_skips_records_a_snapshot_already_holds,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_job_record_over_an_existing_job_replaces_it, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_queue_limit_is_enforced_while_every_queue_holds_jobs, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_an_empty_queue_is_reclaimed_for_a_new_one_at_the_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_counts_follow_its_jobs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dropped_jobs_still_count_in_their_batch, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_live_bytes_bound_each_job_and_follow_it_to_the_drop, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_jobs_of_one_type_share_its_name_until_the_last_is_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_queued_job_has_no_rarely_used_part_until_it_is_leased, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_job_moves_between_ready_heap_and_timer_without_losing_its_place, setup,
	        teardown),
	    cmocka_unit_test(test_backoff_doubles_and_stays_within_cap),
	    cmocka_unit_test(test_deadline_heap_pops_in_time_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
