/* One shared, append-only byte stream of SSE frames, read by many clients
 * at their own pace (issue 12: with 100 clients on one batch, every event
 * was formatted into each client's own buffer, 100 copies of each event
 * under the hub's lock on the publisher's thread: 44 µs of broker CPU per
 * job instead of 4).
 *
 * The SSE hub (http_sse.c) keeps one stream per distinct filter: every
 * client watching the same topics with the same access gets the same
 * bytes, so an event is appended once, however many clients watch it.
 * Each client holds a cursor, its offset into the stream, and writes
 * straight from the stream's chunks (sse_stream_take fills an iovec).
 *
 * Bytes live in chunks, oldest first, each twice the size of the one
 * before from SSE_STREAM_FIRST_CHUNK up to SSE_STREAM_CHUNK bytes (a frame
 * larger gets a chunk of its own); a frame never straddles two.
 * Bytes once appended never move or change, so a send reads them off the
 * hub's lock while later frames are appended after them. A chunk is freed
 * once no cursor is in it or before it and no send still reads it; so a
 * stream holds the bytes between its slowest cursor and its end, which the
 * hub bounds by skipping a cursor that lags too far (sse_stream_skip).
 *
 * Not thread-safe: the hub's lock guards its streams, their cursors and
 * their sends. */
#ifndef JM_BROKER_SSE_STREAM_H
#define JM_BROKER_SSE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

/* A send takes up to SSE_STREAM_IOV_MAX chunks: up to 768 KiB in flight
 * per client, on top of the hub's 1 MiB cap on what waits. */
#define SSE_STREAM_CHUNK (256u * 1024)
#define SSE_STREAM_FIRST_CHUNK 1024u
/* Pieces of the stream one send reads (NNG takes up to 4 iovecs without
 * allocating; the hub puts a client's own bytes first). */
#define SSE_STREAM_IOV_MAX 3

struct sse_chunk;

struct sse_stream {
	struct sse_chunk *head;  /* oldest chunk kept */
	struct sse_chunk *tail;  /* where appends go; never NULL once open */
	struct sse_chunk *spare; /* a freed chunk kept for the next append */
	uint64_t end;            /* stream offset past the last byte */
	uint64_t frames;         /* frames appended (comments are not frames) */
	uint32_t cursors;        /* attached */
	uint32_t chunks;         /* on the list, head to tail */
};

/* A reader's place: the next byte it will send. */
struct sse_cursor {
	struct sse_chunk *chunk; /* the chunk pos is in (or at the end of) */
	uint64_t pos;
	uint64_t frames; /* frames before pos */
};

/* What one send reads; its chunks are kept until sse_stream_sent. */
struct sse_send {
	struct sse_chunk *chunks[SSE_STREAM_IOV_MAX];
	nng_iov iov[SSE_STREAM_IOV_MAX];
	uint32_t count;
	size_t bytes;
};

/* 0 or JM_ENOMEM. */
int sse_stream_init(struct sse_stream *s);
/* Frees every chunk; no cursor may be attached and no send in flight. */
void sse_stream_fini(struct sse_stream *s);

/* Appends len bytes: a frame (counted) or a comment such as a ping. 0 or
 * JM_ENOMEM (nothing appended). *chunk_started tells the caller a new
 * chunk was started: the moment to look for cursors that lag. */
int sse_stream_append(struct sse_stream *s, const void *data, size_t len, bool frame,
                      bool *chunk_started);

/* Puts c at the end of s: it reads what is appended from now on. */
void sse_stream_attach(struct sse_stream *s, struct sse_cursor *c);
/* Takes c off s (its sends must have been given back). */
void sse_stream_detach(struct sse_stream *s, struct sse_cursor *c);
/* Bytes appended that c has not taken yet. */
uint64_t sse_stream_backlog(const struct sse_stream *s, const struct sse_cursor *c);
/* Moves c to the end of s, dropping its backlog; returns the frames
 * dropped. Sends already taken still go out whole. */
uint64_t sse_stream_skip(struct sse_stream *s, struct sse_cursor *c);

/* Fills out with up to max_iov (1..SSE_STREAM_IOV_MAX) pieces of c's
 * backlog, from c's position on, and moves c past them; returns the bytes
 * taken (0: nothing to send, out holds nothing). Each piece ends at a
 * frame's end. The chunks stay until sse_stream_sent(out). */
size_t sse_stream_take(struct sse_stream *s, struct sse_cursor *c, struct sse_send *out,
                       uint32_t max_iov);
/* The send is over (written or failed): its chunks may go. */
void sse_stream_sent(struct sse_stream *s, struct sse_send *send);

#endif
