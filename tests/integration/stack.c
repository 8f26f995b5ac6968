/* The broker-and-client fixture: see stack.h. */
#include "jm_test.h"

#include <signal.h>

#include "fixture.h"
#include "stack.h"

struct stack *stack_open(void **state, const char *test_name, const char *const *args,
                         const char *const *more, unsigned parts)
{
	struct stack *s = calloc(1, sizeof *s);
	assert_non_null(s);
	*state = s;
	fixture_broker_up(&s->h, test_name, args, more, &s->broker);
	if (parts & STACK_CLIENT)
		assert_jm_ok(jm_client_open(&s->client, s->h.broker_url));
	if (parts & STACK_RPC)
		s->rpc = fixture_rpc_open(s->h.broker_url);
	return s;
}

int stack_close(void **state)
{
	struct stack *s = *state;
	if (s == NULL)
		return 0;
	jm_client_close(s->client);
	rpc_close(s->rpc);
	if (s->worker.h != NULL)
		harness_stop(&s->worker, SIGTERM, 10000, NULL);
	fixture_end(state, &s->h, &s->broker);
	return 0;
}

int stack_run_cli(struct stack *f, const char *const *args, char **out, char **errs)
{
	const char *argv[24];
	size_t i = 0;
	argv[i++] = harness_bin("jobmesh");
	argv[i++] = "--broker";
	argv[i++] = f->h.broker_url;
	for (; *args != NULL && i < 23; args++)
		argv[i++] = *args;
	argv[i] = NULL;
	int code = -1;
	assert_jm_ok(harness_run_capture(&f->h, (char *const *)argv, 10000, out, errs, &code));
	return code;
}
