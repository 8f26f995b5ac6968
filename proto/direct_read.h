/* Direct readers of msgpack values (proto/'s internal header, like
 * codec.h), for the decoders that read the shapes nearly every message
 * has without msgpack-c's object tree (submit_decode.c, jobs_decode.c,
 * event_frame.c).
 * Each checks every length against the bytes left before it reads, reads
 * values in the forms msgpack-c accepts for them, and returns false for
 * anything else: its caller then declines, and the generic path words the
 * error. Static inline: they run per field of per job. */
#ifndef JM_PROTO_DIRECT_READ_H
#define JM_PROTO_DIRECT_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "message.h"
#include "proto_limits.h"

struct rd {
	const uint8_t *p;
	const uint8_t *end;
};

/* An integer of any msgpack form, as msgpack-c reads it: neg says a
 * negative value (in i), else the value is u. */
struct rd_int {
	bool neg;
	uint64_t u;
	int64_t i;
};

static inline bool rd_take(struct rd *r, size_t bytes, const uint8_t **at)
{
	if ((size_t)(r->end - r->p) < bytes)
		return false;
	*at = r->p;
	r->p += bytes;
	return true;
}

static inline bool rd_array(struct rd *r, uint32_t *count)
{
	const uint8_t *at;
	if (!rd_take(r, 1, &at))
		return false;
	uint8_t tag = at[0];
	if (tag >= 0x90 && tag <= 0x9f) {
		*count = tag & 0x0f;
		return true;
	}
	unsigned bytes = tag == 0xdc ? 2 : tag == 0xdd ? 4 : 0;
	if (bytes == 0 || !rd_take(r, bytes, &at))
		return false;
	*count = (uint32_t)codec_read_be(at, bytes);
	return true;
}

static inline bool rd_int(struct rd *r, struct rd_int *v)
{
	const uint8_t *at;
	if (!rd_take(r, 1, &at))
		return false;
	uint8_t tag = at[0];
	v->neg = false;
	if (tag <= 0x7f) {
		v->u = tag;
		return true;
	}
	if (tag >= 0xe0) {
		v->neg = true;
		v->i = (int8_t)tag;
		return true;
	}
	unsigned bytes;
	bool is_signed = tag >= 0xd0 && tag <= 0xd3;
	if (tag >= 0xcc && tag <= 0xcf)
		bytes = 1u << (tag - 0xcc);
	else if (is_signed)
		bytes = 1u << (tag - 0xd0);
	else
		return false;
	if (!rd_take(r, bytes, &at))
		return false;
	uint64_t raw = codec_read_be(at, bytes);
	if (!is_signed) {
		v->u = raw;
		return true;
	}
	/* Sign-extend; msgpack-c calls a non-negative signed value positive. */
	int64_t s =
	    bytes == 8 ? (int64_t)raw : (int64_t)(raw << (64 - 8 * bytes)) >> (64 - 8 * bytes);
	if (s >= 0) {
		v->u = (uint64_t)s;
		return true;
	}
	v->neg = true;
	v->i = s;
	return true;
}

static inline bool rd_u64(struct rd *r, uint64_t *out)
{
	struct rd_int v;
	if (!rd_int(r, &v) || v.neg)
		return false;
	*out = v.u;
	return true;
}

/* A str (or, with bin_ok, a bin) of len bytes at *ptr. */
static inline bool rd_bytes(struct rd *r, bool bin_ok, const uint8_t **ptr, uint32_t *len)
{
	const uint8_t *at;
	if (!rd_take(r, 1, &at))
		return false;
	uint8_t tag = at[0];
	uint64_t n;
	if (tag >= 0xa0 && tag <= 0xbf) {
		n = tag & 0x1f;
	} else {
		unsigned bytes = 0;
		if (tag == 0xd9 || (bin_ok && tag == 0xc4))
			bytes = 1;
		else if (tag == 0xda || (bin_ok && tag == 0xc5))
			bytes = 2;
		else if (tag == 0xdb || (bin_ok && tag == 0xc6))
			bytes = 4;
		if (bytes == 0 || !rd_take(r, bytes, &at))
			return false;
		n = codec_read_be(at, bytes);
	}
	if (!rd_take(r, (size_t)n, ptr))
		return false;
	*len = (uint32_t)n;
	return true;
}

/* Opaque bytes (a payload, a key): a str or a bin, as codec_bytes reads
 * them (a pointer into the message, NULL when empty). */
static inline bool rd_opaque(struct rd *r, struct proto_bytes *out)
{
	const uint8_t *ptr;
	uint32_t len;
	if (!rd_bytes(r, true, &ptr, &len))
		return false;
	out->ptr = len > 0 ? ptr : NULL;
	out->len = len;
	return true;
}

/* A name into out: PROTO_NAME_RULE, or "" when empty_ok. */
static inline bool rd_name(struct rd *r, bool empty_ok, proto_name out)
{
	const uint8_t *ptr;
	uint32_t len;
	if (!rd_bytes(r, false, &ptr, &len))
		return false;
	if (!(len == 0 && empty_ok) && !proto_name_is_valid((const char *)ptr, len))
		return false;
	memcpy(out, ptr, len); /* len <= PROTO_NAME_MAX; out is zeroed */
	return true;
}

/* A message's list of jobs (a SUBMIT's specs, a JOBS's deliveries): its
 * count, 1 to PROTO_JOBS_PER_MESSAGE_MAX and at most one per 8 bytes left
 * (each takes more), into *count, and a zeroed array of that many items of
 * size bytes in a new zone, *zone (which rd_direct frees if the message is
 * then declined). NULL for any other count, or out of memory. */
static inline void *rd_job_list(struct rd *r, msgpack_zone **zone, size_t size, uint32_t *count)
{
	if (!rd_array(r, count) || *count < 1 || *count > PROTO_JOBS_PER_MESSAGE_MAX ||
	    *count > (size_t)(r->end - r->p) / 8)
		return NULL;
	size_t bytes = (size_t)*count * size;
	*zone = msgpack_zone_new(bytes + 64);
	void *items = *zone ? msgpack_zone_malloc(*zone, bytes) : NULL;
	if (items != NULL)
		memset(items, 0, bytes);
	return items;
}

/* What every direct decoder shares: a message [PROTO_VERSION, type, body]
 * whose first three bytes are in fix forms (as the encoders write them) has
 * its body read by read_body into out->u, which may make a zone, and the
 * body must end the bytes. 1 with out filled and owning that zone
 * (proto_msg_fini frees it); 0 when read_body declines or the bytes are not
 * such a message, with out zeroed and nothing held. */
static inline int rd_direct(const void *buf, size_t len, uint8_t type, struct proto_msg *out,
                            bool (*read_body)(struct rd *, struct proto_msg *, msgpack_zone **))
{
	memset(out, 0, sizeof *out);
	const uint8_t *b = buf;
	if (len < 4 || len > PROTO_MESSAGE_MAX || b[0] != 0x93 || b[1] != PROTO_VERSION ||
	    b[2] != type)
		return 0;
	struct rd r = {.p = b + 3, .end = b + len};
	msgpack_zone *zone = NULL;
	if (!read_body(&r, out, &zone) || r.p != r.end) {
		if (zone != NULL)
			msgpack_zone_free(zone);
		memset(out, 0, sizeof *out);
		return 0;
	}
	out->version = PROTO_VERSION;
	out->type = type;
	out->zone_ = zone;
	return 1;
}

#endif
