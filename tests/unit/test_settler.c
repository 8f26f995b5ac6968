/* The settler (worker/settler.c): outcomes put while a batch is being sent
 * make the next batch, in order; a put waits while `limit` outcomes are
 * unanswered; a batch keeps to its byte cap; closing sends everything that
 * was queued; it is idle only with nothing queued or being sent. The send callback here records
 * what it got and can be held at a gate, standing in for a broker that is slow to sync. */
#include "jm_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "../../worker/settler.h"
#include "message.h"

#define BATCHES_MAX 64
#define OUTCOMES_MAX 256

struct recorder {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool gate_open;       /* the callback returns only once this is set */
	size_t batches_count; /* callbacks entered */
	size_t batch_sizes[BATCHES_MAX];
	size_t batch_bytes[BATCHES_MAX];
	uint64_t job_ids[OUTCOMES_MAX]; /* in the order the callback saw them */
	uint32_t outcome[OUTCOMES_MAX];
	size_t outcomes_count;
	struct settler settler;
};

static void record_cb(void *arg, struct settle_outcome *const *batch, size_t count)
{
	struct recorder *r = arg;
	pthread_mutex_lock(&r->lock);
	size_t bytes = 0;
	for (size_t i = 0; i < count; i++) {
		if (r->outcomes_count < OUTCOMES_MAX) {
			r->job_ids[r->outcomes_count] = batch[i]->job_id;
			r->outcome[r->outcomes_count] = batch[i]->outcome;
			r->outcomes_count++;
		}
		bytes += batch[i]->data_len;
	}
	if (r->batches_count < BATCHES_MAX) {
		r->batch_sizes[r->batches_count] = count;
		r->batch_bytes[r->batches_count] = bytes;
	}
	r->batches_count++;
	pthread_cond_broadcast(&r->cond);
	while (!r->gate_open)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

static int recorder_setup(struct recorder *r, size_t limit)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	if (settler_init(&r->settler, limit, record_cb, r) != 0)
		return -1;
	return settler_start(&r->settler) == 0 ? 0 : -1;
}

static int setup_limit_8(void **state)
{
	struct recorder *r = calloc(1, sizeof *r);
	if (r == NULL || recorder_setup(r, 8) != 0)
		return -1;
	*state = r;
	return 0;
}

static int setup_limit_2(void **state)
{
	struct recorder *r = calloc(1, sizeof *r);
	if (r == NULL || recorder_setup(r, 2) != 0)
		return -1;
	*state = r;
	return 0;
}

static void open_gate(struct recorder *r)
{
	pthread_mutex_lock(&r->lock);
	r->gate_open = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static int teardown(void **state)
{
	struct recorder *r = *state;
	open_gate(r);
	settler_close(&r->settler);
	settler_fini(&r->settler);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return 0;
}

/* Waits (to a 5 s deadline) until the callback was entered `batches` times. */
static void wait_for_batches(struct recorder *r, size_t batches)
{
	struct timespec until = jm_timespec_after_ms(CLOCK_REALTIME, 5000);
	pthread_mutex_lock(&r->lock);
	while (r->batches_count < batches) {
		if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT)
			break;
	}
	size_t seen = r->batches_count;
	pthread_mutex_unlock(&r->lock);
	if (seen < batches)
		fail_msg("waited 5 s for %zu batch(es) to reach the callback; saw %zu", batches,
		         seen);
}

static void put_ack(struct recorder *r, uint64_t job_id, size_t result_len)
{
	static const uint8_t zeros[64];
	const void *data = NULL;
	uint8_t *big = NULL;
	if (result_len > sizeof zeros) {
		big = calloc(1, result_len);
		assert_non_null(big);
		data = big;
	} else if (result_len > 0) {
		data = zeros;
	}
	struct settle_outcome *o = settle_outcome_new(PROTO_SETTLE_COMPLETED, job_id, 1, UINT64_MAX,
	                                              NULL, data, result_len);
	free(big);
	assert_non_null(o);
	settler_put(&r->settler, o);
}

static void put_fail(struct recorder *r, uint64_t job_id, const char *error)
{
	struct settle_outcome *o = settle_outcome_new(PROTO_SETTLE_FAILED, job_id, 1, UINT64_MAX,
	                                              NULL, error, strlen(error));
	assert_non_null(o);
	settler_put(&r->settler, o);
}

static void test_outcome_keeps_a_terminated_copy_of_its_error(void **state)
{
	(void)state;
	char error[] = "disk full";
	struct settle_outcome *o =
	    settle_outcome_new(PROTO_SETTLE_FAILED, 42, 7, 1000, NULL, error, strlen(error));
	assert_non_null(o);
	error[0] = 'X';
	assert_int_equal(o->job_id, 42);
	assert_int_equal(o->lease, 7);
	assert_int_equal(o->data_len, strlen("disk full"));
	assert_string_equal((const char *)o->data, "disk full");
	assert_int_equal(o->outcome, PROTO_SETTLE_FAILED);
	settle_outcome_free(o);
	settle_outcome_free(NULL);
}

static void test_outcomes_put_during_a_send_make_the_next_batch_in_order(void **state)
{
	struct recorder *r = *state;
	put_ack(r, 1, 0);
	wait_for_batches(r, 1); /* job 1 is being "sent"; the gate holds it */
	put_ack(r, 2, 10);
	put_fail(r, 3, "boom");
	put_ack(r, 4, 0);
	open_gate(r);
	wait_for_batches(r, 2);
	settler_close(&r->settler);

	assert_int_equal(r->batches_count, 2);
	assert_int_equal(r->batch_sizes[0], 1);
	assert_int_equal(r->batch_sizes[1], 3);
	assert_int_equal(r->outcomes_count, 4);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(r->job_ids[i], i + 1);
	assert_int_equal(r->outcome[2], PROTO_SETTLE_FAILED);
}

static void test_a_list_put_during_a_send_makes_the_next_batch_in_order(void **state)
{
	struct recorder *r = *state; /* limit 8 */
	put_ack(r, 1, 0);
	wait_for_batches(r, 1);
	struct settle_outcome *first = NULL, **link = &first;
	for (uint64_t job_id = 2; job_id <= 11; job_id++) { /* more than the limit */
		*link = settle_outcome_new(PROTO_SETTLE_COMPLETED, job_id, 1, UINT64_MAX, NULL,
		                           NULL, 0);
		assert_non_null(*link);
		link = &(*link)->next;
	}
	settler_put_list(&r->settler, first, 10);
	settler_put_list(&r->settler, NULL, 0); /* nothing */
	open_gate(r);
	settler_close(&r->settler);

	assert_int_equal(r->batches_count, 2);
	assert_int_equal(r->batch_sizes[1], 10);
	assert_int_equal(r->outcomes_count, 11);
	for (size_t i = 0; i < 11; i++)
		assert_int_equal(r->job_ids[i], i + 1);
}

struct putter {
	struct recorder *recorder;
	uint64_t job_id;
	bool returned;
};

static void *putter_main(void *arg)
{
	struct putter *p = arg;
	put_ack(p->recorder, p->job_id, 0);
	pthread_mutex_lock(&p->recorder->lock);
	p->returned = true;
	pthread_cond_broadcast(&p->recorder->cond);
	pthread_mutex_unlock(&p->recorder->lock);
	return NULL;
}

static void test_put_waits_while_limit_outcomes_are_unanswered(void **state)
{
	struct recorder *r = *state; /* limit 2 */
	put_ack(r, 1, 0);
	wait_for_batches(r, 1); /* one in flight */
	put_ack(r, 2, 0);       /* one queued: the limit is reached */

	struct putter p = {.recorder = r, .job_id = 3};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, putter_main, &p), 0);
	/* A thread must be seen waiting: give it time to get past the put. */
	usleep(200 * 1000);
	pthread_mutex_lock(&r->lock);
	bool returned_early = p.returned;
	pthread_mutex_unlock(&r->lock);
	assert_false(returned_early);

	open_gate(r);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_true(p.returned);
	settler_close(&r->settler);
	assert_int_equal(r->outcomes_count, 3);
	assert_int_equal(r->job_ids[2], 3);
}

static void test_batch_keeps_to_its_byte_cap(void **state)
{
	struct recorder *r = *state;                        /* limit 8 */
	size_t result_len = SETTLE_BATCH_BYTES_MAX / 3 + 1; /* three do not fit */
	put_ack(r, 1, 0);
	wait_for_batches(r, 1);
	for (uint64_t job_id = 2; job_id <= 5; job_id++)
		put_ack(r, job_id, result_len);
	open_gate(r);
	settler_close(&r->settler);

	assert_int_equal(r->outcomes_count, 5);
	assert_int_equal(r->batches_count, 3);
	assert_int_equal(r->batch_sizes[1], 2);
	assert_int_equal(r->batch_sizes[2], 2);
	for (size_t i = 1; i < r->batches_count; i++)
		assert_true(r->batch_bytes[i] <= SETTLE_BATCH_BYTES_MAX);
}

static void test_close_sends_everything_queued(void **state)
{
	struct recorder *r = *state; /* limit 8 */
	put_ack(r, 1, 0);
	wait_for_batches(r, 1);
	for (uint64_t job_id = 2; job_id <= 8; job_id++)
		put_fail(r, job_id, "stopping");
	open_gate(r);
	settler_close(&r->settler);

	assert_int_equal(r->outcomes_count, 8);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(r->job_ids[i], i + 1);
}

static void test_close_of_an_idle_settler_returns_at_once(void **state)
{
	struct recorder *r = *state;
	settler_close(&r->settler);
	assert_int_equal(r->batches_count, 0);
	settler_close(&r->settler); /* a second close is harmless */
}

/* A slot settles its outcome itself only when the settler is idle
 * (worker.c, slot_settles_itself): idle means nothing queued and no batch
 * being sent, and it is idle again once the batch was answered. */
static void test_settler_is_idle_only_with_nothing_queued_or_being_sent(void **state)
{
	struct recorder *r = *state; /* limit 8 */
	assert_true(settler_is_idle(&r->settler));
	put_ack(r, 1, 0);
	wait_for_batches(r, 1); /* job 1 is being "sent"; the gate holds it */
	assert_false(settler_is_idle(&r->settler));
	put_ack(r, 2, 0); /* queued behind it */
	assert_false(settler_is_idle(&r->settler));
	open_gate(r);
	wait_for_batches(r, 2);
	uint64_t deadline_us = jm_mono_us() + 5000000u;
	bool idle = false;
	while (!(idle = settler_is_idle(&r->settler)) && jm_mono_us() < deadline_us)
		usleep(1000);
	assert_true(idle);
	assert_int_equal(r->outcomes_count, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_outcome_keeps_a_terminated_copy_of_its_error),
	    cmocka_unit_test_setup_teardown(
	        test_outcomes_put_during_a_send_make_the_next_batch_in_order, setup_limit_8,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_list_put_during_a_send_makes_the_next_batch_in_order, setup_limit_8,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_put_waits_while_limit_outcomes_are_unanswered,
	                                    setup_limit_2, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_keeps_to_its_byte_cap, setup_limit_8,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_close_sends_everything_queued, setup_limit_8,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_close_of_an_idle_settler_returns_at_once,
	                                    setup_limit_8, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_settler_is_idle_only_with_nothing_queued_or_being_sent, setup_limit_8,
	        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
