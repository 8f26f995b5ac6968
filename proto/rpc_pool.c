/* Many calls in flight from one thread (see rpc.h): a fixed set of slots,
 * each an nng_ctx and an nng_aio whose callback drives send, then receive,
 * then the caller's done. A free list under the pool's lock hands slots
 * out; rpc_pool_call waits on a condition variable while all are busy, so
 * a producer is throttled to `contexts` requests in flight.
 *
 * Following the leader (README, "High availability"): a slot keeps a copy
 * of its request until it is answered, so a request that was certainly not
 * acted on is sent again, as the same bytes, within its deadline:
 * - refused with JM_ENOTLEADER (a standby did nothing): to the leader the
 *   refusal names (rpc_follow_leader), or after a pause while none leads;
 * - with a list of brokers, not sent because the broker dialled did not
 *   connect within RPC_POOL_CONNECT_WAIT_MS: to the next broker;
 * - out to a standby when following the leader closed its connection
 *   (rpc_internal.h, refused_url): it would have been refused;
 * - with RPC_POOL_IDEMPOTENT (every job carries an idempotency key), also
 *   when the connection dropped or the reply timed out after the send:
 *   the broker may have done it, and the key makes the resend return the
 *   same ids instead of admitting the jobs twice.
 * Anything else reaches the caller's done as before. Redialling can block
 * (nng_dialer_close), so it never runs on an NNG callback thread: the
 * callback queues the slot for the pool's follow thread, which moves the
 * dialer once per change (a slot whose broker was already replaced since
 * it was sent is simply sent again), pauses once for all slots while no
 * broker leads, and sends them again.
 *
 * Orphans: NNG 1.5.2 (resending off) fails a pending receive whose
 * connection closed, but not one posted just after: that one would wait
 * out its whole deadline on a dead leader. The follow thread therefore
 * aborts, every RPC_POOL_SCAN_MS, each receive of a request sent before a
 * connection closed (rpc->pipes_lost moved), as a dropped connection
 * (NNG_ECONNRESET): resent when that is safe, else failed at once.
 *
 * Order: requests in flight together travel on separate contexts and were
 * never ordered among themselves; a resent request goes after those sent
 * meanwhile. Requests the caller makes one after another's callback keep
 * their order. */
#include "rpc_internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/supplemental/util/platform.h>

#include "clock.h"

#define RPC_POOL_CONNECT_WAIT_MS 1000 /* with a list: then the next broker */
#define RPC_POOL_PAUSE_MS 200         /* between rounds while no broker leads */
#define RPC_POOL_ROUNDS_MAX 200       /* resends of one request, whatever the clock */
#define RPC_POOL_SCAN_MS 200          /* how soon an orphaned receive is aborted */

enum slot_retry {
	SLOT_RETRY_FOLLOW,   /* refused by a standby: err names the leader, or none */
	SLOT_RETRY_NEXT,     /* not sent: the broker did not connect */
	SLOT_RETRY_REDIAL,   /* reply timed out (idempotent): the broker may be gone */
	SLOT_RETRY_RECONNECT /* connection dropped (idempotent) */
};

struct rpc_slot {
	struct rpc_pool *pool;
	nng_ctx ctx;
	nng_aio *aio;
	bool sending;
	bool receiving;        /* under the pool's lock: a receive is posted */
	unsigned lost_at_send; /* rpc->pipes_lost when it was last sent */
	bool idempotent;
	uint32_t timeout_ms;
	uint64_t deadline_us;
	unsigned rounds;
	nng_msg *request;     /* a copy, owned until the slot is answered */
	const char *sent_url; /* the broker it was last sent to */
	enum slot_retry retry;
	struct jm_err err; /* why it is queued for a resend */
	rpc_done_fn done;
	void *arg;
	struct rpc_slot *next_free; /* also links the follow thread's queue */
};

struct rpc_pool {
	struct rpc *rpc;
	unsigned count;
	struct rpc_slot *slots;
	pthread_mutex_t lock;
	pthread_cond_t changed; /* a slot came back */
	struct rpc_slot *free_list;
	unsigned in_flight;
	/* The follow thread's queue (under lock) and its wake-up. */
	struct rpc_slot *retry_head, *retry_tail;
	pthread_cond_t retry_wake;
	bool stopping;
	bool thread_started;
	pthread_t thread;
};

static void slot_release(struct rpc_slot *slot)
{
	struct rpc_pool *pool = slot->pool;
	if (slot->request != NULL) {
		nng_msg_free(slot->request);
		slot->request = NULL;
	}
	pthread_mutex_lock(&pool->lock);
	slot->next_free = pool->free_list;
	pool->free_list = slot;
	pool->in_flight--;
	pthread_cond_broadcast(&pool->changed);
	pthread_mutex_unlock(&pool->lock);
}

/* Sends msg (the request, or a copy of slot->request on a resend; given
 * away) to the broker dialled now. */
static void slot_send(struct rpc_slot *slot, nng_msg *msg)
{
	struct rpc *rpc = slot->pool->rpc;
	nng_duration wait_ms = rpc_remaining_ms(slot->deadline_us);
	/* With a list, a send that finds no connection within a moment moves
	 * on to the next broker (SLOT_RETRY_NEXT) rather than wait it all. */
	if (rpc->urls_count > 1 && wait_ms > RPC_POOL_CONNECT_WAIT_MS)
		wait_ms = RPC_POOL_CONNECT_WAIT_MS;
	slot->sending = true;
	slot->sent_url = atomic_load(&rpc->url);
	slot->lost_at_send = atomic_load(&rpc->pipes_lost);
	nng_aio_set_timeout(slot->aio, wait_ms == 0 ? 1 : wait_ms);
	nng_aio_set_msg(slot->aio, msg);
	nng_ctx_send(slot->ctx, slot->aio);
}

/* Hands the outcome to the caller and frees the slot. */
static void slot_finish(struct rpc_slot *slot, int rc, const struct rpc_reply *reply,
                        const struct jm_err *err)
{
	slot->done(slot->arg, rc, reply, err);
	slot_release(slot);
}

/* Whether the outcome is one to send again, and how (see the top). */
static bool slot_wants_retry(struct rpc_slot *slot, int nng_rc, bool was_sending, int rc)
{
	if (slot->request == NULL || slot->rounds >= RPC_POOL_ROUNDS_MAX ||
	    jm_mono_us() >= slot->deadline_us)
		return false;
	if (nng_rc == 0) {
		slot->retry = SLOT_RETRY_FOLLOW;
		return rc == JM_ENOTLEADER;
	}
	if (was_sending) {
		slot->retry = SLOT_RETRY_NEXT;
		return nng_rc == NNG_ETIMEDOUT && slot->pool->rpc->urls_count > 1;
	}
	/* Cut by our own move away from a standby that had refused: it did
	 * nothing with this request either (rpc_internal.h, refused_url). */
	struct rpc *rpc = slot->pool->rpc;
	if ((nng_rc == NNG_ECONNRESET || nng_rc == NNG_ECONNSHUT) &&
	    slot->sent_url == atomic_load(&rpc->refused_url)) {
		slot->retry = SLOT_RETRY_RECONNECT;
		return true;
	}
	if (!slot->idempotent)
		return false;
	slot->retry = nng_rc == NNG_ETIMEDOUT ? SLOT_RETRY_REDIAL : SLOT_RETRY_RECONNECT;
	return nng_rc == NNG_ETIMEDOUT || nng_rc == NNG_ECONNRESET || nng_rc == NNG_ECONNSHUT;
}

static void slot_queue_retry(struct rpc_slot *slot)
{
	struct rpc_pool *pool = slot->pool;
	slot->next_free = NULL;
	pthread_mutex_lock(&pool->lock);
	if (pool->retry_tail)
		pool->retry_tail->next_free = slot;
	else
		pool->retry_head = slot;
	pool->retry_tail = slot;
	pthread_cond_signal(&pool->retry_wake);
	pthread_mutex_unlock(&pool->lock);
}

static void slot_cb(void *arg)
{
	struct rpc_slot *slot = arg;
	struct rpc_pool *pool = slot->pool;
	int nng_rc = nng_aio_result(slot->aio);
	bool was_sending = slot->sending;
	if (nng_rc == 0 && slot->sending) {
		slot->sending = false;
		/* The send may have had a shorter wait (a list): the reply gets
		 * what is left of the deadline. Posted under the lock, so that
		 * the orphan scan never aborts before the receive exists. */
		nng_duration wait_ms = rpc_remaining_ms(slot->deadline_us);
		nng_aio_set_timeout(slot->aio, wait_ms == 0 ? 1 : wait_ms);
		pthread_mutex_lock(&pool->lock);
		slot->receiving = true;
		nng_ctx_recv(slot->ctx, slot->aio);
		pthread_mutex_unlock(&pool->lock);
		return;
	}
	pthread_mutex_lock(&pool->lock);
	slot->receiving = false;
	pthread_mutex_unlock(&pool->lock);
	if (nng_rc != 0 && slot->sending) {
		nng_msg *unsent = nng_aio_get_msg(slot->aio);
		nng_aio_set_msg(slot->aio, NULL);
		if (unsent != NULL)
			nng_msg_free(unsent);
	}
	struct jm_err err;
	jm_err_clear(&err);
	struct rpc_reply reply;
	memset(&reply, 0, sizeof reply);
	int rc;
	if (nng_rc != 0) {
		rc = rpc_fail(pool->rpc, nng_rc, slot->timeout_ms, &err);
	} else {
		nng_msg *msg = nng_aio_get_msg(slot->aio);
		nng_aio_set_msg(slot->aio, NULL);
		rc = rpc_reply_take(pool->rpc, msg, &reply, &err);
	}
	if (slot_wants_retry(slot, nng_rc, was_sending, rc)) {
		slot->err = err;
		slot_queue_retry(slot);
		return;
	}
	slot_finish(slot, rc, rc == 0 ? &reply : NULL, &err);
	if (rc == 0)
		rpc_reply_fini(&reply);
}

/* On the follow thread: moves the dialer as the slot's outcome asks,
 * unless another slot moved it since this one was sent. True when the
 * broker dialled did not change, so the resend should wait a little (no
 * broker leads, or the one named is the one that refused). */
static bool slot_redirect(struct rpc_slot *slot)
{
	struct rpc *rpc = slot->pool->rpc;
	if (atomic_load(&rpc->url) != slot->sent_url)
		return false;
	switch (slot->retry) {
	case SLOT_RETRY_FOLLOW:
		rpc_follow_leader(rpc, slot->err.msg);
		break;
	case SLOT_RETRY_NEXT:
		/* Not sent within a second: the next broker even while a
		 * connection counts as open (seen after a kill -9 of the
		 * leader: its pipe's removal never counted, so every send
		 * waited on it; rpc_dial_after_timeout). */
		rpc_dial_after_timeout(rpc);
		break;
	case SLOT_RETRY_RECONNECT:
		rpc_dial_next(rpc); /* only when no connection is open */
		break;
	case SLOT_RETRY_REDIAL:
		if (rpc->urls_count > 1)
			rpc_dial_after_timeout(rpc);
		else
			rpc_dial_next(rpc);
		break;
	}
	return atomic_load(&rpc->url) == slot->sent_url && slot->retry == SLOT_RETRY_FOLLOW;
}

/* On the follow thread: sends the slot's request again, or gives the
 * caller the outcome that queued it once its deadline has passed. */
static void slot_resend(struct rpc_slot *slot)
{
	struct rpc *rpc = slot->pool->rpc;
	if (jm_mono_us() >= slot->deadline_us) {
		slot_finish(slot, slot->err.code, NULL, &slot->err);
		return;
	}
	struct jm_err err;
	jm_err_clear(&err);
	int rc = rpc_ensure_hello(rpc, (uint32_t)rpc_remaining_ms(slot->deadline_us), &err);
	nng_msg *copy = NULL;
	if (rc == 0 && nng_msg_dup(&copy, slot->request) != 0)
		rc = jm_err_set(&err, JM_ENOMEM, "request to broker at %s: out of memory",
		                atomic_load(&rpc->url));
	if (rc != 0) {
		slot_finish(slot, rc, NULL, &err);
		return;
	}
	slot->rounds++;
	slot_send(slot, copy);
}

/* Under the pool's lock: aborts the receives of requests sent before a
 * connection closed (see the top: orphans). */
static void abort_orphans(struct rpc_pool *pool)
{
	unsigned lost = atomic_load(&pool->rpc->pipes_lost);
	for (unsigned i = 0; i < pool->count; i++) {
		struct rpc_slot *slot = &pool->slots[i];
		if (slot->receiving && slot->lost_at_send != lost) {
			slot->receiving = false;
			nng_aio_abort(slot->aio, NNG_ECONNRESET);
		}
	}
}

static void *follow_thread(void *arg)
{
	struct rpc_pool *pool = arg;
	for (;;) {
		pthread_mutex_lock(&pool->lock);
		while (!pool->stopping && pool->retry_head == NULL) {
			struct timespec until =
			    jm_timespec_of_us(jm_mono_us() + RPC_POOL_SCAN_MS * 1000u);
			pthread_cond_timedwait(&pool->retry_wake, &pool->lock, &until);
			abort_orphans(pool);
		}
		struct rpc_slot *batch = pool->retry_head;
		pool->retry_head = pool->retry_tail = NULL;
		bool stopping = pool->stopping;
		pthread_mutex_unlock(&pool->lock);
		if (batch == NULL && stopping)
			return NULL;
		bool pause = false;
		for (struct rpc_slot *s = batch; s != NULL; s = s->next_free)
			pause |= slot_redirect(s);
		if (pause)
			nng_msleep(RPC_POOL_PAUSE_MS); /* once for the whole batch */
		while (batch != NULL) {
			struct rpc_slot *s = batch;
			batch = s->next_free;
			slot_resend(s);
		}
	}
}

int rpc_pool_open(struct rpc *rpc, unsigned contexts, struct rpc_pool **out, struct jm_err *err)
{
	*out = NULL;
	if (contexts == 0)
		return jm_err_set(err, JM_EINVAL, "rpc pool: 0 contexts; give 1 or more");
	struct rpc_pool *pool = calloc(1, sizeof *pool);
	struct rpc_slot *slots = calloc(contexts, sizeof *slots);
	if (pool == NULL || slots == NULL) {
		free(pool);
		free(slots);
		return jm_err_set(err, JM_ENOMEM, "rpc pool of %u contexts: out of memory",
		                  contexts);
	}
	pool->rpc = rpc;
	pool->slots = slots;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->changed, NULL);
	/* retry_wake times out on CLOCK_MONOTONIC */
	jm_cond_init_monotonic(&pool->retry_wake);
	for (unsigned i = 0; i < contexts; i++) {
		struct rpc_slot *slot = &slots[i];
		slot->pool = pool;
		int nng_rc = nng_aio_alloc(&slot->aio, slot_cb, slot);
		if (nng_rc == 0) {
			nng_rc = nng_ctx_open(&slot->ctx, rpc->sock);
			if (nng_rc != 0) {
				nng_aio_free(slot->aio);
				slot->aio = NULL;
			}
		}
		if (nng_rc != 0) {
			int rc = rpc_fail(rpc, nng_rc, 0, err);
			pool->count = i;
			rpc_pool_close(pool);
			return rc;
		}
		slot->next_free = pool->free_list;
		pool->free_list = slot;
		pool->count = i + 1;
	}
	if (pthread_create(&pool->thread, NULL, follow_thread, pool) != 0) {
		rpc_pool_close(pool);
		return jm_err_set(err, JM_ENOMEM, "rpc pool: cannot start its follow thread");
	}
	pool->thread_started = true;
	*out = pool;
	return 0;
}

int rpc_pool_call_flags(struct rpc_pool *pool, const struct proto_msg *req, uint32_t timeout_ms,
                        unsigned flags, rpc_done_fn done, void *arg, struct jm_err *err)
{
	/* A connection the dialer (re)made carries the token first. A request
	 * already in flight when that happens may be refused for want of it
	 * (JM_EAUTH, nothing done): the caller's callback sees it. */
	int rc = rpc_ensure_hello(pool->rpc, timeout_ms, err);
	if (rc != 0)
		return rc;
	nng_msg *msg = NULL;
	rc = rpc_build_request(pool->rpc, req, &msg, err);
	if (rc != 0)
		return rc;
	nng_msg *copy = NULL;
	if (nng_msg_dup(&copy, msg) != 0) {
		nng_msg_free(msg);
		return jm_err_set(err, JM_ENOMEM, "request %s to broker at %s: out of memory",
		                  proto_type_name(req->type), atomic_load(&pool->rpc->url));
	}
	uint64_t deadline_us = jm_mono_us() + (uint64_t)timeout_ms * 1000;
	pthread_mutex_lock(&pool->lock);
	while (pool->free_list == NULL)
		pthread_cond_wait(&pool->changed, &pool->lock);
	struct rpc_slot *slot = pool->free_list;
	pool->free_list = slot->next_free;
	pool->in_flight++;
	pthread_mutex_unlock(&pool->lock);
	slot->request = copy;
	slot->idempotent = (flags & RPC_POOL_IDEMPOTENT) != 0;
	slot->timeout_ms = timeout_ms;
	slot->deadline_us = deadline_us;
	slot->rounds = 0;
	slot->done = done;
	slot->arg = arg;
	slot_send(slot, msg);
	return 0;
}

int rpc_pool_call(struct rpc_pool *pool, const struct proto_msg *req, uint32_t timeout_ms,
                  rpc_done_fn done, void *arg, struct jm_err *err)
{
	return rpc_pool_call_flags(pool, req, timeout_ms, 0, done, arg, err);
}

void rpc_pool_drain(struct rpc_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	while (pool->in_flight > 0)
		pthread_cond_wait(&pool->changed, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
}

void rpc_pool_close(struct rpc_pool *pool)
{
	if (pool == NULL)
		return;
	rpc_pool_drain(pool);
	if (pool->thread_started) {
		pthread_mutex_lock(&pool->lock);
		pool->stopping = true;
		pthread_cond_signal(&pool->retry_wake);
		pthread_mutex_unlock(&pool->lock);
		pthread_join(pool->thread, NULL);
	}
	for (unsigned i = 0; i < pool->count; i++) {
		nng_aio_stop(pool->slots[i].aio);
		nng_ctx_close(pool->slots[i].ctx);
		nng_aio_free(pool->slots[i].aio);
	}
	pthread_cond_destroy(&pool->retry_wake);
	pthread_cond_destroy(&pool->changed);
	pthread_mutex_destroy(&pool->lock);
	free(pool->slots);
	free(pool);
}
