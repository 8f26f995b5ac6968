/* The field descriptors of every wire message body (see fields.h and
 * message.h), grouped by family: msg_jobs.c (submitting and looking up
 * jobs), msg_workers.c (what workers send and get), msg_views.c (the
 * broker's read views and events). message.c binds them to their types.
 * proto/'s internal header. */
#ifndef JM_PROTO_MSG_FIELDS_H
#define JM_PROTO_MSG_FIELDS_H

#include "fields.h"

/* Elements shared by several families. */
extern const struct field msg_queue_name_elem; /* a queue name in a list */
extern const struct field msg_job_id_elem;     /* a job id in a list */
extern const struct fields msg_job_info_fields;

/* done of total: total at least total_min, done at most total. */
int msg_progress_check(uint64_t done, uint64_t total, const char *done_field,
                       const char *total_field, uint64_t total_min, struct jm_err *err);

/* msg_jobs.c */
extern const struct fields msg_error_fields;
extern const struct fields msg_empty_fields;
extern const struct fields msg_submit_fields;
extern const struct fields msg_submitted_fields;
extern const struct fields msg_job_ref_fields;
extern const struct fields msg_batch_ref_fields;
extern const struct fields msg_wait_fields;
extern const struct fields msg_submit_wait_fields;
extern const struct fields msg_dead_list_fields;
extern const struct fields msg_job_query_fields;
extern const struct fields msg_job_list_fields;
extern const struct fields msg_revive_fields;
extern const struct fields msg_revived_fields;

/* msg_schedules.c */
extern const struct fields msg_schedule_put_fields;
extern const struct fields msg_schedule_ref_fields;
extern const struct fields msg_schedules_fields;

/* msg_queues.c */
extern const struct fields msg_queue_settings_fields;
int msg_queue_settings_check(const void *base, struct jm_err *err);

/* msg_workers.c */
extern const struct fields msg_fetch_fields;
extern const struct fields msg_jobs_fields;
extern const struct fields msg_settle_fields;
extern const struct fields msg_settled_fields;
extern const struct fields msg_heartbeat_fields;
extern const struct fields msg_heartbeat_reply_fields;
extern const struct fields msg_progress_fields;

/* msg_views.c */
extern const struct fields msg_stats_reply_fields;
extern const struct fields msg_workers_reply_fields;
extern const struct fields msg_batch_fields;
extern const struct fields msg_batches_reply_fields;
extern const struct fields msg_hello_fields;
extern const struct fields msg_hello_reply_fields;
extern const struct fields msg_event_fields;

#endif
