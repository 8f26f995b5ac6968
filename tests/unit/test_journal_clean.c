/* The clean-stop marker (broker/journal_clean.c): journal_stop writes it
 * once every record is durable and the next start deletes it before writing;
 * while it stands, a bad tail is damage naming its offset (cut only by
 * repair), a journal shorter than it says is damage, and a damaged marker
 * is refused; without it a bad tail is torn and cut, as after a crash. A
 * stop that cannot write its records says how many and writes no marker.
 * Every test works in its own mkdtemp directory. */
#include "jm_test.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segment_records.h"
#include "clock.h"
#include "journal.h"

#define SEG1 "journal-0000000000000001.log"
#define CLEAN "CLEAN"
#define FRAME_BYTES 8u

static int fail_writes; /* errno for the seam's writes while nonzero */

static ssize_t seam_write(int fd, const void *buf, size_t len)
{
	if (__atomic_load_n(&fail_writes, __ATOMIC_SEQ_CST) != 0) {
		errno = fail_writes;
		return -1;
	}
	return write(fd, buf, len);
}

static const struct journal_io seam_io = {.write = seam_write, .sync = NULL};

struct fixture {
	char dir[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof f->dir, "%s/jm-clean-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	fail_writes = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	DIR *d = opendir(f->dir);
	struct dirent *ent;
	char path[512];
	while (d != NULL && (ent = readdir(d)) != NULL) {
		if (ent->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", f->dir, ent->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

static const char *path_in(const char *dir, const char *name)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return path;
}

static bool file_exists(const char *dir, const char *name)
{
	return access(path_in(dir, name), F_OK) == 0;
}

static long file_size(const char *dir, const char *name)
{
	struct stat st;
	assert_int_equal(stat(path_in(dir, name), &st), 0);
	return (long)st.st_size;
}

/* Overwrites [from, to) of dir/name with byte, in place. */
static void fill_range(const char *dir, const char *name, long from, long to, uint8_t byte)
{
	FILE *file = fopen(path_in(dir, name), "r+b");
	assert_non_null(file);
	assert_int_equal(fseek(file, from, SEEK_SET), 0);
	for (long i = from; i < to; i++)
		assert_int_equal(fputc(byte, file), byte);
	assert_int_equal(fclose(file), 0);
}

struct replayed {
	size_t records;
	uint64_t offsets[16];
};

static int count_apply(void *arg, const uint8_t *body, size_t len, const char *file,
                       uint64_t offset, struct jm_err *err)
{
	struct replayed *r = arg;
	if (r->records < 16)
		r->offsets[r->records] = offset;
	r->records++;
	return 0;
}

/* Opens dir and replays it into r; returns replay's code; *out stays open
 * (close it). */
static int load(const char *dir, bool repair, bool read_only, struct replayed *r,
                struct journal_replay_stats *stats, struct journal **out, struct jm_err *err)
{
	struct journal_options opts = {.dir = dir,
	                               .fsync = JOURNAL_FSYNC_BATCH,
	                               .repair = repair,
	                               .read_only = read_only,
	                               .io = &seam_io};
	memset(r, 0, sizeof *r);
	int rc = journal_open(out, &opts, err);
	if (rc != 0)
		return rc;
	return journal_replay(*out, count_apply, r, stats, err);
}

struct durable {
	int fired;
	int status;
};

static void durable_cb(void *arg, int status)
{
	struct durable *d = arg;
	d->status = status;
	__atomic_store_n(&d->fired, 1, __ATOMIC_SEQ_CST);
}

/* Starts a journal in dir and appends three records; returns it started. */
static struct journal *three_records(const char *dir)
{
	struct jm_err err = {0};
	struct journal *j;
	struct replayed r;
	assert_jm_ok_err(load(dir, false, false, &r, NULL, &j, &err), &err);
	assert_jm_ok_err(journal_start(j, &err), &err);
	const char *bodies[] = {"first record", "the second, a little longer", "third"};
	uint64_t lsn = 0;
	for (int i = 0; i < 3; i++)
		assert_jm_ok_err(journal_append(j, bodies[i], strlen(bodies[i]), &lsn, &err), &err);
	struct durable d = {0};
	journal_when_durable(j, lsn, durable_cb, &d);
	uint64_t deadline = jm_mono_us() + 5000000u;
	while (!__atomic_load_n(&d.fired, __ATOMIC_SEQ_CST) && jm_mono_us() < deadline)
		usleep(1000);
	if (!d.fired)
		fail_msg("timed out after 5 s waiting for the three records to be durable");
	assert_int_equal(d.status, 0);
	return j;
}

/* Three records, stopped cleanly; returns the offset of the third. */
static uint64_t stopped_cleanly(const char *dir)
{
	struct jm_err err = {0};
	struct journal *j = three_records(dir);
	assert_jm_ok_err(journal_stop(j, &err), &err);
	journal_close(j);
	struct replayed r;
	assert_jm_ok_err(load(dir, false, true, &r, NULL, &j, &err), &err);
	journal_close(j);
	assert_int_equal(r.records, 3);
	return r.offsets[2];
}

static void test_stop_writes_the_marker_and_the_next_start_deletes_it(void **state)
{
	struct fixture *f = *state;
	stopped_cleanly(f->dir);
	assert_true(file_exists(f->dir, CLEAN));
	assert_int_equal(file_size(f->dir, CLEAN), 32);
	struct jm_err err = {0};
	struct journal *j;
	struct replayed r;
	struct journal_replay_stats stats;
	assert_jm_ok_err(load(f->dir, false, false, &r, &stats, &j, &err), &err);
	assert_int_equal(r.records, 3);
	assert_int_equal(stats.torn_tail_file[0], '\0');
	assert_true(file_exists(f->dir, CLEAN)); /* replay alone writes nothing */
	assert_jm_ok_err(journal_start(j, &err), &err);
	assert_false(file_exists(f->dir, CLEAN));
	journal_close(j); /* not a clean stop: no marker */
	assert_false(file_exists(f->dir, CLEAN));
}

static void test_a_zeroed_tail_after_a_clean_stop_is_corrupt_naming_the_offset(void **state)
{
	struct fixture *f = *state;
	uint64_t third = stopped_cleanly(f->dir);
	long size = file_size(f->dir, SEG1);
	fill_range(f->dir, SEG1, (long)third + 3, size, 0);
	for (int read_only = 0; read_only <= 1; read_only++) {
		struct jm_err err = {0};
		struct journal *j;
		struct replayed r;
		assert_jm_code(load(f->dir, false, read_only, &r, NULL, &j, &err), JM_ECORRUPT);
		journal_close(j);
		char where[128];
		snprintf(where, sizeof where, "journal " SEG1 ": byte %llu: checksum mismatch",
		         (unsigned long long)third);
		if (strstr(err.msg, where) == NULL)
			fail_msg("error does not name \"%s\": %s", where, err.msg);
		char end[128];
		snprintf(end, sizeof end,
		         "after a clean stop that left " SEG1 " ending at byte %ld", size);
		if (strstr(err.msg, end) == NULL)
			fail_msg("error does not name \"%s\": %s", end, err.msg);
		assert_non_null(strstr(err.msg, "damage, not a torn tail"));
		assert_non_null(strstr(err.msg, "--repair"));
		assert_int_equal(r.records, 2);
		assert_int_equal(file_size(f->dir, SEG1), size);
		assert_true(file_exists(f->dir, CLEAN));
	}
}

static void test_the_same_tail_without_a_marker_is_cut_as_torn(void **state)
{
	struct fixture *f = *state;
	uint64_t third = stopped_cleanly(f->dir);
	long size = file_size(f->dir, SEG1);
	fill_range(f->dir, SEG1, (long)third + 3, size, 0);
	assert_int_equal(unlink(path_in(f->dir, CLEAN)), 0); /* as after a crash */
	struct jm_err err = {0};
	struct journal *j;
	struct replayed r;
	struct journal_replay_stats stats;
	assert_jm_ok_err(load(f->dir, false, false, &r, &stats, &j, &err), &err);
	journal_close(j);
	assert_int_equal(r.records, 2);
	assert_int_equal(stats.torn_tail_offset, third);
	assert_int_equal(stats.torn_tail_bytes, (uint64_t)size - third);
	assert_int_equal(file_size(f->dir, SEG1), (long)third);
}

static void test_repair_cuts_damage_after_a_clean_stop_and_starts(void **state)
{
	struct fixture *f = *state;
	uint64_t third = stopped_cleanly(f->dir);
	fill_range(f->dir, SEG1, (long)third + FRAME_BYTES, file_size(f->dir, SEG1), 'z');
	struct jm_err err = {0};
	struct journal *j;
	struct replayed r;
	assert_jm_ok_err(load(f->dir, true, false, &r, NULL, &j, &err), &err);
	assert_int_equal(r.records, 2);
	assert_int_equal(file_size(f->dir, SEG1), (long)third);
	assert_jm_ok_err(journal_start(j, &err), &err);
	assert_false(file_exists(f->dir, CLEAN));
	assert_jm_ok_err(journal_stop(j, &err), &err);
	journal_close(j);
	assert_true(file_exists(f->dir, CLEAN));
	assert_jm_ok_err(load(f->dir, false, true, &r, NULL, &j, &err), &err);
	journal_close(j);
	assert_int_equal(r.records, 2);
}

static void test_a_journal_shorter_than_the_marker_says_is_corrupt(void **state)
{
	struct fixture *f = *state;
	uint64_t third = stopped_cleanly(f->dir);
	long size = file_size(f->dir, SEG1);
	assert_int_equal(truncate(path_in(f->dir, SEG1), (off_t)third), 0);
	struct jm_err err = {0};
	struct journal *j;
	struct replayed r;
	assert_jm_code(load(f->dir, false, false, &r, NULL, &j, &err), JM_ECORRUPT);
	journal_close(j);
	char want[256];
	snprintf(want, sizeof want,
	         SEG1 " ends at byte %llu, but the broker stopped cleanly with " SEG1
	              " ending at byte %ld: records are missing",
	         (unsigned long long)third, size);
	if (strstr(err.msg, want) == NULL)
		fail_msg("error does not say \"%s\": %s", want, err.msg);
	assert_jm_ok_err(load(f->dir, true, false, &r, NULL, &j, &err), &err);
	journal_close(j);
	assert_int_equal(r.records, 2);
}

static void test_a_damaged_marker_is_refused_and_ignored_by_repair(void **state)
{
	struct fixture *f = *state;
	stopped_cleanly(f->dir);
	fill_range(f->dir, CLEAN, 14, 15, 0x7f);
	struct jm_err err = {0};
	struct journal *j;
	struct replayed r;
	assert_jm_code(load(f->dir, false, false, &r, NULL, &j, &err), JM_ECORRUPT);
	journal_close(j);
	assert_non_null(strstr(err.msg, "clean-stop marker is damaged (checksum mismatch)"));
	assert_jm_ok_err(load(f->dir, true, false, &r, NULL, &j, &err), &err);
	journal_close(j);
	assert_int_equal(r.records, 3);
}

static void test_stop_that_cannot_write_its_records_says_how_many_and_leaves_no_marker(void **state)
{
	struct fixture *f = *state;
	struct journal *j = three_records(f->dir);
	long size = segment_records_end(path_in(f->dir, SEG1));
	__atomic_store_n(&fail_writes, EIO, __ATOMIC_SEQ_CST);
	struct jm_err err = {0};
	uint64_t lsn;
	assert_jm_ok_err(journal_append(j, "lost 1", 6, &lsn, &err), &err);
	uint64_t deadline = jm_mono_us() + 5000000u;
	while (journal_is_writable(j, NULL) && jm_mono_us() < deadline)
		usleep(1000);
	assert_false(journal_is_writable(j, NULL));
	assert_jm_code(journal_stop(j, &err), JM_EIO);
	journal_close(j);
	assert_non_null(strstr(err.msg, "stopped without writing the last 1 records"));
	assert_non_null(strstr(err.msg, "Input/output error"));
	assert_false(file_exists(f->dir, CLEAN));
	__atomic_store_n(&fail_writes, 0, __ATOMIC_SEQ_CST);
	assert_int_equal(file_size(f->dir, SEG1), size);
	struct replayed r;
	assert_jm_ok_err(load(f->dir, false, false, &r, NULL, &j, &err), &err);
	journal_close(j);
	assert_int_equal(r.records, 3);
}

static void test_a_marker_that_valid_records_follow_is_stale_and_ignored(void **state)
{
	struct fixture *f = *state;
	uint64_t third = stopped_cleanly(f->dir);
	/* An older jobmesh ignores CLEAN: it appends without deleting it. */
	FILE *saved = fopen(path_in(f->dir, CLEAN), "rb");
	assert_non_null(saved);
	uint8_t marker[32];
	assert_int_equal(fread(marker, 1, sizeof marker, saved), sizeof marker);
	fclose(saved);
	struct jm_err err = {0};
	struct journal *j;
	struct replayed r;
	assert_jm_ok_err(load(f->dir, false, false, &r, NULL, &j, &err), &err);
	assert_jm_ok_err(journal_start(j, &err), &err);
	uint64_t lsn;
	assert_jm_ok_err(journal_append(j, "appended later", 14, &lsn, &err), &err);
	assert_jm_ok_err(journal_append(j, "and one more", 12, &lsn, &err), &err);
	journal_close(j);
	FILE *back = fopen(path_in(f->dir, CLEAN), "wb");
	assert_non_null(back);
	assert_int_equal(fwrite(marker, 1, sizeof marker, back), sizeof marker);
	assert_int_equal(fclose(back), 0);
	assert_jm_ok_err(load(f->dir, false, true, &r, NULL, &j, &err), &err);
	journal_close(j);
	assert_int_equal(r.records, 5);
	/* ... and a torn end of that later write is cut as after a crash. (Had
	 * the first record past the marker been torn, nothing would tell that
	 * from damage: it would be refused, and --repair would cut it.) */
	long size = file_size(f->dir, SEG1);
	assert_int_equal(truncate(path_in(f->dir, SEG1), (off_t)(size - 2)), 0);
	struct journal_replay_stats stats;
	assert_jm_ok_err(load(f->dir, false, false, &r, &stats, &j, &err), &err);
	journal_close(j);
	assert_int_equal(r.records, 4);
	assert_true(stats.torn_tail_offset > third);
	assert_int_equal(stats.torn_tail_bytes, size - 2 - (long)stats.torn_tail_offset);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_stop_writes_the_marker_and_the_next_start_deletes_it),
	    T(test_a_zeroed_tail_after_a_clean_stop_is_corrupt_naming_the_offset),
	    T(test_the_same_tail_without_a_marker_is_cut_as_torn),
	    T(test_repair_cuts_damage_after_a_clean_stop_and_starts),
	    T(test_a_journal_shorter_than_the_marker_says_is_corrupt),
	    T(test_a_damaged_marker_is_refused_and_ignored_by_repair),
	    T(test_stop_that_cannot_write_its_records_says_how_many_and_leaves_no_marker),
	    T(test_a_marker_that_valid_records_follow_is_stale_and_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
