/* The connections (NNG pipes) of one socket: a cap on how many, and (for
 * the REP socket) a cap on how long one may sit without a request in
 * flight. The events PUB socket uses the cap alone (idle_ms 0): its
 * subscribers never send.
 *
 * NNG has neither. The cap on connections counts pipes in the pipe notify
 * callback (ADD_PRE) and closes one over the limit before it is added. The
 * idle cap is the receive-time limit: NNG 1.5.2's TCP and IPC transports
 * read a message into a buffer of the size its header announces and keep
 * it until the message is complete, and NNG_OPT_RECVTIMEO applies to the
 * socket's receive, not to the transport's partial read. So a peer that
 * starts a large message and stalls would hold that memory for as long as
 * it likes. pipes_reap closes every pipe whose last request was answered
 * (or which connected) more than idle_ms ago and that has none in flight:
 * a stalled partial message is then freed within idle_ms plus a sweep. A
 * real client's REQ socket dials again and resends a request that was
 * cut off, so closing an idle pipe costs it a reconnect, nothing more.
 * The worst case memory held by partial messages is max_connections x
 * the largest message (NNG_OPT_RECVMAXSZ), for at most idle_ms. */
#ifndef JM_BROKER_PIPES_H
#define JM_BROKER_PIPES_H

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

struct pipes;

/* max: connections at once (0: no limit); idle_ms: how long a pipe may be
 * idle (0: forever). Starts the sweep thread when idle_ms > 0. what names
 * the socket in the log ("requests", "events"; a static string). */
int pipes_open(struct pipes **out, uint32_t max, uint32_t idle_ms, const char *what);
void pipes_close(struct pipes *p); /* stops the sweep; accepts NULL */

/* hook(arg) runs on the sweep thread before each sweep, outside the pipes'
 * lock: the request server recycles there the contexts whose queued replies
 * have left since the last request arrived, so that their pipes count no
 * request in flight and an idle one is swept even on a broker that gets no
 * other request. pipes_stop_sweep joins the sweep thread (idempotent;
 * pipes_close does it too), after which the hook never runs again. */
void pipes_set_sweep_hook(struct pipes *p, void (*hook)(void *arg), void *arg);
void pipes_stop_sweep(struct pipes *p);

/* From the socket's pipe notify callbacks (ADD_PRE, REM_POST).
 * pipes_added closes the pipe when it would pass the limit and returns
 * whether it was admitted; pipes_removed returns whether the pipe had been
 * admitted (NNG runs REM_POST for refused pipes too). */
bool pipes_added(struct pipes *p, nng_pipe pipe);
bool pipes_removed(struct pipes *p, nng_pipe pipe);
/* A request from pipe_id arrived / its reply left. pipes_request_begin
 * returns false when the sweep is closing that pipe: the caller must drop
 * the request unhandled, so that a client whose call then fails with a
 * reset connection knows the broker did nothing and may send it again. */
bool pipes_request_begin(struct pipes *p, uint32_t pipe_id);
void pipes_request_end(struct pipes *p, uint32_t pipe_id);

/* Pipes open now, and pipes refused or closed idle since the start. */
uint32_t pipes_count(struct pipes *p);
uint64_t pipes_refused(struct pipes *p);
uint64_t pipes_reaped(struct pipes *p);

#endif
