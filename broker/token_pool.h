/* Unpredictable 64-bit tokens (lease tokens) from the kernel's CSPRNG,
 * drawn a block at a time.
 *
 * A lease token must not be guessable by another worker (it is what lets a
 * worker settle a job), so it comes from getrandom(2). One getrandom per
 * lease cost ~5 % of the broker's CPU in a drain (issue 12: the syscall and
 * the kernel's per-call ChaCha setup); a block of TOKEN_POOL_SIZE tokens
 * per call costs the same randomness and a thirty-second of the calls. The
 * tokens waiting in the pool are as secret as the broker's memory, which
 * holds every live token anyway.
 *
 * Not thread-safe: the caller's lock guards a pool (the core's lock). */
#ifndef JM_BROKER_TOKEN_POOL_H
#define JM_BROKER_TOKEN_POOL_H

#include <stdint.h>

#include "err.h"

#define TOKEN_POOL_SIZE 32 /* 256 bytes: getrandom's size that signals never cut short */

struct token_pool {
	uint64_t tokens[TOKEN_POOL_SIZE];
	uint32_t left; /* unused tokens, at the end of the array */
};

/* A fresh token, never 0, into *token: 0, or JM_EIO with err set when the
 * kernel gives no randomness. A zeroed pool is an empty one. */
int token_pool_draw(struct token_pool *pool, uint64_t *token, struct jm_err *err);

#endif
