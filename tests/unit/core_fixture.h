/* A real core over a real journal in a temp directory, driven in-process by
 * the unit tests of the core (test_core, test_admission,
 * test_core_schedules). core_handle runs a handler on the calling thread,
 * so an allocation fault armed per thread (common/heap.h) hits the handler
 * and not the journal's writer.
 *
 * A test's own fixture holds a struct core_fixture as its member `c` and
 * adds what it needs beside it. */
#ifndef JM_TESTS_CORE_FIXTURE_H
#define JM_TESTS_CORE_FIXTURE_H

#include <stdbool.h>

#include "core_internal.h"

/* One request handed to the core, and its reply. */
struct core_call {
	struct request req;
	int done; /* set (atomically) by core_call_replied */
	int status;
};

struct core_fixture {
	char dir[128];
	struct journal *journal; /* NULL while stopped */
	struct core *core;       /* NULL while stopped */
	struct core_config config;
};

/* request.on_reply for a struct core_call. */
void core_call_replied(struct request *req, int status);
bool core_call_is_done(struct core_call *c);

/* The configuration the core tests start from: small limits, long leases. */
void core_fixture_config_defaults(struct core_config *c);
/* Makes f's temp directory (under $TMPDIR, else /tmp; name: a short word
 * for the test) and sets the default configuration. */
void core_fixture_init(struct core_fixture *f, const char *name);
/* Opens the journal and the core (replaying what the journal holds):
 * 0, or the core's error with nothing left open. */
int core_fixture_try_start(struct core_fixture *f);
void core_fixture_start(struct core_fixture *f); /* fails the test on error */
/* Stops and frees the core and closes the journal; accepts a stopped f. */
void core_fixture_finish(struct core_fixture *f);
/* core_fixture_finish, then removes the temp directory. */
void core_fixture_fini(struct core_fixture *f);

#endif
