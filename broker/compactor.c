/* The compactor: a thread that writes a snapshot of the live state so the
 * journal stays proportional to it (journal.h gives the crash-safe steps).
 * Service goes on meanwhile: the rotation and each chunk of
 * COMPACT_CHUNK_JOBS jobs hold the core lock briefly.
 *
 * The policy (compactor_is_due): the journal on disk, the last snapshot
 * plus the segments written since, is compacted once it reaches both
 * --compact-min-bytes and twice the live state (state->live_bytes, an upper
 * bound of what the live jobs take in a snapshot). So the journal stays
 * under about twice the live state plus the minimum, whatever the traffic
 * did before. It is checked after every entry point that committed a record
 * (compactor_consider from core_unlock_and_flush), by the retention sweep,
 * and once more when a compaction ends: a snapshot taken in the middle of
 * a burst is replaced as soon as the burst's jobs are dropped, without
 * waiting for new traffic. */
#include "core_internal.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define COMPACT_CHUNK_JOBS 1000
#define COMPACT_RETRY_MS 1000
/* A snapshot of no jobs still holds its file header and META record (under
 * 100 bytes). Counting 4 KiB of it as live keeps a tiny
 * --compact-min-bytes from compacting an empty state again and again: each
 * fresh snapshot would otherwise be more than twice nothing. */
#define COMPACT_FIXED_BYTES 4096

static void collect_id_cb(struct job *job, void *arg)
{
	struct jm_buf *ids = arg;
	jm_buf_append(ids, &job->id, sizeof job->id);
}

/* Encodes the snapshot record of each id that still exists into chunk,
 * framed as [u32 length][body]. Runs under the core lock. */
static int encode_chunk(struct core *core, const uint64_t *ids, size_t count, struct jm_buf *chunk)
{
	struct jm_buf body;
	jm_buf_init(&body);
	int rc = 0;
	for (size_t i = 0; i < count && rc == 0; i++) {
		struct job *job = jobtable_find(&core->state.jobs, ids[i]);
		if (job == NULL)
			continue;
		struct proto_record rec;
		state_job_snapshot(job, &rec);
		jm_buf_reset(&body);
		rc = proto_record_encode(&rec, &body);
		uint32_t len = (uint32_t)body.len;
		if (rc == 0)
			rc = jm_buf_append(chunk, &len, sizeof len);
		if (rc == 0)
			rc = jm_buf_append(chunk, body.data, body.len);
	}
	jm_buf_fini(&body);
	return rc;
}

/* Encodes every schedule's SCHEDULE record into chunk, framed as in
 * encode_chunk. Runs under the core lock, at the rotation, so the
 * SCHEDULE_FIRE records after it (in the new segment) replay on top. */
static int encode_schedules(struct core *core, struct jm_buf *chunk)
{
	struct jm_buf body;
	jm_buf_init(&body);
	int rc = 0;
	struct schedule *s;
	TAILQ_FOREACH(s, &core->state.schedules.list, link)
	{
		struct proto_record rec;
		schedules_snapshot(s, &rec);
		jm_buf_reset(&body);
		rc = proto_record_encode(&rec, &body);
		uint32_t len = (uint32_t)body.len;
		if (rc == 0)
			rc = jm_buf_append(chunk, &len, sizeof len);
		if (rc == 0)
			rc = jm_buf_append(chunk, body.data, body.len);
		if (rc != 0)
			break;
	}
	jm_buf_fini(&body);
	return rc;
}

struct queue_records {
	struct jm_buf *chunk;
	struct jm_buf body;
	int rc;
};

static void encode_queue_cb(struct queue *q, void *arg)
{
	struct queue_records *qr = arg;
	if (qr->rc != 0 || !queue_has_own_settings(q))
		return;
	struct proto_record rec = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_QUEUE};
	queue_settings_fill(q, &rec.u.queue.settings);
	rec.u.queue.at_us = jm_wall_us();
	jm_buf_reset(&qr->body);
	qr->rc = proto_record_encode(&rec, &qr->body);
	uint32_t len = (uint32_t)qr->body.len;
	if (qr->rc == 0)
		qr->rc = jm_buf_append(qr->chunk, &len, sizeof len);
	if (qr->rc == 0)
		qr->rc = jm_buf_append(qr->chunk, qr->body.data, qr->body.len);
}

/* Encodes a QUEUE record for every queue with settings of its own into
 * chunk, framed as in encode_chunk; under the core lock, at the rotation,
 * like encode_schedules. */
static int encode_queue_settings(struct core *core, struct jm_buf *chunk)
{
	struct queue_records qr = {.chunk = chunk};
	jm_buf_init(&qr.body);
	queue_each(&core->state.queues, encode_queue_cb, &qr);
	jm_buf_fini(&qr.body);
	return qr.rc;
}

/* Appends the framed records of chunk to snap. */
static int append_framed(struct journal_snapshot *snap, const struct jm_buf *chunk,
                         struct jm_err *err)
{
	int rc = 0;
	for (size_t off = 0; rc == 0 && off < chunk->len;) {
		uint32_t len;
		memcpy(&len, chunk->data + off, sizeof len);
		rc = journal_snapshot_append(snap, chunk->data + off + sizeof len, len, err);
		off += sizeof len + len;
	}
	return rc;
}

/* Writes a snapshot of the live state while service goes on: the rotation
 * and each chunk of COMPACT_CHUNK_JOBS jobs hold the core lock briefly.
 * Called and returns without the lock. */
static int compact(struct core *core, struct jm_err *err)
{
	uint64_t started_us = jm_mono_us();
	uint64_t log_bytes_before = journal_log_bytes(core->journal);
	struct jm_buf ids, chunk, schedules;
	jm_buf_init(&ids);
	jm_buf_init(&chunk);
	jm_buf_init(&schedules);
	struct journal_snapshot *snap = NULL;
	uint64_t pause_max = 0;

	pthread_mutex_lock(&core->lock);
	uint64_t t0 = jm_mono_us();
	int rc = journal_rotate(core->journal, &snap, err);
	struct proto_record meta = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_META};
	meta.u.meta.next_job_id = core->state.next_job_id;
	meta.u.meta.boot_epoch = core->state.boot_epoch;
	if (rc == 0) {
		rc = jm_buf_reserve(&ids, core->state.jobs.count * sizeof(uint64_t));
		if (rc == 0)
			jobtable_each(&core->state.jobs, collect_id_cb, &ids);
	}
	if (rc == 0)
		rc = encode_schedules(core, &schedules);
	if (rc == 0)
		rc = encode_queue_settings(core, &schedules);
	pause_max = jm_mono_us() - t0;
	pthread_mutex_unlock(&core->lock);

	if (rc == 0) {
		jm_buf_reset(&chunk);
		rc = proto_record_encode(&meta, &chunk);
		if (rc == 0)
			rc = journal_snapshot_append(snap, chunk.data, chunk.len, err);
		if (rc == 0)
			rc = append_framed(snap, &schedules, err);
	}
	const uint64_t *all = (const uint64_t *)ids.data;
	size_t total = ids.len / sizeof(uint64_t);
	for (size_t at = 0; rc == 0 && at < total; at += COMPACT_CHUNK_JOBS) {
		size_t count = total - at < COMPACT_CHUNK_JOBS ? total - at : COMPACT_CHUNK_JOBS;
		jm_buf_reset(&chunk);
		pthread_mutex_lock(&core->lock);
		t0 = jm_mono_us();
		rc = encode_chunk(core, all + at, count, &chunk);
		uint64_t pause = jm_mono_us() - t0;
		pthread_mutex_unlock(&core->lock);
		if (pause > pause_max)
			pause_max = pause;
		for (size_t off = 0; rc == 0 && off < chunk.len;) {
			uint32_t len;
			memcpy(&len, chunk.data + off, sizeof len);
			rc = journal_snapshot_append(snap, chunk.data + off + sizeof len, len, err);
			off += sizeof len + len;
		}
	}
	if (rc == 0)
		rc = journal_snapshot_commit(snap, err);
	else if (snap)
		journal_snapshot_abort(snap);
	jm_buf_fini(&ids);
	jm_buf_fini(&chunk);
	jm_buf_fini(&schedules);
	if (rc != 0) {
		if (err->code == 0)
			jm_err_set(err, rc, "%s", jm_strerror(rc));
		jm_err_prefix(err, "compaction");
		jm_warn("%s", jm_err_text(err));
		return rc;
	}
	jm_info("compaction: %zu jobs; journal since last snapshot %llu bytes, snapshot %llu "
	        "bytes; took %llu ms, longest pause %llu us",
	        total, (unsigned long long)log_bytes_before,
	        (unsigned long long)journal_snapshot_bytes(core->journal),
	        (unsigned long long)(jm_mono_us() - started_us) / 1000,
	        (unsigned long long)pause_max);
	return 0;
}

bool compactor_is_due(uint64_t journal_bytes, uint64_t live_bytes, uint64_t min_bytes)
{
	return min_bytes != 0 && journal_bytes >= min_bytes && journal_bytes / 2 >= live_bytes;
}

void compactor_consider(struct core *core)
{
	if (core->compacting || core->compaction_wanted || !core->compactor_running ||
	    jm_mono_us() < core->compaction_retry_mono_us)
		return;
	uint64_t journal_bytes =
	    journal_snapshot_bytes(core->journal) + journal_log_bytes(core->journal);
	if (compactor_is_due(journal_bytes, core->state.live_bytes + COMPACT_FIXED_BYTES,
	                     core->config.compact_min_bytes)) {
		core->compaction_wanted = true;
		pthread_cond_signal(&core->compactor_wake);
	}
}

void *compactor_main(void *arg)
{
	struct core *core = arg;
	pthread_mutex_lock(&core->lock);
	for (;;) {
		while (!core->compaction_wanted && !core->stopping)
			pthread_cond_wait(&core->compactor_wake, &core->lock);
		if (core->stopping)
			break;
		core->compaction_wanted = false;
		core->compacting = true;
		pthread_mutex_unlock(&core->lock);
		struct jm_err err = {0};
		int rc = compact(core, &err);
		pthread_mutex_lock(&core->lock);
		core->compacting = false;
		pthread_cond_broadcast(&core->compactor_wake);
		/* Jobs dropped while the snapshot was written may leave the new
		 * journal due already. A failed compaction is not retried for a
		 * while: every write would otherwise start one more. */
		if (rc != 0)
			core->compaction_retry_mono_us = jm_mono_us() + COMPACT_RETRY_MS * 1000;
		else if (!core->stopping)
			compactor_consider(core);
	}
	pthread_mutex_unlock(&core->lock);
	return NULL;
}
