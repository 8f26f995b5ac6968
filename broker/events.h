/* The broker's event stream: an NNG PUB socket that subscribers (SDK
 * subscriptions, `jobmesh watch`, dashboards) dial.
 *
 * Events are queued in the order the core made its changes (it pushes them
 * under its lock) and published in that order by one thread, each only
 * once the journal record it reports is durable — a subscriber never hears
 * of a change a crash could take back, and a job's events arrive in the
 * order they happened. Publishing never blocks the core: PUB drops for a
 * subscriber that does not keep up (each gets a 1024-message queue), which
 * is why waiters re-check state instead of trusting one event to arrive. */
#ifndef JM_BROKER_EVENTS_H
#define JM_BROKER_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "journal.h"
#include "message.h"

struct events;

/* Listens on url (tcp port 0 picks a port; see events_url). */
int events_open(struct events **out, const char *url, struct journal *journal, struct jm_err *err);
struct jm_tls;
/* events_open with TLS for a tls+tcp:// or wss:// url (tls NULL: refused
 * with the flags to give) and a cap on subscribers connected at once
 * (max_subscribers, 0: none; one over it is closed as it connects). */
int events_open_secure(struct events **out, const char *url, struct journal *journal,
                       const struct jm_tls *tls, uint32_t max_subscribers, struct jm_err *err);
/* The URL subscribers are told to dial: the bound one, unless
 * events_advertise gave another (a container listening on 0.0.0.0). */
const char *events_url(const struct events *ev);
void events_advertise(struct events *ev, const char *url);
/* Queues event under topic (1..79 bytes), to go out once the journal is
 * durable up to lsn (0: at once, in order). Thread-safe and cheap: it
 * copies the event (the publisher thread encodes it); a failure to
 * allocate drops the event (logged). */
void events_push(struct events *ev, const char *topic, const struct proto_event *event,
                 uint64_t lsn);
/* events_push of a job's event under each of its topics, named by the
 * event's own fields: job/<job_id>, queue/<queue> and, with a batch_id,
 * batch/<batch_id>. It is sent once for all of them (event_frame.h); the
 * topics are formatted on the publisher's thread, not the caller's. */
void events_push_job(struct events *ev, const struct proto_event *event, uint64_t lsn);
/* Whether an event pushed now would go anywhere (a PUB subscriber, or the
 * listener wants events): a caller may skip building one when not. A
 * subscriber arriving just after the answer misses that event, as it
 * would had it come a moment later. Accepts NULL (false). */
bool events_listened_to(struct events *ev);
/* Called on the publisher thread for each event, in publish order, once
 * its record is durable (the moment it goes out on the PUB socket), with
 * the topic it was pushed under (a job's event comes once per topic). It
 * must not block: the HTTP event stream (http_sse.c) copies and returns. */
typedef void (*events_listener_fn)(void *arg, const char *topic, const struct proto_event *event);
/* Sets the one listener (NULL: none). It is called only while it says it
 * wants events (events_listener_wanted; off at first): with no PUB
 * subscriber and a listener that wants nothing, events are not even
 * encoded. Call before events flow (at start-up) or accept that events in
 * flight may miss it. */
void events_set_listener(struct events *ev, events_listener_fn fn, void *arg);
/* The listener's wish, from any thread: the HTTP event stream wants events
 * while a client is connected and for a while after (http_sse.c). Events
 * pushed while it is off never reach it. */
void events_listener_wanted(struct events *ev, bool wanted);

/* Publishes what the journal makes durable within a few seconds and stops
 * the publisher thread. Call before the journal is closed (it still reads
 * the journal's durable position). Accepts NULL; idempotent. */
void events_stop(struct events *ev);
/* events_stop, then closes the socket (sock_close: NNG 1.5.2's nng_close
 * of a PUB socket can hang on a pipe that went away mid-handshake, so the
 * wait is bounded; the broker calls this only once its journal is closed)
 * and frees ev. Accepts NULL. */
void events_close(struct events *ev);

/* The default events URL for a broker listening on url: tcp port + 1
 * (port 0 stays 0), ipc path + ".events". Writes into out. */
void events_default_url(const char *url, char *out, size_t out_size);

#endif
