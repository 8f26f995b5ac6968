/* The JOB record's one-pass encoder (proto/record_job.c) against the
 * generic field walker it replaced on the submit path: for every rule's
 * boundary values, both refuse the same records, and what they accept they
 * write byte for byte the same, and replay (proto_record_decode) reads it
 * back to the same bytes. This is what keeps "nothing replay would refuse
 * is journaled" true for every admitted job. */
#include "jm_test.h"

#include <stdbool.h>

#include "buf.h"
#include "proto_limits.h"
#include "record.h"

static uint8_t big[(1u << 20) + 2];

static struct proto_rec_job base_job(void)
{
	struct proto_rec_job j;
	memset(&j, 0, sizeof j);
	j.job_id = 42;
	j.attrs.batch_id = 7;
	strcpy(j.attrs.queue, "bench");
	strcpy(j.attrs.type, "noop");
	j.payload.ptr = big;
	j.payload.len = 100;
	j.attrs.priority = 3;
	j.attrs.max_attempts = 5;
	j.attrs.timeout_ms = 30000;
	j.state = PROTO_STATE_PENDING;
	j.attrs.created_us = 1700000000000000ull;
	j.updated_us = 1700000000000001ull;
	return j;
}

static const uint64_t u64s[] = {0,     1,     127,        128,        255,       256,
                                65535, 65536, UINT32_MAX, 1ull << 32, INT64_MAX, UINT64_MAX};
static const int64_t prios[] = {INT32_MIN, -1001, -1000, -129, -128, -33,  -32,
                                -1,        0,     127,   128,  1000, 1001, INT32_MAX};
static const uint32_t sizes[] = {0,    1,    31,    32,    255,      256,
                                 1024, 1025, 65535, 65536, 1u << 20, (1u << 20) + 1};
static const char *const names[] = {
    "",  "a",       "a b",
    "é", "x.y_z-0", "0123456789012345678901234567890123456789012345678901234567890123"};

/* Both encoders on j: the same verdict; the same bytes when accepted,
 * which replay decodes and encodes back to the same bytes. Returns the
 * verdict. */
static bool same_both_ways(const struct proto_rec_job *j)
{
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_JOB};
	rec.u.job = *j;
	struct jm_buf direct, walked;
	jm_buf_init(&direct);
	jm_buf_init(&walked);
	int rc_direct = proto_record_encode_job(j, &direct);
	int rc_walked = proto_record_encode_generic(&rec, &walked);
	if (rc_direct != rc_walked)
		fail_msg("one pass returned %d, the walker %d", rc_direct, rc_walked);
	if (rc_direct == 0) {
		assert_int_equal(direct.len, walked.len);
		assert_memory_equal(direct.data, walked.data, direct.len);
		struct proto_record back;
		struct jm_err err;
		assert_jm_ok_err(proto_record_decode(direct.data, direct.len, &back, &err), &err);
		struct jm_buf again;
		jm_buf_init(&again);
		assert_jm_ok(proto_record_encode(&back, &again));
		assert_int_equal(again.len, direct.len);
		assert_memory_equal(again.data, direct.data, direct.len);
		jm_buf_fini(&again);
		proto_record_fini(&back);
	} else {
		assert_int_equal(rc_direct, JM_EINVAL);
		assert_int_equal(direct.len, 0);
	}
	jm_buf_fini(&direct);
	jm_buf_fini(&walked);
	return rc_direct == 0;
}

static void test_both_encoders_write_the_same_bytes_for_every_integer_form(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++) {
		uint64_t v = u64s[i];
		struct proto_rec_job j = base_job();
		j.job_id = v;
		j.attrs.batch_id = v;
		j.attrs.timeout_ms = v;
		j.attrs.created_us = v;
		j.updated_us = v;
		j.run_at_us = v;
		j.lease = v;
		j.lease_token = v;
		j.worker_instance = v;
		j.attempt = (uint32_t)v;
		assert_true(same_both_ways(&j));
		j = base_job();
		j.attrs.max_attempts = (uint32_t)v;
		assert_int_equal(same_both_ways(&j), (uint32_t)v <= PROTO_ATTEMPTS_MAX);
		j = base_job();
		j.state = (uint32_t)v;
		assert_int_equal(same_both_ways(&j),
		                 v >= PROTO_STATE_PENDING && v <= PROTO_STATE_CANCELLED);
	}
	for (size_t i = 0; i < sizeof prios / sizeof prios[0]; i++) {
		struct proto_rec_job j = base_job();
		j.attrs.priority = (int32_t)prios[i];
		assert_int_equal(same_both_ways(&j),
		                 prios[i] >= PROTO_PRIORITY_MIN && prios[i] <= PROTO_PRIORITY_MAX);
	}
}

static void test_both_encoders_refuse_the_same_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const char *n = names[i];
		bool valid = proto_name_is_valid(n, strlen(n));
		struct proto_rec_job j = base_job();
		strcpy(j.attrs.queue, n);
		assert_int_equal(same_both_ways(&j), valid);
		j = base_job();
		strcpy(j.attrs.type, n);
		assert_int_equal(same_both_ways(&j), valid);
		j = base_job();
		strcpy(j.worker_id, n);
		assert_int_equal(same_both_ways(&j), valid || n[0] == '\0');
		j = base_job();
		strcpy(j.attrs.group, n);
		assert_int_equal(same_both_ways(&j), valid || n[0] == '\0');
	}
	/* A name that fills its proto_name without a NUL. */
	struct proto_rec_job j = base_job();
	memset(j.attrs.queue, 'a', sizeof j.attrs.queue);
	assert_false(same_both_ways(&j));
	j = base_job();
	memset(j.attrs.group, 'a', sizeof j.attrs.group);
	assert_false(same_both_ways(&j));
}

static void test_both_encoders_judge_every_size_alike(void **state)
{
	(void)state;
	memset(big, '~', sizeof big);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		uint32_t n = sizes[i];
		struct proto_rec_job j = base_job();
		j.payload.len = n;
		j.payload.ptr = n ? big : NULL;
		assert_int_equal(same_both_ways(&j), n <= PROTO_PAYLOAD_MAX_DEFAULT);
		j = base_job();
		j.result.len = n;
		j.result.ptr = n ? big : NULL;
		assert_int_equal(same_both_ways(&j), n <= PROTO_RESULT_MAX);
		j = base_job();
		j.last_error.len = n;
		j.last_error.ptr = n ? big : NULL;
		assert_int_equal(same_both_ways(&j), n <= PROTO_ERROR_TEXT_MAX);
		j = base_job();
		j.key.len = n;
		j.key.ptr = n ? big : NULL;
		assert_int_equal(same_both_ways(&j), n <= PROTO_KEY_MAX);
	}
	/* Bytes claimed but absent. */
	struct proto_rec_job j = base_job();
	j.payload.ptr = NULL;
	assert_false(same_both_ways(&j));
	j = base_job();
	j.result = (struct proto_bytes){.ptr = NULL, .len = 3};
	assert_false(same_both_ways(&j));
}

static void test_both_encoders_refuse_a_key_with_a_byte_outside_printable_ascii(void **state)
{
	(void)state;
	static const uint8_t bytes[] = {0x00, 0x1f, 0x20, 0x41, 0x7e, 0x7f, 0x80, 0xff};
	for (size_t i = 0; i < sizeof bytes; i++) {
		uint8_t key[3] = {'k', bytes[i], 'k'};
		struct proto_rec_job j = base_job();
		j.key = (struct proto_bytes){.ptr = key, .len = sizeof key};
		assert_int_equal(same_both_ways(&j), bytes[i] >= 0x20 && bytes[i] <= 0x7e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_both_encoders_write_the_same_bytes_for_every_integer_form),
	    cmocka_unit_test(test_both_encoders_refuse_the_same_names),
	    cmocka_unit_test(test_both_encoders_judge_every_size_alike),
	    cmocka_unit_test(test_both_encoders_refuse_a_key_with_a_byte_outside_printable_ascii),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
