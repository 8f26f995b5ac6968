/* The feed of prefetched deliveries (feed.h). */
#include "feed.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"

/* A prefetched delivery waits at most this long, and at most a tenth of
 * its run timeout: the broker's lease deadline (run timeout + lease grace,
 * 10 s by default) started when it was delivered. */
#define FEED_WAIT_MAX_MS 1000u
/* A fetch round trip counts at most this much toward the buffer's size. */
#define FEED_FETCH_SAMPLE_MAX_US 20000u

uint64_t feed_wait_budget_ms(uint64_t timeout_ms)
{
	if (timeout_ms == 0 || timeout_ms / 10 > FEED_WAIT_MAX_MS)
		return FEED_WAIT_MAX_MS;
	return timeout_ms / 10;
}

void feed_init(struct feed *f, uint32_t slots, uint32_t prefetch)
{
	memset(f, 0, sizeof *f);
	f->slots = slots;
	f->prefetch = prefetch;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->slot_cond, NULL);
	pthread_cond_init(&f->want_cond, NULL);
}

void feed_fini(struct feed *f)
{
	struct feed_item *left = feed_close(f);
	while (left != NULL) {
		struct feed_item *next = left->next;
		feed_item_done(f, left);
		left = next;
	}
	pthread_cond_destroy(&f->slot_cond);
	pthread_cond_destroy(&f->want_cond);
	pthread_mutex_destroy(&f->lock);
}

/* Moving averages weigh the newest sample 1/8. */
static uint64_t feed_average(uint64_t avg, uint64_t sample)
{
	return avg == 0 ? sample : avg - avg / 8 + sample / 8;
}

/* The buffer's size now: what the slots run in two fetch round trips, at
 * most prefetch. Nothing before both are measured: until a job has run,
 * any job may be a long one, and a buffered job that never starts still
 * costs an attempt if this process dies. */
static uint32_t feed_window_locked(const struct feed *f)
{
	if (f->hold_back || f->prefetch == 0 || f->run_avg_us == 0 || f->fetch_avg_us == 0)
		return 0;
	uint64_t window = 2 * (uint64_t)f->slots * f->fetch_avg_us / f->run_avg_us;
	return window < f->prefetch ? (uint32_t)window : f->prefetch;
}

/* How many more deliveries the worker can take now (under the lock): the
 * idle slots, plus the buffer's window, less what is buffered already. */
static uint32_t feed_want_locked(const struct feed *f)
{
	uint64_t capacity = (uint64_t)f->idle_slots + feed_window_locked(f);
	if (capacity <= f->buffered)
		return 0;
	uint64_t want = capacity - f->buffered;
	return want > PROTO_JOBS_PER_MESSAGE_MAX ? PROTO_JOBS_PER_MESSAGE_MAX : (uint32_t)want;
}

uint32_t feed_wait_want(struct feed *f)
{
	pthread_mutex_lock(&f->lock);
	uint32_t want;
	while (!f->closed && (want = feed_want_locked(f)) == 0) {
		f->fetch_waiting = true;
		pthread_cond_wait(&f->want_cond, &f->lock);
		f->fetch_waiting = false;
	}
	if (f->closed)
		want = 0;
	pthread_mutex_unlock(&f->lock);
	return want;
}

struct feed_batch *feed_batch_new(struct rpc_reply *reply)
{
	uint32_t count = reply->msg.u.jobs.jobs_count;
	struct feed_batch *batch = calloc(1, sizeof *batch + count * sizeof batch->items[0]);
	if (batch == NULL)
		return NULL;
	batch->reply = *reply;
	memset(reply, 0, sizeof *reply);
	batch->pending = count;
	for (uint32_t i = 0; i < count; i++) {
		batch->items[i].batch = batch;
		batch->items[i].delivery = &batch->reply.msg.u.jobs.jobs[i];
	}
	return batch;
}

void feed_batch_free(struct feed_batch *batch)
{
	if (batch == NULL)
		return;
	rpc_reply_fini(&batch->reply);
	free(batch);
}

static uint64_t feed_now_ms(void)
{
	return jm_mono_us() / 1000u;
}

int feed_put(struct feed *f, struct feed_batch *batch)
{
	uint64_t now_ms = feed_now_ms();
	uint32_t count = batch->reply.msg.u.jobs.jobs_count;
	pthread_mutex_lock(&f->lock);
	if (f->closed) {
		pthread_mutex_unlock(&f->lock);
		return JM_ECLOSED;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct feed_item *item = &batch->items[i];
		item->received_ms = now_ms;
		item->next = NULL;
		if (f->tail != NULL)
			f->tail->next = item;
		else
			f->head = item;
		f->tail = item;
	}
	f->buffered += count;
	/* One wake-up per delivery, at most one per idle slot. */
	if (count >= f->idle_slots) {
		pthread_cond_broadcast(&f->slot_cond);
	} else {
		for (uint32_t i = 0; i < count; i++)
			pthread_cond_signal(&f->slot_cond);
	}
	pthread_mutex_unlock(&f->lock);
	if (count == 0)
		feed_batch_free(batch);
	return 0;
}

void feed_note_fetch(struct feed *f, uint64_t rtt_us)
{
	pthread_mutex_lock(&f->lock);
	if (rtt_us > FEED_FETCH_SAMPLE_MAX_US)
		rtt_us = FEED_FETCH_SAMPLE_MAX_US;
	f->fetch_avg_us = feed_average(f->fetch_avg_us, rtt_us ? rtt_us : 1);
	pthread_mutex_unlock(&f->lock);
}

bool feed_is_empty(struct feed *f)
{
	pthread_mutex_lock(&f->lock);
	bool empty = f->buffered == 0;
	pthread_mutex_unlock(&f->lock);
	return empty;
}

struct feed_item *feed_take(struct feed *f, bool after_job, uint64_t run_us)
{
	pthread_mutex_lock(&f->lock);
	if (after_job) {
		f->hold_back = false;
		f->run_avg_us = feed_average(f->run_avg_us, run_us ? run_us : 1);
	}
	f->idle_slots++;
	if (f->fetch_waiting)
		pthread_cond_signal(&f->want_cond); /* it may want more now */
	while (!f->closed && f->head == NULL)
		pthread_cond_wait(&f->slot_cond, &f->lock);
	f->idle_slots--;
	struct feed_item *item = NULL;
	if (!f->closed) {
		item = f->head;
		f->head = item->next;
		if (f->head == NULL)
			f->tail = NULL;
		f->buffered--;
		item->next = NULL;
		uint64_t waited_ms = feed_now_ms() - item->received_ms;
		item->overdue = waited_ms > feed_wait_budget_ms(item->delivery->attrs.timeout_ms);
		if (item->overdue)
			f->hold_back = true;
	}
	pthread_mutex_unlock(&f->lock);
	return item;
}

struct feed_item *feed_close(struct feed *f)
{
	pthread_mutex_lock(&f->lock);
	f->closed = true;
	struct feed_item *left = f->head;
	f->head = f->tail = NULL;
	f->buffered = 0;
	pthread_cond_broadcast(&f->slot_cond);
	pthread_cond_broadcast(&f->want_cond);
	pthread_mutex_unlock(&f->lock);
	return left;
}

void feed_item_done(struct feed *f, struct feed_item *item)
{
	if (item == NULL)
		return;
	struct feed_batch *batch = item->batch;
	pthread_mutex_lock(&f->lock);
	bool last = --batch->pending == 0;
	pthread_mutex_unlock(&f->lock);
	if (last)
		feed_batch_free(batch);
}
