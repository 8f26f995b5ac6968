/* Tokens, roles and tenants (--auth FILE).
 *
 * The auth file is YAML:
 *   tokens:
 *     - name: shop-api
 *       sha256: <64 hex digits: SHA-256 of the secret>
 *       role: producer            # producer | worker | viewer | admin
 *       queues: ["shop.*"]        # patterns; a queue must match one
 * The broker never sees secrets at rest: a presented token is hashed and
 * compared, in constant time, against every entry's hash.
 *
 * An identity is copied by value to whoever holds it (a connection, an
 * HTTP call), so reloading the table (SIGHUP) never leaves a dangling
 * pointer; a connection keeps the identity it proved until it closes. */
#ifndef JM_BROKER_AUTH_H
#define JM_BROKER_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "message.h"
#include "sha256.h"

#define AUTH_NAME_MAX 64
#define AUTH_PATTERNS_MAX 16
#define AUTH_PATTERN_MAX 64
#define AUTH_TOKENS_MAX 4096
#define AUTH_TOKEN_TEXT_MAX 256 /* longest secret a client may present */

enum auth_role {
	AUTH_ROLE_NONE = 0, /* not authenticated */
	AUTH_ROLE_PRODUCER = 1,
	AUTH_ROLE_WORKER = 2,
	AUTH_ROLE_VIEWER = 3,
	AUTH_ROLE_ADMIN = 4,
};

struct auth_identity {
	char name[AUTH_NAME_MAX + 1];
	enum auth_role role;
	uint32_t patterns_count;
	char patterns[AUTH_PATTERNS_MAX][AUTH_PATTERN_MAX + 1];
};

struct auth_entry {
	struct auth_identity id;
	uint8_t sha256[JM_SHA256_BYTES];
};

struct auth_table {
	struct auth_entry *entries;
	uint32_t count;
};

/* Reads path into a new table; on error err names the file, the line and
 * what is allowed, and *out is untouched. */
int auth_load(struct auth_table **out, const char *path, struct jm_err *err);
void auth_free(struct auth_table *t); /* accepts NULL */

/* Finds the entry whose hash is SHA-256(token); copies its identity into
 * *id. Every entry is compared whatever matched, in constant time. */
bool auth_match(const struct auth_table *t, const void *token, size_t len,
                struct auth_identity *id);

/* auth_match for a token already hashed. */
bool auth_match_digest(const struct auth_table *t, const uint8_t digest[JM_SHA256_BYTES],
                       struct auth_identity *id);

/* "producer", ...; "none" for AUTH_ROLE_NONE. */
const char *auth_role_name(enum auth_role role);

/* May id's role send a request of type? (HELLO always.) 0, or
 * JM_EFORBIDDEN with err naming the role and what it may do. */
int auth_allows_type(const struct auth_identity *id, enum proto_type type, struct jm_err *err);

/* Does queue match one of id's patterns (admin: every queue)? */
bool auth_queue_visible(const struct auth_identity *id, const char *queue);

/* auth_allows_type, then every queue the request names must be visible:
 * 0, or JM_EFORBIDDEN with err naming the queue and the token's patterns.
 * Requests that name jobs by id are checked by the core, which knows the
 * job's queue (auth_queue_visible). */
int auth_allows(const struct auth_identity *id, const struct proto_msg *msg, struct jm_err *err);

#endif
