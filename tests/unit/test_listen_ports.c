/* Two of the broker's listeners on one address are refused at start,
 * naming both (listen_ports.h): the same TCP port on hosts that overlap,
 * or the same ipc:// path; port 0, other hosts and ws:// pass. */
#include <string.h>

/* cmocka.h needs these first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "listen_ports.h"

/* The error text for --listen A and --replication-listen B, or "" when
 * they may both listen. */
static const char *check_pair(const char *a, const char *b, bool b_http, struct jm_err *err)
{
	struct listen_addr addrs[] = {{"--listen", a, false},
	                              {b_http ? "--http" : "--replication-listen", b, b_http}};
	jm_err_clear(err);
	int rc = listen_ports_check(addrs, 2, err);
	return rc == 0 ? "" : jm_err_text(err);
}

static void assert_collide(const char *a, const char *b, bool b_http)
{
	struct jm_err err;
	const char *text = check_pair(a, b, b_http, &err);
	if (strstr(text, a) == NULL || strstr(text, b) == NULL)
		fail_msg("%s and %s: expected a refusal naming both, got \"%s\"", a, b, text);
}

static void assert_pass(const char *a, const char *b, bool b_http)
{
	struct jm_err err;
	const char *text = check_pair(a, b, b_http, &err);
	if (text[0] != '\0')
		fail_msg("%s and %s: expected no refusal, got \"%s\"", a, b, text);
}

static void test_the_same_port_on_overlapping_hosts_is_refused(void **state)
{
	(void)state;
	assert_collide("tcp://127.0.0.1:7401", "tcp://127.0.0.1:7401", false);
	assert_collide("tcp://0.0.0.0:7401", "tcp://10.0.0.5:7401", false);
	assert_collide("tls+tcp://broker.example:7401", "tcp://*:7401", false);
	assert_collide("tcp://:7401", "tcp4://127.0.0.1:7401", false);
	assert_collide("tcp6://[::]:7401", "tcp://127.0.0.1:7401", false);
	assert_collide("tcp://[::1]:7401", "tcp://[::1]:7401", false);
	assert_collide("tcp://Broker.Example:7401", "tcp://broker.example:7401", false);
	assert_collide("tcp://127.0.0.1:7480", "127.0.0.1:7480", true);
	assert_collide("tcp://127.0.0.1:7480", ":7480", true);
	assert_collide("ipc:///tmp/b.ipc", "ipc:///tmp/b.ipc", false);
}

static void test_other_ports_hosts_and_system_picked_ports_pass(void **state)
{
	(void)state;
	assert_pass("tcp://127.0.0.1:7400", "tcp://127.0.0.1:7401", false);
	assert_pass("tcp://127.0.0.1:7401", "tcp://127.0.0.2:7401", false);
	assert_pass("tcp://127.0.0.1:0", "tcp://127.0.0.1:0", false);
	assert_pass("tcp://127.0.0.1:7480", "127.0.0.1:7481", true);
	assert_pass("ipc:///tmp/b.ipc", "ipc:///tmp/b.ipc.events", false);
	/* NNG lets ws:// listeners share a port by path. */
	assert_pass("ws://127.0.0.1:7400/a", "ws://127.0.0.1:7400/b", false);
	/* Not a port: NNG refuses it with its own error. */
	assert_pass("tcp://127.0.0.1:x", "tcp://127.0.0.1:x", false);
}

/* The case that used to fail only once a broker was elected: --listen on
 * 7400 derives events on 7401, which --replication-listen also took. */
static void test_the_message_names_the_derived_events_address(void **state)
{
	(void)state;
	struct listen_addr addrs[] = {
	    {"--listen", "tcp://10.0.0.5:7400", false},
	    {"--events (derived from --listen)", "tcp://10.0.0.5:7401", false},
	    {"--http", "127.0.0.1:7480", true},
	    {"--replication-listen", "tcp://10.0.0.5:7401", false},
	};
	struct jm_err err;
	jm_err_clear(&err);
	assert_int_equal(listen_ports_check(addrs, 4, &err), JM_EINVAL);
	assert_string_equal(jm_err_text(&err),
	                    "--events (derived from --listen) tcp://10.0.0.5:7401 and "
	                    "--replication-listen tcp://10.0.0.5:7401 both listen on port 7401: "
	                    "give each its own port");
	addrs[3].addr = "tcp://10.0.0.5:7402";
	assert_int_equal(listen_ports_check(addrs, 4, &err), 0);
}

static void test_host_and_port_are_split_with_or_without_brackets(void **state)
{
	(void)state;
	const char *host;
	size_t len;
	long port;
	listen_hostport_split("[::1]:7400", 10, &host, &len, &port);
	assert_int_equal(len, 3);
	assert_memory_equal(host, "::1", 3);
	assert_int_equal(port, 7400);
	listen_hostport_split("127.0.0.1:0", 11, &host, &len, &port);
	assert_int_equal(len, 9);
	assert_int_equal(port, 0);
	listen_hostport_split("localhost", 9, &host, &len, &port);
	assert_int_equal(len, 9);
	assert_int_equal(port, -1);
	listen_hostport_split("h:65536", 7, &host, &len, &port);
	assert_int_equal(port, -1);
	listen_hostport_split("h:", 2, &host, &len, &port);
	assert_int_equal(len, 1);
	assert_int_equal(port, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_the_same_port_on_overlapping_hosts_is_refused),
	    cmocka_unit_test(test_other_ports_hosts_and_system_picked_ports_pass),
	    cmocka_unit_test(test_the_message_names_the_derived_events_address),
	    cmocka_unit_test(test_host_and_port_are_split_with_or_without_brackets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
