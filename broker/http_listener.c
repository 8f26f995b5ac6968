/* Accepting, capping and reaping connections (see http_listener.h).
 *
 * Locking: lis->lock guards the connection list, the counts, the dead list
 * and stopping. Lock order is lis->lock, then a connection's own lock
 * (http_conn_shutdown under it); a connection never calls in here with
 * its lock held. The reaper thread frees dead connections with no lock
 * held, because freeing waits for their callbacks. */
#include "http_listener.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define LISTENER_CLOSE_WAIT_MS 10000
#define LISTENER_RETRY_MS 10 /* after a failed accept (out of descriptors) */

struct http_listener {
	nng_stream_listener *listener;
	nng_aio *accept_aio;
	nng_aio *retry_aio;
	struct http_conn_config *cfg;
	uint32_t max_connections;
	int port;
	char refusal[512]; /* the canned 503 */

	pthread_mutex_t lock;
	pthread_cond_t changed;
	pthread_t reaper;
	bool stopping;
	bool reaper_done;
	struct http_conn *conns; /* open, through their links */
	struct http_conn *dead;  /* ended, waiting for the reaper */
	uint32_t conns_count;    /* open or dead, not yet freed */
	uint32_t refusing_count; /* of them, refusals */
};

static void list_remove(struct http_conn **head, struct http_conn *c)
{
	struct http_conn_link *l = http_conn_link(c);
	if (l->prev)
		http_conn_link(l->prev)->next = l->next;
	else
		*head = l->next;
	if (l->next)
		http_conn_link(l->next)->prev = l->prev;
	l->prev = l->next = NULL;
}

static void list_push(struct http_conn **head, struct http_conn *c)
{
	struct http_conn_link *l = http_conn_link(c);
	l->prev = NULL;
	l->next = *head;
	if (*head)
		http_conn_link(*head)->prev = c;
	*head = c;
}

static void accept_cb(void *arg)
{
	struct http_listener *lis = arg;
	int rv = nng_aio_result(lis->accept_aio);
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return; /* closing */
	if (rv != 0) {
		jm_debug("http: accept failed: %s", nng_strerror(rv));
		nng_sleep_aio(LISTENER_RETRY_MS, lis->retry_aio);
		return;
	}
	nng_stream *stream = nng_aio_get_output(lis->accept_aio, 0);
	pthread_mutex_lock(&lis->lock);
	bool over =
	    lis->max_connections && lis->conns_count - lis->refusing_count >= lis->max_connections;
	bool stopping = lis->stopping;
	bool answer = over && lis->refusing_count < HTTP_REFUSING_MAX;
	struct http_conn *c = NULL;
	if (stopping || (over && !answer)) {
		nng_stream_free(stream);
	} else if (http_conn_open(stream, lis->cfg, over ? lis->refusal : NULL, &c) == 0) {
		http_conn_link(c)->refused = over;
		list_push(&lis->conns, c);
		lis->conns_count++;
		lis->refusing_count += over;
	}
	pthread_mutex_unlock(&lis->lock);
	if (over) {
		metrics_count(METRIC_HTTP_CONNECTIONS_REFUSED, 1);
		jm_debug("http: connection refused: %u open (--http-max-connections)",
		         lis->max_connections);
	}
	if (c)
		http_conn_start(c);
	if (!stopping)
		nng_stream_listener_accept(lis->listener, lis->accept_aio);
}

static void retry_cb(void *arg)
{
	struct http_listener *lis = arg;
	if (nng_aio_result(lis->retry_aio) == 0)
		nng_stream_listener_accept(lis->listener, lis->accept_aio);
}

void http_listener_conn_ended(struct http_listener *lis, struct http_conn *c)
{
	pthread_mutex_lock(&lis->lock);
	list_remove(&lis->conns, c);
	list_push(&lis->dead, c);
	pthread_cond_broadcast(&lis->changed);
	pthread_mutex_unlock(&lis->lock);
}

static void *reaper_main(void *arg)
{
	struct http_listener *lis = arg;
	pthread_mutex_lock(&lis->lock);
	for (;;) {
		while (lis->dead) {
			struct http_conn *c = lis->dead;
			list_remove(&lis->dead, c);
			bool refused = http_conn_link(c)->refused;
			pthread_mutex_unlock(&lis->lock);
			http_conn_free(c);
			pthread_mutex_lock(&lis->lock);
			lis->conns_count--;
			lis->refusing_count -= refused;
			pthread_cond_broadcast(&lis->changed);
		}
		if (lis->stopping && lis->conns_count == 0)
			break;
		if (lis->reaper_done)
			break;
		pthread_cond_wait(&lis->changed, &lis->lock);
	}
	pthread_mutex_unlock(&lis->lock);
	return NULL;
}

uint32_t http_listener_connections(struct http_listener *lis)
{
	pthread_mutex_lock(&lis->lock);
	uint32_t open = lis->conns_count - lis->refusing_count;
	pthread_mutex_unlock(&lis->lock);
	return open;
}

int http_listener_port(const struct http_listener *lis)
{
	return lis->port;
}

static void listener_free(struct http_listener *lis)
{
	nng_aio_free(lis->accept_aio);
	nng_aio_free(lis->retry_aio);
	nng_stream_listener_free(lis->listener);
	pthread_cond_destroy(&lis->changed);
	pthread_mutex_destroy(&lis->lock);
	free(lis);
}

int http_listener_open(struct http_listener **out, const char *url, nng_tls_config *tls,
                       uint32_t max_connections, struct http_conn_config *cfg, struct jm_err *err)
{
	struct http_listener *lis = calloc(1, sizeof *lis);
	if (lis == NULL)
		return jm_err_set(err, JM_ENOMEM, "http: out of memory");
	pthread_mutex_init(&lis->lock, NULL);
	pthread_cond_init(&lis->changed, NULL);
	lis->cfg = cfg;
	lis->max_connections = max_connections;
	cfg->listener = lis;
	char body[256];
	snprintf(body, sizeof body,
	         "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"the broker "
	         "serves at most %u HTTP connections at once (--http-max-connections): "
	         "retry later\"}}",
	         max_connections);
	snprintf(lis->refusal, sizeof lis->refusal,
	         "HTTP/1.1 503 Service Unavailable\r\n"
	         "Content-Type: application/json\r\nCache-Control: no-store\r\n"
	         "Retry-After: 1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
	         strlen(body), body);

	int rv = nng_stream_listener_alloc(&lis->listener, url);
	if (rv == 0 && tls)
		rv = nng_stream_listener_set_ptr(lis->listener, NNG_OPT_TLS_CONFIG, tls);
	if (rv == 0)
		rv = nng_aio_alloc(&lis->accept_aio, accept_cb, lis);
	if (rv == 0)
		rv = nng_aio_alloc(&lis->retry_aio, retry_cb, lis);
	if (rv == 0)
		rv = nng_stream_listener_listen(lis->listener);
	nng_sockaddr sa;
	if (rv == 0)
		rv = nng_stream_listener_get_addr(lis->listener, NNG_OPT_LOCADDR, &sa);
	if (rv == 0 && pthread_create(&lis->reaper, NULL, reaper_main, lis) != 0)
		rv = NNG_ENOMEM;
	if (rv != 0) {
		jm_err_set(err, rv == NNG_ENOMEM ? JM_ENOMEM : JM_ETRANSPORT,
		           "http: listening on %s: %s", url, nng_strerror(rv));
		listener_free(lis);
		return err->code;
	}
	lis->port = sa.s_family == NNG_AF_INET    ? ntohs(sa.s_in.sa_port)
	            : sa.s_family == NNG_AF_INET6 ? ntohs(sa.s_in6.sa_port)
	                                          : 0;
	nng_stream_listener_accept(lis->listener, lis->accept_aio);
	*out = lis;
	return 0;
}

void http_listener_stop(struct http_listener *lis)
{
	if (lis == NULL)
		return;
	pthread_mutex_lock(&lis->lock);
	bool stopped = lis->stopping;
	lis->stopping = true;
	pthread_mutex_unlock(&lis->lock);
	if (stopped)
		return;
	nng_stream_listener_close(lis->listener);
	nng_aio_stop(lis->accept_aio);
	nng_aio_stop(lis->retry_aio);
	pthread_mutex_lock(&lis->lock);
	for (struct http_conn *c = lis->conns; c; c = http_conn_link(c)->next)
		http_conn_shutdown(c);
	pthread_mutex_unlock(&lis->lock);
}

void http_listener_close(struct http_listener *lis)
{
	if (lis == NULL)
		return;
	http_listener_stop(lis);
	pthread_mutex_lock(&lis->lock);
	/* Connections accepted while stopping were shut down as well; a
	 * request with the core ends when the core answers it (core_stop
	 * answered the parked ones). Bounded, so a stuck one cannot hang the
	 * stop. */
	for (struct http_conn *c = lis->conns; c; c = http_conn_link(c)->next)
		http_conn_shutdown(c);
	struct timespec until = jm_timespec_after_ms(CLOCK_REALTIME, LISTENER_CLOSE_WAIT_MS);
	while (lis->conns_count > 0 &&
	       pthread_cond_timedwait(&lis->changed, &lis->lock, &until) == 0) {
	}
	bool drained = lis->conns_count == 0;
	lis->reaper_done = true;
	pthread_cond_broadcast(&lis->changed);
	pthread_mutex_unlock(&lis->lock);
	pthread_join(lis->reaper, NULL);
	if (!drained) {
		/* Their memory is left to the exit: freeing a connection a
		 * callback may still reach would be worse. */
		jm_warn("http: %u connections did not end within %d ms of the stop",
		        lis->conns_count, LISTENER_CLOSE_WAIT_MS);
		return;
	}
	listener_free(lis);
}
