/* Secure by default: which addresses the broker may listen on.
 *
 * Without --auth every listener (requests, events, HTTP) must be local:
 * loopback (127.0.0.0/8, ::1, localhost) or ipc:// / inproc://. With
 * --auth, requests and HTTP need a token and may listen anywhere; the
 * events PUB socket cannot ask subscribers for a token, so off loopback it
 * needs mutual TLS (tls+tcp:// or wss:// with --tls-ca). --insecure-listen
 * lifts all of this (and the broker logs a warning). */
#ifndef JM_BROKER_EXPOSURE_H
#define JM_BROKER_EXPOSURE_H

#include <stdbool.h>

#include "err.h"

/* True when url (an NNG URL) or an HTTP HOST:PORT reaches only this host. */
bool exposure_url_is_local(const char *url);
bool exposure_http_is_local(const char *addr);

struct exposure {
	bool auth;        /* --auth given */
	bool mtls;        /* --tls-ca given (client certificates required) */
	bool insecure;    /* --insecure-listen */
	bool repl_secret; /* --replication-token-file given */
};

/* 0, or JM_EINVAL with err naming flag, the address and the flags that
 * would allow it. events: the PUB socket (see above). http: addr is
 * HOST:PORT. */
int exposure_check(const struct exposure *x, const char *flag, const char *addr, bool http,
                   bool events, struct jm_err *err);
/* The same for the HA replication socket (--replication-listen): off
 * loopback it needs the cluster secret (--replication-token-file) or
 * --insecure-listen. */
int exposure_check_replication(const struct exposure *x, const char *addr, struct jm_err *err);

#endif
