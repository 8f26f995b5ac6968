/* The SSE hub (see http_sse.h).
 *
 * Fan-out: each event is formatted once (the ring keeps it for resumes)
 * and appended once to the shared stream (sse_stream.h) of every feed
 * whose filter wants it; a feed is what all clients with one filter (the
 * same topics, the same access) read. A client holds a cursor into its
 * feed's stream and writes from the stream's chunks with an iovec, after
 * its own bytes (the response head, a resume's catch-up, a snapshot). So
 * 100 clients watching one batch cost one copy of each event plus one
 * write per client per round, not 100 copies (issue 12).
 *
 * Backpressure: a client's backlog is its own unsent bytes plus its
 * feed's bytes past its cursor. When a feed starts a chunk, its clients
 * past HTTP_SSE_CLIENT_BUFFER are dropped to a snapshot: the cursor skips
 * to the end (sse_stream_skip), so the stream holds at most about the cap
 * and a chunk behind its slowest client, whatever the client does.
 *
 * Locking: hub->lock guards the ring, the feeds, their streams, the
 * clients and their buffers and flags. The connection is called under it
 * only to start a write (http_conn_stream_sendv completes on NNG's threads,
 * never inline); http_conn_stream_release, which waits, runs on the hub
 * thread without it. Lock order: hub->lock, then the connection's. A
 * write reads the stream's bytes off the lock: appends never move them.
 *
 * A client is in exactly one of: its feed's clients (live), hub->reap
 * (dead, waiting for the hub thread to release its connection, take its
 * cursor off the feed and free it). Its write callback only gives back
 * its write's bytes on a dead client. A feed lives while a cursor is on
 * it. */
#include "http_sse.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth.h"
#include "buf.h"
#include "decimal.h"
#include "clock.h"
#include "http_call.h"
#include "http_conn.h"
#include "http_json.h"
#include "log.h"
#include "sse_stream.h"

#define TOPIC_MAX (PROTO_NAME_MAX + 16)
#define EVENT_TOPICS_MAX 3

/* A ring slot: the event as published, and its SSE frame once a feed or a
 * resume has wanted it. Formatting is most of what an event costs the hub,
 * and with no client whose filter takes it (clients watching one job or
 * queue while others drain, or none for a minute after the last left) an
 * event is kept but never formatted. */
struct frame {
	uint64_t seq;
	char topics[EVENT_TOPICS_MAX][TOPIC_MAX];
	uint32_t topics_count;
	proto_name queue;      /* the job's queue; "" for batch and worker events */
	struct proto_event ev; /* ev.message.ptr is message */
	char *message;         /* malloc'd (message_cap bytes, reused) */
	size_t message_cap;
	char *text; /* the whole SSE frame, malloc'd (cap bytes, reused) */
	size_t len; /* 0: not formatted yet */
	size_t cap;
};

/* What a client watches. Clients whose filters are equal share a feed. */
struct sse_filter {
	char topics[HTTP_SSE_TOPICS_MAX][TOPIC_MAX]; /* sorted, each once */
	uint32_t topics_count;
	/* The event kinds it takes (?kind=), a bit per enum proto_event_kind;
	 * 0: every kind. A wait for a batch asks for its batch events only,
	 * not the two or three of each of its jobs. */
	uint32_t kinds;
	/* With --auth and a token that is not admin: only job events of the
	 * token's queues (batch and worker events name no queue). */
	bool restricted;
	struct auth_identity identity; /* its patterns, when restricted */
};

/* The frames of one filter, as one byte stream its clients read at their
 * own pace (sse_stream.h). It lives while a client's cursor is on it. */
struct sse_feed {
	struct sse_filter filter;
	struct sse_stream stream;
	struct sse_client *clients; /* live ones */
	bool fresh;                 /* appended to since the hub thread's last kick */
	struct sse_feed *next;
};

struct sse_client {
	struct http_sse *hub;
	struct http_conn *conn;
	struct sse_feed *feed;
	struct sse_cursor cursor; /* into feed->stream, attached until reaped */
	/* Its own bytes, sent before the stream's from the cursor on: the
	 * response head, a resume's catch-up, a snapshot. A lag never drops the
	 * first own_keep bytes (the head, until it is sent). */
	struct jm_buf own;
	size_t own_keep;
	uint64_t own_frames;
	struct jm_buf own_out;   /* own bytes being written */
	struct sse_send sending; /* stream bytes being written */
	bool busy;
	bool dead;
	struct sse_client *next; /* in feed->clients, or hub->reap */
};

struct http_sse {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool stopping;
	struct frame *ring; /* HTTP_SSE_RING, frame seq at [seq % RING] */
	uint64_t first_seq; /* boot's first */
	uint64_t ring_start;
	uint64_t next_seq;
	struct sse_feed *feeds;
	struct sse_client *reap;
	uint64_t clients_count;
	uint64_t dropped; /* frames skipped for lagging clients (the metric) */
	uint64_t lost;    /* events not kept for want of memory */
	uint64_t last_ping_us;
	bool kick_due; /* events were queued: the hub thread starts writes */
	/* Fed: the events listener is on (events_listener_wanted). It is on
	 * while a client is connected and HTTP_SSE_IDLE_FEED_MS after the last
	 * one left, so a reconnecting client can still resume; with nobody
	 * watching, events are not encoded for this hub at all. Events skipped
	 * while off are a gap: a resume needs an id at or past resume_floor,
	 * the first seq after the hub was fed again, else it gets a snapshot. */
	struct events *ev;
	bool fed;
	uint64_t resume_floor;
	uint64_t idle_since_us;
};

static const char stream_head[] = "HTTP/1.1 200 OK\r\n"
                                  "Content-Type: text/event-stream\r\n"
                                  "Cache-Control: no-store\r\n"
                                  "Connection: keep-alive\r\n"
                                  "X-Accel-Buffering: no\r\n"
                                  "\r\n"
                                  "retry: 1000\n\n";

/* ---- writing ----------------------------------------------------------- */

static void client_kill(struct http_sse *hub, struct sse_client *c);

/* Starts writing c's own bytes and then its feed's from its cursor, in one
 * write, or kills c when its connection is closed already (callers
 * walking a feed's clients take next first). */
static void client_kick(struct sse_client *c)
{
	if (c->busy || c->dead)
		return;
	nng_iov iov[1 + SSE_STREAM_IOV_MAX];
	unsigned count = 0;
	if (c->own.len) {
		struct jm_buf t = c->own_out;
		c->own_out = c->own;
		c->own = t;
		jm_buf_reset(&c->own);
		c->own_keep = 0;
		c->own_frames = 0;
		iov[count++] = (nng_iov){.iov_buf = c->own_out.data, .iov_len = c->own_out.len};
	}
	if (sse_stream_take(&c->feed->stream, &c->cursor, &c->sending, SSE_STREAM_IOV_MAX)) {
		memcpy(iov + count, c->sending.iov, c->sending.count * sizeof *iov);
		count += c->sending.count;
	}
	if (count == 0)
		return;
	if (http_conn_stream_sendv(c->conn, iov, count) != 0) {
		jm_buf_reset(&c->own_out);
		sse_stream_sent(&c->feed->stream, &c->sending);
		client_kill(c->hub, c);
		return;
	}
	c->busy = true;
}

/* Moves c from its feed's live list to the reap list; the hub thread
 * frees it. */
static void client_kill(struct http_sse *hub, struct sse_client *c)
{
	if (c->dead)
		return;
	c->dead = true;
	for (struct sse_client **p = &c->feed->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	hub->clients_count--;
	if (hub->clients_count == 0)
		hub->idle_since_us = jm_wall_us();
	c->next = hub->reap;
	hub->reap = c;
	pthread_cond_signal(&hub->wake);
}

static void client_write_cb(void *arg, int rv)
{
	struct sse_client *c = arg;
	struct http_sse *hub = c->hub;
	pthread_mutex_lock(&hub->lock);
	c->busy = false;
	jm_buf_reset(&c->own_out);
	sse_stream_sent(&c->feed->stream, &c->sending);
	if (c->dead)
		; /* the hub thread reaps it */
	else if (rv != 0)
		client_kill(hub, c); /* went away: found by this write or a ping */
	else
		client_kick(c);
	pthread_mutex_unlock(&hub->lock);
}

static void append_snapshot(struct http_sse *hub, struct sse_client *c, const char *reason)
{
	char text[256];
	uint64_t last = hub->next_seq - 1;
	int len = snprintf(text, sizeof text,
	                   "id: %llu\nevent: snapshot\ndata: {\"reason\":\"%s\",\"last_event_id\":"
	                   "\"%llu\"}\n\n",
	                   (unsigned long long)last, reason, (unsigned long long)last);
	jm_buf_append(&c->own, text, (size_t)len);
	c->own_frames++;
}

/* Drops what c has not started writing (its own bytes but the head, its
 * feed's from its cursor to the end) for a snapshot: the client re-reads
 * state, then follows the feed from here. Writes in flight go out whole. */
static void client_lag(struct http_sse *hub, struct sse_client *c)
{
	hub->dropped += c->own_frames + sse_stream_skip(&c->feed->stream, &c->cursor);
	c->own.len = c->own_keep;
	c->own_frames = 0;
	append_snapshot(hub, c, "lagged");
}

/* Bytes c has not started writing. */
static uint64_t client_backlog(const struct sse_client *c)
{
	return c->own.len + sse_stream_backlog(&c->feed->stream, &c->cursor);
}

static bool filter_wants(const struct sse_filter *w, const struct frame *f)
{
	if (w->kinds != 0 && (f->ev.kind >= 32 || (w->kinds & (1u << f->ev.kind)) == 0))
		return false;
	if (w->restricted && (f->queue[0] == '\0' || !auth_queue_visible(&w->identity, f->queue)))
		return false;
	if (w->topics_count == 0)
		return true;
	for (uint32_t i = 0; i < w->topics_count; i++) {
		size_t len = strlen(w->topics[i]);
		bool prefix = w->topics[i][len - 1] == '/';
		for (uint32_t k = 0; k < f->topics_count; k++)
			if (prefix ? strncmp(f->topics[k], w->topics[i], len) == 0
			           : strcmp(f->topics[k], w->topics[i]) == 0)
				return true;
	}
	return false;
}

static bool filter_equal(const struct sse_filter *a, const struct sse_filter *b)
{
	if (a->topics_count != b->topics_count || a->kinds != b->kinds ||
	    a->restricted != b->restricted)
		return false;
	for (uint32_t i = 0; i < a->topics_count; i++)
		if (strcmp(a->topics[i], b->topics[i]) != 0)
			return false;
	if (!a->restricted)
		return true;
	if (a->identity.patterns_count != b->identity.patterns_count)
		return false;
	for (uint32_t i = 0; i < a->identity.patterns_count; i++)
		if (strcmp(a->identity.patterns[i], b->identity.patterns[i]) != 0)
			return false;
	return true;
}

/* Appends text (a frame, or a comment) to feed's stream. Each new chunk is
 * the moment to look for clients whose backlog passed the cap: they are
 * dropped to a snapshot, so a slow client never holds more than about the
 * cap and a chunk of the stream. */
static void feed_append(struct http_sse *hub, struct sse_feed *feed, const char *text, size_t len,
                        bool frame)
{
	bool chunk_started;
	if (sse_stream_append(&feed->stream, text, len, frame, &chunk_started) != 0) {
		/* Out of memory: every client of the feed misses it; say so. */
		for (struct sse_client *c = feed->clients; c; c = c->next)
			client_lag(hub, c);
		return;
	}
	feed->fresh = true;
	if (chunk_started)
		for (struct sse_client *c = feed->clients; c; c = c->next)
			if (client_backlog(c) > HTTP_SSE_CLIENT_BUFFER)
				client_lag(hub, c);
}

/* Frees the feeds no client reads any more. */
static void feeds_trim(struct http_sse *hub)
{
	for (struct sse_feed **p = &hub->feeds; *p;) {
		struct sse_feed *feed = *p;
		if (feed->stream.cursors == 0 && feed->clients == NULL) {
			*p = feed->next;
			sse_stream_fini(&feed->stream);
			free(feed);
		} else {
			p = &feed->next;
		}
	}
}

/* ---- the event tap ------------------------------------------------------ */

/* A job's event is pushed once per topic; take it once, under the topic
 * named for its kind, and derive the others from its fields. */
static bool is_primary(const char *topic, const struct proto_event *ev)
{
	switch (ev->kind) {
	case PROTO_EVENT_JOB_STATE:
	case PROTO_EVENT_JOB_PROGRESS:
		return strncmp(topic, "job/", 4) == 0;
	case PROTO_EVENT_BATCH:
		return strncmp(topic, "batch/", 6) == 0;
	case PROTO_EVENT_WORKER_JOINED:
	case PROTO_EVENT_WORKER_LOST:
		return strncmp(topic, "worker/", 7) == 0;
	default:
		return false;
	}
}

static char *append(char *at, const void *bytes, size_t len)
{
	memcpy(at, bytes, len);
	return at + len;
}

/* prefix and id, NUL-terminated, into out (TOPIC_MAX bytes). */
static void topic_of_id(char *out, const char *prefix, uint64_t id)
{
	size_t len = strlen(prefix);
	memcpy(out, prefix, len);
	len += jm_decimal_u64(out + len, id);
	out[len] = '\0';
}

/* Grows *buf (of *cap bytes) to at least len; false when out of memory
 * (the buffer is left as it was). */
static bool slot_buffer(char **buf, size_t *cap, size_t len)
{
	if (*cap >= len)
		return true;
	char *bigger = malloc(len);
	if (bigger == NULL)
		return false;
	free(*buf);
	*buf = bigger;
	*cap = len;
	return true;
}

/* f's SSE frame, "id: SEQ\nevent: KIND\ndata: JSON\n\n", formatted the
 * first time it is wanted (under the hub's lock); false when out of
 * memory. */
static bool frame_format(struct frame *f)
{
	if (f->len != 0)
		return true;
	const char *kind = "job_state";
	char fast[512];
	char *json = NULL;
	if (http_json_job_state_text(&f->ev, fast, sizeof fast) != 0) {
		json = fast;
	} else {
		json_t *data = http_json_event(&f->ev, &kind);
		json = data ? http_json_dump(data, NULL) : NULL;
		json_decref(data);
	}
	if (json == NULL)
		return false;
	char seq_text[24];
	size_t seq_len = jm_decimal_u64(seq_text, f->seq);
	size_t json_len = strlen(json), kind_len = strlen(kind);
	size_t len = 4 + seq_len + 8 + kind_len + 7 + json_len + 2;
	bool ok = slot_buffer(&f->text, &f->cap, len);
	if (ok) {
		char *at = f->text;
		at = append(at, "id: ", 4);
		at = append(at, seq_text, seq_len);
		at = append(at, "\nevent: ", 8);
		at = append(at, kind, kind_len);
		at = append(at, "\ndata: ", 7);
		at = append(at, json, json_len);
		at = append(at, "\n\n", 2);
		f->len = (size_t)(at - f->text);
	}
	if (json != fast)
		free(json);
	return ok;
}

/* An event the hub could not keep: the sequence still moves on, so a
 * resume across it sees the gap and gets a snapshot. Under the lock. */
static void event_lost(struct http_sse *hub)
{
	uint64_t seq = hub->next_seq++;
	hub->ring_start = hub->next_seq;
	if (hub->lost++ % 1000 == 0)
		jm_warn("http events: out of memory: event %llu lost (%llu so far); resumes "
		        "across it get a snapshot",
		        (unsigned long long)seq, (unsigned long long)hub->lost);
}

static void event_cb(void *arg, const char *topic, const struct proto_event *ev)
{
	struct http_sse *hub = arg;
	if (!is_primary(topic, ev))
		return;
	pthread_mutex_lock(&hub->lock);
	struct frame *slot = &hub->ring[hub->next_seq % HTTP_SSE_RING];
	if (!slot_buffer(&slot->message, &slot->message_cap, ev->message.len)) {
		event_lost(hub);
		pthread_mutex_unlock(&hub->lock);
		return;
	}
	slot->seq = hub->next_seq++;
	if (hub->next_seq - hub->ring_start > HTTP_SSE_RING)
		hub->ring_start = hub->next_seq - HTTP_SSE_RING;
	slot->ev = *ev;
	if (ev->message.len)
		memcpy(slot->message, ev->message.ptr, ev->message.len);
	slot->ev.message.ptr = (const uint8_t *)slot->message;
	slot->len = 0;
	slot->topics_count = 0;
	slot->queue[0] = '\0';
	switch (ev->kind) {
	case PROTO_EVENT_JOB_STATE:
	case PROTO_EVENT_JOB_PROGRESS:
		topic_of_id(slot->topics[slot->topics_count++], "job/", ev->job_id);
		if (ev->queue[0])
			snprintf(slot->topics[slot->topics_count++], TOPIC_MAX, "queue/%s",
			         ev->queue);
		memcpy(slot->queue, ev->queue, sizeof slot->queue);
		if (ev->batch_id)
			topic_of_id(slot->topics[slot->topics_count++], "batch/", ev->batch_id);
		break;
	case PROTO_EVENT_BATCH:
		topic_of_id(slot->topics[slot->topics_count++], "batch/", ev->batch_id);
		break;
	default:
		snprintf(slot->topics[slot->topics_count++], TOPIC_MAX, "worker/%s", ev->worker_id);
		break;
	}
	/* Once per feed, not per client: its clients read the same bytes. */
	bool wanted = false;
	for (struct sse_feed *feed = hub->feeds; feed; feed = feed->next) {
		if (!feed->clients || !filter_wants(&feed->filter, slot))
			continue;
		if (!frame_format(slot)) {
			/* Out of memory: every client of the feed misses it; say so. */
			for (struct sse_client *c = feed->clients; c; c = c->next)
				client_lag(hub, c);
			continue;
		}
		feed_append(hub, feed, slot->text, slot->len, true);
		wanted = true;
	}
	/* Writes start on the hub thread, so a burst of events leaves in a
	 * few writes per client rather than one each (100 clients watching a
	 * busy batch halved its drain when every event was its own write). */
	if (wanted && !hub->kick_due) {
		hub->kick_due = true;
		pthread_cond_signal(&hub->wake);
	}
	pthread_mutex_unlock(&hub->lock);
}

/* ---- the hub thread: pings and reaping ----------------------------------- */

/* Frees the clients that left: their connections are released off the
 * lock (that waits for their write callbacks), then their cursors come
 * off their feeds under it. */
static void reap_all(struct http_sse *hub)
{
	struct sse_client *list = hub->reap;
	hub->reap = NULL;
	if (list == NULL)
		return;
	pthread_mutex_unlock(&hub->lock);
	for (struct sse_client *c = list; c; c = c->next)
		http_conn_stream_release(c->conn); /* no write callback after */
	pthread_mutex_lock(&hub->lock);
	while (list) {
		struct sse_client *next = list->next;
		sse_stream_sent(&list->feed->stream, &list->sending);
		sse_stream_detach(&list->feed->stream, &list->cursor);
		jm_buf_fini(&list->own);
		jm_buf_fini(&list->own_out);
		free(list);
		list = next;
	}
	feeds_trim(hub);
}

/* Starts writes for the clients of every feed that got bytes. */
static void kick_fresh(struct http_sse *hub)
{
	for (struct sse_feed *feed = hub->feeds; feed; feed = feed->next) {
		if (!feed->fresh)
			continue;
		feed->fresh = false;
		for (struct sse_client *c = feed->clients, *next; c; c = next) {
			next = c->next;
			client_kick(c);
		}
	}
}

static void *hub_main(void *arg)
{
	struct http_sse *hub = arg;
	pthread_mutex_lock(&hub->lock);
	for (;;) {
		reap_all(hub);
		if (hub->stopping && hub->clients_count == 0 && hub->reap == NULL)
			break;
		if (hub->kick_due) {
			hub->kick_due = false;
			kick_fresh(hub);
		}
		uint64_t now = jm_wall_us();
		if (hub->fed && hub->clients_count == 0 &&
		    now - hub->idle_since_us >= HTTP_SSE_IDLE_FEED_MS * 1000ull) {
			hub->fed = false;
			if (hub->ev)
				events_listener_wanted(hub->ev, false);
		}
		if (now - hub->last_ping_us >= HTTP_SSE_PING_MS * 1000ull) {
			hub->last_ping_us = now;
			for (struct sse_feed *feed = hub->feeds; feed; feed = feed->next)
				if (feed->clients)
					feed_append(hub, feed, ": ping\n\n", 8, false);
			kick_fresh(hub);
		}
		if (hub->reap || hub->kick_due)
			continue;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += HTTP_SSE_PING_MS / 1000;
		pthread_cond_timedwait(&hub->wake, &hub->lock, &until);
	}
	pthread_mutex_unlock(&hub->lock);
	return NULL;
}

int http_sse_open(struct http_sse **out, struct events *ev, struct jm_err *err)
{
	struct http_sse *hub = calloc(1, sizeof *hub);
	struct frame *ring = calloc(HTTP_SSE_RING, sizeof *ring);
	if (hub == NULL || ring == NULL) {
		free(hub);
		free(ring);
		return jm_err_set(err, JM_ENOMEM, "http events: out of memory");
	}
	hub->ring = ring;
	/* Above every id an earlier boot handed out (see http_sse.h). */
	hub->first_seq = jm_wall_us();
	hub->next_seq = hub->ring_start = hub->first_seq;
	hub->last_ping_us = jm_wall_us();
	pthread_mutex_init(&hub->lock, NULL);
	pthread_cond_init(&hub->wake, NULL);
	if (pthread_create(&hub->thread, NULL, hub_main, hub) != 0) {
		pthread_cond_destroy(&hub->wake);
		pthread_mutex_destroy(&hub->lock);
		free(ring);
		free(hub);
		return jm_err_set(err, JM_ENOMEM, "http events: cannot start the hub thread");
	}
	hub->ev = ev;
	if (ev)
		events_set_listener(ev, event_cb, hub);
	*out = hub;
	return 0;
}

void http_sse_close(struct http_sse *hub)
{
	if (hub == NULL)
		return;
	pthread_mutex_lock(&hub->lock);
	hub->stopping = true;
	for (struct sse_feed *feed = hub->feeds; feed; feed = feed->next)
		while (feed->clients)
			client_kill(hub, feed->clients);
	pthread_cond_signal(&hub->wake);
	pthread_mutex_unlock(&hub->lock);
	pthread_join(hub->thread, NULL);
}

void http_sse_free(struct http_sse *hub)
{
	if (hub == NULL)
		return;
	for (uint32_t i = 0; i < HTTP_SSE_RING; i++) {
		free(hub->ring[i].text);
		free(hub->ring[i].message);
	}
	free(hub->ring);
	feeds_trim(hub); /* every client was reaped: frees them all */
	pthread_cond_destroy(&hub->wake);
	pthread_mutex_destroy(&hub->lock);
	free(hub);
}

void http_sse_stats(struct http_sse *hub, struct http_sse_stats *out)
{
	pthread_mutex_lock(&hub->lock);
	out->clients = hub->clients_count;
	out->events = hub->next_seq - hub->first_seq;
	out->dropped = hub->dropped;
	out->last_seq = hub->next_seq - 1;
	pthread_mutex_unlock(&hub->lock);
}

/* ---- GET /v1/events ------------------------------------------------------- */

static bool topic_is_valid(const char *t)
{
	static const char *const kinds[] = {"job/", "batch/", "queue/", "worker/"};
	for (int i = 0; i < 4; i++) {
		size_t len = strlen(kinds[i]);
		if (strncmp(t, kinds[i], len) == 0) {
			const char *rest = t + len;
			return *rest == '\0' || proto_name_is_valid(rest, strlen(rest));
		}
	}
	return false;
}

/* The kinds a stream may ask for, by the names its frames carry
 * ("event: NAME"). */
static const struct {
	const char *name;
	uint32_t kind;
} event_kinds[] = {
    {"job_state", PROTO_EVENT_JOB_STATE},
    {"job_progress", PROTO_EVENT_JOB_PROGRESS},
    {"batch", PROTO_EVENT_BATCH},
    {"worker_joined", PROTO_EVENT_WORKER_JOINED},
    {"worker_lost", PROTO_EVENT_WORKER_LOST},
};

/* The kind named name as a filter bit, or 0 for no such kind. */
static uint32_t kind_bit(const char *name)
{
	for (size_t i = 0; i < sizeof event_kinds / sizeof event_kinds[0]; i++)
		if (strcmp(name, event_kinds[i].name) == 0)
			return 1u << event_kinds[i].kind;
	return 0;
}

static int topic_compare(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Sorts w's topics and drops repeats, so equal filters compare equal. */
static void filter_normalize(struct sse_filter *w)
{
	qsort(w->topics, w->topics_count, sizeof w->topics[0], topic_compare);
	uint32_t kept = 0;
	for (uint32_t i = 0; i < w->topics_count; i++)
		if (kept == 0 || strcmp(w->topics[kept - 1], w->topics[i]) != 0)
			memmove(w->topics[kept++], w->topics[i], sizeof w->topics[0]);
	w->topics_count = kept;
}

/* Gives c the feed of filter w (the one that exists, or spare, made for
 * it), at the feed's end. Under the lock. */
static void client_join(struct http_sse *hub, struct sse_client *c, struct sse_feed **spare)
{
	struct sse_feed *feed = hub->feeds;
	while (feed && !filter_equal(&feed->filter, &(*spare)->filter))
		feed = feed->next;
	if (feed == NULL) {
		feed = *spare;
		*spare = NULL;
		feed->next = hub->feeds;
		hub->feeds = feed;
	}
	c->feed = feed;
	sse_stream_attach(&feed->stream, &c->cursor);
	c->next = feed->clients;
	feed->clients = c;
	hub->clients_count++;
}

static void feed_free(struct sse_feed *feed)
{
	if (feed == NULL)
		return;
	sse_stream_fini(&feed->stream);
	free(feed);
}

void http_api_events(struct http_call *call)
{
	static const char *const allowed[] = {"topic", "kind", "last_event_id", "access_token",
	                                      NULL};
	if (!http_query_only(call, allowed))
		return;
	/* A standby publishes nothing: a stream opened on it would stay
	 * silent, so it is refused like any request, naming the leader. */
	if (http_refuse_on_standby(call))
		return;
	struct http_sse *hub = http_server_sse(call->srv);
	struct sse_client *c = calloc(1, sizeof *c);
	/* The client's filter, in the feed it makes if none has it yet. */
	struct sse_feed *spare = calloc(1, sizeof *spare);
	if (c == NULL || spare == NULL || sse_stream_init(&spare->stream) != 0) {
		free(c);
		free(spare);
		http_reply_error(call, 503, "out_of_memory", "broker out of memory");
		return;
	}
	struct sse_filter *filter = &spare->filter;
	c->hub = hub;
	if (call->req.identity != NULL && call->req.identity->role != AUTH_ROLE_ADMIN) {
		filter->restricted = true;
		filter->identity = *call->req.identity;
	}
	jm_buf_init(&c->own);
	jm_buf_init(&c->own_out);
	size_t pos = 0;
	char topic[TOPIC_MAX + 8];
	while (http_query_next(call, "topic", &pos, topic, sizeof topic)) {
		if (strlen(topic) >= TOPIC_MAX || !topic_is_valid(topic) ||
		    filter->topics_count == HTTP_SSE_TOPICS_MAX) {
			free(c);
			feed_free(spare);
			http_reply_error(
			    call, 400, "topic_invalid",
			    "topic \"%.80s\" is invalid: use up to %d of job/ID, batch/ID, "
			    "queue/NAME, worker/ID, or job/, batch/, queue/, worker/ for "
			    "all of a kind",
			    topic, HTTP_SSE_TOPICS_MAX);
			return;
		}
		/* < TOPIC_MAX */
		memcpy(filter->topics[filter->topics_count++], topic, strlen(topic) + 1);
	}
	filter_normalize(filter);
	char kind[32];
	pos = 0;
	while (http_query_next(call, "kind", &pos, kind, sizeof kind)) {
		uint32_t bit = kind_bit(kind);
		if (bit == 0) {
			free(c);
			feed_free(spare);
			http_reply_error(
			    call, 400, "kind_invalid",
			    "kind \"%.40s\" is invalid: use job_state, job_progress, batch, "
			    "worker_joined or worker_lost (repeat kind= for several; "
			    "none: every kind)",
			    kind);
			return;
		}
		filter->kinds |= bit;
	}
	/* A browser's EventSource resends the header; the query parameter is
	 * for clients that cannot set headers on the first connect. */
	const char *last_text = http_call_header(call, "Last-Event-ID");
	char last_param[32];
	if (last_text == NULL &&
	    http_query_get(call, "last_event_id", last_param, sizeof last_param))
		last_text = last_param;
	uint64_t last = 0;
	bool resume = last_text != NULL && http_parse_id(last_text, &last);

	pthread_mutex_lock(&hub->lock);
	if (hub->stopping || hub->clients_count >= HTTP_SSE_CLIENTS_MAX) {
		pthread_mutex_unlock(&hub->lock);
		free(c);
		feed_free(spare);
		http_reply_error(call, 503, "too_many_streams",
		                 "the broker serves at most %d event streams, or is stopping",
		                 HTTP_SSE_CLIENTS_MAX);
		return;
	}
	/* From here the connection is the hub's: it stays open and gets the
	 * stream's writes until reap_all releases it. */
	c->conn = call->conn;
	http_conn_stream_start(c->conn, client_write_cb, c);
	jm_buf_append(&c->own, stream_head, sizeof stream_head - 1);
	c->own_keep = c->own.len;
	if (!hub->fed) {
		hub->fed = true;
		hub->resume_floor = hub->next_seq;
		if (hub->ev)
			events_listener_wanted(hub->ev, true);
	}
	/* At the feed's end, which is next_seq's place: the catch-up below
	 * (own bytes, sent first) ends where the feed takes over. */
	client_join(hub, c, &spare);
	if (last_text != NULL) {
		if (resume && last + 1 >= hub->ring_start && last >= hub->resume_floor &&
		    last < hub->next_seq) {
			for (uint64_t s = last + 1; s < hub->next_seq; s++) {
				struct frame *f = &hub->ring[s % HTTP_SSE_RING];
				if (!filter_wants(&c->feed->filter, f))
					continue;
				if (!frame_format(f) ||
				    c->own.len + f->len > HTTP_SSE_CLIENT_BUFFER ||
				    jm_buf_append(&c->own, f->text, f->len) != 0) {
					/* Too much missed: a snapshot, then the feed. */
					client_lag(hub, c);
					break;
				}
				c->own_frames++;
			}
		} else {
			append_snapshot(hub, c, "resume_gap");
		}
	}
	client_kick(c);
	pthread_mutex_unlock(&hub->lock);
	feed_free(spare); /* NULL when it became the client's feed */
	http_call_hijacked(call);
}
