/* TLS through a real broker: a tls+tcp:// listener serves a client that
 * trusts its CA and no one else (a plaintext client, a client with another
 * CA, a client given no CA at all), and with --tls-ca only a client whose
 * certificate that CA signed gets in (mutual TLS). Each refused client
 * leaves the stored jobs as they were. Certificates (P-256) are made at
 * test time with openssl. */
#include "jm_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "harness.h"
#include "message.h"
#include "rpc.h"

#define REFUSED_CALL_MS 1500

/* A CA, a server certificate for 127.0.0.1 (as CN and DNS name: mbedTLS
 * 2.28 does not match IP subjectAltNames), a client certificate, and
 * another CA with its own client certificate. */
static const char make_certs[] =
    "set -e\n"
    "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1 "
    "2>/dev/null; }\n"
    "ca() { key $1.key; openssl req -x509 -new -key $1.key -out $1.pem -days 2 -subj /CN=$1; }\n"
    "cert() { key $1.key; openssl req -new -key $1.key -out $1.csr -subj /CN=$3;\n"
    "  printf 'subjectAltName=DNS:127.0.0.1,DNS:localhost\\n' > $1.ext;\n"
    "  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem "
    "-days 2 -extfile $1.ext 2>/dev/null; }\n"
    "ca ca; ca other-ca\n"
    "cert server ca 127.0.0.1; cert client ca client; cert stranger other-ca stranger\n";

struct tls_fixture {
	struct harness h;
	struct harness_proc broker;
};

static int tls_up(void **state, bool mutual)
{
	struct tls_fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	*state = f;
	assert_jm_ok(harness_init(&f->h, "test_tls"));
	char *argv[] = {"/bin/sh", "-c", (char *)make_certs, NULL};
	int code = -1;
	assert_jm_ok(harness_run(&f->h, argv, 60000, NULL, &code));
	if (code != 0) {
		harness_print_logs(&f->h, 20);
		fail_msg("openssl could not make the test certificates (exit %d)", code);
	}
	const char *args[] = {"--listen",
	                      "tls+tcp://127.0.0.1:0",
	                      "--http",
	                      "off",
	                      "--tls-cert",
	                      harness_path(&f->h, "server.pem"),
	                      "--tls-key",
	                      harness_path(&f->h, "server.key"),
	                      mutual ? "--tls-ca" : NULL,
	                      harness_path(&f->h, "ca.pem"),
	                      NULL};
	assert_jm_ok(harness_broker_start(&f->h, args, &f->broker));
	return 0;
}

static int server_tls_setup(void **state)
{
	return tls_up(state, false);
}

static int mutual_tls_setup(void **state)
{
	return tls_up(state, true);
}

static int tls_teardown(void **state)
{
	struct tls_fixture *f = *state;
	if (f != NULL)
		fixture_end(state, &f->h, &f->broker);
	return 0;
}

/* SUBMITs one job over a new connection with these files (NULL: none);
 * returns the code of the call, or of rpc_open_secure. */
static int submit_with(struct tls_fixture *f, const char *url, const char *ca,
                       const char *cert_name, uint32_t timeout_ms, char text[JM_ERR_MSG_MAX])
{
	char cert[64], key[64];
	snprintf(cert, sizeof cert, "%s.pem", cert_name ? cert_name : "");
	snprintf(key, sizeof key, "%s.key", cert_name ? cert_name : "");
	struct rpc_security sec = {.tls = {.ca = ca ? harness_path(&f->h, ca) : NULL,
	                                   .cert = cert_name ? harness_path(&f->h, cert) : NULL,
	                                   .key = cert_name ? harness_path(&f->h, key) : NULL}};
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	int rc = rpc_open_secure(&rpc, url, &sec, &err);
	if (rc == 0) {
		struct proto_job_spec spec = {.attrs = {.queue = "q", .type = "t"}};
		struct proto_msg req = {.type = PROTO_SUBMIT};
		req.u.submit.jobs_count = 1;
		req.u.submit.jobs = &spec;
		struct rpc_reply reply;
		rc = rpc_call(rpc, &req, timeout_ms, &reply, &err);
		if (rc == 0)
			rpc_reply_fini(&reply);
		rpc_close(rpc);
	}
	snprintf(text, JM_ERR_MSG_MAX, "%s", rc ? jm_err_text(&err) : "");
	return rc;
}

/* Jobs pending in queue q, asked over a trusted connection. */
static uint64_t pending(struct tls_fixture *f, const char *cert_name)
{
	struct rpc_security sec = {.tls = {.ca = harness_path(&f->h, "ca.pem")}};
	if (cert_name) {
		sec.tls.cert = harness_path(&f->h, "client.pem");
		sec.tls.key = harness_path(&f->h, "client.key");
	}
	struct rpc *rpc = NULL;
	struct jm_err err = {0};
	if (rpc_open_secure(&rpc, f->h.broker_url, &sec, &err) != 0)
		fail_msg("%s", jm_err_text(&err));
	struct proto_msg req = {.type = PROTO_STATS};
	struct rpc_reply reply;
	if (rpc_call(rpc, &req, 10000, &reply, &err) != 0)
		fail_msg("stats: %s", jm_err_text(&err));
	uint64_t n = 0;
	for (uint32_t i = 0; i < reply.msg.u.stats_reply.queues_count; i++)
		if (strcmp(reply.msg.u.stats_reply.queues[i].name, "q") == 0)
			n = reply.msg.u.stats_reply.queues[i].pending;
	rpc_reply_fini(&reply);
	rpc_close(rpc);
	return n;
}

static void test_a_tls_listener_serves_only_clients_that_trust_its_ca(void **state)
{
	struct tls_fixture *f = *state;
	const char *url = f->h.broker_url;
	assert_int_equal(strncmp(url, "tls+tcp://127.0.0.1:", 20), 0);
	char text[JM_ERR_MSG_MAX];
	assert_int_equal(submit_with(f, url, "ca.pem", NULL, 10000, text), 0);
	assert_int_equal(pending(f, NULL), 1);

	/* A plaintext client at the same port gets no answer. */
	char plain[HARNESS_URL_MAX];
	snprintf(plain, sizeof plain, "tcp://%s", url + strlen("tls+tcp://"));
	assert_int_not_equal(submit_with(f, plain, NULL, NULL, REFUSED_CALL_MS, text), 0);
	/* A client that trusts another CA never completes the handshake. */
	assert_int_not_equal(submit_with(f, url, "other-ca.pem", NULL, REFUSED_CALL_MS, text), 0);
	/* And one given no CA is stopped before it dials. */
	assert_int_equal(submit_with(f, url, NULL, NULL, REFUSED_CALL_MS, text), JM_EINVAL);
	if (strstr(text, "needs --tls-ca FILE") == NULL)
		fail_msg("\"%s\" does not name --tls-ca", text);
	assert_int_equal(pending(f, NULL), 1);
}

static void test_with_a_client_ca_only_certificates_it_signed_get_in(void **state)
{
	struct tls_fixture *f = *state;
	const char *url = f->h.broker_url;
	char text[JM_ERR_MSG_MAX];
	assert_int_equal(submit_with(f, url, "ca.pem", "client", 10000, text), 0);
	assert_int_equal(pending(f, "client"), 1);
	assert_int_not_equal(submit_with(f, url, "ca.pem", NULL, REFUSED_CALL_MS, text), 0);
	assert_int_not_equal(submit_with(f, url, "ca.pem", "stranger", REFUSED_CALL_MS, text), 0);
	assert_int_equal(pending(f, "client"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_a_tls_listener_serves_only_clients_that_trust_its_ca, server_tls_setup,
	        tls_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_with_a_client_ca_only_certificates_it_signed_get_in, mutual_tls_setup,
	        tls_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
