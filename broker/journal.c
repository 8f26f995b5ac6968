/* The broker's journal: segments and snapshots on disk, one writer thread
 * that writes and syncs them with group commit (see journal.h for the API).
 *
 * FILES
 *
 * The data directory holds
 *   LOCK                        flock(2)ed while a journal is open: LOCK_EX
 *                               by a broker, LOCK_SH by --check-journal
 *   journal-<seq>.log           segments; <seq> is 16 decimal digits
 *   snapshot-<seq>.snap         complete snapshots
 *   snapshot-<seq>.tmp          a snapshot being written (never read; deleted
 *                               at the next open)
 * A snapshot with sequence S holds the live state as of the first byte of
 * segment S. Replay reads the newest complete snapshot S (if any), then
 * segments S, S+1, ... in order; without one, segments 1, 2, ... The
 * segments read must be consecutive.
 *
 * FILE HEADER (24 bytes, little-endian)
 *
 *   0   8  magic: "JMJOURN1" for a segment, "JMSNAPS1" for a snapshot
 *   8   4  format version (JOURNAL_VERSION, now 1)
 *  12   8  seq, the same number as in the file name
 *  20   4  CRC32C of bytes 0..19
 *
 * A reader refuses a version it does not know with JM_EVERSION
 * (header_check()). When the record layout changes, the version is bumped
 * and record_check(), the version 1 reader, stays beside the new one, as
 * beanstalkd keeps its old Walver readers. A segment is created by writing
 * and syncing its header before any record, so a last segment of at most
 * 24 bytes with a bad header is a torn creation: it is deleted and made
 * again.
 *
 * RECORD (version 1)
 *
 *   0   4  length word: bit 31 set marks a journal-internal (meta) record,
 *          bits 0..30 are the body length L, at most JOURNAL_MAX_BODY_BYTES
 *   4   4  CRC32C of bytes 0..3 followed by the L body bytes, so a damaged
 *          length fails the checksum as surely as a damaged body does
 *   8   L  body: opaque bytes of the broker (proto/record.h)
 *
 * A record is valid when all 8 + L bytes are in the file, L is in range and
 * the checksum matches. A run of zeros is never valid (the CRC of a zero
 * length word is not zero).
 *
 * Segments hold only body records. A snapshot holds body records followed
 * by exactly one meta record, the END marker, and then the end of the file:
 *
 *   meta body: u32 kind (1 = END), u64 body records before it,
 *              u64 sum of their body lengths
 *
 * A snapshot without a matching END marker at its very end is incomplete
 * (a crash while writing it or damage) and is ignored with a warning.
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
#include "journal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "crc32c.h"
#include "log.h"
#include "metrics.h"

#define JOURNAL_VERSION 1u
#define JOURNAL_HEADER_BYTES 24u
#define JOURNAL_FRAME_BYTES 8u
#define JOURNAL_MAX_BODY_BYTES (80u << 20)
#define JOURNAL_META_FLAG 0x80000000u
#define JOURNAL_META_END 1u
#define JOURNAL_META_END_BYTES 20u
#define JOURNAL_NAME_BYTES 64
#define JOURNAL_SEGMENT_MAGIC "JMJOURN1"
#define JOURNAL_SNAPSHOT_MAGIC "JMSNAPS1"
#define JOURNAL_SNAPSHOT_BUF_BYTES (1u << 20)
#define JOURNAL_BACKOFF_MIN_MS 100u
#define JOURNAL_BACKOFF_MAX_MS 2000u
#define JOURNAL_CLOSE_GIVE_UP_MS 3000u
#define JOURNAL_EVERYSEC_US 1000000u
#define JOURNAL_FIRE_BATCH 64
#define JOURNAL_KEEP_BUF_BYTES (16u << 20)

struct journal_mark {
	size_t offset; /* in the buffer: the rotation happens before this byte */
	uint64_t seq;  /* the segment that starts there */
};

struct journal_marks {
	struct journal_mark *items;
	size_t len;
	size_t cap;
};

struct journal_waiter {
	uint64_t lsn;
	journal_durable_cb cb;
	void *arg;
};

struct journal {
	char *dir;
	struct journal_options opts;
	struct journal_io io;
	int dir_fd;
	int lock_fd;
	bool replayed;

	/* Set by replay, then owned by the writer once started. */
	int seg_fd;
	uint64_t seg_seq;        /* segment appended to */
	bool seg_exists;         /* seg_seq is on disk (else start creates it) */
	uint64_t seg_off;        /* where the next write goes */
	uint64_t seg_commit_off; /* end of the committed prefix */
	bool seg_tail_dirty;     /* bytes past seg_commit_off may remain */

	/* Writer-owned. */
	struct jm_buf inflight;
	struct journal_marks inflight_marks;
	size_t inflight_mark_next;
	size_t commit_pos; /* committed prefix of inflight */
	bool unsynced;     /* EVERYSEC, OFF: written but not fdatasync'd */
	uint64_t last_sync_us;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t mu;
	pthread_cond_t writer_cv; /* work for the writer, or closing */
	pthread_cond_t state_cv;  /* rotation done, writes failing, writer done */

	/* Under mu. */
	bool started;
	bool closing;
	bool writer_done;
	bool writable;
	char write_err[JM_ERR_MSG_MAX];
	struct jm_buf pending;
	struct journal_marks pending_marks;
	uint64_t last_lsn;
	uint64_t durable_lsn;
	uint64_t newest_seq;  /* the segment the last rotation asked for */
	uint64_t rotated_seq; /* the segment the writer writes now */
	bool snapshot_active;
	uint64_t snap_seq;
	uint64_t snap_bytes;
	uint64_t appended_bytes;        /* framed bytes since the replayed snapshot */
	uint64_t log_base_bytes;        /* appended_bytes at the current snapshot */
	struct journal_waiter *waiters; /* sorted by lsn from waiters_head */
	size_t waiters_head;
	size_t waiters_len;
	size_t waiters_cap;
};

struct journal_snapshot {
	struct journal *j;
	uint64_t seq;
	int fd;
	char tmp_name[JOURNAL_NAME_BYTES];
	uint8_t *buf;
	size_t buf_len;
	uint64_t file_bytes; /* written to the file so far */
	uint64_t records;
	uint64_t body_bytes;
	uint64_t rotate_at_bytes;
	int failed; /* the first error, sticky */
};

/* --- small helpers ------------------------------------------------------ */

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void segment_name(char *out, uint64_t seq)
{
	snprintf(out, JOURNAL_NAME_BYTES, "journal-%016" PRIu64 ".log", seq);
}

static void snapshot_name(char *out, uint64_t seq, bool tmp)
{
	snprintf(out, JOURNAL_NAME_BYTES, "snapshot-%016" PRIu64 ".%s", seq, tmp ? "tmp" : "snap");
}

/* Parses "<prefix><16 digits><suffix>"; true with *seq set on a match. */
static bool name_parse(const char *name, const char *prefix, const char *suffix, uint64_t *seq)
{
	size_t prefix_len = strlen(prefix);
	size_t suffix_len = strlen(suffix);
	if (strlen(name) != prefix_len + 16 + suffix_len)
		return false;
	if (memcmp(name, prefix, prefix_len) != 0 || strcmp(name + prefix_len + 16, suffix) != 0)
		return false;
	uint64_t value = 0;
	for (size_t i = 0; i < 16; i++) {
		char c = name[prefix_len + i];
		if (c < '0' || c > '9')
			return false;
		value = value * 10 + (uint64_t)(c - '0');
	}
	*seq = value;
	return value > 0;
}

static void frame_header(uint8_t hdr[JOURNAL_FRAME_BYTES], uint32_t length_word, const void *body,
                         size_t len)
{
	put_le32(hdr, length_word);
	put_le32(hdr + 4, crc32c_extend(crc32c(hdr, 4), body, len));
}

static void file_header(uint8_t hdr[JOURNAL_HEADER_BYTES], const char *magic, uint64_t seq)
{
	memcpy(hdr, magic, 8);
	put_le32(hdr + 8, JOURNAL_VERSION);
	put_le64(hdr + 12, seq);
	put_le32(hdr + 20, crc32c(hdr, 20));
}

static void timespec_after_us(struct timespec *ts, uint64_t delay_us)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	uint64_t nsec = (uint64_t)ts->tv_nsec + (delay_us % 1000000u) * 1000u;
	ts->tv_sec += (time_t)(delay_us / 1000000u + nsec / 1000000000u);
	ts->tv_nsec = (long)(nsec % 1000000000u);
}

static ssize_t default_write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}

static int default_sync(int fd)
{
	return fdatasync(fd);
}

/* Writes all len bytes through the seam, resuming short writes and EINTR.
 * 0, or a positive errno (some bytes may have been written then). */
static int write_all(const struct journal_io *io, int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t done = io->write(fd, buf, len);
		if (done < 0) {
			if (errno == EINTR)
				continue;
			return errno ? errno : EIO;
		}
		if (done == 0)
			return EIO;
		buf += done;
		len -= (size_t)done;
	}
	return 0;
}

static int sync_fd(const struct journal_io *io, int fd)
{
	for (;;) {
		if (io->sync(fd) == 0)
			return 0;
		if (errno != EINTR)
			return errno ? errno : EIO;
	}
}

static void sync_dir(struct journal *j)
{
	if (fsync(j->dir_fd) != 0)
		jm_warn("journal %s: fsync of the directory failed: %s", j->dir, strerror(errno));
}

/* mkdir -p: 0 or a positive errno. */
static int mkdir_parents(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof buf)
		return ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return errno;
		buf[i] = saved;
	}
	struct stat st;
	if (stat(path, &st) != 0)
		return errno;
	return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

/* --- fsync policy names ------------------------------------------------- */

static const char *const fsync_names[] = {
    [JOURNAL_FSYNC_ALWAYS] = "always",
    [JOURNAL_FSYNC_BATCH] = "batch",
    [JOURNAL_FSYNC_EVERYSEC] = "everysec",
    [JOURNAL_FSYNC_OFF] = "off",
};

int journal_fsync_parse(const char *text, enum journal_fsync *out)
{
	for (int i = JOURNAL_FSYNC_ALWAYS; i <= JOURNAL_FSYNC_OFF; i++) {
		if (text != NULL && strcmp(text, fsync_names[i]) == 0) {
			*out = (enum journal_fsync)i;
			return 0;
		}
	}
	return JM_EINVAL;
}

const char *journal_fsync_name(enum journal_fsync policy)
{
	if ((int)policy < JOURNAL_FSYNC_ALWAYS || policy > JOURNAL_FSYNC_OFF)
		return "unknown";
	return fsync_names[policy];
}

/* --- open and close ----------------------------------------------------- */

static int lock_dir(struct journal *j, struct jm_err *err)
{
	int flags = O_CLOEXEC | (j->opts.read_only ? O_RDONLY : O_RDWR | O_CREAT);
	j->lock_fd = openat(j->dir_fd, "LOCK", flags, 0644);
	if (j->lock_fd < 0) {
		if (j->opts.read_only && errno == ENOENT)
			return 0; /* never opened by a broker: nothing to exclude */
		return jm_err_set(err, JM_EIO, "data dir %s: cannot open lock file %s/LOCK: %s",
		                  j->dir, j->dir, strerror(errno));
	}
	if (flock(j->lock_fd, (j->opts.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			return jm_err_set(err, JM_EIO,
			                  "data dir %s is in use by another jobmesh-broker (lock "
			                  "file %s/LOCK)",
			                  j->dir, j->dir);
		return jm_err_set(err, JM_EIO, "data dir %s: cannot lock %s/LOCK: %s", j->dir,
		                  j->dir, strerror(errno));
	}
	if (!j->opts.read_only) {
		char text[32];
		int len = snprintf(text, sizeof text, "%d\n", (int)getpid());
		if (ftruncate(j->lock_fd, 0) == 0 && pwrite(j->lock_fd, text, (size_t)len, 0) < 0)
			jm_debug("journal %s: cannot write pid to LOCK: %s", j->dir,
			         strerror(errno));
	}
	return 0;
}

int journal_open(struct journal **out, const struct journal_options *opts, struct jm_err *err)
{
	*out = NULL;
	if (opts == NULL || opts->dir == NULL || opts->dir[0] == '\0')
		return jm_err_set(err, JM_EINVAL, "journal: no data dir given");
	if ((int)opts->fsync < JOURNAL_FSYNC_ALWAYS || opts->fsync > JOURNAL_FSYNC_OFF)
		return jm_err_set(err, JM_EINVAL, "journal: unknown fsync policy %d",
		                  (int)opts->fsync);
	if (opts->read_only && opts->repair)
		return jm_err_set(err, JM_EINVAL,
		                  "journal %s: repair needs write access: open without read_only",
		                  opts->dir);
	struct journal *j = calloc(1, sizeof *j);
	if (j == NULL)
		return jm_err_set(err, JM_ENOMEM, "journal: out of memory");
	j->dir = strdup(opts->dir);
	if (j->dir == NULL) {
		free(j);
		return jm_err_set(err, JM_ENOMEM, "journal: out of memory");
	}
	j->opts = *opts;
	j->opts.dir = j->dir;
	j->io.write = opts->io && opts->io->write ? opts->io->write : default_write;
	j->io.sync = opts->io && opts->io->sync ? opts->io->sync : default_sync;
	j->dir_fd = -1;
	j->lock_fd = -1;
	j->seg_fd = -1;
	j->writable = true;
	jm_buf_init(&j->pending);
	jm_buf_init(&j->inflight);

	int rc;
	if (!opts->read_only) {
		int sys = mkdir_parents(j->dir);
		if (sys != 0) {
			rc = jm_err_set(err, JM_EIO, "data dir %s: cannot create it: %s", j->dir,
			                strerror(sys));
			goto fail_free_journal;
		}
	}
	j->dir_fd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dir_fd < 0) {
		rc = jm_err_set(err, errno == ENOENT ? JM_ENOTFOUND : JM_EIO,
		                "data dir %s: cannot open it: %s", j->dir, strerror(errno));
		goto fail_free_journal;
	}
	rc = lock_dir(j, err);
	if (rc != 0)
		goto fail_free_journal;

	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->writer_cv, &attr);
	pthread_cond_init(&j->state_cv, &attr);
	pthread_condattr_destroy(&attr);
	*out = j;
	return 0;

fail_free_journal:
	if (j->lock_fd >= 0)
		close(j->lock_fd);
	if (j->dir_fd >= 0)
		close(j->dir_fd);
	free(j->dir);
	free(j);
	return rc;
}

static void waiters_fire_all(struct journal *j, int status);

void journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mu);
	assert(!j->snapshot_active && "commit or abort the snapshot before journal_close");
	j->closing = true;
	pthread_cond_broadcast(&j->writer_cv);
	pthread_mutex_unlock(&j->mu);
	if (j->thread_started)
		pthread_join(j->thread, NULL);
	/* Only callbacks for lsns never appended can be left here. */
	waiters_fire_all(j, JM_ECLOSED);
	if (j->seg_fd >= 0)
		close(j->seg_fd);
	if (j->lock_fd >= 0)
		close(j->lock_fd);
	if (j->dir_fd >= 0)
		close(j->dir_fd);
	pthread_cond_destroy(&j->writer_cv);
	pthread_cond_destroy(&j->state_cv);
	pthread_mutex_destroy(&j->mu);
	jm_buf_fini(&j->pending);
	jm_buf_fini(&j->inflight);
	free(j->pending_marks.items);
	free(j->inflight_marks.items);
	free(j->waiters);
	free(j->dir);
	free(j);
}

/* --- replay ------------------------------------------------------------- */

struct journal_file {
	char name[JOURNAL_NAME_BYTES];
	int fd;
	const uint8_t *map;
	uint64_t size;
};

static int file_map(struct journal *j, const char *name, struct journal_file *f, struct jm_err *err)
{
	memset(f, 0, sizeof *f);
	snprintf(f->name, sizeof f->name, "%s", name);
	f->fd = openat(j->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return jm_err_set(err, JM_EIO, "journal %s/%s: cannot open: %s", j->dir, name,
		                  strerror(errno));
	struct stat st;
	if (fstat(f->fd, &st) != 0) {
		int sys = errno;
		close(f->fd);
		return jm_err_set(err, JM_EIO, "journal %s/%s: cannot stat: %s", j->dir, name,
		                  strerror(sys));
	}
	f->size = (uint64_t)st.st_size;
	if (f->size == 0)
		return 0;
	void *map = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, f->fd, 0);
	if (map == MAP_FAILED) {
		int sys = errno;
		close(f->fd);
		return jm_err_set(err, JM_EIO, "journal %s/%s: cannot map: %s", j->dir, name,
		                  strerror(sys));
	}
	f->map = map;
	return 0;
}

static void file_unmap(struct journal_file *f)
{
	if (f->map != NULL)
		munmap((void *)f->map, (size_t)f->size);
	if (f->fd >= 0)
		close(f->fd);
	f->map = NULL;
	f->fd = -1;
}

/* Checks the file header: 0, or a short reason in *why with JM_ECORRUPT or
 * JM_EVERSION. */
static int header_check(const struct journal_file *f, const char *magic, uint64_t seq,
                        const char **why)
{
	if (f->size < JOURNAL_HEADER_BYTES) {
		*why = "file header is cut short";
		return JM_ECORRUPT;
	}
	if (memcmp(f->map, magic, 8) != 0) {
		*why = "bad magic in file header";
		return JM_ECORRUPT;
	}
	if (get_le32(f->map + 20) != crc32c(f->map, 20)) {
		*why = "file header checksum mismatch";
		return JM_ECORRUPT;
	}
	if (get_le32(f->map + 8) != JOURNAL_VERSION) {
		*why = "format version not known to this jobmesh (written by a newer one?)";
		return JM_EVERSION;
	}
	if (get_le64(f->map + 12) != seq) {
		*why = "sequence number in the header does not match the file name";
		return JM_ECORRUPT;
	}
	return 0;
}

struct journal_record {
	const uint8_t *body;
	uint32_t len;
	bool meta;
};

/* Checks the record at off: 0 with *rec filled, or JM_ECORRUPT with *why. */
static int record_check(const struct journal_file *f, uint64_t off, struct journal_record *rec,
                        const char **why)
{
	uint64_t remaining = f->size - off;
	if (remaining < JOURNAL_FRAME_BYTES) {
		*why = "record header cut short";
		return JM_ECORRUPT;
	}
	const uint8_t *p = f->map + off;
	uint32_t word = get_le32(p);
	uint32_t len = word & ~JOURNAL_META_FLAG;
	if (len > JOURNAL_MAX_BODY_BYTES) {
		*why = "record length over the maximum";
		return JM_ECORRUPT;
	}
	if (JOURNAL_FRAME_BYTES + (uint64_t)len > remaining) {
		*why = "record body cut short";
		return JM_ECORRUPT;
	}
	if (get_le32(p + 4) != crc32c_extend(crc32c(p, 4), p + JOURNAL_FRAME_BYTES, len)) {
		*why = "checksum mismatch";
		return JM_ECORRUPT;
	}
	rec->body = p + JOURNAL_FRAME_BYTES;
	rec->len = len;
	rec->meta = (word & JOURNAL_META_FLAG) != 0;
	return 0;
}

/* True when a valid record starts at some byte in [from, size). */
static bool valid_record_follows(const struct journal_file *f, uint64_t from)
{
	struct journal_record rec;
	const char *why;
	for (uint64_t off = from; off + JOURNAL_FRAME_BYTES <= f->size; off++)
		if (record_check(f, off, &rec, &why) == 0)
			return true;
	return false;
}

/* Verifies that a snapshot is complete: 0, or nonzero with *why. */
static int snapshot_verify(const struct journal_file *f, uint64_t seq, const char **why)
{
	int rc = header_check(f, JOURNAL_SNAPSHOT_MAGIC, seq, why);
	if (rc != 0)
		return rc;
	uint64_t off = JOURNAL_HEADER_BYTES;
	uint64_t records = 0;
	uint64_t body_bytes = 0;
	while (off < f->size) {
		struct journal_record rec;
		rc = record_check(f, off, &rec, why);
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

struct journal_dir_list {
	uint64_t *segments;
	size_t segments_len;
	uint64_t *snapshots;
	size_t snapshots_len;
};

static int u64_compare(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int u64_push(uint64_t **items, size_t *len, uint64_t value)
{
	if ((*len & (*len - 1)) == 0) { /* 0, 1, 2, 4, ...: grow to twice */
		uint64_t *grown = realloc(*items, (*len ? *len * 2 : 4) * sizeof **items);
		if (grown == NULL)
			return JM_ENOMEM;
		*items = grown;
	}
	(*items)[(*len)++] = value;
	return 0;
}

/* Lists segments and snapshots, sorted; deletes *.tmp unless read_only. */
static int dir_list(struct journal *j, struct journal_dir_list *list, struct jm_err *err)
{
	memset(list, 0, sizeof *list);
	int fd = dup(j->dir_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		int sys = errno;
		if (fd >= 0)
			close(fd);
		return jm_err_set(err, JM_EIO, "data dir %s: cannot list: %s", j->dir,
		                  strerror(sys));
	}
	rewinddir(d);
	int rc = 0;
	struct dirent *ent;
	while (rc == 0 && (ent = readdir(d)) != NULL) {
		uint64_t seq;
		if (name_parse(ent->d_name, "journal-", ".log", &seq)) {
			rc = u64_push(&list->segments, &list->segments_len, seq);
		} else if (name_parse(ent->d_name, "snapshot-", ".snap", &seq)) {
			rc = u64_push(&list->snapshots, &list->snapshots_len, seq);
		} else if (name_parse(ent->d_name, "snapshot-", ".tmp", &seq) &&
		           !j->opts.read_only) {
			jm_info("journal %s: deleting unfinished snapshot %s", j->dir, ent->d_name);
			unlinkat(j->dir_fd, ent->d_name, 0);
		}
	}
	closedir(d);
	if (rc != 0) {
		free(list->segments);
		free(list->snapshots);
		return jm_err_set(err, rc, "data dir %s: out of memory listing it", j->dir);
	}
	if (list->segments_len > 1)
		qsort(list->segments, list->segments_len, sizeof *list->segments, u64_compare);
	if (list->snapshots_len > 1)
		qsort(list->snapshots, list->snapshots_len, sizeof *list->snapshots, u64_compare);
	return 0;
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

/* Deletes segments with seq > after, logging each; for repair. */
static void drop_segments_after(struct journal *j, const struct journal_dir_list *list,
                                uint64_t after)
{
	for (size_t i = 0; i < list->segments_len; i++) {
		if (list->segments[i] <= after)
			continue;
		char name[JOURNAL_NAME_BYTES];
		segment_name(name, list->segments[i]);
		struct stat st;
		long long size = fstatat(j->dir_fd, name, &st, 0) == 0 ? (long long)st.st_size : -1;
		if (unlinkat(j->dir_fd, name, 0) == 0)
			jm_warn("journal %s: repair dropped segment %s (%lld bytes)", j->dir, name,
			        size);
		else
			jm_error("journal %s: repair could not delete %s: %s", j->dir, name,
			         strerror(errno));
	}
	sync_dir(j);
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
	segment_name(name, seq);
	struct journal_file f;
	int rc = file_map(j, name, &f, err);
	if (rc != 0)
		return rc;
	*end = SEGMENT_END_CLEAN;
	j->seg_seq = seq;
	j->seg_exists = true;

	const char *why = NULL;
	rc = header_check(&f, JOURNAL_SEGMENT_MAGIC, seq, &why);
	if (rc == JM_EVERSION) {
		rc = jm_err_set(err, rc, "journal %s/%s: %s", j->dir, name, why);
		goto done_unmap;
	}
	if (rc != 0) {
		if (last && f.size <= JOURNAL_HEADER_BYTES) {
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
				sync_dir(j);
			}
			j->seg_exists = false;
			rc = 0;
			goto done_unmap;
		}
		if (j->opts.repair) {
			jm_warn("journal %s: repair: %s: %s; dropping it and all later segments",
			        j->dir, name, why);
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
	while (off < f.size) {
		struct journal_record rec;
		rc = record_check(&f, off, &rec, &why);
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

	uint64_t cut = f.size - off;
	if (last && !valid_record_follows(&f, off + 1)) {
		jm_warn("journal %s: torn tail in %s at byte %" PRIu64 " (%s): %s %" PRIu64
		        " bytes",
		        j->dir, name, off, why, j->opts.read_only ? "would cut" : "cutting", cut);
		stats->torn_tail_offset = off;
		stats->torn_tail_bytes = cut;
		snprintf(stats->torn_tail_file, sizeof stats->torn_tail_file, "%s", name);
		rc = j->opts.read_only ? 0 : truncate_at(j, name, off, err);
		goto done_unmap;
	}
	if (j->opts.repair) {
		jm_warn("journal %s: repair: %s: byte %" PRIu64 ": %s; cutting the %" PRIu64
		        " bytes from there and dropping later segments",
		        j->dir, name, off, why, cut);
		rc = truncate_at(j, name, off, err);
		if (rc == 0)
			drop_segments_after(j, list, seq);
		*end = SEGMENT_END_STOP;
		goto done_unmap;
	}
	rc = damage_error(j, err, JM_ECORRUPT, name, off, why, cut);

done_unmap:
	file_unmap(&f);
	return rc;
}

/* Picks the newest complete snapshot (0 if none) and applies it. */
static int replay_snapshot(struct journal *j, const struct journal_dir_list *list,
                           journal_apply_fn apply, void *arg, struct journal_replay_stats *stats,
                           uint64_t *chosen, struct jm_err *err)
{
	*chosen = 0;
	for (size_t i = list->snapshots_len; i-- > 0;) {
		uint64_t seq = list->snapshots[i];
		char name[JOURNAL_NAME_BYTES];
		snapshot_name(name, seq, false);
		struct journal_file f;
		int rc = file_map(j, name, &f, err);
		if (rc != 0)
			return rc;
		const char *why = NULL;
		if (snapshot_verify(&f, seq, &why) != 0) {
			jm_warn("journal %s: ignoring snapshot %s: %s", j->dir, name, why);
			file_unmap(&f);
			continue;
		}
		uint64_t off = JOURNAL_HEADER_BYTES;
		while (off < f.size) {
			struct journal_record rec;
			rc = record_check(&f, off, &rec, &why);
			assert(rc == 0); /* verified above; the file is locked */
			if (rec.meta)
				break;
			if (apply != NULL) {
				rc = apply(arg, rec.body, rec.len, name, off, err);
				if (rc != 0) {
					file_unmap(&f);
					return rc;
				}
			}
			stats->records++;
			stats->bytes += JOURNAL_FRAME_BYTES + rec.len;
			off += JOURNAL_FRAME_BYTES + rec.len;
		}
		j->snap_bytes = f.size;
		file_unmap(&f);
		*chosen = seq;
		return 0;
	}
	return 0;
}

/* Deletes files a crashed compaction left behind: segments and snapshots
 * older than the snapshot replay starts from. */
static void delete_replaced(struct journal *j, const struct journal_dir_list *list, uint64_t seq)
{
	bool deleted = false;
	char name[JOURNAL_NAME_BYTES];
	for (size_t i = 0; i < list->segments_len && list->segments[i] < seq; i++) {
		segment_name(name, list->segments[i]);
		deleted |= unlinkat(j->dir_fd, name, 0) == 0;
	}
	for (size_t i = 0; i < list->snapshots_len && list->snapshots[i] < seq; i++) {
		snapshot_name(name, list->snapshots[i], false);
		deleted |= unlinkat(j->dir_fd, name, 0) == 0;
	}
	if (deleted)
		sync_dir(j);
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
	struct journal_dir_list list;
	int rc = dir_list(j, &list, err);
	if (rc != 0)
		return rc;
	uint64_t snap_seq = 0;
	rc = replay_snapshot(j, &list, apply, arg, stats, &snap_seq, err);
	if (rc != 0)
		goto done_free_list;
	uint64_t snapshot_record_bytes = stats->bytes;

	/* The segments to read: from snap_seq on, consecutive. */
	size_t first = 0;
	while (first < list.segments_len && list.segments[first] < snap_seq)
		first++;
	if (first > 0 && !j->opts.read_only)
		delete_replaced(j, &list, snap_seq);
	struct journal_dir_list used = list;
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
			segment_name(name, seq);
			segment_name(want, expect);
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

/* --- waiters ------------------------------------------------------------ */

/* Under mu. 0 or JM_ENOMEM. Keeps the array sorted by lsn, stable. */
static int waiters_insert(struct journal *j, uint64_t lsn, journal_durable_cb cb, void *arg)
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
	while (pos > j->waiters_head && j->waiters[pos - 1].lsn > lsn)
		pos--;
	memmove(j->waiters + pos + 1, j->waiters + pos,
	        (j->waiters_len - pos) * sizeof *j->waiters);
	j->waiters[pos] = (struct journal_waiter){.lsn = lsn, .cb = cb, .arg = arg};
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

static void waiters_fire_all(struct journal *j, int status)
{
	waiters_fire(j, UINT64_MAX, status);
}

/* Writer: publishes durable_lsn and runs the callbacks it releases. */
static void publish_durable(struct journal *j, uint64_t lsn)
{
	pthread_mutex_lock(&j->mu);
	j->durable_lsn = lsn;
	pthread_mutex_unlock(&j->mu);
	waiters_fire(j, lsn, 0);
}

void journal_when_durable(struct journal *j, uint64_t lsn, journal_durable_cb cb, void *arg)
{
	pthread_mutex_lock(&j->mu);
	int status;
	if (lsn <= j->durable_lsn) {
		status = 0;
	} else if (j->writer_done || (!j->started && j->closing)) {
		status = JM_ECLOSED;
	} else {
		status = waiters_insert(j, lsn, cb, arg);
		if (status == 0) {
			pthread_mutex_unlock(&j->mu);
			return;
		}
	}
	pthread_mutex_unlock(&j->mu);
	cb(arg, status);
}

uint64_t journal_durable_lsn(struct journal *j)
{
	pthread_mutex_lock(&j->mu);
	uint64_t lsn = j->durable_lsn;
	pthread_mutex_unlock(&j->mu);
	return lsn;
}

/* --- the writer --------------------------------------------------------- */

/* Opens segment seq for appending at its end, creating it (header written
 * and synced, directory synced) when create. 0 or a positive errno. */
static int segment_open(struct journal *j, uint64_t seq, bool create, uint64_t off, int *fd_out)
{
	char name[JOURNAL_NAME_BYTES];
	segment_name(name, seq);
	if (!create) {
		int fd = openat(j->dir_fd, name, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return errno;
		if (lseek(fd, (off_t)off, SEEK_SET) < 0) {
			int sys = errno;
			close(fd);
			return sys;
		}
		*fd_out = fd;
		return 0;
	}
	int fd = openat(j->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	uint8_t hdr[JOURNAL_HEADER_BYTES];
	file_header(hdr, JOURNAL_SEGMENT_MAGIC, seq);
	int sys = write_all(&j->io, fd, hdr, sizeof hdr);
	if (sys == 0)
		sys = sync_fd(&j->io, fd);
	if (sys != 0) {
		close(fd);
		unlinkat(j->dir_fd, name, 0);
		return sys;
	}
	sync_dir(j);
	*fd_out = fd;
	return 0;
}

/* Writer: records a failure, cuts the segment back to its committed end.
 * Returns -1 (the drain's failure value). */
static int writer_fail(struct journal *j, const char *what, uint64_t seq, uint64_t at, int sys)
{
	char name[JOURNAL_NAME_BYTES];
	segment_name(name, seq);
	const char *until = sys == ENOSPC || sys == EDQUOT ? "space returns"
	                    : sys == EFBIG                 ? "the file size limit allows more"
	                                                   : "the disk accepts writes again";
	char msg[JM_ERR_MSG_MAX];
	snprintf(msg, sizeof msg,
	         "journal %s: %s failed at byte %" PRIu64 ": %s; new writes are refused until %s",
	         name, what, at, strerror(sys), until);
	if (j->seg_fd >= 0 && seq == j->seg_seq) {
		j->seg_tail_dirty = true;
		if (ftruncate(j->seg_fd, (off_t)j->seg_commit_off) == 0 &&
		    lseek(j->seg_fd, (off_t)j->seg_commit_off, SEEK_SET) >= 0)
			j->seg_tail_dirty = false;
		j->seg_off = j->seg_commit_off;
	}
	pthread_mutex_lock(&j->mu);
	bool was_writable = j->writable;
	j->writable = false;
	memcpy(j->write_err, msg, sizeof msg);
	pthread_cond_broadcast(&j->state_cv);
	pthread_mutex_unlock(&j->mu);
	if (was_writable)
		jm_error("%s", msg);
	return -1;
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
	}
	const uint8_t *data = j->inflight.data;
	enum journal_fsync policy = j->opts.fsync;
	while (j->commit_pos < end) {
		size_t len = end - j->commit_pos;
		if (policy == JOURNAL_FSYNC_ALWAYS)
			len = JOURNAL_FRAME_BYTES +
			      (get_le32(data + j->commit_pos) & ~JOURNAL_META_FLAG);
		uint64_t at = j->seg_off;
		int sys = write_all(&j->io, j->seg_fd, data + j->commit_pos, len);
		if (sys != 0)
			return writer_fail(j, "write", j->seg_seq, at, sys);
		j->seg_off += len;
		bool synced = policy == JOURNAL_FSYNC_ALWAYS || policy == JOURNAL_FSYNC_BATCH;
		uint64_t sync_start_us = jm_mono_us();
		if (synced) {
			sys = sync_fd(&j->io, j->seg_fd);
			if (sys != 0)
				return writer_fail(j, "sync", j->seg_seq, at, sys);
			j->last_sync_us = jm_mono_us();
		} else {
			j->unsynced = true;
		}
		size_t records = records_in(data + j->commit_pos, len);
		if (synced)
			metrics_journal_synced(j->last_sync_us - sync_start_us, records);
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
	int sys = sync_fd(&j->io, j->seg_fd);
	j->last_sync_us = jm_mono_us();
	if (sys != 0) {
		char name[JOURNAL_NAME_BYTES];
		segment_name(name, j->seg_seq);
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
	int fd = -1;
	int sys = segment_open(j, seq, true, 0, &fd);
	if (sys != 0)
		return writer_fail(j, "creating the segment", seq, 0, sys);
	close(j->seg_fd);
	j->seg_fd = fd;
	j->seg_seq = seq;
	j->seg_off = j->seg_commit_off = JOURNAL_HEADER_BYTES;
	j->unsynced = false;
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

static void *writer_main(void *arg)
{
	struct journal *j = arg;
	uint64_t backoff_ms = 0;
	uint64_t give_up_us = 0;
	bool gave_up = false;
	pthread_mutex_lock(&j->mu);
	for (;;) {
		if (j->commit_pos == j->inflight.len &&
		    j->inflight_mark_next == j->inflight_marks.len) {
			if (j->pending.len > 0 || j->pending_marks.len > 0) {
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
			} else if (j->closing) {
				break;
			} else if (j->opts.fsync == JOURNAL_FSYNC_EVERYSEC && j->unsynced) {
				uint64_t due = j->last_sync_us + JOURNAL_EVERYSEC_US;
				uint64_t now = jm_mono_us();
				if (now >= due) {
					pthread_mutex_unlock(&j->mu);
					writer_background_sync(j);
					pthread_mutex_lock(&j->mu);
				} else {
					struct timespec ts;
					timespec_after_us(&ts, due - now);
					pthread_cond_timedwait(&j->writer_cv, &j->mu, &ts);
				}
				continue;
			} else {
				pthread_cond_wait(&j->writer_cv, &j->mu);
				continue;
			}
		}
		pthread_mutex_unlock(&j->mu);
		int rc = writer_drain(j);
		pthread_mutex_lock(&j->mu);
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
		struct timespec ts;
		timespec_after_us(&ts, backoff_ms * 1000u);
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
	waiters_fire_all(j, JM_ECLOSED);
	return NULL;
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
	char name[JOURNAL_NAME_BYTES];
	segment_name(name, j->seg_seq);
	int sys = segment_open(j, j->seg_seq, !j->seg_exists, j->seg_off, &j->seg_fd);
	if (sys != 0)
		return jm_err_set(err, sys == ENOSPC ? JM_ENOSPC : JM_EIO,
		                  "journal %s/%s: cannot open for appending: %s", j->dir, name,
		                  strerror(sys));
	j->seg_exists = true;
	j->last_sync_us = jm_mono_us();
	pthread_mutex_lock(&j->mu);
	j->newest_seq = j->rotated_seq = j->seg_seq;
	j->started = true;
	pthread_mutex_unlock(&j->mu);
	int rc = pthread_create(&j->thread, NULL, writer_main, j);
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

/* --- appending ---------------------------------------------------------- */

int journal_append(struct journal *j, const void *body, size_t len, uint64_t *lsn,
                   struct jm_err *err)
{
	if (len > JOURNAL_MAX_BODY_BYTES)
		return jm_err_set(err, JM_ETOOBIG,
		                  "journal record of %zu bytes is over the limit of %u bytes", len,
		                  JOURNAL_MAX_BODY_BYTES);
	uint8_t hdr[JOURNAL_FRAME_BYTES];
	frame_header(hdr, (uint32_t)len, body, len);
	pthread_mutex_lock(&j->mu);
	int rc = 0;
	if (!j->started || j->closing) {
		rc = jm_err_set(err, JM_ECLOSED, "journal %s: %s", j->dir,
		                j->closing ? "closing: no more appends" : "not started");
	} else if (!j->writable) {
		rc = jm_err_set(err, JM_ENOSPC, "%s", j->write_err);
	} else if (jm_buf_reserve(&j->pending, sizeof hdr + len) != 0) {
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
	if (was_empty)
		pthread_cond_signal(&j->writer_cv);
	pthread_mutex_unlock(&j->mu);
	return 0;
}

bool journal_is_writable(struct journal *j, struct jm_err *err)
{
	pthread_mutex_lock(&j->mu);
	bool writable = j->writable;
	if (!writable)
		jm_err_set(err, JM_ENOSPC, "%s", j->write_err);
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

/* --- compaction --------------------------------------------------------- */

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
	snapshot_name(snap->tmp_name, seq, true);
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
		file_header(hdr, JOURNAL_SNAPSHOT_MAGIC, snap->seq);
		int sys = write_all(&j->io, snap->fd, hdr, sizeof hdr);
		if (sys != 0)
			return snapshot_fail(snap, "write", sys, err);
		snap->file_bytes = sizeof hdr;
	}
	int sys = write_all(&j->io, snap->fd, data, len);
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
	frame_header(hdr, length_word, body, len);
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
	if (dir_list(j, &list, &err) != 0) {
		jm_warn("%s; old segments stay until the next compaction", err.msg);
		return;
	}
	delete_replaced(j, &list, seq);
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
		int sys = sync_fd(&j->io, snap->fd);
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
	snapshot_name(name, snap->seq, false);
	if (renameat(j->dir_fd, snap->tmp_name, j->dir_fd, name) != 0) {
		rc = jm_err_set(err, JM_EIO, "journal %s: cannot rename %s to %s: %s", j->dir,
		                snap->tmp_name, name, strerror(errno));
		goto fail_remove_tmp;
	}
	sync_dir(j);
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
