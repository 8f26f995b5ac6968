/* The wire field of each job attribute (struct proto_job_attrs in
 * message.h), declared once for every descriptor that carries it: the
 * SUBMIT spec, the JOB record, the delivery and the job info. proto/'s
 * internal header, beside fields.h.
 *
 * Each ATTR_<NAME>(s) expands to the designators of one struct field for
 * container struct s, whose member `attrs` holds the attributes; a
 * descriptor lists it where that message carries it, in braces, and may add
 * designators of its own (a range, a check):
 *
 *     {ATTR_PRIORITY(struct proto_job_info), .ranged = true, ...},
 *
 * The wire order stays each message's own (the golden fixtures pin it):
 * attributes are not one contiguous run in every message, so there is no
 * single nested list to splice in without changing bytes. */
#ifndef JM_PROTO_JOB_ATTRS_H
#define JM_PROTO_JOB_ATTRS_H

#include "fields.h"

#define ATTR_QUEUE(s)                                                                              \
	.wire = "queue", .label = "queue name", .kind = FIELD_NAME,                                \
	.offset = offsetof(s, attrs.queue)
#define ATTR_TYPE(s)                                                                               \
	.wire = "type", .label = "type name", .kind = FIELD_NAME, .offset = offsetof(s, attrs.type)
#define ATTR_PRIORITY(s)                                                                           \
	.wire = "priority", .label = "priority", .kind = FIELD_I32,                                \
	.offset = offsetof(s, attrs.priority)
#define ATTR_MAX_ATTEMPTS(s)                                                                       \
	.wire = "max_attempts", .label = "max_attempts", .kind = FIELD_U32,                        \
	.offset = offsetof(s, attrs.max_attempts)
#define ATTR_TIMEOUT_MS(s)                                                                         \
	.wire = "timeout_ms", .label = "timeout_ms", .kind = FIELD_U64,                            \
	.offset = offsetof(s, attrs.timeout_ms)
#define ATTR_BATCH_ID(s)                                                                           \
	.wire = "batch_id", .label = "batch_id", .kind = FIELD_U64,                                \
	.offset = offsetof(s, attrs.batch_id)
#define ATTR_CREATED_US(s)                                                                         \
	.wire = "created_us", .label = "created_us", .kind = FIELD_U64,                            \
	.offset = offsetof(s, attrs.created_us)

/* Appended to the spec, the record and the job info (absent: no group). */
#define ATTR_GROUP(s)                                                                              \
	.wire = "group", .label = "group name", .kind = FIELD_NAME, .empty_ok = true,              \
	.offset = offsetof(s, attrs.group)

/* The ranges a job info (a view of an admitted job) holds its attributes
 * to; a spec and a record are judged by proto_job_spec_check instead. */
#define ATTR_PRIORITY_RANGE .ranged = true, .imin = PROTO_PRIORITY_MIN, .imax = PROTO_PRIORITY_MAX
#define ATTR_MAX_ATTEMPTS_RANGE .ranged = true, .min = 0, .max = PROTO_ATTEMPTS_MAX

#endif
