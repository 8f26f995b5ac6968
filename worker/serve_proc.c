/* Starting, signalling and reaping one --serve handler process
 * (serve_proc.h). */
#define _GNU_SOURCE
#include "serve_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "command.h"
#include "guardian.h"
#include "log.h"

extern char **environ;

#define SERVE_BACKOFF_FIRST_MS 100
#define SERVE_BACKOFF_MAX_MS 10000

static uint64_t now_ms(void)
{
	return jm_mono_us() / 1000u;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

int serve_proc_spawn(struct serve_proc *proc, const struct serve_spawn *pool)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
		int e = errno;
		close_fd(&in[0]);
		close_fd(&in[1]);
		return e;
	}
	/* The worker's environment minus its token, plus who this process is. */
	size_t env_count = 0;
	while (environ[env_count] != NULL)
		env_count++;
	char **envp = calloc(env_count + 3, sizeof *envp);
	char *type_var = NULL, slot_var[48];
	if (asprintf(&type_var, "JOBMESH_SERVE_TYPES=%s", pool->name) < 0)
		type_var = NULL;
	snprintf(slot_var, sizeof slot_var, "JOBMESH_SERVE_SLOT=%u", proc->slot);
	int rc = ENOMEM;
	if (envp == NULL || type_var == NULL)
		goto out_free_env;
	size_t used = 0;
	for (size_t i = 0; i < env_count; i++)
		if (!command_env_is_secret(environ[i]))
			envp[used++] = environ[i];
	envp[used] = type_var;
	envp[used + 1] = slot_var;

	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t empty_mask, default_signals;
	sigemptyset(&empty_mask);
	sigfillset(&default_signals);
	if ((rc = posix_spawn_file_actions_init(&actions)) != 0)
		goto out_free_env;
	if ((rc = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&actions);
		goto out_free_env;
	}
	/* stderr stays the worker's, so a handler's logs land in the worker's
	 * log; everything above it is closed (the broker socket, other pipes). */
	if ((rc = posix_spawn_file_actions_adddup2(&actions, in[0], 0)) == 0 &&
	    (rc = posix_spawn_file_actions_adddup2(&actions, out[1], 1)) == 0 &&
	    (rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3)) == 0 &&
	    (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                              POSIX_SPAWN_SETSIGDEF)) == 0 &&
	    (rc = posix_spawnattr_setpgroup(&attr, 0)) == 0 &&
	    (rc = posix_spawnattr_setsigmask(&attr, &empty_mask)) == 0 &&
	    (rc = posix_spawnattr_setsigdefault(&attr, &default_signals)) == 0) {
		char *argv[] = {"sh", "-c", (char *)pool->exec_command, NULL};
		rc = posix_spawn(&proc->pid, "/bin/sh", &actions, &attr, argv, envp);
	}
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&actions);
	if (rc != 0) {
		proc->pid = 0;
		goto out_free_env;
	}
	guardian_watch(proc->pid, pool->kill_grace_ms);
	close_fd(&in[0]);
	close_fd(&out[1]);
	proc->stdin_fd = in[1];
	proc->stdout_fd = out[0];
	in[1] = out[0] = -1; /* moved into proc */
	fcntl(proc->stdin_fd, F_SETFL, O_NONBLOCK);
	fcntl(proc->stdout_fd, F_SETFL, O_NONBLOCK);
#ifdef SYS_pidfd_open
	proc->pidfd = (int)syscall(SYS_pidfd_open, proc->pid, 0);
#else
	proc->pidfd = -1;
#endif
	proc->in_len = 0;
	proc->in_lines = false;
	proc->out_len = proc->out_sent = 0;
	proc->flights_count = 0;
	proc->pipeline = 1;
	proc->batch = proc->frame_open = false;
	proc->warned = false;
	proc->state = SERVE_PROC_UP;
	jm_debug("serve %s slot %u: started pid %d", pool->name, proc->slot, (int)proc->pid);
out_free_env:
	free(envp);
	free(type_var);
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	return rc;
}

/* A simple command (words only: no shell operators, redirections,
 * expansions or leading VAR=value) is run as "exec COMMAND", so the process
 * the worker watches, and the pid a handler reports, is the handler itself
 * rather than a shell waiting for it. Anything else runs as written. */
char *serve_exec_command_for(const char *command)
{
	const char *p = command;
	while (*p == ' ' || *p == '\t')
		p++;
	bool simple = *p != '\0' && strpbrk(command, ";&|<>()$`\\\n*?[]{}~#") == NULL;
	const char *first_end = p + strcspn(p, " \t");
	if (memchr(p, '=', (size_t)(first_end - p)) != NULL || strncmp(p, "exec ", 5) == 0)
		simple = false;
	char *out = NULL;
	if (asprintf(&out, "%s%s", simple ? "exec " : "", command) < 0)
		return NULL;
	return out;
}

bool serve_proc_has_exited(const struct serve_proc *proc)
{
	siginfo_t info;
	memset(&info, 0, sizeof info);
	if (waitid(P_PID, (id_t)proc->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
		return true; /* not our child any more: nothing to wait for */
	return info.si_pid != 0;
}

/* Waits up to ms for the process to exit (without reaping it). */
bool serve_proc_wait_exit(const struct serve_proc *proc, uint64_t ms)
{
	uint64_t deadline = now_ms() + ms;
	for (;;) {
		if (serve_proc_has_exited(proc))
			return true;
		uint64_t now = now_ms();
		if (now >= deadline)
			return false;
		if (proc->pidfd >= 0) {
			struct pollfd p = {.fd = proc->pidfd, .events = POLLIN};
			poll(&p, 1, (int)(deadline - now));
		} else {
			/* No pidfd (old kernel): nothing to poll, look again shortly. */
			struct timespec pause = {0, 10 * 1000 * 1000};
			nanosleep(&pause, NULL);
		}
	}
}

/* Reaps the process and says how it ended in why[]. */
void serve_proc_reap(struct serve_proc *proc, char *why, size_t why_size)
{
	close_fd(&proc->stdin_fd);
	close_fd(&proc->stdout_fd);
	guardian_forget(proc->pid); /* while the zombie leader pins the group id */
	int status = 0;
	pid_t got;
	do {
		got = waitpid(proc->pid, &status, 0);
	} while (got < 0 && errno == EINTR);
	if (got < 0)
		snprintf(why, why_size, "ended (status unknown: %s)", strerror(errno));
	else if (WIFEXITED(status))
		snprintf(why, why_size, "exited with code %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(why, why_size, "was killed by %s",
		         sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status))
		                                        : "a signal");
	else
		snprintf(why, why_size, "ended");
	close_fd(&proc->pidfd);
	proc->pid = 0;
	proc->in_len = 0;
	proc->in_lines = false;
	proc->out_len = proc->out_sent = 0;
	proc->frame_open = false;
	proc->state = SERVE_PROC_DOWN;
}

/* SIGTERM to the group, SIGKILL after grace_ms, then reap. */
void serve_proc_kill(struct serve_proc *proc, uint32_t grace_ms, char *why, size_t why_size)
{
	kill(-proc->pid, SIGTERM);
	if (!serve_proc_wait_exit(proc, grace_ms)) {
		kill(-proc->pid, SIGKILL);
		serve_proc_wait_exit(proc, 5000);
	}
	/* The leader is gone; anything it left in its group goes too. */
	kill(-proc->pid, SIGKILL);
	serve_proc_reap(proc, why, why_size);
}

/* A death the process chose (not our kill): restarts wait a backoff. */
void serve_proc_note_crash(struct serve_proc *proc)
{
	proc->crashes++;
	uint64_t backoff = SERVE_BACKOFF_FIRST_MS;
	for (unsigned i = 1; i < proc->crashes && backoff < SERVE_BACKOFF_MAX_MS; i++)
		backoff *= 2;
	if (backoff > SERVE_BACKOFF_MAX_MS)
		backoff = SERVE_BACKOFF_MAX_MS;
	proc->start_after_ms = now_ms() + backoff;
}
