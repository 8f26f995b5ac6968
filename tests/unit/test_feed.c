/* The worker's feed of prefetched deliveries (worker/feed.c): how many
 * jobs a fetch asks for (idle slots plus a buffer sized by measured round
 * trips and run times, capped by prefetch), deliveries taken in order, one
 * that waited past its budget marked overdue (and the buffer held back),
 * and a close that returns what still waited. Single-threaded: items are
 * put before they are taken, so feed_take never blocks here. */
#include "jm_test.h"

#include "clock.h"
#include "../../worker/feed.h"

/* Deliveries of the batches a test makes, handed out in turn; each test
 * uses far fewer than there are. */
static struct proto_delivery deliveries[256];
static uint32_t deliveries_used;

/* A JOBS reply of count deliveries, ids first_id.., run timeout timeout_ms;
 * the deliveries live in this file, so finishing the reply frees nothing. */
static struct feed_batch *batch_of(uint32_t count, uint64_t first_id, uint64_t timeout_ms)
{
	struct rpc_reply reply;
	memset(&reply, 0, sizeof reply);
	reply.msg.type = PROTO_JOBS;
	reply.msg.u.jobs.jobs_count = count;
	assert_true(deliveries_used + count <= 256);
	reply.msg.u.jobs.jobs = &deliveries[deliveries_used];
	deliveries_used += count;
	for (uint32_t i = 0; i < count; i++) {
		reply.msg.u.jobs.jobs[i].job_id = first_id + i;
		reply.msg.u.jobs.jobs[i].attrs.timeout_ms = timeout_ms;
	}
	struct feed_batch *batch = feed_batch_new(&reply);
	assert_non_null(batch);
	return batch;
}

static void test_nothing_is_buffered_before_jobs_were_measured(void **state)
{
	(void)state;
	struct feed f;
	feed_init(&f, 3, 100);
	pthread_mutex_lock(&f.lock);
	f.idle_slots = 3; /* as if every slot waited in feed_take */
	pthread_mutex_unlock(&f.lock);
	assert_int_equal(feed_wait_want(&f), 3); /* the idle slots, no buffer */
	feed_note_fetch(&f, 1000);
	assert_int_equal(feed_wait_want(&f), 3); /* no job has run yet */
	pthread_mutex_lock(&f.lock);
	f.idle_slots = 0;
	pthread_mutex_unlock(&f.lock);
	feed_fini(&f);
}

static void test_no_prefetch_asks_only_for_idle_slots(void **state)
{
	(void)state;
	struct feed f;
	feed_init(&f, 2, 0);
	assert_jm_ok(feed_put(&f, batch_of(1, 10, 0)));
	struct feed_item *item = feed_take(&f, false, 0);
	assert_non_null(item);
	assert_int_equal(item->delivery->job_id, 10);
	/* The slot runs it; nothing idle, no buffer: the fetch thread would
	 * wait, so only the count is looked at. */
	pthread_mutex_lock(&f.lock);
	assert_int_equal(f.idle_slots, 0);
	pthread_mutex_unlock(&f.lock);
	feed_item_done(&f, item);
	feed_fini(&f);
}

static void test_window_covers_two_round_trips_of_work_up_to_the_cap(void **state)
{
	(void)state;
	struct feed f;
	feed_init(&f, 2, 50);
	feed_note_fetch(&f, 1000); /* a fetch takes 1 ms */
	assert_jm_ok(feed_put(&f, batch_of(2, 20, 0)));
	struct feed_item *a = feed_take(&f, true, 100); /* a job takes 100 us */
	struct feed_item *b = feed_take(&f, true, 100);
	assert_int_equal(a->delivery->job_id, 20);
	assert_int_equal(b->delivery->job_id, 21);
	/* 2 slots x 2 round trips of 1 ms / 100 us = 40 buffered. */
	assert_int_equal(feed_wait_want(&f), 40);
	feed_item_done(&f, a);
	feed_item_done(&f, b);
	/* Jobs of 10 us would want 400: the cap says 50. */
	for (uint64_t id = 100; id < 164; id++) {
		assert_jm_ok(feed_put(&f, batch_of(1, id, 0)));
		feed_item_done(&f, feed_take(&f, true, 10));
	}
	assert_int_equal(feed_wait_want(&f), 50);
	feed_fini(&f);
}

static void test_long_jobs_leave_the_buffer_empty(void **state)
{
	(void)state;
	struct feed f;
	feed_init(&f, 4, 256);
	feed_note_fetch(&f, 500);
	for (uint64_t id = 100; id < 164; id++) {
		assert_jm_ok(feed_put(&f, batch_of(1, id, 0)));
		feed_item_done(&f, feed_take(&f, true, 2000000)); /* 2 s per job */
	}
	pthread_mutex_lock(&f.lock);
	f.idle_slots = 1; /* as if one slot waited in feed_take */
	pthread_mutex_unlock(&f.lock);
	assert_int_equal(feed_wait_want(&f), 1);
	pthread_mutex_lock(&f.lock);
	f.idle_slots = 0;
	pthread_mutex_unlock(&f.lock);
	feed_fini(&f);
}

static void test_delivery_that_waited_past_its_budget_is_overdue(void **state)
{
	(void)state;
	struct feed f;
	feed_init(&f, 1, 4);
	/* A run timeout of 20 ms allows 2 ms in the buffer. */
	assert_int_equal(feed_wait_budget_ms(20), 2);
	assert_int_equal(feed_wait_budget_ms(0), 1000);
	assert_int_equal(feed_wait_budget_ms(3600000), 1000);
	/* Measured: quick jobs, so the window is the cap of 4. */
	feed_note_fetch(&f, 1000);
	assert_jm_ok(feed_put(&f, batch_of(1, 29, 0)));
	feed_item_done(&f, feed_take(&f, true, 10));
	assert_int_equal(feed_wait_want(&f), 4);

	assert_jm_ok(feed_put(&f, batch_of(1, 30, 20)));
	uint64_t until = jm_mono_us() + 5000;
	for (int i = 0; i < 100000000 && jm_mono_us() < until; i++)
		; /* bounded: the clock passes 5 ms long before the count runs out */
	assert_true(jm_mono_us() >= until);
	struct feed_item *item = feed_take(&f, false, 0);
	assert_int_equal(item->delivery->job_id, 30);
	assert_true(item->overdue);
	feed_item_done(&f, item);
	/* Held back: only idle slots are asked for, no buffer. */
	pthread_mutex_lock(&f.lock);
	f.idle_slots = 1;
	pthread_mutex_unlock(&f.lock);
	assert_int_equal(feed_wait_want(&f), 1);
	pthread_mutex_lock(&f.lock);
	f.idle_slots = 0;
	pthread_mutex_unlock(&f.lock);
	/* A slot that finishes a job lifts the hold-back. */
	assert_jm_ok(feed_put(&f, batch_of(1, 60, 0)));
	item = feed_take(&f, true, 10);
	assert_false(item->overdue);
	feed_item_done(&f, item);
	assert_int_equal(feed_wait_want(&f), 4);
	feed_fini(&f);
}

static void test_close_returns_what_waited_and_refuses_more(void **state)
{
	(void)state;
	struct feed f;
	feed_init(&f, 1, 4);
	assert_jm_ok(feed_put(&f, batch_of(3, 40, 0)));
	struct feed_item *taken = feed_take(&f, false, 0);
	struct feed_item *left = feed_close(&f);
	int left_count = 0;
	for (struct feed_item *it = left; it != NULL; it = it->next)
		left_count++;
	assert_int_equal(left_count, 2);
	assert_int_equal(left->delivery->job_id, 41);
	assert_null(feed_take(&f, false, 0));
	assert_int_equal(feed_wait_want(&f), 0);
	struct feed_batch *late = batch_of(1, 50, 0);
	assert_int_equal(feed_put(&f, late), JM_ECLOSED);
	feed_batch_free(late);
	while (left != NULL) {
		struct feed_item *next = left->next;
		feed_item_done(&f, left);
		left = next;
	}
	feed_item_done(&f, taken); /* the last of its batch frees it */
	feed_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nothing_is_buffered_before_jobs_were_measured),
	    cmocka_unit_test(test_no_prefetch_asks_only_for_idle_slots),
	    cmocka_unit_test(test_window_covers_two_round_trips_of_work_up_to_the_cap),
	    cmocka_unit_test(test_long_jobs_leave_the_buffer_empty),
	    cmocka_unit_test(test_delivery_that_waited_past_its_budget_is_overdue),
	    cmocka_unit_test(test_close_returns_what_waited_and_refuses_more),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
