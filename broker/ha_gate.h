/* High availability: whether this broker serves, and whom it points to
 * when it does not.
 *
 * With --etcd, the NNG server and the HTTP server are opened before the
 * broker leads, with no core. They ask the gate for the core per request:
 * NULL while this broker is a standby (or has stepped down), and the
 * request is then refused with JM_ENOTLEADER and a text naming the leader's
 * client address, which clients follow (README, "High availability").
 * Without --etcd there is no gate and the servers use their core directly.
 *
 * The election thread (ha_election.c) writes the leader it last saw; the
 * main thread opens the gate once the core is replayed and serving. */
#ifndef JM_BROKER_HA_GATE_H
#define JM_BROKER_HA_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct core;
struct ha_gate;

/* node_name names this broker in refusals. NULL on out of memory. */
struct ha_gate *ha_gate_new(const char *node_name);
void ha_gate_free(struct ha_gate *gate); /* accepts NULL */

/* The core to hand a request to, or NULL: refuse it (ha_gate_refusal). */
struct core *ha_gate_core(struct ha_gate *gate);
/* From now on requests go to core (this broker leads at epoch); false,
 * and nothing changes, when the gate was closed meanwhile (the broker
 * stepped down while it replayed). */
bool ha_gate_open(struct ha_gate *gate, struct core *core, uint64_t epoch);
/* From now on every request is refused, for good (the lease could not be
 * renewed, or the broker stops). The core stays valid: the caller stops
 * and frees it later. */
void ha_gate_close(struct ha_gate *gate);
/* The leader the election last read: name and client URL ("" when no
 * broker leads). Copied. */
void ha_gate_set_leader(struct ha_gate *gate, const char *name, const char *client_url,
                        const char *http_url);
/* The one-line refusal for a broker that does not lead, written to text:
 * "not the leader: broker b2 is a standby; the leader is b1 at URL" (the
 * URL is the last word, for clients to follow), or that no broker leads
 * now. */
void ha_gate_refusal(struct ha_gate *gate, char *text, size_t size);
/* The leader another broker is: its name, client URL and HTTP URL, each
 * "" when no other broker leads now (copied; each buffer HA_GATE_TEXT_MAX
 * bytes is enough). For the HTTP refusal's fields, which the HTTP SDKs
 * and the dashboard follow. */
#define HA_GATE_TEXT_MAX 256
void ha_gate_leader(struct ha_gate *gate, char *name, char *url, char *http, size_t size);
/* The leader's client URL, or "" (copied to out). */
void ha_gate_leader_url(struct ha_gate *gate, char *out, size_t size);
uint64_t ha_gate_epoch(struct ha_gate *gate); /* 0 while not leading */
/* The leader's replication address (its --replication-listen), which a
 * standby's replica dials (ha_replica.c); "" when it has none. Copied. */
void ha_gate_set_leader_replication(struct ha_gate *gate, const char *url);
void ha_gate_leader_replication_url(struct ha_gate *gate, char *out, size_t size);

#endif
