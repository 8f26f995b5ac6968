/* Wire messages (see message.h): each message type's fields are written
 * down once, below, as a check / encode / decode trio side by side, and
 * msg_codecs[] at the end binds them to their type.
 *
 * Invariants:
 * - check is the one place a message's ranges, sizes, names and counts are
 *   judged. proto_encode runs it before writing a byte, proto_decode runs
 *   it after extracting the fields, so anything we send passes our own
 *   decoder and anything we accept would pass our own encoder.
 * - decode only proves field types and shapes, and copies names (a name
 *   longer than a proto_name is refused before the copy).
 * - Every array a decode makes comes from the msgpack zone in msg->zone_,
 *   so proto_msg_fini is one msgpack_zone_free; on any decode failure the
 *   zone is freed and the message left zeroed.
 * - Internal functions always get a non-NULL err, so `a || b || c` chains
 *   can return err->code. */
#include "message.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

/* A host name in a HEARTBEAT: POSIX HOST_NAME_MAX. */
#define HOST_MAX 255

struct msg_codec {
	int (*check)(const struct proto_msg *m, struct jm_err *err);
	void (*encode)(struct codec_writer *w, const struct proto_msg *m);
	int (*decode)(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
	              struct jm_err *err);
};

/* Shared pieces: lists of names and of lease references. */

static int queue_name_check(const void *item, struct jm_err *err)
{
	return codec_check_name(item, "queue name", false, err);
}

static int queue_name_decode(const msgpack_object *o, void *item, struct jm_err *err)
{
	return codec_name(o, "queue name", false, item, err);
}

static void names_encode(struct codec_writer *w, const proto_name *names, uint32_t count)
{
	codec_put_array(w, count);
	for (uint32_t i = 0; i < count; i++)
		codec_put_name(w, names[i]);
}

/* [job_id, lease] */
#define LEASE_REF_FIELDS "job_id, lease"

static int lease_ref_check(const void *item, struct jm_err *err)
{
	(void)item;
	(void)err;
	return 0;
}

static void lease_refs_encode(struct codec_writer *w, const struct proto_lease_ref *refs,
                              uint32_t count)
{
	codec_put_array(w, count);
	for (uint32_t i = 0; i < count; i++) {
		codec_put_array(w, 2);
		codec_put_uint(w, refs[i].job_id);
		codec_put_uint(w, refs[i].lease);
	}
}

static int lease_ref_decode(const msgpack_object *o, void *item, struct jm_err *err)
{
	struct proto_lease_ref *r = item;
	const msgpack_object *f;
	if (codec_fields(o, 2, LEASE_REF_FIELDS, &f, err) ||
	    codec_u64(&f[0], "job_id", &r->job_id, err) ||
	    codec_u64(&f[1], "lease", &r->lease, err))
		return err->code;
	return 0;
}

/* ERROR: [code, message] */
#define ERROR_FIELDS "code, message"

static int error_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_error *e = &m->u.error;
	if (codec_check_i32(e->code, "code", INT32_MIN, -1, err) ||
	    codec_check_size(&e->message, "message", PROTO_ERROR_TEXT_MAX, err))
		return err->code;
	return 0;
}

static void error_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_error *e = &m->u.error;
	codec_put_array(w, 2);
	codec_put_int(w, e->code);
	codec_put_text(w, &e->message);
}

static int error_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                        struct jm_err *err)
{
	struct proto_error *e = &m->u.error;
	const msgpack_object *f;
	if (codec_fields(body, 2, ERROR_FIELDS, &f, err) ||
	    codec_i32(&f[0], "code", &e->code, err) ||
	    codec_bytes(&f[1], "message", &e->message, err))
		return err->code;
	return 0;
}

/* SUBMIT: [as_batch, [job_spec...]]
 * job_spec: [queue, type, payload, priority, max_attempts, delay_ms,
 *            timeout_ms] */
#define SUBMIT_FIELDS "as_batch, jobs"
#define JOB_SPEC_FIELDS "queue, type, payload, priority, max_attempts, delay_ms, timeout_ms"

static int job_spec_check(const void *item, struct jm_err *err)
{
	const struct proto_job_spec *j = item;
	if (codec_check_name(j->queue, "queue name", false, err) ||
	    codec_check_name(j->type, "type name", false, err) ||
	    codec_check_size(&j->payload, "payload", PROTO_PAYLOAD_MAX_DEFAULT, err) ||
	    codec_check_i32(j->priority, "priority", PROTO_PRIORITY_MIN, PROTO_PRIORITY_MAX, err) ||
	    codec_check_u32(j->max_attempts, "max_attempts", 0, PROTO_ATTEMPTS_MAX, err))
		return err->code;
	return 0;
}

static int job_spec_decode(const msgpack_object *o, void *item, struct jm_err *err)
{
	struct proto_job_spec *j = item;
	const msgpack_object *f;
	if (codec_fields(o, 7, JOB_SPEC_FIELDS, &f, err) ||
	    codec_name(&f[0], "queue name", false, j->queue, err) ||
	    codec_name(&f[1], "type name", false, j->type, err) ||
	    codec_bytes(&f[2], "payload", &j->payload, err) ||
	    codec_i32(&f[3], "priority", &j->priority, err) ||
	    codec_u32(&f[4], "max_attempts", &j->max_attempts, err) ||
	    codec_u64(&f[5], "delay_ms", &j->delay_ms, err) ||
	    codec_u64(&f[6], "timeout_ms", &j->timeout_ms, err))
		return err->code;
	return 0;
}

static int submit_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_submit *s = &m->u.submit;
	return codec_check_list(s->jobs, s->jobs_count, sizeof s->jobs[0], "jobs", "job", 1,
	                        PROTO_JOBS_PER_MESSAGE_MAX, job_spec_check, err);
}

static void submit_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_submit *s = &m->u.submit;
	codec_put_array(w, 2);
	codec_put_bool(w, s->as_batch);
	codec_put_array(w, s->jobs_count);
	for (uint32_t i = 0; i < s->jobs_count; i++) {
		const struct proto_job_spec *j = &s->jobs[i];
		codec_put_array(w, 7);
		codec_put_name(w, j->queue);
		codec_put_name(w, j->type);
		codec_put_bin(w, &j->payload);
		codec_put_int(w, j->priority);
		codec_put_uint(w, j->max_attempts);
		codec_put_uint(w, j->delay_ms);
		codec_put_uint(w, j->timeout_ms);
	}
}

static int submit_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                         struct jm_err *err)
{
	struct proto_submit *s = &m->u.submit;
	const msgpack_object *f;
	void *jobs;
	if (codec_fields(body, 2, SUBMIT_FIELDS, &f, err) ||
	    codec_bool(&f[0], "as_batch", &s->as_batch, err) ||
	    codec_list(&f[1], "jobs", "job", 1, PROTO_JOBS_PER_MESSAGE_MAX, zone, sizeof s->jobs[0],
	               job_spec_decode, &jobs, &s->jobs_count, err))
		return err->code;
	s->jobs = jobs;
	return 0;
}

/* SUBMITTED: [batch_id, [job_id...]] */
#define SUBMITTED_FIELDS "batch_id, job_ids"

static int job_id_check(const void *item, struct jm_err *err)
{
	(void)item;
	(void)err;
	return 0;
}

static int job_id_decode(const msgpack_object *o, void *item, struct jm_err *err)
{
	return codec_u64(o, "job id", item, err);
}

static int submitted_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_submitted *s = &m->u.submitted;
	return codec_check_list(s->ids, s->ids_count, sizeof s->ids[0], "job ids", "job id", 0,
	                        PROTO_JOBS_PER_MESSAGE_MAX, job_id_check, err);
}

static void submitted_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_submitted *s = &m->u.submitted;
	codec_put_array(w, 2);
	codec_put_uint(w, s->batch_id);
	codec_put_array(w, s->ids_count);
	for (uint32_t i = 0; i < s->ids_count; i++)
		codec_put_uint(w, s->ids[i]);
}

static int submitted_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                            struct jm_err *err)
{
	struct proto_submitted *s = &m->u.submitted;
	const msgpack_object *f;
	void *ids;
	if (codec_fields(body, 2, SUBMITTED_FIELDS, &f, err) ||
	    codec_u64(&f[0], "batch_id", &s->batch_id, err) ||
	    codec_list(&f[1], "job ids", "job id", 0, PROTO_JOBS_PER_MESSAGE_MAX, zone,
	               sizeof s->ids[0], job_id_decode, &ids, &s->ids_count, err))
		return err->code;
	s->ids = ids;
	return 0;
}

/* FETCH: [worker_id, slot, [queue...], max_jobs, wait_ms] */
#define FETCH_FIELDS "worker_id, slot, queues, max_jobs, wait_ms"

static int fetch_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_fetch *f = &m->u.fetch;
	if (codec_check_name(f->worker_id, "worker id", false, err) ||
	    codec_check_list(f->queues, f->queues_count, sizeof f->queues[0], "queues", "queue", 1,
	                     PROTO_QUEUES_PER_FETCH_MAX, queue_name_check, err) ||
	    codec_check_u32(f->max_jobs, "max_jobs", 1, PROTO_JOBS_PER_MESSAGE_MAX, err))
		return err->code;
	return 0;
}

static void fetch_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_fetch *f = &m->u.fetch;
	codec_put_array(w, 5);
	codec_put_name(w, f->worker_id);
	codec_put_uint(w, f->slot);
	names_encode(w, f->queues, f->queues_count);
	codec_put_uint(w, f->max_jobs);
	codec_put_uint(w, f->wait_ms);
}

static int fetch_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                        struct jm_err *err)
{
	struct proto_fetch *fe = &m->u.fetch;
	const msgpack_object *f;
	void *queues;
	if (codec_fields(body, 5, FETCH_FIELDS, &f, err) ||
	    codec_name(&f[0], "worker id", false, fe->worker_id, err) ||
	    codec_u32(&f[1], "slot", &fe->slot, err) ||
	    codec_list(&f[2], "queues", "queue", 1, PROTO_QUEUES_PER_FETCH_MAX, zone,
	               sizeof fe->queues[0], queue_name_decode, &queues, &fe->queues_count, err))
		return err->code;
	fe->queues = queues;
	if (codec_u32(&f[3], "max_jobs", &fe->max_jobs, err) ||
	    codec_u32(&f[4], "wait_ms", &fe->wait_ms, err))
		return err->code;
	return 0;
}

/* JOBS: [[delivery...]]
 * delivery: [job_id, lease, attempt, queue, type, payload, timeout_ms] */
#define JOBS_FIELDS "deliveries"
#define DELIVERY_FIELDS "job_id, lease, attempt, queue, type, payload, timeout_ms"

static int delivery_check(const void *item, struct jm_err *err)
{
	const struct proto_delivery *d = item;
	if (codec_check_u32(d->attempt, "attempt", 1, UINT32_MAX, err) ||
	    codec_check_name(d->queue, "queue name", false, err) ||
	    codec_check_name(d->type, "type name", false, err) ||
	    codec_check_size(&d->payload, "payload", PROTO_PAYLOAD_MAX_DEFAULT, err))
		return err->code;
	return 0;
}

static int delivery_decode(const msgpack_object *o, void *item, struct jm_err *err)
{
	struct proto_delivery *d = item;
	const msgpack_object *f;
	if (codec_fields(o, 7, DELIVERY_FIELDS, &f, err) ||
	    codec_u64(&f[0], "job_id", &d->job_id, err) ||
	    codec_u64(&f[1], "lease", &d->lease, err) ||
	    codec_u32(&f[2], "attempt", &d->attempt, err) ||
	    codec_name(&f[3], "queue name", false, d->queue, err) ||
	    codec_name(&f[4], "type name", false, d->type, err) ||
	    codec_bytes(&f[5], "payload", &d->payload, err) ||
	    codec_u64(&f[6], "timeout_ms", &d->timeout_ms, err))
		return err->code;
	return 0;
}

static int jobs_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_jobs *j = &m->u.jobs;
	return codec_check_list(j->jobs, j->jobs_count, sizeof j->jobs[0], "deliveries", "job", 0,
	                        PROTO_JOBS_PER_MESSAGE_MAX, delivery_check, err);
}

static void jobs_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_jobs *j = &m->u.jobs;
	codec_put_array(w, 1);
	codec_put_array(w, j->jobs_count);
	for (uint32_t i = 0; i < j->jobs_count; i++) {
		const struct proto_delivery *d = &j->jobs[i];
		codec_put_array(w, 7);
		codec_put_uint(w, d->job_id);
		codec_put_uint(w, d->lease);
		codec_put_uint(w, d->attempt);
		codec_put_name(w, d->queue);
		codec_put_name(w, d->type);
		codec_put_bin(w, &d->payload);
		codec_put_uint(w, d->timeout_ms);
	}
}

static int jobs_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                       struct jm_err *err)
{
	struct proto_jobs *j = &m->u.jobs;
	const msgpack_object *f;
	void *jobs;
	if (codec_fields(body, 1, JOBS_FIELDS, &f, err) ||
	    codec_list(&f[0], "deliveries", "job", 0, PROTO_JOBS_PER_MESSAGE_MAX, zone,
	               sizeof j->jobs[0], delivery_decode, &jobs, &j->jobs_count, err))
		return err->code;
	j->jobs = jobs;
	return 0;
}

/* ACK: [worker_id, [ack_item...]]
 * ack_item: [job_id, lease, result] */
#define ACK_FIELDS "worker_id, items"
#define ACK_ITEM_FIELDS "job_id, lease, result"

static int ack_item_check(const void *item, struct jm_err *err)
{
	const struct proto_ack_item *a = item;
	return codec_check_size(&a->result, "result", PROTO_RESULT_MAX, err);
}

static int ack_item_decode(const msgpack_object *o, void *item, struct jm_err *err)
{
	struct proto_ack_item *a = item;
	const msgpack_object *f;
	if (codec_fields(o, 3, ACK_ITEM_FIELDS, &f, err) ||
	    codec_u64(&f[0], "job_id", &a->job_id, err) ||
	    codec_u64(&f[1], "lease", &a->lease, err) ||
	    codec_bytes(&f[2], "result", &a->result, err))
		return err->code;
	return 0;
}

static int ack_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_ack *a = &m->u.ack;
	if (codec_check_name(a->worker_id, "worker id", false, err) ||
	    codec_check_list(a->items, a->items_count, sizeof a->items[0], "items", "item", 1,
	                     PROTO_JOBS_PER_MESSAGE_MAX, ack_item_check, err))
		return err->code;
	return 0;
}

static void ack_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_ack *a = &m->u.ack;
	codec_put_array(w, 2);
	codec_put_name(w, a->worker_id);
	codec_put_array(w, a->items_count);
	for (uint32_t i = 0; i < a->items_count; i++) {
		codec_put_array(w, 3);
		codec_put_uint(w, a->items[i].job_id);
		codec_put_uint(w, a->items[i].lease);
		codec_put_bin(w, &a->items[i].result);
	}
}

static int ack_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                      struct jm_err *err)
{
	struct proto_ack *a = &m->u.ack;
	const msgpack_object *f;
	void *items;
	if (codec_fields(body, 2, ACK_FIELDS, &f, err) ||
	    codec_name(&f[0], "worker id", false, a->worker_id, err) ||
	    codec_list(&f[1], "items", "item", 1, PROTO_JOBS_PER_MESSAGE_MAX, zone,
	               sizeof a->items[0], ack_item_decode, &items, &a->items_count, err))
		return err->code;
	a->items = items;
	return 0;
}

/* FAIL: [worker_id, [fail_item...]]
 * fail_item: [job_id, lease, error, permanent, released] */
#define FAIL_FIELDS "worker_id, items"
#define FAIL_ITEM_FIELDS "job_id, lease, error, permanent, released"

static int fail_item_check(const void *item, struct jm_err *err)
{
	const struct proto_fail_item *fi = item;
	return codec_check_size(&fi->error, "error", PROTO_ERROR_TEXT_MAX, err);
}

static int fail_item_decode(const msgpack_object *o, void *item, struct jm_err *err)
{
	struct proto_fail_item *fi = item;
	const msgpack_object *f;
	if (codec_fields(o, 5, FAIL_ITEM_FIELDS, &f, err) ||
	    codec_u64(&f[0], "job_id", &fi->job_id, err) ||
	    codec_u64(&f[1], "lease", &fi->lease, err) ||
	    codec_bytes(&f[2], "error", &fi->error, err) ||
	    codec_bool(&f[3], "permanent", &fi->permanent, err) ||
	    codec_bool(&f[4], "released", &fi->released, err))
		return err->code;
	return 0;
}

static int fail_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_fail *fa = &m->u.fail;
	if (codec_check_name(fa->worker_id, "worker id", false, err) ||
	    codec_check_list(fa->items, fa->items_count, sizeof fa->items[0], "items", "item", 1,
	                     PROTO_JOBS_PER_MESSAGE_MAX, fail_item_check, err))
		return err->code;
	return 0;
}

static void fail_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_fail *fa = &m->u.fail;
	codec_put_array(w, 2);
	codec_put_name(w, fa->worker_id);
	codec_put_array(w, fa->items_count);
	for (uint32_t i = 0; i < fa->items_count; i++) {
		const struct proto_fail_item *fi = &fa->items[i];
		codec_put_array(w, 5);
		codec_put_uint(w, fi->job_id);
		codec_put_uint(w, fi->lease);
		codec_put_text(w, &fi->error);
		codec_put_bool(w, fi->permanent);
		codec_put_bool(w, fi->released);
	}
}

static int fail_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                       struct jm_err *err)
{
	struct proto_fail *fa = &m->u.fail;
	const msgpack_object *f;
	void *items;
	if (codec_fields(body, 2, FAIL_FIELDS, &f, err) ||
	    codec_name(&f[0], "worker id", false, fa->worker_id, err) ||
	    codec_list(&f[1], "items", "item", 1, PROTO_JOBS_PER_MESSAGE_MAX, zone,
	               sizeof fa->items[0], fail_item_decode, &items, &fa->items_count, err))
		return err->code;
	fa->items = items;
	return 0;
}

/* SETTLED: [[code...]]: 0 or a (negative) JM_E... per item */
#define SETTLED_FIELDS "codes"

static int settle_code_check(const void *item, struct jm_err *err)
{
	return codec_check_i32(*(const int32_t *)item, "code", INT32_MIN, 0, err);
}

static int settle_code_decode(const msgpack_object *o, void *item, struct jm_err *err)
{
	return codec_i32(o, "code", item, err);
}

static int settled_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_settled *s = &m->u.settled;
	return codec_check_list(s->codes, s->codes_count, sizeof s->codes[0], "codes", "item", 0,
	                        PROTO_JOBS_PER_MESSAGE_MAX, settle_code_check, err);
}

static void settled_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_settled *s = &m->u.settled;
	codec_put_array(w, 1);
	codec_put_array(w, s->codes_count);
	for (uint32_t i = 0; i < s->codes_count; i++)
		codec_put_int(w, s->codes[i]);
}

static int settled_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                          struct jm_err *err)
{
	struct proto_settled *s = &m->u.settled;
	const msgpack_object *f;
	void *codes;
	if (codec_fields(body, 1, SETTLED_FIELDS, &f, err) ||
	    codec_list(&f[0], "codes", "item", 0, PROTO_JOBS_PER_MESSAGE_MAX, zone,
	               sizeof s->codes[0], settle_code_decode, &codes, &s->codes_count, err))
		return err->code;
	s->codes = codes;
	return 0;
}

/* STATUS, RESULT: [job_id] */
#define JOB_REF_FIELDS "job_id"

static int job_ref_check(const struct proto_msg *m, struct jm_err *err)
{
	(void)m;
	(void)err;
	return 0;
}

static void job_ref_encode(struct codec_writer *w, const struct proto_msg *m)
{
	codec_put_array(w, 1);
	codec_put_uint(w, m->u.job_ref.job_id);
}

static int job_ref_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                          struct jm_err *err)
{
	const msgpack_object *f;
	if (codec_fields(body, 1, JOB_REF_FIELDS, &f, err) ||
	    codec_u64(&f[0], "job_id", &m->u.job_ref.job_id, err))
		return err->code;
	return 0;
}

/* WAIT: [job_id, timeout_ms] */
#define WAIT_FIELDS "job_id, timeout_ms"

static int wait_check(const struct proto_msg *m, struct jm_err *err)
{
	(void)m;
	(void)err;
	return 0;
}

static void wait_encode(struct codec_writer *w, const struct proto_msg *m)
{
	codec_put_array(w, 2);
	codec_put_uint(w, m->u.wait.job_id);
	codec_put_uint(w, m->u.wait.timeout_ms);
}

static int wait_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                       struct jm_err *err)
{
	const msgpack_object *f;
	if (codec_fields(body, 2, WAIT_FIELDS, &f, err) ||
	    codec_u64(&f[0], "job_id", &m->u.wait.job_id, err) ||
	    codec_u32(&f[1], "timeout_ms", &m->u.wait.timeout_ms, err))
		return err->code;
	return 0;
}

/* JOB: [job_id, queue, type, state, priority, attempt, max_attempts,
 *       created_us, updated_us, run_at_us, last_error, has_result, result] */
#define JOB_FIELDS                                                                                 \
	"job_id, queue, type, state, priority, attempt, max_attempts, created_us, updated_us, "    \
	"run_at_us, last_error, has_result, result"

static int job_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_job_info *j = &m->u.job;
	if (codec_check_name(j->queue, "queue name", false, err) ||
	    codec_check_name(j->type, "type name", false, err) ||
	    codec_check_u32(j->state, "state", PROTO_STATE_PENDING, PROTO_STATE_CANCELLED, err) ||
	    codec_check_i32(j->priority, "priority", PROTO_PRIORITY_MIN, PROTO_PRIORITY_MAX, err) ||
	    codec_check_u32(j->max_attempts, "max_attempts", 0, PROTO_ATTEMPTS_MAX, err) ||
	    codec_check_size(&j->last_error, "last_error", PROTO_ERROR_TEXT_MAX, err) ||
	    codec_check_size(&j->result, "result", PROTO_RESULT_MAX, err))
		return err->code;
	if (!j->has_result && j->result.len > 0)
		return jm_err_set(err, JM_EINVAL,
		                  "result is %" PRIu32 " bytes but has_result is false: "
		                  "send an empty result or set has_result",
		                  j->result.len);
	return 0;
}

static void job_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_job_info *j = &m->u.job;
	codec_put_array(w, 13);
	codec_put_uint(w, j->job_id);
	codec_put_name(w, j->queue);
	codec_put_name(w, j->type);
	codec_put_uint(w, j->state);
	codec_put_int(w, j->priority);
	codec_put_uint(w, j->attempt);
	codec_put_uint(w, j->max_attempts);
	codec_put_uint(w, j->created_us);
	codec_put_uint(w, j->updated_us);
	codec_put_uint(w, j->run_at_us);
	codec_put_text(w, &j->last_error);
	codec_put_bool(w, j->has_result);
	codec_put_bin(w, &j->result);
}

static int job_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                      struct jm_err *err)
{
	struct proto_job_info *j = &m->u.job;
	const msgpack_object *f;
	if (codec_fields(body, 13, JOB_FIELDS, &f, err) ||
	    codec_u64(&f[0], "job_id", &j->job_id, err) ||
	    codec_name(&f[1], "queue name", false, j->queue, err) ||
	    codec_name(&f[2], "type name", false, j->type, err) ||
	    codec_u32(&f[3], "state", &j->state, err) ||
	    codec_i32(&f[4], "priority", &j->priority, err) ||
	    codec_u32(&f[5], "attempt", &j->attempt, err) ||
	    codec_u32(&f[6], "max_attempts", &j->max_attempts, err) ||
	    codec_u64(&f[7], "created_us", &j->created_us, err) ||
	    codec_u64(&f[8], "updated_us", &j->updated_us, err) ||
	    codec_u64(&f[9], "run_at_us", &j->run_at_us, err) ||
	    codec_bytes(&f[10], "last_error", &j->last_error, err) ||
	    codec_bool(&f[11], "has_result", &j->has_result, err) ||
	    codec_bytes(&f[12], "result", &j->result, err))
		return err->code;
	return 0;
}

/* STATS: [] */

static int stats_check(const struct proto_msg *m, struct jm_err *err)
{
	(void)m;
	(void)err;
	return 0;
}

static void stats_encode(struct codec_writer *w, const struct proto_msg *m)
{
	(void)m;
	codec_put_array(w, 0);
}

static int stats_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                        struct jm_err *err)
{
	const msgpack_object *f;
	return codec_fields(body, 0, "", &f, err);
}

/* STATS_REPLY: [[queue_stats...]]
 * queue_stats: [name, pending, delayed, active, completed, failed]
 * The queue count has no limit of its own: PROTO_MESSAGE_MAX bounds it. */
#define STATS_REPLY_FIELDS "queues"
#define QUEUE_STATS_FIELDS "name, pending, delayed, active, completed, failed"

static int queue_stats_check(const void *item, struct jm_err *err)
{
	const struct proto_queue_stats *q = item;
	return codec_check_name(q->name, "queue name", false, err);
}

static int queue_stats_decode(const msgpack_object *o, void *item, struct jm_err *err)
{
	struct proto_queue_stats *q = item;
	const msgpack_object *f;
	if (codec_fields(o, 6, QUEUE_STATS_FIELDS, &f, err) ||
	    codec_name(&f[0], "queue name", false, q->name, err) ||
	    codec_u64(&f[1], "pending", &q->pending, err) ||
	    codec_u64(&f[2], "delayed", &q->delayed, err) ||
	    codec_u64(&f[3], "active", &q->active, err) ||
	    codec_u64(&f[4], "completed", &q->completed, err) ||
	    codec_u64(&f[5], "failed", &q->failed, err))
		return err->code;
	return 0;
}

static int stats_reply_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_stats_reply *s = &m->u.stats_reply;
	return codec_check_list(s->queues, s->queues_count, sizeof s->queues[0], "queues", "queue",
	                        0, UINT32_MAX, queue_stats_check, err);
}

static void stats_reply_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_stats_reply *s = &m->u.stats_reply;
	codec_put_array(w, 1);
	codec_put_array(w, s->queues_count);
	for (uint32_t i = 0; i < s->queues_count; i++) {
		const struct proto_queue_stats *q = &s->queues[i];
		codec_put_array(w, 6);
		codec_put_name(w, q->name);
		codec_put_uint(w, q->pending);
		codec_put_uint(w, q->delayed);
		codec_put_uint(w, q->active);
		codec_put_uint(w, q->completed);
		codec_put_uint(w, q->failed);
	}
}

static int stats_reply_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                              struct jm_err *err)
{
	struct proto_stats_reply *s = &m->u.stats_reply;
	const msgpack_object *f;
	void *queues;
	if (codec_fields(body, 1, STATS_REPLY_FIELDS, &f, err) ||
	    codec_list(&f[0], "queues", "queue", 0, UINT32_MAX, zone, sizeof s->queues[0],
	               queue_stats_decode, &queues, &s->queues_count, err))
		return err->code;
	s->queues = queues;
	return 0;
}

/* HEARTBEAT: [worker_id, host, pid, concurrency, [queue...],
 *             [[job_id, lease]...], draining]
 * A worker serves at most PROTO_QUEUES_PER_FETCH_MAX queues (it could not
 * fetch from more) and reports at most PROTO_JOBS_PER_MESSAGE_MAX leases;
 * host is at most HOST_MAX bytes. */
#define HEARTBEAT_FIELDS "worker_id, host, pid, concurrency, queues, leases, draining"

static int heartbeat_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_heartbeat *h = &m->u.heartbeat;
	if (codec_check_name(h->worker_id, "worker id", false, err) ||
	    codec_check_size(&h->host, "host", HOST_MAX, err) ||
	    codec_check_list(h->queues, h->queues_count, sizeof h->queues[0], "queues", "queue", 0,
	                     PROTO_QUEUES_PER_FETCH_MAX, queue_name_check, err) ||
	    codec_check_list(h->leases, h->leases_count, sizeof h->leases[0], "leases", "lease", 0,
	                     PROTO_JOBS_PER_MESSAGE_MAX, lease_ref_check, err))
		return err->code;
	return 0;
}

static void heartbeat_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_heartbeat *h = &m->u.heartbeat;
	codec_put_array(w, 7);
	codec_put_name(w, h->worker_id);
	codec_put_text(w, &h->host);
	codec_put_uint(w, h->pid);
	codec_put_uint(w, h->concurrency);
	names_encode(w, h->queues, h->queues_count);
	lease_refs_encode(w, h->leases, h->leases_count);
	codec_put_bool(w, h->draining);
}

static int heartbeat_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                            struct jm_err *err)
{
	struct proto_heartbeat *h = &m->u.heartbeat;
	const msgpack_object *f;
	void *queues;
	void *leases;
	if (codec_fields(body, 7, HEARTBEAT_FIELDS, &f, err) ||
	    codec_name(&f[0], "worker id", false, h->worker_id, err) ||
	    codec_bytes(&f[1], "host", &h->host, err) || codec_u32(&f[2], "pid", &h->pid, err) ||
	    codec_u32(&f[3], "concurrency", &h->concurrency, err) ||
	    codec_list(&f[4], "queues", "queue", 0, PROTO_QUEUES_PER_FETCH_MAX, zone,
	               sizeof h->queues[0], queue_name_decode, &queues, &h->queues_count, err))
		return err->code;
	h->queues = queues;
	if (codec_list(&f[5], "leases", "lease", 0, PROTO_JOBS_PER_MESSAGE_MAX, zone,
	               sizeof h->leases[0], lease_ref_decode, &leases, &h->leases_count, err) ||
	    codec_bool(&f[6], "draining", &h->draining, err))
		return err->code;
	h->leases = leases;
	return 0;
}

/* HEARTBEAT_REPLY: [[[job_id, lease]...]] */
#define HEARTBEAT_REPLY_FIELDS "abandon"

static int heartbeat_reply_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_heartbeat_reply *h = &m->u.heartbeat_reply;
	return codec_check_list(h->abandon, h->abandon_count, sizeof h->abandon[0], "leases",
	                        "lease", 0, PROTO_JOBS_PER_MESSAGE_MAX, lease_ref_check, err);
}

static void heartbeat_reply_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_heartbeat_reply *h = &m->u.heartbeat_reply;
	codec_put_array(w, 1);
	lease_refs_encode(w, h->abandon, h->abandon_count);
}

static int heartbeat_reply_decode(const msgpack_object *body, msgpack_zone *zone,
                                  struct proto_msg *m, struct jm_err *err)
{
	struct proto_heartbeat_reply *h = &m->u.heartbeat_reply;
	const msgpack_object *f;
	void *abandon;
	if (codec_fields(body, 1, HEARTBEAT_REPLY_FIELDS, &f, err) ||
	    codec_list(&f[0], "leases", "lease", 0, PROTO_JOBS_PER_MESSAGE_MAX, zone,
	               sizeof h->abandon[0], lease_ref_decode, &abandon, &h->abandon_count, err))
		return err->code;
	h->abandon = abandon;
	return 0;
}

#define MSG_CODEC(name)                                                                            \
	{                                                                                          \
		name##_check, name##_encode, name##_decode                                         \
	}

static const struct msg_codec msg_codecs[PROTO_TYPE_MAX_ + 1] = {
    [PROTO_ERROR] = MSG_CODEC(error),         [PROTO_SUBMIT] = MSG_CODEC(submit),
    [PROTO_SUBMITTED] = MSG_CODEC(submitted), [PROTO_FETCH] = MSG_CODEC(fetch),
    [PROTO_JOBS] = MSG_CODEC(jobs),           [PROTO_ACK] = MSG_CODEC(ack),
    [PROTO_FAIL] = MSG_CODEC(fail),           [PROTO_SETTLED] = MSG_CODEC(settled),
    [PROTO_STATUS] = MSG_CODEC(job_ref),      [PROTO_RESULT] = MSG_CODEC(job_ref),
    [PROTO_WAIT] = MSG_CODEC(wait),           [PROTO_JOB] = MSG_CODEC(job),
    [PROTO_STATS] = MSG_CODEC(stats),         [PROTO_STATS_REPLY] = MSG_CODEC(stats_reply),
    [PROTO_HEARTBEAT] = MSG_CODEC(heartbeat), [PROTO_HEARTBEAT_REPLY] = MSG_CODEC(heartbeat_reply),
};

static const struct msg_codec *msg_codec_of(uint64_t type)
{
	if (type == 0 || type > PROTO_TYPE_MAX_ || msg_codecs[type].check == NULL)
		return NULL;
	return &msg_codecs[type];
}

/* The envelope: [version, type, body]. The version is read before anything
 * else, so a newer peer whose envelope differs still gets told the version
 * is the problem. */
#define ENVELOPE_FIELDS "version, type, body"

static int envelope_decode(const msgpack_object *root, msgpack_zone *zone, struct proto_msg *out,
                           struct jm_err *err)
{
	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size == 0)
		return jm_err_set(
		    err, JM_EPROTO, "message must be an array [%s], got %s", ENVELOPE_FIELDS,
		    root->type == MSGPACK_OBJECT_ARRAY ? "an empty array" : codec_kind(root));
	const msgpack_object *f = root->via.array.ptr;
	uint64_t version;
	if (codec_u64(&f[0], "protocol version", &version, err) != 0)
		return err->code;
	if (version != PROTO_VERSION)
		return jm_err_set(err, JM_EVERSION,
		                  "protocol version %" PRIu64
		                  " is not supported: this broker speaks version %d",
		                  version, PROTO_VERSION);
	uint64_t type;
	if (codec_fields(root, 3, ENVELOPE_FIELDS, &f, err) ||
	    codec_u64(&f[1], "message type", &type, err))
		return jm_err_prefix(err, "message");
	const struct msg_codec *c = msg_codec_of(type);
	if (c == NULL)
		return jm_err_set(err, JM_EUNSUPPORTED,
		                  "message type %" PRIu64 " is not supported: use 1..%d", type,
		                  PROTO_TYPE_MAX_);
	out->version = PROTO_VERSION;
	out->type = (enum proto_type)type;
	if (c->decode(&f[2], zone, out, err) || c->check(out, err))
		return jm_err_prefix(err, "%s", proto_type_name((int)type));
	return 0;
}

int proto_decode(const void *buf, size_t len, struct proto_msg *out, struct jm_err *err)
{
	struct jm_err scratch;
	if (err == NULL)
		err = &scratch;
	jm_err_clear(err);
	memset(out, 0, sizeof *out);
	msgpack_zone *zone;
	msgpack_object root;
	int rc = codec_unpack(buf, len, &zone, &root, err);
	if (rc != 0)
		return rc;
	rc = envelope_decode(&root, zone, out, err);
	if (rc != 0) {
		msgpack_zone_free(zone);
		memset(out, 0, sizeof *out);
		return rc;
	}
	out->zone_ = zone;
	return 0;
}

void proto_msg_fini(struct proto_msg *msg)
{
	if (msg == NULL)
		return;
	if (msg->zone_ != NULL)
		msgpack_zone_free(msg->zone_);
	memset(msg, 0, sizeof *msg);
}

/* Checks msg the way proto_decode would; 0 or a JM_E code with err set. */
static int msg_check(const struct proto_msg *msg, const struct msg_codec **codec,
                     struct jm_err *err)
{
	*codec = msg_codec_of((uint64_t)msg->type);
	if (*codec == NULL)
		return jm_err_set(err, JM_EINVAL, "message type %d is not supported",
		                  (int)msg->type);
	return (*codec)->check(msg, err);
}

int proto_encode(const struct proto_msg *msg, struct jm_buf *out)
{
	struct jm_err err;
	const struct msg_codec *c;
	if (msg_check(msg, &c, &err) != 0)
		return JM_EINVAL;
	struct codec_writer w;
	codec_writer_init(&w, out);
	codec_put_array(&w, 3);
	codec_put_uint(&w, PROTO_VERSION);
	codec_put_uint(&w, (uint64_t)msg->type);
	c->encode(&w, msg);
	return codec_writer_finish(&w);
}

/* Cuts len back so that text does not end inside a UTF-8 sequence
 * (vsnprintf truncates by bytes). */
static size_t utf8_trim(const char *text, size_t len)
{
	size_t start = len;
	while (start > 0 && ((unsigned char)text[start - 1] & 0xc0) == 0x80)
		start--;
	if (start == 0)
		return len;
	unsigned char lead = (unsigned char)text[start - 1];
	size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	if (len - (start - 1) < need)
		return start - 1;
	return len;
}

int proto_encode_error(struct jm_buf *out, int code, const char *fmt, ...)
{
	char text[PROTO_ERROR_TEXT_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	int printed = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (printed < 0)
		return JM_EINVAL;
	size_t len = (size_t)printed;
	if (len >= sizeof text)
		len = utf8_trim(text, sizeof text - 1);
	struct proto_msg msg = {.type = PROTO_ERROR};
	msg.u.error.code = code;
	msg.u.error.message.ptr = len > 0 ? (const uint8_t *)text : NULL;
	msg.u.error.message.len = (uint32_t)len;
	return proto_encode(&msg, out);
}
