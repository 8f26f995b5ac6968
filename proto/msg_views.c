/* Wire bodies of the broker's read views and events (see message.h for
 * what each field means): STATS_REPLY, WORKERS_REPLY, BATCH,
 * BATCHES_REPLY, HELLO_REPLY, EVENT. Each field is written down once, here.
 * Lists of queues, workers and batches have no count limit of their own:
 * PROTO_MESSAGE_MAX bounds them. */
#include "msg_fields.h"

/* STATS_REPLY: [[queue_stats...]]
 * queue_stats: [name, pending, delayed, active, completed, failed,
 *               cancelled, oldest_pending_us, max_active, paused, rate_jobs,
 *               rate_period_ms, own_settings, max_attempts, keep_finished,
 *               keep_finished_age_ms, key_window_ms, unroutable,
 *               [unroutable_type...], keep_failed, keep_failed_age_ms,
 *               keep_cancelled, keep_cancelled_age_ms, group_limit]
 *               (all after the sixth appended over
 *               time: an older broker leaves them out, and they decode as 0) */
static const struct field unroutable_type_elem = {.label = "job type", .kind = FIELD_NAME};
static const struct field queue_stats_field[] = {
    F_NAME(struct proto_queue_stats, name, "queue name"),
    F_U64(struct proto_queue_stats, pending),
    F_U64(struct proto_queue_stats, delayed),
    F_U64(struct proto_queue_stats, active),
    F_U64(struct proto_queue_stats, completed),
    F_U64(struct proto_queue_stats, failed),
    F_U64(struct proto_queue_stats, cancelled),
    F_U64(struct proto_queue_stats, oldest_pending_us),
    F_U32(struct proto_queue_stats, max_active),
    F_BOOL(struct proto_queue_stats, paused),
    F_U32(struct proto_queue_stats, rate_jobs),
    F_U64(struct proto_queue_stats, rate_period_ms),
    F_U32(struct proto_queue_stats, own_settings),
    F_U32(struct proto_queue_stats, max_attempts),
    F_U64(struct proto_queue_stats, keep_finished),
    F_U64(struct proto_queue_stats, keep_finished_age_ms),
    F_U64(struct proto_queue_stats, key_window_ms),
    F_U64(struct proto_queue_stats, unroutable),
    F_LIST(struct proto_queue_stats, unroutable_types, unroutable_types_count, "unroutable_types",
           "unroutable types", "job type", 0, PROTO_UNROUTABLE_TYPES_MAX, &unroutable_type_elem),
    F_U64(struct proto_queue_stats, keep_failed),
    F_U64(struct proto_queue_stats, keep_failed_age_ms),
    F_U64(struct proto_queue_stats, keep_cancelled),
    F_U64(struct proto_queue_stats, keep_cancelled_age_ms),
    F_U32(struct proto_queue_stats, group_limit),
};
static const struct fields queue_stats_fields = {
    .field = queue_stats_field, .count = 24, .required = 6};
static const struct field queue_stats_elem = F_ELEM_STRUCT(&queue_stats_fields);

static const struct field stats_reply_field[] = {
    F_LIST(struct proto_stats_reply, queues, queues_count, "queues", "queues", "queue", 0,
           UINT32_MAX, &queue_stats_elem),
};
const struct fields msg_stats_reply_fields = FIELDS_OF(stats_reply_field, NULL);

/* WORKERS_REPLY: [[worker_info...]]
 * worker_info: [worker_id, host, pid, concurrency, [queue...], active_jobs,
 *               first_seen_us, last_seen_us, draining, [job_id...]]
 * host, queues and job ids are bounded as in a HEARTBEAT. */
static const struct field worker_info_field[] = {
    F_NAME(struct proto_worker_info, worker_id, "worker id"),
    F_TEXT(struct proto_worker_info, host, PROTO_HOST_MAX),
    F_U32(struct proto_worker_info, pid),
    F_U32(struct proto_worker_info, concurrency),
    F_LIST(struct proto_worker_info, queues, queues_count, "queues", "queues", "queue", 0,
           PROTO_QUEUES_PER_FETCH_MAX, &msg_queue_name_elem),
    F_U32(struct proto_worker_info, active_jobs),
    F_U64(struct proto_worker_info, first_seen_us),
    F_U64(struct proto_worker_info, last_seen_us),
    F_BOOL(struct proto_worker_info, draining),
    F_LIST(struct proto_worker_info, job_ids, job_ids_count, "job_ids", "job ids", "job id", 0,
           PROTO_JOBS_PER_MESSAGE_MAX, &msg_job_id_elem),
};
static const struct fields worker_info_fields = FIELDS_OF(worker_info_field, NULL);
static const struct field worker_info_elem = F_ELEM_STRUCT(&worker_info_fields);

static const struct field workers_reply_field[] = {
    F_LIST(struct proto_workers_reply, workers, workers_count, "workers", "workers", "worker", 0,
           UINT32_MAX, &worker_info_elem),
};
const struct fields msg_workers_reply_fields = FIELDS_OF(workers_reply_field, NULL);

/* BATCH: [batch_id, state, total, completed, failed, cancelled, active,
 *         current_operation, [batch_error...], created_us, finished_us]
 * batch_error: [job_id, text]
 * BATCHES_REPLY: [[batch_info...]] */
static const struct field batch_error_field[] = {
    F_U64(struct proto_batch_error, job_id),
    F_TEXT(struct proto_batch_error, text, PROTO_ERROR_TEXT_MAX),
};
static const struct fields batch_error_fields = FIELDS_OF(batch_error_field, NULL);
static const struct field batch_error_elem = F_ELEM_STRUCT(&batch_error_fields);

static const struct field batch_field[] = {
    F_U64(struct proto_batch_info, batch_id),
    F_U32_IN(struct proto_batch_info, state, PROTO_BATCH_RUNNING, PROTO_BATCH_FAILED),
    F_U64(struct proto_batch_info, total),
    F_U64(struct proto_batch_info, completed),
    F_U64(struct proto_batch_info, failed),
    F_U64(struct proto_batch_info, cancelled),
    F_U64(struct proto_batch_info, active),
    F_TEXT(struct proto_batch_info, current_operation, PROTO_ERROR_TEXT_MAX),
    F_LIST(struct proto_batch_info, errors, errors_count, "errors", "errors", "error", 0,
           PROTO_BATCH_ERRORS_MAX, &batch_error_elem),
    F_U64(struct proto_batch_info, created_us),
    F_U64(struct proto_batch_info, finished_us),
};
const struct fields msg_batch_fields = FIELDS_OF(batch_field, NULL);
static const struct field batch_elem = F_ELEM_STRUCT(&msg_batch_fields);

static const struct field batches_reply_field[] = {
    F_LIST(struct proto_batches_reply, batches, batches_count, "batches", "batches", "batch", 0,
           UINT32_MAX, &batch_elem),
};
const struct fields msg_batches_reply_fields = FIELDS_OF(batches_reply_field, NULL);

/* HELLO: [token], the token optional (an older client sends []). */
static const struct field hello_field[] = {
    F_TEXT(struct proto_hello, token, PROTO_TOKEN_MAX),
};
const struct fields msg_hello_fields = {.field = hello_field, .count = 1, .required = 0};

/* HELLO_REPLY: [broker_version, events_url, identity, role]
 * message.h sets no size for the first two; both are held to
 * PROTO_ERROR_TEXT_MAX, far above any version string or NNG URL. Either may
 * be empty (a broker that publishes no events). identity and role were
 * appended: an older broker's two-field reply still decodes. */
static const struct field hello_reply_field[] = {
    F_TEXT(struct proto_hello_reply, broker_version, PROTO_ERROR_TEXT_MAX),
    F_TEXT(struct proto_hello_reply, events_url, PROTO_ERROR_TEXT_MAX),
    F_TEXT(struct proto_hello_reply, identity, PROTO_NAME_MAX),
    F_TEXT(struct proto_hello_reply, role, PROTO_NAME_MAX),
};
const struct fields msg_hello_reply_fields = {
    .field = hello_reply_field, .count = 4, .required = 2};

/* EVENT: [kind, at_us, job_id, batch_id, queue, type, state, attempt, done,
 *         total, failed, message, worker_id]
 * The one message whose names may be empty (a kind leaves unused fields
 * ""). state is judged by kind: a job state for JOB_STATE (required), a
 * batch state for BATCH (required), else 0 or a job state. A JOB_PROGRESS
 * event carries progress as PROGRESS does: total >= 1, done <= total. */
static int event_state_check(const void *base, struct jm_err *err)
{
	const struct proto_event *ev = base;
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

static int event_progress_check(const void *base, struct jm_err *err)
{
	const struct proto_event *ev = base;
	if (ev->kind != PROTO_EVENT_JOB_PROGRESS)
		return 0;
	return msg_progress_check(ev->done, ev->total, "done", "total", 1, err);
}

static const struct field event_field[] = {
    F_U32_IN(struct proto_event, kind, PROTO_EVENT_JOB_STATE, PROTO_EVENT_WORKER_LOST),
    F_U64(struct proto_event, at_us),
    F_U64(struct proto_event, job_id),
    F_U64(struct proto_event, batch_id),
    F_NAME_OR_EMPTY(struct proto_event, queue, "queue name"),
    F_NAME_OR_EMPTY(struct proto_event, type, "type name"),
    {.wire = "state",
     .label = "state",
     .kind = FIELD_U32,
     .offset = offsetof(struct proto_event, state),
     .check = event_state_check},
    F_U32(struct proto_event, attempt),
    F_U64(struct proto_event, done),
    F_U64(struct proto_event, total),
    F_U64(struct proto_event, failed),
    F_TEXT(struct proto_event, message, PROTO_ERROR_TEXT_MAX),
    F_NAME_OR_EMPTY(struct proto_event, worker_id, "worker id"),
};
const struct fields msg_event_fields = FIELDS_OF(event_field, event_progress_check);
