/* Limits every side of the wire agrees on. A message over a limit is refused
 * with JM_ETOOBIG or JM_EINVAL and a text naming the limit. */

/* proto/ is on the include path of everything that links jm_proto, so a
 * `#include <limits.h>` anywhere (msgpack.h has one) finds this file
 * instead of the system's. Pass such includes on, so INT_MAX and CHAR_MIN
 * still exist; outside the guard, because the first inclusion is usually
 * "limits.h" from message.h, found beside it rather than on the path. */
#if defined(__clang__)
#pragma clang diagnostic push
/* Found beside message.h, clang searches from the start of the path:
 * that finds this file once more, whose own #include_next then reaches
 * the system header, which is what we want. */
#pragma clang diagnostic ignored "-Winclude-next-absolute-path"
#endif
#include_next <limits.h>
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#ifndef JM_PROTO_LIMITS_H
#define JM_PROTO_LIMITS_H

#define PROTO_VERSION 1

/* Queue names, job types and worker ids: 1-64 of A-Z a-z 0-9 . _ - */
#define PROTO_NAME_MAX 64
#define PROTO_NAME_RULE "use 1-64 of A-Z a-z 0-9 . _ -"

#define PROTO_PAYLOAD_MAX_DEFAULT (1u << 20) /* 1 MiB per job payload */
#define PROTO_RESULT_MAX (1u << 20)          /* 1 MiB per job result */
#define PROTO_ERROR_TEXT_MAX 1024            /* per failure message */
#define PROTO_MESSAGE_MAX (64u << 20)        /* whole message on the wire */
#define PROTO_JOBS_PER_MESSAGE_MAX 10000     /* submit, fetch, ack */
#define PROTO_QUEUES_PER_FETCH_MAX 32
#define PROTO_PRIORITY_MIN (-1000)
#define PROTO_PRIORITY_MAX 1000
#define PROTO_ATTEMPTS_MAX 1000
#define PROTO_DEPTH_MAX 8 /* msgpack nesting */

#endif
