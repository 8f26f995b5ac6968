/* Read-only views of the core's state that the HTTP API needs beyond the
 * other requests: the JOB_QUERY handler (handle_job_query, declared in
 * core_internal.h) and the per-queue extras of STATS. Called under the
 * core lock; nothing here changes state. */
#ifndef JM_BROKER_CORE_QUERY_H
#define JM_BROKER_CORE_QUERY_H

#include "message.h"
#include "state.h"

/* The fields STATS gained for the HTTP API: cancelled, oldest_pending_us,
 * max_active. O(pending jobs of q). */
void core_query_queue_extras(const struct queue *q, struct proto_queue_stats *stats);

#endif
