/* Worker and broker faults through real processes: workers killed, frozen
 * and drained mid-job, handlers that hang or kill their worker, and broker
 * restarts under load. Each test asserts what the design promises: a job
 * settles exactly once at the broker, a lost worker's job moves on after the
 * dead-after window counting an attempt, a stale lease is refused, and
 * nothing loops forever.
 *
 * The broker runs with a short dead-after window (DEAD_AFTER_MS) and the
 * workers heartbeat every 200 ms, so a "lost worker" takes under 2 s. Every
 * handler is one script (job.sh) that appends to runs.log:
 *
 *   start <job id> <attempt> <worker> <handler process group>
 *   done <job id> <attempt> <worker>
 *
 * and prints "by-<worker>" as its result. Its payload "FIRST LATER" is how
 * many seconds attempt 1 and the later attempts sleep between the two lines.
 *
 * Slow parts (each a few seconds) are marked SLOW below; the whole file runs
 * in about 35 s. Every wait is bounded.
 *
 * Two tests guard fixes that need more than the broker's lease table:
 *  - test_handler_of_killed_worker_does_not_outlive_it: a SIGKILLed
 *    worker's handler is stopped by its guardian (worker/guardian.h);
 *  - test_job_killing_its_worker_restarted_under_same_id_is_dead_lettered:
 *    a worker restarted under the same id is told apart from the dead one
 *    by its instance (proto HEARTBEAT), so the dead one's lease counts an
 *    attempt instead of passing for one lost in transit. */
#define _GNU_SOURCE
#include "jm_test.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jobmesh/client.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"
#include "runlog.h"

#define DEAD_AFTER_MS 1500
#define DEAD_AFTER_ARG "1500"
#define HEARTBEAT_ARG "200"
#define KILL_GRACE_ARG "300"
/* Longest any single wait in these tests may take: a dead-after window,
 * a retry backoff and slack for a loaded machine. */
#define WAIT_MS 15000
#define WORKERS_MAX 16

struct fixture {
	struct harness h;
	struct harness_proc broker;
	const char *broker_args[32]; /* kept for a restart */
	jm_client *client;
	struct harness_proc workers[WORKERS_MAX];
	char worker_names[WORKERS_MAX][32];
	size_t workers_count;
	const char *log_path; /* runs.log */
	const char *script;   /* job.sh */
	uint64_t started_us;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One "worker_faults: ..." line on stderr: timings and what was seen. */
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "worker_faults: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static uint64_t elapsed_ms(uint64_t since_us)
{
	return (jm_mono_us() - since_us) / 1000;
}

static const char job_script[] =
    "#!/bin/sh\n"
    "# job.sh WORKER: see the top of test_worker_faults.c\n"
    "read -r first later rest || true\n"
    "read -r _ _ _ _ pgid _ < /proc/$$/stat\n"
    "echo \"start $JOBMESH_JOB_ID $JOBMESH_ATTEMPT $1 $pgid\" >> \"$JM_TEST_LOG\"\n"
    "if [ \"$JOBMESH_ATTEMPT\" = 1 ]; then s=$first; else s=$later; fi\n"
    "if [ -n \"$2\" ]; then s=$2; fi\n"
    "sleep \"${s:-0}\"\n"
    "echo \"done $JOBMESH_JOB_ID $JOBMESH_ATTEMPT $1\" >> \"$JM_TEST_LOG\"\n"
    "printf 'by-%s' \"$1\"\n";

/* Starts a broker with fast retries and the short dead-after window, plus
 * extra (a later flag wins inside the broker). */
static struct fixture *fixture_start(const char *name, const char *const *extra)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->started_us = jm_mono_us();
	static const char *const base[] = {
	    "--backoff-base-ms", "20", "--backoff-cap-ms", "100", "--dead-after-ms",
	    DEAD_AFTER_ARG,      NULL};
	fixture_args_join(f->broker_args, 32, base, extra);
	fixture_broker_up(&f->h, name, f->broker_args, NULL, &f->broker);
	assert_jm_ok(jm_client_open(&f->client, f->h.broker_url));
	f->log_path = harness_write_file(&f->h, "runs.log", "", 0644);
	f->script = harness_write_file(&f->h, "job.sh", job_script, 0755);
	assert_non_null(f->log_path);
	assert_non_null(f->script);
	/* Workers pass their environment on to handlers. */
	assert_int_equal(setenv("JM_TEST_LOG", f->log_path, 1), 0);
	return f;
}

/* True while some process of group pgid is alive (not a zombie: PID 1 on
 * these machines never reaps orphans, so a killed orphan stays a zombie). */
static bool group_alive(pid_t pgid)
{
	DIR *proc = opendir("/proc");
	if (proc == NULL)
		return kill(-pgid, 0) == 0;
	bool alive = false;
	struct dirent *entry;
	while (!alive && (entry = readdir(proc)) != NULL) {
		if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
			continue;
		char path[300];
		snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
		FILE *fp = fopen(path, "r");
		if (fp == NULL)
			continue;
		char buf[512];
		size_t got = fread(buf, 1, sizeof buf - 1, fp);
		fclose(fp);
		buf[got] = '\0';
		char *close_paren = strrchr(buf, ')');
		char state;
		int ppid, group;
		if (close_paren &&
		    sscanf(close_paren + 1, " %c %d %d", &state, &ppid, &group) == 3 &&
		    group == pgid && state != 'Z')
			alive = true;
	}
	closedir(proc);
	return alive;
}

/* SIGKILL to the handler groups worker (NULL: any) started, from runs.log. */
static void kill_handler_groups(struct fixture *f, const char *worker)
{
	runlog_kill_groups(f->log_path, worker);
}

static int fixture_stop(void **state)
{
	struct fixture *f = *state;
	if (f == NULL)
		return 0;
	/* Workers first, hard: a draining worker would otherwise hold the
	 * teardown for its whole drain timeout. */
	for (size_t i = 0; i < f->workers_count; i++)
		harness_kill(&f->workers[i]);
	kill_handler_groups(f, NULL);
	jm_client_close(f->client);
	say("%s took %llu ms", f->h.test_name, (unsigned long long)elapsed_ms(f->started_us));
	fixture_end(state, &f->h, &f->broker);
	return 0;
}

/* Fails the test after printing every process's logs and runs.log. */
#define fail_with_logs(f, ...) fixture_fail_with_logs(&(f)->h, (f)->log_path, __VA_ARGS__)

/* Starts worker `name` on queue "q" with handler (TYPE=COMMAND), the fast
 * heartbeat and kill grace and a 2 s drain, plus extra args. Returns its
 * index in f->workers. */
static size_t start_worker_with(struct fixture *f, const char *name, const char *concurrency,
                                const char *handler, const char *const *extra)
{
	assert_true(f->workers_count < WORKERS_MAX);
	const char *const base[] = {"--queue",
	                            "q",
	                            "--concurrency",
	                            concurrency,
	                            "--handler",
	                            handler,
	                            "--worker-id",
	                            name,
	                            "--heartbeat-ms",
	                            HEARTBEAT_ARG,
	                            "--kill-grace-ms",
	                            KILL_GRACE_ARG,
	                            "--drain-timeout",
	                            "2",
	                            NULL};
	const char *args[32];
	fixture_args_join(args, 32, base, extra);
	size_t index = f->workers_count;
	assert_jm_ok(harness_worker_start(&f->h, name, args, &f->workers[index]));
	snprintf(f->worker_names[index], sizeof f->worker_names[index], "%s", name);
	f->workers_count++;
	return index;
}

/* A worker running job.sh for type "job"; sleep_s, if not NULL, replaces
 * the payload's sleep. */
static size_t start_worker_sleeping(struct fixture *f, const char *name, const char *concurrency,
                                    const char *sleep_s, const char *const *extra)
{
	char handler[512];
	snprintf(handler, sizeof handler, "job=%s %s %s", f->script, name, sleep_s ? sleep_s : "");
	return start_worker_with(f, name, concurrency, handler, extra);
}

static size_t start_worker(struct fixture *f, const char *name, const char *concurrency,
                           const char *const *extra)
{
	return start_worker_sleeping(f, name, concurrency, NULL, extra);
}

/* Starts a worker with a handler of its own for type "job". */
static size_t start_worker_cmd(struct fixture *f, const char *name, const char *handler)
{
	return start_worker_with(f, name, "1", handler, NULL);
}

/* SIGKILL to a worker and to its handlers, as when its container dies. */
static void kill_like_container(struct fixture *f, size_t index)
{
	assert_jm_ok(harness_kill(&f->workers[index]));
	kill_handler_groups(f, f->worker_names[index]);
}

static void signal_worker(struct fixture *f, size_t index, int sig)
{
	/* Only while unreaped: a reaped PID may belong to someone else. */
	assert_true(harness_is_running(&f->workers[index]));
	assert_int_equal(kill(f->workers[index].pid, sig), 0);
}

static uint64_t submit(struct fixture *f, const char *payload, unsigned max_attempts,
                       uint64_t timeout_ms)
{
	jm_job_spec spec = {.queue = "q",
	                    .type = "job",
	                    .payload = payload,
	                    .payload_len = strlen(payload),
	                    .max_attempts = max_attempts,
	                    .timeout_ms = timeout_ms};
	uint64_t id = 0;
	int rc = jm_client_submit(f->client, &spec, &id);
	if (rc != 0)
		fail_with_logs(f, "submit: %s", jm_client_last_error());
	return id;
}

static void wait_finished(struct fixture *f, uint64_t id, jm_job_info *info)
{
	int rc = jm_client_wait(f->client, id, WAIT_MS, info);
	if (rc != 0)
		fail_with_logs(f, "wait for job %" PRIu64 ": %d %s (state %s)", id, rc,
		               jm_client_last_error(), jm_job_state_name(info->state));
}

static void expect_completed_by(struct fixture *f, uint64_t id, unsigned attempt,
                                const char *worker)
{
	jm_job_info info = {0};
	wait_finished(f, id, &info);
	char expected[64];
	snprintf(expected, sizeof expected, "by-%s", worker);
	if (info.state != JM_STATE_COMPLETED || info.attempt != attempt || !info.has_result ||
	    strcmp((char *)info.result, expected) != 0)
		fail_with_logs(
		    f,
		    "job %" PRIu64 ": %s at attempt %u with result \"%s\" (error \"%s\"); "
		    "expected completed at attempt %u with \"%s\"",
		    id, jm_job_state_name(info.state), info.attempt,
		    info.has_result ? (char *)info.result : "", info.last_error, attempt, expected);
	jm_job_info_fini(&info);
}

/* Lines of runs.log of kind ("start" or "done") for job id, at attempt
 * (0: any) by worker (NULL: any). */
static int log_count(struct fixture *f, const char *kind, uint64_t id, unsigned attempt,
                     const char *worker)
{
	return runlog_count(f->log_path, kind, id, attempt, worker);
}

struct log_wait {
	struct fixture *f;
	const char *kind;
	uint64_t id;
	unsigned attempt;
	const char *worker;
	int want;
};

static bool log_reached_cb(void *arg)
{
	struct log_wait *w = arg;
	return log_count(w->f, w->kind, w->id, w->attempt, w->worker) >= w->want;
}

static void wait_log(struct fixture *f, const char *kind, uint64_t id, unsigned attempt,
                     const char *worker)
{
	struct log_wait w = {f, kind, id, attempt, worker, 1};
	char what[160];
	snprintf(what, sizeof what, "\"%s %" PRIu64 " %u %s\" in runs.log", kind, id, attempt,
	         worker ? worker : "*");
	if (!harness_wait_for(WAIT_MS, log_reached_cb, &w, what))
		fail_with_logs(f, "timed out waiting for %s", what);
}

/* The handler process group of job id's attempt by worker, from runs.log. */
static pid_t handler_group_of(struct fixture *f, uint64_t id, unsigned attempt, const char *worker)
{
	char *text = harness_read_file(f->log_path, NULL);
	assert_non_null(text);
	pid_t found = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long line_id;
		unsigned line_attempt;
		char name[64];
		int pgid;
		if (sscanf(line, "start %llu %u %63s %d", &line_id, &line_attempt, name, &pgid) ==
		        4 &&
		    line_id == id && line_attempt == attempt && strcmp(name, worker) == 0)
			found = pgid;
	}
	free(text);
	assert_true(found > 1);
	return found;
}

/* A line of path holding needle (and also, if not NULL, needle2). */
struct file_wait {
	const char *path;
	const char *needle;
	const char *needle2;
};

static bool file_contains_cb(void *arg)
{
	struct file_wait *w = arg;
	FILE *fp = fopen(w->path, "r");
	if (fp == NULL)
		return false;
	char line[2048];
	bool found = false;
	while (!found && fgets(line, sizeof line, fp))
		found = strstr(line, w->needle) != NULL &&
		        (w->needle2 == NULL || strstr(line, w->needle2) != NULL);
	fclose(fp);
	return found;
}

static bool group_gone_cb(void *arg)
{
	return !group_alive(*(pid_t *)arg);
}

static bool pids_gone_cb(void *arg)
{
	const pid_t *pids = arg;
	for (size_t i = 0; pids[i] != 0; i++)
		if (!fixture_pid_is_gone(pids[i]))
			return false;
	return true;
}

/* ---- a worker killed mid-job ---------------------------------------------- */

/* SIGKILL (its container dies, handler and all) to the worker running a
 * job: after the dead-after window the broker requeues it, counting the
 * attempt, and a second worker completes it at attempt 2. */
static void test_killed_worker_job_completes_on_another_at_attempt_two(void **state)
{
	struct fixture *f = fixture_start("sigkill", NULL);
	*state = f;
	size_t w1 = start_worker(f, "w1", "1", NULL);
	uint64_t id = submit(f, "30 0", 3, 0);
	wait_log(f, "start", id, 1, "w1");
	start_worker(f, "w2", "1", NULL);

	uint64_t killed_us = jm_mono_us();
	kill_like_container(f, w1);
	expect_completed_by(f, id, 2, "w2");
	say("job moved to w2 %llu ms after w1 was killed (dead-after %d ms)",
	    (unsigned long long)elapsed_ms(killed_us), DEAD_AFTER_MS);

	assert_int_equal(log_count(f, "start", id, 0, NULL), 2);
	assert_int_equal(log_count(f, "start", id, 2, "w2"), 1);
	assert_int_equal(log_count(f, "done", id, 0, NULL), 1);
	assert_int_equal(log_count(f, "done", id, 2, "w2"), 1);
}

/* A worker killed alone (kill -9 of its PID's group, not a whole
 * container): its handler, which runs in a process group of its own, must
 * not keep running as an orphan nobody times out, concurrently with the
 * retry on another worker. */
static void test_handler_of_killed_worker_does_not_outlive_it(void **state)
{
	struct fixture *f = fixture_start("orphan", NULL);
	*state = f;
	size_t w1 = start_worker(f, "w1", "1", NULL);
	uint64_t id = submit(f, "30 0", 3, 0);
	wait_log(f, "start", id, 1, "w1");
	pid_t group = handler_group_of(f, id, 1, "w1");
	assert_jm_ok(harness_kill(&f->workers[w1]));
	/* Kill grace (300 ms) plus slack. */
	if (!harness_wait_for(3000, group_gone_cb, &group, "the killed worker's handler to end"))
		fail_with_logs(f,
		               "handler process group %d of job %" PRIu64
		               " still runs 3 s after its worker was SIGKILLed",
		               (int)group, id);
}

/* ---- a worker frozen past the window -------------------------------------- */

/* SIGSTOP a worker mid-job past the dead-after window: the job moves to a
 * second worker and completes there; when the first is resumed its late
 * ack names a lease the broker gave up on and is refused (ESTALE), so the
 * job keeps the second worker's result. The resumed worker then serves
 * again. */
static void test_frozen_worker_late_ack_is_refused(void **state)
{
	struct fixture *f = fixture_start("sigstop", NULL);
	*state = f;
	size_t w1 = start_worker(f, "w1", "1", NULL);
	uint64_t id = submit(f, "2.5 0", 3, 0);
	wait_log(f, "start", id, 1, "w1");
	signal_worker(f, w1, SIGSTOP);
	size_t w2 = start_worker(f, "w2", "1", NULL);
	expect_completed_by(f, id, 2, "w2");

	/* w1's handler (not frozen: its own process group) finishes meanwhile;
	 * its outcome waits in the frozen worker. */
	wait_log(f, "done", id, 1, "w1");
	signal_worker(f, w1, SIGCONT);
	/* Its outcome (an ack, or a fail if the broker's abandon request came
	 * first) names a lease the broker gave up on. */
	char needle[128];
	snprintf(needle, sizeof needle, "job %" PRIu64 " lease", id);
	struct file_wait stale = {harness_path(&f->h, "w1.err"), needle,
	                          "refused: the broker gave the job to another worker"};
	if (!harness_wait_for(WAIT_MS, file_contains_cb, &stale, "w1's stale-lease warning"))
		fail_with_logs(f, "w1's late outcome for job %" PRIu64 " was not refused as stale",
		               id);

	/* The late ack changed nothing. */
	jm_job_info info = {0};
	assert_jm_ok(jm_client_result(f->client, id, &info));
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	assert_int_equal(info.attempt, 2);
	assert_string_equal((char *)info.result, "by-w2");
	jm_job_info_fini(&info);
	jm_queue_stats *queues;
	size_t count;
	assert_jm_ok(jm_client_stats(f->client, &queues, &count));
	assert_int_equal(count, 1);
	assert_int_equal(queues[0].completed, 1);
	assert_int_equal(queues[0].pending + queues[0].active + queues[0].failed, 0);
	free(queues);

	/* The zombie rejoins as a live worker: with w2 stopped cleanly (its
	 * parked fetch answered), the next job can only go to w1. */
	int status = -1;
	assert_jm_ok(harness_stop(&f->workers[w2], SIGTERM, 10000, &status));
	assert_int_equal(status, 0);
	uint64_t next = submit(f, "0 0", 3, 0);
	expect_completed_by(f, next, 1, "w1");
}

/* ---- run timeouts ------------------------------------------------------- */

/* A handler that hangs and ignores SIGTERM, with a 500 ms job timeout: the
 * worker kills its whole process group (SIGTERM, SIGKILL after the kill
 * grace) and fails the attempt; with max_attempts 2 the job ends
 * dead-lettered with "timed out", and no process of either attempt is
 * left. */
static void test_hung_handler_is_timed_out_and_dead_lettered(void **state)
{
	struct fixture *f = fixture_start("hang", NULL);
	*state = f;
	const char *pids_path = harness_path(&f->h, "pids");
	char handler[512];
	snprintf(handler, sizeof handler,
	         "job=trap '' TERM; sleep 1000 & echo \"$$ $!\" >> %s; wait", pids_path);
	start_worker_cmd(f, "w-hang", handler);
	uint64_t id = submit(f, "x", 2, 500);
	jm_job_info info = {0};
	wait_finished(f, id, &info);
	if (info.state != JM_STATE_FAILED || info.attempt != 2 ||
	    strstr(info.last_error, "timed out") == NULL)
		fail_with_logs(f, "job %" PRIu64 ": %s at attempt %u, error \"%s\"", id,
		               jm_job_state_name(info.state), info.attempt, info.last_error);
	jm_job_info_fini(&info);

	char *text = harness_read_file(pids_path, NULL);
	assert_non_null(text);
	pid_t pids[8] = {0};
	int a, b, c, d;
	assert_int_equal(sscanf(text, "%d %d %d %d", &a, &b, &c, &d), 4);
	free(text);
	pids[0] = a, pids[1] = b, pids[2] = c, pids[3] = d;
	if (!harness_wait_for(3000, pids_gone_cb, pids, "the timed-out handlers to be gone"))
		fail_with_logs(f, "a timed-out handler process is still alive: %d %d %d %d", a, b,
		               c, d);
}

/* A worker frozen (SIGSTOP) while its job runs past the job's timeout can
 * not enforce it: the broker fails the attempt itself at timeout +
 * lease-grace, without waiting for the dead-after window (set long here).
 * The resumed worker's late outcome is refused. */
static void test_broker_times_out_a_frozen_workers_job(void **state)
{
	const char *extra[] = {"--dead-after-ms", "60000", "--lease-grace-ms", "500", NULL};
	struct fixture *f = fixture_start("lease-grace", extra);
	*state = f;
	size_t w1 = start_worker(f, "w1", "1", NULL);
	uint64_t id = submit(f, "1.5 1.5", 1, 500);
	wait_log(f, "start", id, 1, "w1");
	signal_worker(f, w1, SIGSTOP);
	uint64_t frozen_us = jm_mono_us();
	jm_job_info info = {0};
	int rc = jm_client_wait(f->client, id, 5000, &info);
	uint64_t waited_ms = elapsed_ms(frozen_us);
	signal_worker(f, w1, SIGCONT);
	if (rc != 0 || info.state != JM_STATE_FAILED ||
	    strstr(info.last_error, "timed out") == NULL)
		fail_with_logs(f,
		               "job %" PRIu64 " of a frozen worker: rc %d, %s, error \"%s\" after "
		               "%llu ms; expected failed by the broker at timeout + lease grace",
		               id, rc, jm_job_state_name(info.state), info.last_error,
		               (unsigned long long)waited_ms);
	say("broker failed the frozen worker's job %llu ms after the freeze",
	    (unsigned long long)waited_ms);
	assert_int_equal(info.attempt, 1);
	jm_job_info_fini(&info);
	char needle[64];
	snprintf(needle, sizeof needle, "job %" PRIu64 " lease", id);
	struct file_wait stale = {harness_path(&f->h, "w1.err"), needle, "refused"};
	if (!harness_wait_for(WAIT_MS, file_contains_cb, &stale, "w1's stale-lease warning"))
		fail_with_logs(f, "w1's late outcome for job %" PRIu64 " was not refused", id);
	assert_jm_ok(jm_client_status(f->client, id, &info));
	assert_int_equal(info.state, JM_STATE_FAILED);
	jm_job_info_fini(&info);
}

/* ---- graceful drain --------------------------------------------------- */

/* SIGTERM to a worker running 3 jobs (6 queued): it takes no new job,
 * finishes the 3 within --drain-timeout, exits 0; a second worker runs the
 * other 3. Every job completes exactly once, at attempt 1. */
static void test_sigterm_drain_finishes_running_jobs(void **state)
{
	struct fixture *f = fixture_start("drain", NULL);
	*state = f;
	const char *drain[] = {"--drain-timeout", "10", NULL};
	size_t w1 = start_worker(f, "w1", "3", drain);
	enum { JOBS = 6 };
	uint64_t ids[JOBS];
	for (int i = 0; i < JOBS; i++)
		ids[i] = submit(f, "1 1", 3, 0);
	struct log_wait running[3];
	for (int i = 0; i < 3; i++) {
		running[i] = (struct log_wait){f, "start", ids[i], 1, "w1", 1};
		if (!harness_wait_for(WAIT_MS, log_reached_cb, &running[i], "w1 to run 3 jobs"))
			fail_with_logs(f, "w1 did not start job %" PRIu64, ids[i]);
	}
	signal_worker(f, w1, SIGTERM);
	start_worker(f, "w2", "3", NULL);
	int status = -1;
	assert_jm_ok(harness_stop(&f->workers[w1], 0, 10000, &status));
	if (status != 0)
		fail_with_logs(f, "w1 exited with status %d after a drain; expected 0", status);
	for (int i = 0; i < JOBS; i++) {
		expect_completed_by(f, ids[i], 1, i < 3 ? "w1" : "w2");
		assert_int_equal(log_count(f, "start", ids[i], 0, NULL), 1);
		assert_int_equal(log_count(f, "done", ids[i], 0, NULL), 1);
	}
}

/* Past --drain-timeout the running job is abandoned and handed back: the
 * hand-back does not count as an attempt, so it later completes on another
 * worker at attempt 1; the abandoned handler is gone. */
static void test_drain_timeout_hands_back_running_job_uncounted(void **state)
{
	struct fixture *f = fixture_start("drain-timeout", NULL);
	*state = f;
	const char *drain[] = {"--drain-timeout", "1", NULL};
	size_t w1 = start_worker(f, "w1", "1", drain);
	uint64_t id = submit(f, "30 30", 3, 0);
	wait_log(f, "start", id, 1, "w1");
	pid_t group = handler_group_of(f, id, 1, "w1");
	uint64_t term_us = jm_mono_us();
	signal_worker(f, w1, SIGTERM);
	int status = -1;
	assert_jm_ok(harness_stop(&f->workers[w1], 0, 10000, &status));
	say("w1 exited %llu ms after SIGTERM (drain timeout 1 s)",
	    (unsigned long long)elapsed_ms(term_us));
	if (status != 0)
		fail_with_logs(f, "w1 exited with status %d; expected 0", status);
	if (!harness_wait_for(3000, group_gone_cb, &group, "the abandoned handler to end"))
		fail_with_logs(f, "w1's abandoned handler (group %d) still runs", (int)group);

	jm_job_info info = {0};
	assert_jm_ok(jm_client_status(f->client, id, &info));
	if (info.state != JM_STATE_PENDING && info.state != JM_STATE_DELAYED)
		fail_with_logs(f, "handed-back job %" PRIu64 " is %s; expected pending", id,
		               jm_job_state_name(info.state));
	assert_int_equal(info.attempt, 0);
	jm_job_info_fini(&info);

	/* w2's handler ignores the payload's 30 s: it is attempt 1 again. */
	start_worker_sleeping(f, "w2", "1", "0", NULL);
	expect_completed_by(f, id, 1, "w2");
	assert_int_equal(log_count(f, "start", id, 0, NULL), 2);
	assert_int_equal(log_count(f, "start", id, 1, "w2"), 1);
	assert_int_equal(log_count(f, "done", id, 0, NULL), 1);
}

/* A second SIGTERM during a drain hands the running job back at once,
 * without waiting out --drain-timeout (30 s here). */
static void test_second_sigterm_hands_back_at_once(void **state)
{
	struct fixture *f = fixture_start("second-sigterm", NULL);
	*state = f;
	const char *drain[] = {"--drain-timeout", "30", NULL};
	size_t w1 = start_worker(f, "w1", "1", drain);
	uint64_t id = submit(f, "30 30", 3, 0);
	wait_log(f, "start", id, 1, "w1");
	pid_t group = handler_group_of(f, id, 1, "w1");
	signal_worker(f, w1, SIGTERM);
	struct file_wait draining = {harness_path(&f->h, "w1.err"), "draining", NULL};
	if (!harness_wait_for(WAIT_MS, file_contains_cb, &draining, "w1 to start draining"))
		fail_with_logs(f, "w1 did not log its drain");
	uint64_t second_us = jm_mono_us();
	signal_worker(f, w1, SIGTERM);
	int status = -1;
	assert_jm_ok(harness_stop(&f->workers[w1], 0, 5000, &status));
	say("w1 exited %llu ms after the second SIGTERM",
	    (unsigned long long)elapsed_ms(second_us));
	if (status != 0)
		fail_with_logs(f, "w1 exited with status %d; expected 0", status);
	if (!harness_wait_for(3000, group_gone_cb, &group, "the abandoned handler to end"))
		fail_with_logs(f, "w1's abandoned handler (group %d) still runs", (int)group);
	start_worker_sleeping(f, "w2", "1", "0", NULL);
	expect_completed_by(f, id, 1, "w2");
	assert_int_equal(log_count(f, "done", id, 0, NULL), 1);
}

/* SIGTERM while the broker is gone (killed): the worker waits out neither
 * its fetch and heartbeat timeouts nor a whole settle budget. Its running
 * job finishes during the drain but cannot be acked; the worker gives the
 * ack up at the drain timeout (2 s here) and exits 0. Back up, the broker
 * requeues the unsettled job once w1's lease lapses (a lost attempt), and
 * w2 completes it. */
static void test_sigterm_with_the_broker_gone_exits_by_the_drain_timeout(void **state)
{
	struct fixture *f = fixture_start("broker-gone", NULL);
	*state = f;
	const char *drain[] = {"--drain-timeout", "2", NULL};
	size_t w1 = start_worker(f, "w1", "2", drain);
	uint64_t id = submit(f, "1 1", 3, 0);
	wait_log(f, "start", id, 1, "w1");
	/* A delivery does not wait for its LEASE record's sync (take_jobs in
	 * the broker), and a handler exec'd directly starts within that
	 * window: an acknowledged submit behind it is the barrier that makes
	 * the lease, and attempt 1, durable before the kill. */
	jm_job_spec barrier = {.queue = "barrier", .type = "job", .payload = "b", .payload_len = 1};
	uint64_t barrier_id = 0;
	if (jm_client_submit(f->client, &barrier, &barrier_id) != 0)
		fail_with_logs(f, "barrier submit: %s", jm_client_last_error());
	assert_jm_ok(harness_kill(&f->broker));
	uint64_t term_us = jm_mono_us();
	signal_worker(f, w1, SIGTERM);
	int status = -1;
	assert_jm_ok(harness_stop(&f->workers[w1], 0, 15000, &status));
	uint64_t took_ms = elapsed_ms(term_us);
	say("w1 exited %llu ms after SIGTERM with its broker gone (drain timeout 2 s)",
	    (unsigned long long)took_ms);
	if (status != 0)
		fail_with_logs(f, "w1 exited with status %d; expected 0", status);
	/* 2 s of drain plus the slack of a loaded 2-core machine; before the
	 * stop was bounded this took the whole 60 s settle budget. */
	if (took_ms > 6000)
		fail_with_logs(f,
		               "w1 took %llu ms to exit after SIGTERM with its broker gone; "
		               "expected about its 2 s drain timeout",
		               (unsigned long long)took_ms);
	assert_int_equal(log_count(f, "done", id, 1, "w1"), 1);

	assert_jm_ok(harness_broker_start(&f->h, f->broker_args, &f->broker));
	start_worker(f, "w2", "1", NULL);
	expect_completed_by(f, id, 2, "w2");
	assert_int_equal(log_count(f, "done", id, 0, NULL), 2);
}

/* ---- a job that kills its worker ------------------------------------------ */

/* The handler kills its own worker (kill -9 $PPID: the worker runs
 * /bin/sh -c COMMAND, so $PPID is the worker). Each death is a lost worker
 * and counts an attempt, so with max_attempts 3 the job ends dead-lettered
 * after 3 deaths instead of killing workers forever. restart_same_id
 * restarts the worker under the same --worker-id right away, as a
 * supervisor restarting a crashed container does (in a pod, host name and
 * PID 1 make the default id the same too). SLOW: ~3 dead-after windows. */
static void run_poison_job(struct fixture *f, bool restart_same_id)
{
	char handler[512];
	snprintf(
	    handler, sizeof handler,
	    "job=echo \"start $JOBMESH_JOB_ID $JOBMESH_ATTEMPT poison 0\" >> %s; kill -9 $PPID",
	    f->log_path);
	enum { DEATHS_MAX = 8 };
	size_t index = start_worker_cmd(f, restart_same_id ? "poison" : "poison-1", handler);
	uint64_t id = submit(f, "x", 3, 0);
	uint64_t submitted_us = jm_mono_us();
	int deaths = 0;
	jm_job_info info = {0};
	for (;;) {
		/* Wait for the worker to die or the job to finish. */
		uint64_t deadline_us = jm_mono_us() + WAIT_MS * 1000ull;
		bool finished = false;
		while (jm_mono_us() < deadline_us) {
			jm_job_info_fini(&info);
			memset(&info, 0, sizeof info);
			assert_jm_ok(jm_client_status(f->client, id, &info));
			finished =
			    info.state == JM_STATE_FAILED || info.state == JM_STATE_COMPLETED;
			if (finished || !harness_is_running(&f->workers[index]))
				break;
			/* Bounded poll step of the loop above. */
			struct timespec step = {0, 20 * 1000000L};
			nanosleep(&step, NULL);
		}
		if (finished)
			break;
		if (harness_is_running(&f->workers[index]))
			fail_with_logs(f,
			               "job %" PRIu64 " neither finished nor killed its worker in "
			               "%d ms",
			               id, WAIT_MS);
		deaths++;
		if (deaths >= DEATHS_MAX)
			break;
		char name[32];
		snprintf(name, sizeof name, restart_same_id ? "poison" : "poison-%d", deaths + 1);
		index = start_worker_cmd(f, name, handler);
	}
	int runs = log_count(f, "start", id, 0, NULL);
	say("poison job %s after %d worker deaths, %d runs, %llu ms: %s at attempt %u (%s)",
	    restart_same_id ? "(same worker id)" : "(new worker ids)", deaths, runs,
	    (unsigned long long)elapsed_ms(submitted_us), jm_job_state_name(info.state),
	    info.attempt, info.last_error);
	if (info.state != JM_STATE_FAILED || info.attempt != 3 ||
	    strstr(info.last_error, "lost") == NULL || runs != 3)
		fail_with_logs(f,
		               "%sjob %" PRIu64 " that kills its worker: %s at attempt %u after %d "
		               "runs and %d worker deaths (error \"%s\"); expected dead-lettered "
		               "at attempt 3 after 3 runs",
		               restart_same_id ? "(same worker id) " : "", id,
		               jm_job_state_name(info.state), info.attempt, runs, deaths,
		               info.last_error);
	jm_job_info_fini(&info);
}

static void test_job_killing_its_workers_is_dead_lettered(void **state)
{
	struct fixture *f = fixture_start("poison", NULL);
	*state = f;
	run_poison_job(f, false);
}

static void test_job_killing_its_worker_restarted_under_same_id_is_dead_lettered(void **state)
{
	struct fixture *f = fixture_start("poison-same-id", NULL);
	*state = f;
	run_poison_job(f, true);
}

/* ---- broker restarts under load ------------------------------------------- */

#define PRODUCER_IDS_MAX 4096

/* Submits a short job every 40 ms from its own thread (the SDK is
 * thread-safe) and records the id of every submit the broker
 * acknowledged; a submit that fails while the broker is down is counted,
 * not recorded. */
struct producer {
	struct fixture *f;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t lock;
	uint64_t ids[PRODUCER_IDS_MAX];
	size_t ids_count;
	unsigned failures;
	char last_error[256];
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	while (!atomic_load(&p->stop)) {
		jm_job_spec spec = {
		    .queue = "q", .type = "job", .payload = "0.1 0.1", .payload_len = 7};
		uint64_t id = 0;
		int rc = jm_client_submit(p->f->client, &spec, &id);
		pthread_mutex_lock(&p->lock);
		if (rc == 0 && p->ids_count < PRODUCER_IDS_MAX) {
			p->ids[p->ids_count++] = id;
		} else if (rc != 0) {
			p->failures++;
			snprintf(p->last_error, sizeof p->last_error, "%s", jm_client_last_error());
		}
		pthread_mutex_unlock(&p->lock);
		/* Pacing, not waiting: keeps the queue short for the workers. */
		struct timespec pace = {0, 40 * 1000000L};
		nanosleep(&pace, NULL);
	}
	return NULL;
}

static size_t producer_count(struct producer *p)
{
	pthread_mutex_lock(&p->lock);
	size_t count = p->ids_count;
	pthread_mutex_unlock(&p->lock);
	return count;
}

struct producer_wait {
	struct producer *p;
	size_t want;
};

static bool producer_reached_cb(void *arg)
{
	struct producer_wait *w = arg;
	return producer_count(w->p) >= w->want;
}

/* Runs a producer and two workers (concurrency 2) against the broker,
 * stops the broker mid-stream (SIGTERM: it must exit 0; or SIGKILL),
 * restarts it on the same --listen and --data, and checks that workers and
 * the client reconnected by themselves and every acknowledged submit
 * completes. After a SIGTERM nothing may run twice: the journal was made
 * durable and the workers stayed alive, so every lease stays valid across
 * the restart. After a SIGKILL a job may run again (a delivery does not
 * wait for its LEASE record to be synced), but none may be lost. */
static void run_broker_restart(struct fixture *f, int sig)
{
	jm_client_set_timeout_ms(f->client, 5000);
	size_t w1 = start_worker(f, "w1", "2", NULL);
	size_t w2 = start_worker(f, "w2", "2", NULL);
	struct producer *p = calloc(1, sizeof *p);
	assert_non_null(p);
	p->f = f;
	atomic_init(&p->stop, false);
	pthread_mutex_init(&p->lock, NULL);
	assert_int_equal(pthread_create(&p->thread, NULL, producer_main, p), 0);

	struct producer_wait before = {p, 25};
	bool ok = harness_wait_for(WAIT_MS, producer_reached_cb, &before, "25 submits");
	/* Four 3 s jobs fill every slot, so the broker goes down with jobs
	 * running: their acks have to wait for the restart. 3 s, not 1: a
	 * SIGTERM stop of a sanitizer build on a loaded machine took over 1 s,
	 * and every job had finished before the broker was down. */
	enum { LONG_JOBS = 4 };
	uint64_t long_ids[LONG_JOBS];
	for (int i = 0; ok && i < LONG_JOBS; i++)
		long_ids[i] = submit(f, "3 1", 3, 0);
	for (int i = 0; ok && i < LONG_JOBS; i++) {
		struct log_wait running = {f, "start", long_ids[i], 0, NULL, 1};
		ok = harness_wait_for(WAIT_MS, log_reached_cb, &running, "a long job to start");
	}
	uint64_t down_us = jm_mono_us();
	int status = -1;
	if (ok && sig == SIGTERM)
		ok = harness_stop(&f->broker, SIGTERM, 10000, &status) == 0 && status == 0;
	else if (ok)
		ok = harness_kill(&f->broker) == 0;
	int in_flight = 0;
	for (int i = 0; ok && i < LONG_JOBS; i++)
		if (log_count(f, "done", long_ids[i], 0, NULL) == 0)
			in_flight++;
	/* The outage lasts until both workers noticed it. */
	for (size_t i = 0; ok && i < 2; i++) {
		struct file_wait outage = {harness_path(&f->h, i ? "w2.err" : "w1.err"),
		                           "retrying until it answers", NULL};
		ok = harness_wait_for(WAIT_MS, file_contains_cb, &outage,
		                      "the workers to notice the broker is gone");
	}
	size_t at_stop = producer_count(p);
	if (ok)
		ok = harness_broker_start(&f->h, f->broker_args, &f->broker) == 0;
	uint64_t down_ms = elapsed_ms(down_us);
	struct producer_wait after = {p, at_stop + 25};
	if (ok)
		ok = harness_wait_for(WAIT_MS, producer_reached_cb, &after,
		                      "25 submits after the restart");
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	if (!ok)
		fail_with_logs(f,
		               "broker stop (signal %d, status %d) or restart failed, or the "
		               "client did not reconnect (%zu submits, %u failed: %s)",
		               sig, status, producer_count(p), p->failures, p->last_error);
	say("broker down %llu ms (signal %d); %zu submits acknowledged, %u failed meanwhile "
	    "(last: %s)",
	    (unsigned long long)down_ms, sig, p->ids_count, p->failures, p->last_error);

	for (int i = 0; i < LONG_JOBS; i++)
		if (p->ids_count < PRODUCER_IDS_MAX)
			p->ids[p->ids_count++] = long_ids[i];
	say("%d of the %d long jobs were still running when the broker went down", in_flight,
	    LONG_JOBS);
	assert_true(in_flight > 0);

	int reruns = 0;
	for (size_t i = 0; i < p->ids_count; i++) {
		uint64_t id = p->ids[i];
		jm_job_info info = {0};
		wait_finished(f, id, &info);
		if (info.state != JM_STATE_COMPLETED || !info.has_result ||
		    strncmp((char *)info.result, "by-w", 4) != 0)
			fail_with_logs(f, "acknowledged job %" PRIu64 ": %s at attempt %u (%s)", id,
			               jm_job_state_name(info.state), info.attempt,
			               info.last_error);
		int starts = log_count(f, "start", id, 0, NULL);
		int dones = log_count(f, "done", id, 0, NULL);
		if (starts > 1 || info.attempt > 1)
			reruns++;
		if (sig == SIGTERM && (starts != 1 || dones != 1 || info.attempt != 1))
			fail_with_logs(f,
			               "job %" PRIu64 " ran %d time(s) (%d done) and completed at "
			               "attempt %u across a SIGTERM restart; expected once at 1 "
			               "(error \"%s\")",
			               id, starts, dones, info.attempt, info.last_error);
		jm_job_info_fini(&info);
	}
	say("%zu acknowledged jobs completed; %d ran more than once", p->ids_count, reruns);
	/* The workers rode the restart out by themselves. */
	assert_true(harness_is_running(&f->workers[w1]));
	assert_true(harness_is_running(&f->workers[w2]));
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static void test_broker_sigterm_restart_loses_and_repeats_nothing(void **state)
{
	struct fixture *f = fixture_start("broker-sigterm", NULL);
	*state = f;
	run_broker_restart(f, SIGTERM);
}

static void test_broker_sigkill_restart_loses_no_acknowledged_job(void **state)
{
	struct fixture *f = fixture_start("broker-sigkill", NULL);
	*state = f;
	run_broker_restart(f, SIGKILL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_killed_worker_job_completes_on_another_at_attempt_two,
	                              fixture_stop),
	    cmocka_unit_test_teardown(test_handler_of_killed_worker_does_not_outlive_it,
	                              fixture_stop),
	    cmocka_unit_test_teardown(test_frozen_worker_late_ack_is_refused, fixture_stop),
	    cmocka_unit_test_teardown(test_hung_handler_is_timed_out_and_dead_lettered,
	                              fixture_stop),
	    cmocka_unit_test_teardown(test_broker_times_out_a_frozen_workers_job, fixture_stop),
	    cmocka_unit_test_teardown(test_sigterm_drain_finishes_running_jobs, fixture_stop),
	    cmocka_unit_test_teardown(test_drain_timeout_hands_back_running_job_uncounted,
	                              fixture_stop),
	    cmocka_unit_test_teardown(test_second_sigterm_hands_back_at_once, fixture_stop),
	    cmocka_unit_test_teardown(test_sigterm_with_the_broker_gone_exits_by_the_drain_timeout,
	                              fixture_stop),
	    cmocka_unit_test_teardown(test_job_killing_its_workers_is_dead_lettered, fixture_stop),
	    cmocka_unit_test_teardown(
	        test_job_killing_its_worker_restarted_under_same_id_is_dead_lettered, fixture_stop),
	    cmocka_unit_test_teardown(test_broker_sigterm_restart_loses_and_repeats_nothing,
	                              fixture_stop),
	    cmocka_unit_test_teardown(test_broker_sigkill_restart_loses_no_acknowledged_job,
	                              fixture_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
