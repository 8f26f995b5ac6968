/* A test program that dies badly on purpose, for test_harness_guard: it
 * starts a real jobmesh-broker through the harness, writes the broker's PID
 * to a file, then ends the way a broken test does, without ever calling
 * harness_fini:
 *
 *   harness_victim MODE TMPDIR PID_FILE
 *
 *   fail   a cmocka test fails an assertion; no teardown runs; main returns
 *   abort  abort()
 *   segv   a write through a null pointer
 *   wait   waits (up to 120 s) for a signal: SIGTERM as a timeout sends it
 *          (the guard's handler must act), or SIGKILL (only
 *          PR_SET_PDEATHSIG can act)
 *
 * In every mode but wait, PR_SET_PDEATHSIG is turned off, so the guard's
 * table alone must kill the broker. Not a ctest test itself. */
#include "jm_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "harness_guard.h"

#define VICTIM_WAIT_S 120

static const char *victim_pid_file;
/* Static: the harness stays reachable, as a test's fixture in *state
 * does, so LeakSanitizer blames nothing on the way the victim dies. */
static struct harness victim_harness;

/* Starts the broker and publishes its PID (written, then renamed, so the
 * reader never sees half a number). Exits 2 if it cannot. */
static void victim_start_broker(void)
{
	struct harness_proc broker;
	if (harness_init(&victim_harness, "victim") != 0 ||
	    harness_broker_start(&victim_harness, NULL, &broker) != 0) {
		fprintf(stderr, "victim: cannot start a broker\n");
		exit(2);
	}
	char tmp[512];
	snprintf(tmp, sizeof tmp, "%s.tmp", victim_pid_file);
	FILE *fp = fopen(tmp, "w");
	if (fp == NULL || fprintf(fp, "%d\n", (int)broker.pid) < 0 || fclose(fp) != 0 ||
	    rename(tmp, victim_pid_file) != 0) {
		fprintf(stderr, "victim: cannot write %s\n", victim_pid_file);
		exit(2);
	}
}

static void test_a_failed_assertion_without_teardown(void **state)
{
	(void)state;
	victim_start_broker();
	fail_msg("deliberate failure: the broker must not outlive this test");
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: harness_victim fail|abort|segv|wait TMPDIR PID_FILE\n");
		return 2;
	}
	const char *mode = argv[1];
	victim_pid_file = argv[3];
	/* The broker's temp dir goes inside the calling test's, which removes
	 * it: nothing here ever runs harness_fini. */
	setenv("TMPDIR", argv[2], 1);
	if (strcmp(mode, "wait") != 0)
		harness_guard_set_parent_death_kill(false);

	if (strcmp(mode, "fail") == 0) {
		const struct CMUnitTest tests[] = {
		    cmocka_unit_test(test_a_failed_assertion_without_teardown),
		};
		return cmocka_run_group_tests(tests, NULL, NULL);
	}
	if (strcmp(mode, "abort") == 0) {
		victim_start_broker();
		abort();
	}
	if (strcmp(mode, "segv") == 0) {
		victim_start_broker();
		volatile int *nowhere = NULL;
		*nowhere = 1;
		return 0;
	}
	if (strcmp(mode, "wait") == 0) {
		victim_start_broker();
		for (int i = 0; i < VICTIM_WAIT_S; i++) {
			struct timespec second = {.tv_sec = 1, .tv_nsec = 0};
			nanosleep(&second, NULL);
		}
		fprintf(stderr, "victim: no signal came within %d s\n", VICTIM_WAIT_S);
		return 3;
	}
	fprintf(stderr, "victim: unknown mode %s\n", mode);
	return 2;
}
