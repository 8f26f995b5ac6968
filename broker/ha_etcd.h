/* The few etcd v3 calls leader election needs, over etcd's JSON gateway
 * (plain HTTP, NNG's HTTP client; keys and values travel base64-encoded,
 * 64-bit numbers as JSON strings). Each call blocks its caller, the
 * election thread, for at most timeout_ms. Errors: JM_ETRANSPORT when etcd
 * cannot be reached or answers garbage, with err saying which call and
 * why.
 *
 * The handle knows every member of the etcd cluster it was given: a call
 * starts at the member that answered last and, when that one cannot serve
 * (no connection, no answer, a 5xx, etcd's "no leader"), tries the next
 * within the same timeout_ms. So a call that is not idempotent may have
 * been applied by a member whose answer was lost (see ha_etcd_create). */
#ifndef JM_BROKER_HA_ETCD_H
#define JM_BROKER_HA_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct ha_etcd;

#define HA_ETCD_MEMBERS_MAX 9

/* list: http://HOST:PORT of each etcd member, separated by commas (up to
 * HA_ETCD_MEMBERS_MAX; no TLS yet). 0, or JM_EINVAL naming the member that
 * is wrong and what is allowed (--etcd in the text). */
int ha_etcd_check_urls(const char *list, struct jm_err *err);
/* Checks list (ha_etcd_check_urls) and opens a client for each member. */
int ha_etcd_open(struct ha_etcd **out, const char *list, struct jm_err *err);
void ha_etcd_close(struct ha_etcd *etcd); /* accepts NULL */

/* POST /v3/lease/grant: a lease of ttl_s seconds; *lease its id. */
int ha_etcd_lease_grant(struct ha_etcd *etcd, uint32_t ttl_s, uint32_t timeout_ms, int64_t *lease,
                        struct jm_err *err);
/* POST /v3/lease/keepalive, once: *ttl_s the TTL etcd restarted, 0 when
 * the lease no longer exists. */
int ha_etcd_lease_keepalive(struct ha_etcd *etcd, int64_t lease, uint32_t timeout_ms,
                            int64_t *ttl_s, struct jm_err *err);
/* POST /v3/lease/revoke (deletes the keys attached to it). */
int ha_etcd_lease_revoke(struct ha_etcd *etcd, int64_t lease, uint32_t timeout_ms,
                         struct jm_err *err);

/* A key as read: found, its create revision and its value (NUL-ended,
 * cut to the size of value). */
struct ha_etcd_kv {
	bool found;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t lease; /* the lease the key is attached to; 0: none */
	char value[1024];
};

/* POST /v3/kv/txn: puts key = value attached to lease only if the key
 * does not exist (compare create_revision == 0). *created says whether it
 * did; either way *kv is the key as it is now (the new one's create
 * revision, or the holder's). When the txn went to a second member after
 * the first one's answer was lost, the first may have created the key:
 * then *created is false and kv->lease is the caller's lease. */
int ha_etcd_create(struct ha_etcd *etcd, const char *key, const char *value, int64_t lease,
                   uint32_t timeout_ms, bool *created, struct ha_etcd_kv *kv, struct jm_err *err);
/* ha_etcd_create that also requires also_key's mod revision to be
 * also_mod_revision (0: the key is absent): a campaign that holds only
 * while the sync key is as read (ha_election.c). */
int ha_etcd_create_if(struct ha_etcd *etcd, const char *key, const char *value, int64_t lease,
                      const char *also_key, int64_t also_mod_revision, uint32_t timeout_ms,
                      bool *created, struct ha_etcd_kv *kv, struct jm_err *err);
/* Puts key = value (no lease) only while guard_key's create revision is
 * guard_create_revision: a leader's write that fails once it no longer
 * holds its key (a fenced write). *put says whether it happened. */
int ha_etcd_put_if_held(struct ha_etcd *etcd, const char *guard_key, int64_t guard_create_revision,
                        const char *key, const char *value, uint32_t timeout_ms, bool *put,
                        struct jm_err *err);
/* POST /v3/kv/range of one key. */
int ha_etcd_get(struct ha_etcd *etcd, const char *key, uint32_t timeout_ms, struct ha_etcd_kv *kv,
                struct jm_err *err);
/* POST /v3/kv/put, attached to lease unless it is 0. */
int ha_etcd_put(struct ha_etcd *etcd, const char *key, const char *value, int64_t lease,
                uint32_t timeout_ms, struct jm_err *err);

#endif
