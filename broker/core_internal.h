/* What the core's files share (core.h is the public side).
 *
 * The core is split by request family: core.c holds the lock, the outbox,
 * commit, open/stop and the request table; core_jobs.c, core_workers.c and
 * core_views.c answer the requests; core_events.c publishes what changed;
 * core_timer.c fires deadlines and sweeps retention; compactor.c writes
 * snapshots. None of this is for code outside the core, except unit tests,
 * which read the state under core->lock.
 *
 * Locking: one mutex, core->lock, guards the state, the parked requests and
 * the deadline heap. Every entry point takes it, does its work without
 * blocking (journal_append only copies), collects finished requests in an
 * outbox, drops the lock, and only then releases the outbox to the journal
 * (journal_when_durable), whose callback sends. So no callback into nng or
 * the journal ever runs under the core lock. Every function below is called
 * with core->lock held unless it says otherwise. */
#ifndef JM_BROKER_CORE_INTERNAL_H
#define JM_BROKER_CORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "core.h"
#include "dispatch.h"
#include "token_pool.h"

struct events;

/* A parked WAIT: answered when its job finishes or its timer fires. */
struct waiter {
	struct request *req;
	struct job *job;
	struct deadline timer; /* DEADLINE_WAIT */
	TAILQ_ENTRY(waiter) link;
};

struct core {
	pthread_mutex_t lock;
	pthread_cond_t timer_wake;
	pthread_t timer_thread;
	bool timer_running;
	bool stopping;

	struct core_config config;
	struct state state;
	struct dispatch dispatch;
	struct journal *journal;
	struct jm_buf scratch; /* record encoding */
	uint64_t last_lsn;     /* last record appended */
	bool committed;        /* a record was appended since the last
	                          compactor_consider */
	uint64_t random_state;
	struct token_pool lease_tokens;
	struct deadline retention_timer;
	struct events *events; /* NULL until attached (and during replay) */

	/* Compaction runs on its own thread; compactor_consider asks for it. */
	pthread_t compactor_thread;
	bool compactor_running;
	bool compaction_wanted;
	bool compacting;
	uint64_t compaction_retry_mono_us; /* after a failure, none before */
	pthread_cond_t compactor_wake;

	/* Outboxes being released after the lock was dropped: core_stop waits
	 * for them, so none reaches the journal after it closes. */
	uint32_t flushes_running;
	pthread_cond_t flushes_done;
};

#define BROKER_VERSION "0.1.0"
#define RETENTION_SWEEP_MS 1000

/* A request handler: answers req into out, or parks it. */
typedef void (*core_handler_fn)(struct core *core, struct request *req, struct outbox *out);

/* ---- core.c: outbox, replies, commit ------------------------------------ */

void core_outbox_init(struct outbox *out);
/* Drops the core lock and releases out (replies go out once durable),
 * counted so that core_stop can wait for every release to finish. Returns
 * without the lock. */
void core_unlock_and_flush(struct core *core, struct outbox *out);

/* Encodes msg as req's reply, depending on the last record appended. */
void core_reply(struct core *core, struct request *req, const struct proto_msg *msg,
                struct outbox *out);
/* Replies with an ERROR that depends on nothing (an error changed nothing). */
void core_reply_errorf(struct core *core, struct request *req, struct outbox *out, int code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Replies with job's info, once its latest change is durable. */
void core_reply_job(struct core *core, struct request *req, const struct job *job, bool with_result,
                    struct outbox *out);
/* Replies with an in-memory view that waits for nothing. */
void core_reply_view(struct core *core, struct request *req, const struct proto_msg *msg,
                     struct outbox *out);
/* Fills info from job, borrowing its buffers. */
void core_fill_job_info(const struct job *job, bool with_result, struct proto_job_info *info);

/* Appends rec to the journal and applies it. The one way state changes.
 * A record whose applying may fail (a JOB, a SCHEDULE put: they allocate)
 * is refused here before it is journaled: those reserve first and go
 * through core_admit.c or core_schedules.c. */
int core_commit(struct core *core, const struct proto_record *rec, struct jm_err *err);
/* Encodes rec and appends it to the journal (not applied): *lsn is its
 * place. For a caller that prepared the applying first. */
int core_journal(struct core *core, const struct proto_record *rec, uint64_t *lsn,
                 struct jm_err *err);
/* core_records.c: appends count LEASE, SETTLE, CANCEL or REVIVE records
 * and applies them, all or none: what applying needs is reserved before
 * anything is journaled, so on an error nothing changed. */
int core_commit_many(struct core *core, const struct proto_record *recs, uint32_t count,
                     struct jm_err *err);
/* What follows a record applied at lsn: metrics, the job's last lsn, its
 * events. prior_since_us: when the job last changed before (0: new). */
void core_committed(struct core *core, const struct proto_record *rec, uint64_t lsn,
                    uint64_t prior_since_us);
/* A pseudo-random number for backoff jitter. */
uint64_t core_random(struct core *core);

/* ---- core_events.c ------------------------------------------------------ */

void core_publish_job_state(struct core *core, const struct job *job);
void core_publish_batch(struct core *core, struct batch *b);
void core_batch_touched(struct core *core, struct batch *b);
void core_publish_worker(struct core *core, const struct worker *w, uint32_t kind, const char *why);

/* ---- core_admit.c ------------------------------------------------------- */

/* Admission of one job the broker makes itself (a schedule's run), by the
 * rules of a submit: the queue's --max-queue-jobs, --max-payload-memory,
 * and room reserved so that applying r cannot fail. 0 with *job prepared
 * (state_apply_prepared_job or state_job_discard takes it), or JM_ELIMIT /
 * JM_ENOMEM with nothing changed. q is r's queue and exists. */
int core_admit_one(struct core *core, struct queue *q, const struct proto_rec_job *r,
                   struct job **job, struct jm_err *err);

/* ---- core_jobs.c: submit, cancel, status, result, wait, revive --------- */

void core_release_waiters(struct core *core, struct job *job, struct outbox *out);
void handle_submit(struct core *core, struct request *req, struct outbox *out);
void handle_submit_wait(struct core *core, struct request *req, struct outbox *out);
void handle_cancel(struct core *core, struct request *req, struct outbox *out);
void handle_status(struct core *core, struct request *req, struct outbox *out);
void handle_result(struct core *core, struct request *req, struct outbox *out);
void handle_wait(struct core *core, struct request *req, struct outbox *out);
/* Answers req with job (JOB, result included) now if it is finished or
 * timeout_ms is 0, else once it finishes or timeout_ms (capped by
 * wait_max_ms) passes: then true. */
bool core_wait_for_job(struct core *core, struct request *req, struct job *job, uint32_t timeout_ms,
                       struct outbox *out);
void handle_revive(struct core *core, struct request *req, struct outbox *out);

/* ---- core_workers.c: fetch, pump, settle, heartbeat, progress -------- */

/* Ends the current attempt of an active job that did not complete: retry
 * with backoff while attempts remain (unless permanent), else dead-letter. */
int core_settle_failure(struct core *core, struct job *job, const char *error, size_t error_len,
                        bool permanent, struct outbox *out, struct jm_err *err);
/* Hands ready jobs to parked fetches, oldest fetch first. */
void core_pump(struct core *core, struct outbox *out);
/* Unparks pf and frees it, answering it with no jobs if answer_empty. */
void core_unpark_fetch(struct core *core, struct parked_fetch *pf, struct outbox *out,
                       bool answer_empty);
/* The connection pipe_id closed: a worker whose latest request came on it
 * is gone, so a new process may take its id at once. */
void core_worker_pipe_gone(struct core *core, uint32_t pipe_id);
/* w's dead-after window passed without a sign of life. */
void core_worker_lost(struct core *core, struct worker *w, struct outbox *out);
void handle_fetch(struct core *core, struct request *req, struct outbox *out);
void handle_settle(struct core *core, struct request *req, struct outbox *out);
void handle_heartbeat(struct core *core, struct request *req, struct outbox *out);
void handle_progress(struct core *core, struct request *req, struct outbox *out);

/* ---- core_views.c: the read views --------------------------------------- */

/* core_auth.c: when req carries an identity (auth on), refuses what its
 * role or queues do not allow (replying and returning true). */
bool core_auth_refused(struct core *core, struct request *req, struct outbox *out);
/* May req's identity see queue? Always true when auth is off. */
bool core_auth_visible(const struct request *req, const char *queue);
/* May req's identity see batch b: are all its jobs in queues it sees? */
bool core_auth_batch_visible(const struct core *core, const struct request *req,
                             const struct batch *b);

void handle_stats(struct core *core, struct request *req, struct outbox *out);
void handle_batches(struct core *core, struct request *req, struct outbox *out);
void handle_batch_status(struct core *core, struct request *req, struct outbox *out);
void handle_workers(struct core *core, struct request *req, struct outbox *out);
void handle_dead_list(struct core *core, struct request *req, struct outbox *out);
void handle_hello(struct core *core, struct request *req, struct outbox *out);
void handle_job_query(struct core *core, struct request *req,
                      struct outbox *out); /* core_query.c */

/* ---- core_schedules.c: schedule puts, deletes, lists and runs ---------- */

/* s's timer fired: submits its due run (the catch-up rule in schedules.h)
 * with one SCHEDULE_FIRE record, or re-arms it when not yet due. */
void core_schedule_fired(struct core *core, struct schedule *s, struct outbox *out);
void handle_schedule_put(struct core *core, struct request *req, struct outbox *out);
void handle_schedule_delete(struct core *core, struct request *req, struct outbox *out);
void handle_schedule_list(struct core *core, struct request *req, struct outbox *out);

/* ---- core_queues.c: runtime queue settings, the rate timer ------------- */

void handle_queue_set(struct core *core, struct request *req, struct outbox *out);
/* q has ready jobs its rate limit holds back: arms its rate timer (once). */
void core_queue_rate_wait(struct core *core, struct queue *q);
/* q's rate timer fired: parked fetches get another go. */
void core_queue_rate_fired(struct core *core, struct queue *q, struct outbox *out);

/* ---- core_timer.c ------------------------------------------------------- */

/* Unschedules d and does what its time calls for. */
void core_deadline_fired(struct core *core, struct deadline *d, struct outbox *out);
/* The timer thread: sleeps until the earliest deadline. Takes the lock. */
void *core_timer_main(void *arg);

/* ---- compactor.c -------------------------------------------------------- */

/* The compaction thread: writes a snapshot whenever compaction_wanted is
 * set. Takes the lock. */
void *compactor_main(void *arg);
/* Asks the compaction thread for a snapshot if compactor_is_due says so
 * and none is running or wanted. */
void compactor_consider(struct core *core);
/* The policy: a journal of journal_bytes (snapshot and segments since) is
 * due when it is at least min_bytes (0: never) and twice live_bytes. */
bool compactor_is_due(uint64_t journal_bytes, uint64_t live_bytes, uint64_t min_bytes);

#endif
