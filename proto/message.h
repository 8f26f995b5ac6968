/* Wire messages between clients, workers and the broker.
 *
 * Every message is a msgpack array: [version, type, body], where body is an
 * array whose fields are listed below in order, once. Decoders accept extra
 * trailing fields (a newer peer may append) but never fewer.
 *
 * A decoded message borrows: strings and byte fields point into the buffer
 * passed to proto_decode() or into the message's own zone, so the buffer
 * must outlive the decoded message. proto_msg_fini() frees what the decode
 * allocated. Names (queue, type, worker id) are copied into fixed arrays and
 * NUL-terminated, already checked against PROTO_NAME_RULE.
 *
 * Nothing outside proto/ includes msgpack.h. */
#ifndef JM_PROTO_MESSAGE_H
#define JM_PROTO_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "proto_limits.h"

enum proto_type {
	PROTO_ERROR = 1,     /* reply: something was wrong with the request */
	PROTO_SUBMIT = 2,    /* client: enqueue one or more jobs */
	PROTO_SUBMITTED = 3, /* reply to SUBMIT: the new ids */
	PROTO_FETCH = 4,     /* worker: lease up to max_jobs, wait up to wait_ms */
	PROTO_JOBS = 5,      /* reply to FETCH: deliveries (maybe none) */
	/* 6 and 7 were ACK and FAIL (protocol version 1); SETTLE replaced
	 * them in version 2 and a decoder refuses them, naming SETTLE. */
	PROTO_SETTLED = 8, /* reply to SETTLE and PROGRESS: one code per item */
	PROTO_STATUS = 9,  /* client: a job's state, no result */
	PROTO_RESULT = 10, /* client: a job's state with its result */
	PROTO_WAIT = 11,   /* client: reply when the job is finished or timeout */
	PROTO_JOB = 12,    /* reply to STATUS, RESULT, WAIT */
	PROTO_STATS = 13,  /* client: per-queue counters */
	PROTO_STATS_REPLY = 14,
	PROTO_HEARTBEAT = 15,       /* worker: alive, holding these leases */
	PROTO_HEARTBEAT_REPLY = 16, /* which of those leases to abandon */
	PROTO_CANCEL = 17,          /* client: cancel a job; reply JOB */
	PROTO_WORKERS = 18,         /* client: the workers the broker knows */
	PROTO_WORKERS_REPLY = 19,
	PROTO_PROGRESS = 20,     /* worker: progress of a leased job; reply SETTLED */
	PROTO_BATCH_STATUS = 21, /* client: one batch; reply BATCH */
	PROTO_BATCH = 22,
	PROTO_BATCHES = 23, /* client: every unfinished batch */
	PROTO_BATCHES_REPLY = 24,
	PROTO_HELLO = 25, /* anyone: broker version and events address */
	PROTO_HELLO_REPLY = 26,
	PROTO_DEAD_LIST = 27, /* client: dead-lettered jobs of a queue */
	PROTO_JOB_LIST = 28,
	PROTO_REVIVE = 29, /* client: dead-lettered jobs back to pending */
	PROTO_REVIVED = 30,
	PROTO_EVENT = 31,           /* PUB body, never a request or reply */
	PROTO_JOB_QUERY = 32,       /* client: jobs by queue/state/batch, newest first */
	PROTO_SETTLE = 33,          /* worker: how these leases ended; reply SETTLED */
	PROTO_SCHEDULE_PUT = 34,    /* client: create or replace a schedule */
	PROTO_SCHEDULE_DELETE = 35, /* client: remove a schedule */
	PROTO_SCHEDULE_LIST = 36,   /* client: every schedule with its next run */
	PROTO_SCHEDULES = 37,       /* reply to the three above */
	PROTO_QUEUE_SET = 38,       /* client: change a queue's runtime settings */
	PROTO_QUEUE_SETTINGS = 39,  /* reply to QUEUE_SET: the queue's settings */
	PROTO_DEAD_REMOVE = 40,     /* client: dead-lettered jobs removed for good */
	PROTO_SUBMIT_WAIT = 41,     /* client: submit one job, reply JOB once it finished */
	PROTO_TYPE_MAX_ = 41,
};

enum proto_job_state {
	PROTO_STATE_PENDING = 1,
	PROTO_STATE_DELAYED = 2,
	PROTO_STATE_ACTIVE = 3,
	PROTO_STATE_COMPLETED = 4,
	PROTO_STATE_FAILED = 5, /* dead-lettered */
	PROTO_STATE_CANCELLED = 6,
};

/* "pending", "delayed", ...; "unknown" for anything else. */
const char *proto_state_name(int state);

struct proto_bytes {
	const uint8_t *ptr; /* borrowed; NULL when len == 0 */
	uint32_t len;
};

typedef char proto_name[PROTO_NAME_MAX + 1];

/* ERROR: [code, message] */
struct proto_error {
	int32_t code;               /* a JM_E... value */
	struct proto_bytes message; /* UTF-8 text, not NUL-terminated */
};

/* A job's attributes: what it is and how it runs, fixed from admission on.
 * Declared once and embedded in each struct that carries a job (the
 * SUBMIT spec, the JOB record, the broker's struct job, the delivery and
 * the job info), so carrying a new attribute from the submit to the worker
 * and the views is one member here, one field in proto/job_attrs.h, and
 * that field in each wire list that should carry it; copies between those
 * structs assign attrs whole. A message's encoder writes only the
 * attributes its wire list names (a delivery: queue, type, timeout_ms); its
 * decoder leaves the others 0. */
struct proto_job_attrs {
	proto_name queue;
	proto_name type;
	int32_t priority;      /* PROTO_PRIORITY_MIN..MAX, higher runs first */
	uint32_t max_attempts; /* 0: the queue's default; else 1..PROTO_ATTEMPTS_MAX */
	uint64_t timeout_ms;   /* run timeout per attempt; 0: the queue's default */
	uint64_t batch_id;     /* 0: not in a batch (set by the broker) */
	uint64_t created_us;   /* wall clock of admission (set by the broker) */
	proto_name group;      /* fair tenants: its group ("": none) */
};

/* One job of a SUBMIT: [queue, type, payload, priority, max_attempts,
 * delay_ms, timeout_ms, key, run_at_us]
 * key and run_at_us were appended (an older client sends seven fields),
 * then group (attrs.group: fair tenants; absent or "": no group).
 * key: an idempotency key (empty: none; see job_spec.h). run_at_us: a wall
 * time (µs since 1970) to run no sooner than; 0: none, else delay_ms must
 * be 0. */
struct proto_job_spec {
	struct proto_job_attrs attrs; /* batch_id and created_us not on the wire */
	struct proto_bytes payload;
	uint64_t delay_ms; /* 0: ready now */
	struct proto_bytes key;
	uint64_t run_at_us;
};

/* SUBMIT: [as_batch, [job_spec...]] (1..PROTO_JOBS_PER_MESSAGE_MAX jobs) */
struct proto_submit {
	bool as_batch;
	uint32_t jobs_count;
	struct proto_job_spec *jobs;
};

/* SUBMITTED: [batch_id, [job_id...], [existing_id...]]; batch_id 0 when
 * not a batch. existing_ids (appended; absent from an older broker) lists
 * the ids of ids that an idempotency key matched: jobs admitted earlier,
 * not by this submit. */
struct proto_submitted {
	uint64_t batch_id;
	uint32_t ids_count;
	uint64_t *ids;
	uint32_t existing_ids_count;
	uint64_t *existing_ids;
};

/* FETCH: [worker_id, instance, slot, [queue...], max_jobs, wait_ms,
 *         [type...]]
 * slot names one of the worker's concurrent fetchers: the broker keeps one
 * parked fetch per (worker_id, slot), so a resent request replaces the
 * stale copy instead of parking twice. instance: see HEARTBEAT. types
 * (appended): the job types the worker has handlers for; the broker hands
 * it only jobs of those types. Empty or absent (an older worker): any
 * type. */
struct proto_fetch {
	proto_name worker_id;
	uint64_t instance;
	uint32_t slot;
	uint32_t queues_count; /* 1..PROTO_QUEUES_PER_FETCH_MAX */
	proto_name *queues;
	uint32_t max_jobs;    /* 1..PROTO_JOBS_PER_MESSAGE_MAX */
	uint32_t wait_ms;     /* 0: answer at once */
	uint32_t types_count; /* 0..PROTO_TYPES_PER_FETCH_MAX; 0: any type */
	proto_name *types;
};

/* One delivery of JOBS: [job_id, lease, attempt, queue, type, payload,
 * timeout_ms]
 * lease is the delivery's lease token: 64 random bits the broker drew for
 * this delivery (never 0), which SETTLE, PROGRESS and HEARTBEAT echo. It
 * cannot be guessed from the broker's boot or from other deliveries. */
struct proto_delivery {
	uint64_t job_id;
	uint64_t lease;               /* the lease token; opaque to the worker */
	uint32_t attempt;             /* 1 for the first attempt */
	struct proto_job_attrs attrs; /* queue, type, timeout_ms on the wire: the
	                                 worker abandons the attempt past
	                                 timeout_ms */
	struct proto_bytes payload;
};

/* JOBS: [[delivery...]] */
struct proto_jobs {
	uint32_t jobs_count;
	struct proto_delivery *jobs;
};

enum proto_settle_outcome {
	PROTO_SETTLE_COMPLETED = 1, /* data is the result (PROTO_RESULT_MAX) */
	PROTO_SETTLE_FAILED = 2,    /* data is the error text (PROTO_ERROR_TEXT_MAX);
	                               permanent: no retry, straight to dead-letter */
	PROTO_SETTLE_RELEASED = 3,  /* handed back unfinished (a draining worker):
	                               requeued at once, the attempt not counted;
	                               data is why (PROTO_ERROR_TEXT_MAX) */
};

/* One item of SETTLE: [job_id, lease, outcome, data, permanent]
 * lease is the delivery's lease token, echoed as received. permanent is
 * false unless outcome is FAILED. */
struct proto_settle_item {
	uint64_t job_id;
	uint64_t lease;
	uint32_t outcome; /* enum proto_settle_outcome */
	struct proto_bytes data;
	bool permanent;
};

/* SETTLE: [worker_id, instance, [settle_item...]]
 * Replaces version 1's ACK and FAIL. The broker accepts an item only from
 * the worker id and instance (see HEARTBEAT; never 0 here) that hold the
 * lease, and only with the lease token it handed out: anything else is
 * JM_ESTALE. */
struct proto_settle {
	proto_name worker_id;
	uint64_t instance;
	uint32_t items_count;
	struct proto_settle_item *items;
};

/* SETTLED: [[code...]]: 0 or a JM_E... per item, in request order */
struct proto_settled {
	uint32_t codes_count;
	int32_t *codes;
};

/* STATUS and RESULT: [job_id] */
struct proto_job_ref {
	uint64_t job_id;
	bool with_payload; /* STATUS, RESULT: put the job's payload in the reply */
};

/* SUBMIT_WAIT: [timeout_ms, job_spec]. One job, admitted as a SUBMIT of
 * it would be (idempotency key included: a key that matches an earlier job
 * waits for that one); the reply is a JOB with its result, as WAIT's, sent
 * once the job finished or timeout_ms passed (then in its state of the
 * moment), and never before the job's admission is durable. timeout_ms 0:
 * answer at once, as a SUBMIT then a STATUS would. */
struct proto_submit_wait {
	uint32_t timeout_ms;
	struct proto_job_spec job;
};

/* WAIT: [job_id, timeout_ms] */
struct proto_wait {
	uint64_t job_id;
	uint32_t timeout_ms;
	bool with_payload; /* put the job's payload in the reply (appended) */
};

/* JOB: [job_id, queue, type, state, priority, attempt, max_attempts,
 *       created_us, updated_us, run_at_us, last_error, has_result, result,
 *       batch_id, progress_done, progress_total, progress_message]
 * Times are wall-clock microseconds since the epoch. run_at_us is when a
 * delayed job becomes ready (0 otherwise). result is empty unless the
 * request was RESULT or WAIT and the job completed. payload, then group
 * (attrs.group) were appended. */
struct proto_job_info {
	uint64_t job_id;
	struct proto_job_attrs attrs; /* all but timeout_ms on the wire */
	uint32_t state;               /* enum proto_job_state */
	uint32_t attempt;
	uint64_t updated_us;
	uint64_t run_at_us;
	struct proto_bytes last_error;
	bool has_result;
	struct proto_bytes result;
	uint64_t progress_done;              /* last progress the handler reported: */
	uint64_t progress_total;             /* done of total (0 of 0: none yet) */
	struct proto_bytes progress_message; /* what it is doing now */
	struct proto_bytes payload;          /* only when the request asked for it */
};

/* STATS: [] */

/* One queue in STATS_REPLY: [name, pending, delayed, active, completed,
 * failed, cancelled, oldest_pending_us, max_active]
 * The last three were appended (an older broker sends 6 fields; they then
 * decode as 0). oldest_pending_us: wall-clock time the longest-waiting
 * pending job became ready (0: none pending). max_active: the queue's
 * active limit (0: none). */
struct proto_queue_stats {
	proto_name name;
	uint64_t pending;
	uint64_t delayed;
	uint64_t active;
	uint64_t completed;
	uint64_t failed;
	uint64_t cancelled;
	uint64_t oldest_pending_us;
	uint32_t max_active;
	/* appended after max_active (an older broker sends 9 fields) */
	bool paused;
	uint32_t rate_jobs; /* 0: no rate limit */
	uint64_t rate_period_ms;
	/* appended after rate_period_ms (an older broker sends 12 fields; they
	 * then decode as 0): the rest of the queue's runtime settings, as
	 * QUEUE_SETTINGS has them, so a reader of stats sees them all */
	uint32_t own_settings; /* enum proto_queue_setting bits: the queue's own */
	uint32_t max_attempts;
	uint64_t keep_finished;
	uint64_t keep_finished_age_ms;
	uint64_t key_window_ms;
	/* appended after key_window_ms (an older broker sends 12 or 17 fields):
	 * pending jobs whose type no connected worker of the queue has a
	 * handler for (they wait for one, they never fail for it), and up to
	 * PROTO_UNROUTABLE_TYPES_MAX of those types. */
	uint64_t unroutable;
	uint32_t unroutable_types_count;
	proto_name *unroutable_types;
	/* appended after unroutable_types (an older broker sends 19 fields or
	 * fewer): retention per finished state (keep_finished and
	 * keep_finished_age_ms above are the completed jobs'; a count of
	 * PROTO_KEEP_ALL is no count limit, an age of 0 no age limit) and the
	 * active jobs per group (0: no limit). */
	uint64_t keep_failed;
	uint64_t keep_failed_age_ms;
	uint64_t keep_cancelled;
	uint64_t keep_cancelled_age_ms;
	uint32_t group_limit;
};

/* STATS_REPLY: [[queue_stats...]] */
struct proto_stats_reply {
	uint32_t queues_count;
	struct proto_queue_stats *queues;
};

/* HEARTBEAT: [worker_id, instance, host, pid, concurrency, [queue...],
 *             [[job_id, lease]...], draining]
 * instance is a random number a worker process draws when it starts (never
 * 0; FETCH, HEARTBEAT, SETTLE and PROGRESS refuse 0 since version 2). A
 * request under a known worker id with another instance takes the id over
 * only when the process that held it is gone: silent past the broker's
 * dead-after window, or its connection closed (a supervisor restarted it
 * under the same id). Its leases are then lost and count as an attempt.
 * While the old process is alive the request is refused (JM_ESTATE) and
 * nothing changes, so a request under a borrowed id cannot requeue the
 * real worker's jobs.
 * leases lists every delivery the worker has received and not yet seen
 * settled: a lease the broker granted that stays missing from the worker's
 * heartbeats never reached it (a reply to a vanished pipe) and is requeued.
 * draining: the worker fetches no more; its parked fetches are answered
 * empty at once. */
struct proto_lease_ref {
	uint64_t job_id;
	uint64_t lease;
};

/* Longest host name a HEARTBEAT or WORKERS_REPLY carries (a DNS name). */
#define PROTO_HOST_MAX 255

struct proto_heartbeat {
	proto_name worker_id;
	uint64_t instance;
	struct proto_bytes host;
	uint32_t pid;
	uint32_t concurrency;
	uint32_t queues_count;
	proto_name *queues;
	uint32_t leases_count;
	struct proto_lease_ref *leases;
	bool draining;
};

/* HEARTBEAT_REPLY: [[[job_id, lease]...]]: leases the worker must abandon
 * (timed out, cancelled or superseded) */
struct proto_heartbeat_reply {
	uint32_t abandon_count;
	struct proto_lease_ref *abandon;
};

/* CANCEL: [job_id] (struct proto_job_ref). Reply JOB with the new state;
 * ERROR JM_ESTATE for a job already finished. An active job's worker is
 * told to abandon it through its next heartbeat reply. */

/* WORKERS: []. One worker in WORKERS_REPLY:
 * [worker_id, host, pid, concurrency, [queue...], active_jobs,
 *  first_seen_us, last_seen_us, draining, [job_id...]] */
struct proto_worker_info {
	proto_name worker_id;
	struct proto_bytes host;
	uint32_t pid;
	uint32_t concurrency;
	uint32_t queues_count;
	proto_name *queues;
	uint32_t active_jobs;
	uint64_t first_seen_us;
	uint64_t last_seen_us;
	bool draining;
	uint32_t job_ids_count;
	uint64_t *job_ids;
};

/* WORKERS_REPLY: [[worker_info...]] */
struct proto_workers_reply {
	uint32_t workers_count;
	struct proto_worker_info *workers;
};

/* PROGRESS: [worker_id, job_id, lease, done, total, message, instance]
 * done of total (total >= 1, done <= total); message at most
 * PROTO_ERROR_TEXT_MAX bytes ("writing section about/team"). Reply SETTLED
 * with one code: 0, or JM_ESTALE when the lease is no longer the worker's
 * (it should abandon the job), also when worker_id and instance are not
 * the lease's holder. instance (appended in version 2) is never 0. */
struct proto_progress {
	proto_name worker_id;
	uint64_t job_id;
	uint64_t lease;
	uint64_t done;
	uint64_t total;
	struct proto_bytes message;
	uint64_t instance;
};

enum proto_batch_state {
	PROTO_BATCH_RUNNING = 1,   /* some jobs not finished yet */
	PROTO_BATCH_COMPLETED = 2, /* every job completed */
	PROTO_BATCH_FAILED = 3,    /* every job finished, some failed or cancelled */
};

/* One error in a BATCH: [job_id, text] */
struct proto_batch_error {
	uint64_t job_id;
	struct proto_bytes text;
};

#define PROTO_BATCH_ERRORS_MAX 20

/* BATCH_STATUS: [batch_id] (struct proto_job_ref's job_id holds the batch
 * id). BATCH: [batch_id, state, total, completed, failed, cancelled,
 *   active, current_operation, [batch_error...], created_us, finished_us]
 * current_operation: the progress message (or type) of the most recently
 * active job; errors: the latest PROTO_BATCH_ERRORS_MAX failures. */
struct proto_batch_info {
	uint64_t batch_id;
	uint32_t state; /* enum proto_batch_state */
	uint64_t total;
	uint64_t completed;
	uint64_t failed;
	uint64_t cancelled;
	uint64_t active;
	struct proto_bytes current_operation;
	uint32_t errors_count; /* 0..PROTO_BATCH_ERRORS_MAX */
	struct proto_batch_error *errors;
	uint64_t created_us;
	uint64_t finished_us; /* 0 while running */
};

/* BATCHES: []. BATCHES_REPLY: [[batch_info...]]: every running batch and
 * the 50 that finished last (while their jobs are retained), by id. */
struct proto_batches_reply {
	uint32_t batches_count;
	struct proto_batch_info *batches;
};

/* HELLO: [token]: token (optional, at most PROTO_TOKEN_MAX bytes; "" or
 * absent: none) is the secret of an --auth token, bound to the connection
 * it arrives on. HELLO_REPLY: [broker_version, events_url, identity,
 * role]: events_url is the PUB address subscribers dial, so clients only
 * ever configure the broker's address; identity and role (optional, ""
 * when the broker runs without --auth) name the token the connection
 * holds. */
#define PROTO_TOKEN_MAX 256
struct proto_hello {
	struct proto_bytes token;
};

struct proto_hello_reply {
	struct proto_bytes broker_version;
	struct proto_bytes events_url;
	struct proto_bytes identity;
	struct proto_bytes role;
};

/* DEAD_LIST: [queue, limit]: up to limit (1..PROTO_JOBS_PER_MESSAGE_MAX)
 * dead-lettered jobs of queue, oldest first. JOB_LIST: [[job_info...]]
 * (results left out). */
struct proto_dead_list {
	proto_name queue;
	uint32_t limit;
	bool with_payload; /* put each job's payload in the reply (see
	                      PROTO_LIST_PAYLOAD_BYTES_MAX) */
};

/* JOB_QUERY: [queue, state, batch_id, limit, cursor]: up to limit
 * (1..PROTO_JOBS_PER_MESSAGE_MAX) jobs, newest (highest id) first, with
 * ids below cursor (0: from the newest). queue "" is every queue, state 0
 * every state, batch_id 0 any batch or none. Reply JOB_LIST (results left
 * out); a full page means there may be more: ask again with cursor = the
 * last id returned. */
struct proto_job_query {
	proto_name queue;
	uint32_t state;
	uint64_t batch_id;
	uint32_t limit;
	uint64_t cursor;
};

struct proto_job_list {
	uint32_t jobs_count;
	struct proto_job_info *jobs;
};

/* DEAD_REMOVE has REVIVE's body and reply: the jobs are dropped for good
 * instead (journaled as DROP records, all or none), REVIVED listing them.
 * A type of its own, so an older broker refuses it rather than retry.
 * Admin role only.
 * REVIVE: [queue, job_id]: job_id 0 revives every dead-lettered job of the
 * queue, else just that one (which must be in queue). Revived jobs get
 * fresh attempts. REVIVED: [[job_id...]] */
struct proto_revive {
	proto_name queue;
	uint64_t job_id;
};

struct proto_revived {
	uint32_t ids_count;
	uint64_t *ids;
};

#define PROTO_SCHEDULE_EXPR_MAX 255 /* bytes of a cron expression */
#define PROTO_SCHEDULE_ZONE_MAX 63  /* bytes of an IANA zone name */

/* One schedule: [name, expr, zone, queue, type, payload, priority,
 *                max_attempts, timeout_ms, last_fired_us, next_run_us]
 * SCHEDULE_PUT's body is one (last_fired_us and next_run_us ignored, 0);
 * expr is a cron expression or "@every DURATION", zone an IANA zone ("":
 * UTC). In a reply, last_fired_us is the scheduled-for time of the last
 * run (0: none yet) and next_run_us the next one (0: none). */
struct proto_schedule_info {
	proto_name name;
	struct proto_bytes expr;
	struct proto_bytes zone;
	proto_name queue;
	proto_name type;
	struct proto_bytes payload;
	int32_t priority;
	uint32_t max_attempts; /* 0: the queue's default */
	uint64_t timeout_ms;   /* 0: the queue's default */
	uint64_t last_fired_us;
	uint64_t next_run_us;
};

/* SCHEDULE_DELETE: [name]. SCHEDULE_LIST: []. */
struct proto_schedule_ref {
	proto_name name;
};

/* SCHEDULES: [[schedule_info...]] in name order: a put's reply holds the
 * schedule as stored, a delete's none, a list's every one. */
struct proto_schedules {
	uint32_t schedules_count;
	struct proto_schedule_info *schedules;
};

/* Which runtime settings of a queue a QUEUE_SET changes (set_mask), and
 * which a queue has of its own rather than the broker's default. */
enum proto_queue_setting {
	PROTO_QSET_PAUSED = 1u << 0,
	PROTO_QSET_MAX_ACTIVE = 1u << 1,
	PROTO_QSET_RATE = 1u << 2, /* rate_jobs and rate_period_ms together */
	PROTO_QSET_MAX_ATTEMPTS = 1u << 3,
	/* keep_finished / keep_finished_age_ms for all three finished states
	 * (what it always meant): a queue stores it as the three per-state
	 * settings below, so it never appears in a queue's own settings. */
	PROTO_QSET_KEEP_FINISHED = 1u << 4,
	PROTO_QSET_KEEP_AGE = 1u << 5,
	PROTO_QSET_KEY_WINDOW = 1u << 6,
	PROTO_QSET_GROUP_LIMIT = 1u << 7, /* group_limit */
	/* Retention per finished state (appended fields; applied after the
	 * two above, so a QUEUE_SET may give all three and then one apart). */
	PROTO_QSET_KEEP_COMPLETED = 1u << 8,     /* keep_completed */
	PROTO_QSET_KEEP_COMPLETED_AGE = 1u << 9, /* keep_completed_age_ms */
	PROTO_QSET_KEEP_FAILED = 1u << 10,
	PROTO_QSET_KEEP_FAILED_AGE = 1u << 11,
	PROTO_QSET_KEEP_CANCELLED = 1u << 12,
	PROTO_QSET_KEEP_CANCELLED_AGE = 1u << 13,
	PROTO_QSET_ALL_ = (1u << 14) - 1,
};

/* set_mask's bits that travel in set_mask itself; those above travel in
 * keep_mask (see struct proto_queue_settings). */
#define PROTO_QSET_WIRE_BITS 8

/* A retention count with no limit (dead-lettered jobs' default: kept until
 * retried or removed). */
#define PROTO_KEEP_ALL UINT64_MAX
/* The largest retention count and age that may be set (besides
 * PROTO_KEEP_ALL; an age of 0 is no age limit). */
#define PROTO_KEEP_MAX 1000000000ull
#define PROTO_KEEP_AGE_MS_MAX (3650ull * 24 * 3600 * 1000)

#define PROTO_RATE_JOBS_MAX 1000000
#define PROTO_RATE_PERIOD_MS_MAX (24ull * 3600 * 1000)

/* A queue's runtime settings: [queue, set_mask, paused, max_active,
 * rate_jobs, rate_period_ms, max_attempts, keep_finished,
 * keep_finished_age_ms, key_window_ms, group_limit, keep_completed,
 * keep_completed_age_ms, keep_failed, keep_failed_age_ms, keep_cancelled,
 * keep_cancelled_age_ms, keep_mask]
 * QUEUE_SET's body: set_mask names the settings to change (the others are
 * ignored). QUEUE_SETTINGS's body (the reply): every setting as the queue
 * now has it, set_mask naming those it has of its own. paused: fetches get
 * nothing from it, submits are taken. max_active 0: no limit. rate: at
 * most rate_jobs starts per rate_period_ms, evenly spaced (rate_jobs 0: no
 * limit). group_limit (appended: absent from an older peer or journal, 0):
 * active jobs per group of the queue (fair tenants; 0: no limit).
 * keep_completed...keep_cancelled_age_ms (appended after group_limit; an
 * older peer or journal has 11 fields or fewer): retention per finished
 * state. In a reply keep_finished and keep_finished_age_ms are the
 * completed jobs' (what an older client shows). */
struct proto_queue_settings {
	proto_name queue;
	uint32_t set_mask; /* enum proto_queue_setting bits */
	bool paused;
	uint32_t max_active;
	uint32_t rate_jobs;      /* 0..PROTO_RATE_JOBS_MAX */
	uint64_t rate_period_ms; /* 1..PROTO_RATE_PERIOD_MS_MAX when rate_jobs > 0 */
	uint32_t max_attempts;   /* 1..PROTO_ATTEMPTS_MAX */
	uint64_t keep_finished;
	uint64_t keep_finished_age_ms;
	uint64_t key_window_ms;         /* at least 1 */
	uint32_t group_limit;           /* 0: none */
	uint64_t keep_completed;        /* PROTO_KEEP_ALL: no count limit */
	uint64_t keep_completed_age_ms; /* 0: no age limit */
	uint64_t keep_failed;
	uint64_t keep_failed_age_ms;
	uint64_t keep_cancelled;
	uint64_t keep_cancelled_age_ms;
	/* On the wire only, appended last: a message carries set_mask's bits
	 * 8 and up here (proto_encode splits them off, proto_decode joins them
	 * back and leaves this 0), so an older peer, which refuses a set_mask
	 * bit it does not know, still decodes a reply naming them. */
	uint32_t keep_mask;
};

enum proto_event_kind {
	PROTO_EVENT_JOB_STATE = 1,     /* job_id, queue, type, state, attempt,
	                                  batch_id, worker_id, message = error */
	PROTO_EVENT_JOB_PROGRESS = 2,  /* job_id, batch_id, done, total, message */
	PROTO_EVENT_BATCH = 3,         /* batch_id, state, done = completed,
	                                  failed, total, message = current op */
	PROTO_EVENT_WORKER_JOINED = 4, /* worker_id */
	PROTO_EVENT_WORKER_LOST = 5,   /* worker_id, message = why */
};

/* EVENT: [kind, at_us, job_id, batch_id, queue, type, state, attempt, done,
 *         total, failed, message, worker_id]
 * Fields a kind does not use are 0 or "" (queue, type and worker_id may be
 * empty here, unlike anywhere else).
 *
 * On the PUB socket each event is sent as its topic, one NUL byte, then
 * the encoded EVENT. A job's events go out under "job/<id>", and also under
 * "batch/<id>" when it is in one and "queue/<name>"; worker events under
 * "worker/<id>". Subscribing to "job/42" plus the NUL matches job 42 only;
 * "job/" matches every job. */
struct proto_event {
	uint32_t kind; /* enum proto_event_kind */
	uint64_t at_us;
	uint64_t job_id;
	uint64_t batch_id;
	proto_name queue;
	proto_name type;
	uint32_t state; /* job: enum proto_job_state; batch: enum proto_batch_state */
	uint32_t attempt;
	uint64_t done;
	uint64_t total;
	uint64_t failed;
	struct proto_bytes message;
	proto_name worker_id;
};

struct proto_msg {
	uint32_t version;
	enum proto_type type;
	union {
		struct proto_error error;
		struct proto_submit submit;
		struct proto_submitted submitted;
		struct proto_fetch fetch;
		struct proto_jobs jobs;
		struct proto_settle settle;
		struct proto_settled settled;
		struct proto_job_ref job_ref; /* STATUS, RESULT */
		struct proto_wait wait;
		struct proto_submit_wait submit_wait;
		struct proto_job_info job;
		struct proto_stats_reply stats_reply;
		struct proto_heartbeat heartbeat;
		struct proto_heartbeat_reply heartbeat_reply;
		struct proto_workers_reply workers_reply;
		struct proto_progress progress;
		struct proto_batch_info batch;
		struct proto_batches_reply batches_reply;
		struct proto_hello hello;
		struct proto_hello_reply hello_reply;
		struct proto_dead_list dead_list;
		struct proto_job_query job_query;
		struct proto_job_list job_list;
		struct proto_revive revive;
		struct proto_revived revived;
		struct proto_event event;
		struct proto_schedule_info schedule_put;
		struct proto_schedule_ref schedule_ref;
		struct proto_schedules schedules;
		struct proto_queue_settings queue_settings; /* QUEUE_SET, QUEUE_SETTINGS */
	} u;
	void *zone_; /* owned allocations of the decode; proto_msg_fini frees */
};

/* Decodes len bytes at buf into out. Validates the envelope, every field's
 * type and range, names and sizes; never reads past buf + len, and checks
 * every declared array/map/string length against the bytes left before
 * anything is reserved. On error returns JM_EPROTO, JM_EVERSION,
 * JM_EUNSUPPORTED (unknown message type), JM_ETOOBIG, JM_EBADNAME, JM_EINVAL
 * or JM_ENOMEM with a message in err (which may be NULL) naming the field and
 * what is allowed, and out is left zeroed and needs no fini. On success call
 * proto_msg_fini(out). */
int proto_decode(const void *buf, size_t len, struct proto_msg *out, struct jm_err *err);

/* Checks msg as proto_decode checks what it decoded (names, ranges,
 * sizes), for a message built in memory (the HTTP API): 0, or the code and
 * the same message, prefixed with the type name, that proto_decode would
 * give. */
int proto_check(const struct proto_msg *msg, struct jm_err *err);
/* Moves set_mask's bits from PROTO_QSET_WIRE_BITS up into keep_mask, and
 * back (proto_encode and proto_decode do it for QUEUE_SET and
 * QUEUE_SETTINGS). */
void proto_queue_settings_split(struct proto_queue_settings *s);
void proto_queue_settings_join(struct proto_queue_settings *s);

/* Frees what proto_decode allocated; accepts a zeroed or NULL msg. */
void proto_msg_fini(struct proto_msg *msg);

/* Appends the encoding of msg (msg->type selects the union member; version
 * is always PROTO_VERSION) to out. Returns 0, JM_ENOMEM, or JM_EINVAL for a
 * message that would not pass proto_decode. */
int proto_encode(const struct proto_msg *msg, struct jm_buf *out);

/* Convenience: encodes an ERROR with a printf-style message. */
int proto_encode_error(struct jm_buf *out, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True when name matches PROTO_NAME_RULE. len excludes any NUL. */
bool proto_name_is_valid(const char *name, size_t len);

/* The protocol name of a message type ("submit", "fetch", ...). */
const char *proto_type_name(int type);

#endif
