/* The live token table: loaded from --auth FILE, swapped whole on SIGHUP
 * (a file that fails to load leaves the old table serving, and the reason
 * is logged), and the count of refused authentications for /metrics.
 * Shared by the NNG server and the HTTP API; thread-safe. */
#ifndef JM_BROKER_AUTH_GATE_H
#define JM_BROKER_AUTH_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "err.h"

struct auth_gate;

int auth_gate_open(struct auth_gate **out, const char *path, struct jm_err *err);
void auth_gate_close(struct auth_gate *g); /* accepts NULL */

/* Loads the file again; on error the old table stays and err says why. */
int auth_gate_reload(struct auth_gate *g, struct jm_err *err);

/* auth_match on the current table; a miss is counted as a failure. */
bool auth_gate_match(struct auth_gate *g, const void *token, size_t len, struct auth_identity *id);

/* What a connection keeps of the token it proved: its hash and the table
 * generation it was judged by, so that after a reload the connection's
 * identity is judged again (a removed token stops working on connections
 * already open; a changed role or queue list applies to them). */
struct auth_proof {
	uint8_t digest[JM_SHA256_BYTES];
	uint64_t generation;
};
/* auth_gate_match that also fills *proof. */
bool auth_gate_prove(struct auth_gate *g, const void *token, size_t len, struct auth_identity *id,
                     struct auth_proof *proof);
/* True when proof still holds (*id and *proof refreshed after a reload);
 * false when its token is gone from the table (counted as a failure). */
bool auth_gate_recheck(struct auth_gate *g, struct auth_proof *proof, struct auth_identity *id);
/* Counts a request refused for carrying no token. */
void auth_gate_count_missing(struct auth_gate *g);
/* Refusals so far (missing and unrecognised tokens); 0 for NULL. */
uint64_t auth_gate_failures(const struct auth_gate *g);
/* Tokens in the current table. */
uint32_t auth_gate_tokens(struct auth_gate *g);

/* The texts clients see, one wording everywhere. */
#define AUTH_TEXT_REQUIRED                                                                         \
	"authentication required: send the token first (--token or JOBMESH_TOKEN)"
#define AUTH_TEXT_UNKNOWN                                                                          \
	"token not recognised: check --token or JOBMESH_TOKEN against the broker's --auth file"

#endif
