/* The journal's writer: appends, the group-commit thread, the durable
 * position and the callbacks waiting for it.
 *
 * WRITING
 *
 * journal_append frames the record (checksum computed before taking the
 * lock) and copies it into `pending` under the mutex; it never does I/O.
 * The writer thread swaps `pending` for its empty `inflight` buffer, writes
 * it and syncs by policy, then publishes durable_lsn and runs the callbacks
 * due, outside the mutex, in lsn order. Invariants:
 *  - lsns are consecutive, per open journal (not stored on disk): the
 *    record at byte `commit_pos` of inflight is durable_lsn + 1.
 *  - Bytes of the current segment beyond `seg_commit_off` are not
 *    committed; after a failed write or sync the file is cut back to it and
 *    the bytes are written again from memory on retry, so no partial
 *    record stays and nothing appended is dropped while the journal is
 *    open. (After a failed fdatasync the page cache cannot be trusted, so a
 *    sync failure is handled as a write failure.)
 *  - journal_rotate puts a mark into the pending stream; the writer closes
 *    the old segment exactly there (syncing it) and opens the next one.
 *
 * WHO WRITES
 *
 * One thread at a time owns inflight, the segment and the fields the
 * comments call writer-owned: the one that set `writing` under mu. That is
 * the writer thread, or, under the ALWAYS and BATCH policies, a request's
 * own thread (journal_lead_begin/_end): when it finds the writer idle it
 * writes and syncs its records itself and runs the callbacks they release,
 * its own reply among them. A lone durable request then costs no wake-up of
 * the writer thread and no hand-back: one thread receives, appends, syncs
 * and replies. The price is that an NNG callback thread waits on the disk
 * for one sync (DESIGN.md wants the state machine never to wait on it; the
 * core lock is not held, so the state machine does not). A leader makes
 * one write and sync, then leaves what others appended meanwhile, a failed
 * write to retry, a rotation mark, or a close to the writer thread; except
 * that when only a few records came in during its sync, it syncs them at
 * once itself and hands the first sync's callbacks to the writer thread
 * (fire_handoff_lsn), so the second sync does not wait for a wake-up.
 */
#include "journal_internal.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

/* The journal whose appends the calling thread will write itself, if it
 * can, at journal_lead_end (so they do not wake the writer thread), and
 * whether it appended since: a request that changed nothing (a read, a
 * parked fetch) then leaves without touching the journal's lock. */
static _Thread_local struct journal *lead_intent;
static _Thread_local bool lead_appended;
/* journal_lead_defer was called since journal_lead_begin. */
static _Thread_local bool lead_defers;

/* Under mu. 0 or JM_ENOMEM. Keeps the array sorted by lsn, stable, with
 * the `first` entries of an lsn before the others of that lsn. */
static int waiters_insert(struct journal *j, uint64_t lsn, journal_durable_cb cb, void *arg,
                          bool first)
{
	if (j->waiters_head > 0 && j->waiters_len == j->waiters_cap) {
		memmove(j->waiters, j->waiters + j->waiters_head,
		        (j->waiters_len - j->waiters_head) * sizeof *j->waiters);
		j->waiters_len -= j->waiters_head;
		j->waiters_head = 0;
	}
	if (j->waiters_len == j->waiters_cap) {
		size_t cap = j->waiters_cap ? j->waiters_cap * 2 : 64;
		struct journal_waiter *grown = realloc(j->waiters, cap * sizeof *grown);
		if (grown == NULL)
			return JM_ENOMEM;
		j->waiters = grown;
		j->waiters_cap = cap;
	}
	size_t pos = j->waiters_len;
	while (pos > j->waiters_head &&
	       (j->waiters[pos - 1].lsn > lsn ||
	        (first && j->waiters[pos - 1].lsn == lsn && !j->waiters[pos - 1].first)))
		pos--;
	memmove(j->waiters + pos + 1, j->waiters + pos,
	        (j->waiters_len - pos) * sizeof *j->waiters);
	j->waiters[pos] = (struct journal_waiter){.lsn = lsn, .cb = cb, .arg = arg, .first = first};
	j->waiters_len++;
	return 0;
}

/* Under mu: moves up to max waiters with lsn <= upto into out. */
static size_t waiters_take(struct journal *j, uint64_t upto, struct journal_waiter *out, size_t max)
{
	size_t taken = 0;
	while (taken < max && j->waiters_head < j->waiters_len &&
	       j->waiters[j->waiters_head].lsn <= upto)
		out[taken++] = j->waiters[j->waiters_head++];
	if (j->waiters_head == j->waiters_len)
		j->waiters_head = j->waiters_len = 0;
	return taken;
}

/* Not under mu: runs the callbacks for lsn <= upto with status. */
static void waiters_fire(struct journal *j, uint64_t upto, int status)
{
	struct journal_waiter batch[JOURNAL_FIRE_BATCH];
	for (;;) {
		pthread_mutex_lock(&j->mu);
		size_t taken = waiters_take(j, upto, batch, JOURNAL_FIRE_BATCH);
		pthread_mutex_unlock(&j->mu);
		if (taken == 0)
			return;
		for (size_t i = 0; i < taken; i++)
			batch[i].cb(batch[i].arg, status);
	}
}

void journal_waiters_fire_all(struct journal *j, int status)
{
	/* What is durable is reported so even now: a leading thread may have
	 * published it and not yet run its callbacks. */
	waiters_fire(j, journal_durable_lsn(j), 0);
	waiters_fire(j, UINT64_MAX, status);
}

/* Writer: publishes durable_lsn and runs the callbacks it releases (a
 * leading thread runs them after giving the segment up: lead_defers_fire). */
static void publish_durable(struct journal *j, uint64_t lsn)
{
	pthread_mutex_lock(&j->mu);
	j->durable_lsn = lsn;
	pthread_mutex_unlock(&j->mu);
	if (!j->lead_defers_fire)
		waiters_fire(j, lsn, 0);
}

/* Under mu: somebody waits for lsn. If it is still in pending, pending is
 * now wanted: a leading thread writes it at its journal_lead_end (which is
 * told so), and the writer thread is woken from a deferral's timed wait
 * (true: signal writer_cv after unlocking). */
static bool demand_pending(struct journal *j, uint64_t lsn)
{
	if (lsn <= j->taken_lsn || j->pending_demanded)
		return false;
	j->pending_demanded = true;
	if (lead_intent == j) {
		lead_appended = true;
		return false;
	}
	return j->defer_until_us != 0;
}

static void when_durable(struct journal *j, uint64_t lsn, journal_durable_cb cb, void *arg,
                         bool first)
{
	pthread_mutex_lock(&j->mu);
	int status;
	if (lsn <= j->durable_lsn) {
		status = 0;
	} else if (j->writer_done || (!j->started && j->closing)) {
		status = JM_ECLOSED;
	} else {
		status = waiters_insert(j, lsn, cb, arg, first);
		if (status == 0) {
			bool wake = demand_pending(j, lsn);
			pthread_mutex_unlock(&j->mu);
			if (wake)
				pthread_cond_signal(&j->writer_cv);
			return;
		}
	}
	pthread_mutex_unlock(&j->mu);
	cb(arg, status);
}

void journal_when_durable(struct journal *j, uint64_t lsn, journal_durable_cb cb, void *arg)
{
	when_durable(j, lsn, cb, arg, false);
}

void journal_when_durable_first(struct journal *j, uint64_t lsn, journal_durable_cb cb, void *arg)
{
	when_durable(j, lsn, cb, arg, true);
}

uint64_t journal_durable_lsn(struct journal *j)
{
	pthread_mutex_lock(&j->mu);
	uint64_t lsn = j->durable_lsn;
	pthread_mutex_unlock(&j->mu);
	return lsn;
}

/* Writer: cuts the current segment back to its committed end (when rewind)
 * and refuses new writes with code and msg until a retry succeeds. Returns
 * -1 (the drain's failure value). */
static int writer_refuse_writes(struct journal *j, bool rewind, int code, const char *msg)
{
	if (rewind) {
		j->seg_tail_dirty = true;
		if (ftruncate(j->seg_fd, (off_t)j->seg_commit_off) == 0 &&
		    lseek(j->seg_fd, (off_t)j->seg_commit_off, SEEK_SET) >= 0)
			j->seg_tail_dirty = false;
		j->seg_off = j->seg_commit_off;
		j->seg_alloc_end = j->seg_commit_off;
	}
	pthread_mutex_lock(&j->mu);
	bool was_writable = j->writable;
	j->writable = false;
	j->write_code = code;
	snprintf(j->write_err, sizeof j->write_err, "%s", msg);
	pthread_cond_broadcast(&j->state_cv);
	pthread_mutex_unlock(&j->mu);
	if (was_writable)
		jm_error("%s", msg);
	return -1;
}

/* Writer: a write or sync failed (errno sys at byte at of segment seq). */
static int writer_fail(struct journal *j, const char *what, uint64_t seq, uint64_t at, int sys)
{
	char name[JOURNAL_NAME_BYTES];
	journal_segment_name(name, seq);
	const char *until = sys == ENOSPC || sys == EDQUOT ? "space returns"
	                    : sys == EFBIG                 ? "the file size limit allows more"
	                                                   : "the disk accepts writes again";
	char msg[JM_ERR_MSG_MAX];
	snprintf(msg, sizeof msg,
	         "journal %s: %s failed at byte %" PRIu64 ": %s; new writes are refused until %s",
	         name, what, at, strerror(sys), until);
	return writer_refuse_writes(j, j->seg_fd >= 0 && seq == j->seg_seq, JM_ENOSPC, msg);
}

/* Writer: the replica hook refused a chunk with code (no standby to
 * acknowledge it, or etcd could not be told): handled as a failed write, so
 * the chunk is written again later and appends are refused meanwhile with
 * code and why. */
static int writer_fail_text(struct journal *j, int code, const char *why)
{
	char msg[JM_ERR_MSG_MAX];
	snprintf(msg, sizeof msg, "journal %s: %s; new writes are refused until that succeeds",
	         j->dir, why);
	return writer_refuse_writes(j, j->seg_fd >= 0, code, msg);
}

void journal_hold(struct journal *j, int code, const char *msg)
{
	pthread_mutex_lock(&j->mu);
	j->hold_code = code;
	snprintf(j->hold_msg, sizeof j->hold_msg, "%s", msg);
	pthread_mutex_unlock(&j->mu);
}

void journal_release(struct journal *j)
{
	pthread_mutex_lock(&j->mu);
	j->hold_code = 0;
	j->hold_msg[0] = '\0';
	pthread_mutex_unlock(&j->mu);
	/* A chunk the replica refused waits in backoff: try it now. */
	pthread_cond_signal(&j->writer_cv);
}

/* Under mu: 0 when appends are accepted, or the hold's or the failed
 * write's code in err. */
static int append_refusal(const struct journal *j, struct jm_err *err)
{
	if (j->hold_code != 0)
		return jm_err_set(err, j->hold_code, "%s", j->hold_msg);
	if (!j->writable)
		return jm_err_set(err, j->write_code, "%s", j->write_err);
	return 0;
}

void journal_set_replica(struct journal *j, journal_replica_fn fn, void *arg)
{
	j->replica = fn;
	j->replica_arg = arg;
}

static size_t records_in(const uint8_t *p, size_t len)
{
	size_t records = 0;
	size_t off = 0;
	while (off < len) {
		off += JOURNAL_FRAME_BYTES + (get_le32(p + off) & ~JOURNAL_META_FLAG);
		records++;
	}
	assert(off == len);
	return records;
}

/* Writer: writes inflight[commit_pos, end) and commits it by policy. */
static int writer_chunk(struct journal *j, size_t end)
{
	if (j->seg_tail_dirty) {
		if (ftruncate(j->seg_fd, (off_t)j->seg_commit_off) != 0 ||
		    lseek(j->seg_fd, (off_t)j->seg_commit_off, SEEK_SET) < 0)
			return writer_fail(j, "truncate", j->seg_seq, j->seg_commit_off, errno);
		j->seg_tail_dirty = false;
		j->seg_alloc_end = j->seg_commit_off;
	}
	const uint8_t *data = j->inflight.data;
	enum journal_fsync policy = j->opts.fsync;
	while (j->commit_pos < end) {
		size_t len = end - j->commit_pos;
		if (policy == JOURNAL_FSYNC_ALWAYS)
			len = JOURNAL_FRAME_BYTES +
			      (get_le32(data + j->commit_pos) & ~JOURNAL_META_FLAG);
		uint64_t at = j->seg_off;
		journal_prealloc_ensure(j, at + len);
		int sys = journal_write_all(&j->io, j->seg_fd, data + j->commit_pos, len);
		if (sys != 0)
			return writer_fail(j, "write", j->seg_seq, at, sys);
		j->seg_off += len;
		/* HA: the chunk goes to the standby now, and its answer is
		 * awaited after the local sync, so the two syncs overlap. */
		char why[JM_ERR_MSG_MAX / 2] = "";
		if (j->replica != NULL)
			j->replica(j->replica_arg, JOURNAL_REPLICA_SEND, j->seg_seq, at,
			           data + j->commit_pos, len, why, sizeof why);
		bool synced = policy == JOURNAL_FSYNC_ALWAYS || policy == JOURNAL_FSYNC_BATCH;
		uint64_t sync_start_us = jm_mono_us();
		if (synced) {
			sys = journal_sync_fd(&j->io, j->seg_fd);
			if (sys != 0 && j->replica != NULL)
				j->replica(j->replica_arg, JOURNAL_REPLICA_WAIT, j->seg_seq, at,
				           data + j->commit_pos, len, why, sizeof why);
			if (sys != 0)
				return writer_fail(j, "sync", j->seg_seq, at, sys);
			j->last_sync_us = jm_mono_us();
		} else {
			j->unsynced = true;
		}
		size_t records = records_in(data + j->commit_pos, len);
		if (synced)
			metrics_journal_synced(j->last_sync_us - sync_start_us, records);
		int refused = j->replica == NULL
		                  ? 0
		                  : j->replica(j->replica_arg, JOURNAL_REPLICA_WAIT, j->seg_seq, at,
		                               data + j->commit_pos, len, why, sizeof why);
		if (refused != 0)
			return writer_fail_text(j, refused, why);
		j->commit_pos += len;
		j->seg_commit_off = j->seg_off;
		uint64_t durable;
		pthread_mutex_lock(&j->mu);
		durable = j->durable_lsn + records;
		pthread_mutex_unlock(&j->mu);
		publish_durable(j, durable);
	}
	return 0;
}

/* Writer: fdatasync for EVERYSEC and OFF (at rotation and close, and once a
 * second under EVERYSEC). Data already counts as durable, so a failure is
 * logged and retried at the next occasion. */
static void writer_background_sync(struct journal *j)
{
	if (!j->unsynced || j->seg_fd < 0)
		return;
	int sys = journal_sync_fd(&j->io, j->seg_fd);
	j->last_sync_us = jm_mono_us();
	if (sys != 0) {
		char name[JOURNAL_NAME_BYTES];
		journal_segment_name(name, j->seg_seq);
		jm_error("journal %s: fdatasync failed: %s (written records may be lost "
		         "if the machine fails now)",
		         name, strerror(sys));
		return;
	}
	j->unsynced = false;
}

/* Writer: switches to segment seq. */
static int writer_rotate(struct journal *j, uint64_t seq)
{
	writer_background_sync(j);
	/* A complete segment ends at its last record: replay reads zeros only
	 * at the end of the last one as preallocated space. */
	int sys = journal_prealloc_trim(j);
	if (sys != 0)
		return writer_fail(j, "cutting preallocated space", j->seg_seq, j->seg_off, sys);
	int fd = -1;
	sys = journal_segment_open(j, seq, true, 0, &fd);
	if (sys != 0)
		return writer_fail(j, "creating the segment", seq, 0, sys);
	close(j->seg_fd);
	j->seg_fd = fd;
	j->seg_seq = seq;
	j->seg_off = j->seg_commit_off = JOURNAL_HEADER_BYTES;
	j->unsynced = false;
	journal_prealloc_reset(j);
	pthread_mutex_lock(&j->mu);
	j->rotated_seq = seq;
	pthread_cond_broadcast(&j->state_cv);
	pthread_mutex_unlock(&j->mu);
	return 0;
}

/* Writer: writes what remains of inflight. 0 when all is committed, -1
 * after a failure (state kept for the retry). */
static int writer_drain(struct journal *j)
{
	struct journal_marks *marks = &j->inflight_marks;
	for (;;) {
		bool at_mark = j->inflight_mark_next < marks->len;
		size_t end = at_mark ? marks->items[j->inflight_mark_next].offset : j->inflight.len;
		if (j->commit_pos < end && writer_chunk(j, end) != 0)
			return -1;
		if (!at_mark)
			break;
		if (writer_rotate(j, marks->items[j->inflight_mark_next].seq) != 0)
			return -1;
		j->inflight_mark_next++;
	}
	if (j->opts.fsync == JOURNAL_FSYNC_EVERYSEC &&
	    jm_mono_us() - j->last_sync_us >= JOURNAL_EVERYSEC_US)
		writer_background_sync(j);
	return 0;
}

/* Under mu: is everything taken into inflight written (the writer idle)? */
static bool inflight_is_committed(const struct journal *j)
{
	return j->commit_pos == j->inflight.len && j->inflight_mark_next == j->inflight_marks.len;
}

/* Under mu, with inflight committed: moves pending (and its rotation
 * marks) into inflight for the writing thread. */
static void take_pending(struct journal *j)
{
	struct jm_buf buf = j->inflight;
	j->inflight = j->pending;
	j->pending = buf;
	jm_buf_reset(&j->pending);
	if (j->pending.cap > JOURNAL_KEEP_BUF_BYTES)
		jm_buf_fini(&j->pending); /* after a burst */
	struct journal_marks marks = j->inflight_marks;
	j->inflight_marks = j->pending_marks;
	j->pending_marks = marks;
	j->pending_marks.len = 0;
	j->commit_pos = 0;
	j->inflight_mark_next = 0;
	j->pending_demanded = false;
	j->defer_until_us = 0;
	j->taken_lsn = j->last_lsn;
}

/* Under mu: is what pending holds to be written now? Yes unless every
 * record in it was deferred (journal_lead_defer) and nobody has asked for
 * one yet, nor is anything else due (a rotation, the close), and the
 * deferral has time left. */
static bool pending_is_due(const struct journal *j, uint64_t now_us)
{
	return j->pending_demanded || j->defer_until_us == 0 || now_us >= j->defer_until_us ||
	       j->pending_marks.len > 0 || j->closing;
}

static void *writer_main(void *arg)
{
	struct journal *j = arg;
	uint64_t backoff_ms = 0;
	uint64_t give_up_us = 0;
	bool gave_up = false;
	pthread_mutex_lock(&j->mu);
	for (;;) {
		if (j->fire_handoff_lsn > 0) {
			/* Replies a leading thread left to this one while it
			 * syncs its second round (journal_lead_end). */
			uint64_t upto = j->fire_handoff_lsn;
			j->fire_handoff_lsn = 0;
			pthread_mutex_unlock(&j->mu);
			waiters_fire(j, upto, 0);
			pthread_mutex_lock(&j->mu);
			continue;
		}
		if (j->writing) {
			/* A request's thread is writing (journal_lead_end); it
			 * signals when it leaves anything to this thread. */
			pthread_cond_wait(&j->writer_cv, &j->mu);
			continue;
		}
		if (inflight_is_committed(j)) {
			uint64_t now = jm_mono_us();
			if ((j->pending.len > 0 || j->pending_marks.len > 0) &&
			    !pending_is_due(j, now)) {
				/* Deferred records: wait for a demand or the
				 * deadline. writer_cv measures CLOCK_MONOTONIC
				 * (journal_open). */
				struct timespec ts =
				    jm_timespec_after_us(CLOCK_MONOTONIC, j->defer_until_us - now);
				pthread_cond_timedwait(&j->writer_cv, &j->mu, &ts);
				continue;
			}
			if (j->pending.len > 0 || j->pending_marks.len > 0) {
				take_pending(j);
			} else if (j->closing) {
				break;
			} else if (j->opts.fsync == JOURNAL_FSYNC_EVERYSEC && j->unsynced) {
				uint64_t due = j->last_sync_us + JOURNAL_EVERYSEC_US;
				if (now >= due) {
					pthread_mutex_unlock(&j->mu);
					writer_background_sync(j);
					pthread_mutex_lock(&j->mu);
				} else {
					/* writer_cv measures CLOCK_MONOTONIC
					 * (journal_open). */
					struct timespec ts =
					    jm_timespec_after_us(CLOCK_MONOTONIC, due - now);
					pthread_cond_timedwait(&j->writer_cv, &j->mu, &ts);
				}
				continue;
			} else {
				pthread_cond_wait(&j->writer_cv, &j->mu);
				continue;
			}
		}
		j->writing = true;
		pthread_mutex_unlock(&j->mu);
		int rc = writer_drain(j);
		pthread_mutex_lock(&j->mu);
		j->writing = false;
		if (rc == 0) {
			if (!j->writable) {
				j->writable = true;
				j->write_err[0] = '\0';
				jm_info("journal %s: writes succeed again", j->dir);
			}
			backoff_ms = 0;
			give_up_us = 0;
			continue;
		}
		if (j->closing) {
			uint64_t now = jm_mono_us();
			if (give_up_us == 0)
				give_up_us = now + JOURNAL_CLOSE_GIVE_UP_MS * 1000u;
			if (now >= give_up_us) {
				gave_up = true;
				break;
			}
		}
		backoff_ms = backoff_ms ? backoff_ms * 2 : JOURNAL_BACKOFF_MIN_MS;
		if (backoff_ms > JOURNAL_BACKOFF_MAX_MS)
			backoff_ms = JOURNAL_BACKOFF_MAX_MS;
		struct timespec ts = jm_timespec_after_ms(CLOCK_MONOTONIC, backoff_ms);
		/* Closing wakes this early once; the deadline above bounds it. */
		pthread_cond_timedwait(&j->writer_cv, &j->mu, &ts);
	}
	uint64_t lost_records = j->last_lsn - j->durable_lsn;
	pthread_mutex_unlock(&j->mu);
	if (gave_up)
		jm_error("journal %s: closing without writing the last %" PRIu64 " records: %s",
		         j->dir, lost_records, j->write_err);
	writer_background_sync(j);
	pthread_mutex_lock(&j->mu);
	j->writer_done = true;
	pthread_cond_broadcast(&j->state_cv);
	pthread_mutex_unlock(&j->mu);
	journal_waiters_fire_all(j, JM_ECLOSED);
	return NULL;
}

static bool lead_is_allowed(const struct journal *j)
{
	return j->opts.fsync == JOURNAL_FSYNC_BATCH || j->opts.fsync == JOURNAL_FSYNC_ALWAYS;
}

void journal_lead_begin(struct journal *j)
{
	if (lead_is_allowed(j))
		lead_intent = j;
	lead_defers = false;
}

void journal_lead_defer(struct journal *j)
{
	if (lead_intent == j)
		lead_defers = true;
}

/* Under mu: may a request's thread write pending now? Only from the idle
 * state with plain records: a rotation, a retry after a failure and the
 * close stay with the writer thread. */
static bool lead_is_possible(const struct journal *j)
{
	return !j->writing && j->started && !j->closing && !j->writer_done && j->writable &&
	       inflight_is_committed(j) && j->pending.len > 0 && j->pending_marks.len == 0 &&
	       j->pending_demanded;
}

/* Under mu, by a leading thread whose first round was written: may it sync
 * what was appended meanwhile at once, itself? Only a few records (a
 * worker's SETTLE that came in during the sync, as in W3): waking the
 * writer thread to start that sync took 60-80 µs on the critical path,
 * while the replies the first sync released, handed to the writer thread
 * instead, go out during the second sync. A larger backlog (many producers)
 * stays with the writer thread, so that an NNG callback thread does not
 * sync round after round. */
static bool lead_again_is_possible(const struct journal *j)
{
	return j->started && !j->closing && !j->writer_done && j->writable &&
	       inflight_is_committed(j) && j->pending.len > 0 &&
	       j->pending.len <= JOURNAL_LEAD_AGAIN_BYTES && j->pending_marks.len == 0 &&
	       pending_is_due(j, jm_mono_us());
}

void journal_lead_end(struct journal *j)
{
	/* A durable callback may have run a nested begin/end pair on this
	 * thread: the inner end saw (and so handled) the outer's appends. */
	lead_intent = NULL;
	bool defers = lead_defers;
	lead_defers = false;
	if (!lead_appended)
		return;
	lead_appended = false;
	pthread_mutex_lock(&j->mu);
	if (defers && !j->pending_demanded && j->pending.len > 0) {
		/* Nobody waits for these records yet: the request's answer
		 * waits for a later one. They stay in pending for the record
		 * that is waited on, or until the deadline. */
		bool wake = j->defer_until_us == 0;
		if (wake)
			j->defer_until_us = jm_mono_us() + JOURNAL_DEFER_US;
		pthread_mutex_unlock(&j->mu);
		if (wake)
			pthread_cond_signal(&j->writer_cv);
		return;
	}
	j->pending_demanded = j->pending_demanded || j->pending.len > 0;
	uint64_t fire_upto = 0;
	if (lead_is_possible(j)) {
		take_pending(j);
		j->writing = true;
		j->lead_defers_fire = true;
		pthread_mutex_unlock(&j->mu);
		writer_drain(j); /* on failure the writer thread retries with backoff */
		pthread_mutex_lock(&j->mu);
		if (lead_again_is_possible(j)) {
			/* The writer thread runs the first round's callbacks;
			 * this thread's own reply is among them. */
			j->fire_handoff_lsn = j->durable_lsn;
			take_pending(j);
			pthread_mutex_unlock(&j->mu);
			pthread_cond_signal(&j->writer_cv);
			writer_drain(j);
			pthread_mutex_lock(&j->mu);
		}
		j->lead_defers_fire = false;
		j->writing = false;
		fire_upto = j->durable_lsn;
	}
	/* While another thread writes, it takes what this one appended when
	 * its write ends. What was appended during this thread's write goes
	 * to the writer thread: one sync in a row keeps NNG's few callback
	 * threads free under concurrent load (a second round measured more
	 * context switches per request with 32 producers). */
	bool left_work = !j->writing && (!inflight_is_committed(j) || j->pending.len > 0 ||
	                                 j->pending_marks.len > 0 || j->closing);
	pthread_mutex_unlock(&j->mu);
	if (left_work)
		pthread_cond_signal(&j->writer_cv);
	/* The replies go out after the segment is given up: a client that
	 * sends its next request as soon as it has the reply then finds the
	 * journal idle and that request's thread leads, instead of leaving
	 * its records to the writer thread. */
	if (fire_upto > 0)
		waiters_fire(j, fire_upto, 0);
}

int journal_start(struct journal *j, struct jm_err *err)
{
	if (j->opts.read_only)
		return jm_err_set(err, JM_EINVAL, "journal %s: opened read-only: cannot append",
		                  j->dir);
	if (j->started)
		return jm_err_set(err, JM_EINVAL, "journal %s: already started", j->dir);
	if (!j->replayed) {
		int rc = journal_replay(j, NULL, NULL, NULL, err);
		if (rc != 0)
			return rc;
	}
	/* From the first byte written on, the marker no longer describes the
	 * journal (journal_clean.c). */
	int rc = journal_clean_remove(j, err);
	if (rc != 0)
		return rc;
	char name[JOURNAL_NAME_BYTES];
	journal_segment_name(name, j->seg_seq);
	int sys = journal_segment_open(j, j->seg_seq, !j->seg_exists, j->seg_off, &j->seg_fd);
	if (sys != 0)
		return jm_err_set(err, sys == ENOSPC ? JM_ENOSPC : JM_EIO,
		                  "journal %s/%s: cannot open for appending: %s", j->dir, name,
		                  strerror(sys));
	j->seg_exists = true;
	journal_prealloc_reset(j);
	j->last_sync_us = jm_mono_us();
	if (j->replica != NULL) {
		char why[8];
		j->replica(j->replica_arg, JOURNAL_REPLICA_START, j->seg_seq, j->seg_off, NULL, 0,
		           why, sizeof why);
	}
	pthread_mutex_lock(&j->mu);
	j->newest_seq = j->rotated_seq = j->seg_seq;
	j->started = true;
	pthread_mutex_unlock(&j->mu);
	rc = pthread_create(&j->thread, NULL, writer_main, j);
	if (rc != 0) {
		pthread_mutex_lock(&j->mu);
		j->started = false;
		pthread_mutex_unlock(&j->mu);
		return jm_err_set(err, JM_ENOMEM, "journal %s: cannot start the writer thread: %s",
		                  j->dir, strerror(rc));
	}
	j->thread_started = true;
	return 0;
}

/* Under mu, after an append: a leading thread's records wait for its
 * journal_lead_end; anyone else's are wanted now, and wake the writer
 * thread when it had nothing to write or was waiting out a deferral
 * (true: signal writer_cv after unlocking). */
static bool append_demands(struct journal *j, bool was_empty)
{
	if (lead_intent == j) {
		lead_appended = true;
		return false;
	}
	bool was_deferred = !j->pending_demanded && j->defer_until_us != 0;
	j->pending_demanded = true;
	return was_empty || was_deferred;
}

int journal_append(struct journal *j, const void *body, size_t len, uint64_t *lsn,
                   struct jm_err *err)
{
	if (len > JOURNAL_MAX_BODY_BYTES)
		return jm_err_set(err, JM_ETOOBIG,
		                  "journal record of %zu bytes is over the limit of %u bytes", len,
		                  JOURNAL_MAX_BODY_BYTES);
	uint8_t hdr[JOURNAL_FRAME_BYTES];
	journal_frame_header(hdr, (uint32_t)len, body, len);
	pthread_mutex_lock(&j->mu);
	int rc = 0;
	if (!j->started || j->closing) {
		rc = jm_err_set(err, JM_ECLOSED, "journal %s: %s", j->dir,
		                j->closing ? "closing: no more appends" : "not started");
	} else if ((rc = append_refusal(j, err)) == 0 &&
	           jm_buf_reserve(&j->pending, sizeof hdr + len) != 0) {
		rc = jm_err_set(err, JM_ENOMEM, "journal %s: out of memory for a %zu-byte record",
		                j->dir, len);
	}
	if (rc != 0) {
		pthread_mutex_unlock(&j->mu);
		return rc;
	}
	bool was_empty = j->pending.len == 0;
	memcpy(j->pending.data + j->pending.len, hdr, sizeof hdr);
	if (len > 0)
		memcpy(j->pending.data + j->pending.len + sizeof hdr, body, len);
	j->pending.len += sizeof hdr + len;
	j->appended_bytes += sizeof hdr + len;
	*lsn = ++j->last_lsn;
	bool wake = append_demands(j, was_empty);
	pthread_mutex_unlock(&j->mu);
	if (wake)
		pthread_cond_signal(&j->writer_cv);
	return 0;
}

int journal_append_many(struct journal *j, const void *bodies, const size_t *lens, size_t count,
                        uint64_t *last_lsn, struct jm_err *err)
{
	size_t total = 0;
	for (size_t i = 0; i < count; i++) {
		if (lens[i] > JOURNAL_MAX_BODY_BYTES)
			return jm_err_set(
			    err, JM_ETOOBIG,
			    "journal record %zu of %zu: %zu bytes is over the limit of "
			    "%u bytes",
			    i, count, lens[i], JOURNAL_MAX_BODY_BYTES);
		if (lens[i] + JOURNAL_FRAME_BYTES > SIZE_MAX - total)
			return jm_err_set(err, JM_ETOOBIG, "journal records: too many bytes");
		total += JOURNAL_FRAME_BYTES + lens[i];
	}
	pthread_mutex_lock(&j->mu);
	int rc = 0;
	if (!j->started || j->closing) {
		rc = jm_err_set(err, JM_ECLOSED, "journal %s: %s", j->dir,
		                j->closing ? "closing: no more appends" : "not started");
	} else if ((rc = append_refusal(j, err)) == 0 && jm_buf_reserve(&j->pending, total) != 0) {
		rc = jm_err_set(err, JM_ENOMEM,
		                "journal %s: out of memory for %zu records of %zu bytes", j->dir,
		                count, total);
	}
	if (rc != 0) {
		pthread_mutex_unlock(&j->mu);
		return rc;
	}
	/* Room is reserved: from here nothing can fail. The checksums are
	 * computed under the lock, a cost the batch pays once per record. */
	bool was_empty = j->pending.len == 0;
	const uint8_t *body = bodies;
	for (size_t i = 0; i < count; i++) {
		uint8_t *at = j->pending.data + j->pending.len;
		journal_frame_header(at, (uint32_t)lens[i], body, lens[i]);
		if (lens[i] > 0)
			memcpy(at + JOURNAL_FRAME_BYTES, body, lens[i]);
		j->pending.len += JOURNAL_FRAME_BYTES + lens[i];
		body += lens[i];
	}
	j->appended_bytes += total;
	j->last_lsn += count;
	*last_lsn = j->last_lsn;
	bool wake = count > 0 && append_demands(j, was_empty);
	pthread_mutex_unlock(&j->mu);
	if (wake)
		pthread_cond_signal(&j->writer_cv);
	return 0;
}

bool journal_is_writable(struct journal *j, struct jm_err *err)
{
	pthread_mutex_lock(&j->mu);
	bool writable = append_refusal(j, err) == 0;
	pthread_mutex_unlock(&j->mu);
	return writable;
}

uint64_t journal_log_bytes(struct journal *j)
{
	pthread_mutex_lock(&j->mu);
	uint64_t bytes = j->appended_bytes - j->log_base_bytes;
	pthread_mutex_unlock(&j->mu);
	return bytes;
}

uint64_t journal_snapshot_bytes(struct journal *j)
{
	pthread_mutex_lock(&j->mu);
	uint64_t bytes = j->snap_bytes;
	pthread_mutex_unlock(&j->mu);
	return bytes;
}
