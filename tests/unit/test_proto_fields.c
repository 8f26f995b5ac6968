/* The field-descriptor walkers (proto/fields.c) on a descriptor of their
 * own: fields past `required` may be missing and stay zero, extra trailing
 * items are skipped, fewer than required are refused naming the field
 * list, and encode writes every field. Each wire message and record kind
 * goes through the same walkers; test_proto_golden pins their bytes. */
#include "jm_test.h"

#include "buf.h"
#include "fields.h"

struct sample {
	uint64_t id;
	uint32_t count; /* 1..9 */
	proto_name name;
};

static const struct field sample_field[] = {
    F_U64(struct sample, id),
    F_U32_IN(struct sample, count, 1, 9),
    F_NAME_OR_EMPTY(struct sample, name, "sample name"),
};
/* Only id is required: count and name came later. */
static const struct fields sample_fields = {
    .field = sample_field, .count = 3, .required = 1, .check = NULL};

/* Decodes the msgpack bytes into out through the walker. */
static int decode(const char *bytes, size_t len, struct sample *out, struct jm_err *err)
{
	msgpack_zone *zone;
	msgpack_object root;
	memset(out, 0, sizeof *out);
	jm_err_clear(err);
	int rc = codec_unpack(bytes, len, &zone, &root, err);
	if (rc != 0)
		return rc;
	rc = fields_decode(&sample_fields, &root, zone, out, err);
	msgpack_zone_free(zone);
	return rc;
}

static void test_missing_optional_fields_stay_zero(void **state)
{
	(void)state;
	struct sample s;
	struct jm_err err;
	assert_jm_ok_err(decode("\x91\x05", 2, &s, &err), &err); /* [5] */
	assert_int_equal(s.id, 5);
	assert_int_equal(s.count, 0);
	assert_string_equal(s.name, "");
}

static void test_extra_trailing_items_are_skipped(void **state)
{
	(void)state;
	struct sample s;
	struct jm_err err;
	/* [5, 7, "ab", true] */
	assert_jm_ok_err(decode("\x94\x05\x07\xa2"
	                        "ab\xc3",
	                        7, &s, &err),
	                 &err);
	assert_int_equal(s.id, 5);
	assert_int_equal(s.count, 7);
	assert_string_equal(s.name, "ab");
	assert_jm_ok_err(fields_check(&sample_fields, &s, &err), &err);
}

static void test_fewer_than_required_is_refused_naming_the_fields(void **state)
{
	(void)state;
	struct sample s;
	struct jm_err err;
	assert_jm_code(decode("\x90", 1, &s, &err), JM_EPROTO); /* [] */
	assert_string_equal(err.msg, "has 0 fields: expected [id[, count, name]]");
	assert_jm_code(decode("\x05", 1, &s, &err), JM_EPROTO); /* 5 */
	assert_string_equal(err.msg,
	                    "must be an array [id[, count, name]], got a positive integer");
}

static void test_check_judges_each_field_with_its_label(void **state)
{
	(void)state;
	struct sample s = {.id = 1, .count = 10, .name = "ok"};
	struct jm_err err;
	assert_jm_code(fields_check(&sample_fields, &s, &err), JM_EINVAL);
	assert_string_equal(err.msg, "count 10 is out of range: use 1..9");
	s.count = 9;
	strcpy(s.name, "a b");
	assert_jm_code(fields_check(&sample_fields, &s, &err), JM_EBADNAME);
	assert_string_equal(err.msg,
	                    "sample name \"a b\" is invalid: use 1-64 of A-Z a-z 0-9 . _ -");
}

static void test_encode_writes_every_field_in_order(void **state)
{
	(void)state;
	struct sample s = {.id = 300, .count = 2, .name = "n"};
	struct jm_buf out = {0};
	struct codec_writer w;
	codec_writer_init(&w, &out);
	fields_encode(&w, &sample_fields, &s);
	assert_jm_ok(codec_writer_finish(&w));
	static const uint8_t want[] = {0x93, 0xcd, 0x01, 0x2c, 0x02, 0xa1, 'n'};
	assert_int_equal(out.len, sizeof want);
	assert_memory_equal(out.data, want, sizeof want);
	jm_buf_fini(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_missing_optional_fields_stay_zero),
	    cmocka_unit_test(test_extra_trailing_items_are_skipped),
	    cmocka_unit_test(test_fewer_than_required_is_refused_naming_the_fields),
	    cmocka_unit_test(test_check_judges_each_field_with_its_label),
	    cmocka_unit_test(test_encode_writes_every_field_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
