/* Workers the broker knows of, by id.
 *
 * A worker exists from its first request (fetch, ack, fail or heartbeat)
 * until it is lost: silent for longer than the dead-after window. Every
 * request from it counts as a sign of life. It holds the leases of its
 * active jobs; when it is lost they are requeued, counting as an attempt,
 * so a job that keeps killing its workers ends dead-lettered.
 *
 * Heartbeats also reconcile leases both ways (core.c): a lease the worker
 * reports but does not hold is one it must abandon; a lease it holds but
 * keeps not reporting never reached it — NNG "delivers" a reply to a pipe
 * that has just gone — and is handed back without counting an attempt. */
#ifndef JM_BROKER_WORKERS_H
#define JM_BROKER_WORKERS_H

#include <stdbool.h>
#include <stdint.h>

#include "deadline.h"
#include "job.h"
#include "message.h"
#include "namemap.h"

/* Heartbeats a lease may go unreported after it was granted before it is
 * taken as lost in transit. Three beats leave a full interval of margin for
 * a delivery that waited on the journal. */
#define WORKER_UNREPORTED_BEATS 3

struct worker {
	char id[PROTO_NAME_MAX + 1];
	char host[PROTO_HOST_MAX + 1];
	uint32_t pid;
	uint64_t instance; /* the process behind the id; 0 until it says */
	uint32_t pipe_id;  /* the connection its latest request came on (0:
	                      none yet, e.g. known from the journal only) */
	bool pipe_gone;    /* that connection closed */
	uint32_t concurrency;
	uint32_t queues_count;
	proto_name queues[PROTO_QUEUES_PER_FETCH_MAX];
	/* The job types its latest fetch named (types_count 0: any type, as
	 * an older worker); what stats call routable (core_views.c). */
	uint32_t types_count;
	proto_name *types;
	bool announced; /* its joined event went out */
	uint64_t first_seen_us;
	uint64_t last_seen_us;      /* wall clock, for display */
	uint64_t last_seen_mono_us; /* what the lost deadline counts from */
	uint64_t heartbeats;
	bool draining;

	struct job_list held;
	uint32_t held_count;
	uint32_t parked_fetches;

	struct deadline lost_timer; /* DEADLINE_WORKER_LOST */
	struct namemap_entry by_id;
};

struct worker_registry {
	struct namemap workers;
	uint32_t max_workers;
};

int worker_registry_init(struct worker_registry *reg, uint32_t max_workers);
/* Frees every worker; their held lists must be empty or abandoned. */
void worker_registry_fini(struct worker_registry *reg);
struct worker *worker_find(const struct worker_registry *reg, const char *id);
/* Finds id or creates it (first_seen = now). JM_ELIMIT, JM_ENOMEM. */
int worker_get(struct worker_registry *reg, const char *id, uint64_t now_us, struct worker **out);
/* Notes the queues and job types w's fetch names. Out of memory, the
 * types are taken as "any" (only stats read them). */
void worker_note_fetch(struct worker *w, const struct proto_fetch *fetch);
/* Does w take jobs of type from queue (a queue it fetches or reported)? */
bool worker_takes(const struct worker *w, const char *queue, const char *type);
/* Removes and frees w, which must hold no leases. */
void worker_remove(struct worker_registry *reg, struct worker *w);
void worker_each(const struct worker_registry *reg, void (*fn)(struct worker *w, void *arg),
                 void *arg);

#endif
