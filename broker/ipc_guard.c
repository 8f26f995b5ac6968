/* The ipc:// listener guard (see ipc_guard.h). */
#define _GNU_SOURCE
#include "ipc_guard.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define GUARD_INTERVAL_MS 1000
/* How long the broker may take to answer a probe's handshake and to add
 * its pipe. Generous: a false alarm costs every ipc client a reconnect. */
#define PROBE_WAIT_MS 3000

struct ipc_guard {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint16_t peer_protocol;
	ipc_guard_relisten_fn relisten;
	void *arg;
	pid_t pid;

	atomic_uint_fast64_t claimed;    /* probes the socket has added */
	atomic_uint_fast32_t probe_pipe; /* id of the probe pipe claimed last */

	pthread_mutex_t lock; /* guards stopping, with wake */
	pthread_cond_t wake;
	bool stopping;
	bool joined;
	pthread_t thread;
};

enum probe_verdict { PROBE_ACCEPTED, PROBE_NOT_ACCEPTED, PROBE_UNKNOWN };

/* Waits up to ms, or less when a stop is asked; false once stopping. */
static bool guard_sleep(struct ipc_guard *g, uint32_t ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&g->lock);
	while (!g->stopping && pthread_cond_timedwait(&g->wake, &g->lock, &until) == 0)
		;
	bool go_on = !g->stopping;
	pthread_mutex_unlock(&g->lock);
	return go_on;
}

/* Reads exactly len bytes from fd within deadline_us; false otherwise. */
static bool read_fully(int fd, uint8_t *buf, size_t len, uint64_t deadline_us)
{
	size_t got = 0;
	while (got < len) {
		uint64_t now = jm_mono_us();
		if (now >= deadline_us)
			return false;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n = poll(&pfd, 1, (int)((deadline_us - now + 999) / 1000));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		ssize_t r = read(fd, buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

/* One probe: connect as an SP peer and see whether the socket adds us.
 * The connection is closed only after the broker's header arrived, so the
 * probe never leaves during the broker's handshake write — which is the
 * very fault it guards against. */
static enum probe_verdict probe(struct ipc_guard *g)
{
	uint64_t before = atomic_load(&g->claimed);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return PROBE_UNKNOWN;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	memcpy(addr.sun_path, g->path, sizeof addr.sun_path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
		int e = errno;
		close(fd);
		/* No socket file, or nobody listening on it: the listener is
		 * gone altogether. */
		return e == ENOENT || e == ECONNREFUSED ? PROBE_NOT_ACCEPTED : PROBE_UNKNOWN;
	}
	uint8_t header[8] = {
	    0, 'S', 'P', 0, (uint8_t)(g->peer_protocol >> 8), (uint8_t)g->peer_protocol, 0, 0};
	uint64_t deadline_us = jm_mono_us() + PROBE_WAIT_MS * 1000ull;
	enum probe_verdict verdict = PROBE_UNKNOWN;
	uint8_t theirs[8];
	if (send(fd, header, sizeof header, MSG_NOSIGNAL) == (ssize_t)sizeof header &&
	    read_fully(fd, theirs, sizeof theirs, deadline_us)) {
		verdict = PROBE_NOT_ACCEPTED;
		while (jm_mono_us() < deadline_us) {
			if (atomic_load(&g->claimed) != before) {
				verdict = PROBE_ACCEPTED;
				break;
			}
			if (!guard_sleep(g, 5)) {
				verdict = PROBE_UNKNOWN;
				break;
			}
		}
	}
	/* An answered handshake that no pipe followed is the fault; a
	 * handshake not answered in time is a busy broker, not a verdict. */
	close(fd);
	return verdict;
}

static void *guard_main(void *arg)
{
	struct ipc_guard *g = arg;
	while (guard_sleep(g, GUARD_INTERVAL_MS)) {
		if (probe(g) != PROBE_NOT_ACCEPTED)
			continue;
		pthread_mutex_lock(&g->lock);
		bool stopping = g->stopping;
		pthread_mutex_unlock(&g->lock);
		if (stopping)
			break;
		int rv = g->relisten(g->arg);
		if (rv == 0)
			jm_warn("ipc://%s stopped accepting connections (a peer left during the "
			        "handshake: an NNG 1.5.2 fault); listening on it again",
			        g->path);
		else
			jm_warn(
			    "ipc://%s stopped accepting connections; listening again failed: %s",
			    g->path, nng_strerror(rv));
	}
	return NULL;
}

int ipc_guard_start(struct ipc_guard **out, const char *url, uint16_t peer_protocol,
                    ipc_guard_relisten_fn relisten, void *arg, struct jm_err *err)
{
	*out = NULL;
	if (strncmp(url, "ipc://", 6) != 0)
		return 0;
	struct ipc_guard *g = calloc(1, sizeof *g);
	if (g == NULL)
		return jm_err_set(err, JM_ENOMEM, "guarding %s: out of memory", url);
	if (strlen(url + 6) >= sizeof g->path) {
		free(g);
		return jm_err_set(err, JM_EINVAL, "%s: the socket path is over %zu bytes", url,
		                  sizeof g->path - 1);
	}
	strcpy(g->path, url + 6);
	g->peer_protocol = peer_protocol;
	g->relisten = relisten;
	g->arg = arg;
	g->pid = getpid();
	pthread_mutex_init(&g->lock, NULL);
	jm_cond_init_monotonic(&g->wake);
	if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return jm_err_set(err, JM_ENOMEM, "guarding %s: cannot start a thread", url);
	}
	*out = g;
	return 0;
}

bool ipc_guard_claim(struct ipc_guard *g, nng_pipe pipe)
{
	uint64_t pid; /* NNG 1.5.2 gives it as a uint64 */
	if (g == NULL || nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_PID, &pid) != 0 ||
	    pid != (uint64_t)g->pid)
		return false;
	atomic_store(&g->probe_pipe, (uint_fast32_t)nng_pipe_id(pipe));
	atomic_fetch_add(&g->claimed, 1);
	nng_pipe_close(pipe);
	return true;
}

bool ipc_guard_release(struct ipc_guard *g, nng_pipe pipe)
{
	if (g == NULL)
		return false;
	uint_fast32_t id = (uint_fast32_t)nng_pipe_id(pipe);
	uint_fast32_t expected = id;
	return atomic_compare_exchange_strong(&g->probe_pipe, &expected, 0);
}

void ipc_guard_stop(struct ipc_guard *g)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = true;
	pthread_cond_broadcast(&g->wake);
	pthread_mutex_unlock(&g->lock);
	if (!g->joined)
		pthread_join(g->thread, NULL);
	g->joined = true;
}

void ipc_guard_free(struct ipc_guard *g)
{
	if (g == NULL)
		return;
	ipc_guard_stop(g);
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
}
