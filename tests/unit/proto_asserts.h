/* Assertions on decoded proto/ values that more than one test makes
 * (test_proto_message.c, test_event_frame.c). Include after jm_test.h. */
#ifndef JM_TESTS_PROTO_ASSERTS_H
#define JM_TESTS_PROTO_ASSERTS_H

#include "message.h"

/* The same bytes; an empty one has no pointer on the b side. */
static inline void assert_bytes_equal(struct proto_bytes a, struct proto_bytes b)
{
	assert_int_equal(a.len, b.len);
	if (a.len > 0)
		assert_memory_equal(a.ptr, b.ptr, a.len);
	else
		assert_null(b.ptr);
}

/* Every field of two events. */
static inline void assert_event_equal(const struct proto_event *a, const struct proto_event *o)
{
	assert_int_equal(a->kind, o->kind);
	assert_true(a->at_us == o->at_us && a->job_id == o->job_id && a->batch_id == o->batch_id);
	assert_string_equal(a->queue, o->queue);
	assert_string_equal(a->type, o->type);
	assert_int_equal(a->state, o->state);
	assert_int_equal(a->attempt, o->attempt);
	assert_true(a->done == o->done && a->total == o->total && a->failed == o->failed);
	assert_bytes_equal(a->message, o->message);
	assert_string_equal(a->worker_id, o->worker_id);
}

#endif
