/* A submit is admitted whole or not at all (core_admit.c), and so are a
 * fetch of several jobs and a settle of several (core_records.c) and a
 * REVIVE of every dead-lettered job of a queue (core_jobs.c): failing each
 * of their allocations in turn (common/heap.h) leaves the state and the
 * journal as they were, and what the journal holds replays to the state the
 * live core had. Also the admission limits: jobs per queue, payload memory, and
 * a delay whose run time would overflow the clock.
 *
 * The core runs over a real journal in a temp directory; core_handle runs
 * the handler on the calling thread, so the allocation fault (armed per
 * thread) hits the handler and not the journal's writer. */
#include "jm_test.h"

#include <unistd.h>

#include "clock.h"
#include "core_fixture.h"
#include "core_internal.h"
#include "heap.h"
#include "journal.h"
#include "message.h"

#define WAIT_MS 10000
#define JOBS 6

struct fixture {
	struct core_fixture c;
	struct jm_buf reply; /* the last reply, which a decoded one borrows */
};

/* What must not change when a request is refused. */
struct fingerprint {
	uint64_t jobs, queues, batches, live_bytes, ready_jobs, next_job_id, deadlines;
	uint64_t active, finished, delayed; /* in queue "q" */
	uint64_t journal_bytes;
};

static void wait_done(struct core_call *c)
{
	uint64_t deadline = jm_mono_us() + WAIT_MS * 1000u;
	while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)) {
		if (jm_mono_us() > deadline)
			fail_msg("timed out after %d ms waiting for a reply", WAIT_MS);
		usleep(1000);
	}
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	core_fixture_init(&f->c, "admit");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	core_fixture_fini(&f->c);
	jm_buf_fini(&f->reply);
	free(f);
	return 0;
}

static struct fingerprint fingerprint_of(struct fixture *f)
{
	pthread_mutex_lock(&f->c.core->lock);
	struct state *s = &f->c.core->state;
	struct fingerprint fp = {
	    .jobs = s->jobs.count,
	    .queues = s->queues.queues.count,
	    .batches = s->batches.count,
	    .live_bytes = s->live_bytes,
	    .ready_jobs = s->ready_jobs,
	    .next_job_id = s->next_job_id,
	    .deadlines = s->deadlines.count,
	};
	struct queue *q = queue_find(&s->queues, "q");
	if (q) {
		fp.active = q->active;
		fp.finished = q->finished_count;
		fp.delayed = q->delayed;
	}
	pthread_mutex_unlock(&f->c.core->lock);
	fp.journal_bytes = journal_log_bytes(f->c.journal);
	return fp;
}

static void assert_same(const struct fingerprint *a, const struct fingerprint *b, uint64_t n)
{
	if (memcmp(a, b, sizeof *a) != 0)
		fail_msg("allocation %llu failed and the state changed: jobs %llu->%llu queues "
		         "%llu->%llu batches %llu->%llu live_bytes %llu->%llu next_id %llu->%llu "
		         "active %llu->%llu finished %llu->%llu journal bytes %llu->%llu",
		         (unsigned long long)n, (unsigned long long)a->jobs,
		         (unsigned long long)b->jobs, (unsigned long long)a->queues,
		         (unsigned long long)b->queues, (unsigned long long)a->batches,
		         (unsigned long long)b->batches, (unsigned long long)a->live_bytes,
		         (unsigned long long)b->live_bytes, (unsigned long long)a->next_job_id,
		         (unsigned long long)b->next_job_id, (unsigned long long)a->active,
		         (unsigned long long)b->active, (unsigned long long)a->finished,
		         (unsigned long long)b->finished, (unsigned long long)a->journal_bytes,
		         (unsigned long long)b->journal_bytes);
}

/* Sends a submit of specs; returns the reply decoded into out (its type
 * is PROTO_ERROR on refusal), or false when no reply could be encoded. */
static bool submit_specs(struct fixture *f, struct proto_job_spec *specs, uint32_t n, bool as_batch,
                         struct proto_msg *out)
{
	struct core_call c = {0};
	c.req.msg.type = PROTO_SUBMIT;
	c.req.msg.u.submit.jobs = specs;
	c.req.msg.u.submit.jobs_count = n;
	c.req.msg.u.submit.as_batch = as_batch;
	c.req.pipe_id = 1;
	c.req.on_reply = core_call_replied;
	jm_buf_init(&c.req.reply);
	core_handle(f->c.core, &c.req);
	wait_done(&c);
	bool decoded = false;
	if (c.status == 0 && c.req.reply.len > 0) {
		struct jm_err err = {0};
		decoded = proto_decode(c.req.reply.data, c.req.reply.len, out, &err) == 0;
	}
	jm_buf_fini(&f->reply);
	f->reply = c.req.reply;
	return decoded;
}

/* The error reply's message contains what. */
static void assert_error_says(const struct proto_msg *reply, const char *what)
{
	char text[512];
	const struct proto_bytes *m = &reply->u.error.message;
	snprintf(text, sizeof text, "%.*s", (int)m->len, (const char *)m->ptr);
	if (strstr(text, what) == NULL)
		fail_msg("the error \"%s\" does not say \"%s\"", text, what);
}

static void spec_set(struct proto_job_spec *spec, const char *queue, const uint8_t *payload,
                     uint32_t len, uint64_t delay_ms)
{
	memset(spec, 0, sizeof *spec);
	snprintf(spec->attrs.queue, sizeof spec->attrs.queue, "%s", queue);
	snprintf(spec->attrs.type, sizeof spec->attrs.type, "t");
	spec->payload = (struct proto_bytes){payload, len};
	spec->delay_ms = delay_ms;
}

/* Six jobs over an existing queue and a new one, as a batch, one delayed. */
static void six_specs(struct proto_job_spec *specs, const char *new_queue)
{
	static uint8_t payload[2000];
	memset(payload, 'p', sizeof payload);
	for (uint32_t i = 0; i < JOBS; i++)
		spec_set(&specs[i], i % 2 ? new_queue : "old", payload, 100 + 300 * i,
		         i == 3 ? 60000 : 0);
}

static void test_a_submit_failing_at_any_allocation_changes_nothing(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	struct proto_job_spec specs[JOBS];
	struct proto_msg reply;
	spec_set(&specs[0], "old", (const uint8_t *)"x", 1, 0);
	assert_true(submit_specs(f, specs, 1, false, &reply));
	assert_int_equal(reply.type, PROTO_SUBMITTED);
	proto_msg_fini(&reply);

	uint64_t refused = 0, admitted_unanswered = 0;
	uint64_t n;
	for (n = 1; n < 10000; n++) {
		char new_queue[32];
		snprintf(new_queue, sizeof new_queue, "new%llu", (unsigned long long)n);
		six_specs(specs, new_queue);
		struct fingerprint before = fingerprint_of(f);
		jm_heap_fail_at(n);
		bool answered = submit_specs(f, specs, JOBS, true, &reply);
		uint64_t calls = jm_heap_calls();
		jm_heap_fail_at(0);
		struct fingerprint after = fingerprint_of(f);
		if (answered && reply.type == PROTO_SUBMITTED) {
			assert_int_equal(reply.u.submitted.ids_count, JOBS);
			assert_int_equal(after.jobs, before.jobs + JOBS);
			proto_msg_fini(&reply);
			if (calls < n)
				break; /* no allocation failed: every point was tried */
			continue;
		}
		if (answered) {
			assert_int_equal(reply.type, PROTO_ERROR);
			proto_msg_fini(&reply);
		}
		/* A refusal, or an admission whose reply alone failed. */
		if (after.jobs == before.jobs) {
			assert_same(&before, &after, n);
			refused++;
		} else {
			assert_int_equal(after.jobs, before.jobs + JOBS);
			admitted_unanswered++;
		}
	}
	assert_true(n < 10000);
	assert_true(refused >= 8); /* jobs, payloads, heaps, the batch, the records */

	/* What the journal holds is what the live core held. */
	struct fingerprint live = fingerprint_of(f);
	core_fixture_finish(&f->c);
	core_fixture_start(&f->c);
	struct fingerprint replayed = fingerprint_of(f);
	assert_int_equal(replayed.jobs, live.jobs);
	assert_int_equal(replayed.batches, live.batches);
	assert_int_equal(replayed.ready_jobs, live.ready_jobs);
	assert_int_equal(replayed.live_bytes, live.live_bytes);
	/* Only queues that hold jobs come back; a refusal left none behind. */
	assert_int_equal(replayed.queues, live.queues);
}

static void test_a_submit_over_the_jobs_per_queue_limit_is_refused_whole(void **state)
{
	struct fixture *f = *state;
	f->c.config.state.max_queue_jobs = 2;
	core_fixture_start(&f->c);
	struct proto_job_spec specs[JOBS];
	six_specs(specs, "other"); /* three jobs in each of two queues */
	struct fingerprint before = fingerprint_of(f);
	struct proto_msg reply;
	assert_true(submit_specs(f, specs, JOBS, false, &reply));
	assert_int_equal(reply.type, PROTO_ERROR);
	assert_int_equal(reply.u.error.code, JM_ELIMIT);
	assert_error_says(&reply, "--max-queue-jobs");
	assert_error_says(&reply, "limit of 2");
	proto_msg_fini(&reply);
	struct fingerprint after = fingerprint_of(f);
	assert_same(&before, &after, 0);
	/* Two in each fit; then a third in either is refused. */
	assert_true(submit_specs(f, specs, 4, false, &reply));
	assert_int_equal(reply.type, PROTO_SUBMITTED);
	proto_msg_fini(&reply);
	before = fingerprint_of(f);
	assert_true(submit_specs(f, specs + 1, 1, false, &reply));
	assert_int_equal(reply.type, PROTO_ERROR);
	assert_error_says(&reply, "queue other holds 2 unfinished jobs");
	proto_msg_fini(&reply);
	after = fingerprint_of(f);
	assert_same(&before, &after, 0);
}

static void test_a_submit_over_the_payload_memory_limit_is_refused_whole(void **state)
{
	struct fixture *f = *state;
	f->c.config.state.max_payload_memory = 4000;
	core_fixture_start(&f->c);
	struct proto_job_spec specs[JOBS];
	six_specs(specs, "other"); /* 100+400+...+1600 = 5100 payload bytes */
	struct fingerprint before = fingerprint_of(f);
	struct proto_msg reply;
	assert_true(submit_specs(f, specs, JOBS, true, &reply));
	assert_int_equal(reply.type, PROTO_ERROR);
	assert_int_equal(reply.u.error.code, JM_ELIMIT);
	assert_error_says(&reply, "--max-payload-memory");
	assert_error_says(&reply, "limit of 4000");
	proto_msg_fini(&reply);
	struct fingerprint after = fingerprint_of(f);
	assert_same(&before, &after, 0);
	assert_true(submit_specs(f, specs, 2, true, &reply));
	assert_int_equal(reply.type, PROTO_SUBMITTED);
	proto_msg_fini(&reply);
}

static void test_a_delay_whose_run_time_overflows_is_refused(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	struct proto_job_spec specs[2];
	spec_set(&specs[0], "q", (const uint8_t *)"x", 1, 0);
	spec_set(&specs[1], "q", (const uint8_t *)"x", 1, UINT64_MAX / 1000);
	struct fingerprint before = fingerprint_of(f);
	struct proto_msg reply;
	assert_true(submit_specs(f, specs, 2, false, &reply));
	assert_int_equal(reply.type, PROTO_ERROR);
	assert_int_equal(reply.u.error.code, JM_EINVAL);
	assert_error_says(&reply, "job 1: delay_ms");
	assert_error_says(&reply, "overflow");
	proto_msg_fini(&reply);
	struct fingerprint after = fingerprint_of(f);
	assert_same(&before, &after, 0);
}

/* Sends req (its msg filled in) through the core; the reply decoded into
 * out, or false when none could be decoded. */
static bool send_request(struct fixture *f, struct core_call *c, struct proto_msg *out)
{
	c->req.pipe_id = 1;
	c->req.on_reply = core_call_replied;
	jm_buf_init(&c->req.reply);
	core_handle(f->c.core, &c->req);
	wait_done(c);
	bool decoded = false;
	if (c->status == 0 && c->req.reply.len > 0) {
		struct jm_err err = {0};
		decoded = proto_decode(c->req.reply.data, c->req.reply.len, out, &err) == 0;
	}
	jm_buf_fini(&f->reply);
	f->reply = c->req.reply;
	return decoded;
}

#define WORKER "w1"
#define INSTANCE 7

static proto_name queue_q = "q";

/* A FETCH of up to max jobs from queue q by WORKER, answered at once. */
static bool fetch_jobs(struct fixture *f, uint32_t max, struct proto_msg *out)
{
	struct core_call c = {0};
	c.req.msg.type = PROTO_FETCH;
	struct proto_fetch *fe = &c.req.msg.u.fetch;
	snprintf(fe->worker_id, sizeof fe->worker_id, WORKER);
	fe->instance = INSTANCE;
	fe->queues_count = 1;
	fe->queues = &queue_q;
	fe->max_jobs = max;
	return send_request(f, &c, out);
}

static bool settle_items(struct fixture *f, struct proto_settle_item *items, uint32_t n,
                         struct proto_msg *out)
{
	struct core_call c = {0};
	c.req.msg.type = PROTO_SETTLE;
	struct proto_settle *se = &c.req.msg.u.settle;
	snprintf(se->worker_id, sizeof se->worker_id, WORKER);
	se->instance = INSTANCE;
	se->items = items;
	se->items_count = n;
	return send_request(f, &c, out);
}

/* Hands back (RELEASED, no fault armed) every lease WORKER holds, read from
 * the state: a reply that failed to encode still leased its jobs. */
static void release_all(struct fixture *f)
{
	struct proto_settle_item items[16];
	uint32_t n = 0;
	pthread_mutex_lock(&f->c.core->lock);
	struct worker *w = worker_find(&f->c.core->state.workers, WORKER);
	for (struct job *job = w ? TAILQ_FIRST(&w->held) : NULL; job && n < 16;
	     job = TAILQ_NEXT(job, more->holder_link))
		items[n++] = (struct proto_settle_item){.job_id = job->id,
		                                        .lease = job->more->lease_token,
		                                        .outcome = PROTO_SETTLE_RELEASED};
	pthread_mutex_unlock(&f->c.core->lock);
	if (n == 0)
		return;
	struct proto_msg reply;
	assert_true(settle_items(f, items, n, &reply));
	assert_int_equal(reply.type, PROTO_SETTLED);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(reply.u.settled.codes[i], 0);
	proto_msg_fini(&reply);
}

static void submit_to_q(struct fixture *f, uint32_t n)
{
	struct proto_job_spec specs[JOBS];
	static uint8_t payload[300];
	memset(payload, 'p', sizeof payload);
	assert_true(n <= JOBS);
	for (uint32_t i = 0; i < n; i++)
		spec_set(&specs[i], "q", payload, sizeof payload, 0);
	struct proto_msg reply;
	assert_true(submit_specs(f, specs, n, false, &reply));
	assert_int_equal(reply.type, PROTO_SUBMITTED);
	proto_msg_fini(&reply);
}

/* What the journal holds is what the live core held. */
static void assert_replays_to_the_same(struct fixture *f)
{
	struct fingerprint live = fingerprint_of(f);
	core_fixture_finish(&f->c);
	core_fixture_start(&f->c);
	struct fingerprint replayed = fingerprint_of(f);
	assert_int_equal(replayed.jobs, live.jobs);
	/* A retry may come due between the two: pending and delayed alike. */
	assert_int_equal(replayed.ready_jobs + replayed.delayed, live.ready_jobs + live.delayed);
	assert_int_equal(replayed.active, live.active);
	assert_int_equal(replayed.finished, live.finished);
	assert_int_equal(replayed.live_bytes, live.live_bytes);
}

static void test_a_fetch_failing_at_any_allocation_leases_all_of_its_jobs_or_none(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	submit_to_q(f, JOBS);
	struct proto_msg reply;
	/* WORKER exists before the loop: its first fetch adds it. */
	assert_true(fetch_jobs(f, 1, &reply));
	proto_msg_fini(&reply);
	release_all(f);
	uint64_t refused = 0, leased = 0;
	uint64_t n;
	for (n = 1; n < 10000; n++) {
		struct fingerprint before = fingerprint_of(f);
		jm_heap_fail_at(n);
		bool answered = fetch_jobs(f, 4, &reply);
		uint64_t calls = jm_heap_calls();
		jm_heap_fail_at(0);
		struct fingerprint after = fingerprint_of(f);
		uint32_t delivered = 0;
		if (answered) {
			if (reply.type == PROTO_JOBS)
				delivered = reply.u.jobs.jobs_count;
			proto_msg_fini(&reply);
		}
		if (after.active == before.active) {
			/* Refused (an error, or no jobs): nothing changed. */
			assert_int_equal(delivered, 0);
			assert_same(&before, &after, n);
			refused++;
			continue;
		}
		/* Leased: all four, each journaled and applied. */
		assert_int_equal(after.active, before.active + 4);
		assert_int_equal(after.ready_jobs, before.ready_jobs - 4);
		assert_true(after.journal_bytes > before.journal_bytes);
		assert_true(delivered == 0 || delivered == 4);
		leased++;
		release_all(f);
		if (calls < n)
			break; /* no allocation failed: every point was tried */
	}
	assert_true(n < 10000);
	assert_true(refused >= 3); /* the arrays, the records, the heap */
	assert_true(leased >= 1);
	assert_replays_to_the_same(f);
}

static void test_a_settle_failing_at_any_allocation_settles_all_of_its_jobs_or_none(void **state)
{
	struct fixture *f = *state;
	/* A job that fails again and again must keep retrying, not
	 * dead-letter, so that every settle finishes exactly three. */
	f->c.config.state.queue_defaults.max_attempts = 1000;
	core_fixture_start(&f->c);
	submit_to_q(f, 4);
	static uint8_t result[500];
	memset(result, 'r', sizeof result);
	uint64_t refused = 0, settled = 0;
	uint64_t n;
	for (n = 1; n < 10000; n++) {
		struct proto_msg reply;
		assert_true(fetch_jobs(f, 4, &reply));
		assert_int_equal(reply.type, PROTO_JOBS);
		assert_int_equal(reply.u.jobs.jobs_count, 4);
		/* Two results, a failure that retries, one that dead-letters. */
		struct proto_settle_item items[4];
		for (uint32_t i = 0; i < 4; i++)
			items[i] = (struct proto_settle_item){
			    .job_id = reply.u.jobs.jobs[i].job_id,
			    .lease = reply.u.jobs.jobs[i].lease,
			    .outcome = i < 2 ? PROTO_SETTLE_COMPLETED : PROTO_SETTLE_FAILED,
			    .data = {result, 100 + 100 * i},
			    .permanent = i == 3};
		proto_msg_fini(&reply);
		struct fingerprint before = fingerprint_of(f);
		jm_heap_fail_at(n);
		bool answered = settle_items(f, items, 4, &reply);
		uint64_t calls = jm_heap_calls();
		jm_heap_fail_at(0);
		struct fingerprint after = fingerprint_of(f);
		if (answered) {
			if (reply.type == PROTO_SETTLED && after.active == before.active)
				for (uint32_t i = 0; i < 4; i++)
					assert_int_not_equal(reply.u.settled.codes[i], 0);
			proto_msg_fini(&reply);
		}
		if (after.active == before.active) {
			assert_same(&before, &after, n);
			refused++;
			release_all(f);
			continue;
		}
		/* Settled: all four (three finished, one waits to retry). */
		assert_int_equal(after.active, before.active - 4);
		assert_int_equal(after.finished, before.finished + 3);
		settled++;
		if (calls < n)
			break;
		submit_to_q(f, 3); /* with the retry, four to fetch */
		/* The retry comes due after its backoff (100 ms at most). */
		uint64_t deadline = jm_mono_us() + WAIT_MS * 1000u;
		while (fingerprint_of(f).ready_jobs < 4) {
			if (jm_mono_us() > deadline)
				fail_msg("the retried job never came due");
			usleep(1000);
		}
	}
	assert_true(n < 10000);
	assert_true(refused >= 3); /* the arrays, the copies, the records */
	assert_true(settled >= 1);
	assert_replays_to_the_same(f);
}

/* ---- REVIVE: every dead-lettered job of a queue, all or none ---------- */

#define DEAD_JOBS 5

/* Sends msg; decodes the reply into out (PROTO_ERROR on refusal); false
 * when no reply could be encoded. */
static bool send_decode(struct fixture *f, const struct proto_msg *msg, struct proto_msg *out)
{
	struct core_call c = {0};
	c.req.msg = *msg;
	return send_request(f, &c, out);
}

/* Fetches every pending job of queue "dead" and fails each permanently,
 * so that all of them are dead-lettered. */
static void fail_all_pending(struct fixture *f)
{
	static proto_name queue = "dead";
	struct proto_msg msg = {.type = PROTO_FETCH};
	snprintf(msg.u.fetch.worker_id, sizeof msg.u.fetch.worker_id, "w1");
	msg.u.fetch.instance = 1;
	msg.u.fetch.queues_count = 1;
	msg.u.fetch.queues = &queue;
	msg.u.fetch.max_jobs = DEAD_JOBS;
	struct proto_msg jobs;
	assert_true(send_decode(f, &msg, &jobs));
	assert_int_equal(jobs.type, PROTO_JOBS);
	struct proto_settle_item items[DEAD_JOBS];
	uint32_t n = jobs.u.jobs.jobs_count;
	assert_true(n <= DEAD_JOBS);
	for (uint32_t i = 0; i < n; i++)
		items[i] = (struct proto_settle_item){.job_id = jobs.u.jobs.jobs[i].job_id,
		                                      .lease = jobs.u.jobs.jobs[i].lease,
		                                      .outcome = PROTO_SETTLE_FAILED,
		                                      .data = {(const uint8_t *)"broken", 6},
		                                      .permanent = true};
	proto_msg_fini(&jobs);
	if (n == 0)
		return;
	struct proto_msg settle = {.type = PROTO_SETTLE};
	snprintf(settle.u.settle.worker_id, sizeof settle.u.settle.worker_id, "w1");
	settle.u.settle.instance = 1;
	settle.u.settle.items_count = n;
	settle.u.settle.items = items;
	struct proto_msg settled;
	assert_true(send_decode(f, &settle, &settled));
	assert_int_equal(settled.type, PROTO_SETTLED);
	proto_msg_fini(&settled);
}

static uint64_t dead_count(struct fixture *f)
{
	pthread_mutex_lock(&f->c.core->lock);
	struct queue *q = queue_find(&f->c.core->state.queues, "dead");
	uint64_t n = q ? q->failed : 0;
	pthread_mutex_unlock(&f->c.core->lock);
	return n;
}

static void
test_a_revive_of_every_dead_job_failing_at_any_allocation_revives_all_or_none(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	struct proto_job_spec specs[DEAD_JOBS];
	struct proto_msg reply;
	for (uint32_t i = 0; i < DEAD_JOBS; i++)
		spec_set(&specs[i], "dead", (const uint8_t *)"x", 1, 0);
	assert_true(submit_specs(f, specs, DEAD_JOBS, false, &reply));
	assert_int_equal(reply.type, PROTO_SUBMITTED);
	proto_msg_fini(&reply);

	uint64_t refused = 0, revived = 0;
	uint64_t n;
	for (n = 1; n < 10000; n++) {
		fail_all_pending(f);
		assert_int_equal(dead_count(f), DEAD_JOBS);
		struct proto_msg msg = {.type = PROTO_REVIVE};
		snprintf(msg.u.revive.queue, sizeof msg.u.revive.queue, "dead");
		struct fingerprint before = fingerprint_of(f);
		jm_heap_fail_at(n);
		bool answered = send_decode(f, &msg, &reply);
		uint64_t calls = jm_heap_calls();
		jm_heap_fail_at(0);
		struct fingerprint after = fingerprint_of(f);
		bool all = answered && reply.type == PROTO_REVIVED;
		if (all)
			assert_int_equal(reply.u.revived.ids_count, DEAD_JOBS);
		if (answered)
			proto_msg_fini(&reply);
		/* All revived (the reply may be what failed), or none and
		 * nothing journaled. */
		if (dead_count(f) == DEAD_JOBS) {
			assert_false(all);
			assert_same(&before, &after, n);
			refused++;
		} else {
			assert_int_equal(dead_count(f), 0);
			assert_int_equal(after.ready_jobs, before.ready_jobs + DEAD_JOBS);
			revived++;
		}
		if (all && calls < n)
			break; /* no allocation failed: every point was tried */
	}
	assert_true(n < 10000);
	assert_true(refused >= 3); /* the records, their lengths, the ids */

	/* What the journal holds is what the live core held. */
	struct fingerprint live = fingerprint_of(f);
	core_fixture_finish(&f->c);
	core_fixture_start(&f->c);
	struct fingerprint replayed = fingerprint_of(f);
	assert_int_equal(replayed.jobs, live.jobs);
	assert_int_equal(replayed.ready_jobs, live.ready_jobs);
	assert_int_equal(dead_count(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_a_submit_failing_at_any_allocation_changes_nothing,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_submit_over_the_jobs_per_queue_limit_is_refused_whole, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_submit_over_the_payload_memory_limit_is_refused_whole, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_delay_whose_run_time_overflows_is_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_fetch_failing_at_any_allocation_leases_all_of_its_jobs_or_none, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_settle_failing_at_any_allocation_settles_all_of_its_jobs_or_none, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_revive_of_every_dead_job_failing_at_any_allocation_revives_all_or_none,
	        setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
