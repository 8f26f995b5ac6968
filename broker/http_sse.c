/* The SSE hub (see http_sse.h).
 *
 * Locking: hub->lock guards the ring, the client list and every client's
 * buffers and flags. nng is called under it only to start a write
 * (nng_http_conn_write_all completes on NNG's threads, never inline);
 * nng_aio_stop and nng_http_conn_close, which wait, run on the hub thread
 * without it.
 *
 * A client is in exactly one of: hub->clients (live), hub->reap (dead,
 * waiting for the hub thread to stop its aio, close its connection and
 * free it). Its write callback only ever sets flags on a dead client. */
#include "http_sse.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "auth.h"
#include "buf.h"
#include "clock.h"
#include "http_call.h"
#include "http_json.h"
#include "log.h"

#define TOPIC_MAX (PROTO_NAME_MAX + 16)
#define EVENT_TOPICS_MAX 3

struct frame {
	uint64_t seq;
	char topics[EVENT_TOPICS_MAX][TOPIC_MAX];
	uint32_t topics_count;
	proto_name queue; /* the job's queue; "" for batch and worker events */
	char *text;       /* the whole SSE frame, malloc'd */
	size_t len;
};

struct sse_client {
	struct http_sse *hub;
	nng_http_conn *conn;
	nng_aio *aio;
	char topics[HTTP_SSE_TOPICS_MAX][TOPIC_MAX];
	uint32_t topics_count;
	/* With --auth and a token that is not admin: only job events of the
	 * token's queues (batch and worker events name no queue). */
	bool restricted;
	struct auth_identity identity;
	struct jm_buf pending; /* not yet handed to nng */
	uint64_t pending_frames;
	struct jm_buf writing; /* being written */
	bool busy;
	bool dead;
	struct sse_client *next;
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
	struct sse_client *clients;
	struct sse_client *reap;
	uint64_t clients_count;
	uint64_t dropped;
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

static void client_kick(struct sse_client *c)
{
	if (c->busy || c->dead || c->pending.len == 0)
		return;
	struct jm_buf t = c->writing;
	c->writing = c->pending;
	c->pending = t;
	jm_buf_reset(&c->pending);
	c->pending_frames = 0;
	c->busy = true;
	nng_iov iov = {.iov_buf = c->writing.data, .iov_len = c->writing.len};
	nng_aio_set_iov(c->aio, 1, &iov);
	nng_http_conn_write_all(c->conn, c->aio);
}

/* Moves c from the live list to the reap list; the hub thread frees it. */
static void client_kill(struct http_sse *hub, struct sse_client *c)
{
	if (c->dead)
		return;
	c->dead = true;
	for (struct sse_client **p = &hub->clients; *p; p = &(*p)->next)
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

static void client_write_cb(void *arg)
{
	struct sse_client *c = arg;
	struct http_sse *hub = c->hub;
	int rv = nng_aio_result(c->aio);
	pthread_mutex_lock(&hub->lock);
	c->busy = false;
	jm_buf_reset(&c->writing);
	if (rv != 0)
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
	jm_buf_append(&c->pending, text, (size_t)len);
	c->pending_frames++;
}

static bool client_wants(const struct sse_client *c, const struct frame *f)
{
	if (c->restricted && (f->queue[0] == '\0' || !auth_queue_visible(&c->identity, f->queue)))
		return false;
	if (c->topics_count == 0)
		return true;
	for (uint32_t i = 0; i < c->topics_count; i++) {
		size_t len = strlen(c->topics[i]);
		bool prefix = c->topics[i][len - 1] == '/';
		for (uint32_t k = 0; k < f->topics_count; k++)
			if (prefix ? strncmp(f->topics[k], c->topics[i], len) == 0
			           : strcmp(f->topics[k], c->topics[i]) == 0)
				return true;
	}
	return false;
}

/* Queues f for c, or drops c's backlog to a snapshot when it is full. */
static void client_offer(struct http_sse *hub, struct sse_client *c, const struct frame *f)
{
	if (!client_wants(c, f))
		return;
	if (c->pending.len + f->len > HTTP_SSE_CLIENT_BUFFER) {
		hub->dropped += c->pending_frames + 1;
		jm_buf_reset(&c->pending);
		c->pending_frames = 0;
		append_snapshot(hub, c, "lagged");
		return;
	}
	if (jm_buf_append(&c->pending, f->text, f->len) != 0) {
		hub->dropped++;
		return;
	}
	c->pending_frames++;
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

static void event_cb(void *arg, const char *topic, const struct proto_event *ev)
{
	struct http_sse *hub = arg;
	if (!is_primary(topic, ev))
		return;
	struct frame f = {0};
	switch (ev->kind) {
	case PROTO_EVENT_JOB_STATE:
	case PROTO_EVENT_JOB_PROGRESS:
		snprintf(f.topics[f.topics_count++], TOPIC_MAX, "job/%llu",
		         (unsigned long long)ev->job_id);
		if (ev->queue[0])
			snprintf(f.topics[f.topics_count++], TOPIC_MAX, "queue/%s", ev->queue);
		memcpy(f.queue, ev->queue, sizeof f.queue);
		if (ev->batch_id)
			snprintf(f.topics[f.topics_count++], TOPIC_MAX, "batch/%llu",
			         (unsigned long long)ev->batch_id);
		break;
	case PROTO_EVENT_BATCH:
		snprintf(f.topics[f.topics_count++], TOPIC_MAX, "batch/%llu",
		         (unsigned long long)ev->batch_id);
		break;
	default:
		snprintf(f.topics[f.topics_count++], TOPIC_MAX, "worker/%s", ev->worker_id);
		break;
	}
	const char *kind = "job_state";
	char fast[512];
	char *json = NULL;
	if (http_json_job_state_text(ev, fast, sizeof fast) != 0) {
		json = fast;
	} else {
		json_t *data = http_json_event(ev, &kind);
		json = data ? http_json_dump(data, NULL) : NULL;
		json_decref(data);
	}
	pthread_mutex_lock(&hub->lock);
	f.seq = hub->next_seq;
	size_t cap = (json ? strlen(json) : 0) + 96;
	f.text = json ? malloc(cap) : NULL;
	if (f.text == NULL) {
		/* The sequence still moves on, so a resume sees the gap. */
		hub->next_seq++;
		hub->ring_start = hub->next_seq;
		pthread_mutex_unlock(&hub->lock);
		if (json != fast)
			free(json);
		jm_warn("http events: out of memory: event %llu lost; resumes get a snapshot",
		        (unsigned long long)f.seq);
		return;
	}
	f.len = (size_t)snprintf(f.text, cap, "id: %llu\nevent: %s\ndata: %s\n\n",
	                         (unsigned long long)f.seq, kind, json);
	if (json != fast)
		free(json);
	struct frame *slot = &hub->ring[f.seq % HTTP_SSE_RING];
	free(slot->text);
	*slot = f;
	hub->next_seq++;
	if (hub->next_seq - hub->ring_start > HTTP_SSE_RING)
		hub->ring_start = hub->next_seq - HTTP_SSE_RING;
	for (struct sse_client *c = hub->clients; c; c = c->next)
		client_offer(hub, c, slot);
	/* Writes start on the hub thread, so a burst of events leaves in a
	 * few writes per client rather than one each (100 clients watching a
	 * busy batch halved its drain when every event was its own write). */
	if (hub->clients && !hub->kick_due) {
		hub->kick_due = true;
		pthread_cond_signal(&hub->wake);
	}
	pthread_mutex_unlock(&hub->lock);
}

/* ---- the hub thread: pings and reaping ----------------------------------- */

static void reap_all(struct http_sse *hub)
{
	struct sse_client *list = hub->reap;
	hub->reap = NULL;
	pthread_mutex_unlock(&hub->lock);
	while (list) {
		struct sse_client *next = list->next;
		nng_aio_stop(list->aio);
		nng_http_conn_close(list->conn);
		nng_aio_free(list->aio);
		jm_buf_fini(&list->pending);
		jm_buf_fini(&list->writing);
		free(list);
		list = next;
	}
	pthread_mutex_lock(&hub->lock);
}

static void *hub_main(void *arg)
{
	struct http_sse *hub = arg;
	pthread_mutex_lock(&hub->lock);
	for (;;) {
		reap_all(hub);
		if (hub->stopping && hub->clients == NULL && hub->reap == NULL)
			break;
		if (hub->kick_due) {
			hub->kick_due = false;
			for (struct sse_client *c = hub->clients; c; c = c->next)
				client_kick(c);
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
			for (struct sse_client *c = hub->clients; c; c = c->next) {
				if (c->pending.len + 8 <= HTTP_SSE_CLIENT_BUFFER)
					jm_buf_append(&c->pending, ": ping\n\n", 8);
				client_kick(c);
			}
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
	while (hub->clients)
		client_kill(hub, hub->clients);
	pthread_cond_signal(&hub->wake);
	pthread_mutex_unlock(&hub->lock);
	pthread_join(hub->thread, NULL);
	for (uint32_t i = 0; i < HTTP_SSE_RING; i++)
		free(hub->ring[i].text);
	free(hub->ring);
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

void http_api_events(struct http_call *call)
{
	static const char *const allowed[] = {"topic", "last_event_id", "access_token", NULL};
	if (!http_query_only(call, allowed))
		return;
	struct http_sse *hub = http_server_sse(call->srv);
	struct sse_client *c = calloc(1, sizeof *c);
	if (c == NULL || nng_aio_alloc(&c->aio, client_write_cb, c) != 0) {
		free(c);
		http_reply_error(call, 503, "out_of_memory", "broker out of memory");
		return;
	}
	c->hub = hub;
	if (call->req.identity != NULL && call->req.identity->role != AUTH_ROLE_ADMIN) {
		c->restricted = true;
		c->identity = *call->req.identity;
	}
	jm_buf_init(&c->pending);
	jm_buf_init(&c->writing);
	size_t pos = 0;
	char topic[TOPIC_MAX + 8];
	while (http_query_next(call, "topic", &pos, topic, sizeof topic)) {
		if (strlen(topic) >= TOPIC_MAX || !topic_is_valid(topic) ||
		    c->topics_count == HTTP_SSE_TOPICS_MAX) {
			nng_aio_free(c->aio);
			free(c);
			http_reply_error(
			    call, 400, "topic_invalid",
			    "topic \"%.80s\" is invalid: use up to %d of job/ID, batch/ID, "
			    "queue/NAME, worker/ID, or job/, batch/, queue/, worker/ for "
			    "all of a kind",
			    topic, HTTP_SSE_TOPICS_MAX);
			return;
		}
		memcpy(c->topics[c->topics_count++], topic, strlen(topic) + 1); /* < TOPIC_MAX */
	}
	/* A browser's EventSource resends the header; the query parameter is
	 * for clients that cannot set headers on the first connect. */
	const char *last_text = nng_http_req_get_header(call->http_req, "Last-Event-ID");
	char last_param[32];
	if (last_text == NULL &&
	    http_query_get(call, "last_event_id", last_param, sizeof last_param))
		last_text = last_param;
	uint64_t last = 0;
	bool resume = last_text != NULL && http_parse_id(last_text, &last);

	pthread_mutex_lock(&hub->lock);
	if (hub->stopping || hub->clients_count >= HTTP_SSE_CLIENTS_MAX) {
		pthread_mutex_unlock(&hub->lock);
		nng_aio_free(c->aio);
		free(c);
		http_reply_error(call, 503, "too_many_streams",
		                 "the broker serves at most %d event streams, or is stopping",
		                 HTTP_SSE_CLIENTS_MAX);
		return;
	}
	/* From here the connection and its request are ours (NNG's server
	 * forgets both): the request is freed now, the connection on close. */
	nng_http_hijack(call->conn);
	nng_http_req_free(call->http_req);
	call->http_req = NULL;
	c->conn = call->conn;
	jm_buf_append(&c->pending, stream_head, sizeof stream_head - 1);
	if (!hub->fed) {
		hub->fed = true;
		hub->resume_floor = hub->next_seq;
		if (hub->ev)
			events_listener_wanted(hub->ev, true);
	}
	if (last_text != NULL) {
		if (resume && last + 1 >= hub->ring_start && last >= hub->resume_floor &&
		    last < hub->next_seq) {
			for (uint64_t s = last + 1; s < hub->next_seq; s++)
				client_offer(hub, c, &hub->ring[s % HTTP_SSE_RING]);
		} else {
			append_snapshot(hub, c, "resume_gap");
		}
	}
	c->next = hub->clients;
	hub->clients = c;
	hub->clients_count++;
	client_kick(c);
	pthread_mutex_unlock(&hub->lock);
	http_call_hijacked(call);
}
