/* What rpc.c and rpc_pool.c share; not for the SDKs. */
#ifndef JM_PROTO_RPC_INTERNAL_H
#define JM_PROTO_RPC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "rpc.h"

struct rpc {
	nng_socket sock;
	char *url;
	/* With a token, each new connection (pipe) first carries a HELLO with
	 * it: the dialer reconnects by itself, so a pipe added sets need_hello
	 * and the next call sends the HELLO first. */
	char *token;
	atomic_bool need_hello;
	nng_tls_config *tls;
	/* Connections (pipes) open now, and the dialer that makes them:
	 * replaced when a call fails with none open (rpc_redial_if_down). */
	atomic_int pipes;
	pthread_mutex_t dial_lock;
	nng_dialer dialer;
};

/* Maps an nng failure of a call to our code and text naming the broker. */
int rpc_fail(const struct rpc *rpc, int nng_rc, uint32_t timeout_ms, struct jm_err *err);
/* With a token, sends the HELLO a new connection needs before anything
 * else (synchronously; nothing when none is due). For callers that send on
 * their own contexts (rpc_pool.c). */
int rpc_ensure_hello(struct rpc *rpc, uint32_t timeout_ms, struct jm_err *err);
/* Encodes req into a new nng message; 0 or a JM_E code with err set. */
int rpc_build_request(const struct rpc *rpc, const struct proto_msg *req, nng_msg **out,
                      struct jm_err *err);
/* Decodes the received reply_nng_msg (an nng_msg *, owned from here on)
 * into *reply as rpc_call returns it: 0, a decode error, or the code of a
 * broker ERROR (then reply needs no fini). */
int rpc_reply_take(const struct rpc *rpc, void *reply_nng_msg, struct rpc_reply *reply,
                   struct jm_err *err);

#endif
