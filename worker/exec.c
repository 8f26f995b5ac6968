/* The exec handler: one job, one child running the command, exec'd directly
 * or as `/bin/sh -c COMMAND` (command.h; exec.h has the contract the
 * command sees).
 *
 * The child is started with posix_spawn in its own process group, with an
 * empty signal mask and default dispositions (the worker blocks SIGTERM for
 * its sigwait thread and ignores SIGPIPE; a child must inherit neither) and
 * the progress pipe's write end on 3 and every descriptor above 3 closed.
 * The parent then serves the child in one poll loop: it writes the payload
 * to stdin, reads stdout (bounded), stderr (only the tail is kept) and the
 * progress pipe (parsed line by line, each line handed to the spec's
 * callback), and watches a pidfd for the exit, the abandon fd, and two
 * timers (run deadline, kill grace). Every wait in the loop is bounded by
 * one of those events, so nothing spins. The progress pipe never keeps the
 * loop alive: the loop ends on the exit and stdout/stderr, then whatever
 * the pipe already holds is read and it is closed.
 *
 * The guardian (guardian.h) lists the group while it runs, so the group
 * dies with the worker even when the worker is killed with SIGKILL.
 *
 * Process-group kills are sent only while the child is unreaped (a zombie
 * still holds its pid, so the group id cannot have been reused), and the
 * child is always reaped before exec_run returns. */
#define _GNU_SOURCE
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jobmesh/error.h>

#include "clock.h"
#include "command.h"
#include "guardian.h"
#include "log.h"

extern char **environ;

/* How long the pipes may stay open after the child exited (a background
 * grandchild holding stdout) before the group is killed and they are closed. */
#define EXEC_LINGER_MS 200
/* Poll tick when no pidfd is available and the exit must be checked by hand. */
#define EXEC_EXIT_TICK_MS 50
#define EXEC_READ_CHUNK 65536
/* Bytes read from the progress pipe per poll turn, and at most after exit. */
#define EXEC_PROGRESS_CHUNK 16384
#define EXEC_PROGRESS_DRAIN_MAX (1u << 20)
/* How much of a malformed progress line its warning quotes. */
#define EXEC_PROGRESS_QUOTE_MAX 80
#define EXEC_ENV_OWN 6
#define EXEC_ENV_ENTRY_MAX 128

enum exec_phase {
	PHASE_RUNNING,     /* no signal sent yet */
	PHASE_TERMINATING, /* SIGTERM sent to the group; SIGKILL at kill_at_ms */
	PHASE_KILLED,      /* SIGKILL sent */
};

/* The environment handed to the child: the worker's entries (borrowed) minus
 * any stale JOBMESH_* job variables and the worker's token, plus this
 * job's. */
struct exec_env {
	char **envp;
	char own[EXEC_ENV_OWN][EXEC_ENV_ENTRY_MAX];
};

/* The last EXEC_STDERR_TAIL_MAX bytes of stderr. */
struct exec_tail {
	char buf[EXEC_STDERR_TAIL_MAX];
	size_t len;
	bool truncated;
};

/* The progress pipe's reader: the line being assembled. */
struct exec_lines {
	char line[EXEC_PROGRESS_LINE_MAX + 1];
	size_t len;
	bool overlong; /* the current line passed the bound: skip to its end */
	bool warned;   /* one warning per job */
};

struct exec_child {
	pid_t pid;
	int pidfd; /* -1: exit found with waitid(WNOWAIT) on a tick */
	int stdin_fd;
	int stdout_fd;
	int stderr_fd;
	int progress_fd;
	bool exited; /* exited or killed, not yet reaped */
	enum exec_phase phase;
	uint64_t kill_at_ms;
	uint64_t linger_until_ms;
};

static const char *const exec_env_names[EXEC_ENV_OWN] = {
    "JOBMESH_JOB_ID",  "JOBMESH_JOB_TYPE",   "JOBMESH_QUEUE",
    "JOBMESH_ATTEMPT", "JOBMESH_TIMEOUT_MS", "JOBMESH_PROGRESS_FD",
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

static bool env_is_job_variable(const char *entry)
{
	for (size_t i = 0; i < EXEC_ENV_OWN; i++) {
		size_t name_len = strlen(exec_env_names[i]);
		if (strncmp(entry, exec_env_names[i], name_len) == 0 && entry[name_len] == '=')
			return true;
	}
	return false;
}

static int env_build(struct exec_env *env, const struct exec_job *job)
{
	size_t inherited = 0;
	for (char **entry = environ; entry != NULL && *entry != NULL; entry++)
		inherited++;
	env->envp = calloc(inherited + EXEC_ENV_OWN + 1, sizeof *env->envp);
	if (env->envp == NULL)
		return JM_ENOMEM;
	size_t used = 0;
	for (size_t i = 0; i < inherited; i++) {
		if (!env_is_job_variable(environ[i]) && !command_env_is_secret(environ[i]))
			env->envp[used++] = environ[i];
	}
	snprintf(env->own[0], EXEC_ENV_ENTRY_MAX, "JOBMESH_JOB_ID=%" PRIu64, job->job_id);
	snprintf(env->own[1], EXEC_ENV_ENTRY_MAX, "JOBMESH_JOB_TYPE=%s",
	         job->type != NULL ? job->type : "");
	snprintf(env->own[2], EXEC_ENV_ENTRY_MAX, "JOBMESH_QUEUE=%s",
	         job->queue != NULL ? job->queue : "");
	snprintf(env->own[3], EXEC_ENV_ENTRY_MAX, "JOBMESH_ATTEMPT=%" PRIu32, job->attempt);
	snprintf(env->own[4], EXEC_ENV_ENTRY_MAX, "JOBMESH_TIMEOUT_MS=%" PRIu64, job->timeout_ms);
	snprintf(env->own[5], EXEC_ENV_ENTRY_MAX, "JOBMESH_PROGRESS_FD=%d", EXEC_PROGRESS_FD);
	for (size_t i = 0; i < EXEC_ENV_OWN; i++)
		env->envp[used++] = env->own[i];
	env->envp[used] = NULL;
	return 0;
}

static void env_fini(struct exec_env *env)
{
	free(env->envp);
	env->envp = NULL;
}

static void tail_append(struct exec_tail *tail, const char *data, size_t len)
{
	if (len >= sizeof tail->buf) {
		tail->truncated = tail->truncated || tail->len > 0 || len > sizeof tail->buf;
		memcpy(tail->buf, data + len - sizeof tail->buf, sizeof tail->buf);
		tail->len = sizeof tail->buf;
		return;
	}
	if (tail->len + len > sizeof tail->buf) {
		size_t drop = tail->len + len - sizeof tail->buf;
		memmove(tail->buf, tail->buf + drop, tail->len - drop);
		tail->len -= drop;
		tail->truncated = true;
	}
	memcpy(tail->buf + tail->len, data, len);
	tail->len += len;
}

/* Writes the tail as printable text into out: a cut in the middle of a UTF-8
 * sequence is skipped, NULs become spaces, trailing whitespace is dropped. */
static void tail_text(const struct exec_tail *tail, char *out, size_t out_size)
{
	size_t start = 0;
	if (tail->truncated) {
		while (start < tail->len && ((unsigned char)tail->buf[start] & 0xC0) == 0x80)
			start++;
	}
	size_t end = tail->len;
	while (end > start && (tail->buf[end - 1] == '\n' || tail->buf[end - 1] == '\r' ||
	                       tail->buf[end - 1] == ' ' || tail->buf[end - 1] == '\t'))
		end--;
	size_t used = 0;
	if (tail->truncated && end > start && out_size > 4) {
		memcpy(out, "...", 3);
		used = 3;
	}
	for (size_t i = start; i < end && used + 1 < out_size; i++)
		out[used++] = tail->buf[i] == '\0' ? ' ' : tail->buf[i];
	out[used] = '\0';
}

/* Starts the command (directly, or as /bin/sh -c command: command.h)
 * with pipes on 0, 1, 2 and 3. */
static int child_spawn(struct exec_child *child, const struct exec_spec *spec, char **envp,
                       struct exec_result *out)
{
	/* [0] stdin read, [1] stdin write, [2] stdout read, [3] stdout write,
	 * [4] stderr read, [5] stderr write, [6] progress read, [7] progress
	 * write. All O_CLOEXEC: a command another job's thread starts at the
	 * same moment inherits none of them. */
	int pipes[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
	int rc = 0;
	for (int i = 0; i < 8; i += 2) {
		if (pipe2(&pipes[i], O_CLOEXEC) != 0) {
			rc = errno;
			goto fail_close_pipes;
		}
	}

	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t empty_mask, default_signals;
	sigemptyset(&empty_mask);
	sigfillset(&default_signals);
	rc = posix_spawn_file_actions_init(&actions);
	if (rc != 0)
		goto fail_close_pipes;
	rc = posix_spawnattr_init(&attr);
	if (rc != 0)
		goto fail_destroy_actions;
	/* dup2 clears O_CLOEXEC on 0-3 (also when source and target are the
	 * same descriptor: glibc does so as POSIX asks); 3 comes last, after
	 * every source that might have been 3 was copied. closefrom drops
	 * everything else the worker has open (the broker socket, other jobs'
	 * pipes). */
	if ((rc = posix_spawn_file_actions_adddup2(&actions, pipes[0], 0)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&actions, pipes[3], 1)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&actions, pipes[5], 2)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&actions, pipes[7], EXEC_PROGRESS_FD)) != 0 ||
	    (rc = posix_spawn_file_actions_addclosefrom_np(&actions, EXEC_PROGRESS_FD + 1)) != 0 ||
	    (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                              POSIX_SPAWN_SETSIGDEF)) != 0 ||
	    (rc = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
	    (rc = posix_spawnattr_setsigmask(&attr, &empty_mask)) != 0 ||
	    (rc = posix_spawnattr_setsigdefault(&attr, &default_signals)) != 0)
		goto fail_destroy_attr;

	rc = command_spawn(spec->command, &actions, &attr, envp, &child->pid, out->error,
	                   sizeof out->error);
	if (rc != 0)
		goto fail_destroy_attr;
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&actions);

	close(pipes[0]);
	close(pipes[3]);
	close(pipes[5]);
	close(pipes[7]);
	child->stdin_fd = pipes[1];
	child->stdout_fd = pipes[2];
	child->stderr_fd = pipes[4];
	child->progress_fd = pipes[6];
	fcntl(child->stdin_fd, F_SETFL, O_NONBLOCK);
	fcntl(child->stdout_fd, F_SETFL, O_NONBLOCK);
	fcntl(child->stderr_fd, F_SETFL, O_NONBLOCK);
	fcntl(child->progress_fd, F_SETFL, O_NONBLOCK);
#ifdef SYS_pidfd_open
	child->pidfd = (int)syscall(SYS_pidfd_open, child->pid, 0);
#else
	child->pidfd = -1;
#endif
	return 0;

fail_destroy_attr:
	posix_spawnattr_destroy(&attr);
fail_destroy_actions:
	posix_spawn_file_actions_destroy(&actions);
fail_close_pipes:
	for (int i = 0; i < 8; i++)
		close_fd(&pipes[i]);
	if (out->error[0] == '\0')
		snprintf(out->error, sizeof out->error, "cannot start %s: %s", spec->command,
		         strerror(rc));
	return JM_EIO;
}

/* Sends SIGTERM to the group once; SIGKILL follows after grace_ms. */
static void child_terminate(struct exec_child *child, uint32_t grace_ms)
{
	if (child->phase != PHASE_RUNNING)
		return;
	kill(-child->pid, SIGTERM);
	child->phase = PHASE_TERMINATING;
	child->kill_at_ms = now_ms() + grace_ms;
}

static void child_kill(struct exec_child *child)
{
	kill(-child->pid, SIGKILL);
	child->phase = PHASE_KILLED;
}

static bool child_has_exited(const struct exec_child *child)
{
	siginfo_t info;
	memset(&info, 0, sizeof info);
	if (waitid(P_PID, (id_t)child->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
		return errno == ECHILD; /* someone else reaped it: it is gone */
	return info.si_pid == child->pid;
}

static void child_reap(struct exec_child *child, struct exec_result *out)
{
	int status = 0;
	while (waitpid(child->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			out->exit_code = -1;
			return;
		}
	}
	if (WIFEXITED(status)) {
		out->exit_code = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		out->exit_code = -1;
		out->term_signal = WTERMSIG(status);
	}
}

/* Appends up to one chunk from stdout; false once the bound is passed. */
static bool read_stdout(struct exec_child *child, struct exec_result *out, size_t *cap,
                        size_t max_bytes)
{
	size_t want = out->output_len + EXEC_READ_CHUNK;
	if (want > max_bytes + 1)
		want = max_bytes + 1;
	if (want > *cap) {
		uint8_t *grown = realloc(out->output, want);
		if (grown == NULL)
			return false;
		out->output = grown;
		*cap = want;
	}
	ssize_t got = read(child->stdout_fd, out->output + out->output_len, *cap - out->output_len);
	if (got < 0) {
		if (errno != EAGAIN && errno != EINTR)
			close_fd(&child->stdout_fd);
		return true;
	}
	if (got == 0) {
		close_fd(&child->stdout_fd);
		return true;
	}
	out->output_len += (size_t)got;
	return out->output_len <= max_bytes;
}

static void read_stderr(struct exec_child *child, struct exec_tail *tail)
{
	char chunk[4096];
	ssize_t got = read(child->stderr_fd, chunk, sizeof chunk);
	if (got < 0) {
		if (errno != EAGAIN && errno != EINTR)
			close_fd(&child->stderr_fd);
		return;
	}
	if (got == 0) {
		close_fd(&child->stderr_fd);
		return;
	}
	tail_append(tail, chunk, (size_t)got);
}

/* ---- the progress side channel ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A whole number of len digits that fits 64 bits. */
static bool parse_whole(const char *text, size_t len, uint64_t *out)
{
	if (len == 0)
		return false;
	uint64_t value = 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(text[i]))
			return false;
		uint64_t digit = (uint64_t)(text[i] - '0');
		if (value > (UINT64_MAX - digit) / 10u)
			return false;
		value = value * 10u + digit;
	}
	*out = value;
	return true;
}

/* A decimal 0..1 ("0", "1", "0.25", ".5", "1.000"), rounded to a whole
 * number of EXEC_PROGRESS_FRACTION_TOTAL (four decimals, no locale, no
 * exponent, no sign). */
static bool parse_fraction(const char *text, size_t len, uint64_t *out)
{
	size_t i = 0;
	uint64_t whole = 0;
	bool digits = false;
	for (; i < len && is_digit(text[i]); i++) {
		digits = true;
		if (whole == 1 || (text[i] != '0' && text[i] != '1'))
			return false; /* above 1 */
		whole = text[i] == '1';
	}
	uint64_t scaled = whole * EXEC_PROGRESS_FRACTION_TOTAL;
	if (i < len && text[i] == '.') {
		uint64_t place = EXEC_PROGRESS_FRACTION_TOTAL / 10u;
		bool round_up = false;
		size_t decimals = 0;
		for (i++; i < len && is_digit(text[i]); i++, decimals++) {
			digits = true;
			uint64_t digit = (uint64_t)(text[i] - '0');
			if (whole == 1 && digit != 0)
				return false; /* above 1 */
			if (place > 0)
				scaled += digit * place;
			else if (decimals == 4)
				round_up = digit >= 5;
			place /= 10u;
		}
		if (round_up)
			scaled++;
	}
	if (i != len || !digits)
		return false;
	*out = scaled;
	return true;
}

/* The next field of line at *pos (after blanks): its start and length. */
static bool next_field(const char *line, size_t len, size_t *pos, const char **start,
                       size_t *field_len)
{
	size_t i = *pos;
	while (i < len && is_blank(line[i]))
		i++;
	size_t begin = i;
	while (i < len && !is_blank(line[i]))
		i++;
	*pos = i;
	*start = line + begin;
	*field_len = i - begin;
	return i > begin;
}

bool exec_progress_parse(const char *line, size_t len, struct exec_progress *out)
{
	if (len > EXEC_PROGRESS_LINE_MAX)
		return false;
	size_t pos = 0, field_len = 0;
	const char *field = NULL;
	if (!next_field(line, len, &pos, &field, &field_len) || field_len != 8 ||
	    memcmp(field, "progress", 8) != 0)
		return false;
	const char *first = NULL, *second = NULL;
	size_t first_len = 0, second_len = 0;
	if (!next_field(line, len, &pos, &first, &first_len))
		return false;
	size_t after_first = pos;
	uint64_t done = 0, total = 0;
	if (next_field(line, len, &pos, &second, &second_len) &&
	    parse_whole(first, first_len, &done) && parse_whole(second, second_len, &total)) {
		if (total == 0 || done > total)
			return false;
	} else {
		pos = after_first;
		if (!parse_fraction(first, first_len, &done))
			return false;
		total = EXEC_PROGRESS_FRACTION_TOTAL;
	}
	while (pos < len && is_blank(line[pos]))
		pos++;
	size_t end = len;
	while (end > pos && (is_blank(line[end - 1]) || line[end - 1] == '\r'))
		end--;
	out->done = done;
	out->total = total;
	out->message_len = end - pos;
	memcpy(out->message, line + pos, out->message_len);
	out->message[out->message_len] = '\0';
	return true;
}

static bool line_is_blank(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (!is_blank(line[i]) && line[i] != '\r')
			return false;
	}
	return true;
}

static void progress_warn(const struct exec_spec *spec, struct exec_lines *lines, const char *line,
                          size_t len, bool overlong)
{
	if (lines->warned)
		return;
	lines->warned = true;
	char quote[EXEC_PROGRESS_QUOTE_MAX + 1];
	size_t quoted = len < EXEC_PROGRESS_QUOTE_MAX ? len : EXEC_PROGRESS_QUOTE_MAX;
	for (size_t i = 0; i < quoted; i++) {
		unsigned char c = (unsigned char)line[i];
		quote[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
	}
	quote[quoted] = '\0';
	jm_warn("job %" PRIu64 ": ignoring %sprogress line \"%s%s\": write \"progress DONE TOTAL "
	        "[MESSAGE]\" (whole numbers, TOTAL >= 1, DONE <= TOTAL) or \"progress FRACTION "
	        "[MESSAGE]\" (0 to 1), at most %d bytes a line, on fd %d; further bad lines of "
	        "this job are ignored silently",
	        spec->job.job_id, overlong ? "overlong " : "", quote, len > quoted ? "..." : "",
	        EXEC_PROGRESS_LINE_MAX, EXEC_PROGRESS_FD);
}

/* Handles one complete line (without its newline). */
static void progress_line(const struct exec_spec *spec, struct exec_lines *lines,
                          struct exec_result *out)
{
	struct exec_progress progress;
	if (lines->overlong) {
		out->progress_malformed++;
		progress_warn(spec, lines, lines->line, lines->len, true);
	} else if (exec_progress_parse(lines->line, lines->len, &progress)) {
		out->progress_lines++;
		if (spec->progress_cb != NULL)
			spec->progress_cb(&progress, spec->progress_arg);
	} else if (!line_is_blank(lines->line, lines->len)) {
		out->progress_malformed++;
		progress_warn(spec, lines, lines->line, lines->len, false);
	}
	lines->len = 0;
	lines->overlong = false;
}

static void progress_feed(const struct exec_spec *spec, struct exec_lines *lines, const char *data,
                          size_t len, struct exec_result *out)
{
	while (len > 0) {
		const char *newline = memchr(data, '\n', len);
		size_t part = newline != NULL ? (size_t)(newline - data) : len;
		if (!lines->overlong) {
			if (lines->len + part > EXEC_PROGRESS_LINE_MAX) {
				/* Keep the head for the warning; drop the rest. */
				size_t room = EXEC_PROGRESS_LINE_MAX - lines->len;
				memcpy(lines->line + lines->len, data, room);
				lines->len += room;
				lines->overlong = true;
			} else {
				memcpy(lines->line + lines->len, data, part);
				lines->len += part;
			}
		}
		if (newline == NULL)
			return;
		progress_line(spec, lines, out);
		data += part + 1;
		len -= part + 1;
	}
}

/* Reads one chunk from the progress pipe; false once it is closed. */
static bool read_progress(struct exec_child *child, const struct exec_spec *spec,
                          struct exec_lines *lines, struct exec_result *out)
{
	char chunk[EXEC_PROGRESS_CHUNK];
	ssize_t got = read(child->progress_fd, chunk, sizeof chunk);
	if (got < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return true;
		close_fd(&child->progress_fd);
		return false;
	}
	if (got == 0) {
		close_fd(&child->progress_fd);
		return false;
	}
	progress_feed(spec, lines, chunk, (size_t)got, out);
	return true;
}

/* After the loop: reads what the pipe already holds (bounded, never
 * waiting for a writer that outlived the command), takes a last line
 * without a newline, and closes the pipe. */
static void progress_drain(struct exec_child *child, const struct exec_spec *spec,
                           struct exec_lines *lines, struct exec_result *out)
{
	size_t drained = 0;
	while (child->progress_fd >= 0 && drained < EXEC_PROGRESS_DRAIN_MAX) {
		struct pollfd pfd = {.fd = child->progress_fd, .events = POLLIN};
		if (poll(&pfd, 1, 0) <= 0)
			break;
		if (!read_progress(child, spec, lines, out))
			break;
		drained += EXEC_PROGRESS_CHUNK;
	}
	close_fd(&child->progress_fd);
	if (lines->len > 0 || lines->overlong)
		progress_line(spec, lines, out);
}

static void write_stdin(struct exec_child *child, const uint8_t *payload, size_t len,
                        size_t *written)
{
	if (*written < len) {
		ssize_t put = write(child->stdin_fd, payload + *written, len - *written);
		if (put < 0) {
			/* EPIPE: the command stopped reading; what it read is its
			 * business, not a failure of the job. */
			if (errno != EAGAIN && errno != EINTR)
				close_fd(&child->stdin_fd);
			return;
		}
		*written += (size_t)put;
	}
	if (*written >= len)
		close_fd(&child->stdin_fd);
}

static int poll_timeout_ms(const struct exec_child *child, uint64_t deadline_ms, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	if (child->phase == PHASE_RUNNING && deadline_ms != 0)
		next = deadline_ms;
	if (child->phase == PHASE_TERMINATING && child->kill_at_ms < next)
		next = child->kill_at_ms;
	if (child->exited && child->linger_until_ms < next)
		next = child->linger_until_ms;
	int timeout = -1;
	if (next != UINT64_MAX)
		timeout = next <= now ? 0 : (next - now > 60000 ? 60000 : (int)(next - now));
	if (child->pidfd < 0 && !child->exited && (timeout < 0 || timeout > EXEC_EXIT_TICK_MS))
		timeout = EXEC_EXIT_TICK_MS;
	return timeout;
}

/* The poll loop: runs until the child exited and its pipes are closed. */
static void child_serve(struct exec_child *child, const struct exec_spec *spec,
                        const uint8_t *payload, size_t len, struct exec_result *out,
                        struct exec_tail *tail, struct exec_lines *lines, bool *overflow)
{
	uint32_t grace_ms = spec->kill_grace_ms ? spec->kill_grace_ms : EXEC_KILL_GRACE_MS_DEFAULT;
	size_t max_bytes =
	    spec->result_max_bytes ? spec->result_max_bytes : EXEC_RESULT_MAX_DEFAULT;
	uint64_t start_ms = now_ms();
	uint64_t deadline_ms = spec->timeout_ms ? start_ms + spec->timeout_ms : 0;
	size_t written = 0, cap = 0;
	if (len == 0)
		close_fd(&child->stdin_fd);

	for (;;) {
		if (child->exited && child->stdout_fd < 0 && child->stderr_fd < 0)
			break;
		uint64_t now = now_ms();
		if (child->phase == PHASE_RUNNING && deadline_ms != 0 && now >= deadline_ms) {
			out->timed_out = true;
			child_terminate(child, grace_ms);
		}
		if (child->phase == PHASE_TERMINATING && now >= child->kill_at_ms)
			child_kill(child);
		if (child->exited && now >= child->linger_until_ms) {
			/* A grandchild still holds the pipes: the job is over. */
			child_kill(child);
			break;
		}

		struct pollfd fds[6];
		int idx_in = -1, idx_out = -1, idx_err = -1, idx_prog = -1, idx_pid = -1,
		    idx_abandon = -1;
		nfds_t count = 0;
		if (child->stdin_fd >= 0) {
			idx_in = (int)count;
			fds[count++] = (struct pollfd){.fd = child->stdin_fd, .events = POLLOUT};
		}
		if (child->stdout_fd >= 0) {
			idx_out = (int)count;
			fds[count++] = (struct pollfd){.fd = child->stdout_fd, .events = POLLIN};
		}
		if (child->stderr_fd >= 0) {
			idx_err = (int)count;
			fds[count++] = (struct pollfd){.fd = child->stderr_fd, .events = POLLIN};
		}
		if (child->progress_fd >= 0) {
			idx_prog = (int)count;
			fds[count++] = (struct pollfd){.fd = child->progress_fd, .events = POLLIN};
		}
		if (child->pidfd >= 0 && !child->exited) {
			idx_pid = (int)count;
			fds[count++] = (struct pollfd){.fd = child->pidfd, .events = POLLIN};
		}
		if (spec->abandon_fd >= 0 && child->phase == PHASE_RUNNING) {
			idx_abandon = (int)count;
			fds[count++] = (struct pollfd){.fd = spec->abandon_fd, .events = POLLIN};
		}
		int ready = poll(fds, count, poll_timeout_ms(child, deadline_ms, now));
		if (ready < 0 && errno != EINTR)
			break; /* cannot happen with valid fds; the reap below still runs */
		if (ready > 0) {
			if (idx_in >= 0 && fds[idx_in].revents != 0)
				write_stdin(child, payload, len, &written);
			if (idx_out >= 0 && fds[idx_out].revents != 0 &&
			    !read_stdout(child, out, &cap, max_bytes)) {
				/* Over the bound: stop reading (the command's next
				 * write fails) and stop the command. */
				*overflow = true;
				close_fd(&child->stdout_fd);
				child_terminate(child, grace_ms);
			}
			if (idx_err >= 0 && fds[idx_err].revents != 0)
				read_stderr(child, tail);
			if (idx_prog >= 0 && fds[idx_prog].revents != 0)
				read_progress(child, spec, lines, out);
			if (idx_pid >= 0 && fds[idx_pid].revents != 0)
				child->exited = true;
			if (idx_abandon >= 0 && fds[idx_abandon].revents != 0) {
				out->abandoned = true;
				child_terminate(child, grace_ms);
			}
		}
		if (child->pidfd < 0 && !child->exited)
			child->exited = child_has_exited(child);
		if (child->exited && child->linger_until_ms == 0) {
			child->linger_until_ms = now_ms() + EXEC_LINGER_MS;
			/* A stopped job takes its whole group down, also what
			 * ignored the SIGTERM and outlived the shell. */
			if (child->phase != PHASE_RUNNING)
				child_kill(child);
			close_fd(&child->stdin_fd);
		}
	}
	if (!child->exited) {
		/* Only after a poll failure: make sure the reap cannot hang. */
		child_kill(child);
	}
	out->elapsed_ms = now_ms() - start_ms;
}

static void result_describe(struct exec_result *out, const struct exec_spec *spec,
                            const struct exec_tail *tail, bool overflow)
{
	char text[EXEC_STDERR_TAIL_MAX + 8];
	tail_text(tail, text, sizeof text);
	const char *sep = text[0] != '\0' ? ": " : "";
	size_t max_bytes =
	    spec->result_max_bytes ? spec->result_max_bytes : EXEC_RESULT_MAX_DEFAULT;

	out->outcome = EXEC_RETRY;
	if (overflow) {
		if (max_bytes % (1u << 20) == 0)
			snprintf(out->error, sizeof out->error, "result over %zu MiB",
			         max_bytes >> 20);
		else
			snprintf(out->error, sizeof out->error, "result over %zu bytes", max_bytes);
	} else if (out->timed_out) {
		snprintf(out->error, sizeof out->error, "timed out after %" PRIu64 " ms%s%s",
		         spec->timeout_ms, sep, text);
	} else if (out->abandoned) {
		snprintf(out->error, sizeof out->error,
		         "abandoned at the broker's request after %" PRIu64 " ms%s%s",
		         out->elapsed_ms, sep, text);
	} else if (out->term_signal != 0) {
		const char *name = sigabbrev_np(out->term_signal);
		snprintf(out->error, sizeof out->error, "killed by signal %d (SIG%s)%s%s",
		         out->term_signal, name != NULL ? name : "?", sep, text);
	} else if (out->exit_code == 0) {
		out->outcome = EXEC_OK;
		out->error[0] = '\0';
	} else {
		if (out->exit_code == EXEC_EXIT_PERMANENT)
			out->outcome = EXEC_PERMANENT;
		snprintf(out->error, sizeof out->error, "exit code %d%s%s", out->exit_code, sep,
		         text);
	}
	if (out->outcome != EXEC_OK) {
		free(out->output);
		out->output = NULL;
		out->output_len = 0;
	}
}

int exec_run(const struct exec_spec *spec, const void *payload, size_t len, struct exec_result *out)
{
	memset(out, 0, sizeof *out);
	out->exit_code = -1;
	out->outcome = EXEC_RETRY;
	if (spec == NULL || spec->command == NULL || (payload == NULL && len > 0)) {
		snprintf(out->error, sizeof out->error, "exec: no command given");
		return JM_EINVAL;
	}

	/* SIGPIPE is thread-directed for a write to a closed pipe: block it
	 * here and swallow what this call raised, so neither a worker without
	 * SIG_IGN nor a test dies of a command that closed stdin early. */
	sigset_t pipe_set, old_mask, pending_before;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
	sigpending(&pending_before);

	struct exec_env env;
	int rc = env_build(&env, &spec->job);
	if (rc != 0) {
		snprintf(out->error, sizeof out->error, "exec: out of memory for the environment");
		goto out_restore_mask;
	}
	struct exec_child child = {
	    .pidfd = -1, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .progress_fd = -1};
	rc = child_spawn(&child, spec, env.envp, out);
	if (rc != 0)
		goto out_free_env;
	guardian_watch(child.pid,
	               spec->kill_grace_ms ? spec->kill_grace_ms : EXEC_KILL_GRACE_MS_DEFAULT);

	struct exec_tail tail = {.len = 0};
	struct exec_lines lines = {.len = 0};
	bool overflow = false;
	child_serve(&child, spec, payload, len, out, &tail, &lines, &overflow);
	progress_drain(&child, spec, &lines, out);
	close_fd(&child.stdin_fd);
	close_fd(&child.stdout_fd);
	close_fd(&child.stderr_fd);
	guardian_forget(child.pid); /* while the zombie leader pins the group id */
	child_reap(&child, out);
	close_fd(&child.pidfd);
	result_describe(out, spec, &tail, overflow);

out_free_env:
	env_fini(&env);
out_restore_mask:;
	sigset_t pending_after;
	sigpending(&pending_after);
	if (sigismember(&pending_after, SIGPIPE) && !sigismember(&pending_before, SIGPIPE)) {
		struct timespec zero = {0, 0};
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	return rc;
}

void exec_result_fini(struct exec_result *result)
{
	if (result == NULL)
		return;
	free(result->output);
	result->output = NULL;
	result->output_len = 0;
}
