/* The harness's guard: see harness_guard.h.
 *
 * Why fork + exec rather than posix_spawn: PR_SET_PDEATHSIG must be set in
 * the child, between fork and exec, and posix_spawn has no hook for it. The
 * test processes run nng's threads, so the child calls only
 * async-signal-safe functions (open, dup2, close_range, chdir, setpgid,
 * sigaction, sigprocmask, prctl, execv, write, _exit); argv[0] is looked up
 * in PATH before the fork, and a failed exec reports its errno through a
 * close-on-exec pipe, as posix_spawn does.
 *
 * The table is a fixed array of atomic PIDs, so the signal handler reads it
 * without locks. A PID enters it while every signal is blocked in the
 * forking thread, and leaves it before it is reaped (a reaped PID may name
 * someone else's process by the next instant). */
/* For close_range, gettid and pipe2 (glibc >= 2.34). */
#define _GNU_SOURCE

#include "harness_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define GUARD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define GUARD_SANITIZER 1
#endif
#endif
#ifdef GUARD_SANITIZER
#include <sanitizer/common_interface_defs.h>
#endif

/* More children alive at once than any test starts; past it a child is
 * still started, with a warning, and only PR_SET_PDEATHSIG guards it. */
#define GUARD_PIDS_MAX 1024
/* How long the exit paths wait for SIGKILLed children to be reaped. */
#define GUARD_REAP_MS 5000

static _Atomic pid_t guard_pids[GUARD_PIDS_MAX];
static atomic_bool guard_parent_death_kill = true;

static const int guard_signals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL,
                                    SIGTERM, SIGINT,  SIGHUP, SIGQUIT};
static struct sigaction guard_previous[NSIG];

/* Writes a message with one number to stderr; async-signal-safe. */
static void guard_say(const char *before, int number, const char *after)
{
	char digits[16];
	size_t len = 0;
	unsigned value = number < 0 ? 0u : (unsigned)number;
	do {
		digits[sizeof digits - 1 - len++] = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0 && len < sizeof digits);
	ssize_t ignored = write(STDERR_FILENO, before, strlen(before));
	ignored = write(STDERR_FILENO, digits + sizeof digits - len, len);
	ignored = write(STDERR_FILENO, after, strlen(after));
	(void)ignored;
}

static void guard_register(pid_t pid)
{
	for (size_t i = 0; i < GUARD_PIDS_MAX; i++) {
		pid_t empty = 0;
		if (atomic_compare_exchange_strong(&guard_pids[i], &empty, pid))
			return;
	}
	guard_say("harness: more than ", GUARD_PIDS_MAX,
	          " children alive: this one is not guarded at exit\n");
}

void harness_guard_forget(pid_t pid)
{
	for (size_t i = 0; i < GUARD_PIDS_MAX; i++) {
		pid_t expected = pid;
		if (atomic_compare_exchange_strong(&guard_pids[i], &expected, 0))
			return;
	}
}

void harness_guard_set_parent_death_kill(bool on)
{
	atomic_store(&guard_parent_death_kill, on);
}

int harness_guard_kill_all(void)
{
	int saved_errno = errno;
	/* Signal every one before waiting for any, so they die in parallel.
	 * Each PID is still unreaped, so it and its group id are still its. */
	for (size_t i = 0; i < GUARD_PIDS_MAX; i++) {
		pid_t pid = atomic_load(&guard_pids[i]);
		if (pid > 0) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		}
	}
	int killed = 0;
	struct timespec step = {.tv_sec = 0, .tv_nsec = 1000000L};
	long steps_left = GUARD_REAP_MS;
	for (size_t i = 0; i < GUARD_PIDS_MAX; i++) {
		pid_t pid = atomic_exchange(&guard_pids[i], 0);
		if (pid <= 0)
			continue;
		killed++;
		/* Bounded: an exiting test must never hang on a child stuck in
		 * the kernel. */
		while (waitpid(pid, NULL, WNOHANG) == 0 && steps_left-- > 0)
			nanosleep(&step, NULL);
	}
	errno = saved_errno;
	return killed;
}

static void guard_at_exit(void)
{
	int killed = harness_guard_kill_all();
	if (killed > 0)
		guard_say("harness: at exit, killed ", killed,
		          " process(es) the test left running\n");
}

#ifdef GUARD_SANITIZER
/* UBSan is a runtime of its own under GCC: after a report it ends the
 * process with _exit and calls no death callback we can register (the one
 * we set is ASan's). abort_on_error makes it abort() instead, so our
 * SIGABRT handler runs. A default only: UBSAN_OPTIONS still wins. */
__attribute__((visibility("default"), used)) const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "abort_on_error=1";
}

static void guard_sanitizer_death_cb(void)
{
	int killed = harness_guard_kill_all();
	if (killed > 0)
		guard_say("harness: sanitizer abort, killed ", killed, " process(es)\n");
}
#endif

/* Kills the children, then lets the signal do what it would have done
 * without us: a fault raised by the CPU (si_code > 0) strikes again when
 * the handler returns, now on the previous handler, with its real siginfo;
 * a sent signal is raised again, pending until the handler returns. */
static void guard_fatal_cb(int sig, siginfo_t *info, void *context)
{
	(void)context;
	int saved_errno = errno;
	int killed = harness_guard_kill_all();
	if (killed > 0)
		guard_say("harness: fatal signal, killed ", killed, " process(es)\n");
	sigaction(sig, &guard_previous[sig], NULL);
	if (info == NULL || info->si_code <= 0)
		raise(sig);
	errno = saved_errno;
}

/* Before main, so cmocka saves and restores our handlers, not the
 * defaults, around each test. */
__attribute__((constructor)) static void guard_install(void)
{
	for (size_t i = 0; i < sizeof guard_signals / sizeof guard_signals[0]; i++) {
		int sig = guard_signals[i];
		struct sigaction old;
		if (sigaction(sig, NULL, &old) != 0)
			continue;
		if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN)
			continue; /* ignored on purpose (nohup): it kills nothing */
		guard_previous[sig] = old;
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = guard_fatal_cb;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		sigaction(sig, &sa, NULL);
	}
	atexit(guard_at_exit);
#ifdef GUARD_SANITIZER
	__sanitizer_set_death_callback(guard_sanitizer_death_cb);
#endif
}

/* The executable argv[0] names: itself if it holds a '/', else the first
 * executable match in PATH. 0 or an errno. */
static int guard_resolve(const char *file, char *out, size_t out_size)
{
	if (strchr(file, '/') != NULL) {
		if (strlen(file) >= out_size)
			return ENAMETOOLONG;
		memcpy(out, file, strlen(file) + 1);
		return 0;
	}
	const char *path = getenv("PATH");
	if (path == NULL || path[0] == '\0')
		path = "/bin:/usr/bin";
	int found_errno = ENOENT;
	for (const char *dir = path; dir != NULL;) {
		const char *end = strchr(dir, ':');
		size_t dir_len = end ? (size_t)(end - dir) : strlen(dir);
		int n = snprintf(out, out_size, "%.*s%s%s", (int)dir_len, dir,
		                 dir_len > 0 ? "/" : "", file);
		if (n > 0 && (size_t)n < out_size) {
			if (access(out, X_OK) == 0)
				return 0;
			if (errno == EACCES)
				found_errno = EACCES;
		}
		dir = end ? end + 1 : NULL;
	}
	return found_errno;
}

/* Opens path onto fd target without close-on-exec; 0 or an errno. */
static int guard_open_to(int target, const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	if (fd == target)
		return fcntl(fd, F_SETFD, 0) == 0 ? 0 : errno;
	int rc = dup2(fd, target) < 0 ? errno : 0;
	close(fd);
	return rc;
}

/* The child between fork and exec: async-signal-safe calls only. */
__attribute__((noreturn)) static void guard_child(const struct harness_guard_child *child,
                                                  const char *path, char *const argv[],
                                                  int report_fd, pid_t parent,
                                                  bool parent_death_kill)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL); /* glibc's reserved ones refuse */
	}
	int err = 0;
	if (report_fd <= STDERR_FILENO) { /* the parent had 0-2 closed */
		report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
		if (report_fd < 0)
			_exit(127);
	}
	if (setpgid(0, 0) != 0)
		err = errno;
	if (err == 0 && parent_death_kill) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
			err = errno;
		else if (getppid() != parent)
			_exit(127); /* the parent died before prctl: nobody to serve */
	}
	if (err == 0)
		err = guard_open_to(STDIN_FILENO, "/dev/null", O_RDONLY);
	if (err == 0)
		err = guard_open_to(STDOUT_FILENO, child->out_path, O_WRONLY | O_CREAT | O_APPEND);
	if (err == 0)
		err = guard_open_to(STDERR_FILENO, child->err_path, O_WRONLY | O_CREAT | O_APPEND);
	if (err == 0 && report_fd > STDERR_FILENO + 1)
		close_range(STDERR_FILENO + 1, (unsigned)report_fd - 1, 0);
	if (err == 0)
		close_range((unsigned)report_fd + 1, ~0u, 0);
	if (err == 0 && chdir(child->dir) != 0)
		err = errno;
	if (err == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(path, argv);
		err = errno;
	}
	ssize_t ignored = write(report_fd, &err, sizeof err);
	(void)ignored;
	_exit(127);
}

int harness_guard_spawn(const struct harness_guard_child *child, char *const argv[], pid_t *pid)
{
	char path[PATH_MAX];
	int rc = guard_resolve(argv[0], path, sizeof path);
	if (rc != 0)
		return rc;
	int report[2];
	if (pipe2(report, O_CLOEXEC) != 0)
		return errno;
	/* No signal may run our handler in the child before it resets them,
	 * nor kill the parent between fork and registering the child. */
	sigset_t all;
	sigset_t old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pid_t parent = getpid();
	bool parent_death_kill = atomic_load(&guard_parent_death_kill) && gettid() == parent;
	pid_t child_pid = fork();
	if (child_pid == 0)
		guard_child(child, path, argv, report[1], parent, parent_death_kill);
	int fork_errno = errno;
	if (child_pid > 0)
		guard_register(child_pid);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(report[1]);
	if (child_pid < 0) {
		close(report[0]);
		return fork_errno;
	}
	int exec_errno = 0;
	ssize_t got;
	do {
		got = read(report[0], &exec_errno, sizeof exec_errno);
	} while (got < 0 && errno == EINTR);
	close(report[0]);
	if (got == (ssize_t)sizeof exec_errno) {
		harness_guard_forget(child_pid);
		while (waitpid(child_pid, NULL, 0) < 0 && errno == EINTR) {
		}
		return exec_errno != 0 ? exec_errno : EIO;
	}
	*pid = child_pid;
	return 0;
}
