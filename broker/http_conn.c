/* One connection's read, parse and write state machine (see http_conn.h).
 *
 * Invariants, under c->lock:
 * - at most one receive (rx_busy) and one send (tx_busy) in flight, and
 *   only in the states that do I/O: HEAD and BODY read, REPLY, STREAM and
 *   CONTINUE (an "Expect: 100-continue" answered) write, REFUSE writes
 *   then DRAIN reads;
 * - in CALL nothing is in flight: the server holds the request, and the
 *   head it reads points into c->in, which is not touched until the reply;
 * - c->in[0..consumed) is the request being answered (its head and the part
 *   of its body that came with it); bytes after that are the next request's;
 * - once closing, no new I/O starts; the connection ends (is handed to the
 *   listener, once) when nothing is in flight, no request is in CALL and no
 *   stream owner holds it. */
#include "http_conn.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "http_listener.h"
#include "log.h"
#include "metrics.h"

#define CONN_IN_FIRST 2048       /* first size of the head buffer */
#define CONN_DRAIN_MS 2000       /* a refused client has this long to close */
#define CONN_REPLY_HEAD_MAX 1024 /* status line and our own fields */

enum conn_state {
	CONN_HEAD,
	CONN_BODY,
	CONN_CONTINUE, /* sending "100 Continue", then BODY */
	CONN_CALL,
	CONN_REPLY,
	CONN_STREAM,
	CONN_REFUSE,
	CONN_DRAIN,
};

struct http_conn {
	const struct http_conn_config *cfg;
	nng_stream *stream;
	nng_aio *rx;
	nng_aio *tx;
	pthread_mutex_t lock;
	enum conn_state state;
	bool rx_busy;
	bool tx_busy;
	bool closing;
	bool ended;
	bool owned;           /* a stream owner holds it */
	bool served;          /* a request was answered: the next one may wait idle_ms */
	uint64_t deadline_us; /* of the phase being read; 0: none */

	char *in;
	size_t in_len;
	size_t in_cap;
	size_t scanned;  /* http_head_end's progress */
	size_t consumed; /* see the invariants */
	struct http_head head;
	bool head_only; /* a HEAD request: the reply carries no body */
	uint8_t *body;
	size_t body_len;
	size_t body_got;

	const char *out; /* a reply being sent (NULL for a stream's send) */
	bool out_owned;  /* free(out) when sent */
	/* What is being sent: out_iov[out_iov_at..out_iov_count), the first
	 * of them cut by what went out already. */
	nng_iov out_iov[HTTP_CONN_STREAM_IOV_MAX];
	unsigned out_iov_count;
	unsigned out_iov_at;
	bool close_after;
	const char *refusal;

	http_conn_sent_fn sent;
	void *sent_arg;
	struct http_conn_link link;
};

struct http_conn_link *http_conn_link(struct http_conn *c)
{
	return &c->link;
}

/* ---- closing and ending --------------------------------------------------- */

static void conn_close(struct http_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	/* Fails what is in flight; the callbacks run on nng's threads. */
	nng_stream_close(c->stream);
}

/* Unlocks c, handing it to the listener when it is closed and idle. c may
 * be freed once this returns. */
static void conn_unlock(struct http_conn *c)
{
	bool end = c->closing && !c->ended && !c->rx_busy && !c->tx_busy && !c->owned &&
	           c->state != CONN_CALL;
	if (end)
		c->ended = true;
	struct http_listener *lis = c->cfg->listener;
	pthread_mutex_unlock(&c->lock);
	if (end)
		http_listener_conn_ended(lis, c);
}

/* ---- writing ------------------------------------------------------------ */

static void send_rest(struct http_conn *c)
{
	/* At most HTTP_CONN_STREAM_IOV_MAX (4): NNG copies them, never fails. */
	nng_aio_set_iov(c->tx, c->out_iov_count - c->out_iov_at, c->out_iov + c->out_iov_at);
	/* A client that never reads would hold the reply (and its buffer)
	 * for good: one that takes no byte of it for the idle time is gone. */
	nng_aio_set_timeout(c->tx, c->cfg->idle_ms ? (nng_duration)c->cfg->idle_ms
	                                           : NNG_DURATION_INFINITE);
	c->tx_busy = true;
	nng_stream_send(c->stream, c->tx);
}

static void start_send(struct http_conn *c, const char *out, size_t len, bool owned)
{
	c->out = out;
	c->out_owned = owned;
	c->out_iov[0] = (nng_iov){.iov_buf = (void *)out, .iov_len = len};
	c->out_iov_count = 1;
	c->out_iov_at = 0;
	send_rest(c);
}

/* Moves past n bytes sent; true when some are left. */
static bool sent_some(struct http_conn *c, size_t n)
{
	while (c->out_iov_at < c->out_iov_count) {
		nng_iov *v = &c->out_iov[c->out_iov_at];
		if (n < v->iov_len) {
			v->iov_buf = (char *)v->iov_buf + n;
			v->iov_len -= n;
			return true;
		}
		n -= v->iov_len;
		c->out_iov_at++;
	}
	return false;
}

/* Formats and starts sending a reply (locked; c in CALL or HEAD). */
static void reply_locked(struct http_conn *c, uint16_t status, const struct http_header *fields,
                         uint32_t fields_count, const void *body, size_t len, bool close)
{
	if (!c->head.keep_alive)
		close = true;
	size_t body_len = c->head_only ? 0 : len;
	size_t cap = CONN_REPLY_HEAD_MAX + body_len;
	for (uint32_t i = 0; i < fields_count; i++)
		cap += strlen(fields[i].name) + strlen(fields[i].value) + 4;
	char *out = malloc(cap);
	if (out == NULL) {
		jm_warn("http: out of memory for a %zu-byte reply: connection closed", len);
		conn_close(c);
		c->state = CONN_REPLY;
		return;
	}
	size_t at = (size_t)snprintf(out, cap, "HTTP/1.1 %u %s\r\n", status, http_reason(status));
	for (uint32_t i = 0; i < fields_count; i++)
		at += (size_t)snprintf(out + at, cap - at, "%s: %s\r\n", fields[i].name,
		                       fields[i].value);
	at += (size_t)snprintf(out + at, cap - at, "Content-Length: %zu\r\n%s\r\n", len,
	                       close ? "Connection: close\r\n" : "");
	if (body_len > 0) /* body may be NULL when empty (a 304) */
		memcpy(out + at, body, body_len);
	c->close_after = close;
	c->state = CONN_REPLY;
	start_send(c, out, at + body_len, true);
}

/* Answers a request the connection itself refuses (its head, its size, the
 * server out of memory) with a JSON error, and closes after. */
static void refuse_locked(struct http_conn *c, uint16_t status, const char *code,
                          const char *message)
{
	json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	struct http_header fields[] = {{"Content-Type", "application/json"},
	                               {"Cache-Control", "no-store"},
	                               {"Retry-After", "1"}};
	reply_locked(c, status, fields, status == 503 ? 3 : 2, text ? text : "{}",
	             text ? strlen(text) : 2, true);
	free(text);
}

/* ---- reading ------------------------------------------------------------ */

static void timed_out(struct http_conn *c)
{
	metrics_count(METRIC_HTTP_TIMEOUTS, 1);
	jm_debug("http: a client sent no whole request %s in time: connection closed",
	         c->state == CONN_BODY ? "body" : "head");
	conn_close(c);
}

static void start_read(struct http_conn *c, void *buf, size_t len)
{
	nng_duration timeout = NNG_DURATION_INFINITE;
	if (c->deadline_us) {
		uint64_t now = jm_mono_us();
		if (now >= c->deadline_us) {
			if (c->state == CONN_DRAIN)
				conn_close(c);
			else
				timed_out(c);
			return;
		}
		timeout = (nng_duration)((c->deadline_us - now + 999) / 1000);
	}
	nng_iov iov = {.iov_buf = buf, .iov_len = len};
	nng_aio_set_iov(c->rx, 1, &iov);
	nng_aio_set_timeout(c->rx, timeout);
	c->rx_busy = true;
	nng_stream_recv(c->stream, c->rx);
}

static uint64_t after_ms(uint32_t ms)
{
	return ms ? jm_mono_us() + (uint64_t)ms * 1000 : 0;
}

/* Reads more of a head, or refuses one that outgrew head_max. */
static void read_head(struct http_conn *c)
{
	uint32_t head_max = c->cfg->head_max;
	if (c->in_len == c->in_cap && c->in_cap < head_max) {
		size_t cap = c->in_cap * 2 < head_max ? c->in_cap * 2 : head_max;
		char *in = realloc(c->in, cap);
		if (in == NULL) {
			refuse_locked(c, 503, "out_of_memory", "broker out of memory");
			return;
		}
		c->in = in;
		c->in_cap = cap;
	}
	if (c->in_len == c->in_cap) {
		char message[160];
		snprintf(message, sizeof message,
		         "the request head is over %u bytes: at most %u allowed "
		         "(--http-max-header-bytes)",
		         head_max, head_max);
		refuse_locked(c, 431, "headers_too_large", message);
		return;
	}
	start_read(c, c->in + c->in_len, c->in_cap - c->in_len);
}

/* Acts on the bytes in c->in (locked, c in HEAD): reads on, refuses, or
 * makes the request ready. True when it is ready (c in CALL): the caller
 * hands it to the server once unlocked. */
static bool take_input(struct http_conn *c)
{
	c->head_only = false;
	size_t head_len = http_head_end(c->in, c->in_len, &c->scanned);
	if (head_len == 0) {
		read_head(c);
		return false;
	}
	struct http_parse_error err;
	if (http_parse_head(c->in, head_len, &c->head, &err) != 0) {
		c->head.keep_alive = false;
		refuse_locked(c, err.status, err.code, err.message);
		return false;
	}
	c->head_only = strcmp(c->head.method, "HEAD") == 0;
	uint64_t length = c->head.content_length;
	if (length > c->cfg->body_max) {
		char message[160];
		snprintf(message, sizeof message,
		         "request body is %llu bytes: at most %llu allowed (send several requests)",
		         (unsigned long long)length, (unsigned long long)c->cfg->body_max);
		refuse_locked(c, 413, "body_too_big", message);
		return false;
	}
	c->consumed = head_len;
	if (length == 0) {
		c->state = CONN_CALL;
		return true;
	}
	c->body = malloc(length + 1);
	if (c->body == NULL) {
		refuse_locked(c, 503, "out_of_memory", "broker out of memory for the request body");
		return false;
	}
	c->body_len = length;
	c->body[length] = '\0';
	size_t early = c->in_len - head_len;
	c->body_got = early < length ? early : length;
	memcpy(c->body, c->in + head_len, c->body_got);
	c->consumed += c->body_got;
	if (c->body_got == length) {
		c->state = CONN_CALL;
		return true;
	}
	c->state = CONN_BODY;
	c->deadline_us = after_ms(c->cfg->body_timeout_ms);
	const char *expect = http_head_header(&c->head, "Expect");
	if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && c->body_got == 0) {
		/* curl waits a second for this before sending a big body. */
		static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
		c->state = CONN_CONTINUE;
		start_send(c, go_on, sizeof go_on - 1, false);
		return false;
	}
	start_read(c, c->body + c->body_got, length - c->body_got);
	return false;
}

/* Unlocks c and, when ready, hands its request to the server. */
static void unlock_and_deliver(struct http_conn *c, bool ready)
{
	if (!ready) {
		conn_unlock(c);
		return;
	}
	uint8_t *body = c->body;
	size_t body_len = c->body_len;
	c->body = NULL;
	c->body_len = c->body_got = 0;
	pthread_mutex_unlock(&c->lock); /* in CALL: cannot end meanwhile */
	c->cfg->on_request(c->cfg->arg, c, &c->head, body, body_len);
}

static void rx_cb(void *arg)
{
	struct http_conn *c = arg;
	pthread_mutex_lock(&c->lock);
	c->rx_busy = false;
	int rv = nng_aio_result(c->rx);
	size_t n = nng_aio_count(c->rx);
	bool ready = false;
	if (c->closing) {
		/* dropped */
	} else if (rv == NNG_ETIMEDOUT && c->state != CONN_DRAIN) {
		timed_out(c);
	} else if (rv != 0) {
		conn_close(c); /* the client left, or a refused one was told */
	} else if (c->state == CONN_HEAD) {
		if (c->in_len == 0 && c->served)
			c->deadline_us = after_ms(c->cfg->header_timeout_ms);
		c->in_len += n;
		ready = take_input(c);
	} else if (c->state == CONN_BODY) {
		c->body_got += n;
		if (c->body_got == c->body_len) {
			c->state = CONN_CALL;
			ready = true;
		} else {
			start_read(c, c->body + c->body_got, c->body_len - c->body_got);
		}
	} else if (c->state == CONN_DRAIN) {
		start_read(c, c->in, c->in_cap); /* read and dropped */
	}
	unlock_and_deliver(c, ready);
}

/* After a reply went out whole: the next request (maybe already here). */
static bool next_request(struct http_conn *c)
{
	memmove(c->in, c->in + c->consumed, c->in_len - c->consumed);
	c->in_len -= c->consumed;
	c->consumed = 0;
	c->scanned = 0;
	c->served = true;
	c->state = CONN_HEAD;
	c->deadline_us =
	    c->in_len ? after_ms(c->cfg->header_timeout_ms) : after_ms(c->cfg->idle_ms);
	return take_input(c);
}

static void tx_cb(void *arg)
{
	struct http_conn *c = arg;
	pthread_mutex_lock(&c->lock);
	c->tx_busy = false;
	int rv = nng_aio_result(c->tx);
	if (rv == 0 && !c->closing && sent_some(c, nng_aio_count(c->tx))) {
		send_rest(c);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (c->out_owned)
		free((void *)c->out);
	c->out = NULL;
	bool ready = false;
	http_conn_sent_fn sent = NULL;
	void *sent_arg = c->sent_arg;
	if (c->state == CONN_STREAM)
		sent = c->sent;
	if (rv == 0 && c->closing)
		rv = NNG_ECLOSED;
	if (rv != 0) {
		conn_close(c);
	} else if (c->state == CONN_REPLY) {
		if (c->close_after)
			conn_close(c);
		else
			ready = next_request(c);
	} else if (c->state == CONN_CONTINUE) {
		c->state = CONN_BODY;
		start_read(c, c->body + c->body_got, c->body_len - c->body_got);
	} else if (c->state == CONN_REFUSE) {
		c->state = CONN_DRAIN;
		c->in_len = 0;
		c->deadline_us = after_ms(CONN_DRAIN_MS);
		start_read(c, c->in, c->in_cap);
	}
	if (sent) {
		/* A stream owner: it holds c (owned), so c cannot end here. */
		pthread_mutex_unlock(&c->lock);
		sent(sent_arg, rv);
		return;
	}
	unlock_and_deliver(c, ready);
}

/* ---- the public side -------------------------------------------------- */

int http_conn_open(nng_stream *stream, const struct http_conn_config *cfg, const char *refusal,
                   struct http_conn **out)
{
	struct http_conn *c = calloc(1, sizeof *c);
	size_t cap = cfg->head_max < CONN_IN_FIRST ? cfg->head_max : CONN_IN_FIRST;
	if (c == NULL || (c->in = malloc(cap)) == NULL || nng_aio_alloc(&c->rx, rx_cb, c) != 0 ||
	    nng_aio_alloc(&c->tx, tx_cb, c) != 0) {
		if (c) {
			nng_aio_free(c->rx);
			free(c->in);
			free(c);
		}
		nng_stream_free(stream);
		return JM_ENOMEM;
	}
	c->in_cap = cap;
	c->cfg = cfg;
	c->stream = stream;
	c->refusal = refusal;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void http_conn_start(struct http_conn *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->refusal) {
		c->state = CONN_REFUSE;
		start_send(c, c->refusal, strlen(c->refusal), false);
	} else {
		c->state = CONN_HEAD;
		c->deadline_us = after_ms(c->cfg->header_timeout_ms);
		read_head(c);
	}
	conn_unlock(c);
}

void http_conn_reply(struct http_conn *c, uint16_t status, const struct http_header *fields,
                     uint32_t fields_count, const void *body, size_t len, bool close)
{
	pthread_mutex_lock(&c->lock);
	if (c->closing)
		c->state = CONN_REPLY; /* stopping: the reply is dropped */
	else
		reply_locked(c, status, fields, fields_count, body, len, close);
	conn_unlock(c);
}

void http_conn_stream_start(struct http_conn *c, http_conn_sent_fn sent, void *arg)
{
	pthread_mutex_lock(&c->lock);
	c->state = CONN_STREAM;
	c->owned = true;
	c->sent = sent;
	c->sent_arg = arg;
	/* What the client sent after the request is not read on a stream. */
	conn_unlock(c);
}

int http_conn_stream_send(struct http_conn *c, const void *data, size_t len)
{
	nng_iov iov = {.iov_buf = (void *)data, .iov_len = len};
	return http_conn_stream_sendv(c, &iov, 1);
}

int http_conn_stream_sendv(struct http_conn *c, const nng_iov *iov, unsigned count)
{
	if (count == 0 || count > HTTP_CONN_STREAM_IOV_MAX)
		return JM_EINVAL;
	pthread_mutex_lock(&c->lock);
	if (c->closing || c->tx_busy) {
		pthread_mutex_unlock(&c->lock);
		return JM_ECLOSED;
	}
	c->out = NULL;
	c->out_owned = false;
	memcpy(c->out_iov, iov, count * sizeof *iov);
	c->out_iov_count = count;
	c->out_iov_at = 0;
	/* Empty pieces first would make NNG send nothing and call back. */
	while (c->out_iov_at < count && c->out_iov[c->out_iov_at].iov_len == 0)
		c->out_iov_at++;
	if (c->out_iov_at == count) {
		pthread_mutex_unlock(&c->lock);
		return JM_EINVAL;
	}
	send_rest(c);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void http_conn_stream_release(struct http_conn *c)
{
	pthread_mutex_lock(&c->lock);
	conn_close(c);
	pthread_mutex_unlock(&c->lock);
	nng_aio_stop(c->tx); /* a sent callback in progress returns first */
	pthread_mutex_lock(&c->lock);
	c->owned = false;
	c->sent = NULL;
	conn_unlock(c);
}

void http_conn_shutdown(struct http_conn *c)
{
	/* Not conn_unlock: the listener calls this under its own lock, and
	 * whatever is in flight ends the connection from its callback. */
	pthread_mutex_lock(&c->lock);
	conn_close(c);
	pthread_mutex_unlock(&c->lock);
}

void http_conn_free(struct http_conn *c)
{
	if (c == NULL)
		return;
	nng_aio_free(c->rx);
	nng_aio_free(c->tx);
	nng_stream_free(c->stream);
	pthread_mutex_destroy(&c->lock);
	if (c->out_owned)
		free((void *)c->out);
	free(c->body);
	free(c->in);
	free(c);
}
