/* Event subscriptions (jm_client_subscribe) and the broker's events address
 * (HELLO).
 *
 * Each subscription owns one NNG SUB socket dialled to the address HELLO
 * gave, and one receive thread that reads each frame (several events, each
 * with its topics: proto/event_frame.h), decodes the events with a topic
 * the subscription matches, and calls the user's callback once per
 * matching topic, so callbacks of one subscription never run concurrently
 * and see events in the order the broker published them. The socket
 * subscribes to every frame ("*"); the topic filter runs here, as NNG's
 * would have run in this process anyway. The thread receives with a short timeout and
 * checks a stop flag between receives, so closing never races a blocked
 * receive against nng_close.
 *
 * NNG 1.5.2 can stop a dialer for good (a connection reset during the
 * handshake reads as NNG_ECLOSED: the broker's ipc guard relistening does
 * that), so the thread also watches the socket's pipes: with none for
 * SUBSCRIBE_REDIAL_MS, longer than NNG's own reconnect backoff, it closes
 * the dialer and starts a new one (as proto/rpc.c does for requests).
 *
 * PUB drops, never blocks: the receive buffer is raised to
 * SUBSCRIBE_RECV_BUFFER messages, and still nothing here promises that an
 * event arrives. Callers that wait re-check state (jm_client_wait_batch). */
#include <jobmesh/client.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/protocol/pubsub0/sub.h>

#include "client_internal.h"
#include "clock.h"
#include "event_frame.h"
#include "sock_close.h"

#define SUBSCRIBE_RECV_BUFFER 1024
#define SUBSCRIBE_RECV_POLL_MS 100 /* how soon the thread sees a close */
/* A frame is at most ~60 KiB of events (broker/events.c): room to spare. */
#define SUBSCRIBE_RECV_MAX_BYTES (256u * 1024)
#define SUBSCRIBE_TOPIC_MAX 255
#define SUBSCRIBE_RECONNECT_MAX_MS 2000
#define SUBSCRIBE_REDIAL_MS 3000 /* > SUBSCRIBE_RECONNECT_MAX_MS */
#define SUBSCRIBE_LEADER_CHECK_MS 1000
#define SUBSCRIBE_HELLO_TIMEOUT_MS 5000

struct jm_subscription {
	nng_socket sock;
	nng_dialer dialer;
	char *url;
	nng_tls_config *tls; /* NULL: plain */
	atomic_int pipes;    /* connected now (pipe notify) */
	uint64_t down_since_us;
	pthread_t thread;
	atomic_bool stopping;
	/* Following the leader (a client given a list of brokers): the client
	 * asks HELLO which events address leads now, every
	 * SUBSCRIBE_LEADER_CHECK_MS, and redials when it changed; cancel cuts
	 * that call short on close. */
	jm_client *client;
	bool follow;
	uint64_t checked_us;
	bool moved; /* redialled to a new leader: tell cb once connected */
	struct rpc_cancel cancel;
	jm_event_fn cb;
	void *arg;
	char topic[SUBSCRIBE_TOPIC_MAX + 1];
	size_t topic_len;
	bool exact; /* topic equals the subscription's, not only starts with it */
};

int jm_client_events_url(jm_client *client, const char **url)
{
	if (url != NULL)
		*url = NULL;
	if (client == NULL || url == NULL)
		return client_fail(JM_EINVAL, "hello: client and url must not be NULL");
	int rc = 0;
	pthread_mutex_lock(&client->hello_lock);
	if (client->events_url == NULL) {
		struct proto_msg req = {.type = PROTO_HELLO};
		struct rpc_reply reply;
		rc = client_call(client, "hello", &req, PROTO_HELLO_REPLY, client_timeout(client),
		                 &reply);
		if (rc == 0) {
			client->events_url = client_dup_bytes(&reply.msg.u.hello_reply.events_url);
			if (client->events_url == NULL)
				rc = client_fail(JM_ENOMEM, "hello: out of memory");
			rpc_reply_fini(&reply);
		}
	}
	if (rc == 0 && client->events_url[0] == '\0')
		rc = client_fail(JM_EUNSUPPORTED, "hello: broker %s publishes no events",
		                 client->url);
	if (rc == 0)
		*url = client->events_url;
	pthread_mutex_unlock(&client->hello_lock);
	return rc;
}

bool client_has_broker_list(const struct jm_client *client)
{
	return rpc_has_list(client->rpc);
}

int client_events_url_ask(struct jm_client *client, uint32_t timeout_ms, struct rpc_cancel *cancel,
                          char **url)
{
	*url = NULL;
	struct proto_msg req = {.type = PROTO_HELLO};
	struct rpc_reply reply;
	struct jm_err err = {0};
	int rc = rpc_call_cancellable(client->rpc, &req, timeout_ms, cancel, &reply, &err);
	if (rc != 0)
		return rc;
	if (reply.msg.type != PROTO_HELLO_REPLY) {
		rpc_reply_fini(&reply);
		return JM_EPROTO;
	}
	char *found = client_dup_bytes(&reply.msg.u.hello_reply.events_url);
	rpc_reply_fini(&reply);
	if (found == NULL)
		return JM_ENOMEM;
	if (found[0] == '\0') {
		free(found);
		return JM_EUNSUPPORTED;
	}
	*url = strdup(found);
	pthread_mutex_lock(&client->hello_lock);
	bool changed = client->events_url == NULL || strcmp(client->events_url, found) != 0;
	if (changed && client->events_url == NULL) {
		client->events_url = found;
		found = NULL;
	} else if (changed && client->events_url_retired_count < CLIENT_EVENTS_URLS_RETIRED) {
		client->events_url_retired[client->events_url_retired_count++] = client->events_url;
		client->events_url = found;
		found = NULL;
	}
	pthread_mutex_unlock(&client->hello_lock);
	free(found);
	return *url != NULL ? 0 : JM_ENOMEM;
}

static bool topic_matches(const struct jm_subscription *sub, const char *topic)
{
	if (strncmp(topic, sub->topic, sub->topic_len) != 0)
		return false;
	return !sub->exact || topic[sub->topic_len] == '\0';
}

/* Hands one event to the callback under topic. */
static void subscribe_call(struct jm_subscription *sub, const char *topic,
                           const struct proto_event *pe)
{
	char message[PROTO_ERROR_TEXT_MAX + 1];
	size_t message_len =
	    pe->message.len < PROTO_ERROR_TEXT_MAX ? pe->message.len : PROTO_ERROR_TEXT_MAX;
	if (message_len != 0)
		memcpy(message, pe->message.ptr, message_len);
	message[message_len] = '\0';
	jm_event ev = {
	    .kind = (int)pe->kind,
	    .topic = topic,
	    .job_id = pe->job_id,
	    .batch_id = pe->batch_id,
	    .queue = pe->queue,
	    .type = pe->type,
	    .state = (int)pe->state,
	    .attempt = pe->attempt,
	    .done = pe->done,
	    .total = pe->total,
	    .failed = pe->failed,
	    .message = message,
	    .worker_id = pe->worker_id,
	    .at_us = pe->at_us,
	};
	sub->cb(&ev, sub->arg);
}

/* Hands the events of one received frame to the callback, each once per
 * topic of it the subscription matches. A frame that does not read is
 * dropped from the damage on (a broker of another version, or damage);
 * an event nobody here wants is not decoded. */
static void subscribe_deliver(struct jm_subscription *sub, nng_msg *msg)
{
	const uint8_t *frame = nng_msg_body(msg);
	size_t len = nng_msg_len(msg);
	size_t pos = 0;
	struct proto_event_item item;
	while (!atomic_load(&sub->stopping) &&
	       proto_event_frame_next(frame, len, &pos, &item, NULL) == 1) {
		struct proto_msg decoded;
		bool is_decoded = false;
		for (uint32_t i = 0; i < item.topics_count; i++) {
			if (!topic_matches(sub, item.topics[i]))
				continue;
			if (!is_decoded) {
				if (proto_event_item_decode(&item, &decoded, NULL) != 0)
					break;
				is_decoded = true;
			}
			subscribe_call(sub, item.topics[i], &decoded.u.event);
		}
		if (is_decoded)
			proto_msg_fini(&decoded);
	}
}

static void pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	(void)pipe;
	struct jm_subscription *sub = arg;
	atomic_fetch_add(&sub->pipes, ev == NNG_PIPE_EV_ADD_PRE ? 1 : -1);
}

static int subscribe_dial(struct jm_subscription *sub, int flags);

/* From the receive thread between receives: a new dialer once the socket
 * has had no pipe for SUBSCRIBE_REDIAL_MS. */
static void subscribe_redial_if_down(struct jm_subscription *sub)
{
	uint64_t now = jm_mono_us();
	if (atomic_load(&sub->pipes) > 0) {
		sub->down_since_us = 0;
		return;
	}
	if (sub->down_since_us == 0) {
		sub->down_since_us = now;
		return;
	}
	if (now - sub->down_since_us < SUBSCRIBE_REDIAL_MS * 1000ull)
		return;
	nng_dialer_close(sub->dialer);
	(void)subscribe_dial(sub, NNG_FLAG_NONBLOCK); /* fails only out of memory: next time */
	sub->down_since_us = now;
}

/* From the receive thread, with a list of brokers: asks which events
 * address leads now (HELLO follows the leader like any call) and redials
 * there when it is not the one dialled; once the new connection is up the
 * callback gets JM_EVENT_RESUBSCRIBED (see client.h: what was published
 * in between is not seen). A failed ask (no broker leads yet) is asked
 * again at the next check. */
static void subscribe_follow_leader(struct jm_subscription *sub)
{
	uint64_t now = jm_mono_us();
	if (sub->moved && atomic_load(&sub->pipes) > 0) {
		sub->moved = false;
		jm_event ev = {.kind = JM_EVENT_RESUBSCRIBED,
		               .topic = sub->topic,
		               .message = sub->url,
		               .queue = "",
		               .type = "",
		               .worker_id = "",
		               .at_us = jm_wall_us()};
		sub->cb(&ev, sub->arg);
	}
	if (now - sub->checked_us < SUBSCRIBE_LEADER_CHECK_MS * 1000ull)
		return;
	char *url = NULL;
	if (client_events_url_ask(sub->client, SUBSCRIBE_HELLO_TIMEOUT_MS, &sub->cancel, &url) !=
	    0) {
		sub->checked_us = jm_mono_us();
		return;
	}
	sub->checked_us = jm_mono_us();
	if (strcmp(url, sub->url) == 0 || atomic_load(&sub->stopping)) {
		free(url);
		return;
	}
	nng_dialer_close(sub->dialer);
	free(sub->url);
	sub->url = url;
	(void)subscribe_dial(sub, NNG_FLAG_NONBLOCK); /* fails only out of memory: next check */
	sub->down_since_us = 0;
	sub->moved = true;
}

static void *subscribe_thread(void *arg)
{
	struct jm_subscription *sub = arg;
	while (!atomic_load(&sub->stopping)) {
		if (sub->follow)
			subscribe_follow_leader(sub);
		nng_msg *msg = NULL;
		int rv = nng_recvmsg(sub->sock, &msg, 0);
		if (rv == NNG_ETIMEDOUT) {
			subscribe_redial_if_down(sub);
			continue;
		}
		if (rv == NNG_ECLOSED)
			break;
		if (rv != 0)
			continue;
		if (!atomic_load(&sub->stopping))
			subscribe_deliver(sub, msg);
		nng_msg_free(msg);
	}
	return NULL;
}

/* Opens sub->sock subscribed to topic and dials url. The first dial waits
 * for the connection, so events published after this returns reach the
 * subscriber; if it fails, the dial goes on in the background. */
/* nng_dial of sub->url with sub->tls on the dialer (which holds a
 * reference); sub->dialer is the new dialer. */
static int subscribe_dial(struct jm_subscription *sub, int flags)
{
	nng_dialer d = NNG_DIALER_INITIALIZER;
	int rv = nng_dialer_create(&d, sub->sock, sub->url);
	if (rv == 0 && sub->tls)
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, sub->tls);
	if (rv == 0)
		rv = nng_dialer_start(d, flags);
	if (rv != 0 && nng_dialer_id(d) > 0) {
		nng_dialer_close(d); /* as nng_dial does with a dialer that failed */
		d = (nng_dialer)NNG_DIALER_INITIALIZER;
	}
	sub->dialer = d;
	return rv;
}

static int subscribe_open_socket(struct jm_subscription *sub, const char *url,
                                 const struct jm_tls *tls)
{
	sub->url = strdup(url);
	if (sub->url == NULL)
		return client_fail(JM_ENOMEM, "subscribe: out of memory");
	if (jm_tls_url_wants(url)) {
		struct jm_err err = {0};
		int rc = jm_tls_config_client(&sub->tls, url, tls, &err);
		if (rc != 0)
			return client_fail(rc, "subscribe: events address %s", jm_err_text(&err));
	}
	int rv = nng_sub0_open(&sub->sock);
	if (rv != 0)
		return client_fail(rv == NNG_ENOMEM ? JM_ENOMEM : JM_ETRANSPORT,
		                   "subscribe: opening a SUB socket: %s", nng_strerror(rv));
	const char *step = "setting options";
	rv = nng_socket_set_int(sub->sock, NNG_OPT_RECVBUF, SUBSCRIBE_RECV_BUFFER);

	if (rv == 0)
		rv = nng_socket_set_size(sub->sock, NNG_OPT_RECVMAXSZ, SUBSCRIBE_RECV_MAX_BYTES);
	if (rv == 0)
		rv = nng_socket_set_ms(sub->sock, NNG_OPT_RECVTIMEO, SUBSCRIBE_RECV_POLL_MS);
	if (rv == 0)
		rv = nng_socket_set_ms(sub->sock, NNG_OPT_RECONNMINT, 100);
	if (rv == 0)
		rv = nng_socket_set_ms(sub->sock, NNG_OPT_RECONNMAXT, SUBSCRIBE_RECONNECT_MAX_MS);
	if (rv == 0)
		rv = nng_pipe_notify(sub->sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, sub);
	if (rv == 0)
		rv = nng_pipe_notify(sub->sock, NNG_PIPE_EV_REM_POST, pipe_cb, sub);
	if (rv == 0) {
		step = "subscribing";
		/* Every frame: subscribe_deliver filters by topic. */
		rv = nng_socket_set(sub->sock, NNG_OPT_SUB_SUBSCRIBE, PROTO_EVENT_FRAME_TOPIC,
		                    strlen(PROTO_EVENT_FRAME_TOPIC));
	}
	if (rv == 0) {
		step = "dialling";
		rv = subscribe_dial(sub, 0);
		if (rv == NNG_ECONNREFUSED || rv == NNG_ETIMEDOUT || rv == NNG_ENOENT ||
		    rv == NNG_ECONNRESET || rv == NNG_EUNREACHABLE || rv == NNG_ECRYPTO ||
		    rv == NNG_EPEERAUTH)
			rv = subscribe_dial(sub, NNG_FLAG_NONBLOCK);
	}
	if (rv != 0) {
		nng_close(sub->sock);
		return client_fail(rv == NNG_ENOMEM ? JM_ENOMEM : JM_ETRANSPORT,
		                   "subscribe: events address %s: %s: %s", url, step,
		                   nng_strerror(rv));
	}
	return 0;
}

/* What subscribe_open_socket allocated besides the socket. */
static void subscribe_free(struct jm_subscription *sub)
{
	rpc_cancel_fini(&sub->cancel);
	if (sub->tls)
		nng_tls_config_free(sub->tls);
	free(sub->url);
	free(sub);
}

int jm_client_subscribe(jm_client *client, const char *topic, bool exact, jm_event_fn cb, void *arg,
                        jm_subscription **out)
{
	if (out != NULL)
		*out = NULL;
	if (client == NULL || topic == NULL || cb == NULL || out == NULL)
		return client_fail(JM_EINVAL,
		                   "subscribe: client, topic, cb and out must not be NULL");
	if (strlen(topic) > SUBSCRIBE_TOPIC_MAX)
		return client_fail(JM_EINVAL, "subscribe: topic is %zu bytes: at most %d",
		                   strlen(topic), SUBSCRIBE_TOPIC_MAX);
	const char *url = NULL;
	int rc = jm_client_events_url(client, &url);
	if (rc != 0)
		return rc;
	struct jm_subscription *sub = calloc(1, sizeof *sub);
	if (sub == NULL)
		return client_fail(JM_ENOMEM, "subscribe: out of memory");
	sub->cb = cb;
	sub->arg = arg;
	sub->topic_len = strlen(topic);
	memcpy(sub->topic, topic, sub->topic_len + 1);
	sub->exact = exact;
	atomic_init(&sub->stopping, false);
	atomic_init(&sub->pipes, 0);
	sub->client = client;
	sub->follow = client_has_broker_list(client);
	sub->checked_us = jm_mono_us();
	rpc_cancel_init(&sub->cancel);
	rc = subscribe_open_socket(sub, url, &client->tls);
	if (rc != 0)
		goto fail_free_sub;
	if (pthread_create(&sub->thread, NULL, subscribe_thread, sub) != 0) {
		rc = client_fail(JM_ENOMEM, "subscribe: cannot start the receive thread");
		goto fail_close_sock;
	}
	*out = sub;
	return 0;

fail_close_sock:
	nng_close(sub->sock);
fail_free_sub:
	subscribe_free(sub);
	return rc;
}

void jm_subscription_close(jm_subscription *sub)
{
	if (sub == NULL)
		return;
	atomic_store(&sub->stopping, true);
	rpc_cancel_fire(&sub->cancel);
	pthread_join(sub->thread, NULL);
	/* A close that hung (sock_close.h) may still run pipe_cb: leave sub. */
	if (sock_close(sub->sock))
		subscribe_free(sub);
}
