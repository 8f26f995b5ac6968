/* The jobmesh command-line tool as users run it: the real binary against a
 * real jobmesh-broker and jobmesh-worker (shell handlers), on an ipc://
 * address in a fresh temp dir. Output is parsed (JSON with jansson, lines
 * with POSIX regexes) and exit codes are checked against --help's table. */
#include "jm_test.h"

#include <inttypes.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fixture.h"
#include "harness.h"
#include "stack.h"

#define RUN_MS 60000
#define ARGS_MAX 32

/* A broker with fast retries (the tests wait on them). */
static struct stack *fixture_start(void **state, const char *name)
{
	return stack_open(state, name, fixture_fast_retries, NULL, 0);
}

/* What one run of jobmesh left. */
struct run {
	char *out;
	char *err;
	int code;
};

static void run_fini(struct run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}

/* Runs "jobmesh --broker URL args..." (NULL-terminated) to completion;
 * url NULL: "jobmesh args...", the test places --broker itself. */
static struct run cli_at(struct stack *f, const char *url, const char *arg, ...)
{
	char *argv[ARGS_MAX];
	int n = 0;
	argv[n++] = (char *)harness_bin("jobmesh");
	if (url != NULL) {
		argv[n++] = "--broker";
		argv[n++] = (char *)url;
	}
	va_list ap;
	va_start(ap, arg);
	for (const char *a = arg; a != NULL && n < ARGS_MAX - 1; a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	struct run r = {0};
	int rc = harness_run_capture(&f->h, argv, RUN_MS, &r.out, &r.err, &r.code);
	if (rc != 0) {
		harness_print_logs(&f->h, 30);
		fail_msg("running jobmesh %s: %d", arg, rc);
	}
	return r;
}

#define cli(f, ...) cli_at((f), (f)->h.broker_url, __VA_ARGS__, (const char *)NULL)
#define cli_bare(f, ...) cli_at((f), NULL, __VA_ARGS__, (const char *)NULL)

/* Fails unless the run's stderr matches the extended regex pattern. */
static void expect_err_matches(const struct run *r, const char *pattern, const char *what)
{
	regex_t re;
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	bool ok = regexec(&re, r->err, 0, NULL, 0) == 0;
	regfree(&re);
	if (!ok)
		fail_msg("%s: stderr does not match /%s/: %s", what, pattern, r->err);
}

/* Fails with the run's output unless it exited with code. */
static void expect_code(struct stack *f, const struct run *r, int code, const char *what)
{
	if (r->code != code) {
		harness_print_logs(&f->h, 20);
		fail_msg("%s: exit %d, expected %d\nstdout: %s\nstderr: %s", what, r->code, code,
		         r->out, r->err);
	}
}

static uint64_t parse_id(const char *text)
{
	char *end = NULL;
	unsigned long long id = strtoull(text, &end, 10);
	if (end == text || strcmp(end, "\n") != 0)
		fail_msg("expected an id and a newline, got \"%s\"", text);
	return id;
}

static json_t *parse_json(const char *text)
{
	json_error_t jerr;
	json_t *value = json_loads(text, 0, &jerr);
	if (value == NULL)
		fail_msg("not JSON (%s): %s", jerr.text, text);
	return value;
}

static bool matches(const char *pattern, const char *text)
{
	regex_t re;
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	bool ok = regexec(&re, text, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static uint64_t submit_job(struct stack *f, const char *queue, const char *type,
                           const char *payload)
{
	struct run r = cli(f, "submit", "--queue", queue, "--type", type, "--payload", payload);
	expect_code(f, &r, 0, "submit");
	uint64_t id = parse_id(r.out);
	run_fini(&r);
	return id;
}

/* "jobmesh batch submit path" must exit 0 and print the batch id. */
static uint64_t submit_batch_file(struct stack *f, const char *path)
{
	struct run r = cli(f, "batch", "submit", path);
	expect_code(f, &r, 0, "batch submit");
	uint64_t batch_id = parse_id(r.out);
	run_fini(&r);
	return batch_id;
}

/* Fails unless every line of text (split in place) matches the extended
 * regex pattern; returns the last line (NULL: none) and counts them into
 * *lines_count if not NULL. */
static char *each_line_matches(char *text, const char *pattern, int *lines_count)
{
	char *last = NULL;
	int lines = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!matches(pattern, line))
			fail_msg("watch line %d does not match the format: \"%s\"", lines + 1,
			         line);
		last = line;
		lines++;
	}
	if (lines_count != NULL)
		*lines_count = lines;
	return last;
}

static char *id_text(char *buf, size_t size, uint64_t id)
{
	snprintf(buf, size, "%" PRIu64, id);
	return buf;
}

/* ---- jobs ---------------------------------------------------------------- */

static void test_submit_prints_an_id_and_status_and_result_describe_the_job(void **state)
{
	struct stack *f = fixture_start(state, "cli-submit");
	fixture_worker_start(&f->h, "w-echo", "mail", "2", "echo=printf 'sent:'; cat");
	uint64_t id = submit_job(f, "mail", "echo", "hello");
	char idbuf[24];
	id_text(idbuf, sizeof idbuf, id);

	struct run r = cli(f, "wait", idbuf, "--timeout", "60");
	expect_code(f, &r, 0, "wait for a completing job");
	char expected[128];
	snprintf(expected, sizeof expected, "job %" PRIu64 " completed (attempt 1/3)\n", id);
	assert_string_equal(r.out, expected);
	run_fini(&r);

	r = cli(f, "status", idbuf, "--json");
	expect_code(f, &r, 0, "status --json");
	json_t *job = parse_json(r.out);
	assert_int_equal(json_integer_value(json_object_get(job, "id")), (json_int_t)id);
	assert_string_equal(json_string_value(json_object_get(job, "queue")), "mail");
	assert_string_equal(json_string_value(json_object_get(job, "type")), "echo");
	assert_string_equal(json_string_value(json_object_get(job, "state")), "completed");
	assert_int_equal(json_integer_value(json_object_get(job, "attempt")), 1);
	assert_true(json_is_null(json_object_get(job, "batch_id")));
	assert_null(json_object_get(job, "result"));
	json_decref(job);
	run_fini(&r);

	r = cli(f, "status", idbuf);
	expect_code(f, &r, 0, "status");
	assert_true(matches("(^|\n)state +completed\n", r.out));
	assert_true(matches("(^|\n)batch +-\n", r.out));
	run_fini(&r);

	r = cli(f, "result", idbuf);
	expect_code(f, &r, 0, "result");
	assert_string_equal(r.out, "sent:hello");
	run_fini(&r);

	r = cli(f, "result", idbuf, "--json");
	expect_code(f, &r, 0, "result --json");
	job = parse_json(r.out);
	assert_string_equal(json_string_value(json_object_get(job, "result")), "sent:hello");
	json_decref(job);
	run_fini(&r);
}

/* Runs `jobmesh --broker URL submit ARGS... --stdin-lines < input_path`
 * (the harness gives a child /dev/null as stdin, so a shell redirects). */
static struct run cli_lines(struct stack *f, const char *input_path, bool json)
{
	char *argv[] = {
	    "/bin/sh",
	    "-c",
	    "exec \"$0\" --broker \"$1\" submit --queue lines --type echo --stdin-lines "
	    "$3 < \"$2\"",
	    (char *)harness_bin("jobmesh"),
	    (char *)f->h.broker_url,
	    (char *)input_path,
	    json ? "--json" : "",
	    NULL};
	struct run r = {0};
	assert_jm_ok(harness_run_capture(&f->h, argv, RUN_MS, &r.out, &r.err, &r.code));
	return r;
}

static void
test_submit_stdin_lines_submits_one_job_per_line_and_prints_ids_in_input_order(void **state)
{
	struct stack *f = fixture_start(state, "cli-lines");
	enum { LINES = 300 };
	char *text = malloc(LINES * 16 + 1);
	assert_non_null(text);
	size_t used = 0;
	for (int i = 0; i < LINES; i++)
		used += (size_t)sprintf(text + used, i == 7 ? "\n" : "line %d\n", i);
	const char *path = harness_write_file(&f->h, "lines.txt", text, 0644);
	free(text);
	assert_non_null(path);
	struct run r = cli_lines(f, path, false);
	expect_code(f, &r, 0, "submit --stdin-lines");
	int count = 0;
	each_line_matches(r.out, "^[0-9]+$", &count); /* ends each line in NUL */
	assert_int_equal(count, LINES);
	static uint64_t ids[LINES];
	char *p = r.out;
	for (int i = 0; i < LINES; i++) {
		ids[i] = strtoull(p, &p, 10);
		p++;
	}
	run_fini(&r);

	/* A worker echoes each payload back: id k holds line k. */
	fixture_worker_start(&f->h, "w-lines", "lines", "4", "echo=cat");
	jm_client *client;
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	for (int i = 0; i < LINES; i += 23) {
		jm_job_info info = {0};
		assert_jm_ok(jm_client_wait(client, ids[i], 30000, &info));
		assert_int_equal(info.state, JM_STATE_COMPLETED);
		char want[16] = ""; /* line 7 was empty */
		if (i != 7)
			snprintf(want, sizeof want, "line %d", i);
		assert_int_equal(info.result_len, strlen(want));
		assert_memory_equal(info.result, want, strlen(want));
		jm_job_info_fini(&info);
	}
	jm_job_info info = {0};
	assert_jm_ok(jm_client_wait(client, ids[7], 30000, &info));
	assert_int_equal(info.result_len, 0); /* an empty line, an empty payload */
	jm_job_info_fini(&info);
	jm_client_close(client);
}

static void test_submit_stdin_lines_names_a_refused_line_exits_1_and_submits_the_rest(void **state)
{
	struct stack *f = fixture_start(state, "cli-lines-bad");
	size_t big = JM_PAYLOAD_MAX_BYTES + 10;
	char *text = malloc(big + 64);
	assert_non_null(text);
	size_t used = (size_t)sprintf(text, "first\n");
	memset(text + used, 'x', big);
	used += big;
	used += (size_t)sprintf(text + used, "\nthird\n");
	const char *path = harness_write_file(&f->h, "lines.txt", text, 0644);
	free(text);
	assert_non_null(path);
	struct run r = cli_lines(f, path, true);
	expect_code(f, &r, 1, "submit --stdin-lines with a too big line");
	expect_err_matches(&r, "line 2: .*payload", "the refused line");
	json_t *out = parse_json(r.out);
	assert_int_equal(json_array_size(json_object_get(out, "ids")), 2);
	json_decref(out);
	run_fini(&r);
}

static void test_wait_exits_10_for_a_failed_job_and_12_on_timeout(void **state)
{
	struct stack *f = fixture_start(state, "cli-wait-codes");
	fixture_worker_start(&f->h, "w-bad", "cards", "1",
	                     "charge=echo 'card declined' >&2; exit 100");
	uint64_t failing = submit_job(f, "cards", "charge", "x");
	char idbuf[24];
	struct run r = cli(f, "wait", id_text(idbuf, sizeof idbuf, failing), "--timeout", "60");
	expect_code(f, &r, 10, "wait for a permanently failing job");
	assert_true(matches("^job [0-9]+ failed \\(attempt 1/3\\): .*card declined", r.out));
	run_fini(&r);

	/* Nobody serves this queue: the wait runs out. */
	uint64_t stuck = submit_job(f, "nobody", "t", "x");
	r = cli(f, "wait", id_text(idbuf, sizeof idbuf, stuck), "--timeout", "1");
	expect_code(f, &r, 12, "wait that times out");
	assert_true(matches("^job [0-9]+ pending", r.out));
	assert_non_null(strstr(r.err, "still pending"));
	run_fini(&r);
}

static void test_bad_queue_name_exits_1_with_the_rule(void **state)
{
	struct stack *f = fixture_start(state, "cli-bad-queue");
	struct run r = cli(f, "submit", "--queue", "a b", "--type", "t", "--payload", "x");
	expect_code(f, &r, 1, "submit to a bad queue name");
	assert_string_equal(r.out, "");
	assert_non_null(strstr(r.err, "\"a b\""));
	assert_non_null(strstr(r.err, "1-64 of A-Z a-z 0-9 . _ -"));
	run_fini(&r);
}

/* Every command words an unknown id the same way, and exits 4. */
static void test_unknown_id_exits_4_with_one_wording(void **state)
{
	struct stack *f = fixture_start(state, "cli-unknown");
	static const struct {
		const char *args[4];
		const char *kind;
	} cases[] = {
	    {{"status", "987654", NULL}, "job or batch"},
	    {{"result", "987654", NULL}, "job"},
	    {{"cancel", "987654", NULL}, "job"},
	    {{"wait", "987654", "--timeout", "1"}, "job"},
	    {{"watch", "987654", "--timeout", "1"}, "job or batch"},
	    {{"batch", "status", "987654", NULL}, "batch"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *const *a = cases[i].args;
		struct run r = cli(f, a[0], a[1], a[2], a[3]);
		expect_code(f, &r, 4, a[0]);
		char pattern[256];
		snprintf(pattern, sizeof pattern,
		         "^jobmesh: %s%s%s: %s 987654 not found: no such id, or its retention "
		         "ran out\n$",
		         a[0], strcmp(a[0], "batch") == 0 ? " " : "",
		         strcmp(a[0], "batch") == 0 ? a[1] : "", cases[i].kind);
		expect_err_matches(&r, pattern, a[0]);
		run_fini(&r);
	}
}

/* Ids name a job or a batch, never both: batch status on a job's id says
 * which it is and how to see it. */
static void test_batch_status_of_a_job_id_says_it_is_a_job(void **state)
{
	struct stack *f = fixture_start(state, "cli-batch-job");
	uint64_t id = submit_job(f, "idle", "t", "x");
	char idbuf[24];
	id_text(idbuf, sizeof idbuf, id);
	struct run r = cli(f, "batch", "status", idbuf);
	expect_code(f, &r, 4, "batch status of a job id");
	char expected[160];
	snprintf(expected, sizeof expected,
	         "jobmesh: batch status: %s is a job, not a batch: see it with \"jobmesh "
	         "status %s\"\n",
	         idbuf, idbuf);
	assert_string_equal(r.err, expected);
	run_fini(&r);
}

/* --broker, --config and --timeout work after the command too; a flag the
 * command has itself (wait --timeout) stays the command's, and a flag's
 * value is never taken for a global flag. */
static void test_global_flags_work_after_the_command(void **state)
{
	struct stack *f = fixture_start(state, "cli-global-flags");
	const char *url = f->h.broker_url;
	struct run r = cli_bare(f, "stats", "--broker", url);
	expect_code(f, &r, 0, "stats --broker URL");
	assert_non_null(strstr(r.out, "QUEUE"));
	run_fini(&r);

	/* The payload is "--broker": a value, not the global flag. cat hands
	 * it back as the result. */
	fixture_worker_start(&f->h, "w-echo", "echo", "1", "t=cat");
	r = cli_bare(f, "submit", "--queue", "echo", "--type", "t", "--payload", "--broker",
	             "--broker", url);
	expect_code(f, &r, 0, "submit ... --payload --broker --broker URL");
	uint64_t id = parse_id(r.out);
	run_fini(&r);
	char idbuf[24];
	id_text(idbuf, sizeof idbuf, id);
	r = cli_bare(f, "wait", idbuf, "--timeout", "60", "--broker", url, "--json");
	expect_code(f, &r, 0, "wait ID --timeout 60 --broker URL --json");
	json_t *job = parse_json(r.out);
	assert_string_equal(json_string_value(json_object_get(job, "result")), "--broker");
	json_decref(job);
	run_fini(&r);

	/* A global --timeout after a command that has none of its own, and
	 * the --name=value form. */
	char broker_flag[HARNESS_URL_MAX + 16];
	snprintf(broker_flag, sizeof broker_flag, "--broker=%s", url);
	r = cli_bare(f, "status", idbuf, "--timeout", "5", broker_flag);
	expect_code(f, &r, 0, "status ID --timeout 5 --broker=URL");
	assert_true(matches("state +completed", r.out));
	run_fini(&r);

	/* A subcommand's flags, and --config after the command. */
	char config[HARNESS_URL_MAX + 16];
	snprintf(config, sizeof config, "broker: %s\n", url);
	const char *config_path = harness_write_file(&f->h, "cli.yaml", config, 0644);
	assert_non_null(config_path);
	r = cli_bare(f, "batch", "status", idbuf, "--json", "--config", config_path);
	expect_code(f, &r, 4, "batch status ID --json --config FILE");
	assert_non_null(strstr(r.err, "is a job, not a batch"));
	run_fini(&r);

	/* A global flag's own errors still name it. */
	r = cli_bare(f, "stats", "--broker");
	expect_code(f, &r, 2, "stats --broker (no value)");
	assert_non_null(strstr(r.err, "--broker needs a value"));
	run_fini(&r);
}

static void test_unreachable_broker_exits_3(void **state)
{
	struct stack *f = fixture_start(state, "cli-unreachable");
	char url[HARNESS_URL_MAX];
	snprintf(url, sizeof url, "ipc://%s/nobody.ipc", f->h.dir);
	struct run r = cli_at(f, url, "--timeout", "1", "status", "1", (const char *)NULL);
	expect_code(f, &r, 3, "status against a broker nobody runs");
	assert_non_null(strstr(r.err, "nobody.ipc"));
	run_fini(&r);
}

static void test_cancel_prints_the_cancelled_state(void **state)
{
	struct stack *f = fixture_start(state, "cli-cancel");
	uint64_t id = submit_job(f, "idle", "t", "x");
	char idbuf[24];
	id_text(idbuf, sizeof idbuf, id);
	struct run r = cli(f, "cancel", idbuf, "--json");
	expect_code(f, &r, 0, "cancel");
	json_t *job = parse_json(r.out);
	assert_string_equal(json_string_value(json_object_get(job, "state")), "cancelled");
	json_decref(job);
	run_fini(&r);
	r = cli(f, "cancel", idbuf);
	expect_code(f, &r, 1, "cancel of a cancelled job");
	run_fini(&r);
	r = cli(f, "wait", idbuf, "--timeout", "5");
	expect_code(f, &r, 11, "wait for a cancelled job");
	run_fini(&r);

	/* stats counts it: the cancelled column, and "cancelled" in --json. */
	r = cli(f, "stats", "--json");
	expect_code(f, &r, 0, "stats --json");
	json_t *stats = parse_json(r.out);
	json_t *idle = json_array_get(json_object_get(stats, "queues"), 0);
	assert_string_equal(json_string_value(json_object_get(idle, "name")), "idle");
	assert_int_equal(json_integer_value(json_object_get(idle, "cancelled")), 1);
	assert_int_equal(json_integer_value(json_object_get(idle, "pending")), 0);
	json_decref(stats);
	run_fini(&r);
	r = cli(f, "stats");
	expect_code(f, &r, 0, "stats");
	assert_non_null(strstr(r.out, "CANCELLED"));
	run_fini(&r);
}

/* ---- batches ------------------------------------------------------------ */

/* Writes a JSONL file of jobs_count jobs of queue/type; every third
 * payload is an object, to check it is serialised. */
static const char *write_jobs(struct stack *f, const char *name, const char *queue,
                              const char *type, int jobs_count)
{
	size_t cap = (size_t)jobs_count * 128 + 64;
	char *text = malloc(cap);
	assert_non_null(text);
	size_t used = 0;
	for (int i = 0; i < jobs_count; i++) {
		if (i % 3 == 0)
			used +=
			    (size_t)snprintf(text + used, cap - used,
			                     "{\"queue\": \"%s\", \"type\": \"%s\", \"payload\": "
			                     "{\"n\": %d}}\n",
			                     queue, type, i);
		else
			used +=
			    (size_t)snprintf(text + used, cap - used,
			                     "{\"queue\": \"%s\", \"type\": \"%s\", \"payload\": "
			                     "\"p%d\", \"priority\": 1}\n\n",
			                     queue, type, i);
	}
	const char *path = harness_write_file(&f->h, name, text, 0644);
	free(text);
	assert_non_null(path);
	return path;
}

static void test_batch_submit_of_jsonl_prints_the_batch_id_and_status_counts(void **state)
{
	struct stack *f = fixture_start(state, "cli-batch");
	fixture_worker_start(&f->h, "w-batch", "bq", "4", "echo=cat");
	const char *path = write_jobs(f, "jobs.jsonl", "bq", "echo", 12);
	uint64_t batch_id = submit_batch_file(f, path);
	char idbuf[24];
	id_text(idbuf, sizeof idbuf, batch_id);

	struct run r = cli(f, "watch", idbuf, "--timeout", "60");
	expect_code(f, &r, 0, "watch the batch");
	run_fini(&r);

	r = cli(f, "batch", "status", idbuf, "--json");
	expect_code(f, &r, 0, "batch status --json");
	json_t *batch = parse_json(r.out);
	assert_int_equal(json_integer_value(json_object_get(batch, "id")), (json_int_t)batch_id);
	assert_string_equal(json_string_value(json_object_get(batch, "state")), "completed");
	assert_int_equal(json_integer_value(json_object_get(batch, "total")), 12);
	assert_int_equal(json_integer_value(json_object_get(batch, "completed")), 12);
	assert_int_equal(json_integer_value(json_object_get(batch, "failed")), 0);
	assert_int_equal(json_integer_value(json_object_get(batch, "cancelled")), 0);
	assert_int_equal(json_integer_value(json_object_get(batch, "active")), 0);
	assert_int_equal(json_integer_value(json_object_get(batch, "percent")), 100);
	assert_int_equal(json_array_size(json_object_get(batch, "errors")), 0);
	assert_true(json_is_string(json_object_get(batch, "started")));
	assert_true(json_is_string(json_object_get(batch, "finished_at")));
	json_decref(batch);
	run_fini(&r);

	/* status ID falls back to the batch. */
	r = cli(f, "status", idbuf);
	expect_code(f, &r, 0, "status of a batch id");
	assert_true(matches("(^|\n)state +completed\n", r.out));
	assert_true(matches("(^|\n)completed +12\n", r.out));
	run_fini(&r);

	r = cli(f, "batch", "submit", path, "--json");
	expect_code(f, &r, 0, "batch submit --json");
	json_t *submitted = parse_json(r.out);
	assert_true(json_integer_value(json_object_get(submitted, "batch_id")) >
	            (json_int_t)batch_id);
	assert_int_equal(json_integer_value(json_object_get(submitted, "jobs")), 12);
	json_decref(submitted);
	run_fini(&r);
}

static void test_batch_submit_names_the_bad_line(void **state)
{
	struct stack *f = fixture_start(state, "cli-batch-bad");
	const char *path =
	    harness_write_file(&f->h, "bad.jsonl",
	                       "{\"queue\": \"q\", \"type\": \"t\", \"payload\": \"x\"}\n"
	                       "\n"
	                       "{\"queue\": \"q\", \"payload\": \"x\"}\n",
	                       0644);
	struct run r = cli(f, "batch", "submit", path);
	expect_code(f, &r, 1, "batch submit of a bad file");
	assert_string_equal(r.out, "");
	assert_non_null(strstr(r.err, "line 3"));
	assert_non_null(strstr(r.err, "\"type\" is missing"));
	run_fini(&r);

	path = harness_write_file(&f->h, "notjson.jsonl", "{\"queue\": \"q\",\n", 0644);
	r = cli(f, "batch", "submit", path);
	expect_code(f, &r, 1, "batch submit of a file that is not JSON lines");
	assert_non_null(strstr(r.err, "line 1: not JSON"));
	run_fini(&r);

	/* Nothing was enqueued. */
	r = cli(f, "status");
	expect_code(f, &r, 0, "status without an id");
	assert_string_equal(r.out, "no operations in progress\n");
	run_fini(&r);
}

static void test_watch_prints_one_plain_line_per_change_ending_in_the_final_state(void **state)
{
	struct stack *f = fixture_start(state, "cli-watch");
	const char *path = write_jobs(f, "watch.jsonl", "wq", "slow", 10);
	uint64_t batch_id = submit_batch_file(f, path);
	fixture_worker_start(&f->h, "w-watch", "wq", "2", "slow=sleep 0.1; cat");
	char idbuf[24];
	struct run r = cli(f, "watch", id_text(idbuf, sizeof idbuf, batch_id), "--timeout", "60");
	expect_code(f, &r, 0, "watch a batch");
	assert_null(strchr(r.out, '\r'));
	assert_null(strchr(r.out, '\033'));
	char final[128];
	snprintf(final, sizeof final, "batch %" PRIu64 ": 10/10 done, 0 failed, completed",
	         batch_id);
	int lines = 0;
	char *last = each_line_matches(r.out,
	                               "^batch [0-9]+: [0-9]+/10 done, [0-9]+ failed, "
	                               "(running(: .+)?|completed|failed)$",
	                               &lines);
	assert_true(lines >= 1);
	assert_string_equal(last, final);
	run_fini(&r);

	/* A job: its final line, and the exit code of its state. */
	fixture_worker_start(&f->h, "w-watch-bad", "wbad", "1", "boom=echo kaput >&2; exit 100");
	uint64_t id = submit_job(f, "wbad", "boom", "x");
	r = cli(f, "watch", id_text(idbuf, sizeof idbuf, id), "--timeout", "60");
	expect_code(f, &r, 10, "watch a failing job");
	last =
	    each_line_matches(r.out,
	                      "^job [0-9]+: (pending|delayed|active|completed|failed|cancelled), "
	                      "attempt [0-9]+/[0-9]+",
	                      NULL);
	assert_non_null(last);
	assert_true(matches("^job [0-9]+: failed, attempt 1/3: .*kaput", last));
	run_fini(&r);
}

static void test_status_without_id_lists_a_running_batch(void **state)
{
	struct stack *f = fixture_start(state, "cli-status-list");
	const char *path = write_jobs(f, "idle.jsonl", "noworker", "t", 5);
	uint64_t batch_id = submit_batch_file(f, path);

	struct run r = cli(f, "status");
	expect_code(f, &r, 0, "status without an id");
	char pattern[160];
	snprintf(pattern, sizeof pattern,
	         "^1 operation in progress\n  batch %" PRIu64 " +0%%  0/5 done, 0 failed  .+\n$",
	         batch_id);
	if (!matches(pattern, r.out))
		fail_msg("status listing:\n%s", r.out);
	run_fini(&r);

	r = cli(f, "status", "--json");
	expect_code(f, &r, 0, "status --json without an id");
	json_t *obj = parse_json(r.out);
	json_t *batches = json_object_get(obj, "batches");
	assert_int_equal(json_array_size(batches), 1);
	json_t *b = json_array_get(batches, 0);
	assert_int_equal(json_integer_value(json_object_get(b, "id")), (json_int_t)batch_id);
	assert_string_equal(json_string_value(json_object_get(b, "state")), "running");
	assert_int_equal(json_integer_value(json_object_get(b, "total")), 5);
	json_decref(obj);
	run_fini(&r);

	/* watch gives up at its timeout with the batch's state line. */
	char idbuf[24];
	r = cli(f, "watch", id_text(idbuf, sizeof idbuf, batch_id), "--timeout", "1");
	expect_code(f, &r, 12, "watch that times out");
	assert_true(matches("running\n$", r.out));
	run_fini(&r);
}

/* ---- workers and dead letters ------------------------------------------- */

static void test_workers_and_dead_letter_list_and_retry(void **state)
{
	struct stack *f = fixture_start(state, "cli-dead");
	fixture_worker_start(&f->h, "w-dead", "dq", "1", "bad=exit 100");
	uint64_t id = submit_job(f, "dq", "bad", "x");
	char idbuf[24];
	id_text(idbuf, sizeof idbuf, id);
	struct run r = cli(f, "wait", idbuf, "--timeout", "60");
	expect_code(f, &r, 10, "wait for the failing job");
	run_fini(&r);

	r = cli(f, "workers", "--json");
	expect_code(f, &r, 0, "workers --json");
	json_t *obj = parse_json(r.out);
	json_t *workers = json_object_get(obj, "workers");
	assert_int_equal(json_array_size(workers), 1);
	json_t *w = json_array_get(workers, 0);
	assert_string_equal(json_string_value(json_object_get(w, "id")), "w-dead");
	assert_string_equal(json_string_value(json_array_get(json_object_get(w, "queues"), 0)),
	                    "dq");
	assert_int_equal(json_integer_value(json_object_get(w, "concurrency")), 1);
	json_decref(obj);
	run_fini(&r);

	r = cli(f, "workers");
	expect_code(f, &r, 0, "workers");
	assert_true(matches("^WORKER +HOST +PID +QUEUES +CONCURRENCY +ACTIVE +LAST-SEEN +STATE\n"
	                    "w-dead +[^ ]+ +[0-9]+ +dq +1 +[0-9]+ +[0-9]+[smhd] ago +[a-z]+\n$",
	                    r.out));
	run_fini(&r);

	r = cli(f, "dead-letter", "list", "dq", "--json");
	expect_code(f, &r, 0, "dead-letter list --json");
	obj = parse_json(r.out);
	json_t *jobs = json_object_get(obj, "jobs");
	assert_int_equal(json_array_size(jobs), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(jobs, 0), "id")),
	                 (json_int_t)id);
	json_decref(obj);
	run_fini(&r);

	r = cli(f, "dead-letter", "retry", "dq", idbuf);
	expect_code(f, &r, 0, "dead-letter retry");
	char expected[64];
	snprintf(expected, sizeof expected, "revived 1 job: %" PRIu64 "\n", id);
	assert_string_equal(r.out, expected);
	run_fini(&r);
}

/* After a broker restart, a worker known only from the leases the journal
 * replayed is listed as unseen, with "-" (null in JSON) for what the
 * broker does not know, not an empty host and pid 0. */
static void test_workers_after_a_restart_show_only_what_is_known(void **state)
{
	/* A long dead-after window: the unseen worker must not be lost (and
	 * its job requeued) before the test looks. */
	static const char *const more[] = {"--dead-after-ms", "600000", NULL};
	struct stack *f =
	    stack_open(state, "cli-workers-restart", fixture_fast_retries, more, STACK_CLIENT);
	const char *wargs[] = {"--queue",     "slow",   "--handler", "t=sleep 60",
	                       "--worker-id", "w-gone", NULL};
	struct harness_proc worker;
	assert_jm_ok(harness_worker_start(&f->h, "w-gone", wargs, &worker));
	uint64_t id = submit_job(f, "slow", "t", "x");
	fixture_await_state(&f->h, f->client, id, JM_STATE_ACTIVE, 30000);

	/* The broker stops while the worker holds the job; the worker dies
	 * while it is down and never comes back. */
	int status = -1;
	assert_jm_ok(harness_stop(&f->broker, SIGTERM, 10000, &status));
	assert_int_equal(status, 0);
	assert_jm_ok(harness_kill(&worker));
	const char *args[8];
	fixture_args_join(args, 8, fixture_fast_retries, more);
	assert_jm_ok(harness_broker_start(&f->h, args, &f->broker));

	struct run r = cli(f, "workers");
	expect_code(f, &r, 0, "workers after a restart");
	if (!matches("^WORKER +HOST +PID +QUEUES +CONCURRENCY +ACTIVE +LAST-SEEN +STATE\n"
	             "w-gone +- +- +- +- +1 +- +unseen\n$",
	             r.out))
		fail_msg("workers after a restart:\n%s", r.out);
	run_fini(&r);

	r = cli(f, "workers", "--json");
	expect_code(f, &r, 0, "workers --json after a restart");
	json_t *obj = parse_json(r.out);
	json_t *workers = json_object_get(obj, "workers");
	assert_int_equal(json_array_size(workers), 1);
	json_t *w = json_array_get(workers, 0);
	assert_string_equal(json_string_value(json_object_get(w, "id")), "w-gone");
	assert_string_equal(json_string_value(json_object_get(w, "state")), "unseen");
	assert_true(json_is_null(json_object_get(w, "host")));
	assert_true(json_is_null(json_object_get(w, "pid")));
	assert_true(json_is_null(json_object_get(w, "last_seen")));
	assert_int_equal(json_integer_value(json_object_get(w, "active")), 1);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(w, "job_ids"), 0)),
	                 (json_int_t)id);
	json_decref(obj);
	run_fini(&r);
}

static void test_help_lists_every_command_and_the_exit_codes(void **state)
{
	struct stack *f = fixture_start(state, "cli-help");
	struct run r = cli(f, "--help");
	expect_code(f, &r, 0, "--help");
	static const char *const commands[] = {"submit",  "batch",      "status", "result",
	                                       "wait",    "watch",      "cancel", "stats",
	                                       "workers", "dead-letter"};
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		char pattern[64];
		snprintf(pattern, sizeof pattern, "\n  %s ", commands[i]);
		if (strstr(r.out, pattern) == NULL)
			fail_msg("--help does not list %s:\n%s", commands[i], r.out);
	}
	assert_non_null(strstr(r.out, "  12  "));
	run_fini(&r);
	static const char *const helps[][3] = {
	    {"batch", "submit", "--help"},     {"batch", "status", "--help"},
	    {"watch", "--help", NULL},         {"workers", "--help", NULL},
	    {"cancel", "--help", NULL},        {"dead-letter", "list", "--help"},
	    {"dead-letter", "retry", "--help"}};
	for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
		r = cli(f, helps[i][0], helps[i][1], helps[i][2]);
		expect_code(f, &r, 0, helps[i][0]);
		assert_non_null(strstr(r.out, "usage: jobmesh"));
		assert_non_null(strstr(r.out, "Exit codes:"));
		run_fini(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(
	        test_submit_prints_an_id_and_status_and_result_describe_the_job, stack_close),
	    cmocka_unit_test_teardown(test_wait_exits_10_for_a_failed_job_and_12_on_timeout,
	                              stack_close),
	    cmocka_unit_test_teardown(test_bad_queue_name_exits_1_with_the_rule, stack_close),
	    cmocka_unit_test_teardown(test_unknown_id_exits_4_with_one_wording, stack_close),
	    cmocka_unit_test_teardown(test_batch_status_of_a_job_id_says_it_is_a_job, stack_close),
	    cmocka_unit_test_teardown(test_global_flags_work_after_the_command, stack_close),
	    cmocka_unit_test_teardown(test_unreachable_broker_exits_3, stack_close),
	    cmocka_unit_test_teardown(test_cancel_prints_the_cancelled_state, stack_close),
	    cmocka_unit_test_teardown(
	        test_batch_submit_of_jsonl_prints_the_batch_id_and_status_counts, stack_close),
	    cmocka_unit_test_teardown(test_batch_submit_names_the_bad_line, stack_close),
	    cmocka_unit_test_teardown(
	        test_submit_stdin_lines_submits_one_job_per_line_and_prints_ids_in_input_order,
	        stack_close),
	    cmocka_unit_test_teardown(
	        test_submit_stdin_lines_names_a_refused_line_exits_1_and_submits_the_rest,
	        stack_close),
	    cmocka_unit_test_teardown(
	        test_watch_prints_one_plain_line_per_change_ending_in_the_final_state, stack_close),
	    cmocka_unit_test_teardown(test_status_without_id_lists_a_running_batch, stack_close),
	    cmocka_unit_test_teardown(test_workers_and_dead_letter_list_and_retry, stack_close),
	    cmocka_unit_test_teardown(test_workers_after_a_restart_show_only_what_is_known,
	                              stack_close),
	    cmocka_unit_test_teardown(test_help_lists_every_command_and_the_exit_codes,
	                              stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
