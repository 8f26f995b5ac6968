/* The worker SDK (jobmesh/worker.h): the fetch thread, slots running
 * handlers, settling, heartbeats and the graceful stop.
 *
 * Threads: jm_worker_run's caller becomes the coordinator (it waits for a
 * stop and carries it out); one fetch thread asks the broker for as many
 * jobs as the slots and the prefetch buffer can take, in one FETCH, and
 * puts them in the feed (feed.h); `concurrency` slot threads each loop
 * take from the feed -> run handler -> queue the outcome; one settler
 * thread that sends the queued outcomes as batched SETTLE messages
 * (settler.h: a slot goes on without waiting for the broker's synced
 * answer, and waits only while 2 x (concurrency + prefetch) outcomes are
 * unanswered); one heartbeat thread; one progress thread that sends what
 * handlers reported (progress.h: a report only stores the latest value, so
 * a handler never waits for the broker; at most one PROGRESS per job per
 * PROGRESS_INTERVAL_MS). All share one rpc (REQ socket, a context per
 * call), so a fetch, a settle and a heartbeat travel side by side: a drain
 * costs one fetch round trip per feed-full of jobs and one sync per settle
 * batch, not a round trip per job per slot.
 *
 * One fetch is in flight per process, always as slot 0, so the broker
 * keeps at most one parked fetch for us: a fetch we gave up on (our call
 * timed out while the broker still held it) is replaced by the next one
 * rather than parked twice. The park time (FETCH_WAIT_MS) stays far below
 * NNG's 60 s REQ resend, and our call waits FETCH_CALL_MARGIN_MS longer
 * than the park, so the broker's empty answer normally arrives first.
 *
 * Invariants:
 *  - a delivery enters the held set before it enters the feed and leaves
 *    it only after its SETTLE item was answered (or given up on), so every
 *    heartbeat lists every lease we may still act on, running or waiting;
 *    a slot that queued an outcome hands the entry to the settler, which
 *    removes it then;
 *  - exactly one party settles a lease (held_claim): its slot (through the
 *    settler), or the stop path handing it back;
 *  - a delivery that waited in the feed past its budget (feed.h) is handed
 *    back unrun (released: not an attempt), before the broker's lease
 *    deadline, which runs from the delivery, could pass while it waits;
 *  - a progress value reported and not yet sent when the handler returns
 *    is sent by its slot before it queues its outcome, so the broker
 *    holds the handler's last word on progress before the job settles;
 *  - a stop closes the feed and hands back what waited in it at once, joins
 *    the fetch thread and the slots, then flushes the settler (every queued
 *    outcome is sent within its settle budget), and only then ends
 *    heartbeats;
 *  - no handler starts once a stop was requested (worker_begin_handler);
 *    deliveries that arrive after it are handed back unrun (released);
 *  - every wait is bounded: fetch and settle retries back off from 100 ms to
 *    2 s and are cut short by a stop (fetches) or by each outcome's settle
 *    budget (settles); a slot waiting for room in the settle queue waits
 *    for a batch, which those budgets bound; nothing spins. */
#define _GNU_SOURCE
#include <jobmesh/worker.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "feed.h"
#include "held.h"
#include "log.h"
#include "message.h"
#include "progress.h"
#include "rpc.h"
#include "settler.h"

#define FETCH_WAIT_MS 10000       /* park time asked of the broker */
#define FETCH_CALL_MARGIN_MS 2000 /* our wait beyond the park time */
#define SETTLE_CALL_TIMEOUT_MS 5000
#define SETTLE_BUDGET_MIN_MS 5000 /* even a short job gets this long to settle */
#define SETTLE_BUDGET_MAX_MS 60000
#define HANDBACK_BUDGET_MS 10000 /* release at stop; silence requeues anyway */
#define HEARTBEAT_CALL_TIMEOUT_MS 3000
/* How long settles may still be retried once a stop no longer waits for
 * handlers (drain timeout passed, second signal): a broker that is down
 * must not hold the exit for a whole settle budget. */
#define STOP_SETTLE_GRACE_MS 3000
/* The draining heartbeat at a stop: a broker that does not answer within
 * it is taken as unreachable and our fetches are cut short. */
#define STOP_HEARTBEAT_CALL_TIMEOUT_MS 1000
#define PROGRESS_CALL_TIMEOUT_MS 2000
#define STALE_STATUS_CALL_TIMEOUT_MS 2000 /* why an outcome was refused */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 2000
#define HEARTBEAT_MS_DEFAULT 1000
#define DRAIN_TIMEOUT_MS_DEFAULT 30000
#define CONCURRENCY_MAX 1024
/* The default cap of the prefetch buffer, per slot, and over all slots
 * (jm_worker_options.prefetch). The buffer holds about two fetch round
 * trips of work (feed.h), so only jobs much shorter than a round trip
 * reach the cap. */
#define PREFETCH_PER_SLOT_DEFAULT 64
#define PREFETCH_DEFAULT_MAX 1000

struct worker_handler {
	proto_name type;
	jm_handler_fn fn;
	void *arg;
};

struct worker_slot {
	struct jm_worker *worker;
	uint32_t index;
	pthread_t thread;
	bool started;
};

struct jm_worker {
	char *broker_url;
	/* Owned copies of the options' token and TLS files; NULL: from the
	 * environment (rpc.h). */
	char *token;
	char *tls_ca, *tls_cert, *tls_key;
	proto_name worker_id;
	uint64_t instance; /* this process, as told to the broker (proto HEARTBEAT) */
	proto_name *queues;
	uint32_t queues_count;
	uint32_t concurrency;
	uint32_t prefetch; /* deliveries the feed may hold beyond idle slots */
	uint32_t heartbeat_ms;
	uint32_t drain_timeout_ms;
	char host[256];
	struct worker_handler *handlers;
	size_t handlers_count;

	struct rpc *rpc;
	struct held_set held;
	struct worker_slot *slots;
	struct feed feed; /* deliveries fetched ahead, waiting for a slot */
	pthread_t fetch_thread;
	bool fetch_started;
	struct rpc_cancel fetch_cancel; /* fired when we stop with the broker unreachable */
	pthread_t heartbeat_thread;
	bool heartbeat_started;
	struct progress_board progress;
	pthread_t progress_thread;
	bool progress_started;
	struct settler settler;
	/* The settler thread's SETTLE items and their deadlines,
	 * SETTLE_BATCH_ITEMS_MAX each. */
	struct proto_settle_item *settle_items;
	uint64_t *settle_deadlines_ms;
	struct held_lease **settle_helds; /* the batch's leases, retired at once */
	atomic_bool broker_down;          /* logs an outage once, not once per thread */

	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t cond;  /* CLOCK_MONOTONIC; any change below broadcasts */
	bool ran;             /* run was called: it may be called once */
	bool stop_requested;
	bool hard_stop; /* hand leases back now, without draining */
	/* Monotonic ms after which settles are no longer retried; 0 while the
	 * worker runs. Set when it stops (stop_settle_cutoff). */
	_Atomic uint64_t settle_cutoff_ms;
	/* Fired with fetch_cancel: the heartbeat thread's calls. */
	struct rpc_cancel heartbeat_cancel;
	bool heartbeat_exit;
	uint32_t handlers_running;

	/* Concluded jobs kept for the next deliveries (job_new, job_release):
	 * a jm_job is ~2 KiB, made on a slot thread and, for a deferred job
	 * (--serve), freed on its owner's thread, and glibc served that churn
	 * with arena locks, heap growth and page faults per job. */
	pthread_mutex_t job_cache_lock;
	struct jm_job *job_cache; /* linked by cache_next */
	size_t job_cache_count;
};

struct jm_job {
	struct jm_worker *worker;
	const struct proto_delivery *delivery;
	struct held_lease *held;
	struct feed_item *item; /* finished with when the job concludes */
	uint8_t *result;
	size_t result_len;
	char error[PROTO_ERROR_TEXT_MAX + 1];
	bool has_error;
	struct progress_entry progress; /* on the board from the first report */
	struct jm_job *cache_next;      /* in the worker's job_cache */
};

/* The most concluded jobs the worker keeps for reuse (~2 KiB each). */
#define JOB_CACHE_MAX 1024u

/* A job for item's delivery, its fields set (error empty, no result,
 * progress blank), or NULL when out of memory. */
static struct jm_job *job_new(struct jm_worker *w, struct feed_item *item)
{
	pthread_mutex_lock(&w->job_cache_lock);
	struct jm_job *job = w->job_cache;
	if (job != NULL) {
		w->job_cache = job->cache_next;
		w->job_cache_count--;
	}
	pthread_mutex_unlock(&w->job_cache_lock);
	if (job == NULL && (job = malloc(sizeof *job)) == NULL)
		return NULL;
	job->worker = w;
	job->delivery = item->delivery;
	job->held = item->held;
	job->item = item;
	job->result = NULL;
	job->result_len = 0;
	job->error[0] = '\0';
	job->has_error = false;
	job->cache_next = NULL;
	progress_entry_init(&job->progress, item->delivery->job_id, item->delivery->lease);
	return job;
}

/* Frees what job holds and keeps it for the next job (or frees it). */
static void job_release(struct jm_worker *w, struct jm_job *job)
{
	free(job->result);
	job->result = NULL;
	pthread_mutex_lock(&w->job_cache_lock);
	if (w->job_cache_count < JOB_CACHE_MAX) {
		job->cache_next = w->job_cache;
		w->job_cache = job;
		w->job_cache_count++;
		job = NULL;
	}
	pthread_mutex_unlock(&w->job_cache_lock);
	free(job);
}

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ms(void)
{
	return jm_mono_us() / 1000u;
}

static uint32_t backoff_next_ms(uint32_t current_ms)
{
	if (current_ms == 0)
		return BACKOFF_FIRST_MS;
	return current_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS : current_ms * 2;
}

static bool worker_stopping(struct jm_worker *w)
{
	pthread_mutex_lock(&w->lock);
	bool stopping = w->stop_requested;
	pthread_mutex_unlock(&w->lock);
	return stopping;
}

/* Sleeps wait_ms unless a stop is (or gets) requested; true if stopping. */
static bool worker_sleep_unless_stopping(struct jm_worker *w, uint32_t wait_ms)
{
	struct timespec until = jm_timespec_after_ms(CLOCK_MONOTONIC, wait_ms);
	pthread_mutex_lock(&w->lock);
	while (!w->stop_requested) {
		if (pthread_cond_timedwait(&w->cond, &w->lock, &until) == ETIMEDOUT)
			break;
	}
	bool stopping = w->stop_requested;
	pthread_mutex_unlock(&w->lock);
	return stopping;
}

/* Sleeps wait_ms whatever happens: a settle keeps retrying through a stop
 * (the stop waits for it), and must not turn into a tight loop then. */
static void sleep_ms(uint32_t wait_ms)
{
	struct timespec left = jm_timespec_of_us((uint64_t)wait_ms * 1000u);
	while (nanosleep(&left, &left) != 0 && errno == EINTR)
		;
}

/* Counts a handler in, unless a stop was requested: then no handler may
 * start (the coordinator may already be waiting for the count to drop). */
static bool worker_begin_handler(struct jm_worker *w)
{
	pthread_mutex_lock(&w->lock);
	bool allowed = !w->stop_requested;
	if (allowed)
		w->handlers_running++;
	pthread_mutex_unlock(&w->lock);
	return allowed;
}

/* Only a stop waits for the count (worker_drain, worker_join_all): while
 * the worker runs, a broadcast per job would wake the coordinator and the
 * heartbeat thread for nothing, twice a job. */
static void worker_end_handler(struct jm_worker *w, uint32_t count)
{
	pthread_mutex_lock(&w->lock);
	w->handlers_running -= count;
	if (w->stop_requested)
		pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static bool code_is_transient(int code)
{
	return code == JM_ETRANSPORT || code == JM_ETIMEDOUT || code == JM_ENOSPC ||
	       code == JM_ENOSTANDBY || code == JM_ECLOSED;
}

static void broker_note_failure(struct jm_worker *w, const char *what, struct jm_err *err)
{
	if (!atomic_exchange(&w->broker_down, true))
		jm_warn("broker %s: %s failed: %s; retrying until it answers", w->broker_url, what,
		        jm_err_text(err));
}

static void broker_note_success(struct jm_worker *w)
{
	if (atomic_exchange(&w->broker_down, false))
		jm_info("broker %s reachable again", w->broker_url);
}

/* Copies text into a proto_name; false if it breaks the naming rule. */
static bool name_copy(proto_name dst, const char *text)
{
	size_t len = text != NULL ? strlen(text) : 0;
	if (!proto_name_is_valid(text, len))
		return false;
	memcpy(dst, text, len + 1);
	return true;
}

/* "<host>-<pid>" with every character outside the name rule replaced by
 * '-' and the host cut so that the whole fits PROTO_NAME_MAX. */
static void default_worker_id(proto_name out, const char *host)
{
	char pid_part[24];
	int pid_len = snprintf(pid_part, sizeof pid_part, "-%d", (int)getpid());
	size_t host_max = PROTO_NAME_MAX - (size_t)pid_len;
	size_t used = 0;
	for (const char *c = host; *c != '\0' && used < host_max; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		          (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-';
		out[used++] = ok ? *c : '-';
	}
	if (used == 0) {
		memcpy(out, "worker", 6);
		used = 6;
	}
	memcpy(out + used, pid_part, (size_t)pid_len + 1);
}

/* A random number naming this process to the broker, never 0: a process
 * restarted under the same worker id must not be taken for the old one. */
static uint64_t draw_instance(void)
{
	uint64_t instance = 0;
	if (getrandom(&instance, sizeof instance, 0) != (ssize_t)sizeof instance)
		instance = jm_wall_us() ^ ((uint64_t)getpid() << 40);
	return instance != 0 ? instance : 1;
}

static const struct worker_handler *handler_find(const struct jm_worker *w, const char *type)
{
	for (size_t i = 0; i < w->handlers_count; i++) {
		if (strcmp(w->handlers[i].type, type) == 0)
			return &w->handlers[i];
	}
	return NULL;
}

/* ---- settling: SETTLE with retries -------------------------------------- */

static uint64_t settle_budget_ms(uint64_t job_timeout_ms)
{
	if (job_timeout_ms == 0 || job_timeout_ms > SETTLE_BUDGET_MAX_MS)
		return SETTLE_BUDGET_MAX_MS;
	return job_timeout_ms < SETTLE_BUDGET_MIN_MS ? SETTLE_BUDGET_MIN_MS : job_timeout_ms;
}

/* True when the broker says job_id was cancelled. The broker refuses an
 * outcome for a cancelled job with the same JM_ESTALE as for a job it
 * requeued, and a heartbeat's abandon list does not say why either: only
 * the job's state tells a user's cancel (routine) from a lost lease. One
 * STATUS call, on this rare path only. */
static bool settle_job_was_cancelled(struct jm_worker *w, uint64_t job_id)
{
	struct proto_msg req = {.type = PROTO_STATUS};
	req.u.job_ref.job_id = job_id;
	struct rpc_reply reply;
	memset(&reply, 0, sizeof reply);
	struct jm_err err;
	jm_err_clear(&err);
	if (rpc_call(w->rpc, &req, STALE_STATUS_CALL_TIMEOUT_MS, &reply, &err) != 0)
		return false;
	bool cancelled =
	    reply.msg.type == PROTO_JOB && reply.msg.u.job.state == PROTO_STATE_CANCELLED;
	rpc_reply_fini(&reply);
	return cancelled;
}

/* Logs the broker's verdict on one item; true if it should be sent again. */
static bool settle_item_verdict(struct jm_worker *w, const struct proto_settle_item *item, int code)
{
	uint64_t job_id = item->job_id;
	uint64_t lease = item->lease;
	const char *what = item->outcome == PROTO_SETTLE_COMPLETED ? "result"
	                   : item->outcome == PROTO_SETTLE_FAILED  ? "failure"
	                                                           : "hand-back";
	if (code == 0)
		return false;
	if (code == JM_ENOSPC || code == JM_ENOSTANDBY)
		return true;
	if (code == JM_ESTALE && settle_job_was_cancelled(w, job_id))
		jm_info("job %" PRIu64 " lease %" PRIu64 ": the job was cancelled; dropping our %s",
		        job_id, lease, what);
	else if (code == JM_ESTALE)
		jm_warn("job %" PRIu64 " lease %" PRIu64 ": %s refused: the broker gave the job to "
		        "another worker meanwhile; dropping our outcome",
		        job_id, lease, what);
	else
		jm_error("job %" PRIu64 " lease %" PRIu64 ": %s refused by the broker: %s", job_id,
		         lease, what, jm_strerror(code));
	return false;
}

/* Moves item `from` of a SETTLE, with its deadline, to slot `to`
 * (to <= from): how the retry loops compact what is still to be sent. */
static void settle_keep(struct proto_settle *msg, uint64_t *deadlines_ms, uint32_t to,
                        uint32_t from)
{
	msg->items[to] = msg->items[from];
	deadlines_ms[to] = deadlines_ms[from];
}

/* Gives up the items of msg whose deadline comes before retry_at_ms (they
 * get no answer: the broker's lease deadline requeues them), keeping the
 * others and their deadlines in order. Returns how many are kept. */
static uint32_t settle_give_up_due(struct proto_settle *msg, uint64_t *deadlines_ms,
                                   uint64_t retry_at_ms, const struct jm_err *err)
{
	uint32_t kept = 0;
	uint32_t given_up = 0;
	uint64_t first_job = 0;
	for (uint32_t i = 0; i < msg->items_count; i++) {
		if (deadlines_ms[i] < retry_at_ms) {
			if (given_up++ == 0)
				first_job = msg->items[i].job_id;
			continue;
		}
		settle_keep(msg, deadlines_ms, kept++, i);
	}
	if (given_up > 0)
		jm_error("giving up the settle of %" PRIu32 " job(s) (first: job %" PRIu64
		         ") at the end of their settle budget: %s; the broker will requeue them "
		         "when their leases expire",
		         given_up, first_job, jm_err_text(err));
	msg->items_count = kept;
	return kept;
}

/* Sends a SETTLE (msg's items are ours to reorder, deadlines_ms[i]
 * along with item i) until every item is answered, retrying transport
 * errors, timeouts and a full journal with backoff. An item still
 * unanswered when its deadline (monotonic ms) comes is given up on (logged):
 * the broker's lease deadline requeues it. */
static void settle_send(struct jm_worker *w, struct proto_msg *msg, uint64_t *deadlines_ms)
{
	struct proto_settle *settle = &msg->u.settle;
	const char *what = "settle";
	uint32_t *count = &settle->items_count;
	uint32_t backoff_ms = 0;
	struct jm_err err;

	while (*count > 0) {
		/* A stopping worker shortens every budget to its cutoff. */
		uint32_t call_ms = SETTLE_CALL_TIMEOUT_MS;
		uint64_t cutoff = atomic_load(&w->settle_cutoff_ms);
		if (cutoff != 0) {
			for (uint32_t i = 0; i < *count; i++)
				if (deadlines_ms[i] > cutoff)
					deadlines_ms[i] = cutoff;
			uint64_t now = now_ms();
			uint64_t left = cutoff > now ? cutoff - now : 0;
			call_ms = left < BACKOFF_FIRST_MS ? BACKOFF_FIRST_MS
			          : left < call_ms        ? (uint32_t)left
			                                  : call_ms;
		}
		struct rpc_reply reply;
		memset(&reply, 0, sizeof reply);
		jm_err_clear(&err);
		int rc = rpc_call(w->rpc, msg, call_ms, &reply, &err);
		if (rc == 0 && (reply.msg.type != PROTO_SETTLED ||
		                reply.msg.u.settled.codes_count != *count)) {
			rc = jm_err_set(&err, JM_EPROTO,
			                "the broker answered our %s of %" PRIu32
			                " job(s) with %s, not settled with one code each",
			                what, *count, proto_type_name(reply.msg.type));
			rpc_reply_fini(&reply);
		}
		if (rc == 0) {
			broker_note_success(w);
			uint32_t kept = 0;
			for (uint32_t i = 0; i < *count; i++) {
				if (!settle_item_verdict(w, &settle->items[i],
				                         reply.msg.u.settled.codes[i]))
					continue;
				settle_keep(settle, deadlines_ms, kept++, i);
			}
			rpc_reply_fini(&reply);
			*count = kept;
			if (kept == 0)
				return;
			jm_err_set(&err, JM_ENOSPC, "%s", jm_strerror(JM_ENOSPC));
		} else if (!code_is_transient(rc)) {
			jm_error("%s of %" PRIu32 " job(s) refused by the broker: %s", what, *count,
			         jm_err_text(&err));
			return;
		} else {
			broker_note_failure(w, what, &err);
		}
		backoff_ms = backoff_next_ms(backoff_ms);
		if (settle_give_up_due(settle, deadlines_ms, now_ms() + backoff_ms, &err) == 0)
			return;
		sleep_ms(backoff_ms);
	}
}

/* A SETTLE of items_count items from this worker process. */
static struct proto_msg settle_msg(const struct jm_worker *w, struct proto_settle_item *items,
                                   uint32_t items_count)
{
	struct proto_msg msg = {.version = PROTO_VERSION, .type = PROTO_SETTLE};
	memcpy(msg.u.settle.worker_id, w->worker_id, sizeof w->worker_id);
	msg.u.settle.instance = w->instance;
	msg.u.settle.items_count = items_count;
	msg.u.settle.items = items;
	return msg;
}

/* Settles one outcome (enum proto_settle_outcome; data: the result or the
 * error text) from the calling thread: for what cannot go through the
 * settler (a delivery handed back unrun, an outcome we had no memory to
 * queue). */
static void settle_one(struct jm_worker *w, const struct proto_delivery *d, uint32_t outcome,
                       const void *data, size_t len, bool permanent)
{
	struct proto_settle_item item = {
	    .job_id = d->job_id,
	    .lease = d->lease,
	    .outcome = outcome,
	    .data = {.ptr = len ? data : NULL, .len = (uint32_t)len},
	    .permanent = permanent,
	};
	struct proto_msg msg = settle_msg(w, &item, 1);
	uint64_t deadline_ms =
	    now_ms() + (outcome == PROTO_SETTLE_RELEASED ? HANDBACK_BUDGET_MS
	                                                 : settle_budget_ms(d->attrs.timeout_ms));
	settle_send(w, &msg, &deadline_ms);
}

/* The settler's send callback (settler.h): one SETTLE with every outcome
 * of the batch, each item with its own budget. Only then are the batch's
 * leases retired from the held set, so heartbeats list a lease until its
 * settle was answered or given up on. */
static void settle_batch_cb(void *arg, struct settle_outcome *const *batch, size_t count)
{
	struct jm_worker *w = arg;
	struct proto_msg msg = settle_msg(w, w->settle_items, (uint32_t)count);
	for (size_t i = 0; i < count; i++) {
		const struct settle_outcome *o = batch[i];
		w->settle_items[i] = (struct proto_settle_item){
		    .job_id = o->job_id,
		    .lease = o->lease,
		    .outcome = o->outcome,
		    .data = {.ptr = o->data_len ? o->data : NULL, .len = o->data_len},
		    .permanent = o->permanent,
		};
		w->settle_deadlines_ms[i] = o->deadline_ms;
	}
	if (count > 0)
		settle_send(w, &msg, w->settle_deadlines_ms);
	for (size_t i = 0; i < count; i++)
		w->settle_helds[i] = batch[i]->held;
	held_remove_many(&w->held, w->settle_helds, count);
}

/* Hands back (SETTLE released) every held lease nobody is settling yet and
 * tells their handlers to abandon. Used when the drain timed out or a stop
 * without drain was asked for. */
static void worker_hand_back_all(struct jm_worker *w)
{
	struct proto_lease_ref *refs = NULL;
	size_t count = held_abandon_and_claim_all(&w->held, &refs);
	if (count == 0)
		return;
	struct proto_settle_item *items = calloc(count, sizeof *items);
	uint64_t *deadlines_ms = calloc(count, sizeof *deadlines_ms);
	if (items == NULL || deadlines_ms == NULL) {
		jm_error("out of memory handing back %zu job(s); the broker will requeue them "
		         "when this worker's heartbeats stop",
		         count);
		free(deadlines_ms);
		free(items);
		free(refs);
		return;
	}
	uint64_t deadline_ms = now_ms() + HANDBACK_BUDGET_MS;
	char error[128];
	snprintf(error, sizeof error, "worker %s stopped: handed back unfinished", w->worker_id);
	for (size_t i = 0; i < count; i++) {
		items[i].job_id = refs[i].job_id;
		items[i].lease = refs[i].lease;
		items[i].outcome = PROTO_SETTLE_RELEASED;
		items[i].data.ptr = (const uint8_t *)error;
		items[i].data.len = (uint32_t)strlen(error);
		deadlines_ms[i] = deadline_ms;
		jm_info("handing back job %" PRIu64 " lease %" PRIu64, refs[i].job_id,
		        refs[i].lease);
	}
	struct proto_msg msg = settle_msg(w, items, (uint32_t)count);
	settle_send(w, &msg, deadlines_ms);
	for (size_t i = 0; i < count; i++)
		held_set_settled_ref(&w->held, refs[i].job_id, refs[i].lease);
	free(deadlines_ms);
	free(items);
	free(refs);
}

/* ---- progress ------------------------------------------------------------ */

/* Sends one PROGRESS and says how the broker took it; a refusal's text goes
 * to err. */
static enum progress_send_result
progress_send(struct jm_worker *w, const struct progress_value *value, struct jm_err *err)
{
	struct proto_msg msg = {.version = PROTO_VERSION, .type = PROTO_PROGRESS};
	struct proto_progress *p = &msg.u.progress;
	memcpy(p->worker_id, w->worker_id, sizeof w->worker_id);
	p->job_id = value->job_id;
	p->lease = value->lease;
	p->done = value->done;
	p->total = value->total;
	p->message.ptr = value->message_len ? (const uint8_t *)value->message : NULL;
	p->message.len = value->message_len;
	p->instance = w->instance;

	struct rpc_reply reply;
	memset(&reply, 0, sizeof reply);
	jm_err_clear(err);
	int rc = rpc_call(w->rpc, &msg, PROGRESS_CALL_TIMEOUT_MS, &reply, err);
	if (rc == 0) {
		bool settled =
		    reply.msg.type == PROTO_SETTLED && reply.msg.u.settled.codes_count == 1;
		int code = settled ? reply.msg.u.settled.codes[0] : JM_EPROTO;
		if (!settled)
			jm_err_set(
			    err, JM_EPROTO,
			    "the broker answered progress with %s, not settled with one code",
			    proto_type_name(reply.msg.type));
		else if (code != 0)
			jm_err_set(err, code, "%s", jm_strerror(code));
		rpc_reply_fini(&reply);
		broker_note_success(w);
		if (code == 0)
			return PROGRESS_SENT;
		/* A job the broker no longer knows (retention dropped it) is no
		 * more ours than one it gave to someone else. */
		if (code == JM_ESTALE || code == JM_ENOTFOUND)
			return PROGRESS_STALE;
		return code_is_transient(code) ? PROGRESS_RETRY : PROGRESS_REFUSED;
	}
	if (rc == JM_ESTALE || rc == JM_ENOTFOUND)
		return PROGRESS_STALE;
	if (code_is_transient(rc)) {
		broker_note_failure(w, "progress", err);
		return PROGRESS_RETRY;
	}
	return PROGRESS_REFUSED;
}

/* Logs how the broker refused a job's progress (once per job). */
static void progress_log_refusal(struct jm_worker *w, const struct progress_value *value,
                                 enum progress_send_result result, struct jm_err *err)
{
	if (result == PROGRESS_STALE)
		jm_info("job %" PRIu64 " lease %" PRIu64 ": the broker refused its progress: the "
		        "lease is no longer ours; abandoning it",
		        value->job_id, value->lease);
	else
		jm_warn("job %" PRIu64 " lease %" PRIu64 ": the broker refused its progress "
		        "(%" PRIu64 " of %" PRIu64 "): %s; dropping it",
		        value->job_id, value->lease, value->done, value->total, jm_err_text(err));
}

/* The sender: one PROGRESS at a time, whichever job's value is due first. */
static void *progress_main(void *arg)
{
	struct jm_worker *w = arg;
	struct progress_value value;
	struct progress_entry *entry = NULL;
	while (progress_take_wait(&w->progress, &value, &entry)) {
		struct jm_err err;
		enum progress_send_result result = progress_send(w, &value, &err);
		/* Abandon before the entry is released: the handler may return
		 * as soon as progress_sent lets its slot go on. */
		if (result == PROGRESS_STALE)
			held_mark_abandon(&w->held, value.job_id, value.lease);
		if (progress_sent(&w->progress, entry, result, now_ms()))
			progress_log_refusal(w, &value, result, &err);
	}
	return NULL;
}

/* Sends the value a handler left unsent, once, before its job settles. No
 * retry: the settle that follows has its own, and progress is advisory. */
static void progress_send_last(struct jm_worker *w, const struct progress_value *value)
{
	struct jm_err err;
	enum progress_send_result result = progress_send(w, value, &err);
	if (result == PROGRESS_REFUSED)
		progress_log_refusal(w, value, result, &err);
	else if (result == PROGRESS_RETRY)
		jm_debug("job %" PRIu64 ": its last progress could not be sent: %s", value->job_id,
		         jm_err_text(&err));
}

/* ---- slots: fetch, run, settle ----------------------------------------- */

/* Outcomes of jobs ended together (jm_job_finish_many), handed to the
 * settler in one put once all are made. */
struct conclude_list {
	struct settle_outcome *head, *tail;
	size_t count;
};

/* Queues an outcome with the settler (or on list, when not NULL, for the
 * caller to put), which from then on owns held (it retires the lease once
 * the broker answered). Returns false, still owning held, when out of
 * memory: the caller then settles it itself. */
static bool slot_queue_outcome(struct jm_worker *w, const struct proto_delivery *d,
                               struct held_lease *held, uint32_t settle_outcome, const void *data,
                               size_t len, bool permanent, struct conclude_list *list)
{
	uint64_t deadline_ms = now_ms() + settle_budget_ms(d->attrs.timeout_ms);
	struct settle_outcome *outcome =
	    settle_outcome_new(settle_outcome, d->job_id, d->lease, deadline_ms, held, data, len);
	if (outcome == NULL) {
		jm_warn("job %" PRIu64 ": out of memory queueing its outcome; settling it from its "
		        "slot",
		        d->job_id);
		return false;
	}
	outcome->permanent = permanent;
	if (list == NULL) {
		settler_put(&w->settler, outcome);
		return true;
	}
	outcome->next = NULL;
	if (list->tail != NULL)
		list->tail->next = outcome;
	else
		list->head = outcome;
	list->tail = outcome;
	list->count++;
	return true;
}

/* May the slot that ran a job send its SETTLE itself and wait for the
 * answer? When no delivery waits in the feed and the settler is idle, the
 * slot has nothing else to do, and handing the outcome to the settler
 * thread would only add a thread wake-up (50-100 µs on a lone job's way to
 * completed, W3 of issue 12). With deliveries waiting, the settler sends,
 * so that the slot goes on to the next job at once. */
static bool slot_settles_itself(struct jm_worker *w)
{
	return feed_is_empty(&w->feed) && settler_is_idle(&w->settler);
}

/* Ends a job whose handler returned (on_slot: on the slot's thread) or that
 * its owner finished (a deferred one): hands its outcome to the settler
 * (or, on the slot, maybe settles it itself: slot_settles_itself; never on
 * an owner's thread, which must not wait for the broker), unless the stop path
 * claimed the lease meanwhile (then the outcome is dropped: it was handed
 * back), finishes with its feed item and frees job. The handler is counted
 * out last, so a drain that saw the count drop to 0 knows every outcome
 * was queued. With list (jm_job_finish_many) the outcome goes on list and
 * the handler is not counted out: the caller puts the list, then counts
 * them all out. */
static void job_conclude(struct jm_job *job, int outcome, bool on_slot, struct conclude_list *list)
{
	struct jm_worker *w = job->worker;
	const struct proto_delivery *d = job->delivery;
	struct held_lease *held = job->held;
	bool ours = held_claim(&w->held, held);
	struct progress_value last_progress;
	bool progress_unsent = progress_finish(&w->progress, &job->progress, &last_progress);
	if (ours && progress_unsent && !jm_job_should_abandon(job) && outcome != JM_HANDLER_RELEASE)
		progress_send_last(w, &last_progress);
	bool direct = on_slot && ours && outcome != JM_HANDLER_RELEASE && slot_settles_itself(w);
	bool queued = false;
	if (!ours) {
		jm_debug("job %" PRIu64 " lease %" PRIu64 " was handed back during the stop; "
		         "dropping its outcome",
		         d->job_id, d->lease);
	} else if (outcome == JM_HANDLER_OK) {
		queued = !direct && slot_queue_outcome(w, d, held, PROTO_SETTLE_COMPLETED,
		                                       job->result, job->result_len, false, list);
		if (!queued)
			settle_one(w, d, PROTO_SETTLE_COMPLETED, job->result, job->result_len,
			           false);
	} else if (outcome == JM_HANDLER_RELEASE) {
		if (!job->has_error)
			snprintf(job->error, sizeof job->error, "worker %s: handed back unrun",
			         w->worker_id);
		jm_info("job %" PRIu64 " (%s) handed back: %s", d->job_id, d->attrs.type,
		        job->error);
		queued = slot_queue_outcome(w, d, held, PROTO_SETTLE_RELEASED, job->error,
		                            strlen(job->error), false, list);
		if (!queued)
			settle_one(w, d, PROTO_SETTLE_RELEASED, job->error, strlen(job->error),
			           false);
	} else {
		if (!job->has_error)
			snprintf(job->error, sizeof job->error, "handler for type %s failed",
			         d->attrs.type);
		bool permanent = outcome == JM_HANDLER_PERMANENT;
		jm_info("job %" PRIu64 " (%s) attempt %" PRIu32 " failed%s: %s", d->job_id,
		        d->attrs.type, d->attempt, permanent ? " permanently" : "", job->error);
		queued = !direct && slot_queue_outcome(w, d, held, PROTO_SETTLE_FAILED, job->error,
		                                       strlen(job->error), permanent, list);
		if (!queued)
			settle_one(w, d, PROTO_SETTLE_FAILED, job->error, strlen(job->error),
			           permanent);
	}
	if (!queued) {
		held_set_settled(&w->held, held);
		held_remove(&w->held, held); /* queued: the settler removes it */
	}
	feed_item_done(&w->feed, job->item);
	job_release(w, job);
	if (list == NULL)
		worker_end_handler(w, 1);
}

/* Keeps a handler's outcome if it is one, else turns it into a retryable
 * failure saying what was wrong. */
static int outcome_checked(struct jm_job *job, int outcome)
{
	if (outcome == JM_HANDLER_OK || outcome == JM_HANDLER_RETRY ||
	    outcome == JM_HANDLER_PERMANENT || outcome == JM_HANDLER_RELEASE)
		return outcome;
	snprintf(job->error, sizeof job->error,
	         "handler for type %s returned %d, which is not a jm_handler_outcome",
	         job->delivery->attrs.type, outcome);
	job->has_error = true;
	return JM_HANDLER_RETRY;
}

/* Runs the handler of item's delivery (counted in by the caller) and
 * concludes the job, unless the handler deferred it (its owner calls
 * jm_job_finish). Takes item over either way. */
static void slot_run_delivery(struct worker_slot *slot, struct feed_item *item)
{
	struct jm_worker *w = slot->worker;
	const struct proto_delivery *d = item->delivery;
	/* On the heap: a deferred job outlives this call. */
	struct jm_job *job = job_new(w, item);
	if (job == NULL) {
		jm_warn("job %" PRIu64 ": out of memory to run it: handing it back", d->job_id);
		if (held_claim(&w->held, item->held)) {
			static const char why[] = "worker out of memory: handed back unrun";
			settle_one(w, d, PROTO_SETTLE_RELEASED, why, strlen(why), false);
			held_set_settled(&w->held, item->held);
		}
		held_remove(&w->held, item->held);
		feed_item_done(&w->feed, item);
		worker_end_handler(w, 1);
		return;
	}
	int outcome;
	const struct worker_handler *handler = handler_find(w, d->attrs.type);
	if (handler == NULL) {
		snprintf(job->error, sizeof job->error, "no handler for type %s on worker %s",
		         d->attrs.type, w->worker_id);
		job->has_error = true;
		outcome = JM_HANDLER_PERMANENT;
	} else {
		jm_debug("job %" PRIu64 " (%s, queue %s, attempt %" PRIu32
		         ") started on slot %" PRIu32,
		         d->job_id, d->attrs.type, d->attrs.queue, d->attempt, slot->index);
		outcome = handler->fn(job, handler->arg);
		if (outcome == JM_HANDLER_DEFERRED)
			return; /* job may already be finished and freed: touch nothing */
		outcome = outcome_checked(job, outcome);
	}
	job_conclude(job, outcome, true, NULL);
}

/* Hands back (SETTLE released, not an attempt) the deliveries of list
 * (linked by next) that nobody else claimed, in one SETTLE from the calling
 * thread, and finishes with every item: what waited in the feed when the
 * worker stopped, or arrived after. */
static void hand_back_items(struct jm_worker *w, struct feed_item *list, const char *why)
{
	uint32_t count = 0;
	for (struct feed_item *it = list; it != NULL; it = it->next)
		count++;
	struct proto_settle_item *items = count ? calloc(count, sizeof *items) : NULL;
	uint64_t *deadlines_ms = count ? calloc(count, sizeof *deadlines_ms) : NULL;
	char error[160];
	snprintf(error, sizeof error, "worker %s %s: handed back unrun", w->worker_id, why);
	uint32_t claimed = 0;
	for (struct feed_item *it = list; it != NULL && items && deadlines_ms; it = it->next) {
		if (!held_claim(&w->held, it->held))
			continue; /* the stop path's hand-back has it */
		items[claimed] = (struct proto_settle_item){
		    .job_id = it->delivery->job_id,
		    .lease = it->delivery->lease,
		    .outcome = PROTO_SETTLE_RELEASED,
		    .data = {.ptr = (const uint8_t *)error, .len = (uint32_t)strlen(error)},
		};
		deadlines_ms[claimed++] = now_ms() + HANDBACK_BUDGET_MS;
	}
	bool tracked = count == 0 || (items != NULL && deadlines_ms != NULL);
	if (!tracked)
		jm_error("out of memory handing back %" PRIu32 " prefetched job(s); the broker "
		         "will requeue them when this worker's heartbeats stop",
		         count);
	if (claimed > 0) {
		jm_info("handing back %" PRIu32 " prefetched job(s) (%s)", claimed, why);
		struct proto_msg msg = settle_msg(w, items, claimed);
		settle_send(w, &msg, deadlines_ms);
	}
	free(deadlines_ms);
	free(items);
	while (list != NULL) {
		struct feed_item *next = list->next;
		if (tracked) {
			held_set_settled(&w->held, list->held);
			held_remove(&w->held, list->held);
		}
		feed_item_done(&w->feed, list);
		list = next;
	}
}

/* Closes the feed and hands back what waited in it: no slot takes a
 * delivery from here on. */
static void worker_close_feed(struct jm_worker *w)
{
	struct feed_item *left = feed_close(&w->feed);
	if (left != NULL)
		hand_back_items(w, left, "stopping");
}

/* Runs one delivery from the feed on slot, or hands it back; true if a
 * handler ran. Finishes with item (at once, or when its job concludes). */
static bool slot_run_item(struct worker_slot *slot, struct feed_item *item)
{
	struct jm_worker *w = slot->worker;
	const struct proto_delivery *d = item->delivery;
	struct held_lease *held = item->held;
	if (held != NULL && atomic_load(&held->abandon)) {
		/* The broker took it back while it waited: not ours to run. */
		jm_info("job %" PRIu64 " lease %" PRIu64 ": abandoned before it started", d->job_id,
		        d->lease);
		if (held_claim(&w->held, held))
			held_set_settled(&w->held, held);
	} else if (item->overdue) {
		if (held_claim(&w->held, held)) {
			char error[160];
			snprintf(error, sizeof error,
			         "worker %s: waited past %" PRIu64 " ms in the prefetch buffer: "
			         "handed back unrun",
			         w->worker_id, feed_wait_budget_ms(d->attrs.timeout_ms));
			jm_info("job %" PRIu64 ": waited too long for a free slot: handing it back",
			        d->job_id);
			struct settle_outcome *o = settle_outcome_new(
			    PROTO_SETTLE_RELEASED, d->job_id, d->lease,
			    now_ms() + HANDBACK_BUDGET_MS, held, error, strlen(error));
			if (o != NULL) {
				settler_put(&w->settler, o);
				feed_item_done(&w->feed, item);
				return false; /* the settler removes held */
			}
			settle_one(w, d, PROTO_SETTLE_RELEASED, error, strlen(error), false);
			held_set_settled(&w->held, held);
		}
	} else if (worker_begin_handler(w)) {
		slot_run_delivery(slot, item);
		return true;
	} else if (held_claim(&w->held, held)) {
		char error[128];
		snprintf(error, sizeof error, "worker %s stopping: handed back unrun",
		         w->worker_id);
		jm_info("job %" PRIu64 " arrived while stopping: handing it back", d->job_id);
		settle_one(w, d, PROTO_SETTLE_RELEASED, error, strlen(error), false);
		held_set_settled(&w->held, held);
	}
	held_remove(&w->held, held);
	feed_item_done(&w->feed, item);
	return false;
}

static void *slot_main(void *arg)
{
	struct worker_slot *slot = arg;
	struct jm_worker *w = slot->worker;
	bool after_job = false;
	uint64_t taken_us = 0;
	struct feed_item *item;
	while ((item = feed_take(&w->feed, after_job, jm_mono_us() - taken_us)) != NULL) {
		taken_us = jm_mono_us();
		after_job = slot_run_item(slot, item);
	}
	return NULL;
}

/* Takes the deliveries of a JOBS reply into the feed (their leases held
 * first, so the next heartbeat lists every one). *reply is taken over. */
static void fetch_take_reply(struct jm_worker *w, struct rpc_reply *reply)
{
	uint32_t count = reply->msg.u.jobs.jobs_count;
	struct feed_batch *batch = feed_batch_new(reply);
	if (batch == NULL) {
		/* Untracked leases: never acted on, the broker requeues them
		 * because our heartbeats never list them. */
		jm_error("out of memory for %" PRIu32 " deliveries; leaving them to the broker's "
		         "requeue",
		         count);
		rpc_reply_fini(reply);
		return;
	}
	for (uint32_t i = 0; i < count; i++) {
		const struct proto_delivery *d = batch->items[i].delivery;
		batch->items[i].held = held_add(&w->held, d->job_id, d->lease);
		if (batch->items[i].held == NULL)
			jm_warn("job %" PRIu64 ": out of memory tracking its lease", d->job_id);
	}
	if (feed_put(&w->feed, batch) == 0)
		return;
	/* The worker is stopping: none of them will run here. */
	for (uint32_t i = 0; i + 1 < count; i++)
		batch->items[i].next = &batch->items[i + 1];
	hand_back_items(w, count ? &batch->items[0] : NULL, "stopping");
	if (count == 0)
		feed_batch_free(batch);
}

/* The fetch thread: one FETCH at a time for as many jobs as the feed
 * wants (idle slots plus the prefetch buffer), parked at the broker while
 * nothing is ready. */
static void *fetch_main(void *arg)
{
	struct jm_worker *w = arg;
	uint32_t backoff_ms = 0;
	struct proto_msg req = {.version = PROTO_VERSION, .type = PROTO_FETCH};
	memcpy(req.u.fetch.worker_id, w->worker_id, sizeof w->worker_id);
	req.u.fetch.instance = w->instance;
	req.u.fetch.slot = 0; /* one fetch in flight per process: see the top */
	req.u.fetch.queues_count = w->queues_count;
	req.u.fetch.queues = w->queues;
	req.u.fetch.wait_ms = FETCH_WAIT_MS;
	/* The types it has handlers for (registered before the run): the
	 * broker hands it no other (routing). More than a fetch may name:
	 * none, which the broker takes as any type. */
	proto_name *types = NULL;
	if (w->handlers_count > 0 && w->handlers_count <= PROTO_TYPES_PER_FETCH_MAX)
		types = calloc(w->handlers_count, sizeof *types);
	if (types != NULL) {
		for (size_t i = 0; i < w->handlers_count; i++)
			memcpy(types[i], w->handlers[i].type, sizeof types[i]);
		req.u.fetch.types = types;
		req.u.fetch.types_count = (uint32_t)w->handlers_count;
	} else if (w->handlers_count > PROTO_TYPES_PER_FETCH_MAX) {
		jm_warn("worker: %zu handlers, more than a fetch names (%d): the broker may "
		        "hand this worker jobs of any type",
		        w->handlers_count, PROTO_TYPES_PER_FETCH_MAX);
	}

	while (!worker_stopping(w)) {
		uint32_t want = feed_wait_want(&w->feed);
		if (want == 0)
			break; /* the feed was closed: we stop */
		req.u.fetch.max_jobs = want;
		struct rpc_reply reply;
		memset(&reply, 0, sizeof reply);
		struct jm_err err;
		jm_err_clear(&err);
		uint64_t asked_us = jm_mono_us();
		uint64_t asked_ms = asked_us / 1000u;
		int rc = rpc_call_cancellable(w->rpc, &req, FETCH_WAIT_MS + FETCH_CALL_MARGIN_MS,
		                              &w->fetch_cancel, &reply, &err);
		if (rc == JM_ECLOSED)
			break; /* the stop cancelled our fetch */
		if (rc == 0 && reply.msg.type != PROTO_JOBS) {
			rc = jm_err_set(&err, JM_EPROTO, "the broker answered fetch with %s",
			                proto_type_name(reply.msg.type));
			rpc_reply_fini(&reply);
		}
		if (rc != 0) {
			if (code_is_transient(rc))
				broker_note_failure(w, "fetch", &err);
			else
				jm_error("fetch refused: %s", jm_err_text(&err));
			backoff_ms = backoff_next_ms(backoff_ms);
			worker_sleep_unless_stopping(w, backoff_ms);
			continue;
		}
		broker_note_success(w);
		bool empty = reply.msg.u.jobs.jobs_count == 0;
		if (empty) {
			rpc_reply_fini(&reply);
		} else {
			/* A full answer did not park; one that did says nothing
			 * about the round trip. */
			if (reply.msg.u.jobs.jobs_count == want)
				feed_note_fetch(&w->feed, jm_mono_us() - asked_us);
			fetch_take_reply(w, &reply);
		}
		/* An empty answer well before the park time is over (a broker
		 * shutting down, or one that does not park) must not make us
		 * ask again at once, over and over. */
		if (empty && now_ms() - asked_ms < FETCH_WAIT_MS / 2) {
			backoff_ms = backoff_next_ms(backoff_ms);
			worker_sleep_unless_stopping(w, backoff_ms);
		} else {
			backoff_ms = 0;
		}
	}
	free(types);
	return NULL;
}

/* ---- heartbeats --------------------------------------------------------- */

/* One heartbeat, waiting up to timeout_ms unless cancel (may be NULL) is
 * fired; true if the broker answered. */
static bool heartbeat_send(struct jm_worker *w, uint32_t timeout_ms, struct rpc_cancel *cancel)
{
	struct proto_lease_ref *leases = NULL;
	size_t leases_count = held_snapshot(&w->held, &leases);
	struct proto_msg msg = {.version = PROTO_VERSION, .type = PROTO_HEARTBEAT};
	struct proto_heartbeat *hb = &msg.u.heartbeat;
	memcpy(hb->worker_id, w->worker_id, sizeof w->worker_id);
	hb->instance = w->instance;
	hb->host.ptr = (const uint8_t *)w->host;
	hb->host.len = (uint32_t)strlen(w->host);
	hb->pid = (uint32_t)getpid();
	hb->concurrency = w->concurrency;
	hb->queues_count = w->queues_count;
	hb->queues = w->queues;
	hb->leases_count = (uint32_t)leases_count;
	hb->leases = leases;
	hb->draining = worker_stopping(w);

	struct rpc_reply reply;
	memset(&reply, 0, sizeof reply);
	struct jm_err err;
	jm_err_clear(&err);
	int rc = rpc_call_cancellable(w->rpc, &msg, timeout_ms, cancel, &reply, &err);
	free(leases);
	if (rc == JM_ECLOSED)
		return false; /* the stop cut us short */
	if (rc != 0) {
		if (code_is_transient(rc))
			broker_note_failure(w, "heartbeat", &err);
		else
			jm_error("heartbeat refused: %s", jm_err_text(&err));
		return code_is_transient(rc) ? false : true;
	}
	if (reply.msg.type != PROTO_HEARTBEAT_REPLY) {
		jm_error("the broker answered heartbeat with %s", proto_type_name(reply.msg.type));
		rpc_reply_fini(&reply);
		return true;
	}
	broker_note_success(w);
	const struct proto_heartbeat_reply *hr = &reply.msg.u.heartbeat_reply;
	for (uint32_t i = 0; i < hr->abandon_count; i++) {
		const struct proto_lease_ref *ref = &hr->abandon[i];
		if (held_mark_abandon(&w->held, ref->job_id, ref->lease))
			jm_info("job %" PRIu64 " lease %" PRIu64
			        ": the broker asked us to abandon it",
			        ref->job_id, ref->lease);
	}
	rpc_reply_fini(&reply);
	return true;
}

static void *heartbeat_main(void *arg)
{
	struct jm_worker *w = arg;
	for (;;) {
		heartbeat_send(w, HEARTBEAT_CALL_TIMEOUT_MS, &w->heartbeat_cancel);
		struct timespec until = jm_timespec_after_ms(CLOCK_MONOTONIC, w->heartbeat_ms);
		pthread_mutex_lock(&w->lock);
		while (!w->heartbeat_exit) {
			if (pthread_cond_timedwait(&w->cond, &w->lock, &until) == ETIMEDOUT)
				break;
		}
		bool exit_now = w->heartbeat_exit;
		pthread_mutex_unlock(&w->lock);
		if (exit_now)
			return NULL;
	}
}

/* ---- the public API ------------------------------------------------------ */

/* *slot = a copy of value, or NULL for NULL; false when out of memory. */
static bool copy_optional(char **slot, const char *value)
{
	*slot = value ? strdup(value) : NULL;
	return value == NULL || *slot != NULL;
}

/* Frees the token (wiped first: it is a secret) and the TLS paths. */
static void free_secrets(struct jm_worker *w)
{
	if (w->token) {
		explicit_bzero(w->token, strlen(w->token));
		free(w->token);
	}
	free(w->tls_ca);
	free(w->tls_cert);
	free(w->tls_key);
}

int jm_worker_new(jm_worker **out, const jm_worker_options *opts)
{
	*out = NULL;
	if (opts == NULL || opts->queues == NULL || opts->queues_count == 0 ||
	    opts->queues_count > PROTO_QUEUES_PER_FETCH_MAX) {
		jm_error("worker: give 1 to %d queues to fetch from", PROTO_QUEUES_PER_FETCH_MAX);
		return JM_EINVAL;
	}
	if (opts->concurrency > CONCURRENCY_MAX) {
		jm_error("worker: concurrency %u is over the limit of %d", opts->concurrency,
		         CONCURRENCY_MAX);
		return JM_EINVAL;
	}
	struct jm_worker *w = calloc(1, sizeof *w);
	if (w == NULL)
		return JM_ENOMEM;
	int rc = JM_ENOMEM;
	w->queues = calloc(opts->queues_count, sizeof *w->queues);
	w->broker_url = strdup(rpc_broker_url(opts->broker_url));
	if (w->queues == NULL || w->broker_url == NULL || !copy_optional(&w->token, opts->token) ||
	    !copy_optional(&w->tls_ca, opts->tls_ca) ||
	    !copy_optional(&w->tls_cert, opts->tls_cert) ||
	    !copy_optional(&w->tls_key, opts->tls_key))
		goto fail_free_worker;
	for (size_t i = 0; i < opts->queues_count; i++) {
		if (!name_copy(w->queues[i], opts->queues[i])) {
			jm_error("worker: queue name \"%s\" is invalid: %s",
			         opts->queues[i] ? opts->queues[i] : "", PROTO_NAME_RULE);
			rc = JM_EBADNAME;
			goto fail_free_worker;
		}
	}
	w->queues_count = (uint32_t)opts->queues_count;
	if (gethostname(w->host, sizeof w->host - 1) != 0)
		snprintf(w->host, sizeof w->host, "unknown");
	if (opts->worker_id != NULL) {
		if (!name_copy(w->worker_id, opts->worker_id)) {
			jm_error("worker: worker id \"%s\" is invalid: %s", opts->worker_id,
			         PROTO_NAME_RULE);
			rc = JM_EBADNAME;
			goto fail_free_worker;
		}
	} else {
		default_worker_id(w->worker_id, w->host);
	}
	w->instance = draw_instance();
	w->concurrency = opts->concurrency ? opts->concurrency : 1;
	w->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : HEARTBEAT_MS_DEFAULT;
	w->drain_timeout_ms =
	    opts->drain_timeout_ms ? opts->drain_timeout_ms : DRAIN_TIMEOUT_MS_DEFAULT;
	if (opts->prefetch == JM_WORKER_PREFETCH_NONE)
		w->prefetch = 0;
	else if (opts->prefetch != 0)
		w->prefetch = opts->prefetch;
	else
		w->prefetch = w->concurrency * PREFETCH_PER_SLOT_DEFAULT < PREFETCH_DEFAULT_MAX
		                  ? w->concurrency * PREFETCH_PER_SLOT_DEFAULT
		                  : PREFETCH_DEFAULT_MAX;
	if (w->prefetch > PROTO_JOBS_PER_MESSAGE_MAX)
		w->prefetch = PROTO_JOBS_PER_MESSAGE_MAX;
	/* Outcomes run at most about one feed ahead of their answers: a
	 * settle waits for the broker's sync, and the larger the batch that
	 * one sync covers, the faster a drain goes. */
	rc = settler_init(&w->settler, ((size_t)w->concurrency + w->prefetch) * 2, settle_batch_cb,
	                  w);
	if (rc != 0)
		goto fail_free_worker;
	held_init(&w->held);
	feed_init(&w->feed, w->concurrency, w->prefetch);
	progress_board_init(&w->progress);
	rpc_cancel_init(&w->heartbeat_cancel);
	rpc_cancel_init(&w->fetch_cancel);
	atomic_init(&w->broker_down, false);
	atomic_init(&w->settle_cutoff_ms, 0);
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->job_cache_lock, NULL);
	jm_cond_init_monotonic(&w->cond);
	*out = w;
	return 0;

fail_free_worker:
	free_secrets(w);
	free(w->queues);
	free(w->broker_url);
	free(w);
	return rc;
}

int jm_worker_register(jm_worker *w, const char *type, jm_handler_fn fn, void *arg)
{
	if (w == NULL || fn == NULL)
		return JM_EINVAL;
	proto_name name;
	if (!name_copy(name, type)) {
		jm_error("worker: job type \"%s\" is invalid: %s", type ? type : "",
		         PROTO_NAME_RULE);
		return JM_EBADNAME;
	}
	pthread_mutex_lock(&w->lock);
	bool ran = w->ran;
	pthread_mutex_unlock(&w->lock);
	if (ran)
		return JM_ESTATE;
	for (size_t i = 0; i < w->handlers_count; i++) {
		if (strcmp(w->handlers[i].type, name) == 0) {
			w->handlers[i].fn = fn; /* the later registration wins */
			w->handlers[i].arg = arg;
			return 0;
		}
	}
	struct worker_handler *grown =
	    realloc(w->handlers, (w->handlers_count + 1) * sizeof *grown);
	if (grown == NULL)
		return JM_ENOMEM;
	w->handlers = grown;
	memcpy(grown[w->handlers_count].type, name, sizeof name);
	grown[w->handlers_count].fn = fn;
	grown[w->handlers_count].arg = arg;
	w->handlers_count++;
	return 0;
}

static void worker_log_start(const struct jm_worker *w)
{
	char queues[PROTO_QUEUES_PER_FETCH_MAX * (PROTO_NAME_MAX + 2) + 1];
	size_t used = 0;
	for (uint32_t i = 0; i < w->queues_count; i++)
		used += (size_t)snprintf(queues + used, sizeof queues - used, "%s%s", i ? ", " : "",
		                         w->queues[i]);
	jm_info("worker %s serving queues [%s] concurrency %" PRIu32 " broker %s", w->worker_id,
	        queues, w->concurrency, w->broker_url);
}

/* Joins the slots, flushes the settler, ends the heartbeat and progress
 * threads and joins every thread that was started. */
static void worker_join_all(struct jm_worker *w)
{
	worker_close_feed(w); /* wakes the slots and the fetch thread */
	if (w->fetch_started)
		pthread_join(w->fetch_thread, NULL);
	w->fetch_started = false;
	for (uint32_t i = 0; i < w->concurrency; i++) {
		if (w->slots[i].started)
			pthread_join(w->slots[i].thread, NULL);
		w->slots[i].started = false;
	}
	/* Deferred jobs (jm_job_finish) conclude on their owner's thread; a
	 * stop abandoned them, so their owners end them soon. */
	pthread_mutex_lock(&w->lock);
	while (w->handlers_running > 0)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	/* Every outcome a slot queued is sent (each within its settle budget)
	 * while heartbeats still list its lease. */
	settler_close(&w->settler);
	pthread_mutex_lock(&w->lock);
	w->heartbeat_exit = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (w->heartbeat_started)
		pthread_join(w->heartbeat_thread, NULL);
	w->heartbeat_started = false;
	/* Every slot sent its own last value: nothing is left to send. */
	progress_close(&w->progress);
	if (w->progress_started)
		pthread_join(w->progress_thread, NULL);
	w->progress_started = false;
}

/* Waits for running handlers to finish, up to the drain timeout (none for
 * a hard stop, or once one is asked for meanwhile); true if some still run. */
static bool worker_drain(struct jm_worker *w)
{
	uint64_t deadline = now_ms() + w->drain_timeout_ms;
	pthread_mutex_lock(&w->lock);
	if (w->handlers_running > 0 && !w->hard_stop)
		jm_info("draining: waiting up to %" PRIu32 " ms for %" PRIu32 " running job(s)",
		        w->drain_timeout_ms, w->handlers_running);
	while (w->handlers_running > 0 && !w->hard_stop) {
		uint64_t now = now_ms();
		if (now >= deadline)
			break;
		struct timespec until = jm_timespec_after_ms(CLOCK_MONOTONIC, deadline - now);
		pthread_cond_timedwait(&w->cond, &w->lock, &until);
	}
	uint32_t still_running = w->handlers_running;
	bool hard = w->hard_stop;
	pthread_mutex_unlock(&w->lock);
	if (still_running > 0)
		jm_warn("%s with %" PRIu32 " job(s) still running: abandoning them and handing "
		        "them back",
		        hard ? "stopping at once" : "drain timeout passed", still_running);
	return still_running > 0;
}

int jm_worker_run(jm_worker *w)
{
	if (w == NULL)
		return JM_EINVAL;
	pthread_mutex_lock(&w->lock);
	bool ran = w->ran;
	w->ran = true;
	pthread_mutex_unlock(&w->lock);
	if (ran)
		return JM_ESTATE;

	struct jm_err err;
	jm_err_clear(&err);
	struct rpc_security sec = {
	    .token = w->token, .tls = {.ca = w->tls_ca, .cert = w->tls_cert, .key = w->tls_key}};
	int rc = rpc_open_secure(&w->rpc, w->broker_url, &sec, &err);
	if (rc != 0) {
		jm_error("worker: cannot open a connection to %s: %s", w->broker_url,
		         jm_err_text(&err));
		return rc;
	}
	w->slots = calloc(w->concurrency, sizeof *w->slots);
	w->settle_items = calloc(SETTLE_BATCH_ITEMS_MAX, sizeof *w->settle_items);
	w->settle_deadlines_ms = calloc(SETTLE_BATCH_ITEMS_MAX, sizeof(uint64_t));
	w->settle_helds = calloc(SETTLE_BATCH_ITEMS_MAX, sizeof *w->settle_helds);
	if (w->slots == NULL || w->settle_items == NULL || w->settle_deadlines_ms == NULL ||
	    w->settle_helds == NULL)
		return JM_ENOMEM; /* jm_worker_free frees what was allocated */
	worker_log_start(w);

	rc = pthread_create(&w->heartbeat_thread, NULL, heartbeat_main, w);
	if (rc != 0)
		goto fail_stop_threads;
	w->heartbeat_started = true;
	rc = pthread_create(&w->progress_thread, NULL, progress_main, w);
	if (rc != 0)
		goto fail_stop_threads;
	w->progress_started = true;
	rc = settler_start(&w->settler);
	if (rc != 0)
		goto fail_stop_threads;
	for (uint32_t i = 0; i < w->concurrency; i++) {
		w->slots[i].worker = w;
		w->slots[i].index = i;
		rc = pthread_create(&w->slots[i].thread, NULL, slot_main, &w->slots[i]);
		if (rc != 0)
			goto fail_stop_threads;
		w->slots[i].started = true;
	}
	rc = pthread_create(&w->fetch_thread, NULL, fetch_main, w);
	if (rc != 0)
		goto fail_stop_threads;
	w->fetch_started = true;

	pthread_mutex_lock(&w->lock);
	while (!w->stop_requested)
		pthread_cond_wait(&w->cond, &w->lock);
	bool hard = w->hard_stop;
	pthread_mutex_unlock(&w->lock);
	jm_info("worker %s stopping: %s", w->worker_id,
	        hard ? "handing leases back now" : "draining");
	/* Draining at once: the broker answers our parked fetches empty, so the
	 * slot threads come back without waiting out their park. A broker we
	 * cannot reach answers nothing: cut the fetches short ourselves. */
	atomic_store(&w->settle_cutoff_ms,
	             now_ms() + (hard ? STOP_SETTLE_GRACE_MS : w->drain_timeout_ms));
	if (!heartbeat_send(w, STOP_HEARTBEAT_CALL_TIMEOUT_MS, NULL)) {
		rpc_cancel_fire(&w->fetch_cancel);
		rpc_cancel_fire(&w->heartbeat_cancel);
	}
	/* What waits in the feed goes back at once, for other workers. */
	worker_close_feed(w);
	if (worker_drain(w)) {
		atomic_store(&w->settle_cutoff_ms, now_ms() + STOP_SETTLE_GRACE_MS);
		worker_hand_back_all(w);
	}
	worker_join_all(w);
	/* A lease left here was never claimed by anyone: impossible unless a
	 * slot ran out of memory; hand it back rather than let it time out. */
	worker_hand_back_all(w);
	jm_info("worker %s stopped", w->worker_id);
	return 0;

fail_stop_threads:
	jm_error("worker: cannot start threads: %s", strerror(rc));
	jm_worker_stop(w, false);
	worker_join_all(w);
	return JM_ENOMEM;
}

void jm_worker_stop(jm_worker *w, bool drain)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop_requested = true;
	if (!drain)
		w->hard_stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void jm_worker_free(jm_worker *w)
{
	if (w == NULL)
		return;
	rpc_close(w->rpc);
	settler_fini(&w->settler);
	held_fini(&w->held);
	rpc_cancel_fini(&w->heartbeat_cancel);
	progress_board_fini(&w->progress);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	while (w->job_cache != NULL) {
		struct jm_job *next = w->job_cache->cache_next;
		free(w->job_cache);
		w->job_cache = next;
	}
	pthread_mutex_destroy(&w->job_cache_lock);
	rpc_cancel_fini(&w->fetch_cancel);
	feed_fini(&w->feed);
	free(w->slots);
	free(w->settle_items);
	free(w->settle_deadlines_ms);
	free(w->settle_helds);
	free(w->handlers);
	free_secrets(w);
	free(w->queues);
	free(w->broker_url);
	free(w);
}

/* ---- the job being handled ----------------------------------------------- */

uint64_t jm_job_id(const jm_job *job)
{
	return job->delivery->job_id;
}

const char *jm_job_queue(const jm_job *job)
{
	return job->delivery->attrs.queue;
}

const char *jm_job_type(const jm_job *job)
{
	return job->delivery->attrs.type;
}

unsigned jm_job_attempt(const jm_job *job)
{
	return job->delivery->attempt;
}

uint64_t jm_job_timeout_ms(const jm_job *job)
{
	return job->delivery->attrs.timeout_ms;
}

const void *jm_job_payload(const jm_job *job, size_t *len)
{
	if (len != NULL)
		*len = job->delivery->payload.len;
	return job->delivery->payload.ptr;
}

int jm_job_set_result(jm_job *job, const void *data, size_t len)
{
	if (len > PROTO_RESULT_MAX)
		return JM_ETOOBIG;
	if (len > 0 && data == NULL)
		return JM_EINVAL;
	uint8_t *copy = NULL;
	if (len > 0) {
		copy = malloc(len);
		if (copy == NULL)
			return JM_ENOMEM;
		memcpy(copy, data, len);
	}
	free(job->result);
	job->result = copy;
	job->result_len = len;
	return 0;
}

int jm_job_set_error(jm_job *job, const char *message)
{
	if (message == NULL)
		return JM_EINVAL;
	size_t len = strlen(message);
	if (len > PROTO_ERROR_TEXT_MAX) {
		len = PROTO_ERROR_TEXT_MAX;
		/* Never cut a UTF-8 sequence in half. */
		while (len > 0 && ((unsigned char)message[len] & 0xC0) == 0x80)
			len--;
	}
	memcpy(job->error, message, len);
	job->error[len] = '\0';
	job->has_error = true;
	return 0;
}

void jm_job_finish(jm_job *job, int outcome)
{
	if (job == NULL)
		return;
	job_conclude(job, outcome_checked(job, outcome), false, NULL);
}

void jm_job_finish_many(jm_job *const *jobs, const int *outcomes, size_t count)
{
	struct jm_worker *w = NULL;
	struct conclude_list list = {0};
	uint32_t ended = 0;
	for (size_t i = 0; i < count; i++) {
		if (jobs[i] == NULL)
			continue;
		w = jobs[i]->worker;
		job_conclude(jobs[i], outcome_checked(jobs[i], outcomes[i]), false, &list);
		ended++;
	}
	if (w == NULL)
		return;
	settler_put_list(&w->settler, list.head, list.count);
	worker_end_handler(w, ended);
}

bool jm_job_should_abandon(const jm_job *job)
{
	return job->held != NULL && atomic_load(&job->held->abandon);
}

int jm_job_abandon_fd(const jm_job *job)
{
	return held_abandon_fd(&job->worker->held, job->held);
}

int jm_job_progress(jm_job *job, uint64_t done, uint64_t total, const char *message)
{
	if (job == NULL)
		return JM_EINVAL;
	return progress_report(&job->worker->progress, &job->progress, done, total, message,
	                       message != NULL ? strlen(message) : 0);
}

int jm_job_progress_fraction(jm_job *job, double fraction, const char *message)
{
	if (!(fraction >= 0.0 && fraction <= 1.0)) /* also refuses NaN */
		return JM_EINVAL;
	uint64_t done = (uint64_t)(fraction * PROGRESS_FRACTION_TOTAL + 0.5);
	if (done > PROGRESS_FRACTION_TOTAL)
		done = PROGRESS_FRACTION_TOTAL;
	return jm_job_progress(job, done, PROGRESS_FRACTION_TOTAL, message);
}
