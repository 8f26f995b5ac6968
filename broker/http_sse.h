/* The event stream for browsers: GET /v1/events as Server-Sent Events.
 *
 * The hub listens to the broker's events (events_set_listener: each event
 * once its record is durable, in order) and gives each a sequence number,
 * its `id:`. It keeps the last HTTP_SSE_RING events so a client that
 * reconnects with Last-Event-ID gets exactly what it missed; when that is
 * gone (or the id is from another boot: sequences start at the boot's
 * wall-clock microseconds, above any earlier boot's) the stream starts
 * with a `snapshot` event telling the client to re-read state over the
 * API. Clients watching the same topics share one stream of the events'
 * bytes, each reading it from its own offset (sse_stream.h). A client's
 * unsent bytes are capped at HTTP_SSE_CLIENT_BUFFER (checked each time its
 * stream starts a chunk of SSE_STREAM_CHUNK): past that its backlog is
 * dropped and replaced by a snapshot event, so a slow client never slows
 * the broker or the other clients. `: ping` every
 * HTTP_SSE_PING_MS finds connections that went away.
 *
 * With no client connected for HTTP_SSE_IDLE_FEED_MS the hub stops
 * listening (events_listener_wanted), so an idle broker does not encode and
 * sequence every event for nobody; a client resuming across that pause
 * gets a snapshot (the events in between were never sequenced).
 *
 * A stream is an HTTP connection (http_conn.h) that stays open and gets
 * writes: the hub owns each from the request on and releases it when the
 * client leaves or in http_sse_close. */
#ifndef JM_BROKER_HTTP_SSE_H
#define JM_BROKER_HTTP_SSE_H

#include <stdint.h>

#include "err.h"
#include "events.h"

#define HTTP_SSE_RING 16384
#define HTTP_SSE_CLIENT_BUFFER (1u << 20)
#define HTTP_SSE_PING_MS 15000
#define HTTP_SSE_IDLE_FEED_MS 60000 /* events still sequenced after the last client left */
#define HTTP_SSE_CLIENTS_MAX 10000
#define HTTP_SSE_TOPICS_MAX 16

struct http_sse;

/* Starts the hub and taps ev (may be NULL: no events, streams stay idle). */
int http_sse_open(struct http_sse **out, struct events *ev, struct jm_err *err);
/* Closes every stream and stops the ping thread; a stream asked for later
 * is refused (503). Call once events no longer flow (events_stop). Accepts
 * NULL. */
void http_sse_close(struct http_sse *sse);
/* Frees the hub after http_sse_close, once no request can reach it (the
 * HTTP connections have ended). Accepts NULL. */
void http_sse_free(struct http_sse *sse);

/* For /metrics. */
struct http_sse_stats {
	uint64_t clients;
	uint64_t events;  /* sequenced since start */
	uint64_t dropped; /* events dropped for slow clients */
	uint64_t last_seq;
};
void http_sse_stats(struct http_sse *sse, struct http_sse_stats *out);

#endif
