/* The HA standby's copy of the leader's journal (journal.h, "HA").
 *
 * The leader ships the framed bytes of each group commit with the segment
 * and offset they start at in its own files; the standby writes them to
 * the same file name at the same offset, so that its data directory holds
 * the leader's segments byte for byte and the ordinary replay reads them
 * once this broker is elected. Nothing is decoded here: every record's
 * frame (length and CRC32C) is checked, so a chunk is whole records or is
 * refused before a byte is written.
 *
 * A rotation on the leader shows up as the first chunk of a later segment
 * at the header's offset: the current segment is complete (the leader cut
 * its preallocated zeros before it rotated) and the missing segments in
 * between, empty on the leader, are created empty here too, since replay
 * wants consecutive numbers. A full copy (the leader compacted past what
 * this standby has, or the copies diverged) starts with reset, then the
 * leader's newest snapshot, then its segments from the snapshot's number.
 *
 * The copy uses the segment fields of struct journal before any replay
 * (mirroring is set); journal_mirror_end gives them back. */
#include "journal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"

/* Where the copy ends; the tail CRC (a read of up to 4 KB) only for
 * journal_mirror_begin and journal_mirror_tail, which a catch-up needs,
 * not for every append. */
static int position(struct journal *j, struct journal_position *pos, struct jm_err *err)
{
	pos->seq = j->seg_seq;
	pos->off = j->seg_off;
	pos->tail_crc = 0;
	return 0;
}

int journal_mirror_tail(struct journal *j, struct journal_position *pos, struct jm_err *err)
{
	position(j, pos, err);
	if (!j->seg_exists)
		return 0;
	return journal_files_tail_crc(j->dir, j->seg_seq, j->seg_off, &pos->tail_crc, err);
}

int journal_mirror_begin(struct journal *j, struct journal_position *pos, struct jm_err *err)
{
	if (j->started || j->opts.read_only)
		return jm_err_set(err, JM_EINVAL,
		                  "journal %s: a standby's copy needs a journal "
		                  "opened for writing and not started",
		                  j->dir);
	journal_mirror_end(j);
	/* The replay without apply finds the end of the valid records and
	 * cuts a torn tail, as a start would; the real replay runs again at
	 * election. */
	int rc = journal_replay(j, NULL, NULL, NULL, err);
	j->replayed = false;
	if (rc != 0)
		return rc;
	/* From the first byte copied on, a clean-stop marker would be wrong. */
	rc = journal_clean_remove(j, err);
	if (rc != 0)
		return rc;
	if (j->seg_exists) {
		int sys = journal_segment_open(j, j->seg_seq, false, j->seg_off, &j->seg_fd);
		if (sys != 0)
			return jm_err_set(err, JM_EIO, "journal %s: segment %" PRIu64 ": %s",
			                  j->dir, j->seg_seq, strerror(sys));
		/* A torn tail past seg_off was cut by the replay; zeros a
		 * crashed leader preallocated are cut here. */
		if (ftruncate(j->seg_fd, (off_t)j->seg_off) != 0)
			return jm_err_set(err, JM_EIO,
			                  "journal %s: cutting segment %" PRIu64 ": %s", j->dir,
			                  j->seg_seq, strerror(errno));
	}
	j->mirroring = true;
	return journal_mirror_tail(j, pos, err);
}

void journal_mirror_end(struct journal *j)
{
	if (!j->mirroring)
		return;
	if (j->seg_fd >= 0)
		close(j->seg_fd);
	j->seg_fd = -1;
	if (j->mirror_snap_fd >= 0)
		close(j->mirror_snap_fd);
	j->mirror_snap_fd = -1;
	j->mirroring = false;
}

/* Whole, valid records back to back: 0, or JM_ECORRUPT saying where not. */
static int check_records(struct journal *j, const uint8_t *data, size_t len, struct jm_err *err)
{
	size_t off = 0;
	while (off < len) {
		if (len - off < JOURNAL_FRAME_BYTES)
			break;
		uint32_t word = get_le32(data + off);
		uint32_t body = word & ~JOURNAL_META_FLAG;
		if ((word & JOURNAL_META_FLAG) || body > JOURNAL_MAX_BODY_BYTES ||
		    body > len - off - JOURNAL_FRAME_BYTES)
			break;
		uint32_t crc =
		    crc32c_extend(crc32c(data + off, 4), data + off + JOURNAL_FRAME_BYTES, body);
		if (crc != get_le32(data + off + 4))
			break;
		off += JOURNAL_FRAME_BYTES + body;
	}
	if (off == len)
		return 0;
	return jm_err_set(err, JM_ECORRUPT,
	                  "journal %s: shipped chunk of %zu bytes holds no valid record at its "
	                  "byte %zu: refused, nothing written",
	                  j->dir, len, off);
}

/* Creates segment seq (header written and synced) as the one appended to. */
static int create_segment(struct journal *j, uint64_t seq, struct jm_err *err)
{
	if (j->seg_fd >= 0)
		close(j->seg_fd);
	j->seg_fd = -1;
	int sys = journal_segment_open(j, seq, true, 0, &j->seg_fd);
	if (sys != 0)
		return jm_err_set(err, sys == ENOSPC ? JM_ENOSPC : JM_EIO,
		                  "journal %s: creating segment %" PRIu64 ": %s", j->dir, seq,
		                  strerror(sys));
	j->seg_seq = seq;
	j->seg_off = JOURNAL_HEADER_BYTES;
	j->seg_exists = true;
	return 0;
}

int journal_mirror_append(struct journal *j, uint64_t seq, uint64_t off, const uint8_t *data,
                          size_t len, struct journal_position *pos, struct jm_err *err)
{
	if (!j->mirroring)
		return jm_err_set(err, JM_ESTATE, "journal %s: not a standby's copy", j->dir);
	bool here = seq == j->seg_seq && off == j->seg_off;
	/* A later segment at its header: the leader rotated (maybe more than
	 * once, with empty segments between, which are made here too; the
	 * current one may not exist yet either, after a full copy). */
	bool next = seq > j->seg_seq && off == JOURNAL_HEADER_BYTES && seq - j->seg_seq < 1000000;
	if (!here && !next)
		return jm_err_set(err, JM_EINVAL,
		                  "journal %s: gap: this copy ends at segment %" PRIu64
		                  " byte %" PRIu64 ", the leader sent segment %" PRIu64
		                  " byte %" PRIu64 "; it must catch up first",
		                  j->dir, j->seg_seq, j->seg_off, seq, off);
	int rc = check_records(j, data, len, err);
	if (rc != 0)
		return rc;
	if (!j->seg_exists)
		rc = create_segment(j, j->seg_seq, err);
	for (uint64_t s = j->seg_seq + 1; rc == 0 && s <= seq; s++)
		rc = create_segment(j, s, err);
	if (rc != 0)
		return rc;
	int sys = journal_write_all(&j->io, j->seg_fd, data, len);
	if (sys == 0)
		sys = journal_sync_fd(&j->io, j->seg_fd);
	if (sys != 0) {
		/* Cut back to the records before, so a retry continues them. */
		if (ftruncate(j->seg_fd, (off_t)j->seg_off) != 0 ||
		    lseek(j->seg_fd, (off_t)j->seg_off, SEEK_SET) < 0)
			jm_warn("journal %s: cannot cut a failed copy back: %s", j->dir,
			        strerror(errno));
		return jm_err_set(err, sys == ENOSPC ? JM_ENOSPC : JM_EIO,
		                  "journal %s: writing %zu shipped bytes at segment %" PRIu64
		                  " byte %" PRIu64 ": %s",
		                  j->dir, len, seq, off, strerror(sys));
	}
	j->seg_off += len;
	return position(j, pos, err);
}

int journal_mirror_reset(struct journal *j, struct journal_position *pos, struct jm_err *err)
{
	if (!j->mirroring)
		return jm_err_set(err, JM_ESTATE, "journal %s: not a standby's copy", j->dir);
	if (j->seg_fd >= 0)
		close(j->seg_fd);
	j->seg_fd = -1;
	struct journal_files files;
	int rc = journal_files_list(j->dir, &files, err);
	if (rc != 0)
		return rc;
	struct journal_dir_list list = {.segments = files.segments,
	                                .segments_len = files.segments_len};
	journal_delete_replaced(j, &list, UINT64_MAX);
	journal_files_free(&files);
	/* Snapshots: journal_files_list names only the newest; delete all. */
	rc = journal_list_dir(j, &list, err);
	if (rc != 0)
		return rc;
	journal_delete_replaced(j, &list, UINT64_MAX);
	journal_dir_list_free(&list);
	jm_warn("journal %s: replication: deleted this copy for a full one from the leader",
	        j->dir);
	j->seg_seq = 1;
	j->seg_off = JOURNAL_HEADER_BYTES;
	j->seg_exists = false;
	return position(j, pos, err);
}

int journal_mirror_snapshot_put(struct journal *j, uint64_t seq, uint64_t off, const uint8_t *data,
                                size_t len, struct jm_err *err)
{
	if (!j->mirroring)
		return jm_err_set(err, JM_ESTATE, "journal %s: not a standby's copy", j->dir);
	char name[JOURNAL_NAME_BYTES];
	journal_snapshot_name(name, seq, true);
	if (off == 0) {
		if (j->mirror_snap_fd >= 0)
			close(j->mirror_snap_fd);
		j->mirror_snap_fd =
		    openat(j->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (j->mirror_snap_fd < 0)
			return jm_err_set(err, JM_EIO, "journal %s/%s: %s", j->dir, name,
			                  strerror(errno));
		j->mirror_snap_seq = seq;
	} else if (j->mirror_snap_fd < 0 || j->mirror_snap_seq != seq) {
		return jm_err_set(err, JM_EINVAL,
		                  "journal %s: snapshot %" PRIu64 " byte %" PRIu64
		                  " sent before its first byte",
		                  j->dir, seq, off);
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(j->mirror_snap_fd, data + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return jm_err_set(err, JM_EIO, "journal %s/%s: %s", j->dir, name,
			                  n < 0 ? strerror(errno) : "short write");
		done += (size_t)n;
	}
	return 0;
}

int journal_mirror_snapshot_done(struct journal *j, uint64_t seq, struct journal_position *pos,
                                 struct jm_err *err)
{
	if (!j->mirroring || j->mirror_snap_fd < 0 || j->mirror_snap_seq != seq)
		return jm_err_set(err, JM_EINVAL,
		                  "journal %s: snapshot %" PRIu64 " finished before it was sent",
		                  j->dir, seq);
	char tmp[JOURNAL_NAME_BYTES], name[JOURNAL_NAME_BYTES];
	journal_snapshot_name(tmp, seq, true);
	journal_snapshot_name(name, seq, false);
	int sys = journal_sync_fd(&j->io, j->mirror_snap_fd);
	close(j->mirror_snap_fd);
	j->mirror_snap_fd = -1;
	if (sys == 0 && renameat(j->dir_fd, tmp, j->dir_fd, name) != 0)
		sys = errno;
	if (sys != 0)
		return jm_err_set(err, JM_EIO, "journal %s/%s: %s", j->dir, name, strerror(sys));
	journal_sync_dir(j);
	/* The segments from the snapshot's number on follow. */
	j->seg_seq = seq;
	j->seg_off = JOURNAL_HEADER_BYTES;
	j->seg_exists = false;
	return position(j, pos, err);
}
