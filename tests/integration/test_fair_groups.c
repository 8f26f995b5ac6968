/* Fair tenants through real processes: jobs carry a group, the groups of
 * a queue take turns (deficit round robin, one job a turn), a per-group
 * active limit holds, and groups and the limit survive a broker restart.
 *
 * The bound (broker/lanes.h): with G groups holding ready jobs of a type,
 * a group's k-th job is dispatched within k·G dispatches. Here G = 2: a
 * small group's 10 jobs submitted after a greedy group's 2,000 all start
 * within the first 20 starts. */
#include "jm_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/client.h>

#include "fixture.h"
#include "harness.h"
#include "stack.h"

#define GREEDY_JOBS 2000
#define SMALL_JOBS 10

/* Submits count jobs of group to queue, type "t", payload the group name,
 * in one round trip; ids (may be NULL) gets their ids. */
static void submit_group(struct stack *f, const char *queue, const char *group, size_t count,
                         uint64_t *ids)
{
	jm_job_spec *specs = calloc(count, sizeof *specs);
	uint64_t *got = calloc(count, sizeof *got);
	assert_non_null(specs);
	assert_non_null(got);
	for (size_t i = 0; i < count; i++)
		specs[i] = (jm_job_spec){.queue = queue,
		                         .type = "t",
		                         .payload = group,
		                         .payload_len = strlen(group),
		                         .group = group};
	if (jm_client_submit_many(f->client, specs, count, false, got, NULL) != 0)
		fail_msg("submit: %s", jm_client_last_error());
	if (ids)
		memcpy(ids, got, count * sizeof *ids);
	free(specs);
	free(got);
}

static void await_completed(struct stack *f, uint64_t id)
{
	jm_job_info info = {0};
	assert_jm_ok(jm_client_wait(f->client, id, 60000, &info));
	if (info.state != JM_STATE_COMPLETED)
		fail_msg("job %llu ended in state %d: %s", (unsigned long long)id, info.state,
		         info.last_error);
	jm_job_info_fini(&info);
}

/* A worker on queue whose handler appends "GROUP ID" to order (one line
 * per start, in start order: one slot). */
static void start_order_worker(struct stack *f, const char *name, const char *queue,
                               struct harness_proc *proc)
{
	char handler[600];
	snprintf(handler, sizeof handler, "t=echo \"$(cat) $JOBMESH_JOB_ID\" >> %s/order-%s",
	         f->h.dir, queue);
	const char *args[] = {"--queue", queue,       "--concurrency", "1", "--drain-timeout",
	                      "1",       "--handler", handler,         NULL};
	assert_jm_ok(harness_worker_start(&f->h, name, args, proc));
}

/* The 1-based position in the order file of queue at which the last of
 * the jobs of group started, with how many of them started. */
static int last_start_of(struct stack *f, const char *queue, const char *group, int *started)
{
	char path[600];
	snprintf(path, sizeof path, "%s/order-%s", f->h.dir, queue);
	char *text = harness_read_file(path, NULL);
	assert_non_null(text);
	int line_no = 0, last = 0;
	*started = 0;
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		line_no++;
		char line_group[80];
		if (sscanf(line, "%79s", line_group) == 1 && strcmp(line_group, group) == 0) {
			(*started)++;
			last = line_no;
		}
	}
	free(text);
	return last;
}

static void test_a_greedy_group_does_not_starve_a_small_one(void **state)
{
	struct stack *f = stack_open(state, "fair", NULL, NULL, STACK_CLIENT);
	submit_group(f, "fair", "greedy", GREEDY_JOBS, NULL);
	uint64_t small[SMALL_JOBS];
	submit_group(f, "fair", "small", SMALL_JOBS, small);
	struct harness_proc worker;
	start_order_worker(f, "w-fair", "fair", &worker);
	for (int i = 0; i < SMALL_JOBS; i++)
		await_completed(f, small[i]);
	int started;
	int last = last_start_of(f, "fair", "small", &started);
	assert_int_equal(started, SMALL_JOBS);
	/* The bound: k·G = 10·2 starts. */
	if (last > 2 * SMALL_JOBS)
		fail_msg("the small group's last job started %dth, past the bound of %d", last,
		         2 * SMALL_JOBS);
	/* The rest of the greedy group's jobs are of no interest. */
	assert_jm_ok(harness_kill(&worker));
	/* And the status says which group a job is in. */
	jm_job_info info = {0};
	assert_jm_ok(jm_client_status(f->client, small[0], &info));
	assert_string_equal(info.group, "small");
	jm_job_info_fini(&info);
}

struct max_seen {
	const char *path;
	int max;
	int lines;
};

/* The largest number in a file of one number per line. */
static void read_max(struct max_seen *m)
{
	char *text = harness_read_file(m->path, NULL);
	m->max = m->lines = 0;
	if (text == NULL)
		return;
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		int n = atoi(line);
		m->lines++;
		if (n > m->max)
			m->max = n;
	}
	free(text);
}

static void test_the_group_limit_caps_a_groups_active_jobs_not_the_others(void **state)
{
	struct stack *f = stack_open(state, "fair_limit", NULL, NULL, STACK_CLIENT);
	const char *set[] = {"queue", "set", "lim", "group-limit=2", NULL};
	char *out = NULL, *errs = NULL;
	assert_int_equal(stack_run_cli(f, set, &out, &errs), 0);
	if (strstr(out, "group-limit 2") == NULL)
		fail_msg("queue set printed: %s", out);
	free(out);
	free(errs);
	/* Each start counts the running jobs of its group (named by the
	 * payload) and records it; a job ends only after dropping its mark,
	 * so a count never exceeds the group's active jobs. */
	char handler[2048];
	snprintf(handler, sizeof handler,
	         "t=g=$(cat); mkdir -p %1$s/run-$g; touch %1$s/run-$g/$JOBMESH_JOB_ID; "
	         "ls %1$s/run-$g | wc -l >> %1$s/seen-$g; sleep 0.4; "
	         "rm %1$s/run-$g/$JOBMESH_JOB_ID",
	         f->h.dir);
	const char *args[] = {"--queue", "lim",       "--concurrency", "8", "--drain-timeout",
	                      "1",       "--handler", handler,         NULL};
	uint64_t g[6], h[4];
	submit_group(f, "lim", "g", 6, g);
	submit_group(f, "lim", "h", 4, h);
	struct harness_proc worker;
	assert_jm_ok(harness_worker_start(&f->h, "w-limit", args, &worker));
	for (int i = 0; i < 6; i++)
		await_completed(f, g[i]);
	for (int i = 0; i < 4; i++)
		await_completed(f, h[i]);
	char path_g[600], path_h[600];
	snprintf(path_g, sizeof path_g, "%s/seen-g", f->h.dir);
	snprintf(path_h, sizeof path_h, "%s/seen-h", f->h.dir);
	struct max_seen seen_g = {path_g, 0, 0}, seen_h = {path_h, 0, 0};
	read_max(&seen_g);
	read_max(&seen_h);
	assert_int_equal(seen_g.lines, 6);
	assert_int_equal(seen_h.lines, 4);
	/* 8 slots, yet no group ever had more than 2 running; two did run
	 * side by side (each start is 0.4 s, both are handed out together). */
	assert_int_equal(seen_g.max, 2);
	assert_true(seen_h.max <= 2);
}

static void test_groups_and_the_group_limit_survive_a_restart(void **state)
{
	struct stack *f = stack_open(state, "fair_restart", NULL, NULL, STACK_CLIENT);
	jm_queue_settings want = {.set_mask = JM_QSET_GROUP_LIMIT, .group_limit = 3}, got;
	assert_jm_ok(jm_client_queue_set(f->client, "rq", &want, &got));
	assert_int_equal(got.group_limit, 3);
	uint64_t a[SMALL_JOBS], b[3];
	submit_group(f, "rq", "a", SMALL_JOBS, a);
	submit_group(f, "rq", "b", 3, b);
	for (int round = 0; round < 2; round++) {
		jm_client_close(f->client);
		f->client = NULL;
		if (round == 0)
			assert_jm_ok(harness_kill(&f->broker)); /* replayed from the journal */
		else /* a clean stop writes a snapshot: groups are in it */
			assert_int_equal(harness_stop(&f->broker, SIGTERM, 10000, NULL), 0);
		assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
		assert_jm_ok(jm_client_open(&f->client, f->h.broker_url));
		assert_jm_ok(jm_client_queue_set(f->client, "rq", &(jm_queue_settings){0}, &got));
		assert_int_equal(got.group_limit, 3);
		assert_int_equal(got.set_mask, JM_QSET_GROUP_LIMIT);
		jm_job_info info = {0};
		assert_jm_ok(jm_client_status(f->client, b[2], &info));
		assert_string_equal(info.group, "b");
		assert_int_equal(info.state, JM_STATE_PENDING);
		jm_job_info_fini(&info);
	}
	/* After the restarts the groups still take turns: b's 3 jobs start
	 * within the first 6 (k·G = 3·2), though a's 10 were submitted first. */
	struct harness_proc worker;
	start_order_worker(f, "w-restart", "rq", &worker);
	for (int i = 0; i < 3; i++)
		await_completed(f, b[i]);
	int started;
	int last = last_start_of(f, "rq", "b", &started);
	assert_int_equal(started, 3);
	if (last > 6)
		fail_msg("group b's last job started %dth, past the bound of 6", last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_a_greedy_group_does_not_starve_a_small_one, stack_close),
	    cmocka_unit_test_teardown(test_the_group_limit_caps_a_groups_active_jobs_not_the_others,
	                              stack_close),
	    cmocka_unit_test_teardown(test_groups_and_the_group_limit_survive_a_restart,
	                              stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
