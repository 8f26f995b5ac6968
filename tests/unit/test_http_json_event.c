/* The event stream's job_state text written directly
 * (http_json_job_state_text) is byte for byte what dumping
 * http_json_event's object gives, so SSE clients see the same events;
 * events it does not cover fall back. */
#include "jm_test.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http_json.h"

/* jansson's texts come from the real malloc, not cmocka's. */
#undef free

static char *dumped(const struct proto_event *ev)
{
	const char *kind;
	json_t *data = http_json_event(ev, &kind);
	assert_non_null(data);
	char *text = http_json_dump(data, NULL);
	json_decref(data);
	assert_non_null(text);
	return text;
}

static void assert_same_text(const struct proto_event *ev)
{
	char fast[512];
	size_t len = http_json_job_state_text(ev, fast, sizeof fast);
	assert_true(len > 0);
	char *slow = dumped(ev);
	assert_string_equal(fast, slow);
	assert_int_equal(len, strlen(slow));
	free(slow);
}

static void test_a_job_state_event_reads_the_same_either_way(void **state)
{
	(void)state;
	struct proto_event ev = {.kind = PROTO_EVENT_JOB_STATE,
	                         .at_us = 1700000000123456ull,
	                         .job_id = 18446744073709551615ull,
	                         .queue = "emails.v2_x-y",
	                         .type = "email.send",
	                         .state = PROTO_STATE_ACTIVE,
	                         .attempt = 3,
	                         .worker_id = "worker-1"};
	assert_same_text(&ev);
	ev.batch_id = 41;
	assert_same_text(&ev);
	ev.worker_id[0] = '\0';
	ev.state = PROTO_STATE_COMPLETED;
	ev.attempt = 0;
	assert_same_text(&ev);
	memset(ev.queue, 'q', PROTO_NAME_MAX);
	memset(ev.type, 't', PROTO_NAME_MAX);
	assert_same_text(&ev);
	/* The extremes of each number (at_us and attempt go out signed). */
	ev.job_id = 0;
	ev.batch_id = UINT64_MAX;
	ev.at_us = UINT64_MAX;
	ev.attempt = UINT32_MAX;
	assert_same_text(&ev);
	ev.at_us = (uint64_t)INT64_MAX;
	ev.attempt = INT32_MAX;
	assert_same_text(&ev);
	ev.at_us = 0;
	ev.job_id = 9;
	ev.batch_id = 10;
	ev.state = PROTO_STATE_CANCELLED;
	assert_same_text(&ev);
}

static void test_events_with_a_text_or_of_other_kinds_are_left_to_jansson(void **state)
{
	(void)state;
	char out[512];
	struct proto_event ev = {.kind = PROTO_EVENT_JOB_STATE,
	                         .job_id = 1,
	                         .queue = "q",
	                         .type = "t",
	                         .state = PROTO_STATE_FAILED};
	ev.message = (struct proto_bytes){(const uint8_t *)"it \"broke\"", 10};
	assert_int_equal(http_json_job_state_text(&ev, out, sizeof out), 0);
	ev.message.len = 0;
	ev.kind = PROTO_EVENT_BATCH;
	assert_int_equal(http_json_job_state_text(&ev, out, sizeof out), 0);
	ev.kind = PROTO_EVENT_JOB_STATE;
	assert_int_equal(http_json_job_state_text(&ev, out, 16), 0); /* too small */
	size_t len = http_json_job_state_text(&ev, out, sizeof out);
	assert_true(len > 0);
	assert_int_equal(http_json_job_state_text(&ev, out, len), 0); /* no room for the NUL */
	assert_int_equal(http_json_job_state_text(&ev, out, len + 1), len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_job_state_event_reads_the_same_either_way),
	    cmocka_unit_test(test_events_with_a_text_or_of_other_kinds_are_left_to_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
