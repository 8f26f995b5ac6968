/* No two of the broker's listeners on one address (see listen_ports.h). */
#include "listen_ports.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void listen_hostport_split(const char *hp, size_t len, const char **host, size_t *host_len,
                           long *port)
{
	const char *colon = NULL;
	const char *bracket = memchr(hp, ']', len);
	for (const char *p = bracket ? bracket : hp; p < hp + len; p++)
		if (*p == ':')
			colon = p;
	size_t hlen = colon ? (size_t)(colon - hp) : len;
	*port = -1;
	if (colon && (size_t)(colon + 1 - hp) < len) {
		char digits[32];
		size_t n = len - (size_t)(colon + 1 - hp);
		if (n < sizeof digits) {
			memcpy(digits, colon + 1, n);
			digits[n] = '\0';
			char *end;
			long v = strtol(digits, &end, 10);
			if (end > digits && *end == '\0' && v >= 0 && v <= 65535)
				*port = v;
		}
	}
	if (hlen >= 2 && hp[0] == '[' && hp[hlen - 1] == ']') {
		hp++;
		hlen -= 2;
	}
	*host = hp;
	*host_len = hlen;
}

enum endpoint_kind { ENDPOINT_NONE, ENDPOINT_TCP, ENDPOINT_NAMED };

/* What a listener binds: a TCP host and port, or a name (ipc://, inproc://). */
struct endpoint {
	enum endpoint_kind kind;
	const char *host; /* TCP: without brackets; NAMED: the whole URL */
	size_t host_len;
	long port;
};

static bool scheme_is_tcp(const char *url, size_t scheme_len)
{
	static const char *const tcp[] = {"tcp", "tcp4", "tcp6", "tls+tcp", "tls+tcp4", "tls+tcp6"};
	for (size_t i = 0; i < sizeof tcp / sizeof tcp[0]; i++)
		if (strlen(tcp[i]) == scheme_len && strncmp(url, tcp[i], scheme_len) == 0)
			return true;
	return false;
}

static struct endpoint endpoint_of(const struct listen_addr *a)
{
	struct endpoint e = {.kind = ENDPOINT_NONE};
	const char *hp = a->addr;
	if (!a->http) {
		if (strncmp(a->addr, "ipc://", 6) == 0 || strncmp(a->addr, "inproc://", 9) == 0) {
			e.kind = ENDPOINT_NAMED;
			e.host = a->addr;
			e.host_len = strlen(a->addr);
			return e;
		}
		const char *sep = strstr(a->addr, "://");
		if (sep == NULL || !scheme_is_tcp(a->addr, (size_t)(sep - a->addr)))
			return e; /* ws://, wss:// and the rest: NNG's to judge */
		hp = sep + 3;
	}
	listen_hostport_split(hp, strcspn(hp, "/"), &e.host, &e.host_len, &e.port);
	if (e.port > 0)
		e.kind = ENDPOINT_TCP;
	return e;
}

static bool host_is_wildcard(const char *host, size_t len)
{
	return len == 0 || (len == 1 && host[0] == '*') ||
	       (len == 7 && strncmp(host, "0.0.0.0", 7) == 0) ||
	       (len == 2 && strncmp(host, "::", 2) == 0);
}

static bool endpoints_collide(const struct endpoint *x, const struct endpoint *y)
{
	if (x->kind == ENDPOINT_NONE || x->kind != y->kind)
		return false;
	if (x->kind == ENDPOINT_NAMED)
		return x->host_len == y->host_len && strncmp(x->host, y->host, x->host_len) == 0;
	if (x->port != y->port)
		return false;
	return host_is_wildcard(x->host, x->host_len) || host_is_wildcard(y->host, y->host_len) ||
	       (x->host_len == y->host_len && strncasecmp(x->host, y->host, x->host_len) == 0);
}

int listen_ports_check(const struct listen_addr *addrs, size_t count, struct jm_err *err)
{
	for (size_t i = 0; i < count; i++) {
		struct endpoint a = endpoint_of(&addrs[i]);
		for (size_t j = i + 1; j < count; j++) {
			struct endpoint b = endpoint_of(&addrs[j]);
			if (!endpoints_collide(&a, &b))
				continue;
			if (a.kind == ENDPOINT_NAMED)
				return jm_err_set(err, JM_EINVAL,
				                  "%s %s and %s %s are the same address: give each "
				                  "its own",
				                  addrs[i].flag, addrs[i].addr, addrs[j].flag,
				                  addrs[j].addr);
			return jm_err_set(err, JM_EINVAL,
			                  "%s %s and %s %s both listen on port %ld: give each its "
			                  "own port",
			                  addrs[i].flag, addrs[i].addr, addrs[j].flag,
			                  addrs[j].addr, a.port);
		}
	}
	return 0;
}
