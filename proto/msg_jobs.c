/* Wire bodies of submitting and looking up jobs (see message.h for what
 * each field means): ERROR, SUBMIT, SUBMITTED, STATUS/RESULT/CANCEL,
 * BATCH_STATUS, WAIT, JOB, DEAD_LIST, JOB_LIST, REVIVE, REVIVED, and the
 * empty requests. Each field is written down once, here. */
#include <inttypes.h>
#include <string.h>

#include "job_attrs.h"
#include "job_spec.h"
#include "msg_fields.h"

const struct field msg_queue_name_elem = {.label = "queue name", .kind = FIELD_NAME};
const struct field msg_job_id_elem = {.label = "job id", .kind = FIELD_U64};

int msg_progress_check(uint64_t done, uint64_t total, const char *done_field,
                       const char *total_field, uint64_t total_min, struct jm_err *err)
{
	if (codec_check_u32(total, total_field, total_min, UINT64_MAX, err) ||
	    codec_check_u32(done, done_field, 0, total, err))
		return err->code;
	return 0;
}

/* ERROR: [code, message]; code is a (negative) JM_E... value. */
static const struct field error_field[] = {
    F_I32_IN(struct proto_error, code, INT32_MIN, -1),
    F_TEXT(struct proto_error, message, PROTO_ERROR_TEXT_MAX),
};
const struct fields msg_error_fields = FIELDS_OF(error_field, NULL);

/* STATS, WORKERS, BATCHES: [] */
const struct fields msg_empty_fields = {.field = NULL, .count = 0, .required = 0};

/* SUBMIT: [as_batch, [job_spec...]]
 * job_spec: [queue, type, payload, priority, max_attempts, delay_ms,
 *            timeout_ms]; its rules are proto_job_spec_check's. */
static int job_spec_rules_check(const void *base, struct jm_err *err)
{
	const struct proto_job_spec *j = base;
	return proto_job_spec_check(j->attrs.queue, strlen(j->attrs.queue), j->attrs.type,
	                            strlen(j->attrs.type), j->payload.len, j->attrs.priority,
	                            j->attrs.max_attempts, err);
}

static int job_spec_key_check(const void *base, struct jm_err *err)
{
	const struct proto_job_spec *j = base;
	if (proto_idempotency_key_check(j->key.ptr, j->key.len, err))
		return err->code;
	if (j->run_at_us && j->delay_ms)
		return jm_err_set(err, JM_EINVAL,
		                  "delay_ms and run_at_us are both set: give one or the other");
	return 0;
}

static const struct field job_spec_field[] = {
    {ATTR_QUEUE(struct proto_job_spec)},
    {ATTR_TYPE(struct proto_job_spec)},
    F_BIN(struct proto_job_spec, payload, UINT32_MAX), /* size: by the rules */
    {ATTR_PRIORITY(struct proto_job_spec)},
    {ATTR_MAX_ATTEMPTS(struct proto_job_spec)},
    F_U64(struct proto_job_spec, delay_ms),
    {ATTR_TIMEOUT_MS(struct proto_job_spec)},
    /* appended: an older client sends the seven above */
    {.wire = "key",
     .label = "idempotency key",
     .kind = FIELD_TEXT,
     .offset = offsetof(struct proto_job_spec, key),
     .max = 0, /* judged by job_spec_key_check */
     .check = job_spec_key_check},
    F_U64(struct proto_job_spec, run_at_us),
    {ATTR_GROUP(struct proto_job_spec)}, /* appended after run_at_us */
};
static const struct fields job_spec_fields =
    FIELDS_OF_OPTIONAL(job_spec_field, 7, job_spec_rules_check);
static const struct field job_spec_elem = F_ELEM_STRUCT(&job_spec_fields);

/* SUBMIT_WAIT: [timeout_ms, job_spec] */
static const struct field submit_wait_field[] = {
    F_U32(struct proto_submit_wait, timeout_ms),
    {.wire = "job",
     .label = "job",
     .kind = FIELD_STRUCT,
     .offset = offsetof(struct proto_submit_wait, job),
     .sub = &job_spec_fields},
};
const struct fields msg_submit_wait_fields = FIELDS_OF(submit_wait_field, NULL);

static const struct field submit_field[] = {
    F_BOOL(struct proto_submit, as_batch),
    F_LIST(struct proto_submit, jobs, jobs_count, "jobs", "jobs", "job", 1,
           PROTO_JOBS_PER_MESSAGE_MAX, &job_spec_elem),
};
const struct fields msg_submit_fields = FIELDS_OF(submit_field, NULL);

/* SUBMITTED: [batch_id, [job_id...], [existing_id...]]; existing_ids was
 * appended (an older broker sends two fields). */
static const struct field submitted_field[] = {
    F_U64(struct proto_submitted, batch_id),
    F_LIST(struct proto_submitted, ids, ids_count, "job_ids", "job ids", "job id", 0,
           PROTO_JOBS_PER_MESSAGE_MAX, &msg_job_id_elem),
    F_LIST(struct proto_submitted, existing_ids, existing_ids_count, "existing_ids", "existing ids",
           "job id", 0, PROTO_JOBS_PER_MESSAGE_MAX, &msg_job_id_elem),
};
const struct fields msg_submitted_fields = FIELDS_OF_OPTIONAL(submitted_field, 2, NULL);

/* STATUS, RESULT, CANCEL: [job_id]. BATCH_STATUS: [batch_id], held in
 * job_ref's job_id but named for what it is in errors. */
/* STATUS, RESULT, CANCEL: [job_id, with_payload]; with_payload was
 * appended (an older client sends [job_id]). */
static const struct field job_ref_field[] = {
    F_U64(struct proto_job_ref, job_id),
    F_BOOL(struct proto_job_ref, with_payload),
};
const struct fields msg_job_ref_fields = FIELDS_OF_OPTIONAL(job_ref_field, 1, NULL);

static const struct field batch_ref_field[] = {
    F_U64_AS(struct proto_job_ref, job_id, "batch_id", "batch_id"),
};
const struct fields msg_batch_ref_fields = FIELDS_OF(batch_ref_field, NULL);

/* WAIT: [job_id, timeout_ms] */
/* WAIT: [job_id, timeout_ms, with_payload]; with_payload was appended (an
 * older client sends two fields). */
static const struct field wait_field[] = {
    F_U64(struct proto_wait, job_id),
    F_U32(struct proto_wait, timeout_ms),
    F_BOOL(struct proto_wait, with_payload),
};
const struct fields msg_wait_fields = FIELDS_OF_OPTIONAL(wait_field, 2, NULL);

/* JOB: [job_id, queue, type, state, priority, attempt, max_attempts,
 *       created_us, updated_us, run_at_us, last_error, has_result, result,
 *       batch_id, progress_done, progress_total, progress_message]
 * JOB_LIST's items are the same job_info. Progress is 0 of 0 until the
 * handler first reports, then as PROGRESS allows (total >= 1, done <=
 * total). */
static int job_info_progress_check(const void *base, struct jm_err *err)
{
	const struct proto_job_info *j = base;
	return msg_progress_check(j->progress_done, j->progress_total, "progress_done",
	                          "progress_total", 0, err);
}

static int job_info_result_check(const void *base, struct jm_err *err)
{
	const struct proto_job_info *j = base;
	if (!j->has_result && j->result.len > 0)
		return jm_err_set(err, JM_EINVAL,
		                  "result is %" PRIu32 " bytes but has_result is false: "
		                  "send an empty result or set has_result",
		                  j->result.len);
	return 0;
}

static const struct field job_info_field[] = {
    F_U64(struct proto_job_info, job_id),
    {ATTR_QUEUE(struct proto_job_info)},
    {ATTR_TYPE(struct proto_job_info)},
    F_U32_IN(struct proto_job_info, state, PROTO_STATE_PENDING, PROTO_STATE_CANCELLED),
    {ATTR_PRIORITY(struct proto_job_info), ATTR_PRIORITY_RANGE},
    F_U32(struct proto_job_info, attempt),
    {ATTR_MAX_ATTEMPTS(struct proto_job_info), ATTR_MAX_ATTEMPTS_RANGE},
    {ATTR_CREATED_US(struct proto_job_info)},
    F_U64(struct proto_job_info, updated_us),
    F_U64(struct proto_job_info, run_at_us),
    F_TEXT(struct proto_job_info, last_error, PROTO_ERROR_TEXT_MAX),
    F_BOOL(struct proto_job_info, has_result),
    F_BIN(struct proto_job_info, result, PROTO_RESULT_MAX),
    {ATTR_BATCH_ID(struct proto_job_info)},
    F_U64(struct proto_job_info, progress_done),
    {.wire = "progress_total",
     .label = "progress_total",
     .kind = FIELD_U64,
     .offset = offsetof(struct proto_job_info, progress_total),
     .check = job_info_progress_check},
    F_TEXT(struct proto_job_info, progress_message, PROTO_ERROR_TEXT_MAX),
    F_BIN(struct proto_job_info, payload, 0), /* bounded by the message */
    {ATTR_GROUP(struct proto_job_info)},      /* appended after payload */
};
/* payload was appended: an older broker's 17 fields still decode. */
const struct fields msg_job_info_fields =
    FIELDS_OF_OPTIONAL(job_info_field, 17, job_info_result_check);
static const struct field job_info_elem = F_ELEM_STRUCT(&msg_job_info_fields);

/* DEAD_LIST: [queue, limit, with_payload]; with_payload was appended. */
static const struct field dead_list_field[] = {
    F_NAME(struct proto_dead_list, queue, "queue name"),
    F_U32_IN(struct proto_dead_list, limit, 1, PROTO_JOBS_PER_MESSAGE_MAX),
    F_BOOL(struct proto_dead_list, with_payload),
};
const struct fields msg_dead_list_fields = FIELDS_OF_OPTIONAL(dead_list_field, 2, NULL);

/* JOB_QUERY: [queue, state, batch_id, limit, cursor]; queue "" is every
 * queue, state 0 every state. */
static int job_query_state_check(const void *base, struct jm_err *err)
{
	const struct proto_job_query *q = base;
	if (q->state == 0)
		return 0;
	return codec_check_u32(q->state, "state", PROTO_STATE_PENDING, PROTO_STATE_CANCELLED, err);
}

static const struct field job_query_field[] = {
    F_NAME_OR_EMPTY(struct proto_job_query, queue, "queue name"),
    {.wire = "state",
     .label = "state",
     .kind = FIELD_U32,
     .offset = offsetof(struct proto_job_query, state),
     .check = job_query_state_check},
    F_U64(struct proto_job_query, batch_id),
    F_U32_IN(struct proto_job_query, limit, 1, PROTO_JOBS_PER_MESSAGE_MAX),
    F_U64(struct proto_job_query, cursor),
};
const struct fields msg_job_query_fields = FIELDS_OF(job_query_field, NULL);

/* JOB_LIST: [[job_info...]] */
static const struct field job_list_field[] = {
    F_LIST(struct proto_job_list, jobs, jobs_count, "jobs", "jobs", "job", 0,
           PROTO_JOBS_PER_MESSAGE_MAX, &job_info_elem),
};
const struct fields msg_job_list_fields = FIELDS_OF(job_list_field, NULL);

/* REVIVE and DEAD_REMOVE: [queue, job_id]; job_id 0 means every
 * dead-lettered job */
static const struct field revive_field[] = {
    F_NAME(struct proto_revive, queue, "queue name"),
    F_U64(struct proto_revive, job_id),
};
const struct fields msg_revive_fields = FIELDS_OF(revive_field, NULL);

/* REVIVED: [[job_id...]] */
static const struct field revived_field[] = {
    F_LIST(struct proto_revived, ids, ids_count, "job_ids", "job ids", "job id", 0,
           PROTO_JOBS_PER_MESSAGE_MAX, &msg_job_id_elem),
};
const struct fields msg_revived_fields = FIELDS_OF(revived_field, NULL);
