/* The REP socket and its context pool (see server.h).
 *
 * Ownership: a conn owns its received nng_msg (the decoded request borrows
 * from it) from RECV completion until its SEND completes; the reply nng_msg
 * belongs to nng once nng_ctx_send accepts it, and to us again if the send
 * fails. Exactly one party acts on a conn at a time: the receive callback,
 * then the core (while parked or waiting for the journal), then whoever
 * replies, or, for a reply queued behind a busy pipe, whoever finds its
 * send finished (conn_went_busy, sending_take_done).
 *
 * Sends have an aio of their own without a callback: NNG 1.5.2 finishes a
 * send to an idle pipe inside nng_ctx_send, and with a callback it would
 * run that on a task thread, one thread wake-up per request just to learn
 * what is already known. Without one, the replying thread sees the send
 * finished (nng_aio_count is the reply's length) and goes straight on to
 * the next receive. A reply queued behind a busy pipe (several requests in
 * flight on one connection) finishes later in NNG's pipe callback; its conn
 * waits on srv->sending until a request's arrival or the pipes' sweep
 * thread (once a second) finds it finished; until then its pipe counts a
 * request in flight, which the idle sweep of pipes.h respects. That
 * check reads words NNG writes under its own lock: a hint, confirmed by
 * nng_aio_wait before the conn is reused. */
#include "server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/transport/tcp/tcp.h>

#include "auth_gate.h"
#include "ha_gate.h"
#include "ipc_guard.h"
#include "log.h"
#include "pipes.h"
#include "proto_limits.h"
#include "tls.h"
#include "u64map.h"

#define SERVER_CONNS_INITIAL 64
#define SERVER_CONNS_MIN_IDLE 16
#define SERVER_CONNS_GROW 32
#define SERVER_CONNS_MAX 100000

enum conn_state { CONN_RECV, CONN_BUSY, CONN_SEND };

struct conn {
	struct server *srv;
	nng_ctx ctx;
	nng_aio *aio;      /* receives; conn_cb */
	nng_aio *send_aio; /* sends; no callback (see above) */
	nng_msg *request_msg;
	struct request req;
	struct auth_identity identity; /* req.identity points here (auth on) */
	enum conn_state state;
	struct conn *next;
	struct conn *sending_next; /* on srv->sending */
};

struct server {
	nng_socket sock;
	nng_listener listener;
	struct core *core;    /* NULL with a gate: ask it per request */
	struct ha_gate *gate; /* --etcd only (ha_gate.h) */
	struct pipes *pipes;
	char url[512];
	struct auth_gate *auth; /* NULL: no --auth, every pipe may do anything */
	nng_tls_config *tls;
	struct ipc_guard *guard; /* ipc:// only: relistens when NNG stops accepting */

	pthread_mutex_t lock;     /* guards conns, the counters and pipes */
	struct u64map pipe_auths; /* pipe id -> struct pipe_auth, with auth on */
	struct conn *conns;
	struct conn *sending; /* replies queued behind a busy pipe */
	uint32_t conns_count;
	uint32_t conns_idle;
	bool closing;
};

/* The identity a connection proved with its HELLO. */
struct pipe_auth {
	struct u64map_node node; /* key: pipe id */
	struct auth_identity id;
	struct auth_proof proof; /* judged again after a reload */
};

static void conn_cb(void *arg);
static void conn_sent(struct conn *c);

/* Has the send left the aio (sent, or failed and handed back)? Exact for
 * a send that finished inside nng_ctx_send; for one queued behind a busy
 * pipe, a read of words NNG writes when it finishes, confirmed by
 * nng_aio_wait in conn_send_finished before the aio is touched. */
static bool conn_send_done(struct conn *c)
{
	return nng_aio_count(c->send_aio) > 0 || nng_aio_result(c->send_aio) != 0;
}

/* The send has finished: recycle the conn for its next request. */
static void conn_send_finished(struct conn *c)
{
	nng_aio_wait(c->send_aio);
	int rv = nng_aio_result(c->send_aio);
	if (rv != 0) {
		/* A failed send leaves the message ours (ECLOSED at stop,
		 * ECANCELED when a stopping broker answers a parked fetch). */
		nng_msg *unsent = nng_aio_get_msg(c->send_aio);
		nng_aio_set_msg(c->send_aio, NULL);
		if (unsent)
			nng_msg_free(unsent);
	}
	if (rv == NNG_ECLOSED)
		return;
	conn_sent(c);
}

/* Takes the conns on srv->sending whose sends have finished; under
 * srv->lock. They are recycled after the lock is released. */
static struct conn *sending_take_done(struct server *srv)
{
	struct conn *done = NULL, **at = &srv->sending;
	while (*at) {
		struct conn *c = *at;
		if (conn_send_done(c)) {
			*at = c->sending_next;
			c->sending_next = done;
			done = c;
		} else {
			at = &c->sending_next;
		}
	}
	return done;
}

static void sending_finish(struct conn *done)
{
	while (done) {
		struct conn *next = done->sending_next;
		done->sending_next = NULL;
		conn_send_finished(done);
		done = next;
	}
}

static void conn_reply_cb(struct request *req, int status)
{
	struct conn *c = (struct conn *)((char *)req - offsetof(struct conn, req));
	if (status != 0) {
		/* The journal closed before this reply's record was durable:
		 * never report a change that may not survive. */
		jm_buf_reset(&req->reply);
		proto_encode_error(&req->reply, JM_ECLOSED,
		                   "the broker stopped before this request was made durable; "
		                   "retry against the restarted broker");
	}
	nng_msg *reply = NULL;
	if (nng_msg_alloc(&reply, 0) != 0 ||
	    nng_msg_append(reply, req->reply.data, req->reply.len) != 0) {
		/* Out of memory: no reply; the client times out and retries. */
		jm_error("out of memory for a %zu-byte reply", req->reply.len);
		if (reply)
			nng_msg_free(reply);
		conn_sent(c);
		return;
	}
	c->state = CONN_SEND;
	nng_aio_set_msg(c->send_aio, reply);
	nng_ctx_send(c->ctx, c->send_aio);
	if (conn_send_done(c)) {
		conn_send_finished(c);
		return;
	}
	struct server *srv = c->srv;
	pthread_mutex_lock(&srv->lock);
	c->sending_next = srv->sending;
	srv->sending = c;
	pthread_mutex_unlock(&srv->lock);
}

static int conn_add(struct server *srv)
{
	struct conn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NNG_ENOMEM;
	c->srv = srv;
	c->req.on_reply = conn_reply_cb;
	jm_buf_init(&c->req.reply);
	int rv = nng_aio_alloc(&c->aio, conn_cb, c);
	if (rv == 0) {
		rv = nng_aio_alloc(&c->send_aio, NULL, NULL);
		if (rv != 0)
			nng_aio_free(c->aio);
	}
	if (rv == 0) {
		rv = nng_ctx_open(&c->ctx, srv->sock);
		if (rv != 0) {
			nng_aio_free(c->send_aio);
			nng_aio_free(c->aio);
		}
	}
	if (rv != 0) {
		free(c);
		return rv;
	}
	c->state = CONN_RECV;
	c->next = srv->conns;
	srv->conns = c;
	srv->conns_count++;
	srv->conns_idle++;
	nng_ctx_recv(c->ctx, c->aio);
	return 0;
}

/* Keeps some contexts receiving: parked requests hold theirs. Each
 * request's arrival also recycles the conns whose queued replies have
 * gone since (srv->sending). */
static void conn_went_busy(struct server *srv)
{
	pthread_mutex_lock(&srv->lock);
	srv->conns_idle--;
	struct conn *sent = srv->sending ? sending_take_done(srv) : NULL;
	if (!srv->closing && srv->conns_idle < SERVER_CONNS_MIN_IDLE) {
		for (int i = 0; i < SERVER_CONNS_GROW && srv->conns_count < SERVER_CONNS_MAX; i++)
			if (conn_add(srv) != 0)
				break;
	}
	pthread_mutex_unlock(&srv->lock);
	sending_finish(sent);
}

/* The pipes' sweep thread, once a second: recycles the conns whose queued
 * replies have left since the last request arrived. Without it a pipe
 * whose reply was queued would count a request in flight until some
 * request arrived, and on a broker that gets none (its connection cap
 * filled with such pipes, say) the idle sweep would never close it. */
static void server_sweep_hook(void *arg)
{
	struct server *srv = arg;
	pthread_mutex_lock(&srv->lock);
	struct conn *sent = srv->sending ? sending_take_done(srv) : NULL;
	pthread_mutex_unlock(&srv->lock);
	sending_finish(sent);
}

static void conn_went_idle(struct server *srv)
{
	pthread_mutex_lock(&srv->lock);
	srv->conns_idle++;
	pthread_mutex_unlock(&srv->lock);
}

/* Binds a HELLO's token to its pipe, replacing what the pipe held (a
 * wrong token leaves the pipe with none). */
static bool pipe_bind(struct server *srv, uint32_t pipe_id, const struct auth_identity *id,
                      const struct auth_proof *proof)
{
	pthread_mutex_lock(&srv->lock);
	struct u64map_node *n = u64map_find(&srv->pipe_auths, pipe_id);
	struct pipe_auth *pa = n ? u64map_entry(n, struct pipe_auth, node) : NULL;
	bool ok = true;
	if (id == NULL) {
		if (pa) {
			u64map_remove(&srv->pipe_auths, &pa->node);
			free(pa);
		}
	} else if (pa) {
		pa->id = *id;
		pa->proof = *proof;
	} else if ((pa = calloc(1, sizeof *pa)) != NULL) {
		pa->node.key = pipe_id;
		pa->id = *id;
		pa->proof = *proof;
		if (u64map_insert(&srv->pipe_auths, &pa->node) != 0) {
			free(pa);
			ok = false;
		}
	} else {
		ok = false;
	}
	pthread_mutex_unlock(&srv->lock);
	return ok;
}

/* The pipe's identity, judged again if the table was reloaded since it
 * was proved: 1 found, 0 none, -1 its token was removed (the pipe then
 * holds none). */
static int pipe_identity(struct server *srv, uint32_t pipe_id, struct auth_identity *out)
{
	pthread_mutex_lock(&srv->lock);
	struct u64map_node *n = u64map_find(&srv->pipe_auths, pipe_id);
	int found = n != NULL;
	if (n) {
		struct pipe_auth *pa = u64map_entry(n, struct pipe_auth, node);
		if (auth_gate_recheck(srv->auth, &pa->proof, &pa->id)) {
			*out = pa->id;
		} else {
			u64map_remove(&srv->pipe_auths, &pa->node);
			free(pa);
			found = -1;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return found;
}

/* With --auth: a HELLO with a token proves an identity for the pipe; any
 * other request uses the pipe's identity, and a pipe without one is
 * refused. True when the request goes on to the core. */
static bool conn_authenticate(struct conn *c)
{
	struct server *srv = c->srv;
	const struct proto_msg *m = &c->req.msg;
	if (m->type == PROTO_HELLO && m->u.hello.token.len > 0) {
		struct auth_proof proof;
		bool known = auth_gate_prove(srv->auth, m->u.hello.token.ptr, m->u.hello.token.len,
		                             &c->identity, &proof);
		if (!pipe_bind(srv, c->req.pipe_id, known ? &c->identity : NULL, &proof)) {
			core_reply_error(&c->req, JM_ENOMEM, "hello: broker out of memory");
			return false;
		}
		if (!known) {
			jm_info("refused a token on connection %u: not recognised", c->req.pipe_id);
			core_reply_error(&c->req, JM_EAUTH, AUTH_TEXT_UNKNOWN);
			return false;
		}
		c->req.identity = &c->identity;
		return true;
	}
	int held = pipe_identity(srv, c->req.pipe_id, &c->identity);
	if (held > 0) {
		c->req.identity = &c->identity;
		return true;
	}
	if (held < 0) {
		core_reply_error(&c->req, JM_EAUTH, AUTH_TEXT_UNKNOWN);
		return false;
	}
	if (m->type == PROTO_HELLO)
		return true; /* version and events address: anyone may ask */
	auth_gate_count_missing(srv->auth);
	core_reply_error(&c->req, JM_EAUTH, AUTH_TEXT_REQUIRED);
	return false;
}

/* The core to serve from: NULL while a standby (with --etcd). */
static struct core *server_core(struct server *srv)
{
	return srv->gate ? ha_gate_core(srv->gate) : srv->core;
}

static void conn_received(struct conn *c)
{
	nng_msg *msg = nng_aio_get_msg(c->aio);
	c->request_msg = msg;
	c->req.pipe_id = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
	c->req.identity = NULL;
	if (!pipes_request_begin(c->srv->pipes, c->req.pipe_id)) {
		/* Its connection is being closed as idle: drop it unhandled. */
		nng_msg_free(msg);
		c->request_msg = NULL;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	conn_went_busy(c->srv);
	c->state = CONN_BUSY;
	struct jm_err err = {0};
	int rc = proto_decode(nng_msg_body(msg), nng_msg_len(msg), &c->req.msg, &err);
	if (rc != 0) {
		jm_debug("refused a malformed request: %s", jm_err_text(&err));
		core_reply_error(&c->req, rc, jm_err_text(&err));
		return;
	}
	struct core *core = server_core(c->srv);
	if (core == NULL) {
		char text[512];
		ha_gate_refusal(c->srv->gate, text, sizeof text);
		core_reply_error(&c->req, JM_ENOTLEADER, text);
		return;
	}
	if (c->srv->auth != NULL && !conn_authenticate(c))
		return;
	core_handle(core, &c->req);
}

static void conn_sent(struct conn *c)
{
	pipes_request_end(c->srv->pipes, c->req.pipe_id);
	proto_msg_fini(&c->req.msg);
	memset(&c->req.msg, 0, sizeof c->req.msg);
	nng_msg_free(c->request_msg);
	c->request_msg = NULL;
	c->state = CONN_RECV;
	conn_went_idle(c->srv);
	nng_ctx_recv(c->ctx, c->aio);
}

static void conn_cb(void *arg)
{
	struct conn *c = arg;
	int rv = nng_aio_result(c->aio);
	switch (c->state) {
	case CONN_RECV:
		if (rv == NNG_ECLOSED)
			return;
		if (rv != 0) {
			/* NNG_ECANCELED, a dropped over-size message: keep serving. */
			nng_ctx_recv(c->ctx, c->aio);
			return;
		}
		conn_received(c);
		return;
	case CONN_SEND: /* sends complete on send_aio, without a callback */
	case CONN_BUSY:
		return;
	}
}

static void pipe_removed_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct server *srv = arg;
	if (ipc_guard_release(srv->guard, pipe))
		return;
	if (srv->auth)
		pipe_bind(srv, (uint32_t)nng_pipe_id(pipe), NULL, NULL);
	(void)pipes_removed(srv->pipes, pipe);
	struct core *core = server_core(srv);
	if (core)
		core_pipe_gone(core, (uint32_t)nng_pipe_id(pipe));
}

static void pipe_adding_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct server *srv = arg;
	if (!ipc_guard_claim(srv->guard, pipe))
		(void)pipes_added(srv->pipes, pipe);
}

static int server_listen(struct server *srv)
{
	int rv = nng_listener_create(&srv->listener, srv->sock, srv->url);
	if (rv == 0 && srv->tls)
		rv = nng_listener_set_ptr(srv->listener, NNG_OPT_TLS_CONFIG, srv->tls);
	if (rv == 0)
		rv = nng_listener_start(srv->listener, 0);
	return rv;
}

/* The guard found the ipc:// listener no longer accepting (ipc_guard.h). */
static int server_relisten(void *arg)
{
	struct server *srv = arg;
	/* NNG keeps some of a stopped listener's memory after this close:
	 * tests/lsan.supp names server_listen for that. */
	nng_listener_close(srv->listener);
	return server_listen(srv);
}

/* For tcp://host:0, the URL with the port the system chose. */
static void bound_url(struct server *srv, const char *url)
{
	snprintf(srv->url, sizeof srv->url, "%s", url);
	int port;
	if ((strncmp(url, "tcp://", 6) != 0 && strncmp(url, "tls+tcp://", 10) != 0) ||
	    nng_listener_get_int(srv->listener, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
		return;
	const char *colon = strrchr(url, ':');
	if (colon && colon > url + 5)
		snprintf(srv->url, sizeof srv->url, "%.*s:%d", (int)(colon - url), url, port);
}

static int server_open_with(struct server **out, const char *url, struct core *core,
                            struct ha_gate *gate, const struct server_limits *limits,
                            const struct server_security *sec, struct jm_err *err);

int server_open(struct server **out, const char *url, struct core *core,
                const struct server_limits *limits, const struct server_security *sec,
                struct jm_err *err)
{
	return server_open_with(out, url, core, NULL, limits, sec, err);
}

int server_open_gated(struct server **out, const char *url, struct ha_gate *gate,
                      const struct server_limits *limits, const struct server_security *sec,
                      struct jm_err *err)
{
	return server_open_with(out, url, NULL, gate, limits, sec, err);
}

static int server_open_with(struct server **out, const char *url, struct core *core,
                            struct ha_gate *gate, const struct server_limits *limits,
                            const struct server_security *sec, struct jm_err *err)
{
	struct server *srv = calloc(1, sizeof *srv);
	if (srv == NULL || u64map_init(&srv->pipe_auths, 64) != 0) {
		free(srv);
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	}
	srv->core = core;
	srv->gate = gate;
	srv->auth = sec ? sec->auth : NULL;
	if (jm_tls_url_wants(url)) {
		int rc = jm_tls_config_server(&srv->tls, url, sec ? &sec->tls : NULL, err);
		if (rc != 0) {
			u64map_fini(&srv->pipe_auths);
			free(srv);
			return rc;
		}
	}
	if (pipes_open(&srv->pipes, limits->max_connections, limits->idle_ms, "requests") != 0) {
		u64map_fini(&srv->pipe_auths);
		if (srv->tls)
			nng_tls_config_free(srv->tls);
		free(srv);
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&srv->lock, NULL);
	pipes_set_sweep_hook(srv->pipes, server_sweep_hook, srv);
	int rv = nng_rep0_open(&srv->sock);
	if (rv != 0) {
		pipes_close(srv->pipes);
		u64map_fini(&srv->pipe_auths);
		if (srv->tls)
			nng_tls_config_free(srv->tls);
		pthread_mutex_destroy(&srv->lock);
		free(srv);
		return jm_err_set(err, JM_ETRANSPORT, "opening the REP socket: %s",
		                  nng_strerror(rv));
	}
	nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ,
	                    limits->max_message ? limits->max_message : PROTO_MESSAGE_MAX);
	nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_PRE, pipe_adding_cb, srv);
	nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST, pipe_removed_cb, srv);
	pthread_mutex_lock(&srv->lock);
	for (int i = 0; i < SERVER_CONNS_INITIAL && rv == 0; i++)
		rv = conn_add(srv);
	pthread_mutex_unlock(&srv->lock);
	snprintf(srv->url, sizeof srv->url, "%s", url);
	if (rv == 0)
		rv = server_listen(srv);
	if (rv != 0) {
		jm_err_set(err, JM_ETRANSPORT, "listening on %s: %s", url, nng_strerror(rv));
		server_close(srv);
		return JM_ETRANSPORT;
	}
	bound_url(srv, url);
	int rc = ipc_guard_start(&srv->guard, url, IPC_GUARD_PEER_REQ0, server_relisten, srv, err);
	if (rc != 0) {
		server_close(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

const char *server_url(const struct server *srv)
{
	return srv->url;
}

void server_stop_listening(struct server *srv)
{
	pthread_mutex_lock(&srv->lock);
	srv->closing = true;
	pthread_mutex_unlock(&srv->lock);
	ipc_guard_stop(srv->guard);
	nng_listener_close(srv->listener);
}

static void pipe_free_cb(struct u64map_node *node, void *arg)
{
	free(u64map_entry(node, struct pipe_auth, node));
}

void server_close(struct server *srv)
{
	if (srv == NULL)
		return;
	pthread_mutex_lock(&srv->lock);
	srv->closing = true;
	pthread_mutex_unlock(&srv->lock);
	pipes_stop_sweep(srv->pipes); /* its hook touches the conns */
	ipc_guard_stop(srv->guard);
	nng_close(srv->sock);
	ipc_guard_free(srv->guard); /* no pipe callback runs after nng_close */
	srv->guard = NULL;
	for (struct conn *c = srv->conns; c; c = c->next) {
		nng_aio_stop(c->aio);
		nng_aio_stop(c->send_aio);
	}
	struct conn *c = srv->conns;
	while (c) {
		struct conn *next = c->next;
		nng_ctx_close(c->ctx);
		nng_aio_free(c->aio);
		nng_msg *unsent = nng_aio_get_msg(c->send_aio);
		if (unsent)
			nng_msg_free(unsent); /* a send that failed or never finished */
		nng_aio_free(c->send_aio);
		proto_msg_fini(&c->req.msg);
		if (c->request_msg)
			nng_msg_free(c->request_msg);
		jm_buf_fini(&c->req.reply);
		free(c);
		c = next;
	}
	u64map_each(&srv->pipe_auths, pipe_free_cb, NULL);
	u64map_fini(&srv->pipe_auths);
	if (srv->tls)
		nng_tls_config_free(srv->tls);
	pthread_mutex_destroy(&srv->lock);
	pipes_close(srv->pipes);
	free(srv);
}
