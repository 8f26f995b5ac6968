/* The rules one job's spec obeys wherever it is written: in a SUBMIT, in
 * the journal's JOB record, in the SDK before it sends, in the CLI's batch
 * files. One function judges them all, so a rule and its wording change in
 * one place. */
#ifndef JM_PROTO_JOB_SPEC_H
#define JM_PROTO_JOB_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Checks queue and type (queue_len and type_len bytes, not necessarily
 * NUL-terminated) against PROTO_NAME_RULE, payload_len against
 * PROTO_PAYLOAD_MAX_DEFAULT, priority against PROTO_PRIORITY_MIN..MAX and
 * max_attempts against 0 (the queue's default)..PROTO_ATTEMPTS_MAX, in that
 * order. Returns 0, or JM_EBADNAME, JM_ETOOBIG or JM_EINVAL with err (not
 * NULL) naming the field and what is allowed:
 *   queue name "a b" is invalid: use 1-64 of A-Z a-z 0-9 . _ -
 *   payload is 2097152 bytes: at most 1048576 allowed
 *   priority 5000 is out of range: use -1000..1000
 *   max_attempts 1001 is out of range: use 0..1000 */
int proto_job_spec_check(const char *queue, size_t queue_len, const char *type, size_t type_len,
                         uint64_t payload_len, int64_t priority, uint64_t max_attempts,
                         struct jm_err *err);

/* Checks an idempotency key of key_len bytes: empty (no key) or 1..
 * PROTO_KEY_MAX printable ASCII characters. 0, or JM_EINVAL with err:
 *   idempotency key is 200 bytes: use 1-128 printable ASCII characters ...
 * A key names at most one job per queue for the queue's key window: a
 * second submit with the same key in that queue gets the first job's id. */
int proto_idempotency_key_check(const void *key, size_t key_len, struct jm_err *err);

struct proto_bytes;

/* The same rules without words, for the one-pass encoders
 * (proto/record_job.c, proto/submit_encode.c), which judge every field
 * first and word a refusal through the checks above. proto_name_len:
 * name's length when it is NUL-terminated within a proto_name and obeys
 * PROTO_NAME_RULE (or is empty when empty_ok), else -1.
 * proto_key_is_valid: key obeys PROTO_KEY_RULE (empty: no key). */
long proto_name_len(const char *name, bool empty_ok);
bool proto_key_is_valid(const struct proto_bytes *key);

#endif
