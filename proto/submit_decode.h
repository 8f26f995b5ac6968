/* A SUBMIT's direct decoder (submit_decode.c): proto_decode's first try
 * for a SUBMIT message, before the generic path (pre-scan, msgpack-c's
 * unpacker, the field walker, fields_check). proto/'s internal header,
 * like codec.h. */
#ifndef JM_PROTO_SUBMIT_DECODE_H
#define JM_PROTO_SUBMIT_DECODE_H

#include <stddef.h>

#include "message.h"

/* 1 with out filled exactly as the generic path fills it (out->zone_ owns
 * the jobs array; proto_msg_fini frees it); 0 when it declines: the bytes
 * are not a SUBMIT, or use a form it leaves to the generic path (fields
 * appended by a newer peer), or break any rule (the generic path then
 * words the error); out is then zeroed. It accepts nothing the generic
 * path refuses (test_proto_submit_decode, fuzz_decode). */
int submit_decode_direct(const void *buf, size_t len, struct proto_msg *out);

/* proto_decode without the direct try: what the direct decoder is
 * compared with. */
int proto_decode_generic(const void *buf, size_t len, struct proto_msg *out, struct jm_err *err);

#endif
