/* The exec handler: runs one job as a shell command.
 *
 * The contract a command sees (jobmesh-worker --help repeats it):
 *   - it runs in its own process group, with every file descriptor but 0,
 *     1, 2 and 3 closed and default signal dispositions: exec'd directly
 *     when it is plain words, else as `/bin/sh -c COMMAND` (command.h);
 *   - stdin carries the job's payload, then EOF;
 *   - the environment is the worker's plus JOBMESH_JOB_ID, JOBMESH_JOB_TYPE,
 *     JOBMESH_QUEUE, JOBMESH_ATTEMPT, JOBMESH_TIMEOUT_MS and
 *     JOBMESH_PROGRESS_FD=3;
 *   - file descriptor 3 is the write end of a pipe for progress lines (the
 *     side channel; format below). Using it is optional: the command may
 *     never write to it or close it at any time;
 *   - stdout is the result (at most EXEC_RESULT_MAX_DEFAULT bytes);
 *   - exit 0 is success, exit EXEC_EXIT_PERMANENT (100) a failure that must
 *     not be retried, any other exit or death by a signal a failure that may
 *     be retried; the error text carries the tail of stderr.
 *   - past the run timeout, when the job is abandoned, or when the worker
 *     dies (even by SIGKILL: guardian.h), the whole process group gets
 *     SIGTERM, then SIGKILL after the kill grace.
 *
 * Progress lines on descriptor 3, one per line, each at most
 * EXEC_PROGRESS_LINE_MAX (1024) bytes before its newline:
 *
 *     progress DONE TOTAL [MESSAGE]   whole numbers, TOTAL >= 1, DONE <= TOTAL
 *                                     e.g. "progress 12 47 writing about/team"
 *     progress FRACTION [MESSAGE]     a decimal 0..1, e.g. "progress 0.25 fetching";
 *                                     reported as DONE of 10000 (2500 of 10000)
 *
 * Fields are separated by spaces or tabs; MESSAGE is the rest of the line
 * (trailing whitespace dropped). When the first two fields are both whole
 * numbers the line is DONE TOTAL, otherwise the first field is a FRACTION
 * ("progress 1 3 parts" is 1 of 3; "progress 1" is all done). Blank lines
 * are skipped. A malformed line (another first word, a number out of range,
 * an overlong line) is ignored with one warning per job; it never fails the
 * job. A last line without a newline counts when the command exits.
 *
 * Descriptor 3 is inherited by what the command starts (it must be: the
 * real handler usually runs under the shell), but never by anything else
 * the worker starts, and it does not hold up the job: once the command has
 * exited, what is already in the pipe is read and the pipe is closed, even
 * if a background process still has it open (a later write there gets
 * EPIPE). A command that floods the pipe cannot block: it is read in the
 * same poll loop as stdout and stderr.
 *
 * Invariants: exec_run never leaves a zombie (it always reaps the child it
 * started), never blocks on a pipe (stdin, stdout and stderr are served by one
 * poll loop, so a child that writes before it reads cannot deadlock), and
 * never sleeps on a timer that no event bounds. */
#ifndef JM_WORKER_EXEC_H
#define JM_WORKER_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit code with which a command says "failed, do not retry". */
#define EXEC_EXIT_PERMANENT 100
/* Largest result (stdout) a command may produce. */
#define EXEC_RESULT_MAX_DEFAULT (1u << 20)
/* Time between SIGTERM and SIGKILL when a command is stopped. */
#define EXEC_KILL_GRACE_MS_DEFAULT 5000
/* Bytes of stderr kept for the error text (its tail). */
#define EXEC_STDERR_TAIL_MAX 960
/* Room for the whole error text: a prefix plus the stderr tail. */
#define EXEC_ERROR_MAX 1024
/* The descriptor the command writes progress lines to, and the longest line. */
#define EXEC_PROGRESS_FD 3
#define EXEC_PROGRESS_LINE_MAX 1024
/* What a FRACTION line is reported against: 0.25 is 2500 of 10000. */
#define EXEC_PROGRESS_FRACTION_TOTAL 10000

/* One parsed progress line. */
struct exec_progress {
	uint64_t done;
	uint64_t total; /* >= 1, >= done */
	size_t message_len;
	char message[EXEC_PROGRESS_LINE_MAX + 1]; /* NUL-terminated; "" if none */
};

/* Called on exec_run's thread for each well-formed progress line, in the
 * order written. It must not block for long (the poll loop waits for it);
 * progress points to exec_run's storage, valid during the call. */
typedef void (*exec_progress_cb)(const struct exec_progress *progress, void *arg);

/* Parses one line (len bytes, without its newline) as described above.
 * True with *out filled for a progress line; false for a malformed one. */
bool exec_progress_parse(const char *line, size_t len, struct exec_progress *out);

/* What the command is told about its job (exported as JOBMESH_* variables). */
struct exec_job {
	uint64_t job_id;
	const char *type;
	const char *queue;
	uint32_t attempt;
	uint64_t timeout_ms;
};

struct exec_spec {
	const char *command; /* exec'd, or run by /bin/sh -c: command.h */
	struct exec_job job;
	uint64_t timeout_ms;     /* run timeout; 0: none */
	uint32_t kill_grace_ms;  /* SIGTERM to SIGKILL; 0: EXEC_KILL_GRACE_MS_DEFAULT */
	size_t result_max_bytes; /* 0: EXEC_RESULT_MAX_DEFAULT */
	/* Readable once the job must be abandoned (an eventfd or a pipe; it is
	 * polled, never read); -1: never. */
	int abandon_fd;
	/* Receives the command's progress lines; NULL: they are read and
	 * dropped (descriptor 3 is given either way). */
	exec_progress_cb progress_cb;
	void *progress_arg;
};

enum exec_outcome {
	EXEC_OK = 0,        /* exit 0, result in output */
	EXEC_RETRY = 1,     /* failed; error says why */
	EXEC_PERMANENT = 2, /* exited with EXEC_EXIT_PERMANENT */
};

struct exec_result {
	enum exec_outcome outcome;
	uint8_t *output; /* stdout (owned; exec_result_fini frees); NULL if empty */
	size_t output_len;
	char error[EXEC_ERROR_MAX]; /* "" on success */
	int exit_code;              /* -1 when the command did not exit by itself */
	int term_signal;            /* the signal that ended it, or 0 */
	bool timed_out;             /* stopped at the run timeout */
	bool abandoned;             /* stopped because abandon_fd became readable */
	uint64_t elapsed_ms;
	uint32_t progress_lines;     /* well-formed progress lines (each sent to the cb) */
	uint32_t progress_malformed; /* lines ignored as malformed */
};

/* Runs spec->command with len bytes of payload on its stdin and waits for it
 * (and its stdout and stderr) to finish. Returns 0 when the command was run,
 * whatever its outcome (then *out says it; call exec_result_fini), or
 * JM_EINVAL / JM_ENOMEM / JM_EIO when it could not be started (out->error
 * says why; out needs no fini then, but accepts one). The calling thread's
 * SIGPIPE is blocked while it runs, so a child that closes stdin early costs
 * nothing. */
int exec_run(const struct exec_spec *spec, const void *payload, size_t len,
             struct exec_result *out);

/* Frees the output; accepts a zeroed result. */
void exec_result_fini(struct exec_result *result);

#endif
