/* The auth file and the role table: a file in the issue's shape loads, a
 * token matches by its hash only, each role is allowed exactly its
 * requests, queue patterns make tenants, and a bad file is refused with
 * its line and what is allowed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs these first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth.h"

/* sha256("test") and sha256("worker-secret"), sha256("admin-secret") */
#define HASH_TEST "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static char auth_path[256];

static void write_file(const char *text)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(auth_path, sizeof auth_path, "%s/jm-auth-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(auth_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void hex_hash(const char *secret, char out[65])
{
	uint8_t d[JM_SHA256_BYTES];
	jm_sha256(secret, strlen(secret), d);
	for (int i = 0; i < JM_SHA256_BYTES; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static struct auth_table *load_roles(void)
{
	char w[65], v[65], a[65], text[2048];
	hex_hash("worker-secret", w);
	hex_hash("viewer-secret", v);
	hex_hash("admin-secret", a);
	snprintf(
	    text, sizeof text,
	    "tokens:\n"
	    "  - name: shop-api\n    sha256: " HASH_TEST "\n    role: producer\n"
	    "    queues: [\"shop.*\"]\n"
	    "  - name: shop-workers\n    sha256: %s\n    role: worker\n    queues: [shop.*]\n"
	    "  - name: dash\n    sha256: %s\n    role: viewer\n    queues: [\"shop.*\", mail]\n"
	    "  - name: ops\n    sha256: %s\n    role: admin\n",
	    w, v, a);
	write_file(text);
	struct jm_err err = {0};
	struct auth_table *t = NULL;
	int rc = auth_load(&t, auth_path, &err);
	unlink(auth_path);
	if (rc != 0)
		fail_msg("%s", jm_err_text(&err));
	return t;
}

static void test_the_issue_shaped_file_loads_and_matches_by_hash(void **state)
{
	(void)state;
	struct auth_table *t = load_roles();
	assert_int_equal(t->count, 4);
	struct auth_identity id;
	assert_true(auth_match(t, "test", 4, &id));
	assert_string_equal(id.name, "shop-api");
	assert_int_equal(id.role, AUTH_ROLE_PRODUCER);
	assert_true(auth_match(t, "admin-secret", 12, &id));
	assert_int_equal(id.role, AUTH_ROLE_ADMIN);
	assert_false(auth_match(t, "tes", 3, &id));
	assert_false(auth_match(t, "test ", 5, &id));
	/* The hash itself is not a token. */
	assert_false(auth_match(t, HASH_TEST, 64, &id));
	auth_free(t);
}

static struct proto_msg submit_to(struct proto_job_spec *spec, const char *queue)
{
	memset(spec, 0, sizeof *spec);
	snprintf(spec->attrs.queue, sizeof spec->attrs.queue, "%s", queue);
	snprintf(spec->attrs.type, sizeof spec->attrs.type, "t");
	struct proto_msg m = {.type = PROTO_SUBMIT};
	m.u.submit.jobs_count = 1;
	m.u.submit.jobs = spec;
	return m;
}

static void test_each_role_may_send_only_its_requests(void **state)
{
	(void)state;
	struct auth_table *t = load_roles();
	struct auth_identity producer, worker, viewer, admin;
	assert_true(auth_match(t, "test", 4, &producer));
	assert_true(auth_match(t, "worker-secret", 13, &worker));
	assert_true(auth_match(t, "viewer-secret", 13, &viewer));
	assert_true(auth_match(t, "admin-secret", 12, &admin));
	struct jm_err err = {0};
	const enum proto_type fetchy[] = {PROTO_FETCH, PROTO_SETTLE, PROTO_HEARTBEAT,
	                                  PROTO_PROGRESS};
	for (size_t i = 0; i < sizeof fetchy / sizeof fetchy[0]; i++) {
		assert_int_equal(auth_allows_type(&worker, fetchy[i], &err), 0);
		assert_int_equal(auth_allows_type(&producer, fetchy[i], &err), JM_EFORBIDDEN);
		assert_int_equal(auth_allows_type(&viewer, fetchy[i], &err), JM_EFORBIDDEN);
		assert_int_equal(auth_allows_type(&admin, fetchy[i], &err), 0);
	}
	assert_int_equal(auth_allows_type(&producer, PROTO_SUBMIT, &err), 0);
	assert_int_equal(auth_allows_type(&worker, PROTO_SUBMIT, &err), JM_EFORBIDDEN);
	assert_int_equal(auth_allows_type(&viewer, PROTO_SUBMIT, &err), JM_EFORBIDDEN);
	assert_non_null(strstr(jm_err_text(&err), "role viewer"));
	assert_int_equal(auth_allows_type(&viewer, PROTO_CANCEL, &err), JM_EFORBIDDEN);
	assert_int_equal(auth_allows_type(&viewer, PROTO_STATS, &err), 0);
	assert_int_equal(auth_allows_type(&viewer, PROTO_WORKERS, &err), 0);
	assert_int_equal(auth_allows_type(&worker, PROTO_STATS, &err), JM_EFORBIDDEN);
	for (int type = 1; type <= PROTO_TYPE_MAX_; type++)
		assert_int_equal(auth_allows_type(&admin, (enum proto_type)type, &err), 0);
	assert_int_equal(auth_allows_type(&worker, PROTO_HELLO, &err), 0);
	auth_free(t);
}

static void test_queue_patterns_make_tenants(void **state)
{
	(void)state;
	struct auth_table *t = load_roles();
	struct auth_identity producer, admin;
	assert_true(auth_match(t, "test", 4, &producer));
	assert_true(auth_match(t, "admin-secret", 12, &admin));
	struct jm_err err = {0};
	struct proto_job_spec spec;
	struct proto_msg m = submit_to(&spec, "shop.orders");
	assert_int_equal(auth_allows(&producer, &m, &err), 0);
	m = submit_to(&spec, "billing.invoices");
	assert_int_equal(auth_allows(&producer, &m, &err), JM_EFORBIDDEN);
	assert_non_null(strstr(jm_err_text(&err), "\"billing.invoices\""));
	assert_non_null(strstr(jm_err_text(&err), "shop.*"));
	assert_int_equal(auth_allows(&admin, &m, &err), 0);
	m = submit_to(&spec, "shop");
	assert_int_equal(auth_allows(&producer, &m, &err), JM_EFORBIDDEN);
	struct proto_msg q = {.type = PROTO_JOB_QUERY};
	assert_int_equal(auth_allows(&producer, &q, &err), 0); /* "" = filtered */
	snprintf(q.u.job_query.queue, sizeof q.u.job_query.queue, "mail");
	assert_int_equal(auth_allows(&producer, &q, &err), JM_EFORBIDDEN);
	assert_true(auth_queue_visible(&producer, "shop.x"));
	assert_false(auth_queue_visible(&producer, "mail"));
	auth_free(t);
}

static void assert_refused(const char *text, const char *want)
{
	write_file(text);
	struct jm_err err = {0};
	struct auth_table *t = NULL;
	assert_int_equal(auth_load(&t, auth_path, &err), JM_EINVAL);
	unlink(auth_path);
	assert_null(t);
	if (strstr(jm_err_text(&err), want) == NULL)
		fail_msg("got \"%s\", want it to say \"%s\"", jm_err_text(&err), want);
}

static void test_a_bad_file_is_refused_with_its_line_and_what_is_allowed(void **state)
{
	(void)state;
	assert_refused("tokens:\n  - name: a\n    sha256: 12ab\n    role: admin\n",
	               "line 3: sha256 must be 64 hex digits");
	assert_refused("tokens:\n  - name: a\n    sha256: " HASH_TEST "\n    role: root\n",
	               "role \"root\" is unknown: use producer, worker, viewer or admin");
	assert_refused("tokens:\n  - name: a\n    sha256: " HASH_TEST "\n    role: producer\n",
	               "needs queues");
	assert_refused("tokens:\n  - name: a\n    sha256: " HASH_TEST
	               "\n    role: producer\n    queues: [\"shop/x\"]\n",
	               "queue pattern \"shop/x\"");
	assert_refused("tokens:\n  - name: a\n    sha256: " HASH_TEST "\n    role: admin\n"
	               "  - name: b\n    sha256: " HASH_TEST "\n    role: admin\n",
	               "same sha256");
	assert_refused("tokens: [\n", "auth file");
	assert_refused("users: []\n", "unknown key \"users\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_the_issue_shaped_file_loads_and_matches_by_hash),
	    cmocka_unit_test(test_each_role_may_send_only_its_requests),
	    cmocka_unit_test(test_queue_patterns_make_tenants),
	    cmocka_unit_test(test_a_bad_file_is_refused_with_its_line_and_what_is_allowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
