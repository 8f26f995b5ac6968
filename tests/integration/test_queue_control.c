/* Operating queues through a real broker: cancelling jobs, per-queue limits
 * on active jobs, the dead-letter set, the worker list, and compaction
 * shrinking the journal while the state survives a restart. */
#include "jm_test.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jobmesh/client.h>

#include "fixture.h"
#include "harness.h"
#include "message.h"
#include "rpc.h"
#include "stack.h"

/* A broker with extra flags, a client and a raw REQ connection. */
static struct stack *fixture_start(void **state, const char *name, const char *const *extra)
{
	return stack_open(state, name, extra, NULL, STACK_CLIENT | STACK_RPC);
}

static uint64_t submit(struct stack *f, const char *queue, const char *type, unsigned attempts)
{
	jm_job_spec spec = {.queue = queue,
	                    .type = type,
	                    .payload = "p",
	                    .payload_len = 1,
	                    .max_attempts = attempts};
	uint64_t id;
	if (jm_client_submit(f->client, &spec, &id) != 0)
		fail_msg("submit: %s", jm_client_last_error());
	return id;
}

static int call(struct stack *f, struct proto_msg *req, struct rpc_reply *reply)
{
	struct jm_err err = {0};
	int rc = rpc_call(f->rpc, req, 10000, reply, &err);
	if (rc != 0)
		print_message("rpc %s: %s\n", proto_type_name(req->type), jm_err_text(&err));
	return rc;
}

static int job_state(struct stack *f, uint64_t id)
{
	jm_job_info info = {0};
	assert_jm_ok(jm_client_status(f->client, id, &info));
	int state = info.state;
	jm_job_info_fini(&info);
	return state;
}

static void await_state(struct stack *f, uint64_t id, int state)
{
	fixture_await_state(&f->h, f->client, id, state, 20000);
}

static void test_cancel_pending_and_active_jobs(void **state)
{
	struct stack *f = fixture_start(state, "cancel", NULL);
	uint64_t pending = submit(f, "idle", "t", 0);
	struct proto_msg req = {.type = PROTO_CANCEL};
	req.u.job_ref.job_id = pending;
	struct rpc_reply reply = {0};
	assert_jm_ok(call(f, &req, &reply));
	assert_int_equal(reply.msg.u.job.state, PROTO_STATE_CANCELLED);
	rpc_reply_fini(&reply);
	/* Cancelling again is refused: it is finished. */
	struct jm_err err = {0};
	assert_int_equal(rpc_call(f->rpc, &req, 5000, &reply, &err), JM_ESTATE);
	assert_non_null(strstr(jm_err_text(&err), "cancelled"));

	/* An active job: its worker is told to abandon it and kills the
	 * handler; the job stays cancelled. */
	char handler[512];
	snprintf(handler, sizeof handler, "slow=echo $$ > %s/slow.pid; exec sleep 30", f->h.dir);
	const char *args[] = {"--queue",
	                      "busy",
	                      "--handler",
	                      handler,
	                      "--heartbeat-ms",
	                      "100",
	                      "--kill-grace-ms",
	                      "200",
	                      "--drain-timeout",
	                      "1",
	                      NULL};
	struct harness_proc worker;
	assert_jm_ok(harness_worker_start(&f->h, "w-cancel", args, &worker));
	uint64_t active = submit(f, "busy", "slow", 0);
	await_state(f, active, JM_STATE_ACTIVE);
	req.u.job_ref.job_id = active;
	assert_jm_ok(call(f, &req, &reply));
	assert_int_equal(reply.msg.u.job.state, PROTO_STATE_CANCELLED);
	rpc_reply_fini(&reply);
	jm_job_info info = {0};
	assert_jm_ok(jm_client_wait(f->client, active, 1000, &info));
	assert_int_equal(info.state, JM_STATE_CANCELLED);
	jm_job_info_fini(&info);
	/* The worker is free again: a new job runs there. */
	uint64_t next = submit(f, "busy", "slow", 0);
	await_state(f, next, JM_STATE_ACTIVE);
}

struct limit_watch {
	struct stack *f;
	uint64_t max_active;
	uint64_t completed;
	const char *queue;
	uint64_t expect_completed;
};

/* Samples the queue's counters: records the most active jobs seen; true
 * once completed reaches expect_completed exactly. */
static bool completed_count_is(void *arg)
{
	struct limit_watch *w = arg;
	jm_queue_stats *queues;
	size_t count;
	if (jm_client_stats(w->f->client, &queues, &count) != 0)
		return false;
	for (size_t i = 0; i < count; i++) {
		if (strcmp(queues[i].name, w->queue) != 0)
			continue;
		if (queues[i].active > w->max_active)
			w->max_active = queues[i].active;
		w->completed = queues[i].completed;
	}
	free(queues);
	return w->completed == w->expect_completed;
}

static void test_queue_limit_caps_active_jobs_across_workers(void **state)
{
	const char *extra[] = {"--queue-limit", "docs=2", NULL};
	struct stack *f = fixture_start(state, "limit", extra);
	const char *args[] = {"--queue",       "docs", "--concurrency", "4", "--handler",
	                      "ocr=sleep 0.3", NULL};
	struct harness_proc w1, w2;
	assert_jm_ok(harness_worker_start(&f->h, "w-limit-1", args, &w1));
	assert_jm_ok(harness_worker_start(&f->h, "w-limit-2", args, &w2));
	for (int i = 0; i < 8; i++)
		submit(f, "docs", "ocr", 0);
	struct limit_watch watch = {f, 0, 0, "docs", 8};
	assert_true(harness_wait_for(30000, completed_count_is, &watch, "8 docs completed"));
	assert_int_equal(watch.max_active, 2);
}

static void test_dead_letter_list_and_retry(void **state)
{
	struct stack *f = fixture_start(state, "dead", NULL);
	char handler[512];
	/* Fails until a fix flag file exists. */
	snprintf(handler, sizeof handler, "pay=test -e %s/fixed || exit 100; printf paid",
	         f->h.dir);
	const char *args[] = {"--queue", "pay", "--handler", handler, NULL};
	struct harness_proc worker;
	assert_jm_ok(harness_worker_start(&f->h, "w-dead", args, &worker));
	uint64_t ids[3];
	for (int i = 0; i < 3; i++)
		ids[i] = submit(f, "pay", "pay", 2);
	for (int i = 0; i < 3; i++)
		await_state(f, ids[i], JM_STATE_FAILED);

	struct proto_msg req = {.type = PROTO_DEAD_LIST};
	strcpy(req.u.dead_list.queue, "pay");
	req.u.dead_list.limit = 10;
	struct rpc_reply reply = {0};
	assert_jm_ok(call(f, &req, &reply));
	assert_int_equal(reply.msg.u.job_list.jobs_count, 3);
	assert_int_equal(reply.msg.u.job_list.jobs[0].job_id, ids[0]);
	rpc_reply_fini(&reply);

	assert_non_null(harness_write_file(&f->h, "fixed", "", 0644));
	struct proto_msg revive = {.type = PROTO_REVIVE};
	strcpy(revive.u.revive.queue, "pay");
	assert_jm_ok(call(f, &revive, &reply));
	assert_int_equal(reply.msg.u.revived.ids_count, 3);
	rpc_reply_fini(&reply);
	for (int i = 0; i < 3; i++) {
		jm_job_info info = {0};
		assert_jm_ok(jm_client_wait(f->client, ids[i], 20000, &info));
		assert_int_equal(info.state, JM_STATE_COMPLETED);
		assert_int_equal(info.attempt, 1);
		jm_job_info_fini(&info);
	}
	assert_jm_ok(call(f, &req, &reply));
	assert_int_equal(reply.msg.u.job_list.jobs_count, 0);
	rpc_reply_fini(&reply);
}

static void test_workers_list_shows_queues_and_active_jobs(void **state)
{
	struct stack *f = fixture_start(state, "workers", NULL);
	const char *args[] = {
	    "--queue",     "alpha,beta",    "--concurrency",   "3", "--handler", "nap=sleep 30",
	    "--worker-id", "listed-worker", "--drain-timeout", "1", NULL};
	struct harness_proc worker;
	assert_jm_ok(harness_worker_start(&f->h, "listed-worker", args, &worker));
	uint64_t id = submit(f, "beta", "nap", 0);
	await_state(f, id, JM_STATE_ACTIVE);
	struct proto_msg req = {.type = PROTO_WORKERS};
	struct rpc_reply reply = {0};
	/* The first heartbeat (concurrency, pid, the leases held) comes within
	 * a second. The worker's first FETCH already names its queues, so the
	 * heartbeat is told by the pid, which only a heartbeat carries. */
	bool seen = false;
	for (int i = 0; i < 40 && !seen; i++) {
		assert_jm_ok(call(f, &req, &reply));
		assert_int_equal(reply.msg.u.workers_reply.workers_count, 1);
		const struct proto_worker_info *w = &reply.msg.u.workers_reply.workers[0];
		assert_string_equal(w->worker_id, "listed-worker");
		if (w->pid != 0) {
			seen = true;
			assert_int_equal(w->queues_count, 2);
			assert_string_equal(w->queues[0], "alpha");
			assert_string_equal(w->queues[1], "beta");
			assert_int_equal(w->concurrency, 3);
			assert_int_equal(w->active_jobs, 1);
			assert_int_equal(w->job_ids[0], id);
			assert_int_equal(w->pid, worker.pid);
		}
		rpc_reply_fini(&reply);
		if (!seen) {
			struct timespec step = {0, 50 * 1000 * 1000};
			nanosleep(&step, NULL);
		}
	}
	assert_true(seen);
	harness_kill(&worker); /* its 30 s job would hold up the drain */
}

/* A file's size less the zeros at its end: the open segment is
 * preallocated with zeros ahead of its records (journal_prealloc.c), which
 * hold no state and must not count as journal. */
static uint64_t bytes_before_trailing_zeros(const char *file, uint64_t size)
{
	FILE *f = fopen(file, "rb");
	if (f == NULL)
		return size;
	uint8_t chunk[4096];
	uint64_t end = size;
	while (end > 0) {
		uint64_t start = end > sizeof chunk ? end - sizeof chunk : 0;
		size_t want = (size_t)(end - start);
		if (fseek(f, (long)start, SEEK_SET) != 0 || fread(chunk, 1, want, f) != want)
			break;
		size_t i = want;
		while (i > 0 && chunk[i - 1] == 0)
			i--;
		if (i > 0) {
			end = start + i;
			break;
		}
		end = start;
	}
	fclose(f);
	return end;
}

static uint64_t dir_bytes(const char *path)
{
	DIR *dir = opendir(path);
	assert_non_null(dir);
	uint64_t total = 0;
	struct dirent *e;
	char file[1024];
	while ((e = readdir(dir)) != NULL) {
		struct stat st;
		snprintf(file, sizeof file, "%s/%s", path, e->d_name);
		if (e->d_name[0] != '.' && stat(file, &st) == 0 && S_ISREG(st.st_mode))
			total += bytes_before_trailing_zeros(file, (uint64_t)st.st_size);
	}
	closedir(dir);
	return total;
}

struct journal_watch {
	const char *data;
	uint64_t below;
};

static bool journal_small(void *arg)
{
	struct journal_watch *w = arg;
	return dir_bytes(w->data) < w->below;
}

static void test_compaction_shrinks_the_journal_and_keeps_the_state(void **state)
{
	const char *extra[] = {"--compact-min-bytes", "200000", "--keep-finished", "50", NULL};
	struct stack *f = fixture_start(state, "compact", extra);
	const char *args[] = {"--queue", "c", "--concurrency", "4", "--handler", "t=cat", NULL};
	struct harness_proc worker;
	assert_jm_ok(harness_worker_start(&f->h, "w-compact", args, &worker));
	enum { JOBS = 1500, PER_CALL = 100 };
	static char payload[200];
	memset(payload, 'x', sizeof payload - 1);
	jm_job_spec specs[PER_CALL];
	static uint64_t ids[JOBS];
	for (int i = 0; i < PER_CALL; i++)
		specs[i] = (jm_job_spec){.queue = "c",
		                         .type = "t",
		                         .payload = payload,
		                         .payload_len = sizeof payload - 1};
	for (int i = 0; i < JOBS; i += PER_CALL)
		assert_jm_ok(
		    jm_client_submit_many(f->client, specs, PER_CALL, false, &ids[i], NULL));
	jm_job_info info = {0};
	assert_jm_ok(jm_client_wait(f->client, ids[JOBS - 1], 60000, &info));
	jm_job_info_fini(&info);
	const char *data = harness_path(&f->h, "data");
	/* 1,500 jobs of 200 bytes wrote well over 600 kB; 50 kept jobs and a
	 * few live ones are a small snapshot (counted without the zeros
	 * preallocated ahead of the open segment's records). */
	struct journal_watch watch = {data, 200000};
	if (!harness_wait_for(20000, journal_small, &watch, "the journal to be compacted")) {
		harness_print_logs(&f->h, 20);
		fail_msg("journal still %llu bytes", (unsigned long long)dir_bytes(data));
	}
	/* A job submitted after compaction, and the kept ones, survive. */
	uint64_t after = submit(f, "idle", "t", 0);
	harness_stop(&f->broker, SIGTERM, 10000, NULL);
	assert_jm_ok(harness_broker_start(&f->h, extra, &f->broker));
	assert_int_equal(job_state(f, after), JM_STATE_PENDING);
	assert_int_equal(job_state(f, ids[JOBS - 1]), JM_STATE_COMPLETED);
	jm_job_info gone = {0};
	assert_int_equal(jm_client_status(f->client, ids[0], &gone), JM_ENOTFOUND);
	/* Retention sweeps once a second: jobs that finished just before the
	 * stop may still be over the limit right after the restart. */
	struct limit_watch kept = {f, 0, 0, "c", 50};
	assert_true(harness_wait_for(5000, completed_count_is, &kept, "retention to keep 50"));
	/* New ids never reuse old ones. */
	uint64_t newest = submit(f, "idle", "t", 0);
	assert_true(newest > after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_cancel_pending_and_active_jobs, stack_close),
	    cmocka_unit_test_teardown(test_queue_limit_caps_active_jobs_across_workers,
	                              stack_close),
	    cmocka_unit_test_teardown(test_dead_letter_list_and_retry, stack_close),
	    cmocka_unit_test_teardown(test_workers_list_shows_queues_and_active_jobs, stack_close),
	    cmocka_unit_test_teardown(test_compaction_shrinks_the_journal_and_keeps_the_state,
	                              stack_close),
	};
	/* JM_TEST_FILTER runs only the tests whose names match it (cmocka's
	 * glob), e.g. to repeat one test: JM_TEST_FILTER='test_compaction*'. */
	const char *filter = getenv("JM_TEST_FILTER");
	if (filter && *filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
