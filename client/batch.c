/* Batches in the SDK: one batch's status, every running batch, and waiting
 * for a batch to finish.
 *
 * jm_client_wait_batch never depends on one event arriving (PUB drops a
 * slow subscriber's messages): it subscribes first, then reads the status,
 * and re-reads it whenever an event for the batch arrives and at least
 * every BATCH_RECHECK_MS, so a dropped event costs at most that long. */
#include <jobmesh/client.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_internal.h"
#include "clock.h"

_Static_assert(JM_BATCH_ERRORS_MAX == PROTO_BATCH_ERRORS_MAX, "client.h and message.h disagree");
_Static_assert((int)JM_BATCH_FAILED == (int)PROTO_BATCH_FAILED, "batch states disagree");

#define BATCH_RECHECK_MS 1000u

const char *jm_batch_state_name(int state)
{
	switch (state) {
	case JM_BATCH_RUNNING:
		return "running";
	case JM_BATCH_COMPLETED:
		return "completed";
	case JM_BATCH_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}

void jm_batch_info_fini(jm_batch_info *info)
{
	if (info == NULL)
		return;
	free(info->current_operation);
	for (size_t i = 0; i < info->errors_count; i++)
		free(info->errors[i].text);
	free(info->errors);
	info->current_operation = NULL;
	info->errors = NULL;
	info->errors_count = 0;
}

void jm_batch_infos_free(jm_batch_info *batches, size_t count)
{
	if (batches == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		jm_batch_info_fini(&batches[i]);
	free(batches);
}

/* Fills *out (zeroed) from b. On JM_ENOMEM out's owned fields are for
 * jm_batch_info_fini. The errors list is bounded by the decoder
 * (PROTO_BATCH_ERRORS_MAX), and bounded again here. */
static int batch_from_proto(const struct proto_batch_info *b, jm_batch_info *out)
{
	out->id = b->batch_id;
	out->state = (int)b->state;
	out->total = b->total;
	out->completed = b->completed;
	out->failed = b->failed;
	out->cancelled = b->cancelled;
	out->active = b->active;
	out->created_us = b->created_us;
	out->finished_us = b->finished_us;
	out->current_operation = client_dup_bytes(&b->current_operation);
	if (out->current_operation == NULL)
		return JM_ENOMEM;
	size_t errors_count =
	    b->errors_count < JM_BATCH_ERRORS_MAX ? b->errors_count : JM_BATCH_ERRORS_MAX;
	if (errors_count == 0)
		return 0;
	out->errors = calloc(errors_count, sizeof *out->errors);
	if (out->errors == NULL)
		return JM_ENOMEM;
	for (size_t i = 0; i < errors_count; i++) {
		out->errors[i].job_id = b->errors[i].job_id;
		out->errors[i].text = client_dup_bytes(&b->errors[i].text);
		out->errors_count = i + 1;
		if (out->errors[i].text == NULL)
			return JM_ENOMEM;
	}
	return 0;
}

int jm_client_batch_status(jm_client *client, uint64_t batch_id, jm_batch_info *out)
{
	if (out != NULL)
		memset(out, 0, sizeof *out);
	if (client == NULL || out == NULL)
		return client_fail(JM_EINVAL, "batch-status: client and out must not be NULL");
	struct proto_msg req = {.type = PROTO_BATCH_STATUS};
	req.u.job_ref.job_id = batch_id;
	struct rpc_reply reply;
	int rc =
	    client_call(client, "batch-status", &req, PROTO_BATCH, client_timeout(client), &reply);
	if (rc == JM_ENOTFOUND)
		return client_fail(rc, "batch-status: batch %" PRIu64 " not found", batch_id);
	if (rc != 0)
		return rc;
	if (reply.msg.u.batch.batch_id != batch_id) {
		rc = client_fail(JM_EPROTO,
		                 "batch-status: asked for batch %" PRIu64 ", broker %s answered "
		                 "about batch %" PRIu64,
		                 batch_id, client->url, reply.msg.u.batch.batch_id);
		goto done_free_reply;
	}
	rc = batch_from_proto(&reply.msg.u.batch, out);
	if (rc != 0) {
		jm_batch_info_fini(out);
		rc = client_fail(rc, "batch-status: out of memory for batch %" PRIu64, batch_id);
	}
done_free_reply:
	rpc_reply_fini(&reply);
	return rc;
}

int jm_client_batches(jm_client *client, jm_batch_info **batches, size_t *count)
{
	if (batches != NULL)
		*batches = NULL;
	if (count != NULL)
		*count = 0;
	if (client == NULL || batches == NULL || count == NULL)
		return client_fail(JM_EINVAL,
		                   "batches: client, batches and count must not be NULL");
	struct proto_msg req = {.type = PROTO_BATCHES};
	struct rpc_reply reply;
	int rc = client_call(client, "batches", &req, PROTO_BATCHES_REPLY, client_timeout(client),
	                     &reply);
	if (rc != 0)
		return rc;
	const struct proto_batches_reply *list = &reply.msg.u.batches_reply;
	jm_batch_info *copy = NULL;
	if (list->batches_count > 0) {
		copy = calloc(list->batches_count, sizeof *copy);
		if (copy == NULL) {
			rc =
			    client_fail(JM_ENOMEM, "batches: out of memory for %" PRIu32 " batches",
			                list->batches_count);
			goto done_free_reply;
		}
	}
	/* The broker also lists batches that finished lately (for the
	 * dashboard); this call promises the running ones. */
	uint32_t running = 0;
	for (uint32_t i = 0; i < list->batches_count; i++) {
		if (list->batches[i].state != PROTO_BATCH_RUNNING)
			continue;
		rc = batch_from_proto(&list->batches[i], &copy[running]);
		if (rc != 0) {
			jm_batch_infos_free(copy, running + 1);
			rc = client_fail(rc, "batches: out of memory for %" PRIu32 " batches",
			                 list->batches_count);
			goto done_free_reply;
		}
		running++;
	}
	if (running == 0) {
		free(copy);
		copy = NULL;
	}
	*batches = copy;
	*count = running;
done_free_reply:
	rpc_reply_fini(&reply);
	return rc;
}

/* What the waiter and its subscription's thread share. */
struct batch_waiter {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* on CLOCK_MONOTONIC */
	unsigned events_seen;
};

/* Only the batch's own events wake the waiter: its jobs' events under the
 * same topic are many, and the broker coalesces batch events for us. A
 * move to a new leader wakes it too: what was missed is re-read. */
static void batch_wait_event_cb(const jm_event *ev, void *arg)
{
	struct batch_waiter *waiter = arg;
	if (ev->kind != JM_EVENT_BATCH && ev->kind != JM_EVENT_RESUBSCRIBED)
		return;
	pthread_mutex_lock(&waiter->lock);
	waiter->events_seen++;
	pthread_cond_signal(&waiter->changed);
	pthread_mutex_unlock(&waiter->lock);
}

/* Sleeps until an event arrives after seen, or until_us (monotonic) passes. */
static void batch_wait_for_event(struct batch_waiter *waiter, unsigned seen, uint64_t until_us)
{
	struct timespec ts = jm_timespec_of_us(until_us); /* changed: CLOCK_MONOTONIC */
	pthread_mutex_lock(&waiter->lock);
	while (waiter->events_seen == seen) {
		if (pthread_cond_timedwait(&waiter->changed, &waiter->lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&waiter->lock);
}

int jm_client_wait_batch(jm_client *client, uint64_t batch_id, uint32_t timeout_ms,
                         jm_batch_info *out)
{
	if (out != NULL)
		memset(out, 0, sizeof *out);
	if (client == NULL || out == NULL)
		return client_fail(JM_EINVAL, "wait-batch: client and out must not be NULL");
	uint64_t deadline_us = jm_mono_us() + (uint64_t)timeout_ms * 1000;

	struct batch_waiter waiter = {.events_seen = 0};
	pthread_mutex_init(&waiter.lock, NULL);
	jm_cond_init_monotonic(&waiter.changed);

	/* Without events (none published, or the address unreachable) the
	 * bounded re-check alone still finishes the wait. */
	char topic[40];
	snprintf(topic, sizeof topic, "batch/%" PRIu64, batch_id);
	jm_subscription *sub = NULL;
	(void)jm_client_subscribe(client, topic, true, batch_wait_event_cb, &waiter, &sub);

	int rc;
	for (;;) {
		pthread_mutex_lock(&waiter.lock);
		unsigned seen = waiter.events_seen;
		pthread_mutex_unlock(&waiter.lock);
		jm_batch_info_fini(out);
		rc = jm_client_batch_status(client, batch_id, out);
		if (rc != 0 || out->state != JM_BATCH_RUNNING)
			break;
		uint64_t now_us = jm_mono_us();
		if (now_us >= deadline_us) {
			rc = client_fail(JM_ETIMEDOUT,
			                 "wait-batch: batch %" PRIu64
			                 " is still running after %" PRIu32 " ms (%" PRIu64
			                 "/%" PRIu64 " finished)",
			                 batch_id, timeout_ms,
			                 out->completed + out->failed + out->cancelled, out->total);
			break;
		}
		uint64_t until_us = now_us + BATCH_RECHECK_MS * 1000;
		if (until_us > deadline_us)
			until_us = deadline_us;
		batch_wait_for_event(&waiter, seen, until_us);
	}
	jm_subscription_close(sub);
	pthread_cond_destroy(&waiter.changed);
	pthread_mutex_destroy(&waiter.lock);
	return rc;
}
