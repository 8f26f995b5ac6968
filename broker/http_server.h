/* The broker's HTTP server (NNG 1.5.2's): the JSON API under /v1, the
 * event stream /v1/events (SSE), /metrics, /healthz and /readyz, on the
 * same core, lock and journal as the NNG sockets.
 *
 * NNG's HTTP server has traps this module works around (DESIGN.md): it
 * puts no timeout on a handler (waits are capped here: ?wait at 60 s), it
 * does not close hijacked connections when it stops (the SSE hub tracks
 * and closes them), it cannot send chunked replies (SSE writes its own
 * stream), and it refuses oversized bodies with an HTML page (so bodies
 * are read here, refused at HTTP_BODY_MAX with a JSON 413). */
#ifndef JM_BROKER_HTTP_SERVER_H
#define JM_BROKER_HTTP_SERVER_H

#include "core.h"
#include "err.h"
#include "events.h"
#include "journal.h"

/* Largest request body: a submit of many jobs at 1 MiB payload each fits
 * in a few; bigger goes through batches of requests. */
#define HTTP_BODY_MAX (16u << 20)

struct http_server;

/* Serves on addr ("127.0.0.1:7480", "0.0.0.0:80"; port 0 picks a free
 * one, see http_server_url) and taps ev for the event stream. Returns 0
 * or JM_ETRANSPORT / JM_EINVAL / JM_ENOMEM with err set. */
int http_server_open(struct http_server **out, const char *addr, struct core *core,
                     struct journal *journal, struct events *ev, struct jm_err *err);
/* "http://127.0.0.1:7480": the bound address. */
struct auth_gate;
struct jm_tls;
/* http_server_open with tokens (auth NULL: none) and HTTPS (tls NULL:
 * plain HTTP; with tls->ca, client certificates are required). */
int http_server_open_secure(struct http_server **out, const char *addr, struct core *core,
                            struct journal *journal, struct events *ev, struct auth_gate *auth,
                            const struct jm_tls *tls, struct jm_err *err);
const char *http_server_url(const struct http_server *srv);
/* A request body not received whole within ms of its headers closes the
 * connection (0: no limit; the broker passes --idle-timeout-ms). NNG 1.5.2
 * reads the headers itself, with no timeout and no connection cap. */
void http_server_set_body_timeout(struct http_server *srv, uint32_t ms);
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
