/* The journal's files: their names, their byte layout, framing a record
 * and deciding whether the bytes at an offset are one, listing the data
 * directory, and opening a segment for appending. Everything here is
 * stateless over the files; which record is a torn tail and which is damage
 * is replay's call (journal_replay.c).
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
 *   CLEAN                       the clean-stop marker: where the journal ended
 *                               when the broker last stopped cleanly
 *                               (journal_clean.c); absent while it runs
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
 * (journal_header_check()). When the record layout changes, the version is bumped
 * and journal_record_check(), the version 1 reader, stays beside the new one, as
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
 */
#include "journal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"

void journal_segment_name(char *out, uint64_t seq)
{
	snprintf(out, JOURNAL_NAME_BYTES, "journal-%016" PRIu64 ".log", seq);
}

void journal_snapshot_name(char *out, uint64_t seq, bool tmp)
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

void journal_frame_header(uint8_t hdr[JOURNAL_FRAME_BYTES], uint32_t length_word, const void *body,
                          size_t len)
{
	put_le32(hdr, length_word);
	put_le32(hdr + 4, crc32c_extend(crc32c(hdr, 4), body, len));
}

void journal_file_header(uint8_t hdr[JOURNAL_HEADER_BYTES], const char *magic, uint64_t seq)
{
	memcpy(hdr, magic, 8);
	put_le32(hdr + 8, JOURNAL_VERSION);
	put_le64(hdr + 12, seq);
	put_le32(hdr + 20, crc32c(hdr, 20));
}

int journal_file_map(struct journal *j, const char *name, struct journal_file *f,
                     struct jm_err *err)
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

void journal_file_drop_behind(const struct journal_file *f, uint64_t off, uint64_t *dropped)
{
	if (f->map == NULL || off < *dropped + JOURNAL_DROP_BEHIND_BYTES)
		return;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t end = off / page * page;
	/* Advice only: on failure the pages simply stay. */
	(void)madvise((void *)(uintptr_t)(f->map + *dropped), (size_t)(end - *dropped),
	              MADV_DONTNEED);
	*dropped = end;
}

void journal_file_unmap(struct journal_file *f)
{
	if (f->map != NULL)
		munmap((void *)f->map, (size_t)f->size);
	if (f->fd >= 0)
		close(f->fd);
	f->map = NULL;
	f->fd = -1;
}

int journal_header_check(const struct journal_file *f, const char *magic, uint64_t seq,
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

int journal_record_check(const struct journal_file *f, uint64_t off, struct journal_record *rec,
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

int journal_list_dir(struct journal *j, struct journal_dir_list *list, struct jm_err *err)
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

void journal_dir_list_free(struct journal_dir_list *list)
{
	free(list->segments);
	free(list->snapshots);
	list->segments = list->snapshots = NULL;
	list->segments_len = list->snapshots_len = 0;
}

void journal_delete_replaced(struct journal *j, const struct journal_dir_list *list, uint64_t seq)
{
	bool deleted = false;
	char name[JOURNAL_NAME_BYTES];
	for (size_t i = 0; i < list->segments_len && list->segments[i] < seq; i++) {
		journal_segment_name(name, list->segments[i]);
		deleted |= unlinkat(j->dir_fd, name, 0) == 0;
	}
	for (size_t i = 0; i < list->snapshots_len && list->snapshots[i] < seq; i++) {
		journal_snapshot_name(name, list->snapshots[i], false);
		deleted |= unlinkat(j->dir_fd, name, 0) == 0;
	}
	if (deleted)
		journal_sync_dir(j);
}

int journal_segment_open(struct journal *j, uint64_t seq, bool create, uint64_t off, int *fd_out)
{
	char name[JOURNAL_NAME_BYTES];
	journal_segment_name(name, seq);
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
	journal_file_header(hdr, JOURNAL_SEGMENT_MAGIC, seq);
	int sys = journal_write_all(&j->io, fd, hdr, sizeof hdr);
	if (sys == 0)
		sys = journal_sync_fd(&j->io, fd);
	if (sys != 0) {
		close(fd);
		unlinkat(j->dir_fd, name, 0);
		return sys;
	}
	journal_sync_dir(j);
	*fd_out = fd;
	return 0;
}
