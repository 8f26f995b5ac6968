/* One heap of deadlines for everything that happens at a time: delayed jobs
 * becoming ready, leases running out, parked fetches and waits expiring,
 * silent workers being declared lost. The timer thread sleeps until the
 * earliest one (as beanstalkd's prottick() does): nothing polls.
 *
 * A struct deadline is embedded in the object it belongs to; the heap only
 * orders pointers to them. Not thread-safe: the core lock guards it.
 *
 * Deadlines are on the monotonic clock (jm_mono_us), so a step of the wall
 * clock neither fires nor delays them. Only a delayed job's run_at is wall
 * time (it is stored in the journal and must mean the same after a
 * restart); state.c turns it into a monotonic deadline when it schedules
 * the job. */
#ifndef JM_BROKER_DEADLINE_H
#define JM_BROKER_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

enum deadline_kind {
	DEADLINE_JOB_READY,   /* a delayed job's run_at */
	DEADLINE_LEASE,       /* an active job's run timeout (+ grace) */
	DEADLINE_FETCH,       /* a parked fetch's wait_ms */
	DEADLINE_WAIT,        /* a parked wait's timeout */
	DEADLINE_WORKER_LOST, /* a worker's last sign of life + dead-after */
	DEADLINE_RETENTION,   /* the periodic sweep of old finished jobs */
	DEADLINE_BATCH_EVENT, /* a coalesced batch progress event is due */
	DEADLINE_SCHEDULE,    /* a schedule's next run (schedules.h) */
	DEADLINE_QUEUE_RATE,  /* a rate-limited queue may start a job again */
};

struct deadline {
	uint64_t at_us;      /* monotonic clock (jm_mono_us) */
	uint32_t heap_index; /* DEADLINE_UNSET when not scheduled */
	enum deadline_kind kind;
};

#define DEADLINE_UNSET UINT32_MAX

struct deadline_heap {
	struct deadline **items;
	uint32_t count;
	uint32_t cap;
};

void deadline_init(struct deadline *d, enum deadline_kind kind);
bool deadline_is_set(const struct deadline *d);

void deadline_heap_init(struct deadline_heap *heap);
void deadline_heap_fini(struct deadline_heap *heap);
/* Schedules d at at_us (rescheduling it if already set). Returns 0 or
 * JM_ENOMEM. */
int deadline_heap_set(struct deadline_heap *heap, struct deadline *d, uint64_t at_us);
/* Makes room for extra more deadlines, so that setting them cannot fail;
 * 0 or JM_ENOMEM (heap unchanged). */
int deadline_heap_reserve(struct deadline_heap *heap, uint32_t extra);
/* Unschedules d if it is set. */
void deadline_heap_remove(struct deadline_heap *heap, struct deadline *d);
/* The earliest deadline, or NULL. */
struct deadline *deadline_heap_peek(const struct deadline_heap *heap);

#endif
