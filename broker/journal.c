/* The broker's journal: segments and snapshots on disk, one writer thread
 * that writes and syncs them with group commit (see journal.h for the API).
 *
 * This file opens and closes a journal, holds the data directory's LOCK,
 * and is the I/O seam (write and fdatasync through struct journal_io) the
 * other parts write through. The parts, behind journal_internal.h:
 *   journal_segment.c   the files and their byte layout, what makes a record
 *                       valid
 *   journal_replay.c    reading at start: a torn tail against damage
 *   journal_snapshot.c  compaction and its crash-safe order of steps
 *   journal_writer.c    group commit and its invariants
 *   journal_clean.c     the clean-stop marker, which tells a crash from
 *                       damage in the tail
 *
 * Invariant: a journal is opened by one process at a time (LOCK_EX on LOCK;
 * --check-journal takes LOCK_SH and never writes).
 */
#include "journal_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static ssize_t default_write(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len);
}

static int default_sync(int fd)
{
	return fdatasync(fd);
}

int journal_write_all(const struct journal_io *io, int fd, const uint8_t *buf, size_t len)
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

int journal_sync_fd(const struct journal_io *io, int fd)
{
	for (;;) {
		if (io->sync(fd) == 0)
			return 0;
		if (errno != EINTR)
			return errno ? errno : EIO;
	}
}

void journal_sync_dir(struct journal *j)
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
	j->mirror_snap_fd = -1;
	j->writable = true;
	j->write_code = JM_ENOSPC;
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

	pthread_mutex_init(&j->mu, NULL);
	jm_cond_init_monotonic(&j->writer_cv);
	jm_cond_init_monotonic(&j->state_cv);
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

/* Stops the writer once it has written what was appended (or given up),
 * then cuts the segment's preallocated zeros (journal_prealloc.c): 0, or
 * the errno of that cut. */
static int writer_stop(struct journal *j)
{
	pthread_mutex_lock(&j->mu);
	assert(!j->snapshot_active && "commit or abort the snapshot before closing");
	j->closing = true;
	pthread_cond_broadcast(&j->writer_cv);
	pthread_mutex_unlock(&j->mu);
	if (j->thread_started) {
		pthread_join(j->thread, NULL);
		j->thread_started = false;
	}
	return j->seg_tail_dirty ? 0 : journal_prealloc_trim(j);
}

int journal_stop(struct journal *j, struct jm_err *err)
{
	if (!j->started || j->stopped)
		return jm_err_set(err, JM_EINVAL, "journal %s: %s", j->dir,
		                  j->stopped ? "already stopped" : "never started");
	int trim = writer_stop(j);
	j->stopped = true;
	pthread_mutex_lock(&j->mu);
	uint64_t lost = j->last_lsn - j->durable_lsn;
	char why[JM_ERR_MSG_MAX];
	memcpy(why, j->write_err, sizeof why);
	pthread_mutex_unlock(&j->mu);
	if (lost > 0)
		return jm_err_set(err, JM_EIO,
		                  "journal %s: stopped without writing the last %" PRIu64
		                  " records: %s",
		                  j->dir, lost, why[0] ? why : "the writer gave up");
	if (j->unsynced || j->seg_tail_dirty)
		return jm_err_set(
		    err, JM_EIO,
		    "journal %s: the last fdatasync (or cutting a failed write) failed, "
		    "so records written since the one before may be lost if the "
		    "machine fails now; no clean-stop marker written",
		    j->dir);
	if (trim != 0)
		return jm_err_set(err, JM_EIO,
		                  "journal %s: cannot cut the segment's preallocated space: %s; no "
		                  "clean-stop marker written",
		                  j->dir, strerror(trim));
	return journal_clean_write(j, err);
}

void journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	writer_stop(j);
	journal_mirror_end(j);
	/* Only callbacks for lsns never appended can be left here. */
	journal_waiters_fire_all(j, JM_ECLOSED);
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
