/* The HTTP server's listening side: accepts TCP or TLS connections on an
 * nng_stream_listener, caps how many are open at once, and frees the ones
 * that ended (http_conn.h) on a thread of its own.
 *
 * Over max_connections a new connection is answered 503 with Retry-After
 * and closed (counted in /metrics as jobmesh_http_connections_refused_total);
 * the ones open are served as before. At most HTTP_REFUSING_MAX refusals
 * are in progress at once; past that a connection is closed unanswered,
 * so a flood costs a bounded amount of memory. A connection counts against
 * the cap until it is freed, so the cap bounds memory, not just sockets. */
#ifndef JM_BROKER_HTTP_LISTENER_H
#define JM_BROKER_HTTP_LISTENER_H

#include <stdint.h>

#include "err.h"
#include "http_conn.h"

#define HTTP_REFUSING_MAX 64

typedef struct nng_tls_config nng_tls_config;
struct http_listener;

/* Listens on url ("tcp://127.0.0.1:7480", "tls+tcp://0.0.0.0:443"; tls
 * the config for TLS, else NULL) and serves each connection with cfg
 * (which must outlive the listener; cfg->listener is set here). Port 0
 * picks a free one: http_listener_port. max_connections 0: no cap.
 * Returns 0, or JM_ETRANSPORT / JM_ENOMEM with err set. */
int http_listener_open(struct http_listener **out, const char *url, nng_tls_config *tls,
                       uint32_t max_connections, struct http_conn_config *cfg, struct jm_err *err);
int http_listener_port(const struct http_listener *lis);

/* Connections open now (for /metrics). */
uint32_t http_listener_connections(struct http_listener *lis);

/* Called by a connection once it ended: it is taken off the list and freed
 * on the listener's thread. */
void http_listener_conn_ended(struct http_listener *lis, struct http_conn *conn);

/* Stops accepting and closes every connection (each ends once what it has
 * in flight returns; an event stream once its owner releases it). */
void http_listener_stop(struct http_listener *lis);
/* Stops (if not yet), waits (bounded) for every connection to end and
 * frees the listener: after the streams' owner released them
 * (http_sse_close). Accepts NULL. */
void http_listener_close(struct http_listener *lis);

#endif
