/* HA standby: receives the leader's journal (see ha_ship.h) into this
 * broker's own data directory, so that once elected its ordinary replay
 * has everything the leader acknowledged, worker leases included.
 *
 * A thread dials the leader's replication address (the leader key names
 * it; ha_gate_leader_replication_url) with an NNG REP socket and answers
 * each request: HELLO with where the copy ends, APPEND after the bytes are
 * written and synced, RESET and the snapshot steps of a full copy. It
 * refuses a request whose epoch is lower than one already seen (a deposed
 * leader) and a chunk that does not continue the copy (a gap). With a
 * cluster secret (ha_secret.h) it answers the leader's HELLO with proof
 * that it holds it; without one, a HELLO that asks for it is refused, and
 * so is one that does not ask while this broker has one. */
#ifndef JM_BROKER_HA_REPLICA_H
#define JM_BROKER_HA_REPLICA_H

#include "err.h"
#include "ha_secret.h"

struct journal;
struct ha_gate;
struct ha_replica;

/* journal: opened, neither replayed nor started. node_name goes into
 * HELLO's answer. secret may be NULL (none; copied). */
int ha_replica_start(struct ha_replica **out, struct journal *journal, struct ha_gate *gate,
                     const char *node_name, const struct ha_secret *secret, struct jm_err *err);
/* Stops the thread and closes the copy's files; the journal can then be
 * replayed. Accepts NULL. */
void ha_replica_stop(struct ha_replica *replica);

#endif
