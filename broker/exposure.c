/* Secure by default (see exposure.h). */
#include "exposure.h"

#include <stdio.h>
#include <string.h>

#include "listen_ports.h"
#include "tls.h"

/* host: without [ ] around a v6 address (listen_hostport_split). */
static bool host_is_local(const char *host, size_t len)
{
	char h[256];
	if (len >= sizeof h)
		return false;
	memcpy(h, host, len);
	h[len] = '\0';
	if (strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0)
		return true;
	/* 127.0.0.0/8: four dotted numbers, the first 127. */
	unsigned a, b, c, d;
	char tail;
	return sscanf(h, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
	       c < 256 && d < 256;
}

/* host:port with an optional [v6] host. */
static bool hostport_is_local(const char *hp, size_t len)
{
	const char *host;
	size_t host_len;
	long port;
	listen_hostport_split(hp, len, &host, &host_len, &port);
	return host_is_local(host, host_len);
}

bool exposure_url_is_local(const char *url)
{
	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0)
		return true;
	const char *sep = strstr(url, "://");
	if (sep == NULL)
		return false;
	const char *host = sep + 3;
	return hostport_is_local(host, strcspn(host, "/"));
}

bool exposure_http_is_local(const char *addr)
{
	return hostport_is_local(addr, strlen(addr));
}

int exposure_check_replication(const struct exposure *x, const char *addr, struct jm_err *err)
{
	if (x->insecure || x->repl_secret || exposure_url_is_local(addr))
		return 0;
	return jm_err_set(err, JM_EINVAL,
	                  "--replication-listen %s: off loopback the replication socket needs "
	                  "--replication-token-file FILE (a cluster secret each standby must "
	                  "prove, the same file on every broker) or --insecure-listen (on a "
	                  "network only the brokers reach)",
	                  addr);
}

int exposure_check(const struct exposure *x, const char *flag, const char *addr, bool http,
                   bool events, struct jm_err *err)
{
	if (x->insecure || (http ? exposure_http_is_local(addr) : exposure_url_is_local(addr)))
		return 0;
	if (!x->auth)
		return jm_err_set(
		    err, JM_EINVAL,
		    "%s %s: without --auth the broker listens only on loopback "
		    "(127.0.0.0/8, ::1, localhost) or ipc://; give --auth FILE to "
		    "require tokens, or --insecure-listen to let anyone who can reach "
		    "it in",
		    flag, addr);
	if (events && !(x->mtls && jm_tls_url_wants(addr)))
		return jm_err_set(
		    err, JM_EINVAL,
		    "%s %s: the events socket cannot ask subscribers for a token, so "
		    "off loopback it needs mutual TLS (a tls+tcp:// or wss:// address "
		    "with --tls-ca), or --insecure-listen",
		    flag, addr);
	return 0;
}
