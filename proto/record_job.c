/* The JOB record's encoder in one pass (see proto_record_encode_job in
 * record.h). Every submitted job is journaled as a JOB record, and the
 * generic walker (fields.c over rec_job_field in record.c) cost ~3,700
 * instructions per job in W1b (callgrind): it walks 21 descriptors, judges
 * queue and type twice (their name rule, then the spec rules again), and
 * reserves room once per value. Here each rule is judged once, in the
 * same pass that measures the names, and the room for the whole record is
 * reserved once.
 *
 * Invariant: this accepts exactly what fields_check(rec_job_fields)
 * accepts and writes the bytes the walker writes, so what it journals
 * replay reads back (issue 10: never journal what the state cannot hold).
 * test_proto_record_job compares both on every rule's boundaries;
 * proto_record_encode in builds without NDEBUG (the sanitizer build)
 * compares the verdicts on every JOB record it encodes; fuzz_decode
 * encodes every JOB record it decodes both ways. The field
 * order is rec_job_field's in record.c: a field appended there must be
 * appended here (the comparison fails until it is). */
#include "record.h"

#include <string.h>

#include "codec.h"
#include "job_spec.h"
#include "proto_limits.h"

#define REC_JOB_FIELDS 21 /* rec_job_field's count: 2 + 21 items */

static bool bytes_ok(const struct proto_bytes *b, uint32_t max)
{
	return b->len <= max && !(b->len > 0 && b->ptr == NULL);
}

static size_t raw_name(uint8_t *at, const char *name, size_t len)
{
	return codec_raw_with_body(at, codec_raw_str_head(at, len), name, len);
}

static size_t raw_str(uint8_t *at, const struct proto_bytes *b)
{
	return codec_raw_with_body(at, codec_raw_str_head(at, b->len), b->ptr, b->len);
}

static size_t raw_bin(uint8_t *at, const struct proto_bytes *b)
{
	return codec_raw_with_body(at, codec_raw_bin_head(at, b->len), b->ptr, b->len);
}

static bool job_ok(const struct proto_rec_job *j, long lens[4])
{
	lens[0] = proto_name_len(j->attrs.queue, false);
	lens[1] = proto_name_len(j->attrs.type, false);
	lens[2] = proto_name_len(j->worker_id, true);
	lens[3] = proto_name_len(j->attrs.group, true);
	return lens[0] >= 0 && lens[1] >= 0 && lens[2] >= 0 && lens[3] >= 0 &&
	       bytes_ok(&j->payload, PROTO_PAYLOAD_MAX_DEFAULT) &&
	       j->attrs.priority >= PROTO_PRIORITY_MIN && j->attrs.priority <= PROTO_PRIORITY_MAX &&
	       j->attrs.max_attempts <= PROTO_ATTEMPTS_MAX && j->state >= PROTO_STATE_PENDING &&
	       j->state <= PROTO_STATE_CANCELLED &&
	       bytes_ok(&j->last_error, PROTO_ERROR_TEXT_MAX) &&
	       bytes_ok(&j->result, PROTO_RESULT_MAX) && proto_key_is_valid(&j->key);
}

int proto_record_encode_job(const struct proto_rec_job *j, struct jm_buf *out)
{
	long lens[4];
	if (!job_ok(j, lens))
		return JM_EINVAL;
	/* Heads: the array's 3 bytes, 16 integers and 9 str/bin heads of at
	 * most CODEC_RAW_UINT_MAX bytes each; then the bodies. */
	size_t bound = 3 + 25 * CODEC_RAW_UINT_MAX + (size_t)lens[0] + (size_t)lens[1] +
	               (size_t)lens[2] + (size_t)lens[3] + j->payload.len + j->last_error.len +
	               j->result.len + j->key.len;
	if (out->cap - out->len < bound) {
		int rc = jm_buf_reserve(out, bound);
		if (rc != 0)
			return rc;
	}
	uint8_t *start = out->data + out->len, *at = start;
	at += codec_raw_array(at, 2 + REC_JOB_FIELDS);
	at += codec_raw_uint(at, PROTO_RECORD_VERSION);
	at += codec_raw_uint(at, PROTO_REC_JOB);
	at += codec_raw_uint(at, j->job_id);
	at += codec_raw_uint(at, j->attrs.batch_id);
	at += raw_name(at, j->attrs.queue, (size_t)lens[0]);
	at += raw_name(at, j->attrs.type, (size_t)lens[1]);
	at += raw_bin(at, &j->payload);
	at += codec_raw_int(at, j->attrs.priority);
	at += codec_raw_uint(at, j->attrs.max_attempts);
	at += codec_raw_uint(at, j->attrs.timeout_ms);
	at += codec_raw_uint(at, j->state);
	at += codec_raw_uint(at, j->attempt);
	at += codec_raw_uint(at, j->lease);
	at += codec_raw_uint(at, j->attrs.created_us);
	at += codec_raw_uint(at, j->updated_us);
	at += codec_raw_uint(at, j->run_at_us);
	at += raw_name(at, j->worker_id, (size_t)lens[2]);
	at += raw_str(at, &j->last_error);
	at += raw_bin(at, &j->result);
	at += codec_raw_uint(at, j->lease_token);
	at += codec_raw_uint(at, j->worker_instance);
	at += raw_str(at, &j->key);
	at += raw_name(at, j->attrs.group, (size_t)lens[3]);
	size_t len = (size_t)(at - start);
	if (len > PROTO_MESSAGE_MAX)
		return JM_EINVAL; /* as codec_writer_finish: it would not decode */
	out->len += len;
	return 0;
}
