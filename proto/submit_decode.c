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

#include "direct_read.h"
#include "job_spec.h"
#include "proto_limits.h"

#define SPEC_FIELDS_MIN 7  /* an older client's spec */
#define SPEC_FIELDS_MAX 10 /* ... key, run_at_us, group */

/* One job spec into j (zeroed), with the checks of job_spec_field and
 * job_spec_fields' rules (msg_jobs.c). */
static bool rd_spec(struct rd *r, struct proto_job_spec *j)
{
	uint32_t fields;
	struct rd_int priority = {0};
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

/* The body [as_batch, [job_spec...]], exactly. */
static bool rd_submit(struct rd *r, struct proto_msg *out, msgpack_zone **zone)
{
	uint32_t items, count;
	const uint8_t *flag;
	if (!rd_array(r, &items) || items != 2 || !rd_take(r, 1, &flag) ||
	    (flag[0] != 0xc2 && flag[0] != 0xc3))
		return false;
	struct proto_job_spec *jobs = rd_job_list(r, zone, sizeof *jobs, &count);
	if (jobs == NULL)
		return false;
	for (uint32_t i = 0; i < count; i++)
		if (!rd_spec(r, &jobs[i]))
			return false;
	out->u.submit.as_batch = flag[0] == 0xc3;
	out->u.submit.jobs_count = count;
	out->u.submit.jobs = jobs;
	return true;
}

int submit_decode_direct(const void *buf, size_t len, struct proto_msg *out)
{
	return rd_direct(buf, len, PROTO_SUBMIT, out, rd_submit);
}
