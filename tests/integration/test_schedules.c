/* Schedules through real processes: a 1-second schedule runs once per
 * second, and across a SIGKILL of the broker it neither doubles a run nor
 * loses one except as the catch-up rule says (the runs missed while it was
 * down collapse into one); a schedule added with the CLI survives a
 * restart; bad expressions and zones are refused with the field named; a
 * run that would pass --max-queue-jobs or --max-payload-memory is not
 * submitted, as a submit of its job would not be.
 *
 * A run's job carries the time it was scheduled for in run_at_us while it
 * is pending (no worker runs here), read back with JOB_QUERY. */
#include "jm_test.h"

#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"
#include "message.h"
#include "rpc.h"
#include "stack.h"

#define SECOND_US 1000000ULL

/* Puts an @every 1s schedule; returns its first run. */
static uint64_t put_every_second(struct stack *f, const char *name, const char *queue)
{
	jm_schedule s = {.name = (char *)name,
	                 .expr = "@every 1s",
	                 .queue = (char *)queue,
	                 .type = "tick",
	                 .payload = "p",
	                 .payload_len = 1};
	jm_schedule *stored = NULL;
	if (jm_client_schedule_put(f->client, &s, &stored) != 0)
		fail_msg("schedule put: %s", jm_client_last_error());
	uint64_t first = stored->next_run_us;
	assert_int_equal(stored->last_fired_us, 0);
	jm_schedules_free(stored, 1);
	return first;
}

/* The scheduled-for times of queue's jobs, ascending; returns the count. */
static size_t runs_of(struct stack *f, const char *queue, uint64_t *runs, size_t cap)
{
	struct proto_msg req = {.type = PROTO_JOB_QUERY};
	snprintf(req.u.job_query.queue, sizeof req.u.job_query.queue, "%s", queue);
	req.u.job_query.limit = (uint32_t)cap;
	struct rpc_reply reply;
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_call(f->rpc, &req, 5000, &reply, &err), &err);
	assert_int_equal(reply.msg.type, PROTO_JOB_LIST);
	size_t n = reply.msg.u.job_list.jobs_count;
	for (size_t i = 0; i < n; i++) {
		const struct proto_job_info *j = &reply.msg.u.job_list.jobs[i];
		assert_int_equal(j->state, PROTO_STATE_PENDING);
		assert_true(j->run_at_us > 0 && j->run_at_us % SECOND_US == 0);
		assert_true(j->attrs.created_us >= j->run_at_us); /* never before its time */
		runs[i] = j->run_at_us;
	}
	rpc_reply_fini(&reply);
	for (size_t i = 1; i < n; i++) /* insertion sort: n is small */
		for (size_t k = i; k > 0 && runs[k - 1] > runs[k]; k--) {
			uint64_t t = runs[k];
			runs[k] = runs[k - 1];
			runs[k - 1] = t;
		}
	return n;
}

struct runs_wait {
	struct stack *f;
	const char *queue;
	uint64_t at_least_us; /* a run scheduled at or after this */
};

static bool has_run_at_least_cb(void *arg)
{
	struct runs_wait *w = arg;
	uint64_t runs[256];
	size_t n = runs_of(w->f, w->queue, runs, 256);
	return n > 0 && runs[n - 1] >= w->at_least_us;
}

static bool wall_passed_cb(void *arg)
{
	return jm_wall_us() >= *(const uint64_t *)arg;
}

static void reopen_rpc(struct stack *f)
{
	rpc_close(f->rpc);
	f->rpc = fixture_rpc_open(f->h.broker_url);
}

static void
test_a_one_second_schedule_runs_every_second_and_catches_up_once_after_a_sigkill(void **state)
{
	struct stack *f =
	    stack_open(state, "schedule_sigkill", NULL, NULL, STACK_CLIENT | STACK_RPC);
	uint64_t put_us = jm_wall_us();
	uint64_t first = put_every_second(f, "tick", "ticks");
	assert_true(first > put_us && first <= put_us + 2 * SECOND_US);

	/* A 5 s window: exactly the five whole seconds from the first run. */
	struct runs_wait w = {f, "ticks", first + 4 * SECOND_US};
	assert_true(harness_wait_for(15000, has_run_at_least_cb, &w, "five runs of the schedule"));
	uint64_t runs[256];
	size_t n = runs_of(f, "ticks", runs, 256);
	size_t in_window = 0;
	for (size_t i = 0; i < n; i++)
		in_window += runs[i] >= first && runs[i] < first + 5 * SECOND_US;
	assert_int_equal(in_window, 5);

	/* SIGKILL, stay down for 2.5 s (at least two runs missed), restart. */
	assert_jm_ok(harness_kill(&f->broker));
	uint64_t killed_us = jm_wall_us();
	uint64_t up_after_us = killed_us + 2500000;
	assert_true(harness_wait_for(10000, wall_passed_cb, &up_after_us, "2.5 s of downtime"));
	uint64_t restart_us = jm_wall_us();
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	uint64_t serving_us = jm_wall_us();
	reopen_rpc(f);
	w.at_least_us = (serving_us / SECOND_US + 3) * SECOND_US;
	assert_true(
	    harness_wait_for(15000, has_run_at_least_cb, &w, "three runs after the restart"));
	n = runs_of(f, "ticks", runs, 256);

	/* Distinct, one per second, except one gap: the downtime, where the
	 * missed runs collapse into the one catch-up run. */
	size_t gaps = 0, gap_at = 0;
	for (size_t i = 1; i < n; i++) {
		assert_true(runs[i] > runs[i - 1]); /* no run twice */
		if (runs[i] - runs[i - 1] != SECOND_US) {
			gaps++;
			gap_at = i;
		}
	}
	if (gaps != 1) {
		for (size_t i = 0; i < n; i++)
			print_message("run %zu: %llu\n", i, (unsigned long long)runs[i]);
		fail_msg("%zu gaps in the runs: expected exactly one, at the downtime", gaps);
	}
	uint64_t last_before = runs[gap_at - 1];
	uint64_t catch_up = runs[gap_at];
	assert_int_equal(runs[0], first);
	assert_true(last_before <= killed_us);
	/* The catch-up is the latest run due when the broker came back: after
	 * the restart began, no later than when it served. */
	assert_true(catch_up + SECOND_US > restart_us);
	assert_true(catch_up - last_before >= 2 * SECOND_US); /* a run was missed */
	print_message("runs %zu; last before the kill %llu, catch-up %llu (%llu s later)\n", n,
	              (unsigned long long)last_before, (unsigned long long)catch_up,
	              (unsigned long long)((catch_up - last_before) / SECOND_US));
}

struct log_wait {
	const char *path, *text;
	size_t at_least;
};

static bool log_says_cb(void *arg)
{
	struct log_wait *w = arg;
	return fixture_count_in_file(w->path, w->text) >= w->at_least;
}

/* The ids of queue's jobs (any state), up to cap; returns the count. */
static size_t jobs_of(struct stack *f, const char *queue, uint64_t *ids, size_t cap)
{
	struct proto_msg req = {.type = PROTO_JOB_QUERY};
	snprintf(req.u.job_query.queue, sizeof req.u.job_query.queue, "%s", queue);
	req.u.job_query.limit = (uint32_t)cap;
	struct rpc_reply reply;
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_call(f->rpc, &req, 5000, &reply, &err), &err);
	assert_int_equal(reply.msg.type, PROTO_JOB_LIST);
	size_t n = reply.msg.u.job_list.jobs_count;
	for (size_t i = 0; i < n; i++)
		ids[i] = reply.msg.u.job_list.jobs[i].job_id;
	rpc_reply_fini(&reply);
	return n;
}

/* A schedule's run is admitted as a submit of its job is: once its queue
 * holds --max-queue-jobs unfinished jobs, the runs stop (the broker says
 * why, once per hold, and tries again every second), and a payload over
 * --max-payload-memory is never stored at all. When room is made, the
 * next try goes through and the broker says the hold ended. */
static void test_a_schedule_run_over_a_limit_is_not_submitted(void **state)
{
	const char *args[] = {
	    "--max-queue-jobs", "2", "--max-payload-memory", "64KiB", "--log-level", "debug", NULL};
	struct stack *f =
	    stack_open(state, "schedule_limits", args, NULL, STACK_CLIENT | STACK_RPC);
	put_every_second(f, "capped", "capped");
	static char big[80 * 1024];
	memset(big, 'b', sizeof big);
	jm_schedule s = {.name = "huge",
	                 .expr = "@every 1s",
	                 .queue = "huge",
	                 .type = "tick",
	                 .payload = big,
	                 .payload_len = sizeof big};
	jm_schedule *stored = NULL;
	if (jm_client_schedule_put(f->client, &s, &stored) != 0)
		fail_msg("schedule put: %s", jm_client_last_error());
	jm_schedules_free(stored, 1);
	/* Three refusals of each after the queue filled: the runs went on
	 * (retries are logged at debug level). */
	const char *err_path = harness_path(&f->h, "broker.err");
	struct log_wait full = {err_path, "limit of 2 (--max-queue-jobs)", 3};
	assert_true(harness_wait_for(15000, log_says_cb, &full, "three refused runs of capped"));
	struct log_wait mem = {err_path, "(--max-payload-memory)", 3};
	assert_true(harness_wait_for(15000, log_says_cb, &mem, "three refused runs of huge"));
	uint64_t runs[16];
	assert_int_equal(runs_of(f, "capped", runs, 16), 2);
	assert_int_equal(runs_of(f, "huge", runs, 16), 0);
	/* Each hold was logged as a warning once, not once a second. */
	assert_int_equal(fixture_count_in_file(err_path, "schedule huge: run not submitted"), 1);
	assert_int_equal(fixture_count_in_file(err_path, "schedule capped: run not submitted"), 1);
	/* Room in capped: its next try goes through and the hold's end is
	 * logged; huge stays held, still logged once. */
	uint64_t ids[4];
	assert_int_equal(jobs_of(f, "capped", ids, 4), 2);
	jm_job_info cancelled;
	assert_jm_ok(jm_client_cancel(f->client, ids[0], &cancelled));
	jm_job_info_fini(&cancelled);
	struct log_wait ended = {err_path, "schedule capped: runs submitted again after", 1};
	assert_true(harness_wait_for(15000, log_says_cb, &ended, "the end of capped's hold"));
	assert_int_equal(jobs_of(f, "capped", ids, 4), 3);
	struct log_wait more = {err_path, "(--max-payload-memory)", 5};
	assert_true(harness_wait_for(15000, log_says_cb, &more, "five refused runs of huge"));
	assert_int_equal(fixture_count_in_file(err_path, "schedule huge: run not submitted"), 1);
}

static void test_a_schedule_added_with_the_cli_survives_a_restart(void **state)
{
	struct stack *f = stack_open(state, "schedule_cli", NULL, NULL, STACK_CLIENT | STACK_RPC);
	char *out = NULL, *errs = NULL;
	const char *add[] = {"schedule",         "add",    "nightly",       "--cron",
	                     "30 2 * * mon-fri", "--tz",   "Europe/Berlin", "--queue",
	                     "reports",          "--type", "report.daily",  "--payload",
	                     "{\"x\":1}",        NULL};
	assert_int_equal(stack_run_cli(f, add, &out, &errs), 0);
	free(out);
	free(errs);
	assert_int_equal(harness_stop(&f->broker, SIGTERM, 10000, NULL), 0);
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	const char *list[] = {"schedule", "list", "--json", NULL};
	assert_int_equal(stack_run_cli(f, list, &out, &errs), 0);
	assert_non_null(strstr(out, "\"name\": \"nightly\""));
	assert_non_null(strstr(out, "\"schedule\": \"30 2 * * mon-fri\""));
	assert_non_null(strstr(out, "\"tz\": \"Europe/Berlin\""));
	assert_non_null(strstr(out, "\"payload\": \"{\\\"x\\\":1}\""));
	/* 02:30 in Berlin is 01:30Z in winter or 00:30Z in summer. */
	assert_true(strstr(out, ":30:00.000Z\"") != NULL);
	free(out);
	free(errs);
	const char *rm[] = {"schedule", "remove", "nightly", NULL};
	assert_int_equal(stack_run_cli(f, rm, &out, &errs), 0);
	free(out);
	free(errs);
	assert_int_equal(stack_run_cli(f, rm, &out, &errs), 4);
	assert_non_null(strstr(errs, "schedule nightly not found"));
	free(out);
	free(errs);
}

static void test_bad_expressions_and_zones_are_refused_with_the_field_named(void **state)
{
	struct stack *f = stack_open(state, "schedule_bad", NULL, NULL, STACK_CLIENT | STACK_RPC);
	static const struct {
		const char *flag, *expr, *zone, *want;
	} cases[] = {
	    {"--cron", "0 25 * * *", NULL, "field 2 of 5 (hour): out of range \"25\": use 0-23"},
	    {"--cron", "* * *", NULL, "3 fields: use 5 (minute hour day-of-month month"},
	    {"--cron", "0 0 * foo *", NULL, "(month): bad value \"foo\": use 1-12 or jan-dec"},
	    {"--cron", "0 0 30 2 *", NULL, "no run in the next 8 years"},
	    {"--every", "0s", NULL, "duration \"0s\" is invalid"},
	    {"--cron", "0 2 * * *", "Mars/Base", "time zone \"Mars/Base\" is unknown"},
	    {"--cron", "0 2 * * *", "../etc/passwd", "time zone \"../etc/passwd\" is invalid"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *args[] = {
		    "schedule",    "add", "bad",    cases[i].flag, cases[i].expr,
		    "--queue",     "q",   "--type", "t",           cases[i].zone ? "--tz" : NULL,
		    cases[i].zone, NULL};
		char *out = NULL, *errs = NULL;
		int code = stack_run_cli(f, args, &out, &errs);
		if (code != 1 || strstr(errs, cases[i].want) == NULL)
			fail_msg("%s %s: exit %d, stderr \"%s\": expected exit 1 and \"%s\"",
			         cases[i].flag, cases[i].expr, code, errs, cases[i].want);
		size_t lines = 0;
		for (const char *c = errs; *c; c++)
			lines += *c == '\n';
		assert_int_equal(lines, 1); /* one line */
		free(out);
		free(errs);
	}
	/* Nothing was stored. */
	jm_schedule *list = NULL;
	size_t count = 7;
	assert_jm_ok(jm_client_schedule_list(f->client, &list, &count));
	assert_int_equal(count, 0);
	jm_schedules_free(list, count);
}

/* A deploy declares its schedules in the broker's --config: they are put
 * at start, an unchanged one writes nothing, a changed one keeps its last
 * run, and a bad one stops the broker with the field named. */
static void test_schedules_in_the_config_file_are_put_at_start(void **state)
{
	struct stack *f =
	    stack_open(state, "schedule_config", NULL, NULL, STACK_CLIENT | STACK_RPC);
	const char *yaml = harness_write_file(
	    &f->h, "broker.yaml",
	    "schedule:\n"
	    "  nightly: {cron: \"30 2 * * mon-fri\", tz: Europe/Berlin, queue: reports, "
	    "type: report.daily, payload: '{\"kind\":\"daily\"}'}\n"
	    "  tick:\n    every: 1s\n    queue: ticks\n    type: tick\n    priority: 5\n",
	    0644);
	assert_non_null(yaml);
	jm_client_close(f->client);
	f->client = NULL;
	rpc_close(f->rpc);
	f->rpc = NULL;
	assert_int_equal(harness_stop(&f->broker, SIGTERM, 10000, NULL), 0);
	const char *args[] = {"--config", yaml, NULL};
	assert_jm_ok(harness_broker_start(&f->h, args, &f->broker));
	assert_jm_ok(jm_client_open(&f->client, f->h.broker_url));
	f->rpc = fixture_rpc_open(f->h.broker_url);
	jm_schedule *list = NULL;
	size_t count = 0;
	assert_jm_ok(jm_client_schedule_list(f->client, &list, &count));
	assert_int_equal(count, 2);
	assert_string_equal(list[0].name, "nightly");
	assert_string_equal(list[0].zone, "Europe/Berlin");
	assert_string_equal(list[0].payload, "{\"kind\":\"daily\"}");
	assert_string_equal(list[1].name, "tick");
	assert_string_equal(list[1].expr, "@every 1s");
	assert_int_equal(list[1].priority, 5);
	jm_schedules_free(list, count);
	/* tick runs: its first job comes within a few seconds. */
	struct runs_wait w = {f, "ticks", 1};
	assert_true(harness_wait_for(10000, has_run_at_least_cb, &w, "a run of the tick schedule"));

	/* The same file again: nothing changes; the runs go on. */
	jm_client_close(f->client);
	f->client = NULL;
	rpc_close(f->rpc);
	f->rpc = NULL;
	assert_int_equal(harness_stop(&f->broker, SIGTERM, 10000, NULL), 0);
	const char *bad = harness_write_file(
	    &f->h, "bad.yaml", "schedule:\n  late: {cron: \"0 25 * * *\", queue: q, type: t}\n",
	    0644);
	char *out = NULL, *errs = NULL;
	const char *argv[] = {harness_bin("jobmesh-broker"),
	                      "--config",
	                      bad,
	                      "--listen",
	                      f->h.broker_url,
	                      "--data",
	                      "data",
	                      "--http",
	                      "127.0.0.1:0",
	                      NULL};
	int code = -1;
	assert_jm_ok(harness_run_capture(&f->h, (char *const *)argv, 15000, &out, &errs, &code));
	assert_int_not_equal(code, 0);
	assert_non_null(strstr(errs, "config: schedule late: cron \"0 25 * * *\": field 2 of 5 "
	                             "(hour): out of range \"25\""));
	free(out);
	free(errs);
	assert_jm_ok(harness_broker_start(&f->h, args, &f->broker));
	assert_jm_ok(jm_client_open(&f->client, f->h.broker_url));
	f->rpc = fixture_rpc_open(f->h.broker_url);
	assert_jm_ok(jm_client_schedule_list(f->client, &list, &count));
	assert_int_equal(count, 2);             /* "late" was never stored */
	assert_true(list[1].last_fired_us > 0); /* tick kept its last run */
	jm_schedules_free(list, count);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(
	        test_a_one_second_schedule_runs_every_second_and_catches_up_once_after_a_sigkill,
	        stack_close),
	    cmocka_unit_test_teardown(test_a_schedule_added_with_the_cli_survives_a_restart,
	                              stack_close),
	    cmocka_unit_test_teardown(
	        test_bad_expressions_and_zones_are_refused_with_the_field_named, stack_close),
	    cmocka_unit_test_teardown(test_a_schedule_run_over_a_limit_is_not_submitted,
	                              stack_close),
	    cmocka_unit_test_teardown(test_schedules_in_the_config_file_are_put_at_start,
	                              stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
