/* What rpc.c and rpc_pool.c share; not for the SDKs. */
#ifndef JM_PROTO_RPC_INTERNAL_H
#define JM_PROTO_RPC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "rpc.h"

#define RPC_URLS_MAX 16
#define RPC_PIPES_MAX 8

struct rpc {
	nng_socket sock;
	/* The broker dialled now: one of urls, swapped under dial_lock when a
	 * standby names the leader or the broker dialled is down (rpc_leader.c).
	 * The strings live until rpc_close, so a reader may keep a stale one. */
	_Atomic(const char *) url;
	char *urls[RPC_URLS_MAX]; /* --broker URL1,URL2,... then leaders named */
	/* The last broker that refused as a standby, when its dialer was
	 * replaced to follow the leader (cleared when dialled again): a
	 * request still out to it when its connection was closed by that
	 * replacement was not acted on (a standby does nothing), so
	 * rpc_pool.c sends it again. Set before the URL changes. */
	_Atomic(const char *) refused_url;
	unsigned urls_count;
	/* Under dial_lock: until when each of urls counts as down (it did not
	 * connect), so a standby naming a dead leader is not followed back to
	 * it again and again while the leader's lease runs out. */
	uint64_t urls_down_until_us[RPC_URLS_MAX];
	/* With a token, each new connection (pipe) first carries a HELLO with
	 * it: the dialer reconnects by itself, so a pipe added sets need_hello
	 * and the next call sends the HELLO first. */
	char *token;
	atomic_bool need_hello;
	nng_tls_config *tls;
	/* Connections (pipes) open now, and the dialer that makes them:
	 * replaced when a call fails with none open (rpc_redial_if_down) or
	 * to follow the leader (rpc_leader.c). Only the current dialer's pipes
	 * count: the ids live in a set under pipes_lock, which the pipe
	 * callbacks and rpc_dial take, so a late callback of a replaced
	 * dialer can neither count nor leave a count behind. pipes_lock is
	 * never held across an nng call. */
	pthread_mutex_t pipes_lock;
	uint32_t pipe_ids[RPC_PIPES_MAX];
	unsigned pipes_count;
	uint32_t dialer_id; /* the current dialer's nng id; 0 while replaced */
	/* Counted connections closed so far. NNG 1.5.2 orphans a request
	 * whose connection closed between its send and its receive (with
	 * resending off, nothing fails it): rpc_pool.c aborts a receive that
	 * began before a close. */
	atomic_uint pipes_lost;
	pthread_mutex_t dial_lock;
	nng_dialer dialer;
};

/* rpc_leader.c: a list of brokers, one of which leads (README, "High
 * availability"). Splits list at commas into rpc->urls and picks the
 * first: 0, JM_EINVAL (an empty entry, too many) or JM_ENOMEM. */
int rpc_urls_parse(struct rpc *rpc, const char *list, struct jm_err *err);
void rpc_urls_free(struct rpc *rpc);
/* Whether a connection of the current dialer is open. */
bool rpc_is_connected(struct rpc *rpc);
/* Creates and starts rpc's dialer to rpc->url; 0 or an nng error. */
int rpc_dial(struct rpc *rpc);
/* After a call was refused with JM_ENOTLEADER (text in refusal): dials the
 * leader the text names (added to the list if new); naming none, stays. */
void rpc_follow_leader(struct rpc *rpc, const char *refusal);
/* After a call failed with no connection open: the next broker of the
 * list (a list of one redials the same; see rpc_redial_if_down). */
void rpc_dial_next(struct rpc *rpc);
/* With a list, after a call timed out: the next broker, connected or not. */
void rpc_dial_after_timeout(struct rpc *rpc);

/* Milliseconds left until deadline_us (jm_mono_us), rounded up and clamped
 * to nng's duration range: at least 1 while before it, 0 once it passed. */
nng_duration rpc_remaining_ms(uint64_t deadline_us);
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
