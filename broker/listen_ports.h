/* No two of the broker's listeners on one address.
 *
 * The broker listens on up to four addresses: --listen, --events (by
 * default --listen's port + 1), --http and --replication-listen. Two of
 * them on one TCP port used to surface as whichever bind came second
 * failing with "address in use", or, for --replication-listen, only once
 * the broker was elected and started to ship (a cluster laid out as
 * --listen :7400, --replication-listen :7401 collides with the derived
 * events port). listen_ports_check refuses it at start, naming both. */
#ifndef JM_BROKER_LISTEN_PORTS_H
#define JM_BROKER_LISTEN_PORTS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct listen_addr {
	const char *flag; /* as the operator knows it: "--events (derived from --listen ...)" */
	const char *addr; /* an NNG URL, or HOST:PORT when http */
	bool http;
};

/* Splits HOST:PORT (the host may be [v6]): *host and *host_len the host
 * without brackets (length 0 when empty), *port the port, or -1 when
 * there is none or it is not a number from 0 to 65535 (all that follows
 * the last colon, read by strtol, as NNG reads it: "+7400" is 7400). */
void listen_hostport_split(const char *hp, size_t len, const char **host, size_t *host_len,
                           long *port);

/* JM_EINVAL naming both flags when two of addrs would bind the same TCP
 * port (not 0) on hosts that overlap (the same name or address, or either
 * a wildcard: empty, "*", 0.0.0.0, ::), or the same ipc:// or inproc://
 * address. ws:// and wss:// are left to NNG, which lets listeners share a
 * port by path. */
int listen_ports_check(const struct listen_addr *addrs, size_t count, struct jm_err *err);

#endif
