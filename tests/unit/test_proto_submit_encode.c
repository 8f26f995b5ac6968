/* A SUBMIT's one-pass encoder (proto/submit_encode.c) against the generic
 * path it replaced (fields_check, then the field walker): for every
 * rule's boundary values both refuse the same messages, and what they
 * accept they write byte for byte the same, after whatever the buffer
 * already held; the direct decoder then reads it back. */
#include "jm_test.h"

#include <stdbool.h>

#include "buf.h"
#include "message.h"
#include "proto_limits.h"
#include "submit_decode.h"

static uint8_t big[(1u << 20) + 2];

static struct proto_job_spec base_spec(void)
{
	struct proto_job_spec j;
	memset(&j, 0, sizeof j);
	strcpy(j.attrs.queue, "bench");
	strcpy(j.attrs.type, "noop");
	j.payload = (struct proto_bytes){.ptr = big, .len = 100};
	j.attrs.priority = 3;
	j.attrs.max_attempts = 5;
	j.attrs.timeout_ms = 30000;
	return j;
}

/* Both encoders on jobs[0..n): same verdict, and the same bytes after a
 * prefix already in the buffer. Returns the verdict. */
static bool same_both_ways(struct proto_job_spec *jobs, uint32_t n, bool as_batch)
{
	struct proto_msg msg = {.type = PROTO_SUBMIT};
	msg.u.submit = (struct proto_submit){.as_batch = as_batch, .jobs_count = n, .jobs = jobs};
	struct jm_buf direct, walked;
	jm_buf_init(&direct);
	jm_buf_init(&walked);
	assert_jm_ok(jm_buf_append(&direct, "pre", 3));
	assert_jm_ok(jm_buf_append(&walked, "pre", 3));
	int rc_direct = proto_encode(&msg, &direct);
	int rc_walked = proto_encode_generic(&msg, &walked);
	if (rc_direct != rc_walked)
		fail_msg("one pass returned %d, the walker %d", rc_direct, rc_walked);
	assert_int_equal(direct.len, walked.len);
	assert_memory_equal(direct.data, walked.data, direct.len);
	if (rc_direct == 0) {
		struct proto_msg back;
		assert_true(submit_decode_direct(direct.data + 3, direct.len - 3, &back));
		assert_int_equal(back.u.submit.jobs_count, n);
		proto_msg_fini(&back);
	} else {
		assert_int_equal(rc_direct, JM_EINVAL);
		assert_int_equal(direct.len, 3);
	}
	jm_buf_fini(&direct);
	jm_buf_fini(&walked);
	return rc_direct == 0;
}

static void test_both_encoders_write_the_same_bytes_for_every_integer_form(void **state)
{
	(void)state;
	static const uint64_t u64s[] = {
	    0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX, 1ull << 32, INT64_MAX, UINT64_MAX};
	static const int64_t prios[] = {INT32_MIN, -1001, -1000, -129, -128, -33,  -32,
	                                -1,        0,     127,   128,  1000, 1001, INT32_MAX};
	for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++) {
		struct proto_job_spec j = base_spec();
		j.delay_ms = u64s[i];
		j.attrs.timeout_ms = u64s[i];
		assert_true(same_both_ways(&j, 1, i % 2));
		j = base_spec();
		j.run_at_us = u64s[i];
		assert_true(same_both_ways(&j, 1, false));
		j.delay_ms = 1;
		assert_int_equal(same_both_ways(&j, 1, false), u64s[i] == 0);
		j = base_spec();
		j.attrs.max_attempts = (uint32_t)u64s[i];
		assert_int_equal(same_both_ways(&j, 1, false),
		                 (uint32_t)u64s[i] <= PROTO_ATTEMPTS_MAX);
	}
	for (size_t i = 0; i < sizeof prios / sizeof prios[0]; i++) {
		struct proto_job_spec j = base_spec();
		j.attrs.priority = (int32_t)prios[i];
		assert_int_equal(same_both_ways(&j, 1, false),
		                 prios[i] >= PROTO_PRIORITY_MIN && prios[i] <= PROTO_PRIORITY_MAX);
	}
}

static void test_both_encoders_refuse_the_same_names_sizes_and_keys(void **state)
{
	(void)state;
	memset(big, '~', sizeof big);
	static const char *const names[] = {
	    "",  "a",       "a b",
	    "é", "x.y_z-0", "0123456789012345678901234567890123456789012345678901234567890123"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		bool valid = proto_name_is_valid(names[i], strlen(names[i]));
		struct proto_job_spec j = base_spec();
		strcpy(j.attrs.queue, names[i]);
		assert_int_equal(same_both_ways(&j, 1, false), valid);
		j = base_spec();
		strcpy(j.attrs.type, names[i]);
		assert_int_equal(same_both_ways(&j, 1, false), valid);
		j = base_spec();
		strcpy(j.attrs.group, names[i]);
		assert_int_equal(same_both_ways(&j, 1, false), valid || names[i][0] == '\0');
	}
	struct proto_job_spec j = base_spec();
	memset(j.attrs.type, 'a', sizeof j.attrs.type); /* no NUL */
	assert_false(same_both_ways(&j, 1, false));
	static const uint32_t sizes[] = {0,   1,    31,    32,    255,      256,           128,
	                                 129, 1024, 65535, 65536, 1u << 20, (1u << 20) + 1};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		uint32_t n = sizes[i];
		j = base_spec();
		j.payload = (struct proto_bytes){.ptr = n ? big : NULL, .len = n};
		assert_int_equal(same_both_ways(&j, 1, false), n <= PROTO_PAYLOAD_MAX_DEFAULT);
		j = base_spec();
		j.key = (struct proto_bytes){.ptr = n ? big : NULL, .len = n};
		assert_int_equal(same_both_ways(&j, 1, false), n <= PROTO_KEY_MAX);
	}
	j = base_spec();
	j.payload.ptr = NULL;
	assert_false(same_both_ways(&j, 1, false));
	static const uint8_t bytes[] = {0x00, 0x1f, 0x20, 0x7e, 0x7f, 0xff};
	for (size_t i = 0; i < sizeof bytes; i++) {
		uint8_t key[2] = {'k', bytes[i]};
		j = base_spec();
		j.key = (struct proto_bytes){.ptr = key, .len = 2};
		assert_int_equal(same_both_ways(&j, 1, false),
		                 bytes[i] >= 0x20 && bytes[i] <= 0x7e);
	}
}

static void test_both_encoders_judge_the_count_of_jobs_alike(void **state)
{
	(void)state;
	static struct proto_job_spec jobs[PROTO_JOBS_PER_MESSAGE_MAX + 1];
	for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) {
		jobs[i] = base_spec();
		jobs[i].payload.len = (uint32_t)(i % 300);
		jobs[i].attrs.priority = (int32_t)(i % 2001) - 1000;
	}
	static const uint32_t counts[] = {0,
	                                  1,
	                                  15,
	                                  16,
	                                  17,
	                                  65535 % 10000,
	                                  PROTO_JOBS_PER_MESSAGE_MAX,
	                                  PROTO_JOBS_PER_MESSAGE_MAX + 1};
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
		assert_int_equal(same_both_ways(jobs, counts[i], true),
		                 counts[i] >= 1 && counts[i] <= PROTO_JOBS_PER_MESSAGE_MAX);
	/* One bad job among many refuses the whole message. */
	jobs[500].attrs.priority = 5000;
	assert_false(same_both_ways(jobs, 1000, false));
	struct proto_msg msg = {.type = PROTO_SUBMIT};
	msg.u.submit = (struct proto_submit){.jobs_count = 3, .jobs = NULL};
	struct jm_buf b;
	jm_buf_init(&b);
	assert_int_equal(proto_encode(&msg, &b), JM_EINVAL);
	jm_buf_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_both_encoders_write_the_same_bytes_for_every_integer_form),
	    cmocka_unit_test(test_both_encoders_refuse_the_same_names_sizes_and_keys),
	    cmocka_unit_test(test_both_encoders_judge_the_count_of_jobs_alike),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
