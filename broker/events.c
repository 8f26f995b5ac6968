/* Event publishing (see events.h).
 *
 * The queue is an array of events as they were pushed (their text copied
 * into one byte buffer beside it), under ev->lock: a push copies the event
 * and nothing else, on the core's path, with no allocation per event. The
 * publisher thread takes every event from the front whose lsn is durable
 * and, off every lock, formats their topics, encodes each once with all of
 * them as a frame item (proto/event_frame.h), and sends up to
 * EVENTS_FRAME_BYTES of items as one frame: one NNG message per publish
 * round, not one per event and topic, and while events keep coming at
 * most one round per EVENTS_ROUND_US. The SSE listener is handed the
 * events as they are, not decoded again. The push that starts a round
 * (into an empty queue) asks the journal to call events_durable_cb once
 * its lsn is durable; the publisher sleeps on the condition variable until
 * that callback wakes it, and asks again itself for what remains queued
 * after a round; in a burst it also sleeps until the round's time. No
 * polling. */
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
#include "decimal.h"
#include "event_frame.h"
#include "ipc_guard.h"
#include "listen_ports.h"
#include "log.h"
#include "pipes.h"
#include "sock_close.h"
#include "tls.h"

#define EVENTS_SEND_BUFFER 1024
#define EVENTS_CLOSE_DRAIN_S 3
/* A frame stops taking events past this (an event is at most ~1.5 KiB);
 * the SDK receives up to 4 times as much (client/subscribe.c). */
#define EVENTS_FRAME_BYTES (60u * 1024)
/* Publish rounds: at most one per EVENTS_ROUND_US while events keep
 * coming, unless this many (about three frames) are queued. Each round
 * costs a wake-up and a TCP send per subscriber at both ends whatever it
 * carries; a drain syncs every ~300 µs. One round per 3 ms took a reading
 * subscriber's cost in a drain from 12-15 % to ~9 % of W2 (medians,
 * docs/performance.md); an event waits at most that long, and one after a
 * quiet spell not at all. */
#define EVENTS_ROUND_US 3000u
#define EVENTS_ROUND_EVENTS 2048u

/* One queued event. Its text (ev.message) is at text_at in the queue's
 * texts; ev.message.ptr is set only once the publisher has it. */
struct queued_event {
	uint64_t lsn;
	struct proto_event ev;
	size_t text_at;
	bool job_topics; /* job/, queue/ and batch/ (if any) of ev's fields */
	char topic[80];  /* otherwise its one topic */
};

/* Queued events and their texts. */
struct event_queue {
	struct queued_event *events;
	uint32_t count, cap;
	struct jm_buf texts;
};

struct events {
	nng_socket sock;
	nng_listener listener;
	struct ipc_guard *guard; /* ipc:// only: relistens when NNG stops accepting */
	struct pipes *pipes;     /* the cap on subscribers (--max-connections) */
	struct journal *journal;
	char url[512];        /* as advertised to clients */
	char listen_url[512]; /* as listened on */

	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_cond_t drained; /* signalled when the queue empties */
	pthread_t thread;
	bool thread_running;
	bool stopping;
	struct event_queue queued; /* oldest first */
	struct event_queue taken;  /* the publisher's: what it took off queued */
	struct jm_buf frame;       /* the publisher's: the frame it encodes */
	uint64_t waiting_for_lsn;  /* a durable callback is registered for it */
	uint64_t last_round_us;    /* the publisher's: when it last took events */
	uint64_t dropped;
	/* Connected subscribers. With none, events are not even encoded: a
	 * subscriber that connects later reads state before trusting events. */
	_Atomic uint32_t subscribers;
	events_listener_fn tap; /* see events_set_listener */
	void *tap_arg;
	_Atomic bool tap_set;    /* tap != NULL, read without the lock */
	_Atomic bool tap_wanted; /* see events_listener_wanted */
};

/* ADD_PRE and REM_POST: a probe of the guard never counts; a subscriber
 * over the cap is closed before it is added (pipes.h). */
static void subscriber_cb(nng_pipe pipe, nng_pipe_ev ev_type, void *arg)
{
	struct events *ev = arg;
	if (ev_type == NNG_PIPE_EV_ADD_PRE) {
		if (!ipc_guard_claim(ev->guard, pipe) && pipes_added(ev->pipes, pipe))
			atomic_fetch_add(&ev->subscribers, 1);
	} else if (!ipc_guard_release(ev->guard, pipe) && pipes_removed(ev->pipes, pipe)) {
		atomic_fetch_sub(&ev->subscribers, 1);
	}
}

static void events_durable_cb(void *arg, int status)
{
	struct events *ev = arg;
	pthread_mutex_lock(&ev->lock);
	ev->waiting_for_lsn = 0;
	pthread_cond_signal(&ev->wake);
	pthread_mutex_unlock(&ev->lock);
}

/* Sends what ev->frame holds (items after the frame's mark) as one frame
 * and starts the next. */
static void send_frame(struct events *ev)
{
	if (ev->frame.len > sizeof PROTO_EVENT_FRAME_TOPIC) {
		nng_msg *msg;
		if (nng_msg_alloc(&msg, ev->frame.len) == 0) {
			memcpy(nng_msg_body(msg), ev->frame.data, ev->frame.len);
			if (nng_sendmsg(ev->sock, msg, NNG_FLAG_NONBLOCK) != 0)
				nng_msg_free(msg);
		}
	}
	jm_buf_reset(&ev->frame);
	(void)proto_event_frame_start(&ev->frame);
}

/* Writes prefix then id in decimal, NUL-terminated, into out (room for
 * the prefix and 21 bytes): what snprintf("%s%llu") writes, for a
 * fraction of its cost on the publisher's path (two or three topics per
 * event). */
static void format_id_topic(char *out, const char *prefix, uint64_t id)
{
	size_t at = strlen(prefix);
	memcpy(out, prefix, at);
	at += jm_decimal_u64(out + at, id);
	out[at] = '\0';
}

/* Publishes the events the publisher took (off every lock): to the
 * listener, and to subscribers in frames. */
static void publish(struct events *ev)
{
	bool tap = atomic_load(&ev->tap_set) && atomic_load(&ev->tap_wanted);
	bool subscribed = atomic_load(&ev->subscribers) > 0;
	jm_buf_reset(&ev->frame);
	(void)proto_event_frame_start(&ev->frame);
	for (uint32_t i = 0; i < ev->taken.count; i++) {
		struct queued_event *q = &ev->taken.events[i];
		if (q->ev.message.len)
			q->ev.message.ptr = ev->taken.texts.data + q->text_at;
		char job_topic[32], queue_topic[PROTO_NAME_MAX + 8], batch_topic[32];
		const char *topics[3] = {q->topic};
		uint32_t count = 1;
		if (q->job_topics) {
			format_id_topic(job_topic, "job/", q->ev.job_id);
			size_t queue_len = strnlen(q->ev.queue, PROTO_NAME_MAX);
			memcpy(queue_topic, "queue/", 6);
			memcpy(queue_topic + 6, q->ev.queue, queue_len);
			queue_topic[6 + queue_len] = '\0';
			topics[0] = job_topic;
			topics[1] = queue_topic;
			count = 2;
			if (q->ev.batch_id) {
				format_id_topic(batch_topic, "batch/", q->ev.batch_id);
				topics[count++] = batch_topic;
			}
		}
		if (tap)
			for (uint32_t t = 0; t < count; t++)
				ev->tap(ev->tap_arg, topics[t], &q->ev);
		if (!subscribed)
			continue;
		int rc = proto_event_item_encode(&q->ev, topics, count, &ev->frame);
		if (rc != 0 && ev->dropped++ % 1000 == 0)
			jm_warn("events: dropped an event for %s: %s", topics[0], jm_strerror(rc));
		if (ev->frame.len >= EVENTS_FRAME_BYTES)
			send_frame(ev);
	}
	if (subscribed)
		send_frame(ev);
}

/* Moves the first count events of ev->queued into ev->taken (under the
 * lock). The two queues swap, and the events past count (not yet durable:
 * in a drain, those pushed since the last sync, a tenth of a round) move
 * back into the emptied one. Copying the durable front out and moving the
 * rest down instead was ~18 % of the publisher's time in a drain. */
static void take_events(struct events *ev, uint32_t count)
{
	struct event_queue swap = ev->taken;
	ev->taken = ev->queued;
	ev->queued = swap;
	struct event_queue *from = &ev->taken, *to = &ev->queued;
	to->count = 0;
	jm_buf_reset(&to->texts);
	uint32_t rest = from->count - count;
	if (rest == 0)
		return;
	size_t texts_at = from->events[count].text_at;
	if (to->cap < rest) {
		struct queued_event *events = realloc(to->events, rest * sizeof *events);
		if (events == NULL)
			rest = 0; /* out of memory: these are dropped */
		else {
			to->events = events;
			to->cap = rest;
		}
	}
	size_t texts_len = from->texts.len - texts_at;
	if (rest && texts_len &&
	    jm_buf_append(&to->texts, from->texts.data + texts_at, texts_len) != 0)
		rest = 0;
	if (rest) {
		memcpy(to->events, &from->events[count], rest * sizeof *to->events);
		to->count = rest;
		for (uint32_t i = 0; i < rest; i++)
			to->events[i].text_at -= texts_at;
	} else if (ev->dropped++ % 1000 == 0) {
		jm_warn("events: dropped %u events: out of memory", from->count - count);
	}
	from->count = count;
	from->texts.len = texts_at;
}

static void *publisher_main(void *arg)
{
	struct events *ev = arg;
	pthread_mutex_lock(&ev->lock);
	for (;;) {
		if (ev->queued.count == 0) {
			pthread_cond_broadcast(&ev->drained);
			if (ev->stopping)
				break;
			pthread_cond_wait(&ev->wake, &ev->lock);
			continue;
		}
		uint64_t lsn = ev->queued.events[0].lsn;
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
			ev->queued.count = 0;
			jm_buf_reset(&ev->queued.texts);
			continue;
		}
		/* At most one round per EVENTS_ROUND_US (see there). */
		uint64_t now = jm_mono_us();
		if (!ev->stopping && now < ev->last_round_us + EVENTS_ROUND_US &&
		    ev->queued.count < EVENTS_ROUND_EVENTS) {
			struct timespec until = jm_timespec_after_us(
			    CLOCK_MONOTONIC, ev->last_round_us + EVENTS_ROUND_US - now);
			pthread_cond_timedwait(&ev->wake, &ev->lock, &until);
			continue;
		}
		ev->last_round_us = now;
		/* Every durable event from the front. */
		uint32_t count = 1;
		while (count < ev->queued.count && ev->queued.events[count].lsn <= durable)
			count++;
		take_events(ev, count);
		pthread_mutex_unlock(&ev->lock);
		publish(ev);
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
		const char *name;
		size_t name_len;
		long port;
		listen_hostport_split(host, (size_t)(path - host), &name, &name_len, &port);
		if (port >= 0 && port < 65535) {
			/* A port was found: it follows the span's last colon. */
			const char *colon = path;
			while (*--colon != ':')
				;
			snprintf(out, out_size, "%.*s:%ld%s", (int)(colon - url), url,
			         port ? port + 1 : 0, path);
			return;
		}
	}
	snprintf(out, out_size, "%s.events", url);
}

int events_open(struct events **out, const char *url, struct journal *journal, struct jm_err *err)
{
	return events_open_secure(out, url, journal, NULL, 0, err);
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
                       const struct jm_tls *tls, uint32_t max_subscribers, struct jm_err *err)
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
	jm_buf_init(&ev->queued.texts);
	jm_buf_init(&ev->taken.texts);
	jm_buf_init(&ev->frame);
	pthread_mutex_init(&ev->lock, NULL);
	/* The publisher's timed waits measure CLOCK_MONOTONIC. */
	jm_cond_init_monotonic(&ev->wake);
	pthread_cond_init(&ev->drained, NULL);
	int rv = pipes_open(&ev->pipes, max_subscribers, 0, "events") != 0
	             ? NNG_ENOMEM
	             : nng_pub0_open(&ev->sock);
	if (rv == 0) {
		nng_socket_set_int(ev->sock, NNG_OPT_SENDBUF, EVENTS_SEND_BUFFER);
		nng_pipe_notify(ev->sock, NNG_PIPE_EV_ADD_PRE, subscriber_cb, ev);
		nng_pipe_notify(ev->sock, NNG_PIPE_EV_REM_POST, subscriber_cb, ev);
		rv = events_listen(ev, url, tls_config);
		if (rv != 0)
			nng_close(ev->sock);
	}
	if (tls_config)
		nng_tls_config_free(tls_config); /* the listener holds its own reference */
	if (rv != 0) {
		pipes_close(ev->pipes);
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
		pipes_close(ev->pipes);
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

/* Appends a copy of event to the queue (under the lock) and returns it, or
 * NULL when out of memory (the event is dropped, logged). */
static struct queued_event *queue_event(struct events *ev, const struct proto_event *event,
                                        uint64_t lsn)
{
	struct event_queue *q = &ev->queued;
	if (q->count == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 256;
		struct queued_event *events = realloc(q->events, cap * sizeof *events);
		if (events == NULL)
			goto fail_dropped;
		q->events = events;
		q->cap = cap;
	}
	struct queued_event *e = &q->events[q->count];
	e->text_at = q->texts.len;
	if (event->message.len &&
	    jm_buf_append(&q->texts, event->message.ptr, event->message.len) != 0)
		goto fail_dropped;
	e->lsn = lsn;
	e->ev = *event;
	e->ev.message.ptr = NULL;
	q->count++;
	return e;

fail_dropped:
	if (ev->dropped++ % 1000 == 0)
		jm_warn("events: dropped an event: out of memory");
	return NULL;
}

/* Under ev->lock, after queue_event put an event at lsn: is it the front
 * of a new round (the queue was empty)? Then the pusher asks the journal,
 * after unlocking, to wake the publisher once that lsn is durable
 * (ask_durable): only an event into an empty queue changes what the
 * publisher waits for, and it wakes when there is something to publish,
 * not once to register that callback itself and once more when it fires
 * (waking it for each event cost more than the event). */
static bool starts_round(struct events *ev, uint64_t lsn)
{
	if (ev->queued.count != 1)
		return false;
	ev->waiting_for_lsn = lsn;
	return true;
}

/* Not under ev->lock (events_durable_cb may run at once, on this thread). */
static void ask_durable(struct events *ev, uint64_t lsn)
{
	journal_when_durable(ev->journal, lsn, events_durable_cb, ev);
}

void events_push_job(struct events *ev, const struct proto_event *event, uint64_t lsn)
{
	if (ev == NULL || !listened_to(ev))
		return;
	bool first = false;
	pthread_mutex_lock(&ev->lock);
	struct queued_event *e = queue_event(ev, event, lsn);
	if (e) {
		e->job_topics = true;
		first = starts_round(ev, lsn);
	}
	pthread_mutex_unlock(&ev->lock);
	if (first)
		ask_durable(ev, lsn);
}

void events_push(struct events *ev, const char *topic, const struct proto_event *event,
                 uint64_t lsn)
{
	if (ev == NULL || !listened_to(ev))
		return;
	size_t topic_len = strlen(topic);
	struct queued_event *e = NULL;
	bool first = false;
	pthread_mutex_lock(&ev->lock);
	if (topic_len > 0 && topic_len < sizeof e->topic)
		e = queue_event(ev, event, lsn);
	else if (ev->dropped++ % 1000 == 0)
		jm_warn("events: dropped an event: topic of %zu bytes (1 to %zu)", topic_len,
		        sizeof e->topic - 1);
	if (e) {
		e->job_topics = false;
		memcpy(e->topic, topic, topic_len + 1);
		first = starts_round(ev, lsn);
	}
	pthread_mutex_unlock(&ev->lock);
	if (first)
		ask_durable(ev, lsn);
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
	while (ev->queued.count != 0) {
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
	if (sock_close(ev->sock)) {
		ipc_guard_free(ev->guard);
		pipes_close(ev->pipes);
	}
	pthread_cond_destroy(&ev->drained);
	pthread_cond_destroy(&ev->wake);
	pthread_mutex_destroy(&ev->lock);
	jm_buf_fini(&ev->queued.texts);
	jm_buf_fini(&ev->taken.texts);
	jm_buf_fini(&ev->frame);
	free(ev->queued.events);
	free(ev->taken.events);
	free(ev);
}
