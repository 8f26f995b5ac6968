/* The HA cluster secret (--replication-token-file): the same file on every
 * broker of a cluster. A standby proves it holds it when the leader's
 * replication socket asks (proto/repl_msg.h, HELLO); the secret itself is
 * never sent. */
#ifndef JM_BROKER_HA_SECRET_H
#define JM_BROKER_HA_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define HA_SECRET_MIN_BYTES 16u
#define HA_SECRET_MAX_BYTES 1024u

struct ha_secret {
	uint8_t bytes[HA_SECRET_MAX_BYTES];
	size_t len; /* 0: no secret */
};

/* Reads path: its bytes without trailing whitespace (a final newline),
 * 16-1024 of them. 0, or JM_EINVAL/JM_EIO naming the file and the rule. */
int ha_secret_load(struct ha_secret *out, const char *path, struct jm_err *err);

#endif
