/* Keeps an ipc:// listener accepting.
 *
 * NNG 1.5.2 stops accepting on an ipc:// listener for good once a peer goes
 * away during the SP handshake: the transport's write of its header fails
 * with EPIPE, which NNG maps to NNG_ECLOSED, and the listener takes that
 * for its own close and never accepts again (nng issue #1518, fixed in
 * 1.6). The transport still accepts and negotiates connections, so clients
 * connect and then wait forever for a reply. One `connect(); close();` on
 * the socket file — a client closed while it redials, a health check —
 * takes the broker off its ipc:// address.
 *
 * The guard proves the listener alive once a second: it connects to the
 * socket file as an SP peer of the right protocol and waits for the
 * broker's socket to add that connection as a pipe (its ADD_PRE callback
 * calls ipc_guard_claim, which recognises the probe by its peer's pid, our
 * own, and closes it before it serves). If the transport answers the
 * handshake but no pipe is added within PROBE_WAIT, the listener has
 * stopped: the guard calls relisten, which closes the listener (and with
 * it the pipes it accepted: their clients redial) and listens afresh.
 * tcp:// and tls+tcp:// listeners do not have this fault (a peer that
 * leaves during the handshake yields ECONNRESET or ECONNSHUT there), so
 * they are not probed. */
#ifndef JM_BROKER_IPC_GUARD_H
#define JM_BROKER_IPC_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

#include "err.h"

struct ipc_guard;

/* SP protocol numbers of the peers probed (NNG's headers name REQ's only). */
#define IPC_GUARD_PEER_REQ0 0x30 /* peers of a REP socket */
#define IPC_GUARD_PEER_SUB0 0x21 /* peers of a PUB socket */

/* Closes the listener and listens again on the same address; 0 or an nng
 * error. Runs on the guard's thread. */
typedef int (*ipc_guard_relisten_fn)(void *arg);

/* Starts guarding the listener of url when url is ipc:// (else *out is
 * NULL and nothing runs). peer_protocol: the SP protocol number of the
 * socket's peers (IPC_GUARD_PEER_*). */
int ipc_guard_start(struct ipc_guard **out, const char *url, uint16_t peer_protocol,
                    ipc_guard_relisten_fn relisten, void *arg, struct jm_err *err);

/* From the socket's ADD_PRE callback: true when pipe is the guard's probe,
 * which it has then closed; the caller ignores the pipe. Accepts NULL. */
bool ipc_guard_claim(struct ipc_guard *g, nng_pipe pipe);
/* From the REM_POST callback: true when pipe was the probe (ignore it). */
bool ipc_guard_release(struct ipc_guard *g, nng_pipe pipe);

/* Stops the thread: no relisten runs after it returns. Claims and
 * releases still answer until ipc_guard_free, so pipe callbacks may run
 * until the socket is closed. Both accept NULL; stop may be called twice. */
void ipc_guard_stop(struct ipc_guard *g);
void ipc_guard_free(struct ipc_guard *g);

#endif
