/* Event frames (proto/event_frame.h): what the broker's PUB socket sends.
 * Events round-trip with all their topics, a frame reads item by item to
 * its end, and cut or damaged frames fail with a code and a message, read
 * from exact-size heap copies so that AddressSanitizer catches a read past
 * the end. A job_state event, written without the field table, comes out
 * byte for byte as the generic encoder writes it, and is refused where
 * that one refuses it. */
#include "jm_test.h"

#include <stdlib.h>
#include <string.h>

#include "event_frame.h"
#include "proto_asserts.h"

static struct proto_event sample_event(uint64_t job_id)
{
	struct proto_event ev = {.kind = PROTO_EVENT_JOB_STATE,
	                         .at_us = 1700000000000000ull,
	                         .job_id = job_id,
	                         .queue = "emails",
	                         .type = "email.send",
	                         .state = PROTO_STATE_ACTIVE,
	                         .attempt = 1,
	                         .worker_id = "worker-1"};
	return ev;
}

/* A frame of count events, job i under job/<i> and queue/emails. */
static void build_frame(struct jm_buf *frame, uint32_t count)
{
	jm_buf_init(frame);
	assert_jm_ok(proto_event_frame_start(frame));
	for (uint32_t i = 1; i <= count; i++) {
		char job_topic[32];
		snprintf(job_topic, sizeof job_topic, "job/%u", i);
		const char *topics[] = {job_topic, "queue/emails"};
		struct proto_event ev = sample_event(i);
		assert_jm_ok(proto_event_item_encode(&ev, topics, 2, frame));
	}
}

static uint8_t *heap_copy(const struct jm_buf *b, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, b->data, len);
	return copy;
}

static void test_a_frame_of_three_events_reads_back_each_with_its_topics(void **state)
{
	(void)state;
	struct jm_buf frame;
	build_frame(&frame, 3);
	assert_memory_equal(frame.data, "*\0", 2);
	uint8_t *copy = heap_copy(&frame, frame.len);
	size_t pos = 0;
	struct proto_event_item item;
	for (uint32_t i = 1; i <= 3; i++) {
		struct jm_err err = {0};
		assert_int_equal(proto_event_frame_next(copy, frame.len, &pos, &item, &err), 1);
		assert_int_equal(item.topics_count, 2);
		char job_topic[32];
		snprintf(job_topic, sizeof job_topic, "job/%u", i);
		assert_string_equal(item.topics[0], job_topic);
		assert_string_equal(item.topics[1], "queue/emails");
		struct proto_msg out;
		assert_jm_ok_err(proto_event_item_decode(&item, &out, &err), &err);
		assert_int_equal(out.u.event.job_id, i);
		assert_string_equal(out.u.event.queue, "emails");
		assert_string_equal(out.u.event.worker_id, "worker-1");
		proto_msg_fini(&out);
	}
	assert_int_equal(proto_event_frame_next(copy, frame.len, &pos, &item, NULL), 0);
	free(copy);
	jm_buf_fini(&frame);
}

static void test_every_cut_of_a_frame_fails_cleanly_or_reads_whole_items(void **state)
{
	(void)state;
	struct jm_buf frame;
	build_frame(&frame, 2);
	for (size_t len = 0; len < frame.len; len++) {
		uint8_t *copy = heap_copy(&frame, len);
		size_t pos = 0;
		struct proto_event_item item;
		struct jm_err err = {0};
		int rc, items = 0;
		while ((rc = proto_event_frame_next(copy, len, &pos, &item, &err)) == 1)
			items++;
		/* A cut frame reads the items before the cut, then either ends
		 * exactly at an item boundary or fails with a message. */
		assert_true(items <= 2);
		if (rc != 0) {
			assert_int_equal(rc, JM_EPROTO);
			assert_true(strlen(jm_err_text(&err)) > 0);
		}
		free(copy);
	}
	jm_buf_fini(&frame);
}

static void test_a_message_without_the_frame_mark_is_refused(void **state)
{
	(void)state;
	const uint8_t old[] = "job/42\0\x93";
	size_t pos = 0;
	struct proto_event_item item;
	struct jm_err err = {0};
	assert_jm_code(proto_event_frame_next(old, sizeof old, &pos, &item, &err), JM_EPROTO);
	assert_non_null(strstr(jm_err_text(&err), "\"*\""));
}

static void test_topics_outside_the_limits_are_refused_and_leave_the_buffer(void **state)
{
	(void)state;
	struct jm_buf frame;
	jm_buf_init(&frame);
	assert_jm_ok(proto_event_frame_start(&frame));
	size_t before = frame.len;
	struct proto_event ev = sample_event(1);
	char long_topic[PROTO_EVENT_TOPIC_MAX + 2];
	memset(long_topic, 't', sizeof long_topic - 1);
	long_topic[sizeof long_topic - 1] = '\0';
	const char *too_long[] = {long_topic};
	assert_jm_code(proto_event_item_encode(&ev, too_long, 1, &frame), JM_EINVAL);
	const char *empty[] = {""};
	assert_jm_code(proto_event_item_encode(&ev, empty, 1, &frame), JM_EINVAL);
	const char *five[] = {"a", "b", "c", "d", "e"};
	assert_jm_code(proto_event_item_encode(&ev, five, 5, &frame), JM_EINVAL);
	assert_jm_code(proto_event_item_encode(&ev, five, 0, &frame), JM_EINVAL);
	assert_int_equal(frame.len, before);
	jm_buf_fini(&frame);
}

static void test_an_item_whose_event_is_another_message_is_refused(void **state)
{
	(void)state;
	struct jm_buf frame;
	jm_buf_init(&frame);
	assert_jm_ok(proto_event_frame_start(&frame));
	struct jm_buf hello;
	jm_buf_init(&hello);
	struct proto_msg msg = {.type = PROTO_HELLO};
	assert_jm_ok(proto_encode(&msg, &hello));
	const uint8_t head[] = {1, 'q', '\0', 0, 0, 0, (uint8_t)hello.len};
	assert_jm_ok(jm_buf_append(&frame, head, sizeof head));
	assert_jm_ok(jm_buf_append(&frame, hello.data, hello.len));
	size_t pos = 0;
	struct proto_event_item item;
	assert_int_equal(proto_event_frame_next(frame.data, frame.len, &pos, &item, NULL), 1);
	struct proto_msg out;
	struct jm_err err = {0};
	assert_jm_code(proto_event_item_decode(&item, &out, &err), JM_EPROTO);
	assert_non_null(strstr(jm_err_text(&err), "expected event"));
	jm_buf_fini(&hello);
	jm_buf_fini(&frame);
}

/* What proto_event_item_encode must write for ev under topics: the
 * count, the topics, the length, then proto_encode's generic encoding. */
static void generic_item(const struct proto_event *ev, const char *const *topics, uint8_t count,
                         struct jm_buf *out)
{
	jm_buf_init(out);
	assert_jm_ok(jm_buf_append(out, &count, 1));
	for (uint8_t i = 0; i < count; i++)
		assert_jm_ok(jm_buf_append(out, topics[i], strlen(topics[i]) + 1));
	size_t len_at = out->len;
	assert_jm_ok(jm_buf_append(out, "\0\0\0\0", 4));
	struct proto_msg msg = {.type = PROTO_EVENT};
	msg.u.event = *ev;
	assert_jm_ok(proto_encode(&msg, out));
	size_t len = out->len - len_at - 4;
	out->data[len_at] = (uint8_t)(len >> 24);
	out->data[len_at + 1] = (uint8_t)(len >> 16);
	out->data[len_at + 2] = (uint8_t)(len >> 8);
	out->data[len_at + 3] = (uint8_t)len;
}

static void events_equal(const struct proto_msg *a, const struct proto_msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->version, b->version);
	assert_event_equal(&a->u.event, &b->u.event);
}

static void test_job_state_events_encode_to_the_generic_encoders_bytes(void **state)
{
	(void)state;
	/* Every msgpack integer width on each side of its edge, names of each
	 * str width (empty, fixstr, str8), every job state, with and without
	 * a batch and a worker. */
	static const uint64_t numbers[] = {
	    0,         1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, UINT64_MAX / 3,
	    UINT64_MAX};
	static const char *const names[] = {"",
	                                    "q",
	                                    "emails.send-2_x",
	                                    "abcdefghijklmnopqrstuvwxyz01234",  /* 31 */
	                                    "abcdefghijklmnopqrstuvwxyz012345", /* 32 */
	                                    ("0123456789012345678901234567890123456789012345678901"
	                                     "234567890123")}; /* 64 */
	const size_t numbers_count = sizeof numbers / sizeof numbers[0];
	const size_t names_count = sizeof names / sizeof names[0];
	const char *topics[] = {"job/1", "queue/q", "batch/7"};
	uint32_t checked = 0;
	for (size_t i = 0; i < numbers_count; i++) {
		for (uint32_t st = PROTO_STATE_PENDING; st <= PROTO_STATE_CANCELLED; st++) {
			struct proto_event ev = {.kind = PROTO_EVENT_JOB_STATE,
			                         .at_us = numbers[i],
			                         .job_id = numbers[(i + 1) % numbers_count],
			                         .batch_id = numbers[(i + 2 + st) % numbers_count],
			                         .state = st,
			                         .attempt = (uint32_t)numbers[(i + 3) % 10],
			                         .done = numbers[(i + 4) % numbers_count],
			                         .total = numbers[(i + 5) % numbers_count],
			                         .failed = numbers[(i + 6) % numbers_count]};
			snprintf(ev.queue, sizeof ev.queue, "%s", names[(i + st) % names_count]);
			snprintf(ev.type, sizeof ev.type, "%s", names[(i + 2 * st) % names_count]);
			snprintf(ev.worker_id, sizeof ev.worker_id, "%s",
			         names[(i + 3 * st) % names_count]);
			uint8_t count = (uint8_t)(1 + (i + st) % 3);
			struct jm_buf want, got;
			generic_item(&ev, topics, count, &want);
			jm_buf_init(&got);
			assert_jm_ok(proto_event_item_encode(&ev, topics, count, &got));
			assert_int_equal(got.len, want.len);
			assert_memory_equal(got.data, want.data, want.len);
			/* And it reads back as the event it was. */
			size_t pos = 0;
			struct proto_event_item item;
			struct proto_msg back;
			assert_int_equal(
			    proto_event_item_read(got.data, got.len, &pos, &item, NULL), 1);
			assert_jm_ok(proto_event_item_decode(&item, &back, NULL));
			assert_int_equal(back.u.event.job_id, ev.job_id);
			assert_string_equal(back.u.event.worker_id, ev.worker_id);
			/* The direct decoder's reading is the generic one's. */
			struct proto_msg generic;
			assert_jm_ok(proto_decode(item.event, item.event_len, &generic, NULL));
			events_equal(&generic, &back);
			proto_msg_fini(&generic);
			proto_msg_fini(&back);
			jm_buf_fini(&want);
			jm_buf_fini(&got);
			checked++;
		}
	}
	assert_int_equal(checked, numbers_count * 6);
}

static void test_job_state_events_the_codec_would_refuse_are_still_refused(void **state)
{
	(void)state;
	const char *topics[] = {"job/1"};
	struct proto_event bad[4];
	for (int i = 0; i < 4; i++)
		bad[i] = sample_event(1);
	bad[0].state = 0;                             /* no state */
	bad[1].state = PROTO_STATE_CANCELLED + 1;     /* past the last */
	memcpy(bad[2].queue, "a b", 4);               /* not a name */
	memset(bad[3].type, 'x', sizeof bad[3].type); /* no NUL within a name */
	for (int i = 0; i < 4; i++) {
		struct jm_buf out;
		jm_buf_init(&out);
		assert_jm_ok(jm_buf_append(&out, "keep", 4));
		assert_int_equal(proto_event_item_encode(&bad[i], topics, 1, &out), JM_EINVAL);
		assert_int_equal(out.len, 4);
		jm_buf_fini(&out);
	}
}

/* Events the direct decoder leaves to the generic one read the same
 * through proto_event_item_decode, and bytes the generic one refuses are
 * refused whichever path reads them. */
static void test_events_off_the_direct_path_decode_or_are_refused_as_the_codec_says(void **state)
{
	(void)state;
	const char *topics[] = {"job/6"};
	struct proto_event others[3];
	others[0] = sample_event(6);
	others[0].message = (struct proto_bytes){(const uint8_t *)"boom", 4}; /* an error text */
	others[1] = sample_event(6);
	others[1].kind = PROTO_EVENT_JOB_PROGRESS;
	others[1].done = 1;
	others[1].total = 2;
	others[2] = (struct proto_event){.kind = PROTO_EVENT_WORKER_LOST, .at_us = 9};
	snprintf(others[2].worker_id, sizeof others[2].worker_id, "w1");
	for (int i = 0; i < 3; i++) {
		struct jm_buf buf;
		jm_buf_init(&buf);
		assert_jm_ok(proto_event_item_encode(&others[i], topics, 1, &buf));
		size_t pos = 0;
		struct proto_event_item item;
		assert_int_equal(proto_event_item_read(buf.data, buf.len, &pos, &item, NULL), 1);
		struct proto_msg back, generic;
		assert_jm_ok(proto_event_item_decode(&item, &back, NULL));
		assert_jm_ok(proto_decode(item.event, item.event_len, &generic, NULL));
		events_equal(&generic, &back);
		proto_msg_fini(&generic);
		proto_msg_fini(&back);
		jm_buf_fini(&buf);
	}
	/* A plain job_state event with one-byte fields: [3, 2, 31, [1, at, job,
	 * batch, "q", "t", state, ...]]; byte 12 is its state, byte 9 the
	 * queue's one character. */
	struct proto_event ev = {.kind = PROTO_EVENT_JOB_STATE,
	                         .at_us = 5,
	                         .job_id = 6,
	                         .batch_id = 7,
	                         .state = PROTO_STATE_ACTIVE,
	                         .attempt = 1};
	snprintf(ev.queue, sizeof ev.queue, "q");
	snprintf(ev.type, sizeof ev.type, "t");
	struct {
		size_t at;
		uint8_t value;
	} cuts[] = {{12, 0}, {12, PROTO_STATE_CANCELLED + 1}, {9, ' '}, {4, 0}, {3, 0x9c}};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		struct jm_buf buf;
		jm_buf_init(&buf);
		assert_jm_ok(proto_event_item_encode(&ev, topics, 1, &buf));
		size_t pos = 0;
		struct proto_event_item item;
		assert_int_equal(proto_event_item_read(buf.data, buf.len, &pos, &item, NULL), 1);
		assert_int_equal(item.event[12], PROTO_STATE_ACTIVE);
		((uint8_t *)item.event)[cuts[i].at] = cuts[i].value;
		struct proto_msg out;
		struct jm_err err = {0};
		assert_int_not_equal(proto_event_item_decode(&item, &out, &err), 0);
		assert_int_not_equal(proto_decode(item.event, item.event_len, &out, NULL), 0);
		jm_buf_fini(&buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_frame_of_three_events_reads_back_each_with_its_topics),
	    cmocka_unit_test(test_every_cut_of_a_frame_fails_cleanly_or_reads_whole_items),
	    cmocka_unit_test(test_a_message_without_the_frame_mark_is_refused),
	    cmocka_unit_test(test_topics_outside_the_limits_are_refused_and_leave_the_buffer),
	    cmocka_unit_test(test_an_item_whose_event_is_another_message_is_refused),
	    cmocka_unit_test(test_job_state_events_encode_to_the_generic_encoders_bytes),
	    cmocka_unit_test(test_job_state_events_the_codec_would_refuse_are_still_refused),
	    cmocka_unit_test(
	        test_events_off_the_direct_path_decode_or_are_refused_as_the_codec_says),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
