/* Long-lived handler processes for jobmesh-worker --serve (see serve.h for
 * the contract, serve_proto.h for the lines).
 *
 * One pool per type holds one slot per unit of --concurrency. A handler call
 * (on one of the SDK's slot threads) takes a free slot under the pool's lock, then
 * owns it alone until it returns: it (re)starts the slot's process if
 * needed, writes the job line and serves the process's stdout, the job's
 * abandon descriptor and the run timeout in one poll loop, so a handler that
 * writes progress while the worker is still writing a large job line cannot
 * deadlock. The SDK never runs more handlers at once than --concurrency, so
 * a free slot always exists. */
#define _GNU_SOURCE
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
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
#include "message.h"
#include "serve_proto.h"

extern char **environ;

#define SERVE_BACKOFF_FIRST_MS 100
#define SERVE_BACKOFF_MAX_MS 10000
#define SERVE_READ_CHUNK 65536

struct serve_proc {
	unsigned slot;
	pid_t pid; /* 0: no process */
	int pidfd; /* -1 when pidfd_open is missing */
	int stdin_fd;
	int stdout_fd;
	char *buf; /* bytes read from stdout, not yet a whole line */
	size_t buf_len, buf_cap;
	bool busy;
	unsigned crashes;        /* deaths in a row without a finished job */
	uint64_t start_after_ms; /* backoff: no restart before (monotonic) */
	uint64_t jobs_done;      /* by this process */
};

/* Types given the same COMMAND share one pool: one process per slot serves
 * all of them, so `--serve a=CMD --serve b=CMD` starts CMD --concurrency
 * times, not twice that. */
struct serve_pool {
	char *name; /* the types, comma-joined, for logs and JOBMESH_SERVE_TYPES */
	proto_name *types;
	size_t types_count;
	char *command;
	char *exec_command; /* "exec COMMAND" when that means the same (below) */
	unsigned slots;
	uint32_t kill_grace_ms;
	pthread_mutex_t lock;
	struct serve_proc *procs;
};

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

/* ---- one process ---------------------------------------------------------- */

static int proc_spawn(struct serve_pool *pool, struct serve_proc *proc)
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
		char *argv[] = {"sh", "-c", pool->exec_command, NULL};
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
	proc->buf_len = 0;
	proc->jobs_done = 0;
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
static char *exec_command_for(const char *command)
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

static bool proc_has_exited(const struct serve_proc *proc)
{
	siginfo_t info;
	memset(&info, 0, sizeof info);
	if (waitid(P_PID, (id_t)proc->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
		return true; /* not our child any more: nothing to wait for */
	return info.si_pid != 0;
}

/* Waits up to ms for the process to exit (without reaping it). */
static bool proc_wait_exit(const struct serve_proc *proc, uint64_t ms)
{
	uint64_t deadline = now_ms() + ms;
	for (;;) {
		if (proc_has_exited(proc))
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
static void proc_reap(struct serve_proc *proc, char *why, size_t why_size)
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
	proc->buf_len = 0;
}

/* SIGTERM to the group, SIGKILL after grace_ms, then reap. */
static void proc_kill(struct serve_proc *proc, uint32_t grace_ms, char *why, size_t why_size)
{
	kill(-proc->pid, SIGTERM);
	if (!proc_wait_exit(proc, grace_ms)) {
		kill(-proc->pid, SIGKILL);
		proc_wait_exit(proc, 5000);
	}
	/* The leader is gone; anything it left in its group goes too. */
	kill(-proc->pid, SIGKILL);
	proc_reap(proc, why, why_size);
}

/* A death the process chose (not our kill): restarts wait a backoff. */
static void proc_note_crash(struct serve_proc *proc)
{
	proc->crashes++;
	uint64_t backoff = SERVE_BACKOFF_FIRST_MS;
	for (unsigned i = 1; i < proc->crashes && backoff < SERVE_BACKOFF_MAX_MS; i++)
		backoff *= 2;
	if (backoff > SERVE_BACKOFF_MAX_MS)
		backoff = SERVE_BACKOFF_MAX_MS;
	proc->start_after_ms = now_ms() + backoff;
}

/* ---- one job on one slot ------------------------------------------------- */

enum line_verdict { LINE_CONTINUE, LINE_DONE };

struct job_run {
	struct serve_pool *pool;
	struct serve_proc *proc;
	jm_job *job;
	int outcome;
	bool warned; /* one warning per job for lines we ignore */
};

static enum line_verdict line_handle(struct job_run *run, const char *line, size_t len)
{
	if (len == 0)
		return LINE_CONTINUE;
	struct serve_reply reply;
	char why[256];
	if (serve_proto_decode(line, len, &reply, why, sizeof why) != 0) {
		if (!run->warned)
			jm_warn(
			    "serve %s pid %d: ignoring a line on stdout: %s (write logs to stderr)",
			    run->pool->name, (int)run->proc->pid, why);
		run->warned = true;
		return LINE_CONTINUE;
	}
	enum line_verdict verdict = LINE_CONTINUE;
	if (reply.job_id != jm_job_id(run->job)) {
		if (!run->warned)
			jm_warn("serve %s pid %d: ignoring a line for job %" PRIu64
			        " while it runs job %" PRIu64,
			        run->pool->name, (int)run->proc->pid, reply.job_id,
			        jm_job_id(run->job));
		run->warned = true;
	} else if (reply.op == SERVE_REPLY_PROGRESS) {
		jm_job_progress(run->job, reply.done, reply.total,
		                reply.message[0] ? reply.message : NULL);
	} else if (reply.op == SERVE_REPLY_RESULT) {
		int rc = jm_job_set_result(run->job, reply.result, reply.result_len);
		if (rc == 0) {
			run->outcome = JM_HANDLER_OK;
		} else {
			char text[128];
			snprintf(text, sizeof text, "serve handler result of %zu bytes refused: %s",
			         reply.result_len, jm_strerror(rc));
			jm_job_set_error(run->job, text);
			run->outcome = JM_HANDLER_RETRY;
		}
		verdict = LINE_DONE;
	} else {
		jm_job_set_error(run->job, reply.message);
		run->outcome = reply.permanent ? JM_HANDLER_PERMANENT : JM_HANDLER_RETRY;
		verdict = LINE_DONE;
	}
	serve_reply_fini(&reply);
	return verdict;
}

/* Reads what stdout has. Returns 1 when the job finished, 0 to go on,
 * -1 at EOF (the process closed stdout or died), -2 for an overlong line. */
static int stdout_read(struct job_run *run)
{
	struct serve_proc *proc = run->proc;
	for (;;) {
		if (proc->buf_cap - proc->buf_len < SERVE_READ_CHUNK) {
			size_t cap = proc->buf_cap ? proc->buf_cap * 2 : 2 * SERVE_READ_CHUNK;
			char *grown = realloc(proc->buf, cap);
			if (grown == NULL)
				return -2;
			proc->buf = grown;
			proc->buf_cap = cap;
		}
		ssize_t got =
		    read(proc->stdout_fd, proc->buf + proc->buf_len, proc->buf_cap - proc->buf_len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (got <= 0)
			return -1;
		size_t scan_from = proc->buf_len;
		proc->buf_len += (size_t)got;
		size_t start = 0;
		for (size_t i = scan_from; i < proc->buf_len; i++) {
			if (proc->buf[i] != '\n')
				continue;
			enum line_verdict v = line_handle(run, proc->buf + start, i - start);
			start = i + 1;
			if (v == LINE_DONE) {
				memmove(proc->buf, proc->buf + start, proc->buf_len - start);
				proc->buf_len -= start;
				return 1;
			}
		}
		memmove(proc->buf, proc->buf + start, proc->buf_len - start);
		proc->buf_len -= start;
		if (proc->buf_len > SERVE_LINE_MAX)
			return -2;
	}
}

/* Writes what it can of line without blocking; false when the pipe broke. */
static bool stdin_write(struct serve_proc *proc, const char *line, size_t len, size_t *sent)
{
	while (*sent < len) {
		ssize_t n = write(proc->stdin_fd, line + *sent, len - *sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0)
			return false;
		*sent += (size_t)n;
	}
	return true;
}

/* Waits out the slot's restart backoff; false when the job was abandoned
 * meanwhile. */
static bool backoff_wait(struct serve_proc *proc, int abandon_fd)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= proc->start_after_ms)
			return true;
		struct pollfd p = {.fd = abandon_fd, .events = POLLIN};
		int n = poll(&p, abandon_fd >= 0 ? 1 : 0, (int)(proc->start_after_ms - now));
		if (n > 0)
			return false;
	}
}

static int fail_job(jm_job *job, const char *fmt, const char *type, const char *detail)
{
	char text[SERVE_TEXT_MAX];
	snprintf(text, sizeof text, fmt, type, detail);
	jm_job_set_error(job, text);
	return JM_HANDLER_RETRY;
}

static int slot_ensure_process(struct serve_pool *pool, struct serve_proc *proc, jm_job *job)
{
	char why[128];
	if (proc->pid > 0 && proc_has_exited(proc)) {
		proc_reap(proc, why, sizeof why);
		jm_warn("serve %s slot %u: handler process %s while idle; restarting it",
		        pool->name, proc->slot, why);
		proc_note_crash(proc);
	}
	if (proc->pid > 0)
		return 0;
	if (!backoff_wait(proc, jm_job_abandon_fd(job)))
		return fail_job(job, "serve %s: %s", pool->name,
		                "job abandoned while its handler process waited to restart");
	int rc = proc_spawn(pool, proc);
	if (rc != 0) {
		jm_error("serve %s slot %u: cannot start \"%s\": %s", pool->name, proc->slot,
		         pool->command, strerror(rc));
		proc_note_crash(proc);
		return fail_job(job, "serve %s: cannot start the handler process: %s", pool->name,
		                strerror(rc));
	}
	return 0;
}

static int slot_run(struct serve_pool *pool, struct serve_proc *proc, jm_job *job)
{
	int rc = slot_ensure_process(pool, proc, job);
	if (rc != 0)
		return rc;
	uint64_t timeout_ms = jm_job_timeout_ms(job);
	size_t payload_len = 0;
	const void *payload = jm_job_payload(job, &payload_len);
	struct serve_job_line spec = {
	    .job_id = jm_job_id(job),
	    .type = jm_job_type(job),
	    .queue = jm_job_queue(job),
	    .attempt = jm_job_attempt(job),
	    .payload = payload,
	    .payload_len = payload_len,
	    .deadline_wall_ms = timeout_ms ? jm_wall_us() / 1000u + timeout_ms : 0,
	    .timeout_ms = timeout_ms,
	};
	size_t line_len = 0;
	char *line = serve_proto_job(&spec, &line_len);
	if (line == NULL)
		return fail_job(job, "serve %s: %s", pool->name, "out of memory for the job line");

	struct job_run run = {.pool = pool, .proc = proc, .job = job, .outcome = JM_HANDLER_RETRY};
	int abandon_fd = jm_job_abandon_fd(job);
	uint64_t start = now_ms();
	size_t sent = 0;
	const char *stop_reason = NULL; /* set: kill the process */
	bool died = false;
	for (;;) {
		struct pollfd fds[3] = {
		    {.fd = proc->stdout_fd, .events = POLLIN},
		    {.fd = sent < line_len ? proc->stdin_fd : -1, .events = POLLOUT},
		    {.fd = abandon_fd, .events = POLLIN},
		};
		int wait_ms = -1;
		if (timeout_ms) {
			uint64_t now = now_ms();
			if (now - start >= timeout_ms) {
				stop_reason = "timed out";
				break;
			}
			wait_ms = (int)(timeout_ms - (now - start));
		}
		if (poll(fds, 3, wait_ms) < 0 && errno != EINTR) {
			stop_reason = "lost its pipes";
			break;
		}
		if (fds[2].revents & POLLIN) {
			stop_reason = "was abandoned (cancelled, lease lost or worker stopping)";
			break;
		}
		if (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) {
			if (!stdin_write(proc, line, line_len, &sent)) {
				died = true; /* read what stdout still has first */
			}
		}
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR) || died) {
			int r = stdout_read(&run);
			if (r == 1)
				break;
			if (r == -1) {
				died = true;
				break;
			}
			if (r == -2) {
				stop_reason =
				    "wrote a line longer than the protocol allows (7 MiB)";
				break;
			}
		}
		if (died)
			break; /* stdin broke: what stdout had is read; it is going away */
	}
	free(line);

	char how[128];
	if (stop_reason != NULL) {
		size_t cancel_len = 0;
		char *cancel = serve_proto_cancel(jm_job_id(job), &cancel_len);
		size_t cancel_sent = 0;
		if (cancel != NULL && sent == line_len)
			stdin_write(proc, cancel, cancel_len, &cancel_sent);
		free(cancel);
		pid_t pid = proc->pid;
		proc_kill(proc, pool->kill_grace_ms, how, sizeof how);
		char text[SERVE_TEXT_MAX];
		if (strcmp(stop_reason, "timed out") == 0)
			snprintf(text, sizeof text,
			         "serve %s: timed out after %" PRIu64 " ms; handler process %d %s "
			         "(restarted for the next job)",
			         pool->name, timeout_ms, (int)pid, how);
		else
			snprintf(
			    text, sizeof text,
			    "serve %s: job %s; handler process %d %s (restarted for the next job)",
			    pool->name, stop_reason, (int)pid, how);
		jm_job_set_error(job, text);
		jm_info("%s", text);
		return JM_HANDLER_RETRY;
	}
	if (died) {
		pid_t pid = proc->pid;
		proc_wait_exit(proc, pool->kill_grace_ms); /* it closed stdout: exiting */
		proc_kill(proc, pool->kill_grace_ms, how, sizeof how);
		proc_note_crash(proc);
		char text[SERVE_TEXT_MAX];
		snprintf(text, sizeof text,
		         "serve %s: handler process %d %s while running the job (restarting it)",
		         pool->name, (int)pid, how);
		jm_job_set_error(job, text);
		jm_warn("%s", text);
		return JM_HANDLER_RETRY;
	}
	proc->crashes = 0;
	proc->jobs_done++;
	return run.outcome;
}

static int serve_handler(jm_job *job, void *arg)
{
	struct serve_pool *pool = arg;
	struct serve_proc *proc = NULL;
	pthread_mutex_lock(&pool->lock);
	for (unsigned i = 0; i < pool->slots; i++) {
		struct serve_proc *p = &pool->procs[i];
		if (p->busy)
			continue;
		if (proc == NULL || (proc->pid == 0 && p->pid > 0))
			proc = p; /* prefer a slot whose process is warm */
	}
	if (proc != NULL)
		proc->busy = true;
	pthread_mutex_unlock(&pool->lock);
	if (proc == NULL)
		return fail_job(job, "serve %s: %s", pool->name,
		                "no free handler slot (more jobs at once than --concurrency)");
	int outcome = slot_run(pool, proc, job);
	pthread_mutex_lock(&pool->lock);
	proc->busy = false;
	pthread_mutex_unlock(&pool->lock);
	return outcome;
}

/* ---- the set of pools ---------------------------------------------------- */

static void pool_free(struct serve_pool *pool)
{
	if (pool == NULL)
		return;
	for (unsigned i = 0; pool->procs != NULL && i < pool->slots; i++)
		free(pool->procs[i].buf);
	free(pool->procs);
	free(pool->types);
	free(pool->name);
	free(pool->exec_command);
	free(pool->command);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

static int pool_rename(struct serve_pool *pool)
{
	size_t len = 1;
	for (size_t i = 0; i < pool->types_count; i++)
		len += strlen(pool->types[i]) + 1;
	char *name = malloc(len);
	if (name == NULL)
		return JM_ENOMEM;
	name[0] = '\0';
	for (size_t i = 0; i < pool->types_count; i++) {
		if (i > 0)
			strcat(name, ",");
		strcat(name, pool->types[i]);
	}
	free(pool->name);
	pool->name = name;
	return 0;
}

/* The same type given again (argv over the config file) leaves its pool. */
static void set_forget_type(struct serve_set *set, const char *type)
{
	for (size_t i = 0; i < set->pools_count; i++) {
		struct serve_pool *pool = set->pools[i];
		for (size_t t = 0; t < pool->types_count; t++) {
			if (strcmp(pool->types[t], type) != 0)
				continue;
			memmove(&pool->types[t], &pool->types[t + 1],
			        (pool->types_count - t - 1) * sizeof *pool->types);
			pool->types_count--;
			pool_rename(pool);
			return;
		}
	}
}

int serve_set_add(struct serve_set *set, const char *flag_value, struct jm_err *err)
{
	const char *equals = strchr(flag_value, '=');
	if (equals == NULL || equals[1] == '\0')
		return jm_err_set(err, JM_EINVAL,
		                  "--serve \"%s\": write TYPE=COMMAND, e.g. "
		                  "--serve email.parse='node handlers.mjs'",
		                  flag_value);
	size_t type_len = (size_t)(equals - flag_value);
	if (!proto_name_is_valid(flag_value, type_len))
		return jm_err_set(err, JM_EBADNAME, "--serve: job type \"%.*s\" is invalid: %s",
		                  (int)type_len, flag_value, PROTO_NAME_RULE);
	proto_name type;
	memcpy(type, flag_value, type_len);
	type[type_len] = '\0';
	const char *command = equals + 1;
	set_forget_type(set, type);

	struct serve_pool *pool = NULL;
	for (size_t i = 0; i < set->pools_count && pool == NULL; i++) {
		if (strcmp(set->pools[i]->command, command) == 0)
			pool = set->pools[i];
	}
	if (pool == NULL) {
		struct serve_pool **grown =
		    realloc(set->pools, (set->pools_count + 1) * sizeof *grown);
		if (grown == NULL)
			return jm_err_set(err, JM_ENOMEM, "out of memory");
		set->pools = grown;
		pool = calloc(1, sizeof *pool);
		if (pool == NULL)
			return jm_err_set(err, JM_ENOMEM, "out of memory");
		pool->command = strdup(command);
		if (pool->command == NULL) {
			free(pool);
			return jm_err_set(err, JM_ENOMEM, "out of memory");
		}
		pthread_mutex_init(&pool->lock, NULL);
		set->pools[set->pools_count++] = pool;
	}
	proto_name *types = realloc(pool->types, (pool->types_count + 1) * sizeof *types);
	if (types == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	pool->types = types;
	memcpy(pool->types[pool->types_count++], type, sizeof type);
	if (pool_rename(pool) != 0)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	return 0;
}

int serve_set_start(struct serve_set *set, jm_worker *worker, unsigned slots,
                    uint32_t kill_grace_ms, struct jm_err *err)
{
	for (size_t i = 0; i < set->pools_count; i++) {
		struct serve_pool *pool = set->pools[i];
		if (pool->types_count == 0)
			continue; /* every type it had was given another command */
		pool->slots = slots ? slots : 1;
		pool->kill_grace_ms = kill_grace_ms;
		pool->exec_command = exec_command_for(pool->command);
		if (pool->exec_command == NULL)
			return jm_err_set(err, JM_ENOMEM, "out of memory");
		pool->procs = calloc(pool->slots, sizeof *pool->procs);
		if (pool->procs == NULL)
			return jm_err_set(err, JM_ENOMEM, "out of memory");
		for (unsigned s = 0; s < pool->slots; s++) {
			struct serve_proc *p = &pool->procs[s];
			p->slot = s;
			p->pidfd = p->stdin_fd = p->stdout_fd = -1;
		}
		for (size_t t = 0; t < pool->types_count; t++) {
			int rc = jm_worker_register(worker, pool->types[t], serve_handler, pool);
			if (rc != 0)
				return jm_err_set(err, rc,
				                  "--serve %s: cannot register the handler: %s",
				                  pool->types[t], jm_strerror(rc));
		}
		for (unsigned s = 0; s < pool->slots; s++) {
			int rc = proc_spawn(pool, &pool->procs[s]);
			if (rc != 0) {
				jm_error(
				    "serve %s slot %u: cannot start \"%s\": %s (trying again at "
				    "the first job)",
				    pool->name, s, pool->command, strerror(rc));
				proc_note_crash(&pool->procs[s]);
			}
		}
		jm_info("serve %s: %u handler process(es) of \"%s\"", pool->name, pool->slots,
		        pool->command);
	}
	return 0;
}

void serve_set_stop(struct serve_set *set)
{
	uint32_t grace_ms = 0;
	size_t stop_len = 0;
	char *stop = serve_proto_stop(&stop_len);
	for (size_t i = 0; i < set->pools_count; i++) {
		struct serve_pool *pool = set->pools[i];
		if (pool->kill_grace_ms > grace_ms)
			grace_ms = pool->kill_grace_ms;
		for (unsigned s = 0; pool->procs != NULL && s < pool->slots; s++) {
			struct serve_proc *p = &pool->procs[s];
			if (p->pid <= 0)
				continue;
			size_t sent = 0;
			if (stop != NULL)
				stdin_write(p, stop, stop_len, &sent);
			close_fd(&p->stdin_fd); /* EOF: a handler may just read to the end */
		}
	}
	free(stop);
	uint64_t deadline = now_ms() + grace_ms;
	for (size_t i = 0; i < set->pools_count; i++) {
		struct serve_pool *pool = set->pools[i];
		for (unsigned s = 0; pool->procs != NULL && s < pool->slots; s++) {
			struct serve_proc *p = &pool->procs[s];
			if (p->pid <= 0)
				continue;
			uint64_t now = now_ms();
			char how[128];
			if (proc_wait_exit(p, deadline > now ? deadline - now : 0)) {
				kill(-p->pid, SIGKILL); /* what it left behind in its group */
				proc_reap(p, how, sizeof how);
			} else {
				pid_t pid = p->pid;
				proc_kill(p, pool->kill_grace_ms, how, sizeof how);
				jm_warn(
				    "serve %s: handler process %d did not exit after stop; it %s",
				    pool->name, (int)pid, how);
				continue;
			}
			jm_debug("serve %s: handler process %s after stop", pool->name, how);
		}
	}
}

void serve_set_fini(struct serve_set *set)
{
	if (set == NULL)
		return;
	serve_set_stop(set);
	for (size_t i = 0; i < set->pools_count; i++)
		pool_free(set->pools[i]);
	free(set->pools);
	set->pools = NULL;
	set->pools_count = 0;
}
