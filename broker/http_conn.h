/* One HTTP/1.1 connection of the broker's own server: a small state
 * machine on an nng_stream (TCP or TLS) with one receive and one send aio.
 *
 *   HEAD --(head whole)--> BODY --(body whole)--> CALL --(reply)--> REPLY
 *     ^                                             |                 |
 *     +------------- keep-alive: next request ------+-----------------+
 *   CALL --(http_conn_stream_start)--> STREAM (writes only, until released)
 *   HEAD --(Expect: 100-continue)--> CONTINUE (sends it) --> BODY
 *   REFUSE: over the connection cap, a canned 503 is sent, then the
 *   connection reads and drops until the client closes (so the client gets
 *   the answer, not a reset), bounded in time.
 *
 * Time limits, each a deadline for a whole phase, not per read (a client
 * that trickles one byte a second gains nothing): the first head must be
 * whole within header_timeout_ms of the accept; on a kept-alive connection
 * the next request's first byte must come within idle_ms, and its head be
 * whole header_timeout_ms later; a body must be whole within
 * body_timeout_ms of its head. Past a deadline the connection is closed.
 * A head over head_max bytes gets 431, a body over body_max 413, and a
 * head http_parse.c refuses its 400/411/505, each as a JSON error, and the
 * connection is closed after (what follows such a head cannot be trusted
 * to be a request).
 *
 * No pipelining of work: while a request is with the server (CALL) the
 * connection reads nothing; bytes that came early wait in its buffer.
 *
 * Threads: nng's aio callbacks drive it; conn->lock guards its state;
 * nothing calls out (the server, a stream's owner) with it held. The
 * connection ends (http_listener_conn_ended) once it is closed and has no
 * read, write or request in flight, and no stream owner. */
#ifndef JM_BROKER_HTTP_CONN_H
#define JM_BROKER_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "http_parse.h"

struct http_conn;
struct http_listener;

/* A request arrived whole. The callee answers it exactly once, with
 * http_conn_reply or http_conn_stream_start. head lives until then; body
 * (malloc'd, NUL-terminated at body_len; NULL when empty) is the callee's. */
typedef void (*http_conn_request_fn)(void *arg, struct http_conn *conn,
                                     const struct http_head *head, uint8_t *body, size_t body_len);

struct http_conn_config {
	uint32_t header_timeout_ms; /* 0: none */
	uint32_t idle_ms;           /* 0: none */
	uint32_t body_timeout_ms;   /* 0: none */
	uint32_t head_max;          /* bytes of a request head */
	uint64_t body_max;          /* bytes of a request body */
	http_conn_request_fn on_request;
	void *arg;
	struct http_listener *listener;
};

/* Takes stream (freed with the connection, or here on failure). With
 * refusal (NUL-terminated, static) the connection will send it and close.
 * JM_ENOMEM when out of memory. Nothing runs until http_conn_start. */
int http_conn_open(nng_stream *stream, const struct http_conn_config *cfg, const char *refusal,
                   struct http_conn **out);
/* Starts reading requests (or sending the refusal). The listener lists the
 * connection first: it may end before this returns. */
void http_conn_start(struct http_conn *conn);

/* Sends the reply to the request in CALL: the status line, Content-Length,
 * fields (count pairs, e.g. Content-Type) and body (copied; left out for
 * HEAD). close, or a request that asked for it, closes the connection
 * after the reply; else the next request is read. */
void http_conn_reply(struct http_conn *conn, uint16_t status, const struct http_header *fields,
                     uint32_t fields_count, const void *body, size_t len, bool close);

/* The request in CALL becomes an event stream: from now on the owner
 * writes with http_conn_stream_send and must call http_conn_stream_release
 * once. sent(arg, 0) follows each send that went out whole, sent(arg, rv)
 * one that failed (the peer left): it runs on nng's threads, without
 * conn->lock. */
typedef void (*http_conn_sent_fn)(void *arg, int rv);
void http_conn_stream_start(struct http_conn *conn, http_conn_sent_fn sent, void *arg);
/* Writes data[0..len) (borrowed until sent runs), one send at a time.
 * JM_ECLOSED (sent will not run) when the connection is closed. */
int http_conn_stream_send(struct http_conn *conn, const void *data, size_t len);
/* http_conn_stream_send of count (1..HTTP_CONN_STREAM_IOV_MAX) pieces in
 * one write: their bytes are borrowed until sent runs, the array is
 * copied. JM_EINVAL for no bytes at all or too many pieces. */
#define HTTP_CONN_STREAM_IOV_MAX 4
int http_conn_stream_sendv(struct http_conn *c, const nng_iov *iov, unsigned count);
/* Closes the stream and waits until sent can no longer run; the
 * connection is freed after. Not from sent itself. */
void http_conn_stream_release(struct http_conn *conn);

/* Closes the stream under it: I/O in flight fails and the connection ends
 * once nothing is in flight (a request in CALL still gets its reply
 * call, which is then dropped). Any thread. */
void http_conn_shutdown(struct http_conn *conn);

/* Frees an ended connection (http_listener_conn_ended handed it over);
 * waits for its callbacks to return, so not from one of them. */
void http_conn_free(struct http_conn *conn);

/* The listener's list of open connections (guarded by its lock). */
struct http_conn_link {
	struct http_conn *prev;
	struct http_conn *next;
	bool refused; /* over the cap: counted apart */
};
struct http_conn_link *http_conn_link(struct http_conn *conn);

#endif
