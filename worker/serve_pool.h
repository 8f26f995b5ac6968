/* One --serve pool: the processes of one COMMAND, the jobs they hold, and
 * the I/O thread that moves their lines (serve_io.c); serve.c parses the
 * flags, starts and stops pools, and is the SDK's handler (see serve.c's
 * opening comment for how a job travels, what happens to the jobs of a
 * process that is killed or dies, and the locking). */
#ifndef JM_WORKER_SERVE_POOL_H
#define JM_WORKER_SERVE_POOL_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jobmesh/worker.h>

#include "message.h"
#include "serve_proc.h"
#include "serve_proto.h"

#define SERVE_READ_CHUNK 65536
#define SERVE_READS_PER_WAKE 8  /* per process, so one cannot starve the others */
#define SERVE_ENDING_POLL_MS 10 /* no pidfd: how often an exit is looked for */
/* How often the I/O thread looks at its jobs' abandon flags (placed or
 * waiting). */
#define SERVE_ABANDON_CHECK_MS 50
/* A "jobs" line takes no more jobs once it is this long (a job bigger than
 * that still goes in one line of its own). */
#define SERVE_FRAME_SOFT_MAX (1u << 20)

/* A job that found no room, on its slot thread's stack until done. */
struct serve_wait {
	struct serve_wait *next;
	jm_job *job;
	struct serve_job_line spec; /* its strings are the job's */
	/* Signalled (under the pool lock) when done turns true: one per wait,
	 * so placing a job wakes its own slot thread and no other. */
	pthread_cond_t cond;
	bool done; /* placed or ended: its slot returns */
};

/* A line decoded by the I/O thread before it takes the lock. */
struct serve_decoded {
	struct serve_proc *proc;
	bool bad; /* not a valid line: why says why */
	char why[160];
	struct serve_reply reply;
};

#define SERVE_DECODED_MAX 256

/* What a pollfd of the I/O thread stands for. */
struct serve_watch {
	enum { WATCH_WAKE, WATCH_STDOUT, WATCH_STDIN, WATCH_PIDFD } kind;
	struct serve_proc *proc;
	int read_status; /* WATCH_STDOUT: what proc_read said (read before the lock) */
};

/* Types given the same COMMAND share one pool: one process per slot serves
 * all of them, so `--serve a=CMD --serve b=CMD` starts CMD --concurrency
 * times, not twice that. */
struct serve_pool {
	char *name; /* the types, comma-joined, for logs and JOBMESH_SERVE_TYPES */
	proto_name *types;
	size_t types_count;
	char *command;
	char *exec_command; /* "exec COMMAND" when that means the same */
	unsigned slots;
	unsigned pipeline_max; /* --serve-pipeline */
	/* --serve-queue-ms: a pipelined job should wait about this long behind
	 * the jobs ahead of it in a process that runs them one at a time. */
	uint64_t queue_budget_us;
	uint32_t kill_grace_ms;
	pthread_mutex_t lock;
	struct serve_proc *procs;
	struct serve_wait *wait_head, *wait_tail;
	uint64_t answer_avg_us; /* moving average of the time per answer; 0: unknown */
	int wake_fd;            /* eventfd: wakes the I/O thread's poll */
	bool io_sleeping;       /* in poll: a placement must wake it */
	bool io_exit;
	pthread_t io_thread;
	bool io_started;
	/* The I/O thread's own. */
	struct serve_decoded *decoded; /* lines read and decoded without the lock */
	size_t decoded_count;
	/* Jobs answered in one pass, ended together after the lock is
	 * dropped (jm_job_finish_many: one hand-off to the settler). */
	jm_job **finish_jobs;
	int *finish_outcomes;
	size_t finishes_count, finishes_cap;
	struct pollfd *pfds;
	struct serve_watch *watches;
	size_t pfds_cap;
};

/* Wakes the I/O thread if it sleeps in poll. Under the pool lock. */
void serve_pool_wake(struct serve_pool *pool);
/* The running process with the fewest jobs that has room, or NULL. Under
 * the pool lock. */
struct serve_proc *serve_pool_pick(struct serve_pool *pool);
/* Encodes the job (spec) into proc's stdin buffer and records it in
 * flight (the I/O thread ends it from now on). JM_ENOMEM leaves nothing
 * changed. Under the pool lock. */
int serve_pool_place(struct serve_pool *pool, struct serve_proc *proc, jm_job *job,
                     const struct serve_job_line *spec);
/* Sets job's error text ("serve NAME: DETAIL" from fmt) and returns
 * JM_HANDLER_RETRY. */
int serve_job_fail(jm_job *job, const char *fmt, const char *name, const char *detail);
/* The pool's I/O thread (arg: the pool); returns once io_exit is set and
 * no job is left in the pool. */
void *serve_pool_io_main(void *arg);

#endif
