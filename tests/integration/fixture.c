/* Shared integration-test fixture code: see fixture.h. */
#include "jm_test.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"

#define FIXTURE_ARGS_MAX 32
#define FIXTURE_LOG_LINES 30
#define FIXTURE_FAIL_LOG_LINES 40

const char *const fixture_fast_retries[] = {"--backoff-base-ms", "20", "--backoff-cap-ms", "100",
                                            NULL};

void fixture_args_join(const char **out, size_t out_count, const char *const *first,
                       const char *const *more)
{
	size_t used = 0;
	const char *const *lists[] = {first, more};
	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; lists[l] != NULL && lists[l][i] != NULL; i++) {
			if (used + 1 >= out_count)
				fail_msg("more than %zu arguments", out_count - 1);
			out[used++] = lists[l][i];
		}
	out[used] = NULL;
}

void fixture_broker_up(struct harness *h, const char *test_name, const char *const *args,
                       const char *const *more, struct harness_proc *broker)
{
	assert_jm_ok(harness_init(h, test_name));
	const char *joined[FIXTURE_ARGS_MAX];
	fixture_args_join(joined, FIXTURE_ARGS_MAX, args, more);
	assert_jm_ok(harness_broker_start(h, joined, broker));
}

void fixture_end(void **state, struct harness *h, struct harness_proc *broker)
{
	int rc = 0, status = 0;
	if (broker != NULL && broker->h != NULL) {
		status = -1;
		rc = harness_stop(broker, SIGTERM, 10000, &status);
	}
	if (rc != 0 || status != 0)
		harness_print_logs(h, FIXTURE_LOG_LINES);
	harness_fini(h);
	free(*state);
	*state = NULL;
	if (rc != 0 || status != 0)
		fail_msg("broker did not stop cleanly: rc %d status %d", rc, status);
}

struct listening {
	const char *out_path;
	size_t from; /* bytes of broker.out before the spawn */
	struct harness_proc *broker;
};

/* True once a new "listening " line is there, or the broker exited. */
static bool listening_or_exited_cb(void *arg)
{
	struct listening *l = arg;
	size_t len = 0;
	char *text = harness_read_file(l->out_path, &len);
	bool ready = text != NULL && len > l->from && strstr(text + l->from, "listening ") != NULL;
	free(text);
	return ready || !harness_is_running(l->broker);
}

bool fixture_spawn_broker(struct harness *h, char *const argv[], int timeout_ms,
                          struct harness_proc *broker)
{
	const char *out_path = harness_path(h, "broker.out");
	assert_non_null(out_path);
	struct stat st;
	size_t from = stat(out_path, &st) == 0 ? (size_t)st.st_size : 0;
	assert_jm_ok(harness_spawn(h, "broker", argv, broker));
	struct listening l = {out_path, from, broker};
	return harness_wait_for(timeout_ms, listening_or_exited_cb, &l, "the broker to listen") &&
	       harness_is_running(broker);
}

void fixture_worker_start(struct harness *h, const char *name, const char *queue,
                          const char *concurrency, const char *handler)
{
	struct harness_proc worker;
	const char *args[] = {"--queue",     queue,       "--concurrency",
	                      concurrency,   "--handler", handler,
	                      "--worker-id", name,        NULL};
	assert_jm_ok(harness_worker_start(h, name, args, &worker));
}

void fixture_wait_finished(struct harness *h, jm_client *client, uint64_t id, int timeout_ms,
                           jm_job_info *info)
{
	int rc = jm_client_wait(client, id, timeout_ms, info);
	if (rc != 0) {
		harness_print_logs(h, FIXTURE_LOG_LINES);
		fail_msg("wait for job %llu: %d %s", (unsigned long long)id, rc,
		         jm_client_last_error());
	}
}

struct state_wait {
	jm_client *client;
	uint64_t id;
	int state;
};

static bool job_in_state_cb(void *arg)
{
	struct state_wait *w = arg;
	jm_job_info info = {0};
	assert_jm_ok(jm_client_status(w->client, w->id, &info));
	int state = info.state;
	jm_job_info_fini(&info);
	return state == w->state;
}

void fixture_await_state(struct harness *h, jm_client *client, uint64_t id, int state,
                         int timeout_ms)
{
	struct state_wait w = {client, id, state};
	if (!harness_wait_for(timeout_ms, job_in_state_cb, &w, jm_job_state_name(state))) {
		harness_print_logs(h, 20);
		fail_msg("job %llu never reached %s", (unsigned long long)id,
		         jm_job_state_name(state));
	}
}

/* ---- raw REQ calls ------------------------------------------------------- */

struct rpc *fixture_rpc_open(const char *url)
{
	struct rpc *rpc;
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_open(&rpc, url, &err), &err);
	return rpc;
}

uint64_t fixture_rpc_submit(struct rpc *rpc, const char *queue, const char *payload,
                            uint64_t timeout_ms)
{
	struct proto_job_spec spec = {.payload = {(const uint8_t *)payload, strlen(payload)},
	                              .attrs.timeout_ms = timeout_ms};
	strcpy(spec.attrs.queue, queue);
	strcpy(spec.attrs.type, "t");
	struct proto_msg req = {.type = PROTO_SUBMIT};
	req.u.submit.jobs_count = 1;
	req.u.submit.jobs = &spec;
	struct rpc_reply reply = {0};
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_call(rpc, &req, 5000, &reply, &err), &err);
	assert_int_equal(reply.msg.type, PROTO_SUBMITTED);
	uint64_t id = reply.msg.u.submitted.ids[0];
	rpc_reply_fini(&reply);
	return id;
}

uint64_t fixture_instance_of(const char *worker)
{
	uint64_t hash = 14695981039346656037ull; /* FNV-1a */
	for (const char *c = worker; *c; c++)
		hash = (hash ^ (uint8_t)*c) * 1099511628211ull;
	return hash | 1;
}

struct proto_delivery fixture_rpc_fetch(struct rpc *rpc, const char *worker, const char *queue,
                                        uint32_t wait_ms, uint32_t call_ms)
{
	proto_name queues[1];
	strcpy(queues[0], queue);
	struct proto_msg req = {.type = PROTO_FETCH};
	strcpy(req.u.fetch.worker_id, worker);
	req.u.fetch.instance = fixture_instance_of(worker);
	req.u.fetch.queues_count = 1;
	req.u.fetch.queues = queues;
	req.u.fetch.max_jobs = 1;
	req.u.fetch.wait_ms = wait_ms;
	struct rpc_reply reply = {0};
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_call(rpc, &req, call_ms, &reply, &err), &err);
	assert_int_equal(reply.msg.type, PROTO_JOBS);
	assert_int_equal(reply.msg.u.jobs.jobs_count, 1);
	struct proto_delivery d = reply.msg.u.jobs.jobs[0];
	d.payload = (struct proto_bytes){0};
	rpc_reply_fini(&reply);
	return d;
}

int32_t fixture_rpc_ack(struct rpc *rpc, const char *worker, uint64_t job_id, uint64_t lease,
                        const char *result)
{
	struct proto_settle_item item = {
	    .job_id = job_id,
	    .lease = lease,
	    .outcome = PROTO_SETTLE_COMPLETED,
	    .data = {(const uint8_t *)result, (uint32_t)strlen(result)},
	};
	struct proto_msg req = {.type = PROTO_SETTLE};
	strcpy(req.u.settle.worker_id, worker);
	req.u.settle.instance = fixture_instance_of(worker);
	req.u.settle.items_count = 1;
	req.u.settle.items = &item;
	struct rpc_reply reply = {0};
	struct jm_err err = {0};
	assert_jm_ok_err(rpc_call(rpc, &req, 5000, &reply, &err), &err);
	assert_int_equal(reply.msg.type, PROTO_SETTLED);
	assert_int_equal(reply.msg.u.settled.codes_count, 1);
	int32_t code = reply.msg.u.settled.codes[0];
	rpc_reply_fini(&reply);
	return code;
}

/* ---- files and processes ------------------------------------------------- */

size_t fixture_count_in_file(const char *path, const char *text)
{
	char *content = harness_read_file(path, NULL);
	if (content == NULL)
		return 0;
	size_t count = 0;
	for (const char *at = strstr(content, text); at != NULL; at = strstr(at + 1, text))
		count++;
	free(content);
	return count;
}

bool fixture_pid_is_gone(pid_t pid)
{
	if (kill(pid, 0) != 0)
		return errno == ESRCH;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return true;
	char buf[512];
	size_t got = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[got] = '\0';
	char *close_paren = strrchr(buf, ')');
	char state = 0;
	return close_paren && sscanf(close_paren + 1, " %c", &state) == 1 && state == 'Z';
}

void fixture_print_logs(struct harness *h, const char *extra_path)
{
	harness_print_logs(h, FIXTURE_FAIL_LOG_LINES);
	if (extra_path == NULL)
		return;
	char *text = harness_read_file(extra_path, NULL);
	const char *name = strrchr(extra_path, '/');
	fprintf(stderr, "%s:\n%s\n", name ? name + 1 : extra_path, text ? text : "(none)");
	free(text);
}
