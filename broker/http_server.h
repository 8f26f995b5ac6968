/* The broker's HTTP server: the JSON API under /v1, the event stream
 * /v1/events (SSE), /metrics, /healthz, /readyz and the dashboard, on the
 * same core, lock and journal as the NNG sockets.
 *
 * The server is the broker's own HTTP/1.1 on NNG streams (TCP, or TLS for
 * HTTPS): http_listener.c accepts and caps connections, http_conn.c reads
 * and writes one, http_parse.c parses heads. It replaced NNG 1.5.2's HTTP
 * server, which has no way to cap connections or to time out a client that
 * sends its headers slowly (one that never finishes them holds its
 * connection for good), refuses oversized bodies with an HTML page, and
 * cannot stream a reply (SSE had to hijack its connections, which its stop
 * then forgot). Waits are still capped by the handlers (?wait at 60 s). */
#ifndef JM_BROKER_HTTP_SERVER_H
#define JM_BROKER_HTTP_SERVER_H

#include <stdint.h>

#include "core.h"
#include "err.h"
#include "events.h"
#include "journal.h"

/* Largest request body: a submit of many jobs at 1 MiB payload each fits
 * in a few; bigger goes through batches of requests. */
#define HTTP_BODY_MAX (16u << 20)

/* Limits (README, "Limits"); http_server_limits_default fills the
 * defaults below. */
#define HTTP_MAX_CONNECTIONS_DEFAULT 1024
#define HTTP_HEADER_TIMEOUT_MS_DEFAULT 10000
#define HTTP_MAX_HEADER_BYTES_DEFAULT (16u << 10)

struct http_server_limits {
	uint32_t max_connections;   /* open at once (event streams count); 0: no cap */
	uint32_t header_timeout_ms; /* a request head whole within this; 0: none */
	uint32_t max_header_bytes;  /* of one request head: over it, 431 */
	uint32_t idle_ms;           /* a kept-alive connection waits this long; 0: forever */
	uint32_t body_timeout_ms;   /* a body whole within this of its head; 0: none */
};
void http_server_limits_default(struct http_server_limits *limits);

struct http_server;

/* Serves on addr ("127.0.0.1:7480", "0.0.0.0:80"; port 0 picks a free
 * one, see http_server_url) and taps ev for the event stream. Returns 0
 * or JM_ETRANSPORT / JM_EINVAL / JM_ENOMEM with err set. */
int http_server_open(struct http_server **out, const char *addr, struct core *core,
                     struct journal *journal, struct events *ev, struct jm_err *err);
/* "http://127.0.0.1:7480": the bound address. */
struct auth_gate;
struct jm_tls;
/* http_server_open with tokens (auth NULL: none), HTTPS (tls NULL: plain
 * HTTP; with tls->ca, client certificates are required) and limits (NULL:
 * the defaults). */
int http_server_open_secure(struct http_server **out, const char *addr, struct core *core,
                            struct journal *journal, struct events *ev, struct auth_gate *auth,
                            const struct jm_tls *tls, const struct http_server_limits *limits,
                            struct jm_err *err);
const char *http_server_url(const struct http_server *srv);
/* HTTP connections open now (event streams among them). */
uint32_t http_server_connections(struct http_server *srv);
/* High availability (--etcd): the server was opened with no core, and
 * from now on asks gate for one per call; without one a call is refused
 * with 503 not_leader naming the leader, and /readyz answers 503 (so a
 * Kubernetes Service routes only to the leader). */
struct ha_gate;
void http_server_set_gate(struct http_server *srv, struct ha_gate *gate);
/* /readyz answers 200 from now on (replay is done, the core serves). */
void http_server_set_ready(struct http_server *srv);
/* Closes every event stream and stops the server: call after core_stop
 * (which answers the parked long-polls, so no handler is left waiting)
 * and before the journal's callbacks are gone. Frees srv. Accepts NULL. */
void http_server_close(struct http_server *srv);

#endif
