/* Broker and workers on separate network hosts, simulated with network
 * namespaces the test creates itself, and a network partition cut into the
 * middle of running jobs.
 *
 *   ns jm-<tag>-b   broker, listening on tcp://10.199.<n>.1:7400 (bridge br0)
 *   ns jm-<tag>-w1  worker w1, 10.199.<n>.11 on eth0 (veth to br0)
 *   ns jm-<tag>-w2  worker w2, 10.199.<n>.12 on eth0 (veth to br0)
 *
 * Only addresses inside those namespaces are used; <tag> and <n> are
 * random, so runs side by side do not meet. The client is the jobmesh CLI
 * run inside the broker's namespace. Every namespace is deleted in the
 * teardown, also when the test fails.
 *
 * Needs root and iproute2 (`ip netns`). Without them the test prints
 * "SKIPPED: needs root and ip netns (iproute2)" and is skipped: it never
 * fails because it cannot run. Every wait is bounded. SLOW: ~10 s (a
 * dead-after window plus TCP's retransmission backoff after the link comes
 * back). */
#define _GNU_SOURCE
#include "jm_test.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"
#include "runlog.h"

#define DEAD_AFTER_ARG "1500"
#define HEARTBEAT_ARG "200"
#define WAIT_MS 20000
#define RUN_MS 10000
#define JOBS 6

static const char skip_text[] = "SKIPPED: needs root and ip netns (iproute2)";

struct fixture {
	struct harness h;
	char ns[3][32]; /* broker, w1, w2 */
	bool ns_made[3];
	unsigned subnet; /* the <n> of 10.199.<n>.0/24 */
	char url[64];
	struct harness_proc broker;
	struct harness_proc workers[2];
	bool workers_started[2];
	const char *log_path;
	const char *script;
	uint64_t started_us;
};

static const char job_script[] =
    "#!/bin/sh\n"
    "# job.sh LOG WORKER SLEEP: logs start and done, prints by-WORKER\n"
    "cat > /dev/null\n"
    "read -r _ _ _ _ pgid _ < /proc/$$/stat\n"
    "echo \"start $JOBMESH_JOB_ID $JOBMESH_ATTEMPT $2 $pgid\" >> \"$1\"\n"
    "sleep \"$3\"\n"
    "echo \"done $JOBMESH_JOB_ID $JOBMESH_ATTEMPT $2\" >> \"$1\"\n"
    "printf 'by-%s' \"$2\"\n";

/* Runs argv (NULL-terminated list of words) to completion; its exit code,
 * or -1 if it could not run in time. *out gets stdout when out != NULL. */
static int run_words(struct fixture *f, char **out, const char *first, ...)
{
	char *argv[32];
	size_t count = 0;
	argv[count++] = (char *)first;
	va_list ap;
	va_start(ap, first);
	const char *word;
	while (count < 31 && (word = va_arg(ap, const char *)) != NULL)
		argv[count++] = (char *)word;
	va_end(ap);
	argv[count] = NULL;
	int exit_code = -1;
	if (harness_run(&f->h, argv, RUN_MS, out, &exit_code) != 0)
		return -1;
	return exit_code;
}

/* Runs `ip ARGS...` split on spaces; true when it exits 0. */
static bool ip_cmd(struct fixture *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool ip_cmd(struct fixture *f, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	char *argv[32] = {"ip"};
	size_t count = 1;
	char *save = NULL;
	for (char *word = strtok_r(line, " ", &save); word && count < 31;
	     word = strtok_r(NULL, " ", &save))
		argv[count++] = word;
	argv[count] = NULL;
	int exit_code = -1;
	int rc = harness_run(&f->h, argv, RUN_MS, NULL, &exit_code);
	if (rc != 0 || exit_code != 0) {
		fprintf(stderr, "multihost: ip %s: exit %d\n", line, exit_code);
		return false;
	}
	return true;
}

static void random_bytes(void *buf, size_t len)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, len) != (ssize_t)len) {
		uint64_t seed = jm_mono_us() ^ ((uint64_t)getpid() << 32);
		memcpy(buf, &seed, len < sizeof seed ? len : sizeof seed);
	}
	if (fd >= 0)
		close(fd);
}

static void namespaces_delete(struct fixture *f)
{
	for (int i = 0; i < 3; i++) {
		if (f->ns_made[i] && !ip_cmd(f, "netns del %s", f->ns[i]))
			fprintf(stderr, "multihost: could not delete netns %s: delete it by hand\n",
			        f->ns[i]);
		f->ns_made[i] = false;
	}
}

/* Makes the three namespaces, the bridge and the veth pairs. false (with
 * what failed printed) when this machine cannot. */
static bool namespaces_make(struct fixture *f)
{
	uint8_t random[3];
	random_bytes(random, sizeof random);
	f->subnet = 1 + random[2] % 254;
	static const char *const roles[3] = {"b", "w1", "w2"};
	for (int i = 0; i < 3; i++) {
		snprintf(f->ns[i], sizeof f->ns[i], "jm-%02x%02x-%s", random[0], random[1],
		         roles[i]);
		if (!ip_cmd(f, "netns add %s", f->ns[i]))
			return false;
		f->ns_made[i] = true;
		if (!ip_cmd(f, "-n %s link set lo up", f->ns[i]))
			return false;
	}
	const char *b = f->ns[0];
	if (!ip_cmd(f, "-n %s link add br0 type bridge", b) ||
	    !ip_cmd(f, "-n %s addr add 10.199.%u.1/24 dev br0", b, f->subnet) ||
	    !ip_cmd(f, "-n %s link set br0 up", b))
		return false;
	for (int i = 1; i <= 2; i++) {
		const char *w = f->ns[i];
		if (!ip_cmd(f, "-n %s link add vb%d type veth peer name eth0 netns %s", b, i, w) ||
		    !ip_cmd(f, "-n %s link set vb%d master br0", b, i) ||
		    !ip_cmd(f, "-n %s link set vb%d up", b, i) ||
		    !ip_cmd(f, "-n %s addr add 10.199.%u.%d/24 dev eth0", w, f->subnet, 10 + i) ||
		    !ip_cmd(f, "-n %s link set eth0 up", w))
			return false;
	}
	snprintf(f->url, sizeof f->url, "tcp://10.199.%u.1:7400", f->subnet);
	return true;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	if (f == NULL)
		return 0;
	/* Processes first (hard: the teardown must not wait out a drain), then
	 * the handlers they started, then the namespaces. */
	for (int i = 0; i < 2; i++)
		if (f->workers_started[i])
			harness_kill(&f->workers[i]);
	if (f->log_path != NULL)
		runlog_kill_groups(f->log_path, NULL);
	int status = 0;
	int rc = 0;
	if (f->broker.pid > 0) {
		status = -1;
		rc = harness_stop(&f->broker, SIGTERM, 10000, &status);
		if (rc != 0 || status != 0)
			harness_print_logs(&f->h, 30);
	}
	namespaces_delete(f);
	fprintf(stderr, "multihost: took %llu ms\n",
	        (unsigned long long)((jm_mono_us() - f->started_us) / 1000));
	harness_fini(&f->h);
	free(f);
	*state = NULL;
	if (rc != 0 || status != 0)
		fail_msg("broker did not stop cleanly: rc %d status %d", rc, status);
	return 0;
}

/* Root and a working `ip netns`, or skip. */
static bool can_run(struct fixture *f)
{
	if (geteuid() != 0)
		return false;
	return run_words(f, NULL, "ip", "netns", "list", NULL) == 0;
}

/* Fails the test after printing every process's logs and runs.log. */
#define fail_with_logs(f, ...) fixture_fail_with_logs(&(f)->h, (f)->log_path, __VA_ARGS__)

/* Starts the broker inside its namespace and waits for "listening". */
static void broker_start(struct fixture *f)
{
	const char *data = harness_path(&f->h, "data");
	char *argv[] = {"ip", "netns", "exec", f->ns[0], (char *)harness_bin("jobmesh-broker"),
	                /* 10.199.<n>.1 is off loopback, on a bridge of the test's
	                 * own namespaces: no --auth needed there, so say so. */
	                "--insecure-listen", "--http", "127.0.0.1:0", "--listen", f->url, "--data",
	                (char *)data, "--dead-after-ms", DEAD_AFTER_ARG, "--backoff-base-ms", "20",
	                "--backoff-cap-ms", "100", NULL};
	if (fixture_spawn_broker(&f->h, argv, 10000, &f->broker))
		return;
	if (!harness_is_running(&f->broker))
		fail_with_logs(f, "broker exited before it was listening on %s", f->url);
	fail_with_logs(f, "broker printed no \"listening\" line in 10 s");
}

static void worker_start(struct fixture *f, int index, const char *name, const char *sleep_s)
{
	char handler[512];
	snprintf(handler, sizeof handler, "job=%s %s %s %s", f->script, f->log_path, name, sleep_s);
	char *argv[] = {"ip",
	                "netns",
	                "exec",
	                f->ns[1 + index],
	                (char *)harness_bin("jobmesh-worker"),
	                "--broker",
	                f->url,
	                "--queue",
	                "q",
	                "--concurrency",
	                "2",
	                "--handler",
	                handler,
	                "--worker-id",
	                (char *)name,
	                "--heartbeat-ms",
	                HEARTBEAT_ARG,
	                "--kill-grace-ms",
	                "300",
	                NULL};
	assert_jm_ok(harness_spawn(&f->h, name, argv, &f->workers[index]));
	f->workers_started[index] = true;
}

/* Runs the jobmesh CLI inside the broker's namespace. */
static int cli(struct fixture *f, char **out, const char *a1, const char *a2, const char *a3,
               const char *a4, const char *a5, const char *a6, const char *a7, const char *a8,
               const char *a9)
{
	return run_words(f, out, "ip", "netns", "exec", f->ns[0], harness_bin("jobmesh"),
	                 "--broker", f->url, a1, a2, a3, a4, a5, a6, a7, a8, a9, NULL);
}

/* Lines of runs.log of kind for job id (0: any) by worker (NULL: any). */
static int log_count(struct fixture *f, const char *kind, uint64_t id, const char *worker)
{
	return runlog_count(f->log_path, kind, id, 0, worker);
}

struct count_wait {
	struct fixture *f;
	const char *kind;
	const char *worker;
	int want;
};

static bool count_reached_cb(void *arg)
{
	struct count_wait *w = arg;
	return log_count(w->f, w->kind, 0, w->worker) >= w->want;
}

struct text_wait {
	const char *path;
	const char *needle;
	int want;
};

static bool text_count_reached_cb(void *arg)
{
	struct text_wait *w = arg;
	return fixture_count_in_file(w->path, w->needle) >= (size_t)w->want;
}

static bool groups_gone_cb(void *arg)
{
	const pid_t *groups = arg;
	/* kill() to a group of zombies still succeeds: look at the leaders'
	 * states. */
	for (size_t i = 0; groups[i] != 0; i++)
		if (!fixture_pid_is_gone(groups[i]))
			return false;
	return true;
}

/* Two workers on two hosts share a queue; w1's network link is cut while
 * it runs two jobs. The broker loses w1 after the dead-after window and
 * requeues its jobs (attempt 2), which w2 completes. When the link comes
 * back, w1 reconnects by itself, is told to abandon the two stale leases
 * and stops their handlers, so every job is completed exactly once: once
 * at the broker and once in the handlers' own log. */
static void test_partitioned_worker_jobs_complete_once_on_the_other_host(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	*state = f;
	f->started_us = jm_mono_us();
	assert_jm_ok(harness_init(&f->h, "multihost"));
	if (!can_run(f)) {
		printf("%s\n", skip_text);
		fflush(stdout);
		skip();
	}
	if (!namespaces_make(f)) {
		printf("SKIPPED: cannot build the network namespaces here (see the ip error "
		       "above); needs root, ip netns, veth and bridge support\n");
		fflush(stdout);
		skip();
	}
	f->log_path = harness_write_file(&f->h, "runs.log", "", 0644);
	f->script = harness_write_file(&f->h, "job.sh", job_script, 0755);
	assert_non_null(f->log_path);
	assert_non_null(f->script);
	broker_start(f);

	/* w1 holds its jobs long; w2 is quick. w1 starts alone, so it takes
	 * the first two jobs. */
	worker_start(f, 0, "w1", "30");
	uint64_t ids[JOBS];
	for (int i = 0; i < JOBS; i++) {
		char *out = NULL;
		int code = cli(f, &out, "submit", "--queue", "q", "--type", "job", "--payload", "x",
		               NULL, NULL);
		if (code != 0 || out == NULL || sscanf(out, "%" SCNu64, &ids[i]) != 1)
			fail_with_logs(f, "jobmesh submit exited %d, printed \"%s\"", code,
			               out ? out : "");
		free(out);
	}
	struct count_wait w1_busy = {f, "start", "w1", 2};
	if (!harness_wait_for(WAIT_MS, count_reached_cb, &w1_busy, "w1 to start 2 jobs"))
		fail_with_logs(f, "w1 never ran 2 jobs across the network");
	worker_start(f, 1, "w2", "0.3");

	uint64_t cut_us = jm_mono_us();
	if (!ip_cmd(f, "-n %s link set eth0 down", f->ns[1]))
		fail_with_logs(f, "could not take w1's link down");

	int moved = 0;
	for (int i = 0; i < JOBS; i++) {
		char id_text[24];
		snprintf(id_text, sizeof id_text, "%" PRIu64, ids[i]);
		char *out = NULL;
		int code = cli(f, &out, "wait", id_text, "--timeout", "15", "--json", NULL, NULL,
		               NULL, NULL);
		json_error_t jerr;
		json_t *job = out ? json_loads(out, 0, &jerr) : NULL;
		const char *job_state = json_string_value(json_object_get(job, "state"));
		const char *result = json_string_value(json_object_get(job, "result"));
		json_int_t attempt = json_integer_value(json_object_get(job, "attempt"));
		if (code != 0 || job_state == NULL || strcmp(job_state, "completed") != 0 ||
		    result == NULL || strcmp(result, "by-w2") != 0)
			fail_with_logs(f,
			               "job %s: jobmesh wait exited %d with \"%s\"; expected "
			               "completed by w2",
			               id_text, code, out ? out : "");
		if (attempt == 2)
			moved++;
		json_decref(job);
		free(out);
	}
	fprintf(stderr,
	        "multihost: all %d jobs completed %llu ms after the cut; %d moved from "
	        "w1 at attempt 2\n",
	        JOBS, (unsigned long long)((jm_mono_us() - cut_us) / 1000), moved);
	assert_int_equal(moved, 2);

	/* Heal the partition: w1 reconnects and gives up its stale leases. */
	if (!ip_cmd(f, "-n %s link set eth0 up", f->ns[1]))
		fail_with_logs(f, "could not bring w1's link back up");
	uint64_t healed_us = jm_mono_us();
	struct text_wait abandon = {harness_path(&f->h, "w1.err"),
	                            "the broker asked us to abandon it", 2};
	if (!harness_wait_for(WAIT_MS, text_count_reached_cb, &abandon,
	                      "w1 to be told to abandon its 2 stale jobs"))
		fail_with_logs(f, "w1 did not abandon its stale jobs after the link came back");
	fprintf(stderr, "multihost: w1 back and abandoning %llu ms after the link came up\n",
	        (unsigned long long)((jm_mono_us() - healed_us) / 1000));
	pid_t groups[3] = {0};
	size_t groups_count = runlog_groups(f->log_path, "w1", groups, 2);
	assert_int_equal(groups_count, 2);
	if (!harness_wait_for(5000, groups_gone_cb, groups, "w1's abandoned handlers to end"))
		fail_with_logs(f, "w1's abandoned handlers still run");

	for (int i = 0; i < JOBS; i++) {
		if (log_count(f, "done", ids[i], NULL) != 1 ||
		    log_count(f, "done", ids[i], "w2") != 1)
			fail_with_logs(f,
			               "job %" PRIu64 " completed %d time(s) in the handlers' log; "
			               "expected once, by w2",
			               ids[i], log_count(f, "done", ids[i], NULL));
	}
	assert_true(harness_is_running(&f->workers[0]));
	assert_true(harness_is_running(&f->workers[1]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_partitioned_worker_jobs_complete_once_on_the_other_host,
	                              fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
