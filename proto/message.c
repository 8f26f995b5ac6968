/* Wire messages (see message.h): the envelope, and the table that binds
 * each message type to the field descriptors of its body (msg_jobs.c,
 * msg_workers.c, msg_views.c), which the walkers in fields.c check, encode
 * and decode.
 *
 * Invariants:
 * - fields_check is the one place a message's ranges, sizes, names and
 *   counts are judged. proto_encode runs it before writing a byte,
 *   proto_decode runs it after extracting the fields, so anything we send
 *   passes our own decoder and anything we accept would pass our own
 *   encoder.
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
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "jobs_decode.h"
#include "msg_fields.h"
#include "submit_decode.h"

/* The body of each type; every body struct sits at the start of msg->u. */
static const struct fields *const msg_bodies[PROTO_TYPE_MAX_ + 1] = {
    [PROTO_ERROR] = &msg_error_fields,
    [PROTO_SUBMIT] = &msg_submit_fields,
    [PROTO_SUBMITTED] = &msg_submitted_fields,
    [PROTO_FETCH] = &msg_fetch_fields,
    [PROTO_JOBS] = &msg_jobs_fields,
    [PROTO_SETTLED] = &msg_settled_fields,
    [PROTO_STATUS] = &msg_job_ref_fields,
    [PROTO_RESULT] = &msg_job_ref_fields,
    [PROTO_WAIT] = &msg_wait_fields,
    [PROTO_JOB] = &msg_job_info_fields,
    [PROTO_STATS] = &msg_empty_fields,
    [PROTO_STATS_REPLY] = &msg_stats_reply_fields,
    [PROTO_HEARTBEAT] = &msg_heartbeat_fields,
    [PROTO_HEARTBEAT_REPLY] = &msg_heartbeat_reply_fields,
    [PROTO_CANCEL] = &msg_job_ref_fields,
    [PROTO_WORKERS] = &msg_empty_fields,
    [PROTO_WORKERS_REPLY] = &msg_workers_reply_fields,
    [PROTO_PROGRESS] = &msg_progress_fields,
    [PROTO_BATCH_STATUS] = &msg_batch_ref_fields,
    [PROTO_BATCH] = &msg_batch_fields,
    [PROTO_BATCHES] = &msg_empty_fields,
    [PROTO_BATCHES_REPLY] = &msg_batches_reply_fields,
    [PROTO_HELLO] = &msg_hello_fields,
    [PROTO_HELLO_REPLY] = &msg_hello_reply_fields,
    [PROTO_DEAD_LIST] = &msg_dead_list_fields,
    [PROTO_JOB_LIST] = &msg_job_list_fields,
    [PROTO_REVIVE] = &msg_revive_fields,
    [PROTO_REVIVED] = &msg_revived_fields,
    [PROTO_EVENT] = &msg_event_fields,
    [PROTO_JOB_QUERY] = &msg_job_query_fields,
    [PROTO_SETTLE] = &msg_settle_fields,
    [PROTO_SCHEDULE_PUT] = &msg_schedule_put_fields,
    [PROTO_SCHEDULE_DELETE] = &msg_schedule_ref_fields,
    [PROTO_SCHEDULE_LIST] = &msg_empty_fields,
    [PROTO_SCHEDULES] = &msg_schedules_fields,
    [PROTO_QUEUE_SET] = &msg_queue_settings_fields,
    [PROTO_QUEUE_SETTINGS] = &msg_queue_settings_fields,
    [PROTO_DEAD_REMOVE] = &msg_revive_fields,
    [PROTO_SUBMIT_WAIT] = &msg_submit_wait_fields,
};

static const struct fields *msg_body_of(uint64_t type)
{
	if (type == 0 || type > PROTO_TYPE_MAX_)
		return NULL;
	return msg_bodies[type];
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
	if (version < PROTO_VERSION)
		return jm_err_set(err, JM_EVERSION,
		                  "protocol version %" PRIu64
		                  " is not supported: this broker speaks version %d; upgrade "
		                  "the worker or client (version 2 replaced ack and fail with "
		                  "settle, which names the lease holder)",
		                  version, PROTO_VERSION);
	if (version > PROTO_VERSION)
		return jm_err_set(err, JM_EVERSION,
		                  "protocol version %" PRIu64
		                  " is not supported: this broker speaks version %d",
		                  version, PROTO_VERSION);
	uint64_t type;
	if (codec_fields(root, 3, ENVELOPE_FIELDS, &f, err) ||
	    codec_u64(&f[1], "message type", &type, err))
		return jm_err_prefix(err, "message");
	const struct fields *body = msg_body_of(type);
	if (type == 6 || type == 7) /* version 1's ACK and FAIL */
		return jm_err_set(err, JM_EUNSUPPORTED,
		                  "message type %" PRIu64 " (%s) was replaced by settle (type %d) "
		                  "in protocol version 2: upgrade the worker",
		                  type, proto_type_name((int)type), PROTO_SETTLE);
	if (body == NULL)
		return jm_err_set(err, JM_EUNSUPPORTED,
		                  "message type %" PRIu64 " is not supported: use 1..%d", type,
		                  PROTO_TYPE_MAX_);
	out->version = PROTO_VERSION;
	out->type = (enum proto_type)type;
	if (fields_decode(body, &f[2], zone, &out->u, err) || fields_check(body, &out->u, err))
		return jm_err_prefix(err, "%s", proto_type_name((int)type));
	if (type == PROTO_QUEUE_SET || type == PROTO_QUEUE_SETTINGS)
		proto_queue_settings_join(&out->u.queue_settings);
	return 0;
}

int proto_decode_generic(const void *buf, size_t len, struct proto_msg *out, struct jm_err *err)
{
	return codec_decode(buf, len, envelope_decode, out, sizeof *out, &out->zone_, err);
}

int proto_decode(const void *buf, size_t len, struct proto_msg *out, struct jm_err *err)
{
	/* A SUBMIT, the most frequent large request, and a JOBS, the reply
	 * to every FETCH, are read in one pass when they can be; anything
	 * else, or anything that pass declines, takes the generic path,
	 * which words the errors. */
	if (buf != NULL &&
	    (submit_decode_direct(buf, len, out) || jobs_decode_direct(buf, len, out))) {
		if (err != NULL)
			jm_err_clear(err);
		return 0;
	}
	return proto_decode_generic(buf, len, out, err);
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
static int msg_check(const struct proto_msg *msg, const struct fields **body, struct jm_err *err)
{
	*body = msg_body_of((uint64_t)msg->type);
	if (*body == NULL)
		return jm_err_set(err, JM_EINVAL, "message type %d is not supported",
		                  (int)msg->type);
	return fields_check(*body, &msg->u, err);
}

int proto_check(const struct proto_msg *msg, struct jm_err *err)
{
	const struct fields *body;
	if (msg_check(msg, &body, err) != 0)
		return body ? jm_err_prefix(err, "%s", proto_type_name((int)msg->type)) : err->code;
	return 0;
}

int proto_encode(const struct proto_msg *msg, struct jm_buf *out)
{
	if (msg->type != PROTO_SUBMIT)
		return proto_encode_generic(msg, out);
	/* Every producer's submit: one pass (submit_encode.c). */
	int rc = submit_encode_direct(&msg->u.submit, out);
#ifndef NDEBUG
	/* The walker's verdict must be the same; it would read a key that
	 * claims bytes it has not, so those are left out. */
	bool claims = false;
	for (uint32_t i = 0; msg->u.submit.jobs && i < msg->u.submit.jobs_count; i++)
		claims = claims || (msg->u.submit.jobs[i].key.len > 0 &&
		                    msg->u.submit.jobs[i].key.ptr == NULL);
	struct jm_err err;
	if (rc != 1 && !claims &&
	    (fields_check(&msg_submit_fields, &msg->u, &err) == 0) != (rc != JM_EINVAL))
		abort();
#endif
	return rc == 1 ? proto_encode_generic(msg, out) : rc;
}

int proto_encode_generic(const struct proto_msg *msg, struct jm_buf *out)
{
	struct jm_err err;
	const struct fields *body;
	if (msg_check(msg, &body, &err) != 0)
		return JM_EINVAL;
	struct codec_writer w;
	codec_writer_init(&w, out);
	codec_put_array(&w, 3);
	codec_put_uint(&w, PROTO_VERSION);
	codec_put_uint(&w, (uint64_t)msg->type);
	if (msg->type == PROTO_QUEUE_SET || msg->type == PROTO_QUEUE_SETTINGS) {
		/* An older peer refuses set_mask bits it does not know. */
		struct proto_queue_settings wire = msg->u.queue_settings;
		proto_queue_settings_split(&wire);
		fields_encode(&w, body, &wire);
	} else {
		fields_encode(&w, body, &msg->u);
	}
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
