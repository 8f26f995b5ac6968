/* The exec handler (worker/exec.c): the contract a command sees (stdin,
 * environment, stdout, exit codes, progress lines on fd 3), and that a
 * stuck, noisy or hostile command can neither hang the worker nor outlive
 * its timeout. */
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

/* ---- the progress side channel (fd 3) ---- */

#define SEEN_KEEP 8

/* What the progress callback saw: every line counted and checked for order,
 * the first few kept whole. */
struct progress_seen {
	uint32_t count;
	struct exec_progress first[SEEN_KEEP];
	struct exec_progress last;
	bool out_of_order; /* for the burst: line i must say i of N */
};

static void progress_seen_cb(const struct exec_progress *progress, void *arg)
{
	struct progress_seen *seen = arg;
	if (seen->count < SEEN_KEEP)
		seen->first[seen->count] = *progress;
	if (progress->done != seen->count)
		seen->out_of_order = true;
	seen->last = *progress;
	seen->count++;
}

static void assert_progress(const struct exec_progress *got, uint64_t done, uint64_t total,
                            const char *message)
{
	assert_int_equal(got->done, done);
	assert_int_equal(got->total, total);
	assert_string_equal(got->message, message);
	assert_int_equal(got->message_len, strlen(message));
}

static void test_exec_progress_parse_accepts_both_forms(void **state)
{
	struct exec_progress p;
	const char *line = "progress 12 47 writing about/team";
	assert_true(exec_progress_parse(line, strlen(line), &p));
	assert_progress(&p, 12, 47, "writing about/team");
	line = "progress 0.25 fetching";
	assert_true(exec_progress_parse(line, strlen(line), &p));
	assert_progress(&p, 2500, EXEC_PROGRESS_FRACTION_TOTAL, "fetching");
	line = "progress\t3\t3  \t";
	assert_true(exec_progress_parse(line, strlen(line), &p));
	assert_progress(&p, 3, 3, "");
	line = "progress 1";
	assert_true(exec_progress_parse(line, strlen(line), &p));
	assert_progress(&p, 10000, 10000, "");
	line = "progress 0";
	assert_true(exec_progress_parse(line, strlen(line), &p));
	assert_progress(&p, 0, 10000, "");
	line = "progress .5 half way there\r";
	assert_true(exec_progress_parse(line, strlen(line), &p));
	assert_progress(&p, 5000, 10000, "half way there");
	line = "progress 0.33335 third";
	assert_true(exec_progress_parse(line, strlen(line), &p));
	assert_progress(&p, 3334, 10000, "third"); /* rounded to 4 decimals */
	line = "progress 1.000";
	assert_true(exec_progress_parse(line, strlen(line), &p));
	assert_progress(&p, 10000, 10000, "");
	/* Two whole numbers first: DONE TOTAL; otherwise a fraction. */
	line = "progress 1 3 parts";
	assert_true(exec_progress_parse(line, strlen(line), &p));
	assert_progress(&p, 1, 3, "parts");
	line = "progress 0.5 3 parts left";
	assert_true(exec_progress_parse(line, strlen(line), &p));
	assert_progress(&p, 5000, 10000, "3 parts left");
	line = "progress 18446744073709551615 18446744073709551615 max";
	assert_true(exec_progress_parse(line, strlen(line), &p));
	assert_progress(&p, UINT64_MAX, UINT64_MAX, "max");
}

static void test_exec_progress_parse_refuses_malformed_lines(void **state)
{
	static const char *const bad[] = {
	    "",
	    "progress",
	    "progress ",
	    "progres 1 2",
	    "Progress 1 2",
	    "progress1 2",
	    "xprogress 1 2",
	    "progress 5 3 done above total",
	    "progress 0 0 total zero",
	    "progress 1.5",
	    "progress 2",
	    "progress 10",
	    "progress -0.5",
	    "progress +1 2",
	    "progress 1e-1",
	    "progress 0,5",
	    "progress .",
	    "progress 0.5fetching",
	    "progress abc",
	    "progress 1.01",
	    "progress 18446744073709551616 18446744073709551617 overflow",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct exec_progress p;
		if (exec_progress_parse(bad[i], strlen(bad[i]), &p))
			fail_msg("\"%s\" parsed as %llu of %llu", bad[i],
			         (unsigned long long)p.done, (unsigned long long)p.total);
	}
	char *overlong = malloc(EXEC_PROGRESS_LINE_MAX + 2);
	assert_non_null(overlong);
	memset(overlong, 'm', EXEC_PROGRESS_LINE_MAX + 1);
	memcpy(overlong, "progress 1 2 ", 13);
	struct exec_progress p;
	assert_false(exec_progress_parse(overlong, EXEC_PROGRESS_LINE_MAX + 1, &p));
	assert_true(exec_progress_parse(overlong, EXEC_PROGRESS_LINE_MAX, &p));
	assert_int_equal(p.message_len, EXEC_PROGRESS_LINE_MAX - 13);
	free(overlong);
}

static void test_exec_progress_lines_on_fd_3_reach_the_callback_in_order(void **state)
{
	struct progress_seen seen = {0};
	struct exec_spec spec = spec_for("[ \"$JOBMESH_PROGRESS_FD\" = 3 ] || exit 9; "
	                                 "echo 'progress 0 47 starting' >&3; "
	                                 "echo 'progress 0.25 fetching' >&3; "
	                                 "echo 'progress 12 47 writing about/team' >&3; "
	                                 "printf 'progress 47 47' >&3; echo result");
	spec.progress_cb = progress_seen_cb;
	spec.progress_arg = &seen;
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_int_equal(result.progress_lines, 4);
	assert_int_equal(result.progress_malformed, 0);
	assert_int_equal(seen.count, 4);
	assert_progress(&seen.first[0], 0, 47, "starting");
	assert_progress(&seen.first[1], 2500, 10000, "fetching");
	assert_progress(&seen.first[2], 12, 47, "writing about/team");
	/* The last line had no newline: it still counts at exit. */
	assert_progress(&seen.first[3], 47, 47, "");
	assert_int_equal(result.output_len, 7);
	exec_result_fini(&result);
}

static void test_exec_malformed_progress_lines_are_ignored_and_never_fail_the_job(void **state)
{
	struct progress_seen seen = {0};
	/* Good lines say 0, 1, 2 of 3 (the callback checks the order), bad
	 * ones sit between them, one of them 3000 bytes long. */
	struct exec_spec spec =
	    spec_for("exec >&3; echo 'progress 0 3 a'; echo 'progres 1 3'; "
	             "echo 'progress 5 3 x'; echo; echo 'progress 1.5'; "
	             "echo 'progress 1 3 b'; "
	             "printf 'progress 1 2 '; head -c 3000 /dev/zero | tr '\\0' m; "
	             "echo; echo 'progress 0 0'; echo 'progress 2 3 c'; "
	             "echo 'garbage' ; exit 0");
	spec.progress_cb = progress_seen_cb;
	spec.progress_arg = &seen;
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_int_equal(result.progress_lines, 3);
	/* Blank lines are skipped without counting as malformed. */
	assert_int_equal(result.progress_malformed, 6);
	assert_int_equal(seen.count, 3);
	assert_false(seen.out_of_order);
	assert_progress(&seen.first[0], 0, 3, "a");
	assert_progress(&seen.first[1], 1, 3, "b");
	assert_progress(&seen.first[2], 2, 3, "c");
	exec_result_fini(&result);
}

static void test_exec_command_that_closes_fd_3_early_succeeds(void **state)
{
	struct progress_seen seen = {0};
	struct exec_spec spec =
	    spec_for("echo 'progress 0 1' >&3; exec 3>&-; sleep 0.2; cat; echo ' done'");
	spec.progress_cb = progress_seen_cb;
	spec.progress_arg = &seen;
	struct exec_result result;
	assert_int_equal(exec_run(&spec, "payload", 7, &result), 0);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_int_equal(seen.count, 1);
	assert_int_equal(result.output_len, 13);
	assert_memory_equal(result.output, "payload done\n", 13);
	exec_result_fini(&result);
}

static void test_exec_command_that_never_uses_fd_3_succeeds_without_a_callback(void **state)
{
	/* fd 3 is there (a pipe) even when nobody listens; lines are dropped. */
	struct exec_spec spec =
	    spec_for("case $(readlink /proc/self/fd/3) in pipe:*) ;; *) exit 9;; "
	             "esac; echo 'progress 1 2' >&3; echo ok");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_int_equal(result.progress_lines, 1);
	exec_result_fini(&result);
}

static void test_exec_progress_burst_of_10000_lines_does_not_deadlock(void **state)
{
	/* ~240 KB of progress, far past a pipe buffer, written while stdout
	 * and stderr are busy too: only one loop serving every pipe ends. */
	struct progress_seen seen = {0};
	struct exec_spec spec = spec_for("i=0; while [ $i -lt 10000 ]; do "
	                                 "echo \"progress $i 10000 step $i\" >&3; "
	                                 "[ $((i % 1000)) -eq 0 ] && echo out && echo err >&2; "
	                                 "i=$((i + 1)); done; head -c 200000 /dev/zero; exit 0");
	spec.timeout_ms = 60000;
	spec.progress_cb = progress_seen_cb;
	spec.progress_arg = &seen;
	struct exec_result result;
	uint64_t start_us = jm_mono_us();
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_true(elapsed_ms_since(start_us) < 30000);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_false(result.timed_out);
	assert_int_equal(result.progress_lines, 10000);
	assert_int_equal(result.progress_malformed, 0);
	assert_int_equal(seen.count, 10000);
	assert_false(seen.out_of_order);
	assert_progress(&seen.last, 9999, 10000, "step 9999");
	assert_int_equal(result.output_len, 10 * 4 + 200000);
	exec_result_fini(&result);
}

static void test_exec_background_holder_of_fd_3_does_not_hold_up_the_job(void **state)
{
	/* The background sleep keeps only fd 3 (and prints its pid). */
	struct exec_spec spec = spec_for("sleep 30 </dev/null >/dev/null 2>&1 & echo $!");
	struct exec_result result;
	uint64_t start_us = jm_mono_us();
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	uint64_t took_ms = elapsed_ms_since(start_us);
	int holder = result.output != NULL ? atoi((const char *)result.output) : 0;
	if (holder > 0)
		kill(holder, SIGKILL);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_true(holder > 0);
	assert_true(took_ms < 2000);
	exec_result_fini(&result);
}

static void test_exec_progress_pipe_is_not_given_past_fd_3(void **state)
{
	/* Only 0-3 are open in the command (the shell's own descriptors aside:
	 * ls runs in a child, so it lists its own table). */
	struct exec_spec spec = spec_for("ls /proc/self/fd | sort -n | tr '\\n' ' '");
	struct exec_result result;
	assert_int_equal(exec_run(&spec, NULL, 0, &result), 0);
	assert_int_equal(result.outcome, EXEC_OK);
	assert_non_null(result.output);
	/* ls opens one descriptor of its own for the directory it lists. */
	const char *got = (const char *)result.output;
	if (strncmp(got, "0 1 2 3 4 ", 10) != 0 || result.output_len != 10)
		fail_msg("descriptors open in the command: %.*s", (int)result.output_len, got);
	exec_result_fini(&result);
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
	    cmocka_unit_test(test_exec_progress_parse_accepts_both_forms),
	    cmocka_unit_test(test_exec_progress_parse_refuses_malformed_lines),
	    cmocka_unit_test(test_exec_progress_lines_on_fd_3_reach_the_callback_in_order),
	    cmocka_unit_test(test_exec_malformed_progress_lines_are_ignored_and_never_fail_the_job),
	    cmocka_unit_test(test_exec_command_that_closes_fd_3_early_succeeds),
	    cmocka_unit_test(test_exec_command_that_never_uses_fd_3_succeeds_without_a_callback),
	    cmocka_unit_test(test_exec_progress_burst_of_10000_lines_does_not_deadlock),
	    cmocka_unit_test(test_exec_background_holder_of_fd_3_does_not_hold_up_the_job),
	    cmocka_unit_test(test_exec_progress_pipe_is_not_given_past_fd_3),
	    cmocka_unit_test(test_exec_refuses_missing_command),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
