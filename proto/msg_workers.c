/* Wire bodies of what workers send and get (see message.h for what each
 * field means): FETCH, JOBS, SETTLE, SETTLED, HEARTBEAT,
 * HEARTBEAT_REPLY, PROGRESS. Each field is written down once, here. */
#include <inttypes.h>

#include "job_attrs.h"
#include "msg_fields.h"

/* A worker process's instance: drawn at random when it starts, never 0. */
#define F_INSTANCE(s, m) F_U64_IN(s, m, 1, UINT64_MAX)

/* [job_id, lease] */
static const struct field lease_ref_field[] = {
    F_U64(struct proto_lease_ref, job_id),
    F_U64(struct proto_lease_ref, lease),
};
static const struct fields lease_ref_fields = FIELDS_OF(lease_ref_field, NULL);
static const struct field lease_ref_elem = F_ELEM_STRUCT(&lease_ref_fields);

/* A job type in a list. */
static const struct field type_name_elem = {.label = "job type", .kind = FIELD_NAME};

/* FETCH: [worker_id, instance, slot, [queue...], max_jobs, wait_ms,
 *         [type...]]; types appended: an older worker leaves it out. */
static const struct field fetch_field[] = {
    F_NAME(struct proto_fetch, worker_id, "worker id"),
    F_INSTANCE(struct proto_fetch, instance),
    F_U32(struct proto_fetch, slot),
    F_LIST(struct proto_fetch, queues, queues_count, "queues", "queues", "queue", 1,
           PROTO_QUEUES_PER_FETCH_MAX, &msg_queue_name_elem),
    F_U32_IN(struct proto_fetch, max_jobs, 1, PROTO_JOBS_PER_MESSAGE_MAX),
    F_U32(struct proto_fetch, wait_ms),
    F_LIST(struct proto_fetch, types, types_count, "types", "types", "type", 0,
           PROTO_TYPES_PER_FETCH_MAX, &type_name_elem),
};
const struct fields msg_fetch_fields = FIELDS_OF_OPTIONAL(fetch_field, 6, NULL);

/* JOBS: [[delivery...]]
 * delivery: [job_id, lease, attempt, queue, type, payload, timeout_ms] */
static const struct field delivery_field[] = {
    F_U64(struct proto_delivery, job_id),
    F_U64(struct proto_delivery, lease),
    F_U32_IN(struct proto_delivery, attempt, 1, UINT32_MAX),
    {ATTR_QUEUE(struct proto_delivery)},
    {ATTR_TYPE(struct proto_delivery)},
    F_BIN(struct proto_delivery, payload, PROTO_PAYLOAD_MAX_DEFAULT),
    {ATTR_TIMEOUT_MS(struct proto_delivery)},
};
static const struct fields delivery_fields = FIELDS_OF(delivery_field, NULL);
static const struct field delivery_elem = F_ELEM_STRUCT(&delivery_fields);

static const struct field jobs_field[] = {
    F_LIST(struct proto_jobs, jobs, jobs_count, "deliveries", "deliveries", "job", 0,
           PROTO_JOBS_PER_MESSAGE_MAX, &delivery_elem),
};
const struct fields msg_jobs_fields = FIELDS_OF(jobs_field, NULL);

/* SETTLE: [worker_id, instance, [settle_item...]]
 * settle_item: [job_id, lease, outcome, data, permanent]; data is a result
 * (PROTO_RESULT_MAX) when completed, else a text (PROTO_ERROR_TEXT_MAX). */
static int settle_item_rules_check(const void *base, struct jm_err *err)
{
	const struct proto_settle_item *item = base;
	if (item->outcome != PROTO_SETTLE_COMPLETED && item->data.len > PROTO_ERROR_TEXT_MAX)
		return jm_err_set(err, JM_ETOOBIG,
		                  "data is %" PRIu32 " bytes: a failed or released item's error "
		                  "text may be at most %d bytes",
		                  item->data.len, PROTO_ERROR_TEXT_MAX);
	if (item->permanent && item->outcome != PROTO_SETTLE_FAILED)
		return jm_err_set(err, JM_EINVAL,
		                  "permanent is set on an item whose outcome is %" PRIu32
		                  ": only a failed item (outcome 2) may be permanent",
		                  item->outcome);
	return 0;
}

static const struct field settle_item_field[] = {
    F_U64(struct proto_settle_item, job_id),
    F_U64(struct proto_settle_item, lease),
    F_U32_IN(struct proto_settle_item, outcome, PROTO_SETTLE_COMPLETED, PROTO_SETTLE_RELEASED),
    F_BIN(struct proto_settle_item, data, PROTO_RESULT_MAX),
    F_BOOL(struct proto_settle_item, permanent),
};
static const struct fields settle_item_fields =
    FIELDS_OF(settle_item_field, settle_item_rules_check);
static const struct field settle_item_elem = F_ELEM_STRUCT(&settle_item_fields);

static const struct field settle_field[] = {
    F_NAME(struct proto_settle, worker_id, "worker id"),
    F_INSTANCE(struct proto_settle, instance),
    F_LIST(struct proto_settle, items, items_count, "items", "items", "item", 1,
           PROTO_JOBS_PER_MESSAGE_MAX, &settle_item_elem),
};
const struct fields msg_settle_fields = FIELDS_OF(settle_field, NULL);

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
    F_INSTANCE(struct proto_heartbeat, instance),
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

/* PROGRESS: [worker_id, job_id, lease, done, total, message, instance] */
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
    F_INSTANCE(struct proto_progress, instance),
};
const struct fields msg_progress_fields = FIELDS_OF(progress_field, NULL);
