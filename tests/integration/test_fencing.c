/* Fenced leases, attacked through a real broker the way a peer on the
 * network would (issue 10): a forged settle of another worker's job with
 * guessed lease numbers, the same with the real token from another process,
 * a version 1 ACK, and a heartbeat or fetch under another worker's id with
 * a new instance. Each is refused, the journal on disk does not change by a
 * byte, and the job ends with the real worker's outcome, run once. */
#include "jm_test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <jobmesh/client.h>

#include "fixture.h"
#include "harness.h"
#include "message.h"
#include "rpc.h"
#include "sock_close.h"
#include "stack.h"

#define MALLORY_INSTANCE 0x6d616c6c6f7279ull
#define IMPOSTOR_INSTANCE 0xabad1deaull

static int fencing_setup(void **state)
{
	stack_open(state, "fencing", NULL, NULL, STACK_RPC | STACK_CLIENT);
	return 0;
}

/* ---- what is stored ------------------------------------------------------ */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An FNV-1a digest of every file in the broker's data dir, names and
 * bytes, in name order: equal digests mean nothing stored changed. */
static uint64_t data_digest(struct stack *f)
{
	const char *dir = harness_path(&f->h, "data");
	DIR *d = opendir(dir);
	assert_non_null(d);
	char *names[64];
	size_t count = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		assert_true(count < sizeof names / sizeof names[0]);
		names[count] = strdup(e->d_name);
		assert_non_null(names[count]);
		count++;
	}
	closedir(d);
	qsort(names, count, sizeof names[0], name_cmp);
	uint64_t hash = 14695981039346656037ull;
	for (size_t i = 0; i < count; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		size_t len = 0;
		char *bytes = harness_read_file(path, &len);
		for (const char *c = names[i]; *c; c++)
			hash = (hash ^ (uint8_t)*c) * 1099511628211ull;
		for (size_t k = 0; bytes != NULL && k < len; k++)
			hash = (hash ^ (uint8_t)bytes[k]) * 1099511628211ull;
		free(bytes);
		free(names[i]);
	}
	return hash;
}

/* A submit answered only once durable: every record appended before it
 * (a delivery's LEASE does not wait for its sync) is on disk after it. */
static void journal_barrier(struct stack *f)
{
	fixture_rpc_submit(f->rpc, "barrier", "b", 0);
}

static jm_job_info job_status(struct stack *f, uint64_t id)
{
	jm_job_info info;
	assert_jm_ok(jm_client_result(f->client, id, &info));
	return info;
}

/* ---- raw requests, as an attacker sends them ----------------------------- */

/* A SETTLE of one item as worker/instance; returns the item's code. */
static int32_t settle_as(struct stack *f, const char *worker, uint64_t instance, uint64_t job_id,
                         uint64_t lease, uint32_t outcome, const char *data)
{
	struct proto_settle_item item = {
	    .job_id = job_id,
	    .lease = lease,
	    .outcome = outcome,
	    .data = {(const uint8_t *)data, (uint32_t)strlen(data)},
	    .permanent = outcome == PROTO_SETTLE_FAILED,
	};
	struct proto_msg req = {.type = PROTO_SETTLE};
	snprintf(req.u.settle.worker_id, sizeof req.u.settle.worker_id, "%s", worker);
	req.u.settle.instance = instance;
	req.u.settle.items_count = 1;
	req.u.settle.items = &item;
	struct rpc_reply reply = {0};
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_call(f->rpc, &req, 5000, &reply, &err), &err);
	assert_int_equal(reply.msg.type, PROTO_SETTLED);
	assert_int_equal(reply.msg.u.settled.codes_count, 1);
	int32_t code = reply.msg.u.settled.codes[0];
	rpc_reply_fini(&reply);
	return code;
}

static int32_t progress_as(struct stack *f, const char *worker, uint64_t instance, uint64_t job_id,
                           uint64_t lease)
{
	struct proto_msg req = {.type = PROTO_PROGRESS};
	struct proto_progress *p = &req.u.progress;
	snprintf(p->worker_id, sizeof p->worker_id, "%s", worker);
	p->instance = instance;
	p->job_id = job_id;
	p->lease = lease;
	p->done = 1;
	p->total = 1;
	struct rpc_reply reply = {0};
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_call(f->rpc, &req, 5000, &reply, &err), &err);
	assert_int_equal(reply.msg.type, PROTO_SETTLED);
	int32_t code = reply.msg.u.settled.codes[0];
	rpc_reply_fini(&reply);
	return code;
}

/* Sends req, which the broker must refuse with an ERROR of code whose
 * text holds says. */
static void expect_refused(struct stack *f, const struct proto_msg *req, int code, const char *says)
{
	struct rpc_reply reply = {0};
	struct jm_err err = {0};
	int rc = rpc_call(f->rpc, req, 5000, &reply, &err);
	if (rc == 0)
		rpc_reply_fini(&reply);
	if (rc != code || strstr(err.msg, says) == NULL)
		fail_msg("%s: got %d \"%s\", expected %d with \"%s\"", proto_type_name(req->type),
		         rc, err.msg, code, says);
}

static void heartbeat_as_impostor(struct stack *f, const char *worker)
{
	struct proto_msg req = {.type = PROTO_HEARTBEAT};
	struct proto_heartbeat *hb = &req.u.heartbeat;
	snprintf(hb->worker_id, sizeof hb->worker_id, "%s", worker);
	hb->instance = IMPOSTOR_INSTANCE;
	hb->concurrency = 1;
	expect_refused(f, &req, JM_ESTATE, "belongs to a running process");
}

static void fetch_as_impostor(struct stack *f, const char *worker, const char *queue)
{
	proto_name queues[1];
	snprintf(queues[0], sizeof queues[0], "%s", queue);
	struct proto_msg req = {.type = PROTO_FETCH};
	snprintf(req.u.fetch.worker_id, sizeof req.u.fetch.worker_id, "%s", worker);
	req.u.fetch.instance = IMPOSTOR_INSTANCE;
	req.u.fetch.queues_count = 1;
	req.u.fetch.queues = queues;
	req.u.fetch.max_jobs = 1;
	expect_refused(f, &req, JM_ESTATE, "belongs to a running process");
}

static void put_be64(unsigned char *at, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		at[i] = (unsigned char)(v >> (56 - 8 * i));
}

/* A version 1 ACK [1, 6, [worker, [[job_id, lease, result]]]] in raw
 * bytes on a fresh socket: refused with the version error. */
static void version_1_ack_is_refused(struct stack *f, const char *worker, uint64_t job_id,
                                     uint64_t lease)
{
	unsigned char msg[64];
	size_t len = 0;
	size_t worker_len = strlen(worker);
	assert_true(worker_len < 32);
	msg[len++] = 0x93;
	msg[len++] = 0x01;
	msg[len++] = 0x06;
	msg[len++] = 0x92;
	msg[len++] = (unsigned char)(0xa0 | worker_len);
	memcpy(msg + len, worker, worker_len);
	len += worker_len;
	msg[len++] = 0x91;
	msg[len++] = 0x93;
	msg[len++] = 0xcf;
	put_be64(msg + len, job_id);
	len += 8;
	msg[len++] = 0xcf;
	put_be64(msg + len, lease);
	len += 8;
	msg[len++] = 0xa6;
	memcpy(msg + len, "forged", 6);
	len += 6;

	nng_socket sock;
	assert_int_equal(nng_req0_open(&sock), 0);
	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 5000);
	assert_int_equal(nng_dial(sock, f->h.broker_url, NULL, 0), 0);
	assert_int_equal(nng_send(sock, msg, len, 0), 0);
	void *reply;
	size_t reply_len;
	assert_int_equal(nng_recv(sock, &reply, &reply_len, NNG_FLAG_ALLOC), 0);
	struct proto_msg got;
	struct jm_err err = {0};
	assert_jm_ok_err(proto_decode(reply, reply_len, &got, &err), &err);
	assert_int_equal(got.type, PROTO_ERROR);
	assert_int_equal(got.u.error.code, JM_EVERSION);
	char text[512];
	size_t n =
	    got.u.error.message.len < sizeof text - 1 ? got.u.error.message.len : sizeof text - 1;
	memcpy(text, got.u.error.message.ptr, n);
	text[n] = '\0';
	if (strstr(text, "upgrade the worker") == NULL)
		fail_msg("a version 1 ack got \"%s\", expected it to say to upgrade", text);
	proto_msg_fini(&got);
	nng_free(reply, reply_len);
	sock_close(sock);
}

/* ---- tests ----------------------------------------------------------------- */

/* An anonymous peer names itself as a worker and settles a job another
 * worker runs, with the lease numbers a broker used to hand out first
 * (boot_epoch << 32 and its neighbours, for the first boots), or with the
 * real token but from another process under the holder's id: every item is
 * stale, nothing is journaled, and the real worker's result stands. */
static void
test_a_forged_settle_with_a_guessed_lease_is_refused_and_the_real_result_stands(void **state)
{
	struct stack *f = *state;
	uint64_t id = fixture_rpc_submit(f->rpc, "fenced", "p", 0);
	struct proto_delivery d = fixture_rpc_fetch(f->rpc, "real", "fenced", 5000, 10000);
	assert_int_equal(d.job_id, id);
	journal_barrier(f);
	uint64_t before = data_digest(f);

	uint32_t guesses = 0;
	for (uint64_t epoch = 0; epoch <= 4; epoch++) {
		for (uint64_t k = 0; k < 4; k++) {
			uint64_t guess = (epoch << 32) + k;
			if (guess == d.lease)
				continue; /* 2^-64: a token is never a guess */
			assert_int_equal(settle_as(f, "mallory", MALLORY_INSTANCE, id, guess,
			                           PROTO_SETTLE_COMPLETED, "forged"),
			                 JM_ESTALE);
			assert_int_equal(settle_as(f, "real", IMPOSTOR_INSTANCE, id, guess,
			                           PROTO_SETTLE_FAILED, "forged failure"),
			                 JM_ESTALE);
			assert_int_equal(settle_as(f, "real", fixture_instance_of("real"), id,
			                           guess, PROTO_SETTLE_COMPLETED, "forged"),
			                 JM_ESTALE);
			guesses += 3;
		}
	}
	/* The real token, replayed by anyone but the holder's process. */
	assert_int_equal(settle_as(f, "mallory", MALLORY_INSTANCE, id, d.lease,
	                           PROTO_SETTLE_COMPLETED, "forged"),
	                 JM_ESTALE);
	assert_int_equal(settle_as(f, "real", IMPOSTOR_INSTANCE, id, d.lease, PROTO_SETTLE_RELEASED,
	                           "forged release"),
	                 JM_ESTALE);
	assert_int_equal(progress_as(f, "mallory", MALLORY_INSTANCE, id, d.lease), JM_ESTALE);
	assert_int_equal(progress_as(f, "real", IMPOSTOR_INSTANCE, id, d.lease), JM_ESTALE);
	version_1_ack_is_refused(f, "real", id, 1ull << 32);
	printf("%u forged settles refused\n", guesses + 2);

	assert_true(data_digest(f) == before);
	jm_job_info info = job_status(f, id);
	assert_int_equal(info.state, JM_STATE_ACTIVE);
	assert_int_equal(info.attempt, 1);
	assert_int_equal(info.result_len, 0);
	jm_job_info_fini(&info);

	assert_int_equal(fixture_rpc_ack(f->rpc, "real", id, d.lease, "real-result"), 0);
	info = job_status(f, id);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	assert_int_equal(info.attempt, 1);
	assert_string_equal((const char *)info.result, "real-result");
	jm_job_info_fini(&info);
}

static const char hold_script[] =
    "#!/bin/sh\n"
    "echo \"run $JOBMESH_JOB_ID $JOBMESH_ATTEMPT\" >> \"$JM_FENCING_RUNS\"\n"
    "i=0\n"
    "while [ ! -e \"$JM_FENCING_RELEASE\" ] && [ $i -lt 600 ]; do\n"
    "  sleep 0.05; i=$((i + 1))\n"
    "done\n"
    "printf real-result\n";

struct runs_wait {
	const char *path;
	size_t lines;
};

static bool runs_reached_cb(void *arg)
{
	struct runs_wait *w = arg;
	return fixture_count_in_file(w->path, "run ") >= w->lines;
}

/* A heartbeat (and a fetch) under a running worker's id with a new
 * instance would once have made the broker take the worker for restarted
 * and requeue its jobs: now it is refused while the real process is alive,
 * nothing is journaled, and the job runs once and completes with the real
 * worker's result. */
static void test_a_heartbeat_under_another_workers_id_requeues_none_of_its_jobs(void **state)
{
	struct stack *f = *state;
	const char *runs = harness_write_file(&f->h, "runs.log", "", 0644);
	const char *release = harness_path(&f->h, "release");
	const char *script = harness_write_file(&f->h, "hold.sh", hold_script, 0755);
	assert_non_null(runs);
	assert_non_null(script);
	assert_int_equal(setenv("JM_FENCING_RUNS", runs, 1), 0);
	assert_int_equal(setenv("JM_FENCING_RELEASE", release, 1), 0);
	char handler[600];
	snprintf(handler, sizeof handler, "t=%s", script);
	const char *args[] = {"--queue", "fenced",      "--concurrency", "1", "--handler",
	                      handler,   "--worker-id", "victim",        NULL};
	assert_jm_ok(harness_worker_start(&f->h, "victim", args, &f->worker));

	uint64_t id = fixture_rpc_submit(f->rpc, "fenced", "p", 0);
	struct runs_wait started = {runs, 1};
	if (!harness_wait_for(10000, runs_reached_cb, &started, "the victim to start the job")) {
		harness_print_logs(&f->h, 20);
		fail_msg("job %llu never started", (unsigned long long)id);
	}
	journal_barrier(f);
	uint64_t before = data_digest(f);

	for (int round = 0; round < 5; round++) {
		heartbeat_as_impostor(f, "victim");
		fetch_as_impostor(f, "victim", "fenced");
	}

	assert_true(data_digest(f) == before);
	jm_job_info info = job_status(f, id);
	assert_int_equal(info.state, JM_STATE_ACTIVE);
	assert_int_equal(info.attempt, 1);
	jm_job_info_fini(&info);

	FILE *go = fopen(release, "w");
	assert_non_null(go);
	fclose(go);
	fixture_wait_finished(&f->h, f->client, id, 15000, &info);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	assert_int_equal(info.attempt, 1);
	assert_string_equal((const char *)info.result, "real-result");
	jm_job_info_fini(&info);
	assert_int_equal(fixture_count_in_file(runs, "run "), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_a_forged_settle_with_a_guessed_lease_is_refused_and_the_real_result_stands,
	        fencing_setup, stack_close),
	    cmocka_unit_test_setup_teardown(
	        test_a_heartbeat_under_another_workers_id_requeues_none_of_its_jobs, fencing_setup,
	        stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
