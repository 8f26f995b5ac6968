/* Read-only views of the core's state that the HTTP API needs beyond the
 * NNG requests: the JOB_QUERY handler and the per-queue extras of STATS.
 * Called by core.c under the core lock; nothing here changes state. */
#ifndef JM_BROKER_CORE_QUERY_H
#define JM_BROKER_CORE_QUERY_H

#include "message.h"
#include "state.h"

struct job;

/* Fills info from job (defined in core.c); with_result adds the result of a
 * completed job. info borrows the job's buffers. */
void fill_job_info(const struct job *job, bool with_result, struct proto_job_info *info);

/* Answers a JOB_QUERY into reply (type JOB_LIST): up to query->limit jobs
 * matching its filters, highest id first, ids below query->cursor. reply's
 * list is malloc'd: free it with core_query_free. 0 or JM_ENOMEM. */
int core_query_jobs(const struct state *s, const struct proto_job_query *query,
                    struct proto_msg *reply);
void core_query_free(struct proto_msg *reply);

/* The fields STATS gained for the HTTP API: cancelled, oldest_pending_us,
 * max_active. O(pending jobs of q). */
void core_query_queue_extras(const struct queue *q, struct proto_queue_stats *stats);

#endif
