/* A SUBMIT's direct decoder (submit_decode.c), proto_decode's first try
 * for a SUBMIT message before the generic path (pre-scan, msgpack-c's
 * unpacker, the field walker, fields_check), and its direct encoder
 * (submit_encode.c), proto_encode's path for a SUBMIT. proto/'s internal
 * header, like codec.h. */
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

/* Encodes [PROTO_VERSION, PROTO_SUBMIT, submit] after out's bytes as the
 * generic path (fields_check, fields_encode) does, byte for byte: 0,
 * JM_EINVAL for exactly what fields_check refuses, JM_ENOMEM, or 1 when
 * the message may pass PROTO_MESSAGE_MAX (the generic path then judges
 * it). out is unchanged unless it returns 0. */
int submit_encode_direct(const struct proto_submit *submit, struct jm_buf *out);

/* proto_encode by the generic path for every type: what the direct
 * encoder is compared with. */
int proto_encode_generic(const struct proto_msg *msg, struct jm_buf *out);

/* proto_decode without the direct try: what the direct decoder is
 * compared with. */
int proto_decode_generic(const void *buf, size_t len, struct proto_msg *out, struct jm_err *err);

#endif
