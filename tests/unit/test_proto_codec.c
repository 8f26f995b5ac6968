/* proto/'s msgpack layer: the pre-scan accepts every msgpack format, refuses
 * each way hostile bytes can make msgpack-c over-allocate, and agrees with
 * msgpack-c itself on random input; the getters and checks word their errors
 * for an operator. This test includes codec.h and so msgpack.h: it is
 * proto/'s own test of its internals. */
#include "jm_test.h"

#include "codec.h"

static const uint8_t every_format[] = {
    0xdc, 0x00, 0x28,                                  /* array16 of 40 values: */
    0x05, 0xff,                                        /* positive and negative fixint */
    0xc0, 0xc2, 0xc3,                                  /* nil, false, true */
    0xc4, 0x01, 'b',                                   /* bin8 */
    0xc5, 0x00, 0x02, 'b',  'b',                       /* bin16 */
    0xc6, 0x00, 0x00, 0x00, 0x01, 'b',                 /* bin32 */
    0xc7, 0x02, 0x01, 'e',  'e',                       /* ext8: length 2, type 1 */
    0xc8, 0x00, 0x01, 0x02, 'e',                       /* ext16 */
    0xc9, 0x00, 0x00, 0x00, 0x00, 0x03,                /* ext32, empty */
    0xca, 0x3f, 0x80, 0x00, 0x00,                      /* float32 1.0 */
    0xcb, 0x3f, 0xf0, 0,    0,    0,    0,    0, 0,    /* float64 1.0 */
    0xcc, 0xff,                                        /* uint8 */
    0xcd, 0xff, 0xff,                                  /* uint16 */
    0xce, 0xff, 0xff, 0xff, 0xff,                      /* uint32 */
    0xcf, 0,    0,    0,    1,    0,    0,    0, 0,    /* uint64 */
    0xd0, 0x80,                                        /* int8 */
    0xd1, 0x80, 0x00,                                  /* int16 */
    0xd2, 0x80, 0,    0,    0,                         /* int32 */
    0xd3, 0x80, 0,    0,    0,    0,    0,    0, 0,    /* int64 */
    0xd4, 0x01, 'x',                                   /* fixext1 */
    0xd5, 0x01, 'x',  'x',                             /* fixext2 */
    0xd6, 0x01, 'x',  'x',  'x',  'x',                 /* fixext4 */
    0xd7, 0x01, 1,    2,    3,    4,    5,    6, 7, 8, /* fixext8 */
    0xd8, 0x01, 1,    2,    3,    4,    5,    6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* fixext16 */
    0xa3, 's',  's',  's',                                                            /* fixstr */
    0xd9, 0x01, 's',                                                                  /* str8 */
    0xda, 0x00, 0x01, 's',                                                            /* str16 */
    0xdb, 0x00, 0x00, 0x00, 0x01, 's',                                                /* str32 */
    0x91, 0x01,                                                                       /* fixarray */
    0xdd, 0x00, 0x00, 0x00, 0x01, 0x01,                                               /* array32 */
    0x81, 0x01, 0x02,                                                                 /* fixmap */
    0xde, 0x00, 0x01, 0x01, 0x02,                                                     /* map16 */
    0xdf, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02,                                         /* map32 */
    0x90, 0x80,                                                                       /* empty */
    0xa0, 0xc4, 0x00, /* empty str, empty bin */
    0xe0,             /* -32, the 40th value */
};

static void test_prescan_accepts_every_msgpack_format(void **state)
{
	struct jm_err err = {0};
	assert_jm_ok_err(codec_prescan(every_format, sizeof every_format, &err), &err);
	msgpack_zone *zone;
	msgpack_object root;
	assert_jm_ok_err(codec_unpack(every_format, sizeof every_format, &zone, &root, &err), &err);
	assert_int_equal(root.type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(root.via.array.size, 40);
	msgpack_zone_free(zone);
}

static void test_prescan_rejects_an_array_count_beyond_the_bytes_left(void **state)
{
	static const uint8_t bomb[] = {0xdd, 0x02, 0xfa, 0xf0, 0x80, 0x01};
	static const uint8_t bomb16[] = {0xdc, 0x00, 0x03, 0x01, 0x01};
	static const uint8_t fix[] = {0x93, 0x01, 0x01};
	struct jm_err err = {0};
	assert_jm_code(codec_prescan(bomb, sizeof bomb, &err), JM_EPROTO);
	assert_string_equal(err.msg,
	                    "byte 0: array of 50000000 entries cannot fit in the 1 bytes left");
	assert_jm_code(codec_prescan(bomb16, sizeof bomb16, &err), JM_EPROTO);
	assert_jm_code(codec_prescan(fix, sizeof fix, &err), JM_EPROTO);
}

static void test_prescan_rejects_a_map_count_needing_two_values_per_entry(void **state)
{
	/* 3 entries need at least 6 bytes; 5 are left. */
	static const uint8_t map[] = {0xde, 0x00, 0x03, 1, 2, 3, 4, 5};
	static const uint8_t huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2};
	struct jm_err err = {0};
	assert_jm_code(codec_prescan(map, sizeof map, &err), JM_EPROTO);
	assert_non_null(strstr(err.msg, "map of 3 entries"));
	assert_jm_code(codec_prescan(huge, sizeof huge, &err), JM_EPROTO);
}

static void test_prescan_rejects_lengths_beyond_the_bytes_left(void **state)
{
	static const uint8_t cases[][8] = {
	    {0xa5, 's', 's'},                     /* fixstr 5 */
	    {0xd9, 0x05, 's'},                    /* str8 */
	    {0xda, 0x00, 0x05, 's'},              /* str16 */
	    {0xdb, 0xff, 0xff, 0xff, 0xff, 's'},  /* str32 of 4 GiB */
	    {0xc4, 0x05, 'b'},                    /* bin8 */
	    {0xc5, 0x00, 0x05, 'b'},              /* bin16 */
	    {0xc6, 0x7f, 0xff, 0xff, 0xff, 'b'},  /* bin32 */
	    {0xc7, 0x05, 0x01, 'e'},              /* ext8 */
	    {0xc8, 0x00, 0x05, 0x01, 'e'},        /* ext16 */
	    {0xc9, 0x00, 0x00, 0x00, 0x05, 0x01}, /* ext32 */
	    {0xd8, 0x01, 1, 2, 3},                /* fixext16 */
	    {0xcf, 1, 2, 3},                      /* uint64 */
	    {0xcb, 1},                            /* float64 */
	};
	static const size_t lens[] = {3, 3, 4, 6, 3, 4, 6, 4, 5, 6, 5, 4, 2};
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		struct jm_err err = {0};
		int rc = codec_prescan(cases[i], lens[i], &err);
		if (rc != JM_EPROTO)
			fail_msg("case %zu (0x%02x): returned %d", i, cases[i][0], rc);
		assert_non_null(strstr(err.msg, "truncated"));
	}
}

static void test_prescan_rejects_a_truncated_length_field(void **state)
{
	static const uint8_t str16[] = {0xda, 0x00};
	static const uint8_t array32[] = {0xdd, 0x00, 0x00, 0x00};
	struct jm_err err = {0};
	assert_jm_code(codec_prescan(str16, sizeof str16, &err), JM_EPROTO);
	assert_string_equal(err.msg, "truncated: a 2-byte length at byte 1 but only 1 bytes left");
	assert_jm_code(codec_prescan(array32, sizeof array32, &err), JM_EPROTO);
}

static void test_prescan_rejects_the_never_used_byte(void **state)
{
	static const uint8_t bad[] = {0x92, 0x01, 0xc1};
	struct jm_err err = {0};
	assert_jm_code(codec_prescan(bad, sizeof bad, &err), JM_EPROTO);
	assert_string_equal(err.msg, "byte 2: 0xc1 is not a msgpack type");
}

static void test_prescan_allows_nesting_up_to_the_depth_limit(void **state)
{
	uint8_t bytes[PROTO_DEPTH_MAX + 1];
	memset(bytes, 0x91, PROTO_DEPTH_MAX);
	bytes[PROTO_DEPTH_MAX] = 0x01; /* 8 arrays around one integer */
	struct jm_err err = {0};
	assert_jm_ok_err(codec_prescan(bytes, sizeof bytes, &err), &err);
	bytes[PROTO_DEPTH_MAX - 1] = 0x90; /* ... or around nothing */
	assert_jm_ok_err(codec_prescan(bytes, PROTO_DEPTH_MAX, &err), &err);
}

static void test_prescan_rejects_nesting_one_deeper_than_the_limit(void **state)
{
	uint8_t bytes[PROTO_DEPTH_MAX + 2];
	memset(bytes, 0x91, PROTO_DEPTH_MAX + 1);
	bytes[PROTO_DEPTH_MAX + 1] = 0x01;
	struct jm_err err = {0};
	assert_jm_code(codec_prescan(bytes, sizeof bytes, &err), JM_EPROTO);
	assert_non_null(strstr(err.msg, "nested more than 8 deep"));
	/* An empty container counts as a level too, and so does a map. */
	bytes[PROTO_DEPTH_MAX] = 0x80;
	assert_jm_code(codec_prescan(bytes, PROTO_DEPTH_MAX + 1, &err), JM_EPROTO);
}

static void test_prescan_rejects_trailing_bytes(void **state)
{
	static const uint8_t two[] = {0x01, 0x02};
	static const uint8_t after_array[] = {0x91, 0x01, 0xc0, 0xc0};
	struct jm_err err = {0};
	assert_jm_code(codec_prescan(two, sizeof two, &err), JM_EPROTO);
	assert_string_equal(err.msg, "1 bytes of trailing garbage after the message's 1 bytes");
	assert_jm_code(codec_prescan(after_array, sizeof after_array, &err), JM_EPROTO);
}

static void test_prescan_rejects_empty_input(void **state)
{
	struct jm_err err = {0};
	assert_jm_code(codec_prescan(NULL, 0, &err), JM_EPROTO);
}

static void put_array32(uint8_t *p, uint32_t count)
{
	p[0] = 0xdd;
	p[1] = (uint8_t)(count >> 24);
	p[2] = (uint8_t)(count >> 16);
	p[3] = (uint8_t)(count >> 8);
	p[4] = (uint8_t)count;
}

static void test_prescan_rejects_more_values_than_the_cap(void **state)
{
	/* An array of CODEC_VALUES_MAX nils is one value too many. */
	size_t len = 5 + CODEC_VALUES_MAX;
	uint8_t *bytes = malloc(len);
	assert_non_null(bytes);
	put_array32(bytes, CODEC_VALUES_MAX);
	memset(bytes + 5, 0xc0, CODEC_VALUES_MAX);
	struct jm_err err = {0};
	assert_jm_code(codec_prescan(bytes, len, &err), JM_ETOOBIG);
	put_array32(bytes, CODEC_VALUES_MAX - 1);
	assert_jm_ok_err(codec_prescan(bytes, len - 1, &err), &err);
	free(bytes);
}

static void test_unpack_borrows_str_and_bin_from_the_input(void **state)
{
	static const uint8_t bytes[] = {0x92, 0xa3, 'a', 'b', 'c', 0xc4, 0x02, 'x', 'y'};
	msgpack_zone *zone;
	msgpack_object root;
	struct jm_err err = {0};
	assert_jm_ok_err(codec_unpack(bytes, sizeof bytes, &zone, &root, &err), &err);
	assert_ptr_equal(root.via.array.ptr[0].via.str.ptr, (const char *)bytes + 2);
	assert_ptr_equal(root.via.array.ptr[1].via.bin.ptr, (const char *)bytes + 7);
	msgpack_zone_free(zone);
}

static void test_unpack_gives_a_zone_even_for_a_scalar(void **state)
{
	static const uint8_t scalar[] = {0x2a};
	msgpack_zone *zone;
	msgpack_object root;
	struct jm_err err = {0};
	assert_jm_ok_err(codec_unpack(scalar, 1, &zone, &root, &err), &err);
	assert_non_null(zone);
	assert_non_null(codec_alloc(zone, 4, sizeof(uint64_t), &err));
	msgpack_zone_free(zone);
}

static void test_unpack_rejects_input_over_the_message_limit(void **state)
{
	static const uint8_t byte = 0x01;
	msgpack_zone *zone = (msgpack_zone *)&byte;
	msgpack_object root;
	struct jm_err err = {0};
	/* The length alone decides: nothing past the first byte is read. */
	assert_jm_code(codec_unpack(&byte, (size_t)PROTO_MESSAGE_MAX + 1, &zone, &root, &err),
	               JM_ETOOBIG);
	assert_null(zone);
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Random bytes without 16/32-bit array and map headers (so msgpack-c can
 * be run on them unguarded without reserving much): wherever msgpack-c
 * reads one whole object from all the bytes, the pre-scan must agree, and
 * the reverse, except for what only we refuse (depth, trailing bytes). */
static void test_prescan_agrees_with_msgpack_on_random_input(void **state)
{
	uint64_t seed = 0x636f646563ull;
	uint8_t bytes[24];
	int accepted = 0;
	for (int round = 0; round < 200000; round++) {
		size_t len = 1 + rng_next(&seed) % sizeof bytes;
		for (size_t i = 0; i < len; i++) {
			uint8_t b = (uint8_t)rng_next(&seed);
			if (b >= 0xdc && b <= 0xdf)
				b = (uint8_t)(b & 0x0f);
			/* Favour small containers and scalars to reach depth. */
			if (i == 0 && round % 2 == 0)
				b = (uint8_t)(0x90 | (b & 0x03));
			bytes[i] = b;
		}
		struct jm_err err = {0};
		bool ours = codec_prescan(bytes, len, &err) == 0;
		msgpack_unpacked unpacked;
		msgpack_unpacked_init(&unpacked);
		size_t off = 0;
		msgpack_unpack_return ret =
		    msgpack_unpack_next(&unpacked, (const char *)bytes, len, &off);
		bool theirs = ret == MSGPACK_UNPACK_SUCCESS && off == len;
		msgpack_unpacked_destroy(&unpacked);
		if (ours && !theirs)
			fail_msg("round %d: pre-scan accepted %zu bytes msgpack-c refused (%d)",
			         round, len, (int)ret);
		if (theirs && !ours && strstr(err.msg, "nested") == NULL)
			fail_msg("round %d: pre-scan refused what msgpack-c read: %s", round,
			         err.msg);
		accepted += ours;
	}
	assert_true(accepted > 1000);
}

static void test_name_errors_escape_control_bytes_and_elide_long_names(void **state)
{
	char raw[100];
	memset(raw, 'a', sizeof raw);
	raw[1] = '\n';
	raw[2] = '"';
	msgpack_object o = {.type = MSGPACK_OBJECT_STR};
	o.via.str.ptr = raw;
	o.via.str.size = sizeof raw;
	proto_name out;
	struct jm_err err = {0};
	assert_jm_code(codec_name(&o, "queue name", false, out, &err), JM_EBADNAME);
	assert_null(strchr(err.msg, '\n'));
	assert_non_null(strstr(err.msg, "queue name \"a\\x0a\\x22aaa"));
	assert_non_null(strstr(err.msg, "...\" is invalid: use 1-64 of"));
}

static void test_getters_name_the_field_and_the_kind_received(void **state)
{
	msgpack_object o = {.type = MSGPACK_OBJECT_MAP};
	uint64_t u;
	bool b;
	struct proto_bytes bytes;
	struct jm_err err = {0};
	assert_jm_code(codec_u64(&o, "lease", &u, &err), JM_EPROTO);
	assert_string_equal(err.msg, "lease must be an integer, got a map");
	assert_jm_code(codec_bool(&o, "draining", &b, &err), JM_EPROTO);
	assert_string_equal(err.msg, "draining must be true or false, got a map");
	assert_jm_code(codec_bytes(&o, "payload", &bytes, &err), JM_EPROTO);
	assert_string_equal(err.msg, "payload must be bytes or a string, got a map");
}

static void test_i32_getter_takes_the_whole_int32_range_only(void **state)
{
	msgpack_object o = {.type = MSGPACK_OBJECT_NEGATIVE_INTEGER};
	int32_t v;
	struct jm_err err = {0};
	o.via.i64 = INT32_MIN;
	assert_jm_ok(codec_i32(&o, "code", &v, &err));
	assert_int_equal(v, INT32_MIN);
	o.via.i64 = (int64_t)INT32_MIN - 1;
	assert_jm_code(codec_i32(&o, "code", &v, &err), JM_EINVAL);
	o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
	o.via.u64 = INT32_MAX;
	assert_jm_ok(codec_i32(&o, "code", &v, &err));
	o.via.u64 = (uint64_t)INT32_MAX + 1;
	assert_jm_code(codec_i32(&o, "code", &v, &err), JM_EINVAL);
}

static void test_check_size_names_the_limit(void **state)
{
	static const uint8_t data[4];
	struct proto_bytes b = {data, 4};
	struct jm_err err = {0};
	assert_jm_ok(codec_check_size(&b, "host", 4, &err));
	assert_jm_code(codec_check_size(&b, "host", 3, &err), JM_ETOOBIG);
	assert_string_equal(err.msg, "host is 4 bytes: at most 3 allowed");
	b.ptr = NULL;
	assert_jm_code(codec_check_size(&b, "host", 4, &err), JM_EINVAL);
}

static void test_writer_appends_and_reports_its_size(void **state)
{
	struct jm_buf out;
	jm_buf_init(&out);
	assert_jm_ok(jm_buf_append(&out, "ab", 2));
	struct codec_writer w;
	codec_writer_init(&w, &out);
	codec_put_array(&w, 3);
	codec_put_uint(&w, 300);
	codec_put_int(&w, -1);
	codec_put_name(&w, "q");
	assert_jm_ok(codec_writer_finish(&w));
	static const uint8_t expected[] = {'a', 'b', 0x93, 0xcd, 0x01, 0x2c, 0xff, 0xa1, 'q'};
	assert_int_equal(out.len, sizeof expected);
	assert_memory_equal(out.data, expected, sizeof expected);
	jm_buf_fini(&out);
}

/* The writer packs by hand: every form at each boundary must come out
 * as msgpack-c's own packer writes it (journals written before must read
 * back, and peers decode with msgpack-c). */
static void test_writer_emits_what_msgpack_c_packs_at_every_boundary(void **state)
{
	(void)state;
	static const uint64_t uints[] = {0,           1,           127,      128,
	                                 255,         256,         65535,    65536,
	                                 4294967295u, 4294967296u, 1u << 31, UINT64_MAX - 1,
	                                 UINT64_MAX};
	static const int64_t ints[] = {0,
	                               -1,
	                               -31,
	                               -32,
	                               -33,
	                               -127,
	                               -128,
	                               -129,
	                               -32767,
	                               -32768,
	                               -32769,
	                               INT32_MIN + 1,
	                               INT32_MIN,
	                               (int64_t)INT32_MIN - 1,
	                               INT64_MIN,
	                               127,
	                               128,
	                               255,
	                               256,
	                               65535,
	                               65536,
	                               INT32_MAX,
	                               (int64_t)INT32_MAX + 1,
	                               INT64_MAX};
	static const size_t lens[] = {0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000};
	static uint8_t bytes[70000];
	memset(bytes, 's', sizeof bytes);
	struct jm_buf out;
	jm_buf_init(&out);
	struct codec_writer w;
	codec_writer_init(&w, &out);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	for (size_t i = 0; i < sizeof uints / sizeof uints[0]; i++) {
		codec_put_uint(&w, uints[i]);
		msgpack_pack_uint64(&pk, uints[i]);
	}
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		codec_put_int(&w, ints[i]);
		msgpack_pack_int64(&pk, ints[i]);
	}
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		struct proto_bytes b = {.ptr = bytes, .len = lens[i]};
		codec_put_text(&w, &b);
		msgpack_pack_str_with_body(&pk, bytes, lens[i]);
		codec_put_bin(&w, &b);
		msgpack_pack_bin_with_body(&pk, bytes, lens[i]);
		codec_put_array(&w, (uint32_t)lens[i]);
		msgpack_pack_array(&pk, lens[i]);
	}
	codec_put_bool(&w, true);
	msgpack_pack_true(&pk);
	codec_put_bool(&w, false);
	msgpack_pack_false(&pk);
	codec_put_name(&w, "a-queue");
	msgpack_pack_str_with_body(&pk, "a-queue", 7);
	assert_jm_ok(codec_writer_finish(&w));
	assert_int_equal(out.len, sb.size);
	assert_memory_equal(out.data, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	jm_buf_fini(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prescan_accepts_every_msgpack_format),
	    cmocka_unit_test(test_prescan_rejects_an_array_count_beyond_the_bytes_left),
	    cmocka_unit_test(test_prescan_rejects_a_map_count_needing_two_values_per_entry),
	    cmocka_unit_test(test_prescan_rejects_lengths_beyond_the_bytes_left),
	    cmocka_unit_test(test_prescan_rejects_a_truncated_length_field),
	    cmocka_unit_test(test_prescan_rejects_the_never_used_byte),
	    cmocka_unit_test(test_prescan_allows_nesting_up_to_the_depth_limit),
	    cmocka_unit_test(test_prescan_rejects_nesting_one_deeper_than_the_limit),
	    cmocka_unit_test(test_prescan_rejects_trailing_bytes),
	    cmocka_unit_test(test_prescan_rejects_empty_input),
	    cmocka_unit_test(test_prescan_rejects_more_values_than_the_cap),
	    cmocka_unit_test(test_unpack_borrows_str_and_bin_from_the_input),
	    cmocka_unit_test(test_unpack_gives_a_zone_even_for_a_scalar),
	    cmocka_unit_test(test_unpack_rejects_input_over_the_message_limit),
	    cmocka_unit_test(test_prescan_agrees_with_msgpack_on_random_input),
	    cmocka_unit_test(test_name_errors_escape_control_bytes_and_elide_long_names),
	    cmocka_unit_test(test_getters_name_the_field_and_the_kind_received),
	    cmocka_unit_test(test_i32_getter_takes_the_whole_int32_range_only),
	    cmocka_unit_test(test_check_size_names_the_limit),
	    cmocka_unit_test(test_writer_appends_and_reports_its_size),
	    cmocka_unit_test(test_writer_emits_what_msgpack_c_packs_at_every_boundary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
