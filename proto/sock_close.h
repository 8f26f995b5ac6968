/* Closing an NNG socket without hanging.
 *
 * NNG 1.5.2's nng_close can block for good on a pipe that went away in the
 * middle of its handshake (reproduced on these machines: a broker's PUB
 * socket, a REQ socket whose oversized request made the broker drop it). A
 * CLI command or a worker that hangs at exit is worse than a socket left
 * half-closed in a process that is about to end, so every close of a
 * socket that has talked to a peer goes through here. */
#ifndef JM_PROTO_SOCK_CLOSE_H
#define JM_PROTO_SOCK_CLOSE_H

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

/* How long sock_close waits before it gives up on a hung close. */
#define SOCK_CLOSE_WAIT_MS 2000

/* Closes sock on a helper thread and waits for it up to SOCK_CLOSE_WAIT_MS.
 * True if the close finished; false if it hung: the helper thread is left
 * to finish it (or to die with the process), and the socket must not be
 * used again either way. */
bool sock_close(nng_socket sock);

#endif
