/* Snapshots: compaction writes the whole live state to a snapshot file,
 * and replay loads the newest complete one before reading segments. The
 * END marker that makes a snapshot complete is laid out at the top of
 * journal_segment.c.
 *
 * COMPACTION
 *
 * A snapshot for the boundary of segment S is written by the caller's
 * thread to snapshot-S.tmp through a 1 MiB buffer. Commit appends the END
 * marker, fdatasyncs, waits until the writer has switched to segment S
 * (so replay finds S), renames to .snap, syncs the directory, and only
 * then deletes segments and snapshots older than S. A crash at any point
 * leaves either the old files or a complete snapshot plus segment S; the
 * next open deletes what a finished compaction would have deleted.
 */
#include "journal_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Verifies that a snapshot is complete: 0, or nonzero with *why. */
static int snapshot_verify(const struct journal_file *f, uint64_t seq, const char **why)
{
	int rc = journal_header_check(f, JOURNAL_SNAPSHOT_MAGIC, seq, why);
	if (rc != 0)
		return rc;
	uint64_t off = JOURNAL_HEADER_BYTES;
	uint64_t records = 0;
	uint64_t body_bytes = 0;
	uint64_t dropped = 0;
	while (off < f->size) {
		struct journal_record rec;
		journal_file_drop_behind(f, off, &dropped);
		rc = journal_record_check(f, off, &rec, why);
		if (rc != 0)
			return rc;
		off += JOURNAL_FRAME_BYTES + rec.len;
		if (!rec.meta) {
			records++;
			body_bytes += rec.len;
			continue;
		}
		if (rec.len != JOURNAL_META_END_BYTES || get_le32(rec.body) != JOURNAL_META_END) {
			*why = "unknown journal-internal record";
			return JM_ECORRUPT;
		}
		if (get_le64(rec.body + 4) != records || get_le64(rec.body + 12) != body_bytes) {
			*why = "end marker does not match the records before it";
			return JM_ECORRUPT;
		}
		if (off != f->size) {
			*why = "data after the end marker";
			return JM_ECORRUPT;
		}
		return 0;
	}
	*why = "no end marker (the snapshot was not finished)";
	return JM_ECORRUPT;
}

int journal_snapshot_load(struct journal *j, const struct journal_dir_list *list,
                          journal_apply_fn apply, void *arg, struct journal_replay_stats *stats,
                          uint64_t *chosen, struct jm_err *err)
{
	*chosen = 0;
	for (size_t i = list->snapshots_len; i-- > 0;) {
		uint64_t seq = list->snapshots[i];
		char name[JOURNAL_NAME_BYTES];
		journal_snapshot_name(name, seq, false);
		struct journal_file f;
		int rc = journal_file_map(j, name, &f, err);
		if (rc != 0)
			return rc;
		const char *why = NULL;
		if (snapshot_verify(&f, seq, &why) != 0) {
			jm_warn("journal %s: ignoring snapshot %s: %s", j->dir, name, why);
			journal_file_unmap(&f);
			continue;
		}
		uint64_t off = JOURNAL_HEADER_BYTES;
		uint64_t dropped = 0;
		while (off < f.size) {
			struct journal_record rec;
			journal_file_drop_behind(&f, off, &dropped);
			rc = journal_record_check(&f, off, &rec, &why);
			assert(rc == 0); /* verified above; the file is locked */
			if (rec.meta)
				break;
			if (apply != NULL) {
				rc = apply(arg, rec.body, rec.len, name, off, err);
				if (rc != 0) {
					journal_file_unmap(&f);
					return rc;
				}
			}
			stats->records++;
			stats->bytes += JOURNAL_FRAME_BYTES + rec.len;
			off += JOURNAL_FRAME_BYTES + rec.len;
		}
		j->snap_bytes = f.size;
		journal_file_unmap(&f);
		*chosen = seq;
		return 0;
	}
	return 0;
}

int journal_rotate(struct journal *j, struct journal_snapshot **out, struct jm_err *err)
{
	*out = NULL;
	struct journal_snapshot *snap = calloc(1, sizeof *snap);
	if (snap == NULL)
		return jm_err_set(err, JM_ENOMEM, "journal %s: out of memory", j->dir);
	pthread_mutex_lock(&j->mu);
	int rc = 0;
	if (!j->started || j->closing)
		rc = jm_err_set(err, JM_ECLOSED, "journal %s: not open for writing", j->dir);
	else if (!j->writable)
		rc = jm_err_set(err, JM_ENOSPC, "%s", j->write_err);
	else if (j->snapshot_active)
		rc = jm_err_set(err, JM_EINVAL, "journal %s: a snapshot is already being written",
		                j->dir);
	else if (j->pending_marks.len == j->pending_marks.cap) {
		size_t cap = j->pending_marks.cap ? j->pending_marks.cap * 2 : 4;
		struct journal_mark *grown = realloc(j->pending_marks.items, cap * sizeof *grown);
		if (grown == NULL)
			rc = jm_err_set(err, JM_ENOMEM, "journal %s: out of memory", j->dir);
		else {
			j->pending_marks.items = grown;
			j->pending_marks.cap = cap;
		}
	}
	if (rc != 0) {
		pthread_mutex_unlock(&j->mu);
		free(snap);
		return rc;
	}
	uint64_t seq = ++j->newest_seq;
	j->pending_marks.items[j->pending_marks.len++] =
	    (struct journal_mark){.offset = j->pending.len, .seq = seq};
	j->snapshot_active = true;
	snap->rotate_at_bytes = j->appended_bytes;
	pthread_cond_signal(&j->writer_cv);
	pthread_mutex_unlock(&j->mu);

	snap->j = j;
	snap->seq = seq;
	snap->fd = -1;
	journal_snapshot_name(snap->tmp_name, seq, true);
	*out = snap;
	return 0;
}

static int snapshot_fail(struct journal_snapshot *snap, const char *what, int sys,
                         struct jm_err *err)
{
	int code = sys == ENOSPC || sys == EDQUOT || sys == EFBIG ? JM_ENOSPC : JM_EIO;
	if (snap->failed == 0)
		snap->failed = code;
	return jm_err_set(err, code, "journal %s/%s: %s failed at byte %" PRIu64 ": %s",
	                  snap->j->dir, snap->tmp_name, what, snap->file_bytes, strerror(sys));
}

static int snapshot_write(struct journal_snapshot *snap, const void *data, size_t len,
                          struct jm_err *err)
{
	struct journal *j = snap->j;
	if (snap->fd < 0) {
		snap->fd = openat(j->dir_fd, snap->tmp_name,
		                  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (snap->fd < 0)
			return snapshot_fail(snap, "create", errno, err);
		uint8_t hdr[JOURNAL_HEADER_BYTES];
		journal_file_header(hdr, JOURNAL_SNAPSHOT_MAGIC, snap->seq);
		int sys = journal_write_all(&j->io, snap->fd, hdr, sizeof hdr);
		if (sys != 0)
			return snapshot_fail(snap, "write", sys, err);
		snap->file_bytes = sizeof hdr;
	}
	int sys = journal_write_all(&j->io, snap->fd, data, len);
	if (sys != 0)
		return snapshot_fail(snap, "write", sys, err);
	snap->file_bytes += len;
	return 0;
}

static int snapshot_flush(struct journal_snapshot *snap, struct jm_err *err)
{
	int rc = snapshot_write(snap, snap->buf, snap->buf_len, err);
	snap->buf_len = 0;
	return rc;
}

static int snapshot_frame(struct journal_snapshot *snap, uint32_t length_word, const void *body,
                          size_t len, struct jm_err *err)
{
	if (snap->failed != 0)
		return jm_err_set(err, snap->failed, "journal %s/%s: an earlier write failed",
		                  snap->j->dir, snap->tmp_name);
	if (snap->buf == NULL) {
		snap->buf = malloc(JOURNAL_SNAPSHOT_BUF_BYTES);
		if (snap->buf == NULL)
			return jm_err_set(err, JM_ENOMEM, "journal: out of memory");
	}
	uint8_t hdr[JOURNAL_FRAME_BYTES];
	journal_frame_header(hdr, length_word, body, len);
	if (snap->buf_len + sizeof hdr + len > JOURNAL_SNAPSHOT_BUF_BYTES) {
		int rc = snapshot_flush(snap, err);
		if (rc != 0)
			return rc;
	}
	if (sizeof hdr + len > JOURNAL_SNAPSHOT_BUF_BYTES) {
		int rc = snapshot_write(snap, hdr, sizeof hdr, err);
		return rc != 0 ? rc : snapshot_write(snap, body, len, err);
	}
	memcpy(snap->buf + snap->buf_len, hdr, sizeof hdr);
	if (len > 0)
		memcpy(snap->buf + snap->buf_len + sizeof hdr, body, len);
	snap->buf_len += sizeof hdr + len;
	return 0;
}

int journal_snapshot_append(struct journal_snapshot *snap, const void *body, size_t len,
                            struct jm_err *err)
{
	if (len > JOURNAL_MAX_BODY_BYTES)
		return jm_err_set(err, JM_ETOOBIG,
		                  "snapshot record of %zu bytes is over the limit of %u bytes", len,
		                  JOURNAL_MAX_BODY_BYTES);
	int rc = snapshot_frame(snap, (uint32_t)len, body, len, err);
	if (rc == 0) {
		snap->records++;
		snap->body_bytes += len;
	}
	return rc;
}

static void snapshot_free(struct journal_snapshot *snap, bool remove_tmp)
{
	struct journal *j = snap->j;
	if (snap->fd >= 0)
		close(snap->fd);
	if (remove_tmp)
		unlinkat(j->dir_fd, snap->tmp_name, 0);
	pthread_mutex_lock(&j->mu);
	j->snapshot_active = false;
	pthread_mutex_unlock(&j->mu);
	free(snap->buf);
	free(snap);
}

void journal_snapshot_abort(struct journal_snapshot *snap)
{
	if (snap != NULL)
		snapshot_free(snap, true);
}

/* Deletes segments and snapshots older than seq; logs what it cannot. */
static void delete_older_than(struct journal *j, uint64_t seq)
{
	struct journal_dir_list list;
	struct jm_err err;
	if (journal_list_dir(j, &list, &err) != 0) {
		jm_warn("%s; old segments stay until the next compaction", err.msg);
		return;
	}
	journal_delete_replaced(j, &list, seq);
	free(list.segments);
	free(list.snapshots);
}

int journal_snapshot_commit(struct journal_snapshot *snap, struct jm_err *err)
{
	struct journal *j = snap->j;
	uint8_t end[JOURNAL_META_END_BYTES];
	put_le32(end, JOURNAL_META_END);
	put_le64(end + 4, snap->records);
	put_le64(end + 12, snap->body_bytes);
	int rc =
	    snapshot_frame(snap, JOURNAL_META_FLAG | (uint32_t)sizeof end, end, sizeof end, err);
	if (rc == 0)
		rc = snapshot_flush(snap, err);
	if (rc == 0) {
		int sys = journal_sync_fd(&j->io, snap->fd);
		if (sys != 0)
			rc = snapshot_fail(snap, "sync", sys, err);
	}
	if (rc != 0)
		goto fail_remove_tmp;

	/* The snapshot replaces segments < seq only once the writer has moved
	 * to segment seq, so that the segment exists for replay to start at. */
	pthread_mutex_lock(&j->mu);
	while (j->rotated_seq < snap->seq && j->writable && !j->writer_done)
		pthread_cond_wait(&j->state_cv, &j->mu);
	if (j->rotated_seq < snap->seq)
		rc = jm_err_set(err, j->writable ? JM_ECLOSED : JM_ENOSPC,
		                "journal %s: the switch to segment %016" PRIu64
		                " did not happen: %s",
		                j->dir, snap->seq, j->writable ? "journal closed" : j->write_err);
	pthread_mutex_unlock(&j->mu);
	if (rc != 0)
		goto fail_remove_tmp;

	char name[JOURNAL_NAME_BYTES];
	journal_snapshot_name(name, snap->seq, false);
	if (renameat(j->dir_fd, snap->tmp_name, j->dir_fd, name) != 0) {
		rc = jm_err_set(err, JM_EIO, "journal %s: cannot rename %s to %s: %s", j->dir,
		                snap->tmp_name, name, strerror(errno));
		goto fail_remove_tmp;
	}
	journal_sync_dir(j);
	delete_older_than(j, snap->seq);
	pthread_mutex_lock(&j->mu);
	j->snap_seq = snap->seq;
	j->snap_bytes = snap->file_bytes;
	j->log_base_bytes = snap->rotate_at_bytes;
	pthread_mutex_unlock(&j->mu);
	jm_info("journal %s: snapshot %s written (%" PRIu64 " records, %" PRIu64 " bytes)", j->dir,
	        name, snap->records, snap->file_bytes);
	snapshot_free(snap, false);
	return 0;

fail_remove_tmp:
	snapshot_free(snap, true);
	return rc;
}
