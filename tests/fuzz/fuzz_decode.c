/* libFuzzer target for proto/'s decoders: every input is fed to
 * proto_decode(), proto_record_decode() and, as an event frame,
 * proto_event_frame_next() with each item's event decoded. Beyond "no crash, no leak, no
 * read past the end" (ASan, UBSan), it checks the promise that proto makes
 * to its callers: whatever decodes must encode again (encode runs the same
 * checks), and that encoding must decode to the same type. Build and run:
 * see README.md beside this file. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event_frame.h"
#include "jobs_decode.h"
#include "message.h"
#include "record.h"
#include "repl_msg.h"
#include "submit_decode.h"

static bool same_submit(const struct proto_msg *direct, const struct proto_msg *generic)
{
	const struct proto_submit *d = &direct->u.submit, *g = &generic->u.submit;
	return d->as_batch == g->as_batch && d->jobs_count == g->jobs_count &&
	       memcmp(d->jobs, g->jobs, sizeof d->jobs[0] * d->jobs_count) == 0;
}

static bool same_jobs(const struct proto_msg *direct, const struct proto_msg *generic)
{
	const struct proto_jobs *d = &direct->u.jobs, *g = &generic->u.jobs;
	return d->jobs_count == g->jobs_count &&
	       memcmp(d->jobs, g->jobs, sizeof d->jobs[0] * d->jobs_count) == 0;
}

/* A direct decoder (proto/submit_decode.c, proto/jobs_decode.c) takes
 * nothing the generic path refuses, and decodes what it takes to the same
 * message: its type and, by same, its fields. */
static void fuzz_direct(const uint8_t *data, size_t size,
                        int (*decode)(const void *, size_t, struct proto_msg *),
                        bool (*same)(const struct proto_msg *, const struct proto_msg *))
{
	struct proto_msg direct, generic;
	struct jm_err err;
	if (!decode(data, size, &direct))
		return;
	if (proto_decode_generic(data, size, &generic, &err) != 0)
		abort();
	if (generic.type != direct.type || !same(&direct, &generic))
		abort();
	proto_msg_fini(&generic);
	proto_msg_fini(&direct);
}

static void fuzz_message(const uint8_t *data, size_t size)
{
	struct proto_msg msg;
	struct jm_err err;
	fuzz_direct(data, size, submit_decode_direct, same_submit);
	fuzz_direct(data, size, jobs_decode_direct, same_jobs);
	int rc = proto_decode(data, size, &msg, &err);
	if (rc != 0) {
		/* A refusal always says why. */
		if (err.code != rc || err.msg[0] == '\0')
			abort();
		return;
	}
	struct jm_buf again;
	jm_buf_init(&again);
	if (proto_encode(&msg, &again) != 0)
		abort();
	struct proto_msg round;
	if (proto_decode(again.data, again.len, &round, &err) != 0 || round.type != msg.type)
		abort();
	proto_msg_fini(&round);
	jm_buf_fini(&again);
	proto_msg_fini(&msg);
}

static void fuzz_record(const uint8_t *data, size_t size)
{
	struct proto_record rec;
	struct jm_err err;
	int rc = proto_record_decode(data, size, &rec, &err);
	if (rc != 0) {
		if (err.code != rc || err.msg[0] == '\0')
			abort();
		return;
	}
	struct jm_buf again;
	jm_buf_init(&again);
	if (proto_record_encode(&rec, &again) != 0)
		abort();
	/* The JOB record's one-pass encoder writes the walker's bytes. */
	struct jm_buf walked;
	jm_buf_init(&walked);
	if (proto_record_encode_generic(&rec, &walked) != 0 || walked.len != again.len ||
	    memcmp(walked.data, again.data, again.len) != 0)
		abort();
	jm_buf_fini(&walked);
	struct proto_record round;
	if (proto_record_decode(again.data, again.len, &round, &err) != 0 || round.type != rec.type)
		abort();
	proto_record_fini(&round);
	jm_buf_fini(&again);
	proto_record_fini(&rec);
}

/* An event frame, as a subscriber reads one: items until the end or the
 * first damage; every item's event that decodes must be an EVENT. */
static bool events_same(const struct proto_event *a, const struct proto_event *b)
{
	return a->kind == b->kind && a->at_us == b->at_us && a->job_id == b->job_id &&
	       a->batch_id == b->batch_id && strcmp(a->queue, b->queue) == 0 &&
	       strcmp(a->type, b->type) == 0 && a->state == b->state && a->attempt == b->attempt &&
	       a->done == b->done && a->total == b->total && a->failed == b->failed &&
	       a->message.len == b->message.len &&
	       (a->message.len == 0 ||
	        memcmp(a->message.ptr, b->message.ptr, a->message.len) == 0) &&
	       strcmp(a->worker_id, b->worker_id) == 0;
}

static void fuzz_event_frame(const uint8_t *data, size_t size)
{
	size_t pos = 0;
	struct proto_event_item item;
	for (int items = 0;
	     items < 100000 && proto_event_frame_next(data, size, &pos, &item, NULL) == 1;
	     items++) {
		struct proto_msg event, generic;
		if (proto_event_item_decode(&item, &event, NULL) == 0) {
			/* Whichever path read it (proto/event_frame.c has a direct
			 * one for plain job_state events), the generic decoder
			 * takes it too and reads the same event. */
			if (event.type != PROTO_EVENT ||
			    proto_decode(item.event, item.event_len, &generic, NULL) != 0 ||
			    !events_same(&event.u.event, &generic.u.event))
				abort();
			proto_msg_fini(&generic);
			proto_msg_fini(&event);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A replication request and reply, as a standby and a leader read them
 * (proto/repl_msg.c): refused with a reason, or within the input. */
static void fuzz_repl(const uint8_t *data, size_t size)
{
	struct repl_req req;
	struct jm_err err;
	int rc = repl_req_decode(data, size, &req, &err);
	if (rc != 0 ? err.code != rc || err.msg[0] == '\0' : req.data + req.len != data + size)
		abort();
	struct repl_rep rep;
	rc = repl_rep_decode(data, size, &rep, &err);
	if (rc != 0 && (err.code != rc || err.msg[0] == '\0'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_message(data, size);
	fuzz_record(data, size);
	fuzz_event_frame(data, size);
	fuzz_repl(data, size);
	return 0;
}
