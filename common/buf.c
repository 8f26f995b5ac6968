/* Growable byte buffer (see buf.h). Doubles its capacity, so appends are
 * amortised O(1). */
#include "heap.h"
#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include <jobmesh/error.h>

void jm_buf_init(struct jm_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void jm_buf_fini(struct jm_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	jm_buf_init(b);
}

int jm_buf_reserve(struct jm_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len)
		return JM_ENOMEM;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	uint8_t *data = jm_realloc(b->data, cap);
	if (data == NULL)
		return JM_ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

int jm_buf_append(struct jm_buf *b, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	int rc = jm_buf_reserve(b, len);
	if (rc != 0)
		return rc;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

void jm_buf_reset(struct jm_buf *b)
{
	b->len = 0;
}
