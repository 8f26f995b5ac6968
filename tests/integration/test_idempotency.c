/* Idempotency keys through real processes: the same key twice gives one
 * job, also across a SIGKILL of the broker and after compaction; a key is
 * per queue; a batch resent with its keys gets the same batch and ids, a
 * batch its keys answer only in part is refused and stores nothing; past
 * the key window a key makes a new job, and the newer job keeps the key
 * across a restart; a bad key is refused in one line. The CLI's --key and
 * --run-at too, and a batch file's per-job "key" sent twice with jobmesh
 * batch submit. */
#include "jm_test.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"
#include "stack.h"

static struct harness *current; /* for the logs of a failed submit */

static uint64_t submit_keyed(jm_client *c, const char *queue, const char *key)
{
	jm_job_spec spec = {
	    .queue = queue, .type = "t", .payload = "p", .payload_len = 1, .idempotency_key = key};
	uint64_t id = 0;
	if (jm_client_submit(c, &spec, &id) != 0)
		fixture_fail_with_logs(current, NULL, "submit %s/%s: %s", queue, key,
		                       jm_client_last_error());
	return id;
}

/* Jobs of queue that are not finished (no worker runs here). */
static uint64_t unfinished_of(jm_client *c, const char *queue)
{
	jm_queue_stats *qs = NULL;
	size_t count = 0;
	assert_jm_ok(jm_client_stats(c, &qs, &count));
	uint64_t n = 0;
	for (size_t i = 0; i < count; i++)
		if (strcmp(qs[i].name, queue) == 0)
			n = qs[i].pending + qs[i].delayed + qs[i].active;
	free(qs);
	return n;
}

/* The client goes before the broker stops and a new one comes after it is
 * back. With the old client left open across the restart (it redials the
 * new broker at once) and closed only then, the first submit got no reply
 * within 10 s in about 1 of 30 runs; not diagnosed (the NNG close-during-
 * handshake trap of DESIGN.md is the suspect), and not seen with the
 * client closed first (60 runs). */
static void client_close(struct stack *f)
{
	jm_client_close(f->client);
	f->client = NULL;
}

static void client_open(struct stack *f)
{
	assert_jm_ok(jm_client_open(&f->client, f->h.broker_url));
}

static void test_the_same_key_twice_gives_one_job_also_across_a_sigkill(void **state)
{
	const char *args[] = {"--compact-min-bytes", "0", NULL};
	struct stack *f = stack_open(state, "idem_sigkill", args, NULL, STACK_CLIENT);
	current = &f->h;
	uint64_t first = submit_keyed(f->client, "orders", "order-4711");
	assert_true(submit_keyed(f->client, "orders", "order-4711") == first);
	/* The key is the queue's: another queue's job with it is another job. */
	uint64_t other = submit_keyed(f->client, "mail", "order-4711");
	assert_true(other != first);
	assert_int_equal(unfinished_of(f->client, "orders"), 1);

	client_close(f);
	assert_jm_ok(harness_kill(&f->broker));
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	client_open(f);
	assert_true(submit_keyed(f->client, "orders", "order-4711") == first);
	assert_true(submit_keyed(f->client, "mail", "order-4711") == other);
	assert_int_equal(unfinished_of(f->client, "orders"), 1);
	uint64_t second = submit_keyed(f->client, "orders", "order-4712");
	assert_true(second > other);

	/* A clean stop writes a snapshot: the keys are in it. */
	client_close(f);
	assert_int_equal(harness_stop(&f->broker, SIGTERM, 10000, NULL), 0);
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	client_open(f);
	assert_true(submit_keyed(f->client, "orders", "order-4711") == first);
	assert_true(submit_keyed(f->client, "orders", "order-4712") == second);
	assert_int_equal(unfinished_of(f->client, "orders"), 2);
}

static void
test_a_batch_resent_with_its_keys_gets_the_same_batch_and_a_mixed_one_is_refused(void **state)
{
	struct stack *f = stack_open(state, "idem_batch", NULL, NULL, STACK_CLIENT);
	current = &f->h;
	jm_job_spec jobs[3] = {
	    {.queue = "b", .type = "t", .idempotency_key = "k1"},
	    {.queue = "b", .type = "t", .idempotency_key = "k2"},
	    {.queue = "b", .type = "t", .idempotency_key = "k3"},
	};
	uint64_t ids[3], again[3], batch = 0, batch_again = 0;
	assert_jm_ok(jm_client_submit_many(f->client, jobs, 3, true, ids, &batch));
	assert_true(batch != 0);
	assert_jm_ok(jm_client_submit_many(f->client, jobs, 3, true, again, &batch_again));
	assert_true(batch_again == batch);
	assert_memory_equal(ids, again, sizeof ids);

	jobs[2].idempotency_key = "k-new";
	assert_int_equal(jm_client_submit_many(f->client, jobs, 3, true, again, &batch_again),
	                 JM_ESTATE);
	assert_non_null(strstr(jm_client_last_error(),
	                       "job 2 idempotency key names no job, but job 0's key names job"));
	assert_null(strchr(jm_client_last_error(), '\n'));
	jobs[2].idempotency_key = "k1";
	assert_int_equal(jm_client_submit_many(f->client, jobs, 3, true, again, &batch_again),
	                 JM_EINVAL);
	assert_non_null(strstr(jm_client_last_error(), "the jobs of a batch need different keys"));
	assert_int_equal(unfinished_of(f->client, "b"), 3);

	/* Not a batch: each job on its own; a repeat inside one submit gets
	 * the first's id. */
	jm_job_spec loose[3] = {
	    {.queue = "b", .type = "t", .idempotency_key = "k1"},
	    {.queue = "b", .type = "t", .idempotency_key = "fresh"},
	    {.queue = "b", .type = "t", .idempotency_key = "fresh"},
	};
	assert_jm_ok(jm_client_submit_many(f->client, loose, 3, false, again, NULL));
	assert_true(again[0] == ids[0]);
	assert_true(again[1] == again[2] && again[1] > ids[2]);
	assert_int_equal(unfinished_of(f->client, "b"), 4);
}

static bool wall_passed_cb(void *arg)
{
	return jm_wall_us() >= *(const uint64_t *)arg;
}

static void
test_past_the_key_window_a_key_makes_a_new_job_which_keeps_it_after_a_restart(void **state)
{
	const char *args[] = {"--key-window-ms", "1000", NULL};
	struct stack *f = stack_open(state, "idem_window", args, NULL, STACK_CLIENT);
	current = &f->h;
	uint64_t t0 = jm_wall_us();
	uint64_t first = submit_keyed(f->client, "w", "daily-2026-11-30");
	uint64_t again = submit_keyed(f->client, "w", "daily-2026-11-30");
	if (jm_wall_us() - t0 < 900000) /* both inside the window */
		assert_true(again == first);
	uint64_t past = jm_wall_us() + 1100000;
	assert_true(harness_wait_for(5000, wall_passed_cb, &past, "the 1 s key window to pass"));
	uint64_t second_us = jm_wall_us();
	uint64_t second = submit_keyed(f->client, "w", "daily-2026-11-30");
	assert_true(second > first);
	assert_true(submit_keyed(f->client, "w", "daily-2026-11-30") == second);
	client_close(f);
	assert_jm_ok(harness_kill(&f->broker));
	assert_jm_ok(harness_broker_start(&f->h, args, &f->broker));
	client_open(f);
	/* Replay saw both jobs with the key: the newer one holds it, whether
	 * or not its window has passed since. */
	uint64_t third = submit_keyed(f->client, "w", "daily-2026-11-30");
	uint64_t since_us = jm_wall_us() - second_us;
	if (since_us < 900000)
		assert_true(third == second);
	else if (since_us > 1200000) /* the restart took longer than the window */
		assert_true(third > second);
}

static void test_the_cli_submits_with_a_key_and_a_run_at_time(void **state)
{
	struct stack *f = stack_open(state, "idem_cli", NULL, NULL, STACK_CLIENT);
	current = &f->h;
	const char *keyed[] = {"submit", "--queue",           "c", "--type", "t",
	                       "--key",  "report 2026-11-30", NULL};
	char *out1 = NULL, *out2 = NULL, *errs = NULL;
	assert_int_equal(stack_run_cli(f, keyed, &out1, &errs), 0);
	free(errs);
	assert_int_equal(stack_run_cli(f, keyed, &out2, &errs), 0);
	free(errs);
	assert_string_equal(out1, out2);
	free(out1);
	free(out2);

	const char *at[] = {
	    "submit", "--queue", "c", "--type", "t", "--run-at", "2030-01-02T03:04:05.5+01:00",
	    NULL};
	assert_int_equal(stack_run_cli(f, at, &out1, &errs), 0);
	free(errs);
	uint64_t id = strtoull(out1, NULL, 10);
	free(out1);
	jm_job_info info;
	assert_jm_ok(jm_client_status(f->client, id, &info));
	assert_int_equal(info.state, JM_STATE_DELAYED);
	assert_true(info.run_at_us == 1893549845500000ull); /* 2030-01-02T02:04:05.5Z */
	jm_job_info_fini(&info);

	static const struct {
		const char *flag, *value, *want;
	} bad[] = {
	    {"--key", "tab\there", "idempotency key has byte 0x09 at 3: use 1-128 printable"},
	    {"--run-at", "2026-13-01T00:00:00Z", "time \"2026-13-01T00:00:00Z\" is not valid"},
	    {"--run-at", "2026-02-30T00:00:00Z", "day 30 does not exist in that month"},
	    {"--run-at", "tomorrow", "use an RFC 3339 time such as 2026-12-01T09:30:00Z"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *args[] = {"submit", "--queue",   "c",          "--type",
		                      "t",      bad[i].flag, bad[i].value, NULL};
		int code = stack_run_cli(f, args, &out1, &errs);
		if (code == 0 || strstr(errs, bad[i].want) == NULL)
			fail_msg("%s %s: exit %d, stderr \"%s\": expected \"%s\"", bad[i].flag,
			         bad[i].value, code, errs, bad[i].want);
		free(out1);
		free(errs);
	}
	assert_int_equal(unfinished_of(f->client, "c"), 2);
}

/* A batch file whose jobs carry "key" is admitted once: sent again with
 * the CLI it answers the same batch and job ids and stores nothing new. */
static void test_a_batch_file_with_keys_sent_twice_gives_the_same_ids(void **state)
{
	struct stack *f = stack_open(state, "idem_batchfile", NULL, NULL, STACK_CLIENT);
	current = &f->h;
	const char *path =
	    harness_write_file(&f->h, "orders.jsonl",
	                       "{\"queue\": \"b\", \"type\": \"t\", \"key\": \"order-1\", "
	                       "\"payload\": \"one\"}\n"
	                       "{\"queue\": \"b\", \"type\": \"t\", \"key\": \"order-2\"}\n"
	                       "{\"queue\": \"b\", \"type\": \"t\", \"key\": \"order 3\", "
	                       "\"payload\": {\"n\": 3}}\n",
	                       0600);
	assert_non_null(path);
	const char *args[] = {"batch", "submit", path, "--json", NULL};
	char *out1 = NULL, *out2 = NULL, *errs = NULL;
	int code = stack_run_cli(f, args, &out1, &errs);
	if (code != 0)
		fixture_fail_with_logs(&f->h, NULL, "batch submit: exit %d: %s", code, errs);
	free(errs);
	assert_int_equal(stack_run_cli(f, args, &out2, &errs), 0);
	free(errs);
	print_message("first: %ssecond: %s", out1, out2);
	assert_non_null(strstr(out1, "\"job_ids\": ["));
	assert_string_equal(out1, out2); /* same batch id, same job ids */
	free(out1);
	free(out2);
	assert_int_equal(unfinished_of(f->client, "b"), 3);
	/* A bad key names its line and what a key may be; nothing is sent. */
	const char *bad = harness_write_file(&f->h, "bad.jsonl",
	                                     "{\"queue\": \"b\", \"type\": \"t\"}\n{\"queue\": "
	                                     "\"b\", \"type\": \"t\", \"key\": \"\"}\n",
	                                     0600);
	const char *bad_args[] = {"batch", "submit", bad, NULL};
	code = stack_run_cli(f, bad_args, &out1, &errs);
	if (code == 0 || strstr(errs, "line 2: \"key\" is empty: use 1-128 printable") == NULL)
		fail_msg("bad key: exit %d, stderr \"%s\"", code, errs);
	free(out1);
	free(errs);
	assert_int_equal(unfinished_of(f->client, "b"), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_the_same_key_twice_gives_one_job_also_across_a_sigkill,
	                              stack_close),
	    cmocka_unit_test_teardown(
	        test_a_batch_resent_with_its_keys_gets_the_same_batch_and_a_mixed_one_is_refused,
	        stack_close),
	    cmocka_unit_test_teardown(
	        test_past_the_key_window_a_key_makes_a_new_job_which_keeps_it_after_a_restart,
	        stack_close),
	    cmocka_unit_test_teardown(test_the_cli_submits_with_a_key_and_a_run_at_time,
	                              stack_close),
	    cmocka_unit_test_teardown(test_a_batch_file_with_keys_sent_twice_gives_the_same_ids,
	                              stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
