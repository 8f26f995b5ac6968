/* Bounded nng_close (sock_close.h). */
#define _GNU_SOURCE
#include "sock_close.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "log.h"

/* The helper owns its copy of the socket, so a caller that gave up on it
 * may return (and free whatever held the socket) at once. */
static void *sock_close_main(void *arg)
{
	nng_socket *sock = arg;
	nng_close(*sock);
	free(sock);
	return NULL;
}

bool sock_close(nng_socket sock)
{
	nng_socket *copy = malloc(sizeof *copy);
	pthread_t thread;
	if (copy == NULL) {
		nng_close(sock);
		return true;
	}
	*copy = sock;
	if (pthread_create(&thread, NULL, sock_close_main, copy) != 0) {
		free(copy);
		nng_close(sock);
		return true;
	}
	/* pthread_timedjoin_np measures CLOCK_REALTIME. */
	struct timespec until = jm_timespec_after_ms(CLOCK_REALTIME, SOCK_CLOSE_WAIT_MS);
	int rc = pthread_timedjoin_np(thread, NULL, &until);
	if (rc == 0)
		return true;
	pthread_detach(thread);
	jm_debug("closing an NNG socket hung for %d ms; leaving it to a helper thread",
	         SOCK_CLOSE_WAIT_MS);
	return false;
}
