/* What the integration tests share on top of the harness: a broker started
 * and stopped the way every test does it, a worker on shell handlers, raw
 * REQ calls that play a worker, and the waits and log dumps a failing test
 * uses. The harness itself never fails a test (tests/bench use it too);
 * these helpers do: each one that cannot go on calls cmocka's fail_msg,
 * after printing the processes' logs where those tell why.
 *
 * A test's fixture is its own struct (calloc'd, stored in cmocka's *state,
 * holding its struct harness); the helpers take the pieces they need. */
#ifndef JM_TESTS_FIXTURE_H
#define JM_TESTS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jobmesh/client.h>

#include "harness.h"
#include "message.h"
#include "rpc.h"

/* Broker flags for tests that wait on retries: a 20 ms first backoff,
 * capped at 100 ms. NULL-terminated. */
extern const char *const fixture_fast_retries[];

/* Copies first then more (both NULL-terminated, either may be NULL) into
 * out, which holds out_count pointers, and NULL-terminates it; fails the
 * test if they do not fit. */
void fixture_args_join(const char **out, size_t out_count, const char *const *first,
                       const char *const *more);

/* harness_init(h, test_name), then a broker started with args followed by
 * more (either may be NULL; a later flag wins inside the broker) into
 * *broker. Fails the test on error. */
void fixture_broker_up(struct harness *h, const char *test_name, const char *const *args,
                       const char *const *more, struct harness_proc *broker);

/* Ends a test whose fixture *state is the calloc'd struct holding h. A
 * clean SIGTERM stop of broker (NULL, or never started: none is running)
 * within 10 s is part of every test: if it does not exit 0, the logs are
 * printed. Then every process left is stopped and the temp dir removed
 * (harness_fini), the fixture freed and *state cleared, and only then does
 * the test fail over the broker's exit, so no worker outlives a failed
 * test. Close the test's clients first. */
void fixture_end(void **state, struct harness *h, struct harness_proc *broker);

/* Spawns argv as process "broker": a broker behind a wrapper that execs
 * it (prlimit, ip netns exec), logging to broker.out/.err. Waits up to
 * timeout_ms for a "listening " line written to broker.out after this
 * spawn. True once it is listening; false if it exited first or the
 * deadline passed (harness_is_running tells which). Fails the test if it
 * cannot be spawned. Unlike harness_broker_start, h->broker_url is left as
 * it was: the caller knows the address it gave. */
bool fixture_spawn_broker(struct harness *h, char *const argv[], int timeout_ms,
                          struct harness_proc *broker);

/* Starts jobmesh-worker --worker-id name on queue with concurrency and one
 * --handler (TYPE=COMMAND), logging to <name>.out/.err; fails the test if
 * it cannot start. */
void fixture_worker_start(struct harness *h, const char *name, const char *queue,
                          const char *concurrency, const char *handler);

/* jm_client_wait for job id up to timeout_ms into *info; on error prints
 * the logs and fails the test. */
void fixture_wait_finished(struct harness *h, jm_client *client, uint64_t id, int timeout_ms,
                           jm_job_info *info);

/* Polls the job's status until it is in state (JM_STATE_...), up to
 * timeout_ms; on timeout prints the logs and fails the test. */
void fixture_await_state(struct harness *h, jm_client *client, uint64_t id, int state,
                         int timeout_ms);

/* ---- raw REQ calls, as a worker or client would make them -------------- */

/* rpc_open on url; fails the test on error. Close it with rpc_close. */
struct rpc *fixture_rpc_open(const char *url);

/* SUBMITs one job of type "t" to queue with payload and a run timeout
 * (0: the broker's default); returns its id. Fails the test unless the
 * broker answers SUBMITTED within 5 s. */
uint64_t fixture_rpc_submit(struct rpc *rpc, const char *queue, const char *payload,
                            uint64_t timeout_ms);

/* The process instance these raw requests give worker: fixed per name, so
 * every call under one name is one "process" (never 0). */
uint64_t fixture_instance_of(const char *worker);

/* FETCHes one job from queue as worker, parked up to wait_ms, the call
 * bounded by call_ms. Fails the test unless exactly one job comes back.
 * The delivery's payload is cleared (it lived in the reply). */
struct proto_delivery fixture_rpc_fetch(struct rpc *rpc, const char *worker, const char *queue,
                                        uint32_t wait_ms, uint32_t call_ms);

/* SETTLEs job_id under lease as completed with result, as worker (with
 * fixture_instance_of(worker)); returns the broker's code
 * for it (0, or JM_ESTALE for a lease no longer held, ...). Fails the test
 * unless the broker answers SETTLED with one code within 5 s. */
int32_t fixture_rpc_ack(struct rpc *rpc, const char *worker, uint64_t job_id, uint64_t lease,
                        const char *result);

/* ---- files and processes ------------------------------------------------- */

/* How many times text occurs in the file at path (0 if it cannot be
 * read). */
size_t fixture_count_in_file(const char *path, const char *text);

/* True once pid is dead: gone, or a zombie nobody will reap (PID 1 on
 * these machines never reaps orphans). */
bool fixture_pid_is_gone(pid_t pid);

/* Prints the last 40 lines of every process's logs, then the whole file
 * extra_path (if not NULL: a handlers' own log) to stderr. */
void fixture_print_logs(struct harness *h, const char *extra_path);

/* Fails the test with a printf-style message after fixture_print_logs. A
 * macro, so cmocka reports the caller's line. */
#define fixture_fail_with_logs(h, extra_path, ...)                                                 \
	do {                                                                                       \
		fixture_print_logs((h), (extra_path));                                             \
		fail_msg(__VA_ARGS__);                                                             \
	} while (0)

#endif
