/* The exec handler (worker/exec.c): the contract a command sees (stdin,
 * environment, stdout, exit codes), and that a stuck, noisy or hostile
 * command can neither hang the worker nor outlive its timeout. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jobmesh/error.h>

#include "../../worker/exec.h"
#include "clock.h"

static struct exec_spec spec_for(const char *command)
{
	struct exec_spec spec = {
	    .command = command,
	    .job = {.job_id = 42,
	            .type = "email.send",
	            .queue = "emails",
	            .attempt = 2,
	            .timeout_ms = 30000},
	    .abandon_fd = -1,
	};
	return spec;
}

static uint64_t elapsed_ms_since(uint64_t start_us)
{
	return (jm_mono_us() - start_us) / 1000u;
}

static void test_exec_echoes_payload_as_result(void **state)
{
	struct exec_spec spec = spec_for("cat");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, "hello, jobmesh", 14, &result), 0);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_int_equal(result.exit_code, 0);
	assert_int_equal(result.output_len, 14);
	assert_memory_equal(result.output, "hello, jobmesh", 14);
	assert_string_equal(result.error, "");
	exec_result_fini(&result);
}

static void test_exec_empty_payload_gives_eof_at_once(void **state)
{
	struct exec_spec spec = spec_for("wc -c");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_non_null(result.output);
	assert_int_equal(atoi((const char *)result.output), 0);
	exec_result_fini(&result);
}

static void test_exec_exports_job_variables(void **state)
{
	setenv("JOBMESH_TEST_INHERITED", "yes", 1);
	setenv("JOBMESH_JOB_ID", "stale", 1); /* must be replaced, not duplicated */
	struct exec_spec spec = spec_for("printf '%s|%s|%s|%s|%s|%s' \"$JOBMESH_JOB_ID\" "
	                                 "\"$JOBMESH_JOB_TYPE\" \"$JOBMESH_QUEUE\" "
	                                 "\"$JOBMESH_ATTEMPT\" \"$JOBMESH_TIMEOUT_MS\" "
	                                 "\"$JOBMESH_TEST_INHERITED\"");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	unsetenv("JOBMESH_JOB_ID");
	unsetenv("JOBMESH_TEST_INHERITED");
	assert_int_equal(result.outcome, EXEC_OK);
	const char *want = "42|email.send|emails|2|30000|yes";
	assert_int_equal(result.output_len, strlen(want));
	assert_memory_equal(result.output, want, strlen(want));
	exec_result_fini(&result);
}

static void test_exec_exit_100_fails_permanently(void **state)
{
	struct exec_spec spec = spec_for("echo 'bad address' >&2; exit 100");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_int_equal(result.outcome, EXEC_PERMANENT);
	assert_int_equal(result.exit_code, EXEC_EXIT_PERMANENT);
	assert_string_equal(result.error, "exit code 100: bad address");
	assert_null(result.output);
	exec_result_fini(&result);
}

static void test_exec_exit_3_fails_retryably_with_stderr_text(void **state)
{
	struct exec_spec spec =
	    spec_for("echo partial; echo 'smtp: connection refused' >&2; exit 3");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_int_equal(result.outcome, EXEC_RETRY);
	assert_int_equal(result.exit_code, 3);
	assert_string_equal(result.error, "exit code 3: smtp: connection refused");
	assert_null(result.output); /* a failed command's stdout is not a result */
	exec_result_fini(&result);
}

static void test_exec_error_keeps_only_the_tail_of_stderr(void **state)
{
	/* 5000 x's then a last line: the text ends with that line and fits. */
	struct exec_spec spec = spec_for(
	    "head -c 5000 /dev/zero | tr '\\0' x >&2; echo >&2; echo 'the real cause' >&2; "
	    "exit 7");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_int_equal(result.outcome, EXEC_RETRY);
	assert_true(strncmp(result.error, "exit code 7: ...", 16) == 0);
	size_t len = strlen(result.error);
	assert_true(len < EXEC_ERROR_MAX);
	assert_string_equal(result.error + len - strlen("the real cause"), "the real cause");
	exec_result_fini(&result);
}

static void test_exec_death_by_signal_is_retryable(void **state)
{
	struct exec_spec spec = spec_for("kill -KILL $$");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_int_equal(result.outcome, EXEC_RETRY);
	assert_int_equal(result.term_signal, SIGKILL);
	assert_string_equal(result.error, "killed by signal 9 (SIGKILL)");
	exec_result_fini(&result);
}

static void test_exec_kills_command_past_its_timeout(void **state)
{
	struct exec_spec spec = spec_for("sleep 30");
	spec.timeout_ms = 300;
	struct exec_result result;
	uint64_t start_us = jm_mono_us();
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	uint64_t took_ms = elapsed_ms_since(start_us);
	assert_int_equal(result.outcome, EXEC_RETRY);
	assert_true(result.timed_out);
	assert_string_equal(result.error, "timed out after 300 ms");
	assert_true(took_ms >= 290);
	assert_true(took_ms < 3000);
	exec_result_fini(&result);
}

static void test_exec_sigkills_command_that_ignores_sigterm_after_grace(void **state)
{
	/* The ignored SIGTERM is inherited by sleep, so only SIGKILL ends it. */
	struct exec_spec spec = spec_for("trap '' TERM; sleep 30");
	spec.timeout_ms = 300;
	spec.kill_grace_ms = 400;
	struct exec_result result;
	uint64_t start_us = jm_mono_us();
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	uint64_t took_ms = elapsed_ms_since(start_us);
	assert_int_equal(result.outcome, EXEC_RETRY);
	assert_true(result.timed_out);
	assert_int_equal(result.term_signal, SIGKILL);
	assert_true(strncmp(result.error, "timed out after 300 ms", 22) == 0);
	assert_true(took_ms >= 690);
	assert_true(took_ms < 3000);
	exec_result_fini(&result);
}

static bool process_is_gone(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return true;
	char line[512] = "";
	char *got = fgets(line, sizeof line, f);
	fclose(f);
	if (got == NULL)
		return true;
	char *close_paren = strrchr(line, ')');
	return close_paren != NULL && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

static void test_exec_timeout_kills_grandchildren_too(void **state)
{
	char path[] = "/tmp/test_exec_grandchild_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	char command[256];
	/* The grandchild ignores SIGTERM and no longer holds our pipes. */
	snprintf(command, sizeof command,
	         "(trap '' TERM; exec sleep 30) </dev/null >/dev/null 2>&1 & echo $! > %s; wait",
	         path);
	struct exec_spec spec = spec_for(command);
	spec.timeout_ms = 300;
	spec.kill_grace_ms = 200;
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_true(result.timed_out);
	exec_result_fini(&result);

	FILE *f = fopen(path, "r");
	assert_non_null(f);
	int grandchild = 0;
	assert_int_equal(fscanf(f, "%d", &grandchild), 1);
	fclose(f);
	unlink(path);
	assert_true(grandchild > 0);
	/* The kill is already sent; wait (bounded) for init to reap it. */
	uint64_t deadline_us = jm_mono_us() + 2000000u;
	while (!process_is_gone(grandchild) && jm_mono_us() < deadline_us)
		usleep(10000);
	if (!process_is_gone(grandchild)) {
		kill(grandchild, SIGKILL);
		fail_msg("grandchild %d still running 2 s after its job timed out", grandchild);
	}
}

static void test_exec_abandon_fd_stops_the_command(void **state)
{
	int abandon_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(abandon_fd >= 0);
	struct exec_spec spec = spec_for("sleep 30");
	spec.abandon_fd = abandon_fd;
	uint64_t one = 1;
	/* Already signalled: the command is stopped as soon as it started. */
	assert_int_equal(write(abandon_fd, &one, sizeof one), (ssize_t)sizeof one);
	struct exec_result result;
	uint64_t start_us = jm_mono_us();
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_true(elapsed_ms_since(start_us) < 3000);
	assert_int_equal(result.outcome, EXEC_RETRY);
	assert_true(result.abandoned);
	assert_false(result.timed_out);
	assert_true(strncmp(result.error, "abandoned at the broker's request", 33) == 0);
	exec_result_fini(&result);
	close(abandon_fd);
}

static void test_exec_fails_result_over_the_bound(void **state)
{
	struct exec_spec spec = spec_for("head -c 1048577 /dev/zero");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_int_equal(result.outcome, EXEC_RETRY);
	assert_string_equal(result.error, "result over 1 MiB");
	assert_null(result.output);
	exec_result_fini(&result);
}

static void test_exec_accepts_result_of_exactly_the_bound(void **state)
{
	struct exec_spec spec = spec_for("head -c 1048576 /dev/zero");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_int_equal(result.output_len, 1u << 20);
	exec_result_fini(&result);
}

static void test_exec_endless_output_is_stopped_at_the_bound(void **state)
{
	struct exec_spec spec = spec_for("yes jobmesh");
	spec.timeout_ms = 20000;
	struct exec_result result;
	uint64_t start_us = jm_mono_us();
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_true(elapsed_ms_since(start_us) < 5000);
	assert_int_equal(result.outcome, EXEC_RETRY);
	assert_string_equal(result.error, "result over 1 MiB");
	exec_result_fini(&result);
}

static void test_exec_large_payload_to_writer_first_command_does_not_deadlock(void **state)
{
	/* 512 KiB of output (far past a pipe buffer) before reading a byte of
	 * the 4 MiB payload: only a loop serving both pipes finishes this. */
	size_t payload_len = 4u << 20;
	uint8_t *payload = malloc(payload_len);
	assert_non_null(payload);
	memset(payload, 'p', payload_len);
	struct exec_spec spec = spec_for("head -c 524288 /dev/zero; wc -c");
	spec.timeout_ms = 20000;
	struct exec_result result;
	assert_int_equal(exec_run(&spec, payload, payload_len, &result), 0);
	free(payload);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_false(result.timed_out);
	assert_true(result.output_len > 524288);
	assert_int_equal(atol((const char *)result.output + 524288), 4194304);
	exec_result_fini(&result);
}

static void test_exec_command_that_closes_stdin_early_succeeds(void **state)
{
	size_t payload_len = 4u << 20;
	uint8_t *payload = malloc(payload_len);
	assert_non_null(payload);
	memset(payload, 'q', payload_len);
	struct exec_spec spec = spec_for("head -c 3");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, payload, payload_len, &result), 0);
	free(payload);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_int_equal(result.output_len, 3);
	assert_memory_equal(result.output, "qqq", 3);
	exec_result_fini(&result);
}

static void test_exec_closes_inherited_descriptors(void **state)
{
	int fd = open("/dev/null", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(dup2(fd, 42), 42); /* no O_CLOEXEC on 42 */
	close(fd);
	struct exec_spec spec = spec_for("if [ -e /proc/$$/fd/42 ]; then exit 1; fi; exit 0");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	close(42);
	assert_int_equal(result.outcome, EXEC_OK);
	exec_result_fini(&result);
}

static void test_exec_child_gets_default_signal_state(void **state)
{
	/* The worker blocks SIGTERM (sigwait thread) and ignores SIGPIPE; a
	 * command must see neither, or a timeout's SIGTERM would not stop it. */
	sigset_t block, old_mask;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old_mask);
	struct sigaction ignore = {.sa_handler = SIG_IGN}, old_pipe;
	sigaction(SIGPIPE, &ignore, &old_pipe);
	struct exec_spec spec = spec_for("grep -E '^(SigBlk|SigIgn)' /proc/self/status");
	struct exec_result result;
	int rc = exec_run(&spec, NULL, 0, &result);
	sigaction(SIGPIPE, &old_pipe, NULL);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	assert_int_equal(rc, 0);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_non_null(result.output);
	unsigned long long blocked = ~0ull, ignored = ~0ull;
	const char *blk = strstr((const char *)result.output, "SigBlk:");
	const char *ign = strstr((const char *)result.output, "SigIgn:");
	if (blk != NULL)
		blocked = strtoull(blk + 7, NULL, 16);
	if (ign != NULL)
		ignored = strtoull(ign + 7, NULL, 16);
	exec_result_fini(&result);
	assert_int_equal(blocked, 0);
	/* Only the standard signals: glibc's posix_spawn leaves its own two
	 * real-time signals (32, 33) ignored, which no command uses. */
	assert_int_equal(ignored & 0x7FFFFFFFull, 0); /* bit n-1 is signal n */
}

static void test_exec_refuses_missing_command(void **state)
{
	struct exec_spec spec = spec_for(NULL);
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), JM_EINVAL);
	exec_result_fini(&result);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exec_echoes_payload_as_result),
	    cmocka_unit_test(test_exec_empty_payload_gives_eof_at_once),
	    cmocka_unit_test(test_exec_exports_job_variables),
	    cmocka_unit_test(test_exec_exit_100_fails_permanently),
	    cmocka_unit_test(test_exec_exit_3_fails_retryably_with_stderr_text),
	    cmocka_unit_test(test_exec_error_keeps_only_the_tail_of_stderr),
	    cmocka_unit_test(test_exec_death_by_signal_is_retryable),
	    cmocka_unit_test(test_exec_kills_command_past_its_timeout),
	    cmocka_unit_test(test_exec_sigkills_command_that_ignores_sigterm_after_grace),
	    cmocka_unit_test(test_exec_timeout_kills_grandchildren_too),
	    cmocka_unit_test(test_exec_abandon_fd_stops_the_command),
	    cmocka_unit_test(test_exec_fails_result_over_the_bound),
	    cmocka_unit_test(test_exec_accepts_result_of_exactly_the_bound),
	    cmocka_unit_test(test_exec_endless_output_is_stopped_at_the_bound),
	    cmocka_unit_test(test_exec_large_payload_to_writer_first_command_does_not_deadlock),
	    cmocka_unit_test(test_exec_command_that_closes_stdin_early_succeeds),
	    cmocka_unit_test(test_exec_closes_inherited_descriptors),
	    cmocka_unit_test(test_exec_child_gets_default_signal_state),
	    cmocka_unit_test(test_exec_refuses_missing_command),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
