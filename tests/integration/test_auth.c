/* Tokens, tenants, secure-by-default and TLS through a real broker: each
 * attack of issue 10 item 9 that concerns them (no token, a wrong token,
 * another tenant's token, a role reaching past itself, a plaintext client
 * at a TLS listener, a client without the CA, a broker exposed without
 * --auth) fails, and the admin's view of what is stored is the same
 * afterwards. Certificates are made at test time with openssl. */
#include "jm_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jobmesh/client.h>

#include "fixture.h"
#include "harness.h"
#include "message.h"
#include "rpc.h"
#include "sha256.h"

struct auth_fixture {
	struct harness h;
	struct harness_proc broker;
	const char *auth_path;
};

static void hex_hash(const char *secret, char out[65])
{
	uint8_t d[JM_SHA256_BYTES];
	jm_sha256(secret, strlen(secret), d);
	for (int i = 0; i < JM_SHA256_BYTES; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The auth file: shop's producer, worker and viewer, billing's producer,
 * and an admin; shop_secret names the shop producer's secret. */
static const char *write_auth(struct harness *h, const char *shop_secret)
{
	char a[65], b[65], c[65], d[65], e[65], text[2048];
	hex_hash(shop_secret, a);
	hex_hash("shop-worker-secret", b);
	hex_hash("shop-viewer-secret", c);
	hex_hash("billing-secret", d);
	hex_hash("admin-secret", e);
	snprintf(text, sizeof text,
	         "tokens:\n"
	         "  - {name: shop-api, sha256: %s, role: producer, queues: [\"shop.*\"]}\n"
	         "  - {name: shop-workers, sha256: %s, role: worker, queues: [\"shop.*\"]}\n"
	         "  - {name: shop-dash, sha256: %s, role: viewer, queues: [\"shop.*\"]}\n"
	         "  - {name: billing-api, sha256: %s, role: producer, queues: [\"billing.*\"]}\n"
	         "  - {name: ops, sha256: %s, role: admin}\n",
	         a, b, c, d, e);
	return harness_write_file(h, "auth.yaml", text, 0600);
}

static int auth_setup(void **state)
{
	unsetenv("JOBMESH_TOKEN");
	struct auth_fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	*state = f;
	assert_jm_ok(harness_init(&f->h, "test_auth"));
	f->auth_path = write_auth(&f->h, "shop-secret");
	const char *args[] = {"--auth", f->auth_path, NULL};
	assert_jm_ok(harness_broker_start(&f->h, args, &f->broker));
	return 0;
}

static int auth_teardown(void **state)
{
	struct auth_fixture *f = *state;
	if (f != NULL)
		fixture_end(state, &f->h, &f->broker);
	return 0;
}

static struct rpc *open_as(const char *url, const char *token)
{
	struct rpc_security sec = {.token = token};
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	if (rpc_open_secure(&rpc, url, &sec, &err) != 0)
		fail_msg("rpc_open_secure %s: %s", url, jm_err_text(&err));
	return rpc;
}

/* One request; returns the code, with the error text in *text_out. */
static int call(struct rpc *rpc, struct proto_msg *req, struct rpc_reply *reply,
                char text_out[JM_ERR_MSG_MAX])
{
	struct jm_err err = {0};
	int rc = rpc_call(rpc, req, 5000, reply, &err);
	if (text_out)
		snprintf(text_out, JM_ERR_MSG_MAX, "%s", rc ? jm_err_text(&err) : "");
	return rc;
}

static int submit_as(struct rpc *rpc, const char *queue, char text[JM_ERR_MSG_MAX], uint64_t *id)
{
	struct proto_job_spec spec = {.payload = {(const uint8_t *)"p", 1}};
	snprintf(spec.attrs.queue, sizeof spec.attrs.queue, "%s", queue);
	snprintf(spec.attrs.type, sizeof spec.attrs.type, "t");
	struct proto_msg req = {.type = PROTO_SUBMIT};
	req.u.submit.jobs_count = 1;
	req.u.submit.jobs = &spec;
	struct rpc_reply reply;
	int rc = call(rpc, &req, &reply, text);
	if (rc == 0) {
		assert_int_equal(reply.msg.type, PROTO_SUBMITTED);
		if (id)
			*id = reply.msg.u.submitted.ids[0];
		rpc_reply_fini(&reply);
	}
	return rc;
}

/* "queue:pending,..." of every queue the token sees, sorted by name. */
static void stats_as(struct rpc *rpc, char *out, size_t out_size)
{
	struct proto_msg req = {.type = PROTO_STATS};
	struct rpc_reply reply;
	char text[JM_ERR_MSG_MAX];
	int rc = call(rpc, &req, &reply, text);
	if (rc != 0)
		fail_msg("stats: %s", text);
	size_t used = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < reply.msg.u.stats_reply.queues_count; i++) {
		const struct proto_queue_stats *q = &reply.msg.u.stats_reply.queues[i];
		used += (size_t)snprintf(out + used, out_size - used, "%s%s:%llu/%llu",
		                         i ? "," : "", q->name, (unsigned long long)q->pending,
		                         (unsigned long long)q->active);
	}
	rpc_reply_fini(&reply);
}

static void assert_contains(const char *text, const char *want)
{
	if (strstr(text, want) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", text, want);
}

static void test_a_request_without_a_token_or_with_a_wrong_one_is_refused(void **state)
{
	struct auth_fixture *f = *state;
	struct rpc *admin = open_as(f->h.broker_url, "admin-secret");
	char before[512], after[512], text[JM_ERR_MSG_MAX];
	assert_int_equal(submit_as(admin, "shop.orders", text, NULL), 0);
	stats_as(admin, before, sizeof before);

	struct rpc *anon = open_as(f->h.broker_url, NULL);
	assert_int_equal(submit_as(anon, "shop.orders", text, NULL), JM_EAUTH);
	assert_contains(text, "authentication required: send the token first (--token or "
	                      "JOBMESH_TOKEN)");
	struct proto_msg stats = {.type = PROTO_STATS};
	struct rpc_reply reply;
	assert_int_equal(call(anon, &stats, &reply, text), JM_EAUTH);

	struct rpc *wrong = open_as(f->h.broker_url, "shop-secret-");
	assert_int_equal(submit_as(wrong, "shop.orders", text, NULL), JM_EAUTH);
	assert_contains(text, "token not recognised");
	/* The hash from the file is not a token either. */
	char hash[65];
	hex_hash("admin-secret", hash);
	struct rpc *hashed = open_as(f->h.broker_url, hash);
	assert_int_equal(submit_as(hashed, "shop.orders", text, NULL), JM_EAUTH);

	stats_as(admin, after, sizeof after);
	assert_string_equal(before, after);
	rpc_close(anon);
	rpc_close(wrong);
	rpc_close(hashed);
	rpc_close(admin);
}

static void test_a_tenant_cannot_reach_or_see_another_tenants_queues(void **state)
{
	struct auth_fixture *f = *state;
	struct rpc *admin = open_as(f->h.broker_url, "admin-secret");
	struct rpc *shop = open_as(f->h.broker_url, "shop-secret");
	struct rpc *billing = open_as(f->h.broker_url, "billing-secret");
	char text[JM_ERR_MSG_MAX], seen[512], before[512], after[512];
	uint64_t bill_id, shop_id;
	assert_int_equal(submit_as(billing, "billing.invoices", text, &bill_id), 0);
	assert_int_equal(submit_as(shop, "shop.orders", text, &shop_id), 0);
	stats_as(admin, before, sizeof before);
	assert_string_equal(before, "billing.invoices:1/0,shop.orders:1/0");

	assert_int_equal(submit_as(shop, "billing.invoices", text, NULL), JM_EFORBIDDEN);
	assert_contains(text, "queue \"billing.invoices\" is not among token \"shop-api\"'s "
	                      "queues (shop.*)");
	stats_as(shop, seen, sizeof seen);
	assert_string_equal(seen, "shop.orders:1/0");
	/* A foreign job by id is not found, and cannot be cancelled. */
	struct proto_msg status = {.type = PROTO_STATUS, .u.job_ref.job_id = bill_id};
	struct rpc_reply reply;
	assert_int_equal(call(shop, &status, &reply, text), JM_ENOTFOUND);
	struct proto_msg cancel = {.type = PROTO_CANCEL, .u.job_ref.job_id = bill_id};
	assert_int_equal(call(shop, &cancel, &reply, text), JM_ENOTFOUND);
	/* A query over every queue lists only its own jobs. */
	struct proto_msg query = {.type = PROTO_JOB_QUERY, .u.job_query.limit = 100};
	assert_int_equal(call(shop, &query, &reply, text), 0);
	assert_int_equal(reply.msg.u.job_list.jobs_count, 1);
	assert_true(reply.msg.u.job_list.jobs[0].job_id == shop_id);
	rpc_reply_fini(&reply);

	stats_as(admin, after, sizeof after);
	assert_string_equal(before, after);
	rpc_close(shop);
	rpc_close(billing);
	rpc_close(admin);
}

/* A batch of two jobs in queue, submitted by rpc; returns its id. */
static uint64_t batch_as(struct rpc *rpc, const char *queue)
{
	struct proto_job_spec specs[2] = {{.payload = {(const uint8_t *)"p", 1}},
	                                  {.payload = {(const uint8_t *)"q", 1}}};
	for (int i = 0; i < 2; i++) {
		snprintf(specs[i].attrs.queue, sizeof specs[i].attrs.queue, "%s", queue);
		snprintf(specs[i].attrs.type, sizeof specs[i].attrs.type, "t");
	}
	struct proto_msg req = {.type = PROTO_SUBMIT};
	req.u.submit.jobs_count = 2;
	req.u.submit.jobs = specs;
	req.u.submit.as_batch = true;
	struct rpc_reply reply;
	char text[JM_ERR_MSG_MAX];
	if (call(rpc, &req, &reply, text) != 0)
		fail_msg("batch submit to %s: %s", queue, text);
	uint64_t id = reply.msg.u.submitted.batch_id;
	assert_true(id != 0);
	rpc_reply_fini(&reply);
	return id;
}

/* The ids of the running batches the token sees, in order, as "a,b". */
static void batches_as(struct rpc *rpc, char *out, size_t out_size)
{
	struct proto_msg req = {.type = PROTO_BATCHES};
	struct rpc_reply reply;
	char text[JM_ERR_MSG_MAX];
	if (call(rpc, &req, &reply, text) != 0)
		fail_msg("batches: %s", text);
	size_t used = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < reply.msg.u.batches_reply.batches_count && used < out_size; i++)
		used += (size_t)snprintf(
		    out + used, out_size - used, "%s%llu", i ? "," : "",
		    (unsigned long long)reply.msg.u.batches_reply.batches[i].batch_id);
	rpc_reply_fini(&reply);
}

/* Batches belong to the tenant of their jobs' queues: another tenant's
 * batch is not listed, and its status is "not found" exactly as an id that
 * does not exist; an admin sees both. */
static void test_a_tenant_neither_finds_nor_lists_another_tenants_batch(void **state)
{
	struct auth_fixture *f = *state;
	struct rpc *admin = open_as(f->h.broker_url, "admin-secret");
	struct rpc *shop = open_as(f->h.broker_url, "shop-secret");
	struct rpc *viewer = open_as(f->h.broker_url, "shop-viewer-secret");
	struct rpc *billing = open_as(f->h.broker_url, "billing-secret");
	uint64_t shop_batch = batch_as(shop, "shop.orders");
	uint64_t bill_batch = batch_as(billing, "billing.invoices");
	char seen[128], want[128];
	snprintf(want, sizeof want, "%llu", (unsigned long long)shop_batch);
	batches_as(shop, seen, sizeof seen);
	assert_string_equal(seen, want);
	batches_as(viewer, seen, sizeof seen);
	assert_string_equal(seen, want);
	snprintf(want, sizeof want, "%llu", (unsigned long long)bill_batch);
	batches_as(billing, seen, sizeof seen);
	assert_string_equal(seen, want);
	snprintf(want, sizeof want, "%llu,%llu", (unsigned long long)shop_batch,
	         (unsigned long long)bill_batch);
	batches_as(admin, seen, sizeof seen);
	assert_string_equal(seen, want);

	char text[JM_ERR_MSG_MAX], missing[JM_ERR_MSG_MAX];
	struct rpc_reply reply;
	struct proto_msg status = {.type = PROTO_BATCH_STATUS, .u.job_ref.job_id = shop_batch};
	assert_int_equal(call(shop, &status, &reply, text), 0);
	assert_int_equal(reply.msg.u.batch.total, 2);
	rpc_reply_fini(&reply);
	status.u.job_ref.job_id = bill_batch;
	assert_int_equal(call(shop, &status, &reply, text), JM_ENOTFOUND);
	status.u.job_ref.job_id = 999999;
	assert_int_equal(call(shop, &status, &reply, missing), JM_ENOTFOUND);
	/* Both say "batch N not found": the same text but for the number. */
	assert_contains(text, "not found: no such id");
	assert_contains(missing, "not found: no such id");
	status.u.job_ref.job_id = bill_batch;
	assert_int_equal(call(admin, &status, &reply, text), 0);
	rpc_reply_fini(&reply);
	rpc_close(billing);
	rpc_close(viewer);
	rpc_close(shop);
	rpc_close(admin);
}

static void test_each_role_is_refused_what_it_may_not_do(void **state)
{
	struct auth_fixture *f = *state;
	struct rpc *admin = open_as(f->h.broker_url, "admin-secret");
	struct rpc *worker = open_as(f->h.broker_url, "shop-worker-secret");
	struct rpc *viewer = open_as(f->h.broker_url, "shop-viewer-secret");
	struct rpc *producer = open_as(f->h.broker_url, "shop-secret");
	char text[JM_ERR_MSG_MAX], before[512], after[512], seen[512];
	uint64_t id;
	assert_int_equal(submit_as(producer, "shop.orders", text, &id), 0);
	stats_as(admin, before, sizeof before);

	assert_int_equal(submit_as(worker, "shop.orders", text, NULL), JM_EFORBIDDEN);
	assert_contains(text, "role worker");
	assert_int_equal(submit_as(viewer, "shop.orders", text, NULL), JM_EFORBIDDEN);
	assert_contains(text, "role viewer");
	struct proto_msg cancel = {.type = PROTO_CANCEL, .u.job_ref.job_id = id};
	struct rpc_reply reply;
	assert_int_equal(call(viewer, &cancel, &reply, text), JM_EFORBIDDEN);
	proto_name queue = "shop.orders";
	struct proto_msg fetch = {.type = PROTO_FETCH};
	fetch.u.fetch = (struct proto_fetch){.worker_id = "w1",
	                                     .instance = 1,
	                                     .queues_count = 1,
	                                     .queues = &queue,
	                                     .max_jobs = 1,
	                                     .wait_ms = 0};
	assert_int_equal(call(producer, &fetch, &reply, text), JM_EFORBIDDEN);
	assert_int_equal(call(viewer, &fetch, &reply, text), JM_EFORBIDDEN);
	struct proto_msg workers = {.type = PROTO_WORKERS};
	assert_int_equal(call(producer, &workers, &reply, text), JM_EFORBIDDEN);
	proto_name foreign = "billing.x";
	fetch.u.fetch.queues = &foreign;
	assert_int_equal(call(worker, &fetch, &reply, text), JM_EFORBIDDEN);
	stats_as(admin, after, sizeof after);
	assert_string_equal(before, after);

	/* What each may do. */
	stats_as(viewer, seen, sizeof seen);
	assert_string_equal(seen, "shop.orders:1/0");
	fetch.u.fetch.queues = &queue;
	struct proto_msg hb = {.type = PROTO_HEARTBEAT};
	hb.u.heartbeat = (struct proto_heartbeat){.worker_id = "w1",
	                                          .instance = 1,
	                                          .host = {(const uint8_t *)"h", 1},
	                                          .pid = 1,
	                                          .concurrency = 1,
	                                          .queues_count = 1,
	                                          .queues = &queue};
	assert_int_equal(call(worker, &hb, &reply, text), 0);
	rpc_reply_fini(&reply);
	assert_int_equal(call(worker, &fetch, &reply, text), 0);
	assert_int_equal(reply.msg.u.jobs.jobs_count, 1);
	assert_true(reply.msg.u.jobs.jobs[0].job_id == id);
	rpc_reply_fini(&reply);
	assert_int_equal(call(viewer, &workers, &reply, text), 0);
	assert_int_equal(reply.msg.u.workers_reply.workers_count, 1);
	rpc_reply_fini(&reply);
	stats_as(admin, after, sizeof after);
	assert_string_equal(after, "shop.orders:0/1");
	rpc_close(worker);
	rpc_close(viewer);
	rpc_close(producer);
	rpc_close(admin);
}

struct reload_probe {
	const char *url;
	const char *token;
};

static bool token_accepted(void *arg)
{
	struct reload_probe *p = arg;
	struct rpc *rpc = open_as(p->url, p->token);
	struct proto_msg stats = {.type = PROTO_STATS};
	struct rpc_reply reply;
	int rc = call(rpc, &stats, &reply, NULL);
	if (rc == 0)
		rpc_reply_fini(&reply);
	rpc_close(rpc);
	return rc == 0;
}

static bool log_says_kept(void *arg)
{
	struct auth_fixture *f = arg;
	return fixture_count_in_file(harness_path(&f->h, "broker.err"), "stay in force") > 0;
}

static void test_sighup_rotates_a_token_and_a_bad_file_keeps_the_old_ones(void **state)
{
	struct auth_fixture *f = *state;
	struct reload_probe old_tok = {f->h.broker_url, "shop-secret"};
	struct reload_probe new_tok = {f->h.broker_url, "shop-secret-2"};
	assert_true(token_accepted(&old_tok));
	assert_false(token_accepted(&new_tok));
	/* A connection that proved the old token before the reload. */
	struct rpc *held = open_as(f->h.broker_url, "shop-secret");
	char text[JM_ERR_MSG_MAX];
	assert_int_equal(submit_as(held, "shop.a", text, NULL), 0);
	write_auth(&f->h, "shop-secret-2");
	assert_int_equal(kill(f->broker.pid, SIGHUP), 0);
	assert_true(harness_wait_for(10000, token_accepted, &new_tok, "the rotated token"));
	assert_false(token_accepted(&old_tok));
	/* It is judged again: the old token no longer works on it either. */
	assert_int_equal(submit_as(held, "shop.a", text, NULL), JM_EAUTH);
	assert_contains(text, "token not recognised");
	rpc_close(held);

	harness_write_file(&f->h, "auth.yaml", "tokens:\n  - {name: x, role: root}\n", 0600);
	assert_int_equal(kill(f->broker.pid, SIGHUP), 0);
	assert_true(harness_wait_for(10000, log_says_kept, f, "the reload refused"));
	assert_true(token_accepted(&new_tok));
	assert_true(fixture_count_in_file(harness_path(&f->h, "broker.err"),
	                                  "role \"root\" is unknown") > 0);
}

static void test_the_worker_and_sdk_take_their_token_from_the_environment(void **state)
{
	struct auth_fixture *f = *state;
	/* The worker inherits JOBMESH_TOKEN; the SDK client gets its own. */
	setenv("JOBMESH_TOKEN", "shop-worker-secret", 1);
	fixture_worker_start(&f->h, "w-env", "shop.orders", "1", "t=cat");
	unsetenv("JOBMESH_TOKEN");
	jm_client *client = NULL;
	jm_security sec = {.token = "shop-secret"};
	assert_jm_ok(jm_client_open_secure(&client, f->h.broker_url, &sec));
	jm_job_spec spec = {.queue = "shop.orders", .type = "t", .payload = "hi", .payload_len = 2};
	uint64_t id;
	assert_jm_ok(jm_client_submit(client, &spec, &id));
	jm_job_info info = {0};
	fixture_wait_finished(&f->h, client, id, 20000, &info);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	jm_job_info_fini(&info);
	/* The same client may not reach another tenant's queue. */
	spec.queue = "billing.x";
	assert_int_equal(jm_client_submit(client, &spec, &id), JM_EFORBIDDEN);
	assert_contains(jm_client_last_error(), "forbidden");
	jm_client_close(client);
}

/* jobmesh-worker --token: with no JOBMESH_TOKEN in its environment, the
 * flag alone lets it fetch and settle; a wrong one gets nothing done. */
static void test_the_worker_takes_its_token_from_the_token_flag(void **state)
{
	struct auth_fixture *f = *state;
	unsetenv("JOBMESH_TOKEN");
	struct harness_proc worker;
	const char *args[] = {"--queue", "shop.orders",        "--handler",
	                      "t=cat",   "--worker-id",        "w-flag",
	                      "--token", "shop-worker-secret", NULL};
	assert_jm_ok(harness_worker_start(&f->h, "w-flag", args, &worker));
	jm_client *client = NULL;
	jm_security sec = {.token = "shop-secret"};
	assert_jm_ok(jm_client_open_secure(&client, f->h.broker_url, &sec));
	jm_job_spec spec = {
	    .queue = "shop.orders", .type = "t", .payload = "flag", .payload_len = 4};
	uint64_t id;
	assert_jm_ok(jm_client_submit(client, &spec, &id));
	jm_job_info info = {0};
	fixture_wait_finished(&f->h, client, id, 20000, &info);
	assert_int_equal(info.state, JM_STATE_COMPLETED);
	assert_int_equal(info.result_len, 4);
	assert_memory_equal(info.result, "flag", 4);
	jm_job_info_fini(&info);
	jm_client_close(client);
	/* Stopped while the broker runs, as an operator would: a reply in
	 * flight to a worker when the broker closes leaks inside libnng. */
	int status = -1;
	assert_int_equal(harness_stop(&worker, SIGTERM, 10000, &status), 0);
	assert_int_equal(status, 0);
}

/* The job's result, a text, after it finished completed. */
static char *run_to_result(struct auth_fixture *f, jm_client *client, const char *type)
{
	jm_job_spec spec = {.queue = "shop.orders", .type = type, .payload = "x", .payload_len = 1};
	uint64_t id;
	assert_jm_ok(jm_client_submit(client, &spec, &id));
	jm_job_info info = {0};
	fixture_wait_finished(&f->h, client, id, 20000, &info);
	if (info.state != JM_STATE_COMPLETED)
		fail_msg("job %llu of type %s ended %d: %s", (unsigned long long)id, type,
		         (int)info.state, info.last_error ? info.last_error : "");
	char *text = strndup((const char *)info.result, info.result_len);
	assert_non_null(text);
	jm_job_info_fini(&info);
	return text;
}

/* A handler runs code the job chose: it must not learn the worker's token,
 * neither from its environment (JOBMESH_TOKEN) nor from the worker's
 * command line (--token, readable in /proc). An exec handler and a --serve
 * process each report what they can see. */
static void test_a_handler_sees_neither_the_workers_token_nor_its_flag(void **state)
{
	struct auth_fixture *f = *state;
	setenv("JOBMESH_TOKEN", "shop-worker-secret", 1);
	/* Its environment and its parent's (the worker's) command line. */
	const char *show = "t.exec=env; tr '\\0' ' ' < /proc/$PPID/cmdline";
	/* A serve process answers each job line with whether it finds the
	 * token in its environment or its parent's command line (the patterns
	 * are bracketed so that this command, which the worker's command line
	 * holds, does not match itself). */
	const char *serve =
	    "t.serve=while read -r line; do "
	    "id=$(printf %s \"$line\" | sed -n 's/.*\"id\":\"\\([0-9]*\\)\".*/\\1/p'); "
	    "[ -n \"$id\" ] || exit 0; "
	    "seen=$( (env; tr '\\0' ' ' < /proc/$PPID/cmdline) | "
	    "grep -c -e shop-worker-secre[t] -e JOBMESH_TOKE[N]); "
	    "printf '{\"op\":\"result\",\"id\":\"%s\",\"result\":\"seen %s\"}\\n' \"$id\" "
	    "\"$seen\"; done";
	const char *args[] = {
	    "--queue", "shop.orders", "--handler",          show, "--serve", serve, "--worker-id",
	    "w-leak",  "--token",     "shop-worker-secret", NULL};
	struct harness_proc worker;
	assert_jm_ok(harness_worker_start(&f->h, "w-leak", args, &worker));
	unsetenv("JOBMESH_TOKEN");
	jm_client *client = NULL;
	jm_security sec = {.token = "shop-secret"};
	assert_jm_ok(jm_client_open_secure(&client, f->h.broker_url, &sec));
	char *seen = run_to_result(f, client, "t.exec");
	/* What it printed is its real environment and the worker's argv. */
	assert_contains(seen, "JOBMESH_JOB_TYPE=t.exec");
	assert_contains(seen, "--worker-id w-leak");
	if (strstr(seen, "shop-worker-secret") || strstr(seen, "JOBMESH_TOKEN"))
		fail_msg("the exec handler saw the token:\n%s", seen);
	free(seen);
	seen = run_to_result(f, client, "t.serve");
	assert_string_equal(seen, "seen 0");
	free(seen);
	jm_client_close(client);
	int status = -1;
	assert_int_equal(harness_stop(&worker, SIGTERM, 10000, &status), 0);
	assert_int_equal(status, 0);
}

/* Runs the broker with argv (whose --data is data), which must refuse to
 * start: exit 2, nothing created. Returns its stderr; the caller frees it. */
static char *refused_start(struct harness *h, char **argv, const char *data)
{
	char *err_text = NULL;
	int code = -1;
	assert_jm_ok(harness_run_capture(h, argv, 10000, NULL, &err_text, &code));
	assert_int_equal(code, 2);
	struct stat st;
	assert_int_not_equal(stat(data, &st), 0); /* nothing was created */
	return err_text;
}

/* With --auth, the events socket (PUB: it cannot ask for a token) off
 * loopback without mutual TLS is refused at start, naming the way out. */
static void test_with_auth_an_open_events_address_needs_mutual_tls(void **state)
{
	struct auth_fixture *f = *state;
	const char *data = harness_path(&f->h, "data-events");
	char *argv[] = {(char *)harness_bin("jobmesh-broker"),
	                "--auth",
	                (char *)f->auth_path,
	                "--listen",
	                "tcp://127.0.0.1:0",
	                "--events",
	                "tcp://0.0.0.0:0",
	                "--http",
	                "off",
	                "--data",
	                (char *)data,
	                NULL};
	char *err_text = refused_start(&f->h, argv, data);
	assert_contains(err_text, "--events tcp://0.0.0.0:0: the events socket cannot ask "
	                          "subscribers for a token");
	assert_contains(err_text, "with --tls-ca");
	assert_contains(err_text, "--insecure-listen");
	free(err_text);
}

static void test_without_auth_a_broker_refuses_a_wildcard_address(void **state)
{
	(void)state;
	struct harness h;
	assert_jm_ok(harness_init(&h, "test_auth_exposure"));
	const char *data = harness_path(&h, "data");
	char *argv[] = {(char *)harness_bin("jobmesh-broker"),
	                "--listen",
	                "tcp://0.0.0.0:0",
	                "--http",
	                "off",
	                "--data",
	                (char *)data,
	                NULL};
	char *err_text = refused_start(&h, argv, data);
	assert_contains(err_text, "--listen tcp://0.0.0.0:0: without --auth");
	assert_contains(err_text, "--insecure-listen");
	free(err_text);
	char *http_argv[] = {(char *)harness_bin("jobmesh-broker"),
	                     "--http",
	                     "0.0.0.0:0",
	                     "--data",
	                     (char *)data,
	                     NULL};
	err_text = refused_start(&h, http_argv, data);
	assert_contains(err_text, "--http 0.0.0.0:0");
	free(err_text);
	harness_fini(&h);
}

/* Two listeners on one port are refused at start, naming both, before
 * anything binds or is written: here --http on the port the events
 * address takes by default (--listen's port + 1). */
static void test_two_listeners_on_one_port_are_refused_naming_both(void **state)
{
	(void)state;
	struct harness h;
	assert_jm_ok(harness_init(&h, "test_auth_ports"));
	const char *data = harness_path(&h, "data");
	char *argv[] = {(char *)harness_bin("jobmesh-broker"),
	                "--listen",
	                "tcp://127.0.0.1:17400",
	                "--http",
	                "127.0.0.1:17401",
	                "--data",
	                (char *)data,
	                NULL};
	char *err_text = refused_start(&h, argv, data);
	assert_contains(err_text, "--events (derived from --listen) tcp://127.0.0.1:17401 and "
	                          "--http 127.0.0.1:17401 both listen on port 17401: give each "
	                          "its own port");
	free(err_text);
	harness_fini(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_a_request_without_a_token_or_with_a_wrong_one_is_refused, auth_setup,
	        auth_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_tenant_cannot_reach_or_see_another_tenants_queues, auth_setup,
	        auth_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_tenant_neither_finds_nor_lists_another_tenants_batch, auth_setup,
	        auth_teardown),
	    cmocka_unit_test_setup_teardown(test_each_role_is_refused_what_it_may_not_do,
	                                    auth_setup, auth_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_sighup_rotates_a_token_and_a_bad_file_keeps_the_old_ones, auth_setup,
	        auth_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_the_worker_and_sdk_take_their_token_from_the_environment, auth_setup,
	        auth_teardown),
	    cmocka_unit_test_setup_teardown(test_the_worker_takes_its_token_from_the_token_flag,
	                                    auth_setup, auth_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_handler_sees_neither_the_workers_token_nor_its_flag, auth_setup,
	        auth_teardown),
	    cmocka_unit_test_setup_teardown(test_with_auth_an_open_events_address_needs_mutual_tls,
	                                    auth_setup, auth_teardown),
	    cmocka_unit_test(test_without_auth_a_broker_refuses_a_wildcard_address),
	    cmocka_unit_test(test_two_listeners_on_one_port_are_refused_naming_both),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
