/* The settler: one thread that settles the outcomes of finished handlers
 * (SETTLE items: a result, an error or a hand-back) for every slot, so that a slot
 * fetches its next job at once instead of waiting out the broker's answer
 * (a SETTLE is answered only once the journal synced it).
 *
 * A slot puts an outcome in the queue and goes on. The thread takes all
 * that is queued as one batch and hands it to the send callback, which sends
 * it (as one SETTLE message) and returns once each item was
 * answered or given up on. Outcomes put meanwhile make the next batch: the
 * slower the broker syncs, the larger the batches.
 *
 * Invariants:
 *  - the settler owns an outcome from settler_put() on and frees it exactly
 *    once, after the send callback returned for its batch;
 *  - an outcome is unanswered from settler_put() until its batch's callback
 *    returned; a put waits while `limit` outcomes are unanswered, so memory
 *    stays bounded when the broker is slow or down. That wait ends when a
 *    batch finishes, which the callback's own retry budgets bound;
 *  - a batch holds at most SETTLE_BATCH_ITEMS_MAX outcomes and, unless a
 *    single outcome is larger, at most SETTLE_BATCH_BYTES_MAX bytes of
 *    results and error texts, so its messages stay far below
 *    PROTO_MESSAGE_MAX;
 *  - outcomes are handed to the callback in the order they were put;
 *  - settler_close() returns only after every outcome put before it went
 *    through the callback: a stop drops nothing that was queued;
 *  - the thread and a waiting put sleep on condition variables; nothing
 *    polls. */
#ifndef JM_WORKER_SETTLER_H
#define JM_WORKER_SETTLER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SETTLE_BATCH_ITEMS_MAX 1024u
#define SETTLE_BATCH_BYTES_MAX (16u << 20)

struct held_lease;

/* One job's outcome, a SETTLE item to be. data holds the result
 * (completed) or the error text (failed, released; NUL-terminated beyond
 * data_len); it lives in the same allocation. */
struct settle_outcome {
	struct settle_outcome *next; /* the settler's queue link */
	uint64_t job_id;
	uint64_t lease;
	uint64_t deadline_ms;    /* monotonic: retries stop after it */
	struct held_lease *held; /* the callback's to retire; may be NULL */
	uint32_t outcome;        /* enum proto_settle_outcome (proto/message.h) */
	bool permanent;          /* failed: no retry, straight to dead-letter */
	uint32_t data_len;
	uint8_t data[];
};

/* Sends batch[0..count) and returns once each outcome was answered or given
 * up on. The outcomes stay the settler's: it frees them after the return. */
typedef void (*settler_send_cb)(void *arg, struct settle_outcome *const *batch, size_t count);

struct settler {
	pthread_mutex_t lock;
	pthread_cond_t work; /* the thread waits for outcomes or a close */
	pthread_cond_t room; /* puts wait for unanswered outcomes to drop */
	struct settle_outcome *head;
	struct settle_outcome *tail;
	size_t queued;    /* put, not yet taken into a batch */
	size_t in_flight; /* in the batch being sent */
	size_t limit;     /* unanswered outcomes a put waits behind */
	bool closing;
	struct settle_outcome **batch; /* SETTLE_BATCH_ITEMS_MAX, the thread's */
	settler_send_cb send_cb;
	void *cb_arg;
	pthread_t thread;
	bool started;
};

/* A new outcome with a copy of data (len bytes; NULL when len is 0), or
 * NULL when out of memory. The caller owns it until settler_put(). */
struct settle_outcome *settle_outcome_new(uint32_t outcome_kind, uint64_t job_id, uint64_t lease,
                                          uint64_t deadline_ms, struct held_lease *held,
                                          const void *data, size_t len);
void settle_outcome_free(struct settle_outcome *outcome); /* accepts NULL */

/* limit (at least 1) bounds the unanswered outcomes, see above. Returns 0
 * or JM_ENOMEM. */
int settler_init(struct settler *s, size_t limit, settler_send_cb send_cb, void *cb_arg);
/* Frees what settler_init allocated and any outcome still queued; the
 * thread must not run (never started, or settler_close returned). */
void settler_fini(struct settler *s);

/* Starts the thread. Returns 0 or the pthread_create error. */
int settler_start(struct settler *s);

/* Queues outcome (the settler owns it from now on), first waiting while
 * `limit` outcomes are unanswered. Only between settler_start() and
 * settler_close(). */
void settler_put(struct settler *s, struct settle_outcome *outcome);

/* Queues the count outcomes linked from first by next, in that order, as
 * one put: it waits as settler_put() does, then queues them all (a list
 * may so run the unanswered outcomes up to limit + count - 1) and wakes
 * the thread once. */
void settler_put_list(struct settler *s, struct settle_outcome *first, size_t count);

/* Is nothing queued and no batch being sent? (A slot with nothing else to
 * do then settles its outcome itself: see worker.c, job_conclude.) */
bool settler_is_idle(struct settler *s);

/* Sends everything queued, then ends and joins the thread. No put may
 * follow or run concurrently. A settler never started returns at once. */
void settler_close(struct settler *s);

#endif
