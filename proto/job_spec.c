/* The one check of a job's spec (see job_spec.h). The texts are the ones
 * the broker has always sent back for a bad SUBMIT; codec.c words them. */
#include "job_spec.h"

#include <inttypes.h>

#include <string.h>

#include "codec.h"
#include "message.h"
#include "proto_limits.h"

int proto_job_spec_check(const char *queue, size_t queue_len, const char *type, size_t type_len,
                         uint64_t payload_len, int64_t priority, uint64_t max_attempts,
                         struct jm_err *err)
{
	if (codec_check_name_len(queue, queue_len, "queue name", err) ||
	    codec_check_name_len(type, type_len, "type name", err))
		return err->code;
	if (payload_len > PROTO_PAYLOAD_MAX_DEFAULT)
		return jm_err_set(err, JM_ETOOBIG,
		                  "payload is %" PRIu64 " bytes: at most %u allowed", payload_len,
		                  PROTO_PAYLOAD_MAX_DEFAULT);
	if (codec_check_i32(priority, "priority", PROTO_PRIORITY_MIN, PROTO_PRIORITY_MAX, err) ||
	    codec_check_u32(max_attempts, "max_attempts", 0, PROTO_ATTEMPTS_MAX, err))
		return err->code;
	return 0;
}

int proto_idempotency_key_check(const void *key, size_t key_len, struct jm_err *err)
{
	if (key_len > PROTO_KEY_MAX)
		return jm_err_set(err, JM_EINVAL, "idempotency key is %zu bytes: %s", key_len,
		                  PROTO_KEY_RULE);
	const unsigned char *p = key;
	for (size_t i = 0; i < key_len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return jm_err_set(err, JM_EINVAL,
			                  "idempotency key has byte 0x%02x at %zu: %s", p[i], i,
			                  PROTO_KEY_RULE);
	return 0;
}

long proto_name_len(const char *name, bool empty_ok)
{
	size_t len = strnlen(name, sizeof(proto_name));
	if (len == sizeof(proto_name))
		return -1;
	if (len == 0 && empty_ok)
		return 0;
	return proto_name_is_valid(name, len) ? (long)len : -1;
}

bool proto_key_is_valid(const struct proto_bytes *key)
{
	if (key->len > PROTO_KEY_MAX || (key->len > 0 && key->ptr == NULL))
		return false;
	for (uint32_t i = 0; i < key->len; i++)
		if (key->ptr[i] < 0x20 || key->ptr[i] > 0x7e)
			return false;
	return true;
}
