/* SHA-256 (FIPS 180-4), for hashing access tokens: the auth file stores
 * each token's SHA-256, never the token. Written here rather than linked
 * from libssl or nettle because it is 100 lines and the broker needs
 * nothing else from them. */
#ifndef JM_COMMON_SHA256_H
#define JM_COMMON_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JM_SHA256_BYTES 32

struct jm_sha256 {
	uint32_t h[8];
	uint64_t bytes;
	uint8_t block[64];
	size_t used;
};

void jm_sha256_init(struct jm_sha256 *s);
void jm_sha256_update(struct jm_sha256 *s, const void *data, size_t len);
void jm_sha256_final(struct jm_sha256 *s, uint8_t out[JM_SHA256_BYTES]);
/* One call: out = SHA-256(data). */
void jm_sha256(const void *data, size_t len, uint8_t out[JM_SHA256_BYTES]);
/* HMAC-SHA-256 (RFC 2104): the HA replication socket's proof that a
 * standby holds the cluster secret (broker/ha_ship.c). */
void jm_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[JM_SHA256_BYTES]);
/* a and b equal over len bytes, in a time that does not depend on where
 * they differ. */
bool jm_equal_secret(const void *a, const void *b, size_t len);

#endif
