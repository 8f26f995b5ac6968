/* The harness's guard: no process the harness started outlives the test
 * process that started it, however that process ends.
 *
 * Every child is started here (fork + exec) and registered in one
 * process-wide table of live PIDs until the harness reaps it. The table is
 * emptied, each PID SIGKILLed (its process group too) and waited for:
 * - at exit (atexit): a normal return from main, cmocka's exit(), or a test
 *   that failed an assertion after which no teardown ran;
 * - on a fatal signal (SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTERM as
 *   ctest's or a user's timeout sends, SIGINT, SIGHUP, SIGQUIT): the
 *   handler kills, then restores the disposition it found (the default,
 *   or ASan's handler) and re-raises, so the process still dies of it;
 * - when a sanitizer ends the process (ASan's death callback: it exits
 *   with _exit, which runs no atexit handler; UBSan is made to abort()).
 * The handlers are installed before main (a constructor), so cmocka, which
 * installs its own SIGSEGV/SIGILL/SIGFPE/SIGBUS handlers around each test
 * and restores the previous ones afterwards, restores ours.
 *
 * Second line, for the one death no handler sees (SIGKILL of the test
 * process, as ctest 3.25 sends its whole tree on a timeout): a child
 * spawned from the main thread gets PR_SET_PDEATHSIG = SIGKILL. The kernel
 * ties that to the thread that forked, not to the process, so children
 * spawned from other threads (none today) go without it rather than die
 * when their thread ends. */
#ifndef JM_TESTS_HARNESS_GUARD_H
#define JM_TESTS_HARNESS_GUARD_H

#include <stdbool.h>
#include <sys/types.h>

/* What the child is set up with before exec: cwd, stdin from /dev/null,
 * stdout and stderr appended to two files, its own process group, every
 * signal at its default disposition and none blocked, no fd but 0-2. */
struct harness_guard_child {
	const char *dir;      /* working directory */
	const char *out_path; /* stdout, opened O_APPEND|O_CREAT */
	const char *err_path; /* stderr, likewise */
};

/* Starts argv (argv[0] looked up in PATH unless it holds a '/') as
 * described above and registers its PID. Returns 0 with *pid set, or a
 * positive errno (the exec's own, as posix_spawn reports it: ENOENT,
 * EACCES, ...) with nothing left running. */
int harness_guard_spawn(const struct harness_guard_child *child, char *const argv[], pid_t *pid);

/* Drops pid from the table: call it once the process has exited, before
 * reaping it, so the guard never signals a PID that may be reused. */
void harness_guard_forget(pid_t pid);

/* SIGKILLs every registered process and its group and reaps each;
 * async-signal-safe. Returns how many were killed. What the exit and
 * signal paths run; a test of the guard may call it too. */
int harness_guard_kill_all(void);

/* Off: children get no PR_SET_PDEATHSIG, so a test of the guard can prove
 * the table alone does the work. On by default. */
void harness_guard_set_parent_death_kill(bool on);

#endif
