/* The jobmesh tool's pure parts: job id parsing, bounded reads, times,
 * base64, and the JSON and text it prints for jobs and stats.
 *
 * The CLI is an executable, not a library, so its two pure files are
 * compiled into this test directly (after cmocka.h, so their allocations go
 * through cmocka's leak-checking allocator). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* cmocka.h needs these first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../client/cli_input.c"
#include "../../client/cli_output.c"

static void test_job_id_accepts_decimal_uint64(void **state)
{
	uint64_t id = 99;
	assert_true(cli_parse_job_id("0", &id));
	assert_int_equal(id, 0);
	assert_true(cli_parse_job_id("42", &id));
	assert_int_equal(id, 42);
	assert_true(cli_parse_job_id("18446744073709551615", &id));
	assert_true(id == UINT64_MAX);
}

static void test_job_id_rejects_anything_but_decimal(void **state)
{
	static const char *const bad[] = {
	    "",
	    "abc",
	    "-1",
	    "+1",
	    " 1",
	    "1 ",
	    "0x10",
	    "1e3",
	    "4.2",
	    "18446744073709551616",
	    "000000000000000000001",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t id = 7;
		assert_false(cli_parse_job_id(bad[i], &id));
		assert_int_equal(id, 7);
	}
}

static void test_time_is_iso8601_utc_with_millis(void **state)
{
	char text[CLI_TIME_TEXT_MAX];
	cli_format_time(text, sizeof text, 1714566896789123ull);
	assert_string_equal(text, "2024-05-01T12:34:56.789Z");
	cli_format_time(text, sizeof text, 0);
	assert_string_equal(text, "-");
}

static void test_base64_matches_rfc4648_vectors(void **state)
{
	static const char *const vectors[][2] = {
	    {"", ""},
	    {"f", "Zg=="},
	    {"fo", "Zm8="},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="},
	    {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	};
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		char *encoded = cli_base64(vectors[i][0], strlen(vectors[i][0]));
		assert_non_null(encoded);
		assert_string_equal(encoded, vectors[i][1]);
		free(encoded);
	}
}

static jm_job_info sample_job(void)
{
	jm_job_info job;
	memset(&job, 0, sizeof job);
	job.id = 42;
	strcpy(job.queue, "emails");
	strcpy(job.type, "email.send");
	job.state = JM_STATE_COMPLETED;
	job.priority = -5;
	job.attempt = 1;
	job.max_attempts = 3;
	job.created_us = 1714566896789123ull;
	job.updated_us = 1714566897000000ull;
	job.last_error = "";
	return job;
}

static void test_json_job_puts_utf8_result_in_result(void **state)
{
	jm_job_info job = sample_job();
	static const char result[] = "h\xc3\xa9llo \"quoted\"\nline";
	job.has_result = true;
	job.result = (void *)result;
	job.result_len = sizeof result - 1;
	json_t *obj = cli_json_job(&job, true);
	assert_non_null(obj);
	assert_string_equal(json_string_value(json_object_get(obj, "result")), result);
	assert_null(json_object_get(obj, "result_base64"));
	assert_int_equal(json_integer_value(json_object_get(obj, "id")), 42);
	assert_string_equal(json_string_value(json_object_get(obj, "state")), "completed");
	assert_string_equal(json_string_value(json_object_get(obj, "created")),
	                    "2024-05-01T12:34:56.789Z");
	assert_true(json_is_null(json_object_get(obj, "run_at")));
	assert_true(json_is_null(json_object_get(obj, "last_error")));
	assert_int_equal(json_integer_value(json_object_get(obj, "priority")), -5);

	/* What is printed parses back to the same bytes. */
	char *text = json_dumps(obj, 0);
	assert_non_null(text);
	json_t *back = json_loads(text, 0, NULL);
	assert_non_null(back);
	assert_string_equal(json_string_value(json_object_get(back, "result")), result);
	json_decref(back);
	json_decref(obj);
	free(text);
}

static void test_json_job_puts_binary_result_in_result_base64(void **state)
{
	jm_job_info job = sample_job();
	static const unsigned char result[] = {0xff, 0x00, 0xfe, 'a'};
	job.has_result = true;
	job.result = (void *)result;
	job.result_len = sizeof result;
	json_t *obj = cli_json_job(&job, true);
	assert_non_null(obj);
	assert_null(json_object_get(obj, "result"));
	assert_string_equal(json_string_value(json_object_get(obj, "result_base64")), "/wD+YQ==");
	json_decref(obj);
}

static void test_json_job_keeps_embedded_nul_as_text(void **state)
{
	jm_job_info job = sample_job();
	static const char result[] = {'a', '\0', 'b'};
	job.has_result = true;
	job.result = (void *)result;
	job.result_len = sizeof result;
	json_t *obj = cli_json_job(&job, true);
	assert_non_null(obj);
	json_t *value = json_object_get(obj, "result");
	assert_non_null(value);
	assert_int_equal(json_string_length(value), 3);
	assert_memory_equal(json_string_value(value), result, 3);
	json_decref(obj);
}

static void test_json_job_leaves_out_result_when_not_asked(void **state)
{
	jm_job_info job = sample_job();
	job.has_result = true;
	job.result = "x";
	job.result_len = 1;
	json_t *obj = cli_json_job(&job, false);
	assert_non_null(obj);
	assert_null(json_object_get(obj, "result"));
	assert_null(json_object_get(obj, "result_base64"));
	json_decref(obj);
}

static void test_json_job_sends_invalid_utf8_error_as_base64(void **state)
{
	jm_job_info job = sample_job();
	job.state = JM_STATE_FAILED;
	job.last_error = "bad \xc3";
	json_t *obj = cli_json_job(&job, true);
	assert_non_null(obj);
	assert_null(json_object_get(obj, "last_error"));
	assert_string_equal(json_string_value(json_object_get(obj, "last_error_base64")),
	                    "YmFkIMM=");
	json_decref(obj);
}

static void test_json_u64_keeps_ids_past_int64_exact(void **state)
{
	json_t *small = cli_json_u64(7);
	assert_int_equal(json_integer_value(small), 7);
	json_decref(small);
	json_t *big = cli_json_u64(UINT64_MAX);
	assert_string_equal(json_string_value(big), "18446744073709551615");
	json_decref(big);
}

static void test_json_stats_lists_every_queue(void **state)
{
	jm_queue_stats queues[2];
	memset(queues, 0, sizeof queues);
	strcpy(queues[0].name, "a");
	queues[0].pending = 3;
	strcpy(queues[1].name, "b");
	queues[1].failed = 9;
	queues[1].cancelled = 7;
	json_t *obj = cli_json_stats(queues, 2);
	assert_non_null(obj);
	json_t *list = json_object_get(obj, "queues");
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")),
	                    "a");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "pending")),
	                 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 1), "failed")), 9);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 1), "cancelled")),
	                 7);
	json_decref(obj);

	json_t *empty = cli_json_stats(NULL, 0);
	assert_int_equal(json_array_size(json_object_get(empty, "queues")), 0);
	json_decref(empty);
}

/* Runs print into text (NUL-terminated, at most text_size - 1 bytes). */
static void capture(char *text, size_t text_size, void (*print)(FILE *, const void *),
                    const void *arg)
{
	memset(text, 0, text_size);
	FILE *out = fmemopen(text, text_size - 1, "w");
	assert_non_null(out);
	print(out, arg);
	assert_int_equal(fclose(out), 0);
}

static void print_stats_two(FILE *out, const void *arg)
{
	cli_print_stats(out, arg, 2);
}

static void test_stats_table_aligns_columns(void **state)
{
	jm_queue_stats queues[2];
	memset(queues, 0, sizeof queues);
	strcpy(queues[0].name, "emails");
	queues[0].pending = 12345678901ull;
	strcpy(queues[1].name, "x");
	queues[1].completed = 5;
	queues[1].cancelled = 2;
	queues[1].max_active = 4;
	queues[1].paused = true;
	queues[1].rate_jobs = 10;
	queues[1].rate_period_ms = 1000;
	char text[512];
	capture(text, sizeof text, print_stats_two, queues);
	assert_string_equal(
	    text,
	    "QUEUE       PENDING  DELAYED  ACTIVE  COMPLETED  FAILED  CANCELLED  LIMIT  FLOW\n"
	    "emails  12345678901        0       0          0       0          0      0  -\n"
	    "x                 0        0       0          5       0          2      4  "
	    "paused,10/1000ms\n");
}

static void print_job_line(FILE *out, const void *arg)
{
	cli_print_job_state_line(out, arg);
}

static void test_state_line_keeps_failure_on_one_line(void **state)
{
	jm_job_info job = sample_job();
	job.state = JM_STATE_FAILED;
	job.attempt = 3;
	job.last_error = "boom\nsecond line\x01";
	char text[512];
	capture(text, sizeof text, print_job_line, &job);
	assert_string_equal(text, "job 42 failed (attempt 3/3): boom\\nsecond line\\x01\n");
}

/* Reads text through cli_read_bounded with the given limit. */
static int read_text(const char *text, size_t max_bytes, char **out, size_t *len,
                     struct jm_err *err)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(in);
	int rc = cli_read_bounded(in, "payload from stdin", max_bytes, out, len, err);
	fclose(in);
	return rc;
}

static void test_read_bounded_accepts_input_at_the_limit(void **state)
{
	struct jm_err err;
	jm_err_clear(&err);
	char *data = NULL;
	size_t len = 0;
	assert_int_equal(read_text("hello", 5, &data, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_string_equal(data, "hello");
	free(data);
	assert_int_equal(read_text("", 5, &data, &len, &err), 0);
	assert_int_equal(len, 0);
	free(data);
}

static void test_read_bounded_refuses_one_byte_over(void **state)
{
	struct jm_err err;
	jm_err_clear(&err);
	char *data = NULL;
	size_t len = 0;
	assert_int_equal(read_text("hello!", 5, &data, &len, &err), JM_ETOOBIG);
	assert_null(data);
	assert_string_equal(err.msg, "payload from stdin is over the limit of 5 bytes per job");
}

static void test_read_bounded_grows_past_its_first_buffer(void **state)
{
	size_t size = 100000;
	char *big = malloc(size + 1);
	assert_non_null(big);
	memset(big, 'x', size);
	big[size] = '\0';
	struct jm_err err;
	jm_err_clear(&err);
	char *data = NULL;
	size_t len = 0;
	assert_int_equal(read_text(big, size, &data, &len, &err), 0);
	assert_int_equal(len, size);
	free(data);
	assert_int_equal(read_text(big, size - 1, &data, &len, &err), JM_ETOOBIG);
	free(big);
}

/* jansson allocates through cmocka too, so a leaked json_t fails the test
 * and text from json_dumps() is freed with free(). */
static void *jansson_malloc(size_t size)
{
	return test_malloc(size);
}

static void jansson_free(void *ptr)
{
	test_free(ptr);
}

int main(void)
{
	json_set_alloc_funcs(jansson_malloc, jansson_free);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_job_id_accepts_decimal_uint64),
	    cmocka_unit_test(test_job_id_rejects_anything_but_decimal),
	    cmocka_unit_test(test_time_is_iso8601_utc_with_millis),
	    cmocka_unit_test(test_base64_matches_rfc4648_vectors),
	    cmocka_unit_test(test_json_job_puts_utf8_result_in_result),
	    cmocka_unit_test(test_json_job_puts_binary_result_in_result_base64),
	    cmocka_unit_test(test_json_job_keeps_embedded_nul_as_text),
	    cmocka_unit_test(test_json_job_leaves_out_result_when_not_asked),
	    cmocka_unit_test(test_json_job_sends_invalid_utf8_error_as_base64),
	    cmocka_unit_test(test_json_u64_keeps_ids_past_int64_exact),
	    cmocka_unit_test(test_json_stats_lists_every_queue),
	    cmocka_unit_test(test_stats_table_aligns_columns),
	    cmocka_unit_test(test_state_line_keeps_failure_on_one_line),
	    cmocka_unit_test(test_read_bounded_accepts_input_at_the_limit),
	    cmocka_unit_test(test_read_bounded_refuses_one_byte_over),
	    cmocka_unit_test(test_read_bounded_grows_past_its_first_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
