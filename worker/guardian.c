/* The guardian process (guardian.h). */
#define _GNU_SOURCE
#include "guardian.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* How often the guardian checks, during the grace, whether the groups it
 * sent SIGTERM to are gone already. */
#define GUARDIAN_TICK_MS 20

/* group > 0: watch it; group < 0: forget -group. */
struct guardian_msg {
	int32_t group;
	uint32_t kill_grace_ms;
};

struct guardian_entry {
	pid_t group; /* 0: free */
	uint32_t kill_grace_ms;
};

static pthread_once_t guardian_once = PTHREAD_ONCE_INIT;
static int guardian_fd = -1;
static atomic_bool guardian_warned;
/* The guardian's table. Reserved here, before the fork, because the
 * guardian must not allocate (it is a fork of a threaded process). */
static struct guardian_entry guardian_groups[GUARDIAN_GROUPS_MAX];

static void guardian_table_apply(const struct guardian_msg *msg)
{
	pid_t group = msg->group > 0 ? msg->group : -msg->group;
	for (size_t i = 0; i < GUARDIAN_GROUPS_MAX; i++) {
		if (msg->group > 0 && guardian_groups[i].group == 0) {
			guardian_groups[i] = (struct guardian_entry){group, msg->kill_grace_ms};
			return;
		}
		if (msg->group < 0 && guardian_groups[i].group == group) {
			guardian_groups[i].group = 0;
			return;
		}
	}
}

/* Sends sig to every listed group that still exists; returns how many
 * exist, and the largest grace among them in *grace_ms. */
static size_t guardian_signal_all(int sig, uint32_t *grace_ms)
{
	size_t alive = 0;
	for (size_t i = 0; i < GUARDIAN_GROUPS_MAX; i++) {
		struct guardian_entry *e = &guardian_groups[i];
		if (e->group == 0)
			continue;
		if (kill(-e->group, sig) != 0 && errno == ESRCH) {
			e->group = 0;
			continue;
		}
		alive++;
		if (grace_ms != NULL && e->kill_grace_ms > *grace_ms)
			*grace_ms = e->kill_grace_ms;
	}
	return alive;
}

/* The guardian's whole life; async-signal-safe calls only. */
static _Noreturn void guardian_main(int fd)
{
	/* A group of its own: `kill -9 -- -<worker pgid>` must not take the
	 * guardian down with the worker it outlives. */
	setpgid(0, 0);
	struct sigaction ignore = {.sa_handler = SIG_IGN};
	sigemptyset(&ignore.sa_mask);
	const int ignored[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2};
	for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
		sigaction(ignored[i], &ignore, NULL);
	/* Hold nothing of the worker's: not its stdio (whoever reads the
	 * worker's output would wait for the guardian too) and not the pipes
	 * of a handler being started on another thread (its stdin would never
	 * see EOF). */
	int null_fd = open("/dev/null", O_RDWR);
	for (int std = 0; std < 3 && null_fd >= 0; std++)
		dup2(null_fd, std);
	if (fd > 3)
		close_range(3, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + 1, ~0u, 0);
	if (null_fd > 2 && null_fd != fd)
		close(null_fd);

	for (;;) {
		struct guardian_msg msg;
		ssize_t got = recv(fd, &msg, sizeof msg, 0);
		if (got == (ssize_t)sizeof msg)
			guardian_table_apply(&msg);
		else if (got == 0 || (got < 0 && errno != EINTR))
			break; /* the worker is gone */
	}

	uint32_t grace_ms = 0;
	if (guardian_signal_all(SIGTERM, &grace_ms) > 0) {
		for (uint32_t waited = 0; waited < grace_ms; waited += GUARDIAN_TICK_MS) {
			struct timespec tick = {0, GUARDIAN_TICK_MS * 1000000L};
			nanosleep(&tick, NULL);
			if (guardian_signal_all(0, NULL) == 0)
				break;
		}
		guardian_signal_all(SIGKILL, NULL);
	}
	_exit(0);
}

static void guardian_start(void)
{
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
		jm_warn("exec: cannot start the handler guardian: socketpair: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		jm_warn("exec: cannot start the handler guardian: fork: %s", strerror(errno));
		close(pair[0]);
		close(pair[1]);
		return;
	}
	if (pid == 0) {
		close(pair[0]);
		guardian_main(pair[1]);
	}
	close(pair[1]);
	guardian_fd = pair[0];
}

static void guardian_send(int32_t group, uint32_t kill_grace_ms)
{
	pthread_once(&guardian_once, guardian_start);
	struct guardian_msg msg = {group, kill_grace_ms};
	if (guardian_fd >= 0 && send(guardian_fd, &msg, sizeof msg, MSG_NOSIGNAL) == sizeof msg)
		return;
	if (!atomic_exchange(&guardian_warned, true))
		jm_warn("exec: the handler guardian is unreachable (%s): handlers will not be "
		        "stopped if this worker dies",
		        guardian_fd < 0 ? "not started" : strerror(errno));
}

void guardian_watch(pid_t group, uint32_t kill_grace_ms)
{
	guardian_send((int32_t)group, kill_grace_ms);
}

void guardian_forget(pid_t group)
{
	guardian_send(-(int32_t)group, 0);
}
