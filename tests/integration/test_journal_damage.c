/* A damaged journal on disk, built on purpose (Redis's aof.tcl): a torn
 * tail at every byte of the last two records is cut and reported with its
 * offset, and everything before the cut is kept; a flipped byte in the
 * middle of the journal stops the broker with a message naming file and
 * offset, --check-journal reports it, and --repair starts from what is
 * there. After a clean stop (SIGTERM: the CLEAN marker) nothing is torn: a
 * zeroed last page is refused as damage with its offset, --check-journal
 * exits 1, and only --repair cuts it, saying what it cut; a crash after
 * the next start is again a torn tail, cut at start.
 *
 * The record framing read here is the one documented at the top of
 * broker/journal_segment.c: a 24-byte file header, then records of a 4-byte
 * length word (bit 31: meta; bits 0..30: body length L), a 4-byte CRC32C and
 * L body bytes. */
#include "jm_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jobmesh/client.h>

#include "fixture.h"
#include "harness.h"

#define JOBS 40
/* Each start of the broker writes one META record (its boot epoch) before
 * anything else: record k of the segment is job k - BOOT_RECORDS. */
#define BOOT_RECORDS 1
#define HEADER_BYTES 24u
#define FRAME_BYTES 8u
#define RUN_TIMEOUT_MS 10000
#define PAGE_BYTES 4096u
/* --check-journal's exit code for "sound up to a torn tail". */
#define EXIT_TORN_TAIL 3

struct fixture {
	struct harness h;
	struct harness_proc broker;
	bool broker_running;
	uint64_t ids[JOBS];
};

/* The last segment of a data dir, its bytes and its record boundaries. */
struct segment {
	char name[64];
	uint8_t *bytes;
	size_t size;                 /* where the records end */
	size_t file_size;            /* size plus the preallocated zeros after a crash */
	size_t starts[JOBS * 3 + 8]; /* byte where record k starts */
	size_t ends[JOBS * 3 + 8];   /* byte just past record k */
	size_t records;
};

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	if (f != NULL)
		fixture_end(state, &f->h, f->broker_running ? &f->broker : NULL);
	return 0;
}

/* Submits JOBS jobs one per request (one record each, of varied sizes:
 * pad more bytes each) to the running broker, into f->ids. */
static void submit_jobs(struct fixture *f, size_t pad)
{
	jm_client *client;
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	for (int i = 0; i < JOBS; i++) {
		char payload[512];
		size_t fill = (size_t)((i * 7) % 41) + pad;
		assert_true(fill < sizeof payload - 16);
		int len = snprintf(payload, sizeof payload, "payload-%03d-", i);
		memset(payload + len, 'x', fill);
		jm_job_spec spec = {.queue = "damage",
		                    .type = "t",
		                    .payload = payload,
		                    .payload_len = (size_t)len + fill};
		int rc = jm_client_submit(client, &spec, &f->ids[i]);
		if (rc != 0)
			fail_msg("submit %d: %s", i, jm_client_last_error());
	}
	jm_client_close(client);
}

/* Starts a broker, submits JOBS jobs, and SIGKILLs it: every submit was
 * acknowledged, so every record is on disk, and no CLEAN marker is. */
static struct fixture *fixture_with_killed_broker(const char *name)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	fixture_broker_up(&f->h, name, NULL, NULL, &f->broker);
	f->broker_running = true;
	submit_jobs(f, 0);
	assert_jm_ok(harness_kill(&f->broker));
	f->broker_running = false;
	return f;
}

/* Starts a broker, submits JOBS jobs of pad more bytes each, and stops it
 * with SIGTERM: it exits 0 and leaves the CLEAN marker. */
static struct fixture *fixture_with_stopped_broker(const char *name, size_t pad)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	fixture_broker_up(&f->h, name, NULL, NULL, &f->broker);
	f->broker_running = true;
	submit_jobs(f, pad);
	int status = -1;
	assert_jm_ok(harness_stop(&f->broker, SIGTERM, 10000, &status));
	f->broker_running = false;
	assert_int_equal(status, 0);
	return f;
}

static bool data_file_exists(struct fixture *f, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", harness_path(&f->h, "data"), name);
	return access(path, F_OK) == 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads the newest journal-*.log of dir and splits it into records. */
static void segment_read_last(const char *dir, struct segment *seg)
{
	memset(seg, 0, sizeof *seg);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, "journal-", 8) == 0 && len > 4 &&
		    strcmp(e->d_name + len - 4, ".log") == 0 && len < sizeof seg->name &&
		    strcmp(e->d_name, seg->name) > 0)
			strcpy(seg->name, e->d_name);
	}
	closedir(d);
	if (seg->name[0] == '\0')
		fail_msg("no journal-*.log in %s", dir);
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, seg->name);
	seg->bytes = (uint8_t *)harness_read_file(path, &seg->size);
	assert_non_null(seg->bytes);
	assert_true(seg->size >= HEADER_BYTES);
	assert_memory_equal(seg->bytes, "JMJOURN1", 8);
	size_t off = HEADER_BYTES;
	seg->file_size = seg->size;
	while (off + FRAME_BYTES <= seg->size) {
		size_t len = le32(seg->bytes + off) & 0x7fffffffu;
		if (off + FRAME_BYTES + len > seg->size || le32(seg->bytes + off) == 0)
			break;
		assert_true(seg->records < sizeof seg->starts / sizeof seg->starts[0]);
		seg->starts[seg->records] = off;
		seg->ends[seg->records] = off + FRAME_BYTES + len;
		seg->records++;
		off += FRAME_BYTES + len;
	}
	/* The broker keeps zeros after its records (preallocated space) while
	 * it runs, so a killed broker leaves them. */
	size_t zeros = off;
	while (zeros < seg->size && seg->bytes[zeros] == 0)
		zeros++;
	if (zeros == seg->size)
		seg->size = off;
	if (off != seg->size)
		fail_msg("%s: %zu bytes of a partial record at byte %zu after a clean run", path,
		         seg->size - off, off);
}

static void segment_fini(struct segment *seg)
{
	free(seg->bytes);
	seg->bytes = NULL;
}

/* Makes dst a copy of the journal files of src (dst is emptied first). */
static void copy_data_dir(const char *src, const char *dst)
{
	DIR *d = opendir(dst);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			char path[512];
			snprintf(path, sizeof path, "%s/%s", dst, e->d_name);
			assert_int_equal(unlink(path), 0);
		}
		closedir(d);
	} else {
		assert_int_equal(mkdir(dst, 0755), 0);
	}
	d = opendir(src);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "LOCK") == 0)
			continue;
		char from[512], to[512];
		snprintf(from, sizeof from, "%s/%s", src, e->d_name);
		snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
		size_t len = 0;
		char *bytes = harness_read_file(from, &len);
		assert_non_null(bytes);
		int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, bytes, len), (ssize_t)len);
		close(fd);
		free(bytes);
	}
	closedir(d);
}

static void truncate_file(const char *dir, const char *name, size_t size)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_int_equal(truncate(path, (off_t)size), 0);
}

static size_t file_size(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (size_t)st.st_size;
}

/* Records wholly before byte cut. */
static size_t records_before(const struct segment *seg, size_t cut)
{
	size_t k = 0;
	while (k < seg->records && seg->ends[k] <= cut)
		k++;
	return k;
}

/* Where a cut at byte cut leaves the last whole record's end. */
static size_t valid_end(const struct segment *seg, size_t cut)
{
	size_t k = records_before(seg, cut);
	return k == 0 ? HEADER_BYTES : seg->ends[k - 1];
}

static void assert_contains(const char *text, const char *needle, const char *what)
{
	if (text == NULL || strstr(text, needle) == NULL)
		fail_msg("%s: expected \"%s\" in:\n%s", what, needle, text ? text : "(null)");
}

/* jobmesh-broker --check-journal dir; returns the exit code, stdout and
 * stderr in *out and *err_text (malloc'd). */
static int check_journal(struct fixture *f, const char *dir, char **out, char **err_text)
{
	char *argv[] = {(char *)harness_bin("jobmesh-broker"), "--check-journal", (char *)dir,
	                NULL};
	int code = -1;
	assert_jm_ok(harness_run_capture(&f->h, argv, RUN_TIMEOUT_MS, out, err_text, &code));
	return code;
}

/* Cuts the last segment at every byte of its last two records (and at its
 * end) and checks each copy with --check-journal: sound, the torn tail
 * reported with the byte it starts at and the bytes it holds (exit 3, as
 * the next start would cut it), and every record before the cut kept. */
static void check_every_cut(struct fixture *f, const char *data, const char *copy,
                            const struct segment *seg)
{
	size_t first = seg->starts[seg->records - 2];
	for (size_t cut = first; cut <= seg->size; cut++) {
		copy_data_dir(data, copy);
		truncate_file(copy, seg->name, cut);
		char *out = NULL, *err_text = NULL;
		int code = check_journal(f, copy, &out, &err_text);
		size_t kept = records_before(seg, cut);
		size_t end = valid_end(seg, cut);
		char what[96];
		snprintf(what, sizeof what, "--check-journal after a cut at byte %zu", cut);
		/* A cut at a record boundary leaves a sound journal (exit 0);
		 * anything else, a torn tail the next start cuts (exit 3). */
		int want_code = cut == end ? 0 : EXIT_TORN_TAIL;
		if (code != want_code)
			fail_msg("%s: exit %d, expected %d; stdout:\n%s\nstderr:\n%s", what, code,
			         want_code, out, err_text);
		char expect[256];
		snprintf(expect, sizeof expect, "%s: %zu records",
		         cut == end ? "sound" : "sound up to a torn tail", kept);
		assert_contains(out, expect, what);
		size_t jobs_kept = kept - BOOT_RECORDS;
		snprintf(expect, sizeof expect, "jobs %zu, next job id %zu", jobs_kept,
		         jobs_kept + 1);
		assert_contains(out, expect, what);
		if (cut == end) {
			if (strstr(out, "torn tail") != NULL)
				fail_msg("%s: a cut at a record boundary is no torn tail:\n%s",
				         what, out);
		} else {
			snprintf(expect, sizeof expect, "torn tail: %zu bytes at byte %zu of %s",
			         cut - end, end, seg->name);
			assert_contains(out, expect, what);
			snprintf(expect, sizeof expect, "torn tail in %s at byte %zu", seg->name,
			         end);
			assert_contains(err_text, expect, what);
		}
		free(out);
		free(err_text);
		/* --check-journal is read-only: the file keeps its torn tail. */
		assert_int_equal(file_size(copy, seg->name), cut);
	}
}

/* Starts a real broker on a copy cut at byte cut: it starts, logs the torn
 * tail with file and offset, cuts the file there, serves every job before
 * the cut with its state, and knows none after it. */
static void start_on_cut(struct fixture *f, const char *data, const char *copy,
                         const struct segment *seg, size_t cut)
{
	copy_data_dir(data, copy);
	truncate_file(copy, seg->name, cut);
	size_t kept = records_before(seg, cut);
	size_t end = valid_end(seg, cut);

	const char *err_path = harness_path(&f->h, "broker.err");
	size_t err_before = 0;
	free(harness_read_file(err_path, &err_before));
	char listen[300];
	snprintf(listen, sizeof listen, "ipc://%s/cut.ipc", f->h.dir);
	const char *args[] = {"--data", copy, "--listen", listen, NULL};
	struct harness_proc broker;
	assert_jm_ok(harness_broker_start(&f->h, args, &broker));

	char *log = harness_read_file(err_path, NULL);
	assert_non_null(log);
	char what[96];
	snprintf(what, sizeof what, "broker log after a start on a cut at byte %zu", cut);
	char expect[256];
	if (cut != end) {
		snprintf(expect, sizeof expect, "torn tail in %s at byte %zu", seg->name, end);
		assert_contains(log + err_before, expect, what);
		snprintf(expect, sizeof expect, "cutting %zu bytes", cut - end);
		assert_contains(log + err_before, expect, what);
	} else if (strstr(log + err_before, "torn tail") != NULL) {
		fail_msg("%s: no torn tail expected:\n%s", what, log + err_before);
	}
	free(log);
	/* The tail was cut at end, and then this start appended its boot
	 * record there: the file is whole records, the last one starting at
	 * end. */
	struct segment after;
	segment_read_last(copy, &after);
	assert_string_equal(after.name, seg->name);
	assert_int_equal(after.records, kept + BOOT_RECORDS);
	assert_int_equal(after.starts[kept], end);
	segment_fini(&after);

	jm_client *client;
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	for (size_t i = 0; i < JOBS; i++) {
		jm_job_info info = {0};
		int rc = jm_client_status(client, f->ids[i], &info);
		if (i + BOOT_RECORDS < kept) {
			if (rc != 0)
				fail_msg("cut at %zu: job %llu (record %zu, before the cut): %s",
				         cut, (unsigned long long)f->ids[i], i + BOOT_RECORDS,
				         jm_client_last_error());
			assert_int_equal(info.state, JM_STATE_PENDING);
			assert_string_equal(info.queue, "damage");
		} else {
			assert_jm_code(rc, JM_ENOTFOUND);
		}
		jm_job_info_fini(&info);
	}
	jm_client_close(client);
	int status = -1;
	assert_jm_ok(harness_stop(&broker, SIGTERM, 10000, &status));
	assert_int_equal(status, 0);

	char *out = NULL, *err_text = NULL;
	assert_int_equal(check_journal(f, copy, &out, &err_text), 0);
	assert_null(strstr(out, "torn tail"));
	snprintf(expect, sizeof expect, "jobs %zu,", kept - BOOT_RECORDS);
	assert_contains(out, expect, "--check-journal after the broker cut the tail");
	free(out);
	free(err_text);
}

static void test_torn_tail_at_every_byte_of_the_last_two_records_is_cut_and_reported(void **state)
{
	struct fixture *f = fixture_with_killed_broker("torn");
	*state = f;
	const char *data = harness_path(&f->h, "data");
	const char *copy = harness_path(&f->h, "cut");
	struct segment seg;
	segment_read_last(data, &seg);
	assert_int_equal(seg.records, JOBS + BOOT_RECORDS);

	check_every_cut(f, data, copy, &seg);

	/* Real starts on a sample: inside the frame, at a frame without its
	 * body, at a boundary, inside the body, one byte short of the end. */
	size_t a = seg.starts[seg.records - 2], b = seg.starts[seg.records - 1];
	size_t samples[] = {a + 1, a + FRAME_BYTES,     b - 1,       b,
	                    b + 3, b + FRAME_BYTES + 5, seg.size - 1};
	for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
		start_on_cut(f, data, copy, &seg, samples[i]);
	segment_fini(&seg);
}

static void test_flipped_byte_mid_journal_is_refused_reported_and_repaired(void **state)
{
	struct fixture *f = fixture_with_killed_broker("flip");
	*state = f;
	const char *data = harness_path(&f->h, "data");
	struct segment seg;
	segment_read_last(data, &seg);
	assert_int_equal(seg.records, JOBS + BOOT_RECORDS);

	/* One byte in the middle of job JOBS/2's record body. */
	const size_t damaged = JOBS / 2;
	size_t record_at = seg.starts[damaged + BOOT_RECORDS];
	size_t body_len = seg.ends[damaged + BOOT_RECORDS] - record_at - FRAME_BYTES;
	size_t flip_at = record_at + FRAME_BYTES + body_len / 2;
	char path[512];
	snprintf(path, sizeof path, "%s/%s", data, seg.name);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t byte = seg.bytes[flip_at] ^ 0x5a;
	assert_int_equal(pwrite(fd, &byte, 1, (off_t)flip_at), 1);
	close(fd);

	char offset_text[64];
	snprintf(offset_text, sizeof offset_text, "byte %zu", record_at);

	/* A plain start refuses, naming the file, the offset and --repair. */
	char listen[300];
	snprintf(listen, sizeof listen, "ipc://%s/broker.ipc", f->h.dir);
	char *argv[] = {(char *)harness_bin("jobmesh-broker"),
	                "--http",
	                "127.0.0.1:0",
	                "--listen",
	                listen,
	                "--data",
	                (char *)data,
	                NULL};
	char *out = NULL, *err_text = NULL;
	int code = -1;
	assert_jm_ok(harness_run_capture(&f->h, argv, RUN_TIMEOUT_MS, &out, &err_text, &code));
	if (code != 1)
		fail_msg("broker on a damaged journal: exit %d, expected 1; stderr:\n%s", code,
		         err_text);
	assert_null(strstr(out, "listening"));
	assert_contains(err_text, seg.name, "refusal");
	assert_contains(err_text, offset_text, "refusal");
	assert_contains(err_text, "--repair", "refusal");
	free(out);
	free(err_text);
	/* Refusing changed nothing on disk. */
	assert_int_equal(file_size(data, seg.name), seg.file_size);

	/* --check-journal reports the same. */
	assert_int_equal(check_journal(f, data, &out, &err_text), 1);
	assert_contains(err_text, seg.name, "--check-journal");
	assert_contains(err_text, offset_text, "--check-journal");
	free(out);
	free(err_text);

	/* --repair starts, says what it dropped, keeps what came before. */
	const char *err_path = harness_path(&f->h, "broker.err");
	size_t err_before = 0;
	free(harness_read_file(err_path, &err_before));
	const char *repair[] = {"--repair", NULL};
	assert_jm_ok(harness_broker_start(&f->h, repair, &f->broker));
	f->broker_running = true;
	char *log = harness_read_file(err_path, NULL);
	assert_non_null(log);
	char expect[256];
	snprintf(expect, sizeof expect, "repair: %s: byte %zu", seg.name, record_at);
	assert_contains(log + err_before, expect, "repair log");
	snprintf(expect, sizeof expect, "cutting the %zu bytes", seg.file_size - record_at);
	assert_contains(log + err_before, expect, "repair log");
	free(log);

	jm_client *client;
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	for (size_t i = 0; i < JOBS; i++) {
		jm_job_info info = {0};
		int rc = jm_client_status(client, f->ids[i], &info);
		if (i < damaged) {
			if (rc != 0)
				fail_msg("job %llu before the damage: %s",
				         (unsigned long long)f->ids[i], jm_client_last_error());
			assert_int_equal(info.state, JM_STATE_PENDING);
		} else {
			assert_jm_code(rc, JM_ENOTFOUND);
		}
		jm_job_info_fini(&info);
	}
	jm_client_close(client);
	int status = -1;
	assert_jm_ok(harness_stop(&f->broker, SIGTERM, 10000, &status));
	f->broker_running = false;
	assert_int_equal(status, 0);

	/* What the repair left is sound. */
	assert_int_equal(check_journal(f, data, &out, &err_text), 0);
	snprintf(expect, sizeof expect, "jobs %zu,", damaged);
	assert_contains(out, expect, "--check-journal after --repair");
	assert_null(strstr(out, "torn tail"));
	free(out);
	free(err_text);
	segment_fini(&seg);
}

/* Zeroes bytes [from, to) of dir/name in place (the size stays), as a disk
 * that lost its last page would. */
static void zero_range(const char *dir, const char *name, size_t from, size_t to)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	uint8_t zeros[PAGE_BYTES] = {0};
	assert_true(to - from <= sizeof zeros);
	assert_int_equal(pwrite(fd, zeros, to - from, (off_t)from), (ssize_t)(to - from));
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

/* Runs jobmesh-broker on data (extra flags: NULL-terminated, may be NULL)
 * in the foreground, expecting it to refuse to start; returns its exit
 * code, stdout and stderr (malloc'd). */
static int broker_run(struct fixture *f, const char *data, const char *extra, char **out,
                      char **err_text)
{
	char listen[300];
	snprintf(listen, sizeof listen, "ipc://%s/refused.ipc", f->h.dir);
	char *argv[] = {(char *)harness_bin("jobmesh-broker"),
	                "--http",
	                "127.0.0.1:0",
	                "--listen",
	                listen,
	                "--data",
	                (char *)data,
	                (char *)extra,
	                NULL};
	int code = -1;
	assert_jm_ok(harness_run_capture(&f->h, argv, RUN_TIMEOUT_MS, out, err_text, &code));
	return code;
}

/* Jobs f->ids[0..kept) are pending in queue damage; the rest are unknown. */
static void assert_jobs_kept(struct fixture *f, size_t kept, const char *when)
{
	jm_client *client;
	assert_jm_ok(jm_client_open(&client, f->h.broker_url));
	for (size_t i = 0; i < JOBS; i++) {
		jm_job_info info = {0};
		int rc = jm_client_status(client, f->ids[i], &info);
		if (i < kept) {
			if (rc != 0)
				fail_msg("%s: job %llu (kept): %s", when,
				         (unsigned long long)f->ids[i], jm_client_last_error());
			assert_int_equal(info.state, JM_STATE_PENDING);
		} else if (rc != JM_ENOTFOUND) {
			fail_msg("%s: job %llu (cut) answered %d (%s), expected not found", when,
			         (unsigned long long)f->ids[i], rc, jm_strerror(rc));
		}
		jm_job_info_fini(&info);
	}
	jm_client_close(client);
}

static void
test_zeroed_last_page_after_a_clean_stop_is_refused_as_damage_and_repaired_by_flag(void **state)
{
	/* 200 more bytes a job: the segment spans three pages, so the last
	 * page holds only records, not the file header. */
	struct fixture *f = fixture_with_stopped_broker("cleanzero", 200);
	*state = f;
	const char *data = harness_path(&f->h, "data");
	if (!data_file_exists(f, "CLEAN"))
		fail_msg("a SIGTERM stop left no CLEAN marker in %s", data);
	struct segment seg;
	segment_read_last(data, &seg);
	assert_int_equal(seg.records, JOBS + BOOT_RECORDS);
	assert_true(seg.size > 2 * PAGE_BYTES);
	char *out = NULL, *err_text = NULL;
	if (check_journal(f, data, &out, &err_text) != 0)
		fail_msg("--check-journal after a clean stop:\n%s\n%s", out, err_text);
	free(out);
	free(err_text);

	/* Zero the last page: the first record whose bytes that changes is
	 * the damage (a record the boundary cuts through may end in zero
	 * bytes already, and then it is still whole). */
	size_t page = (seg.size - 1) / PAGE_BYTES * PAGE_BYTES;
	size_t kept = records_before(&seg, page);
	while (kept < seg.records) {
		bool changes = false;
		size_t from = seg.starts[kept] > page ? seg.starts[kept] : page;
		for (size_t at = from; at < seg.ends[kept] && !changes; at++)
			changes = seg.bytes[at] != 0;
		if (changes)
			break;
		kept++;
	}
	size_t damaged_at = seg.starts[kept];
	assert_true(kept > BOOT_RECORDS && kept < seg.records);
	zero_range(data, seg.name, page, seg.size);
	char offset_text[64];
	snprintf(offset_text, sizeof offset_text, "byte %zu", damaged_at);

	/* A plain start refuses, naming the file, the offset, the clean stop
	 * and --repair, and changes nothing on disk. */
	int code = broker_run(f, data, NULL, &out, &err_text);
	if (code != 1)
		fail_msg("broker on a zeroed tail after a clean stop: exit %d, expected 1; "
		         "stderr:\n%s",
		         code, err_text);
	assert_null(strstr(out, "listening"));
	assert_contains(err_text, seg.name, "refusal");
	assert_contains(err_text, offset_text, "refusal");
	assert_contains(err_text, "after a clean stop", "refusal");
	assert_contains(err_text, "damage, not a torn tail", "refusal");
	assert_contains(err_text, "--repair", "refusal");
	assert_null(strstr(err_text, "torn tail in"));
	free(out);
	free(err_text);
	size_t len = 0;
	char path[512];
	snprintf(path, sizeof path, "%s/%s", data, seg.name);
	uint8_t *now = (uint8_t *)harness_read_file(path, &len);
	assert_non_null(now);
	assert_int_equal(len, seg.size);
	assert_memory_equal(now, seg.bytes, page);
	free(now);
	assert_true(data_file_exists(f, "CLEAN"));

	/* --check-journal exits 1 and names the same place. */
	code = check_journal(f, data, &out, &err_text);
	if (code != 1)
		fail_msg("--check-journal on a zeroed tail after a clean stop: exit %d, expected "
		         "1:\n%s\n%s",
		         code, out, err_text);
	assert_contains(err_text, seg.name, "--check-journal");
	assert_contains(err_text, offset_text, "--check-journal");
	assert_contains(err_text, "damage, not a torn tail", "--check-journal");
	free(out);
	free(err_text);

	/* --repair starts, says what it cut, keeps every job before. */
	const char *err_path = harness_path(&f->h, "broker.err");
	size_t err_before = 0;
	free(harness_read_file(err_path, &err_before));
	const char *repair[] = {"--repair", NULL};
	assert_jm_ok(harness_broker_start(&f->h, repair, &f->broker));
	f->broker_running = true;
	char *log = harness_read_file(err_path, NULL);
	assert_non_null(log);
	char expect[256];
	snprintf(expect, sizeof expect, "repair: %s: byte %zu", seg.name, damaged_at);
	assert_contains(log + err_before, expect, "repair log");
	snprintf(expect, sizeof expect, "cutting the %zu bytes", seg.file_size - damaged_at);
	assert_contains(log + err_before, expect, "repair log");
	free(log);
	assert_false(data_file_exists(f, "CLEAN")); /* deleted before the first write */
	assert_jobs_kept(f, kept - BOOT_RECORDS, "after --repair");
	int status = -1;
	assert_jm_ok(harness_stop(&f->broker, SIGTERM, 10000, &status));
	f->broker_running = false;
	assert_int_equal(status, 0);

	/* What the repair left is sound, and marked clean again. */
	assert_true(data_file_exists(f, "CLEAN"));
	assert_int_equal(check_journal(f, data, &out, &err_text), 0);
	snprintf(expect, sizeof expect, "jobs %zu,", kept - BOOT_RECORDS);
	assert_contains(out, expect, "--check-journal after --repair");
	free(out);
	free(err_text);
	segment_fini(&seg);
}

static void test_a_crash_after_restarting_from_a_clean_stop_still_cuts_a_torn_tail(void **state)
{
	struct fixture *f = fixture_with_stopped_broker("cleancrash", 0);
	*state = f;
	const char *data = harness_path(&f->h, "data");
	assert_true(data_file_exists(f, "CLEAN"));
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	f->broker_running = true;
	assert_false(data_file_exists(f, "CLEAN"));
	submit_jobs(f, 0); /* f->ids: the second run's jobs */
	assert_jm_ok(harness_kill(&f->broker));
	f->broker_running = false;
	assert_false(data_file_exists(f, "CLEAN"));

	/* The end of the last write torn off: half of the last record. */
	struct segment seg;
	segment_read_last(data, &seg);
	assert_int_equal(seg.records, 2 * (JOBS + BOOT_RECORDS));
	size_t last = seg.starts[seg.records - 1];
	size_t cut = last + FRAME_BYTES + 3;
	truncate_file(data, seg.name, cut);

	char *out = NULL, *err_text = NULL;
	int code = check_journal(f, data, &out, &err_text);
	if (code != EXIT_TORN_TAIL)
		fail_msg("--check-journal on a torn tail: exit %d, expected %d:\n%s\n%s", code,
		         EXIT_TORN_TAIL, out, err_text);
	char expect[256];
	snprintf(expect, sizeof expect, "torn tail: %zu bytes at byte %zu of %s", cut - last, last,
	         seg.name);
	assert_contains(out, expect, "--check-journal");
	free(out);
	free(err_text);

	const char *err_path = harness_path(&f->h, "broker.err");
	size_t err_before = 0;
	free(harness_read_file(err_path, &err_before));
	assert_jm_ok(harness_broker_start(&f->h, NULL, &f->broker));
	f->broker_running = true;
	char *log = harness_read_file(err_path, NULL);
	assert_non_null(log);
	snprintf(expect, sizeof expect, "torn tail in %s at byte %zu", seg.name, last);
	assert_contains(log + err_before, expect, "start after a crash");
	snprintf(expect, sizeof expect, "cutting %zu bytes", cut - last);
	assert_contains(log + err_before, expect, "start after a crash");
	free(log);
	assert_jobs_kept(f, JOBS - 1, "after the torn tail was cut");
	segment_fini(&seg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(
	        test_torn_tail_at_every_byte_of_the_last_two_records_is_cut_and_reported,
	        fixture_teardown),
	    cmocka_unit_test_teardown(
	        test_flipped_byte_mid_journal_is_refused_reported_and_repaired, fixture_teardown),
	    cmocka_unit_test_teardown(
	        test_zeroed_last_page_after_a_clean_stop_is_refused_as_damage_and_repaired_by_flag,
	        fixture_teardown),
	    cmocka_unit_test_teardown(
	        test_a_crash_after_restarting_from_a_clean_stop_still_cuts_a_torn_tail,
	        fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
