/* The progress board (worker/progress.c): a report never waits, values
 * reported faster than the interval coalesce to the latest, the value left
 * unsent when a handler returns is handed back for sending before its ACK,
 * and a stale lease stops every further send. Time is passed in, so nothing
 * here sleeps (except where a thread must be seen waiting). */
#include "jm_test.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "../../worker/progress.h"

#define T0 100000u /* an arbitrary monotonic "now", in ms */

struct board_fixture {
	struct progress_board board;
	struct progress_entry entry;
	struct progress_entry other;
};

static int board_setup(void **state)
{
	struct board_fixture *f = calloc(1, sizeof *f);
	if (f == NULL)
		return -1;
	progress_board_init(&f->board);
	progress_entry_init(&f->entry, 7, 3);
	progress_entry_init(&f->other, 8, 1);
	*state = f;
	return 0;
}

static int board_teardown(void **state)
{
	struct board_fixture *f = *state;
	progress_board_fini(&f->board);
	free(f);
	return 0;
}

static void report(struct board_fixture *f, struct progress_entry *e, uint64_t done, uint64_t total,
                   const char *message)
{
	assert_jm_ok(
	    progress_report(&f->board, e, done, total, message, message ? strlen(message) : 0));
}

static void test_progress_first_report_is_due_at_once(void **state)
{
	struct board_fixture *f = *state;
	report(f, &f->entry, 1, 4, "step-one");
	struct progress_value v;
	struct progress_entry *taken = NULL;
	uint64_t wait_ms = 0;
	assert_true(progress_take(&f->board, T0, &v, &taken, &wait_ms));
	assert_ptr_equal(taken, &f->entry);
	assert_int_equal(v.job_id, 7);
	assert_int_equal(v.lease, 3);
	assert_int_equal(v.done, 1);
	assert_int_equal(v.total, 4);
	assert_int_equal(v.message_len, 8);
	assert_string_equal(v.message, "step-one");
	assert_false(progress_sent(&f->board, taken, PROGRESS_SENT, T0));
	/* Sent: nothing is waiting any more. */
	assert_false(progress_take(&f->board, T0 + 1000, &v, &taken, &wait_ms));
	assert_int_equal(wait_ms, UINT64_MAX);
	assert_false(progress_finish(&f->board, &f->entry, &v));
}

static void test_progress_reports_within_the_interval_coalesce_to_the_latest(void **state)
{
	struct board_fixture *f = *state;
	struct progress_value v;
	struct progress_entry *taken = NULL;
	uint64_t wait_ms = 0;
	report(f, &f->entry, 0, 100, "start");
	assert_true(progress_take(&f->board, T0, &v, &taken, &wait_ms));
	progress_sent(&f->board, taken, PROGRESS_SENT, T0 + 1);
	for (uint64_t i = 1; i <= 50; i++)
		report(f, &f->entry, i, 100, i == 50 ? "fifty" : "going");
	/* Not before the interval since the last take ran out... */
	assert_false(progress_take(&f->board, T0 + 40, &v, &taken, &wait_ms));
	assert_int_equal(wait_ms, PROGRESS_INTERVAL_MS - 40);
	/* ...then once, with the latest value only. */
	assert_true(progress_take(&f->board, T0 + PROGRESS_INTERVAL_MS, &v, &taken, &wait_ms));
	assert_int_equal(v.done, 50);
	assert_string_equal(v.message, "fifty");
	progress_sent(&f->board, taken, PROGRESS_SENT, T0 + PROGRESS_INTERVAL_MS);
	assert_false(progress_take(&f->board, T0 + 10000, &v, &taken, &wait_ms));
	assert_false(progress_finish(&f->board, &f->entry, &v));
}

static void test_progress_refuses_a_bad_range_and_stores_nothing(void **state)
{
	struct board_fixture *f = *state;
	assert_jm_code(progress_report(&f->board, &f->entry, 0, 0, NULL, 0), JM_EINVAL);
	assert_jm_code(progress_report(&f->board, &f->entry, 5, 4, "x", 1), JM_EINVAL);
	struct progress_value v;
	struct progress_entry *taken = NULL;
	uint64_t wait_ms = 0;
	assert_false(progress_take(&f->board, T0, &v, &taken, &wait_ms));
	assert_false(progress_finish(&f->board, &f->entry, &v));
}

static void test_progress_finish_hands_back_the_unsent_latest_value(void **state)
{
	struct board_fixture *f = *state;
	struct progress_value v;
	struct progress_entry *taken = NULL;
	uint64_t wait_ms = 0;
	report(f, &f->entry, 1, 4, "step-one");
	assert_true(progress_take(&f->board, T0, &v, &taken, &wait_ms));
	progress_sent(&f->board, taken, PROGRESS_SENT, T0);
	report(f, &f->entry, 3, 4, "step-three");
	report(f, &f->entry, 4, 4, "step-four");
	memset(&v, 0, sizeof v);
	assert_true(progress_finish(&f->board, &f->entry, &v));
	assert_int_equal(v.job_id, 7);
	assert_int_equal(v.lease, 3);
	assert_int_equal(v.done, 4);
	assert_string_equal(v.message, "step-four");
	/* Off the board: the sender never sees it again. */
	assert_false(progress_take(&f->board, T0 + 10000, &v, &taken, &wait_ms));
}

static void test_progress_due_values_go_earliest_first_across_jobs(void **state)
{
	struct board_fixture *f = *state;
	struct progress_value v;
	struct progress_entry *taken = NULL;
	uint64_t wait_ms = 0;
	report(f, &f->entry, 1, 2, NULL);
	assert_true(progress_take(&f->board, T0, &v, &taken, &wait_ms));
	progress_sent(&f->board, taken, PROGRESS_SENT, T0);
	report(f, &f->entry, 2, 2, NULL); /* due at T0 + interval */
	report(f, &f->other, 1, 9, NULL); /* due at once */
	assert_true(progress_take(&f->board, T0 + 1, &v, &taken, &wait_ms));
	assert_ptr_equal(taken, &f->other);
	progress_sent(&f->board, taken, PROGRESS_SENT, T0 + 1);
	assert_true(progress_take(&f->board, T0 + PROGRESS_INTERVAL_MS, &v, &taken, &wait_ms));
	assert_ptr_equal(taken, &f->entry);
	assert_int_equal(v.done, 2);
	progress_sent(&f->board, taken, PROGRESS_SENT, T0 + PROGRESS_INTERVAL_MS);
	assert_false(progress_finish(&f->board, &f->entry, &v));
	assert_false(progress_finish(&f->board, &f->other, &v));
}

static void test_progress_failed_send_is_retried_with_the_latest_value(void **state)
{
	struct board_fixture *f = *state;
	struct progress_value v;
	struct progress_entry *taken = NULL;
	uint64_t wait_ms = 0;
	report(f, &f->entry, 1, 4, "one");
	assert_true(progress_take(&f->board, T0, &v, &taken, &wait_ms));
	report(f, &f->entry, 2, 4, "two"); /* arrives during the send */
	assert_false(progress_sent(&f->board, taken, PROGRESS_RETRY, T0 + 5));
	assert_false(progress_take(&f->board, T0 + 10, &v, &taken, &wait_ms));
	assert_int_equal(wait_ms, PROGRESS_RETRY_MS - 5);
	assert_true(progress_take(&f->board, T0 + 5 + PROGRESS_RETRY_MS, &v, &taken, &wait_ms));
	assert_int_equal(v.done, 2);
	assert_string_equal(v.message, "two");
	progress_sent(&f->board, taken, PROGRESS_SENT, T0 + 5 + PROGRESS_RETRY_MS);
	assert_false(progress_finish(&f->board, &f->entry, &v));
}

static void test_progress_stale_lease_stops_every_further_report(void **state)
{
	struct board_fixture *f = *state;
	struct progress_value v;
	struct progress_entry *taken = NULL;
	uint64_t wait_ms = 0;
	report(f, &f->entry, 1, 4, NULL);
	assert_true(progress_take(&f->board, T0, &v, &taken, &wait_ms));
	report(f, &f->entry, 2, 4, NULL);
	/* The first refusal is to be logged, and only the first. */
	assert_true(progress_sent(&f->board, taken, PROGRESS_STALE, T0));
	assert_true(progress_is_stale(&f->board, &f->entry));
	assert_jm_code(progress_report(&f->board, &f->entry, 3, 4, NULL, 0), JM_ESTALE);
	assert_false(progress_take(&f->board, T0 + 10000, &v, &taken, &wait_ms));
	/* The value reported before the refusal is not sent before the ACK. */
	assert_false(progress_finish(&f->board, &f->entry, &v));
}

static void test_progress_refusal_is_reported_once_per_job(void **state)
{
	struct board_fixture *f = *state;
	struct progress_value v;
	struct progress_entry *taken = NULL;
	uint64_t wait_ms = 0;
	uint64_t now = T0;
	for (int i = 0; i < 3; i++) {
		report(f, &f->entry, (uint64_t)i, 4, NULL);
		assert_true(progress_take(&f->board, now, &v, &taken, &wait_ms));
		assert_int_equal(progress_sent(&f->board, taken, PROGRESS_REFUSED, now), i == 0);
		now += PROGRESS_INTERVAL_MS;
	}
	assert_false(progress_is_stale(&f->board, &f->entry));
	assert_false(progress_finish(&f->board, &f->entry, &v));
}

static void test_progress_message_is_cut_at_1_kib_and_made_one_line_of_utf8(void **state)
{
	struct board_fixture *f = *state;
	/* 1023 x's then a 3-byte "€": the cut must not split it. */
	size_t len = PROTO_ERROR_TEXT_MAX + 10;
	char *text = malloc(len + 1);
	assert_non_null(text);
	memset(text, 'x', len);
	memcpy(text + PROTO_ERROR_TEXT_MAX - 1, "\xE2\x82\xAC", 3);
	text[len] = '\0';
	report(f, &f->entry, 1, 2, text);
	free(text);
	struct progress_value v;
	assert_true(progress_finish(&f->board, &f->entry, &v));
	assert_int_equal(v.message_len, PROTO_ERROR_TEXT_MAX - 1);
	assert_int_equal(strlen(v.message), PROTO_ERROR_TEXT_MAX - 1);

	/* Control characters become spaces, bytes that are not UTF-8 '?'. */
	progress_entry_init(&f->entry, 7, 3);
	report(f, &f->entry, 1, 2,
	       "a\tb\nc\xFF"
	       "d\xC3\xA9"
	       "e\xED\xA0\x80"
	       "f\xE2\x82");
	assert_true(progress_finish(&f->board, &f->entry, &v));
	assert_string_equal(v.message, "a b c?d\xC3\xA9"
	                               "e???f??");
}

struct finisher {
	struct board_fixture *f;
	bool returned;
	bool unsent;
	struct progress_value value;
};

static void *finisher_main(void *arg)
{
	struct finisher *fin = arg;
	fin->unsent = progress_finish(&fin->f->board, &fin->f->entry, &fin->value);
	__atomic_store_n(&fin->returned, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_progress_finish_waits_for_the_send_in_flight(void **state)
{
	struct board_fixture *f = *state;
	struct progress_value v;
	struct progress_entry *taken = NULL;
	uint64_t wait_ms = 0;
	report(f, &f->entry, 1, 4, NULL);
	assert_true(progress_take(&f->board, T0, &v, &taken, &wait_ms));
	report(f, &f->entry, 4, 4, "last");

	struct finisher fin = {.f = f};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, finisher_main, &fin), 0);
	/* A fixed look, not a wait for a condition: finish must still be
	 * blocked after it, since the send has not ended. */
	usleep(50000);
	assert_false(__atomic_load_n(&fin.returned, __ATOMIC_SEQ_CST));
	progress_sent(&f->board, taken, PROGRESS_SENT, T0);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_true(fin.returned);
	assert_true(fin.unsent);
	assert_int_equal(fin.value.done, 4);
	assert_string_equal(fin.value.message, "last");
}

struct sender {
	struct progress_board *board;
	bool taken;
	struct progress_value value;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	struct progress_entry *entry = NULL;
	s->taken = progress_take_wait(s->board, &s->value, &entry);
	if (s->taken)
		progress_sent(s->board, entry, PROGRESS_SENT, 0);
	return NULL;
}

static void test_progress_sender_wakes_for_a_report_and_ends_on_close(void **state)
{
	struct board_fixture *f = *state;
	struct sender s = {.board = &f->board};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, sender_main, &s), 0);
	report(f, &f->entry, 2, 5, "woken");
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_true(s.taken);
	assert_int_equal(s.value.done, 2);
	assert_string_equal(s.value.message, "woken");

	progress_close(&f->board);
	struct sender closed = {.board = &f->board};
	assert_int_equal(pthread_create(&thread, NULL, sender_main, &closed), 0);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_false(closed.taken);
	struct progress_value v;
	assert_false(progress_finish(&f->board, &f->entry, &v));
}

#define BOARD_TEST(fn) cmocka_unit_test_setup_teardown(fn, board_setup, board_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOARD_TEST(test_progress_first_report_is_due_at_once),
	    BOARD_TEST(test_progress_reports_within_the_interval_coalesce_to_the_latest),
	    BOARD_TEST(test_progress_refuses_a_bad_range_and_stores_nothing),
	    BOARD_TEST(test_progress_finish_hands_back_the_unsent_latest_value),
	    BOARD_TEST(test_progress_due_values_go_earliest_first_across_jobs),
	    BOARD_TEST(test_progress_failed_send_is_retried_with_the_latest_value),
	    BOARD_TEST(test_progress_stale_lease_stops_every_further_report),
	    BOARD_TEST(test_progress_refusal_is_reported_once_per_job),
	    BOARD_TEST(test_progress_message_is_cut_at_1_kib_and_made_one_line_of_utf8),
	    BOARD_TEST(test_progress_finish_waits_for_the_send_in_flight),
	    BOARD_TEST(test_progress_sender_wakes_for_a_report_and_ends_on_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
