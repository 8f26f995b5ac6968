/* A JOBS message's direct decoder (proto/jobs_decode.c) against the
 * generic path: whatever the direct decoder accepts, the generic path
 * accepts into the same struct; what the broker sends is taken by the
 * direct decoder; and no truncation or one-byte change gets past it unless
 * the generic path accepts it too. Messages are written byte by byte in
 * every msgpack form of each value and decoded from exact-size heap
 * copies, so ASan sees any overread. */
#include "jm_test.h"

#include <stdbool.h>

#include "buf.h"
#include "jobs_decode.h"
#include "message.h"
#include "msgpack_bytes.h"
#include "proto_limits.h"
#include "submit_decode.h"

struct delivery_form {
	int fields;        /* 7: as sent */
	uint8_t int_tag;   /* form of job_id, lease, attempt, timeout_ms */
	uint8_t name_tag;  /* form of queue and type */
	uint8_t bytes_tag; /* form of the payload */
	int64_t attempt;
	const char *queue;
	size_t payload_len;
};

static const struct delivery_form plain = {.fields = 7,
                                           .int_tag = 0,
                                           .name_tag = 0xa0,
                                           .bytes_tag = 0xc4,
                                           .attempt = 1,
                                           .queue = "bench",
                                           .payload_len = 5};

static void put_delivery(struct jm_buf *b, const struct delivery_form *f)
{
	static char payload[PROTO_PAYLOAD_MAX_DEFAULT + 1];
	memset(payload, 'x', sizeof payload);
	put(b, (uint8_t)(0x90 | f->fields));
	put_int(b, f->int_tag ? 77 : 7, f->int_tag);
	put_int(b, f->int_tag ? 99 : 9, f->int_tag);
	put_int(b, f->attempt, f->int_tag);
	put_bytes(b, f->queue, strlen(f->queue), f->name_tag);
	put_bytes(b, "noop", 4, f->name_tag);
	put_bytes(b, payload, f->payload_len, f->bytes_tag);
	put_int(b, f->int_tag ? 100 : 10, f->int_tag);
	for (int i = 7; i < f->fields; i++)
		put(b, 0xc0); /* a field appended by a newer peer */
}

static void put_jobs(struct jm_buf *b, uint8_t version, const struct delivery_form *f, int count)
{
	put(b, 0x93);
	put(b, version);
	put(b, PROTO_JOBS);
	put(b, 0x91);
	if (count < 16)
		put(b, (uint8_t)(0x90 | count));
	else
		put_int(b, count, 0xcd), b->data[b->len - 3] = 0xdc; /* array16 */
	for (int i = 0; i < count; i++)
		put_delivery(b, f);
}

static void same_jobs(const struct proto_msg *direct, const struct proto_msg *generic)
{
	const struct proto_jobs *d = &direct->u.jobs, *g = &generic->u.jobs;
	assert_int_equal(d->jobs_count, g->jobs_count);
	assert_memory_equal(d->jobs, g->jobs, sizeof d->jobs[0] * d->jobs_count);
}

static bool direct_agrees(const uint8_t *data, size_t len)
{
	return direct_agrees_with(data, len, jobs_decode_direct, same_jobs);
}

static void test_the_direct_decoder_takes_what_the_broker_sends(void **state)
{
	(void)state;
	struct proto_delivery jobs[64];
	memset(jobs, 0, sizeof jobs);
	for (int i = 0; i < 64; i++) {
		jobs[i].job_id = (1ull << 40) + (uint64_t)i;
		jobs[i].lease = UINT64_MAX - (uint64_t)i;
		jobs[i].attempt = (uint32_t)i + 1;
		strcpy(jobs[i].attrs.queue, i % 2 ? "emails" : "reports.monthly");
		strcpy(jobs[i].attrs.type, "send");
		jobs[i].attrs.timeout_ms = (uint64_t)i * 1000;
		if (i != 3)
			jobs[i].payload =
			    (struct proto_bytes){.ptr = (const uint8_t *)"{}", .len = 2};
	}
	struct proto_msg msg = {.type = PROTO_JOBS};
	msg.u.jobs = (struct proto_jobs){.jobs_count = 64, .jobs = jobs};
	struct jm_buf b;
	jm_buf_init(&b);
	assert_jm_ok(proto_encode(&msg, &b));
	assert_true(direct_agrees(b.data, b.len));
	/* And proto_decode takes that path, into a struct equal to the input. */
	struct proto_msg got;
	struct jm_err err;
	assert_jm_ok_err(proto_decode(b.data, b.len, &got, &err), &err);
	assert_int_equal(got.u.jobs.jobs_count, 64);
	for (int i = 0; i < 64; i++) {
		const struct proto_delivery *d = &got.u.jobs.jobs[i];
		assert_int_equal(d->job_id, jobs[i].job_id);
		assert_int_equal(d->lease, jobs[i].lease);
		assert_int_equal(d->attempt, jobs[i].attempt);
		assert_string_equal(d->attrs.queue, jobs[i].attrs.queue);
		assert_int_equal(d->attrs.timeout_ms, jobs[i].attrs.timeout_ms);
		assert_int_equal(d->payload.len, jobs[i].payload.len);
	}
	assert_null(got.u.jobs.jobs[3].payload.ptr);
	proto_msg_fini(&got);
	jm_buf_fini(&b);
}

static void test_every_msgpack_form_of_a_value_decodes_as_the_generic_path_does(void **state)
{
	(void)state;
	for (int fields = 6; fields <= 8; fields++)
		for (size_t i = 0; i < sizeof msgpack_int_tags; i++)
			for (size_t n = 0; n < sizeof msgpack_name_tags; n++)
				for (size_t k = 0; k < sizeof msgpack_bytes_tags; k++) {
					struct delivery_form f = plain;
					f.fields = fields;
					f.int_tag = msgpack_int_tags[i];
					f.name_tag = msgpack_name_tags[n];
					f.bytes_tag = msgpack_bytes_tags[k];
					f.payload_len = k % 2 ? 0 : 5;
					struct jm_buf b;
					jm_buf_init(&b);
					put_jobs(&b, PROTO_VERSION, &f, 3);
					bool taken = direct_agrees(b.data, b.len);
					/* Forms it knows, in the fields it knows. */
					assert_int_equal(taken, fields == 7 &&
					                            msgpack_name_tags[n] != 0xc4);
					jm_buf_fini(&b);
				}
}

static void test_values_out_of_range_are_left_to_the_generic_path(void **state)
{
	(void)state;
	struct {
		int64_t attempt;
		const char *queue;
		size_t payload_len;
		bool valid;
	} cases[] = {
	    {1, "q", 0, true},
	    {0, "q", 0, false},
	    {-1, "q", 0, false},
	    {UINT32_MAX, "q", 0, true},
	    {(int64_t)UINT32_MAX + 1, "q", 0, false},
	    {1, "", 0, false},
	    {1, "a b", 0, false},
	    {1, "q", PROTO_PAYLOAD_MAX_DEFAULT, true},
	    {1, "q", PROTO_PAYLOAD_MAX_DEFAULT + 1, false},
	    {1, "0123456789012345678901234567890123456789012345678901234567890123", 0, true},
	    {1, "01234567890123456789012345678901234567890123456789012345678901234", 0, false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct delivery_form f = plain;
		f.int_tag = 0xd3;
		f.name_tag = 0xd9;
		f.bytes_tag = 0xc6;
		f.attempt = cases[i].attempt;
		f.queue = cases[i].queue;
		f.payload_len = cases[i].payload_len;
		struct jm_buf b;
		jm_buf_init(&b);
		put_jobs(&b, PROTO_VERSION, &f, 2);
		assert_int_equal(direct_agrees(b.data, b.len), cases[i].valid);
		jm_buf_fini(&b);
	}
}

static void test_counts_and_versions_are_judged_as_the_generic_path_judges_them(void **state)
{
	(void)state;
	for (int count = 0; count <= 20; count += 4) {
		struct jm_buf b;
		jm_buf_init(&b);
		put_jobs(&b, PROTO_VERSION, &plain, count);
		/* An empty reply (a long poll that timed out) is the generic path's. */
		assert_int_equal(direct_agrees(b.data, b.len), count > 0);
		jm_buf_fini(&b);
	}
	struct jm_buf b;
	jm_buf_init(&b);
	put_jobs(&b, PROTO_VERSION - 1, &plain, 2);
	assert_false(direct_agrees(b.data, b.len));
	jm_buf_fini(&b);
	/* An array16 that claims more deliveries than the bytes can hold. */
	uint8_t lie[] = {0x93, PROTO_VERSION, PROTO_JOBS, 0x91, 0xdc, 0xff, 0xff, 0x97};
	assert_false(direct_agrees(lie, sizeof lie));
}

static void test_no_truncation_or_changed_byte_gets_past_the_generic_path(void **state)
{
	(void)state;
	struct delivery_form f = plain;
	f.int_tag = 0xcd;
	struct jm_buf b;
	jm_buf_init(&b);
	put_jobs(&b, PROTO_VERSION, &f, 2);
	hold_to_the_generic_path(b.data, b.len, direct_agrees);
	jm_buf_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_the_direct_decoder_takes_what_the_broker_sends),
	    cmocka_unit_test(test_every_msgpack_form_of_a_value_decodes_as_the_generic_path_does),
	    cmocka_unit_test(test_values_out_of_range_are_left_to_the_generic_path),
	    cmocka_unit_test(test_counts_and_versions_are_judged_as_the_generic_path_judges_them),
	    cmocka_unit_test(test_no_truncation_or_changed_byte_gets_past_the_generic_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
