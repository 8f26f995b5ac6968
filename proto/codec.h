/* The msgpack layer under fields.c (the walkers over every message's and
 * record's field descriptors): proto/'s internal header, never included
 * outside proto/ (and proto's own tests), because it is the one place that
 * exposes msgpack.h.
 *
 * Decoding is two passes. codec_prescan() walks the raw bytes and proves
 * that every declared length and count fits in what is left, that nesting
 * stays within PROTO_DEPTH_MAX and that exactly one object fills the buffer;
 * only then does codec_unpack() let msgpack-c build objects, because
 * msgpack-c reserves memory for an array or map as soon as it reads its
 * header (6 hostile bytes could otherwise claim gigabytes). The getters
 * below then check each field's type; the codec_check_* functions check
 * ranges and sizes and are shared by encoders and decoders, so what we send
 * and what we accept obey the same rules.
 *
 * Errors name the field and what is allowed; callers prefix where they are
 * ("submit: job 3: "). Unlike the public API, every err here must be
 * non-NULL: callers chain getters with || and return err->code.
 *
 * Encoding goes through a codec_writer whose errors are sticky: the encoders
 * write field after field and look at the result once, in
 * codec_writer_finish(), which also rolls the buffer back on failure. */
#ifndef JM_PROTO_CODEC_H
#define JM_PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "buf.h"
#include "err.h"
#include "message.h"

/* Most msgpack values (scalars and containers) one decode accepts. The
 * biggest valid message, a SUBMIT of PROTO_JOBS_PER_MESSAGE_MAX jobs, holds
 * about 80,000; the cap keeps msgpack-c's object tree (24 bytes a value)
 * under 25 MiB even for a PROTO_MESSAGE_MAX message of one-byte values. */
#define CODEC_VALUES_MAX (1u << 20)

/* Walks len bytes at buf as one msgpack object without building anything.
 * Returns 0 when the bytes hold exactly one well-formed object whose every
 * str/bin/ext length fits in the bytes left, every array count is at most
 * the bytes left (and every map count at most half of them), nesting is at
 * most PROTO_DEPTH_MAX containers and at most CODEC_VALUES_MAX values;
 * else JM_EPROTO (JM_ETOOBIG past the value cap) with the offset in err. */
int codec_prescan(const uint8_t *buf, size_t len, struct jm_err *err);

/* Pre-scans, then unpacks len bytes at buf into *root. On success *zone
 * holds msgpack-c's allocations (the caller frees it with
 * msgpack_zone_free) and str/bin objects in *root point into buf. On
 * failure nothing is left allocated and *zone is NULL. Errors: JM_EPROTO,
 * JM_ETOOBIG (over PROTO_MESSAGE_MAX), JM_ENOMEM. */
int codec_unpack(const void *buf, size_t len, msgpack_zone **zone, msgpack_object *root,
                 struct jm_err *err);

/* Decodes one whole object of buf into out (out_size bytes): clears err
 * (which may be NULL) and out, unpacks, then hands the root to decode. On
 * success *zone_out (out's zone_ field) owns every allocation out points
 * into; on failure the zone is freed and out is zeroed, so a caller never
 * holds half a result. The one ownership rule behind proto_decode and
 * proto_record_decode. */
typedef int (*codec_root_fn)(const msgpack_object *root, msgpack_zone *zone, void *out,
                             struct jm_err *err);
int codec_decode(const void *buf, size_t len, codec_root_fn decode, void *out, size_t out_size,
                 void **zone_out, struct jm_err *err);

/* "an integer", "a string", ... for error messages. */
const char *codec_kind(const msgpack_object *o);

/* Requires o to be an array of at least min_fields items, and points
 * *items at them. field_list ("queue, type, payload") goes into the error
 * so the reader sees what was expected. Extra items are allowed: a newer
 * peer may append fields. */
int codec_fields(const msgpack_object *o, uint32_t min_fields, const char *field_list,
                 const msgpack_object **items, struct jm_err *err);

/* Requires o to be an array of min..max items (JM_EPROTO when not an
 * array, JM_EINVAL when the count is out of range). */
int codec_array(const msgpack_object *o, const char *field, uint32_t min, uint32_t max,
                const msgpack_object **items, uint32_t *count, struct jm_err *err);

/* Integer getters: JM_EPROTO for a value of another type, JM_EINVAL for an
 * integer that does not fit the C type. */
int codec_u64(const msgpack_object *o, const char *field, uint64_t *out, struct jm_err *err);
int codec_u32(const msgpack_object *o, const char *field, uint32_t *out, struct jm_err *err);
int codec_i32(const msgpack_object *o, const char *field, int32_t *out, struct jm_err *err);
int codec_bool(const msgpack_object *o, const char *field, bool *out, struct jm_err *err);

/* Accepts bin or str. out borrows from the decoded buffer; ptr is NULL when
 * len is 0. Sizes are checked by codec_check_size, not here. */
int codec_bytes(const msgpack_object *o, const char *field, struct proto_bytes *out,
                struct jm_err *err);

/* Requires a str that passes proto_name_is_valid (or is empty when
 * allow_empty) and copies it NUL-terminated into out. JM_EBADNAME with
 * PROTO_NAME_RULE in the message when it does not. */
int codec_name(const msgpack_object *o, const char *field, bool allow_empty, proto_name out,
               struct jm_err *err);

/* count elements of size bytes from zone; NULL (and no error) when count
 * is 0, NULL with JM_ENOMEM in err when the zone is exhausted. */
void *codec_alloc(msgpack_zone *zone, uint32_t count, size_t size, struct jm_err *err);

/* Range and size checks shared by encoders and decoders. */

/* JM_EINVAL unless min <= value <= max: "priority 5000 is out of range:
 * use -1000..1000". */
int codec_check_u32(uint64_t value, const char *field, uint64_t min, uint64_t max,
                    struct jm_err *err);
int codec_check_i32(int64_t value, const char *field, int64_t min, int64_t max, struct jm_err *err);

/* JM_EINVAL unless min <= count <= max, or when count > 0 and items is
 * NULL (a message in memory that could not be encoded). */
int codec_check_count(uint32_t count, const void *items, const char *field, uint32_t min,
                      uint32_t max, struct jm_err *err);

/* JM_ETOOBIG when b->len > max ("payload is 2097152 bytes: at most 1048576
 * allowed"); JM_EINVAL when b->len > 0 and b->ptr is NULL. */
int codec_check_size(const struct proto_bytes *b, const char *field, uint32_t max,
                     struct jm_err *err);

/* JM_EBADNAME unless name is NUL-terminated within a proto_name and passes
 * proto_name_is_valid (or is empty when allow_empty). */
int codec_check_name(const char *name, const char *field, bool allow_empty, struct jm_err *err);

/* The same for len bytes at name, which need not be NUL-terminated nor fit
 * a proto_name (an SDK caller's string): never empty. */
int codec_check_name_len(const char *name, size_t len, const char *field, struct jm_err *err);

/* Encoding.
 *
 * The raw emitters store one value's msgpack form at `at` (room for its
 * CODEC_RAW_*_MAX bytes, or head plus body, already reserved) and return the
 * bytes written: the one place the format's choice of form lives (the
 * smallest form of each integer and length, str8 for text of 32-255 bytes,
 * byte for byte what msgpack-c's packer emits). The codec_put_* functions
 * below reserve and call them; an encoder that knows its whole size (the
 * JOB record, record_job.c) reserves once and calls them directly. */
#define CODEC_RAW_UINT_MAX 9 /* also the longest int, array and length head */

static inline size_t codec_raw_be(uint8_t *at, uint64_t value, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		at[i] = (uint8_t)(value >> (8 * (bytes - 1 - i)));
	return bytes;
}

static inline size_t codec_raw_head(uint8_t *at, uint8_t tag, uint64_t value, unsigned bytes)
{
	at[0] = tag;
	return 1 + codec_raw_be(at + 1, value, bytes);
}

static inline size_t codec_raw_array(uint8_t *at, uint32_t items)
{
	if (items < 16)
		return codec_raw_head(at, (uint8_t)(0x90 | items), 0, 0);
	if (items < 65536)
		return codec_raw_head(at, 0xdc, items, 2);
	return codec_raw_head(at, 0xdd, items, 4);
}

static inline size_t codec_raw_uint(uint8_t *at, uint64_t value)
{
	if (value < 128)
		return codec_raw_head(at, (uint8_t)value, 0, 0);
	if (value < 256)
		return codec_raw_head(at, 0xcc, value, 1);
	if (value < 65536)
		return codec_raw_head(at, 0xcd, value, 2);
	if (value < (1ull << 32))
		return codec_raw_head(at, 0xce, value, 4);
	return codec_raw_head(at, 0xcf, value, 8);
}

static inline size_t codec_raw_int(uint8_t *at, int64_t value)
{
	if (value >= -32)
		return value < 128 ? codec_raw_head(at, (uint8_t)value, 0, 0) /* fixint */
		                   : codec_raw_uint(at, (uint64_t)value);
	if (value >= -128)
		return codec_raw_head(at, 0xd0, (uint64_t)value, 1);
	if (value >= -32768)
		return codec_raw_head(at, 0xd1, (uint64_t)value, 2);
	if (value >= INT32_MIN)
		return codec_raw_head(at, 0xd2, (uint64_t)value, 4);
	return codec_raw_head(at, 0xd3, (uint64_t)value, 8);
}

/* A str's head for len bytes (the body follows). */
static inline size_t codec_raw_str_head(uint8_t *at, size_t len)
{
	if (len < 32)
		return codec_raw_head(at, (uint8_t)(0xa0 | len), 0, 0);
	if (len < 256)
		return codec_raw_head(at, 0xd9, len, 1);
	if (len < 65536)
		return codec_raw_head(at, 0xda, len, 2);
	return codec_raw_head(at, 0xdb, len, 4);
}

/* A bin's head for len bytes (the body follows). */
static inline size_t codec_raw_bin_head(uint8_t *at, size_t len)
{
	if (len < 256)
		return codec_raw_head(at, 0xc4, len, 1);
	if (len < 65536)
		return codec_raw_head(at, 0xc5, len, 2);
	return codec_raw_head(at, 0xc6, len, 4);
}

/* A head, then len bytes of body. */
static inline size_t codec_raw_with_body(uint8_t *at, size_t head, const void *body, size_t len)
{
	if (len > 0)
		memcpy(at + head, body, len);
	return head + len;
}

struct codec_writer {
	struct jm_buf *out;
	size_t start_len; /* out->len before the first write: the rollback point */
	int rc;           /* first failure (JM_ENOMEM), sticky */
};

void codec_writer_init(struct codec_writer *w, struct jm_buf *out);
void codec_put_array(struct codec_writer *w, uint32_t items);
void codec_put_uint(struct codec_writer *w, uint64_t value);
void codec_put_int(struct codec_writer *w, int64_t value);
void codec_put_bool(struct codec_writer *w, bool value);
/* A NUL-terminated name as str. */
void codec_put_name(struct codec_writer *w, const char *name);
/* Text (error messages, host names) as str. */
void codec_put_text(struct codec_writer *w, const struct proto_bytes *b);
/* Opaque bytes (payloads, results) as bin. */
void codec_put_bin(struct codec_writer *w, const struct proto_bytes *b);

/* Returns 0, or the first failure after truncating out back to where the
 * writer started; also JM_EINVAL when the encoding came out larger than
 * PROTO_MESSAGE_MAX (it would not decode). */
int codec_writer_finish(struct codec_writer *w);

/* The bytes-wide (1..8) big-endian unsigned integer at p: msgpack's
 * lengths, counts and fixed-width values, for the pre-scan and the
 * one-pass SUBMIT decoder (submit_decode.c). */
static inline uint64_t codec_read_be(const uint8_t *p, size_t bytes)
{
	uint64_t v = 0;
	for (size_t i = 0; i < bytes; i++)
		v = (v << 8) | p[i];
	return v;
}

#endif
