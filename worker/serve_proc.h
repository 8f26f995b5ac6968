/* One --serve handler process: its pipes, what it was handed and has not
 * answered yet, and how it is started, stopped and reaped (serve.h has the
 * contract, serve.c the pool and the I/O thread that drive these).
 *
 * A process is DOWN (no pid), UP (serving: its stdout is read, its stdin
 * written) or ENDING (it closed stdout or we signalled it: we wait for it
 * to exit, escalating SIGTERM then SIGKILL at end_deadline_ms, and then
 * reap it and end the jobs it still held). Every field is the pool's,
 * under the pool lock, except in and out's bytes, which only the pool's
 * I/O thread reads and writes. */
#ifndef JM_WORKER_SERVE_PROC_H
#define JM_WORKER_SERVE_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jobmesh/worker.h>

enum serve_proc_state { SERVE_PROC_DOWN, SERVE_PROC_UP, SERVE_PROC_ENDING };

/* A job written (or about to be) to a process and not answered yet. */
struct serve_flight {
	jm_job *job; /* deferred: ended with jm_job_finish */
	uint64_t job_id;
	uint64_t placed_us;   /* monotonic */
	uint64_t deadline_ms; /* monotonic: its run timeout passes; 0: none */
	uint64_t timeout_ms;
};

/* Why an ENDING process is ending, which decides what its jobs get. */
enum serve_end {
	SERVE_END_CRASH,  /* it closed stdout or its stdin broke: all fail, backoff */
	SERVE_END_TARGET, /* stopped for one job (timeout, abandon): it fails,
	                     the others are handed back */
	SERVE_END_BROKEN, /* it broke the protocol: all fail */
};

struct serve_proc {
	unsigned slot;
	enum serve_proc_state state;
	pid_t pid;
	int pidfd; /* -1 when pidfd_open is missing */
	int stdin_fd;
	int stdout_fd;
	char *in; /* bytes read from stdout, not yet decoded */
	size_t in_len, in_cap;
	bool in_lines; /* in[] may hold whole lines (the decoded array was full) */
	char *out;     /* job lines to write to stdin; out[out_sent..out_len) left */
	size_t out_len, out_sent, out_cap;
	struct serve_flight *flights; /* pipeline_max of them */
	unsigned flights_count;
	unsigned pipeline;       /* jobs it takes at a time: 1 until its hello */
	bool batch;              /* its hello asked for "jobs" lines */
	bool frame_open;         /* out ends in a "jobs" line not closed yet */
	size_t frame_at;         /* frame_open: where that line starts in out */
	uint64_t last_answer_us; /* monotonic: its last result or error */
	bool warned;             /* one warning per process for lines we ignore */
	enum serve_end end;
	uint64_t end_target; /* SERVE_END_TARGET: the job it was stopped for */
	char end_reason[160];
	unsigned end_stage; /* 0: waiting for it to exit, 1: SIGTERM sent, 2: SIGKILL sent */
	uint64_t end_deadline_ms;
	unsigned crashes;        /* deaths in a row without an answered job */
	uint64_t start_after_ms; /* backoff: no restart before (monotonic) */
};

struct serve_spawn {
	const char *name;         /* the types, comma-joined: JOBMESH_SERVE_TYPES */
	const char *exec_command; /* run as /bin/sh -c exec_command */
	uint32_t kill_grace_ms;
};

/* Starts the process of proc's slot (state UP, pipeline 1, nothing in
 * flight). Returns 0 or an errno value. */
int serve_proc_spawn(struct serve_proc *proc, const struct serve_spawn *how);
/* "exec COMMAND" for a simple command (so the pid we watch is the
 * handler's own), COMMAND otherwise; malloc'd, NULL when out of memory. */
char *serve_exec_command_for(const char *command);
bool serve_proc_has_exited(const struct serve_proc *proc);
/* Waits up to ms for the process to exit (without reaping it). */
bool serve_proc_wait_exit(const struct serve_proc *proc, uint64_t ms);
/* Closes its pipes, reaps it and says how it ended in why[]; state DOWN. */
void serve_proc_reap(struct serve_proc *proc, char *why, size_t why_size);
/* SIGTERM to the group, SIGKILL after grace_ms, then reap (blocking). */
void serve_proc_kill(struct serve_proc *proc, uint32_t grace_ms, char *why, size_t why_size);
/* A death the process chose: its next start waits a backoff (100 ms
 * doubling to 10 s, reset by an answered job). */
void serve_proc_note_crash(struct serve_proc *proc);

#endif
