/* Flow control through real processes: a paused queue holds its jobs
 * while the same worker runs another queue's, and resume releases them; a
 * queue limited to 5 starts a second runs 10 jobs in no less than 1.8 s
 * (nine intervals of 200 ms), and its parked worker is woken by the rate
 * timer rather than by its fetch's timeout; the spacing holds across a
 * SIGKILL and restart of the broker right after a start; runtime settings
 * survive a SIGKILL of the broker; bad settings are refused in one line. */
#include "jm_test.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"
#include "rpc.h"
#include "stack.h"

static uint64_t submit_to(struct stack *f, const char *queue)
{
	jm_job_spec spec = {.queue = queue, .type = "t"};
	uint64_t id = 0;
	if (jm_client_submit(f->client, &spec, &id) != 0)
		fixture_fail_with_logs(&f->h, NULL, "submit to %s: %s", queue,
		                       jm_client_last_error());
	return id;
}

static void queue_set(struct stack *f, const char *queue, const jm_queue_settings *changes,
                      jm_queue_settings *out)
{
	if (jm_client_queue_set(f->client, queue, changes, out) != 0)
		fixture_fail_with_logs(&f->h, NULL, "queue-set %s: %s", queue,
		                       jm_client_last_error());
}

static int state_of(struct stack *f, uint64_t id)
{
	jm_job_info info;
	assert_jm_ok(jm_client_status(f->client, id, &info));
	int state = info.state;
	jm_job_info_fini(&info);
	return state;
}

static void test_a_paused_queue_holds_its_jobs_and_resume_releases_them(void **state)
{
	struct stack *f = stack_open(state, "flow_pause", NULL, NULL, STACK_CLIENT);
	jm_queue_settings now;
	queue_set(f, "held", &(jm_queue_settings){.set_mask = JM_QSET_PAUSED, .paused = true},
	          &now);
	assert_true(now.paused);
	uint64_t held[3];
	for (int i = 0; i < 3; i++)
		held[i] = submit_to(f, "held"); /* a paused queue takes submits */
	/* One worker on both queues, the paused one first: it runs the other
	 * queue's job, so it fetched past the paused one. */
	fixture_worker_start(&f->h, "w1", "held,open", "2", "t=true");
	jm_job_info info;
	fixture_wait_finished(&f->h, f->client, submit_to(f, "open"), 20000, &info);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	jm_job_info_fini(&info);
	for (int i = 0; i < 3; i++)
		assert_int_equal(state_of(f, held[i]), JM_STATE_PENDING);
	jm_queue_stats *qs = NULL;
	size_t count = 0;
	assert_jm_ok(jm_client_stats(f->client, &qs, &count));
	bool shown = false;
	for (size_t i = 0; i < count; i++)
		if (strcmp(qs[i].name, "held") == 0)
			shown = qs[i].paused && qs[i].pending == 3;
	free(qs);
	assert_true(shown); /* stats says the queue is paused */

	queue_set(f, "held", &(jm_queue_settings){.set_mask = JM_QSET_PAUSED, .paused = false},
	          &now);
	assert_false(now.paused);
	for (int i = 0; i < 3; i++) {
		fixture_wait_finished(&f->h, f->client, held[i], 20000, &info);
		assert_int_equal(info.state, JM_STATE_COMPLETED);
		jm_job_info_fini(&info);
	}
}

static void test_a_queue_limited_to_5_a_second_runs_10_jobs_in_no_less_than_1_8_s(void **state)
{
	struct stack *f = stack_open(state, "flow_rate", NULL, NULL, STACK_CLIENT);
	jm_queue_settings now;
	queue_set(
	    f, "pay",
	    &(jm_queue_settings){.set_mask = JM_QSET_RATE, .rate_jobs = 5, .rate_period_ms = 1000},
	    &now);
	assert_int_equal(now.rate_jobs, 5);
	fixture_worker_start(&f->h, "w1", "pay", "4", "t=true");
	uint64_t start_us = jm_wall_us();
	uint64_t ids[10];
	for (int i = 0; i < 10; i++)
		ids[i] = submit_to(f, "pay");
	uint64_t last_us = 0;
	for (int i = 0; i < 10; i++) {
		jm_job_info info;
		fixture_wait_finished(&f->h, f->client, ids[i], 20000, &info);
		assert_int_equal(info.state, JM_STATE_COMPLETED);
		if (info.updated_us > last_us)
			last_us = info.updated_us;
		jm_job_info_fini(&info);
	}
	uint64_t took_ms = (last_us - start_us) / 1000;
	print_message("10 jobs at 5/s took %llu ms\n", (unsigned long long)took_ms);
	/* Starts are spaced 200 ms apart: the tenth starts 1.8 s after the first. */
	assert_true(took_ms >= 1800);
	/* Parked fetches are woken when the next start is due: without the
	 * rate timer each would wait out its park (25 s) first. */
	assert_true(took_ms < 12000);
}

/* The broker's own time of a job's start: an active job's updated_us is
 * its LEASE's time. */
static uint64_t started_us(struct stack *f, uint64_t id)
{
	jm_job_info info;
	assert_jm_ok(jm_client_status(f->client, id, &info));
	assert_int_equal(info.state, JM_STATE_ACTIVE);
	uint64_t at = info.updated_us;
	jm_job_info_fini(&info);
	return at;
}

/* A queue at 5/s whose broker is killed right after a start and restarted
 * at once: the first start after the restart comes no sooner than 200 ms
 * after the last one before the kill (the broker counts its own start as
 * a start: queue_registry_restarted), and the starts after it are 200 ms
 * apart. The test fetches as a worker would (one job a fetch, parked until
 * the rate allows), so the restart is as fast as a broker can come back. */
static void test_the_rate_spacing_holds_across_a_sigkill_and_restart(void **state)
{
	struct stack *f =
	    stack_open(state, "flow_rate_restart", NULL, NULL, STACK_CLIENT | STACK_RPC);
	jm_queue_settings now;
	queue_set(
	    f, "r",
	    &(jm_queue_settings){.set_mask = JM_QSET_RATE, .rate_jobs = 5, .rate_period_ms = 1000},
	    &now);
	enum { BEFORE = 3, AFTER = 5, INTERVAL_US = 200000 };
	for (int i = 0; i < BEFORE + AFTER; i++)
		submit_to(f, "r");
	uint64_t received_us = 0;
	for (int i = 0; i < BEFORE; i++) {
		(void)fixture_rpc_fetch(f->rpc, "w", "r", 10000, 20000);
		received_us = jm_wall_us(); /* after the broker's start of it */
	}
	/* Killed and restarted while the last start is fresh. */
	assert_jm_ok(harness_kill(&f->broker));
	uint64_t killed_us = jm_wall_us();
	rpc_close(f->rpc);
	jm_client_close(f->client);
	f->client = NULL;
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	f->rpc = fixture_rpc_open(f->h.broker_url);
	assert_jm_ok(jm_client_open(&f->client, f->h.broker_url));
	uint64_t up_us = jm_wall_us();
	uint64_t starts[AFTER];
	for (int i = 0; i < AFTER; i++) {
		struct proto_delivery d = fixture_rpc_fetch(f->rpc, "w", "r", 10000, 20000);
		starts[i] = started_us(f, d.job_id);
	}
	print_message("last start before the kill received %llu us before it; broker back "
	              "%llu us after it; first start after the restart %lld us after the "
	              "last before\n",
	              (unsigned long long)(killed_us - received_us),
	              (unsigned long long)(up_us - killed_us),
	              (long long)(starts[0] - received_us));
	/* received_us is no earlier than the last start before the kill. */
	if (starts[0] < received_us + INTERVAL_US)
		fail_msg("the first start after the restart came %lld us after the last one "
		         "before the kill: at 5/s it must wait %d us",
		         (long long)(starts[0] - received_us), INTERVAL_US);
	for (int i = 1; i < AFTER; i++)
		if (starts[i] < starts[i - 1] + INTERVAL_US)
			fail_msg("starts %d and %d after the restart are %lld us apart: at 5/s "
			         "at least %d",
			         i - 1, i, (long long)(starts[i] - starts[i - 1]), INTERVAL_US);
}

static void test_runtime_settings_survive_a_sigkill_and_a_snapshot(void **state)
{
	struct stack *f = stack_open(state, "flow_restart", NULL, NULL, STACK_CLIENT);
	jm_queue_settings want = {.set_mask = JM_QSET_PAUSED | JM_QSET_MAX_ACTIVE | JM_QSET_RATE |
	                                      JM_QSET_MAX_ATTEMPTS | JM_QSET_KEY_WINDOW,
	                          .paused = true,
	                          .max_active = 7,
	                          .rate_jobs = 30,
	                          .rate_period_ms = 60000,
	                          .max_attempts = 9,
	                          .key_window_ms = 5000};
	jm_queue_settings got;
	queue_set(f, "s", &want, &got);
	for (int round = 0; round < 2; round++) {
		jm_client_close(f->client);
		f->client = NULL;
		if (round == 0)
			assert_jm_ok(harness_kill(&f->broker));
		else /* a clean stop writes a snapshot: the settings are in it */
			assert_int_equal(harness_stop(&f->broker, SIGTERM, 10000, NULL), 0);
		assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
		assert_jm_ok(jm_client_open(&f->client, f->h.broker_url));
		queue_set(f, "s", &(jm_queue_settings){0}, &got);
		assert_true(got.paused);
		assert_int_equal(got.max_active, 7);
		assert_int_equal(got.rate_jobs, 30);
		assert_true(got.rate_period_ms == 60000);
		assert_int_equal(got.max_attempts, 9);
		assert_true(got.key_window_ms == 5000);
		assert_int_equal(got.set_mask, want.set_mask);
	}
	/* The queue default applies to new jobs: max_attempts 9. */
	jm_job_info info;
	assert_jm_ok(jm_client_status(f->client, submit_to(f, "s"), &info));
	assert_int_equal(info.max_attempts, 9);
	jm_job_info_fini(&info);
}

static void test_the_cli_pauses_sets_and_refuses_bad_settings_in_one_line(void **state)
{
	struct stack *f = stack_open(state, "flow_cli", NULL, NULL, STACK_CLIENT);
	char *out = NULL, *errs = NULL;
	const char *pause[] = {"queue", "pause", "q", NULL};
	assert_int_equal(stack_run_cli(f, pause, &out, &errs), 0);
	assert_non_null(strstr(out, "queue q: paused"));
	free(out);
	free(errs);
	const char *set[] = {"queue", "set", "q", "limit=3", "rate=10/m", "--json", NULL};
	assert_int_equal(stack_run_cli(f, set, &out, &errs), 0);
	assert_non_null(strstr(out, "\"paused\": true"));
	assert_non_null(strstr(out, "\"max_active\": 3"));
	assert_non_null(strstr(out, "\"rate_jobs\": 10"));
	assert_non_null(strstr(out, "\"rate_period_ms\": 60000"));
	free(out);
	free(errs);
	const char *resume[] = {"queue", "resume", "q", NULL};
	assert_int_equal(stack_run_cli(f, resume, &out, &errs), 0);
	assert_non_null(strstr(out, "queue q: running, limit 3, rate 10 per 60000 ms"));
	free(out);
	free(errs);
	static const struct {
		const char *kv, *want;
	} bad[] = {
	    {"rate=10/week", "rate \"10/week\" is invalid: use N/s, N/m, N/h or N/d"},
	    {"speed=3", "unknown setting \"speed\": use limit=N"},
	    {"limit", "\"limit\" is not KEY=VALUE"},
	    {"max-attempts=0", "max-attempts"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *args[] = {"queue", "set", "q", bad[i].kv, NULL};
		int code = stack_run_cli(f, args, &out, &errs);
		if (code != 2 || strstr(errs, bad[i].want) == NULL ||
		    strchr(errs, '\n') != strrchr(errs, '\n'))
			fail_msg(
			    "%s: exit %d, stderr \"%s\": expected exit 2 and one line with \"%s\"",
			    bad[i].kv, code, errs, bad[i].want);
		free(out);
		free(errs);
	}
	const char *show[] = {"queue", "show", "q", NULL};
	assert_int_equal(stack_run_cli(f, show, &out, &errs), 0);
	assert_non_null(strstr(out, "limit 3, rate 10 per 60000 ms"));
	free(out);
	free(errs);
	const char *pause_again[] = {"queue", "pause", "q", NULL};
	assert_int_equal(stack_run_cli(f, pause_again, &out, &errs), 0);
	free(out);
	free(errs);
	const char *stats[] = {"stats", NULL};
	assert_int_equal(stack_run_cli(f, stats, &out, &errs), 0);
	assert_non_null(strstr(out, "  paused,10/60000ms\n"));
	free(out);
	free(errs);
}

static void test_a_dead_lettered_job_shows_its_payload_and_error(void **state)
{
	struct stack *f = stack_open(state, "flow_dead_show", NULL, NULL, STACK_CLIENT);
	fixture_worker_start(&f->h, "w1", "dl", "1", "t=false");
	jm_job_spec spec = {.queue = "dl",
	                    .type = "t",
	                    .payload = "order\t4711",
	                    .payload_len = 10,
	                    .max_attempts = 1};
	uint64_t id = 0;
	assert_jm_ok(jm_client_submit(f->client, &spec, &id));
	jm_job_info info;
	fixture_wait_finished(&f->h, f->client, id, 20000, &info);
	assert_int_equal(info.state, JM_STATE_FAILED);
	assert_null(info.payload); /* only when asked */
	jm_job_info_fini(&info);
	assert_jm_ok(jm_client_status_payload(f->client, id, &info));
	assert_int_equal(info.payload_len, 10);
	assert_memory_equal(info.payload, "order\t4711", 10);
	jm_job_info_fini(&info);

	char ids[32];
	snprintf(ids, sizeof ids, "%llu", (unsigned long long)id);
	char *out = NULL, *errs = NULL;
	const char *show[] = {"dead-letter", "show", "dl", ids, NULL};
	assert_int_equal(stack_run_cli(f, show, &out, &errs), 0);
	assert_non_null(strstr(out, "state       failed"));
	assert_non_null(strstr(out, "payload     10 bytes: order\\t4711"));
	free(out);
	free(errs);
	const char *status[] = {"status", ids, "--payload", "--json", NULL};
	assert_int_equal(stack_run_cli(f, status, &out, &errs), 0);
	assert_non_null(strstr(out, "\"payload\": \"order\\t4711\""));
	free(out);
	free(errs);
	const char *other[] = {"dead-letter", "show", "elsewhere", ids, NULL};
	assert_int_equal(stack_run_cli(f, other, &out, &errs), 4);
	assert_non_null(
	    strstr(errs, "is not dead-lettered in queue elsewhere (it is failed in dl)"));
	free(out);
	free(errs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_a_paused_queue_holds_its_jobs_and_resume_releases_them,
	                              stack_close),
	    cmocka_unit_test_teardown(
	        test_a_queue_limited_to_5_a_second_runs_10_jobs_in_no_less_than_1_8_s, stack_close),
	    cmocka_unit_test_teardown(test_the_rate_spacing_holds_across_a_sigkill_and_restart,
	                              stack_close),
	    cmocka_unit_test_teardown(test_runtime_settings_survive_a_sigkill_and_a_snapshot,
	                              stack_close),
	    cmocka_unit_test_teardown(test_the_cli_pauses_sets_and_refuses_bad_settings_in_one_line,
	                              stack_close),
	    cmocka_unit_test_teardown(test_a_dead_lettered_job_shows_its_payload_and_error,
	                              stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
