/* Long-lived handlers: jobmesh-worker --serve TYPE=COMMAND.
 *
 * COMMAND (run by /bin/sh -c in its own process group, stderr shared with
 * the worker, every other descriptor but stdin and stdout closed) is started
 * once per slot (--concurrency) when the worker starts, and is handed jobs
 * over the line protocol of serve_proto.h: one at a time, or up to
 * --serve-pipeline at a time once its hello line says it takes several
 * (answers then come back in any order, by job id). A slot runs at most one
 * process, so a command never has more than --concurrency of them; types
 * given the same COMMAND share its processes. The environment adds
 * JOBMESH_SERVE_TYPES (the types, comma-joined) and JOBMESH_SERVE_SLOT.
 *
 * What the exec handler guarantees holds here too: the run timeout and an
 * abandon (cancel, lease lost, hard stop) send a cancel line, then SIGTERM to
 * the process group and SIGKILL after --kill-grace-ms; the other jobs the
 * process held are handed back (not an attempt). The guardian (guardian.h)
 * lists every group, so a worker killed with SIGKILL takes its handlers
 * along. A process that is killed or dies is started again when a job
 * needs it; one that dies on its own fails every job it held and waits a
 * backoff (100 ms doubling to 10 s, reset by an answered job) before each
 * restart. On a drain the running jobs finish, then each process gets a
 * stop line and EOF on stdin, and the kill grace to exit before SIGTERM. */
#ifndef JM_WORKER_SERVE_H
#define JM_WORKER_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include <jobmesh/worker.h>

#include "err.h"

#define SERVE_PIPELINE_DEFAULT 128
/* --serve-queue-ms: about how long a pipelined job may wait behind the
 * jobs ahead of it in a process that runs them one at a time. */
#define SERVE_QUEUE_MS_DEFAULT 10
#define SERVE_QUEUE_MS_MAX 60000
#define SERVE_PIPELINE_MAX 256

struct serve_pool;

/* Every --serve flag of one worker. Zero-initialise. */
struct serve_set {
	struct serve_pool **pools; /* owned */
	size_t pools_count;
};

/* Parses one --serve value (TYPE=COMMAND); the same type again replaces
 * the command. */
int serve_set_add(struct serve_set *set, const char *flag_value, struct jm_err *err);
/* Registers one handler per type on worker, starts `slots` processes per
 * pool and its I/O thread. A process gets up to pipeline_max jobs at a time
 * once its hello line asks for that (1: never more than one), fewer while
 * its answers are slow (about queue_ms of queued work). Processes that
 * cannot start are retried at the first job. */
struct serve_settings {
	unsigned slots;
	unsigned pipeline_max; /* --serve-pipeline */
	uint32_t queue_ms;     /* --serve-queue-ms */
	uint32_t kill_grace_ms;
};
int serve_set_start(struct serve_set *set, jm_worker *worker, const struct serve_settings *how,
                    struct jm_err *err);
/* After jm_worker_run returned: sends stop to every process and waits for
 * each to exit (SIGTERM after the kill grace, SIGKILL after another). */
void serve_set_stop(struct serve_set *set);
/* Stops what is still running, then frees; accepts a zeroed set. */
void serve_set_fini(struct serve_set *set);

#endif
