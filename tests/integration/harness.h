/* The process test harness: real jobmesh-broker, jobmesh-worker and jobmesh
 * processes in a fresh temp dir, started and stopped by PID (beanstalkd's
 * ct/ct.c, libuv's test runner), used by tests/integration and tests/bench.
 *
 * Promises that hold for every function here:
 * - Nothing uses cmocka: errors come back as 0 or a negative JM_E code (or
 *   NULL / false) and are printed to stderr as "harness: ..." where they
 *   happen, so a test only has to assert on the return value.
 * - Every wait is bounded in time and in iterations; nothing sleeps to wait
 *   except the polling step of a bounded poll.
 * - Processes are signalled by PID (or by the process group the harness
 *   made for them), never by name, and a PID is never signalled after it was
 *   reaped, so a recycled PID is never hit.
 * - Not thread-safe: drive one struct harness from one thread.
 *
 * Each spawned process runs with the temp dir as its working directory,
 * stdin from /dev/null, stdout and stderr appended to <dir>/<name>.out and
 * <dir>/<name>.err, in its own process group, with default signal
 * dispositions and no file descriptors but 0-2 inherited.
 *
 * Environment knobs: JOBMESH_BIN_DIR overrides where the programs are
 * looked for; JOBMESH_KEEP_TMP=1 makes harness_fini keep the temp dir (and
 * say where it is) for a post-mortem. */
#ifndef JM_TESTS_HARNESS_H
#define JM_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jobmesh/error.h>

#define HARNESS_DIR_MAX 256
#define HARNESS_URL_MAX 512
#define HARNESS_NAME_MAX 64

/* One process the harness started. Slots are never reused, so a stale
 * struct harness_proc can never name another process. */
struct harness_slot {
	pid_t pid;
	bool reaped;     /* waited for: pid must never be signalled again */
	int exit_status; /* once reaped: exit code, or 128 + signal number */
	char name[HARNESS_NAME_MAX];
};

struct harness {
	char test_name[HARNESS_NAME_MAX];
	char dir[HARNESS_DIR_MAX];        /* the temp dir, no trailing slash */
	char broker_url[HARNESS_URL_MAX]; /* set by harness_broker_start */
	char http_url[HARNESS_URL_MAX];   /* "http://127.0.0.1:PORT", or "" when off */
	struct harness_slot *procs;
	size_t procs_count;
	char **paths; /* strings handed out by harness_path/write_file */
	size_t paths_count;
	unsigned runs_count; /* numbers the files of harness_run */
};

/* A handle on one started process; a plain value, copy it freely. */
struct harness_proc {
	struct harness *h;
	size_t slot;
	pid_t pid;
};

/* Creates a fresh temp dir "$TMPDIR/jobmesh-test-XXXXXX" (or under /tmp).
 * test_name only labels messages. Returns 0 or JM_EIO; on error h needs no
 * fini (but harness_fini accepts it). */
int harness_init(struct harness *h, const char *test_name);

/* Stops every process still running (SIGTERM to each, up to 5 s in all for
 * them to exit, then SIGKILL to the process group and reap), removes the
 * temp dir recursively, and frees what the harness handed out. Accepts NULL
 * and a harness whose init failed. */
void harness_fini(struct harness *h);

/* Path of program in the build's bin dir: JOBMESH_BIN_DIR "/" program.
 * The string lives until exit (one copy per distinct program); NULL only if
 * more than 32 distinct programs are asked for or the path is too long. */
const char *harness_bin(const char *program);

/* "<dir>/<name>", owned by h until harness_fini; NULL on error. */
const char *harness_path(struct harness *h, const char *name);

/* Starts argv (argv[0] is looked up in PATH unless it contains a '/') as
 * described at the top of this file; stdout and stderr are appended to
 * <dir>/<name>.out and .err, so a restarted process with the same name
 * keeps one log. Returns 0 with *out set, or JM_EIO when the program cannot
 * be executed (the message names it and why), JM_ENOMEM. */
int harness_spawn(struct harness *h, const char *name, char *const argv[],
                  struct harness_proc *out);

/* Starts jobmesh-broker --listen ipc://<dir>/broker.ipc --data <dir>/data
 * --http 127.0.0.1:0 followed by extra_args (NULL-terminated; may be NULL; a repeated --listen
 * or --data there wins inside the broker). Waits up to 10 s for a new line
 * "listening <url>" on the broker's stdout (only output written after this
 * start counts, so a restart does not see the previous run's line) and
 * stores <url> in h->broker_url. The broker must flush stdout after that
 * line. On failure (the broker exited, or the deadline passed: the broker is
 * then killed) prints why with the last lines of broker.err and returns
 * JM_EIO or JM_ETIMEDOUT. Files: broker.out, broker.err. The "http <url>"
 * line printed before it goes into h->http_url. */
int harness_broker_start(struct harness *h, const char *const *extra_args,
                         struct harness_proc *out);

/* Starts jobmesh-worker --broker h->broker_url followed by args
 * (NULL-terminated; may be NULL), logging to <name>.out/.err. Does not wait
 * for the worker to be ready: wait for what the test needs (a fetch parked,
 * a job done) with harness_wait_for. JM_EINVAL if no broker was started. */
int harness_worker_start(struct harness *h, const char *name, const char *const *args,
                         struct harness_proc *out);

/* Runs argv to completion with the temp dir as working directory, stdin
 * from /dev/null, waiting up to timeout_ms. On return *stdout_text (if
 * stdout_text is non-NULL) is its whole stdout, NUL-terminated, malloc'd
 * (free it), and *exit_code (if non-NULL) its exit code or 128 + signal.
 * On timeout the command's process group is killed and JM_ETIMEDOUT
 * returned (stdout_text then NULL). The command's stderr is kept in
 * <dir>/run-<N>.err; harness_run_capture returns it too. */
int harness_run(struct harness *h, char *const argv[], int timeout_ms, char **stdout_text,
                int *exit_code);

/* harness_run that also returns stderr (malloc'd, NUL-terminated) in
 * *stderr_text when stderr_text is non-NULL: for tests of error messages. */
int harness_run_capture(struct harness *h, char *const argv[], int timeout_ms, char **stdout_text,
                        char **stderr_text, int *exit_code);

/* Sends signal to the process's PID (signal 0: sends nothing, only waits)
 * and waits up to timeout_ms for it to exit, then reaps it. Returns 0 with
 * *exit_status (if non-NULL) = exit code or 128 + signal, or JM_ETIMEDOUT
 * when it is still running at the deadline (it is left running; harness_kill
 * or harness_fini will end it). Only the PID is signalled, not children it
 * started. On a process already reaped, returns its recorded status. */
int harness_stop(struct harness_proc *proc, int signal, int timeout_ms, int *exit_status);

/* SIGKILL to the process's whole group (it and whatever it started, as a
 * container dies) and reap it. Returns 0, or JM_ETIMEDOUT if it is somehow
 * still not gone after 5 s. */
int harness_kill(struct harness_proc *proc);

/* True while the process has not exited; reaps it (recording its status)
 * once it has. Never blocks. */
bool harness_is_running(struct harness_proc *proc);

/* Calls cond(arg) every few ms until it returns true (then true) or
 * timeout_ms passes (then prints "timed out after N ms waiting for <what>"
 * to stderr and returns false): Redis's wait_for_condition. */
bool harness_wait_for(int timeout_ms, bool (*cond)(void *arg), void *arg, const char *what);

/* Writes content to <dir>/<name> with mode (e.g. 0755 for a handler
 * script), replacing any old file. Returns its path, owned by h until
 * harness_fini, or NULL (printed). */
const char *harness_write_file(struct harness *h, const char *name, const char *content,
                               mode_t mode);

/* Reads a whole file; returns it malloc'd and NUL-terminated (free it) with
 * its length in *len (if non-NULL), or NULL (printed). */
char *harness_read_file(const char *path, size_t *len);

/* Prints the last lines_per_file lines of every spawned process's .err
 * and .out to stderr: call it when a test fails, to see why. */
void harness_print_logs(struct harness *h, int lines_per_file);

#endif
