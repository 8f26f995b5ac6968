/* For the tests that hold a direct decoder against the generic path
 * (test_proto_submit_decode.c, test_proto_jobs_decode.c): msgpack written
 * byte by byte, in a chosen form for each value, and the checks both make.
 * Include after jm_test.h. */
#ifndef JM_TESTS_MSGPACK_BYTES_H
#define JM_TESTS_MSGPACK_BYTES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "message.h"
#include "submit_decode.h"

static inline void put(struct jm_buf *b, uint8_t v)
{
	assert_jm_ok(jm_buf_append(b, &v, 1));
}

static inline void put_be(struct jm_buf *b, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		put(b, (uint8_t)(v >> (8 * i)));
}

/* An integer in the form named by tag (0: fixint when it fits). */
static inline void put_int(struct jm_buf *b, int64_t v, uint8_t tag)
{
	if (tag == 0) {
		assert_true(v >= -32 && v < 128);
		put(b, (uint8_t)v);
		return;
	}
	put(b, tag);
	int bytes = tag >= 0xd0 ? 1 << (tag - 0xd0) : 1 << (tag - 0xcc);
	put_be(b, (uint64_t)v, bytes);
}

/* Every form a direct decoder's test writes each kind of value in: an
 * integer (put_int), a name (put_bytes: str, and bin, which a name may not
 * be) and bytes (put_bytes: str or bin). */
static const uint8_t msgpack_int_tags[] = {0, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3};
static const uint8_t msgpack_name_tags[] = {0xa0, 0xd9, 0xda, 0xdb, 0xc4};
static const uint8_t msgpack_bytes_tags[] = {0xa0, 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6};

/* A str (0xa0: fixstr, 0xd9, 0xda, 0xdb) or bin (0xc4..0xc6) of s. */
static inline void put_bytes(struct jm_buf *b, const char *s, size_t n, uint8_t tag)
{
	if (tag == 0xa0) {
		put(b, (uint8_t)(0xa0 | n));
	} else {
		put(b, tag);
		int bytes = tag == 0xd9 || tag == 0xc4 ? 1 : tag == 0xda || tag == 0xc5 ? 2 : 4;
		put_be(b, n, bytes);
	}
	if (n > 0)
		assert_jm_ok(jm_buf_append(b, s, n));
}

/* Asserts that what a direct decoder took (direct) is what the generic
 * path made of the same bytes (generic): the message's own fields. */
typedef void (*same_message_fn)(const struct proto_msg *direct, const struct proto_msg *generic);

/* Decodes data with decode and with the generic path, from an exact-size
 * copy (so ASan sees any overread): when decode accepts, the generic path
 * must accept, with the same type, version and, by same, fields; when it
 * declines, it must leave its message zeroed. Returns whether decode
 * accepted. */
static inline bool direct_agrees_with(const uint8_t *data, size_t len,
                                      int (*decode)(const void *, size_t, struct proto_msg *),
                                      same_message_fn same)
{
	uint8_t *copy = malloc(len > 0 ? len : 1);
	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, data, len);
	struct proto_msg direct, generic;
	struct jm_err err;
	int taken = decode(copy, len, &direct);
	int rc = proto_decode_generic(copy, len, &generic, &err);
	if (taken) {
		if (rc != 0)
			fail_msg("the direct decoder took what the generic path refuses: %s",
			         jm_err_text(&err));
		assert_int_equal(direct.type, generic.type);
		assert_int_equal(direct.version, generic.version);
		same(&direct, &generic);
	} else {
		static const struct proto_msg zeroed;
		assert_memory_equal(&direct, &zeroed, sizeof direct);
	}
	proto_msg_fini(&direct);
	if (rc == 0)
		proto_msg_fini(&generic);
	free(copy);
	return taken;
}

/* Holds a direct decoder to its promise on msg (len bytes, taken whole):
 * agrees(data, len) decodes both ways and fails the test on any
 * disagreement, returning whether the direct decoder took the bytes. No
 * truncation and no trailing byte may be taken; msg with each byte
 * changed to each value that matters to msgpack (tags, bounds) is decoded
 * both ways; msg itself must still be taken at the end. */
static inline void hold_to_the_generic_path(uint8_t *msg, size_t len,
                                            bool (*agrees)(const uint8_t *, size_t))
{
	for (size_t cut = 0; cut < len; cut++)
		assert_false(agrees(msg, cut));
	uint8_t *longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, msg, len);
	longer[len] = 0xc0;
	assert_false(agrees(longer, len + 1));
	free(longer);
	static const uint8_t values[] = {0x00, 0x01, 0x02, 0x05, 0x0a, 0x20, 0x7f, 0x80,
	                                 0x90, 0x91, 0x93, 0x97, 0x9f, 0xa0, 0xbf, 0xc0,
	                                 0xc1, 0xc2, 0xc3, 0xc4, 0xcc, 0xcf, 0xd0, 0xd3,
	                                 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xe0, 0xff};
	for (size_t at = 0; at < len; at++) {
		uint8_t was = msg[at];
		for (size_t v = 0; v < sizeof values; v++) {
			msg[at] = values[v];
			(void)agrees(msg, len);
		}
		msg[at] = was;
	}
	assert_true(agrees(msg, len));
}

#endif
