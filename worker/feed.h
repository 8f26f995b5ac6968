/* The feed: deliveries fetched ahead, waiting for a free slot.
 *
 * One fetch thread asks the broker for as many jobs as the worker can take
 * (slots not running a job, plus a prefetch buffer) in one FETCH, and puts
 * them here; slot threads take them in the order they arrived. So a drain
 * costs one round trip per batch of jobs, not one per job per slot.
 *
 * The buffer is sized by time, not by count: it holds about what the slots
 * run during two fetch round trips (both measured, as moving averages),
 * and never more than `prefetch`. Jobs of a microsecond fill it to the cap;
 * jobs of a second leave it empty, so long jobs are never hoarded.
 *
 * Every delivery in the feed is a lease the worker holds: its held entry
 * (held.h) is added before it enters the feed, so heartbeats list it while
 * it waits. The broker's lease deadline runs from the delivery (its run
 * timeout plus the broker's lease grace, 10 s by default), so a delivery
 * must not wait long here: one that waited past feed_wait_budget_ms() is
 * handed back by the slot that takes it (released: not an attempt), and
 * until a slot finishes a job the feed then asks only for idle slots, so
 * long jobs neither hoard nor churn the buffer.
 *
 * Invariants:
 *  - slots + prefetch bounds the deliveries the worker holds through the
 *    feed: running + buffered <= slots + prefetch (feed_wait_want);
 *  - prefetch 0 never buffers: a fetch asks only for idle slots;
 *  - a batch (one JOBS reply) is freed once every delivery of it was
 *    finished with (feed_item_done), by whichever thread finishes last;
 *  - after feed_close no slot takes a delivery and feed_put refuses; what
 *    is left is handed back by whoever closes (feed_take_all). */
#ifndef JM_WORKER_FEED_H
#define JM_WORKER_FEED_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "message.h"
#include "rpc.h"

struct held_lease;

struct feed_batch;

struct feed_item {
	struct feed_item *next;
	struct feed_batch *batch;
	const struct proto_delivery *delivery; /* points into batch->reply */
	struct held_lease *held;               /* may be NULL: could not be tracked */
	uint64_t received_ms;                  /* monotonic */
	bool overdue; /* set by feed_take: waited past its budget, hand it back */
};

/* One JOBS reply, shared by its deliveries (items[i] is jobs[i]). */
struct feed_batch {
	struct rpc_reply reply;
	uint32_t pending; /* deliveries not yet finished with; under the feed lock */
	struct feed_item items[];
};

struct feed {
	pthread_mutex_t lock;
	/* Slots wait on slot_cond for deliveries, the fetch thread on
	 * want_cond for room: a take wakes only the fetch thread (and only
	 * when it waits), a put wakes as many slots as it brought deliveries,
	 * so a slot going idle does not wake the other idle slots for
	 * nothing (a context switch each; most of a --serve worker's cost). */
	pthread_cond_t slot_cond;
	pthread_cond_t want_cond;
	bool fetch_waiting; /* in feed_wait_want */
	struct feed_item *head, *tail;
	uint32_t buffered;   /* items in the list */
	uint32_t idle_slots; /* slots waiting in feed_take */
	uint32_t slots;
	uint32_t prefetch;     /* the most the buffer may hold */
	uint64_t run_avg_us;   /* a slot's time per job (take to take); 0: unknown */
	uint64_t fetch_avg_us; /* a fetch round trip that brought jobs; 0: unknown */
	bool hold_back;        /* an overdue hand-back: ask only for idle slots */
	bool closed;
};

/* The longest a delivery with this run timeout (0: none) may wait in the
 * feed before it is handed back instead of run. */
uint64_t feed_wait_budget_ms(uint64_t timeout_ms);

void feed_init(struct feed *f, uint32_t slots, uint32_t prefetch);
/* Frees what is left (after feed_take_all, nothing). */
void feed_fini(struct feed *f);

/* Waits until the worker can take more deliveries and returns how many
 * (at least 1), or 0 once the feed is closed. */
uint32_t feed_wait_want(struct feed *f);

/* A batch for the deliveries of *reply, which it takes over (*reply is
 * zeroed); NULL when out of memory (then *reply is still the caller's).
 * Set items[i].held before feed_put. */
struct feed_batch *feed_batch_new(struct rpc_reply *reply);

/* Adds every delivery of batch, received now; the feed owns batch
 * from here on. Returns 0, or JM_ECLOSED when the feed was closed: then
 * nothing was added, and the caller still owns batch (it hands the
 * deliveries back and calls feed_batch_free). */
int feed_put(struct feed *f, struct feed_batch *batch);

/* Notes a fetch round trip of rtt_us that brought jobs. */
void feed_note_fetch(struct feed *f, uint64_t rtt_us);

/* Is no delivery waiting for a slot now? */
bool feed_is_empty(struct feed *f);

/* Waits for the next delivery; NULL once the feed is closed. after_job:
 * the calling slot just finished one, in run_us since its last take (which
 * also lifts a hold-back). The item
 * is the caller's until feed_item_done; its overdue flag says it waited
 * past its budget (and starts a hold-back): hand it back, do not run it. */
struct feed_item *feed_take(struct feed *f, bool after_job, uint64_t run_us);

/* Closes the feed and returns what was still waiting (a list linked by
 * next), for the caller to hand back and pass to feed_item_done. */
struct feed_item *feed_close(struct feed *f);

/* Finishes with item (and its batch, if it was the last of it). */
void feed_item_done(struct feed *f, struct feed_item *item);

/* Frees a batch feed_put did not take; accepts NULL. */
void feed_batch_free(struct feed_batch *batch);

#endif
