/* Journal record bodies.
 *
 * The journal (broker/journal.c) frames each body with a length and a
 * checksum; this file defines what is inside: a msgpack array
 * [record_version, record_type, fields...]. Each record is one state change
 * of the broker, and the broker applies the very same decoded record live
 * and at replay, so the two can never disagree.
 *
 * A format change bumps PROTO_RECORD_VERSION and keeps the reader of the
 * old version. Decoding has the same guarantees as proto_decode(). */
#ifndef JM_PROTO_RECORD_H
#define JM_PROTO_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "message.h"

/* Version 2 appended the lease token and the holder's instance to JOB and
 * LEASE; a version 1 record reads with both 0, a lease nobody can settle
 * (its holder is told to abandon it, or it expires and is requeued). */
#define PROTO_RECORD_VERSION 2

enum proto_record_type {
	/* Whole job, as admitted or as a compaction snapshot: upsert. */
	PROTO_REC_JOB = 1,
	/* The job was delivered under a new lease. */
	PROTO_REC_LEASE = 2,
	/* An attempt ended (see enum proto_outcome). */
	PROTO_REC_SETTLE = 3,
	/* The job was cancelled before it finished. */
	PROTO_REC_CANCEL = 4,
	/* The job left retention: forget it. */
	PROTO_REC_DROP = 5,
	/* A dead-lettered job was put back to pending with fresh attempts. */
	PROTO_REC_REVIVE = 6,
	/* Id counter and boot epoch: at each start, and first in snapshots. */
	PROTO_REC_META = 7,
	/* A schedule was put (created or replaced) or deleted. */
	PROTO_REC_SCHEDULE = 8,
	/* A schedule fired: its job and its new last-fired time, in one record
	 * so a crash can neither fire a run twice nor skip it. */
	PROTO_REC_SCHEDULE_FIRE = 9,
	/* A queue's runtime settings changed (QUEUE_SET): all it has of its
	 * own, so the latest record is the whole truth. */
	PROTO_REC_QUEUE = 10,
	PROTO_REC_TYPE_MAX_ = 10,
};

enum proto_outcome {
	PROTO_OUTCOME_COMPLETED = 1, /* data is the result */
	PROTO_OUTCOME_RETRY = 2,     /* data is the error; ready again at run_at_us */
	PROTO_OUTCOME_DEAD = 3,      /* data is the error; dead-lettered */
	PROTO_OUTCOME_RELEASED = 4,  /* handed back: requeued, attempt not counted */
};

/* JOB: [job_id, batch_id, queue, type, payload, priority, max_attempts,
 *       timeout_ms, state, attempt, lease, created_us, updated_us,
 *       run_at_us, worker_id, last_error, result, lease_token,
 *       worker_instance, key] */
struct proto_rec_job {
	uint64_t job_id;
	struct proto_job_attrs attrs; /* every attribute on the wire */
	struct proto_bytes payload;
	uint32_t state; /* enum proto_job_state */
	uint32_t attempt;
	uint64_t lease;
	uint64_t updated_us;
	uint64_t run_at_us;
	proto_name worker_id; /* the lease holder while active, else "" */
	struct proto_bytes last_error;
	struct proto_bytes result;
	uint64_t lease_token;     /* while active: see LEASE's token; else 0 */
	uint64_t worker_instance; /* while active: the holder's instance; else 0 */
	/* Appended (optional; absent in older records): the job's idempotency
	 * key, "" when it has none or its key has been taken over. */
	struct proto_bytes key;
};

/* LEASE: [job_id, lease, attempt, worker_id, at_us, token, instance]
 * lease is the job's delivery number: it grows with every delivery and
 * orders records at replay; it is never shown to a worker. token is the
 * lease token the worker was handed (64 random bits, never 0), kept here so
 * that leases survive a broker restart; instance is the holder process's
 * (see HEARTBEAT in message.h). */
struct proto_rec_lease {
	uint64_t job_id;
	uint64_t lease;
	uint32_t attempt;
	proto_name worker_id;
	uint64_t at_us;
	uint64_t token;
	uint64_t instance;
};

/* SETTLE: [job_id, lease, outcome, at_us, run_at_us, data] */
struct proto_rec_settle {
	uint64_t job_id;
	uint64_t lease;
	uint32_t outcome; /* enum proto_outcome */
	uint64_t at_us;
	uint64_t run_at_us; /* RETRY and RELEASED: when the job is ready again */
	struct proto_bytes data;
};

/* CANCEL, DROP: [job_id, at_us] */
struct proto_rec_job_event {
	uint64_t job_id;
	uint64_t at_us;
};

/* REVIVE: [job_id, at_us, max_attempts, lease]
 * lease is the job's lease number when it was revived: replay applies the
 * record only to a job still at that lease, so a snapshot taken after the
 * revived job ran and failed again is not revived a second time. */
struct proto_rec_revive {
	uint64_t job_id;
	uint64_t at_us;
	uint32_t max_attempts;
	uint64_t lease;
};

/* META: [next_job_id, boot_epoch]
 * Written at every start (boot_epoch one higher than any replayed) and at
 * the head of every snapshot. Lease numbers granted during a boot are at
 * least boot_epoch << 32, so a lease a crash made the journal forget is
 * never granted again to someone else. */
struct proto_rec_meta {
	uint64_t next_job_id;
	uint64_t boot_epoch;
};

#define PROTO_CRON_TEXT_MAX 255 /* common/cron.h: CRON_TEXT_MAX - 1 */
#define PROTO_ZONE_TEXT_MAX 63  /* common/cron.h: CRON_ZONE_MAX - 1 */

/* SCHEDULE: [name, expr, zone, queue, type, payload, priority,
 *            max_attempts, timeout_ms, deleted, last_fired_us, at_us]
 * expr is a cron expression or "@every DURATION" (common/cron.h), zone an
 * IANA zone name ("" = UTC). A put keeps last_fired_us of the schedule it
 * replaces (0: never fired). A deleted record carries only the name. */
struct proto_rec_schedule {
	proto_name name;
	struct proto_bytes expr;
	struct proto_bytes zone;
	proto_name queue;
	proto_name type;
	struct proto_bytes payload;
	int32_t priority;
	uint32_t max_attempts; /* 0: the queue's default */
	uint64_t timeout_ms;   /* 0: the queue's default */
	bool deleted;
	uint64_t last_fired_us; /* the scheduled-for time of its last run */
	uint64_t at_us;
};

/* SCHEDULE_FIRE: [name, scheduled_for_us, job]
 * job is a JOB record body (the job the run submitted). */
struct proto_rec_schedule_fire {
	proto_name name;
	uint64_t scheduled_for_us;
	struct proto_rec_job job;
};

/* QUEUE: [settings, at_us]
 * settings: a QUEUE_SETTINGS body whose set_mask names every setting the
 * queue has of its own (the others follow the broker's defaults); mask 0
 * with paused false puts the queue back on the defaults. */
struct proto_rec_queue {
	struct proto_queue_settings settings;
	uint64_t at_us;
};

struct proto_record {
	uint32_t version;
	enum proto_record_type type;
	union {
		struct proto_rec_job job;
		struct proto_rec_lease lease;
		struct proto_rec_settle settle;
		struct proto_rec_job_event cancel;
		struct proto_rec_job_event drop;
		struct proto_rec_revive revive;
		struct proto_rec_meta meta;
		struct proto_rec_schedule schedule;
		struct proto_rec_schedule_fire schedule_fire;
		struct proto_rec_queue queue;
	} u;
	void *zone_;
};

/* Same contract as proto_decode / proto_msg_fini / proto_encode. */
int proto_record_decode(const void *buf, size_t len, struct proto_record *out, struct jm_err *err);
void proto_record_fini(struct proto_record *rec);
int proto_record_encode(const struct proto_record *rec, struct jm_buf *out);

/* Encodes a JOB record (version PROTO_RECORD_VERSION) as
 * proto_record_encode does, byte for byte, refusing (JM_EINVAL) exactly
 * what it refuses, in one pass (record_job.c); proto_record_encode calls it
 * for every JOB record. JM_ENOMEM leaves out as it was. */
int proto_record_encode_job(const struct proto_rec_job *job, struct jm_buf *out);

/* proto_record_encode by the generic field walker for every type: what
 * proto_record_encode_job is compared with (tests, fuzz_decode, and
 * builds without NDEBUG on every call). */
int proto_record_encode_generic(const struct proto_record *rec, struct jm_buf *out);

/* "job", "lease", ... for --check-journal output. */
const char *proto_record_type_name(int type);

#endif
