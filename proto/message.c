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

/* FETCH: [worker_id, instance, slot, [queue...], max_jobs, wait_ms] */
#define FETCH_FIELDS "worker_id, instance, slot, queues, max_jobs, wait_ms"

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
	codec_put_array(w, 6);
	codec_put_name(w, f->worker_id);
	codec_put_uint(w, f->instance);
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
	if (codec_fields(body, 6, FETCH_FIELDS, &f, err) ||
	    codec_name(&f[0], "worker id", false, fe->worker_id, err) ||
	    codec_u64(&f[1], "instance", &fe->instance, err) ||
	    codec_u32(&f[2], "slot", &fe->slot, err) ||
	    codec_list(&f[3], "queues", "queue", 1, PROTO_QUEUES_PER_FETCH_MAX, zone,
	               sizeof fe->queues[0], queue_name_decode, &queues, &fe->queues_count, err))
		return err->code;
	fe->queues = queues;
	if (codec_u32(&f[4], "max_jobs", &fe->max_jobs, err) ||
	    codec_u32(&f[5], "wait_ms", &fe->wait_ms, err))
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

/* STATUS, RESULT, CANCEL: [job_id] */
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

/* The range of a progress report, done of total: total at least
 * total_min, done at most total. (codec_check_u32 compares 64-bit values.) */
static int progress_check(uint64_t done, uint64_t total, const char *done_field,
                          const char *total_field, uint64_t total_min, struct jm_err *err)
{
	if (codec_check_u32(total, total_field, total_min, UINT64_MAX, err) ||
	    codec_check_u32(done, done_field, 0, total, err))
		return err->code;
	return 0;
}

/* JOB: [job_id, queue, type, state, priority, attempt, max_attempts,
 *       created_us, updated_us, run_at_us, last_error, has_result, result,
 *       batch_id, progress_done, progress_total, progress_message]
 * JOB_LIST's items are the same job_info. Progress is 0 of 0 until the
 * handler first reports, then as PROGRESS allows (total >= 1, done <=
 * total). */
#define JOB_FIELDS                                                                                 \
	"job_id, queue, type, state, priority, attempt, max_attempts, created_us, updated_us, "    \
	"run_at_us, last_error, has_result, result, batch_id, progress_done, progress_total, "     \
	"progress_message"

static int job_info_check(const void *item, struct jm_err *err)
{
	const struct proto_job_info *j = item;
	if (codec_check_name(j->queue, "queue name", false, err) ||
	    codec_check_name(j->type, "type name", false, err) ||
	    codec_check_u32(j->state, "state", PROTO_STATE_PENDING, PROTO_STATE_CANCELLED, err) ||
	    codec_check_i32(j->priority, "priority", PROTO_PRIORITY_MIN, PROTO_PRIORITY_MAX, err) ||
	    codec_check_u32(j->max_attempts, "max_attempts", 0, PROTO_ATTEMPTS_MAX, err) ||
	    codec_check_size(&j->last_error, "last_error", PROTO_ERROR_TEXT_MAX, err) ||
	    codec_check_size(&j->result, "result", PROTO_RESULT_MAX, err) ||
	    progress_check(j->progress_done, j->progress_total, "progress_done", "progress_total",
	                   0, err) ||
	    codec_check_size(&j->progress_message, "progress_message", PROTO_ERROR_TEXT_MAX, err))
		return err->code;
	if (!j->has_result && j->result.len > 0)
		return jm_err_set(err, JM_EINVAL,
		                  "result is %" PRIu32 " bytes but has_result is false: "
		                  "send an empty result or set has_result",
		                  j->result.len);
	return 0;
}

static void job_info_encode(struct codec_writer *w, const struct proto_job_info *j)
{
	codec_put_array(w, 17);
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
	codec_put_uint(w, j->batch_id);
	codec_put_uint(w, j->progress_done);
	codec_put_uint(w, j->progress_total);
	codec_put_text(w, &j->progress_message);
}

static int job_info_decode(const msgpack_object *o, void *item, struct jm_err *err)
{
	struct proto_job_info *j = item;
	const msgpack_object *f;
	if (codec_fields(o, 17, JOB_FIELDS, &f, err) ||
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
	    codec_bytes(&f[12], "result", &j->result, err) ||
	    codec_u64(&f[13], "batch_id", &j->batch_id, err) ||
	    codec_u64(&f[14], "progress_done", &j->progress_done, err) ||
	    codec_u64(&f[15], "progress_total", &j->progress_total, err) ||
	    codec_bytes(&f[16], "progress_message", &j->progress_message, err))
		return err->code;
	return 0;
}

static int job_check(const struct proto_msg *m, struct jm_err *err)
{
	return job_info_check(&m->u.job, err);
}

static void job_encode(struct codec_writer *w, const struct proto_msg *m)
{
	job_info_encode(w, &m->u.job);
}

static int job_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                      struct jm_err *err)
{
	return job_info_decode(body, &m->u.job, err);
}

/* STATS, WORKERS, BATCHES, HELLO: [] */

static int empty_check(const struct proto_msg *m, struct jm_err *err)
{
	(void)m;
	(void)err;
	return 0;
}

static void empty_encode(struct codec_writer *w, const struct proto_msg *m)
{
	(void)m;
	codec_put_array(w, 0);
}

static int empty_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                        struct jm_err *err)
{
	const msgpack_object *f;
	return codec_fields(body, 0, "", &f, err);
}

/* STATS_REPLY: [[queue_stats...]]
 * queue_stats: [name, pending, delayed, active, completed, failed,
 *               cancelled, oldest_pending_us, max_active] (the last three
 *               optional: an older broker leaves them out)
 * The queue count has no limit of its own: PROTO_MESSAGE_MAX bounds it. */
#define STATS_REPLY_FIELDS "queues"
#define QUEUE_STATS_FIELDS "name, pending, delayed, active, completed, failed"
#define QUEUE_STATS_FIELDS_ALL 9

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
	if (o->via.array.size >= QUEUE_STATS_FIELDS_ALL &&
	    (codec_u64(&f[6], "cancelled", &q->cancelled, err) ||
	     codec_u64(&f[7], "oldest_pending_us", &q->oldest_pending_us, err) ||
	     codec_u32(&f[8], "max_active", &q->max_active, err)))
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
		codec_put_array(w, QUEUE_STATS_FIELDS_ALL);
		codec_put_name(w, q->name);
		codec_put_uint(w, q->pending);
		codec_put_uint(w, q->delayed);
		codec_put_uint(w, q->active);
		codec_put_uint(w, q->completed);
		codec_put_uint(w, q->failed);
		codec_put_uint(w, q->cancelled);
		codec_put_uint(w, q->oldest_pending_us);
		codec_put_uint(w, q->max_active);
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

/* HEARTBEAT: [worker_id, instance, host, pid, concurrency, [queue...],
 *             [[job_id, lease]...], draining]
 * A worker serves at most PROTO_QUEUES_PER_FETCH_MAX queues (it could not
 * fetch from more) and reports at most PROTO_JOBS_PER_MESSAGE_MAX leases;
 * host is at most PROTO_HOST_MAX bytes. */
#define HEARTBEAT_FIELDS "worker_id, instance, host, pid, concurrency, queues, leases, draining"

static int heartbeat_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_heartbeat *h = &m->u.heartbeat;
	if (codec_check_name(h->worker_id, "worker id", false, err) ||
	    codec_check_size(&h->host, "host", PROTO_HOST_MAX, err) ||
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
	codec_put_array(w, 8);
	codec_put_name(w, h->worker_id);
	codec_put_uint(w, h->instance);
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
	if (codec_fields(body, 8, HEARTBEAT_FIELDS, &f, err) ||
	    codec_name(&f[0], "worker id", false, h->worker_id, err) ||
	    codec_u64(&f[1], "instance", &h->instance, err) ||
	    codec_bytes(&f[2], "host", &h->host, err) || codec_u32(&f[3], "pid", &h->pid, err) ||
	    codec_u32(&f[4], "concurrency", &h->concurrency, err) ||
	    codec_list(&f[5], "queues", "queue", 0, PROTO_QUEUES_PER_FETCH_MAX, zone,
	               sizeof h->queues[0], queue_name_decode, &queues, &h->queues_count, err))
		return err->code;
	h->queues = queues;
	if (codec_list(&f[6], "leases", "lease", 0, PROTO_JOBS_PER_MESSAGE_MAX, zone,
	               sizeof h->leases[0], lease_ref_decode, &leases, &h->leases_count, err) ||
	    codec_bool(&f[7], "draining", &h->draining, err))
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

/* Lists whose elements hold lists of their own (WORKERS_REPLY,
 * BATCHES_REPLY): codec_list, with the zone passed on to each element. */
typedef int (*zoned_item_decode_fn)(const msgpack_object *o, msgpack_zone *zone, void *item,
                                    struct jm_err *err);

static int zoned_list_decode(const msgpack_object *o, const char *field, const char *item_label,
                             uint32_t min, uint32_t max, msgpack_zone *zone, size_t item_size,
                             zoned_item_decode_fn decode, void **items, uint32_t *count,
                             struct jm_err *err)
{
	const msgpack_object *elems;
	uint32_t elems_count;
	*items = NULL;
	*count = 0;
	if (codec_array(o, field, min, max, &elems, &elems_count, err))
		return err->code;
	uint8_t *list = codec_alloc(zone, elems_count, item_size, err);
	if (list == NULL && elems_count > 0)
		return err->code;
	for (uint32_t i = 0; i < elems_count; i++)
		if (decode(&elems[i], zone, list + (size_t)i * item_size, err))
			return jm_err_prefix(err, "%s %" PRIu32, item_label, i);
	*items = list;
	*count = elems_count;
	return 0;
}

static void job_ids_encode(struct codec_writer *w, const uint64_t *ids, uint32_t count)
{
	codec_put_array(w, count);
	for (uint32_t i = 0; i < count; i++)
		codec_put_uint(w, ids[i]);
}

/* CANCEL: [job_id], bound to job_ref above. BATCH_STATUS: [batch_id], held
 * in job_ref's job_id but named for what it is in errors. */
#define BATCH_REF_FIELDS "batch_id"

static int batch_ref_check(const struct proto_msg *m, struct jm_err *err)
{
	(void)m;
	(void)err;
	return 0;
}

static void batch_ref_encode(struct codec_writer *w, const struct proto_msg *m)
{
	codec_put_array(w, 1);
	codec_put_uint(w, m->u.job_ref.job_id);
}

static int batch_ref_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                            struct jm_err *err)
{
	const msgpack_object *f;
	if (codec_fields(body, 1, BATCH_REF_FIELDS, &f, err) ||
	    codec_u64(&f[0], "batch_id", &m->u.job_ref.job_id, err))
		return err->code;
	return 0;
}

/* WORKERS_REPLY: [[worker_info...]]
 * worker_info: [worker_id, host, pid, concurrency, [queue...], active_jobs,
 *               first_seen_us, last_seen_us, draining, [job_id...]]
 * host, queues and job ids are bounded as in a HEARTBEAT; the worker count
 * has no limit of its own: PROTO_MESSAGE_MAX bounds it. */
#define WORKERS_REPLY_FIELDS "workers"
#define WORKER_INFO_FIELDS                                                                         \
	"worker_id, host, pid, concurrency, queues, active_jobs, first_seen_us, last_seen_us, "    \
	"draining, job_ids"

static int worker_info_check(const void *item, struct jm_err *err)
{
	const struct proto_worker_info *wi = item;
	if (codec_check_name(wi->worker_id, "worker id", false, err) ||
	    codec_check_size(&wi->host, "host", PROTO_HOST_MAX, err) ||
	    codec_check_list(wi->queues, wi->queues_count, sizeof wi->queues[0], "queues", "queue",
	                     0, PROTO_QUEUES_PER_FETCH_MAX, queue_name_check, err) ||
	    codec_check_list(wi->job_ids, wi->job_ids_count, sizeof wi->job_ids[0], "job ids",
	                     "job id", 0, PROTO_JOBS_PER_MESSAGE_MAX, job_id_check, err))
		return err->code;
	return 0;
}

static int worker_info_decode(const msgpack_object *o, msgpack_zone *zone, void *item,
                              struct jm_err *err)
{
	struct proto_worker_info *wi = item;
	const msgpack_object *f;
	void *queues;
	void *job_ids;
	if (codec_fields(o, 10, WORKER_INFO_FIELDS, &f, err) ||
	    codec_name(&f[0], "worker id", false, wi->worker_id, err) ||
	    codec_bytes(&f[1], "host", &wi->host, err) || codec_u32(&f[2], "pid", &wi->pid, err) ||
	    codec_u32(&f[3], "concurrency", &wi->concurrency, err) ||
	    codec_list(&f[4], "queues", "queue", 0, PROTO_QUEUES_PER_FETCH_MAX, zone,
	               sizeof wi->queues[0], queue_name_decode, &queues, &wi->queues_count, err))
		return err->code;
	wi->queues = queues;
	if (codec_u32(&f[5], "active_jobs", &wi->active_jobs, err) ||
	    codec_u64(&f[6], "first_seen_us", &wi->first_seen_us, err) ||
	    codec_u64(&f[7], "last_seen_us", &wi->last_seen_us, err) ||
	    codec_bool(&f[8], "draining", &wi->draining, err) ||
	    codec_list(&f[9], "job ids", "job id", 0, PROTO_JOBS_PER_MESSAGE_MAX, zone,
	               sizeof wi->job_ids[0], job_id_decode, &job_ids, &wi->job_ids_count, err))
		return err->code;
	wi->job_ids = job_ids;
	return 0;
}

static int workers_reply_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_workers_reply *r = &m->u.workers_reply;
	return codec_check_list(r->workers, r->workers_count, sizeof r->workers[0], "workers",
	                        "worker", 0, UINT32_MAX, worker_info_check, err);
}

static void workers_reply_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_workers_reply *r = &m->u.workers_reply;
	codec_put_array(w, 1);
	codec_put_array(w, r->workers_count);
	for (uint32_t i = 0; i < r->workers_count; i++) {
		const struct proto_worker_info *wi = &r->workers[i];
		codec_put_array(w, 10);
		codec_put_name(w, wi->worker_id);
		codec_put_text(w, &wi->host);
		codec_put_uint(w, wi->pid);
		codec_put_uint(w, wi->concurrency);
		names_encode(w, wi->queues, wi->queues_count);
		codec_put_uint(w, wi->active_jobs);
		codec_put_uint(w, wi->first_seen_us);
		codec_put_uint(w, wi->last_seen_us);
		codec_put_bool(w, wi->draining);
		job_ids_encode(w, wi->job_ids, wi->job_ids_count);
	}
}

static int workers_reply_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                                struct jm_err *err)
{
	struct proto_workers_reply *r = &m->u.workers_reply;
	const msgpack_object *f;
	void *workers;
	if (codec_fields(body, 1, WORKERS_REPLY_FIELDS, &f, err) ||
	    zoned_list_decode(&f[0], "workers", "worker", 0, UINT32_MAX, zone, sizeof r->workers[0],
	                      worker_info_decode, &workers, &r->workers_count, err))
		return err->code;
	r->workers = workers;
	return 0;
}

/* PROGRESS: [worker_id, job_id, lease, done, total, message] */
#define PROGRESS_FIELDS "worker_id, job_id, lease, done, total, message"

static int progress_msg_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_progress *p = &m->u.progress;
	if (codec_check_name(p->worker_id, "worker id", false, err) ||
	    progress_check(p->done, p->total, "done", "total", 1, err) ||
	    codec_check_size(&p->message, "message", PROTO_ERROR_TEXT_MAX, err))
		return err->code;
	return 0;
}

static void progress_msg_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_progress *p = &m->u.progress;
	codec_put_array(w, 6);
	codec_put_name(w, p->worker_id);
	codec_put_uint(w, p->job_id);
	codec_put_uint(w, p->lease);
	codec_put_uint(w, p->done);
	codec_put_uint(w, p->total);
	codec_put_text(w, &p->message);
}

static int progress_msg_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                               struct jm_err *err)
{
	struct proto_progress *p = &m->u.progress;
	const msgpack_object *f;
	if (codec_fields(body, 6, PROGRESS_FIELDS, &f, err) ||
	    codec_name(&f[0], "worker id", false, p->worker_id, err) ||
	    codec_u64(&f[1], "job_id", &p->job_id, err) ||
	    codec_u64(&f[2], "lease", &p->lease, err) || codec_u64(&f[3], "done", &p->done, err) ||
	    codec_u64(&f[4], "total", &p->total, err) ||
	    codec_bytes(&f[5], "message", &p->message, err))
		return err->code;
	return 0;
}

/* BATCH: [batch_id, state, total, completed, failed, cancelled, active,
 *         current_operation, [batch_error...], created_us, finished_us]
 * batch_error: [job_id, text]
 * BATCHES_REPLY: [[batch_info...]]; the batch count has no limit of its
 * own: PROTO_MESSAGE_MAX bounds it. */
#define BATCH_FIELDS                                                                               \
	"batch_id, state, total, completed, failed, cancelled, active, current_operation, "        \
	"errors, created_us, finished_us"
#define BATCH_ERROR_FIELDS "job_id, text"
#define BATCHES_REPLY_FIELDS "batches"

static int batch_error_check(const void *item, struct jm_err *err)
{
	const struct proto_batch_error *e = item;
	return codec_check_size(&e->text, "text", PROTO_ERROR_TEXT_MAX, err);
}

static int batch_error_decode(const msgpack_object *o, void *item, struct jm_err *err)
{
	struct proto_batch_error *e = item;
	const msgpack_object *f;
	if (codec_fields(o, 2, BATCH_ERROR_FIELDS, &f, err) ||
	    codec_u64(&f[0], "job_id", &e->job_id, err) ||
	    codec_bytes(&f[1], "text", &e->text, err))
		return err->code;
	return 0;
}

static int batch_info_check(const void *item, struct jm_err *err)
{
	const struct proto_batch_info *b = item;
	if (codec_check_u32(b->state, "state", PROTO_BATCH_RUNNING, PROTO_BATCH_FAILED, err) ||
	    codec_check_size(&b->current_operation, "current_operation", PROTO_ERROR_TEXT_MAX,
	                     err) ||
	    codec_check_list(b->errors, b->errors_count, sizeof b->errors[0], "errors", "error", 0,
	                     PROTO_BATCH_ERRORS_MAX, batch_error_check, err))
		return err->code;
	return 0;
}

static void batch_info_encode(struct codec_writer *w, const struct proto_batch_info *b)
{
	codec_put_array(w, 11);
	codec_put_uint(w, b->batch_id);
	codec_put_uint(w, b->state);
	codec_put_uint(w, b->total);
	codec_put_uint(w, b->completed);
	codec_put_uint(w, b->failed);
	codec_put_uint(w, b->cancelled);
	codec_put_uint(w, b->active);
	codec_put_text(w, &b->current_operation);
	codec_put_array(w, b->errors_count);
	for (uint32_t i = 0; i < b->errors_count; i++) {
		codec_put_array(w, 2);
		codec_put_uint(w, b->errors[i].job_id);
		codec_put_text(w, &b->errors[i].text);
	}
	codec_put_uint(w, b->created_us);
	codec_put_uint(w, b->finished_us);
}

static int batch_info_decode(const msgpack_object *o, msgpack_zone *zone, void *item,
                             struct jm_err *err)
{
	struct proto_batch_info *b = item;
	const msgpack_object *f;
	void *errors;
	if (codec_fields(o, 11, BATCH_FIELDS, &f, err) ||
	    codec_u64(&f[0], "batch_id", &b->batch_id, err) ||
	    codec_u32(&f[1], "state", &b->state, err) ||
	    codec_u64(&f[2], "total", &b->total, err) ||
	    codec_u64(&f[3], "completed", &b->completed, err) ||
	    codec_u64(&f[4], "failed", &b->failed, err) ||
	    codec_u64(&f[5], "cancelled", &b->cancelled, err) ||
	    codec_u64(&f[6], "active", &b->active, err) ||
	    codec_bytes(&f[7], "current_operation", &b->current_operation, err) ||
	    codec_list(&f[8], "errors", "error", 0, PROTO_BATCH_ERRORS_MAX, zone,
	               sizeof b->errors[0], batch_error_decode, &errors, &b->errors_count, err))
		return err->code;
	b->errors = errors;
	if (codec_u64(&f[9], "created_us", &b->created_us, err) ||
	    codec_u64(&f[10], "finished_us", &b->finished_us, err))
		return err->code;
	return 0;
}

static int batch_check(const struct proto_msg *m, struct jm_err *err)
{
	return batch_info_check(&m->u.batch, err);
}

static void batch_encode(struct codec_writer *w, const struct proto_msg *m)
{
	batch_info_encode(w, &m->u.batch);
}

static int batch_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                        struct jm_err *err)
{
	return batch_info_decode(body, zone, &m->u.batch, err);
}

static int batches_reply_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_batches_reply *r = &m->u.batches_reply;
	return codec_check_list(r->batches, r->batches_count, sizeof r->batches[0], "batches",
	                        "batch", 0, UINT32_MAX, batch_info_check, err);
}

static void batches_reply_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_batches_reply *r = &m->u.batches_reply;
	codec_put_array(w, 1);
	codec_put_array(w, r->batches_count);
	for (uint32_t i = 0; i < r->batches_count; i++)
		batch_info_encode(w, &r->batches[i]);
}

static int batches_reply_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                                struct jm_err *err)
{
	struct proto_batches_reply *r = &m->u.batches_reply;
	const msgpack_object *f;
	void *batches;
	if (codec_fields(body, 1, BATCHES_REPLY_FIELDS, &f, err) ||
	    zoned_list_decode(&f[0], "batches", "batch", 0, UINT32_MAX, zone, sizeof r->batches[0],
	                      batch_info_decode, &batches, &r->batches_count, err))
		return err->code;
	r->batches = batches;
	return 0;
}

/* HELLO_REPLY: [broker_version, events_url]
 * message.h sets no size for either; both are held to
 * PROTO_ERROR_TEXT_MAX, far above any version string or NNG URL. Either may
 * be empty (a broker that publishes no events). */
#define HELLO_REPLY_FIELDS "broker_version, events_url"

static int hello_reply_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_hello_reply *h = &m->u.hello_reply;
	if (codec_check_size(&h->broker_version, "broker_version", PROTO_ERROR_TEXT_MAX, err) ||
	    codec_check_size(&h->events_url, "events_url", PROTO_ERROR_TEXT_MAX, err))
		return err->code;
	return 0;
}

static void hello_reply_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_hello_reply *h = &m->u.hello_reply;
	codec_put_array(w, 2);
	codec_put_text(w, &h->broker_version);
	codec_put_text(w, &h->events_url);
}

static int hello_reply_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                              struct jm_err *err)
{
	struct proto_hello_reply *h = &m->u.hello_reply;
	const msgpack_object *f;
	if (codec_fields(body, 2, HELLO_REPLY_FIELDS, &f, err) ||
	    codec_bytes(&f[0], "broker_version", &h->broker_version, err) ||
	    codec_bytes(&f[1], "events_url", &h->events_url, err))
		return err->code;
	return 0;
}

/* DEAD_LIST: [queue, limit] */
#define DEAD_LIST_FIELDS "queue, limit"

static int dead_list_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_dead_list *d = &m->u.dead_list;
	if (codec_check_name(d->queue, "queue name", false, err) ||
	    codec_check_u32(d->limit, "limit", 1, PROTO_JOBS_PER_MESSAGE_MAX, err))
		return err->code;
	return 0;
}

static void dead_list_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_dead_list *d = &m->u.dead_list;
	codec_put_array(w, 2);
	codec_put_name(w, d->queue);
	codec_put_uint(w, d->limit);
}

static int dead_list_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                            struct jm_err *err)
{
	struct proto_dead_list *d = &m->u.dead_list;
	const msgpack_object *f;
	if (codec_fields(body, 2, DEAD_LIST_FIELDS, &f, err) ||
	    codec_name(&f[0], "queue name", false, d->queue, err) ||
	    codec_u32(&f[1], "limit", &d->limit, err))
		return err->code;
	return 0;
}

/* JOB_QUERY: [queue, state, batch_id, limit, cursor] */
#define JOB_QUERY_FIELDS "queue, state, batch_id, limit, cursor"

static int job_query_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_job_query *q = &m->u.job_query;
	if (codec_check_name(q->queue, "queue name", true, err) ||
	    (q->state != 0 &&
	     codec_check_u32(q->state, "state", PROTO_STATE_PENDING, PROTO_STATE_CANCELLED, err)) ||
	    codec_check_u32(q->limit, "limit", 1, PROTO_JOBS_PER_MESSAGE_MAX, err))
		return err->code;
	return 0;
}

static void job_query_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_job_query *q = &m->u.job_query;
	codec_put_array(w, 5);
	codec_put_name(w, q->queue);
	codec_put_uint(w, q->state);
	codec_put_uint(w, q->batch_id);
	codec_put_uint(w, q->limit);
	codec_put_uint(w, q->cursor);
}

static int job_query_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                            struct jm_err *err)
{
	struct proto_job_query *q = &m->u.job_query;
	const msgpack_object *f;
	if (codec_fields(body, 5, JOB_QUERY_FIELDS, &f, err) ||
	    codec_name(&f[0], "queue name", true, q->queue, err) ||
	    codec_u32(&f[1], "state", &q->state, err) ||
	    codec_u64(&f[2], "batch_id", &q->batch_id, err) ||
	    codec_u32(&f[3], "limit", &q->limit, err) ||
	    codec_u64(&f[4], "cursor", &q->cursor, err))
		return err->code;
	return 0;
}

/* JOB_LIST: [[job_info...]] */
#define JOB_LIST_FIELDS "jobs"

static int job_list_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_job_list *l = &m->u.job_list;
	return codec_check_list(l->jobs, l->jobs_count, sizeof l->jobs[0], "jobs", "job", 0,
	                        PROTO_JOBS_PER_MESSAGE_MAX, job_info_check, err);
}

static void job_list_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_job_list *l = &m->u.job_list;
	codec_put_array(w, 1);
	codec_put_array(w, l->jobs_count);
	for (uint32_t i = 0; i < l->jobs_count; i++)
		job_info_encode(w, &l->jobs[i]);
}

static int job_list_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                           struct jm_err *err)
{
	struct proto_job_list *l = &m->u.job_list;
	const msgpack_object *f;
	void *jobs;
	if (codec_fields(body, 1, JOB_LIST_FIELDS, &f, err) ||
	    codec_list(&f[0], "jobs", "job", 0, PROTO_JOBS_PER_MESSAGE_MAX, zone, sizeof l->jobs[0],
	               job_info_decode, &jobs, &l->jobs_count, err))
		return err->code;
	l->jobs = jobs;
	return 0;
}

/* REVIVE: [queue, job_id]; job_id 0 means every dead-lettered job */
#define REVIVE_FIELDS "queue, job_id"

static int revive_check(const struct proto_msg *m, struct jm_err *err)
{
	return codec_check_name(m->u.revive.queue, "queue name", false, err);
}

static void revive_encode(struct codec_writer *w, const struct proto_msg *m)
{
	codec_put_array(w, 2);
	codec_put_name(w, m->u.revive.queue);
	codec_put_uint(w, m->u.revive.job_id);
}

static int revive_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                         struct jm_err *err)
{
	struct proto_revive *r = &m->u.revive;
	const msgpack_object *f;
	if (codec_fields(body, 2, REVIVE_FIELDS, &f, err) ||
	    codec_name(&f[0], "queue name", false, r->queue, err) ||
	    codec_u64(&f[1], "job_id", &r->job_id, err))
		return err->code;
	return 0;
}

/* REVIVED: [[job_id...]] */
#define REVIVED_FIELDS "job_ids"

static int revived_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_revived *r = &m->u.revived;
	return codec_check_list(r->ids, r->ids_count, sizeof r->ids[0], "job ids", "job id", 0,
	                        PROTO_JOBS_PER_MESSAGE_MAX, job_id_check, err);
}

static void revived_encode(struct codec_writer *w, const struct proto_msg *m)
{
	codec_put_array(w, 1);
	job_ids_encode(w, m->u.revived.ids, m->u.revived.ids_count);
}

static int revived_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                          struct jm_err *err)
{
	struct proto_revived *r = &m->u.revived;
	const msgpack_object *f;
	void *ids;
	if (codec_fields(body, 1, REVIVED_FIELDS, &f, err) ||
	    codec_list(&f[0], "job ids", "job id", 0, PROTO_JOBS_PER_MESSAGE_MAX, zone,
	               sizeof r->ids[0], job_id_decode, &ids, &r->ids_count, err))
		return err->code;
	r->ids = ids;
	return 0;
}

/* EVENT: [kind, at_us, job_id, batch_id, queue, type, state, attempt, done,
 *         total, failed, message, worker_id]
 * The one message whose names may be empty (a kind leaves unused fields
 * ""). state is judged by kind: a job state for JOB_STATE (required), a
 * batch state for BATCH (required), else 0 or a job state. A JOB_PROGRESS
 * event carries progress as PROGRESS does: total >= 1, done <= total. */
#define EVENT_FIELDS                                                                               \
	"kind, at_us, job_id, batch_id, queue, type, state, attempt, done, total, failed, "        \
	"message, worker_id"

static int event_state_check(const struct proto_event *ev, struct jm_err *err)
{
	switch (ev->kind) {
	case PROTO_EVENT_JOB_STATE:
		return codec_check_u32(ev->state, "job state", PROTO_STATE_PENDING,
		                       PROTO_STATE_CANCELLED, err);
	case PROTO_EVENT_BATCH:
		return codec_check_u32(ev->state, "batch state", PROTO_BATCH_RUNNING,
		                       PROTO_BATCH_FAILED, err);
	default:
		return codec_check_u32(ev->state, "state", 0, PROTO_STATE_CANCELLED, err);
	}
}

static int event_check(const struct proto_msg *m, struct jm_err *err)
{
	const struct proto_event *ev = &m->u.event;
	if (codec_check_u32(ev->kind, "kind", PROTO_EVENT_JOB_STATE, PROTO_EVENT_WORKER_LOST,
	                    err) ||
	    codec_check_name(ev->queue, "queue name", true, err) ||
	    codec_check_name(ev->type, "type name", true, err) || event_state_check(ev, err) ||
	    codec_check_size(&ev->message, "message", PROTO_ERROR_TEXT_MAX, err) ||
	    codec_check_name(ev->worker_id, "worker id", true, err))
		return err->code;
	if (ev->kind == PROTO_EVENT_JOB_PROGRESS &&
	    progress_check(ev->done, ev->total, "done", "total", 1, err))
		return err->code;
	return 0;
}

static void event_encode(struct codec_writer *w, const struct proto_msg *m)
{
	const struct proto_event *ev = &m->u.event;
	codec_put_array(w, 13);
	codec_put_uint(w, ev->kind);
	codec_put_uint(w, ev->at_us);
	codec_put_uint(w, ev->job_id);
	codec_put_uint(w, ev->batch_id);
	codec_put_name(w, ev->queue);
	codec_put_name(w, ev->type);
	codec_put_uint(w, ev->state);
	codec_put_uint(w, ev->attempt);
	codec_put_uint(w, ev->done);
	codec_put_uint(w, ev->total);
	codec_put_uint(w, ev->failed);
	codec_put_text(w, &ev->message);
	codec_put_name(w, ev->worker_id);
}

static int event_decode(const msgpack_object *body, msgpack_zone *zone, struct proto_msg *m,
                        struct jm_err *err)
{
	struct proto_event *ev = &m->u.event;
	const msgpack_object *f;
	if (codec_fields(body, 13, EVENT_FIELDS, &f, err) ||
	    codec_u32(&f[0], "kind", &ev->kind, err) ||
	    codec_u64(&f[1], "at_us", &ev->at_us, err) ||
	    codec_u64(&f[2], "job_id", &ev->job_id, err) ||
	    codec_u64(&f[3], "batch_id", &ev->batch_id, err) ||
	    codec_name(&f[4], "queue name", true, ev->queue, err) ||
	    codec_name(&f[5], "type name", true, ev->type, err) ||
	    codec_u32(&f[6], "state", &ev->state, err) ||
	    codec_u32(&f[7], "attempt", &ev->attempt, err) ||
	    codec_u64(&f[8], "done", &ev->done, err) ||
	    codec_u64(&f[9], "total", &ev->total, err) ||
	    codec_u64(&f[10], "failed", &ev->failed, err) ||
	    codec_bytes(&f[11], "message", &ev->message, err) ||
	    codec_name(&f[12], "worker id", true, ev->worker_id, err))
		return err->code;
	return 0;
}

#define MSG_CODEC(name)                                                                            \
	{                                                                                          \
		name##_check, name##_encode, name##_decode                                         \
	}

static const struct msg_codec msg_codecs[PROTO_TYPE_MAX_ + 1] = {
    [PROTO_ERROR] = MSG_CODEC(error),
    [PROTO_SUBMIT] = MSG_CODEC(submit),
    [PROTO_SUBMITTED] = MSG_CODEC(submitted),
    [PROTO_FETCH] = MSG_CODEC(fetch),
    [PROTO_JOBS] = MSG_CODEC(jobs),
    [PROTO_ACK] = MSG_CODEC(ack),
    [PROTO_FAIL] = MSG_CODEC(fail),
    [PROTO_SETTLED] = MSG_CODEC(settled),
    [PROTO_STATUS] = MSG_CODEC(job_ref),
    [PROTO_RESULT] = MSG_CODEC(job_ref),
    [PROTO_WAIT] = MSG_CODEC(wait),
    [PROTO_JOB] = MSG_CODEC(job),
    [PROTO_STATS] = MSG_CODEC(empty),
    [PROTO_STATS_REPLY] = MSG_CODEC(stats_reply),
    [PROTO_HEARTBEAT] = MSG_CODEC(heartbeat),
    [PROTO_HEARTBEAT_REPLY] = MSG_CODEC(heartbeat_reply),
    [PROTO_CANCEL] = MSG_CODEC(job_ref),
    [PROTO_WORKERS] = MSG_CODEC(empty),
    [PROTO_WORKERS_REPLY] = MSG_CODEC(workers_reply),
    [PROTO_PROGRESS] = MSG_CODEC(progress_msg),
    [PROTO_BATCH_STATUS] = MSG_CODEC(batch_ref),
    [PROTO_BATCH] = MSG_CODEC(batch),
    [PROTO_BATCHES] = MSG_CODEC(empty),
    [PROTO_BATCHES_REPLY] = MSG_CODEC(batches_reply),
    [PROTO_HELLO] = MSG_CODEC(empty),
    [PROTO_HELLO_REPLY] = MSG_CODEC(hello_reply),
    [PROTO_DEAD_LIST] = MSG_CODEC(dead_list),
    [PROTO_JOB_LIST] = MSG_CODEC(job_list),
    [PROTO_REVIVE] = MSG_CODEC(revive),
    [PROTO_REVIVED] = MSG_CODEC(revived),
    [PROTO_EVENT] = MSG_CODEC(event),
    [PROTO_JOB_QUERY] = MSG_CODEC(job_query),
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

static int envelope_decode(const msgpack_object *root, msgpack_zone *zone, void *msg,
                           struct jm_err *err)
{
	struct proto_msg *out = msg;
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
	return codec_decode(buf, len, envelope_decode, out, sizeof *out, &out->zone_, err);
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

int proto_check(const struct proto_msg *msg, struct jm_err *err)
{
	const struct msg_codec *c;
	if (msg_check(msg, &c, err) != 0)
		return c ? jm_err_prefix(err, "%s", proto_type_name((int)msg->type)) : err->code;
	return 0;
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

/* On the PUB socket: topic, one NUL, then the EVENT message. The topic is
 * at most EVENT_TOPIC_MAX bytes, so its NUL is within the first 256. */
#define EVENT_TOPIC_MAX 255

int proto_event_encode_topic(const struct proto_event *ev, const char *topic, struct jm_buf *out)
{
	if (ev == NULL || topic == NULL)
		return JM_EINVAL;
	size_t topic_len = strnlen(topic, EVENT_TOPIC_MAX + 1);
	if (topic_len > EVENT_TOPIC_MAX)
		return JM_EINVAL;
	struct proto_msg msg = {.type = PROTO_EVENT};
	msg.u.event = *ev;
	size_t start_len = out->len;
	int rc = jm_buf_append(out, topic, topic_len + 1);
	if (rc == 0)
		rc = proto_encode(&msg, out);
	if (rc != 0)
		out->len = start_len;
	return rc;
}

int proto_event_decode_topic(const void *buf, size_t len, const char **topic, size_t *topic_len,
                             struct proto_msg *out, struct jm_err *err)
{
	struct jm_err scratch;
	if (err == NULL)
		err = &scratch;
	jm_err_clear(err);
	memset(out, 0, sizeof *out);
	*topic = NULL;
	*topic_len = 0;
	size_t scan_len = len < EVENT_TOPIC_MAX + 1 ? len : EVENT_TOPIC_MAX + 1;
	const uint8_t *nul = scan_len > 0 ? memchr(buf, '\0', scan_len) : NULL;
	if (nul == NULL)
		return jm_err_set(err, JM_EPROTO,
		                  "event: no NUL byte ends the topic in the first %zu bytes: "
		                  "expected a topic of at most %d bytes, NUL, then the event",
		                  scan_len, EVENT_TOPIC_MAX);
	size_t name_len = (size_t)(nul - (const uint8_t *)buf);
	int rc = proto_decode(nul + 1, len - name_len - 1, out, err);
	if (rc != 0)
		return rc;
	if (out->type != PROTO_EVENT) {
		int type = (int)out->type;
		proto_msg_fini(out);
		return jm_err_set(err, JM_EPROTO,
		                  "event: got a %s message (type %d) after the topic: expected "
		                  "event (type %d)",
		                  proto_type_name(type), type, PROTO_EVENT);
	}
	*topic = buf;
	*topic_len = name_len;
	return 0;
}
