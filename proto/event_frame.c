/* Event frames (see event_frame.h). */
#include "event_frame.h"

#include <string.h>

#include <jobmesh/error.h>

#include "codec.h"
#include "direct_read.h"
#include "msg_fields.h"

int proto_event_frame_start(struct jm_buf *out)
{
	return jm_buf_append(out, PROTO_EVENT_FRAME_TOPIC, sizeof PROTO_EVENT_FRAME_TOPIC);
}

/* The fields of an EVENT body, in wire order (msg_views.c). */
#define EVENT_FIELDS 13

/* The length of name if it is empty or a valid name, else -1: what
 * codec_check_name(name, ..., true, ...) accepts, measured once for the
 * check and the write. */
static int plain_name_len(const char *name)
{
	size_t len = strnlen(name, sizeof(proto_name));
	if (len == sizeof(proto_name) || (len != 0 && !proto_name_is_valid(name, len)))
		return -1;
	return (int)len;
}

/* A job_state event without an error text is nearly every event (a drain
 * makes two per job; issue 12: a subscriber reading them all cost ~30 %
 * of the broker's CPU in a drain, most of it the generic field codec).
 * Does ev pass every check proto_encode's field table would make of it?
 * Then write_job_state writes the same bytes (test_event_frame compares
 * the two), given the lengths of ev's queue, type and worker id this
 * fills in lens; otherwise the generic path encodes or refuses it. */
static bool is_plain_job_state(const struct proto_event *ev, int lens[3])
{
	if (ev->kind != PROTO_EVENT_JOB_STATE || ev->message.len != 0 ||
	    ev->state < PROTO_STATE_PENDING || ev->state > PROTO_STATE_CANCELLED ||
	    msg_event_fields.count != EVENT_FIELDS)
		return false;
	lens[0] = plain_name_len(ev->queue);
	lens[1] = plain_name_len(ev->type);
	lens[2] = plain_name_len(ev->worker_id);
	return lens[0] >= 0 && lens[1] >= 0 && lens[2] >= 0;
}

/* The most bytes write_job_state writes: two fixarray heads, eleven
 * integers (version and type included), three names and the empty text's
 * head, each at its widest. */
#define JOB_STATE_BYTES_MAX                                                                        \
	(2 + 11 * CODEC_RAW_UINT_MAX + 3 * (CODEC_RAW_UINT_MAX + PROTO_NAME_MAX) + 1)

static size_t write_name(uint8_t *at, const char *name, int len)
{
	return codec_raw_with_body(at, codec_raw_str_head(at, (size_t)len), name, (size_t)len);
}

/* proto_encode of an EVENT message holding ev, without the field table,
 * into at (room for JOB_STATE_BYTES_MAX); the bytes written. lens: from
 * is_plain_job_state. */
static size_t write_job_state(uint8_t *at, const struct proto_event *ev, const int lens[3])
{
	uint8_t *p = at;
	p += codec_raw_array(p, 3);
	p += codec_raw_uint(p, PROTO_VERSION);
	p += codec_raw_uint(p, PROTO_EVENT);
	p += codec_raw_array(p, EVENT_FIELDS);
	p += codec_raw_uint(p, ev->kind);
	p += codec_raw_uint(p, ev->at_us);
	p += codec_raw_uint(p, ev->job_id);
	p += codec_raw_uint(p, ev->batch_id);
	p += write_name(p, ev->queue, lens[0]);
	p += write_name(p, ev->type, lens[1]);
	p += codec_raw_uint(p, ev->state);
	p += codec_raw_uint(p, ev->attempt);
	p += codec_raw_uint(p, ev->done);
	p += codec_raw_uint(p, ev->total);
	p += codec_raw_uint(p, ev->failed);
	p += codec_raw_str_head(p, 0); /* the message: empty */
	p += write_name(p, ev->worker_id, lens[2]);
	return (size_t)(p - at);
}

static void put_be32(uint8_t *p, size_t value)
{
	p[0] = (uint8_t)(value >> 24);
	p[1] = (uint8_t)(value >> 16);
	p[2] = (uint8_t)(value >> 8);
	p[3] = (uint8_t)value;
}

int proto_event_item_encode(const struct proto_event *ev, const char *const *topics,
                            uint32_t topics_count, struct jm_buf *out)
{
	if (ev == NULL || topics == NULL || topics_count == 0 ||
	    topics_count > PROTO_EVENT_TOPICS_MAX)
		return JM_EINVAL;
	size_t topic_lens[PROTO_EVENT_TOPICS_MAX], topics_bytes = 1;
	for (uint32_t i = 0; i < topics_count; i++) {
		topic_lens[i] = topics[i] ? strnlen(topics[i], PROTO_EVENT_TOPIC_MAX + 1) : 0;
		if (topic_lens[i] == 0 || topic_lens[i] > PROTO_EVENT_TOPIC_MAX)
			return JM_EINVAL;
		topics_bytes += topic_lens[i] + 1;
	}
	int lens[3] = {0};
	bool plain = is_plain_job_state(ev, lens);
	/* The count, the topics, the event's length: then the event. */
	int rc = jm_buf_reserve(out, topics_bytes + 4 + (plain ? JOB_STATE_BYTES_MAX : 0));
	if (rc != 0)
		return rc;
	size_t start_len = out->len;
	uint8_t *p = out->data + out->len;
	*p++ = (uint8_t)topics_count;
	for (uint32_t i = 0; i < topics_count; i++) {
		memcpy(p, topics[i], topic_lens[i] + 1);
		p += topic_lens[i] + 1;
	}
	uint8_t *len_at = p;
	out->len += topics_bytes + 4;
	if (plain) {
		size_t event_len = write_job_state(len_at + 4, ev, lens);
		out->len += event_len;
		put_be32(len_at, event_len);
		return 0;
	}
	/* A copy of the event: only for the shapes the fast path leaves. */
	struct proto_msg msg = {.type = PROTO_EVENT};
	msg.u.event = *ev;
	rc = proto_encode(&msg, out);
	if (rc != 0) {
		out->len = start_len;
		return rc;
	}
	/* proto_encode may have moved the buffer. */
	put_be32(out->data + start_len + topics_bytes, out->len - start_len - topics_bytes - 4);
	return 0;
}

int proto_event_frame_next(const uint8_t *frame, size_t len, size_t *pos,
                           struct proto_event_item *item, struct jm_err *err)
{
	struct jm_err scratch;
	if (err == NULL)
		err = &scratch;
	size_t at = *pos;
	if (at == 0) {
		if (len < sizeof PROTO_EVENT_FRAME_TOPIC ||
		    memcmp(frame, PROTO_EVENT_FRAME_TOPIC, sizeof PROTO_EVENT_FRAME_TOPIC) != 0)
			return jm_err_set(err, JM_EPROTO,
			                  "event frame: does not start with \"*\" and a NUL byte");
		at = sizeof PROTO_EVENT_FRAME_TOPIC;
	}
	if (at >= len) {
		*pos = at;
		return 0;
	}
	*pos = at;
	return proto_event_item_read(frame, len, pos, item, err);
}

int proto_event_item_read(const uint8_t *frame, size_t len, size_t *pos,
                          struct proto_event_item *item, struct jm_err *err)
{
	struct jm_err scratch;
	if (err == NULL)
		err = &scratch;
	size_t at = *pos;
	if (at >= len)
		return jm_err_set(err, JM_EPROTO, "event frame: byte %zu: expected an item", at);
	memset(item, 0, sizeof *item);
	uint32_t count = frame[at++];
	if (count == 0 || count > PROTO_EVENT_TOPICS_MAX)
		return jm_err_set(err, JM_EPROTO,
		                  "event frame: byte %zu: %u topics: expected 1 to %d", at - 1,
		                  count, PROTO_EVENT_TOPICS_MAX);
	for (uint32_t i = 0; i < count; i++) {
		size_t room =
		    len - at < PROTO_EVENT_TOPIC_MAX + 1 ? len - at : PROTO_EVENT_TOPIC_MAX + 1;
		const uint8_t *nul = room ? memchr(frame + at, '\0', room) : NULL;
		if (nul == NULL || nul == frame + at)
			return jm_err_set(
			    err, JM_EPROTO,
			    "event frame: byte %zu: expected a topic of 1 to %d bytes "
			    "ended by a NUL byte",
			    at, PROTO_EVENT_TOPIC_MAX);
		item->topics[i] = (const char *)(frame + at);
		at = (size_t)(nul - frame) + 1;
	}
	item->topics_count = count;
	if (len - at < 4)
		return jm_err_set(err, JM_EPROTO,
		                  "event frame: byte %zu: the event's length is cut off", at);
	const uint8_t *p = frame + at;
	size_t event_len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	at += 4;
	if (event_len == 0 || event_len > len - at)
		return jm_err_set(err, JM_EPROTO,
		                  "event frame: byte %zu: an event of %zu bytes where %zu are left",
		                  at, event_len, len - at);
	item->event = frame + at;
	item->event_len = event_len;
	*pos = at + event_len;
	return 1;
}

/* The decoding side of encode_job_state, for the subscriber that reads
 * every event (issue 12: the generic decoder, a pre-scan, msgpack-c's
 * object tree, the field walker and its checks, was most of a reading
 * subscriber's CPU in a drain). True with *out filled as proto_decode
 * fills it, for exactly the bytes encode_job_state writes for an event
 * is_plain_job_state accepts, in any integer form msgpack-c reads; false
 * for anything else, which proto_decode then decodes or refuses with its
 * words (test_event_frame compares the two). */
static bool decode_job_state(const uint8_t *event, size_t len, struct proto_msg *out)
{
	struct rd r = {.p = event, .end = event + len};
	struct proto_event *ev = &out->u.event;
	uint32_t items, fields;
	uint64_t version, type, kind, state, attempt;
	const uint8_t *message;
	uint32_t message_len;
	memset(out, 0, sizeof *out);
	if (!rd_array(&r, &items) || items != 3 || !rd_u64(&r, &version) ||
	    version != PROTO_VERSION || !rd_u64(&r, &type) || type != PROTO_EVENT ||
	    !rd_array(&r, &fields) || fields != EVENT_FIELDS || !rd_u64(&r, &kind) ||
	    kind != PROTO_EVENT_JOB_STATE || !rd_u64(&r, &ev->at_us) || !rd_u64(&r, &ev->job_id) ||
	    !rd_u64(&r, &ev->batch_id) || !rd_name(&r, true, ev->queue) ||
	    !rd_name(&r, true, ev->type) || !rd_u64(&r, &state) || state < PROTO_STATE_PENDING ||
	    state > PROTO_STATE_CANCELLED || !rd_u64(&r, &attempt) || attempt > UINT32_MAX ||
	    !rd_u64(&r, &ev->done) || !rd_u64(&r, &ev->total) || !rd_u64(&r, &ev->failed) ||
	    !rd_bytes(&r, false, &message, &message_len) || message_len != 0 ||
	    !rd_name(&r, true, ev->worker_id) || r.p != r.end ||
	    msg_event_fields.count != EVENT_FIELDS) {
		memset(out, 0, sizeof *out);
		return false;
	}
	out->version = PROTO_VERSION;
	out->type = PROTO_EVENT;
	ev->kind = (uint32_t)kind;
	ev->state = (uint32_t)state;
	ev->attempt = (uint32_t)attempt;
	return true;
}

int proto_event_item_decode(const struct proto_event_item *item, struct proto_msg *out,
                            struct jm_err *err)
{
	struct jm_err scratch;
	if (err == NULL)
		err = &scratch;
	if (decode_job_state(item->event, item->event_len, out))
		return 0;
	int rc = proto_decode(item->event, item->event_len, out, err);
	if (rc != 0)
		return rc;
	if (out->type != PROTO_EVENT) {
		int type = (int)out->type;
		proto_msg_fini(out);
		return jm_err_set(err, JM_EPROTO,
		                  "event frame: got a %s message (type %d): expected "
		                  "event (type %d)",
		                  proto_type_name(type), type, PROTO_EVENT);
	}
	return 0;
}
