/* Lease tokens drawn a block at a time (see token_pool.h). */
#include "token_pool.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* Refills the pool: 0 or JM_EIO. A short read (a signal during a larger
 * request; not expected at 256 bytes) keeps the whole tokens it brought. */
static int pool_refill(struct token_pool *pool, struct jm_err *err)
{
	for (;;) {
		ssize_t n = getrandom(pool->tokens, sizeof pool->tokens, 0);
		if (n >= (ssize_t)sizeof pool->tokens[0]) {
			uint32_t got = (uint32_t)((size_t)n / sizeof pool->tokens[0]);
			/* Unused tokens sit at the end: move what came there,
			 * and leave no copy of them before it. */
			if (got < TOKEN_POOL_SIZE) {
				memmove(pool->tokens + TOKEN_POOL_SIZE - got, pool->tokens,
				        got * sizeof pool->tokens[0]);
				memset(pool->tokens, 0,
				       (TOKEN_POOL_SIZE - got) * sizeof pool->tokens[0]);
			}
			pool->left = got;
			return 0;
		}
		if (n < 0 && errno != EINTR)
			return jm_err_set(err, JM_EIO, "drawing a lease token: getrandom: %s",
			                  strerror(errno));
	}
}

int token_pool_draw(struct token_pool *pool, uint64_t *token, struct jm_err *err)
{
	do {
		if (pool->left == 0) {
			int rc = pool_refill(pool, err);
			if (rc != 0)
				return rc;
		}
		uint64_t *slot = &pool->tokens[TOKEN_POOL_SIZE - pool->left];
		*token = *slot;
		*slot = 0; /* a token handed out is not kept */
		pool->left--;
	} while (*token == 0); /* 0 marks a lease from a version 1 journal */
	return 0;
}
