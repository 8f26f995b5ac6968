/* Journal records: every record type round-trips with every field set, the
 * fields follow the type directly ([version, type, fields...]), and a
 * damaged or foreign record fails with a code and a message naming the
 * field. Bad records are written byte by byte, not by the encoder under
 * test, and decoded from exact-size heap copies so ASan sees overreads. */
#include "jm_test.h"

#include <stdbool.h>

#include "buf.h"
#include "record.h"

static void mp_byte(struct jm_buf *b, uint8_t v)
{
	assert_jm_ok(jm_buf_append(b, &v, 1));
}

static void mp_be(struct jm_buf *b, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		mp_byte(b, (uint8_t)(v >> (8 * i)));
}

static void mp_uint(struct jm_buf *b, uint64_t v)
{
	mp_byte(b, 0xcf);
	mp_be(b, v, 8);
}

static void mp_str(struct jm_buf *b, const char *s)
{
	size_t n = strlen(s);
	mp_byte(b, 0xd9);
	mp_be(b, n, 1);
	assert_jm_ok(jm_buf_append(b, s, n));
}

static void mp_nil(struct jm_buf *b)
{
	mp_byte(b, 0xc0);
}

static int decode_copy(const void *data, size_t len, struct proto_record *out, struct jm_err *err)
{
	void *copy = malloc(len > 0 ? len : 1);
	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, data, len);
	int rc = proto_record_decode(copy, len, out, err);
	if (rc == 0) {
		/* Anything accepted must encode again, and borrowed fields
		 * would dangle once the copy is gone: check, then drop. */
		struct jm_buf again;
		jm_buf_init(&again);
		assert_jm_ok(proto_record_encode(out, &again));
		jm_buf_fini(&again);
		proto_record_fini(out);
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
	return (struct proto_bytes){len > 0 ? (const uint8_t *)s : NULL, (uint32_t)len};
}

static void assert_bytes_equal(struct proto_bytes a, struct proto_bytes b)
{
	assert_int_equal(a.len, b.len);
	if (a.len > 0)
		assert_memory_equal(a.ptr, b.ptr, a.len);
	else
		assert_null(b.ptr);
}

static void round_trip(const struct proto_record *in, struct jm_buf *wire, struct proto_record *out)
{
	struct jm_err err = {0};
	jm_buf_init(wire);
	assert_jm_ok(proto_record_encode(in, wire));
	assert_jm_ok_err(proto_record_decode(wire->data, wire->len, out, &err), &err);
	assert_int_equal(out->version, PROTO_RECORD_VERSION);
	assert_int_equal(out->type, in->type);
}

static void finish(struct proto_record *out, struct jm_buf *wire)
{
	proto_record_fini(out);
	assert_true(is_zeroed(out, sizeof *out));
	jm_buf_fini(wire);
}

static const uint8_t payload[] = {0x00, 0x01, 0xc1, 0xff, 0x90};

static struct proto_record sample_job(void)
{
	struct proto_record r = {.type = PROTO_REC_JOB};
	struct proto_rec_job *j = &r.u.job;
	j->job_id = 42;
	j->attrs.batch_id = 7;
	strcpy(j->attrs.queue, "emails");
	strcpy(j->attrs.type, "send.welcome");
	j->payload = (struct proto_bytes){payload, sizeof payload};
	j->attrs.priority = -12;
	j->attrs.max_attempts = 9;
	j->attrs.timeout_ms = 120000;
	j->state = PROTO_STATE_ACTIVE;
	j->attempt = 2;
	j->lease = 5;
	j->attrs.created_us = 1700000000000000ull;
	j->updated_us = 1700000000000500ull;
	j->run_at_us = 1700000000009000ull;
	strcpy(j->worker_id, "worker-3");
	j->last_error = text("connection reset");
	j->result = (struct proto_bytes){payload + 1, 3};
	return r;
}

static void test_job_record_round_trips_with_every_field_set(void **state)
{
	struct proto_record in = sample_job();
	struct jm_buf wire;
	struct proto_record out;
	round_trip(&in, &wire, &out);
	const struct proto_rec_job *a = &in.u.job, *b = &out.u.job;
	assert_true(a->job_id == b->job_id && a->attrs.batch_id == b->attrs.batch_id);
	assert_string_equal(a->attrs.queue, b->attrs.queue);
	assert_string_equal(a->attrs.type, b->attrs.type);
	assert_bytes_equal(a->payload, b->payload);
	assert_int_equal(a->attrs.priority, b->attrs.priority);
	assert_int_equal(a->attrs.max_attempts, b->attrs.max_attempts);
	assert_true(a->attrs.timeout_ms == b->attrs.timeout_ms);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->attempt, b->attempt);
	assert_true(a->lease == b->lease);
	assert_true(a->attrs.created_us == b->attrs.created_us && a->updated_us == b->updated_us &&
	            a->run_at_us == b->run_at_us);
	assert_string_equal(a->worker_id, b->worker_id);
	assert_bytes_equal(a->last_error, b->last_error);
	assert_bytes_equal(a->result, b->result);
	finish(&out, &wire);
}

static void test_job_record_accepts_an_empty_worker_id(void **state)
{
	struct proto_record in = sample_job();
	in.u.job.worker_id[0] = '\0';
	in.u.job.state = PROTO_STATE_PENDING;
	struct jm_buf wire;
	struct proto_record out;
	round_trip(&in, &wire, &out);
	assert_string_equal(out.u.job.worker_id, "");
	finish(&out, &wire);
}

static void test_lease_record_round_trips(void **state)
{
	struct proto_record in = {.type = PROTO_REC_LEASE};
	in.u.lease = (struct proto_rec_lease){
	    .job_id = 42, .lease = 6, .attempt = 3, .worker_id = "w-9", .at_us = 123456789};
	struct jm_buf wire;
	struct proto_record out;
	round_trip(&in, &wire, &out);
	assert_true(out.u.lease.job_id == 42 && out.u.lease.lease == 6);
	assert_int_equal(out.u.lease.attempt, 3);
	assert_string_equal(out.u.lease.worker_id, "w-9");
	assert_true(out.u.lease.at_us == 123456789);
	finish(&out, &wire);
}

static void test_settle_record_round_trips_for_every_outcome(void **state)
{
	for (uint32_t outcome = PROTO_OUTCOME_COMPLETED; outcome <= PROTO_OUTCOME_RELEASED;
	     outcome++) {
		struct proto_record in = {.type = PROTO_REC_SETTLE};
		in.u.settle = (struct proto_rec_settle){.job_id = 42,
		                                        .lease = 6,
		                                        .outcome = outcome,
		                                        .at_us = 1000,
		                                        .run_at_us = 2000 + outcome,
		                                        .data = text("some data")};
		struct jm_buf wire;
		struct proto_record out;
		round_trip(&in, &wire, &out);
		const struct proto_rec_settle *a = &in.u.settle, *b = &out.u.settle;
		assert_true(a->job_id == b->job_id && a->lease == b->lease);
		assert_int_equal(a->outcome, b->outcome);
		assert_true(a->at_us == b->at_us && a->run_at_us == b->run_at_us);
		assert_bytes_equal(a->data, b->data);
		finish(&out, &wire);
	}
}

static void test_cancel_and_drop_records_round_trip(void **state)
{
	int types[2] = {PROTO_REC_CANCEL, PROTO_REC_DROP};
	for (int i = 0; i < 2; i++) {
		struct proto_record in = {.type = types[i]};
		if (types[i] == PROTO_REC_CANCEL)
			in.u.cancel = (struct proto_rec_job_event){.job_id = 11, .at_us = 22};
		else
			in.u.drop = (struct proto_rec_job_event){.job_id = 11, .at_us = 22};
		struct jm_buf wire;
		struct proto_record out;
		round_trip(&in, &wire, &out);
		const struct proto_rec_job_event *e =
		    types[i] == PROTO_REC_CANCEL ? &out.u.cancel : &out.u.drop;
		assert_true(e->job_id == 11 && e->at_us == 22);
		finish(&out, &wire);
	}
}

static void test_revive_record_round_trips(void **state)
{
	struct proto_record in = {.type = PROTO_REC_REVIVE};
	in.u.revive =
	    (struct proto_rec_revive){.job_id = 5, .at_us = 6, .max_attempts = 1000, .lease = 9};
	struct jm_buf wire;
	struct proto_record out;
	round_trip(&in, &wire, &out);
	assert_true(out.u.revive.job_id == 5 && out.u.revive.at_us == 6);
	assert_int_equal(out.u.revive.max_attempts, 1000);
	assert_int_equal(out.u.revive.lease, 9);
	finish(&out, &wire);
}

static void test_meta_record_round_trips(void **state)
{
	struct proto_record in = {.type = PROTO_REC_META};
	in.u.meta = (struct proto_rec_meta){.next_job_id = UINT64_MAX, .boot_epoch = 3};
	struct jm_buf wire;
	struct proto_record out;
	round_trip(&in, &wire, &out);
	assert_true(out.u.meta.next_job_id == UINT64_MAX && out.u.meta.boot_epoch == 3);
	finish(&out, &wire);
}

static void test_record_fields_follow_the_type_directly(void **state)
{
	struct proto_record in = {.type = PROTO_REC_META};
	in.u.meta = (struct proto_rec_meta){.next_job_id = 5, .boot_epoch = 6};
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_ok(proto_record_encode(&in, &wire));
	static const uint8_t expected[] = {0x94, PROTO_RECORD_VERSION, PROTO_REC_META, 5, 6};
	assert_int_equal(wire.len, sizeof expected);
	assert_memory_equal(wire.data, expected, sizeof expected);
	jm_buf_fini(&wire);
}

static void test_record_decode_rejects_an_unknown_version(void **state)
{
	static const uint8_t future[] = {0x94, 0x07, PROTO_REC_META, 1, 2};
	struct proto_record out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(future, sizeof future, &out, &err), JM_EVERSION);
	assert_string_equal(err.msg, "journal record version 7 is not supported: this broker "
	                             "reads versions 1..2");
	assert_true(is_zeroed(&out, sizeof out));
}

static void test_record_decode_rejects_an_unknown_type(void **state)
{
	static const uint8_t unknown[] = {0x94, 0x01, 0x0b, 1, 2};
	struct proto_record out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(unknown, sizeof unknown, &out, &err), JM_EUNSUPPORTED);
	assert_string_equal(err.msg, "record type 11 is not supported: use 1..10");
}

static void test_record_decode_rejects_a_truncated_job_record(void **state)
{
	struct proto_record in = sample_job();
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_ok(proto_record_encode(&in, &wire));
	for (size_t len = 0; len < wire.len; len++) {
		struct proto_record out;
		memset(&out, 0x5a, sizeof out);
		struct jm_err err = {0};
		int rc = decode_copy(wire.data, len, &out, &err);
		if (rc == 0)
			fail_msg("a %zu-byte prefix of a %zu-byte job record decoded", len,
			         wire.len);
		assert_int_equal(rc, JM_EPROTO);
		assert_true(is_zeroed(&out, sizeof out));
	}
	jm_buf_fini(&wire);
}

static void test_record_decode_rejects_a_missing_field(void **state)
{
	static const uint8_t short_lease[] = {0x96, 0x01, PROTO_REC_LEASE, 1, 2, 3, 0xa1, 'w'};
	struct proto_record out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(short_lease, sizeof short_lease, &out, &err), JM_EPROTO);
	assert_string_equal(err.msg, "lease record has 4 fields: expected at least 5");
}

static void test_record_decode_accepts_extra_trailing_fields(void **state)
{
	static const uint8_t longer[] = {0x95, 0x01, PROTO_REC_META, 1, 2, 0xc0};
	struct proto_record out;
	struct jm_err err = {0};
	assert_jm_ok_err(proto_record_decode(longer, sizeof longer, &out, &err), &err);
	assert_true(out.u.meta.next_job_id == 1 && out.u.meta.boot_epoch == 2);
	proto_record_fini(&out);
}

/* Writes a JOB record with field nil_field (0..18) as nil. */
static void mp_job_record(struct jm_buf *b, int nil_field)
{
	mp_byte(b, 0xdc); /* array16: 21 items */
	mp_be(b, 2 + 19, 2);
	mp_uint(b, PROTO_RECORD_VERSION);
	mp_uint(b, PROTO_REC_JOB);
	for (int field = 0; field < 19; field++) {
		if (field == nil_field) {
			mp_nil(b);
			continue;
		}
		switch (field) {
		case 2:
			mp_str(b, "queue");
			break;
		case 3:
			mp_str(b, "type");
			break;
		case 4:
		case 14:
		case 15:
		case 16:
			mp_str(b, "");
			break;
		case 8:
			mp_uint(b, PROTO_STATE_PENDING);
			break;
		default:
			mp_uint(b, 1);
			break;
		}
	}
}

static void test_record_decode_rejects_a_wrong_type_in_each_job_field(void **state)
{
	struct jm_buf good;
	jm_buf_init(&good);
	mp_job_record(&good, -1);
	struct proto_record out;
	struct jm_err err = {0};
	assert_jm_ok_err(decode_copy(good.data, good.len, &out, &err), &err);
	jm_buf_fini(&good);

	for (int field = 0; field < 19; field++) {
		struct jm_buf b;
		jm_buf_init(&b);
		mp_job_record(&b, field);
		assert_jm_code(decode_copy(b.data, b.len, &out, &err), JM_EPROTO);
		assert_non_null(strstr(err.msg, "job record: "));
		assert_non_null(strstr(err.msg, "got nil"));
		jm_buf_fini(&b);
	}
}

static void test_lease_record_rejects_an_empty_worker_id(void **state)
{
	struct proto_record in = {.type = PROTO_REC_LEASE};
	in.u.lease = (struct proto_rec_lease){.job_id = 1, .lease = 1, .attempt = 1};
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_code(proto_record_encode(&in, &wire), JM_EINVAL);

	static const uint8_t bytes[] = {0x97, 0x01, PROTO_REC_LEASE, 1, 1, 1, 0xa0, 5};
	struct proto_record out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(bytes, sizeof bytes, &out, &err), JM_EBADNAME);
	assert_string_equal(err.msg, "lease record: worker id \"\" is invalid: use 1-64 of A-Z "
	                             "a-z 0-9 . _ -");
	jm_buf_fini(&wire);
}

static void test_settle_record_limits_error_text_but_not_results(void **state)
{
	uint8_t *big = calloc(1, PROTO_ERROR_TEXT_MAX + 1);
	assert_non_null(big);
	struct proto_record in = {.type = PROTO_REC_SETTLE};
	in.u.settle = (struct proto_rec_settle){.job_id = 1,
	                                        .lease = 1,
	                                        .outcome = PROTO_OUTCOME_COMPLETED,
	                                        .data = {big, PROTO_ERROR_TEXT_MAX + 1}};
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_ok(proto_record_encode(&in, &wire));
	in.u.settle.outcome = PROTO_OUTCOME_DEAD;
	assert_jm_code(proto_record_encode(&in, &wire), JM_EINVAL);

	/* The same bytes with the outcome patched to DEAD must not decode. */
	struct proto_record out;
	struct jm_err err = {0};
	assert_int_equal(wire.data[5], PROTO_OUTCOME_COMPLETED);
	wire.data[5] = PROTO_OUTCOME_DEAD;
	assert_jm_code(decode_copy(wire.data, wire.len, &out, &err), JM_ETOOBIG);
	assert_string_equal(err.msg, "settle record: error is 1025 bytes: at most 1024 allowed");
	jm_buf_fini(&wire);
	free(big);
}

static void test_settle_record_rejects_an_unknown_outcome(void **state)
{
	static const uint8_t bytes[] = {0x98, 0x01, PROTO_REC_SETTLE, 1, 1, 9, 0, 0, 0xa0};
	struct proto_record out;
	struct jm_err err = {0};
	assert_jm_code(decode_copy(bytes, sizeof bytes, &out, &err), JM_EINVAL);
	assert_string_equal(err.msg, "settle record: outcome 9 is out of range: use 1..4");
}

static void test_record_encode_refuses_an_invalid_state(void **state)
{
	struct proto_record in = sample_job();
	in.u.job.state = 0;
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_code(proto_record_encode(&in, &wire), JM_EINVAL);
	in.u.job.state = PROTO_STATE_CANCELLED + 1;
	assert_jm_code(proto_record_encode(&in, &wire), JM_EINVAL);
	in.type = (enum proto_record_type)0;
	assert_jm_code(proto_record_encode(&in, &wire), JM_EINVAL);
	assert_int_equal(wire.len, 0);
	jm_buf_fini(&wire);
}

static void test_record_decode_rejects_an_empty_buffer(void **state)
{
	struct proto_record out;
	struct jm_err err = {0};
	assert_jm_code(proto_record_decode(NULL, 0, &out, &err), JM_EPROTO);
	assert_true(is_zeroed(&out, sizeof out));
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void test_record_decode_survives_random_and_mutated_bytes(void **state)
{
	uint64_t seed = 0x7265636f7264ull;
	struct proto_record in = sample_job();
	struct jm_buf wire;
	jm_buf_init(&wire);
	assert_jm_ok(proto_record_encode(&in, &wire));
	uint8_t *bytes = malloc(wire.len);
	assert_non_null(bytes);
	for (int round = 0; round < 20000; round++) {
		size_t len;
		if (round % 2 == 0) {
			memcpy(bytes, wire.data, wire.len);
			for (int i = 0; i < 3; i++)
				bytes[rng_next(&seed) % wire.len] = (uint8_t)rng_next(&seed);
			len = wire.len;
		} else {
			len = rng_next(&seed) % wire.len;
			for (size_t i = 0; i < len; i++)
				bytes[i] = (uint8_t)rng_next(&seed);
			if (len >= 3) {
				bytes[0] = (uint8_t)(0x90 | (rng_next(&seed) % 16));
				bytes[1] = 0x01;
				bytes[2] = (uint8_t)(1 + rng_next(&seed) % PROTO_REC_TYPE_MAX_);
			}
		}
		struct proto_record out;
		struct jm_err err = {0};
		int rc = decode_copy(bytes, len, &out, &err);
		if (rc != 0)
			assert_true(err.code == rc && err.msg[0] != '\0');
	}
	free(bytes);
	jm_buf_fini(&wire);
}

static void test_record_type_names_are_printable(void **state)
{
	assert_string_equal(proto_record_type_name(PROTO_REC_JOB), "job");
	assert_string_equal(proto_record_type_name(PROTO_REC_META), "meta");
	assert_string_equal(proto_record_type_name(0), "unknown");
	assert_string_equal(proto_record_type_name(PROTO_REC_TYPE_MAX_ + 1), "unknown");
}

static void test_record_fini_accepts_null_and_zeroed_records(void **state)
{
	proto_record_fini(NULL);
	struct proto_record zeroed = {0};
	proto_record_fini(&zeroed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_job_record_round_trips_with_every_field_set),
	    cmocka_unit_test(test_job_record_accepts_an_empty_worker_id),
	    cmocka_unit_test(test_lease_record_round_trips),
	    cmocka_unit_test(test_settle_record_round_trips_for_every_outcome),
	    cmocka_unit_test(test_cancel_and_drop_records_round_trip),
	    cmocka_unit_test(test_revive_record_round_trips),
	    cmocka_unit_test(test_meta_record_round_trips),
	    cmocka_unit_test(test_record_fields_follow_the_type_directly),
	    cmocka_unit_test(test_record_decode_rejects_an_unknown_version),
	    cmocka_unit_test(test_record_decode_rejects_an_unknown_type),
	    cmocka_unit_test(test_record_decode_rejects_a_truncated_job_record),
	    cmocka_unit_test(test_record_decode_rejects_a_missing_field),
	    cmocka_unit_test(test_record_decode_accepts_extra_trailing_fields),
	    cmocka_unit_test(test_record_decode_rejects_a_wrong_type_in_each_job_field),
	    cmocka_unit_test(test_lease_record_rejects_an_empty_worker_id),
	    cmocka_unit_test(test_settle_record_limits_error_text_but_not_results),
	    cmocka_unit_test(test_settle_record_rejects_an_unknown_outcome),
	    cmocka_unit_test(test_record_encode_refuses_an_invalid_state),
	    cmocka_unit_test(test_record_decode_rejects_an_empty_buffer),
	    cmocka_unit_test(test_record_decode_survives_random_and_mutated_bytes),
	    cmocka_unit_test(test_record_type_names_are_printable),
	    cmocka_unit_test(test_record_fini_accepts_null_and_zeroed_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
