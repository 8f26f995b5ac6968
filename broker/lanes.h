/* Ready lanes: the ready jobs of one queue by job type and group, and the
 * one mechanism behind routing by type and fair tenants (issue 14).
 *
 * A lane holds the ready jobs of one (type, group) as one intrusive list
 * (the job's ready_link: nothing beside the job, issue 12's memory per
 * queued job) in run order: a higher priority first, FIFO within a
 * priority. A small sorted array of priority levels points at each level's
 * first and last job, so a job joins the end of its level in O(log levels)
 * and leaves in O(1). Jobs without a group are group 0, one group like any
 * other.
 *
 * Each type has a ring of its lanes that have ready jobs and whose group
 * is under the queue's per-group active limit. Dispatch is deficit round
 * robin with a quantum of one job (every job costs one): the lane at the
 * front of the ring gives its best job and moves to the back, so the
 * groups with ready jobs of a type take turns, O(1) per dispatch. A lane
 * that gets ready jobs joins at the back. Bound: with G groups holding
 * ready jobs of a type, a group's next job is dispatched within G
 * dispatches of that type; a group's k-th job within k·G.
 *
 * A fetch names its types (routing: the types it has handlers for; none:
 * any type). For each of them it looks at the front lane of that type's
 * ring and takes, of those candidates, the one whose group was served
 * longest ago (so types do not let one group starve another either), then
 * by priority, then the lower job id (ids grow: the older job): O(types)
 * per job, never a scan of the ready jobs. With one group (no job has one) that is plain priority
 * order across types, as a single heap gave.
 *
 * Group names are interned per queue: a job holds its group as a small
 * index (job->attrs.group, 0: none) into its queue's group records, which
 * hold the name once. A job without a group costs nothing extra.
 *
 * A lane exists while any job of its (queue, type, group) exists (counted
 * by lanes_take / lanes_give as the job is made and freed), and its array
 * of levels always has room for a level per job (at most one per
 * priority): a job that becomes ready never allocates, so applying a
 * journal record cannot fail for memory. A group
 * record (its active count, its lanes) lives while the group has a lane.
 *
 * Invariants: a lane is in its type's ring exactly while it has ready jobs
 * and its group is under the limit; a type is in lanes->ready exactly while
 * its ring is not empty; a ready job is linked in its lane's list. Not
 * thread-safe (core lock). */
#ifndef JM_BROKER_LANES_H
#define JM_BROKER_LANES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "job.h"
#include "namemap.h"
#include "u64map.h"

struct lane_type;

/* The ready jobs of one priority in a lane: first..last in its list. */
struct lane_level {
	struct job *first;
	struct job *last;
	int16_t priority;
};

/* One (queue, group): its name and what its per-group limit needs. */
struct lane_group {
	struct u64map_node node; /* in lanes->groups; key: the group (0: none) */
	proto_name name;         /* "" for group 0 */
	struct namemap_entry by_name;
	uint32_t active; /* its active jobs in the queue */
	uint32_t lanes_count;
	uint64_t served; /* lanes->served_clock when a job of it was last picked */
	TAILQ_HEAD(, lane) lanes;
};

/* The ready jobs of one (queue, type, group). */
struct lane {
	struct u64map_node node; /* in its type's lanes; key: the group */
	struct lane_type *lt;
	struct lane_group *lg;
	struct job_list ready;     /* its ready jobs, in run order */
	struct lane_level *levels; /* levels in use, highest priority first */
	uint32_t levels_count;
	uint32_t levels_cap; /* >= jobs, up to the number of priorities */
	uint32_t ready_count;
	uint64_t jobs; /* jobs of its queue, type and group that exist */
	bool in_ring;
	TAILQ_ENTRY(lane) ring_link;
	TAILQ_ENTRY(lane) group_link;
};

/* One (queue, type): its lanes and their ring. */
struct lane_type {
	const char *type; /* interned (job_types.h); its jobs hold it */
	struct u64map lanes;
	uint32_t lanes_count;
	uint64_t ready_count; /* ready jobs in its lanes, in the ring or not */
	TAILQ_HEAD(, lane) ring;
	bool in_ready;
	TAILQ_ENTRY(lane_type) ready_link;
	struct namemap_entry by_type;
};

struct lanes {
	struct namemap by_type;        /* buckets NULL until the first lane */
	struct u64map groups;          /* lane_group by index; lazily made */
	struct namemap groups_by_name; /* the same by name; lazily made */
	uint32_t next_group;           /* the index a new group tries first */
	TAILQ_HEAD(, lane_type) ready; /* types with a lane in their ring */
	uint64_t ready_count;          /* ready jobs in all lanes */
	uint64_t served_clock;
	uint32_t group_limit; /* active jobs per group; 0: none */
};

void lanes_init(struct lanes *l);
/* Frees every lane (their jobs must be gone). */
void lanes_fini(struct lanes *l);
/* A job of type (interned) and group (a valid name, "": none) was made:
 * its lane exists and has room for it, and *group_index is the group's
 * index in this queue (0 for none). 0 or JM_ENOMEM (nothing changed). */
int lanes_take(struct lanes *l, const char *type, const char *group, uint32_t *group_index);
/* The name of group index (a job's attrs.group); "" for 0. */
const char *lanes_group_name(const struct lanes *l, uint32_t group_index);
/* The job of (type, group) that lanes_take counted is freed: out of its
 * lane, or in a teardown that frees every job. */
void lanes_give(struct lanes *l, const char *type, uint32_t group);
/* Does any lane exist (a job of the queue, in any state)? */
bool lanes_any(const struct lanes *l);
/* Sets the per-group active limit (0: none); lanes of groups at it leave
 * their rings, the others join. */
void lanes_set_group_limit(struct lanes *l, uint32_t limit);

/* job (made, not ready) becomes ready: last of its priority in its lane. */
void lanes_push(struct lanes *l, struct job *job);
/* The same, first of its priority: puts back a job just taken out. */
void lanes_push_front(struct lanes *l, struct job *job);
/* Takes job (ready) out of its lane. */
void lanes_remove(struct lanes *l, struct job *job);
/* A job of the queue became active / stopped being active: its group's
 * count, and its lanes in or out of the rings at the limit. */
void lanes_started(struct lanes *l, const struct job *job);
void lanes_ended(struct lanes *l, const struct job *job);

/* The job dispatch gives next to a fetch of types (types_count names;
 * none: any type), or NULL: the DRR step above. Its lane moves to the back
 * of its ring and its group counts as served; the job stays ready (the
 * caller removes it). */
struct job *lanes_next(struct lanes *l, const proto_name *types, uint32_t types_count);
/* Would lanes_next give a job of type ("": any type)? Changes nothing. */
bool lanes_can_give(const struct lanes *l, const char *type);
/* The ready job that runs first by (priority, id) across the heads of
 * every lane, ignoring turns and limits, or NULL: for tests and views. */
struct job *lanes_peek(const struct lanes *l);
/* The lane type of type, or NULL. */
struct lane_type *lanes_find_type(const struct lanes *l, const char *type);
/* Calls fn for each type with jobs of the queue. */
void lanes_each_type(const struct lanes *l, void (*fn)(const struct lane_type *lt, void *arg),
                     void *arg);
/* The earliest updated_us of a ready job (when it became ready), 0 when
 * none is: the first job of each level of each lane, for stats. */
uint64_t lanes_oldest_updated_us(const struct lanes *l);
/* True when a runs before b from another lane: priority desc, then id. */
bool lanes_runs_before(const struct job *a, const struct job *b);

#endif
