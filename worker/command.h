/* How a handler's command line becomes a process (exec.c runs it).
 *
 * A command made only of plain words, "/srv/handlers/resize.sh --fast" or
 * "python3 ocr.py", is exec'd directly: the handler itself is the process
 * the worker started, so the SIGTERM sent when a job is stopped reaches
 * it (a TERM trap runs within --kill-grace-ms) instead of a /bin/sh whose
 * death ends the job and SIGKILLs the group at once. Anything a shell
 * would interpret (quotes, $, globs, redirections, pipes, ;, &&, a
 * leading VAR=value, ~, #, a newline) runs as /bin/sh -c COMMAND, as do
 * words whose first one is not found in PATH (a shell builtin such as
 * exit or cd). */
#ifndef JM_WORKER_COMMAND_H
#define JM_WORKER_COMMAND_H

#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* More words than this run under the shell. */
#define COMMAND_WORDS_MAX 64

/* A command split into words; argv points into buf. */
struct command_words {
	char *buf;
	char *argv[COMMAND_WORDS_MAX + 1]; /* NULL-terminated */
	int argc;
};

/* True with *words filled (free it with command_words_fini) when command
 * is plain words, separated by spaces or tabs, that no shell would change;
 * false when it needs /bin/sh -c (or is empty, or memory ran out: the
 * shell then runs it as before). */
bool command_split(const char *command, struct command_words *words);

/* Frees what command_split allocated; accepts a zeroed struct. */
void command_words_fini(struct command_words *words);

/* Starts command with posix_spawn's actions and attr and environment envp,
 * directly when command_split takes it, else as /bin/sh -c command; a
 * first word PATH does not know falls back to the shell. Returns 0 with
 * *pid set, or an errno with a line for the job's error in error. */
int command_spawn(const char *command, const posix_spawn_file_actions_t *actions,
                  const posix_spawnattr_t *attr, char **envp, pid_t *pid, char *error,
                  size_t error_size);

/* True for an environment entry ("NAME=value") a handler must not inherit:
 * the worker's own credentials (JOBMESH_TOKEN). A handler runs code the job
 * chose, so it gets no more than the job does. */
bool command_env_is_secret(const char *entry);

#endif
