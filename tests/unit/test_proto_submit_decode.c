/* A SUBMIT's direct decoder (proto/submit_decode.c) against the generic
 * path (pre-scan, msgpack-c, field walker, fields_check): whatever the
 * direct decoder accepts, the generic path accepts into the same struct;
 * what the SDK sends is taken by the direct decoder; and no truncation or
 * one-byte change of a SUBMIT gets past it unless the generic path accepts
 * it too. Messages are written byte by byte here, in every msgpack form
 * of each value, and decoded from exact-size heap copies so ASan sees any
 * overread. */
#include "jm_test.h"

#include <stdbool.h>

#include "buf.h"
#include "message.h"
#include "msgpack_bytes.h"
#include "proto_limits.h"
#include "submit_decode.h"

struct spec_form {
	int fields;         /* 7..10 */
	uint8_t int_tag;    /* form of priority, max_attempts, delay, timeout */
	uint8_t name_tag;   /* form of queue, type */
	uint8_t bytes_tag;  /* form of payload and key */
	int64_t priority;   /* as written */
	uint64_t delay_ms;  /* as written */
	uint64_t run_at_us; /* 9 or 10 fields */
	const char *queue;
	const char *key; /* 8 fields or more */
	const char *group;
};

static void put_spec(struct jm_buf *b, const struct spec_form *f)
{
	put(b, (uint8_t)(0x90 | f->fields));
	put_bytes(b, f->queue, strlen(f->queue), f->name_tag);
	put_bytes(b, "noop", 4, f->name_tag);
	put_bytes(b, "payload-bytes", 13, f->bytes_tag);
	put_int(b, f->priority, f->int_tag);
	put_int(b, 3, f->int_tag);
	put_int(b, (int64_t)f->delay_ms, f->int_tag);
	put_int(b, 100, f->int_tag);
	if (f->fields > 7)
		put_bytes(b, f->key, strlen(f->key), f->bytes_tag);
	if (f->fields > 8)
		put_int(b, (int64_t)f->run_at_us, f->int_tag);
	if (f->fields > 9)
		put_bytes(b, f->group, strlen(f->group), 0xa0);
}

static void put_submit(struct jm_buf *b, bool as_batch, const struct spec_form *f, int jobs)
{
	put(b, 0x93);
	put(b, PROTO_VERSION);
	put(b, PROTO_SUBMIT);
	put(b, 0x92);
	put(b, as_batch ? 0xc3 : 0xc2);
	if (jobs < 16)
		put(b, (uint8_t)(0x90 | jobs));
	else
		put_int(b, jobs, 0xcd), b->data[b->len - 3] = 0xdc; /* array16 */
	for (int i = 0; i < jobs; i++)
		put_spec(b, f);
}

static const struct spec_form plain = {.fields = 10,
                                       .int_tag = 0,
                                       .name_tag = 0xa0,
                                       .bytes_tag = 0xc4,
                                       .priority = 1,
                                       .queue = "bench",
                                       .key = "",
                                       .group = ""};

static void same_submit(const struct proto_msg *direct, const struct proto_msg *generic)
{
	const struct proto_submit *d = &direct->u.submit, *g = &generic->u.submit;
	assert_int_equal(d->as_batch, g->as_batch);
	assert_int_equal(d->jobs_count, g->jobs_count);
	assert_memory_equal(d->jobs, g->jobs, sizeof d->jobs[0] * d->jobs_count);
}

static bool direct_agrees(const uint8_t *data, size_t len)
{
	return direct_agrees_with(data, len, submit_decode_direct, same_submit);
}

static void test_the_direct_decoder_takes_what_the_sdk_sends(void **state)
{
	(void)state;
	struct proto_job_spec jobs[100];
	memset(jobs, 0, sizeof jobs);
	for (int i = 0; i < 100; i++) {
		strcpy(jobs[i].attrs.queue, "bench");
		strcpy(jobs[i].attrs.type, "noop");
		jobs[i].payload = (struct proto_bytes){.ptr = (const uint8_t *)"xxxx", .len = 4};
		jobs[i].attrs.priority = i % 2 ? -5 : 5;
		jobs[i].delay_ms = (uint64_t)i * 1000;
	}
	strcpy(jobs[7].attrs.group, "tenant-a");
	jobs[8].key = (struct proto_bytes){.ptr = (const uint8_t *)"order-8", .len = 7};
	jobs[9].delay_ms = 0;
	jobs[9].run_at_us = UINT64_MAX;
	struct proto_msg msg = {.type = PROTO_SUBMIT};
	msg.u.submit = (struct proto_submit){.as_batch = true, .jobs_count = 100, .jobs = jobs};
	struct jm_buf b;
	jm_buf_init(&b);
	assert_jm_ok(proto_encode(&msg, &b));
	assert_true(direct_agrees(b.data, b.len));
	/* And proto_decode takes that path (a struct equal to the input). */
	struct proto_msg got;
	struct jm_err err;
	assert_jm_ok_err(proto_decode(b.data, b.len, &got, &err), &err);
	assert_int_equal(got.u.submit.jobs_count, 100);
	assert_string_equal(got.u.submit.jobs[7].attrs.group, "tenant-a");
	assert_int_equal(got.u.submit.jobs[9].run_at_us, UINT64_MAX);
	assert_int_equal(got.u.submit.jobs[1].attrs.priority, -5);
	proto_msg_fini(&got);
	jm_buf_fini(&b);
}

static void test_every_msgpack_form_of_a_value_decodes_as_the_generic_path_does(void **state)
{
	(void)state;
	for (int fields = 6; fields <= 11; fields++)
		for (size_t i = 0; i < sizeof msgpack_int_tags; i++)
			for (size_t n = 0; n < sizeof msgpack_name_tags; n++)
				for (size_t k = 0; k < sizeof msgpack_bytes_tags; k++) {
					struct spec_form f = plain;
					f.fields = fields;
					f.int_tag = msgpack_int_tags[i];
					f.name_tag = msgpack_name_tags[n];
					f.bytes_tag = msgpack_bytes_tags[k];
					f.key = "k-1";
					f.group = fields == 10 ? "g" : "";
					struct jm_buf b;
					jm_buf_init(&b);
					put_submit(&b, k % 2 == 0, &f, 3);
					bool taken = direct_agrees(b.data, b.len);
					/* Forms it knows, in the fields it knows. */
					bool known = fields >= 7 && fields <= 10 &&
					             msgpack_name_tags[n] != 0xc4;
					assert_int_equal(taken, known);
					jm_buf_fini(&b);
				}
}

static void test_values_out_of_range_are_left_to_the_generic_path(void **state)
{
	(void)state;
	struct {
		int64_t priority;
		uint64_t delay_ms, run_at_us;
		const char *queue, *key, *group;
		bool valid;
	} cases[] = {
	    {1000, 0, 0, "q", "", "", true},
	    {1001, 0, 0, "q", "", "", false},
	    {-1000, 0, 0, "q", "", "", true},
	    {-1001, 0, 0, "q", "", "", false},
	    {INT64_MIN, 0, 0, "q", "", "", false},
	    {(int64_t)INT32_MAX + 1, 0, 0, "q", "", "", false},
	    {0, 5, 7, "q", "", "", false}, /* delay and run_at both */
	    {0, 5, 0, "q", "", "", true},
	    {0, 0, 7, "q", "", "", true},
	    {0, 0, 0, "", "", "", false},
	    {0, 0, 0, "a b", "", "", false},
	    {0, 0, 0, "q", "", "a b", false},
	    {0, 0, 0, "q", "\x1f", "", false},
	    {0, 0, 0, "q", "~ ok", "", true},
	    {0, 0, 0, "0123456789012345678901234567890123456789012345678901234567890123", "", "",
	     true},
	    {0, 0, 0, "01234567890123456789012345678901234567890123456789012345678901234", "", "",
	     false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct spec_form f = plain;
		f.int_tag = 0xd3;
		f.priority = cases[i].priority;
		f.delay_ms = cases[i].delay_ms;
		f.run_at_us = cases[i].run_at_us;
		f.queue = cases[i].queue;
		f.key = cases[i].key;
		f.group = cases[i].group;
		f.name_tag = 0xd9;
		struct jm_buf b;
		jm_buf_init(&b);
		put_submit(&b, false, &f, 2);
		assert_int_equal(direct_agrees(b.data, b.len), cases[i].valid);
		jm_buf_fini(&b);
	}
}

static void test_counts_of_jobs_are_judged_as_the_generic_path_judges_them(void **state)
{
	(void)state;
	for (int jobs = 0; jobs <= 20; jobs += 4) {
		struct jm_buf b;
		jm_buf_init(&b);
		put_submit(&b, false, &plain, jobs);
		assert_int_equal(direct_agrees(b.data, b.len), jobs > 0);
		jm_buf_fini(&b);
	}
	/* An array16 that claims more jobs than the bytes can hold. */
	uint8_t lie[] = {0x93, PROTO_VERSION, PROTO_SUBMIT, 0x92, 0xc2, 0xdc, 0xff, 0xff, 0x90};
	assert_false(direct_agrees(lie, sizeof lie));
}

static void test_no_truncation_or_changed_byte_gets_past_the_generic_path(void **state)
{
	(void)state;
	struct spec_form f = plain;
	f.key = "key";
	f.group = "grp";
	f.run_at_us = 100;
	struct jm_buf b;
	jm_buf_init(&b);
	put_submit(&b, true, &f, 2);
	hold_to_the_generic_path(b.data, b.len, direct_agrees);
	jm_buf_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_the_direct_decoder_takes_what_the_sdk_sends),
	    cmocka_unit_test(test_every_msgpack_form_of_a_value_decodes_as_the_generic_path_does),
	    cmocka_unit_test(test_values_out_of_range_are_left_to_the_generic_path),
	    cmocka_unit_test(test_counts_of_jobs_are_judged_as_the_generic_path_judges_them),
	    cmocka_unit_test(test_no_truncation_or_changed_byte_gets_past_the_generic_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
