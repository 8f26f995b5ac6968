/* The client side of one request, one reply (see rpc.h).
 *
 * One REQ socket per rpc, shared by every thread: each call opens its own
 * nng_ctx and nng_aio, so calls never wait on each other, and closes both
 * before returning, so nothing of a call outlives it except the reply message
 * handed to the caller.
 *
 * Resending is disabled with NNG_DURATION_INFINITE: in NNG 1.5.2 req0 only
 * schedules a resend when the context's resend time is > 0, so -1 means
 * "never" (checked against nng's src/sp/protocol/reqrep0/req.c and by a
 * throwaway run in which an unanswered request reached the server once in
 * 3 s with a 1 s resend tick). The cost: if the connection drops while a
 * request is out, its call fails with JM_ETRANSPORT (NNG_ECONNRESET) instead
 * of being replayed on the new connection; the caller decides whether the
 * request is safe to repeat.
 *
 * Each call has one deadline for send and receive together: the send waits
 * for a connection (the dialer retries every 100 ms to 2 s), the receive
 * gets what is left. */
#include "rpc.h"
#include "rpc_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "buf.h"
#include "clock.h"
#include "sock_close.h"
#include "tls.h"

#define RPC_DEFAULT_URL "tcp://127.0.0.1:7400"
#define RPC_RECONNECT_MIN_MS 100
#define RPC_RECONNECT_MAX_MS 1000
#define RPC_CONNECT_WAIT_MS 1000 /* with a list: then the next broker */
#define RPC_CONNECT_STEP_MS 5
#define RPC_FOLLOW_PAUSE_MS 200    /* between rounds while no broker leads */
#define RPC_FOLLOW_ROUNDS_MAX 1000 /* bounds the loop whatever the clock does */

static int rpc_call_once(struct rpc *rpc, const struct proto_msg *req, uint64_t deadline_us,
                         uint32_t timeout_ms, struct rpc_cancel *cancel, struct rpc_reply *reply,
                         struct jm_err *err);

/* A pipe of a dialer replaced since (rpc_leader.c) is not counted. */
static void rpc_pipe_added(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct rpc *rpc = arg;
	uint32_t dialer = (uint32_t)nng_dialer_id(nng_pipe_dialer(pipe));
	pthread_mutex_lock(&rpc->pipes_lock);
	bool current = dialer != 0 && dialer == rpc->dialer_id;
	if (current && rpc->pipes_count < RPC_PIPES_MAX)
		rpc->pipe_ids[rpc->pipes_count++] = (uint32_t)nng_pipe_id(pipe);
	pthread_mutex_unlock(&rpc->pipes_lock);
	if (current)
		atomic_store(&rpc->need_hello, true);
}

static void rpc_pipe_removed(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct rpc *rpc = arg;
	uint32_t id = (uint32_t)nng_pipe_id(pipe);
	bool counted = false;
	pthread_mutex_lock(&rpc->pipes_lock);
	for (unsigned i = 0; i < rpc->pipes_count; i++)
		if (rpc->pipe_ids[i] == id) {
			rpc->pipe_ids[i] = rpc->pipe_ids[--rpc->pipes_count];
			counted = true;
			break;
		}
	pthread_mutex_unlock(&rpc->pipes_lock);
	if (counted)
		atomic_fetch_add(&rpc->pipes_lost, 1);
}

bool rpc_is_connected(struct rpc *rpc)
{
	pthread_mutex_lock(&rpc->pipes_lock);
	bool connected = rpc->pipes_count > 0;
	pthread_mutex_unlock(&rpc->pipes_lock);
	return connected;
}

/* Creates and starts rpc's dialer (in the background: the broker may come
 * up later); 0 or an nng error. */
int rpc_dial(struct rpc *rpc)
{
	pthread_mutex_lock(&rpc->pipes_lock);
	rpc->dialer_id = 0;
	rpc->pipes_count = 0;
	pthread_mutex_unlock(&rpc->pipes_lock);
	int nng_rc = nng_dialer_create(&rpc->dialer, rpc->sock, atomic_load(&rpc->url));
	if (nng_rc == 0) {
		pthread_mutex_lock(&rpc->pipes_lock);
		rpc->dialer_id = (uint32_t)nng_dialer_id(rpc->dialer);
		pthread_mutex_unlock(&rpc->pipes_lock);
	}
	if (nng_rc == 0 && rpc->tls)
		nng_rc = nng_dialer_set_ptr(rpc->dialer, NNG_OPT_TLS_CONFIG, rpc->tls);
	if (nng_rc == 0)
		nng_rc = nng_dialer_start(rpc->dialer, NNG_FLAG_NONBLOCK);
	return nng_rc;
}

/* NNG 1.5.2's dialer stops for good when a connection is cut during its
 * SP handshake in a way that reads as NNG_ECLOSED (EPIPE on ipc://: the
 * broker was killed, or dropped the connection, just as we redialled; the
 * same fault as broker/ipc_guard.h on the other side). The socket then
 * never connects again and every call times out. So a call that failed
 * while no connection is open replaces the dialer: harmless when the old
 * one was only waiting to retry, the cure when it had stopped. With a list
 * of brokers the new dialer goes to the next one (rpc_leader.c). */
static void rpc_redial_if_down(struct rpc *rpc)
{
	rpc_dial_next(rpc);
}

/* Maps an nng failure of a call to our code and text naming the broker. */
int rpc_fail(const struct rpc *rpc, int nng_rc, uint32_t timeout_ms, struct jm_err *err)
{
	switch (nng_rc) {
	case NNG_ETIMEDOUT:
		return jm_err_set(err, JM_ETIMEDOUT, "no reply from broker at %s within %u ms",
		                  rpc->url, timeout_ms);
	case NNG_ENOMEM:
		return jm_err_set(err, JM_ENOMEM, "request to broker at %s: out of memory",
		                  rpc->url);
	case NNG_ECANCELED:
		return jm_err_set(err, JM_ECLOSED, "request to broker at %s: cancelled", rpc->url);
	default:
		return jm_err_set(err, JM_ETRANSPORT, "broker at %s: %s", rpc->url,
		                  nng_strerror(nng_rc));
	}
}

int rpc_open(struct rpc **out, const char *url, struct jm_err *err)
{
	return rpc_open_secure(out, url, NULL, err);
}

static void rpc_free(struct rpc *rpc)
{
	pthread_mutex_destroy(&rpc->dial_lock);
	pthread_mutex_destroy(&rpc->pipes_lock);
	if (rpc->tls)
		nng_tls_config_free(rpc->tls);
	free(rpc->token);
	rpc_urls_free(rpc);
	free(rpc);
}

/* The token and TLS settings: sec's, else the environment's. */
static int rpc_secure(struct rpc *rpc, const struct rpc_security *sec, struct jm_err *err)
{
	const char *token = sec && sec->token ? sec->token : getenv("JOBMESH_TOKEN");
	if (token && token[0]) {
		if (strlen(token) > PROTO_TOKEN_MAX)
			return jm_err_set(err, JM_EINVAL, "the token is %zu bytes: at most %d",
			                  strlen(token), PROTO_TOKEN_MAX);
		if ((rpc->token = strdup(token)) == NULL)
			return jm_err_set(err, JM_ENOMEM, "broker at %s: out of memory", rpc->url);
	}
	if (!jm_tls_url_wants(rpc->url))
		return 0;
	struct jm_tls tls = sec ? sec->tls : (struct jm_tls){0};
	jm_tls_from_env(&tls);
	return jm_tls_config_client(&rpc->tls, rpc->url, &tls, err);
}

int rpc_open_secure(struct rpc **out, const char *url, const struct rpc_security *sec,
                    struct jm_err *err)
{
	*out = NULL;
	struct rpc *rpc = calloc(1, sizeof *rpc);
	if (rpc == NULL)
		return jm_err_set(err, JM_ENOMEM, "broker at %s: out of memory", url);
	pthread_mutex_init(&rpc->dial_lock, NULL);
	pthread_mutex_init(&rpc->pipes_lock, NULL);
	int rc = rpc_urls_parse(rpc, url, err);
	if (rc != 0) {
		pthread_mutex_destroy(&rpc->dial_lock);
		pthread_mutex_destroy(&rpc->pipes_lock);
		free(rpc);
		return rc;
	}
	int nng_rc = nng_req0_open(&rpc->sock);
	if (nng_rc != 0) {
		rc =
		    jm_err_set(err, nng_rc == NNG_ENOMEM ? JM_ENOMEM : JM_ETRANSPORT,
		               "broker at %s: opening a REQ socket: %s", url, nng_strerror(nng_rc));
		pthread_mutex_destroy(&rpc->dial_lock);
		pthread_mutex_destroy(&rpc->pipes_lock);
		rpc_urls_free(rpc);
		free(rpc);
		return rc;
	}
	/* Options go on the socket before the dial and before any context is
	 * opened: contexts copy the resend time when they are created. */
	const char *option = NNG_OPT_REQ_RESENDTIME;
	nng_rc = nng_socket_set_ms(rpc->sock, option, NNG_DURATION_INFINITE);
	if (nng_rc == 0) {
		option = NNG_OPT_RECVMAXSZ;
		nng_rc = nng_socket_set_size(rpc->sock, option, PROTO_MESSAGE_MAX);
	}
	if (nng_rc == 0) {
		option = NNG_OPT_RECONNMINT;
		nng_rc = nng_socket_set_ms(rpc->sock, option, RPC_RECONNECT_MIN_MS);
	}
	if (nng_rc == 0) {
		option = NNG_OPT_RECONNMAXT;
		nng_rc = nng_socket_set_ms(rpc->sock, option, RPC_RECONNECT_MAX_MS);
	}
	if (nng_rc != 0) {
		rc = jm_err_set(err, JM_ETRANSPORT, "broker at %s: setting %s: %s", url, option,
		                nng_strerror(nng_rc));
		goto fail_close;
	}
	atomic_init(&rpc->need_hello, true);

	rc = rpc_secure(rpc, sec, err);
	if (rc != 0)
		goto fail_close;
	nng_pipe_notify(rpc->sock, NNG_PIPE_EV_ADD_POST, rpc_pipe_added, rpc);
	nng_pipe_notify(rpc->sock, NNG_PIPE_EV_REM_POST, rpc_pipe_removed, rpc);
	/* Non-blocking: the broker may start after us; the dialer keeps
	 * retrying in the background and calls wait for it within their
	 * deadline. */
	nng_rc = rpc_dial(rpc);
	if (nng_rc != 0) {
		bool bad_url =
		    nng_rc == NNG_EADDRINVAL || nng_rc == NNG_EINVAL || nng_rc == NNG_ENOTSUP;
		rc = jm_err_set(
		    err, bad_url ? JM_EINVAL : JM_ETRANSPORT, "broker at %s: %s%s", url,
		    nng_strerror(nng_rc),
		    bad_url ? "; use tcp://HOST:PORT or ipc:///PATH (tls+tcp://HOST:PORT for TLS)"
		            : "");
		goto fail_close;
	}
	*out = rpc;
	return 0;

fail_close:
	nng_close(rpc->sock);
	rpc_free(rpc);
	return rc;
}

void rpc_close(struct rpc *rpc)
{
	if (rpc == NULL)
		return;
	sock_close(rpc->sock);
	rpc_free(rpc);
}

void rpc_reply_fini(struct rpc_reply *reply)
{
	if (reply == NULL)
		return;
	proto_msg_fini(&reply->msg);
	if (reply->nng_msg_ != NULL)
		nng_msg_free(reply->nng_msg_);
	memset(reply, 0, sizeof *reply);
}

nng_duration rpc_remaining_ms(uint64_t deadline_us)
{
	uint64_t now_us = jm_mono_us();
	if (now_us >= deadline_us)
		return 0;
	uint64_t left_ms = (deadline_us - now_us + 999) / 1000;
	return left_ms > INT32_MAX ? INT32_MAX : (nng_duration)left_ms;
}

void rpc_cancel_init(struct rpc_cancel *cancel)
{
	pthread_mutex_init(&cancel->lock, NULL);
	cancel->fired = false;
	cancel->aio_ = NULL;
}

void rpc_cancel_fini(struct rpc_cancel *cancel)
{
	pthread_mutex_destroy(&cancel->lock);
}

void rpc_cancel_fire(struct rpc_cancel *cancel)
{
	pthread_mutex_lock(&cancel->lock);
	cancel->fired = true;
	if (cancel->aio_ != NULL)
		nng_aio_abort(cancel->aio_, NNG_ECANCELED);
	pthread_mutex_unlock(&cancel->lock);
}

/* Starts one operation of aio under cancel's lock, so that a fire either
 * comes first (the operation is not started: NNG_ECANCELED) or aborts it. */
static int rpc_start(struct rpc_cancel *cancel, nng_aio *aio, nng_ctx ctx, bool send)
{
	if (cancel != NULL) {
		pthread_mutex_lock(&cancel->lock);
		if (cancel->fired) {
			pthread_mutex_unlock(&cancel->lock);
			return NNG_ECANCELED;
		}
		cancel->aio_ = aio;
	}
	if (send)
		nng_ctx_send(ctx, aio);
	else
		nng_ctx_recv(ctx, aio);
	if (cancel != NULL)
		pthread_mutex_unlock(&cancel->lock);
	nng_aio_wait(aio);
	if (cancel != NULL) {
		pthread_mutex_lock(&cancel->lock);
		cancel->aio_ = NULL;
		pthread_mutex_unlock(&cancel->lock);
	}
	return nng_aio_result(aio);
}

/* Sends msg on ctx and receives the reply. On success *reply_msg is the
 * caller's; msg is given away whether or not the send succeeds. Returns 0 or
 * an nng error code. */
static int rpc_exchange(nng_ctx ctx, nng_aio *aio, nng_msg *msg, uint64_t deadline_us,
                        struct rpc_cancel *cancel, nng_msg **reply_msg)
{
	nng_aio_set_msg(aio, msg);
	nng_aio_set_timeout(aio, rpc_remaining_ms(deadline_us));
	int nng_rc = rpc_start(cancel, aio, ctx, true);
	if (nng_rc != 0) {
		/* A failed (or never started) send leaves the message with us. */
		nng_msg_free(nng_aio_get_msg(aio));
		nng_aio_set_msg(aio, NULL);
		return nng_rc;
	}
	nng_aio_set_msg(aio, NULL);

	nng_duration left_ms = rpc_remaining_ms(deadline_us);
	if (left_ms == 0)
		return NNG_ETIMEDOUT;
	nng_aio_set_timeout(aio, left_ms);
	nng_rc = rpc_start(cancel, aio, ctx, false);
	if (nng_rc != 0)
		return nng_rc;
	*reply_msg = nng_aio_get_msg(aio);
	nng_aio_set_msg(aio, NULL);
	return 0;
}

int rpc_build_request(const struct rpc *rpc, const struct proto_msg *req, nng_msg **out,
                      struct jm_err *err)
{
	struct jm_buf buf;
	jm_buf_init(&buf);
	int rc = proto_encode(req, &buf);
	if (rc != 0) {
		jm_buf_fini(&buf);
		return jm_err_set(err, rc, "request %s to broker at %s: encoding: %s",
		                  proto_type_name(req->type), rpc->url, jm_strerror(rc));
	}
	nng_msg *msg = NULL;
	int nng_rc = nng_msg_alloc(&msg, 0);
	if (nng_rc == 0) {
		nng_rc = nng_msg_append(msg, buf.data, buf.len);
		if (nng_rc != 0)
			nng_msg_free(msg);
	}
	jm_buf_fini(&buf);
	if (nng_rc != 0)
		return jm_err_set(err, JM_ENOMEM, "request %s to broker at %s: out of memory",
		                  proto_type_name(req->type), rpc->url);
	*out = msg;
	return 0;
}

int rpc_call(struct rpc *rpc, const struct proto_msg *req, uint32_t timeout_ms,
             struct rpc_reply *reply, struct jm_err *err)
{
	return rpc_call_cancellable(rpc, req, timeout_ms, NULL, reply, err);
}

/* With a token, presents it on the current connection when a new one made
 * that due (need_hello); 0 when nothing was due. */
static int rpc_hello_if_due(struct rpc *rpc, uint64_t deadline_us, uint32_t timeout_ms,
                            struct rpc_cancel *cancel, struct jm_err *err)
{
	if (rpc->token == NULL || !atomic_exchange(&rpc->need_hello, false))
		return 0;
	struct proto_msg hello = {.type = PROTO_HELLO};
	hello.u.hello.token =
	    (struct proto_bytes){(const uint8_t *)rpc->token, (uint32_t)strlen(rpc->token)};
	struct rpc_reply reply;
	int rc = rpc_call_once(rpc, &hello, deadline_us, timeout_ms, cancel, &reply, err);
	if (rc == 0)
		rpc_reply_fini(&reply);
	else
		atomic_store(&rpc->need_hello, true);
	return rc;
}

int rpc_ensure_hello(struct rpc *rpc, uint32_t timeout_ms, struct jm_err *err)
{
	return rpc_hello_if_due(rpc, jm_mono_us() + (uint64_t)timeout_ms * 1000, timeout_ms, NULL,
	                        err);
}

/* With a token: HELLO first on a new connection; and a request refused for
 * want of a token (the connection was replaced between the HELLO and the
 * request; nothing was done) is sent again after a fresh HELLO, once. */
static int rpc_call_to_one(struct rpc *rpc, const struct proto_msg *req, uint64_t deadline_us,
                           uint32_t timeout_ms, struct rpc_cancel *cancel, struct rpc_reply *reply,
                           struct jm_err *err);

static bool rpc_cancel_is_fired(struct rpc_cancel *cancel)
{
	pthread_mutex_lock(&cancel->lock);
	bool fired = cancel->fired;
	pthread_mutex_unlock(&cancel->lock);
	return fired;
}

/* True once a connection is open, false when none opened within
 * RPC_CONNECT_WAIT_MS (or by deadline_us). A short bounded wait on the
 * dialer, which reports only through the pipe counter. */
static bool rpc_wait_connected(struct rpc *rpc, uint64_t deadline_us)
{
	uint64_t until_us = jm_mono_us() + RPC_CONNECT_WAIT_MS * 1000u;
	if (until_us > deadline_us)
		until_us = deadline_us;
	for (unsigned step = 0; step < RPC_CONNECT_WAIT_MS / RPC_CONNECT_STEP_MS + 1; step++) {
		if (rpc_is_connected(rpc))
			return true;
		if (jm_mono_us() >= until_us)
			break;
		nng_msleep(RPC_CONNECT_STEP_MS);
	}
	return rpc_is_connected(rpc);
}

/* A standby refuses with JM_ENOTLEADER and does nothing: follow the leader
 * it names (rpc_leader.c) and send again, until the deadline. While no
 * broker leads (a failover under way) each round waits a little first. */
int rpc_call_cancellable(struct rpc *rpc, const struct proto_msg *req, uint32_t timeout_ms,
                         struct rpc_cancel *cancel, struct rpc_reply *reply, struct jm_err *err)
{
	uint64_t deadline_us = jm_mono_us() + (uint64_t)timeout_ms * 1000;
	struct jm_err local = {0};
	struct jm_err *e = err ? err : &local;
	for (unsigned round = 0;; round++) {
		if (round > 0 && cancel != NULL && rpc_cancel_is_fired(cancel)) {
			memset(reply, 0, sizeof *reply);
			return jm_err_set(e, JM_ECLOSED, "request to broker at %s: cancelled",
			                  atomic_load(&rpc->url));
		}
		/* With a list, a broker not connected within a moment is
		 * passed over before anything is sent to it. */
		if (rpc->urls_count > 1 && !rpc_wait_connected(rpc, deadline_us) &&
		    jm_mono_us() < deadline_us && round < RPC_FOLLOW_ROUNDS_MAX) {
			rpc_dial_next(rpc);
			continue;
		}
		int rc = rpc_call_to_one(rpc, req, deadline_us, timeout_ms, cancel, reply, e);
		uint64_t now = jm_mono_us();
		if (rc != JM_ENOTLEADER || now >= deadline_us || round >= RPC_FOLLOW_ROUNDS_MAX)
			return rc;
		const char *before = atomic_load(&rpc->url);
		rpc_follow_leader(rpc, e->msg);
		if (atomic_load(&rpc->url) == before || round > 0) {
			uint64_t pause_us = deadline_us - now;
			if (pause_us > RPC_FOLLOW_PAUSE_MS * 1000u)
				pause_us = RPC_FOLLOW_PAUSE_MS * 1000u;
			nng_msleep((nng_duration)(pause_us / 1000));
		}
	}
}

static int rpc_call_to_one(struct rpc *rpc, const struct proto_msg *req, uint64_t deadline_us,
                           uint32_t timeout_ms, struct rpc_cancel *cancel, struct rpc_reply *reply,
                           struct jm_err *err)
{
	if (rpc->token == NULL || req->type == PROTO_HELLO)
		return rpc_call_once(rpc, req, deadline_us, timeout_ms, cancel, reply, err);
	for (int attempt = 0;; attempt++) {
		int rc = rpc_hello_if_due(rpc, deadline_us, timeout_ms, cancel, err);
		if (rc != 0) {
			memset(reply, 0, sizeof *reply);
			return rc;
		}
		rc = rpc_call_once(rpc, req, deadline_us, timeout_ms, cancel, reply, err);
		if (rc != JM_EAUTH || attempt == 1 ||
		    (err != NULL && strncmp(err->msg, "authentication required", 23) != 0))
			return rc;
		atomic_store(&rpc->need_hello, true);
	}
}

static int rpc_call_once(struct rpc *rpc, const struct proto_msg *req, uint64_t deadline_us,
                         uint32_t timeout_ms, struct rpc_cancel *cancel, struct rpc_reply *reply,
                         struct jm_err *err)
{
	memset(reply, 0, sizeof *reply);

	nng_msg *msg = NULL;
	int rc = rpc_build_request(rpc, req, &msg, err);
	if (rc != 0)
		return rc;

	nng_aio *aio = NULL;
	int nng_rc = nng_aio_alloc(&aio, NULL, NULL);
	if (nng_rc != 0) {
		rc = rpc_fail(rpc, nng_rc, timeout_ms, err);
		goto fail_free_msg;
	}
	nng_ctx ctx;
	nng_rc = nng_ctx_open(&ctx, rpc->sock);
	if (nng_rc != 0) {
		rc = rpc_fail(rpc, nng_rc, timeout_ms, err);
		goto fail_free_aio;
	}

	nng_msg *reply_msg = NULL;
	nng_rc = rpc_exchange(ctx, aio, msg, deadline_us, cancel, &reply_msg);
	nng_ctx_close(ctx);
	nng_aio_free(aio);
	if (nng_rc == NNG_ETIMEDOUT && rpc->urls_count > 1)
		rpc_dial_after_timeout(rpc);
	else if (nng_rc == NNG_ETIMEDOUT || nng_rc == NNG_ECONNRESET)
		rpc_redial_if_down(rpc);
	if (nng_rc != 0)
		return rpc_fail(rpc, nng_rc, timeout_ms, err);

	return rpc_reply_take(rpc, reply_msg, reply, err);

fail_free_aio:
	nng_aio_free(aio);
fail_free_msg:
	nng_msg_free(msg);
	return rc;
}

int rpc_reply_take(const struct rpc *rpc, void *reply_nng_msg, struct rpc_reply *reply,
                   struct jm_err *err)
{
	nng_msg *reply_msg = reply_nng_msg;
	memset(reply, 0, sizeof *reply);
	/* The decoded message borrows from reply_msg's body, so the reply keeps
	 * reply_msg until rpc_reply_fini. */
	int rc = proto_decode(nng_msg_body(reply_msg), nng_msg_len(reply_msg), &reply->msg, err);
	if (rc != 0) {
		nng_msg_free(reply_msg);
		memset(reply, 0, sizeof *reply);
		jm_err_prefix(err, "reply from broker at %s", rpc->url);
		return rc;
	}
	reply->nng_msg_ = reply_msg;
	if (reply->msg.type != PROTO_ERROR)
		return 0;

	const struct proto_error *error = &reply->msg.u.error;
	if (error->code < 0)
		rc = jm_err_set(err, error->code, "%.*s", (int)error->message.len,
		                error->message.ptr ? (const char *)error->message.ptr : "");
	else
		rc = jm_err_set(err, JM_EPROTO,
		                "reply from broker at %s: ERROR with code %d; codes are negative",
		                rpc->url, (int)error->code);
	rpc_reply_fini(reply);
	return rc;
}

const char *rpc_broker_url(const char *explicit_url)
{
	if (explicit_url != NULL && explicit_url[0] != '\0')
		return explicit_url;
	const char *env = getenv("JOBMESH_BROKER");
	if (env != NULL && env[0] != '\0')
		return env;
	return RPC_DEFAULT_URL;
}
