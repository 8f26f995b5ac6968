/* A JOBS message's direct decoder (jobs_decode.c): proto_decode's first
 * try for the reply a worker reads for every FETCH, before the generic
 * path. proto/'s internal header, like codec.h. */
#ifndef JM_PROTO_JOBS_DECODE_H
#define JM_PROTO_JOBS_DECODE_H

#include <stddef.h>

#include "message.h"

/* 1 with out filled exactly as the generic path fills it (out->zone_ owns
 * the deliveries array; proto_msg_fini frees it; payloads point into
 * buf); 0 when it declines: the bytes are not a JOBS of at least one
 * delivery, or use a form it leaves to the generic path (another protocol
 * version, fields appended by a newer peer), or break any rule (the
 * generic path then words the error); out is then zeroed. It accepts
 * nothing the generic path refuses (test_proto_jobs_decode, fuzz_decode). */
int jobs_decode_direct(const void *buf, size_t len, struct proto_msg *out);

#endif
