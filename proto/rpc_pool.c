/* Many calls in flight from one thread (see rpc.h): a fixed set of slots,
 * each an nng_ctx and an nng_aio whose callback drives send, then receive,
 * then the caller's done. A free list under the pool's lock hands slots
 * out; rpc_pool_call waits on a condition variable while all are busy, so
 * a producer is throttled to `contexts` requests in flight. */
#include "rpc_internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct rpc_slot {
	struct rpc_pool *pool;
	nng_ctx ctx;
	nng_aio *aio;
	bool sending;
	uint32_t timeout_ms;
	rpc_done_fn done;
	void *arg;
	struct rpc_slot *next_free;
};

struct rpc_pool {
	struct rpc *rpc;
	unsigned count;
	struct rpc_slot *slots;
	pthread_mutex_t lock;
	pthread_cond_t changed; /* a slot came back */
	struct rpc_slot *free_list;
	unsigned in_flight;
};

static void slot_release(struct rpc_slot *slot)
{
	struct rpc_pool *pool = slot->pool;
	pthread_mutex_lock(&pool->lock);
	slot->next_free = pool->free_list;
	pool->free_list = slot;
	pool->in_flight--;
	pthread_cond_broadcast(&pool->changed);
	pthread_mutex_unlock(&pool->lock);
}

static void slot_cb(void *arg)
{
	struct rpc_slot *slot = arg;
	struct rpc_pool *pool = slot->pool;
	int nng_rc = nng_aio_result(slot->aio);
	if (nng_rc == 0 && slot->sending) {
		slot->sending = false;
		nng_ctx_recv(slot->ctx, slot->aio);
		return;
	}
	if (nng_rc != 0 && slot->sending) {
		nng_msg *unsent = nng_aio_get_msg(slot->aio);
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
	rpc_done_fn done = slot->done;
	void *done_arg = slot->arg;
	done(done_arg, rc, rc == 0 ? &reply : NULL, &err);
	if (rc == 0)
		rpc_reply_fini(&reply);
	slot_release(slot);
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
	*out = pool;
	return 0;
}

int rpc_pool_call(struct rpc_pool *pool, const struct proto_msg *req, uint32_t timeout_ms,
                  rpc_done_fn done, void *arg, struct jm_err *err)
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
	pthread_mutex_lock(&pool->lock);
	while (pool->free_list == NULL)
		pthread_cond_wait(&pool->changed, &pool->lock);
	struct rpc_slot *slot = pool->free_list;
	pool->free_list = slot->next_free;
	pool->in_flight++;
	pthread_mutex_unlock(&pool->lock);
	slot->sending = true;
	slot->timeout_ms = timeout_ms;
	slot->done = done;
	slot->arg = arg;
	/* One timeout covers the send and, set again, the reply: a send waits
	 * only while no broker is connected. */
	nng_aio_set_timeout(slot->aio, (nng_duration)timeout_ms);
	nng_aio_set_msg(slot->aio, msg);
	nng_ctx_send(slot->ctx, slot->aio);
	return 0;
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
	for (unsigned i = 0; i < pool->count; i++) {
		nng_aio_stop(pool->slots[i].aio);
		nng_ctx_close(pool->slots[i].ctx);
		nng_aio_free(pool->slots[i].aio);
	}
	pthread_cond_destroy(&pool->changed);
	pthread_mutex_destroy(&pool->lock);
	free(pool->slots);
	free(pool);
}
