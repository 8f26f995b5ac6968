/* The jobmesh tool's batch files and the lines watch and status print:
 * pure functions, compiled in directly (after cmocka.h, so allocations go
 * through its leak-checking allocator). */
#include "jm_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../client/cli_batchfile.c"
#include "../../client/cli_input.c"
#include "../../client/cli_output.c"

static int parse(const char *line, struct cli_batch_job *job, struct jm_err *err)
{
	jm_err_clear(err);
	return cli_batch_parse_line(line, strlen(line), job, err);
}

static void test_batch_line_with_a_string_payload_uses_it_as_is(void **state)
{
	struct cli_batch_job job;
	struct jm_err err;
	assert_int_equal(parse("{\"queue\": \"emails\", \"type\": \"send\", \"payload\": "
	                       "\"h\\u00e9 \\\"x\\\"\", \"priority\": -3, \"max_attempts\": 5, "
	                       "\"delay_ms\": 10, \"timeout_ms\": 2000}",
	                       &job, &err),
	                 0);
	assert_string_equal(job.spec.queue, "emails");
	assert_string_equal(job.spec.type, "send");
	assert_int_equal(job.spec.payload_len, strlen("h\xc3\xa9 \"x\""));
	assert_memory_equal(job.spec.payload, "h\xc3\xa9 \"x\"", job.spec.payload_len);
	assert_int_equal(job.spec.priority, -3);
	assert_int_equal(job.spec.max_attempts, 5);
	assert_int_equal(job.spec.delay_ms, 10);
	assert_int_equal(job.spec.timeout_ms, 2000);
	free(job.payload);
}

static void test_batch_line_with_an_object_payload_sends_it_compactly(void **state)
{
	struct cli_batch_job job;
	struct jm_err err;
	assert_int_equal(parse("{\"queue\": \"q\", \"type\": \"t\", \"payload\": {\"b\": [1, 2], "
	                       "\"a\": null}}",
	                       &job, &err),
	                 0);
	assert_int_equal(job.spec.payload_len, strlen("{\"b\":[1,2],\"a\":null}"));
	assert_memory_equal(job.spec.payload, "{\"b\":[1,2],\"a\":null}", job.spec.payload_len);
	free(job.payload);
	assert_int_equal(parse("{\"queue\": \"q\", \"type\": \"t\", \"payload\": 42}", &job, &err),
	                 0);
	assert_memory_equal(job.spec.payload, "42", 2);
	free(job.payload);
	assert_int_equal(parse("{\"queue\": \"q\", \"type\": \"t\"}", &job, &err), 0);
	assert_int_equal(job.spec.payload_len, 0);
	assert_null(job.payload);
}

static void test_batch_line_errors_say_what_is_wrong(void **state)
{
	static const struct {
		const char *line;
		const char *says;
	} bad[] = {
	    {"{\"queue\": \"q\"", "not JSON"},
	    {"[1, 2]", "a job is a JSON object"},
	    {"{\"type\": \"t\"}", "\"queue\" is missing"},
	    {"{\"queue\": \"q\"}", "\"type\" is missing"},
	    {"{\"queue\": 7, \"type\": \"t\"}", "\"queue\" must be a string"},
	    {"{\"queue\": \"a b\", \"type\": \"t\"}", "use 1-64 of A-Z a-z 0-9 . _ -"},
	    {"{\"queue\": \"q\", \"type\": \"t\", \"priority\": 5000}", "-1000..1000"},
	    {"{\"queue\": \"q\", \"type\": \"t\", \"priority\": \"high\"}", "\"priority\""},
	    {"{\"queue\": \"q\", \"type\": \"t\", \"max_attempts\": -1}", "\"max_attempts\""},
	    {"{\"queue\": \"q\", \"type\": \"t\", \"colour\": 1}", "unknown key \"colour\""},
	    {"{\"queue\": \"q\", \"queue\": \"r\", \"type\": \"t\"}", "not JSON"},
	    {"{\"queue\": \"q\", \"type\": \"t\", \"key\": 42}", "\"key\" must be a string"},
	    {"{\"queue\": \"q\", \"type\": \"t\", \"key\": \"\"}", "\"key\" is empty: use 1-128"},
	    {"{\"queue\": \"q\", \"type\": \"t\", \"key\": \"a\\tb\"}", "byte 0x09 at 1"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct cli_batch_job job;
		struct jm_err err;
		if (parse(bad[i].line, &job, &err) == 0)
			fail_msg("accepted %s", bad[i].line);
		if (strstr(jm_err_text(&err), bad[i].says) == NULL)
			fail_msg("%s: \"%s\" does not say \"%s\"", bad[i].line, jm_err_text(&err),
			         bad[i].says);
	}
}

static void test_batch_read_skips_blank_lines_and_numbers_errors_by_line(void **state)
{
	const char text[] = "{\"queue\": \"q\", \"type\": \"a\"}\n"
	                    "\n"
	                    "  \t\r\n"
	                    "{\"queue\": \"q\", \"type\": \"b\", \"payload\": \"x\"}\n";
	FILE *in = fmemopen((void *)text, sizeof text - 1, "r");
	assert_non_null(in);
	struct cli_batch_file file;
	struct jm_err err;
	jm_err_clear(&err);
	assert_jm_ok_err(cli_batch_read(in, "f", 100, &file, &err), &err);
	fclose(in);
	assert_int_equal(file.jobs_count, 2);
	assert_string_equal(file.specs[0].type, "a");
	assert_string_equal(file.specs[1].type, "b");
	assert_memory_equal(file.specs[1].payload, "x", 1);
	assert_null(file.specs[0].idempotency_key);
	cli_batch_file_fini(&file);

	/* A key is the job's idempotency key, kept apart per line. */
	const char keyed[] = "{\"queue\": \"q\", \"type\": \"a\", \"key\": \"order-1\"}\n"
	                     "{\"queue\": \"q\", \"type\": \"a\"}\n"
	                     "{\"queue\": \"q\", \"type\": \"a\", \"key\": \"order-2\"}\n";
	in = fmemopen((void *)keyed, sizeof keyed - 1, "r");
	assert_non_null(in);
	assert_jm_ok_err(cli_batch_read(in, "f", 100, &file, &err), &err);
	fclose(in);
	assert_int_equal(file.jobs_count, 3);
	assert_string_equal(file.specs[0].idempotency_key, "order-1");
	assert_null(file.specs[1].idempotency_key);
	assert_string_equal(file.specs[2].idempotency_key, "order-2");
	cli_batch_file_fini(&file);

	const char broken[] = "{\"queue\": \"q\", \"type\": \"a\"}\n\n{\"queue\": \"q\"}\n";
	in = fmemopen((void *)broken, sizeof broken - 1, "r");
	assert_non_null(in);
	assert_int_equal(cli_batch_read(in, "jobs.jsonl", 100, &file, &err), JM_EINVAL);
	fclose(in);
	assert_non_null(strstr(jm_err_text(&err), "jobs.jsonl: line 3: \"type\" is missing"));
	assert_int_equal(file.jobs_count, 0);
}

static void test_batch_read_refuses_more_jobs_than_a_batch_holds_and_none(void **state)
{
	const char text[] = "{\"queue\": \"q\", \"type\": \"a\"}\n{\"queue\": \"q\", \"type\": "
	                    "\"a\"}\n{\"queue\": \"q\", \"type\": \"a\"}\n";
	FILE *in = fmemopen((void *)text, sizeof text - 1, "r");
	struct cli_batch_file file;
	struct jm_err err;
	jm_err_clear(&err);
	assert_int_equal(cli_batch_read(in, "f", 2, &file, &err), JM_ELIMIT);
	fclose(in);
	assert_non_null(strstr(jm_err_text(&err), "line 3: more than 2 jobs"));

	const char empty[] = "\n\n";
	in = fmemopen((void *)empty, sizeof empty - 1, "r");
	assert_int_equal(cli_batch_read(in, "f", 2, &file, &err), JM_ELIMIT);
	fclose(in);
	assert_non_null(strstr(jm_err_text(&err), "no jobs"));
}

static jm_batch_info sample_batch(void)
{
	jm_batch_info b;
	memset(&b, 0, sizeof b);
	b.id = 57;
	b.state = JM_BATCH_RUNNING;
	b.total = 47;
	b.completed = 11;
	b.failed = 1;
	b.active = 3;
	b.current_operation = "writing about/team";
	return b;
}

static void test_batch_line_shows_counts_state_and_operation(void **state)
{
	jm_batch_info b = sample_batch();
	char line[256];
	cli_format_batch_line(line, sizeof line, &b);
	assert_string_equal(line, "batch 57: 12/47 done, 1 failed, running: writing about/team");
	b.state = JM_BATCH_FAILED;
	b.completed = 46;
	cli_format_batch_line(line, sizeof line, &b);
	assert_string_equal(line, "batch 57: 47/47 done, 1 failed, failed");
	assert_int_equal(cli_batch_percent(&b), 100);
	b = sample_batch();
	assert_int_equal(cli_batch_percent(&b), 25);
}

static void test_job_line_shows_progress_or_the_error(void **state)
{
	jm_job_info job;
	memset(&job, 0, sizeof job);
	job.id = 42;
	job.state = JM_STATE_ACTIVE;
	job.attempt = 1;
	job.max_attempts = 3;
	job.progress_done = 12;
	job.progress_total = 47;
	job.progress_message = "writing\nabout/team";
	char line[256];
	cli_format_job_line(line, sizeof line, &job);
	assert_string_equal(line, "job 42: active, attempt 1/3, 12/47: writing\\nabout/team");
	job.state = JM_STATE_FAILED;
	job.last_error = "exit code 100";
	cli_format_job_line(line, sizeof line, &job);
	assert_string_equal(line, "job 42: failed, attempt 1/3: exit code 100");
}

static void test_bar_fills_in_proportion(void **state)
{
	char bar[16];
	cli_format_bar(bar, sizeof bar, 5, 10, 10);
	assert_string_equal(bar, "[#####.....]");
	cli_format_bar(bar, sizeof bar, 0, 0, 10);
	assert_string_equal(bar, "[..........]");
	cli_format_bar(bar, sizeof bar, 20, 10, 10);
	assert_string_equal(bar, "[##########]");
}

static void test_json_batch_and_workers_carry_every_field(void **state)
{
	jm_batch_info b = sample_batch();
	jm_batch_error errors[1] = {{.job_id = 61, .text = "boom"}};
	b.errors = errors;
	b.errors_count = 1;
	json_t *obj = cli_json_batch(&b);
	assert_non_null(obj);
	assert_int_equal(json_integer_value(json_object_get(obj, "id")), 57);
	assert_string_equal(json_string_value(json_object_get(obj, "state")), "running");
	assert_int_equal(json_integer_value(json_object_get(obj, "percent")), 25);
	assert_int_equal(json_integer_value(json_object_get(obj, "finished")), 12);
	assert_string_equal(json_string_value(json_object_get(obj, "current_operation")),
	                    "writing about/team");
	json_t *e = json_array_get(json_object_get(obj, "errors"), 0);
	assert_int_equal(json_integer_value(json_object_get(e, "job_id")), 61);
	assert_string_equal(json_string_value(json_object_get(e, "error")), "boom");
	assert_true(json_is_null(json_object_get(obj, "finished_at")));
	json_decref(obj);

	char *queues[] = {"a", "b"};
	jm_worker_info w;
	memset(&w, 0, sizeof w);
	strcpy(w.id, "w1");
	w.host = "box";
	w.pid = 7;
	w.queues = queues;
	w.queues_count = 2;
	w.concurrency = 4;
	w.active_jobs = 1;
	w.last_seen_us = 1000000;
	obj = cli_json_workers(&w, 1, 3500000);
	assert_non_null(obj);
	json_t *row = json_array_get(json_object_get(obj, "workers"), 0);
	assert_string_equal(json_string_value(json_object_get(row, "id")), "w1");
	assert_int_equal(json_array_size(json_object_get(row, "queues")), 2);
	assert_int_equal(json_integer_value(json_object_get(row, "last_seen_ago_ms")), 2500);
	assert_string_equal(json_string_value(json_object_get(row, "state")), "busy");
	json_decref(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch_line_with_a_string_payload_uses_it_as_is),
	    cmocka_unit_test(test_batch_line_with_an_object_payload_sends_it_compactly),
	    cmocka_unit_test(test_batch_line_errors_say_what_is_wrong),
	    cmocka_unit_test(test_batch_read_skips_blank_lines_and_numbers_errors_by_line),
	    cmocka_unit_test(test_batch_read_refuses_more_jobs_than_a_batch_holds_and_none),
	    cmocka_unit_test(test_batch_line_shows_counts_state_and_operation),
	    cmocka_unit_test(test_job_line_shows_progress_or_the_error),
	    cmocka_unit_test(test_bar_fills_in_proportion),
	    cmocka_unit_test(test_json_batch_and_workers_carry_every_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
