/* The msgpack layer of proto/ (see codec.h): the pre-scan that makes
 * hostile input safe to hand to msgpack-c, typed getters, the range checks
 * shared by encoders and decoders, and a writer that packs into a jm_buf.
 *
 * Invariant: msgpack_unpack_next() only ever sees bytes that
 * codec_prescan() accepted, so every array or map it reserves is backed by
 * at least one input byte per element and the total is capped by
 * CODEC_VALUES_MAX. */
#include "codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto_limits.h"

/* Values to walk at each open container level; level 0 is the top object. */
struct prescan {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	uint64_t values;
	uint64_t left[PROTO_DEPTH_MAX + 1];
	int depth;
};

/* Reads a bytes-wide big-endian length field at the cursor. */
static int prescan_length(struct prescan *s, size_t bytes, uint64_t *out, struct jm_err *err)
{
	if (s->len - s->pos < bytes)
		return jm_err_set(
		    err, JM_EPROTO,
		    "truncated: a %zu-byte length at byte %zu but only %zu bytes left", bytes,
		    s->pos, s->len - s->pos);
	*out = codec_read_be(s->buf + s->pos, bytes);
	s->pos += bytes;
	return 0;
}

/* What one type byte is followed by: fixed bytes to skip, a length field of
 * len_bytes giving more bytes to skip, or a container of len_bytes count
 * (or count in the type byte itself). */
struct tag_shape {
	uint8_t skip;      /* fixed bytes after the type byte (and length field) */
	uint8_t len_bytes; /* width of a length/count field, 0 if none */
	bool is_array;
	bool is_map;
	bool is_invalid;
	uint32_t count; /* for fixarray/fixmap/fixstr: from the type byte */
};

static struct tag_shape tag_shape(uint8_t tag)
{
	struct tag_shape t = {0};
	if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3)
		return t; /* fixint, nil, bool */
	if (tag >= 0x80 && tag <= 0x8f) {
		t.is_map = true;
		t.count = tag & 0x0f;
		return t;
	}
	if (tag >= 0x90 && tag <= 0x9f) {
		t.is_array = true;
		t.count = tag & 0x0f;
		return t;
	}
	if (tag >= 0xa0 && tag <= 0xbf) {
		t.skip = tag & 0x1f;
		return t;
	}
	switch (tag) {
	case 0xc4: /* bin8 */
	case 0xd9: /* str8 */
		t.len_bytes = 1;
		break;
	case 0xc5: /* bin16 */
	case 0xda: /* str16 */
		t.len_bytes = 2;
		break;
	case 0xc6: /* bin32 */
	case 0xdb: /* str32 */
		t.len_bytes = 4;
		break;
	case 0xc7: /* ext8: length, then a type byte, then data */
		t.len_bytes = 1;
		t.skip = 1;
		break;
	case 0xc8: /* ext16 */
		t.len_bytes = 2;
		t.skip = 1;
		break;
	case 0xc9: /* ext32 */
		t.len_bytes = 4;
		t.skip = 1;
		break;
	case 0xca: /* float32 */
		t.skip = 4;
		break;
	case 0xcb: /* float64 */
		t.skip = 8;
		break;
	case 0xcc: /* uint8 */
	case 0xd0: /* int8 */
		t.skip = 1;
		break;
	case 0xcd:
	case 0xd1:
		t.skip = 2;
		break;
	case 0xce:
	case 0xd2:
		t.skip = 4;
		break;
	case 0xcf:
	case 0xd3:
		t.skip = 8;
		break;
	case 0xd4: /* fixext1..16: a type byte and 2^n data bytes */
		t.skip = 2;
		break;
	case 0xd5:
		t.skip = 3;
		break;
	case 0xd6:
		t.skip = 5;
		break;
	case 0xd7:
		t.skip = 9;
		break;
	case 0xd8:
		t.skip = 17;
		break;
	case 0xdc: /* array16 */
		t.is_array = true;
		t.len_bytes = 2;
		break;
	case 0xdd: /* array32 */
		t.is_array = true;
		t.len_bytes = 4;
		break;
	case 0xde: /* map16 */
		t.is_map = true;
		t.len_bytes = 2;
		break;
	case 0xdf: /* map32 */
		t.is_map = true;
		t.len_bytes = 4;
		break;
	default: /* 0xc1: never used */
		t.is_invalid = true;
		break;
	}
	return t;
}

/* Consumes one value's header and body bytes (not a container's children,
 * which the caller walks) and opens a level for a non-empty container. */
static int prescan_value(struct prescan *s, struct jm_err *err)
{
	size_t at = s->pos;
	if (++s->values > CODEC_VALUES_MAX)
		return jm_err_set(err, JM_ETOOBIG, "more than %u values: at most %u allowed",
		                  CODEC_VALUES_MAX, CODEC_VALUES_MAX);
	uint8_t tag = s->buf[s->pos++];
	struct tag_shape t = tag_shape(tag);
	if (t.is_invalid)
		return jm_err_set(err, JM_EPROTO, "byte %zu: 0x%02x is not a msgpack type", at,
		                  tag);
	if (t.is_array || t.is_map) {
		uint64_t count = t.count;
		int rc;
		if (t.len_bytes > 0 && (rc = prescan_length(s, t.len_bytes, &count, err)) != 0)
			return rc;
		/* Each element takes at least one byte, so a count above the
		 * bytes left is a lie; refusing it here is what keeps
		 * msgpack-c from reserving for it. */
		uint64_t values = t.is_map ? count * 2 : count;
		size_t left = s->len - s->pos;
		if (values > left)
			return jm_err_set(err, JM_EPROTO,
			                  "byte %zu: %s of %" PRIu64
			                  " entries cannot fit in the %zu bytes left",
			                  at, t.is_map ? "map" : "array", count, left);
		if (s->depth + 1 > PROTO_DEPTH_MAX)
			return jm_err_set(err, JM_EPROTO,
			                  "byte %zu: nested more than %d deep: at most %d allowed",
			                  at, PROTO_DEPTH_MAX, PROTO_DEPTH_MAX);
		if (values > 0)
			s->left[++s->depth] = values;
		return 0;
	}
	uint64_t body = t.skip;
	if (t.len_bytes > 0) {
		uint64_t declared = 0;
		int rc = prescan_length(s, t.len_bytes, &declared, err);
		if (rc != 0)
			return rc;
		body += declared;
	}
	size_t left = s->len - s->pos;
	if (body > left)
		return jm_err_set(err, JM_EPROTO,
		                  "truncated: byte %zu declares %" PRIu64
		                  " bytes of data but only %zu are left",
		                  at, body, left);
	s->pos += (size_t)body;
	return 0;
}

int codec_prescan(const uint8_t *buf, size_t len, struct jm_err *err)
{
	struct prescan s = {.buf = buf, .len = len, .depth = 0};
	s.left[0] = 1;
	while (s.depth >= 0) {
		if (s.left[s.depth] == 0) {
			s.depth--;
			continue;
		}
		s.left[s.depth]--;
		if (s.pos >= s.len)
			return jm_err_set(err, JM_EPROTO,
			                  "truncated: %zu bytes end in the middle of a value", len);
		int rc = prescan_value(&s, err);
		if (rc != 0)
			return rc;
	}
	if (s.pos != len)
		return jm_err_set(err, JM_EPROTO,
		                  "%zu bytes of trailing garbage after the message's %zu bytes",
		                  len - s.pos, s.pos);
	return 0;
}

int codec_unpack(const void *buf, size_t len, msgpack_zone **zone, msgpack_object *root,
                 struct jm_err *err)
{
	*zone = NULL;
	memset(root, 0, sizeof *root);
	if (len == 0)
		return jm_err_set(err, JM_EPROTO, "empty message");
	if (len > PROTO_MESSAGE_MAX)
		return jm_err_set(err, JM_ETOOBIG, "message is %zu bytes: at most %u allowed", len,
		                  PROTO_MESSAGE_MAX);
	int rc = codec_prescan(buf, len, err);
	if (rc != 0)
		return rc;

	msgpack_unpacked unpacked;
	msgpack_unpacked_init(&unpacked);
	size_t off = 0;
	msgpack_unpack_return ret = msgpack_unpack_next(&unpacked, buf, len, &off);
	if (ret != MSGPACK_UNPACK_SUCCESS || off != len) {
		msgpack_unpacked_destroy(&unpacked);
		if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
			return jm_err_set(err, JM_ENOMEM, "out of memory unpacking %zu bytes", len);
		/* The pre-scan accepted it, so msgpack-c and we disagree on
		 * the format: refuse rather than guess. */
		return jm_err_set(err, JM_EPROTO,
		                  "msgpack refused the message (result %d at byte %zu of %zu)",
		                  (int)ret, off, len);
	}
	/* msgpack-c creates its zone only for containers; decoders allocate
	 * their arrays from it, so make sure there is one. */
	msgpack_zone *z = msgpack_unpacked_release_zone(&unpacked);
	if (z == NULL && (z = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE)) == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory unpacking %zu bytes", len);
	*zone = z;
	*root = unpacked.data;
	return 0;
}

int codec_decode(const void *buf, size_t len, codec_root_fn decode, void *out, size_t out_size,
                 void **zone_out, struct jm_err *err)
{
	struct jm_err scratch;
	if (err == NULL)
		err = &scratch;
	jm_err_clear(err);
	memset(out, 0, out_size);
	msgpack_zone *zone;
	msgpack_object root;
	int rc = codec_unpack(buf, len, &zone, &root, err);
	if (rc != 0)
		return rc;
	rc = decode(&root, zone, out, err);
	if (rc != 0) {
		msgpack_zone_free(zone);
		memset(out, 0, out_size);
		return rc;
	}
	*zone_out = zone;
	return 0;
}

const char *codec_kind(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return "nil";
	case MSGPACK_OBJECT_BOOLEAN:
		return "a boolean";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return "a positive integer";
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return "a negative integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return "a float";
	case MSGPACK_OBJECT_STR:
		return "a string";
	case MSGPACK_OBJECT_ARRAY:
		return "an array";
	case MSGPACK_OBJECT_MAP:
		return "a map";
	case MSGPACK_OBJECT_BIN:
		return "binary data";
	case MSGPACK_OBJECT_EXT:
		return "an extension value";
	}
	return "an unknown value";
}

static int wrong_kind(const msgpack_object *o, const char *field, const char *wanted,
                      struct jm_err *err)
{
	return jm_err_set(err, JM_EPROTO, "%s must be %s, got %s", field, wanted, codec_kind(o));
}

int codec_fields(const msgpack_object *o, uint32_t min_fields, const char *field_list,
                 const msgpack_object **items, struct jm_err *err)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return jm_err_set(err, JM_EPROTO, "must be an array [%s], got %s", field_list,
		                  codec_kind(o));
	if (o->via.array.size < min_fields)
		return jm_err_set(err, JM_EPROTO, "has %" PRIu32 " fields: expected [%s]",
		                  o->via.array.size, field_list);
	*items = o->via.array.ptr;
	return 0;
}

int codec_array(const msgpack_object *o, const char *field, uint32_t min, uint32_t max,
                const msgpack_object **items, uint32_t *count, struct jm_err *err)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return wrong_kind(o, field, "an array", err);
	int rc = codec_check_count(o->via.array.size, o->via.array.ptr, field, min, max, err);
	if (rc != 0)
		return rc;
	*items = o->via.array.ptr;
	*count = o->via.array.size;
	return 0;
}

int codec_u64(const msgpack_object *o, const char *field, uint64_t *out, struct jm_err *err)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return jm_err_set(err, JM_EINVAL, "%s %" PRId64 " is out of range: use 0..%" PRIu64,
		                  field, o->via.i64, UINT64_MAX);
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return wrong_kind(o, field, "an integer", err);
	*out = o->via.u64;
	return 0;
}

int codec_u32(const msgpack_object *o, const char *field, uint32_t *out, struct jm_err *err)
{
	uint64_t v;
	int rc = codec_u64(o, field, &v, err);
	if (rc == 0)
		rc = codec_check_u32(v, field, 0, UINT32_MAX, err);
	if (rc == 0)
		*out = (uint32_t)v;
	return rc;
}

int codec_i32(const msgpack_object *o, const char *field, int32_t *out, struct jm_err *err)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		int rc = codec_check_i32(o->via.i64, field, INT32_MIN, INT32_MAX, err);
		if (rc == 0)
			*out = (int32_t)o->via.i64;
		return rc;
	}
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return wrong_kind(o, field, "an integer", err);
	if (o->via.u64 > INT32_MAX)
		return jm_err_set(err, JM_EINVAL, "%s %" PRIu64 " is out of range: use %d..%d",
		                  field, o->via.u64, INT32_MIN, INT32_MAX);
	*out = (int32_t)o->via.u64;
	return 0;
}

int codec_bool(const msgpack_object *o, const char *field, bool *out, struct jm_err *err)
{
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return wrong_kind(o, field, "true or false", err);
	*out = o->via.boolean;
	return 0;
}

int codec_bytes(const msgpack_object *o, const char *field, struct proto_bytes *out,
                struct jm_err *err)
{
	const char *ptr;
	uint32_t len;
	if (o->type == MSGPACK_OBJECT_BIN) {
		ptr = o->via.bin.ptr;
		len = o->via.bin.size;
	} else if (o->type == MSGPACK_OBJECT_STR) {
		ptr = o->via.str.ptr;
		len = o->via.str.size;
	} else {
		return wrong_kind(o, field, "bytes or a string", err);
	}
	out->ptr = len > 0 ? (const uint8_t *)ptr : NULL;
	out->len = len;
	return 0;
}

/* Writes src into dst as printable ASCII, escaping the rest as \xNN and
 * eliding the tail of long input, so a hostile name cannot smuggle control
 * bytes or flood an operator's log line. */
static void quote(char *dst, size_t cap, const char *src, size_t len)
{
	size_t used = 0;
	const size_t shown_max = 40;
	for (size_t i = 0; i < len && i < shown_max; i++) {
		unsigned char c = (unsigned char)src[i];
		if (cap - used < 6)
			break;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			dst[used++] = (char)c;
		else
			used += (size_t)snprintf(dst + used, cap - used, "\\x%02x", c);
	}
	if (len > shown_max && cap - used >= 4) {
		memcpy(dst + used, "...", 3);
		used += 3;
	}
	dst[used] = '\0';
}

static int bad_name(const char *field, const char *name, size_t len, struct jm_err *err)
{
	char shown[256];
	quote(shown, sizeof shown, name, len);
	return jm_err_set(err, JM_EBADNAME, "%s \"%s\" is invalid: %s", field, shown,
	                  PROTO_NAME_RULE);
}

int codec_name(const msgpack_object *o, const char *field, bool allow_empty, proto_name out,
               struct jm_err *err)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return wrong_kind(o, field, "a string", err);
	const char *ptr = o->via.str.ptr;
	uint32_t len = o->via.str.size;
	if (!(len == 0 && allow_empty) && !proto_name_is_valid(ptr, len))
		return bad_name(field, ptr, len, err);
	if (len > 0)
		memcpy(out, ptr, len);
	out[len] = '\0';
	return 0;
}

void *codec_alloc(msgpack_zone *zone, uint32_t count, size_t size, struct jm_err *err)
{
	if (count == 0)
		return NULL;
	if (size > SIZE_MAX / count) {
		jm_err_set(err, JM_ENOMEM, "%" PRIu32 " items of %zu bytes overflow", count, size);
		return NULL;
	}
	void *p = msgpack_zone_malloc(zone, (size_t)count * size);
	if (p == NULL) {
		jm_err_set(err, JM_ENOMEM, "out of memory for %" PRIu32 " items", count);
		return NULL;
	}
	memset(p, 0, (size_t)count * size);
	return p;
}

int codec_check_u32(uint64_t value, const char *field, uint64_t min, uint64_t max,
                    struct jm_err *err)
{
	if (value < min || value > max)
		return jm_err_set(err, JM_EINVAL,
		                  "%s %" PRIu64 " is out of range: use %" PRIu64 "..%" PRIu64,
		                  field, value, min, max);
	return 0;
}

int codec_check_i32(int64_t value, const char *field, int64_t min, int64_t max, struct jm_err *err)
{
	if (value < min || value > max)
		return jm_err_set(err, JM_EINVAL,
		                  "%s %" PRId64 " is out of range: use %" PRId64 "..%" PRId64,
		                  field, value, min, max);
	return 0;
}

int codec_check_count(uint32_t count, const void *items, const char *field, uint32_t min,
                      uint32_t max, struct jm_err *err)
{
	if (count < min || count > max)
		return jm_err_set(err, JM_EINVAL, "%" PRIu32 " %s given: use %" PRIu32 "..%" PRIu32,
		                  count, field, min, max);
	if (count > 0 && items == NULL)
		return jm_err_set(err, JM_EINVAL, "%" PRIu32 " %s given but no array", count,
		                  field);
	return 0;
}

int codec_check_size(const struct proto_bytes *b, const char *field, uint32_t max,
                     struct jm_err *err)
{
	if (b->len > max)
		return jm_err_set(err, JM_ETOOBIG,
		                  "%s is %" PRIu32 " bytes: at most %" PRIu32 " allowed", field,
		                  b->len, max);
	if (b->len > 0 && b->ptr == NULL)
		return jm_err_set(err, JM_EINVAL, "%s claims %" PRIu32 " bytes but has none", field,
		                  b->len);
	return 0;
}

int codec_check_name(const char *name, const char *field, bool allow_empty, struct jm_err *err)
{
	size_t len = strnlen(name, sizeof(proto_name));
	if (len == sizeof(proto_name))
		return bad_name(field, name, len, err);
	if (len == 0 && allow_empty)
		return 0;
	if (!proto_name_is_valid(name, len))
		return bad_name(field, name, len, err);
	return 0;
}

int codec_check_name_len(const char *name, size_t len, const char *field, struct jm_err *err)
{
	if (!proto_name_is_valid(name, len))
		return bad_name(field, name, len, err);
	return 0;
}

/* The writer emits msgpack itself, byte for byte what msgpack-c's packer
 * emits (the smallest form of each integer and length; str8 for text of
 * 32-255 bytes): a JOB record is ~30 values, and the packer's sink
 * callback, one append per value, cost ~1,800 instructions per job in
 * W1b (callgrind). The golden fixtures (tests/unit/test_golden.c) pin the
 * bytes. Each put reserves its room once; on JM_ENOMEM the writer keeps
 * the failure and writes nothing more. */

/* Room for extra bytes at out's end, or NULL after a failure. */
static inline uint8_t *writer_room(struct codec_writer *w, size_t extra)
{
	if (w->rc != 0)
		return NULL;
	if (w->out->cap - w->out->len < extra) {
		int rc = jm_buf_reserve(w->out, extra);
		if (rc != 0) {
			w->rc = rc;
			return NULL;
		}
	}
	return w->out->data + w->out->len;
}

/* A header of at most CODEC_RAW_UINT_MAX bytes written by raw. */
#define PUT_RAW(w, expr_at)                                                                        \
	do {                                                                                       \
		uint8_t *at = writer_room((w), CODEC_RAW_UINT_MAX);                                \
		if (at != NULL)                                                                    \
			(w)->out->len += (expr_at);                                                \
	} while (0)

void codec_writer_init(struct codec_writer *w, struct jm_buf *out)
{
	w->out = out;
	w->start_len = out->len;
	w->rc = 0;
}

void codec_put_array(struct codec_writer *w, uint32_t items)
{
	PUT_RAW(w, codec_raw_array(at, items));
}

void codec_put_uint(struct codec_writer *w, uint64_t value)
{
	PUT_RAW(w, codec_raw_uint(at, value));
}

void codec_put_int(struct codec_writer *w, int64_t value)
{
	PUT_RAW(w, codec_raw_int(at, value));
}

void codec_put_bool(struct codec_writer *w, bool value)
{
	PUT_RAW(w, codec_raw_head(at, value ? 0xc3 : 0xc2, 0, 0));
}

static void put_str(struct codec_writer *w, const void *body, size_t len)
{
	uint8_t *at = writer_room(w, CODEC_RAW_UINT_MAX + len);
	if (at != NULL)
		w->out->len += codec_raw_with_body(at, codec_raw_str_head(at, len), body, len);
}

void codec_put_name(struct codec_writer *w, const char *name)
{
	put_str(w, name, strnlen(name, sizeof(proto_name)));
}

void codec_put_text(struct codec_writer *w, const struct proto_bytes *b)
{
	put_str(w, b->ptr, b->len);
}

void codec_put_bin(struct codec_writer *w, const struct proto_bytes *b)
{
	uint8_t *at = writer_room(w, CODEC_RAW_UINT_MAX + b->len);
	if (at != NULL)
		w->out->len +=
		    codec_raw_with_body(at, codec_raw_bin_head(at, b->len), b->ptr, b->len);
}

int codec_writer_finish(struct codec_writer *w)
{
	int rc = w->rc;
	if (rc == 0 && w->out->len - w->start_len > PROTO_MESSAGE_MAX)
		rc = JM_EINVAL;
	if (rc != 0)
		w->out->len = w->start_len;
	return rc;
}
