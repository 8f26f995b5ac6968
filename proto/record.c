/* Journal record bodies (see record.h): [record_version, record_type,
 * fields...], the fields following the type directly. Each record type's
 * fields are written down once, below, as a check / encode / decode trio,
 * and rec_codecs[] binds them to their type.
 *
 * Invariants are those of message.c: check is the one judge of ranges and
 * is run by both encode and decode, decode only proves types and shapes,
 * and a failed decode leaves nothing allocated and the record zeroed. A
 * record the broker wrote must read back identically at replay, so the
 * encoder refuses (JM_EINVAL) anything the decoder would refuse. */
#include "record.h"

#include <inttypes.h>
#include <string.h>

#include "codec.h"

struct rec_codec {
	uint32_t fields; /* how many fields follow the type */
	int (*check)(const struct proto_record *r, struct jm_err *err);
	void (*encode)(struct codec_writer *w, const struct proto_record *r);
	/* f points at the fields after the type; at least `fields` of them. */
	int (*decode)(const msgpack_object *f, struct proto_record *r, struct jm_err *err);
};

/* JOB: [job_id, batch_id, queue, type, payload, priority, max_attempts,
 *       timeout_ms, state, attempt, lease, created_us, updated_us,
 *       run_at_us, worker_id, last_error, result] */
#define REC_JOB_FIELDS 17

static int rec_job_check(const struct proto_record *r, struct jm_err *err)
{
	const struct proto_rec_job *j = &r->u.job;
	if (codec_check_name(j->queue, "queue name", false, err) ||
	    codec_check_name(j->type, "type name", false, err) ||
	    codec_check_size(&j->payload, "payload", PROTO_PAYLOAD_MAX_DEFAULT, err) ||
	    codec_check_i32(j->priority, "priority", PROTO_PRIORITY_MIN, PROTO_PRIORITY_MAX, err) ||
	    codec_check_u32(j->max_attempts, "max_attempts", 0, PROTO_ATTEMPTS_MAX, err) ||
	    codec_check_u32(j->state, "state", PROTO_STATE_PENDING, PROTO_STATE_CANCELLED, err) ||
	    codec_check_name(j->worker_id, "worker id", true, err) ||
	    codec_check_size(&j->last_error, "last_error", PROTO_ERROR_TEXT_MAX, err) ||
	    codec_check_size(&j->result, "result", PROTO_RESULT_MAX, err))
		return err->code;
	return 0;
}

static void rec_job_encode(struct codec_writer *w, const struct proto_record *r)
{
	const struct proto_rec_job *j = &r->u.job;
	codec_put_uint(w, j->job_id);
	codec_put_uint(w, j->batch_id);
	codec_put_name(w, j->queue);
	codec_put_name(w, j->type);
	codec_put_bin(w, &j->payload);
	codec_put_int(w, j->priority);
	codec_put_uint(w, j->max_attempts);
	codec_put_uint(w, j->timeout_ms);
	codec_put_uint(w, j->state);
	codec_put_uint(w, j->attempt);
	codec_put_uint(w, j->lease);
	codec_put_uint(w, j->created_us);
	codec_put_uint(w, j->updated_us);
	codec_put_uint(w, j->run_at_us);
	codec_put_name(w, j->worker_id);
	codec_put_text(w, &j->last_error);
	codec_put_bin(w, &j->result);
}

static int rec_job_decode(const msgpack_object *f, struct proto_record *r, struct jm_err *err)
{
	struct proto_rec_job *j = &r->u.job;
	if (codec_u64(&f[0], "job_id", &j->job_id, err) ||
	    codec_u64(&f[1], "batch_id", &j->batch_id, err) ||
	    codec_name(&f[2], "queue name", false, j->queue, err) ||
	    codec_name(&f[3], "type name", false, j->type, err) ||
	    codec_bytes(&f[4], "payload", &j->payload, err) ||
	    codec_i32(&f[5], "priority", &j->priority, err) ||
	    codec_u32(&f[6], "max_attempts", &j->max_attempts, err) ||
	    codec_u64(&f[7], "timeout_ms", &j->timeout_ms, err) ||
	    codec_u32(&f[8], "state", &j->state, err) ||
	    codec_u32(&f[9], "attempt", &j->attempt, err) ||
	    codec_u64(&f[10], "lease", &j->lease, err) ||
	    codec_u64(&f[11], "created_us", &j->created_us, err) ||
	    codec_u64(&f[12], "updated_us", &j->updated_us, err) ||
	    codec_u64(&f[13], "run_at_us", &j->run_at_us, err) ||
	    codec_name(&f[14], "worker id", true, j->worker_id, err) ||
	    codec_bytes(&f[15], "last_error", &j->last_error, err) ||
	    codec_bytes(&f[16], "result", &j->result, err))
		return err->code;
	return 0;
}

/* LEASE: [job_id, lease, attempt, worker_id, at_us] */
#define REC_LEASE_FIELDS 5

static int rec_lease_check(const struct proto_record *r, struct jm_err *err)
{
	const struct proto_rec_lease *l = &r->u.lease;
	if (codec_check_u32(l->attempt, "attempt", 1, UINT32_MAX, err) ||
	    codec_check_name(l->worker_id, "worker id", false, err))
		return err->code;
	return 0;
}

static void rec_lease_encode(struct codec_writer *w, const struct proto_record *r)
{
	const struct proto_rec_lease *l = &r->u.lease;
	codec_put_uint(w, l->job_id);
	codec_put_uint(w, l->lease);
	codec_put_uint(w, l->attempt);
	codec_put_name(w, l->worker_id);
	codec_put_uint(w, l->at_us);
}

static int rec_lease_decode(const msgpack_object *f, struct proto_record *r, struct jm_err *err)
{
	struct proto_rec_lease *l = &r->u.lease;
	if (codec_u64(&f[0], "job_id", &l->job_id, err) ||
	    codec_u64(&f[1], "lease", &l->lease, err) ||
	    codec_u32(&f[2], "attempt", &l->attempt, err) ||
	    codec_name(&f[3], "worker id", false, l->worker_id, err) ||
	    codec_u64(&f[4], "at_us", &l->at_us, err))
		return err->code;
	return 0;
}

/* SETTLE: [job_id, lease, outcome, at_us, run_at_us, data]
 * data is a result (at most PROTO_RESULT_MAX) for COMPLETED, else an error
 * text (at most PROTO_ERROR_TEXT_MAX). */
#define REC_SETTLE_FIELDS 6

static int rec_settle_check(const struct proto_record *r, struct jm_err *err)
{
	const struct proto_rec_settle *s = &r->u.settle;
	if (codec_check_u32(s->outcome, "outcome", PROTO_OUTCOME_COMPLETED, PROTO_OUTCOME_RELEASED,
	                    err))
		return err->code;
	if (s->outcome == PROTO_OUTCOME_COMPLETED)
		return codec_check_size(&s->data, "result", PROTO_RESULT_MAX, err);
	return codec_check_size(&s->data, "error", PROTO_ERROR_TEXT_MAX, err);
}

static void rec_settle_encode(struct codec_writer *w, const struct proto_record *r)
{
	const struct proto_rec_settle *s = &r->u.settle;
	codec_put_uint(w, s->job_id);
	codec_put_uint(w, s->lease);
	codec_put_uint(w, s->outcome);
	codec_put_uint(w, s->at_us);
	codec_put_uint(w, s->run_at_us);
	codec_put_bin(w, &s->data);
}

static int rec_settle_decode(const msgpack_object *f, struct proto_record *r, struct jm_err *err)
{
	struct proto_rec_settle *s = &r->u.settle;
	if (codec_u64(&f[0], "job_id", &s->job_id, err) ||
	    codec_u64(&f[1], "lease", &s->lease, err) ||
	    codec_u32(&f[2], "outcome", &s->outcome, err) ||
	    codec_u64(&f[3], "at_us", &s->at_us, err) ||
	    codec_u64(&f[4], "run_at_us", &s->run_at_us, err) ||
	    codec_bytes(&f[5], "data", &s->data, err))
		return err->code;
	return 0;
}

/* CANCEL, DROP: [job_id, at_us] */
#define REC_JOB_EVENT_FIELDS 2

static int rec_job_event_check(const struct proto_record *r, struct jm_err *err)
{
	(void)r;
	(void)err;
	return 0;
}

/* CANCEL and DROP share struct proto_rec_job_event, and the union overlays
 * u.cancel and u.drop, so either member names the same bytes. */
static void rec_job_event_encode(struct codec_writer *w, const struct proto_record *r)
{
	codec_put_uint(w, r->u.cancel.job_id);
	codec_put_uint(w, r->u.cancel.at_us);
}

static int rec_job_event_decode(const msgpack_object *f, struct proto_record *r, struct jm_err *err)
{
	if (codec_u64(&f[0], "job_id", &r->u.cancel.job_id, err) ||
	    codec_u64(&f[1], "at_us", &r->u.cancel.at_us, err))
		return err->code;
	return 0;
}

/* REVIVE: [job_id, at_us, max_attempts] (0: the queue's default) */
#define REC_REVIVE_FIELDS 4

static int rec_revive_check(const struct proto_record *r, struct jm_err *err)
{
	return codec_check_u32(r->u.revive.max_attempts, "max_attempts", 0, PROTO_ATTEMPTS_MAX,
	                       err);
}

static void rec_revive_encode(struct codec_writer *w, const struct proto_record *r)
{
	codec_put_uint(w, r->u.revive.job_id);
	codec_put_uint(w, r->u.revive.at_us);
	codec_put_uint(w, r->u.revive.max_attempts);
	codec_put_uint(w, r->u.revive.lease);
}

static int rec_revive_decode(const msgpack_object *f, struct proto_record *r, struct jm_err *err)
{
	if (codec_u64(&f[0], "job_id", &r->u.revive.job_id, err) ||
	    codec_u64(&f[1], "at_us", &r->u.revive.at_us, err) ||
	    codec_u32(&f[2], "max_attempts", &r->u.revive.max_attempts, err) ||
	    codec_u64(&f[3], "lease", &r->u.revive.lease, err))
		return err->code;
	return 0;
}

/* META: [next_job_id, boot_epoch] */
#define REC_META_FIELDS 2

static int rec_meta_check(const struct proto_record *r, struct jm_err *err)
{
	(void)r;
	(void)err;
	return 0;
}

static void rec_meta_encode(struct codec_writer *w, const struct proto_record *r)
{
	codec_put_uint(w, r->u.meta.next_job_id);
	codec_put_uint(w, r->u.meta.boot_epoch);
}

static int rec_meta_decode(const msgpack_object *f, struct proto_record *r, struct jm_err *err)
{
	if (codec_u64(&f[0], "next_job_id", &r->u.meta.next_job_id, err) ||
	    codec_u64(&f[1], "boot_epoch", &r->u.meta.boot_epoch, err))
		return err->code;
	return 0;
}

#define REC_CODEC(name, fields)                                                                    \
	{                                                                                          \
		fields, rec_##name##_check, rec_##name##_encode, rec_##name##_decode               \
	}

static const struct rec_codec rec_codecs[PROTO_REC_TYPE_MAX_ + 1] = {
    [PROTO_REC_JOB] = REC_CODEC(job, REC_JOB_FIELDS),
    [PROTO_REC_LEASE] = REC_CODEC(lease, REC_LEASE_FIELDS),
    [PROTO_REC_SETTLE] = REC_CODEC(settle, REC_SETTLE_FIELDS),
    [PROTO_REC_CANCEL] = REC_CODEC(job_event, REC_JOB_EVENT_FIELDS),
    [PROTO_REC_DROP] = REC_CODEC(job_event, REC_JOB_EVENT_FIELDS),
    [PROTO_REC_REVIVE] = REC_CODEC(revive, REC_REVIVE_FIELDS),
    [PROTO_REC_META] = REC_CODEC(meta, REC_META_FIELDS),
};

static const struct rec_codec *rec_codec_of(uint64_t type)
{
	if (type == 0 || type > PROTO_REC_TYPE_MAX_ || rec_codecs[type].check == NULL)
		return NULL;
	return &rec_codecs[type];
}

const char *proto_record_type_name(int type)
{
	static const char *const names[] = {
	    [PROTO_REC_JOB] = "job",       [PROTO_REC_LEASE] = "lease",
	    [PROTO_REC_SETTLE] = "settle", [PROTO_REC_CANCEL] = "cancel",
	    [PROTO_REC_DROP] = "drop",     [PROTO_REC_REVIVE] = "revive",
	    [PROTO_REC_META] = "meta",
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
	(void)zone; /* record fields borrow from the buffer; none allocates */
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
	if (version != PROTO_RECORD_VERSION)
		return jm_err_set(err, JM_EVERSION,
		                  "journal record version %" PRIu64
		                  " is not supported: this broker reads version %d",
		                  version, PROTO_RECORD_VERSION);
	uint64_t type;
	if (size < 2)
		return jm_err_set(err, JM_EPROTO, "record has no record_type");
	if (codec_u64(&f[1], "record type", &type, err) != 0)
		return err->code;
	const struct rec_codec *c = rec_codec_of(type);
	if (c == NULL)
		return jm_err_set(err, JM_EUNSUPPORTED,
		                  "record type %" PRIu64 " is not supported: use 1..%d", type,
		                  PROTO_REC_TYPE_MAX_);
	const char *name = proto_record_type_name((int)type);
	if (size - 2 < c->fields)
		return jm_err_set(err, JM_EPROTO,
		                  "%s record has %" PRIu32 " fields: expected at least %" PRIu32,
		                  name, size - 2, c->fields);
	out->version = PROTO_RECORD_VERSION;
	out->type = (enum proto_record_type)type;
	if (c->decode(f + 2, out, err) || c->check(out, err))
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
	struct jm_err err;
	const struct rec_codec *c = rec_codec_of((uint64_t)rec->type);
	if (c == NULL || c->check(rec, &err) != 0)
		return JM_EINVAL;
	struct codec_writer w;
	codec_writer_init(&w, out);
	codec_put_array(&w, 2 + c->fields);
	codec_put_uint(&w, PROTO_RECORD_VERSION);
	codec_put_uint(&w, (uint64_t)rec->type);
	c->encode(&w, rec);
	return codec_writer_finish(&w);
}
