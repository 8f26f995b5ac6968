/* The journal cannot grow: the broker runs under prlimit --fsize just above
 * its journal's size, so a write fails with EFBIG as on a full disk. New
 * submits are refused with a clear error naming the journal, reads keep
 * working, nothing stored changes; once the limit is lifted on the running
 * process (prlimit --pid), the broker recovers by itself, and every job
 * acknowledged before, during and after is intact across a restart and the
 * journal passes --check-journal. And a SIGTERM while the journal still
 * cannot write the records it holds exits 1, saying how many it could not
 * write, and leaves no clean-stop marker. Needs prlimit (util-linux). */
#include "jm_test.h"

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jobmesh/client.h>

#include "clock.h"
#include "fixture.h"
#include "harness.h"
#include "message.h"
#include "rpc.h"

#define FIRST_JOBS 100
#define FIRST_COMPLETED 20
#define HEADROOM_BYTES 2048
#define SUBMITS_MAX 2000
#define AFTER_JOBS 60
#define JOBS_MAX (FIRST_JOBS + SUBMITS_MAX + AFTER_JOBS + 64)
#define CLIENT_TIMEOUT_MS 2000
#define RECOVER_MS 20000

struct known_job {
	uint64_t id;
	bool completed;
	char result[32];
};

struct fixture {
	struct harness h;
	struct harness_proc broker;
	bool broker_running;
	struct known_job jobs[JOBS_MAX];
	size_t jobs_len;
	uint64_t unsure; /* submits with no answer: may exist, at most once */
};

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	if (f != NULL)
		fixture_end(state, &f->h, f->broker_running ? &f->broker : NULL);
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void remember(struct fixture *f, uint64_t id)
{
	assert_true(f->jobs_len < JOBS_MAX);
	f->jobs[f->jobs_len++] = (struct known_job){.id = id};
}

static int submit_one(jm_client *client, const char *tag, uint64_t *id)
{
	jm_job_spec spec = {
	    .queue = "disk", .type = "t", .payload = tag, .payload_len = strlen(tag)};
	return jm_client_submit(client, &spec, id);
}

/* Fetches one job as worker w and acks it with "res-<id>". */
static void complete_one(struct fixture *f, struct rpc *rpc)
{
	struct proto_delivery d = fixture_rpc_fetch(rpc, "w", "disk", 2000, 5000);
	uint64_t id = d.job_id;

	struct known_job *job = NULL;
	for (size_t i = 0; i < f->jobs_len; i++)
		if (f->jobs[i].id == id)
			job = &f->jobs[i];
	assert_non_null(job);
	snprintf(job->result, sizeof job->result, "res-%llu", (unsigned long long)id);
	assert_int_equal(fixture_rpc_ack(rpc, "w", id, d.lease, job->result), 0);
	job->completed = true;
}

/* Every job acknowledged so far is there, as it was stored. */
static void check_known_jobs(struct fixture *f, jm_client *client, const char *when)
{
	for (size_t i = 0; i < f->jobs_len; i++) {
		jm_job_info info = {0};
		int rc = jm_client_result(client, f->jobs[i].id, &info);
		if (rc != 0)
			fail_msg("%s: job %llu: %s", when, (unsigned long long)f->jobs[i].id,
			         jm_client_last_error());
		if (f->jobs[i].completed) {
			assert_int_equal(info.state, JM_STATE_COMPLETED);
			assert_string_equal((char *)info.result, f->jobs[i].result);
		} else {
			assert_int_equal(info.state, JM_STATE_PENDING);
		}
		jm_job_info_fini(&info);
	}
}

static uint64_t jobs_total(jm_client *client)
{
	jm_queue_stats *queues = NULL;
	size_t count = 0;
	assert_jm_ok(jm_client_stats(client, &queues, &count));
	uint64_t total = 0;
	for (size_t i = 0; i < count; i++)
		total += queues[i].pending + queues[i].delayed + queues[i].active +
		         queues[i].completed + queues[i].failed;
	free(queues);
	return total;
}

static void assert_total_in_range(struct fixture *f, jm_client *client, const char *when)
{
	uint64_t total = jobs_total(client);
	if (total < f->jobs_len || total > f->jobs_len + f->unsure)
		fail_msg("%s: the broker holds %llu jobs; %zu acknowledged, %llu unanswered", when,
		         (unsigned long long)total, f->jobs_len, (unsigned long long)f->unsure);
}

static size_t journal_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t largest = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "journal-", 8) != 0)
			continue;
		char path[512];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		if ((size_t)st.st_size > largest)
			largest = (size_t)st.st_size;
	}
	closedir(d);
	return largest;
}

/* The broker under prlimit --fsize=limit, on the harness's data dir and
 * ipc path (prlimit execs the broker: the PID is the broker's). */
static void broker_start_limited(struct fixture *f, size_t limit)
{
	char fsize[64], listen[300], data[300];
	/* Soft limit only: raising it back needs no privilege. */
	snprintf(fsize, sizeof fsize, "--fsize=%zu:unlimited", limit);
	snprintf(listen, sizeof listen, "ipc://%s/broker.ipc", f->h.dir);
	snprintf(data, sizeof data, "%s/data", f->h.dir);
	char *argv[] = {"prlimit",  fsize,   "--",     (char *)harness_bin("jobmesh-broker"),
	                "--listen", listen,  "--data", data,
	                "--fsync",  "batch", "--http", "127.0.0.1:0",
	                NULL};
	bool listening = fixture_spawn_broker(&f->h, argv, 10000, &f->broker);
	f->broker_running = true;
	if (!listening) {
		harness_print_logs(&f->h, 20);
		fail_msg("the broker under prlimit did not start");
	}
	snprintf(f->h.broker_url, sizeof f->h.broker_url, "%s", listen);
}

static bool prlimit_available(struct fixture *f)
{
	char *argv[] = {"prlimit", "--version", NULL};
	int code = -1;
	return harness_run(&f->h, argv, 5000, NULL, &code) == 0 && code == 0;
}

struct recovery {
	struct fixture *f;
	jm_client *client;
	unsigned tries;
	int last_rc;
};

static bool submit_accepted_cb(void *arg)
{
	struct recovery *r = arg;
	char tag[32];
	snprintf(tag, sizeof tag, "recover-%u", r->tries++);
	uint64_t id;
	r->last_rc = submit_one(r->client, tag, &id);
	if (r->last_rc == 0) {
		remember(r->f, id);
		return true;
	}
	if (r->last_rc != JM_ENOSPC)
		r->f->unsure++;
	sleep_ms(50);
	return false;
}

static void test_journal_write_limit_refuses_submits_then_recovers_losing_nothing(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	*state = f;
	assert_jm_ok(harness_init(&f->h, "fulldisk"));
	if (!prlimit_available(f))
		fail_msg("prlimit (package util-linux) is required for this test");

	/* A first batch, some completed with results. */
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	f->broker_running = true;
	jm_client *client;
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	for (int i = 0; i < FIRST_JOBS; i++) {
		char tag[32];
		snprintf(tag, sizeof tag, "first-%d", i);
		uint64_t id;
		assert_jm_ok(submit_one(client, tag, &id));
		remember(f, id);
	}
	struct rpc *rpc = fixture_rpc_open(f->h.broker_url);
	for (int i = 0; i < FIRST_COMPLETED; i++)
		complete_one(f, rpc);
	rpc_close(rpc);
	jm_client_close(client);
	int status = -1;
	assert_jm_ok(harness_stop(&f->broker, SIGTERM, 10000, &status));
	f->broker_running = false;
	assert_int_equal(status, 0);

	size_t size = journal_bytes(harness_path(&f->h, "data"));
	size_t limit = size + HEADROOM_BYTES;
	printf("journal %zu bytes after the first batch; file size limit %zu\n", size, limit);
	broker_start_limited(f, limit);
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	jm_client_set_timeout_ms(client, CLIENT_TIMEOUT_MS);
	check_known_jobs(f, client, "under the limit, before it is reached");

	/* Submit until the journal refuses. The submit whose record hit the
	 * limit waits for a write that keeps failing: it may time out, and its
	 * job may appear once space returns. */
	int rc = 0;
	unsigned accepted_under_limit = 0;
	char reads_failed[256] = "";
	for (int i = 0; i < SUBMITS_MAX && rc != JM_ENOSPC; i++) {
		char tag[32];
		snprintf(tag, sizeof tag, "during-%d", i);
		uint64_t id;
		rc = submit_one(client, tag, &id);
		if (rc == 0) {
			remember(f, id);
			accepted_under_limit++;
		} else if (rc != JM_ENOSPC) {
			f->unsure++;
		}
	}
	if (rc != JM_ENOSPC) {
		harness_print_logs(&f->h, 20);
		fail_msg("no submit was refused with JM_ENOSPC in %d tries (last: %d %s)",
		         SUBMITS_MAX, rc, jm_client_last_error());
	}
	const char *why = jm_client_last_error();
	printf("%u submits accepted under the limit, %llu unanswered; refused with: %s\n",
	       accepted_under_limit, (unsigned long long)f->unsure, why);
	assert_true(accepted_under_limit > 0);
	assert_non_null(strstr(why, "journal"));
	if (strstr(why, "no space") == NULL && strstr(why, "refused") == NULL)
		fail_msg("the refusal should say the journal refuses writes: \"%s\"", why);

	/* While refused: reads work (each kind tried, then all asserted, so a
	 * failure names every read that hangs), every refusal is immediate and
	 * clear, and nothing stored changes. */
	{
		jm_job_info info = {0};
		uint64_t t0 = jm_mono_us();
		int status_rc = jm_client_status(client, f->jobs[FIRST_JOBS - 1].id, &info);
		uint64_t status_ms = (jm_mono_us() - t0) / 1000;
		jm_job_info_fini(&info);
		uint64_t done_id = 0;
		for (size_t i = 0; i < f->jobs_len && done_id == 0; i++)
			if (f->jobs[i].completed)
				done_id = f->jobs[i].id;
		t0 = jm_mono_us();
		int result_rc = jm_client_result(client, done_id, &info);
		uint64_t result_ms = (jm_mono_us() - t0) / 1000;
		jm_job_info_fini(&info);
		jm_queue_stats *queues = NULL;
		size_t count = 0;
		t0 = jm_mono_us();
		int stats_rc = jm_client_stats(client, &queues, &count);
		uint64_t stats_ms = (jm_mono_us() - t0) / 1000;
		free(queues);
		printf(
		    "while refused: status %d (%llu ms), result %d (%llu ms), stats %d (%llu ms)\n",
		    status_rc, (unsigned long long)status_ms, result_rc,
		    (unsigned long long)result_ms, stats_rc, (unsigned long long)stats_ms);
		/* Asserted at the end, so the recovery is tested as well. */
		if (status_rc != 0 || result_rc != 0 || stats_rc != 0)
			snprintf(reads_failed, sizeof reads_failed,
			         "reads must keep working while the journal refuses writes: "
			         "status %s, result %s, stats %s",
			         jm_strerror(status_rc), jm_strerror(result_rc),
			         jm_strerror(stats_rc));
	}
	uint64_t total_refused = 0;
	if (reads_failed[0] == '\0') {
		total_refused = jobs_total(client);
		assert_total_in_range(f, client, "while refused");
		check_known_jobs(f, client, "while refused");
	}
	for (int i = 0; i < 5; i++) {
		char tag[32];
		snprintf(tag, sizeof tag, "refused-%d", i);
		uint64_t id;
		uint64_t t0 = jm_mono_us();
		assert_jm_code(submit_one(client, tag, &id), JM_ENOSPC);
		assert_true(jm_mono_us() - t0 < CLIENT_TIMEOUT_MS * 1000ull / 2);
	}
	jm_job_spec specs[4];
	for (int i = 0; i < 4; i++)
		specs[i] = (jm_job_spec){
		    .queue = "disk", .type = "t", .payload = "batch", .payload_len = 5};
	uint64_t ids[4];
	assert_jm_code(jm_client_submit_many(client, specs, 4, true, ids, NULL), JM_ENOSPC);
	if (reads_failed[0] == '\0')
		assert_int_equal(jobs_total(client), total_refused);
	assert_true(harness_is_running(&f->broker));

	/* Space returns: lift the limit on the running broker. */
	char pid_text[32];
	snprintf(pid_text, sizeof pid_text, "%d", (int)f->broker.pid);
	char *lift[] = {"prlimit", "--pid", pid_text, "--fsize=unlimited:unlimited", NULL};
	int code = -1;
	assert_jm_ok(harness_run(&f->h, lift, 5000, NULL, &code));
	assert_int_equal(code, 0);
	uint64_t lifted_us = jm_mono_us();
	struct recovery r = {.f = f, .client = client};
	if (!harness_wait_for(RECOVER_MS, submit_accepted_cb, &r,
	                      "a submit to be accepted after the limit was lifted")) {
		harness_print_logs(&f->h, 20);
		fail_msg("still refused after %d ms: %d %s", RECOVER_MS, r.last_rc,
		         jm_client_last_error());
	}
	printf("accepting again %llu ms after the limit was lifted\n",
	       (unsigned long long)((jm_mono_us() - lifted_us) / 1000));
	for (int i = 0; i < AFTER_JOBS; i++) {
		char tag[32];
		snprintf(tag, sizeof tag, "after-%d", i);
		uint64_t id;
		rc = submit_one(client, tag, &id);
		if (rc != 0)
			fail_msg("submit after recovery: %s", jm_client_last_error());
		remember(f, id);
	}
	assert_jm_ok(jm_client_submit_many(client, specs, 4, false, ids, NULL));
	for (int i = 0; i < 4; i++)
		remember(f, ids[i]);
	check_known_jobs(f, client, "after recovery");
	assert_total_in_range(f, client, "after recovery");
	jm_client_close(client);

	/* The log said what happened. */
	char *log = harness_read_file(harness_path(&f->h, "broker.err"), NULL);
	assert_non_null(log);
	assert_non_null(strstr(log, "new writes are refused"));
	free(log);

	/* Everything acknowledged survives a restart; the journal is sound. */
	assert_jm_ok(harness_stop(&f->broker, SIGTERM, 10000, &status));
	f->broker_running = false;
	assert_int_equal(status, 0);
	char *check[] = {(char *)harness_bin("jobmesh-broker"), "--check-journal",
	                 (char *)harness_path(&f->h, "data"), NULL};
	char *out = NULL;
	assert_jm_ok(harness_run(&f->h, check, 10000, &out, &code));
	if (code != 0)
		fail_msg("--check-journal exit %d after recovery:\n%s", code, out);
	assert_non_null(strstr(out, "sound"));
	assert_null(strstr(out, "torn tail"));
	free(out);
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	f->broker_running = true;
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	check_known_jobs(f, client, "after a restart");
	assert_total_in_range(f, client, "after a restart");
	jm_client_close(client);
	if (reads_failed[0] != '\0')
		fail_msg("%s", reads_failed);
}

/* Submits until the journal refuses with JM_ENOSPC; fails the test if it
 * never does. Submits without an answer are counted in f->unsure. */
static void submit_until_refused(struct fixture *f, jm_client *client, const char *label)
{
	int rc = 0;
	for (int i = 0; i < SUBMITS_MAX && rc != JM_ENOSPC; i++) {
		char tag[32];
		snprintf(tag, sizeof tag, "%s-%d", label, i);
		uint64_t id;
		rc = submit_one(client, tag, &id);
		if (rc == 0)
			remember(f, id);
		else if (rc != JM_ENOSPC)
			f->unsure++;
	}
	if (rc != JM_ENOSPC) {
		harness_print_logs(&f->h, 20);
		fail_msg("no submit was refused with JM_ENOSPC in %d tries (last: %d %s)",
		         SUBMITS_MAX, rc, jm_client_last_error());
	}
}

static void
test_sigterm_that_cannot_write_its_last_records_exits_1_without_a_clean_marker(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	*state = f;
	assert_jm_ok(harness_init(&f->h, "fulldiskstop"));
	if (!prlimit_available(f))
		fail_msg("prlimit (package util-linux) is required for this test");
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	f->broker_running = true;
	jm_client *client;
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	for (int i = 0; i < FIRST_COMPLETED; i++) {
		char tag[32];
		snprintf(tag, sizeof tag, "first-%d", i);
		uint64_t id;
		assert_jm_ok(submit_one(client, tag, &id));
		remember(f, id);
	}
	jm_client_close(client);
	int status = -1;
	assert_jm_ok(harness_stop(&f->broker, SIGTERM, 10000, &status));
	f->broker_running = false;
	assert_int_equal(status, 0);
	const char *data = harness_path(&f->h, "data");

	/* Under the limit, until the journal refuses: the submit whose record
	 * hit the limit is held, unwritten, and unanswered. */
	broker_start_limited(f, journal_bytes(data) + HEADROOM_BYTES);
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	jm_client_set_timeout_ms(client, CLIENT_TIMEOUT_MS);
	submit_until_refused(f, client, "held");
	jm_client_close(client);
	if (f->unsure == 0)
		fail_msg("no submit was left unanswered: the broker holds no unwritten record");

	/* SIGTERM: the writer gives up after its close deadline; exit 1. */
	size_t err_before = 0;
	const char *err_path = harness_path(&f->h, "broker.err");
	free(harness_read_file(err_path, &err_before));
	assert_jm_ok(harness_stop(&f->broker, SIGTERM, 20000, &status));
	f->broker_running = false;
	char *log = harness_read_file(err_path, NULL);
	assert_non_null(log);
	if (status != 1)
		fail_msg("a stop that could not write its last records exited %d, expected 1:\n%s",
		         status, log + err_before);
	if (strstr(log + err_before, "stopped without writing the last") == NULL)
		fail_msg("the broker did not say what it could not write:\n%s", log + err_before);
	assert_null(strstr(log + err_before, "marked clean"));
	free(log);
	char marker[512];
	snprintf(marker, sizeof marker, "%s/CLEAN", data);
	assert_int_not_equal(access(marker, F_OK), 0);

	/* The failed writes were cut back: the journal is sound, and every job
	 * acknowledged is there at the next start. */
	char *check[] = {(char *)harness_bin("jobmesh-broker"), "--check-journal", (char *)data,
	                 NULL};
	char *out = NULL;
	int code = -1;
	assert_jm_ok(harness_run(&f->h, check, 10000, &out, &code));
	if (code != 0)
		fail_msg("--check-journal exit %d after the failed stop:\n%s", code, out);
	free(out);
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	f->broker_running = true;
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	check_known_jobs(f, client, "after the failed stop");
	assert_total_in_range(f, client, "after the failed stop");
	jm_client_close(client);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(
	        test_journal_write_limit_refuses_submits_then_recovers_losing_nothing,
	        fixture_teardown),
	    cmocka_unit_test_teardown(
	        test_sigterm_that_cannot_write_its_last_records_exits_1_without_a_clean_marker,
	        fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
