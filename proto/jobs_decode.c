/* The direct decoder of a JOBS message (see jobs_decode.h). A worker reads
 * one for every FETCH; in a drain the generic path (a pre-scan of every
 * byte, msgpack-c's object tree, the field walker, then fields_check
 * judging every field again) was ~8 % of the driver's CPU samples. This
 * reads the bytes once, judging each value as it is read, into the same
 * struct, by the rules of delivery_field (msg_workers.c).
 *
 * Like submit_decode.c it only has to be right when it says yes: anything
 * unusual makes it decline and the generic path accept or refuse with its
 * words. Every length is checked against the bytes left before it is
 * used, and the array it reserves is bounded by the input: one
 * struct proto_delivery per 8 bytes left (a delivery takes at least 10)
 * and at most PROTO_JOBS_PER_MESSAGE_MAX. */
#include "jobs_decode.h"

#include "direct_read.h"
#include "proto_limits.h"

#define DELIVERY_FIELDS 7 /* job_id, lease, attempt, queue, type, payload, timeout_ms */

/* One delivery into d (zeroed). */
static bool rd_delivery(struct rd *r, struct proto_delivery *d)
{
	uint32_t fields;
	uint64_t attempt;
	if (!rd_array(r, &fields) || fields != DELIVERY_FIELDS || !rd_u64(r, &d->job_id) ||
	    !rd_u64(r, &d->lease) || !rd_u64(r, &attempt) || attempt < 1 || attempt > UINT32_MAX ||
	    !rd_name(r, false, d->attrs.queue) || !rd_name(r, false, d->attrs.type) ||
	    !rd_opaque(r, &d->payload) || d->payload.len > PROTO_PAYLOAD_MAX_DEFAULT ||
	    !rd_u64(r, &d->attrs.timeout_ms))
		return false;
	d->attempt = (uint32_t)attempt;
	return true;
}

/* The body [[delivery...]], exactly. */
static bool rd_jobs(struct rd *r, struct proto_msg *out, msgpack_zone **zone)
{
	uint32_t items, count;
	if (!rd_array(r, &items) || items != 1)
		return false;
	struct proto_delivery *jobs = rd_job_list(r, zone, sizeof *jobs, &count);
	if (jobs == NULL)
		return false;
	for (uint32_t i = 0; i < count; i++)
		if (!rd_delivery(r, &jobs[i]))
			return false;
	out->u.jobs.jobs_count = count;
	out->u.jobs.jobs = jobs;
	return true;
}

int jobs_decode_direct(const void *buf, size_t len, struct proto_msg *out)
{
	return rd_direct(buf, len, PROTO_JOBS, out, rd_jobs);
}
