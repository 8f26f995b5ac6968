/* The clean-stop marker: a small file, CLEAN, in the data directory that
 * says "the broker stopped cleanly, and its journal then ended exactly
 * here". It lets replay tell a crash from damage: after a crash the end of
 * the last write may be torn and is cut (journal_replay.c); after a clean
 * stop every byte was written and synced, so a bad record in the tail is
 * damage and is refused with its file and offset (or cut by --repair).
 *
 * CLEAN (32 bytes, little-endian)
 *
 *   0   8  magic "JMCLEAN1"
 *   8   4  format version (JOURNAL_VERSION)
 *  12   8  seq of the last segment
 *  20   8  its size: the byte just past its last record
 *  28   4  CRC32C of bytes 0..27
 *
 * Order of steps, each crash-safe:
 *  - journal_stop: once the writer has stopped with every appended record
 *    written and synced, CLEAN.tmp is written and fdatasync'ed, renamed to
 *    CLEAN, and the directory synced. A crash before the rename leaves no
 *    marker: the next start treats the stop as a crash (a .tmp is never
 *    read, and is deleted by the next marker write).
 *  - journal_start: CLEAN is deleted and the directory synced before the
 *    first byte is written, so a marker never describes a journal that has
 *    grown since; if it cannot be deleted, the journal does not start.
 * A marker that is damaged itself is refused like damage (--repair ignores
 * it), since it cannot say where the journal ended. A marker that valid
 * records follow is stale (journal_replay.c) and ignored.
 *
 * Why a file and not a record at the end of the segment: damage to the
 * tail (a zeroed last page) would erase such a record along with what it
 * vouches for, and the tail would again pass for torn. A separate file also
 * leaves the segment format as it is (no version bump; an older broker
 * ignores the file) and needs no record kind in proto/record.c. */
#include "journal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"

#define CLEAN_NAME "CLEAN"
#define CLEAN_TMP_NAME "CLEAN.tmp"
#define CLEAN_MAGIC "JMCLEAN1"
#define CLEAN_BYTES 32u

int journal_clean_read(struct journal *j, struct jm_err *err)
{
	j->clean_found = false;
	int fd = openat(j->dir_fd, CLEAN_NAME, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return jm_err_set(err, JM_EIO, "journal %s/%s: cannot open: %s", j->dir, CLEAN_NAME,
		                  strerror(errno));
	}
	uint8_t buf[CLEAN_BYTES + 1];
	ssize_t got = pread(fd, buf, sizeof buf, 0);
	int sys = errno;
	close(fd);
	if (got < 0)
		return jm_err_set(err, JM_EIO, "journal %s/%s: cannot read: %s", j->dir, CLEAN_NAME,
		                  strerror(sys));
	const char *why = NULL;
	if (got != CLEAN_BYTES)
		why = "it is not 32 bytes long";
	else if (memcmp(buf, CLEAN_MAGIC, 8) != 0)
		why = "bad magic";
	else if (get_le32(buf + 28) != crc32c(buf, 28))
		why = "checksum mismatch";
	else if (get_le32(buf + 8) != JOURNAL_VERSION)
		why = "format version not known to this jobmesh";
	if (why != NULL) {
		if (j->opts.repair) {
			jm_warn("journal %s: repair: ignoring the damaged clean-stop marker %s/%s "
			        "(%s)",
			        j->dir, j->dir, CLEAN_NAME, why);
			return 0;
		}
		return jm_err_set(err, JM_ECORRUPT,
		                  "journal %s/%s: the clean-stop marker is damaged (%s), so where "
		                  "the journal ended is unknown. Run `jobmesh-broker "
		                  "--check-journal %s`; `--repair` ignores the marker",
		                  j->dir, CLEAN_NAME, why, j->dir);
	}
	j->clean_found = true;
	j->clean_seq = get_le64(buf + 12);
	j->clean_end = get_le64(buf + 20);
	return 0;
}

int journal_clean_write(struct journal *j, struct jm_err *err)
{
	uint8_t buf[CLEAN_BYTES];
	memcpy(buf, CLEAN_MAGIC, 8);
	put_le32(buf + 8, JOURNAL_VERSION);
	put_le64(buf + 12, j->seg_seq);
	put_le64(buf + 20, j->seg_off);
	put_le32(buf + 28, crc32c(buf, 28));
	int fd = openat(j->dir_fd, CLEAN_TMP_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int sys = fd < 0 ? errno : journal_write_all(&j->io, fd, buf, sizeof buf);
	if (sys == 0)
		sys = journal_sync_fd(&j->io, fd);
	if (fd >= 0)
		close(fd);
	if (sys == 0 && renameat(j->dir_fd, CLEAN_TMP_NAME, j->dir_fd, CLEAN_NAME) != 0)
		sys = errno;
	if (sys != 0) {
		unlinkat(j->dir_fd, CLEAN_TMP_NAME, 0);
		return jm_err_set(err, sys == ENOSPC ? JM_ENOSPC : JM_EIO,
		                  "journal %s/%s: cannot write the clean-stop marker: %s (the "
		                  "journal is durable; the next start treats this stop as a "
		                  "crash)",
		                  j->dir, CLEAN_NAME, strerror(sys));
	}
	journal_sync_dir(j);
	return 0;
}

int journal_clean_remove(struct journal *j, struct jm_err *err)
{
	if (unlinkat(j->dir_fd, CLEAN_NAME, 0) != 0) {
		if (errno == ENOENT)
			return 0;
		return jm_err_set(err, JM_EIO,
		                  "journal %s/%s: cannot delete the clean-stop marker before "
		                  "writing: %s",
		                  j->dir, CLEAN_NAME, strerror(errno));
	}
	if (fsync(j->dir_fd) != 0)
		return jm_err_set(err, JM_EIO,
		                  "journal %s: fsync of the directory after deleting %s failed: %s",
		                  j->dir, CLEAN_NAME, strerror(errno));
	return 0;
}
