/* Event frames: what the broker's PUB socket sends (issue 12: a
 * subscriber reading every event cost half a drain when each event went
 * out once per topic, one NNG message each).
 *
 * A frame is one PUB message holding the events of one publish round, in
 * the order they happened, each encoded once with all its topics:
 *
 *   frame := "*" NUL item+
 *   item  := topics_count:u8 (1..PROTO_EVENT_TOPICS_MAX)
 *            topics_count × (topic bytes, NUL)     each 1..255 bytes
 *            event_len:u32 big-endian, event_len bytes: an encoded EVENT
 *            message ([version, type, body], as proto_encode makes it)
 *
 * Every frame starts with "*" NUL, so a subscriber subscribes to "*" on
 * its SUB socket and filters topics itself: an event is for it under each
 * of its topics that starts with (or, exact, equals) the subscription's.
 * Topics are still job/<id>, queue/<name>, batch/<id>, worker/<id>
 * (DESIGN.md); a frame only carries an event once for all of them. */
#ifndef JM_PROTO_EVENT_FRAME_H
#define JM_PROTO_EVENT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "message.h"

#define PROTO_EVENT_FRAME_TOPIC "*"
#define PROTO_EVENT_TOPICS_MAX 4
#define PROTO_EVENT_TOPIC_MAX 255

/* One item of a frame, pointing into the frame's bytes. */
struct proto_event_item {
	const char *topics[PROTO_EVENT_TOPICS_MAX]; /* NUL-terminated in the frame */
	uint32_t topics_count;
	const uint8_t *event; /* an encoded EVENT message */
	size_t event_len;
};

/* Appends the start of a frame ("*" NUL) to out; 0 or JM_ENOMEM. */
int proto_event_frame_start(struct jm_buf *out);
/* Appends one item: ev under topics (1..PROTO_EVENT_TOPICS_MAX, each
 * NUL-terminated, 1..255 bytes). 0, JM_ENOMEM, or JM_EINVAL for bad
 * topics or an event that would not pass proto_decode; on failure out is
 * as it was. */
int proto_event_item_encode(const struct proto_event *ev, const char *const *topics,
                            uint32_t topics_count, struct jm_buf *out);

/* Reads the item of frame (len bytes) at *pos into item and moves *pos
 * past it; *pos starts at 0 (the frame's "*" NUL is checked there). 1 with
 * an item, 0 at the end of the frame, or a negative code (JM_EPROTO) with
 * a message in err (err may be NULL) for bytes that are not a frame. The
 * item's event is not decoded: proto_event_item_decode does that. */
int proto_event_frame_next(const uint8_t *frame, size_t len, size_t *pos,
                           struct proto_event_item *item, struct jm_err *err);
/* Reads the item that starts at *pos of buf (len bytes; an item alone,
 * as proto_event_item_encode made it, or within a frame) and moves *pos
 * past it: 1, or JM_EPROTO with a message in err (err may be NULL). */
int proto_event_item_read(const uint8_t *buf, size_t len, size_t *pos,
                          struct proto_event_item *item, struct jm_err *err);
/* Decodes item's event into out (an EVENT; finish with proto_msg_fini);
 * proto_decode's codes, or JM_EPROTO for a message of another type. */
int proto_event_item_decode(const struct proto_event_item *item, struct proto_msg *out,
                            struct jm_err *err);

#endif
