/* Asynchronous submit (jm_client_submit_async and
 * jm_client_submit_many_async, see client.h): one SUBMIT of one job, or of
 * several, per request, up to `in_flight` requests at once over an rpc
 * pool (proto/rpc_pool.c), each answered through the caller's callback.
 * Given a list of brokers, it follows the leader (resend_flags). */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBMITTER_IN_FLIGHT_MAX 1024u

struct jm_submitter {
	jm_client *client;
	struct rpc_pool *pool;
};

/* What one submit needs when its reply comes: cb for one job, many_cb
 * (with count) for several. */
struct submit_call {
	jm_submit_cb cb;
	jm_submit_many_cb many_cb;
	size_t count;
	void *arg;
};

static void submit_done(void *arg, int rc, const struct rpc_reply *reply, const struct jm_err *err)
{
	struct submit_call call = *(struct submit_call *)arg;
	free(arg);
	if (rc != 0) {
		call.cb(call.arg, rc, 0, err->msg);
		return;
	}
	if (reply->msg.type != PROTO_SUBMITTED || reply->msg.u.submitted.ids_count != 1) {
		call.cb(call.arg, JM_EPROTO, 0,
		        reply->msg.type != PROTO_SUBMITTED
		            ? "submit: the broker answered with another message than SUBMITTED"
		            : "submit: the broker returned another number of ids than 1");
		return;
	}
	call.cb(call.arg, 0, reply->msg.u.submitted.ids[0], "");
}

static void submit_many_done(void *arg, int rc, const struct rpc_reply *reply,
                             const struct jm_err *err)
{
	struct submit_call call = *(struct submit_call *)arg;
	free(arg);
	if (rc != 0) {
		call.many_cb(call.arg, rc, NULL, 0, err->msg);
		return;
	}
	if (reply->msg.type != PROTO_SUBMITTED || reply->msg.u.submitted.ids_count != call.count) {
		call.many_cb(call.arg, JM_EPROTO, NULL, 0,
		             reply->msg.type != PROTO_SUBMITTED
		                 ? "submit: the broker answered with another message than SUBMITTED"
		                 : "submit: the broker returned another number of ids than jobs");
		return;
	}
	call.many_cb(call.arg, 0, reply->msg.u.submitted.ids, call.count, "");
}

/* With a list of brokers, a submit refused by a standby, or not sent, is
 * sent again to the leader (proto/rpc_pool.c). One whose jobs all carry
 * an idempotency key is also sent again after its connection dropped or
 * its reply timed out (a failover): the keys make it admitted once. */
static unsigned resend_flags(const jm_job_spec *jobs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (jobs[i].idempotency_key == NULL || jobs[i].idempotency_key[0] == '\0')
			return 0;
	return RPC_POOL_IDEMPOTENT;
}

int jm_submitter_open(jm_client *client, unsigned in_flight, jm_submitter **out)
{
	if (out == NULL)
		return client_fail(JM_EINVAL, "submitter: out must not be NULL");
	*out = NULL;
	if (client == NULL)
		return client_fail(JM_EINVAL, "submitter: client must not be NULL");
	if (in_flight == 0 || in_flight > SUBMITTER_IN_FLIGHT_MAX)
		return client_fail(JM_EINVAL, "submitter: %u submits in flight; allowed 1..%u",
		                   in_flight, SUBMITTER_IN_FLIGHT_MAX);
	jm_submitter *s = calloc(1, sizeof *s);
	if (s == NULL)
		return client_fail(JM_ENOMEM, "submitter: out of memory");
	struct jm_err err;
	jm_err_clear(&err);
	int rc = rpc_pool_open(client->rpc, in_flight, &s->pool, &err);
	if (rc != 0) {
		free(s);
		return client_fail(rc, "submitter: %s", err.msg);
	}
	s->client = client;
	*out = s;
	return 0;
}

int jm_client_submit_async(jm_submitter *s, const jm_job_spec *job, jm_submit_cb cb, void *arg)
{
	if (s == NULL || job == NULL || cb == NULL)
		return client_fail(JM_EINVAL,
		                   "submit: submitter, job and callback must not be NULL");
	int rc = client_check_spec(job, "");
	if (rc != 0)
		return rc;
	struct submit_call *call = malloc(sizeof *call);
	if (call == NULL)
		return client_fail(JM_ENOMEM, "submit: out of memory");
	call->cb = cb;
	call->arg = arg;
	struct proto_job_spec spec;
	client_spec_to_proto(job, &spec);
	struct proto_msg req = {.type = PROTO_SUBMIT};
	req.u.submit.jobs_count = 1;
	req.u.submit.jobs = &spec;
	struct jm_err err;
	jm_err_clear(&err);
	rc = rpc_pool_call_flags(s->pool, &req, client_timeout(s->client), resend_flags(job, 1),
	                         submit_done, call, &err);
	if (rc != 0) {
		free(call);
		return client_fail(rc, "submit: %s", err.msg);
	}
	return 0;
}

int jm_client_submit_many_async(jm_submitter *s, const jm_job_spec *jobs, size_t count,
                                jm_submit_many_cb cb, void *arg)
{
	if (s == NULL || jobs == NULL || cb == NULL)
		return client_fail(JM_EINVAL,
		                   "submit: submitter, jobs and callback must not be NULL");
	if (count == 0 || count > PROTO_JOBS_PER_MESSAGE_MAX)
		return client_fail(JM_ELIMIT,
		                   "submit: %zu jobs in one asynchronous submit; allowed 1..%u "
		                   "(one message): split them into several calls",
		                   count, PROTO_JOBS_PER_MESSAGE_MAX);
	size_t message_bytes;
	int rc = client_check_specs(jobs, count, &message_bytes);
	if (rc != 0)
		return rc;
	if (message_bytes > PROTO_MESSAGE_MAX)
		return client_fail(JM_ETOOBIG,
		                   "submit: %zu jobs need about %zu bytes: a message holds at most "
		                   "%u bytes; split them into several calls",
		                   count, message_bytes, PROTO_MESSAGE_MAX);
	struct submit_call *call = malloc(sizeof *call);
	if (call == NULL)
		return client_fail(JM_ENOMEM, "submit: out of memory for %zu jobs", count);
	struct proto_job_spec *specs = client_specs_to_proto(jobs, count);
	if (specs == NULL) {
		free(call);
		return JM_ENOMEM;
	}
	*call = (struct submit_call){.many_cb = cb, .count = count, .arg = arg};
	struct proto_msg req = {.type = PROTO_SUBMIT};
	req.u.submit.jobs_count = (uint32_t)count;
	req.u.submit.jobs = specs;
	struct jm_err err;
	jm_err_clear(&err);
	/* The request is encoded before rpc_pool_call returns: specs go. */
	rc = rpc_pool_call_flags(s->pool, &req, client_timeout(s->client),
	                         resend_flags(jobs, count), submit_many_done, call, &err);
	free(specs);
	if (rc != 0) {
		free(call);
		return client_fail(rc, "submit: %s", err.msg);
	}
	return 0;
}

void jm_submitter_wait(jm_submitter *s)
{
	if (s != NULL)
		rpc_pool_drain(s->pool);
}

void jm_submitter_close(jm_submitter *s)
{
	if (s == NULL)
		return;
	rpc_pool_close(s->pool);
	free(s);
}
