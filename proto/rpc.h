/* One request, one reply: the client side of the wire, shared by the client
 * and worker SDKs.
 *
 * An rpc owns an NNG REQ socket dialled to the broker with reconnect
 * backoff. NNG_OPT_REQ_RESENDTIME is disabled (a REQ that resends by itself
 * after 60 s would park a fetch twice and lose the jobs handed to the stale
 * copy); NNG_OPT_RECVMAXSZ is set to PROTO_MESSAGE_MAX. Every call opens its
 * own nng_ctx, so calls from many threads run concurrently. */
#ifndef JM_PROTO_RPC_H
#define JM_PROTO_RPC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "message.h"
#include "tls.h"

struct rpc;

/* Dials url in the background (non-blocking). */
int rpc_open(struct rpc **out, const char *url, struct jm_err *err);

/* What a client presents: a token (the secret of an --auth entry), sent in
 * a HELLO on every new connection, and TLS files for tls+tcp:// and wss://
 * URLs. NULL fields (or sec NULL) fall back to $JOBMESH_TOKEN,
 * $JOBMESH_TLS_CA, $JOBMESH_TLS_CERT, $JOBMESH_TLS_KEY. */
struct rpc_security {
	const char *token;
	struct jm_tls tls;
};
int rpc_open_secure(struct rpc **out, const char *url, const struct rpc_security *sec,
                    struct jm_err *err);
void rpc_close(struct rpc *rpc); /* accepts NULL */

/* A reply: the decoded message borrows from the received NNG message that
 * it keeps; rpc_reply_fini releases both. */
struct rpc_reply {
	struct proto_msg msg;
	void *nng_msg_; /* nng_msg * */
};
void rpc_reply_fini(struct rpc_reply *reply); /* accepts zeroed */

/* Sends req and waits up to timeout_ms for its reply. Returns 0 with *reply
 * decoded, or: JM_ETIMEDOUT, JM_ETRANSPORT, a decode error; and if the broker
 * answered with an ERROR message, that message's code, with its text in err
 * (reply then needs no fini). */
int rpc_call(struct rpc *rpc, const struct proto_msg *req, uint32_t timeout_ms,
             struct rpc_reply *reply, struct jm_err *err);

/* A token that lets another thread cut calls short: once rpc_cancel_fire()
 * ran, the call in progress with it returns JM_ECLOSED at once, and so does
 * every later call with it, without sending. For a worker that stops while
 * its broker is unreachable: its fetches must not wait out their timeout. */
struct rpc_cancel {
	pthread_mutex_t lock;
	bool fired;
	void *aio_; /* nng_aio * of the call in progress, or NULL */
};
void rpc_cancel_init(struct rpc_cancel *cancel);
void rpc_cancel_fini(struct rpc_cancel *cancel);
void rpc_cancel_fire(struct rpc_cancel *cancel);

/* rpc_call that cancel (may be NULL) can cut short. */
int rpc_call_cancellable(struct rpc *rpc, const struct proto_msg *req, uint32_t timeout_ms,
                         struct rpc_cancel *cancel, struct rpc_reply *reply, struct jm_err *err);

/* Many calls in flight from one thread (rpc_pool.c): a pool of contexts,
 * each with its own aio. rpc_pool_call encodes req (the caller's buffers
 * are free again on return), waits while every context is busy, sends, and
 * returns; done then runs once on an NNG thread with the outcome as
 * rpc_call gives it (reply NULL on failure; valid only during done; done
 * must not block or call rpc_pool_call's waiting paths of the same pool). */
struct rpc_pool;
typedef void (*rpc_done_fn)(void *arg, int rc, const struct rpc_reply *reply,
                            const struct jm_err *err);
int rpc_pool_open(struct rpc *rpc, unsigned contexts, struct rpc_pool **out, struct jm_err *err);
int rpc_pool_call(struct rpc_pool *pool, const struct proto_msg *req, uint32_t timeout_ms,
                  rpc_done_fn done, void *arg, struct jm_err *err);
/* rpc_pool_call with flags: RPC_POOL_IDEMPOTENT says the request may be
 * acted on twice without harm (a SUBMIT whose jobs all carry idempotency
 * keys), so it is also sent again after a dropped connection or a reply
 * that timed out, within its deadline (rpc_pool.c: following the leader).
 * Without it only what was certainly not acted on is sent again. done then
 * runs on an NNG thread or the pool's follow thread. */
#define RPC_POOL_IDEMPOTENT 1u
int rpc_pool_call_flags(struct rpc_pool *pool, const struct proto_msg *req, uint32_t timeout_ms,
                        unsigned flags, rpc_done_fn done, void *arg, struct jm_err *err);
/* Waits until no call of the pool is in flight. */
void rpc_pool_drain(struct rpc_pool *pool);
/* Drains, then frees the pool (not the rpc). Accepts NULL. */
void rpc_pool_close(struct rpc_pool *pool);

/* Whether rpc knows more than one broker (a list, or a leader a standby
 * named): it follows the leader (rpc_leader.c). */
bool rpc_has_list(struct rpc *rpc);

/* Resolves the broker URL: explicit if non-NULL and non-empty, else
 * $JOBMESH_BROKER, else "tcp://127.0.0.1:7400". */
const char *rpc_broker_url(const char *explicit_url);

#endif
