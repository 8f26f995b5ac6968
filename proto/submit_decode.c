/* The direct decoder of a SUBMIT (see submit_decode.h). W1b submits 100
 * jobs per message; the generic path spent ~3,500 instructions per job
 * (callgrind): a pre-scan of every byte, msgpack-c's unpacker building an
 * object tree, the walker copying from it, then fields_check judging
 * every field again. This reads the bytes once, judging each value as it
 * is read, into the same struct.
 *
 * It only has to be right when it says yes: anything unusual (a field
 * appended by a newer peer, an unknown form, a rule broken) makes it
 * decline, and proto_decode runs the generic path, which refuses with the
 * usual error text or accepts. Every length is checked against the bytes
 * left before it is used, so hostile input cannot make it read past the
 * end, and the jobs array it reserves is bounded by the input: one
 * struct proto_job_spec per 8 bytes left (a spec takes at least 10) and at
 * most PROTO_JOBS_PER_MESSAGE_MAX. */
#include "submit_decode.h"

#include <string.h>

#include <msgpack.h>

#include "codec.h"
#include "job_spec.h"
#include "proto_limits.h"

#define SPEC_FIELDS_MIN 7  /* an older client's spec */
#define SPEC_FIELDS_MAX 10 /* ... key, run_at_us, group */

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

static bool take(struct rd *r, size_t bytes, const uint8_t **at)
{
	if ((size_t)(r->end - r->p) < bytes)
		return false;
	*at = r->p;
	r->p += bytes;
	return true;
}

static bool rd_array(struct rd *r, uint32_t *count)
{
	const uint8_t *at;
	if (!take(r, 1, &at))
		return false;
	uint8_t tag = at[0];
	if (tag >= 0x90 && tag <= 0x9f) {
		*count = tag & 0x0f;
		return true;
	}
	unsigned bytes = tag == 0xdc ? 2 : tag == 0xdd ? 4 : 0;
	if (bytes == 0 || !take(r, bytes, &at))
		return false;
	*count = (uint32_t)codec_read_be(at, bytes);
	return true;
}

static bool rd_int(struct rd *r, struct rd_int *v)
{
	const uint8_t *at;
	if (!take(r, 1, &at))
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
	if (!take(r, bytes, &at))
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

static bool rd_u64(struct rd *r, uint64_t *out)
{
	struct rd_int v;
	if (!rd_int(r, &v) || v.neg)
		return false;
	*out = v.u;
	return true;
}

/* A str (or, with bin_ok, a bin) of len bytes at *ptr. */
static bool rd_bytes(struct rd *r, bool bin_ok, const uint8_t **ptr, uint32_t *len)
{
	const uint8_t *at;
	if (!take(r, 1, &at))
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
		if (bytes == 0 || !take(r, bytes, &at))
			return false;
		n = codec_read_be(at, bytes);
	}
	if (!take(r, (size_t)n, ptr))
		return false;
	*len = (uint32_t)n;
	return true;
}

/* A name into out: PROTO_NAME_RULE, or "" when empty_ok. */
static bool rd_name(struct rd *r, bool empty_ok, proto_name out)
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

static bool rd_opaque(struct rd *r, struct proto_bytes *out)
{
	const uint8_t *ptr;
	uint32_t len;
	if (!rd_bytes(r, true, &ptr, &len))
		return false;
	out->ptr = len > 0 ? ptr : NULL;
	out->len = len;
	return true;
}

/* One job spec into j (zeroed), with the checks of job_spec_field and
 * job_spec_fields' rules (msg_jobs.c). */
static bool rd_spec(struct rd *r, struct proto_job_spec *j)
{
	uint32_t fields;
	struct rd_int priority;
	uint64_t max_attempts;
	if (!rd_array(r, &fields) || fields < SPEC_FIELDS_MIN || fields > SPEC_FIELDS_MAX ||
	    !rd_name(r, false, j->attrs.queue) || !rd_name(r, false, j->attrs.type) ||
	    !rd_opaque(r, &j->payload) || !rd_int(r, &priority) || !rd_u64(r, &max_attempts) ||
	    !rd_u64(r, &j->delay_ms) || !rd_u64(r, &j->attrs.timeout_ms))
		return false;
	if (fields > 7 && !rd_opaque(r, &j->key))
		return false;
	if (fields > 8 && !rd_u64(r, &j->run_at_us))
		return false;
	if (fields > 9 && !rd_name(r, true, j->attrs.group))
		return false;
	int64_t p =
	    priority.neg ? priority.i : (int64_t)(priority.u > INT32_MAX ? INT64_MAX : priority.u);
	if (p < PROTO_PRIORITY_MIN || p > PROTO_PRIORITY_MAX || max_attempts > PROTO_ATTEMPTS_MAX ||
	    j->payload.len > PROTO_PAYLOAD_MAX_DEFAULT || (j->run_at_us && j->delay_ms))
		return false;
	j->attrs.priority = (int32_t)p;
	j->attrs.max_attempts = (uint32_t)max_attempts;
	struct jm_err unused;
	return proto_idempotency_key_check(j->key.ptr, j->key.len, &unused) == 0;
}

/* [version, type, [as_batch, [job_spec...]]] with exactly these items. */
static bool rd_submit(struct rd *r, struct proto_msg *out, msgpack_zone **zone)
{
	uint32_t items, count;
	uint64_t version, type;
	const uint8_t *flag;
	if (!rd_array(r, &items) || items != 3 || !rd_u64(r, &version) ||
	    version != PROTO_VERSION || !rd_u64(r, &type) || type != PROTO_SUBMIT ||
	    !rd_array(r, &items) || items != 2 || !take(r, 1, &flag) ||
	    (flag[0] != 0xc2 && flag[0] != 0xc3) || !rd_array(r, &count) || count < 1 ||
	    count > PROTO_JOBS_PER_MESSAGE_MAX || count > (size_t)(r->end - r->p) / 8)
		return false;
	size_t bytes = (size_t)count * sizeof(struct proto_job_spec);
	*zone = msgpack_zone_new(bytes + 64);
	struct proto_job_spec *jobs = *zone ? msgpack_zone_malloc(*zone, bytes) : NULL;
	if (jobs == NULL)
		return false;
	memset(jobs, 0, bytes);
	for (uint32_t i = 0; i < count; i++)
		if (!rd_spec(r, &jobs[i]))
			return false;
	if (r->p != r->end)
		return false;
	out->version = PROTO_VERSION;
	out->type = PROTO_SUBMIT;
	out->u.submit.as_batch = flag[0] == 0xc3;
	out->u.submit.jobs_count = count;
	out->u.submit.jobs = jobs;
	return true;
}

int submit_decode_direct(const void *buf, size_t len, struct proto_msg *out)
{
	memset(out, 0, sizeof *out);
	/* Not a SUBMIT at a glance: [2, 2, ...] in fix forms. */
	const uint8_t *b = buf;
	if (len < 4 || len > PROTO_MESSAGE_MAX || b[0] != 0x93 || b[1] != PROTO_VERSION ||
	    b[2] != PROTO_SUBMIT)
		return 0;
	struct rd r = {.p = b, .end = b + len};
	msgpack_zone *zone = NULL;
	if (!rd_submit(&r, out, &zone)) {
		if (zone != NULL)
			msgpack_zone_free(zone);
		memset(out, 0, sizeof *out);
		return 0;
	}
	out->zone_ = zone;
	return 1;
}
