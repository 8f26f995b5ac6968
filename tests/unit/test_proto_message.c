/* Wire messages: every type round-trips with every field set, and hostile
 * or malformed input fails cleanly with a code and a message naming the
 * field. Malformed input is written byte by byte with the mp_* helpers
 * below, not with the encoder under test, and decoded from an exact-size
 * heap copy so that AddressSanitizer catches any read past the end. */
#include "jm_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "message.h"

/* A tiny msgpack writer, independent of proto/, for building bad input. */

static void mp_raw(struct jm_buf *b, const void *p, size_t n)
{
	assert_int_equal(jm_buf_append(b, p, n), 0);
}

static void mp_byte(struct jm_buf *b, uint8_t v)
{
	mp_raw(b, &v, 1);
}

static void mp_be(struct jm_buf *b, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		mp_byte(b, (uint8_t)(v >> (8 * i)));
}

static void mp_array(struct jm_buf *b, uint32_t n)
{
	if (n < 16) {
		mp_byte(b, (uint8_t)(0x90 | n));
	} else if (n <= 0xffff) {
		mp_byte(b, 0xdc);
		mp_be(b, n, 2);
	} else {
		mp_byte(b, 0xdd);
		mp_be(b, n, 4);
	}
}

static void mp_uint(struct jm_buf *b, uint64_t v)
{
	if (v < 128) {
		mp_byte(b, (uint8_t)v);
	} else if (v <= 0xff) {
		mp_byte(b, 0xcc);
		mp_be(b, v, 1);
	} else if (v <= 0xffff) {
		mp_byte(b, 0xcd);
		mp_be(b, v, 2);
	} else if (v <= 0xffffffffu) {
		mp_byte(b, 0xce);
		mp_be(b, v, 4);
	} else {
		mp_byte(b, 0xcf);
		mp_be(b, v, 8);
	}
}

static void mp_int(struct jm_buf *b, int64_t v)
{
	if (v >= 0) {
		mp_uint(b, (uint64_t)v);
	} else if (v >= -32) {
		mp_byte(b, (uint8_t)(int8_t)v);
	} else {
		mp_byte(b, 0xd3);
		mp_be(b, (uint64_t)v, 8);
	}
}

static void mp_strn(struct jm_buf *b, const void *s, size_t n)
{
	if (n < 32) {
		mp_byte(b, (uint8_t)(0xa0 | n));
	} else if (n <= 0xff) {
		mp_byte(b, 0xd9);
		mp_be(b, n, 1);
	} else if (n <= 0xffff) {
		mp_byte(b, 0xda);
		mp_be(b, n, 2);
	} else {
		mp_byte(b, 0xdb);
		mp_be(b, n, 4);
	}
	if (n > 0)
		mp_raw(b, s, n);
}

static void mp_str(struct jm_buf *b, const char *s)
{
	mp_strn(b, s, strlen(s));
}

static void mp_bin(struct jm_buf *b, const void *p, size_t n)
{
	if (n <= 0xff) {
		mp_byte(b, 0xc4);
		mp_be(b, n, 1);
	} else if (n <= 0xffff) {
		mp_byte(b, 0xc5);
		mp_be(b, n, 2);
	} else {
		mp_byte(b, 0xc6);
		mp_be(b, n, 4);
	}
	if (n > 0)
		mp_raw(b, p, n);
}

static void mp_bool(struct jm_buf *b, bool v)
{
	mp_byte(b, v ? 0xc3 : 0xc2);
}

static void mp_nil(struct jm_buf *b)
{
	mp_byte(b, 0xc0);
}

static void mp_envelope(struct jm_buf *b, uint64_t version, uint64_t type)
{
	mp_array(b, 3);
	mp_uint(b, version);
	mp_uint(b, type);
}

/* A SUBMIT job spec written by hand; field nil_field (0..6) is written as
 * nil instead, -1 for none. */
struct raw_job {
	const char *queue;
	const char *type;
	const void *payload;
	size_t payload_len;
	int64_t priority;
	uint64_t max_attempts;
	int nil_field;
};

static struct raw_job raw_job_default(void)
{
	return (struct raw_job){.queue = "emails",
	                        .type = "send",
	                        .payload = "{}",
	                        .payload_len = 2,
	                        .priority = 5,
	                        .max_attempts = 3,
	                        .nil_field = -1};
}

static void mp_job(struct jm_buf *b, const struct raw_job *j)
{
	mp_array(b, 7);
	for (int field = 0; field < 7; field++) {
		if (field == j->nil_field) {
			mp_nil(b);
			continue;
		}
		switch (field) {
		case 0:
			mp_str(b, j->queue);
			break;
		case 1:
			mp_str(b, j->type);
			break;
		case 2:
			mp_bin(b, j->payload, j->payload_len);
			break;
		case 3:
			mp_int(b, j->priority);
			break;
		case 4:
			mp_uint(b, j->max_attempts);
			break;
		case 5:
			mp_uint(b, 1000); /* delay_ms */
			break;
		case 6:
			mp_uint(b, 30000); /* timeout_ms */
			break;
		}
	}
}

/* Decodes from an exact-size heap copy, so a read past len is an ASan
 * error rather than a silent read of the caller's next bytes. */
static int decode_copy(const void *data, size_t len, struct proto_msg *out, struct jm_err *err)
{
	void *copy = malloc(len > 0 ? len : 1);
	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, data, len);
	int rc = proto_decode(copy, len, out, err);
	if (rc == 0) {
		/* Borrowed fields would dangle once the copy is gone: re-encode
		 * (which must succeed for anything we accepted), then drop it. */
		struct jm_buf again;
		jm_buf_init(&again);
		assert_jm_ok(proto_encode(out, &again));
		jm_buf_fini(&again);
		proto_msg_fini(out);
	}
	free(copy);
	return rc;
}

static bool is_zeroed(const void *p, size_t n)
{
	const uint8_t *bytes = p;
	for (size_t i = 0; i < n; i++)
		if (bytes[i] != 0)
			return false;
	return true;
}

static struct proto_bytes text(const char *s)
{
	size_t len = strlen(s);
	return (struct proto_bytes){.ptr = len > 0 ? (const uint8_t *)s : NULL,
	                            .len = (uint32_t)len};
}

static void assert_bytes_equal(struct proto_bytes a, struct proto_bytes b)
{
	assert_int_equal(a.len, b.len);
	if (a.len > 0)
		assert_memory_equal(a.ptr, b.ptr, a.len);
	else
		assert_null(b.ptr);
}

/* Encodes in, decodes into out; out borrows from wire until fini. */
static void round_trip(const struct proto_msg *in, struct jm_buf *wire, struct proto_msg *out)
{
	struct jm_err err = {0};
	jm_buf_init(wire);
	assert_jm_ok(proto_encode(in, wire));
	assert_jm_ok_err(proto_decode(wire->data, wire->len, out, &err), &err);
	assert_int_equal(out->version, PROTO_VERSION);
	assert_int_equal(out->type, in->type);
	assert_non_null(out->zone_);
}

static void finish(struct proto_msg *out, struct jm_buf *wire)
{
	proto_msg_fini(out);
	assert_true(is_zeroed(out, sizeof *out));
	jm_buf_fini(wire);
}

static const uint8_t binary_payload[] = {0x00, 0xff, 0xc1, 0x00, 0x7f, 0x80};

/* Round trips */

static void test_error_round_trips(void **state)
{
	struct proto_msg in = {.type = PROTO_ERROR};
	in.u.error.code = JM_ESTALE;
	in.u.error.message = text("lease 7 of job 42 is stale");
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_int_equal(out.u.error.code, JM_ESTALE);
	assert_bytes_equal(in.u.error.message, out.u.error.message);
	finish(&out, &wire);
}

static void test_submit_round_trips_with_every_field_set(void **state)
{
	struct proto_job_spec jobs[2] = {
	    {.queue = "emails",
	     .type = "send.welcome",
	     .payload = {binary_payload, sizeof binary_payload},
	     .priority = -1000,
	     .max_attempts = 1000,
	     .delay_ms = UINT64_MAX,
	     .timeout_ms = 123456789012ull},
	    {.queue = "Q-1_x.y",
	     .type = "t",
	     .payload = {NULL, 0},
	     .priority = 1000,
	     .max_attempts = 0,
	     .delay_ms = 1,
	     .timeout_ms = 0},
	};
	struct proto_msg in = {.type = PROTO_SUBMIT};
	in.u.submit.as_batch = true;
	in.u.submit.jobs_count = 2;
	in.u.submit.jobs = jobs;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_true(out.u.submit.as_batch);
	assert_int_equal(out.u.submit.jobs_count, 2);
	for (int i = 0; i < 2; i++) {
		const struct proto_job_spec *a = &jobs[i], *b = &out.u.submit.jobs[i];
		assert_string_equal(a->queue, b->queue);
		assert_string_equal(a->type, b->type);
		assert_bytes_equal(a->payload, b->payload);
		assert_int_equal(a->priority, b->priority);
		assert_int_equal(a->max_attempts, b->max_attempts);
		assert_true(a->delay_ms == b->delay_ms);
		assert_true(a->timeout_ms == b->timeout_ms);
	}
	finish(&out, &wire);
}

static void test_submitted_round_trips(void **state)
{
	uint64_t ids[3] = {1, 0x123456789abcull, UINT64_MAX};
	struct proto_msg in = {.type = PROTO_SUBMITTED};
	in.u.submitted.batch_id = 77;
	in.u.submitted.ids_count = 3;
	in.u.submitted.ids = ids;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_true(out.u.submitted.batch_id == 77);
	assert_int_equal(out.u.submitted.ids_count, 3);
	assert_memory_equal(out.u.submitted.ids, ids, sizeof ids);
	finish(&out, &wire);
}

static void test_fetch_round_trips(void **state)
{
	proto_name queues[3] = {"emails", "reports", "ocr.high"};
	struct proto_msg in = {.type = PROTO_FETCH};
	strcpy(in.u.fetch.worker_id, "worker-7f3a");
	in.u.fetch.slot = 3;
	in.u.fetch.queues_count = 3;
	in.u.fetch.queues = queues;
	in.u.fetch.max_jobs = 16;
	in.u.fetch.wait_ms = 30000;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_string_equal(out.u.fetch.worker_id, "worker-7f3a");
	assert_int_equal(out.u.fetch.slot, 3);
	assert_int_equal(out.u.fetch.queues_count, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(out.u.fetch.queues[i], queues[i]);
	assert_int_equal(out.u.fetch.max_jobs, 16);
	assert_int_equal(out.u.fetch.wait_ms, 30000);
	finish(&out, &wire);
}

static void test_jobs_round_trips(void **state)
{
	struct proto_delivery jobs[2] = {
	    {.job_id = 42,
	     .lease = 9,
	     .attempt = 2,
	     .queue = "emails",
	     .type = "send",
	     .payload = {binary_payload, sizeof binary_payload},
	     .timeout_ms = 60000},
	    {.job_id = UINT64_MAX,
	     .lease = UINT64_MAX,
	     .attempt = UINT32_MAX,
	     .queue = "q",
	     .type = "t",
	     .payload = {NULL, 0},
	     .timeout_ms = 1},
	};
	struct proto_msg in = {.type = PROTO_JOBS};
	in.u.jobs.jobs_count = 2;
	in.u.jobs.jobs = jobs;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_int_equal(out.u.jobs.jobs_count, 2);
	for (int i = 0; i < 2; i++) {
		const struct proto_delivery *a = &jobs[i], *b = &out.u.jobs.jobs[i];
		assert_true(a->job_id == b->job_id && a->lease == b->lease);
		assert_int_equal(a->attempt, b->attempt);
		assert_string_equal(a->queue, b->queue);
		assert_string_equal(a->type, b->type);
		assert_bytes_equal(a->payload, b->payload);
		assert_true(a->timeout_ms == b->timeout_ms);
	}
	finish(&out, &wire);
}

static void test_ack_round_trips(void **state)
{
	struct proto_ack_item items[2] = {
	    {.job_id = 42, .lease = 9, .result = {binary_payload, sizeof binary_payload}},
	    {.job_id = 43, .lease = 1, .result = {NULL, 0}},
	};
	struct proto_msg in = {.type = PROTO_ACK};
	strcpy(in.u.ack.worker_id, "w1");
	in.u.ack.items_count = 2;
	in.u.ack.items = items;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_string_equal(out.u.ack.worker_id, "w1");
	assert_int_equal(out.u.ack.items_count, 2);
	for (int i = 0; i < 2; i++) {
		assert_true(out.u.ack.items[i].job_id == items[i].job_id);
		assert_true(out.u.ack.items[i].lease == items[i].lease);
		assert_bytes_equal(items[i].result, out.u.ack.items[i].result);
	}
	finish(&out, &wire);
}

static void test_fail_round_trips(void **state)
{
	struct proto_fail_item items[2] = {
	    {.job_id = 42,
	     .lease = 9,
	     .error = text("timeout calling api.example.com"),
	     .permanent = true,
	     .released = false},
	    {.job_id = 43, .lease = 2, .error = {NULL, 0}, .permanent = false, .released = true},
	};
	struct proto_msg in = {.type = PROTO_FAIL};
	strcpy(in.u.fail.worker_id, "w2");
	in.u.fail.items_count = 2;
	in.u.fail.items = items;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_string_equal(out.u.fail.worker_id, "w2");
	assert_int_equal(out.u.fail.items_count, 2);
	for (int i = 0; i < 2; i++) {
		const struct proto_fail_item *a = &items[i], *b = &out.u.fail.items[i];
		assert_true(a->job_id == b->job_id && a->lease == b->lease);
		assert_bytes_equal(a->error, b->error);
		assert_int_equal(a->permanent, b->permanent);
		assert_int_equal(a->released, b->released);
	}
	finish(&out, &wire);
}

static void test_settled_round_trips(void **state)
{
	int32_t codes[3] = {0, JM_ESTALE, INT32_MIN};
	struct proto_msg in = {.type = PROTO_SETTLED};
	in.u.settled.codes_count = 3;
	in.u.settled.codes = codes;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_int_equal(out.u.settled.codes_count, 3);
	assert_memory_equal(out.u.settled.codes, codes, sizeof codes);
	finish(&out, &wire);
}

static void test_status_and_result_round_trip(void **state)
{
	int types[2] = {PROTO_STATUS, PROTO_RESULT};
	for (int i = 0; i < 2; i++) {
		struct proto_msg in = {.type = types[i]};
		in.u.job_ref.job_id = 0xdeadbeefcafeull;
		struct jm_buf wire;
		struct proto_msg out;
		round_trip(&in, &wire, &out);
		assert_true(out.u.job_ref.job_id == 0xdeadbeefcafeull);
		finish(&out, &wire);
	}
}

static void test_wait_round_trips(void **state)
{
	struct proto_msg in = {.type = PROTO_WAIT};
	in.u.wait.job_id = 42;
	in.u.wait.timeout_ms = UINT32_MAX;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_true(out.u.wait.job_id == 42);
	assert_int_equal(out.u.wait.timeout_ms, UINT32_MAX);
	finish(&out, &wire);
}

static void test_job_round_trips(void **state)
{
	struct proto_msg in = {.type = PROTO_JOB};
	struct proto_job_info *j = &in.u.job;
	j->job_id = 42;
	strcpy(j->queue, "reports");
	strcpy(j->type, "daily");
	j->state = PROTO_STATE_COMPLETED;
	j->priority = -7;
	j->attempt = 3;
	j->max_attempts = 5;
	j->created_us = 1700000000000000ull;
	j->updated_us = 1700000000000001ull;
	j->run_at_us = 1700000000000002ull;
	j->last_error = text("first try timed out");
	j->has_result = true;
	j->result = (struct proto_bytes){binary_payload, sizeof binary_payload};
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	const struct proto_job_info *o = &out.u.job;
	assert_true(o->job_id == 42);
	assert_string_equal(o->queue, "reports");
	assert_string_equal(o->type, "daily");
	assert_int_equal(o->state, PROTO_STATE_COMPLETED);
	assert_int_equal(o->priority, -7);
	assert_int_equal(o->attempt, 3);
	assert_int_equal(o->max_attempts, 5);
	assert_true(o->created_us == j->created_us && o->updated_us == j->updated_us &&
	            o->run_at_us == j->run_at_us);
	assert_bytes_equal(j->last_error, o->last_error);
	assert_true(o->has_result);
	assert_bytes_equal(j->result, o->result);
	finish(&out, &wire);
}

static void test_stats_round_trips_with_an_empty_body(void **state)
{
	struct proto_msg in = {.type = PROTO_STATS};
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	static const uint8_t expected[] = {0x93, 0x01, 0x0d, 0x90};
	assert_int_equal(wire.len, sizeof expected);
	assert_memory_equal(wire.data, expected, sizeof expected);
	finish(&out, &wire);
}

static void test_stats_reply_round_trips(void **state)
{
	struct proto_queue_stats queues[2] = {
	    {.name = "emails",
	     .pending = 1,
	     .delayed = 2,
	     .active = 3,
	     .completed = 4,
	     .failed = 5},
	    {.name = "ocr",
	     .pending = UINT64_MAX,
	     .delayed = 0,
	     .active = 7,
	     .completed = 8,
	     .failed = 9},
	};
	struct proto_msg in = {.type = PROTO_STATS_REPLY};
	in.u.stats_reply.queues_count = 2;
	in.u.stats_reply.queues = queues;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_int_equal(out.u.stats_reply.queues_count, 2);
	for (int i = 0; i < 2; i++) {
		const struct proto_queue_stats *a = &queues[i], *o = &out.u.stats_reply.queues[i];
		assert_string_equal(a->name, o->name);
		assert_true(a->pending == o->pending && a->delayed == o->delayed &&
		            a->active == o->active && a->completed == o->completed &&
		            a->failed == o->failed);
	}
	finish(&out, &wire);
}

static void test_heartbeat_round_trips(void **state)
{
	proto_name queues[2] = {"emails", "ocr"};
	struct proto_lease_ref leases[2] = {{42, 9}, {UINT64_MAX, 1}};
	struct proto_msg in = {.type = PROTO_HEARTBEAT};
	struct proto_heartbeat *h = &in.u.heartbeat;
	strcpy(h->worker_id, "worker-1");
	h->host = text("pod-7c9f.cluster.local");
	h->pid = 4242;
	h->concurrency = 8;
	h->queues_count = 2;
	h->queues = queues;
	h->leases_count = 2;
	h->leases = leases;
	h->draining = true;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	const struct proto_heartbeat *o = &out.u.heartbeat;
	assert_string_equal(o->worker_id, "worker-1");
	assert_bytes_equal(h->host, o->host);
	assert_int_equal(o->pid, 4242);
	assert_int_equal(o->concurrency, 8);
	assert_int_equal(o->queues_count, 2);
	assert_string_equal(o->queues[0], "emails");
	assert_string_equal(o->queues[1], "ocr");
	assert_int_equal(o->leases_count, 2);
	assert_memory_equal(o->leases, leases, sizeof leases);
	assert_true(o->draining);
	finish(&out, &wire);
}

static void test_heartbeat_reply_round_trips(void **state)
{
	struct proto_lease_ref abandon[3] = {{1, 2}, {3, 4}, {5, 6}};
	struct proto_msg in = {.type = PROTO_HEARTBEAT_REPLY};
	in.u.heartbeat_reply.abandon_count = 3;
	in.u.heartbeat_reply.abandon = abandon;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_int_equal(out.u.heartbeat_reply.abandon_count, 3);
	assert_memory_equal(out.u.heartbeat_reply.abandon, abandon, sizeof abandon);
	finish(&out, &wire);
}

static void test_empty_lists_decode_as_null_arrays(void **state)
{
	struct proto_msg in = {.type = PROTO_JOBS};
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_int_equal(out.u.jobs.jobs_count, 0);
	assert_null(out.u.jobs.jobs);
	finish(&out, &wire);
}

static void test_decoded_bytes_borrow_from_the_input_buffer(void **state)
{
	struct proto_ack_item item = {.job_id = 1, .lease = 1, .result = text("done")};
	struct proto_msg in = {.type = PROTO_ACK};
	strcpy(in.u.ack.worker_id, "w");
	in.u.ack.items_count = 1;
	in.u.ack.items = &item;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	const uint8_t *p = out.u.ack.items[0].result.ptr;
	assert_true(p >= wire.data && p + 4 <= wire.data + wire.len);
	finish(&out, &wire);
}

/* ERROR helper */

static void test_encode_error_formats_code_and_text(void **state)
{
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_ok(proto_encode_error(&wire, JM_ENOTFOUND, "job %d not found", 42));
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_ok_err(proto_decode(wire.data, wire.len, &out, &err), &err);
	assert_int_equal(out.type, PROTO_ERROR);
	assert_int_equal(out.u.error.code, JM_ENOTFOUND);
	assert_int_equal(out.u.error.message.len, strlen("job 42 not found"));
	assert_memory_equal(out.u.error.message.ptr, "job 42 not found", out.u.error.message.len);
	finish(&out, &wire);
}

static void test_encode_error_truncates_long_text_on_a_utf8_boundary(void **state)
{
	/* 1023 ASCII bytes, then a 2-byte "é" that straddles the limit. */
	char long_text[PROTO_ERROR_TEXT_MAX + 64];
	memset(long_text, 'a', PROTO_ERROR_TEXT_MAX - 1);
	strcpy(long_text + PROTO_ERROR_TEXT_MAX - 1, "\xc3\xa9 and more");
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_ok(proto_encode_error(&wire, JM_EINVAL, "%s", long_text));
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_ok_err(proto_decode(wire.data, wire.len, &out, &err), &err);
	assert_int_equal(out.u.error.message.len, PROTO_ERROR_TEXT_MAX - 1);
	finish(&out, &wire);
}

static void test_encode_error_refuses_a_non_negative_code(void **state)
{
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_code(proto_encode_error(&wire, 0, "fine"), JM_EINVAL);
	assert_jm_code(proto_encode_error(&wire, 5, "five"), JM_EINVAL);
	assert_int_equal(wire.len, 0);
	jm_buf_fini(&wire);
}

/* Encoding validates */

static void test_encode_appends_after_existing_bytes(void **state)
{
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_ok(jm_buf_append(&wire, "HDR", 3));
	struct proto_msg in = {.type = PROTO_STATS};
	assert_jm_ok(proto_encode(&in, &wire));
	assert_int_equal(wire.len, 3 + 4);
	assert_memory_equal(wire.data, "HDR", 3);
	struct proto_msg out;
	assert_jm_ok(proto_decode(wire.data + 3, wire.len - 3, &out, NULL));
	finish(&out, &wire);
}

static void test_encode_refuses_an_invalid_name_and_leaves_the_buffer_alone(void **state)
{
	proto_name queues[1] = {"has space"};
	struct proto_msg in = {.type = PROTO_FETCH};
	strcpy(in.u.fetch.worker_id, "w");
	in.u.fetch.queues_count = 1;
	in.u.fetch.queues = queues;
	in.u.fetch.max_jobs = 1;
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_ok(jm_buf_append(&wire, "X", 1));
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	assert_int_equal(wire.len, 1);
	jm_buf_fini(&wire);
}

static void test_encode_refuses_a_name_without_terminator(void **state)
{
	struct proto_msg in = {.type = PROTO_ACK};
	struct proto_ack_item item = {.job_id = 1, .lease = 1};
	memset(in.u.ack.worker_id, 'a', sizeof in.u.ack.worker_id);
	in.u.ack.items_count = 1;
	in.u.ack.items = &item;
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	jm_buf_fini(&wire);
}

static void test_encode_refuses_an_oversized_payload(void **state)
{
	static uint8_t big[PROTO_PAYLOAD_MAX_DEFAULT + 1];
	struct proto_job_spec job = {.queue = "q", .type = "t", .payload = {big, sizeof big}};
	struct proto_msg in = {.type = PROTO_SUBMIT};
	in.u.submit.jobs_count = 1;
	in.u.submit.jobs = &job;
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	job.payload.len = PROTO_PAYLOAD_MAX_DEFAULT;
	assert_jm_ok(proto_encode(&in, &wire));
	jm_buf_fini(&wire);
}

static void test_encode_refuses_an_unknown_type(void **state)
{
	struct proto_msg in = {.type = (enum proto_type)0};
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	in.type = (enum proto_type)(PROTO_TYPE_MAX_ + 1);
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	jm_buf_fini(&wire);
}

static void test_encode_refuses_a_count_without_an_array(void **state)
{
	struct proto_msg in = {.type = PROTO_SUBMITTED};
	in.u.submitted.ids_count = 3;
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	jm_buf_fini(&wire);
}

static void test_encode_refuses_out_of_range_fields(void **state)
{
	struct proto_job_spec job = {.queue = "q", .type = "t", .priority = 1001};
	struct proto_msg in = {.type = PROTO_SUBMIT};
	in.u.submit.jobs_count = 1;
	in.u.submit.jobs = &job;
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	job.priority = 0;
	job.max_attempts = PROTO_ATTEMPTS_MAX + 1;
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	in.u.submit.jobs_count = 0;
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	assert_int_equal(wire.len, 0);
	jm_buf_fini(&wire);
}

static void test_encode_refuses_a_message_over_the_size_limit(void **state)
{
	/* 65 jobs of 1 MiB each: every field is valid, the whole is not. */
	enum { JOBS = (PROTO_MESSAGE_MAX / PROTO_PAYLOAD_MAX_DEFAULT) + 1 };
	uint8_t *payload = calloc(1, PROTO_PAYLOAD_MAX_DEFAULT);
	struct proto_job_spec *jobs = calloc(JOBS, sizeof *jobs);
	assert_non_null(payload);
	assert_non_null(jobs);
	for (int i = 0; i < JOBS; i++) {
		strcpy(jobs[i].queue, "q");
		strcpy(jobs[i].type, "t");
		jobs[i].payload = (struct proto_bytes){payload, PROTO_PAYLOAD_MAX_DEFAULT};
	}
	struct proto_msg in = {.type = PROTO_SUBMIT};
	in.u.submit.jobs_count = JOBS;
	in.u.submit.jobs = jobs;
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	assert_int_equal(wire.len, 0);
	jm_buf_fini(&wire);
	free(jobs);
	free(payload);
}

/* Malformed input */

static void encode_sample(struct jm_buf *wire, int type)
{
	static struct proto_job_spec jobs[3] = {
	    {.queue = "emails",
	     .type = "send",
	     .payload = {binary_payload, 6},
	     .priority = 3,
	     .max_attempts = 4,
	     .delay_ms = 10,
	     .timeout_ms = 20},
	    {.queue = "ocr", .type = "scan", .priority = -3},
	    {.queue = "reports", .type = "daily", .payload = {binary_payload, 2}},
	};
	static proto_name queues[2] = {"emails", "ocr"};
	static struct proto_lease_ref leases[2] = {{42, 9}, {43, 1}};
	struct proto_msg in = {.type = type};
	switch (type) {
	case PROTO_SUBMIT:
		in.u.submit.as_batch = true;
		in.u.submit.jobs_count = 3;
		in.u.submit.jobs = jobs;
		break;
	case PROTO_FETCH:
		strcpy(in.u.fetch.worker_id, "worker-1");
		in.u.fetch.slot = 2;
		in.u.fetch.queues_count = 2;
		in.u.fetch.queues = queues;
		in.u.fetch.max_jobs = 10;
		in.u.fetch.wait_ms = 5000;
		break;
	case PROTO_HEARTBEAT:
		strcpy(in.u.heartbeat.worker_id, "worker-1");
		in.u.heartbeat.host = text("host-a");
		in.u.heartbeat.pid = 99;
		in.u.heartbeat.concurrency = 4;
		in.u.heartbeat.queues_count = 2;
		in.u.heartbeat.queues = queues;
		in.u.heartbeat.leases_count = 2;
		in.u.heartbeat.leases = leases;
		break;
	default:
		fail_msg("no sample for type %d", type);
	}
	jm_buf_init(wire);
	assert_jm_ok(proto_encode(&in, wire));
}

/* Every proper prefix must fail with a code, an error text, and out zeroed. */
static void assert_every_prefix_fails(int type)
{
	struct jm_buf wire;
	encode_sample(&wire, type);
	for (size_t len = 0; len < wire.len; len++) {
		struct proto_msg out;
		memset(&out, 0xa5, sizeof out);
		struct jm_err err = {0};
		int rc = decode_copy(wire.data, len, &out, &err);
		if (rc == 0)
			fail_msg("a %zu-byte prefix of a %zu-byte %s decoded", len, wire.len,
			         proto_type_name(type));
		assert_int_equal(rc, JM_EPROTO);
		assert_int_equal(err.code, rc);
		assert_true(err.msg[0] != '\0');
		assert_true(is_zeroed(&out, sizeof out));
	}
	struct proto_msg out;
	assert_jm_ok(decode_copy(wire.data, wire.len, &out, NULL));
	jm_buf_fini(&wire);
}

static void test_decode_rejects_truncated_submit(void **state)
{
	assert_every_prefix_fails(PROTO_SUBMIT);
}

static void test_decode_rejects_truncated_fetch(void **state)
{
	assert_every_prefix_fails(PROTO_FETCH);
}

static void test_decode_rejects_truncated_heartbeat(void **state)
{
	assert_every_prefix_fails(PROTO_HEARTBEAT);
}

static void test_decode_rejects_a_wrong_type_in_each_submit_field(void **state)
{
	static const char *const field_names[7] = {"queue name", "type name",    "payload",
	                                           "priority",   "max_attempts", "delay_ms",
	                                           "timeout_ms"};
	for (int field = 0; field < 7; field++) {
		struct jm_buf b;
		jm_buf_init(&b);
		mp_envelope(&b, PROTO_VERSION, PROTO_SUBMIT);
		mp_array(&b, 2);
		mp_bool(&b, false);
		mp_array(&b, 2);
		struct raw_job good = raw_job_default();
		struct raw_job bad = raw_job_default();
		bad.nil_field = field;
		mp_job(&b, &good);
		mp_job(&b, &bad);
		struct proto_msg out;
		struct jm_err err = {0};
		assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EPROTO);
		char expected[128];
		snprintf(expected, sizeof expected, "submit: job 1: %s must be",
		         field_names[field]);
		if (strncmp(err.msg, expected, strlen(expected)) != 0)
			fail_msg("field %d: got \"%s\", expected it to start \"%s\"", field,
			         err.msg, expected);
		assert_non_null(strstr(err.msg, "got nil"));
		jm_buf_fini(&b);
	}
}

static void test_decode_rejects_a_wrong_type_in_each_fail_item_field(void **state)
{
	for (int field = 0; field < 5; field++) {
		struct jm_buf b;
		jm_buf_init(&b);
		mp_envelope(&b, PROTO_VERSION, PROTO_FAIL);
		mp_array(&b, 2);
		mp_str(&b, "w1");
		mp_array(&b, 1);
		mp_array(&b, 5);
		for (int i = 0; i < 5; i++) {
			if (i == field)
				mp_array(&b, 0); /* an array where a scalar belongs */
			else if (i < 2)
				mp_uint(&b, 7);
			else if (i == 2)
				mp_str(&b, "boom");
			else
				mp_bool(&b, false);
		}
		struct proto_msg out;
		struct jm_err err = {0};
		assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EPROTO);
		assert_non_null(strstr(err.msg, "fail: item 0: "));
		assert_non_null(strstr(err.msg, "got an array"));
		jm_buf_fini(&b);
	}
}

static void test_decode_rejects_a_float_where_an_integer_belongs(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_STATUS);
	mp_array(&b, 1);
	mp_byte(&b, 0xcb); /* float64 1.0 */
	mp_be(&b, 0x3ff0000000000000ull, 8);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EPROTO);
	assert_string_equal(err.msg, "status: job_id must be an integer, got a float");
	jm_buf_fini(&b);
}

static void test_decode_rejects_a_negative_number_for_an_unsigned_field(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_WAIT);
	mp_array(&b, 2);
	mp_uint(&b, 1);
	mp_int(&b, -5);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EINVAL);
	assert_non_null(strstr(err.msg, "wait: timeout_ms -5 is out of range"));
	jm_buf_fini(&b);
}

static void test_decode_rejects_a_value_too_big_for_its_field(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_WAIT);
	mp_array(&b, 2);
	mp_uint(&b, 1);
	mp_uint(&b, 1ull << 32);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EINVAL);
	assert_string_equal(err.msg,
	                    "wait: timeout_ms 4294967296 is out of range: use 0..4294967295");
	jm_buf_fini(&b);
}

static void test_decode_rejects_an_unknown_version(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, 7, PROTO_STATS);
	mp_array(&b, 0);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EVERSION);
	assert_string_equal(err.msg,
	                    "protocol version 7 is not supported: this broker speaks version 1");
	jm_buf_fini(&b);
}

static void test_decode_reports_the_version_before_the_envelope_shape(void **state)
{
	/* A future envelope [2, {...}] must still read as "wrong version". */
	static const uint8_t future[] = {0x92, 0x02, 0x80};
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(future, sizeof future, &out, &err), JM_EVERSION);
}

static void test_decode_rejects_an_unknown_type(void **state)
{
	uint64_t types[3] = {0, PROTO_TYPE_MAX_ + 1, 1ull << 40};
	for (int i = 0; i < 3; i++) {
		struct jm_buf b;
		jm_buf_init(&b);
		mp_envelope(&b, PROTO_VERSION, types[i]);
		mp_array(&b, 0);
		struct proto_msg out;
		struct jm_err err = {0};
		assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EUNSUPPORTED);
		assert_non_null(strstr(err.msg, "is not supported"));
		jm_buf_fini(&b);
	}
}

static void test_decode_rejects_an_oversized_payload(void **state)
{
	size_t big_len = 2u << 20;
	char *big = malloc(big_len);
	assert_non_null(big);
	memset(big, 'x', big_len);
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_SUBMIT);
	mp_array(&b, 2);
	mp_bool(&b, false);
	mp_array(&b, 1);
	struct raw_job j = raw_job_default();
	j.payload = big;
	j.payload_len = big_len;
	mp_job(&b, &j);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_ETOOBIG);
	assert_string_equal(err.msg,
	                    "submit: job 0: payload is 2097152 bytes: at most 1048576 allowed");
	jm_buf_fini(&b);
	free(big);
}

static void test_decode_rejects_an_invalid_queue_name(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_SUBMIT);
	mp_array(&b, 2);
	mp_bool(&b, true);
	mp_array(&b, 4);
	for (int i = 0; i < 4; i++) {
		struct raw_job j = raw_job_default();
		if (i == 3)
			j.queue = "a b";
		mp_job(&b, &j);
	}
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EBADNAME);
	assert_string_equal(err.msg, "submit: job 3: queue name \"a b\" is invalid: use 1-64 of "
	                             "A-Z a-z 0-9 . _ -");
	jm_buf_fini(&b);
}

static void test_decode_rejects_names_that_are_empty_too_long_or_escaping(void **state)
{
	char long_name[PROTO_NAME_MAX + 2];
	memset(long_name, 'n', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	const char *names[] = {"", long_name, "tab\there", "semi;colon", "\xc3\xa9t\xc3\xa9"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct jm_buf b;
		jm_buf_init(&b);
		mp_envelope(&b, PROTO_VERSION, PROTO_SUBMIT);
		mp_array(&b, 2);
		mp_bool(&b, false);
		mp_array(&b, 1);
		struct raw_job j = raw_job_default();
		j.type = names[i];
		mp_job(&b, &j);
		struct proto_msg out;
		struct jm_err err = {0};
		assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EBADNAME);
		assert_non_null(strstr(err.msg, "type name"));
		assert_null(strchr(err.msg, '\t'));
		jm_buf_fini(&b);
	}
}

static void test_decode_accepts_a_name_of_exactly_64_characters(void **state)
{
	char name[PROTO_NAME_MAX + 1];
	memset(name, 'n', PROTO_NAME_MAX);
	name[PROTO_NAME_MAX] = '\0';
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_ACK);
	mp_array(&b, 2);
	mp_str(&b, name);
	mp_array(&b, 1);
	mp_array(&b, 3);
	mp_uint(&b, 1);
	mp_uint(&b, 1);
	mp_str(&b, "");
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_ok_err(proto_decode(b.data, b.len, &out, &err), &err);
	assert_string_equal(out.u.ack.worker_id, name);
	proto_msg_fini(&out);
	jm_buf_fini(&b);
}

static void test_decode_rejects_a_priority_out_of_range(void **state)
{
	int64_t bad[2] = {PROTO_PRIORITY_MIN - 1, PROTO_PRIORITY_MAX + 1};
	for (int i = 0; i < 2; i++) {
		struct jm_buf b;
		jm_buf_init(&b);
		mp_envelope(&b, PROTO_VERSION, PROTO_SUBMIT);
		mp_array(&b, 2);
		mp_bool(&b, false);
		mp_array(&b, 1);
		struct raw_job j = raw_job_default();
		j.priority = bad[i];
		mp_job(&b, &j);
		struct proto_msg out;
		struct jm_err err = {0};
		assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EINVAL);
		assert_non_null(strstr(err.msg, "out of range: use -1000..1000"));
		jm_buf_fini(&b);
	}
}

static void test_decode_rejects_max_attempts_over_the_limit(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_SUBMIT);
	mp_array(&b, 2);
	mp_bool(&b, false);
	mp_array(&b, 1);
	struct raw_job j = raw_job_default();
	j.max_attempts = PROTO_ATTEMPTS_MAX + 1;
	mp_job(&b, &j);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EINVAL);
	assert_string_equal(err.msg,
	                    "submit: job 0: max_attempts 1001 is out of range: use 0..1000");
	jm_buf_fini(&b);
}

static void test_decode_rejects_a_submit_without_jobs(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_SUBMIT);
	mp_array(&b, 2);
	mp_bool(&b, false);
	mp_array(&b, 0);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EINVAL);
	assert_string_equal(err.msg, "submit: 0 jobs given: use 1..10000");
	jm_buf_fini(&b);
}

static void test_decode_rejects_too_many_queues_in_a_fetch(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_FETCH);
	mp_array(&b, 5);
	mp_str(&b, "w");
	mp_uint(&b, 0);
	mp_array(&b, PROTO_QUEUES_PER_FETCH_MAX + 1);
	for (int i = 0; i <= PROTO_QUEUES_PER_FETCH_MAX; i++)
		mp_str(&b, "q");
	mp_uint(&b, 1);
	mp_uint(&b, 0);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EINVAL);
	assert_string_equal(err.msg, "fetch: 33 queues given: use 1..32");
	jm_buf_fini(&b);
}

static void test_decode_rejects_a_result_over_the_limit(void **state)
{
	size_t big_len = PROTO_RESULT_MAX + 1;
	char *big = calloc(1, big_len);
	assert_non_null(big);
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_ACK);
	mp_array(&b, 2);
	mp_str(&b, "w");
	mp_array(&b, 1);
	mp_array(&b, 3);
	mp_uint(&b, 1);
	mp_uint(&b, 1);
	mp_bin(&b, big, big_len);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_ETOOBIG);
	assert_string_equal(err.msg,
	                    "ack: item 0: result is 1048577 bytes: at most 1048576 allowed");
	jm_buf_fini(&b);
	free(big);
}

static void test_decode_rejects_a_missing_body_field(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_WAIT);
	mp_array(&b, 1);
	mp_uint(&b, 42);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EPROTO);
	assert_string_equal(err.msg, "wait: has 1 fields: expected [job_id, timeout_ms]");
	jm_buf_fini(&b);
}

static void test_decode_rejects_a_body_that_is_not_an_array(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_STATS);
	mp_str(&b, "body");
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EPROTO);
	assert_string_equal(err.msg, "stats: must be an array [], got a string");
	jm_buf_fini(&b);
}

static void test_decode_accepts_extra_trailing_fields(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_array(&b, 4); /* an envelope field from the future */
	mp_uint(&b, PROTO_VERSION);
	mp_uint(&b, PROTO_SUBMIT);
	mp_array(&b, 3);
	mp_bool(&b, true);
	mp_array(&b, 1);
	mp_array(&b, 9);
	mp_str(&b, "q");
	mp_str(&b, "t");
	mp_str(&b, "payload as str");
	mp_int(&b, -2);
	mp_uint(&b, 2);
	mp_uint(&b, 3);
	mp_uint(&b, 4);
	mp_str(&b, "new field");
	mp_array(&b, 0);
	mp_str(&b, "new body field");
	mp_nil(&b);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_ok_err(proto_decode(b.data, b.len, &out, &err), &err);
	assert_int_equal(out.u.submit.jobs_count, 1);
	assert_int_equal(out.u.submit.jobs[0].priority, -2);
	assert_int_equal(out.u.submit.jobs[0].payload.len, strlen("payload as str"));
	assert_true(out.u.submit.jobs[0].timeout_ms == 4);
	proto_msg_fini(&out);
	jm_buf_fini(&b);
}

static void test_decode_rejects_an_array_claiming_50_million_elements_in_6_bytes(void **state)
{
	static const uint8_t bomb[6] = {0xdd, 0x02, 0xfa, 0xf0, 0x80, 0x01};
	static const uint8_t nested[] = {0x93, 0x01, 0x02, 0xdd, 0x02, 0xfa, 0xf0, 0x80, 0x01};
	static const uint8_t map_bomb[] = {0x93, 0x01, 0x02, 0xdf, 0x02, 0xfa, 0xf0, 0x80, 0x01};
	const struct {
		const uint8_t *p;
		size_t len;
	} cases[3] = {{bomb, sizeof bomb}, {nested, sizeof nested}, {map_bomb, sizeof map_bomb}};
	for (int i = 0; i < 3; i++) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		struct proto_msg out;
		struct jm_err err = {0};
		assert_jm_code(decode_copy(cases[i].p, cases[i].len, &out, &err), JM_EPROTO);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
		assert_true(ms < 100);
		assert_non_null(strstr(err.msg, "50000000 entries cannot fit"));
	}
}

static void test_decode_rejects_deep_nesting(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_STATS);
	for (int i = 0; i < 20; i++)
		mp_array(&b, 1);
	mp_array(&b, 0);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EPROTO);
	assert_non_null(strstr(err.msg, "nested more than 8 deep"));
	jm_buf_fini(&b);

	/* A hundred thousand levels fail just as fast and use no stack. */
	size_t deep = 100000;
	uint8_t *bytes = malloc(deep + 1);
	assert_non_null(bytes);
	memset(bytes, 0x91, deep);
	bytes[deep] = 0x90;
	assert_jm_code(decode_copy(bytes, deep + 1, &out, &err), JM_EPROTO);
	free(bytes);
}

static void test_decode_rejects_trailing_garbage(void **state)
{
	struct jm_buf wire;
	encode_sample(&wire, PROTO_FETCH);
	assert_jm_ok(jm_buf_append(&wire, "\x00", 1));
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(wire.data, wire.len, &out, &err), JM_EPROTO);
	assert_non_null(strstr(err.msg, "1 bytes of trailing garbage"));
	jm_buf_fini(&wire);
}

static void test_decode_rejects_an_empty_buffer(void **state)
{
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(proto_decode(NULL, 0, &out, &err), JM_EPROTO);
	assert_string_equal(err.msg, "empty message");
	assert_true(is_zeroed(&out, sizeof out));
}

static void test_decode_rejects_a_message_over_the_size_limit(void **state)
{
	size_t len = PROTO_MESSAGE_MAX + 1;
	uint8_t *bytes = calloc(1, len);
	assert_non_null(bytes);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(proto_decode(bytes, len, &out, &err), JM_ETOOBIG);
	free(bytes);
}

static void test_decode_rejects_a_top_level_that_is_not_an_array(void **state)
{
	static const uint8_t scalar[] = {0x01};
	static const uint8_t empty_array[] = {0x90};
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(scalar, 1, &out, &err), JM_EPROTO);
	assert_non_null(strstr(err.msg, "got a positive integer"));
	assert_jm_code(decode_copy(empty_array, 1, &out, &err), JM_EPROTO);
	assert_non_null(strstr(err.msg, "got an empty array"));
}

static void test_decode_works_without_an_error_struct(void **state)
{
	static const uint8_t bad[] = {0x93, 0x07, 0x0d, 0x90};
	struct proto_msg out;
	assert_jm_code(proto_decode(bad, sizeof bad, &out, NULL), JM_EVERSION);
}

static void test_decode_rejects_a_result_without_has_result(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_JOB);
	mp_array(&b, 13);
	mp_uint(&b, 1);
	mp_str(&b, "q");
	mp_str(&b, "t");
	mp_uint(&b, PROTO_STATE_ACTIVE);
	mp_int(&b, 0);
	mp_uint(&b, 1);
	mp_uint(&b, 3);
	mp_uint(&b, 10);
	mp_uint(&b, 11);
	mp_uint(&b, 0);
	mp_str(&b, "");
	mp_bool(&b, false);
	mp_bin(&b, "x", 1);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EINVAL);
	assert_non_null(strstr(err.msg, "has_result is false"));
	jm_buf_fini(&b);
}

static void test_fini_accepts_null_and_zeroed_messages(void **state)
{
	proto_msg_fini(NULL);
	struct proto_msg zeroed = {0};
	proto_msg_fini(&zeroed);
	assert_true(is_zeroed(&zeroed, sizeof zeroed));
}

/* xorshift64*: a fixed sequence on every platform, so a failure replays. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void test_decode_survives_random_bytes(void **state)
{
	uint64_t seed = 0x6a6f626d657368ull;
	uint8_t bytes[96];
	for (int round = 0; round < 20000; round++) {
		size_t len = rng_next(&seed) % sizeof bytes;
		for (size_t i = 0; i < len; i++)
			bytes[i] = (uint8_t)rng_next(&seed);
		/* Half the rounds start like a real envelope, to get deeper. */
		if (round % 2 == 0 && len >= 3) {
			bytes[0] = 0x93;
			bytes[1] = 0x01;
			bytes[2] = (uint8_t)(1 + rng_next(&seed) % PROTO_TYPE_MAX_);
		}
		struct proto_msg out;
		struct jm_err err = {0};
		int rc = decode_copy(bytes, len, &out, &err);
		if (rc != 0)
			assert_true(err.code == rc && err.msg[0] != '\0');
	}
}

static void test_decode_survives_mutated_valid_messages(void **state)
{
	uint64_t seed = 42;
	int types[3] = {PROTO_SUBMIT, PROTO_FETCH, PROTO_HEARTBEAT};
	int accepted = 0;
	for (int t = 0; t < 3; t++) {
		struct jm_buf wire;
		encode_sample(&wire, types[t]);
		uint8_t *copy = malloc(wire.len);
		assert_non_null(copy);
		for (int round = 0; round < 5000; round++) {
			memcpy(copy, wire.data, wire.len);
			int flips = 1 + (int)(rng_next(&seed) % 4);
			for (int i = 0; i < flips; i++)
				copy[rng_next(&seed) % wire.len] = (uint8_t)rng_next(&seed);
			size_t len = wire.len - (rng_next(&seed) % 4 == 0 ? 1 : 0);
			struct proto_msg out;
			if (decode_copy(copy, len, &out, NULL) == 0)
				accepted++;
		}
		free(copy);
		jm_buf_fini(&wire);
	}
	/* Some mutations only change values: the loop must reach success. */
	assert_true(accepted > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_round_trips),
	    cmocka_unit_test(test_submit_round_trips_with_every_field_set),
	    cmocka_unit_test(test_submitted_round_trips),
	    cmocka_unit_test(test_fetch_round_trips),
	    cmocka_unit_test(test_jobs_round_trips),
	    cmocka_unit_test(test_ack_round_trips),
	    cmocka_unit_test(test_fail_round_trips),
	    cmocka_unit_test(test_settled_round_trips),
	    cmocka_unit_test(test_status_and_result_round_trip),
	    cmocka_unit_test(test_wait_round_trips),
	    cmocka_unit_test(test_job_round_trips),
	    cmocka_unit_test(test_stats_round_trips_with_an_empty_body),
	    cmocka_unit_test(test_stats_reply_round_trips),
	    cmocka_unit_test(test_heartbeat_round_trips),
	    cmocka_unit_test(test_heartbeat_reply_round_trips),
	    cmocka_unit_test(test_empty_lists_decode_as_null_arrays),
	    cmocka_unit_test(test_decoded_bytes_borrow_from_the_input_buffer),
	    cmocka_unit_test(test_encode_error_formats_code_and_text),
	    cmocka_unit_test(test_encode_error_truncates_long_text_on_a_utf8_boundary),
	    cmocka_unit_test(test_encode_error_refuses_a_non_negative_code),
	    cmocka_unit_test(test_encode_appends_after_existing_bytes),
	    cmocka_unit_test(test_encode_refuses_an_invalid_name_and_leaves_the_buffer_alone),
	    cmocka_unit_test(test_encode_refuses_a_name_without_terminator),
	    cmocka_unit_test(test_encode_refuses_an_oversized_payload),
	    cmocka_unit_test(test_encode_refuses_an_unknown_type),
	    cmocka_unit_test(test_encode_refuses_a_count_without_an_array),
	    cmocka_unit_test(test_encode_refuses_out_of_range_fields),
	    cmocka_unit_test(test_encode_refuses_a_message_over_the_size_limit),
	    cmocka_unit_test(test_decode_rejects_truncated_submit),
	    cmocka_unit_test(test_decode_rejects_truncated_fetch),
	    cmocka_unit_test(test_decode_rejects_truncated_heartbeat),
	    cmocka_unit_test(test_decode_rejects_a_wrong_type_in_each_submit_field),
	    cmocka_unit_test(test_decode_rejects_a_wrong_type_in_each_fail_item_field),
	    cmocka_unit_test(test_decode_rejects_a_float_where_an_integer_belongs),
	    cmocka_unit_test(test_decode_rejects_a_negative_number_for_an_unsigned_field),
	    cmocka_unit_test(test_decode_rejects_a_value_too_big_for_its_field),
	    cmocka_unit_test(test_decode_rejects_an_unknown_version),
	    cmocka_unit_test(test_decode_reports_the_version_before_the_envelope_shape),
	    cmocka_unit_test(test_decode_rejects_an_unknown_type),
	    cmocka_unit_test(test_decode_rejects_an_oversized_payload),
	    cmocka_unit_test(test_decode_rejects_an_invalid_queue_name),
	    cmocka_unit_test(test_decode_rejects_names_that_are_empty_too_long_or_escaping),
	    cmocka_unit_test(test_decode_accepts_a_name_of_exactly_64_characters),
	    cmocka_unit_test(test_decode_rejects_a_priority_out_of_range),
	    cmocka_unit_test(test_decode_rejects_max_attempts_over_the_limit),
	    cmocka_unit_test(test_decode_rejects_a_submit_without_jobs),
	    cmocka_unit_test(test_decode_rejects_too_many_queues_in_a_fetch),
	    cmocka_unit_test(test_decode_rejects_a_result_over_the_limit),
	    cmocka_unit_test(test_decode_rejects_a_missing_body_field),
	    cmocka_unit_test(test_decode_rejects_a_body_that_is_not_an_array),
	    cmocka_unit_test(test_decode_accepts_extra_trailing_fields),
	    cmocka_unit_test(test_decode_rejects_an_array_claiming_50_million_elements_in_6_bytes),
	    cmocka_unit_test(test_decode_rejects_deep_nesting),
	    cmocka_unit_test(test_decode_rejects_trailing_garbage),
	    cmocka_unit_test(test_decode_rejects_an_empty_buffer),
	    cmocka_unit_test(test_decode_rejects_a_message_over_the_size_limit),
	    cmocka_unit_test(test_decode_rejects_a_top_level_that_is_not_an_array),
	    cmocka_unit_test(test_decode_works_without_an_error_struct),
	    cmocka_unit_test(test_decode_rejects_a_result_without_has_result),
	    cmocka_unit_test(test_fini_accepts_null_and_zeroed_messages),
	    cmocka_unit_test(test_decode_survives_random_bytes),
	    cmocka_unit_test(test_decode_survives_mutated_valid_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
