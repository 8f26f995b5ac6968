/* A SUBMIT's encoder in one pass (see submit_decode.h). Every producer's
 * submit goes through here: the generic path (fields_check, then the
 * field walker) judged queue and type twice and walked ten descriptors
 * per job, ~2,200 instructions per job in W1b's driver (callgrind). Here
 * each rule is judged once, in the pass that measures the job, and the
 * room for the whole message is reserved once.
 *
 * Invariant: it refuses (JM_EINVAL) exactly what fields_check refuses
 * for a SUBMIT and writes the walker's bytes; test_proto_submit_encode
 * compares both on every rule's boundaries, and proto_encode in builds
 * without NDEBUG compares the verdicts on every SUBMIT it encodes. The
 * field order is job_spec_field's in msg_jobs.c. */
#include "submit_decode.h"

#include <string.h>

#include "codec.h"
#include "job_spec.h"
#include "proto_limits.h"

#define SPEC_FIELDS 10 /* job_spec_field's count */

/* The bytes j takes at most, or 0 when it breaks a rule; lens gets the
 * lengths of queue, type and group. */
static size_t spec_bound(const struct proto_job_spec *j, long lens[3])
{
	lens[0] = proto_name_len(j->attrs.queue, false);
	lens[1] = proto_name_len(j->attrs.type, false);
	lens[2] = proto_name_len(j->attrs.group, true);
	if (lens[0] < 0 || lens[1] < 0 || lens[2] < 0 ||
	    (j->payload.len > 0 && j->payload.ptr == NULL) ||
	    j->payload.len > PROTO_PAYLOAD_MAX_DEFAULT || j->attrs.priority < PROTO_PRIORITY_MIN ||
	    j->attrs.priority > PROTO_PRIORITY_MAX || j->attrs.max_attempts > PROTO_ATTEMPTS_MAX ||
	    !proto_key_is_valid(&j->key) || (j->run_at_us && j->delay_ms))
		return 0;
	return 1 + SPEC_FIELDS * CODEC_RAW_UINT_MAX + (size_t)lens[0] + (size_t)lens[1] +
	       (size_t)lens[2] + j->payload.len + j->key.len;
}

static size_t raw_str(uint8_t *at, const void *body, size_t len)
{
	return codec_raw_with_body(at, codec_raw_str_head(at, len), body, len);
}

static size_t raw_spec(uint8_t *at, const struct proto_job_spec *j, const long lens[3])
{
	uint8_t *start = at;
	at += codec_raw_array(at, SPEC_FIELDS);
	at += raw_str(at, j->attrs.queue, (size_t)lens[0]);
	at += raw_str(at, j->attrs.type, (size_t)lens[1]);
	at += codec_raw_with_body(at, codec_raw_bin_head(at, j->payload.len), j->payload.ptr,
	                          j->payload.len);
	at += codec_raw_int(at, j->attrs.priority);
	at += codec_raw_uint(at, j->attrs.max_attempts);
	at += codec_raw_uint(at, j->delay_ms);
	at += codec_raw_uint(at, j->attrs.timeout_ms);
	at += raw_str(at, j->key.ptr, j->key.len);
	at += codec_raw_uint(at, j->run_at_us);
	at += raw_str(at, j->attrs.group, (size_t)lens[2]);
	return (size_t)(at - start);
}

int submit_encode_direct(const struct proto_submit *submit, struct jm_buf *out)
{
	uint32_t n = submit->jobs_count;
	if (n < 1 || n > PROTO_JOBS_PER_MESSAGE_MAX || submit->jobs == NULL)
		return JM_EINVAL;
	/* The envelope, the body's and the list's heads, then the jobs. */
	size_t bound = 3 + 2 + 1 + CODEC_RAW_UINT_MAX;
	for (uint32_t i = 0; i < n; i++) {
		long lens[3];
		size_t b = spec_bound(&submit->jobs[i], lens);
		if (b == 0)
			return JM_EINVAL;
		bound += b;
	}
	if (bound > PROTO_MESSAGE_MAX)
		return 1; /* near the limit: the generic path judges the exact size */
	if (out->cap - out->len < bound) {
		int rc = jm_buf_reserve(out, bound);
		if (rc != 0)
			return rc;
	}
	uint8_t *start = out->data + out->len, *at = start;
	at += codec_raw_array(at, 3);
	at += codec_raw_uint(at, PROTO_VERSION);
	at += codec_raw_uint(at, PROTO_SUBMIT);
	at += codec_raw_array(at, 2);
	at += codec_raw_head(at, submit->as_batch ? 0xc3 : 0xc2, 0, 0);
	at += codec_raw_array(at, n);
	for (uint32_t i = 0; i < n; i++) {
		long lens[3];
		(void)spec_bound(&submit->jobs[i], lens); /* judged above; the lengths again */
		at += raw_spec(at, &submit->jobs[i], lens);
	}
	out->len += (size_t)(at - start);
	return 0;
}
