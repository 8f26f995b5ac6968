/* The broker core driven through core_handle over a real journal in a temp
 * directory, as the server drives it: heartbeat reconciliation, the pump
 * that serves parked fetches, the retention sweep, the compaction trigger,
 * and deadlines that a step of the wall clock does not move.
 *
 * Requests are decoded messages; replies come back through on_reply (on the
 * journal's thread once durable) and are decoded again. The state is read
 * under core->lock (core_internal.h). Every wait polls a condition to a
 * deadline. */
#include "jm_test.h"

#include <pthread.h>
#include <unistd.h>

#include "clock.h"
#include "core_fixture.h"
#include "core_internal.h"
#include "journal.h"
#include "message.h"

#define WAIT_MS 10000
#define CALLS_MAX 256

struct fixture {
	struct core_fixture c;
	struct core_call calls[CALLS_MAX]; /* live until the core is freed */
	uint32_t calls_used;
};

/* Polls cond to a deadline; names what was awaited on failure. */
#define wait_for(cond, what)                                                                       \
	do {                                                                                       \
		uint64_t deadline_ = jm_mono_us() + WAIT_MS * 1000u;                               \
		while (!(cond)) {                                                                  \
			if (jm_mono_us() > deadline_)                                              \
				fail_msg("timed out after %d ms waiting for %s", WAIT_MS, what);   \
			usleep(2000);                                                              \
		}                                                                                  \
	} while (0)

/* Stops the core, then frees the replies of its calls. */
static void core_finish(struct fixture *f)
{
	core_fixture_finish(&f->c);
	for (uint32_t i = 0; i < f->calls_used; i++)
		jm_buf_fini(&f->calls[i].req.reply);
	f->calls_used = 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	core_fixture_init(&f->c, "core");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	core_finish(f);
	jm_clock_step_wall_us(0);
	core_fixture_fini(&f->c);
	free(f);
	return 0;
}

/* Hands msg to the core; the reply may come later (a parked request). */
static struct core_call *send_msg(struct fixture *f, const struct proto_msg *msg)
{
	assert_true(f->calls_used < CALLS_MAX);
	struct core_call *c = &f->calls[f->calls_used++];
	c->req.msg = *msg;
	c->req.pipe_id = 1;
	c->req.on_reply = core_call_replied;
	jm_buf_init(&c->req.reply);
	core_handle(f->c.core, &c->req);
	return c;
}

/* Waits for c's reply and decodes it into out (proto_msg_fini it). */
static void reply_of(struct core_call *c, enum proto_type type, struct proto_msg *out)
{
	wait_for(core_call_is_done(c), "a reply");
	assert_int_equal(c->status, 0);
	struct jm_err err = {0};
	assert_jm_ok_err(proto_decode(c->req.reply.data, c->req.reply.len, out, &err), &err);
	if (out->type == PROTO_ERROR)
		fail_msg("error reply %d: %.*s", out->u.error.code, (int)out->u.error.message.len,
		         (const char *)out->u.error.message.ptr);
	assert_int_equal(out->type, type);
}

static uint64_t submit(struct fixture *f, const char *queue, uint32_t payload_len)
{
	static uint8_t payload[4096];
	memset(payload, 'x', sizeof payload);
	struct proto_job_spec spec = {.payload = {payload, payload_len}};
	snprintf(spec.attrs.queue, sizeof spec.attrs.queue, "%s", queue);
	snprintf(spec.attrs.type, sizeof spec.attrs.type, "t");
	struct proto_msg msg = {.type = PROTO_SUBMIT};
	msg.u.submit.jobs_count = 1;
	msg.u.submit.jobs = &spec;
	struct proto_msg reply;
	reply_of(send_msg(f, &msg), PROTO_SUBMITTED, &reply);
	uint64_t id = reply.u.submitted.ids[0];
	proto_msg_fini(&reply);
	return id;
}

/* A FETCH of one job from queue q by worker's process instance. */
static struct core_call *fetch_as(struct fixture *f, const char *worker, uint64_t instance,
                                  uint32_t slot, uint32_t wait_ms)
{
	static proto_name queue = "q";
	struct proto_msg msg = {.type = PROTO_FETCH};
	snprintf(msg.u.fetch.worker_id, sizeof msg.u.fetch.worker_id, "%s", worker);
	msg.u.fetch.instance = instance;
	msg.u.fetch.slot = slot;
	msg.u.fetch.queues_count = 1;
	msg.u.fetch.queues = &queue;
	msg.u.fetch.max_jobs = 1;
	msg.u.fetch.wait_ms = wait_ms;
	return send_msg(f, &msg);
}

static struct core_call *fetch(struct fixture *f, const char *worker, uint32_t slot,
                               uint32_t wait_ms)
{
	return fetch_as(f, worker, 1, slot, wait_ms);
}

/* Fetches one job at once; returns its lease. */
static uint64_t fetch_one(struct fixture *f, const char *worker, uint64_t job_id)
{
	struct proto_msg reply;
	reply_of(fetch(f, worker, 0, 0), PROTO_JOBS, &reply);
	assert_int_equal(reply.u.jobs.jobs_count, 1);
	assert_int_equal(reply.u.jobs.jobs[0].job_id, job_id);
	uint64_t lease = reply.u.jobs.jobs[0].lease;
	proto_msg_fini(&reply);
	return lease;
}

static void ack(struct fixture *f, uint64_t job_id, uint64_t lease)
{
	struct proto_settle_item item = {
	    .job_id = job_id, .lease = lease, .outcome = PROTO_SETTLE_COMPLETED};
	struct proto_msg msg = {.type = PROTO_SETTLE};
	snprintf(msg.u.settle.worker_id, sizeof msg.u.settle.worker_id, "w1");
	msg.u.settle.instance = 1;
	msg.u.settle.items_count = 1;
	msg.u.settle.items = &item;
	struct proto_msg reply;
	reply_of(send_msg(f, &msg), PROTO_SETTLED, &reply);
	assert_int_equal(reply.u.settled.codes[0], 0);
	proto_msg_fini(&reply);
}

/* Sends a heartbeat of w1 listing leases; returns how many it must abandon. */
static uint32_t heartbeat(struct fixture *f, const struct proto_lease_ref *leases,
                          uint32_t leases_count)
{
	struct proto_msg msg = {.type = PROTO_HEARTBEAT};
	snprintf(msg.u.heartbeat.worker_id, sizeof msg.u.heartbeat.worker_id, "w1");
	msg.u.heartbeat.instance = 1;
	msg.u.heartbeat.concurrency = 1;
	msg.u.heartbeat.leases_count = leases_count;
	msg.u.heartbeat.leases = (struct proto_lease_ref *)leases;
	struct proto_msg reply;
	reply_of(send_msg(f, &msg), PROTO_HEARTBEAT_REPLY, &reply);
	uint32_t abandon = reply.u.heartbeat_reply.abandon_count;
	proto_msg_fini(&reply);
	return abandon;
}

/* A copy of what the state says about job id (state 0: gone). */
struct job_view {
	uint32_t state;
	uint32_t attempt;
	char last_error[128];
};

static struct job_view job_view(struct fixture *f, uint64_t id)
{
	struct job_view v = {0};
	pthread_mutex_lock(&f->c.core->lock);
	struct job *job = jobtable_find(&f->c.core->state.jobs, id);
	if (job) {
		v.state = job->state;
		v.attempt = job->attempt;
		if (job_last_error(job))
			snprintf(v.last_error, sizeof v.last_error, "%s", job_last_error(job));
	}
	pthread_mutex_unlock(&f->c.core->lock);
	return v;
}

static bool job_is_gone(struct fixture *f, uint64_t id)
{
	return job_view(f, id).state == 0;
}

/* ---- heartbeat reconciliation ------------------------------------------- */

static void test_heartbeat_that_stops_listing_a_lease_requeues_it_as_an_attempt(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	uint64_t id = submit(f, "q", 10);
	uint64_t lease = fetch_one(f, "w1", id);
	struct proto_lease_ref held = {id, lease};
	assert_int_equal(heartbeat(f, &held, 1), 0);
	assert_int_equal(job_view(f, id).state, PROTO_STATE_ACTIVE);
	/* The worker reported the lease, then stops reporting it. */
	assert_int_equal(heartbeat(f, NULL, 0), 0);
	struct job_view v = job_view(f, id);
	assert_int_not_equal(v.state, PROTO_STATE_ACTIVE);
	assert_int_equal(v.attempt, 1); /* the attempt counts */
	assert_non_null(strstr(v.last_error, "dropped the job without settling it"));
}

static void test_lease_never_reported_is_handed_back_without_an_attempt(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	uint64_t id = submit(f, "q", 10);
	fetch_one(f, "w1", id);
	/* Heartbeats that never list the lease: it never reached the worker. */
	for (int i = 0; i < WORKER_UNREPORTED_BEATS - 1; i++) {
		heartbeat(f, NULL, 0);
		assert_int_equal(job_view(f, id).state, PROTO_STATE_ACTIVE);
	}
	heartbeat(f, NULL, 0);
	struct job_view v = job_view(f, id);
	assert_int_not_equal(v.state, PROTO_STATE_ACTIVE);
	assert_int_equal(v.attempt, 0);
	assert_string_equal(v.last_error, "");
}

static void test_heartbeat_reply_abandons_a_lease_the_worker_no_longer_holds(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	uint64_t id = submit(f, "q", 10);
	uint64_t lease = fetch_one(f, "w1", id);
	struct proto_lease_ref leases[2] = {{id, lease}, {id, lease - 1}};
	assert_int_equal(heartbeat(f, leases, 2), 1); /* the older lease */
	assert_int_equal(heartbeat(f, leases, 1), 0);
}

/* ---- fencing ---------------------------------------------------------------- */

/* Sends msg and returns 0 for a reply of type ok_type, or the code of the
 * ERROR the core answered with. */
static int call_code(struct fixture *f, const struct proto_msg *msg, enum proto_type ok_type,
                     struct proto_msg *reply)
{
	struct core_call *c = send_msg(f, msg);
	wait_for(core_call_is_done(c), "a reply");
	assert_int_equal(c->status, 0);
	struct jm_err err = {0};
	assert_jm_ok_err(proto_decode(c->req.reply.data, c->req.reply.len, reply, &err), &err);
	if (reply->type == PROTO_ERROR)
		return reply->u.error.code;
	assert_int_equal(reply->type, ok_type);
	return 0;
}

/* A heartbeat of w1 as process instance, listing no lease, draining or
 * not. */
static int heartbeat_draining_as(struct fixture *f, uint64_t instance, bool draining)
{
	struct proto_msg msg = {.type = PROTO_HEARTBEAT};
	snprintf(msg.u.heartbeat.worker_id, sizeof msg.u.heartbeat.worker_id, "w1");
	msg.u.heartbeat.instance = instance;
	msg.u.heartbeat.concurrency = 1;
	msg.u.heartbeat.draining = draining;
	struct proto_msg reply;
	int code = call_code(f, &msg, PROTO_HEARTBEAT_REPLY, &reply);
	proto_msg_fini(&reply);
	return code;
}

static int heartbeat_as(struct fixture *f, uint64_t instance)
{
	return heartbeat_draining_as(f, instance, false);
}

/* A SETTLE completed of job_id under lease by w1 as instance: its code. */
static int32_t settle_as(struct fixture *f, uint64_t instance, uint64_t job_id, uint64_t lease)
{
	struct proto_settle_item item = {
	    .job_id = job_id, .lease = lease, .outcome = PROTO_SETTLE_COMPLETED};
	struct proto_msg msg = {.type = PROTO_SETTLE};
	snprintf(msg.u.settle.worker_id, sizeof msg.u.settle.worker_id, "w1");
	msg.u.settle.instance = instance;
	msg.u.settle.items_count = 1;
	msg.u.settle.items = &item;
	struct proto_msg reply;
	assert_int_equal(call_code(f, &msg, PROTO_SETTLED, &reply), 0);
	int32_t code = reply.u.settled.codes[0];
	proto_msg_fini(&reply);
	return code;
}

static void test_a_new_instance_under_a_live_workers_id_is_refused_and_changes_nothing(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	uint64_t id = submit(f, "q", 10);
	uint64_t lease = fetch_one(f, "w1", id);
	struct proto_lease_ref held = {id, lease};
	assert_int_equal(heartbeat(f, &held, 1), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(heartbeat_as(f, 2), JM_ESTATE);
	assert_int_equal(settle_as(f, 2, id, lease), JM_ESTALE);
	assert_int_equal(settle_as(f, 1, id, lease ^ 1), JM_ESTALE);
	struct job_view v = job_view(f, id);
	assert_int_equal(v.state, PROTO_STATE_ACTIVE);
	assert_int_equal(v.attempt, 1);
	assert_int_equal(settle_as(f, 1, id, lease), 0);
	assert_int_equal(job_view(f, id).state, PROTO_STATE_COMPLETED);
}

static void test_a_new_instance_takes_the_id_over_once_the_old_connection_closed(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	uint64_t id = submit(f, "q", 10);
	uint64_t lease = fetch_one(f, "w1", id);
	struct proto_lease_ref held = {id, lease};
	assert_int_equal(heartbeat(f, &held, 1), 0);
	core_pipe_gone(f->c.core, 1); /* every call of this fixture came on pipe 1 */
	assert_int_equal(heartbeat_as(f, 2), 0);
	struct job_view v = job_view(f, id);
	assert_int_not_equal(v.state, PROTO_STATE_ACTIVE);
	assert_int_equal(v.attempt, 1); /* the lost process's attempt counts */
	assert_non_null(strstr(v.last_error, "restarted"));
	assert_int_equal(settle_as(f, 1, id, lease), JM_ESTALE);
}

/* Draining is what a process said of itself: a new process under the id of
 * one that drained and exited fetches at once, before its first heartbeat
 * (it used to be answered "no jobs" until then, and its SDK backed off). */
static void test_a_new_instance_does_not_inherit_the_old_ones_draining(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	uint64_t id = submit(f, "q", 10);
	assert_int_equal(heartbeat_draining_as(f, 1, true), 0);
	struct proto_msg reply;
	reply_of(fetch_as(f, "w1", 1, 0, 0), PROTO_JOBS, &reply);
	assert_int_equal(reply.u.jobs.jobs_count, 0); /* draining: nothing for it */
	proto_msg_fini(&reply);
	core_pipe_gone(f->c.core, 1); /* every call of this fixture came on pipe 1 */
	reply_of(fetch_as(f, "w1", 2, 0, 0), PROTO_JOBS, &reply);
	assert_int_equal(reply.u.jobs.jobs_count, 1);
	assert_int_equal(reply.u.jobs.jobs[0].job_id, id);
	proto_msg_fini(&reply);
}

/* ---- pump ----------------------------------------------------------------- */

static void test_parked_fetch_is_served_by_a_later_submit(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	struct core_call *parked = fetch(f, "w1", 0, 30000);
	struct core_call *other = fetch(f, "w2", 0, 30000);
	/* Nothing to hand out: both stay parked, in arrival order. */
	pthread_mutex_lock(&f->c.core->lock);
	assert_non_null(dispatch_first(&f->c.core->dispatch));
	pthread_mutex_unlock(&f->c.core->lock);
	assert_false(core_call_is_done(parked));
	uint64_t id = submit(f, "q", 10);
	struct proto_msg reply;
	reply_of(parked, PROTO_JOBS, &reply);
	assert_int_equal(reply.u.jobs.jobs_count, 1);
	assert_int_equal(reply.u.jobs.jobs[0].job_id, id);
	proto_msg_fini(&reply);
	/* The oldest fetch got it; the other is still parked. */
	assert_false(core_call_is_done(other));
	uint64_t second = submit(f, "q", 10);
	reply_of(other, PROTO_JOBS, &reply);
	assert_int_equal(reply.u.jobs.jobs[0].job_id, second);
	proto_msg_fini(&reply);
}

static void test_pump_leaves_fetches_parked_while_a_queue_is_at_its_limit(void **state)
{
	struct fixture *f = *state;
	f->c.config.state.queue_defaults.max_active = 1;
	core_fixture_start(&f->c);
	uint64_t first = submit(f, "q", 10);
	uint64_t lease = fetch_one(f, "w1", first);
	struct core_call *parked = fetch(f, "w2", 0, 30000);
	uint64_t second = submit(f, "q", 10);
	assert_false(core_call_is_done(parked)); /* q is at max_active */
	ack(f, first, lease);
	struct proto_msg reply;
	reply_of(parked, PROTO_JOBS, &reply);
	assert_int_equal(reply.u.jobs.jobs[0].job_id, second);
	proto_msg_fini(&reply);
}

/* ---- retention ------------------------------------------------------------ */

static uint64_t completed_in(struct fixture *f, const char *queue)
{
	pthread_mutex_lock(&f->c.core->lock);
	struct queue *q = queue_find(&f->c.core->state.queues, queue);
	uint64_t completed = q ? q->completed : 0;
	pthread_mutex_unlock(&f->c.core->lock);
	return completed;
}

static void test_retention_sweep_drops_the_oldest_finished_jobs_over_the_count(void **state)
{
	struct fixture *f = *state;
	queue_policy_keep_all(&f->c.config.state.queue_defaults, 2,
	                      f->c.config.state.queue_defaults.keep[0].age_ms);
	core_fixture_start(&f->c);
	uint64_t ids[5];
	for (int i = 0; i < 5; i++) {
		ids[i] = submit(f, "q", 10);
		ack(f, ids[i], fetch_one(f, "w1", ids[i]));
	}
	wait_for(completed_in(f, "q") == 2, "the sweep to keep 2 finished jobs");
	for (int i = 0; i < 3; i++)
		assert_true(job_is_gone(f, ids[i]));
	assert_int_equal(job_view(f, ids[3]).state, PROTO_STATE_COMPLETED);
	assert_int_equal(job_view(f, ids[4]).state, PROTO_STATE_COMPLETED);
}

static void test_retention_sweep_drops_finished_jobs_past_their_age(void **state)
{
	struct fixture *f = *state;
	queue_policy_keep_all(&f->c.config.state.queue_defaults,
	                      f->c.config.state.queue_defaults.keep[0].count, 1);
	core_fixture_start(&f->c);
	uint64_t done = submit(f, "q", 10);
	ack(f, done, fetch_one(f, "w1", done));
	uint64_t pending = submit(f, "q", 10);
	wait_for(job_is_gone(f, done), "the sweep to drop the finished job");
	assert_int_equal(job_view(f, pending).state, PROTO_STATE_PENDING);
}

/* ---- compaction trigger ---------------------------------------------------- */

static void test_compaction_is_due_past_the_minimum_and_twice_the_live_state(void **state)
{
	(void)state;
	assert_false(compactor_is_due(1000000, 0, 0));       /* 0: never */
	assert_false(compactor_is_due(99999, 0, 100000));    /* under the minimum */
	assert_true(compactor_is_due(100000, 0, 100000));    /* nothing live */
	assert_true(compactor_is_due(200000, 100000, 1000)); /* exactly twice */
	assert_false(compactor_is_due(199999, 100000, 1000));
	assert_false(compactor_is_due(150000, 100000, 1000));
}

static uint64_t journal_bytes(struct fixture *f)
{
	return journal_snapshot_bytes(f->c.journal) + journal_log_bytes(f->c.journal);
}

static bool compaction_is_asked_or_running(struct fixture *f)
{
	pthread_mutex_lock(&f->c.core->lock);
	bool busy = f->c.core->compaction_wanted || f->c.core->compacting;
	pthread_mutex_unlock(&f->c.core->lock);
	return busy;
}

static uint64_t live_bytes(struct fixture *f)
{
	pthread_mutex_lock(&f->c.core->lock);
	uint64_t live = f->c.core->state.live_bytes;
	pthread_mutex_unlock(&f->c.core->lock);
	return live;
}

static void test_journal_of_live_jobs_is_not_compacted(void **state)
{
	struct fixture *f = *state;
	f->c.config.compact_min_bytes = 10000;
	core_fixture_start(&f->c);
	/* Pending jobs only: the journal is about their size, under twice. */
	for (int i = 0; i < 40; i++)
		submit(f, "q", 1000);
	assert_true(journal_bytes(f) >= 40000);
	assert_true(journal_bytes(f) < 2 * live_bytes(f));
	assert_false(compaction_is_asked_or_running(f));
	assert_int_equal(journal_snapshot_bytes(f->c.journal), 0);
}

/* With a minimum of 1 byte, a journal whose jobs were all dropped is not
 * compacted: a fresh snapshot of nothing would be due again at once. */
static void test_empty_state_is_not_compacted_over_and_over(void **state)
{
	struct fixture *f = *state;
	f->c.config.compact_min_bytes = 1;
	queue_policy_keep_all(&f->c.config.state.queue_defaults, 0,
	                      f->c.config.state.queue_defaults.keep[0].age_ms);
	core_fixture_start(&f->c);
	uint64_t id = submit(f, "q", 10);
	ack(f, id, fetch_one(f, "w1", id));
	/* The sweep drops the job and considers compaction under one hold of
	 * the lock, so once the job is gone the decision has been made. */
	wait_for(job_is_gone(f, id), "the sweep to drop the job");
	assert_int_equal(live_bytes(f), 0);
	assert_false(compaction_is_asked_or_running(f));
	assert_int_equal(journal_snapshot_bytes(f->c.journal), 0);
}

/* The case the old rule (segments since the snapshot at least as big as
 * the snapshot) missed: a snapshot lands while many jobs are live, then
 * they finish and retention drops them. The drops are writes, so the
 * journal is compacted again down to the few jobs kept, with no new
 * traffic. Under the old rule the idle journal stayed ~20x the state. */
static void test_snapshot_of_a_burst_is_replaced_once_the_burst_is_dropped(void **state)
{
	struct fixture *f = *state;
	f->c.config.compact_min_bytes = 20000;
	queue_policy_keep_all(&f->c.config.state.queue_defaults, 2,
	                      f->c.config.state.queue_defaults.keep[0].age_ms);
	core_fixture_start(&f->c);
	enum { JOBS = 40 };
	uint64_t ids[JOBS];
	for (int i = 0; i < JOBS; i++)
		ids[i] = submit(f, "q", 1000);
	assert_false(compaction_is_asked_or_running(f));
	/* The snapshot lands now, mid-burst (asked for directly: the rule
	 * would not ask while the journal is the live state's size). */
	pthread_mutex_lock(&f->c.core->lock);
	f->c.core->compaction_wanted = true;
	pthread_cond_signal(&f->c.core->compactor_wake);
	pthread_mutex_unlock(&f->c.core->lock);
	wait_for(!compaction_is_asked_or_running(f) &&
	             journal_snapshot_bytes(f->c.journal) > JOBS * 1000,
	         "a snapshot holding the burst");
	for (int i = 0; i < JOBS; i++)
		ack(f, ids[i], fetch_one(f, "w1", ids[i]));
	/* No request from here on: the retention sweep drops all but 2, and
	 * its drops bring the compaction. */
	wait_for(completed_in(f, "q") == 2, "retention to keep 2 jobs");
	wait_for(!compaction_is_asked_or_running(f) && journal_bytes(f) < 20000,
	         "the journal to be compacted below the minimum");
	uint64_t live = live_bytes(f);
	assert_true(live > 2 * 1000 && live < 2 * 1200);
	/* The state survives: reopen and find the kept jobs. */
	core_finish(f);
	core_fixture_start(&f->c);
	assert_int_equal(job_view(f, ids[JOBS - 1]).state, PROTO_STATE_COMPLETED);
	assert_true(job_is_gone(f, ids[0]));
}

/* ---- monotonic deadlines --------------------------------------------------- */

static uint64_t retention_sweeps_at(struct fixture *f)
{
	pthread_mutex_lock(&f->c.core->lock);
	uint64_t at = f->c.core->retention_timer.at_us;
	pthread_mutex_unlock(&f->c.core->lock);
	return at;
}

/* A wall clock stepped an hour ahead fires nothing: the lease, the parked
 * fetch and the lost-worker timer all run on the monotonic clock. The
 * timer is seen to have run after the step (the retention sweep re-arms
 * itself) before the state is checked. */
static void test_wall_clock_step_fires_no_lease_fetch_or_lost_worker(void **state)
{
	struct fixture *f = *state;
	f->c.config.state.dead_after_ms = 60000;
	core_fixture_start(&f->c);
	uint64_t id = submit(f, "q", 10);
	fetch_one(f, "w1", id);
	struct core_call *parked = fetch(f, "w2", 0, 30000);
	jm_clock_step_wall_us(3600ull * 1000000);
	uint64_t sweep = retention_sweeps_at(f);
	wait_for(retention_sweeps_at(f) != sweep, "the timer to run a sweep after the step");
	assert_int_equal(job_view(f, id).state, PROTO_STATE_ACTIVE);
	assert_int_equal(job_view(f, id).attempt, 1);
	assert_false(core_call_is_done(parked));
	pthread_mutex_lock(&f->c.core->lock);
	assert_non_null(worker_find(&f->c.core->state.workers, "w1"));
	assert_non_null(worker_find(&f->c.core->state.workers, "w2"));
	pthread_mutex_unlock(&f->c.core->lock);
}

/* A wall clock stepped back an hour delays nothing: a short parked fetch
 * still comes back empty on time. */
static void test_wall_clock_step_back_delays_no_parked_fetch(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	uint64_t started = jm_mono_us();
	struct core_call *parked = fetch(f, "w1", 0, 200);
	jm_clock_step_wall_us(-3600ll * 1000000);
	struct proto_msg reply;
	reply_of(parked, PROTO_JOBS, &reply);
	assert_int_equal(reply.u.jobs.jobs_count, 0);
	proto_msg_fini(&reply);
	assert_true(jm_mono_us() - started < WAIT_MS * 1000u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_heartbeat_that_stops_listing_a_lease_requeues_it_as_an_attempt, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_lease_never_reported_is_handed_back_without_an_attempt, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_heartbeat_reply_abandons_a_lease_the_worker_no_longer_holds, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_new_instance_under_a_live_workers_id_is_refused_and_changes_nothing, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_new_instance_takes_the_id_over_once_the_old_connection_closed, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_new_instance_does_not_inherit_the_old_ones_draining, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parked_fetch_is_served_by_a_later_submit, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_pump_leaves_fetches_parked_while_a_queue_is_at_its_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_retention_sweep_drops_the_oldest_finished_jobs_over_the_count, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_retention_sweep_drops_finished_jobs_past_their_age,
	                                    setup, teardown),
	    cmocka_unit_test(test_compaction_is_due_past_the_minimum_and_twice_the_live_state),
	    cmocka_unit_test_setup_teardown(test_journal_of_live_jobs_is_not_compacted, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_empty_state_is_not_compacted_over_and_over, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_snapshot_of_a_burst_is_replaced_once_the_burst_is_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_wall_clock_step_fires_no_lease_fetch_or_lost_worker, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wall_clock_step_back_delays_no_parked_fetch, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
