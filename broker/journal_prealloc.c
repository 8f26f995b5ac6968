/* Preallocated segments: the writer keeps zeros ahead of the append
 * position so a record overwrites bytes the file already has, and the
 * fdatasync after it writes data only (no size or extent change to log).
 * beanstalkd does the same with its binlog (falloc/walresvput). On this
 * project's machines fdatasync after a 200-byte append costs ~183 µs, after
 * an overwrite of a preallocated file ~127 µs.
 *
 * The zeros are real writes, not only fallocate(2): fallocate leaves
 * "unwritten" extents whose conversion on the first write is again metadata
 * for the sync to log. fallocate still runs first so a full disk fails here,
 * before any zero is written. Preallocation is best effort: when it fails
 * (full disk, a file size limit) the file is cut back, the writer appends as
 * before and the record write itself meets the error, handled as today; it
 * is tried again at the next segment.
 *
 * Replay (journal_replay.c) reads a run of zeros from a record boundary to
 * the end of the last segment as preallocated space, not a torn tail. An
 * orderly close, a clean stop and a rotation cut the segment back to its
 * records (and sync that), so a complete segment and one covered by the
 * clean-stop marker never end in zeros. */
#define _GNU_SOURCE /* fallocate */
#include "journal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define ZERO_BLOCK_BYTES 65536u

static const uint8_t zero_block[ZERO_BLOCK_BYTES];

void journal_prealloc_reset(struct journal *j)
{
	j->seg_alloc_end = 0;
	j->prealloc_failed = false;
	struct stat st;
	if (j->seg_fd >= 0 && fstat(j->seg_fd, &st) == 0)
		j->seg_alloc_end = (uint64_t)st.st_size;
}

/* Writes zeros over [from, to) with pwrite, so the append position (the
 * file offset) does not move. 0 or errno. */
static int zero_fill(int fd, uint64_t from, uint64_t to)
{
	while (from < to) {
		size_t len = to - from < ZERO_BLOCK_BYTES ? (size_t)(to - from) : ZERO_BLOCK_BYTES;
		ssize_t n = pwrite(fd, zero_block, len, (off_t)from);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		from += (uint64_t)n;
	}
	return 0;
}

void journal_prealloc_ensure(struct journal *j, uint64_t need)
{
	if (need <= j->seg_alloc_end || j->prealloc_failed || j->seg_fd < 0)
		return;
	uint64_t from = j->seg_alloc_end > j->seg_off ? j->seg_alloc_end : j->seg_off;
	/* Ahead by about what the segment holds, from 64 KiB up to
	 * JOURNAL_PREALLOC_BYTES: a small journal (a test, a quiet broker, a
	 * segment just after compaction) does not carry a megabyte of zeros. */
	uint64_t step = need < JOURNAL_PREALLOC_MIN_BYTES ? JOURNAL_PREALLOC_MIN_BYTES : need;
	if (step > JOURNAL_PREALLOC_BYTES)
		step = JOURNAL_PREALLOC_BYTES;
	uint64_t to = (need + step + JOURNAL_PREALLOC_MIN_BYTES - 1) / JOURNAL_PREALLOC_MIN_BYTES *
	              JOURNAL_PREALLOC_MIN_BYTES;
	int sys = 0;
	if (fallocate(j->seg_fd, 0, (off_t)from, (off_t)(to - from)) != 0 && errno != EOPNOTSUPP)
		sys = errno;
	if (sys == 0)
		sys = zero_fill(j->seg_fd, from, to);
	if (sys == 0 && fdatasync(j->seg_fd) != 0)
		sys = errno;
	if (sys != 0) {
		/* Cut back what was added; the record write meets the error
		 * itself if it is one (journal_writer.c). */
		if (ftruncate(j->seg_fd, (off_t)from) != 0)
			jm_warn("journal %s: cannot cut back a failed preallocation: %s", j->dir,
			        strerror(errno));
		j->prealloc_failed = true;
		jm_info("journal %s: cannot preallocate segment space (%s); appending without",
		        j->dir, strerror(sys));
		return;
	}
	j->seg_alloc_end = to;
}

int journal_prealloc_trim(struct journal *j)
{
	if (j->seg_fd < 0 || j->seg_alloc_end <= j->seg_off)
		return 0;
	if (ftruncate(j->seg_fd, (off_t)j->seg_off) != 0 || fdatasync(j->seg_fd) != 0)
		return errno;
	j->seg_alloc_end = j->seg_off;
	return 0;
}
