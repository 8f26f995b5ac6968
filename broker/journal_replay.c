/* Replay: reads the journal at start, newest complete snapshot first
 * (journal_snapshot.c) and then every later segment in order, calling the
 * broker's apply per record, and leaves the writer the position to append
 * at.
 *
 * WHAT REPLAY DOES WITH A BAD RECORD
 *
 * A bad record in the last segment is a torn tail when no valid record
 * starts at any later byte of that file: the crash cut off (or never
 * synced) the end of the last write. It is truncated away (not in
 * read_only) and reported with file, offset and bytes cut. Anything else
 * (a bad record followed by a valid one, a bad record in an earlier
 * segment, a bad file header, a gap in segment numbers) is damage:
 * JM_ECORRUPT naming file and offset, unless opts.repair, which truncates
 * at the damage and deletes the later segments, logging what was dropped.
 *
 * Zeros from a record boundary to the end of the last segment are the
 * writer's preallocated space (journal_prealloc.c), not a torn tail: they
 * are kept, and the writer overwrites them. Every other segment, and the
 * last one after a clean stop, is cut to its records before it is left, so
 * there such zeros are damage as any other bad record.
 *
 * A torn tail is only possible after a crash. When the last stop was clean
 * (the CLEAN marker, journal_clean.c), every byte was written and synced
 * before the broker exited, so a bad record in the last segment is damage
 * too, named with the marker's end, and the journal must end exactly where
 * the marker says: shorter means records are missing, longer with bytes
 * that are no record means damage appended. --repair cuts or accepts as it
 * does for mid-journal damage and says what it cut. A marker that valid
 * records follow (a later segment, or a record at its end) was left by a
 * writer that did not know it, such as an older jobmesh: it is ignored with
 * a warning, and the crash rules apply.
 */
#include "journal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* True when every byte in [from, size) is zero. */
static bool zeros_to_end(const struct journal_file *f, uint64_t from)
{
	for (uint64_t off = from; off < f->size; off++)
		if (f->map[off] != 0)
			return false;
	return true;
}

/* True when a valid record starts at some byte in [from, size). */
static bool valid_record_follows(const struct journal_file *f, uint64_t from)
{
	struct journal_record rec;
	const char *why;
	for (uint64_t off = from; off + JOURNAL_FRAME_BYTES <= f->size; off++)
		if (journal_record_check(f, off, &rec, &why) == 0)
			return true;
	return false;
}

static int damage_error(struct journal *j, struct jm_err *err, int code, const char *name,
                        uint64_t off, const char *why, uint64_t bytes_after)
{
	return jm_err_set(err, code,
	                  "journal %s: byte %" PRIu64
	                  ": %s. Run `jobmesh-broker --check-journal %s` "
	                  "to inspect; `--repair` truncates the journal there, losing the %" PRIu64
	                  " bytes that follow in this file and all later segments",
	                  name, off, why, j->dir, bytes_after);
}

/* why, with a note when a clean stop says the damaged segment seq was
 * whole: then a bad record is no torn tail. Returns why or buf. */
static const char *clean_note(struct journal *j, uint64_t seq, const char *why, char *buf,
                              size_t size)
{
	if (!j->clean_found)
		return why;
	char name[JOURNAL_NAME_BYTES];
	journal_segment_name(name, j->clean_seq);
	snprintf(buf, size,
	         "%s, after a clean stop that left %s ending at byte %" PRIu64
	         "%s: damage, not a torn tail",
	         why, name, j->clean_end, seq == j->clean_seq ? "" : " (a later segment)");
	return buf;
}

/* After a clean stop the journal must end exactly where the marker says:
 * 0, or JM_ECORRUPT naming where it ends instead (unless opts.repair, which
 * starts from what is there). */
static int clean_end_check(struct journal *j, struct jm_err *err)
{
	if (!j->clean_found || j->repaired)
		return 0;
	if (j->seg_exists && j->seg_seq == j->clean_seq && j->seg_off == j->clean_end)
		return 0;
	char want[JOURNAL_NAME_BYTES];
	char have[JOURNAL_NAME_BYTES] = "no segment";
	journal_segment_name(want, j->clean_seq);
	if (j->seg_exists)
		journal_segment_name(have, j->seg_seq);
	if (j->opts.repair) {
		jm_warn("journal %s: repair: the broker stopped cleanly with %s ending at byte "
		        "%" PRIu64 ", but the journal ends at byte %" PRIu64
		        " of %s; starting from what is there",
		        j->dir, want, j->clean_end, j->seg_exists ? j->seg_off : 0, have);
		j->repaired = true;
		return 0;
	}
	return jm_err_set(err, JM_ECORRUPT,
	                  "journal %s: %s ends at byte %" PRIu64
	                  ", but the broker stopped cleanly with %s ending at byte %" PRIu64
	                  ": records are missing (damage, not a torn tail). Run `jobmesh-broker "
	                  "--check-journal %s`; `--repair` starts from what is there",
	                  j->dir, have, j->seg_exists ? j->seg_off : 0, want, j->clean_end, j->dir);
}

/* True when the marker is older than the journal: a segment after its
 * segment exists, or a valid record starts at its end. Only a writer that
 * did not know the marker (an older jobmesh, which ignores CLEAN) can have
 * written past it: damage does not make records with valid checksums. */
static bool clean_is_stale(struct journal *j, const struct journal_dir_list *list)
{
	if (list->segments_len == 0)
		return false;
	uint64_t last = list->segments[list->segments_len - 1];
	if (last != j->clean_seq)
		return last > j->clean_seq;
	char name[JOURNAL_NAME_BYTES];
	journal_segment_name(name, last);
	struct journal_file f;
	struct jm_err ignored;
	if (journal_file_map(j, name, &f, &ignored) != 0)
		return false; /* replay reports it */
	struct journal_record rec;
	const char *why;
	bool stale = f.size > j->clean_end && j->clean_end >= JOURNAL_HEADER_BYTES &&
	             journal_record_check(&f, j->clean_end, &rec, &why) == 0 && !rec.meta;
	journal_file_unmap(&f);
	return stale;
}

/* Deletes segments with seq > after, logging each; for repair. */
static void drop_segments_after(struct journal *j, const struct journal_dir_list *list,
                                uint64_t after)
{
	for (size_t i = 0; i < list->segments_len; i++) {
		if (list->segments[i] <= after)
			continue;
		char name[JOURNAL_NAME_BYTES];
		journal_segment_name(name, list->segments[i]);
		struct stat st;
		long long size = fstatat(j->dir_fd, name, &st, 0) == 0 ? (long long)st.st_size : -1;
		if (unlinkat(j->dir_fd, name, 0) == 0)
			jm_warn("journal %s: repair dropped segment %s (%lld bytes)", j->dir, name,
			        size);
		else
			jm_error("journal %s: repair could not delete %s: %s", j->dir, name,
			         strerror(errno));
	}
	journal_sync_dir(j);
}

static int truncate_at(struct journal *j, const char *name, uint64_t off, struct jm_err *err)
{
	int fd = openat(j->dir_fd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)off) != 0 || fsync(fd) != 0) {
		int sys = errno;
		if (fd >= 0)
			close(fd);
		return jm_err_set(err, JM_EIO,
		                  "journal %s/%s: cannot truncate at byte %" PRIu64 ": %s", j->dir,
		                  name, off, strerror(sys));
	}
	close(fd);
	return 0;
}

/* What replay_segment found. */
enum segment_end { SEGMENT_END_CLEAN, SEGMENT_END_STOP };

/* Replays one segment. *end says whether later segments are to be read
 * (repair stops the replay at the damage). */
static int replay_segment(struct journal *j, const struct journal_dir_list *list, size_t index,
                          journal_apply_fn apply, void *arg, struct journal_replay_stats *stats,
                          enum segment_end *end, struct jm_err *err)
{
	uint64_t seq = list->segments[index];
	bool last = index + 1 == list->segments_len;
	char name[JOURNAL_NAME_BYTES];
	journal_segment_name(name, seq);
	struct journal_file f;
	int rc = journal_file_map(j, name, &f, err);
	if (rc != 0)
		return rc;
	*end = SEGMENT_END_CLEAN;
	j->seg_seq = seq;
	j->seg_exists = true;

	/* After a clean stop nothing in the last segment can be torn: every
	 * byte was written and synced before the marker (journal_clean.c). */
	bool may_be_torn = last && !j->clean_found;
	const char *why = NULL;
	char why_clean[JM_ERR_MSG_MAX / 2];
	rc = journal_header_check(&f, JOURNAL_SEGMENT_MAGIC, seq, &why);
	if (rc == JM_EVERSION) {
		rc = jm_err_set(err, rc, "journal %s/%s: %s", j->dir, name, why);
		goto done_unmap;
	}
	if (rc != 0) {
		if (may_be_torn && f.size <= JOURNAL_HEADER_BYTES) {
			/* Created but its header never reached the disk: a torn
			 * creation. The segment is made again at start. */
			jm_warn("journal %s: torn tail: %s has an incomplete header (%" PRIu64
			        " bytes)%s",
			        j->dir, name, f.size, j->opts.read_only ? "" : "; deleting it");
			stats->torn_tail_offset = 0;
			stats->torn_tail_bytes = f.size;
			snprintf(stats->torn_tail_file, sizeof stats->torn_tail_file, "%s", name);
			if (!j->opts.read_only) {
				unlinkat(j->dir_fd, name, 0);
				journal_sync_dir(j);
			}
			j->seg_exists = false;
			rc = 0;
			goto done_unmap;
		}
		why = clean_note(j, seq, why, why_clean, sizeof why_clean);
		if (j->opts.repair) {
			jm_warn("journal %s: repair: %s: %s; dropping it and all later segments",
			        j->dir, name, why);
			j->repaired = true;
			drop_segments_after(j, list, seq - 1);
			j->seg_exists = false;
			*end = SEGMENT_END_STOP;
			rc = 0;
			goto done_unmap;
		}
		rc = damage_error(j, err, JM_ECORRUPT, name, 0, why, f.size);
		goto done_unmap;
	}

	uint64_t off = JOURNAL_HEADER_BYTES;
	uint64_t dropped = 0;
	while (off < f.size) {
		struct journal_record rec;
		journal_file_drop_behind(&f, off, &dropped);
		rc = journal_record_check(&f, off, &rec, &why);
		if (rc == 0 && rec.meta) {
			why = "journal-internal record inside a segment";
			rc = JM_ECORRUPT;
		}
		if (rc != 0)
			break;
		if (apply != NULL) {
			rc = apply(arg, rec.body, rec.len, name, off, err);
			if (rc != 0)
				goto done_unmap;
		}
		stats->records++;
		stats->bytes += JOURNAL_FRAME_BYTES + rec.len;
		off += JOURNAL_FRAME_BYTES + rec.len;
	}
	j->seg_off = off;
	if (rc == 0)
		goto done_unmap;

	if (may_be_torn && zeros_to_end(&f, off)) {
		/* Preallocated space (journal_prealloc.c): the writer overwrites
		 * it from here. Not a torn tail, and kept. */
		rc = 0;
		goto done_unmap;
	}
	uint64_t cut = f.size - off;
	if (may_be_torn && !valid_record_follows(&f, off + 1)) {
		jm_warn("journal %s: torn tail in %s at byte %" PRIu64 " (%s): %s %" PRIu64
		        " bytes",
		        j->dir, name, off, why, j->opts.read_only ? "would cut" : "cutting", cut);
		stats->torn_tail_offset = off;
		stats->torn_tail_bytes = cut;
		snprintf(stats->torn_tail_file, sizeof stats->torn_tail_file, "%s", name);
		rc = j->opts.read_only ? 0 : truncate_at(j, name, off, err);
		goto done_unmap;
	}
	why = clean_note(j, seq, why, why_clean, sizeof why_clean);
	if (j->opts.repair) {
		jm_warn("journal %s: repair: %s: byte %" PRIu64 ": %s; cutting the %" PRIu64
		        " bytes from there and dropping later segments",
		        j->dir, name, off, why, cut);
		j->repaired = true;
		rc = truncate_at(j, name, off, err);
		if (rc == 0)
			drop_segments_after(j, list, seq);
		*end = SEGMENT_END_STOP;
		goto done_unmap;
	}
	rc = damage_error(j, err, JM_ECORRUPT, name, off, why, cut);

done_unmap:
	journal_file_unmap(&f);
	return rc;
}

int journal_replay(struct journal *j, journal_apply_fn apply, void *arg,
                   struct journal_replay_stats *stats, struct jm_err *err)
{
	struct journal_replay_stats local;
	if (stats == NULL)
		stats = &local;
	memset(stats, 0, sizeof *stats);
	if (j->replayed || j->started)
		return jm_err_set(err, JM_EINVAL, "journal %s: replay runs once, before start",
		                  j->dir);
	int rc = journal_clean_read(j, err);
	if (rc != 0)
		return rc;
	struct journal_dir_list list;
	rc = journal_list_dir(j, &list, err);
	if (rc != 0)
		return rc;
	if (j->clean_found && clean_is_stale(j, &list)) {
		jm_warn("journal %s: the clean-stop marker is older than the journal (records "
		        "were written after it without deleting it, e.g. by an older jobmesh); "
		        "ignoring it",
		        j->dir);
		j->clean_found = false;
	}
	uint64_t snap_seq = 0;
	rc = journal_snapshot_load(j, &list, apply, arg, stats, &snap_seq, err);
	if (rc != 0)
		goto done_free_list;
	uint64_t snapshot_record_bytes = stats->bytes;

	/* The segments to read: from snap_seq on, consecutive. */
	size_t first = 0;
	while (first < list.segments_len && list.segments[first] < snap_seq)
		first++;
	if (first > 0 && !j->opts.read_only)
		journal_delete_replaced(j, &list, snap_seq);
	struct journal_dir_list used = list;
	if (first > 0) /* a snapshot alone has no segments array (NULL) */
		used.segments += first;
	used.segments_len -= first;

	uint64_t expect = snap_seq ? snap_seq : 1;
	j->seg_seq = expect;
	j->seg_exists = false;
	j->seg_off = JOURNAL_HEADER_BYTES;
	for (size_t i = 0; i < used.segments_len; i++) {
		uint64_t seq = used.segments[i];
		if (seq != expect) {
			char name[JOURNAL_NAME_BYTES];
			char want[JOURNAL_NAME_BYTES];
			journal_segment_name(name, seq);
			journal_segment_name(want, expect);
			const char *hint = i == 0 && snap_seq == 0 && list.snapshots_len > 0
			                       ? " (the snapshot that covered it is incomplete)"
			                       : "";
			if (!j->opts.repair) {
				rc =
				    jm_err_set(err, JM_ECORRUPT,
				               "journal %s: %s is missing before %s%s: records are "
				               "lost. Run `jobmesh-broker --check-journal %s`; "
				               "`--repair` starts from what is there",
				               j->dir, want, name, hint, j->dir);
				goto done_free_list;
			}
			jm_warn("journal %s: repair: %s is missing before %s%s", j->dir, want, name,
			        hint);
			if (i > 0) {
				drop_segments_after(j, &used, used.segments[i - 1]);
				break;
			}
		}
		enum segment_end end;
		rc = replay_segment(j, &used, i, apply, arg, stats, &end, err);
		if (rc != 0)
			goto done_free_list;
		if (end == SEGMENT_END_STOP)
			break;
		expect = seq + 1;
	}
	if (!j->seg_exists)
		j->seg_off = JOURNAL_HEADER_BYTES;
	rc = clean_end_check(j, err);
	if (rc != 0)
		goto done_free_list;
	j->seg_commit_off = j->seg_off;
	j->snap_seq = snap_seq;
	j->appended_bytes = stats->bytes - snapshot_record_bytes;
	j->replayed = true;
	jm_info("journal %s: replayed %" PRIu64 " records (%" PRIu64 " bytes)%s", j->dir,
	        stats->records, stats->bytes, snap_seq ? " starting from a snapshot" : "");

done_free_list:
	free(list.segments);
	free(list.snapshots);
	return rc;
}
