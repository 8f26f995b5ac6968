/* rpc: calls against an in-process REP server on an ipc:// path in a fresh
 * temp dir. The server answers STATUS with a JOB echoing the job id, and
 * with an ERROR for job RPC_TEST_MISSING_JOB, from several contexts at once,
 * so concurrent calls are answered out of order.
 *
 * cmocka's assertions longjmp and its test_malloc is not thread-safe, so the
 * threads here only count failures and never allocate through cmocka; the
 * main thread asserts on the counts. */
#include "jm_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "clock.h"
#include "rpc.h"

#define RPC_TEST_MISSING_JOB 404
#define RPC_TEST_SERVER_CONTEXTS 8
#define RPC_TEST_CLIENT_THREADS 8
#define RPC_TEST_CALLS_PER_THREAD 200
#define RPC_TEST_CALL_TIMEOUT_MS 5000

struct server {
	nng_socket sock;
	pthread_t threads[RPC_TEST_SERVER_CONTEXTS];
	nng_ctx contexts[RPC_TEST_SERVER_CONTEXTS];
	int threads_count;
	bool running;
};

struct fixture {
	char dir[64];
	char url[160];
	char ipc_path[128];
	struct server server;
};

/* Builds the answer to one request: JOB for STATUS, ERROR otherwise. */
static int server_answer(const nng_msg *request, struct jm_buf *out)
{
	struct proto_msg req;
	struct jm_err err = {0};
	if (proto_decode(nng_msg_body((nng_msg *)request), nng_msg_len((nng_msg *)request), &req,
	                 &err) != 0)
		return proto_encode_error(out, err.code, "%s", jm_err_text(&err));
	int rc;
	if (req.type != PROTO_STATUS) {
		rc = proto_encode_error(out, JM_EUNSUPPORTED, "only status here");
	} else if (req.u.job_ref.job_id == RPC_TEST_MISSING_JOB) {
		rc =
		    proto_encode_error(out, JM_ENOTFOUND, "job %d not found", RPC_TEST_MISSING_JOB);
	} else {
		struct proto_msg reply = {.version = PROTO_VERSION, .type = PROTO_JOB};
		struct proto_job_info *job = &reply.u.job;
		job->job_id = req.u.job_ref.job_id;
		snprintf(job->attrs.queue, sizeof job->attrs.queue, "q");
		snprintf(job->attrs.type, sizeof job->attrs.type, "t");
		job->state = PROTO_STATE_PENDING;
		job->attempt = 1;
		job->attrs.max_attempts = 3;
		job->attrs.created_us = 1;
		job->updated_us = 2;
		rc = proto_encode(&reply, out);
	}
	proto_msg_fini(&req);
	return rc;
}

/* One REP context: receive, answer, repeat, until server_stop closes the
 * context (opened by server_start, so the stop path owns it). */
static void *server_thread(void *arg)
{
	nng_ctx ctx = *(nng_ctx *)arg;
	nng_aio *aio;
	if (nng_aio_alloc(&aio, NULL, NULL) != 0)
		return NULL;
	/* Bounded by the context's life: nng_ctx_close fails the pending
	 * operation, and a send on a closed context fails at once. */
	for (;;) {
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			break;
		nng_msg *msg = nng_aio_get_msg(aio);
		struct jm_buf answer;
		jm_buf_init(&answer);
		int rc = server_answer(msg, &answer);
		nng_msg_clear(msg);
		if (rc != 0 || nng_msg_append(msg, answer.data, answer.len) != 0) {
			jm_buf_fini(&answer);
			nng_msg_free(msg);
			continue;
		}
		jm_buf_fini(&answer);
		nng_aio_set_msg(aio, msg);
		nng_ctx_send(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			nng_msg_free(nng_aio_get_msg(aio));
	}
	nng_aio_free(aio);
	return NULL;
}

static void server_start(struct fixture *f)
{
	struct server *server = &f->server;
	assert_int_equal(nng_rep0_open(&server->sock), 0);
	assert_int_equal(nng_listen(server->sock, f->url, NULL, 0), 0);
	for (int i = 0; i < RPC_TEST_SERVER_CONTEXTS; i++) {
		assert_int_equal(nng_ctx_open(&server->contexts[i], server->sock), 0);
		assert_int_equal(
		    pthread_create(&server->threads[i], NULL, server_thread, &server->contexts[i]),
		    0);
		server->threads_count++;
	}
	server->running = true;
}

static void server_stop(struct fixture *f)
{
	struct server *server = &f->server;
	if (!server->running)
		return;
	/* Contexts first, socket last: NNG 1.5.2 can panic on a destroyed
	 * mutex when nng_ctx_send races with nng_close of the socket. */
	for (int i = 0; i < server->threads_count; i++)
		nng_ctx_close(server->contexts[i]);
	for (int i = 0; i < server->threads_count; i++)
		pthread_join(server->threads[i], NULL);
	nng_close(server->sock);
	server->threads_count = 0;
	server->running = false;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof f->dir, "%s/jm-rpc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->ipc_path, sizeof f->ipc_path, "%s/broker.ipc", f->dir);
	snprintf(f->url, sizeof f->url, "ipc://%s", f->ipc_path);
	*state = f;
	return 0;
}

static int setup_with_server(void **state)
{
	setup(state);
	server_start(*state);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	server_stop(f);
	unlink(f->ipc_path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct proto_msg status_request(uint64_t job_id)
{
	struct proto_msg req = {.version = PROTO_VERSION, .type = PROTO_STATUS};
	req.u.job_ref.job_id = job_id;
	return req;
}

static void test_call_gets_its_decoded_reply(void **state)
{
	struct fixture *f = *state;
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_open(&rpc, f->url, &err), &err);
	struct proto_msg req = status_request(42);
	struct rpc_reply reply;
	assert_jm_ok_err(rpc_call(rpc, &req, RPC_TEST_CALL_TIMEOUT_MS, &reply, &err), &err);
	assert_int_equal(reply.msg.type, PROTO_JOB);
	assert_int_equal(reply.msg.u.job.job_id, 42);
	assert_string_equal(reply.msg.u.job.attrs.queue, "q");
	assert_int_equal(reply.msg.u.job.state, PROTO_STATE_PENDING);
	assert_non_null(reply.nng_msg_);
	rpc_reply_fini(&reply);
	assert_null(reply.nng_msg_);
	rpc_close(rpc);
}

static void test_error_reply_becomes_its_code_and_text(void **state)
{
	struct fixture *f = *state;
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_open(&rpc, f->url, &err), &err);
	struct proto_msg req = status_request(RPC_TEST_MISSING_JOB);
	struct rpc_reply reply;
	assert_int_equal(rpc_call(rpc, &req, RPC_TEST_CALL_TIMEOUT_MS, &reply, &err), JM_ENOTFOUND);
	assert_int_equal(err.code, JM_ENOTFOUND);
	assert_string_equal(jm_err_text(&err), "job 404 not found");
	assert_null(reply.nng_msg_);
	rpc_reply_fini(&reply); /* harmless on the zeroed reply */
	rpc_close(rpc);
}

static void test_call_without_server_times_out_within_bound(void **state)
{
	struct fixture *f = *state;
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_open(&rpc, f->url, &err), &err);
	struct proto_msg req = status_request(1);
	struct rpc_reply reply;
	uint64_t start_us = jm_mono_us();
	assert_int_equal(rpc_call(rpc, &req, 300, &reply, &err), JM_ETIMEDOUT);
	uint64_t elapsed_ms = (jm_mono_us() - start_us) / 1000;
	assert_true(elapsed_ms >= 290);
	assert_true(elapsed_ms < 1300);
	char want[256];
	snprintf(want, sizeof want, "no reply from broker at %s within 300 ms", f->url);
	assert_string_equal(jm_err_text(&err), want);
	assert_null(reply.nng_msg_);
	rpc_close(rpc);
}

struct cancel_later {
	struct rpc_cancel *cancel;
	uint32_t after_ms;
};

static void *cancel_later_main(void *arg)
{
	struct cancel_later *c = arg;
	struct timespec wait = {0, (long)c->after_ms * 1000000L};
	nanosleep(&wait, NULL);
	rpc_cancel_fire(c->cancel);
	return NULL;
}

/* No broker answers: a fire from another thread ends the call at once with
 * JM_ECLOSED instead of its 10 s timeout, and a later call with the fired
 * token fails the same way without waiting. */
static void test_cancel_cuts_a_call_short_and_every_later_one(void **state)
{
	struct fixture *f = *state;
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_open(&rpc, f->url, &err), &err);
	struct rpc_cancel cancel;
	rpc_cancel_init(&cancel);
	struct cancel_later later = {&cancel, 200};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, cancel_later_main, &later), 0);
	struct proto_msg req = status_request(1);
	struct rpc_reply reply;
	uint64_t start_us = jm_mono_us();
	assert_int_equal(rpc_call_cancellable(rpc, &req, 10000, &cancel, &reply, &err), JM_ECLOSED);
	uint64_t elapsed_ms = (jm_mono_us() - start_us) / 1000;
	pthread_join(thread, NULL);
	assert_true(elapsed_ms >= 190);
	assert_true(elapsed_ms < 2000);
	assert_non_null(strstr(jm_err_text(&err), "cancelled"));
	assert_null(reply.nng_msg_);

	start_us = jm_mono_us();
	assert_int_equal(rpc_call_cancellable(rpc, &req, 10000, &cancel, &reply, &err), JM_ECLOSED);
	assert_true((jm_mono_us() - start_us) / 1000 < 500);
	rpc_cancel_fini(&cancel);
	rpc_close(rpc);
}

static void test_call_waits_for_a_broker_that_starts_late(void **state)
{
	struct fixture *f = *state;
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_open(&rpc, f->url, &err), &err);
	server_start(f);
	struct proto_msg req = status_request(7);
	struct rpc_reply reply;
	assert_jm_ok_err(rpc_call(rpc, &req, RPC_TEST_CALL_TIMEOUT_MS, &reply, &err), &err);
	assert_int_equal(reply.msg.u.job.job_id, 7);
	rpc_reply_fini(&reply);
	rpc_close(rpc);
}

struct caller {
	struct rpc *rpc;
	uint64_t first_job_id;
	int failures;
	int mismatches;
	char first_error[JM_ERR_MSG_MAX];
};

static void *caller_thread(void *arg)
{
	struct caller *caller = arg;
	for (int i = 0; i < RPC_TEST_CALLS_PER_THREAD; i++) {
		uint64_t job_id = caller->first_job_id + (uint64_t)i;
		struct proto_msg req = status_request(job_id);
		struct rpc_reply reply;
		struct jm_err err = {0};
		if (rpc_call(caller->rpc, &req, RPC_TEST_CALL_TIMEOUT_MS, &reply, &err) != 0) {
			if (caller->failures++ == 0)
				snprintf(caller->first_error, sizeof caller->first_error, "%s",
				         jm_err_text(&err));
			continue;
		}
		if (reply.msg.type != PROTO_JOB || reply.msg.u.job.job_id != job_id)
			caller->mismatches++;
		rpc_reply_fini(&reply);
	}
	return NULL;
}

static void test_concurrent_calls_get_their_own_replies(void **state)
{
	struct fixture *f = *state;
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_open(&rpc, f->url, &err), &err);
	struct caller callers[RPC_TEST_CLIENT_THREADS];
	pthread_t threads[RPC_TEST_CLIENT_THREADS];
	for (int i = 0; i < RPC_TEST_CLIENT_THREADS; i++) {
		callers[i] = (struct caller){.rpc = rpc, .first_job_id = 1000000u * (i + 1)};
		assert_int_equal(pthread_create(&threads[i], NULL, caller_thread, &callers[i]), 0);
	}
	for (int i = 0; i < RPC_TEST_CLIENT_THREADS; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < RPC_TEST_CLIENT_THREADS; i++) {
		if (callers[i].failures != 0)
			fail_msg("thread %d: %d calls failed, first: %s", i, callers[i].failures,
			         callers[i].first_error);
		assert_int_equal(callers[i].mismatches, 0);
	}
	rpc_close(rpc);
}

static void test_open_refuses_a_bad_url(void **state)
{
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	assert_int_equal(rpc_open(&rpc, "carrier-pigeon://x", &err), JM_EINVAL);
	assert_null(rpc);
	assert_non_null(strstr(jm_err_text(&err), "carrier-pigeon://x"));
	assert_non_null(strstr(jm_err_text(&err), "use tcp://HOST:PORT or ipc:///PATH"));
	rpc_close(NULL);
}

static void test_a_list_passes_over_a_broker_that_does_not_connect(void **state)
{
	struct fixture *f = *state;
	char list[400];
	snprintf(list, sizeof list, "ipc://%s/nobody.ipc,%s", f->dir, f->url);
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_open(&rpc, list, &err), &err);
	uint64_t start_us = jm_mono_us();
	struct proto_msg req = status_request(7);
	struct rpc_reply reply;
	assert_jm_ok_err(rpc_call(rpc, &req, RPC_TEST_CALL_TIMEOUT_MS, &reply, &err), &err);
	assert_int_equal(reply.msg.u.job.job_id, 7);
	rpc_reply_fini(&reply);
	/* About one connect wait (1 s) on the first, far below the timeout. */
	assert_true(jm_mono_us() - start_us < (RPC_TEST_CALL_TIMEOUT_MS / 2) * 1000ull);
	rpc_close(rpc);
}

static void test_a_list_with_an_empty_entry_is_refused(void **state)
{
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	assert_int_equal(rpc_open(&rpc, "tcp://127.0.0.1:1,,tcp://127.0.0.1:2", &err), JM_EINVAL);
	assert_null(rpc);
	assert_non_null(strstr(jm_err_text(&err), "an empty address; write URL or URL1,URL2"));
}

static void test_broker_url_prefers_explicit_then_env_then_default(void **state)
{
	assert_int_equal(unsetenv("JOBMESH_BROKER"), 0);
	assert_string_equal(rpc_broker_url(NULL), "tcp://127.0.0.1:7400");
	assert_string_equal(rpc_broker_url(""), "tcp://127.0.0.1:7400");
	assert_int_equal(setenv("JOBMESH_BROKER", "ipc:///run/jm.ipc", 1), 0);
	assert_string_equal(rpc_broker_url(NULL), "ipc:///run/jm.ipc");
	assert_string_equal(rpc_broker_url("tcp://h:1"), "tcp://h:1");
	assert_int_equal(setenv("JOBMESH_BROKER", "", 1), 0);
	assert_string_equal(rpc_broker_url(NULL), "tcp://127.0.0.1:7400");
	assert_int_equal(unsetenv("JOBMESH_BROKER"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_call_gets_its_decoded_reply, setup_with_server,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_error_reply_becomes_its_code_and_text,
	                                    setup_with_server, teardown),
	    cmocka_unit_test_setup_teardown(test_call_without_server_times_out_within_bound, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_cuts_a_call_short_and_every_later_one,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_call_waits_for_a_broker_that_starts_late, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_calls_get_their_own_replies,
	                                    setup_with_server, teardown),
	    cmocka_unit_test(test_open_refuses_a_bad_url),
	    cmocka_unit_test_setup_teardown(test_a_list_passes_over_a_broker_that_does_not_connect,
	                                    setup_with_server, teardown),
	    cmocka_unit_test(test_a_list_with_an_empty_entry_is_refused),
	    cmocka_unit_test(test_broker_url_prefers_explicit_then_env_then_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
