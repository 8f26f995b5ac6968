/* The broker's socket: one NNG REP socket served through a pool of
 * contexts, each a small state machine RECV -> handle -> SEND -> RECV (as
 * nng's demo/async/server.c). A context whose request is parked or waiting
 * for the journal simply has not sent yet; the pool grows so that some
 * contexts are always receiving. */
#ifndef JM_BROKER_SERVER_H
#define JM_BROKER_SERVER_H

#include "core.h"
#include "err.h"
#include "tls.h"

struct server;
struct auth_gate;

struct server_security {
	struct auth_gate *auth; /* NULL: no --auth */
	struct jm_tls tls;      /* for tls+tcp:// and wss:// */
};

/* Listens on url and starts serving into core. The bound URL (with the
 * real port when url asked for port 0) is available from server_url(). */
/* What one peer may hold (README, "Limits"; pipes.h says why). */
struct server_limits {
	uint32_t max_connections; /* 0: no limit */
	uint32_t idle_ms;         /* a connection with nothing in flight this
	                             long is closed; 0: never */
	uint64_t max_message;     /* bytes of one request (NNG_OPT_RECVMAXSZ) */
};

/* With sec (may be NULL): tokens (each pipe proves one with HELLO before
 * any other request) and TLS for tls+tcp:// and wss:// URLs. */
int server_open(struct server **out, const char *url, struct core *core,
                const struct server_limits *limits, const struct server_security *sec,
                struct jm_err *err);
/* High availability (--etcd): serves while gate has a core, and refuses
 * every request with JM_ENOTLEADER naming the leader otherwise. */
struct ha_gate;
int server_open_gated(struct server **out, const char *url, struct ha_gate *gate,
                      const struct server_limits *limits, const struct server_security *sec,
                      struct jm_err *err);
const char *server_url(const struct server *srv);
/* Stops accepting connections and closes the ones open. */
void server_stop_listening(struct server *srv);
/* Closes the socket, stops every context and frees. Accepts NULL. */
void server_close(struct server *srv);

#endif
