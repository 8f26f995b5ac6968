/* A running stack, the fixture most integration tests need: a fresh temp
 * dir with one broker, plus the SDK client and the raw REQ connection a
 * test drives it through, when it asks for them. A test that keeps one
 * long-lived worker may start it into worker: it is stopped before the
 * broker, while the broker can still answer its parked fetch.
 *
 * stack_open stores the stack in cmocka's *state before anything can fail,
 * so stack_close, the teardown, always frees it and stops every process. */
#ifndef JM_TESTS_STACK_H
#define JM_TESTS_STACK_H

#include <jobmesh/client.h>

#include "harness.h"
#include "rpc.h"

struct stack {
	struct harness h;
	struct harness_proc broker;
	struct harness_proc worker; /* a test's own worker; h == NULL: none */
	jm_client *client;          /* with STACK_CLIENT, else NULL */
	struct rpc *rpc;            /* with STACK_RPC, else NULL */
};

/* What stack_open opens besides the broker. */
enum stack_part {
	STACK_CLIENT = 1u << 0,
	STACK_RPC = 1u << 1,
};

/* Allocates a stack into *state, creates its temp dir named for
 * test_name, starts a broker with args followed by more (either may be
 * NULL; a later flag wins inside the broker), and opens the parts asked
 * for (an OR of enum stack_part, or 0). Fails the test on error. */
struct stack *stack_open(void **state, const char *test_name, const char *const *args,
                         const char *const *more, unsigned parts);

/* Runs `jobmesh --broker <the stack's broker> args...` (NULL-terminated,
 * at most 20), up to 10 s; *out and *errs get what it printed (the
 * caller frees both). Returns its exit code. */
int stack_run_cli(struct stack *f, const char *const *args, char **out, char **errs);

/* cmocka teardown: closes the client and rpc, stops worker (SIGTERM, up to
 * 10 s), then fixture_end: the broker must stop cleanly on SIGTERM, every
 * process is stopped and the temp dir removed before the test fails over
 * it. Accepts *state NULL. */
int stack_close(void **state);

#endif
