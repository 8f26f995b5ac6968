/* Journal throughput: records/s, syncs/s and MB/s for 200-byte bodies under
 * each fsync policy with 1, 16 and 64 appending threads. Each thread does
 * what a request does: append, wait for its durability callback, repeat.
 * Also the raw rate of write(200 B) + fdatasync from one thread, the floor
 * that group commit amortises.
 *
 * Usage: bench_journal [DIR] [SECONDS_PER_CELL]
 *   DIR defaults to $TMPDIR or /tmp (a fresh subdirectory is made and
 *   removed); put it on the disk the broker will use. Each cell runs 1.2 s
 *   by default, about 20 s in all.
 */
#include "journal_internal.h" /* JOURNAL_FRAME_BYTES, for MB/s as on disk */

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define BENCH_BODY_BYTES 200

static atomic_ulong bench_syncs;

static int bench_sync(int fd)
{
	atomic_fetch_add(&bench_syncs, 1);
	return fdatasync(fd);
}

static const struct journal_io bench_io = {.write = NULL, .sync = bench_sync};

struct bench_thread {
	struct journal *j;
	uint64_t stop_us;
	uint64_t records;
	int failed;
};

static void bench_durable_cb(void *arg, int status)
{
	if (status == 0)
		sem_post(arg);
}

static void *bench_thread_main(void *arg)
{
	struct bench_thread *t = arg;
	uint8_t body[BENCH_BODY_BYTES];
	memset(body, 'j', sizeof body);
	sem_t done;
	sem_init(&done, 0, 0);
	while (jm_mono_us() < t->stop_us) {
		uint64_t lsn;
		struct jm_err err;
		if (journal_append(t->j, body, sizeof body, &lsn, &err) != 0) {
			fprintf(stderr, "append: %s\n", err.msg);
			t->failed = 1;
			break;
		}
		journal_when_durable(t->j, lsn, bench_durable_cb, &done);
		while (sem_wait(&done) != 0 && errno == EINTR)
			;
		t->records++;
	}
	sem_destroy(&done);
	return NULL;
}

static void bench_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *ent;
	char path[4096];
	while ((ent = readdir(d)) != NULL) {
		if (ent->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof path, "%s/%s", dir, ent->d_name) < (int)sizeof path)
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static int bench_cell(const char *base, enum journal_fsync policy, int threads, double seconds)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/jm-bench-journal-XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	struct journal_options opts = {.dir = dir, .fsync = policy, .io = &bench_io};
	struct jm_err err;
	struct journal *j;
	if (journal_open(&j, &opts, &err) != 0 || journal_start(j, &err) != 0) {
		fprintf(stderr, "journal: %s\n", err.msg);
		return -1;
	}
	struct bench_thread *ts = calloc((size_t)threads, sizeof *ts);
	pthread_t *tids = calloc((size_t)threads, sizeof *tids);
	unsigned long syncs_before = atomic_load(&bench_syncs);
	uint64_t began = jm_mono_us();
	uint64_t stop = began + (uint64_t)(seconds * 1e6);
	for (int i = 0; i < threads; i++) {
		ts[i] = (struct bench_thread){.j = j, .stop_us = stop};
		pthread_create(&tids[i], NULL, bench_thread_main, &ts[i]);
	}
	uint64_t records = 0;
	int failed = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(tids[i], NULL);
		records += ts[i].records;
		failed |= ts[i].failed;
	}
	double elapsed = (double)(jm_mono_us() - began) / 1e6;
	unsigned long syncs = atomic_load(&bench_syncs) - syncs_before;
	journal_close(j);
	bench_rmdir(dir);
	free(ts);
	free(tids);
	printf("%-9s %7d %12.0f %10.0f %14.1f %8.2f\n", journal_fsync_name(policy), threads,
	       records / elapsed, syncs / elapsed, syncs ? (double)records / syncs : 0.0,
	       records * (double)(BENCH_BODY_BYTES + JOURNAL_FRAME_BYTES) / elapsed / 1e6);
	fflush(stdout);
	return failed ? -1 : 0;
}

/* One raw cell: appends to a growing file, or (preallocated) overwrites a
 * file written with zeros first, as the journal writer does
 * (journal_prealloc.c). */
static int bench_raw_fdatasync_cell(const char *base, double seconds, bool preallocated)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/jm-bench-fdatasync-XXXXXX", base);
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		return -1;
	}
	uint8_t body[BENCH_BODY_BYTES];
	if (preallocated) {
		memset(body, 0, sizeof body);
		for (int i = 0; i < (64 << 20) / BENCH_BODY_BYTES; i++)
			if (write(fd, body, sizeof body) != (ssize_t)sizeof body)
				break;
		if (fdatasync(fd) != 0 || lseek(fd, 0, SEEK_SET) != 0)
			perror("preallocating");
	}
	memset(body, 'r', sizeof body);
	uint64_t began = jm_mono_us();
	uint64_t stop = began + (uint64_t)(seconds * 1e6);
	uint64_t syncs = 0;
	while (jm_mono_us() < stop) {
		if (write(fd, body, sizeof body) != (ssize_t)sizeof body || fdatasync(fd) != 0) {
			perror("write/fdatasync");
			break;
		}
		syncs++;
	}
	double elapsed = (double)(jm_mono_us() - began) / 1e6;
	close(fd);
	unlink(path);
	printf("raw write(%d B) + fdatasync, 1 thread, %s: %.0f syncs/s (%.0f us each)\n",
	       BENCH_BODY_BYTES, preallocated ? "over preallocated zeros" : "appending",
	       syncs / elapsed, syncs ? elapsed * 1e6 / (double)syncs : 0.0);
	return 0;
}

static int bench_raw_fdatasync(const char *base, double seconds)
{
	int rc = bench_raw_fdatasync_cell(base, seconds, false);
	if (rc == 0)
		rc = bench_raw_fdatasync_cell(base, seconds, true);
	printf("\n");
	return rc;
}

int main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");
	const char *base = argc > 1 ? argv[1] : (tmp && *tmp ? tmp : "/tmp");
	double seconds = argc > 2 ? atof(argv[2]) : 1.2;
	if (seconds <= 0)
		seconds = 1.2;
	jm_log_init("bench_journal", JM_LOG_WARN);
	printf("journal bench in %s: %d-byte bodies, %.1f s per cell; each thread appends and "
	       "waits for its callback\n\n",
	       base, BENCH_BODY_BYTES, seconds);
	if (bench_raw_fdatasync(base, seconds) != 0)
		return 1;
	printf("%-9s %7s %12s %10s %14s %8s\n", "policy", "threads", "records/s", "syncs/s",
	       "records/sync", "MB/s");
	const enum journal_fsync policies[] = {JOURNAL_FSYNC_ALWAYS, JOURNAL_FSYNC_BATCH,
	                                       JOURNAL_FSYNC_EVERYSEC, JOURNAL_FSYNC_OFF};
	const int thread_counts[] = {1, 16, 64};
	int rc = 0;
	for (size_t p = 0; p < 4; p++)
		for (size_t t = 0; t < 3; t++)
			if (bench_cell(base, policies[p], thread_counts[t], seconds) != 0)
				rc = 1;
	return rc;
}
