/* The settler's queue and thread (see settler.h). A FIFO list under one
 * mutex: a put appends and wakes the thread; the thread unlinks a batch
 * from the head, sends it without the lock, frees it, and wakes the puts
 * waiting for room. */
#include "settler.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct settle_outcome *settle_outcome_new(uint32_t outcome_kind, uint64_t job_id, uint64_t lease,
                                          uint64_t deadline_ms, struct held_lease *held,
                                          const void *data, size_t len)
{
	/* One more byte keeps an error text NUL-terminated. */
	struct settle_outcome *outcome = malloc(sizeof *outcome + len + 1);
	if (outcome == NULL)
		return NULL;
	outcome->next = NULL;
	outcome->job_id = job_id;
	outcome->lease = lease;
	outcome->deadline_ms = deadline_ms;
	outcome->held = held;
	outcome->outcome = outcome_kind;
	outcome->permanent = false;
	outcome->data_len = (uint32_t)len;
	if (len > 0)
		memcpy(outcome->data, data, len);
	outcome->data[len] = '\0';
	return outcome;
}

void settle_outcome_free(struct settle_outcome *outcome)
{
	free(outcome);
}

int settler_init(struct settler *s, size_t limit, settler_send_cb send_cb, void *cb_arg)
{
	memset(s, 0, sizeof *s);
	s->batch = calloc(SETTLE_BATCH_ITEMS_MAX, sizeof *s->batch);
	if (s->batch == NULL)
		return JM_ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->room, NULL);
	s->limit = limit > 0 ? limit : 1;
	s->send_cb = send_cb;
	s->cb_arg = cb_arg;
	return 0;
}

void settler_fini(struct settler *s)
{
	assert(!s->started);
	while (s->head != NULL) {
		struct settle_outcome *next = s->head->next;
		settle_outcome_free(s->head);
		s->head = next;
	}
	s->tail = NULL;
	s->queued = 0;
	free(s->batch);
	s->batch = NULL;
	pthread_cond_destroy(&s->room);
	pthread_cond_destroy(&s->work);
	pthread_mutex_destroy(&s->lock);
}

/* Caller holds the lock and the queue is not empty. Unlinks the next batch
 * into s->batch; returns its size (at least 1). */
static size_t settler_take_batch_locked(struct settler *s)
{
	size_t count = 0;
	size_t bytes = 0;
	while (s->head != NULL && count < SETTLE_BATCH_ITEMS_MAX) {
		struct settle_outcome *outcome = s->head;
		if (count > 0 && bytes + outcome->data_len > SETTLE_BATCH_BYTES_MAX)
			break;
		s->head = outcome->next;
		outcome->next = NULL;
		s->batch[count++] = outcome;
		bytes += outcome->data_len;
	}
	if (s->head == NULL)
		s->tail = NULL;
	s->queued -= count;
	return count;
}

static void *settler_main(void *arg)
{
	struct settler *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (s->head == NULL && !s->closing)
			pthread_cond_wait(&s->work, &s->lock);
		if (s->head == NULL)
			break; /* closing, and everything was sent */
		size_t count = settler_take_batch_locked(s);
		s->in_flight = count;
		pthread_mutex_unlock(&s->lock);

		s->send_cb(s->cb_arg, s->batch, count);
		for (size_t i = 0; i < count; i++) {
			settle_outcome_free(s->batch[i]);
			s->batch[i] = NULL;
		}

		pthread_mutex_lock(&s->lock);
		s->in_flight = 0;
		pthread_cond_broadcast(&s->room);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int settler_start(struct settler *s)
{
	assert(!s->started);
	int rc = pthread_create(&s->thread, NULL, settler_main, s);
	if (rc == 0)
		s->started = true;
	return rc;
}

void settler_put(struct settler *s, struct settle_outcome *outcome)
{
	outcome->next = NULL;
	pthread_mutex_lock(&s->lock);
	assert(s->started && !s->closing);
	while (s->queued + s->in_flight >= s->limit)
		pthread_cond_wait(&s->room, &s->lock);
	if (s->tail != NULL)
		s->tail->next = outcome;
	else
		s->head = outcome;
	s->tail = outcome;
	s->queued++;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
}

void settler_put_list(struct settler *s, struct settle_outcome *first, size_t count)
{
	if (count == 0)
		return;
	struct settle_outcome *last = first;
	while (last->next != NULL)
		last = last->next;
	pthread_mutex_lock(&s->lock);
	assert(s->started && !s->closing);
	while (s->queued + s->in_flight >= s->limit)
		pthread_cond_wait(&s->room, &s->lock);
	if (s->tail != NULL)
		s->tail->next = first;
	else
		s->head = first;
	s->tail = last;
	s->queued += count;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
}

bool settler_is_idle(struct settler *s)
{
	pthread_mutex_lock(&s->lock);
	bool idle = s->head == NULL && s->in_flight == 0;
	pthread_mutex_unlock(&s->lock);
	return idle;
}

void settler_close(struct settler *s)
{
	if (!s->started)
		return;
	pthread_mutex_lock(&s->lock);
	s->closing = true;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	s->started = false;
}
