/* Wire bodies of what workers send and get (see message.h for what each
 * field means): FETCH, JOBS, ACK, FAIL, SETTLED, HEARTBEAT,
 * HEARTBEAT_REPLY, PROGRESS. Each field is written down once, here. */
#include "msg_fields.h"

/* [job_id, lease] */
static const struct field lease_ref_field[] = {
    F_U64(struct proto_lease_ref, job_id),
    F_U64(struct proto_lease_ref, lease),
};
static const struct fields lease_ref_fields = FIELDS_OF(lease_ref_field, NULL);
static const struct field lease_ref_elem = F_ELEM_STRUCT(&lease_ref_fields);

/* FETCH: [worker_id, instance, slot, [queue...], max_jobs, wait_ms] */
static const struct field fetch_field[] = {
    F_NAME(struct proto_fetch, worker_id, "worker id"),
    F_U64(struct proto_fetch, instance),
    F_U32(struct proto_fetch, slot),
    F_LIST(struct proto_fetch, queues, queues_count, "queues", "queues", "queue", 1,
           PROTO_QUEUES_PER_FETCH_MAX, &msg_queue_name_elem),
    F_U32_IN(struct proto_fetch, max_jobs, 1, PROTO_JOBS_PER_MESSAGE_MAX),
    F_U32(struct proto_fetch, wait_ms),
};
const struct fields msg_fetch_fields = FIELDS_OF(fetch_field, NULL);

/* JOBS: [[delivery...]]
 * delivery: [job_id, lease, attempt, queue, type, payload, timeout_ms] */
static const struct field delivery_field[] = {
    F_U64(struct proto_delivery, job_id),
    F_U64(struct proto_delivery, lease),
    F_U32_IN(struct proto_delivery, attempt, 1, UINT32_MAX),
    F_NAME(struct proto_delivery, queue, "queue name"),
    F_NAME(struct proto_delivery, type, "type name"),
    F_BIN(struct proto_delivery, payload, PROTO_PAYLOAD_MAX_DEFAULT),
    F_U64(struct proto_delivery, timeout_ms),
};
static const struct fields delivery_fields = FIELDS_OF(delivery_field, NULL);
static const struct field delivery_elem = F_ELEM_STRUCT(&delivery_fields);

static const struct field jobs_field[] = {
    F_LIST(struct proto_jobs, jobs, jobs_count, "deliveries", "deliveries", "job", 0,
           PROTO_JOBS_PER_MESSAGE_MAX, &delivery_elem),
};
const struct fields msg_jobs_fields = FIELDS_OF(jobs_field, NULL);

/* ACK: [worker_id, [ack_item...]]
 * ack_item: [job_id, lease, result] */
static const struct field ack_item_field[] = {
    F_U64(struct proto_ack_item, job_id),
    F_U64(struct proto_ack_item, lease),
    F_BIN(struct proto_ack_item, result, PROTO_RESULT_MAX),
};
static const struct fields ack_item_fields = FIELDS_OF(ack_item_field, NULL);
static const struct field ack_item_elem = F_ELEM_STRUCT(&ack_item_fields);

static const struct field ack_field[] = {
    F_NAME(struct proto_ack, worker_id, "worker id"),
    F_LIST(struct proto_ack, items, items_count, "items", "items", "item", 1,
           PROTO_JOBS_PER_MESSAGE_MAX, &ack_item_elem),
};
const struct fields msg_ack_fields = FIELDS_OF(ack_field, NULL);

/* FAIL: [worker_id, [fail_item...]]
 * fail_item: [job_id, lease, error, permanent, released] */
static const struct field fail_item_field[] = {
    F_U64(struct proto_fail_item, job_id),
    F_U64(struct proto_fail_item, lease),
    F_TEXT(struct proto_fail_item, error, PROTO_ERROR_TEXT_MAX),
    F_BOOL(struct proto_fail_item, permanent),
    F_BOOL(struct proto_fail_item, released),
};
static const struct fields fail_item_fields = FIELDS_OF(fail_item_field, NULL);
static const struct field fail_item_elem = F_ELEM_STRUCT(&fail_item_fields);

static const struct field fail_field[] = {
    F_NAME(struct proto_fail, worker_id, "worker id"),
    F_LIST(struct proto_fail, items, items_count, "items", "items", "item", 1,
           PROTO_JOBS_PER_MESSAGE_MAX, &fail_item_elem),
};
const struct fields msg_fail_fields = FIELDS_OF(fail_field, NULL);

/* SETTLED: [[code...]]: 0 or a (negative) JM_E... per item */
static const struct field settle_code_elem = {
    .label = "code", .kind = FIELD_I32, .ranged = true, .imin = INT32_MIN, .imax = 0};

static const struct field settled_field[] = {
    F_LIST(struct proto_settled, codes, codes_count, "codes", "codes", "item", 0,
           PROTO_JOBS_PER_MESSAGE_MAX, &settle_code_elem),
};
const struct fields msg_settled_fields = FIELDS_OF(settled_field, NULL);

/* HEARTBEAT: [worker_id, instance, host, pid, concurrency, [queue...],
 *             [[job_id, lease]...], draining]
 * A worker serves at most PROTO_QUEUES_PER_FETCH_MAX queues (it could not
 * fetch from more) and reports at most PROTO_JOBS_PER_MESSAGE_MAX leases;
 * host is at most PROTO_HOST_MAX bytes. */
static const struct field heartbeat_field[] = {
    F_NAME(struct proto_heartbeat, worker_id, "worker id"),
    F_U64(struct proto_heartbeat, instance),
    F_TEXT(struct proto_heartbeat, host, PROTO_HOST_MAX),
    F_U32(struct proto_heartbeat, pid),
    F_U32(struct proto_heartbeat, concurrency),
    F_LIST(struct proto_heartbeat, queues, queues_count, "queues", "queues", "queue", 0,
           PROTO_QUEUES_PER_FETCH_MAX, &msg_queue_name_elem),
    F_LIST(struct proto_heartbeat, leases, leases_count, "leases", "leases", "lease", 0,
           PROTO_JOBS_PER_MESSAGE_MAX, &lease_ref_elem),
    F_BOOL(struct proto_heartbeat, draining),
};
const struct fields msg_heartbeat_fields = FIELDS_OF(heartbeat_field, NULL);

/* HEARTBEAT_REPLY: [[[job_id, lease]...]] */
static const struct field heartbeat_reply_field[] = {
    F_LIST(struct proto_heartbeat_reply, abandon, abandon_count, "abandon", "leases", "lease", 0,
           PROTO_JOBS_PER_MESSAGE_MAX, &lease_ref_elem),
};
const struct fields msg_heartbeat_reply_fields = FIELDS_OF(heartbeat_reply_field, NULL);

/* PROGRESS: [worker_id, job_id, lease, done, total, message] */
static int progress_range_check(const void *base, struct jm_err *err)
{
	const struct proto_progress *p = base;
	return msg_progress_check(p->done, p->total, "done", "total", 1, err);
}

static const struct field progress_field[] = {
    F_NAME(struct proto_progress, worker_id, "worker id"),
    F_U64(struct proto_progress, job_id),
    F_U64(struct proto_progress, lease),
    F_U64(struct proto_progress, done),
    {.wire = "total",
     .label = "total",
     .kind = FIELD_U64,
     .offset = offsetof(struct proto_progress, total),
     .check = progress_range_check},
    F_TEXT(struct proto_progress, message, PROTO_ERROR_TEXT_MAX),
};
const struct fields msg_progress_fields = FIELDS_OF(progress_field, NULL);
