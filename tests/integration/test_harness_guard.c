/* No process a test started outlives it, however the test ends: each case
 * runs harness_victim, which starts a real jobmesh-broker through the
 * harness and then fails an assertion, aborts, crashes, or is killed as a
 * ctest timeout kills; afterwards the broker's PID must be gone.
 *
 * This test is the subreaper of what it starts (PR_SET_CHILD_SUBREAPER),
 * so a broker orphaned by its dead victim becomes its child: it can tell a
 * dead broker from a zombie, and kill one that survived, so even a failing
 * run of this test leaves nothing behind. */
#include "jm_test.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "fixture.h"
#include "harness.h"

#define GUARD_TEST_START_MS 30000
#define GUARD_TEST_EXIT_MS 30000

struct guard_test {
	struct harness h;
	pid_t broker_pid; /* 0 until the victim published it */
};

static int guard_test_setup(void **state)
{
	struct guard_test *t = calloc(1, sizeof *t);
	assert_non_null(t);
	*state = t;
	assert_jm_ok(harness_init(&t->h, "harness_guard"));
	return 0;
}

/* True while pid runs a jobmesh-broker (not a zombie, not reused). */
static bool broker_is_alive(pid_t pid)
{
	if (pid <= 0 || fixture_pid_is_gone(pid))
		return false;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	FILE *fp = fopen(path, "r"); /* /proc files have no size to stat */
	if (fp == NULL)
		return false;
	char argv0[512];
	size_t got = fread(argv0, 1, sizeof argv0 - 1, fp);
	fclose(fp);
	argv0[got] = '\0'; /* argv[0] ends at the first NUL */
	return strstr(argv0, "jobmesh-broker") != NULL;
}

/* Kills a broker that survived its victim (the test has failed by then),
 * and reaps it if it came to us. */
static int guard_test_teardown(void **state)
{
	struct guard_test *t = *state;
	if (t == NULL)
		return 0;
	if (broker_is_alive(t->broker_pid)) {
		fprintf(stderr, "killing surviving broker pid %d\n", (int)t->broker_pid);
		kill(t->broker_pid, SIGKILL);
	}
	if (t->broker_pid > 0)
		waitpid(t->broker_pid, NULL, WNOHANG);
	harness_fini(&t->h);
	free(t);
	*state = NULL;
	return 0;
}

struct pid_file {
	const char *path;
	pid_t pid;
};

static bool pid_file_written_cb(void *arg)
{
	struct pid_file *f = arg;
	FILE *fp = fopen(f->path, "r");
	if (fp == NULL)
		return false;
	int pid = 0;
	bool ok = fscanf(fp, "%d", &pid) == 1 && pid > 0;
	fclose(fp);
	f->pid = ok ? (pid_t)pid : 0;
	return ok;
}

/* Starts the victim in mode and waits for its broker's PID (by then the
 * victim may be dying already). */
static struct harness_proc victim_start(struct guard_test *t, const char *mode)
{
	const char *pid_path = harness_path(&t->h, "broker.pid");
	const char *bin = harness_bin("harness_victim");
	assert_non_null(pid_path);
	assert_non_null(bin);
	char *argv[] = {(char *)bin, (char *)mode, t->h.dir, (char *)pid_path, NULL};
	struct harness_proc victim;
	assert_jm_ok(harness_spawn(&t->h, "victim", argv, &victim));
	struct pid_file f = {pid_path, 0};
	if (!harness_wait_for(GUARD_TEST_START_MS, pid_file_written_cb, &f,
	                      "the victim's broker PID"))
		fixture_fail_with_logs(&t->h, NULL, "victim (%s) never started its broker", mode);
	t->broker_pid = f.pid;
	return victim;
}

/* Waits for the victim to end (after sending signal, if not 0) and returns
 * its exit status (code, or 128 + signal). */
static int victim_end(struct guard_test *t, struct harness_proc *victim, int signal)
{
	int status = -1;
	if (harness_stop(victim, signal, GUARD_TEST_EXIT_MS, &status) != 0)
		fixture_fail_with_logs(&t->h, NULL, "the victim did not end");
	return status;
}

/* The guard's table did the killing: the victim reaped its broker before
 * it died, so the PID is gone outright (not even a zombie left to us), and
 * the victim said so. */
static void assert_broker_killed_by_the_guard(struct guard_test *t)
{
	errno = 0;
	if (kill(t->broker_pid, 0) == 0 || errno != ESRCH)
		fixture_fail_with_logs(&t->h, NULL, "broker pid %d outlived its test (%s)",
		                       (int)t->broker_pid, strerror(errno));
	const char *err_path = harness_path(&t->h, "victim.err");
	if (fixture_count_in_file(err_path, "killed 1 process") != 1)
		fixture_fail_with_logs(&t->h, NULL, "the victim's guard did not report its kill");
}

static void test_a_failed_assertion_without_teardown_leaves_no_broker(void **state)
{
	struct guard_test *t = *state;
	struct harness_proc victim = victim_start(t, "fail");
	int status = victim_end(t, &victim, 0);
	assert_int_equal(status, 1); /* cmocka: one test failed */
	assert_broker_killed_by_the_guard(t);
}

static void test_abort_leaves_no_broker(void **state)
{
	struct guard_test *t = *state;
	struct harness_proc victim = victim_start(t, "abort");
	assert_int_equal(victim_end(t, &victim, 0), 128 + SIGABRT);
	assert_broker_killed_by_the_guard(t);
}

static void test_a_crash_leaves_no_broker(void **state)
{
	struct guard_test *t = *state;
	struct harness_proc victim = victim_start(t, "segv");
	/* 128 + SIGSEGV; under the sanitizers 1 (ASan reports the crash) or
	 * 128 + SIGABRT (UBSan reports the null store, then aborts). */
	int status = victim_end(t, &victim, 0);
	if (status != 128 + SIGSEGV && status != 1 && status != 128 + SIGABRT)
		fixture_fail_with_logs(&t->h, NULL, "victim exit status %d", status);
	assert_broker_killed_by_the_guard(t);
}

static void test_sigterm_from_a_timeout_leaves_no_broker(void **state)
{
	struct guard_test *t = *state;
	struct harness_proc victim = victim_start(t, "wait");
	assert_true(broker_is_alive(t->broker_pid));
	/* Dies of the SIGTERM itself (re-raised), as ctest expects. */
	assert_int_equal(victim_end(t, &victim, SIGTERM), 128 + SIGTERM);
	assert_broker_killed_by_the_guard(t);
}

struct orphan {
	pid_t pid;
	int wait_status;
	bool reaped;
};

/* The orphaned broker is our child now (subreaper): reap it once dead. */
static bool orphan_reaped_cb(void *arg)
{
	struct orphan *o = arg;
	pid_t got = waitpid(o->pid, &o->wait_status, WNOHANG);
	o->reaped = got == o->pid;
	return o->reaped;
}

static void test_sigkill_of_the_test_takes_its_broker_along(void **state)
{
	struct guard_test *t = *state;
	struct harness_proc victim = victim_start(t, "wait");
	assert_true(broker_is_alive(t->broker_pid));
	/* No handler runs on SIGKILL: only PR_SET_PDEATHSIG can act. */
	assert_int_equal(victim_end(t, &victim, SIGKILL), 128 + SIGKILL);
	struct orphan o = {t->broker_pid, 0, false};
	if (!harness_wait_for(GUARD_TEST_EXIT_MS, orphan_reaped_cb, &o,
	                      "the orphaned broker to die"))
		fixture_fail_with_logs(&t->h, NULL, "broker pid %d outlived its SIGKILLed test",
		                       (int)t->broker_pid);
	assert_true(WIFSIGNALED(o.wait_status));
	assert_int_equal(WTERMSIG(o.wait_status), SIGKILL);
}

int main(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		perror("prctl(PR_SET_CHILD_SUBREAPER)");
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_a_failed_assertion_without_teardown_leaves_no_broker, guard_test_setup,
	        guard_test_teardown),
	    cmocka_unit_test_setup_teardown(test_abort_leaves_no_broker, guard_test_setup,
	                                    guard_test_teardown),
	    cmocka_unit_test_setup_teardown(test_a_crash_leaves_no_broker, guard_test_setup,
	                                    guard_test_teardown),
	    cmocka_unit_test_setup_teardown(test_sigterm_from_a_timeout_leaves_no_broker,
	                                    guard_test_setup, guard_test_teardown),
	    cmocka_unit_test_setup_teardown(test_sigkill_of_the_test_takes_its_broker_along,
	                                    guard_test_setup, guard_test_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
