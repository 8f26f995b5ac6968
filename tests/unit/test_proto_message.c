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
#include "proto_asserts.h"

/* A tiny msgpack writer, independent of proto/, for building bad input. */

static void mp_raw(struct jm_buf *b, const void *p, size_t n)
{
	assert_jm_ok(jm_buf_append(b, p, n));
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

/* A JOB body (and JOB_LIST item) written by hand: 17 fields, or the first
 * fields_count of them. */
struct raw_job_info {
	const char *queue;
	uint64_t state;
	const char *result; /* written as bin, with has_result false */
	uint64_t progress_done;
	uint64_t progress_total;
	size_t progress_message_len; /* that many 'p' bytes */
	uint32_t fields_count;
};

static struct raw_job_info raw_job_info_default(void)
{
	return (struct raw_job_info){.queue = "q",
	                             .state = PROTO_STATE_ACTIVE,
	                             .result = "",
	                             .progress_done = 1,
	                             .progress_total = 2,
	                             .progress_message_len = 3,
	                             .fields_count = 17};
}

static void mp_job_info(struct jm_buf *b, const struct raw_job_info *j)
{
	mp_array(b, j->fields_count);
	for (uint32_t field = 0; field < j->fields_count; field++) {
		switch (field) {
		case 1:
			mp_str(b, j->queue);
			break;
		case 2:
			mp_str(b, "t");
			break;
		case 3:
			mp_uint(b, j->state);
			break;
		case 4:
			mp_int(b, -1);
			break;
		case 10:
			mp_str(b, "");
			break;
		case 11:
			mp_bool(b, false);
			break;
		case 12:
			mp_bin(b, j->result, strlen(j->result));
			break;
		case 14:
			mp_uint(b, j->progress_done);
			break;
		case 15:
			mp_uint(b, j->progress_total);
			break;
		case 16: {
			char *msg = malloc(j->progress_message_len + 1);
			assert_non_null(msg);
			memset(msg, 'p', j->progress_message_len);
			mp_strn(b, msg, j->progress_message_len);
			free(msg);
			break;
		}
		default:
			mp_uint(b, 10 + field);
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
	    {.attrs.queue = "emails",
	     .attrs.type = "send.welcome",
	     .payload = {binary_payload, sizeof binary_payload},
	     .attrs.priority = -1000,
	     .attrs.max_attempts = 1000,
	     .delay_ms = UINT64_MAX,
	     .attrs.timeout_ms = 123456789012ull},
	    {.attrs.queue = "Q-1_x.y",
	     .attrs.type = "t",
	     .payload = {NULL, 0},
	     .attrs.priority = 1000,
	     .attrs.max_attempts = 0,
	     .delay_ms = 1,
	     .attrs.timeout_ms = 0},
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
		assert_string_equal(a->attrs.queue, b->attrs.queue);
		assert_string_equal(a->attrs.type, b->attrs.type);
		assert_bytes_equal(a->payload, b->payload);
		assert_int_equal(a->attrs.priority, b->attrs.priority);
		assert_int_equal(a->attrs.max_attempts, b->attrs.max_attempts);
		assert_true(a->delay_ms == b->delay_ms);
		assert_true(a->attrs.timeout_ms == b->attrs.timeout_ms);
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
	in.u.fetch.instance = UINT64_MAX - 5;
	in.u.fetch.slot = 3;
	in.u.fetch.queues_count = 3;
	in.u.fetch.queues = queues;
	in.u.fetch.max_jobs = 16;
	in.u.fetch.wait_ms = 30000;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_string_equal(out.u.fetch.worker_id, "worker-7f3a");
	assert_true(out.u.fetch.instance == UINT64_MAX - 5);
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
	     .attrs.queue = "emails",
	     .attrs.type = "send",
	     .payload = {binary_payload, sizeof binary_payload},
	     .attrs.timeout_ms = 60000},
	    {.job_id = UINT64_MAX,
	     .lease = UINT64_MAX,
	     .attempt = UINT32_MAX,
	     .attrs.queue = "q",
	     .attrs.type = "t",
	     .payload = {NULL, 0},
	     .attrs.timeout_ms = 1},
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
		assert_string_equal(a->attrs.queue, b->attrs.queue);
		assert_string_equal(a->attrs.type, b->attrs.type);
		assert_bytes_equal(a->payload, b->payload);
		assert_true(a->attrs.timeout_ms == b->attrs.timeout_ms);
	}
	finish(&out, &wire);
}

static void test_settle_round_trips(void **state)
{
	struct proto_settle_item items[3] = {
	    {.job_id = 42,
	     .lease = 0x9abcdef012345678ull,
	     .outcome = PROTO_SETTLE_COMPLETED,
	     .data = {binary_payload, sizeof binary_payload}},
	    {.job_id = 43,
	     .lease = 1,
	     .outcome = PROTO_SETTLE_FAILED,
	     .data = text("timeout calling api.example.com"),
	     .permanent = true},
	    {.job_id = 44, .lease = 2, .outcome = PROTO_SETTLE_RELEASED, .data = {NULL, 0}},
	};
	struct proto_msg in = {.type = PROTO_SETTLE};
	strcpy(in.u.settle.worker_id, "w1");
	in.u.settle.instance = UINT64_MAX;
	in.u.settle.items_count = 3;
	in.u.settle.items = items;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_string_equal(out.u.settle.worker_id, "w1");
	assert_true(out.u.settle.instance == UINT64_MAX);
	assert_int_equal(out.u.settle.items_count, 3);
	for (int i = 0; i < 3; i++) {
		const struct proto_settle_item *a = &items[i], *o = &out.u.settle.items[i];
		assert_true(a->job_id == o->job_id && a->lease == o->lease);
		assert_int_equal(a->outcome, o->outcome);
		assert_bytes_equal(a->data, o->data);
		assert_int_equal(a->permanent, o->permanent);
	}
	finish(&out, &wire);
}

static void test_encode_refuses_a_settle_without_an_instance_or_a_permanent_release(void **state)
{
	struct proto_settle_item item = {.job_id = 1, .lease = 1, .outcome = PROTO_SETTLE_RELEASED};
	struct proto_msg in = {.type = PROTO_SETTLE};
	strcpy(in.u.settle.worker_id, "w1");
	in.u.settle.items_count = 1;
	in.u.settle.items = &item;
	struct jm_err err = {0};
	assert_jm_code(proto_check(&in, &err), JM_EINVAL);
	assert_non_null(strstr(err.msg, "instance 0 is out of range"));
	in.u.settle.instance = 7;
	item.permanent = true;
	assert_jm_code(proto_check(&in, &err), JM_EINVAL);
	assert_non_null(strstr(err.msg, "only a failed item (outcome 2) may be permanent"));
}

static void test_decode_refuses_version_1_and_its_ack_and_fail_saying_upgrade(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, 1, 6);
	mp_array(&b, 0);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EVERSION);
	assert_non_null(strstr(err.msg, "protocol version 1 is not supported"));
	assert_non_null(strstr(err.msg, "upgrade"));
	jm_buf_fini(&b);
	for (int type = 6; type <= 7; type++) {
		jm_buf_init(&b);
		mp_envelope(&b, PROTO_VERSION, type);
		mp_array(&b, 0);
		assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EUNSUPPORTED);
		assert_non_null(strstr(err.msg, "was replaced by settle"));
		assert_non_null(strstr(err.msg, "upgrade the worker"));
		jm_buf_fini(&b);
	}
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
	strcpy(j->attrs.queue, "reports");
	strcpy(j->attrs.type, "daily");
	j->state = PROTO_STATE_COMPLETED;
	j->attrs.priority = -7;
	j->attempt = 3;
	j->attrs.max_attempts = 5;
	j->attrs.created_us = 1700000000000000ull;
	j->updated_us = 1700000000000001ull;
	j->run_at_us = 1700000000000002ull;
	j->last_error = text("first try timed out");
	j->has_result = true;
	j->result = (struct proto_bytes){binary_payload, sizeof binary_payload};
	j->attrs.batch_id = 0xb0b0b0b0b0ull;
	j->progress_done = 7;
	j->progress_total = UINT64_MAX;
	j->progress_message = text("writing section about/team");
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	const struct proto_job_info *o = &out.u.job;
	assert_true(o->job_id == 42);
	assert_string_equal(o->attrs.queue, "reports");
	assert_string_equal(o->attrs.type, "daily");
	assert_int_equal(o->state, PROTO_STATE_COMPLETED);
	assert_int_equal(o->attrs.priority, -7);
	assert_int_equal(o->attempt, 3);
	assert_int_equal(o->attrs.max_attempts, 5);
	assert_true(o->attrs.created_us == j->attrs.created_us && o->updated_us == j->updated_us &&
	            o->run_at_us == j->run_at_us);
	assert_bytes_equal(j->last_error, o->last_error);
	assert_true(o->has_result);
	assert_bytes_equal(j->result, o->result);
	assert_true(o->attrs.batch_id == j->attrs.batch_id);
	assert_true(o->progress_done == 7 && o->progress_total == UINT64_MAX);
	assert_bytes_equal(j->progress_message, o->progress_message);
	finish(&out, &wire);
}

static void test_stats_round_trips_with_an_empty_body(void **state)
{
	struct proto_msg in = {.type = PROTO_STATS};
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	static const uint8_t expected[] = {0x93, PROTO_VERSION, 0x0d, 0x90};
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
	h->instance = 0x9e3779b97f4a7c15ull;
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
	assert_true(o->instance == 0x9e3779b97f4a7c15ull);
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
	struct proto_settle_item item = {
	    .job_id = 1, .lease = 1, .outcome = PROTO_SETTLE_COMPLETED, .data = text("done")};
	struct proto_msg in = {.type = PROTO_SETTLE};
	strcpy(in.u.settle.worker_id, "w");
	in.u.settle.instance = 1;
	in.u.settle.items_count = 1;
	in.u.settle.items = &item;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	const uint8_t *p = out.u.settle.items[0].data.ptr;
	assert_true(p >= wire.data && p + 4 <= wire.data + wire.len);
	finish(&out, &wire);
}

static void test_cancel_and_batch_status_round_trip(void **state)
{
	int types[2] = {PROTO_CANCEL, PROTO_BATCH_STATUS};
	for (int i = 0; i < 2; i++) {
		struct proto_msg in = {.type = types[i]};
		in.u.job_ref.job_id = UINT64_MAX - 1;
		struct jm_buf wire;
		struct proto_msg out;
		round_trip(&in, &wire, &out);
		assert_true(out.u.job_ref.job_id == UINT64_MAX - 1);
		finish(&out, &wire);
	}
}

static void test_workers_and_batches_round_trip_with_an_empty_body(void **state)
{
	int types[2] = {PROTO_WORKERS, PROTO_BATCHES};
	for (int i = 0; i < 2; i++) {
		struct proto_msg in = {.type = types[i]};
		struct jm_buf wire;
		struct proto_msg out;
		round_trip(&in, &wire, &out);
		const uint8_t expected[] = {0x93, PROTO_VERSION, (uint8_t)types[i], 0x90};
		assert_int_equal(wire.len, sizeof expected);
		assert_memory_equal(wire.data, expected, sizeof expected);
		finish(&out, &wire);
	}
}

static void test_hello_carries_an_optional_token_and_an_empty_hello_decodes(void **state)
{
	/* A HELLO without a token: [version, 25, []]. */
	const uint8_t empty[] = {0x93, PROTO_VERSION, PROTO_HELLO, 0x90};
	struct proto_msg out;
	struct jm_err err = {0};
	assert_int_equal(proto_decode(empty, sizeof empty, &out, &err), 0);
	assert_int_equal(out.u.hello.token.len, 0);
	proto_msg_fini(&out);
	struct proto_msg in = {.type = PROTO_HELLO};
	in.u.hello.token = (struct proto_bytes){(const uint8_t *)"abc", 3};
	struct jm_buf wire;
	round_trip(&in, &wire, &out);
	assert_int_equal(out.u.hello.token.len, 3);
	assert_memory_equal(out.u.hello.token.ptr, "abc", 3);
	finish(&out, &wire);
	/* A token past PROTO_TOKEN_MAX is refused by name. */
	char big[PROTO_TOKEN_MAX + 1];
	memset(big, 'x', sizeof big);
	in.u.hello.token = (struct proto_bytes){(const uint8_t *)big, sizeof big};
	assert_int_equal(proto_check(&in, &err), JM_ETOOBIG);
	assert_non_null(strstr(jm_err_text(&err), "token"));
}

static void test_workers_reply_round_trips(void **state)
{
	proto_name queues[2] = {"emails", "ocr.high"};
	uint64_t job_ids[3] = {1, 42, UINT64_MAX};
	struct proto_worker_info workers[2] = {
	    {.worker_id = "worker-1",
	     .host = text("pod-7c9f.cluster.local"),
	     .pid = 4242,
	     .concurrency = 8,
	     .queues_count = 2,
	     .queues = queues,
	     .active_jobs = 3,
	     .first_seen_us = 1700000000000000ull,
	     .last_seen_us = 1700000000000001ull,
	     .draining = true,
	     .job_ids_count = 3,
	     .job_ids = job_ids},
	    {.worker_id = "w2",
	     .host = text("h"),
	     .pid = UINT32_MAX,
	     .concurrency = 1,
	     .queues_count = 1,
	     .queues = queues,
	     .active_jobs = 1,
	     .first_seen_us = 5,
	     .last_seen_us = 6,
	     .job_ids_count = 1,
	     .job_ids = job_ids},
	};
	struct proto_msg in = {.type = PROTO_WORKERS_REPLY};
	in.u.workers_reply.workers_count = 2;
	in.u.workers_reply.workers = workers;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_int_equal(out.u.workers_reply.workers_count, 2);
	for (int i = 0; i < 2; i++) {
		const struct proto_worker_info *a = &workers[i],
		                               *o = &out.u.workers_reply.workers[i];
		assert_string_equal(a->worker_id, o->worker_id);
		assert_bytes_equal(a->host, o->host);
		assert_int_equal(a->pid, o->pid);
		assert_int_equal(a->concurrency, o->concurrency);
		assert_int_equal(a->queues_count, o->queues_count);
		for (uint32_t q = 0; q < a->queues_count; q++)
			assert_string_equal(a->queues[q], o->queues[q]);
		assert_int_equal(a->active_jobs, o->active_jobs);
		assert_true(a->first_seen_us == o->first_seen_us &&
		            a->last_seen_us == o->last_seen_us);
		assert_int_equal(a->draining, o->draining);
		assert_int_equal(a->job_ids_count, o->job_ids_count);
		assert_memory_equal(a->job_ids, o->job_ids,
		                    a->job_ids_count * sizeof a->job_ids[0]);
	}
	finish(&out, &wire);
}

static void test_progress_round_trips(void **state)
{
	struct proto_msg in = {.type = PROTO_PROGRESS};
	struct proto_progress *p = &in.u.progress;
	strcpy(p->worker_id, "worker-9");
	p->job_id = 42;
	p->lease = 0x1234567890ull;
	p->done = UINT64_MAX;
	p->total = UINT64_MAX;
	p->message = text("writing section about/team");
	p->instance = 77;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	const struct proto_progress *o = &out.u.progress;
	assert_string_equal(o->worker_id, "worker-9");
	assert_true(o->job_id == 42 && o->lease == p->lease && o->instance == 77);
	assert_true(o->done == UINT64_MAX && o->total == UINT64_MAX);
	assert_bytes_equal(p->message, o->message);
	finish(&out, &wire);
}

static void assert_batch_info_equal(const struct proto_batch_info *a,
                                    const struct proto_batch_info *o)
{
	assert_true(a->batch_id == o->batch_id);
	assert_int_equal(a->state, o->state);
	assert_true(a->total == o->total && a->completed == o->completed &&
	            a->failed == o->failed && a->cancelled == o->cancelled &&
	            a->active == o->active);
	assert_bytes_equal(a->current_operation, o->current_operation);
	assert_int_equal(a->errors_count, o->errors_count);
	for (uint32_t i = 0; i < a->errors_count; i++) {
		assert_true(a->errors[i].job_id == o->errors[i].job_id);
		assert_bytes_equal(a->errors[i].text, o->errors[i].text);
	}
	if (a->errors_count == 0)
		assert_null(o->errors);
	assert_true(a->created_us == o->created_us && a->finished_us == o->finished_us);
}

static void test_batch_round_trips_with_the_most_errors_allowed(void **state)
{
	struct proto_batch_error errors[PROTO_BATCH_ERRORS_MAX];
	for (int i = 0; i < PROTO_BATCH_ERRORS_MAX; i++)
		errors[i] = (struct proto_batch_error){.job_id = 100 + (uint64_t)i,
		                                       .text = text("card declined")};
	struct proto_msg in = {.type = PROTO_BATCH};
	struct proto_batch_info *b = &in.u.batch;
	b->batch_id = 77;
	b->state = PROTO_BATCH_FAILED;
	b->total = 100;
	b->completed = 70;
	b->failed = 20;
	b->cancelled = 10;
	b->active = 1;
	b->current_operation = text("charging card 99");
	b->errors_count = PROTO_BATCH_ERRORS_MAX;
	b->errors = errors;
	b->created_us = 1700000000000000ull;
	b->finished_us = 1700000000000009ull;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_batch_info_equal(b, &out.u.batch);
	finish(&out, &wire);
}

static void test_batches_reply_round_trips(void **state)
{
	struct proto_batch_error errors[1] = {{.job_id = 5, .text = text("timeout")}};
	struct proto_batch_info batches[2] = {
	    {.batch_id = 1,
	     .state = PROTO_BATCH_RUNNING,
	     .total = 3,
	     .completed = 1,
	     .failed = 1,
	     .cancelled = 0,
	     .active = 1,
	     .current_operation = text("step 2"),
	     .errors_count = 1,
	     .errors = errors,
	     .created_us = 10,
	     .finished_us = 0},
	    {.batch_id = UINT64_MAX,
	     .state = PROTO_BATCH_COMPLETED,
	     .total = 1,
	     .completed = 1,
	     .created_us = 11,
	     .finished_us = 12},
	};
	struct proto_msg in = {.type = PROTO_BATCHES_REPLY};
	in.u.batches_reply.batches_count = 2;
	in.u.batches_reply.batches = batches;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_int_equal(out.u.batches_reply.batches_count, 2);
	for (int i = 0; i < 2; i++)
		assert_batch_info_equal(&batches[i], &out.u.batches_reply.batches[i]);
	finish(&out, &wire);
}

static void test_hello_reply_round_trips(void **state)
{
	struct proto_msg in = {.type = PROTO_HELLO_REPLY};
	in.u.hello_reply.broker_version = text("jobmesh 0.3.1");
	in.u.hello_reply.events_url = text("ipc:///tmp/jobmesh-events.sock");
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_bytes_equal(in.u.hello_reply.broker_version, out.u.hello_reply.broker_version);
	assert_bytes_equal(in.u.hello_reply.events_url, out.u.hello_reply.events_url);
	finish(&out, &wire);
}

static void test_dead_list_round_trips(void **state)
{
	struct proto_msg in = {.type = PROTO_DEAD_LIST};
	strcpy(in.u.dead_list.queue, "payments.eu");
	in.u.dead_list.limit = PROTO_JOBS_PER_MESSAGE_MAX;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_string_equal(out.u.dead_list.queue, "payments.eu");
	assert_int_equal(out.u.dead_list.limit, PROTO_JOBS_PER_MESSAGE_MAX);
	finish(&out, &wire);
}

static void test_job_query_round_trips(void **state)
{
	struct proto_msg in = {.type = PROTO_JOB_QUERY};
	strcpy(in.u.job_query.queue, "emails");
	in.u.job_query.state = PROTO_STATE_FAILED;
	in.u.job_query.batch_id = 77;
	in.u.job_query.limit = 100;
	in.u.job_query.cursor = 1ull << 40;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_string_equal(out.u.job_query.queue, "emails");
	assert_int_equal(out.u.job_query.state, PROTO_STATE_FAILED);
	assert_true(out.u.job_query.batch_id == 77);
	assert_int_equal(out.u.job_query.limit, 100);
	assert_true(out.u.job_query.cursor == 1ull << 40);
	finish(&out, &wire);
}

static void test_job_query_check_names_a_bad_state_and_limit(void **state)
{
	struct proto_msg in = {.type = PROTO_JOB_QUERY};
	in.u.job_query.state = 9;
	in.u.job_query.limit = 1;
	struct jm_err err = {0};
	assert_jm_code(proto_check(&in, &err), JM_EINVAL);
	assert_string_equal(err.msg, "job-query: state 9 is out of range: use 1..6");
	in.u.job_query.state = 0; /* any state */
	in.u.job_query.limit = 0;
	assert_jm_code(proto_check(&in, &err), JM_EINVAL);
	assert_string_equal(err.msg, "job-query: limit 0 is out of range: use 1..10000");
}

static void test_stats_reply_carries_the_appended_queue_fields(void **state)
{
	struct proto_queue_stats q = {.name = "emails",
	                              .pending = 3,
	                              .cancelled = 2,
	                              .oldest_pending_us = 1700000000000000ull,
	                              .max_active = 5};
	struct proto_msg in = {.type = PROTO_STATS_REPLY};
	in.u.stats_reply.queues_count = 1;
	in.u.stats_reply.queues = &q;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_true(out.u.stats_reply.queues[0].cancelled == 2);
	assert_true(out.u.stats_reply.queues[0].oldest_pending_us == 1700000000000000ull);
	assert_int_equal(out.u.stats_reply.queues[0].max_active, 5);
	finish(&out, &wire);
}

static void test_stats_reply_of_an_older_broker_decodes_with_zero_extras(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_STATS_REPLY);
	mp_array(&b, 1);
	mp_array(&b, 1);
	mp_array(&b, 6);
	mp_str(&b, "emails");
	for (int i = 0; i < 5; i++)
		mp_uint(&b, (uint64_t)i + 1);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_ok_err(proto_decode(b.data, b.len, &out, &err), &err);
	assert_true(out.u.stats_reply.queues[0].failed == 5);
	assert_true(out.u.stats_reply.queues[0].cancelled == 0);
	assert_int_equal(out.u.stats_reply.queues[0].max_active, 0);
	proto_msg_fini(&out);
	jm_buf_fini(&b);
}

static void assert_job_info_equal(const struct proto_job_info *a, const struct proto_job_info *o)
{
	assert_true(a->job_id == o->job_id);
	assert_string_equal(a->attrs.queue, o->attrs.queue);
	assert_string_equal(a->attrs.type, o->attrs.type);
	assert_int_equal(a->state, o->state);
	assert_int_equal(a->attrs.priority, o->attrs.priority);
	assert_int_equal(a->attempt, o->attempt);
	assert_int_equal(a->attrs.max_attempts, o->attrs.max_attempts);
	assert_true(a->attrs.created_us == o->attrs.created_us && a->updated_us == o->updated_us &&
	            a->run_at_us == o->run_at_us);
	assert_bytes_equal(a->last_error, o->last_error);
	assert_int_equal(a->has_result, o->has_result);
	assert_bytes_equal(a->result, o->result);
	assert_true(a->attrs.batch_id == o->attrs.batch_id);
	assert_true(a->progress_done == o->progress_done && a->progress_total == o->progress_total);
	assert_bytes_equal(a->progress_message, o->progress_message);
}

static void test_job_list_round_trips(void **state)
{
	struct proto_job_info jobs[2] = {
	    {.job_id = 42,
	     .attrs.queue = "emails",
	     .attrs.type = "send",
	     .state = PROTO_STATE_FAILED,
	     .attrs.priority = 1000,
	     .attempt = 3,
	     .attrs.max_attempts = 3,
	     .attrs.created_us = 1,
	     .updated_us = 2,
	     .run_at_us = 3,
	     .last_error = text("smtp 550: mailbox unavailable"),
	     .attrs.batch_id = 9,
	     .progress_done = 2,
	     .progress_total = 5,
	     .progress_message = text("rendering")},
	    {.job_id = 43,
	     .attrs.queue = "emails",
	     .attrs.type = "send",
	     .state = PROTO_STATE_FAILED,
	     .attrs.priority = -1000,
	     .attempt = 1,
	     .attrs.max_attempts = 1,
	     .attrs.created_us = 4,
	     .updated_us = 5,
	     .last_error = text("bad address"),
	     .progress_done = 0,
	     .progress_total = 0},
	};
	struct proto_msg in = {.type = PROTO_JOB_LIST};
	in.u.job_list.jobs_count = 2;
	in.u.job_list.jobs = jobs;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_int_equal(out.u.job_list.jobs_count, 2);
	for (int i = 0; i < 2; i++)
		assert_job_info_equal(&jobs[i], &out.u.job_list.jobs[i]);
	finish(&out, &wire);
}

static void test_job_list_items_are_encoded_as_job_bodies(void **state)
{
	struct proto_msg job = {.type = PROTO_JOB};
	job.u.job = (struct proto_job_info){.job_id = 42,
	                                    .attrs.queue = "emails",
	                                    .attrs.type = "send",
	                                    .state = PROTO_STATE_ACTIVE,
	                                    .attrs.priority = -3,
	                                    .attempt = 1,
	                                    .last_error = text("first try"),
	                                    .attrs.batch_id = 7,
	                                    .progress_done = 1,
	                                    .progress_total = 4,
	                                    .progress_message = text("connecting")};
	struct proto_msg list = {.type = PROTO_JOB_LIST};
	list.u.job_list.jobs_count = 1;
	list.u.job_list.jobs = &job.u.job;
	struct jm_buf job_wire, list_wire;
	jm_buf_init(&job_wire);
	jm_buf_init(&list_wire);
	assert_jm_ok(proto_encode(&job, &job_wire));
	assert_jm_ok(proto_encode(&list, &list_wire));
	/* [1, 12, body] and [1, 28, [[body]]]: the bodies are the same bytes. */
	assert_int_equal(job_wire.len + 2, list_wire.len);
	assert_memory_equal(job_wire.data + 3, list_wire.data + 5, job_wire.len - 3);
	jm_buf_fini(&job_wire);
	jm_buf_fini(&list_wire);
}

static void test_revive_and_revived_round_trip(void **state)
{
	uint64_t revive_ids[2] = {0, 0xfeedfacecafeull};
	for (int i = 0; i < 2; i++) {
		struct proto_msg in = {.type = PROTO_REVIVE};
		strcpy(in.u.revive.queue, "emails");
		in.u.revive.job_id = revive_ids[i];
		struct jm_buf wire;
		struct proto_msg out;
		round_trip(&in, &wire, &out);
		assert_string_equal(out.u.revive.queue, "emails");
		assert_true(out.u.revive.job_id == revive_ids[i]);
		finish(&out, &wire);
	}
	uint64_t ids[3] = {1, 2, UINT64_MAX};
	struct proto_msg in = {.type = PROTO_REVIVED};
	in.u.revived.ids_count = 3;
	in.u.revived.ids = ids;
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_int_equal(out.u.revived.ids_count, 3);
	assert_memory_equal(out.u.revived.ids, ids, sizeof ids);
	finish(&out, &wire);
}

static void test_event_round_trips_with_every_field_set(void **state)
{
	struct proto_msg in = {.type = PROTO_EVENT};
	struct proto_event *ev = &in.u.event;
	ev->kind = PROTO_EVENT_JOB_STATE;
	ev->at_us = 1700000000000000ull;
	ev->job_id = 42;
	ev->batch_id = 7;
	strcpy(ev->queue, "emails");
	strcpy(ev->type, "send");
	ev->state = PROTO_STATE_DELAYED;
	ev->attempt = 2;
	ev->done = 3;
	ev->total = 4;
	ev->failed = 5;
	ev->message = text("retrying: smtp 421");
	strcpy(ev->worker_id, "worker-1");
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_event_equal(ev, &out.u.event);
	finish(&out, &wire);
}

static void test_event_round_trips_with_empty_names(void **state)
{
	/* A batch event leaves queue, type and worker id empty. */
	struct proto_msg in = {.type = PROTO_EVENT};
	struct proto_event *ev = &in.u.event;
	ev->kind = PROTO_EVENT_BATCH;
	ev->at_us = 1;
	ev->batch_id = 7;
	ev->state = PROTO_BATCH_RUNNING;
	ev->done = 5;
	ev->failed = 1;
	ev->total = 10;
	ev->message = text("charging card 6");
	struct jm_buf wire;
	struct proto_msg out;
	round_trip(&in, &wire, &out);
	assert_event_equal(ev, &out.u.event);
	assert_string_equal(out.u.event.queue, "");
	assert_string_equal(out.u.event.worker_id, "");
	finish(&out, &wire);
}

/* Event topics */

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

/* The naming rule byte by byte (A-Z a-z 0-9 . _ -; proto/names.c keeps it
 * as a table), and its length bounds. */
static void test_name_rule_takes_exactly_letters_digits_dot_underscore_and_dash(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		char name[3] = {'a', (char)c, 'z'};
		bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		            (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (proto_name_is_valid(name, sizeof name) != want)
			fail_msg("byte 0x%02x: expected %s", c, want ? "valid" : "invalid");
	}
	char longest[PROTO_NAME_MAX + 1];
	memset(longest, 'q', sizeof longest);
	assert_true(proto_name_is_valid(longest, PROTO_NAME_MAX));
	assert_false(proto_name_is_valid(longest, PROTO_NAME_MAX + 1));
	assert_false(proto_name_is_valid(longest, 0));
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
	struct proto_msg in = {.type = PROTO_SETTLE};
	struct proto_settle_item item = {
	    .job_id = 1, .lease = 1, .outcome = PROTO_SETTLE_COMPLETED};
	memset(in.u.settle.worker_id, 'a', sizeof in.u.settle.worker_id);
	in.u.settle.instance = 1;
	in.u.settle.items_count = 1;
	in.u.settle.items = &item;
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	jm_buf_fini(&wire);
}

static void test_encode_refuses_an_oversized_payload(void **state)
{
	static uint8_t big[PROTO_PAYLOAD_MAX_DEFAULT + 1];
	struct proto_job_spec job = {
	    .attrs.queue = "q", .attrs.type = "t", .payload = {big, sizeof big}};
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
	struct proto_job_spec job = {.attrs.queue = "q", .attrs.type = "t", .attrs.priority = 1001};
	struct proto_msg in = {.type = PROTO_SUBMIT};
	in.u.submit.jobs_count = 1;
	in.u.submit.jobs = &job;
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	job.attrs.priority = 0;
	job.attrs.max_attempts = PROTO_ATTEMPTS_MAX + 1;
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
		strcpy(jobs[i].attrs.queue, "q");
		strcpy(jobs[i].attrs.type, "t");
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

static struct proto_job_info sample_job_infos[2] = {
    {.job_id = 42,
     .attrs.queue = "emails",
     .attrs.type = "send",
     .state = PROTO_STATE_FAILED,
     .attrs.priority = 2,
     .attempt = 3,
     .attrs.max_attempts = 3,
     .attrs.created_us = 1000,
     .updated_us = 2000,
     .last_error = {(const uint8_t *)"smtp 550", 8},
     .attrs.batch_id = 7,
     .progress_done = 1,
     .progress_total = 4,
     .progress_message = {(const uint8_t *)"connecting", 10}},
    {.job_id = 43, .attrs.queue = "ocr", .attrs.type = "scan", .state = PROTO_STATE_PENDING},
};

static proto_name sample_worker_queues[2] = {"emails", "ocr"};
static uint64_t sample_ids[3] = {42, 43, 44};

static struct proto_worker_info sample_workers[2] = {
    {.worker_id = "worker-1",
     .host = {(const uint8_t *)"host-a", 6},
     .pid = 99,
     .concurrency = 4,
     .queues_count = 2,
     .queues = sample_worker_queues,
     .active_jobs = 2,
     .first_seen_us = 1000,
     .last_seen_us = 2000,
     .draining = true,
     .job_ids_count = 2,
     .job_ids = sample_ids},
    {.worker_id = "worker-2"},
};

static struct proto_batch_error sample_batch_errors[2] = {
    {.job_id = 42, .text = {(const uint8_t *)"smtp 550", 8}},
    {.job_id = 44, .text = {NULL, 0}},
};

static struct proto_batch_info sample_batches[2] = {
    {.batch_id = 7,
     .state = PROTO_BATCH_RUNNING,
     .total = 10,
     .completed = 5,
     .failed = 2,
     .cancelled = 1,
     .active = 2,
     .current_operation = {(const uint8_t *)"ocr page 3", 10},
     .errors_count = 2,
     .errors = sample_batch_errors,
     .created_us = 1000},
    {.batch_id = 8, .state = PROTO_BATCH_COMPLETED, .total = 1, .completed = 1},
};

/* Every type encode_sample knows: the mutation and truncation loops. */
static const int sample_types[] = {
    PROTO_SUBMIT,   PROTO_FETCH,         PROTO_HEARTBEAT,     PROTO_JOB,
    PROTO_CANCEL,   PROTO_BATCH_STATUS,  PROTO_WORKERS_REPLY, PROTO_PROGRESS,
    PROTO_BATCH,    PROTO_BATCHES_REPLY, PROTO_HELLO_REPLY,   PROTO_DEAD_LIST,
    PROTO_JOB_LIST, PROTO_REVIVE,        PROTO_REVIVED,       PROTO_EVENT,
};

static void encode_sample(struct jm_buf *wire, int type)
{
	static struct proto_job_spec jobs[3] = {
	    {.attrs.queue = "emails",
	     .attrs.type = "send",
	     .payload = {binary_payload, 6},
	     .attrs.priority = 3,
	     .attrs.max_attempts = 4,
	     .delay_ms = 10,
	     .attrs.timeout_ms = 20},
	    {.attrs.queue = "ocr", .attrs.type = "scan", .attrs.priority = -3},
	    {.attrs.queue = "reports", .attrs.type = "daily", .payload = {binary_payload, 2}},
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
		in.u.fetch.instance = 5;
		in.u.fetch.slot = 2;
		in.u.fetch.queues_count = 2;
		in.u.fetch.queues = queues;
		in.u.fetch.max_jobs = 10;
		in.u.fetch.wait_ms = 5000;
		break;
	case PROTO_HEARTBEAT:
		strcpy(in.u.heartbeat.worker_id, "worker-1");
		in.u.heartbeat.instance = 5;
		in.u.heartbeat.host = text("host-a");
		in.u.heartbeat.pid = 99;
		in.u.heartbeat.concurrency = 4;
		in.u.heartbeat.queues_count = 2;
		in.u.heartbeat.queues = queues;
		in.u.heartbeat.leases_count = 2;
		in.u.heartbeat.leases = leases;
		break;
	case PROTO_JOB:
		in.u.job = sample_job_infos[0];
		break;
	case PROTO_CANCEL:
	case PROTO_BATCH_STATUS:
		in.u.job_ref.job_id = 4242;
		break;
	case PROTO_WORKERS_REPLY:
		in.u.workers_reply.workers_count = 2;
		in.u.workers_reply.workers = sample_workers;
		break;
	case PROTO_PROGRESS:
		strcpy(in.u.progress.worker_id, "worker-1");
		in.u.progress.instance = 5;
		in.u.progress.job_id = 42;
		in.u.progress.lease = 9;
		in.u.progress.done = 3;
		in.u.progress.total = 10;
		in.u.progress.message = text("ocr page 3");
		break;
	case PROTO_BATCH:
		in.u.batch = sample_batches[0];
		break;
	case PROTO_BATCHES_REPLY:
		in.u.batches_reply.batches_count = 2;
		in.u.batches_reply.batches = sample_batches;
		break;
	case PROTO_HELLO_REPLY:
		in.u.hello_reply.broker_version = text("0.3.1");
		in.u.hello_reply.events_url = text("tcp://127.0.0.1:7601");
		break;
	case PROTO_DEAD_LIST:
		strcpy(in.u.dead_list.queue, "emails");
		in.u.dead_list.limit = 100;
		break;
	case PROTO_JOB_LIST:
		in.u.job_list.jobs_count = 2;
		in.u.job_list.jobs = sample_job_infos;
		break;
	case PROTO_REVIVE:
		strcpy(in.u.revive.queue, "emails");
		in.u.revive.job_id = 42;
		break;
	case PROTO_REVIVED:
		in.u.revived.ids_count = 3;
		in.u.revived.ids = sample_ids;
		break;
	case PROTO_EVENT:
		in.u.event.kind = PROTO_EVENT_JOB_PROGRESS;
		in.u.event.at_us = 1700000000000000ull;
		in.u.event.job_id = 42;
		in.u.event.batch_id = 7;
		strcpy(in.u.event.queue, "ocr");
		strcpy(in.u.event.type, "scan");
		in.u.event.state = PROTO_STATE_ACTIVE;
		in.u.event.attempt = 1;
		in.u.event.done = 3;
		in.u.event.total = 10;
		in.u.event.message = text("page 3");
		strcpy(in.u.event.worker_id, "worker-1");
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

static void test_decode_rejects_every_truncated_sample(void **state)
{
	for (size_t t = 0; t < sizeof sample_types / sizeof sample_types[0]; t++)
		assert_every_prefix_fails(sample_types[t]);
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

static void test_decode_rejects_a_wrong_type_in_each_settle_item_field(void **state)
{
	for (int field = 0; field < 5; field++) {
		struct jm_buf b;
		jm_buf_init(&b);
		mp_envelope(&b, PROTO_VERSION, PROTO_SETTLE);
		mp_array(&b, 3);
		mp_str(&b, "w1");
		mp_uint(&b, 1);
		mp_array(&b, 1);
		mp_array(&b, 5);
		for (int i = 0; i < 5; i++) {
			if (i == field)
				mp_array(&b, 0); /* an array where a scalar belongs */
			else if (i < 2)
				mp_uint(&b, 7);
			else if (i == 2)
				mp_uint(&b, PROTO_SETTLE_FAILED);
			else if (i == 3)
				mp_bin(&b, "boom", 4);
			else
				mp_bool(&b, false);
		}
		struct proto_msg out;
		struct jm_err err = {0};
		assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EPROTO);
		assert_non_null(strstr(err.msg, "settle: item 0: "));
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
	                    "protocol version 7 is not supported: this broker speaks version 2");
	jm_buf_fini(&b);
}

static void test_decode_reports_the_version_before_the_envelope_shape(void **state)
{
	/* A future envelope [3, {...}] must still read as "wrong version". */
	static const uint8_t future[] = {0x92, 0x03, 0x80};
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
	mp_envelope(&b, PROTO_VERSION, PROTO_SETTLE);
	mp_array(&b, 3);
	mp_str(&b, name);
	mp_uint(&b, 1);
	mp_array(&b, 1);
	mp_array(&b, 5);
	mp_uint(&b, 1);
	mp_uint(&b, 1);
	mp_uint(&b, PROTO_SETTLE_COMPLETED);
	mp_bin(&b, "", 0);
	mp_bool(&b, false);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_ok_err(proto_decode(b.data, b.len, &out, &err), &err);
	assert_string_equal(out.u.settle.worker_id, name);
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
	mp_array(&b, 6);
	mp_str(&b, "w");
	mp_uint(&b, 0);
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
	mp_envelope(&b, PROTO_VERSION, PROTO_SETTLE);
	mp_array(&b, 3);
	mp_str(&b, "w");
	mp_uint(&b, 1);
	mp_array(&b, 1);
	mp_array(&b, 5);
	mp_uint(&b, 1);
	mp_uint(&b, 1);
	mp_uint(&b, PROTO_SETTLE_COMPLETED);
	mp_bin(&b, big, big_len);
	mp_bool(&b, false);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_ETOOBIG);
	assert_string_equal(err.msg,
	                    "settle: item 0: data is 1048577 bytes: at most 1048576 allowed");
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
	assert_string_equal(err.msg,
	                    "wait: has 1 fields: expected [job_id, timeout_ms[, with_payload]]");
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
	mp_array(&b, 12);
	mp_str(&b, "q");
	mp_str(&b, "t");
	mp_str(&b, "payload as str");
	mp_int(&b, -2);
	mp_uint(&b, 2);
	mp_uint(&b, 3);
	mp_uint(&b, 4);
	mp_str(&b, "key-1");
	mp_uint(&b, 0);
	mp_str(&b, "tenant-1");
	mp_str(&b, "new field");
	mp_array(&b, 0);
	mp_str(&b, "new body field");
	mp_nil(&b);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_ok_err(proto_decode(b.data, b.len, &out, &err), &err);
	assert_int_equal(out.u.submit.jobs_count, 1);
	assert_int_equal(out.u.submit.jobs[0].attrs.priority, -2);
	assert_int_equal(out.u.submit.jobs[0].payload.len, strlen("payload as str"));
	assert_true(out.u.submit.jobs[0].attrs.timeout_ms == 4);
	assert_string_equal(out.u.submit.jobs[0].attrs.group, "tenant-1");
	proto_msg_fini(&out);
	jm_buf_fini(&b);
}

static void test_decode_rejects_an_array_claiming_50_million_elements_in_6_bytes(void **state)
{
	static const uint8_t bomb[6] = {0xdd, 0x02, 0xfa, 0xf0, 0x80, 0x01};
	static const uint8_t nested[] = {0x93, PROTO_VERSION, 0x02, 0xdd, 0x02,
	                                 0xfa, 0xf0,          0x80, 0x01};
	static const uint8_t map_bomb[] = {0x93, PROTO_VERSION, 0x02, 0xdf, 0x02,
	                                   0xfa, 0xf0,          0x80, 0x01};
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
	struct raw_job_info j = raw_job_info_default();
	j.result = "x";
	mp_job_info(&b, &j);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EINVAL);
	assert_non_null(strstr(err.msg, "has_result is false"));
	jm_buf_fini(&b);
}

/* The new messages' bounds */

/* Decodes b (exact-size copy); expects code and, when want_msg is not NULL,
 * exactly that error text. */
static void assert_decode_fails(struct jm_buf *b, int code, const char *want_msg)
{
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(b->data, b->len, &out, &err), code);
	assert_int_equal(err.code, code);
	if (want_msg != NULL)
		assert_string_equal(err.msg, want_msg);
	jm_buf_fini(b);
}

static void mp_progress(struct jm_buf *b, const char *worker_id, uint64_t done, uint64_t total,
                        size_t message_len)
{
	mp_envelope(b, PROTO_VERSION, PROTO_PROGRESS);
	mp_array(b, 7);
	mp_str(b, worker_id);
	mp_uint(b, 42);
	mp_uint(b, 9);
	mp_uint(b, done);
	mp_uint(b, total);
	char *msg = calloc(1, message_len + 1);
	assert_non_null(msg);
	memset(msg, 'm', message_len);
	mp_strn(b, msg, message_len);
	free(msg);
	mp_uint(b, 3); /* instance */
}

static void test_decode_accepts_progress_at_its_bounds(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_progress(&b, "w", 10, 10, PROTO_ERROR_TEXT_MAX);
	struct proto_msg out;
	assert_jm_ok(decode_copy(b.data, b.len, &out, NULL));
	jm_buf_reset(&b);
	mp_progress(&b, "w", 0, 1, 0);
	assert_jm_ok(decode_copy(b.data, b.len, &out, NULL));
	jm_buf_fini(&b);
}

static void test_decode_rejects_progress_done_over_total(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_progress(&b, "w", 11, 10, 0);
	assert_decode_fails(&b, JM_EINVAL, "progress: done 11 is out of range: use 0..10");
}

static void test_decode_rejects_progress_with_a_total_of_zero(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_progress(&b, "w", 0, 0, 0);
	assert_decode_fails(&b, JM_EINVAL,
	                    "progress: total 0 is out of range: use 1..18446744073709551615");
}

static void test_decode_rejects_a_progress_message_over_the_limit(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_progress(&b, "w", 1, 2, PROTO_ERROR_TEXT_MAX + 1);
	assert_decode_fails(&b, JM_ETOOBIG,
	                    "progress: message is 1025 bytes: at most 1024 allowed");
}

static void test_decode_rejects_progress_without_a_worker_id(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_progress(&b, "", 1, 2, 0);
	assert_decode_fails(&b, JM_EBADNAME,
	                    "progress: worker id \"\" is invalid: use 1-64 of A-Z a-z 0-9 . _ -");
}

static void test_decode_rejects_a_job_whose_progress_exceeds_its_total(void **state)
{
	struct {
		uint64_t done, total;
		const char *msg;
	} cases[2] = {
	    {1, 0, "job: progress_done 1 is out of range: use 0..0"},
	    {5, 4, "job: progress_done 5 is out of range: use 0..4"},
	};
	for (int i = 0; i < 2; i++) {
		struct jm_buf b;
		jm_buf_init(&b);
		mp_envelope(&b, PROTO_VERSION, PROTO_JOB);
		struct raw_job_info j = raw_job_info_default();
		j.progress_done = cases[i].done;
		j.progress_total = cases[i].total;
		mp_job_info(&b, &j);
		assert_decode_fails(&b, JM_EINVAL, cases[i].msg);
	}
}

static void test_decode_accepts_a_job_without_progress(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_JOB);
	struct raw_job_info j = raw_job_info_default();
	j.progress_done = 0;
	j.progress_total = 0;
	j.progress_message_len = 0;
	mp_job_info(&b, &j);
	struct proto_msg out;
	assert_jm_ok(proto_decode(b.data, b.len, &out, NULL));
	assert_true(out.u.job.progress_done == 0 && out.u.job.progress_total == 0);
	assert_null(out.u.job.progress_message.ptr);
	proto_msg_fini(&out);
	jm_buf_fini(&b);
}

static void test_decode_rejects_a_job_progress_message_over_the_limit(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_JOB);
	struct raw_job_info j = raw_job_info_default();
	j.progress_message_len = PROTO_ERROR_TEXT_MAX + 1;
	mp_job_info(&b, &j);
	assert_decode_fails(&b, JM_ETOOBIG,
	                    "job: progress_message is 1025 bytes: at most 1024 allowed");
}

static void test_decode_rejects_a_job_without_the_progress_fields(void **state)
{
	/* JOB before batch and progress were appended: 13 fields. */
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_JOB);
	struct raw_job_info j = raw_job_info_default();
	j.fields_count = 13;
	mp_job_info(&b, &j);
	assert_decode_fails(&b, JM_EPROTO,
	                    "job: has 13 fields: expected [job_id, queue, type, state, priority, "
	                    "attempt, max_attempts, created_us, updated_us, run_at_us, last_error, "
	                    "has_result, result, batch_id, progress_done, progress_total, "
	                    "progress_message[, payload, group]]");
}

static void test_decode_rejects_a_bad_item_in_a_job_list(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_JOB_LIST);
	mp_array(&b, 1);
	mp_array(&b, 3);
	for (int i = 0; i < 3; i++) {
		struct raw_job_info j = raw_job_info_default();
		if (i == 2)
			j.queue = "";
		mp_job_info(&b, &j);
	}
	assert_decode_fails(&b, JM_EBADNAME,
	                    "job-list: job 2: queue name \"\" is invalid: use 1-64 of A-Z a-z "
	                    "0-9 . _ -");
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_JOB_LIST);
	mp_array(&b, 1);
	mp_array(&b, 1);
	struct raw_job_info j = raw_job_info_default();
	j.state = PROTO_STATE_CANCELLED + 1;
	mp_job_info(&b, &j);
	assert_decode_fails(&b, JM_EINVAL, "job-list: job 0: state 7 is out of range: use 1..6");
}

/* A BATCH body: errors_count errors of text_len bytes each. */
static void mp_batch(struct jm_buf *b, uint64_t state, uint32_t errors_count, size_t text_len,
                     size_t operation_len)
{
	char *text_bytes = calloc(1, (text_len > operation_len ? text_len : operation_len) + 1);
	assert_non_null(text_bytes);
	memset(text_bytes, 'e', text_len > operation_len ? text_len : operation_len);
	mp_array(b, 11);
	mp_uint(b, 7);
	mp_uint(b, state);
	for (int i = 0; i < 5; i++)
		mp_uint(b, 100 + (uint64_t)i);
	mp_strn(b, text_bytes, operation_len);
	mp_array(b, errors_count);
	for (uint32_t i = 0; i < errors_count; i++) {
		mp_array(b, 2);
		mp_uint(b, i);
		mp_strn(b, text_bytes, text_len);
	}
	mp_uint(b, 1000);
	mp_uint(b, 0);
	free(text_bytes);
}

static void test_decode_rejects_too_many_batch_errors(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_BATCH);
	mp_batch(&b, PROTO_BATCH_RUNNING, PROTO_BATCH_ERRORS_MAX, 4, 4);
	struct proto_msg out;
	assert_jm_ok(decode_copy(b.data, b.len, &out, NULL));
	jm_buf_reset(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_BATCH);
	mp_batch(&b, PROTO_BATCH_RUNNING, PROTO_BATCH_ERRORS_MAX + 1, 4, 4);
	assert_decode_fails(&b, JM_EINVAL, "batch: 21 errors given: use 0..20");
}

static void test_decode_rejects_a_batch_state_out_of_range(void **state)
{
	uint64_t bad[2] = {0, PROTO_BATCH_FAILED + 1};
	for (int i = 0; i < 2; i++) {
		struct jm_buf b;
		jm_buf_init(&b);
		mp_envelope(&b, PROTO_VERSION, PROTO_BATCH);
		mp_batch(&b, bad[i], 0, 0, 0);
		char want[64];
		snprintf(want, sizeof want, "batch: state %d is out of range: use 1..3",
		         (int)bad[i]);
		assert_decode_fails(&b, JM_EINVAL, want);
	}
}

static void test_decode_rejects_batch_texts_over_the_limit(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_BATCH);
	mp_batch(&b, PROTO_BATCH_RUNNING, 0, 0, PROTO_ERROR_TEXT_MAX + 1);
	assert_decode_fails(&b, JM_ETOOBIG,
	                    "batch: current_operation is 1025 bytes: at most 1024 allowed");
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_BATCHES_REPLY);
	mp_array(&b, 1);
	mp_array(&b, 2);
	mp_batch(&b, PROTO_BATCH_RUNNING, 0, 0, 0);
	mp_batch(&b, PROTO_BATCH_RUNNING, 3, PROTO_ERROR_TEXT_MAX + 1, 0);
	assert_decode_fails(&b, JM_ETOOBIG,
	                    "batches-reply: batch 1: error 0: text is 1025 bytes: at most 1024 "
	                    "allowed");
}

/* An EVENT body; names may be "" and bad_field (0..12) is nil, -1 none. */
struct raw_event {
	uint64_t kind;
	const char *queue;
	const char *type;
	uint64_t state;
	uint64_t done;
	uint64_t total;
	size_t message_len;
	const char *worker_id;
	int nil_field;
};

static struct raw_event raw_event_default(void)
{
	return (struct raw_event){.kind = PROTO_EVENT_JOB_STATE,
	                          .queue = "q",
	                          .type = "t",
	                          .state = PROTO_STATE_ACTIVE,
	                          .worker_id = "w",
	                          .nil_field = -1};
}

static void mp_event(struct jm_buf *b, const struct raw_event *ev)
{
	mp_envelope(b, PROTO_VERSION, PROTO_EVENT);
	mp_array(b, 13);
	for (int field = 0; field < 13; field++) {
		if (field == ev->nil_field) {
			mp_nil(b);
			continue;
		}
		switch (field) {
		case 0:
			mp_uint(b, ev->kind);
			break;
		case 4:
			mp_str(b, ev->queue);
			break;
		case 5:
			mp_str(b, ev->type);
			break;
		case 6:
			mp_uint(b, ev->state);
			break;
		case 8:
			mp_uint(b, ev->done);
			break;
		case 9:
			mp_uint(b, ev->total);
			break;
		case 11: {
			char *msg = calloc(1, ev->message_len + 1);
			assert_non_null(msg);
			memset(msg, 'm', ev->message_len);
			mp_strn(b, msg, ev->message_len);
			free(msg);
			break;
		}
		case 12:
			mp_str(b, ev->worker_id);
			break;
		default:
			mp_uint(b, 1000 + (uint64_t)field);
			break;
		}
	}
}

static void test_decode_rejects_an_event_kind_out_of_range(void **state)
{
	uint64_t bad[2] = {0, PROTO_EVENT_WORKER_LOST + 1};
	for (int i = 0; i < 2; i++) {
		struct jm_buf b;
		jm_buf_init(&b);
		struct raw_event ev = raw_event_default();
		ev.kind = bad[i];
		mp_event(&b, &ev);
		char want[64];
		snprintf(want, sizeof want, "event: kind %d is out of range: use 1..5",
		         (int)bad[i]);
		assert_decode_fails(&b, JM_EINVAL, want);
	}
}

static void test_decode_accepts_empty_names_in_an_event_only(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	struct raw_event ev = raw_event_default();
	ev.kind = PROTO_EVENT_WORKER_LOST;
	ev.state = 0;
	ev.queue = "";
	ev.type = "";
	ev.worker_id = "";
	mp_event(&b, &ev);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_ok_err(proto_decode(b.data, b.len, &out, &err), &err);
	assert_string_equal(out.u.event.queue, "");
	assert_string_equal(out.u.event.type, "");
	assert_string_equal(out.u.event.worker_id, "");
	proto_msg_fini(&out);
	jm_buf_fini(&b);

	/* Everywhere else an empty name is refused. */
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_DEAD_LIST);
	mp_array(&b, 2);
	mp_str(&b, "");
	mp_uint(&b, 10);
	assert_decode_fails(&b, JM_EBADNAME, NULL);
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_REVIVE);
	mp_array(&b, 2);
	mp_str(&b, "");
	mp_uint(&b, 0);
	assert_decode_fails(&b, JM_EBADNAME, NULL);
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_WORKERS_REPLY);
	mp_array(&b, 1);
	mp_array(&b, 1);
	mp_array(&b, 10);
	mp_str(&b, "");
	mp_str(&b, "host");
	for (int i = 0; i < 2; i++)
		mp_uint(&b, 1);
	mp_array(&b, 0);
	for (int i = 0; i < 3; i++)
		mp_uint(&b, 1);
	mp_bool(&b, false);
	mp_array(&b, 0);
	assert_decode_fails(&b, JM_EBADNAME,
	                    "workers-reply: worker 0: worker id \"\" is invalid: use 1-64 of A-Z "
	                    "a-z 0-9 . _ -");
}

static void test_decode_rejects_an_invalid_name_in_an_event(void **state)
{
	const char *fields[3] = {"queue name", "type name", "worker id"};
	for (int i = 0; i < 3; i++) {
		struct jm_buf b;
		jm_buf_init(&b);
		struct raw_event ev = raw_event_default();
		if (i == 0)
			ev.queue = "a b";
		else if (i == 1)
			ev.type = "a/b";
		else
			ev.worker_id = "w\n";
		mp_event(&b, &ev);
		struct proto_msg out;
		struct jm_err err = {0};
		assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EBADNAME);
		assert_non_null(strstr(err.msg, fields[i]));
		jm_buf_fini(&b);
	}
}

static void test_decode_rejects_an_event_state_wrong_for_its_kind(void **state)
{
	struct {
		uint64_t kind, state;
		const char *msg;
	} cases[4] = {
	    {PROTO_EVENT_JOB_STATE, 0, "event: job state 0 is out of range: use 1..6"},
	    {PROTO_EVENT_JOB_STATE, 7, "event: job state 7 is out of range: use 1..6"},
	    {PROTO_EVENT_BATCH, 4, "event: batch state 4 is out of range: use 1..3"},
	    {PROTO_EVENT_WORKER_JOINED, 7, "event: state 7 is out of range: use 0..6"},
	};
	for (int i = 0; i < 4; i++) {
		struct jm_buf b;
		jm_buf_init(&b);
		struct raw_event ev = raw_event_default();
		ev.kind = cases[i].kind;
		ev.state = cases[i].state;
		mp_event(&b, &ev);
		assert_decode_fails(&b, JM_EINVAL, cases[i].msg);
	}
}

static void test_decode_rejects_a_progress_event_done_over_total(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	struct raw_event ev = raw_event_default();
	ev.kind = PROTO_EVENT_JOB_PROGRESS;
	ev.done = 3;
	ev.total = 2;
	mp_event(&b, &ev);
	assert_decode_fails(&b, JM_EINVAL, "event: done 3 is out of range: use 0..2");
}

static void test_decode_rejects_an_event_message_over_the_limit(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	struct raw_event ev = raw_event_default();
	ev.message_len = PROTO_ERROR_TEXT_MAX + 1;
	mp_event(&b, &ev);
	assert_decode_fails(&b, JM_ETOOBIG, "event: message is 1025 bytes: at most 1024 allowed");
}

static void test_decode_rejects_a_wrong_type_in_each_event_field(void **state)
{
	for (int field = 0; field < 13; field++) {
		struct jm_buf b;
		jm_buf_init(&b);
		struct raw_event ev = raw_event_default();
		ev.nil_field = field;
		mp_event(&b, &ev);
		struct proto_msg out;
		struct jm_err err = {0};
		assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EPROTO);
		assert_non_null(strstr(err.msg, "event: "));
		assert_non_null(strstr(err.msg, "got nil"));
		jm_buf_fini(&b);
	}
}

static void test_decode_rejects_a_dead_list_limit_out_of_range(void **state)
{
	uint64_t bad[2] = {0, PROTO_JOBS_PER_MESSAGE_MAX + 1};
	for (int i = 0; i < 2; i++) {
		struct jm_buf b;
		jm_buf_init(&b);
		mp_envelope(&b, PROTO_VERSION, PROTO_DEAD_LIST);
		mp_array(&b, 2);
		mp_str(&b, "emails");
		mp_uint(&b, bad[i]);
		char want[64];
		snprintf(want, sizeof want, "dead-list: limit %d is out of range: use 1..10000",
		         (int)bad[i]);
		assert_decode_fails(&b, JM_EINVAL, want);
	}
}

static void test_decode_rejects_too_many_revived_ids(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_REVIVED);
	mp_array(&b, 1);
	mp_array(&b, PROTO_JOBS_PER_MESSAGE_MAX + 1);
	for (int i = 0; i <= PROTO_JOBS_PER_MESSAGE_MAX; i++)
		mp_uint(&b, 1);
	assert_decode_fails(&b, JM_EINVAL, "revived: 10001 job ids given: use 0..10000");
}

/* A WORKERS_REPLY with one worker: host_len bytes of host, queues_count
 * queues, job_ids_count job ids. */
static void mp_workers_reply(struct jm_buf *b, size_t host_len, uint32_t queues_count,
                             uint32_t job_ids_count)
{
	char *host = calloc(1, host_len + 1);
	assert_non_null(host);
	memset(host, 'h', host_len);
	mp_envelope(b, PROTO_VERSION, PROTO_WORKERS_REPLY);
	mp_array(b, 1);
	mp_array(b, 1);
	mp_array(b, 10);
	mp_str(b, "w");
	mp_strn(b, host, host_len);
	mp_uint(b, 1);
	mp_uint(b, 1);
	mp_array(b, queues_count);
	for (uint32_t i = 0; i < queues_count; i++)
		mp_str(b, "q");
	mp_uint(b, 1);
	mp_uint(b, 1);
	mp_uint(b, 1);
	mp_bool(b, false);
	mp_array(b, job_ids_count);
	for (uint32_t i = 0; i < job_ids_count; i++)
		mp_uint(b, i);
	free(host);
}

static void test_decode_rejects_worker_info_over_its_limits(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_workers_reply(&b, 255, PROTO_QUEUES_PER_FETCH_MAX, PROTO_JOBS_PER_MESSAGE_MAX);
	struct proto_msg out;
	assert_jm_ok(decode_copy(b.data, b.len, &out, NULL));
	jm_buf_reset(&b);
	mp_workers_reply(&b, 256, 0, 0);
	assert_decode_fails(&b, JM_ETOOBIG,
	                    "workers-reply: worker 0: host is 256 bytes: at most 255 allowed");
	jm_buf_init(&b);
	mp_workers_reply(&b, 1, PROTO_QUEUES_PER_FETCH_MAX + 1, 0);
	assert_decode_fails(&b, JM_EINVAL, "workers-reply: worker 0: 33 queues given: use 0..32");
	jm_buf_init(&b);
	mp_workers_reply(&b, 1, 0, PROTO_JOBS_PER_MESSAGE_MAX + 1);
	assert_decode_fails(&b, JM_EINVAL,
	                    "workers-reply: worker 0: 10001 job ids given: use 0..10000");
}

static void test_decode_names_the_batch_id_of_a_batch_status(void **state)
{
	struct jm_buf b;
	jm_buf_init(&b);
	mp_envelope(&b, PROTO_VERSION, PROTO_BATCH_STATUS);
	mp_array(&b, 1);
	mp_str(&b, "7");
	assert_decode_fails(&b, JM_EPROTO,
	                    "batch-status: batch_id must be an integer, got a string");
}

static void test_encode_refuses_out_of_range_fields_of_the_new_messages(void **state)
{
	struct jm_buf wire;
	jm_buf_init(&wire);

	struct proto_msg in = {.type = PROTO_PROGRESS};
	strcpy(in.u.progress.worker_id, "w");
	in.u.progress.done = 2;
	in.u.progress.total = 1;
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	in.u.progress.total = 0;
	in.u.progress.done = 0;
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);

	struct proto_batch_error errors[PROTO_BATCH_ERRORS_MAX + 1] = {{0}};
	in = (struct proto_msg){.type = PROTO_BATCH};
	in.u.batch.state = PROTO_BATCH_RUNNING;
	in.u.batch.errors_count = PROTO_BATCH_ERRORS_MAX + 1;
	in.u.batch.errors = errors;
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);

	in = (struct proto_msg){.type = PROTO_EVENT};
	in.u.event.kind = PROTO_EVENT_WORKER_LOST + 1;
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);

	in = (struct proto_msg){.type = PROTO_JOB};
	strcpy(in.u.job.attrs.queue, "q");
	strcpy(in.u.job.attrs.type, "t");
	in.u.job.state = PROTO_STATE_PENDING;
	in.u.job.progress_done = 1;
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);

	in = (struct proto_msg){.type = PROTO_DEAD_LIST};
	strcpy(in.u.dead_list.queue, "q");
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);

	in = (struct proto_msg){.type = PROTO_HELLO_REPLY};
	in.u.hello_reply.events_url.len = 3; /* no pointer */
	assert_jm_code(proto_encode(&in, &wire), JM_EINVAL);
	assert_int_equal(wire.len, 0);
	jm_buf_fini(&wire);
}

static void test_type_names_cover_every_type(void **state)
{
	static const char *const want[PROTO_TYPE_MAX_ + 1] = {
	    [PROTO_CANCEL] = "cancel",
	    [PROTO_WORKERS] = "workers",
	    [PROTO_WORKERS_REPLY] = "workers-reply",
	    [PROTO_PROGRESS] = "progress",
	    [PROTO_BATCH_STATUS] = "batch-status",
	    [PROTO_BATCH] = "batch",
	    [PROTO_BATCHES] = "batches",
	    [PROTO_BATCHES_REPLY] = "batches-reply",
	    [PROTO_HELLO] = "hello",
	    [PROTO_HELLO_REPLY] = "hello-reply",
	    [PROTO_DEAD_LIST] = "dead-list",
	    [PROTO_JOB_LIST] = "job-list",
	    [PROTO_JOB_QUERY] = "job-query",
	    [PROTO_REVIVE] = "revive",
	    [PROTO_REVIVED] = "revived",
	    [PROTO_EVENT] = "event",
	};
	for (int type = 1; type <= PROTO_TYPE_MAX_; type++) {
		assert_string_not_equal(proto_type_name(type), "unknown");
		if (want[type] != NULL)
			assert_string_equal(proto_type_name(type), want[type]);
	}
	assert_string_equal(proto_type_name(PROTO_TYPE_MAX_ + 1), "unknown");
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
	int accepted = 0;
	for (size_t t = 0; t < sizeof sample_types / sizeof sample_types[0]; t++) {
		struct jm_buf wire;
		encode_sample(&wire, sample_types[t]);
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
	    cmocka_unit_test(test_settle_round_trips),
	    cmocka_unit_test(
	        test_encode_refuses_a_settle_without_an_instance_or_a_permanent_release),
	    cmocka_unit_test(test_decode_refuses_version_1_and_its_ack_and_fail_saying_upgrade),
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
	    cmocka_unit_test(test_cancel_and_batch_status_round_trip),
	    cmocka_unit_test(test_workers_and_batches_round_trip_with_an_empty_body),
	    cmocka_unit_test(test_hello_carries_an_optional_token_and_an_empty_hello_decodes),
	    cmocka_unit_test(test_workers_reply_round_trips),
	    cmocka_unit_test(test_progress_round_trips),
	    cmocka_unit_test(test_batch_round_trips_with_the_most_errors_allowed),
	    cmocka_unit_test(test_batches_reply_round_trips),
	    cmocka_unit_test(test_hello_reply_round_trips),
	    cmocka_unit_test(test_dead_list_round_trips),
	    cmocka_unit_test(test_job_query_round_trips),
	    cmocka_unit_test(test_job_query_check_names_a_bad_state_and_limit),
	    cmocka_unit_test(test_stats_reply_carries_the_appended_queue_fields),
	    cmocka_unit_test(test_stats_reply_of_an_older_broker_decodes_with_zero_extras),
	    cmocka_unit_test(test_job_list_round_trips),
	    cmocka_unit_test(test_job_list_items_are_encoded_as_job_bodies),
	    cmocka_unit_test(test_revive_and_revived_round_trip),
	    cmocka_unit_test(test_event_round_trips_with_every_field_set),
	    cmocka_unit_test(test_event_round_trips_with_empty_names),
	    cmocka_unit_test(test_encode_error_formats_code_and_text),
	    cmocka_unit_test(test_encode_error_truncates_long_text_on_a_utf8_boundary),
	    cmocka_unit_test(test_encode_error_refuses_a_non_negative_code),
	    cmocka_unit_test(test_encode_appends_after_existing_bytes),
	    cmocka_unit_test(test_name_rule_takes_exactly_letters_digits_dot_underscore_and_dash),
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
	    cmocka_unit_test(test_decode_rejects_every_truncated_sample),
	    cmocka_unit_test(test_decode_rejects_a_wrong_type_in_each_submit_field),
	    cmocka_unit_test(test_decode_rejects_a_wrong_type_in_each_settle_item_field),
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
	    cmocka_unit_test(test_decode_accepts_progress_at_its_bounds),
	    cmocka_unit_test(test_decode_rejects_progress_done_over_total),
	    cmocka_unit_test(test_decode_rejects_progress_with_a_total_of_zero),
	    cmocka_unit_test(test_decode_rejects_a_progress_message_over_the_limit),
	    cmocka_unit_test(test_decode_rejects_progress_without_a_worker_id),
	    cmocka_unit_test(test_decode_rejects_a_job_whose_progress_exceeds_its_total),
	    cmocka_unit_test(test_decode_accepts_a_job_without_progress),
	    cmocka_unit_test(test_decode_rejects_a_job_progress_message_over_the_limit),
	    cmocka_unit_test(test_decode_rejects_a_job_without_the_progress_fields),
	    cmocka_unit_test(test_decode_rejects_a_bad_item_in_a_job_list),
	    cmocka_unit_test(test_decode_rejects_too_many_batch_errors),
	    cmocka_unit_test(test_decode_rejects_a_batch_state_out_of_range),
	    cmocka_unit_test(test_decode_rejects_batch_texts_over_the_limit),
	    cmocka_unit_test(test_decode_rejects_an_event_kind_out_of_range),
	    cmocka_unit_test(test_decode_accepts_empty_names_in_an_event_only),
	    cmocka_unit_test(test_decode_rejects_an_invalid_name_in_an_event),
	    cmocka_unit_test(test_decode_rejects_an_event_state_wrong_for_its_kind),
	    cmocka_unit_test(test_decode_rejects_a_progress_event_done_over_total),
	    cmocka_unit_test(test_decode_rejects_an_event_message_over_the_limit),
	    cmocka_unit_test(test_decode_rejects_a_wrong_type_in_each_event_field),
	    cmocka_unit_test(test_decode_rejects_a_dead_list_limit_out_of_range),
	    cmocka_unit_test(test_decode_rejects_too_many_revived_ids),
	    cmocka_unit_test(test_decode_rejects_worker_info_over_its_limits),
	    cmocka_unit_test(test_decode_names_the_batch_id_of_a_batch_status),
	    cmocka_unit_test(test_encode_refuses_out_of_range_fields_of_the_new_messages),
	    cmocka_unit_test(test_type_names_cover_every_type),
	    cmocka_unit_test(test_fini_accepts_null_and_zeroed_messages),
	    cmocka_unit_test(test_decode_survives_random_bytes),
	    cmocka_unit_test(test_decode_survives_mutated_valid_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
