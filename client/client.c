/* The C SDK (jobmesh/client.h): jobs in, job state out, over one rpc.
 *
 * A jm_client is an rpc (one REQ socket, one nng_ctx per call) plus the
 * timeout for ordinary calls, so it is shared by threads without a lock.
 *
 * Every call checks its arguments against the same rules the broker
 * applies (proto/proto_limits.h) before anything is sent, and every failure
 * leaves a one-line text in a thread-local buffer that starts with the
 * operation ("submit: job 3: queue name ...") so a CLI can print it after
 * its own prefix. The buffer is only written on failure, like errno.
 *
 * Output structs (jm_job_info) are zeroed on entry, so the caller may always
 * jm_job_info_fini() them, whatever the call returned. */
#include <jobmesh/client.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "clock.h"
#include "err.h"
#include "job_spec.h"
#include "message.h"
#include "rpc.h"

_Static_assert(JM_PAYLOAD_MAX_BYTES == PROTO_PAYLOAD_MAX_DEFAULT,
               "client.h and proto_limits.h disagree");
_Static_assert(JM_BATCH_JOBS_MAX == PROTO_JOBS_PER_MESSAGE_MAX,
               "client.h and proto_limits.h disagree");
_Static_assert((int)JM_STATE_CANCELLED == (int)PROTO_STATE_CANCELLED, "state numbers disagree");

#define CLIENT_DEFAULT_TIMEOUT_MS 10000u

/* A WAIT is parked in the broker for at most this long per request, and
 * the rpc waits this much longer than the park for the reply. Keeping each
 * park well under a minute keeps it clear of NNG's 60 s REQ resend and of
 * idle-connection timeouts on the way. */
#define CLIENT_WAIT_SLICE_MS 30000u
#define CLIENT_WAIT_MARGIN_MS 5000u

static _Thread_local char client_last_error[JM_ERR_MSG_MAX];

int client_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(client_last_error, sizeof client_last_error, fmt, ap);
	va_end(ap);
	return code;
}

const char *jm_client_last_error(void)
{
	return client_last_error;
}

const char *client_last_error_text(void)
{
	return client_last_error;
}

const char *jm_job_state_name(int state)
{
	/* enum jm_job_state and enum proto_job_state are the same numbers. */
	return proto_state_name(state);
}

/* Writes name quoted for an error message into out: printable ASCII as is,
 * anything else as \xNN, cut after 64 characters, because a bad name may be
 * arbitrary bytes and the message goes to a terminal. */
static void client_quote(char *out, size_t out_size, const char *name)
{
	static const char hex[] = "0123456789abcdef";
	size_t used = 0;
	size_t shown = 0;
	out[used++] = '"';
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
		if (shown == PROTO_NAME_MAX || used + 8 >= out_size) {
			memcpy(out + used, "...", 3);
			used += 3;
			break;
		}
		if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') {
			out[used++] = (char)*p;
		} else {
			out[used++] = '\\';
			out[used++] = 'x';
			out[used++] = hex[*p >> 4];
			out[used++] = hex[*p & 0xf];
		}
		shown++;
	}
	out[used++] = '"';
	out[used] = '\0';
}

int jm_client_open(jm_client **out, const char *url)
{
	return jm_client_open_secure(out, url, NULL);
}

static void client_tls_free(struct jm_tls *t)
{
	free((char *)t->ca);
	free((char *)t->cert);
	free((char *)t->key);
}

/* Copies of the TLS paths (sec's, else the environment's), for the events
 * socket dialled later. */
static int client_tls_copy(struct jm_tls *t, const jm_security *sec)
{
	struct jm_tls from = {0};
	if (sec)
		from =
		    (struct jm_tls){.ca = sec->tls_ca, .cert = sec->tls_cert, .key = sec->tls_key};
	jm_tls_from_env(&from);
	t->ca = from.ca ? strdup(from.ca) : NULL;
	t->cert = from.cert ? strdup(from.cert) : NULL;
	t->key = from.key ? strdup(from.key) : NULL;
	if ((from.ca && !t->ca) || (from.cert && !t->cert) || (from.key && !t->key)) {
		client_tls_free(t);
		return JM_ENOMEM;
	}
	return 0;
}

int jm_client_open_secure(jm_client **out, const char *url, const jm_security *sec)
{
	if (out == NULL)
		return client_fail(JM_EINVAL, "open: out is NULL");
	*out = NULL;
	struct jm_client *client = calloc(1, sizeof *client);
	if (client == NULL)
		return client_fail(JM_ENOMEM, "open: out of memory");
	const char *resolved = rpc_broker_url(url);
	client->url = strdup(resolved);
	if (client->url == NULL) {
		free(client);
		return client_fail(JM_ENOMEM, "open: out of memory");
	}
	atomic_init(&client->timeout_ms, CLIENT_DEFAULT_TIMEOUT_MS);
	pthread_mutex_init(&client->hello_lock, NULL);
	struct jm_err err;
	jm_err_clear(&err);
	struct rpc_security rsec = {0};
	if (sec)
		rsec = (struct rpc_security){
		    .token = sec->token,
		    .tls = {.ca = sec->tls_ca, .cert = sec->tls_cert, .key = sec->tls_key}};
	int rc = client_tls_copy(&client->tls, sec);
	if (rc != 0)
		jm_err_set(&err, rc, "open: out of memory");
	else
		rc = rpc_open_secure(&client->rpc, client->url, &rsec, &err);
	if (rc != 0) {
		err.code = rc;
		/* rpc's text names the URL and what is allowed. */
		client_fail(rc, "%s", jm_err_text(&err));
		client_tls_free(&client->tls);
		pthread_mutex_destroy(&client->hello_lock);
		free(client->url);
		free(client);
		return rc;
	}
	*out = client;
	return 0;
}

void jm_client_close(jm_client *client)
{
	if (client == NULL)
		return;
	rpc_close(client->rpc);
	client_tls_free(&client->tls);
	pthread_mutex_destroy(&client->hello_lock);
	free(client->events_url);
	for (unsigned i = 0; i < client->events_url_retired_count; i++)
		free(client->events_url_retired[i]);
	free(client->url);
	free(client);
}

/* 0 restores the default: a call that may never wait is not useful. */
void jm_client_set_timeout_ms(jm_client *client, uint32_t timeout_ms)
{
	if (client == NULL)
		return;
	atomic_store(&client->timeout_ms, timeout_ms ? timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS);
}

int client_call(struct jm_client *client, const char *op, const struct proto_msg *req,
                enum proto_type want, uint32_t timeout_ms, struct rpc_reply *reply)
{
	struct jm_err err;
	jm_err_clear(&err);
	memset(reply, 0, sizeof *reply);
	int rc = rpc_call(client->rpc, req, timeout_ms, reply, &err);
	if (rc == JM_ETIMEDOUT)
		return client_fail(rc, "%s: no reply from broker %s within %" PRIu32 " ms", op,
		                   client->url, timeout_ms);
	if (rc == JM_ETRANSPORT)
		return client_fail(rc, "%s: broker %s unreachable: %s", op, client->url,
		                   jm_err_text(&err));
	if (rc != 0) {
		/* The broker's text may already name the operation. */
		const char *text = err.msg[0] != '\0' ? err.msg : jm_strerror(rc);
		size_t op_len = strlen(op);
		if (strncmp(text, op, op_len) == 0 && text[op_len] == ':')
			return client_fail(rc, "%s", text);
		return client_fail(rc, "%s: %s", op, text);
	}
	if (reply->msg.type != want) {
		int got = reply->msg.type;
		rpc_reply_fini(reply);
		memset(reply, 0, sizeof *reply);
		return client_fail(JM_EPROTO,
		                   "%s: broker %s answered with a %s message, expected %s", op,
		                   client->url, proto_type_name(got), proto_type_name((int)want));
	}
	return 0;
}

uint32_t client_timeout(struct jm_client *client)
{
	return atomic_load(&client->timeout_ms);
}

/* Checks one job spec against the wire rules (proto_job_spec_check, as
 * the broker will). where is "" for a single submit, else "job N: ", so the
 * message points at the offending entry. */
int client_check_spec(const jm_job_spec *job, const char *where)
{
	if (job->queue == NULL)
		return client_fail(JM_EINVAL, "submit: %squeue is missing: %s", where,
		                   PROTO_NAME_RULE);
	if (job->type == NULL)
		return client_fail(JM_EINVAL, "submit: %stype is missing: %s", where,
		                   PROTO_NAME_RULE);
	if (job->payload == NULL && job->payload_len != 0)
		return client_fail(JM_EINVAL, "submit: %spayload is NULL but payload_len is %zu",
		                   where, job->payload_len);
	struct jm_err err;
	int rc = proto_job_spec_check(job->queue, strlen(job->queue), job->type, strlen(job->type),
	                              job->payload_len, job->priority, job->max_attempts, &err);
	if (rc != 0)
		return client_fail(rc, "submit: %s%s", where, jm_err_text(&err));
	if (job->idempotency_key != NULL &&
	    proto_idempotency_key_check(job->idempotency_key, strlen(job->idempotency_key), &err))
		return client_fail(err.code, "submit: %s%s", where, jm_err_text(&err));
	if (job->group != NULL && job->group[0] != '\0' &&
	    !proto_name_is_valid(job->group, strlen(job->group)))
		return client_fail(JM_EBADNAME, "submit: %sgroup name \"%s\" is invalid: %s", where,
		                   job->group, PROTO_NAME_RULE);
	if (job->run_at_us && job->delay_ms)
		return client_fail(JM_EINVAL,
		                   "submit: %sdelay_ms and run_at_us are both set: give one or the "
		                   "other",
		                   where);
	return 0;
}

void client_spec_to_proto(const jm_job_spec *job, struct proto_job_spec *out)
{
	memset(out, 0, sizeof *out);
	/* Both names were checked to be at most PROTO_NAME_MAX bytes. */
	strcpy(out->attrs.queue, job->queue);
	strcpy(out->attrs.type, job->type);
	out->payload.ptr = job->payload_len ? job->payload : NULL;
	out->payload.len = (uint32_t)job->payload_len;
	out->attrs.priority = job->priority;
	out->attrs.max_attempts = job->max_attempts;
	out->delay_ms = job->delay_ms;
	out->attrs.timeout_ms = job->timeout_ms;
	if (job->idempotency_key != NULL)
		out->key = (struct proto_bytes){(const uint8_t *)job->idempotency_key,
		                                (uint32_t)strlen(job->idempotency_key)};
	out->run_at_us = job->run_at_us;
	if (job->group != NULL) /* checked: at most PROTO_NAME_MAX bytes */
		strcpy(out->attrs.group, job->group);
}

int client_check_specs(const jm_job_spec *jobs, size_t count, size_t *message_bytes)
{
	*message_bytes = CLIENT_MESSAGE_OVERHEAD_BYTES;
	for (size_t i = 0; i < count; i++) {
		/* The index goes into the text only when there is an error:
		 * formatting it for every job cost more than the checks. */
		if (client_check_spec(&jobs[i], "") != 0) {
			char where[40];
			snprintf(where, sizeof where, "job %zu: ", i);
			return client_check_spec(&jobs[i], where);
		}
		*message_bytes += jobs[i].payload_len + CLIENT_JOB_OVERHEAD_BYTES;
	}
	return 0;
}

struct proto_job_spec *client_specs_to_proto(const jm_job_spec *jobs, size_t count)
{
	struct proto_job_spec *specs = calloc(count, sizeof *specs);
	if (specs == NULL) {
		client_fail(JM_ENOMEM, "submit: out of memory for %zu jobs", count);
		return NULL;
	}
	for (size_t i = 0; i < count; i++)
		client_spec_to_proto(&jobs[i], &specs[i]);
	return specs;
}

/* Sends jobs[0..count) as one SUBMIT; ids receive the new ids. first is
 * the index of jobs[0] in the caller's array, for messages. */
static int client_submit_message(struct jm_client *client, const jm_job_spec *jobs, size_t count,
                                 size_t first, bool as_batch, uint64_t *job_ids, uint64_t *batch_id)
{
	struct proto_job_spec *specs = client_specs_to_proto(jobs, count);
	if (specs == NULL)
		return JM_ENOMEM;
	struct proto_msg req = {.type = PROTO_SUBMIT};
	req.u.submit.as_batch = as_batch;
	req.u.submit.jobs_count = (uint32_t)count;
	req.u.submit.jobs = specs;
	struct rpc_reply reply;
	int rc =
	    client_call(client, "submit", &req, PROTO_SUBMITTED, client_timeout(client), &reply);
	free(specs);
	if (rc != 0)
		return rc;

	const struct proto_submitted *done = &reply.msg.u.submitted;
	if (done->ids_count != count) {
		rc = client_fail(JM_EPROTO,
		                 "submit: jobs %zu-%zu: broker %s returned %" PRIu32
		                 " ids for %zu jobs",
		                 first, first + count - 1, client->url, done->ids_count, count);
		goto fail_free_reply;
	}
	memcpy(job_ids, done->ids, count * sizeof *job_ids);
	if (batch_id != NULL)
		*batch_id = done->batch_id;
	rc = 0;
fail_free_reply:
	rpc_reply_fini(&reply);
	return rc;
}

int jm_client_submit_many(jm_client *client, const jm_job_spec *jobs, size_t count, bool as_batch,
                          uint64_t *job_ids, uint64_t *batch_id)
{
	if (client == NULL || job_ids == NULL || (jobs == NULL && count != 0))
		return client_fail(JM_EINVAL, "submit: client, jobs and job_ids must not be NULL");
	if (count == 0)
		return client_fail(JM_EINVAL, "submit: no jobs given: submit 1 or more");
	if (as_batch && count > PROTO_JOBS_PER_MESSAGE_MAX)
		return client_fail(JM_ELIMIT,
		                   "submit: a batch holds at most %u jobs, got %zu: split it into "
		                   "several batches",
		                   PROTO_JOBS_PER_MESSAGE_MAX, count);
	if (batch_id != NULL)
		*batch_id = 0;

	/* Check everything first, so a bad job late in the array sends nothing. */
	size_t message_bytes;
	int check_rc = client_check_specs(jobs, count, &message_bytes);
	if (check_rc != 0)
		return check_rc;
	if (as_batch && message_bytes > PROTO_MESSAGE_MAX)
		return client_fail(JM_ETOOBIG,
		                   "submit: batch of %zu jobs needs about %zu bytes: a message "
		                   "holds at most %u bytes; split it into several batches",
		                   count, message_bytes, PROTO_MESSAGE_MAX);

	/* Without a batch, cut the array into messages by job count and size.
	 * Each message is all or none; if a later one fails, the earlier ones
	 * stay enqueued and the message says which. */
	size_t start = 0;
	while (start < count) {
		size_t end = start;
		size_t bytes = CLIENT_MESSAGE_OVERHEAD_BYTES;
		while (end < count && end - start < PROTO_JOBS_PER_MESSAGE_MAX) {
			size_t job_bytes = jobs[end].payload_len + CLIENT_JOB_OVERHEAD_BYTES;
			if (end > start && bytes + job_bytes > PROTO_MESSAGE_MAX)
				break;
			bytes += job_bytes;
			end++;
		}
		int rc = client_submit_message(client, jobs + start, end - start, start, as_batch,
		                               job_ids + start, batch_id);
		if (rc != 0) {
			memset(job_ids + start, 0, (count - start) * sizeof *job_ids);
			if (start > 0) {
				char detail[JM_ERR_MSG_MAX];
				snprintf(detail, sizeof detail, "%s", client_last_error);
				client_fail(rc,
				            "%s (jobs 0-%zu were enqueued, their ids are in "
				            "job_ids; jobs %zu-%zu were not)",
				            detail, start - 1, start, count - 1);
			}
			return rc;
		}
		start = end;
	}
	return 0;
}

int jm_client_submit(jm_client *client, const jm_job_spec *job, uint64_t *job_id)
{
	if (client == NULL || job == NULL || job_id == NULL)
		return client_fail(JM_EINVAL, "submit: client, job and job_id must not be NULL");
	int rc = client_check_spec(job, "");
	if (rc != 0)
		return rc;
	return client_submit_message(client, job, 1, 0, false, job_id, NULL);
}

void jm_job_info_fini(jm_job_info *info)
{
	if (info == NULL)
		return;
	free(info->last_error);
	free(info->result);
	free(info->progress_message);
	free(info->payload);
	info->payload = NULL;
	info->payload_len = 0;
	info->last_error = NULL;
	info->result = NULL;
	info->progress_message = NULL;
	info->result_len = 0;
	info->has_result = false;
}

char *client_dup_bytes(const struct proto_bytes *bytes)
{
	char *copy = malloc((size_t)bytes->len + 1);
	if (copy == NULL)
		return NULL;
	if (bytes->len)
		memcpy(copy, bytes->ptr, bytes->len);
	copy[bytes->len] = '\0';
	return copy;
}

int client_job_from_proto(const struct proto_job_info *job, jm_job_info *out)
{
	out->id = job->job_id;
	snprintf(out->queue, sizeof out->queue, "%s", job->attrs.queue);
	snprintf(out->type, sizeof out->type, "%s", job->attrs.type);
	snprintf(out->group, sizeof out->group, "%s", job->attrs.group);
	out->state = (int)job->state;
	out->priority = job->attrs.priority;
	out->attempt = job->attempt;
	out->max_attempts = job->attrs.max_attempts;
	out->created_us = job->attrs.created_us;
	out->updated_us = job->updated_us;
	out->run_at_us = job->run_at_us;
	out->batch_id = job->attrs.batch_id;
	out->progress_done = job->progress_done;
	out->progress_total = job->progress_total;
	out->last_error = client_dup_bytes(&job->last_error);
	out->progress_message = client_dup_bytes(&job->progress_message);
	if (out->last_error == NULL || out->progress_message == NULL)
		return JM_ENOMEM;
	if (job->payload.len > 0) {
		out->payload = client_dup_bytes(&job->payload);
		if (out->payload == NULL)
			return JM_ENOMEM;
		out->payload_len = job->payload.len;
	}
	if (job->has_result) {
		out->result = client_dup_bytes(&job->result);
		if (out->result == NULL)
			return JM_ENOMEM;
		out->result_len = job->result.len;
		out->has_result = true;
	}
	return 0;
}

/* One STATUS, RESULT, WAIT or SUBMIT_WAIT (job_id 0: the new job's id is
 * not known yet) round trip into *out (already zeroed). */
static int client_job_call(struct jm_client *client, const char *op, const struct proto_msg *req,
                           uint64_t job_id, uint32_t timeout_ms, jm_job_info *out)
{
	struct rpc_reply reply;
	int rc = client_call(client, op, req, PROTO_JOB, timeout_ms, &reply);
	if (rc == JM_ENOTFOUND && job_id != 0)
		return client_fail(rc, "%s: job %" PRIu64 " not found", op, job_id);
	if (rc != 0)
		return rc;
	if (job_id != 0 && reply.msg.u.job.job_id != job_id) {
		rc = client_fail(JM_EPROTO,
		                 "%s: asked for job %" PRIu64 ", broker %s answered "
		                 "about job %" PRIu64,
		                 op, job_id, client->url, reply.msg.u.job.job_id);
		goto fail_free_reply;
	}
	jm_job_info_fini(out);
	rc = client_job_from_proto(&reply.msg.u.job, out);
	if (rc != 0) {
		jm_job_info_fini(out);
		rc = client_fail(rc, "%s: out of memory for job %" PRIu64, op, job_id);
	}
fail_free_reply:
	rpc_reply_fini(&reply);
	return rc;
}

static int client_job_ref(jm_client *client, enum proto_type type, const char *op, uint64_t job_id,
                          jm_job_info *out)
{
	if (out != NULL)
		memset(out, 0, sizeof *out);
	if (client == NULL || out == NULL)
		return client_fail(JM_EINVAL, "%s: client and out must not be NULL", op);
	struct proto_msg req = {.type = type};
	req.u.job_ref.job_id = job_id;
	return client_job_call(client, op, &req, job_id, client_timeout(client), out);
}

int jm_client_status(jm_client *client, uint64_t job_id, jm_job_info *out)
{
	return client_job_ref(client, PROTO_STATUS, "status", job_id, out);
}

int jm_client_status_payload(jm_client *client, uint64_t job_id, jm_job_info *out)
{
	if (out != NULL)
		memset(out, 0, sizeof *out);
	if (client == NULL || out == NULL)
		return client_fail(JM_EINVAL, "status: client and out must not be NULL");
	struct proto_msg req = {.type = PROTO_STATUS};
	req.u.job_ref.job_id = job_id;
	req.u.job_ref.with_payload = true;
	return client_job_call(client, "status", &req, job_id, client_timeout(client), out);
}

int jm_client_result(jm_client *client, uint64_t job_id, jm_job_info *out)
{
	return client_job_ref(client, PROTO_RESULT, "result", job_id, out);
}

int jm_client_cancel(jm_client *client, uint64_t job_id, jm_job_info *out)
{
	return client_job_ref(client, PROTO_CANCEL, "cancel", job_id, out);
}

void jm_job_infos_free(jm_job_info *jobs, size_t count)
{
	if (jobs == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		jm_job_info_fini(&jobs[i]);
	free(jobs);
}

int client_check_queue(const char *op, const char *queue)
{
	if (queue == NULL)
		return client_fail(JM_EINVAL, "%s: queue is missing: %s", op, PROTO_NAME_RULE);
	if (!proto_name_is_valid(queue, strlen(queue))) {
		char quoted[PROTO_NAME_MAX * 4 + 8];
		client_quote(quoted, sizeof quoted, queue);
		return client_fail(JM_EBADNAME, "%s: queue name %s is invalid: %s", op, quoted,
		                   PROTO_NAME_RULE);
	}
	return 0;
}

static bool client_state_is_final(int state)
{
	return state == JM_STATE_COMPLETED || state == JM_STATE_FAILED ||
	       state == JM_STATE_CANCELLED;
}

/* The total wait is cut into WAITs of at most CLIENT_WAIT_SLICE_MS, each
 * given the rpc timeout slice + CLIENT_WAIT_MARGIN_MS, and the remaining time
 * is measured on the monotonic clock, so the total never grows by the round
 * trips. A missing reply is reported as JM_ETIMEDOUT only when *out holds a
 * state, so the caller can tell "the job is still running" (out->id set)
 * from "the broker did not answer" (out->id 0): the latter comes back as
 * JM_ETRANSPORT. */
int jm_client_wait(jm_client *client, uint64_t job_id, uint32_t timeout_ms, jm_job_info *out)
{
	if (out != NULL)
		memset(out, 0, sizeof *out);
	if (client == NULL || out == NULL)
		return client_fail(JM_EINVAL, "wait: client and out must not be NULL");
	uint64_t deadline_us = jm_mono_us() + (uint64_t)timeout_ms * 1000;
	for (;;) {
		uint64_t now_us = jm_mono_us();
		uint64_t left_ms = deadline_us > now_us ? (deadline_us - now_us) / 1000 : 0;
		uint32_t slice_ms =
		    left_ms > CLIENT_WAIT_SLICE_MS ? CLIENT_WAIT_SLICE_MS : (uint32_t)left_ms;
		struct proto_msg req = {.type = PROTO_WAIT};
		req.u.wait.job_id = job_id;
		req.u.wait.timeout_ms = slice_ms;
		int rc = client_job_call(client, "wait", &req, job_id,
		                         slice_ms + CLIENT_WAIT_MARGIN_MS, out);
		if (rc == JM_ETIMEDOUT) {
			/* The rpc itself ran out: the broker never answered. */
			jm_job_info_fini(out);
			memset(out, 0, sizeof *out);
			return client_fail(JM_ETRANSPORT,
			                   "wait: no reply from broker %s within %" PRIu32 " ms",
			                   client->url, slice_ms + CLIENT_WAIT_MARGIN_MS);
		}
		if (rc != 0)
			return rc;
		if (client_state_is_final(out->state))
			return 0;
		if (left_ms <= slice_ms)
			break;
	}
	return client_fail(JM_ETIMEDOUT, "wait: job %" PRIu64 " is still %s after %" PRIu32 " ms",
	                   job_id, jm_job_state_name(out->state), timeout_ms);
}

/* One SUBMIT_WAIT for the first slice of the wait; a longer wait goes on
 * with jm_client_wait on the id the answer names. A broker older than
 * SUBMIT_WAIT refuses it unread (JM_EUNSUPPORTED): then a SUBMIT and a
 * WAIT do the same in two round trips. */
int jm_client_submit_wait(jm_client *client, const jm_job_spec *job, uint32_t timeout_ms,
                          jm_job_info *out)
{
	if (out != NULL)
		memset(out, 0, sizeof *out);
	if (client == NULL || job == NULL || out == NULL)
		return client_fail(JM_EINVAL, "submit-wait: client, job and out must not be NULL");
	int rc = client_check_spec(job, "");
	if (rc != 0)
		return rc;
	uint64_t deadline_us = jm_mono_us() + (uint64_t)timeout_ms * 1000;
	uint32_t slice_ms = timeout_ms > CLIENT_WAIT_SLICE_MS ? CLIENT_WAIT_SLICE_MS : timeout_ms;
	struct proto_msg req = {.type = PROTO_SUBMIT_WAIT};
	client_spec_to_proto(job, &req.u.submit_wait.job);
	req.u.submit_wait.timeout_ms = slice_ms;
	rc = client_job_call(client, "submit-wait", &req, 0,
	                     client_timeout(client) + slice_ms + CLIENT_WAIT_MARGIN_MS, out);
	if (rc == JM_EUNSUPPORTED) {
		uint64_t id = 0;
		rc = jm_client_submit(client, job, &id);
		return rc != 0 ? rc : jm_client_wait(client, id, timeout_ms, out);
	}
	if (rc == JM_ETIMEDOUT)
		return client_fail(JM_ETRANSPORT,
		                   "submit-wait: no reply from broker %s: the job may or may not "
		                   "have been enqueued (an idempotency key makes a retry safe)",
		                   client->url);
	if (rc != 0 || client_state_is_final(out->state))
		return rc;
	uint64_t now_us = jm_mono_us();
	if (now_us + 1000 >= deadline_us)
		return client_fail(JM_ETIMEDOUT,
		                   "submit-wait: job %" PRIu64 " is still %s after %" PRIu32 " ms",
		                   out->id, jm_job_state_name(out->state), timeout_ms);
	uint64_t id = out->id;
	jm_job_info_fini(out);
	return jm_client_wait(client, id, (uint32_t)((deadline_us - now_us) / 1000), out);
}

int jm_client_stats(jm_client *client, jm_queue_stats **queues, size_t *count)
{
	if (queues != NULL)
		*queues = NULL;
	if (count != NULL)
		*count = 0;
	if (client == NULL || queues == NULL || count == NULL)
		return client_fail(JM_EINVAL, "stats: client, queues and count must not be NULL");
	struct proto_msg req = {.type = PROTO_STATS};
	struct rpc_reply reply;
	int rc =
	    client_call(client, "stats", &req, PROTO_STATS_REPLY, client_timeout(client), &reply);
	if (rc != 0)
		return rc;
	const struct proto_stats_reply *stats = &reply.msg.u.stats_reply;
	jm_queue_stats *copy = NULL;
	if (stats->queues_count > 0) {
		copy = calloc(stats->queues_count, sizeof *copy);
		if (copy == NULL) {
			rc = client_fail(JM_ENOMEM, "stats: out of memory for %" PRIu32 " queues",
			                 stats->queues_count);
			goto fail_free_reply;
		}
	}
	for (uint32_t i = 0; i < stats->queues_count; i++) {
		const struct proto_queue_stats *q = &stats->queues[i];
		snprintf(copy[i].name, sizeof copy[i].name, "%s", q->name);
		copy[i].pending = q->pending;
		copy[i].delayed = q->delayed;
		copy[i].active = q->active;
		copy[i].completed = q->completed;
		copy[i].failed = q->failed;
		copy[i].cancelled = q->cancelled;
		copy[i].oldest_pending_us = q->oldest_pending_us;
		copy[i].max_active = q->max_active;
		copy[i].paused = q->paused;
		copy[i].rate_jobs = q->rate_jobs;
		copy[i].rate_period_ms = q->rate_period_ms;
		copy[i].unroutable = q->unroutable;
		copy[i].group_limit = q->group_limit;
		uint32_t types = q->unroutable_types_count;
		if (types > sizeof copy[i].unroutable_types / sizeof copy[i].unroutable_types[0])
			types =
			    sizeof copy[i].unroutable_types / sizeof copy[i].unroutable_types[0];
		for (uint32_t t = 0; t < types; t++)
			snprintf(copy[i].unroutable_types[t], sizeof copy[i].unroutable_types[t],
			         "%s", q->unroutable_types[t]);
		copy[i].unroutable_types_count = types;
	}
	*queues = copy;
	*count = stats->queues_count;
fail_free_reply:
	rpc_reply_fini(&reply);
	return rc;
}
