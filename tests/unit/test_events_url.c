/* The events address derived from --listen: the next port for every
 * scheme that has one (tls+tcp:// and ws:// used to derive an address the
 * broker could not bind, and it exited), the path kept, ".events" after
 * ipc:// paths. */
#include <string.h>

/* cmocka.h needs these first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "events.h"
#include "exposure.h"

static void assert_derived(const char *listen, const char *want)
{
	char out[600];
	events_default_url(listen, out, sizeof out);
	assert_string_equal(out, want);
}

static void test_every_scheme_with_a_port_gets_the_next_port(void **state)
{
	(void)state;
	assert_derived("tcp://127.0.0.1:7400", "tcp://127.0.0.1:7401");
	assert_derived("tls+tcp://127.0.0.1:7400", "tls+tcp://127.0.0.1:7401");
	assert_derived("ws://127.0.0.1:7400/jobs", "ws://127.0.0.1:7401/jobs");
	assert_derived("wss://broker.example:443/", "wss://broker.example:444/");
	assert_derived("tcp://[::1]:7400", "tcp://[::1]:7401");
	assert_derived("tls+tcp://127.0.0.1:0", "tls+tcp://127.0.0.1:0");
}

static void test_ipc_and_portless_addresses_get_an_events_suffix(void **state)
{
	(void)state;
	assert_derived("ipc:///tmp/b.ipc", "ipc:///tmp/b.ipc.events");
	assert_derived("ws://127.0.0.1/jobs", "ws://127.0.0.1/jobs.events");
}

static void test_only_loopback_and_ipc_count_as_local(void **state)
{
	(void)state;
	assert_true(exposure_url_is_local("tcp://127.0.0.1:1"));
	assert_true(exposure_url_is_local("tcp://127.8.9.10:1"));
	assert_true(exposure_url_is_local("tls+tcp://localhost:1"));
	assert_true(exposure_url_is_local("ws://[::1]:1/x"));
	assert_true(exposure_url_is_local("ipc:///tmp/x"));
	assert_false(exposure_url_is_local("tcp://0.0.0.0:1"));
	assert_false(exposure_url_is_local("tcp://*:1"));
	assert_false(exposure_url_is_local("tcp://:1"));
	assert_false(exposure_url_is_local("tcp://127.0.0.1.evil.example:1"));
	assert_false(exposure_url_is_local("tcp://[::]:1"));
	assert_false(exposure_url_is_local("tcp://10.0.0.1:1"));
	assert_true(exposure_http_is_local("127.0.0.1:7480"));
	assert_false(exposure_http_is_local("0.0.0.0:7480"));
	assert_false(exposure_http_is_local(":7480"));
}

/* With --auth the events PUB socket, which cannot ask for a token, may
 * leave loopback only under mutual TLS or --insecure-listen; without
 * --auth nothing may. */
static void test_the_events_socket_leaves_loopback_only_under_mutual_tls(void **state)
{
	(void)state;
	struct jm_err err = {0};
	struct exposure auth = {.auth = true};
	struct exposure auth_mtls = {.auth = true, .mtls = true};
	struct exposure open = {.insecure = true};
	assert_int_equal(exposure_check(&auth, "--events", "tcp://127.0.0.1:1", false, true, &err),
	                 0);
	assert_int_equal(exposure_check(&auth, "--events", "ipc:///tmp/e", false, true, &err), 0);
	assert_int_equal(exposure_check(&auth, "--events", "tcp://0.0.0.0:1", false, true, &err),
	                 JM_EINVAL);
	assert_non_null(strstr(jm_err_text(&err), "cannot ask subscribers for a token"));
	assert_non_null(strstr(jm_err_text(&err), "--insecure-listen"));
	/* TLS alone proves nothing about the subscriber: a CA is needed. */
	assert_int_equal(
	    exposure_check(&auth, "--events", "tls+tcp://0.0.0.0:1", false, true, &err), JM_EINVAL);
	assert_int_equal(
	    exposure_check(&auth_mtls, "--events", "tcp://0.0.0.0:1", false, true, &err),
	    JM_EINVAL);
	assert_int_equal(
	    exposure_check(&auth_mtls, "--events", "tls+tcp://0.0.0.0:1", false, true, &err), 0);
	assert_int_equal(
	    exposure_check(&auth_mtls, "--events", "wss://0.0.0.0:1/e", false, true, &err), 0);
	assert_int_equal(exposure_check(&open, "--events", "tcp://0.0.0.0:1", false, true, &err),
	                 0);
	/* The request socket needs no TLS with --auth: it asks for tokens. */
	assert_int_equal(exposure_check(&auth, "--listen", "tcp://0.0.0.0:1", false, false, &err),
	                 0);
	struct exposure none = {0};
	assert_int_equal(exposure_check(&none, "--listen", "tcp://0.0.0.0:1", false, false, &err),
	                 JM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_scheme_with_a_port_gets_the_next_port),
	    cmocka_unit_test(test_ipc_and_portless_addresses_get_an_events_suffix),
	    cmocka_unit_test(test_only_loopback_and_ipc_count_as_local),
	    cmocka_unit_test(test_the_events_socket_leaves_loopback_only_under_mutual_tls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
