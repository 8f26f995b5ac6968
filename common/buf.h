/* A growable byte buffer: what encoders write into. */
#ifndef JM_COMMON_BUF_H
#define JM_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

struct jm_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void jm_buf_init(struct jm_buf *b);
void jm_buf_fini(struct jm_buf *b);
/* Appends len bytes; returns 0 or JM_ENOMEM (b unchanged then). */
int jm_buf_append(struct jm_buf *b, const void *data, size_t len);
/* Makes room for at least extra more bytes; 0 or JM_ENOMEM. */
int jm_buf_reserve(struct jm_buf *b, size_t extra);
void jm_buf_reset(struct jm_buf *b);

#endif
