/* Leader election on etcd: one thread per broker campaigns for the key
 * /jobmesh/<cluster>/leader, and once it holds it, renews the lease the
 * key is attached to.
 *
 * Campaign: when the key is absent, grant a lease of ttl_ms and create the
 * key in a transaction that succeeds only if the key does not exist. The
 * key's create revision is the fencing epoch: it grows with every new
 * leader, and etcd never gives the same one twice.
 *
 * Leading: every renew_ms a keepalive and a read of the key. The lease
 * runs from when etcd received the last successful keepalive, which is
 * after this thread sent it; so the thread counts its lease from the send
 * and steps down (closes the gate, then calls lost) when ttl_ms - renew_ms
 * have passed since the last keepalive that succeeded: before etcd can
 * expire the lease and let another broker take it. It steps down at once
 * when etcd says the lease is gone or the key is no longer its own.
 *
 * Following: every renew_ms a read of the key, whose value names the
 * leader (ha_gate_set_leader, for refusals); when the key is absent this
 * broker campaigns. */
#ifndef JM_BROKER_HA_ELECTION_H
#define JM_BROKER_HA_ELECTION_H

#include <stdint.h>

#include "err.h"

struct ha_gate;
struct ha_election;

struct ha_election_config {
	const char *etcd_url;
	const char *cluster;   /* key prefix /jobmesh/<cluster>/ */
	const char *node_name; /* this broker */
	const char *client_url;
	const char *http_url;        /* "" when off */
	const char *replication_url; /* "" when unset */
	uint32_t ttl_ms;             /* lease TTL, whole seconds */
	uint32_t renew_ms;           /* at most ttl_ms / 3 */
};

/* Called on the election thread; must not block for long. */
struct ha_election_hooks {
	/* This broker holds the key at epoch: replay and serve (the gate is
	 * opened by the caller once the core is ready). */
	void (*elected_cb)(void *arg, uint64_t epoch);
	/* This broker no longer leads; the gate is already closed. why says
	 * what happened. The election thread ends after it. */
	void (*lost_cb)(void *arg, const char *why);
	void *arg;
};

/* Checks config: 0, or JM_EINVAL naming the setting and what is allowed. */
int ha_election_config_check(const struct ha_election_config *config, struct jm_err *err);

/* Starts the election thread. The config's strings are copied. */
int ha_election_start(struct ha_election **out, const struct ha_election_config *config,
                      struct ha_gate *gate, const struct ha_election_hooks *hooks,
                      struct jm_err *err);
/* Stops the thread; a leader revokes its lease, so that a standby takes
 * over at once instead of after the TTL. Accepts NULL. */
void ha_election_stop(struct ha_election *election);

#endif
