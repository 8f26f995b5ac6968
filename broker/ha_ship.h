/* HA leader: synchronous journal shipping to the standby, and its
 * catch-up (README, "High availability").
 *
 * The leader listens on its --replication-listen with an NNG REQ socket;
 * the standby's replica (ha_replica.c) dials it, having read the address
 * from the leader key. Each group commit's framed bytes go to the
 * standby with the epoch and the position they start at as soon as they
 * are written here, the standby syncs them while this broker does, and
 * the journal publishes them durable (releasing the client replies) only
 * after both syncs: its own, and the standby's answer that it appended and
 * synced them (journal_set_replica). REQ/REP because the writer ships one chunk at a
 * time and waits for it anyway: each request is matched to its answer and
 * bounded by a timeout, with no window or sequence numbers to keep. One
 * standby: a second peer's pipe is closed.
 *
 * In-sync state lives in etcd, key /jobmesh/<cluster>/sync, written only
 * by the leader and only while it holds the leader key (a fenced txn):
 *   {"epoch": E, "leader": NAME, "standby": NAME or "", "in_sync": bool}
 * A new leader writes in_sync false before it serves. When a shipped chunk
 * is not acknowledged in time the leader writes in_sync false before it
 * publishes the chunk on its own copy alone (with strict, it publishes
 * nothing alone: the chunk waits and new appends are refused until a
 * standby is in sync again), and a catch-up thread brings the standby back: it asks
 * where the standby's copy ends (HELLO), sends the missing tail of the
 * leader's files (or, when they diverged or a compaction removed that
 * segment, a full copy: reset, newest snapshot, segments), the last round
 * while the writer waits, and only then counts the standby in sync and
 * says so in etcd. The election lets a broker campaign only when that key
 * names it as the last leader or the in-sync standby. */
#ifndef JM_BROKER_HA_SHIP_H
#define JM_BROKER_HA_SHIP_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "ha_secret.h"

struct journal;
struct ha_ship;

struct ha_ship_config {
	const char *listen_url; /* --replication-listen */
	const char *data_dir;   /* the journal's, read for catch-up */
	const char *node_name;
	const char *etcd_url;
	const char *cluster;
	bool strict;                    /* --ha-sync strict: no writes without a standby in sync */
	const struct ha_secret *secret; /* --replication-token-file, or NULL (copied) */
	uint32_t timeout_ms;            /* a shipped chunk's wait for the standby */
};

/* Leading at epoch: listens, records in etcd that no standby is in sync
 * (fails when this broker no longer holds the leader key), and hooks into
 * journal, which must not be started yet. */
int ha_ship_start(struct ha_ship **out, const struct ha_ship_config *config,
                  struct journal *journal, uint64_t epoch, struct jm_err *err);
/* The core is open (its boot record made durable, on this copy alone when
 * no standby was in sync yet: no client was told of it) and about to
 * serve: with strict, appends are refused from now on while no standby is
 * in sync (journal_hold, JM_ENOSTANDBY). Accepts NULL. */
void ha_ship_serving(struct ha_ship *ship);
/* After journal_close (the writer may ship until then). Accepts NULL. */
void ha_ship_stop(struct ha_ship *ship);

#endif
