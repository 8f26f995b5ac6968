/* The jobmesh C client SDK: submit jobs, read their state, wait for them.
 *
 * A jm_client holds one connection (an NNG REQ socket) to the broker and a
 * pool of contexts, so every call is thread-safe and many calls from many
 * threads are in flight at once. Calls return 0 or a negative JM_E... code
 * (jobmesh/error.h); jm_client_last_error() gives the detailed message of
 * the calling thread's last failure, such as the broker's explanation of a
 * refused submit. */
#ifndef JOBMESH_CLIENT_H
#define JOBMESH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jobmesh/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JM_DEFAULT_BROKER_URL "tcp://127.0.0.1:7400"

/* Limits the SDK checks before sending (the broker's defaults; the same
 * numbers as proto/proto_limits.h): bytes of one job's payload, and jobs in one
 * batch (jm_client_submit_many with as_batch). */
#define JM_PAYLOAD_MAX_BYTES (1u << 20)
#define JM_BATCH_JOBS_MAX 10000u

typedef struct jm_client jm_client;

/* Connects to url; NULL means $JOBMESH_BROKER, else JM_DEFAULT_BROKER_URL.
 * Connection happens in the background and is retried with backoff, so this
 * succeeds while the broker is down; calls then wait up to their timeout. */
int jm_client_open(jm_client **out, const char *url);

/* What the client presents to a broker that runs with --auth or TLS. NULL
 * fields fall back to $JOBMESH_TOKEN, $JOBMESH_TLS_CA, $JOBMESH_TLS_CERT
 * and $JOBMESH_TLS_KEY (jm_client_open uses only those). The token goes in
 * a HELLO on every new connection, reconnects included. */
typedef struct jm_security {
	const char *token;    /* the secret whose SHA-256 is in the auth file */
	const char *tls_ca;   /* PEM CA that signed the broker's certificate */
	const char *tls_cert; /* PEM client certificate (mutual TLS), or NULL */
	const char *tls_key;  /* its PEM private key */
} jm_security;
int jm_client_open_secure(jm_client **out, const char *url, const jm_security *sec);
void jm_client_close(jm_client *client); /* accepts NULL */

/* Timeout for calls other than wait (default 10000 ms). */
void jm_client_set_timeout_ms(jm_client *client, uint32_t timeout_ms);

/* Detailed text of this thread's last failed call ("" if none). */
const char *jm_client_last_error(void);

typedef struct jm_job_spec {
	const char *queue;   /* 1-64 of A-Z a-z 0-9 . _ - */
	const char *type;    /* same rule */
	const void *payload; /* may be NULL when payload_len is 0 */
	size_t payload_len;
	int priority;          /* -1000..1000, higher first; 0 default */
	unsigned max_attempts; /* 0: queue default (3) */
	uint64_t delay_ms;     /* 0: ready now */
	uint64_t timeout_ms;   /* run timeout per attempt; 0: default */
	/* NULL or "": none. Else 1-128 printable ASCII characters: a second
	 * submit with the same key to the same queue within the broker's key
	 * window (default 24 h) gets the first job's id and creates nothing,
	 * also across broker restarts; submit it again with the same key when
	 * a submit's outcome is unknown (a timeout, a lost connection). */
	const char *idempotency_key;
	uint64_t run_at_us; /* wall time (µs since 1970) to run no sooner than;
	                       0: none (then delay_ms counts); not with delay_ms */
	/* Fair tenants: NULL or "": none. Else a name (1-64 of A-Z a-z 0-9
	 * . _ -), e.g. "tenant-42": within a queue the groups with ready jobs
	 * take turns, so one group's many jobs do not starve another's few. */
	const char *group;
} jm_job_spec;

/* Enqueues one job; on success *job_id is its id. */
int jm_client_submit(jm_client *client, const jm_job_spec *job, uint64_t *job_id);

/* Enqueues count jobs in one round trip, all or none. job_ids (count
 * entries) receives the ids in order. With as_batch the jobs form a batch
 * whose id goes to *batch_id (may be NULL otherwise). */
int jm_client_submit_many(jm_client *client, const jm_job_spec *jobs, size_t count, bool as_batch,
                          uint64_t *job_ids, uint64_t *batch_id);

/* Asynchronous submit: many jobs in flight from one thread. A submitter
 * owns `in_flight` request contexts on the client's connection (1..1024;
 * 64 keeps a 2-core broker busy). jm_client_submit_async checks and
 * encodes the job (its strings and payload are free again on return),
 * waits only while `in_flight` submits are unanswered, and returns 0; cb
 * then runs exactly once, on an NNG thread, with rc 0 and the job's id, or
 * a negative JM_E code and the reason (error valid only during cb). cb must
 * not block and must not call jm_client_submit_async of the same submitter.
 * A nonzero return means the job was not sent and cb will not run.
 * Submits are not ordered with one another: the ids follow the broker's
 * arrival order. */
typedef struct jm_submitter jm_submitter;
typedef void (*jm_submit_cb)(void *arg, int rc, uint64_t job_id, const char *error);
int jm_submitter_open(jm_client *client, unsigned in_flight, jm_submitter **out);
int jm_client_submit_async(jm_submitter *submitter, const jm_job_spec *job, jm_submit_cb cb,
                           void *arg);
/* Asynchronous submit of several jobs in one message, all or none (as
 * jm_client_submit_many without as_batch, for 1..10,000 jobs that fit one
 * message), on the same submitter and terms as jm_client_submit_async:
 * the jobs are checked and encoded before the return; cb then runs exactly
 * once, on an NNG thread, with rc 0 and the count ids in the jobs' order
 * (ids valid only during cb), or a negative JM_E code, NULL, 0 and the
 * reason. A producer keeps a few of these in flight to hide the broker's
 * sync and the round trip (tests/bench/peers/peer_jobmesh.c, W1b). */
typedef void (*jm_submit_many_cb)(void *arg, int rc, const uint64_t *job_ids, size_t count,
                                  const char *error);
int jm_client_submit_many_async(jm_submitter *submitter, const jm_job_spec *jobs, size_t count,
                                jm_submit_many_cb cb, void *arg);
/* Waits until every submit made so far has had its callback. */
void jm_submitter_wait(jm_submitter *submitter);
/* Waits as jm_submitter_wait, then frees the submitter. Accepts NULL. */
void jm_submitter_close(jm_submitter *submitter);

enum jm_job_state {
	JM_STATE_PENDING = 1,
	JM_STATE_DELAYED = 2,
	JM_STATE_ACTIVE = 3,
	JM_STATE_COMPLETED = 4,
	JM_STATE_FAILED = 5, /* dead-lettered */
	JM_STATE_CANCELLED = 6,
};

const char *jm_job_state_name(int state);

typedef struct jm_job_info {
	uint64_t id;
	char queue[65];
	char type[65];
	int state; /* enum jm_job_state */
	int priority;
	unsigned attempt;
	unsigned max_attempts;
	uint64_t created_us; /* wall clock, microseconds since the epoch */
	uint64_t updated_us;
	uint64_t run_at_us; /* when a delayed job becomes ready, else 0 */
	char *last_error;   /* NUL-terminated, "" if none; owned */
	bool has_result;
	void *result; /* owned; NUL-terminated for convenience */
	size_t result_len;
	uint64_t batch_id;       /* 0: not in a batch */
	uint64_t progress_done;  /* the handler's last progress report: done of */
	uint64_t progress_total; /* total (0 of 0: none reported yet) */
	char *progress_message;  /* what it is doing now; "" if none; owned */
	void *payload;           /* with jm_client_status_payload: owned, NUL-terminated
	                            for convenience; else NULL */
	size_t payload_len;
	char group[65]; /* its group (jm_job_spec.group); "" for none */
} jm_job_info;

void jm_job_info_fini(jm_job_info *info); /* frees owned fields; accepts NULL */

/* State of a job, without its result. JM_ENOTFOUND for an unknown id. */
int jm_client_status(jm_client *client, uint64_t job_id, jm_job_info *out);
/* jm_client_status with the job's payload (inspecting a dead-lettered job). */
int jm_client_status_payload(jm_client *client, uint64_t job_id, jm_job_info *out);
/* State of a job with its result (when completed). */
int jm_client_result(jm_client *client, uint64_t job_id, jm_job_info *out);
/* Waits until the job is completed, failed or cancelled, up to timeout_ms,
 * without polling: the broker answers when the job finishes. On timeout
 * returns JM_ETIMEDOUT with *out holding the latest state. */
int jm_client_wait(jm_client *client, uint64_t job_id, uint32_t timeout_ms, jm_job_info *out);
/* Enqueues one job and waits for it as jm_client_wait does, in one round
 * trip: the broker answers once the job finished (or timeout_ms passed),
 * and one journal sync covers both the job's admission and its outcome
 * when the job is short. out->id is the job's id (the earlier job's when
 * its idempotency key matched one). On timeout returns JM_ETIMEDOUT with
 * *out holding the latest state. JM_ETRANSPORT with out->id 0: the
 * broker did not answer, and the job may or may not have been enqueued. */
int jm_client_submit_wait(jm_client *client, const jm_job_spec *job, uint32_t timeout_ms,
                          jm_job_info *out);

typedef struct jm_queue_stats {
	char name[65];
	uint64_t pending, delayed, active, completed, failed, cancelled;
	uint64_t oldest_pending_us; /* wall time the longest-waiting pending job
	                               became ready; 0 when none is pending */
	uint32_t max_active;        /* the queue's active limit; 0: none */
	bool paused;                /* jobmesh queue pause */
	unsigned rate_jobs;         /* starts per rate_period_ms; 0: no rate limit */
	uint64_t rate_period_ms;
	/* Pending jobs whose type no connected worker of the queue has a
	 * handler for: they wait for one (routing). Up to 8 of those types. */
	uint64_t unroutable;
	unsigned unroutable_types_count;
	char unroutable_types[8][65];
	unsigned group_limit; /* active jobs per group (fair tenants); 0: none */
} jm_queue_stats;

/* Per-queue counters; *queues is malloc'd (free with free()). */
int jm_client_stats(jm_client *client, jm_queue_stats **queues, size_t *count);

/* A queue's runtime settings (jm_client_queue_set). set_mask: in a change,
 * the settings to change; in the reply, those the queue has of its own
 * (the rest follow the broker's flags). */
enum {
	JM_QSET_PAUSED = 1u << 0,       /* paused: fetches get nothing, submits are taken */
	JM_QSET_MAX_ACTIVE = 1u << 1,   /* max_active: active jobs at once; 0: no limit */
	JM_QSET_RATE = 1u << 2,         /* rate_jobs per rate_period_ms starts; 0: none */
	JM_QSET_MAX_ATTEMPTS = 1u << 3, /* max_attempts for jobs that give none */
	/* keep_finished / keep_finished_age_ms: retention of completed,
	 * failed and cancelled jobs alike (sets the three below; a reply
	 * never names these two, and carries the completed jobs' there). */
	JM_QSET_KEEP_FINISHED = 1u << 4,
	JM_QSET_KEEP_AGE = 1u << 5,
	JM_QSET_KEY_WINDOW = 1u << 6,  /* key_window_ms of idempotency keys */
	JM_QSET_GROUP_LIMIT = 1u << 7, /* group_limit: active jobs per group; 0: none */
	/* Retention per finished state: a count (JM_KEEP_ALL: no limit) and
	 * an age in ms (0: no age limit). Applied after KEEP_FINISHED/AGE. */
	JM_QSET_KEEP_COMPLETED = 1u << 8,
	JM_QSET_KEEP_COMPLETED_AGE = 1u << 9,
	JM_QSET_KEEP_FAILED = 1u << 10, /* dead letters; default JM_KEEP_ALL, no age */
	JM_QSET_KEEP_FAILED_AGE = 1u << 11,
	JM_QSET_KEEP_CANCELLED = 1u << 12,
	JM_QSET_KEEP_CANCELLED_AGE = 1u << 13,
};

/* A retention count with no limit. */
#define JM_KEEP_ALL UINT64_MAX

typedef struct jm_queue_settings {
	char name[65];
	unsigned set_mask;
	bool paused;
	unsigned max_active;
	unsigned rate_jobs; /* starts are spaced rate_period_ms / rate_jobs apart */
	uint64_t rate_period_ms;
	unsigned max_attempts;
	uint64_t keep_finished;
	uint64_t keep_finished_age_ms;
	uint64_t key_window_ms;
	unsigned group_limit; /* active jobs per group (fair tenants); 0: none */
	uint64_t keep_completed, keep_completed_age_ms;
	uint64_t keep_failed, keep_failed_age_ms;
	uint64_t keep_cancelled, keep_cancelled_age_ms;
} jm_queue_settings;

/* Changes the settings of queue that changes->set_mask names (mask 0:
 * changes nothing) and, when out is not NULL, fills it with the queue's
 * settings as they now are. Journaled: they survive restarts. Admin role
 * when the broker checks tokens. */
int jm_client_queue_set(jm_client *client, const char *queue, const jm_queue_settings *changes,
                        jm_queue_settings *out);

/* Cancels a job that has not finished: pending and delayed jobs are
 * cancelled at once, an active job's worker is told to abandon it. *out
 * holds the new state. JM_ESTATE for a job already finished, JM_ENOTFOUND
 * for an unknown id. */
int jm_client_cancel(jm_client *client, uint64_t job_id, jm_job_info *out);

/* Frees count jobs and the array (as returned by jm_client_dead_list);
 * accepts NULL. */
void jm_job_infos_free(jm_job_info *jobs, size_t count);

/* ---- workers ---------------------------------------------------------- */

typedef struct jm_worker_info {
	char id[65];
	char *host; /* owned, "" if unknown */
	unsigned pid;
	unsigned concurrency;
	char **queues; /* owned: queues_count NUL-terminated names */
	size_t queues_count;
	unsigned active_jobs;
	uint64_t first_seen_us; /* wall clock, microseconds since the epoch */
	uint64_t last_seen_us;
	bool draining;
	uint64_t *job_ids; /* owned: the jobs it holds */
	size_t job_ids_count;
} jm_worker_info;

/* Every worker the broker knows; free with jm_workers_free(). */
int jm_client_workers(jm_client *client, jm_worker_info **workers, size_t *count);
void jm_workers_free(jm_worker_info *workers, size_t count); /* accepts NULL */

/* ---- batches ---------------------------------------------------------- */

enum jm_batch_state {
	JM_BATCH_RUNNING = 1,   /* some jobs not finished yet */
	JM_BATCH_COMPLETED = 2, /* every job completed */
	JM_BATCH_FAILED = 3,    /* every job finished, some failed or cancelled */
};

/* "running", "completed", "failed"; "unknown" for anything else. */
const char *jm_batch_state_name(int state);

#define JM_BATCH_ERRORS_MAX 20 /* errors a jm_batch_info carries at most */

typedef struct jm_batch_error {
	uint64_t job_id;
	char *text; /* owned, NUL-terminated */
} jm_batch_error;

typedef struct jm_batch_info {
	uint64_t id;
	int state; /* enum jm_batch_state */
	uint64_t total;
	uint64_t completed;
	uint64_t failed;
	uint64_t cancelled;
	uint64_t active;
	char *current_operation; /* progress message or type of the most recently
	                            active job; "" if none; owned */
	jm_batch_error *errors;  /* the latest failures, at most
	                            JM_BATCH_ERRORS_MAX; owned */
	size_t errors_count;
	uint64_t created_us;  /* wall clock, microseconds since the epoch */
	uint64_t finished_us; /* 0 while running */
} jm_batch_info;

void jm_batch_info_fini(jm_batch_info *info); /* frees owned fields; accepts NULL */
/* Frees count batches and the array (as returned by jm_client_batches). */
void jm_batch_infos_free(jm_batch_info *batches, size_t count);

/* One batch's counts. JM_ENOTFOUND for an id that is not a batch (it may be
 * a job: job and batch ids come from one counter, so they never clash). */
int jm_client_batch_status(jm_client *client, uint64_t batch_id, jm_batch_info *out);

/* Every running batch; free with jm_batch_infos_free(). */
int jm_client_batches(jm_client *client, jm_batch_info **batches, size_t *count);

/* Waits until the batch is no longer running, up to timeout_ms, driven by
 * the broker's events: it subscribes to the batch's topic first, then reads
 * its status (so a batch that finished before the call returns at once),
 * then re-reads the status on each event and at least once a second (an
 * event may be dropped). On timeout returns JM_ETIMEDOUT with *out holding
 * the latest status. */
int jm_client_wait_batch(jm_client *client, uint64_t batch_id, uint32_t timeout_ms,
                         jm_batch_info *out);

/* ---- dead-letter -------------------------------------------------------- */

/* Up to limit (1..JM_BATCH_JOBS_MAX) dead-lettered jobs of queue, oldest
 * first, without results; free with jm_job_infos_free(). */
int jm_client_dead_list(jm_client *client, const char *queue, unsigned limit, jm_job_info **jobs,
                        size_t *count);

/* Puts dead-lettered jobs of queue back to pending with fresh attempts:
 * job_id 0 revives all of them, else just that one (which must be a
 * dead-lettered job of queue). *ids (malloc'd, free with free(); NULL when
 * none) lists the revived ids. */
int jm_client_revive(jm_client *client, const char *queue, uint64_t job_id, uint64_t **ids,
                     size_t *count);
/* Removes dead-lettered jobs of queue for good (journaled, all or none):
 * job_id 0 removes all of them, else just that one. *ids as for
 * jm_client_revive, listing the removed ids. Admin role when the broker
 * checks tokens. */
int jm_client_dead_remove(jm_client *client, const char *queue, uint64_t job_id, uint64_t **ids,
                          size_t *count);

/* ---- schedules ---------------------------------------------------------- */

/* A named schedule: expr is a cron expression (5 fields, or 6 with seconds
 * first) or "@every DURATION"; zone an IANA time zone (NULL or "": UTC).
 * Each run submits a job of the template. In a listing every pointer is
 * owned (jm_schedules_free); last_fired_us is the scheduled-for time of
 * the last run (0: none yet) and next_run_us the next one. */
typedef struct jm_schedule {
	char *name;
	char *expr;
	char *zone;
	char *queue;
	char *type;
	void *payload;
	size_t payload_len;
	int32_t priority;
	uint32_t max_attempts; /* 0: the queue's default */
	uint64_t timeout_ms;   /* 0: the queue's default */
	uint64_t last_fired_us;
	uint64_t next_run_us;
} jm_schedule;

/* Creates or replaces schedule s->name (last_fired_us and next_run_us are
 * ignored). A replaced schedule keeps its last run, so a change neither
 * repeats nor skips one. If out is not NULL it gets the schedule as stored
 * (free with jm_schedules_free(out, 1)). */
int jm_client_schedule_put(jm_client *client, const jm_schedule *s, jm_schedule **out);
/* Removes schedule name; JM_ENOTFOUND when there is none. */
int jm_client_schedule_delete(jm_client *client, const char *name);
/* Every schedule in name order with its next run; free with
 * jm_schedules_free(). */
int jm_client_schedule_list(jm_client *client, jm_schedule **schedules, size_t *count);
void jm_schedules_free(jm_schedule *schedules, size_t count);

/* ---- events ------------------------------------------------------------- */

enum jm_event_kind {
	JM_EVENT_JOB_STATE = 1,     /* job_id, queue, type, state, attempt,
	                               batch_id, worker_id; message: the error */
	JM_EVENT_JOB_PROGRESS = 2,  /* job_id, batch_id, done, total, message */
	JM_EVENT_BATCH = 3,         /* batch_id, state (enum jm_batch_state),
	                               done (completed), failed (failed +
	                               cancelled), total; message: current op */
	JM_EVENT_WORKER_JOINED = 4, /* worker_id */
	JM_EVENT_WORKER_LOST = 5,   /* worker_id; message: why */
	/* Not from the broker: the subscription moved to a new leader (a
	 * client given a list of brokers, README "High availability") and is
	 * connected there. topic: the subscription's; message: the new events
	 * address. Events between the old leader's last one received and
	 * now were not seen: re-read the state of what you watch. */
	JM_EVENT_RESUBSCRIBED = 6,
};

/* One event as published by the broker. Fields a kind does not use are 0
 * or "". Every pointer is valid only during the callback. */
typedef struct jm_event {
	int kind;          /* enum jm_event_kind */
	const char *topic; /* "job/42", "batch/7", "queue/emails", "worker/w1" */
	uint64_t job_id;
	uint64_t batch_id;
	const char *queue;
	const char *type;
	int state; /* job events: enum jm_job_state; batch: enum jm_batch_state */
	unsigned attempt;
	uint64_t done;
	uint64_t total;
	uint64_t failed;
	const char *message; /* NUL-terminated */
	const char *worker_id;
	uint64_t at_us; /* wall clock, microseconds since the epoch */
} jm_event;

typedef void (*jm_event_fn)(const jm_event *ev, void *arg);

typedef struct jm_subscription jm_subscription;

/* Subscribes to the broker's events whose topic starts with topic (exact:
 * equals it): "job/42" exact for one job, "batch/" for every batch, "" for
 * everything. The first subscription of a client asks the broker (HELLO)
 * for its events address. Each subscription has its own SUB socket and one
 * receive thread, which calls cb(ev, arg) for each event, in the order the
 * broker published them; cb must return quickly and must not call
 * jm_subscription_close on its own subscription.
 *
 * Events are best effort: the broker drops them for a subscriber that falls
 * behind (the receive queue holds 1024 frames of events), and events published before the
 * subscription was connected are never seen. A waiter must therefore read
 * the state after subscribing and re-read it on a bounded timer.
 *
 * With a client given a list of brokers (high availability), the
 * subscription follows the leader: every second its thread asks (HELLO,
 * which a standby refuses naming the leader) which events address leads,
 * and when that changed it subscribes there and calls cb once with
 * JM_EVENT_RESUBSCRIBED. What the old leader published after the last
 * frame received, and what the new one published before the new
 * connection, is not seen: on JM_EVENT_RESUBSCRIBED re-read the state you
 * watch (jm_client_get, jm_client_batch). Such a subscription uses its
 * client: close it before jm_client_close. */
int jm_client_subscribe(jm_client *client, const char *topic, bool exact, jm_event_fn cb, void *arg,
                        jm_subscription **out);

/* Stops the receive thread (cb is not called once this returns) and
 * closes the socket. Accepts NULL. */
void jm_subscription_close(jm_subscription *sub);

/* The broker's events address (from HELLO, asked once per client and
 * cached); *url stays valid until jm_client_close. JM_EUNSUPPORTED when the
 * broker publishes no events. */
int jm_client_events_url(jm_client *client, const char **url);

#ifdef __cplusplus
}
#endif
#endif
