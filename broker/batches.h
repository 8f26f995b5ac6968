/* Batches: jobs submitted together, tracked as counts by state.
 *
 * A batch needs no journal record of its own: every job carries its
 * batch_id, and the counts follow the jobs' placement in state.c, so replay
 * rebuilds batches exactly. A batch lives while any of its jobs does.
 * Current operation (the latest progress message) is in memory only.
 * Not thread-safe (core lock). */
#ifndef JM_BROKER_BATCHES_H
#define JM_BROKER_BATCHES_H

#include <stdbool.h>
#include <stdint.h>

#include "deadline.h"
#include "message.h"
#include "u64map.h"

struct batch_error {
	uint64_t job_id;
	char *text;
};

struct batch {
	uint64_t id;
	uint64_t jobs_present; /* jobs of the batch still held */
	uint64_t total;        /* jobs ever admitted */
	uint64_t pending;      /* pending or delayed */
	uint64_t active;
	uint64_t completed;
	uint64_t failed;
	uint64_t cancelled;
	uint64_t created_us;
	uint64_t finished_us; /* when the last job finished; 0 while running */
	char *current_operation;
	/* The queue of its jobs, for tenants (core_auth.c): mixed when they are
	 * in more than one. */
	proto_name queue;
	bool mixed;
	/* The latest PROTO_BATCH_ERRORS_MAX failures, a ring. */
	struct batch_error errors[PROTO_BATCH_ERRORS_MAX];
	uint32_t errors_count;
	uint32_t errors_next;

	/* Coalesced events: at most one per BATCH_EVENT_INTERVAL_MS. */
	uint64_t last_event_us; /* monotonic clock */
	bool event_due;
	struct deadline event_timer; /* DEADLINE_BATCH_EVENT */

	struct u64map_node node; /* in batch_registry; key is id */
};

/* Batches by id: a u64map (common/u64map.h) whose fields stay readable as
 * batches.count. */
struct batch_registry {
	union {
		struct u64map map;
		struct {
			U64MAP_FIELDS;
		};
	};
};

#define BATCH_EVENT_INTERVAL_MS 100

int batch_registry_init(struct batch_registry *reg);
void batch_registry_fini(struct batch_registry *reg); /* frees every batch */
struct batch *batch_find(const struct batch_registry *reg, uint64_t id);
/* Finds id or creates it; 0 or JM_ENOMEM. */
int batch_get(struct batch_registry *reg, uint64_t id, uint64_t created_us, struct batch **out);
/* Frees b once it holds no job. */
void batch_remove(struct batch_registry *reg, struct batch *b);
void batch_each(const struct batch_registry *reg, void (*fn)(struct batch *b, void *arg),
                void *arg);

bool batch_is_finished(const struct batch *b);
/* enum proto_batch_state of b. */
uint32_t batch_state(const struct batch *b);
/* Remembers a failure (text copied; truncated to PROTO_ERROR_TEXT_MAX). */
void batch_add_error(struct batch *b, uint64_t job_id, const char *text);
void batch_set_operation(struct batch *b, const char *text, size_t len);
/* A job of queue joined b. */
void batch_note_queue(struct batch *b, const char *queue);
/* Fills info, borrowing b's strings; errors (PROTO_BATCH_ERRORS_MAX
 * entries) is the caller's array, newest last. */
void batch_info(const struct batch *b, struct proto_batch_info *info,
                struct proto_batch_error *errors);

#endif
