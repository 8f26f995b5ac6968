/* Journal record bodies (see record.h): [record_version, record_type,
 * fields...], the fields following the type directly. Each record type's
 * fields are written down once, below, as field descriptors (fields.h),
 * and rec_bodies[] binds them to their type.
 *
 * Invariants are those of message.c: fields_check is the one judge of
 * ranges and is run by both encode and decode, decode only proves types
 * and shapes,
 * and a failed decode leaves nothing allocated and the record zeroed. A
 * record the broker wrote must read back identically at replay, so the
 * encoder refuses (JM_EINVAL) anything the decoder would refuse. */
#include "record.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fields.h"
#include "job_attrs.h"
#include "job_spec.h"
#include "msg_fields.h"

/* JOB: [job_id, batch_id, queue, type, payload, priority, max_attempts,
 *       timeout_ms, state, attempt, lease, created_us, updated_us,
 *       run_at_us, worker_id, last_error, result]
 * The spec's fields obey proto_job_spec_check, judged at max_attempts so
 * the order of checks is the order of fields. */
static int rec_job_spec_check(const void *base, struct jm_err *err)
{
	const struct proto_rec_job *j = base;
	return proto_job_spec_check(j->attrs.queue, strlen(j->attrs.queue), j->attrs.type,
	                            strlen(j->attrs.type), j->payload.len, j->attrs.priority,
	                            j->attrs.max_attempts, err);
}

static int rec_job_key_check(const void *base, struct jm_err *err)
{
	const struct proto_rec_job *j = base;
	return proto_idempotency_key_check(j->key.ptr, j->key.len, err);
}

static const struct field rec_job_field[] = {
    F_U64(struct proto_rec_job, job_id),
    {ATTR_BATCH_ID(struct proto_rec_job)},
    {ATTR_QUEUE(struct proto_rec_job)},
    {ATTR_TYPE(struct proto_rec_job)},
    F_BIN(struct proto_rec_job, payload, UINT32_MAX), /* size: by the spec rules */
    {ATTR_PRIORITY(struct proto_rec_job)},
    {ATTR_MAX_ATTEMPTS(struct proto_rec_job), .check = rec_job_spec_check},
    {ATTR_TIMEOUT_MS(struct proto_rec_job)},
    F_U32_IN(struct proto_rec_job, state, PROTO_STATE_PENDING, PROTO_STATE_CANCELLED),
    F_U32(struct proto_rec_job, attempt),
    F_U64(struct proto_rec_job, lease),
    {ATTR_CREATED_US(struct proto_rec_job)},
    F_U64(struct proto_rec_job, updated_us),
    F_U64(struct proto_rec_job, run_at_us),
    F_NAME_OR_EMPTY(struct proto_rec_job, worker_id, "worker id"),
    F_TEXT(struct proto_rec_job, last_error, PROTO_ERROR_TEXT_MAX),
    F_BIN(struct proto_rec_job, result, PROTO_RESULT_MAX),
    /* version 2 */
    F_U64(struct proto_rec_job, lease_token),
    F_U64(struct proto_rec_job, worker_instance),
    /* appended within version 2: an older version 2 record has 19 fields */
    {.wire = "key",
     .label = "idempotency key",
     .kind = FIELD_TEXT,
     .offset = offsetof(struct proto_rec_job, key),
     .check = rec_job_key_check},
    {ATTR_GROUP(struct proto_rec_job)}, /* appended: absent in older records */
};
static const struct fields rec_job_fields = FIELDS_OF_OPTIONAL(rec_job_field, 19, NULL);
#define REC_JOB_V1_FIELDS 17

/* LEASE: [job_id, lease, attempt, worker_id, at_us, token, instance] */
static const struct field rec_lease_field[] = {
    F_U64(struct proto_rec_lease, job_id),
    F_U64(struct proto_rec_lease, lease),
    F_U32_IN(struct proto_rec_lease, attempt, 1, UINT32_MAX),
    F_NAME(struct proto_rec_lease, worker_id, "worker id"),
    F_U64(struct proto_rec_lease, at_us),
    /* version 2 */
    F_U64(struct proto_rec_lease, token),
    F_U64(struct proto_rec_lease, instance),
};
static const struct fields rec_lease_fields = FIELDS_OF(rec_lease_field, NULL);
#define REC_LEASE_V1_FIELDS 5

/* Version 1's JOB and LEASE: the same fields without the ones version 2
 * appended, which then read as 0 (a lease with no token: see record.h). */
static const struct fields rec_job_v1_fields = {
    .field = rec_job_field, .count = REC_JOB_V1_FIELDS, .required = REC_JOB_V1_FIELDS};
static const struct fields rec_lease_v1_fields = {
    .field = rec_lease_field, .count = REC_LEASE_V1_FIELDS, .required = REC_LEASE_V1_FIELDS};

/* SETTLE: [job_id, lease, outcome, at_us, run_at_us, data]
 * data is a result (at most PROTO_RESULT_MAX) for COMPLETED, else an error
 * text (at most PROTO_ERROR_TEXT_MAX). */
static int rec_settle_data_check(const void *base, struct jm_err *err)
{
	const struct proto_rec_settle *s = base;
	if (s->outcome == PROTO_OUTCOME_COMPLETED)
		return codec_check_size(&s->data, "result", PROTO_RESULT_MAX, err);
	return codec_check_size(&s->data, "error", PROTO_ERROR_TEXT_MAX, err);
}

static const struct field rec_settle_field[] = {
    F_U64(struct proto_rec_settle, job_id),
    F_U64(struct proto_rec_settle, lease),
    F_U32_IN(struct proto_rec_settle, outcome, PROTO_OUTCOME_COMPLETED, PROTO_OUTCOME_RELEASED),
    F_U64(struct proto_rec_settle, at_us),
    F_U64(struct proto_rec_settle, run_at_us),
    {.wire = "data",
     .label = "data",
     .kind = FIELD_BIN,
     .offset = offsetof(struct proto_rec_settle, data),
     .max = 0, /* judged by outcome, below */
     .check = rec_settle_data_check},
};
static const struct fields rec_settle_fields = FIELDS_OF(rec_settle_field, NULL);

/* CANCEL, DROP: [job_id, at_us]. Both share struct proto_rec_job_event,
 * and the union overlays u.cancel and u.drop. */
static const struct field rec_job_event_field[] = {
    F_U64(struct proto_rec_job_event, job_id),
    F_U64(struct proto_rec_job_event, at_us),
};
static const struct fields rec_job_event_fields = FIELDS_OF(rec_job_event_field, NULL);

/* REVIVE: [job_id, at_us, max_attempts, lease] (max_attempts 0: the
 * queue's default) */
static const struct field rec_revive_field[] = {
    F_U64(struct proto_rec_revive, job_id),
    F_U64(struct proto_rec_revive, at_us),
    F_U32_IN(struct proto_rec_revive, max_attempts, 0, PROTO_ATTEMPTS_MAX),
    F_U64(struct proto_rec_revive, lease),
};
static const struct fields rec_revive_fields = FIELDS_OF(rec_revive_field, NULL);

/* META: [next_job_id, boot_epoch] */
static const struct field rec_meta_field[] = {
    F_U64(struct proto_rec_meta, next_job_id),
    F_U64(struct proto_rec_meta, boot_epoch),
};
static const struct fields rec_meta_fields = FIELDS_OF(rec_meta_field, NULL);

/* SCHEDULE: [name, expr, zone, queue, type, payload, priority,
 *            max_attempts, timeout_ms, deleted, last_fired_us, at_us]
 * A put's template obeys the job spec rules; the expression and zone are
 * judged by the broker (common/cron.h) before the record is written. */
static int rec_schedule_check(const void *base, struct jm_err *err)
{
	const struct proto_rec_schedule *r = base;
	if (r->deleted)
		return 0;
	if (r->expr.len == 0)
		return jm_err_set(err, JM_EINVAL, "schedule expression is empty");
	return proto_job_spec_check(r->queue, strlen(r->queue), r->type, strlen(r->type),
	                            r->payload.len, r->priority, r->max_attempts, err);
}

static const struct field rec_schedule_field[] = {
    F_NAME(struct proto_rec_schedule, name, "schedule name"),
    F_TEXT(struct proto_rec_schedule, expr, PROTO_CRON_TEXT_MAX),
    F_TEXT(struct proto_rec_schedule, zone, PROTO_ZONE_TEXT_MAX),
    F_NAME_OR_EMPTY(struct proto_rec_schedule, queue, "queue name"),
    F_NAME_OR_EMPTY(struct proto_rec_schedule, type, "type name"),
    F_BIN(struct proto_rec_schedule, payload, UINT32_MAX), /* size: by the spec rules */
    F_I32(struct proto_rec_schedule, priority),
    F_U32(struct proto_rec_schedule, max_attempts),
    F_U64(struct proto_rec_schedule, timeout_ms),
    F_BOOL(struct proto_rec_schedule, deleted),
    F_U64(struct proto_rec_schedule, last_fired_us),
    F_U64(struct proto_rec_schedule, at_us),
};
static const struct fields rec_schedule_fields = FIELDS_OF(rec_schedule_field, rec_schedule_check);

/* SCHEDULE_FIRE: [name, scheduled_for_us, job] (job: a JOB body) */
static const struct field rec_schedule_fire_field[] = {
    F_NAME(struct proto_rec_schedule_fire, name, "schedule name"),
    F_U64(struct proto_rec_schedule_fire, scheduled_for_us),
    {.wire = "job",
     .label = "job",
     .kind = FIELD_STRUCT,
     .offset = offsetof(struct proto_rec_schedule_fire, job),
     .sub = &rec_job_fields},
};
static const struct fields rec_schedule_fire_fields = FIELDS_OF(rec_schedule_fire_field, NULL);

/* QUEUE: [settings, at_us] (settings: a QUEUE_SETTINGS body) */
static const struct field rec_queue_field[] = {
    {.wire = "settings",
     .label = "settings",
     .kind = FIELD_STRUCT,
     .offset = offsetof(struct proto_rec_queue, settings),
     .sub = &msg_queue_settings_fields},
    F_U64(struct proto_rec_queue, at_us),
};
static const struct fields rec_queue_fields = FIELDS_OF(rec_queue_field, NULL);

/* Each record type's fields; every body struct sits at the start of
 * rec->u. */
static const struct fields *const rec_bodies[PROTO_REC_TYPE_MAX_ + 1] = {
    [PROTO_REC_JOB] = &rec_job_fields,
    [PROTO_REC_LEASE] = &rec_lease_fields,
    [PROTO_REC_SETTLE] = &rec_settle_fields,
    [PROTO_REC_CANCEL] = &rec_job_event_fields,
    [PROTO_REC_DROP] = &rec_job_event_fields,
    [PROTO_REC_REVIVE] = &rec_revive_fields,
    [PROTO_REC_META] = &rec_meta_fields,
    [PROTO_REC_SCHEDULE] = &rec_schedule_fields,
    [PROTO_REC_SCHEDULE_FIRE] = &rec_schedule_fire_fields,
    [PROTO_REC_QUEUE] = &rec_queue_fields,
};

static const struct fields *rec_body_of(uint64_t type)
{
	if (type == 0 || type > PROTO_REC_TYPE_MAX_)
		return NULL;
	return rec_bodies[type];
}

const char *proto_record_type_name(int type)
{
	static const char *const names[] = {
	    [PROTO_REC_JOB] = "job",
	    [PROTO_REC_LEASE] = "lease",
	    [PROTO_REC_SETTLE] = "settle",
	    [PROTO_REC_CANCEL] = "cancel",
	    [PROTO_REC_DROP] = "drop",
	    [PROTO_REC_REVIVE] = "revive",
	    [PROTO_REC_META] = "meta",
	    [PROTO_REC_SCHEDULE] = "schedule",
	    [PROTO_REC_SCHEDULE_FIRE] = "schedule-fire",
	    [PROTO_REC_QUEUE] = "queue",
	};
	if (type <= 0 || type > PROTO_REC_TYPE_MAX_ || names[type] == NULL)
		return "unknown";
	return names[type];
}

/* [record_version, record_type, fields...]; the version is read first so
 * a journal from a newer broker is reported as such. */
static int record_body_decode(const msgpack_object *root, msgpack_zone *zone, void *rec,
                              struct jm_err *err)
{
	struct proto_record *out = rec;
	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size == 0)
		return jm_err_set(err, JM_EPROTO,
		                  "record must be an array [record_version, record_type, ...], "
		                  "got %s",
		                  root->type == MSGPACK_OBJECT_ARRAY ? "an empty array"
		                                                     : codec_kind(root));
	const msgpack_object *f = root->via.array.ptr;
	uint32_t size = root->via.array.size;
	uint64_t version;
	if (codec_u64(&f[0], "record version", &version, err) != 0)
		return err->code;
	if (version < 1 || version > PROTO_RECORD_VERSION)
		return jm_err_set(err, JM_EVERSION,
		                  "journal record version %" PRIu64
		                  " is not supported: this broker reads versions 1..%d",
		                  version, PROTO_RECORD_VERSION);
	uint64_t type;
	if (size < 2)
		return jm_err_set(err, JM_EPROTO, "record has no record_type");
	if (codec_u64(&f[1], "record type", &type, err) != 0)
		return err->code;
	const struct fields *c = rec_body_of(type);
	if (c == NULL)
		return jm_err_set(err, JM_EUNSUPPORTED,
		                  "record type %" PRIu64 " is not supported: use 1..%d", type,
		                  PROTO_REC_TYPE_MAX_);
	if (version == 1 && type == PROTO_REC_JOB)
		c = &rec_job_v1_fields;
	else if (version == 1 && type == PROTO_REC_LEASE)
		c = &rec_lease_v1_fields;
	const char *name = proto_record_type_name((int)type);
	if (size - 2 < c->required)
		return jm_err_set(err, JM_EPROTO,
		                  "%s record has %" PRIu32 " fields: expected at least %" PRIu32,
		                  name, size - 2, c->required);
	out->version = (uint32_t)version;
	out->type = (enum proto_record_type)type;
	if (fields_decode_items(c, f + 2, size - 2, zone, &out->u, err) ||
	    fields_check(c, &out->u, err))
		return jm_err_prefix(err, "%s record", name);
	return 0;
}

int proto_record_decode(const void *buf, size_t len, struct proto_record *out, struct jm_err *err)
{
	return codec_decode(buf, len, record_body_decode, out, sizeof *out, &out->zone_, err);
}

void proto_record_fini(struct proto_record *rec)
{
	if (rec == NULL)
		return;
	if (rec->zone_ != NULL)
		msgpack_zone_free(rec->zone_);
	memset(rec, 0, sizeof *rec);
}

int proto_record_encode(const struct proto_record *rec, struct jm_buf *out)
{
	if (rec->type != PROTO_REC_JOB)
		return proto_record_encode_generic(rec, out);
	int rc = proto_record_encode_job(&rec->u.job, out);
#ifndef NDEBUG
	/* The walker's verdict must be the same (record_job.c); it would
	 * read a key that claims bytes it has not, so that is left out. */
	const struct proto_bytes *key = &rec->u.job.key;
	struct jm_err err;
	if (!(key->len > 0 && key->ptr == NULL) &&
	    (fields_check(&rec_job_fields, &rec->u.job, &err) == 0) != (rc != JM_EINVAL))
		abort();
#endif
	return rc;
}

int proto_record_encode_generic(const struct proto_record *rec, struct jm_buf *out)
{
	struct jm_err err;
	const struct fields *c = rec_body_of((uint64_t)rec->type);
	if (c == NULL || fields_check(c, &rec->u, &err) != 0)
		return JM_EINVAL;
	struct codec_writer w;
	codec_writer_init(&w, out);
	codec_put_array(&w, 2 + c->count);
	codec_put_uint(&w, PROTO_RECORD_VERSION);
	codec_put_uint(&w, (uint64_t)rec->type);
	fields_encode_items(&w, c, &rec->u);
	return codec_writer_finish(&w);
}
