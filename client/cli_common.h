/* The jobmesh command-line tool: what its commands share.
 *
 * Exit codes are defined here once; --help prints them from
 * cli_exit_codes_help. Every error is one line on stderr,
 * "jobmesh: <what>: <detail>", printed through cli_fail() or
 * cli_fail_sdk(); stdout carries only results, so scripts can use it. */
#ifndef JM_CLIENT_CLI_COMMON_H
#define JM_CLIENT_CLI_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include <jobmesh/client.h>

#include "flags.h"

enum cli_exit {
	CLI_EXIT_OK = 0,             /* success; the job completed */
	CLI_EXIT_ERROR = 1,          /* the request was refused or failed */
	CLI_EXIT_USAGE = 2,          /* bad command line */
	CLI_EXIT_UNREACHABLE = 3,    /* broker unreachable or no reply in time */
	CLI_EXIT_NOT_FOUND = 4,      /* no such job or batch */
	CLI_EXIT_JOB_FAILED = 10,    /* the job failed (dead-lettered); a batch
	                                finished with failures */
	CLI_EXIT_JOB_CANCELLED = 11, /* the job was cancelled; a batch finished
	                                with cancelled jobs and no failures */
	CLI_EXIT_NOT_FINISHED = 12,  /* the job or batch has not finished: wait
	                                or watch timed out, or result asked too
	                                early */
};

/* The EXIT CODES section of --help, matching enum cli_exit. */
extern const char cli_exit_codes_help[];

/* Global options, set from the config file and then from flags. */
struct cli {
	const char *broker;   /* --broker; NULL: $JOBMESH_BROKER, else default */
	uint32_t timeout_ms;  /* --timeout; 0: the SDK's default */
	jm_security security; /* --token, --tls-*: NULL fields from the environment */
	jm_client *client;    /* opened by cli_client() on first use */
};

/* Options every command takes; each command's option struct starts with
 * one, so the shared setters below work on any of them. */
struct cli_opts {
	bool help;
	bool json;
};

int cli_set_help(void *ctx, const char *value, struct jm_err *err);
int cli_set_json(void *ctx, const char *value, struct jm_err *err);

/* The options of the commands that wait (wait, watch): --timeout SEC, at
 * most CLI_WAIT_SEC_MAX so that it fits a 32-bit millisecond count. */
#define CLI_WAIT_SEC_MAX (UINT32_MAX / 1000)
struct cli_timeout_opts {
	struct cli_opts common; /* first: the shared setters cast to it */
	bool has_timeout;
	uint64_t timeout_ms;
};
int cli_set_timeout(void *ctx, const char *value, struct jm_err *err);
/* SEC of --timeout and --wait (0..CLI_WAIT_SEC_MAX) into *ms; flag names it
 * in the error. */
int cli_parse_wait_seconds(const char *flag, const char *value, uint64_t *ms, struct jm_err *err);

#define CLI_FLAG_HELP                                                                              \
	{                                                                                          \
		"help", NULL, "show this help", cli_set_help                                       \
	}
#define CLI_FLAG_JSON                                                                              \
	{                                                                                          \
		"json", NULL, "print JSON instead of text", cli_set_json                           \
	}

/* The flags of a command that takes only --json and --help, and of one
 * that takes only --help (the parents of subcommands). */
extern const struct jm_flag cli_json_flags[];
extern const struct jm_flag cli_help_flags[];

struct cli_command {
	const char *name;
	/* Runs the command with its arguments at argv[first..argc); returns an
	 * exit code. */
	int (*run)(struct cli *cli, const struct cli_command *self, int argc, char **argv,
	           int first);
	const char *args;    /* synopsis after the name: "ID [--json]" */
	const char *summary; /* one line for the command list */
	const char *details; /* more lines for "jobmesh help NAME", or NULL */
	const struct jm_flag *flags;
};

/* Prints "usage: jobmesh NAME ARGS", the summary, details and flags. */
void cli_command_help(FILE *out, const struct cli_command *cmd);

/* Parses a command's arguments: flags of table anywhere, at most
 * positionals_max other arguments into positionals. Prints a usage error
 * and returns CLI_EXIT_USAGE, or prints the help and returns CLI_EXIT_OK
 * with *done set, or returns CLI_EXIT_OK to go on. */
int cli_command_args(const struct cli_command *cmd, void *opts, int argc, char **argv, int first,
                     const char **positionals, int positionals_max, int *positionals_count,
                     bool *done);
/* cli_command_args for a command whose first operand is required: without
 * it, prints "<what> is required; usage: jobmesh NAME ARGS" and returns
 * CLI_EXIT_USAGE. */
int cli_command_operands(const struct cli_command *cmd, void *opts, int argc, char **argv,
                         int first, const char *what, const char **operands, int operands_max,
                         int *operands_count, bool *done);

/* The connected client, opened on first use; NULL after printing why. */
jm_client *cli_client(struct cli *cli, const char *what, int *exit_code);

/* Prints "jobmesh: <what>: <detail>" on stderr ("jobmesh: <detail>" when
 * what is NULL) and returns exit_code. */
int cli_fail(int exit_code, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The one "not found" line of every command, and exit 4:
 * "jobmesh: <what>: <kind> <id> not found: no such id, or its retention ran
 * out". kind is "job", "batch" or "job or batch". */
int cli_fail_not_found(const char *what, const char *kind, uint64_t id);

/* Prints the SDK's last error (it names the operation already) and
 * returns the exit code for rc. */
int cli_fail_sdk(int rc);

/* The exit code for an SDK error code and for a job's state. */
int cli_exit_for_error(int rc);
int cli_exit_for_state(int state);
/* The exit code for a batch: 0 completed, 10 with failures, 11 with only
 * cancellations, 12 still running. */
int cli_exit_for_batch(const jm_batch_info *batch);

/* Commands; the table in cli_main.c points at these. */
int cli_submit_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                   int first);
/* submit --stdin-lines (cli_submit_lines.c): one job per line of stdin. */
int cli_submit_lines(struct cli *cli, const jm_job_spec *spec, bool json);
int cli_status_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                   int first);
int cli_result_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                   int first);
int cli_wait_run(struct cli *cli, const struct cli_command *self, int argc, char **argv, int first);
/* What wait and submit --wait print for a job they waited for (rc 0 or
 * JM_ETIMEDOUT from the SDK, else an error): its state line or, with
 * json, the job with its result; returns the exit code by its state, 12
 * when timeout_ms passed first. Frees *job. */
int cli_report_waited(const char *what, jm_job_info *job, int rc, bool json, uint64_t timeout_ms);
int cli_stats_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                  int first);

int cli_cancel_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                   int first);
int cli_batch_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                  int first);
int cli_watch_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                  int first);
int cli_workers_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                    int first);
int cli_dead_run(struct cli *cli, const struct cli_command *self, int argc, char **argv, int first);
int cli_schedule_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                     int first);
int cli_queue_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                  int first);

/* A command made of subcommands ("batch submit", "batch status"): the
 * subcommands' names start with the group's name and a space. */
struct cli_group {
	const char *name; /* "batch" */
	const struct cli_command *commands;
	size_t count;
	const char *missing_hint; /* shown when no subcommand is named */
};
/* The group's usage, one entry per subcommand, and the exit codes. */
void cli_group_help(FILE *out, const struct cli_group *group);
/* Runs the subcommand named at argv[first] (or prints the group's help);
 * returns an exit code. */
int cli_group_run(struct cli *cli, const struct cli_group *group, int argc, char **argv, int first);

/* The subcommand of group named word ("submit"), or NULL. */
const struct cli_command *cli_group_find(const struct cli_group *group, const char *word);

/* The groups of the commands with subcommands (batch, dead-letter). */
extern const struct cli_group cli_batch_group;
extern const struct cli_group cli_dead_group;
extern const struct cli_group cli_schedule_group;
extern const struct cli_group cli_queue_group;

/* Help of the commands with subcommands (batch, dead-letter). */
void cli_batch_help(FILE *out);
void cli_dead_help(FILE *out);
void cli_schedule_help(FILE *out);
void cli_queue_help(FILE *out);

/* Prints one batch (text or JSON) as "batch status" does; exit code. */
int cli_batch_show(jm_client *client, const char *what, uint64_t batch_id, bool json);
/* Prints every running batch ("3 operations in progress" and a line each,
 * or JSON); exit code. */
int cli_batch_list_running(jm_client *client, bool json);

extern const struct jm_flag cli_watch_flags[];
extern const struct jm_flag cli_submit_flags[];
extern const struct jm_flag cli_status_flags[];
extern const struct jm_flag cli_wait_flags[];

#endif
