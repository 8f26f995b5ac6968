/* Event publishing (see events.h).
 *
 * The queue is one byte buffer under ev->lock: each event is encoded into
 * it once, with all its topics, as a frame item (proto/event_frame.h), and
 * a mark records the lsn it waits for and where it ends; no allocation per
 * event. The publisher thread takes every item from the front whose lsn is
 * durable, up to EVENTS_FRAME_BYTES, and sends them as one frame: one NNG
 * message per publish round, not one per event and topic. When the front
 * is not durable, it asks the journal to call events_durable_cb at that lsn
 * and sleeps on the condition variable until then. No polling: the
 * journal's callback wakes it. */
#include "events.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/transport/tcp/tcp.h>

#include "clock.h"
#include "event_frame.h"
#include "ipc_guard.h"
#include "log.h"
#include "sock_close.h"
#include "tls.h"

#define EVENTS_SEND_BUFFER 1024
#define EVENTS_CLOSE_DRAIN_S 3
/* A frame stops taking events past this (an event is at most ~1.5 KiB);
 * the SDK receives up to 4 times as much (client/subscribe.c). */
#define EVENTS_FRAME_BYTES (60u * 1024)

/* One queued event: the lsn it waits for and where its item ends in
 * ev->queued. */
struct event_mark {
	uint64_t lsn;
	size_t end;
};

struct events {
	nng_socket sock;
	nng_listener listener;
	struct ipc_guard *guard; /* ipc:// only: relistens when NNG stops accepting */
	struct journal *journal;
	char url[512];        /* as advertised to clients */
	char listen_url[512]; /* as listened on */

	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_cond_t drained; /* signalled when the queue empties */
	pthread_t thread;
	bool thread_running;
	bool stopping;
	struct jm_buf queued; /* frame items, oldest first */
	struct event_mark *marks;
	uint32_t marks_count, marks_cap;
	struct jm_buf sending;    /* the publisher's: what it takes off queued */
	uint64_t waiting_for_lsn; /* a durable callback is registered for it */
	uint64_t dropped;
	/* Connected subscribers. With none, events are not even encoded: a
	 * subscriber that connects later reads state before trusting events. */
	_Atomic uint32_t subscribers;
	events_listener_fn tap; /* see events_set_listener */
	void *tap_arg;
	_Atomic bool tap_set;    /* tap != NULL, read without the lock */
	_Atomic bool tap_wanted; /* see events_listener_wanted */
};

static void subscriber_cb(nng_pipe pipe, nng_pipe_ev ev_type, void *arg)
{
	struct events *ev = arg;
	if (ev_type == NNG_PIPE_EV_ADD_PRE) {
		(void)ipc_guard_claim(ev->guard, pipe); /* a probe never counts */
		return;
	}
	if (ev_type == NNG_PIPE_EV_REM_POST && ipc_guard_release(ev->guard, pipe))
		return;
	pthread_mutex_lock(&ev->lock);
	if (ev_type == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&ev->subscribers, 1);
	else if (atomic_load(&ev->subscribers) > 0)
		atomic_fetch_sub(&ev->subscribers, 1);
	pthread_mutex_unlock(&ev->lock);
}

static void events_durable_cb(void *arg, int status)
{
	struct events *ev = arg;
	pthread_mutex_lock(&ev->lock);
	ev->waiting_for_lsn = 0;
	pthread_cond_signal(&ev->wake);
	pthread_mutex_unlock(&ev->lock);
}

/* Hands each event of items (len bytes of frame items) to the listener,
 * under each of its topics. */
static void tap_events(struct events *ev, const uint8_t *items, size_t len)
{
	size_t pos = 0;
	struct proto_event_item item;
	while (pos < len && proto_event_item_read(items, len, &pos, &item, NULL) == 1) {
		struct proto_msg decoded;
		if (proto_event_item_decode(&item, &decoded, NULL) != 0)
			continue;
		for (uint32_t i = 0; i < item.topics_count; i++)
			ev->tap(ev->tap_arg, item.topics[i], &decoded.u.event);
		proto_msg_fini(&decoded);
	}
}

/* Sends items (len bytes of frame items) as one frame. */
static void publish(struct events *ev, const uint8_t *items, size_t len)
{
	if (atomic_load(&ev->tap_set) && atomic_load(&ev->tap_wanted))
		tap_events(ev, items, len);
	nng_msg *msg;
	if (nng_msg_alloc(&msg, sizeof PROTO_EVENT_FRAME_TOPIC + len) != 0)
		return;
	uint8_t *p = nng_msg_body(msg);
	memcpy(p, PROTO_EVENT_FRAME_TOPIC, sizeof PROTO_EVENT_FRAME_TOPIC);
	memcpy(p + sizeof PROTO_EVENT_FRAME_TOPIC, items, len);
	if (nng_sendmsg(ev->sock, msg, NNG_FLAG_NONBLOCK) != 0)
		nng_msg_free(msg);
}

/* Moves the first count items of ev->queued into ev->sending (under the
 * lock). */
static void take_items(struct events *ev, uint32_t count)
{
	size_t end = ev->marks[count - 1].end;
	jm_buf_reset(&ev->sending);
	if (count == ev->marks_count) {
		struct jm_buf swap = ev->sending;
		ev->sending = ev->queued;
		ev->queued = swap;
		ev->marks_count = 0;
		return;
	}
	if (jm_buf_append(&ev->sending, ev->queued.data, end) != 0)
		jm_buf_reset(&ev->sending); /* out of memory: these are dropped */
	memmove(ev->queued.data, ev->queued.data + end, ev->queued.len - end);
	ev->queued.len -= end;
	ev->marks_count -= count;
	memmove(ev->marks, ev->marks + count, ev->marks_count * sizeof *ev->marks);
	for (uint32_t i = 0; i < ev->marks_count; i++)
		ev->marks[i].end -= end;
}

static void *publisher_main(void *arg)
{
	struct events *ev = arg;
	pthread_mutex_lock(&ev->lock);
	for (;;) {
		if (ev->marks_count == 0) {
			pthread_cond_broadcast(&ev->drained);
			if (ev->stopping)
				break;
			pthread_cond_wait(&ev->wake, &ev->lock);
			continue;
		}
		uint64_t lsn = ev->marks[0].lsn;
		uint64_t durable = journal_durable_lsn(ev->journal);
		if (lsn > durable && !ev->stopping) {
			if (ev->waiting_for_lsn != lsn) {
				ev->waiting_for_lsn = lsn;
				pthread_mutex_unlock(&ev->lock);
				/* May call back at once, on this thread. */
				journal_when_durable(ev->journal, lsn, events_durable_cb, ev);
				pthread_mutex_lock(&ev->lock);
				continue;
			}
			pthread_cond_wait(&ev->wake, &ev->lock);
			continue;
		}
		if (lsn > durable) {
			/* Stopping and never made durable: not published. */
			ev->marks_count = 0;
			jm_buf_reset(&ev->queued);
			continue;
		}
		/* Every durable event from the front, up to a frame's size. */
		uint32_t count = 1;
		while (count < ev->marks_count && ev->marks[count].lsn <= durable &&
		       ev->marks[count].end <= EVENTS_FRAME_BYTES)
			count++;
		take_items(ev, count);
		pthread_mutex_unlock(&ev->lock);
		publish(ev, ev->sending.data, ev->sending.len);
		pthread_mutex_lock(&ev->lock);
	}
	pthread_mutex_unlock(&ev->lock);
	return NULL;
}

/* Every scheme with a port (tcp, tls+tcp, ws, wss and their 4/6
 * variants): the same host on the next port, the path kept (ws://h:80/x
 * -> ws://h:81/x). Port 0 stays 0 (the system picks). ipc://, inproc:// and
 * anything without a port: the same address + ".events". */
void events_default_url(const char *url, char *out, size_t out_size)
{
	const char *sep = strstr(url, "://");
	if (sep && strncmp(url, "ipc://", 6) != 0 && strncmp(url, "inproc://", 9) != 0) {
		const char *host = sep + 3;
		const char *path = host + strcspn(host, "/");
		const char *bracket = memchr(host, ']', (size_t)(path - host));
		const char *colon = NULL;
		for (const char *p = bracket ? bracket : host; p < path; p++)
			if (*p == ':')
				colon = p;
		char *end = NULL;
		long port = colon ? strtol(colon + 1, &end, 10) : -1;
		if (colon && end == path && end > colon + 1 && port >= 0 && port < 65535) {
			snprintf(out, out_size, "%.*s:%ld%s", (int)(colon - url), url,
			         port ? port + 1 : 0, path);
			return;
		}
	}
	snprintf(out, out_size, "%s.events", url);
}

int events_open(struct events **out, const char *url, struct journal *journal, struct jm_err *err)
{
	return events_open_secure(out, url, journal, NULL, err);
}

static int events_listen(struct events *ev, const char *url, nng_tls_config *tls_config)
{
	int rv = nng_listener_create(&ev->listener, ev->sock, url);
	if (rv == 0 && tls_config)
		rv = nng_listener_set_ptr(ev->listener, NNG_OPT_TLS_CONFIG, tls_config);
	if (rv == 0)
		rv = nng_listener_start(ev->listener, 0);
	return rv;
}

/* The guard found the ipc:// listener no longer accepting (ipc_guard.h);
 * an ipc:// listener has no TLS. */
static int events_relisten(void *arg)
{
	struct events *ev = arg;
	/* NNG keeps some of a stopped listener's memory after this close:
	 * tests/lsan.supp names events_listen for that. */
	nng_listener_close(ev->listener);
	return events_listen(ev, ev->listen_url, NULL);
}

int events_open_secure(struct events **out, const char *url, struct journal *journal,
                       const struct jm_tls *tls, struct jm_err *err)
{
	nng_tls_config *tls_config = NULL;
	if (jm_tls_url_wants(url)) {
		int rc = jm_tls_config_server(&tls_config, url, tls, err);
		if (rc != 0)
			return jm_err_prefix(err, "events");
	}
	struct events *ev = calloc(1, sizeof *ev);
	if (ev == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	ev->journal = journal;
	jm_buf_init(&ev->queued);
	jm_buf_init(&ev->sending);
	pthread_mutex_init(&ev->lock, NULL);
	pthread_cond_init(&ev->wake, NULL);
	pthread_cond_init(&ev->drained, NULL);
	int rv = nng_pub0_open(&ev->sock);
	if (rv == 0) {
		nng_socket_set_int(ev->sock, NNG_OPT_SENDBUF, EVENTS_SEND_BUFFER);
		nng_pipe_notify(ev->sock, NNG_PIPE_EV_ADD_PRE, subscriber_cb, ev);
		nng_pipe_notify(ev->sock, NNG_PIPE_EV_ADD_POST, subscriber_cb, ev);
		nng_pipe_notify(ev->sock, NNG_PIPE_EV_REM_POST, subscriber_cb, ev);
		rv = events_listen(ev, url, tls_config);
		if (rv != 0)
			nng_close(ev->sock);
	}
	if (tls_config)
		nng_tls_config_free(tls_config); /* the listener holds its own reference */
	if (rv != 0) {
		pthread_cond_destroy(&ev->wake);
		pthread_mutex_destroy(&ev->lock);
		free(ev);
		return jm_err_set(err, JM_ETRANSPORT, "events: listening on %s: %s", url,
		                  nng_strerror(rv));
	}
	snprintf(ev->url, sizeof ev->url, "%s", url);
	snprintf(ev->listen_url, sizeof ev->listen_url, "%s", url);
	int port;
	const char *colon = strrchr(url, ':');
	if ((strncmp(url, "tcp://", 6) == 0 || strncmp(url, "tls+tcp://", 10) == 0) && colon &&
	    nng_listener_get_int(ev->listener, NNG_OPT_TCP_BOUND_PORT, &port) == 0)
		snprintf(ev->url, sizeof ev->url, "%.*s:%d", (int)(colon - url), url, port);
	int rc = ipc_guard_start(&ev->guard, url, IPC_GUARD_PEER_SUB0, events_relisten, ev, err);
	if (rc != 0 || pthread_create(&ev->thread, NULL, publisher_main, ev) != 0) {
		ipc_guard_stop(ev->guard);
		nng_close(ev->sock);
		ipc_guard_free(ev->guard);
		free(ev);
		return rc ? jm_err_prefix(err, "events")
		          : jm_err_set(err, JM_ENOMEM, "events: cannot start the publisher thread");
	}
	ev->thread_running = true;
	*out = ev;
	return 0;
}

const char *events_url(const struct events *ev)
{
	return ev->url;
}

void events_advertise(struct events *ev, const char *url)
{
	snprintf(ev->url, sizeof ev->url, "%s", url);
}

/* Without the lock: events_push is on every job's path. */
static bool listened_to(struct events *ev)
{
	return atomic_load(&ev->subscribers) > 0 ||
	       (atomic_load(&ev->tap_set) && atomic_load(&ev->tap_wanted));
}

bool events_listened_to(struct events *ev)
{
	return ev != NULL && listened_to(ev);
}

void events_push_topics(struct events *ev, const char *const *topics, uint32_t topics_count,
                        const struct proto_event *event, uint64_t lsn)
{
	if (ev == NULL || !listened_to(ev))
		return;
	pthread_mutex_lock(&ev->lock);
	size_t start = ev->queued.len;
	int rc = 0;
	if (ev->marks_count == ev->marks_cap) {
		uint32_t cap = ev->marks_cap ? ev->marks_cap * 2 : 256;
		struct event_mark *marks = realloc(ev->marks, cap * sizeof *marks);
		if (marks == NULL)
			rc = JM_ENOMEM;
		else {
			ev->marks = marks;
			ev->marks_cap = cap;
		}
	}
	if (rc == 0)
		rc = proto_event_item_encode(event, topics, topics_count, &ev->queued);
	if (rc != 0) {
		ev->queued.len = start;
		if (ev->dropped++ % 1000 == 0)
			jm_warn("events: dropped an event for %s: %s",
			        topics_count ? topics[0] : "", jm_strerror(rc));
		pthread_mutex_unlock(&ev->lock);
		return;
	}
	/* The publisher sleeps for an empty queue or for its front to become
	 * durable (the journal's callback wakes it then): only an event into
	 * an empty queue changes what it waits for. Waking it for each event
	 * cost more than the event. */
	bool was_empty = ev->marks_count == 0;
	ev->marks[ev->marks_count++] = (struct event_mark){lsn, ev->queued.len};
	if (was_empty)
		pthread_cond_signal(&ev->wake);
	pthread_mutex_unlock(&ev->lock);
}

void events_push(struct events *ev, const char *topic, const struct proto_event *event,
                 uint64_t lsn)
{
	events_push_topics(ev, &topic, 1, event, lsn);
}

void events_set_listener(struct events *ev, events_listener_fn fn, void *arg)
{
	pthread_mutex_lock(&ev->lock);
	ev->tap = fn;
	ev->tap_arg = arg;
	atomic_store(&ev->tap_set, fn != NULL);
	pthread_mutex_unlock(&ev->lock);
}

void events_listener_wanted(struct events *ev, bool wanted)
{
	atomic_store(&ev->tap_wanted, wanted);
}

void events_stop(struct events *ev)
{
	if (ev == NULL || !ev->thread_running)
		return;
	/* Publish what the journal makes durable, for a bounded time. */
	/* ev->drained is a default condition variable: CLOCK_REALTIME. */
	struct timespec until = jm_timespec_after_ms(CLOCK_REALTIME, EVENTS_CLOSE_DRAIN_S * 1000u);
	pthread_mutex_lock(&ev->lock);
	while (ev->marks_count != 0) {
		if (pthread_cond_timedwait(&ev->drained, &ev->lock, &until) != 0)
			break;
	}
	ev->stopping = true;
	pthread_cond_signal(&ev->wake);
	pthread_mutex_unlock(&ev->lock);
	pthread_join(ev->thread, NULL);
	ev->thread_running = false;
}

void events_close(struct events *ev)
{
	if (ev == NULL)
		return;
	events_stop(ev);
	ipc_guard_stop(ev->guard);
	/* No pipe callback runs after a close that finished; one that hung
	 * (sock_close.h) may still call into the guard, which is then left. */
	if (sock_close(ev->sock))
		ipc_guard_free(ev->guard);
	pthread_cond_destroy(&ev->drained);
	pthread_cond_destroy(&ev->wake);
	pthread_mutex_destroy(&ev->lock);
	jm_buf_fini(&ev->queued);
	jm_buf_fini(&ev->sending);
	free(ev->marks);
	free(ev);
}
