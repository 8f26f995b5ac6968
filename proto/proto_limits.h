/* Limits every side of the wire agrees on. A message over a limit is refused
 * with JM_ETOOBIG or JM_EINVAL and a text naming the limit.
 *
 * Named proto_limits.h, not limits.h: proto/ is on the include path of
 * everything that links jm_proto, where a limits.h would shadow the
 * system header. */
#ifndef JM_PROTO_LIMITS_H
#define JM_PROTO_LIMITS_H

#define PROTO_VERSION 2

/* Queue names, job types and worker ids: 1-64 of A-Z a-z 0-9 . _ - */
#define PROTO_NAME_MAX 64
#define PROTO_NAME_RULE "use 1-64 of A-Z a-z 0-9 . _ -"

#define PROTO_PAYLOAD_MAX_DEFAULT (1u << 20) /* 1 MiB per job payload */
#define PROTO_RESULT_MAX (1u << 20)          /* 1 MiB per job result */
#define PROTO_ERROR_TEXT_MAX 1024            /* per failure message */
#define PROTO_MESSAGE_MAX (64u << 20)        /* whole message on the wire */
#define PROTO_JOBS_PER_MESSAGE_MAX 10000     /* submit, fetch, ack */
/* A list reply with payloads stops adding jobs once their payloads add up
 * to this, so it stays well under PROTO_MESSAGE_MAX. */
#define PROTO_LIST_PAYLOAD_BYTES_MAX (16u << 20)
#define PROTO_QUEUES_PER_FETCH_MAX 32
/* Job types a worker may name in one FETCH (a worker with more handlers
 * names none: any type). */
#define PROTO_TYPES_PER_FETCH_MAX 64
/* Unroutable job types a queue's stats list (the count covers them all). */
#define PROTO_UNROUTABLE_TYPES_MAX 8
#define PROTO_PRIORITY_MIN (-1000)
#define PROTO_PRIORITY_MAX 1000
#define PROTO_ATTEMPTS_MAX 1000
#define PROTO_DEPTH_MAX 8 /* msgpack nesting */
/* Idempotency keys (a SUBMIT's job may carry one; see job_spec.h). */
#define PROTO_KEY_MAX 128
#define PROTO_KEY_RULE "use 1-128 printable ASCII characters (space to ~)"

#endif
