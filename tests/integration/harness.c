/* The process test harness (see harness.h).
 *
 * Processes are started with posix_spawn rather than fork+exec: the tests
 * that use the harness also run nng's threads, and after fork in a threaded
 * program only async-signal-safe calls are allowed; glibc's posix_spawn does
 * the fd and process-group setup safely and reports a failed exec as an
 * error instead of a child that exits 127.
 *
 * Every process lives in a slot of h->procs until harness_fini. A slot
 * records whether its PID was reaped: a reaped PID may already belong to
 * someone else, so it is never signalled again. While a process is
 * unreaped (even a zombie), its PID and its process group cannot be reused,
 * which is what makes signalling the group safe in harness_kill and
 * harness_fini. */
/* For nftw and posix_spawn's closefrom/chdir file actions (glibc >= 2.34). */
#define _GNU_SOURCE

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jobmesh/error.h>

#include "clock.h"

#ifndef JOBMESH_BIN_DIR
#define JOBMESH_BIN_DIR "bin"
#endif

extern char **environ;

#define HARNESS_STOP_GRACE_MS 5000
#define HARNESS_BROKER_READY_MS 10000
#define HARNESS_BROKER_POLL_MS 10
#define HARNESS_EXIT_POLL_MS 1
#define HARNESS_COND_POLL_MS 5
#define HARNESS_ARGS_MAX 128
#define HARNESS_TAIL_LINES 20
#define HARNESS_BINS_MAX 32
/* sun_path is 108 bytes on Linux; nng needs the path and its NUL in it. */
#define HARNESS_IPC_PATH_MAX 107

static void harness_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints one "harness: ..." line to stderr. */
static void harness_say(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "harness: %s\n", line);
}

/* Deadlines are kept in microseconds so that "waited N ms" is never
 * rounded down to N - 1. */
static uint64_t harness_deadline_us(int timeout_ms)
{
	return jm_mono_us() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000;
}

/* Sleeps the whole of ms, resuming after signals, so polling loops can
 * count their steps as a bound. */
static void harness_sleep_ms(int ms)
{
	struct timespec left = jm_timespec_of_us((uint64_t)ms * 1000u);
	while (nanosleep(&left, &left) != 0 && errno == EINTR) {
	}
}

/* Exit code, or 128 + signal as a shell reports it. */
static int harness_decode_status(int wait_status)
{
	if (WIFEXITED(wait_status))
		return WEXITSTATUS(wait_status);
	if (WIFSIGNALED(wait_status))
		return 128 + WTERMSIG(wait_status);
	return -1;
}

static struct harness_slot *harness_slot_of(const struct harness_proc *proc)
{
	if (proc == NULL || proc->h == NULL || proc->slot >= proc->h->procs_count)
		return NULL;
	struct harness_slot *slot = &proc->h->procs[proc->slot];
	return slot->pid == proc->pid ? slot : NULL;
}

/* Reaps slot if its process has exited; true if it is still running. With
 * kill_group, whatever the process left running in its group is killed
 * first, while the unreaped leader still pins the group id. */
static bool harness_slot_poll(struct harness_slot *slot, bool kill_group)
{
	if (slot->reaped)
		return false;
	siginfo_t info;
	memset(&info, 0, sizeof info);
	if (waitid(P_PID, (id_t)slot->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
		harness_say("waitid %s (pid %d): %s", slot->name, (int)slot->pid, strerror(errno));
		slot->reaped = true;
		slot->exit_status = -1;
		return false;
	}
	if (info.si_pid == 0)
		return true;
	if (kill_group)
		kill(-slot->pid, SIGKILL);
	int wait_status = 0;
	pid_t got;
	do {
		got = waitpid(slot->pid, &wait_status, 0);
	} while (got < 0 && errno == EINTR);
	slot->reaped = true;
	slot->exit_status = got == slot->pid ? harness_decode_status(wait_status) : -1;
	return false;
}

/* Polls slot to a deadline; true once it has exited and was reaped. */
static bool harness_slot_wait(struct harness_slot *slot, int timeout_ms, bool kill_group)
{
	uint64_t deadline_us = harness_deadline_us(timeout_ms);
	long steps_max = timeout_ms / HARNESS_EXIT_POLL_MS + 2;
	for (long step = 0; step < steps_max; step++) {
		if (!harness_slot_poll(slot, kill_group))
			return true;
		if (jm_mono_us() >= deadline_us)
			break;
		harness_sleep_ms(HARNESS_EXIT_POLL_MS);
	}
	return !harness_slot_poll(slot, kill_group);
}

/* SIGKILL to the slot's group and reap; 0 or JM_ETIMEDOUT. */
static int harness_slot_kill(struct harness_slot *slot)
{
	if (slot->reaped)
		return 0;
	if (kill(-slot->pid, SIGKILL) != 0)
		kill(slot->pid, SIGKILL);
	if (!harness_slot_wait(slot, HARNESS_STOP_GRACE_MS, true)) {
		harness_say("%s (pid %d) still running %d ms after SIGKILL", slot->name,
		            (int)slot->pid, HARNESS_STOP_GRACE_MS);
		return JM_ETIMEDOUT;
	}
	return 0;
}

/* Reads the bytes of path from offset on, NUL-terminated; NULL if the file
 * cannot be read (errno tells why). */
static char *harness_read_from(const char *path, off_t offset, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return NULL;
	}
	size_t size = st.st_size > offset ? (size_t)(st.st_size - offset) : 0;
	char *data = malloc(size + 1);
	if (data == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	size_t done = 0;
	while (done < size) {
		ssize_t got = pread(fd, data + done, size - done, offset + (off_t)done);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break; /* the file shrank: return what is there */
		done += (size_t)got;
	}
	close(fd);
	data[done] = '\0';
	if (len != NULL)
		*len = done;
	return data;
}

/* Prints the last lines of path written after offset, indented, under a
 * title. */
static void harness_print_tail(const char *title, const char *path, off_t offset, int lines)
{
	size_t len = 0;
	char *text = harness_read_from(path, offset, &len);
	if (text == NULL || len == 0) {
		fprintf(stderr, "harness: %s: %s\n", title,
		        text == NULL ? strerror(errno) : "(empty)");
		free(text);
		return;
	}
	size_t start = len;
	if (start > 0 && text[start - 1] == '\n')
		start--;
	for (int seen = 0; start > 0; start--) {
		if (text[start - 1] == '\n' && ++seen == lines)
			break;
	}
	fprintf(stderr, "harness: %s (last %d lines):\n", title, lines);
	for (char *line = text + start; *line != '\0';) {
		char *end = strchr(line, '\n');
		int line_len = end ? (int)(end - line) : (int)strlen(line);
		fprintf(stderr, "  | %.*s\n", line_len, line);
		line += line_len + (end ? 1 : 0);
	}
	free(text);
}

/* Keeps s until harness_fini; returns it, or NULL (and frees s) on error. */
static const char *harness_keep(struct harness *h, char *s)
{
	if (s == NULL)
		return NULL;
	char **paths = realloc(h->paths, (h->paths_count + 1) * sizeof *paths);
	if (paths == NULL) {
		free(s);
		harness_say("out of memory");
		return NULL;
	}
	h->paths = paths;
	h->paths[h->paths_count++] = s;
	return s;
}

static int harness_remove_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) != 0)
		harness_say("remove %s: %s", path, strerror(errno));
	return 0;
}

int harness_init(struct harness *h, const char *test_name)
{
	memset(h, 0, sizeof *h);
	snprintf(h->test_name, sizeof h->test_name, "%s", test_name ? test_name : "test");
	const char *tmp = getenv("TMPDIR");
	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	char pattern[HARNESS_DIR_MAX];
	int n = snprintf(pattern, sizeof pattern, "%s/jobmesh-test-XXXXXX", tmp);
	if (n < 0 || (size_t)n >= sizeof pattern) {
		harness_say("%s: TMPDIR %s is too long", h->test_name, tmp);
		return JM_EIO;
	}
	if (mkdtemp(pattern) == NULL) {
		harness_say("%s: mkdtemp %s: %s", h->test_name, pattern, strerror(errno));
		return JM_EIO;
	}
	/* Absolute, because children run with the temp dir as their cwd and
	 * get paths in it as arguments. */
	char *absolute = realpath(pattern, NULL);
	if (absolute == NULL || strlen(absolute) >= sizeof h->dir) {
		harness_say("%s: realpath %s: %s", h->test_name, pattern,
		            absolute ? "too long" : strerror(errno));
		free(absolute);
		rmdir(pattern);
		return JM_EIO;
	}
	snprintf(h->dir, sizeof h->dir, "%s", absolute);
	free(absolute);
	return 0;
}

void harness_fini(struct harness *h)
{
	if (h == NULL)
		return;
	/* SIGTERM to all first, so they drain in parallel within one grace
	 * period rather than one after another. */
	for (size_t i = 0; i < h->procs_count; i++) {
		if (!h->procs[i].reaped)
			kill(h->procs[i].pid, SIGTERM);
	}
	uint64_t deadline_us = harness_deadline_us(HARNESS_STOP_GRACE_MS);
	long steps_max = HARNESS_STOP_GRACE_MS / HARNESS_COND_POLL_MS + 2;
	for (long step = 0; step < steps_max; step++) {
		bool any_running = false;
		for (size_t i = 0; i < h->procs_count; i++)
			any_running |= harness_slot_poll(&h->procs[i], true);
		if (!any_running || jm_mono_us() >= deadline_us)
			break;
		harness_sleep_ms(HARNESS_COND_POLL_MS);
	}
	for (size_t i = 0; i < h->procs_count; i++) {
		if (!h->procs[i].reaped) {
			harness_say("%s: %s (pid %d) ignored SIGTERM for %d ms; killing it",
			            h->test_name, h->procs[i].name, (int)h->procs[i].pid,
			            HARNESS_STOP_GRACE_MS);
			harness_slot_kill(&h->procs[i]);
		}
	}

	if (h->dir[0] != '\0') {
		const char *keep = getenv("JOBMESH_KEEP_TMP");
		if (keep != NULL && strcmp(keep, "1") == 0)
			harness_say("%s: keeping %s", h->test_name, h->dir);
		else if (strstr(h->dir, "/jobmesh-test-") != NULL) /* never anything else */
			nftw(h->dir, harness_remove_cb, 16, FTW_DEPTH | FTW_PHYS);
	}
	for (size_t i = 0; i < h->paths_count; i++)
		free(h->paths[i]);
	free(h->paths);
	free(h->procs);
	memset(h, 0, sizeof *h);
}

const char *harness_bin(const char *program)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char bins[HARNESS_BINS_MAX][PATH_MAX];
	static int bins_count;

	const char *dir = getenv("JOBMESH_BIN_DIR");
	if (dir == NULL || dir[0] == '\0')
		dir = JOBMESH_BIN_DIR;
	char path[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/%s", dir, program);
	if (n < 0 || (size_t)n >= sizeof path) {
		harness_say("bin path for %s is too long", program);
		return NULL;
	}
	const char *found = NULL;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < bins_count && found == NULL; i++) {
		if (strcmp(bins[i], path) == 0)
			found = bins[i];
	}
	if (found == NULL && bins_count < HARNESS_BINS_MAX) {
		memcpy(bins[bins_count], path, (size_t)n + 1);
		found = bins[bins_count++];
	}
	pthread_mutex_unlock(&lock);
	if (found == NULL)
		harness_say("more than %d programs asked of harness_bin", HARNESS_BINS_MAX);
	return found;
}

const char *harness_path(struct harness *h, const char *name)
{
	size_t len = strlen(h->dir) + 1 + strlen(name) + 1;
	char *path = malloc(len);
	if (path == NULL) {
		harness_say("out of memory");
		return NULL;
	}
	snprintf(path, len, "%s/%s", h->dir, name);
	return harness_keep(h, path);
}

/* Sets up the child's fds, cwd, group and signals for posix_spawn. */
static int harness_spawn_setup(struct harness *h, const char *out_path, const char *err_path,
                               posix_spawn_file_actions_t *actions, posix_spawnattr_t *attr)
{
	int rc = posix_spawn_file_actions_init(actions);
	if (rc != 0)
		return rc;
	const int log_flags = O_WRONLY | O_CREAT | O_APPEND;
	if ((rc = posix_spawn_file_actions_addopen(actions, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
	    (rc = posix_spawn_file_actions_addopen(actions, 1, out_path, log_flags, 0644)) != 0 ||
	    (rc = posix_spawn_file_actions_addopen(actions, 2, err_path, log_flags, 0644)) != 0 ||
	    (rc = posix_spawn_file_actions_addclosefrom_np(actions, 3)) != 0 ||
	    (rc = posix_spawn_file_actions_addchdir_np(actions, h->dir)) != 0) {
		posix_spawn_file_actions_destroy(actions);
		return rc;
	}
	rc = posix_spawnattr_init(attr);
	if (rc != 0) {
		posix_spawn_file_actions_destroy(actions);
		return rc;
	}
	/* A test that ignores SIGPIPE or blocks signals must not hand that to
	 * the broker: ignored signals survive exec. */
	sigset_t none;
	sigset_t defaults;
	sigemptyset(&none);
	sigemptyset(&defaults);
	static const int reset[] = {SIGPIPE, SIGTERM, SIGINT,  SIGHUP, SIGQUIT,
	                            SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};
	for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
		sigaddset(&defaults, reset[i]);
	if ((rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                             POSIX_SPAWN_SETSIGDEF)) != 0 ||
	    (rc = posix_spawnattr_setpgroup(attr, 0)) != 0 ||
	    (rc = posix_spawnattr_setsigmask(attr, &none)) != 0 ||
	    (rc = posix_spawnattr_setsigdefault(attr, &defaults)) != 0) {
		posix_spawnattr_destroy(attr);
		posix_spawn_file_actions_destroy(actions);
		return rc;
	}
	return 0;
}

int harness_spawn(struct harness *h, const char *name, char *const argv[], struct harness_proc *out)
{
	memset(out, 0, sizeof *out);
	if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL ||
	    strlen(name) >= HARNESS_NAME_MAX || argv == NULL || argv[0] == NULL) {
		harness_say("spawn: name must be 1-%d characters without '/', argv non-empty",
		            HARNESS_NAME_MAX - 1);
		return JM_EINVAL;
	}
	struct harness_slot *procs = realloc(h->procs, (h->procs_count + 1) * sizeof *procs);
	if (procs == NULL) {
		harness_say("spawn %s: out of memory", name);
		return JM_ENOMEM;
	}
	h->procs = procs;

	char out_path[HARNESS_DIR_MAX + HARNESS_NAME_MAX + 8];
	char err_path[HARNESS_DIR_MAX + HARNESS_NAME_MAX + 8];
	snprintf(out_path, sizeof out_path, "%s/%s.out", h->dir, name);
	snprintf(err_path, sizeof err_path, "%s/%s.err", h->dir, name);
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	int rc = harness_spawn_setup(h, out_path, err_path, &actions, &attr);
	pid_t pid = 0;
	if (rc == 0) {
		rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv, environ);
		posix_spawnattr_destroy(&attr);
		posix_spawn_file_actions_destroy(&actions);
	}
	if (rc != 0) {
		harness_say("%s: cannot start %s: %s", name, argv[0], strerror(rc));
		return rc == ENOMEM ? JM_ENOMEM : JM_EIO;
	}
	struct harness_slot *slot = &h->procs[h->procs_count];
	memset(slot, 0, sizeof *slot);
	slot->pid = pid;
	snprintf(slot->name, sizeof slot->name, "%s", name);
	*out = (struct harness_proc){.h = h, .slot = h->procs_count, .pid = pid};
	h->procs_count++;
	return 0;
}

/* Finds a complete "<prefix><url>" line in text; copies url to out. */
static bool harness_find_line(const char *text, const char *prefix, char *out, size_t out_size)
{
	size_t prefix_len = strlen(prefix);
	for (const char *line = text; *line != '\0';) {
		const char *end = strchr(line, '\n');
		if (end == NULL)
			return false; /* a line still being written does not count */
		if (strncmp(line, prefix, prefix_len) == 0) {
			const char *url = line + prefix_len;
			size_t len = (size_t)(end - url);
			while (len > 0 && (url[len - 1] == '\r' || url[len - 1] == ' '))
				len--;
			if (len > 0 && len < out_size) {
				memcpy(out, url, len);
				out[len] = '\0';
				return true;
			}
		}
		line = end + 1;
	}
	return false;
}

/* Builds argv = head..., tail... , NULL into args (HARNESS_ARGS_MAX). */
static int harness_join_args(char **args, char *const *head, size_t head_count,
                             const char *const *tail)
{
	size_t count = 0;
	for (size_t i = 0; i < head_count; i++)
		args[count++] = head[i];
	for (size_t i = 0; tail != NULL && tail[i] != NULL; i++) {
		if (count + 1 >= HARNESS_ARGS_MAX) {
			harness_say("more than %d arguments", HARNESS_ARGS_MAX - 1);
			return JM_EINVAL;
		}
		args[count++] = (char *)tail[i];
	}
	args[count] = NULL;
	return 0;
}

int harness_broker_start(struct harness *h, const char *const *extra_args, struct harness_proc *out)
{
	memset(out, 0, sizeof *out);
	char ipc_path[HARNESS_DIR_MAX + 16];
	char listen_url[HARNESS_DIR_MAX + 32];
	char data_dir[HARNESS_DIR_MAX + 16];
	char out_path[HARNESS_DIR_MAX + 16];
	char err_path[HARNESS_DIR_MAX + 16];
	snprintf(ipc_path, sizeof ipc_path, "%s/broker.ipc", h->dir);
	if (strlen(ipc_path) > HARNESS_IPC_PATH_MAX) {
		harness_say("%s: %s is longer than an ipc:// path may be (%d); use a shorter "
		            "TMPDIR",
		            h->test_name, ipc_path, HARNESS_IPC_PATH_MAX);
		return JM_EINVAL;
	}
	snprintf(listen_url, sizeof listen_url, "ipc://%s", ipc_path);
	snprintf(data_dir, sizeof data_dir, "%s/data", h->dir);
	snprintf(out_path, sizeof out_path, "%s/broker.out", h->dir);
	snprintf(err_path, sizeof err_path, "%s/broker.err", h->dir);

	/* Only what this run prints counts: the logs keep earlier runs. */
	struct stat st;
	off_t start_offset = stat(out_path, &st) == 0 ? st.st_size : 0;
	off_t err_offset = stat(err_path, &st) == 0 ? st.st_size : 0;

	const char *bin = harness_bin("jobmesh-broker");
	if (bin == NULL)
		return JM_EINVAL;
	char *head[] = {(char *)bin, "--listen", listen_url,   "--data",
	                data_dir,    "--http",   "127.0.0.1:0"};
	char *args[HARNESS_ARGS_MAX];
	int rc = harness_join_args(args, head, sizeof head / sizeof head[0], extra_args);
	if (rc != 0)
		return rc;
	struct harness_proc proc;
	rc = harness_spawn(h, "broker", args, &proc);
	if (rc != 0)
		return rc;
	struct harness_slot *slot = harness_slot_of(&proc);

	uint64_t deadline_us = harness_deadline_us(HARNESS_BROKER_READY_MS);
	long steps_max = HARNESS_BROKER_READY_MS / HARNESS_BROKER_POLL_MS + 2;
	for (long step = 0; step < steps_max; step++) {
		char *text = harness_read_from(out_path, start_offset, NULL);
		bool ready = text != NULL && harness_find_line(text, "listening ", h->broker_url,
		                                               sizeof h->broker_url);
		h->http_url[0] = '\0';
		if (ready)
			harness_find_line(text, "http ", h->http_url, sizeof h->http_url);
		free(text);
		if (ready) {
			*out = proc;
			return 0;
		}
		if (!harness_slot_poll(slot, true)) {
			harness_say("%s: broker exited with status %d before printing "
			            "\"listening <url>\"",
			            h->test_name, slot->exit_status);
			harness_print_tail("broker.err", err_path, err_offset, HARNESS_TAIL_LINES);
			return JM_EIO;
		}
		if (jm_mono_us() >= deadline_us)
			break;
		harness_sleep_ms(HARNESS_BROKER_POLL_MS);
	}
	harness_say("%s: broker printed no \"listening <url>\" line on stdout within %d ms "
	            "(it must flush stdout after it); killing it",
	            h->test_name, HARNESS_BROKER_READY_MS);
	harness_print_tail("broker.err", err_path, err_offset, HARNESS_TAIL_LINES);
	harness_slot_kill(slot);
	return JM_ETIMEDOUT;
}

int harness_worker_start(struct harness *h, const char *name, const char *const *args,
                         struct harness_proc *out)
{
	memset(out, 0, sizeof *out);
	if (h->broker_url[0] == '\0') {
		harness_say("%s: worker %s: no broker started (h->broker_url is empty)",
		            h->test_name, name);
		return JM_EINVAL;
	}
	const char *bin = harness_bin("jobmesh-worker");
	if (bin == NULL)
		return JM_EINVAL;
	char *head[] = {(char *)bin, "--broker", h->broker_url};
	char *argv[HARNESS_ARGS_MAX];
	int rc = harness_join_args(argv, head, sizeof head / sizeof head[0], args);
	if (rc != 0)
		return rc;
	return harness_spawn(h, name, argv, out);
}

int harness_run_capture(struct harness *h, char *const argv[], int timeout_ms, char **stdout_text,
                        char **stderr_text, int *exit_code)
{
	if (stdout_text != NULL)
		*stdout_text = NULL;
	if (stderr_text != NULL)
		*stderr_text = NULL;
	char name[HARNESS_NAME_MAX];
	snprintf(name, sizeof name, "run-%u", ++h->runs_count);
	struct harness_proc proc;
	int rc = harness_spawn(h, name, argv, &proc);
	if (rc != 0)
		return rc;
	struct harness_slot *slot = harness_slot_of(&proc);
	if (!harness_slot_wait(slot, timeout_ms, false)) {
		harness_say("%s: %s (%s) timed out after %d ms; killed", h->test_name, argv[0],
		            name, timeout_ms);
		harness_slot_kill(slot);
		return JM_ETIMEDOUT;
	}
	if (exit_code != NULL)
		*exit_code = slot->exit_status;

	char path[HARNESS_DIR_MAX + HARNESS_NAME_MAX + 8];
	if (stdout_text != NULL) {
		snprintf(path, sizeof path, "%s/%s.out", h->dir, name);
		*stdout_text = harness_read_file(path, NULL);
		if (*stdout_text == NULL)
			return JM_EIO;
	}
	if (stderr_text != NULL) {
		snprintf(path, sizeof path, "%s/%s.err", h->dir, name);
		*stderr_text = harness_read_file(path, NULL);
		if (*stderr_text == NULL) {
			if (stdout_text != NULL) {
				free(*stdout_text);
				*stdout_text = NULL;
			}
			return JM_EIO;
		}
	}
	return 0;
}

int harness_run(struct harness *h, char *const argv[], int timeout_ms, char **stdout_text,
                int *exit_code)
{
	return harness_run_capture(h, argv, timeout_ms, stdout_text, NULL, exit_code);
}

int harness_stop(struct harness_proc *proc, int signal, int timeout_ms, int *exit_status)
{
	struct harness_slot *slot = harness_slot_of(proc);
	if (slot == NULL) {
		harness_say("stop: not a process this harness started");
		return JM_EINVAL;
	}
	if (!slot->reaped && signal != 0 && kill(slot->pid, signal) != 0)
		harness_say("kill %s (pid %d): %s", slot->name, (int)slot->pid, strerror(errno));
	if (!harness_slot_wait(slot, timeout_ms, false)) {
		harness_say("%s (pid %d) still running %d ms after signal %d", slot->name,
		            (int)slot->pid, timeout_ms, signal);
		return JM_ETIMEDOUT;
	}
	if (exit_status != NULL)
		*exit_status = slot->exit_status;
	return 0;
}

int harness_kill(struct harness_proc *proc)
{
	struct harness_slot *slot = harness_slot_of(proc);
	if (slot == NULL) {
		harness_say("kill: not a process this harness started");
		return JM_EINVAL;
	}
	return harness_slot_kill(slot);
}

bool harness_is_running(struct harness_proc *proc)
{
	struct harness_slot *slot = harness_slot_of(proc);
	return slot != NULL && harness_slot_poll(slot, false);
}

bool harness_wait_for(int timeout_ms, bool (*cond)(void *arg), void *arg, const char *what)
{
	uint64_t deadline_us = harness_deadline_us(timeout_ms);
	long steps_max = timeout_ms / HARNESS_COND_POLL_MS + 2;
	for (long step = 0; step < steps_max; step++) {
		if (cond(arg))
			return true;
		uint64_t now_us = jm_mono_us();
		if (now_us >= deadline_us)
			break;
		uint64_t left_ms = (deadline_us - now_us + 999) / 1000;
		harness_sleep_ms(left_ms < HARNESS_COND_POLL_MS ? (int)left_ms
		                                                : HARNESS_COND_POLL_MS);
	}
	/* One last look: the condition may have come true during the last
	 * sleep, and a false timeout is worse than a late success. */
	if (cond(arg))
		return true;
	fprintf(stderr, "timed out after %d ms waiting for %s\n", timeout_ms, what);
	return false;
}

const char *harness_write_file(struct harness *h, const char *name, const char *content,
                               mode_t mode)
{
	const char *path = harness_path(h, name);
	if (path == NULL)
		return NULL;
	/* O_CLOEXEC: a script being written must not leak into a child spawned
	 * meanwhile, or exec'ing it later fails with ETXTBSY. */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		harness_say("write %s: %s", path, strerror(errno));
		return NULL;
	}
	size_t len = strlen(content);
	size_t done = 0;
	while (done < len) {
		ssize_t wrote = write(fd, content + done, len - done);
		if (wrote < 0 && errno == EINTR)
			continue;
		if (wrote <= 0) {
			harness_say("write %s: %s", path, strerror(errno));
			close(fd);
			return NULL;
		}
		done += (size_t)wrote;
	}
	/* The umask may have dropped bits from open's mode. */
	if (fchmod(fd, mode) != 0 || close(fd) != 0) {
		harness_say("write %s: %s", path, strerror(errno));
		return NULL;
	}
	return path;
}

char *harness_read_file(const char *path, size_t *len)
{
	char *data = harness_read_from(path, 0, len);
	if (data == NULL)
		harness_say("read %s: %s", path, strerror(errno));
	return data;
}

void harness_print_logs(struct harness *h, int lines_per_file)
{
	for (size_t i = 0; i < h->procs_count; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(h->procs[i].name, h->procs[j].name) == 0;
		if (seen)
			continue; /* a restarted process shares its files */
		static const char *const suffixes[] = {"err", "out"};
		for (size_t k = 0; k < 2; k++) {
			char path[HARNESS_DIR_MAX + HARNESS_NAME_MAX + 8];
			char title[HARNESS_NAME_MAX + 8];
			snprintf(path, sizeof path, "%s/%s.%s", h->dir, h->procs[i].name,
			         suffixes[k]);
			snprintf(title, sizeof title, "%s.%s", h->procs[i].name, suffixes[k]);
			harness_print_tail(title, path, 0, lines_per_file);
		}
	}
}
