/* The HA leader's reading of its own journal files for a standby's
 * catch-up (journal.h, "HA"), without the data directory's lock: the
 * broker itself holds it, and flock(2) is per open file, so a second
 * journal_open in this process cannot take it. Reading without it is safe
 * because the writer only appends to the last segment (the caller reads
 * no further than what the writer reported synced) and compaction only
 * adds a snapshot by rename and then deletes older files: a file that
 * vanishes between the listing and the read is JM_ENOTFOUND, and the
 * caller starts its copy again from a new listing. */
#include "journal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"

static bool parse(const char *name, const char *prefix, const char *suffix, uint64_t *seq)
{
	size_t plen = strlen(prefix), slen = strlen(suffix), len = strlen(name);
	if (len != plen + 16 + slen || strncmp(name, prefix, plen) != 0 ||
	    strcmp(name + plen + 16, suffix) != 0)
		return false;
	uint64_t v = 0;
	for (size_t i = plen; i < plen + 16; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	*seq = v;
	return v > 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int journal_files_list(const char *dir, struct journal_files *out, struct jm_err *err)
{
	memset(out, 0, sizeof *out);
	DIR *d = opendir(dir);
	if (d == NULL)
		return jm_err_set(err, JM_EIO, "data dir %s: cannot list: %s", dir,
		                  strerror(errno));
	size_t cap = 0;
	int rc = 0;
	struct dirent *ent;
	while ((ent = readdir(d)) != NULL) {
		uint64_t seq;
		if (parse(ent->d_name, "snapshot-", ".snap", &seq)) {
			if (seq > out->snapshot)
				out->snapshot = seq;
		} else if (parse(ent->d_name, "journal-", ".log", &seq)) {
			if (out->segments_len == cap) {
				cap = cap ? cap * 2 : 16;
				uint64_t *grown = realloc(out->segments, cap * sizeof *grown);
				if (grown == NULL) {
					rc = jm_err_set(err, JM_ENOMEM,
					                "data dir %s: out of memory", dir);
					break;
				}
				out->segments = grown;
			}
			out->segments[out->segments_len++] = seq;
		}
	}
	closedir(d);
	if (rc != 0) {
		journal_files_free(out);
		return rc;
	}
	if (out->segments_len > 1)
		qsort(out->segments, out->segments_len, sizeof *out->segments, u64_cmp);
	return 0;
}

void journal_files_free(struct journal_files *files)
{
	free(files->segments);
	memset(files, 0, sizeof *files);
}

int journal_files_read(const char *dir, bool snapshot, uint64_t seq, uint64_t off, uint8_t *buf,
                       size_t len, size_t *got, struct jm_err *err)
{
	char name[JOURNAL_NAME_BYTES], path[4096 + JOURNAL_NAME_BYTES];
	if (snapshot)
		journal_snapshot_name(name, seq, false);
	else
		journal_segment_name(name, seq);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return jm_err_set(err, errno == ENOENT ? JM_ENOTFOUND : JM_EIO, "journal %s: %s",
		                  path, strerror(errno));
	size_t done = 0;
	int rc = 0;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = jm_err_set(err, JM_EIO, "journal %s: byte %" PRIu64 ": %s", path,
			                off + done, strerror(errno));
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	*got = done;
	return rc;
}

int journal_files_tail_crc(const char *dir, uint64_t seq, uint64_t off, uint32_t *crc,
                           struct jm_err *err)
{
	*crc = 0;
	if (off <= JOURNAL_HEADER_BYTES)
		return 0;
	uint64_t from = off - JOURNAL_HEADER_BYTES > 4096 ? off - 4096 : JOURNAL_HEADER_BYTES;
	uint8_t buf[4096];
	size_t got = 0;
	int rc = journal_files_read(dir, false, seq, from, buf, (size_t)(off - from), &got, err);
	if (rc != 0)
		return rc;
	if (got != off - from)
		return jm_err_set(err, JM_ENOTFOUND,
		                  "journal %s: segment %" PRIu64 " ends before byte %" PRIu64, dir,
		                  seq, off);
	*crc = crc32c(buf, got);
	return 0;
}
