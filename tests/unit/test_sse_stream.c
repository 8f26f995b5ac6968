/* broker/sse_stream: the shared byte stream SSE clients read at their own
 * pace. Every reader gets the bytes appended after it attached, in order,
 * without gaps or repeats, from the same memory (one copy, however many
 * readers); a take stops at SSE_STREAM_IOV_MAX pieces, each ending at a
 * frame's end; a skip drops a backlog and counts the frames in it; bytes
 * a send took stay put until it is given back; and the stream keeps only
 * the chunks from its slowest reader on. */
#include "jm_test.h"

#include <stdbool.h>

#include "sse_stream.h"

/* Frame number i: "id: i\n" and filler up to len bytes, ending "\n\n". */
static size_t frame_text(char *out, size_t len, unsigned i)
{
	int head = snprintf(out, len, "id: %u\ndata: ", i);
	assert_true(head > 0 && (size_t)head + 2 <= len);
	memset(out + head, 'a' + (char)(i % 26), len - (size_t)head - 2);
	out[len - 2] = '\n';
	out[len - 1] = '\n';
	return len;
}

/* Appends frames first..first+count-1 of len bytes to s and to expect. */
static void append_frames(struct sse_stream *s, unsigned first, unsigned count, size_t len,
                          char *expect, size_t *expect_len)
{
	char text[4096];
	assert_true(len <= sizeof text);
	for (unsigned i = first; i < first + count; i++) {
		bool started;
		frame_text(text, len, i);
		assert_jm_ok(sse_stream_append(s, text, len, true, &started));
		if (expect) {
			memcpy(expect + *expect_len, text, len);
			*expect_len += len;
		}
	}
}

/* Takes everything c has (sending each take back at once) into out. */
static size_t drain(struct sse_stream *s, struct sse_cursor *c, char *out, uint32_t *takes)
{
	size_t got = 0;
	struct sse_send send;
	for (int guard = 0; guard < 100000; guard++) {
		if (sse_stream_take(s, c, &send, SSE_STREAM_IOV_MAX) == 0)
			return got;
		assert_true(send.count >= 1 && send.count <= SSE_STREAM_IOV_MAX);
		for (uint32_t i = 0; i < send.count; i++) {
			const char *piece = send.iov[i].iov_buf;
			size_t len = send.iov[i].iov_len;
			assert_true(len >= 2 && memcmp(piece + len - 2, "\n\n", 2) == 0);
			memcpy(out + got, piece, len);
			got += len;
		}
		sse_stream_sent(s, &send);
		if (takes)
			(*takes)++;
	}
	fail_msg("drain did not end");
	return got;
}

static void test_two_readers_get_the_same_bytes_from_one_copy(void **state)
{
	(void)state;
	struct sse_stream s;
	assert_jm_ok(sse_stream_init(&s));
	struct sse_cursor a, b;
	sse_stream_attach(&s, &a);
	sse_stream_attach(&s, &b);
	static char expect[1 << 20];
	size_t expect_len = 0;
	append_frames(&s, 0, 10, 200, expect, &expect_len);
	struct sse_send sa, sb;
	assert_int_equal(sse_stream_take(&s, &a, &sa, SSE_STREAM_IOV_MAX), expect_len);
	assert_int_equal(sse_stream_take(&s, &b, &sb, SSE_STREAM_IOV_MAX), expect_len);
	assert_int_equal(sa.count, sb.count);
	for (uint32_t i = 0; i < sa.count; i++)
		assert_ptr_equal(sa.iov[i].iov_buf, sb.iov[i].iov_buf); /* the same memory */
	assert_memory_equal(sa.iov[0].iov_buf, expect, sa.iov[0].iov_len);
	sse_stream_sent(&s, &sa);
	sse_stream_sent(&s, &sb);
	assert_int_equal(sse_stream_backlog(&s, &a), 0);
	sse_stream_detach(&s, &a);
	sse_stream_detach(&s, &b);
	sse_stream_fini(&s);
}

static void test_a_reader_attached_later_reads_only_what_came_after(void **state)
{
	(void)state;
	struct sse_stream s;
	assert_jm_ok(sse_stream_init(&s));
	struct sse_cursor early, late;
	sse_stream_attach(&s, &early);
	append_frames(&s, 0, 5, 100, NULL, NULL);
	sse_stream_attach(&s, &late);
	static char expect[1 << 16], got[1 << 16];
	size_t expect_len = 0;
	append_frames(&s, 5, 3, 100, expect, &expect_len);
	assert_int_equal(sse_stream_backlog(&s, &early), 800);
	assert_int_equal(sse_stream_backlog(&s, &late), 300);
	assert_int_equal(drain(&s, &late, got, NULL), expect_len);
	assert_memory_equal(got, expect, expect_len);
	assert_int_equal(strncmp(got, "id: 5\n", 6), 0);
	sse_stream_detach(&s, &early);
	sse_stream_detach(&s, &late);
	sse_stream_fini(&s);
}

static void test_takes_stop_at_the_iovec_cap_and_continue_without_gap_or_repeat(void **state)
{
	(void)state;
	struct sse_stream s;
	assert_jm_ok(sse_stream_init(&s));
	struct sse_cursor c;
	sse_stream_attach(&s, &c);
	static char expect[1 << 20], got[1 << 20];
	size_t expect_len = 0;
	/* ~600 KiB over chunks of 1, 2, 4, ... 64 KiB: more than one take's
	 * SSE_STREAM_IOV_MAX pieces. */
	append_frames(&s, 0, 2000, 300, expect, &expect_len);
	uint32_t takes = 0;
	assert_int_equal(drain(&s, &c, got, &takes), expect_len);
	assert_memory_equal(got, expect, expect_len);
	assert_true(takes > 1);
	/* Interleaved: appends between takes. */
	expect_len = 0;
	size_t got_len = 0;
	for (unsigned round = 0; round < 50; round++) {
		append_frames(&s, 2000 + round * 7, 7, 250 + round, expect, &expect_len);
		got_len += drain(&s, &c, got + got_len, NULL);
	}
	assert_int_equal(got_len, expect_len);
	assert_memory_equal(got, expect, expect_len);
	sse_stream_detach(&s, &c);
	sse_stream_fini(&s);
}

static void test_a_skip_drops_the_backlog_and_counts_its_frames_not_comments(void **state)
{
	(void)state;
	struct sse_stream s;
	assert_jm_ok(sse_stream_init(&s));
	struct sse_cursor c;
	sse_stream_attach(&s, &c);
	append_frames(&s, 0, 4, 100, NULL, NULL);
	struct sse_send send;
	assert_int_equal(sse_stream_take(&s, &c, &send, SSE_STREAM_IOV_MAX), 400);
	append_frames(&s, 4, 6, 100, NULL, NULL);
	bool started;
	assert_jm_ok(sse_stream_append(&s, ": ping\n\n", 8, false, &started));
	/* The four taken are on their way; the six after them and the ping
	 * are the backlog. */
	assert_int_equal(sse_stream_skip(&s, &c), 6);
	assert_int_equal(sse_stream_backlog(&s, &c), 0);
	assert_int_equal(strncmp(send.iov[0].iov_buf, "id: 0\n", 6), 0);
	sse_stream_sent(&s, &send);
	static char expect[1 << 16], got[1 << 16];
	size_t expect_len = 0;
	append_frames(&s, 10, 2, 100, expect, &expect_len);
	assert_int_equal(drain(&s, &c, got, NULL), expect_len);
	assert_memory_equal(got, expect, expect_len);
	assert_int_equal(sse_stream_skip(&s, &c), 0);
	sse_stream_detach(&s, &c);
	sse_stream_fini(&s);
}

static void test_bytes_a_send_took_stay_put_while_the_stream_moves_past_them(void **state)
{
	(void)state;
	struct sse_stream s;
	assert_jm_ok(sse_stream_init(&s));
	struct sse_cursor slow, fast;
	sse_stream_attach(&s, &slow);
	sse_stream_attach(&s, &fast);
	append_frames(&s, 0, 3, 1000, NULL, NULL);
	struct sse_send held;
	size_t held_len = sse_stream_take(&s, &slow, &held, 1);
	assert_true(held_len >= 1000);
	static char copy[1 << 16], got[1 << 22];
	memcpy(copy, held.iov[0].iov_buf, held_len);
	/* The slow reader skips ahead; megabytes go by; its chunk leaves the
	 * stream but the send still reads it. */
	sse_stream_skip(&s, &slow);
	for (int round = 0; round < 40; round++) {
		append_frames(&s, 3 + (unsigned)round * 100, 100, 1000, NULL, NULL);
		drain(&s, &fast, got, NULL);
		sse_stream_skip(&s, &slow);
	}
	assert_memory_equal(held.iov[0].iov_buf, copy, held_len);
	sse_stream_sent(&s, &held);
	sse_stream_detach(&s, &slow);
	sse_stream_detach(&s, &fast);
	sse_stream_fini(&s);
}

static void test_the_stream_keeps_only_the_chunks_from_its_slowest_reader_on(void **state)
{
	(void)state;
	struct sse_stream s;
	assert_jm_ok(sse_stream_init(&s));
	struct sse_cursor stuck, reader;
	sse_stream_attach(&s, &stuck);
	sse_stream_attach(&s, &reader);
	static char got[1 << 22];
	for (int round = 0; round < 20; round++) { /* 2 MB */
		append_frames(&s, (unsigned)round * 100, 100, 1000, NULL, NULL);
		drain(&s, &reader, got, NULL);
	}
	/* stuck holds everything: 2 MB in chunks of up to 64 KiB. */
	assert_true(s.chunks > 2000000 / SSE_STREAM_CHUNK);
	assert_int_equal(sse_stream_backlog(&s, &stuck), 2000000);
	sse_stream_skip(&s, &stuck);
	assert_int_equal(s.chunks, 1);
	/* With no reader at all, appends keep only the chunk being filled. */
	sse_stream_detach(&s, &stuck);
	sse_stream_detach(&s, &reader);
	append_frames(&s, 5000, 1000, 1000, NULL, NULL);
	assert_true(s.chunks <= 2);
	sse_stream_fini(&s);
}

static void test_a_frame_larger_than_a_chunk_gets_one_of_its_own(void **state)
{
	(void)state;
	struct sse_stream s;
	assert_jm_ok(sse_stream_init(&s));
	struct sse_cursor c;
	sse_stream_attach(&s, &c);
	size_t big_len = SSE_STREAM_CHUNK * 2 + 17;
	char *big = malloc(big_len);
	assert_non_null(big);
	memset(big, 'x', big_len);
	memcpy(big + big_len - 2, "\n\n", 2);
	bool started;
	append_frames(&s, 0, 1, 100, NULL, NULL);
	assert_jm_ok(sse_stream_append(&s, big, big_len, true, &started));
	assert_true(started);
	append_frames(&s, 1, 1, 100, NULL, NULL);
	struct sse_send send;
	assert_int_equal(sse_stream_take(&s, &c, &send, SSE_STREAM_IOV_MAX), 100 + big_len + 100);
	assert_int_equal(send.count, 3);
	assert_int_equal(send.iov[1].iov_len, big_len);
	assert_memory_equal(send.iov[1].iov_buf, big, big_len);
	sse_stream_sent(&s, &send);
	free(big);
	sse_stream_detach(&s, &c);
	sse_stream_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_two_readers_get_the_same_bytes_from_one_copy),
	    cmocka_unit_test(test_a_reader_attached_later_reads_only_what_came_after),
	    cmocka_unit_test(test_takes_stop_at_the_iovec_cap_and_continue_without_gap_or_repeat),
	    cmocka_unit_test(test_a_skip_drops_the_backlog_and_counts_its_frames_not_comments),
	    cmocka_unit_test(test_bytes_a_send_took_stay_put_while_the_stream_moves_past_them),
	    cmocka_unit_test(test_the_stream_keeps_only_the_chunks_from_its_slowest_reader_on),
	    cmocka_unit_test(test_a_frame_larger_than_a_chunk_gets_one_of_its_own),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
