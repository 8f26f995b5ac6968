/* Progress through real processes: a shell handler run by jobmesh-worker
 * writes progress lines on fd 3, the worker sends them to jobmesh-broker,
 * and the client SDK reads them back with jm_client_status while the job
 * runs and after it completed.
 *
 * Handlers that must be observed mid-run wait for a gate file the test
 * creates (bounded: they give up after 30 s), so no test sleeps to wait for
 * a step: each step is awaited by polling the job's status to a deadline. */
#define _GNU_SOURCE
#include "jm_test.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jobmesh/client.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"
#include "stack.h"

#define WAIT_MS 20000

/* gate NAME: waits (bounded, 30 s) until $dir/NAME exists. */
#define GATE_FUNCTION                                                                              \
	"gate() { i=0; while [ ! -e \"$dir/$1\" ] && [ $i -lt 600 ]; do sleep 0.05; "              \
	"i=$((i + 1)); done; }\n"

/* Four steps, each after its gate; the last line is written just before
 * the handler exits, so only the flush before the ACK can deliver it. */
static const char steps_script[] = "#!/bin/sh\n"
                                   "dir=$1\n" GATE_FUNCTION "echo 'progress 1 4 step-one' >&3\n"
                                   "gate go-2; echo 'progress 2 4 step-two' >&3\n"
                                   "gate go-3; echo 'progress 3 4 step-three' >&3\n"
                                   "gate go-4; cat; echo 'progress 4 4 step-four' >&3\n";

/* 20,000 lines as fast as the shell writes them, then a fraction. */
static const char burst_script[] = "#!/bin/sh\n"
                                   "dir=$1\n" GATE_FUNCTION "i=0; while [ $i -lt 20000 ]; do\n"
                                   "  echo \"progress $i 20000 burst $i\"; i=$((i + 1))\n"
                                   "done >&3\n"
                                   "echo 'progress 0.5 halfway' >&3\n"
                                   "gate go-burst; echo 'progress 1 finished' >&3; echo ok\n";

/* Ticks until it is stopped; records its pid first. */
static const char tick_script[] = "#!/bin/sh\n"
                                  "echo $$ > \"$1/tick.pid\"\n"
                                  "i=0; while [ $i -lt 1500 ]; do\n"
                                  "  echo \"progress $i 1500 tick\" >&3; i=$((i + 1)); sleep 0.02\n"
                                  "done\n";

/* A broker with broker_args and a client; start_worker starts the worker. */
static struct stack *fixture_start(void **state, const char *name, const char *const *broker_args)
{
	return stack_open(state, name, broker_args, NULL, STACK_CLIENT);
}

/* Writes script as <dir>/<file> and starts worker "w" running it for jobs
 * of type on queue "progress", plus extra worker flags. */
static void start_worker(struct stack *f, const char *file, const char *script, const char *type,
                         const char *const *extra)
{
	const char *path = harness_write_file(&f->h, file, script, 0755);
	assert_non_null(path);
	char handler[HARNESS_DIR_MAX * 2 + 64];
	snprintf(handler, sizeof handler, "%s=%s %s", type, path, f->h.dir);
	const char *const base[] = {"--queue",     "progress", "--handler", handler,
	                            "--worker-id", "w",        NULL};
	const char *args[16];
	fixture_args_join(args, 16, base, extra);
	assert_jm_ok(harness_worker_start(&f->h, "w", args, &f->worker));
}

static uint64_t submit(struct stack *f, const char *type, const char *payload)
{
	jm_job_spec spec = {.queue = "progress",
	                    .type = type,
	                    .payload = payload,
	                    .payload_len = strlen(payload),
	                    .max_attempts = 1};
	uint64_t id = 0;
	if (jm_client_submit(f->client, &spec, &id) != 0)
		fail_msg("submit: %s", jm_client_last_error());
	return id;
}

static void open_gate(struct stack *f, const char *name)
{
	assert_non_null(harness_write_file(&f->h, name, "", 0644));
}

struct progress_wait {
	struct stack *f;
	uint64_t id;
	uint64_t done;
	uint64_t total;
	const char *message;
	/* What the last look saw, for the failure message. */
	int state;
	uint64_t seen_done;
	uint64_t seen_total;
	char seen_message[128];
};

static bool job_shows_progress(void *arg)
{
	struct progress_wait *w = arg;
	jm_job_info info = {0};
	if (jm_client_status(w->f->client, w->id, &info) != 0)
		return false;
	w->state = info.state;
	w->seen_done = info.progress_done;
	w->seen_total = info.progress_total;
	snprintf(w->seen_message, sizeof w->seen_message, "%s",
	         info.progress_message ? info.progress_message : "(null)");
	bool match = info.progress_done == w->done && info.progress_total == w->total &&
	             info.progress_message != NULL && w->message != NULL &&
	             strcmp(info.progress_message, w->message) == 0;
	jm_job_info_fini(&info);
	return match;
}

/* Waits until the job's status shows done of total with message; returns
 * the state it had then. */
static int await_progress(struct stack *f, uint64_t id, uint64_t done, uint64_t total,
                          const char *message)
{
	struct progress_wait w = {
	    .f = f, .id = id, .done = done, .total = total, .message = message};
	char what[256];
	snprintf(what, sizeof what, "job %llu to show progress %llu of %llu \"%s\"",
	         (unsigned long long)id, (unsigned long long)done, (unsigned long long)total,
	         message);
	if (!harness_wait_for(WAIT_MS, job_shows_progress, &w, what)) {
		harness_print_logs(&f->h, 20);
		fail_msg("%s; last seen: state %s, %llu of %llu \"%s\"", what,
		         jm_job_state_name(w.state), (unsigned long long)w.seen_done,
		         (unsigned long long)w.seen_total, w.seen_message);
	}
	return w.state;
}

static void test_progress_lines_show_in_status_while_the_job_runs_and_after(void **state)
{
	struct stack *f = fixture_start(state, "progress-steps", NULL);
	start_worker(f, "steps.sh", steps_script, "steps", NULL);
	uint64_t id = submit(f, "steps", "the result");

	assert_int_equal(await_progress(f, id, 1, 4, "step-one"), JM_STATE_ACTIVE);
	open_gate(f, "go-2");
	assert_int_equal(await_progress(f, id, 2, 4, "step-two"), JM_STATE_ACTIVE);
	open_gate(f, "go-3");
	assert_int_equal(await_progress(f, id, 3, 4, "step-three"), JM_STATE_ACTIVE);
	open_gate(f, "go-4");

	jm_job_info info = {0};
	fixture_wait_finished(&f->h, f->client, id, WAIT_MS, &info);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	jm_job_info_fini(&info);
	/* Written just before the handler exited: sent before the ACK. */
	assert_jm_ok(jm_client_result(f->client, id, &info));
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	assert_int_equal(info.progress_done, 4);
	assert_int_equal(info.progress_total, 4);
	assert_string_equal(info.progress_message, "step-four");
	assert_int_equal(info.result_len, strlen("the result"));
	assert_memory_equal(info.result, "the result", strlen("the result"));
	jm_job_info_fini(&info);
}

struct event_count {
	atomic_uint progress_events; /* one job runs: every one is its */
};

static void count_progress_cb(const jm_event *ev, void *arg)
{
	struct event_count *count = arg;
	if (ev->kind == JM_EVENT_JOB_PROGRESS)
		atomic_fetch_add(&count->progress_events, 1);
}

static void test_progress_burst_is_coalesced_and_a_fraction_reads_as_of_10000(void **state)
{
	struct stack *f = fixture_start(state, "progress-burst", NULL);
	/* Every PROGRESS the broker takes publishes one event: count them. */
	struct event_count count = {0};
	atomic_init(&count.progress_events, 0);
	jm_subscription *sub = NULL;
	assert_jm_ok(
	    jm_client_subscribe(f->client, "job/", false, count_progress_cb, &count, &sub));
	start_worker(f, "burst.sh", burst_script, "burst", NULL);
	uint64_t start_us = jm_mono_us();
	uint64_t id = submit(f, "burst", "");

	/* The latest value wins over the 20,000 before it. */
	assert_int_equal(await_progress(f, id, 5000, 10000, "halfway"), JM_STATE_ACTIVE);
	uint64_t elapsed_ms = (jm_mono_us() - start_us) / 1000u;
	unsigned events = atomic_load(&count.progress_events);
	/* At most one PROGRESS per 100 ms (the first at once), plus slack
	 * for a broker that published one as our clock read. */
	unsigned bound = (unsigned)(elapsed_ms / 100u) + 3u;
	if (events > bound)
		fail_msg("%u progress events in %llu ms for one job: more than %u", events,
		         (unsigned long long)elapsed_ms, bound);
	print_message("%u progress events for 20,001 lines in %llu ms\n", events,
	              (unsigned long long)elapsed_ms);

	open_gate(f, "go-burst");
	jm_job_info info = {0};
	fixture_wait_finished(&f->h, f->client, id, WAIT_MS, &info);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	assert_int_equal(info.progress_done, 10000);
	assert_int_equal(info.progress_total, 10000);
	assert_string_equal(info.progress_message, "finished");
	jm_job_info_fini(&info);
	jm_subscription_close(sub);
}

static void test_malformed_progress_lines_never_fail_the_job_and_warn_once(void **state)
{
	struct stack *f = fixture_start(state, "progress-malformed", NULL);
	static const char script[] = "#!/bin/sh\n"
	                             "echo 'progress 1 3 good' >&3\n"
	                             "echo 'progress nonsense' >&3\n"
	                             "echo 'progress 7 3 past the total' >&3\n"
	                             "echo 'percent 50' >&3\n"
	                             "echo 'progress 2 3 good again' >&3\n"
	                             "exec 3>&-\n"
	                             "echo fine\n";
	start_worker(f, "malformed.sh", script, "malformed", NULL);
	uint64_t id = submit(f, "malformed", "");
	jm_job_info info = {0};
	fixture_wait_finished(&f->h, f->client, id, WAIT_MS, &info);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	jm_job_info_fini(&info);
	assert_jm_ok(jm_client_result(f->client, id, &info));
	assert_int_equal(info.progress_done, 2);
	assert_int_equal(info.progress_total, 3);
	assert_string_equal(info.progress_message, "good again");
	assert_string_equal((const char *)info.result, "fine\n");
	jm_job_info_fini(&info);
	const char *log = harness_path(&f->h, "w.err");
	assert_non_null(log);
	size_t warnings = fixture_count_in_file(log, "ignoring progress line");
	if (warnings != 1) {
		harness_print_logs(&f->h, 20);
		fail_msg("%zu warnings about bad progress lines for one job, expected 1", warnings);
	}
}

struct gone_wait {
	pid_t pid;
};

static bool handler_is_gone(void *arg)
{
	return fixture_pid_is_gone(((struct gone_wait *)arg)->pid);
}

/* Any tick will do: true once one arrived. */
static bool job_shows_any_tick(void *arg)
{
	struct progress_wait *w = arg;
	job_shows_progress(w);
	return w->seen_total == 1500;
}

struct log_wait {
	const char *path;
	const char *text;
};

static bool log_has_text(void *arg)
{
	struct log_wait *w = arg;
	return fixture_count_in_file(w->path, w->text) > 0;
}

static void test_progress_refused_as_stale_abandons_the_job(void **state)
{
	/* Heartbeats every 60 s: only the refused PROGRESS can tell the
	 * worker that its lease is gone within the seconds this test waits. */
	const char *broker_args[] = {"--dead-after-ms", "120000", NULL};
	struct stack *f = fixture_start(state, "progress-stale", broker_args);
	const char *worker_args[] = {"--heartbeat-ms", "60000", "--kill-grace-ms", "200", NULL};
	start_worker(f, "tick.sh", tick_script, "tick", worker_args);
	uint64_t id = submit(f, "tick", "");
	struct progress_wait first = {.f = f, .id = id};
	if (!harness_wait_for(WAIT_MS, job_shows_any_tick, &first, "a first tick")) {
		harness_print_logs(&f->h, 20);
		fail_msg("no progress from the tick handler");
	}
	assert_int_equal(first.state, JM_STATE_ACTIVE);

	jm_job_info info = {0};
	assert_jm_ok(jm_client_cancel(f->client, id, &info));
	assert_int_equal(info.state, JM_STATE_CANCELLED);
	jm_job_info_fini(&info);

	char *pid_text = harness_read_file(harness_path(&f->h, "tick.pid"), NULL);
	assert_non_null(pid_text);
	struct gone_wait gone = {.pid = (pid_t)atoi(pid_text)};
	free(pid_text);
	assert_true(gone.pid > 0);
	if (!harness_wait_for(5000, handler_is_gone, &gone,
	                      "the cancelled job's handler to stop")) {
		harness_print_logs(&f->h, 20);
		fail_msg("handler %d still runs 5 s after its job was cancelled", (int)gone.pid);
	}
	/* The worker logs the refusal after it marked the lease abandoned, so
	 * the handler may be gone a moment before the line is written. */
	struct log_wait said = {.path = harness_path(&f->h, "w.err"),
	                        .text = "the lease is no longer ours; abandoning it"};
	assert_non_null(said.path);
	if (!harness_wait_for(5000, log_has_text, &said, "the worker to log the refusal")) {
		harness_print_logs(&f->h, 20);
		fail_msg("the worker never logged that the lease is no longer ours");
	}
	assert_int_equal(fixture_count_in_file(said.path, said.text), 1);
}

#define PROGRESS_TEST(fn) cmocka_unit_test_teardown(fn, stack_close)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    PROGRESS_TEST(test_progress_lines_show_in_status_while_the_job_runs_and_after),
	    PROGRESS_TEST(test_progress_burst_is_coalesced_and_a_fraction_reads_as_of_10000),
	    PROGRESS_TEST(test_malformed_progress_lines_never_fail_the_job_and_warn_once),
	    PROGRESS_TEST(test_progress_refused_as_stale_abandons_the_job),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
