/* A shared SSE byte stream (see sse_stream.h).
 *
 * Chunks form a list from head (oldest kept) to tail (appends). A chunk
 * counts the cursors whose position is in it (cursors) and the sends that
 * read it (sends). Trimming frees chunks from the head while no cursor is
 * in them: a cursor only moves forward, so nothing before the first chunk
 * holding a cursor will be read again. A trimmed chunk that a send still
 * reads leaves the list (dropped) and is freed when that send is given
 * back. The stream keeps one freed full-size chunk as a spare, so a busy
 * stream whose readers keep up allocates nothing in the steady state. */
#include "sse_stream.h"

#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

struct sse_chunk {
	struct sse_chunk *next;
	uint64_t start;         /* stream offset of data[0] */
	uint64_t frames_before; /* frames in the stream before data[0] */
	size_t len;
	size_t cap;
	uint32_t cursors;
	uint32_t sends;
	bool dropped; /* off the list: freed when its last send is given back */
	uint8_t data[];
};

/* A chunk for at least need bytes: twice the last one's size, from
 * SSE_STREAM_FIRST_CHUNK up to SSE_STREAM_CHUNK, so a stream that carries
 * a few events (one job's) stays small. */
static struct sse_chunk *chunk_new(struct sse_stream *s, size_t need)
{
	size_t cap = 0;
	if (s->tail != NULL) {
		cap = s->tail->cap < SSE_STREAM_FIRST_CHUNK ? SSE_STREAM_FIRST_CHUNK
		                                            : s->tail->cap * 2;
		if (cap > SSE_STREAM_CHUNK)
			cap = SSE_STREAM_CHUNK;
	}
	if (cap < need)
		cap = need;
	struct sse_chunk *k;
	if (s->spare != NULL && cap <= s->spare->cap) {
		k = s->spare;
		s->spare = NULL;
	} else {
		k = malloc(sizeof *k + cap);
		if (k == NULL)
			return NULL;
		k->cap = cap;
	}
	k->next = NULL;
	k->start = s->end;
	k->frames_before = s->frames;
	k->len = 0;
	k->cursors = 0;
	k->sends = 0;
	k->dropped = false;
	return k;
}

static void chunk_recycle(struct sse_stream *s, struct sse_chunk *k)
{
	if (s->spare == NULL && k->cap == SSE_STREAM_CHUNK)
		s->spare = k;
	else
		free(k);
}

static void trim(struct sse_stream *s)
{
	while (s->head != s->tail && s->head->cursors == 0) {
		struct sse_chunk *k = s->head;
		s->head = k->next;
		s->chunks--;
		if (k->sends == 0)
			chunk_recycle(s, k);
		else
			k->dropped = true;
	}
}

int sse_stream_init(struct sse_stream *s)
{
	memset(s, 0, sizeof *s);
	s->head = s->tail = chunk_new(s, 0); /* empty: the first append grows it */
	s->chunks = 1;
	return s->tail ? 0 : JM_ENOMEM;
}

void sse_stream_fini(struct sse_stream *s)
{
	while (s->head) {
		struct sse_chunk *next = s->head->next;
		free(s->head);
		s->head = next;
	}
	free(s->spare);
	memset(s, 0, sizeof *s);
}

int sse_stream_append(struct sse_stream *s, const void *data, size_t len, bool frame,
                      bool *chunk_started)
{
	*chunk_started = false;
	struct sse_chunk *k = s->tail;
	if (k->cap - k->len < len) {
		k = chunk_new(s, len);
		if (k == NULL)
			return JM_ENOMEM;
		s->tail->next = k;
		s->tail = k;
		s->chunks++;
		*chunk_started = true;
		trim(s);
	}
	memcpy(k->data + k->len, data, len);
	k->len += len;
	s->end += len;
	if (frame)
		s->frames++;
	return 0;
}

static void cursor_move(struct sse_cursor *c, struct sse_chunk *k)
{
	if (c->chunk == k)
		return;
	c->chunk->cursors--;
	k->cursors++;
	c->chunk = k;
}

void sse_stream_attach(struct sse_stream *s, struct sse_cursor *c)
{
	c->chunk = s->tail;
	c->chunk->cursors++;
	c->pos = s->end;
	c->frames = s->frames;
	s->cursors++;
}

void sse_stream_detach(struct sse_stream *s, struct sse_cursor *c)
{
	c->chunk->cursors--;
	c->chunk = NULL;
	s->cursors--;
	trim(s);
}

uint64_t sse_stream_backlog(const struct sse_stream *s, const struct sse_cursor *c)
{
	return s->end - c->pos;
}

uint64_t sse_stream_skip(struct sse_stream *s, struct sse_cursor *c)
{
	uint64_t dropped = s->frames - c->frames;
	cursor_move(c, s->tail);
	c->pos = s->end;
	c->frames = s->frames;
	trim(s);
	return dropped;
}

size_t sse_stream_take(struct sse_stream *s, struct sse_cursor *c, struct sse_send *out,
                       uint32_t max_iov)
{
	out->count = 0;
	out->bytes = 0;
	struct sse_chunk *k = c->chunk;
	uint64_t pos = c->pos;
	for (;;) {
		size_t at = (size_t)(pos - k->start);
		if (at < k->len) {
			size_t len = k->len - at;
			out->iov[out->count] = (nng_iov){.iov_buf = k->data + at, .iov_len = len};
			out->chunks[out->count] = k;
			out->count++;
			out->bytes += len;
			k->sends++;
			pos += len;
		}
		if (out->count == max_iov || k->next == NULL)
			break;
		k = k->next; /* pos == k->start: chunks are contiguous */
	}
	cursor_move(c, k);
	c->pos = pos;
	/* pos is at a chunk's end: the next chunk's start, or the stream's end. */
	c->frames = k->next ? k->next->frames_before : s->frames;
	trim(s);
	return out->bytes;
}

void sse_stream_sent(struct sse_stream *s, struct sse_send *send)
{
	for (uint32_t i = 0; i < send->count; i++) {
		struct sse_chunk *k = send->chunks[i];
		k->sends--;
		if (k->dropped && k->sends == 0)
			chunk_recycle(s, k);
	}
	send->count = 0;
	send->bytes = 0;
}
