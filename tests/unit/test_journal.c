/* The journal: what is appended comes back on replay in order and exactly
 * once; durability callbacks wait for the sync the policy promises; a torn
 * tail is cut, damage before it is refused (or repaired on request); a full
 * disk refuses new appends without losing or half-writing accepted ones;
 * compaction replaces old segments by a snapshot.
 *
 * Faults come through the journal_io seam (test_io below) or are built on
 * disk by hand. Every test works in its own mkdtemp directory. */
#include "jm_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "segment_records.h"
#include "clock.h"
#include "journal.h"
#include "journal_internal.h"

#define SEG1 "journal-0000000000000001.log"
#define SEG2 "journal-0000000000000002.log"
#define SEG3 "journal-0000000000000003.log"
#define SNAP2 "snapshot-0000000000000002.snap"
#define TMP2 "snapshot-0000000000000002.tmp"
#define WAIT_MS 5000
#define FRAME_BYTES 8

/* Polls cond to a deadline; names what was awaited on failure. */
#define wait_for(cond)                                                                             \
	do {                                                                                       \
		uint64_t deadline_ = jm_mono_us() + WAIT_MS * 1000u;                               \
		while (!(cond)) {                                                                  \
			if (jm_mono_us() > deadline_)                                              \
				fail_msg("timed out after %d ms waiting for %s", WAIT_MS, #cond);  \
			usleep(1000);                                                              \
		}                                                                                  \
	} while (0)

/* --- the io seam ---------------------------------------------------------- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int write_errno;        /* writes fail with this while nonzero */
	size_t partial_bytes;   /* ... after first writing this many */
	int sync_errno;         /* syncs fail with this while nonzero */
	unsigned sync_delay_us; /* a slow disk */
	bool gate;              /* syncs wait until allowed */
	unsigned syncs_allowed;
	unsigned syncs_entered;
	unsigned syncs_done;
	unsigned writes;
} seam = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static ssize_t seam_write(int fd, const void *buf, size_t len)
{
	pthread_mutex_lock(&seam.mu);
	seam.writes++;
	int fail = seam.write_errno;
	size_t partial = seam.partial_bytes;
	if (fail != 0 && partial > 0) {
		if (len > partial)
			len = partial;
		seam.partial_bytes -= len;
		fail = 0;
	}
	pthread_mutex_unlock(&seam.mu);
	if (fail != 0) {
		errno = fail;
		return -1;
	}
	return write(fd, buf, len);
}

static int seam_sync(int fd)
{
	pthread_mutex_lock(&seam.mu);
	seam.syncs_entered++;
	uint64_t deadline = jm_mono_us() + 10u * 1000000u;
	while (seam.gate && seam.syncs_done >= seam.syncs_allowed && jm_mono_us() < deadline) {
		struct timespec ts = jm_timespec_after_ms(CLOCK_REALTIME, 1);
		pthread_cond_timedwait(&seam.cv, &seam.mu, &ts);
	}
	int fail = seam.sync_errno;
	unsigned delay_us = seam.sync_delay_us;
	pthread_mutex_unlock(&seam.mu);
	if (delay_us > 0)
		usleep(delay_us); /* simulates the disk's latency */
	int rc = fail ? -1 : fdatasync(fd);
	pthread_mutex_lock(&seam.mu);
	seam.syncs_done++;
	pthread_mutex_unlock(&seam.mu);
	if (fail) {
		errno = fail;
		return -1;
	}
	return rc;
}

static const struct journal_io test_io = {.write = seam_write, .sync = seam_sync};

static unsigned seam_get(const unsigned *field)
{
	pthread_mutex_lock(&seam.mu);
	unsigned value = *field;
	pthread_mutex_unlock(&seam.mu);
	return value;
}

static void seam_set_write_failure(int err_no, size_t partial_bytes)
{
	pthread_mutex_lock(&seam.mu);
	seam.write_errno = err_no;
	seam.partial_bytes = partial_bytes;
	pthread_mutex_unlock(&seam.mu);
}

static void seam_set_sync_failure(int err_no)
{
	pthread_mutex_lock(&seam.mu);
	seam.sync_errno = err_no;
	pthread_mutex_unlock(&seam.mu);
}

/* Closes the gate: syncs from now on wait for seam_allow_syncs. */
static void seam_close_gate(void)
{
	pthread_mutex_lock(&seam.mu);
	seam.gate = true;
	seam.syncs_allowed = seam.syncs_done;
	pthread_mutex_unlock(&seam.mu);
}

static void seam_allow_syncs(unsigned more)
{
	pthread_mutex_lock(&seam.mu);
	seam.syncs_allowed += more;
	pthread_cond_broadcast(&seam.cv);
	pthread_mutex_unlock(&seam.mu);
}

static void seam_open_gate(void)
{
	pthread_mutex_lock(&seam.mu);
	seam.gate = false;
	pthread_cond_broadcast(&seam.cv);
	pthread_mutex_unlock(&seam.mu);
}

static void seam_reset(void)
{
	pthread_mutex_lock(&seam.mu);
	seam.write_errno = 0;
	seam.partial_bytes = 0;
	seam.sync_errno = 0;
	seam.sync_delay_us = 0;
	seam.gate = false;
	seam.syncs_allowed = seam.syncs_entered = seam.syncs_done = seam.writes = 0;
	pthread_cond_broadcast(&seam.cv);
	pthread_mutex_unlock(&seam.mu);
}

/* --- callbacks ------------------------------------------------------------ */

struct durable {
	pthread_mutex_t mu;
	int fired;
	int status;
	unsigned syncs_done_at_fire;
	pthread_t thread;
};

static void durable_init(struct durable *d)
{
	memset(d, 0, sizeof *d);
	pthread_mutex_init(&d->mu, NULL);
}

static void durable_cb(void *arg, int status)
{
	struct durable *d = arg;
	unsigned syncs = seam_get(&seam.syncs_done);
	pthread_mutex_lock(&d->mu);
	d->fired++;
	d->status = status;
	d->syncs_done_at_fire = syncs;
	d->thread = pthread_self();
	pthread_mutex_unlock(&d->mu);
}

static int durable_fired(struct durable *d)
{
	pthread_mutex_lock(&d->mu);
	int fired = d->fired;
	pthread_mutex_unlock(&d->mu);
	return fired;
}

/* --- replay collection ---------------------------------------------------- */

struct collected {
	size_t len;
	char *bodies[512];
	size_t lens[512];
	uint64_t offsets[512];
	char files[512][64];
};

static int collect_apply(void *arg, const uint8_t *body, size_t len, const char *file,
                         uint64_t offset, struct jm_err *err)
{
	struct collected *c = arg;
	if (c->len == 512)
		return jm_err_set(err, JM_ELIMIT, "test collects at most 512 records");
	c->bodies[c->len] = malloc(len + 1);
	memcpy(c->bodies[c->len], body, len);
	c->bodies[c->len][len] = '\0';
	c->lens[c->len] = len;
	c->offsets[c->len] = offset;
	snprintf(c->files[c->len], sizeof c->files[c->len], "%s", file);
	c->len++;
	return 0;
}

static struct collected *collected_new(void)
{
	struct collected *c = calloc(1, sizeof *c);
	assert_non_null(c);
	return c;
}

static void collected_free(struct collected *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->len; i++)
		free(c->bodies[i]);
	free(c);
}

static void assert_bodies(const struct collected *c, const char *const *want, size_t want_len)
{
	assert_int_equal(c->len, want_len);
	for (size_t i = 0; i < want_len; i++)
		assert_string_equal(c->bodies[i], want[i]);
}

/* --- files ---------------------------------------------------------------- */

struct fixture {
	char dir[64];
};

static void dir_make(char *out, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(out, size, "%s/jm-journal-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(out));
}

static void dir_remove(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *ent;
	char path[512];
	while ((ent = readdir(d)) != NULL) {
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	dir_make(f->dir, sizeof f->dir);
	seam_reset();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	seam_reset();
	dir_remove(f->dir);
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
	struct stat st;
	return stat(path_in(dir, name), &st) == 0;
}

static long file_size(const char *dir, const char *name)
{
	struct stat st;
	assert_int_equal(stat(path_in(dir, name), &st), 0);
	return (long)st.st_size;
}

static uint8_t *file_read(const char *dir, const char *name, size_t *len);

static uint8_t *file_read(const char *dir, const char *name, size_t *len)
{
	FILE *file = fopen(path_in(dir, name), "rb");
	assert_non_null(file);
	fseek(file, 0, SEEK_END);
	*len = (size_t)ftell(file);
	fseek(file, 0, SEEK_SET);
	uint8_t *data = malloc(*len + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, *len, file), *len);
	fclose(file);
	return data;
}

static void file_write(const char *dir, const char *name, const uint8_t *data, size_t len)
{
	FILE *file = fopen(path_in(dir, name), "wb");
	assert_non_null(file);
	assert_int_equal(fwrite(data, 1, len, file), len);
	assert_int_equal(fclose(file), 0);
}

/* --- journal helpers ------------------------------------------------------ */

struct open_args {
	enum journal_fsync fsync;
	bool repair;
	bool read_only;
	bool real_io;
};

/* Opens and replays dir into c (may be NULL); returns replay's code, with
 * *out open either way (or NULL if open failed). */
static int journal_load(const char *dir, struct open_args args, struct collected *c,
                        struct journal_replay_stats *stats, struct journal **out,
                        struct jm_err *err)
{
	struct journal_options opts = {
	    .dir = dir,
	    .fsync = args.fsync,
	    .repair = args.repair,
	    .read_only = args.read_only,
	    .io = args.real_io ? NULL : &test_io,
	};
	*out = NULL;
	int rc = journal_open(out, &opts, err);
	if (rc != 0)
		return rc;
	return journal_replay(*out, c ? collect_apply : NULL, c, stats, err);
}

static struct journal *journal_started(const char *dir, enum journal_fsync policy)
{
	struct jm_err err;
	struct journal *j;
	struct open_args args = {.fsync = policy};
	assert_jm_ok_err(journal_load(dir, args, NULL, NULL, &j, &err), &err);
	assert_jm_ok_err(journal_start(j, &err), &err);
	return j;
}

static uint64_t append_text(struct journal *j, const char *text)
{
	struct jm_err err;
	uint64_t lsn = 0;
	assert_jm_ok_err(journal_append(j, text, strlen(text), &lsn, &err), &err);
	return lsn;
}

static void append_and_wait(struct journal *j, const char *text)
{
	struct durable d;
	durable_init(&d);
	journal_when_durable(j, append_text(j, text), durable_cb, &d);
	wait_for(durable_fired(&d) == 1);
	assert_int_equal(d.status, 0);
}

/* Writes the given bodies to a fresh journal in dir and closes it. */
static void journal_fill(const char *dir, const char *const *bodies, size_t len)
{
	struct journal *j = journal_started(dir, JOURNAL_FSYNC_BATCH);
	for (size_t i = 0; i < len; i++)
		append_text(j, bodies[i]);
	journal_close(j);
}

/* Replays dir (repair off) into a new collection; asserts success. */
static struct collected *replay_ok(const char *dir, struct journal_replay_stats *stats)
{
	struct jm_err err;
	struct collected *c = collected_new();
	struct journal *j;
	struct open_args args = {.fsync = JOURNAL_FSYNC_BATCH};
	assert_jm_ok_err(journal_load(dir, args, c, stats, &j, &err), &err);
	journal_close(j);
	return c;
}

static const char *const five[] = {
    "abc", "the second record, forty bytes long.....", "seventeen bytes!!",
    /* one string in two pieces (parenthesised, so clang's
     * -Wstring-concatenation knows it is meant) */
    ("a hundred bytes: ................................................"
     ".................................."),
    "nine byte"};

/* --- tests: appending and replay ---------------------------------------- */

static void test_append_close_reopen_replays_all_bodies_in_order(void **state)
{
	struct fixture *f = *state;
	journal_fill(f->dir, five, 5);
	struct journal_replay_stats stats;
	struct collected *c = replay_ok(f->dir, &stats);
	assert_bodies(c, five, 5);
	assert_int_equal(stats.records, 5);
	assert_int_equal(stats.torn_tail_bytes, 0);
	assert_string_equal(c->files[0], SEG1);
	assert_int_equal(c->offsets[0], 24);
	assert_int_equal(c->offsets[1], 24 + 8 + 3);
	collected_free(c);

	/* Appends after a reopen go to the end of the same segment. */
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	append_text(j, "sixth");
	journal_close(j);
	c = replay_ok(f->dir, NULL);
	assert_int_equal(c->len, 6);
	assert_string_equal(c->bodies[5], "sixth");
	assert_string_equal(c->files[5], SEG1);
	collected_free(c);
}

struct appender {
	struct journal *j;
	int thread_index;
	int appends;
	int failures;
};

static void sem_post_cb(void *arg, int status)
{
	if (status == 0)
		sem_post(arg);
}

static void *appender_main(void *arg)
{
	struct appender *a = arg;
	sem_t done;
	sem_init(&done, 0, 0);
	for (int i = 0; i < a->appends; i++) {
		char body[64];
		snprintf(body, sizeof body, "thread %d record %03d", a->thread_index, i);
		uint64_t lsn;
		struct jm_err err;
		if (journal_append(a->j, body, strlen(body), &lsn, &err) != 0) {
			a->failures++;
			break;
		}
		journal_when_durable(a->j, lsn, sem_post_cb, &done);
		struct timespec ts = jm_timespec_after_ms(CLOCK_REALTIME, 5000); /* sem's clock */
		if (sem_timedwait(&done, &ts) != 0) {
			a->failures++;
			break;
		}
	}
	sem_destroy(&done);
	return NULL;
}

static void test_group_commit_covers_many_appends_with_few_syncs(void **state)
{
	struct fixture *f = *state;
	enum { threads = 8, appends = 40 };
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	seam.sync_delay_us = 2000;
	unsigned syncs_before = seam_get(&seam.syncs_done);
	pthread_t tids[threads];
	struct appender apps[threads];
	for (int t = 0; t < threads; t++) {
		apps[t] = (struct appender){.j = j, .thread_index = t, .appends = appends};
		assert_int_equal(pthread_create(&tids[t], NULL, appender_main, &apps[t]), 0);
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(tids[t], NULL);
		assert_int_equal(apps[t].failures, 0);
	}
	unsigned syncs = seam_get(&seam.syncs_done) - syncs_before;
	journal_close(j);
	print_message("group commit: %d records, %u syncs\n", threads * appends, syncs);
	assert_true(syncs * 2 <= threads * appends);

	struct collected *c = replay_ok(f->dir, NULL);
	assert_int_equal(c->len, threads * appends);
	int next[threads] = {0};
	for (size_t i = 0; i < c->len; i++) {
		int t, n;
		assert_int_equal(sscanf(c->bodies[i], "thread %d record %d", &t, &n), 2);
		assert_int_equal(n, next[t]);
		next[t]++;
	}
	collected_free(c);
}

static void test_batch_callback_fires_only_after_the_sync(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	seam_close_gate();
	struct durable d;
	durable_init(&d);
	unsigned entered = seam_get(&seam.syncs_entered);
	journal_when_durable(j, append_text(j, "one"), durable_cb, &d);
	wait_for(seam_get(&seam.syncs_entered) > entered);
	assert_int_equal(durable_fired(&d), 0);
	assert_int_equal(journal_durable_lsn(j), 0);
	unsigned done = seam_get(&seam.syncs_done);
	seam_allow_syncs(1);
	wait_for(durable_fired(&d) == 1);
	assert_int_equal(d.status, 0);
	assert_true(d.syncs_done_at_fire > done);
	assert_int_equal(journal_durable_lsn(j), 1);
	seam_open_gate();
	journal_close(j);
}

static void test_always_gives_each_record_its_own_sync_before_its_callback(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_ALWAYS);
	seam_close_gate();
	unsigned entered = seam_get(&seam.syncs_entered);
	unsigned done = seam_get(&seam.syncs_done);
	struct durable d[3];
	for (int i = 0; i < 3; i++) {
		durable_init(&d[i]);
		char body[16];
		snprintf(body, sizeof body, "record %d", i);
		journal_when_durable(j, append_text(j, body), durable_cb, &d[i]);
	}
	for (unsigned i = 0; i < 3; i++) {
		wait_for(seam_get(&seam.syncs_entered) >= entered + i + 1);
		for (unsigned k = i; k < 3; k++)
			assert_int_equal(durable_fired(&d[k]), 0);
		seam_allow_syncs(1);
		wait_for(durable_fired(&d[i]) == 1);
		assert_int_equal(d[i].syncs_done_at_fire, done + i + 1);
	}
	seam_open_gate();
	journal_close(j);
}

static void test_everysec_reports_durable_after_write_without_waiting_for_a_sync(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_EVERYSEC);
	seam_close_gate();
	unsigned done = seam_get(&seam.syncs_done);
	struct durable d;
	durable_init(&d);
	journal_when_durable(j, append_text(j, "fast"), durable_cb, &d);
	wait_for(durable_fired(&d) == 1);
	assert_int_equal(d.syncs_done_at_fire, done);
	seam_open_gate();
	journal_close(j);
	struct collected *c = replay_ok(f->dir, NULL);
	assert_int_equal(c->len, 1);
	collected_free(c);
}

/* The order in which one sync's callbacks ran, by tag. */
struct fire_order {
	pthread_mutex_t lock;
	char tags[8];
	int count;
};

struct fire_tag {
	struct fire_order *order;
	char tag;
};

static void fire_order_cb(void *arg, int status)
{
	struct fire_tag *t = arg;
	assert_int_equal(status, 0);
	pthread_mutex_lock(&t->order->lock);
	if (t->order->count < (int)sizeof t->order->tags - 1)
		t->order->tags[t->order->count++] = t->tag;
	pthread_mutex_unlock(&t->order->lock);
}

static int fire_order_count(struct fire_order *o)
{
	pthread_mutex_lock(&o->lock);
	int count = o->count;
	pthread_mutex_unlock(&o->lock);
	return count;
}

static void test_first_callbacks_run_before_the_others_of_their_lsn_after_lower_lsns(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	seam_close_gate();
	struct fire_order order = {.count = 0};
	pthread_mutex_init(&order.lock, NULL);
	struct fire_tag v = {&order, 'v'}, x = {&order, 'x'}, y = {&order, 'y'}, z = {&order, 'z'},
	                w = {&order, 'w'};
	uint64_t one = append_text(j, "one");
	uint64_t two = append_text(j, "two");
	journal_when_durable(j, two, fire_order_cb, &x);
	journal_when_durable_first(j, two, fire_order_cb, &y);
	journal_when_durable(j, two, fire_order_cb, &z);
	journal_when_durable_first(j, two, fire_order_cb, &w);
	journal_when_durable(j, one, fire_order_cb, &v);
	assert_int_equal(fire_order_count(&order), 0);
	seam_open_gate();
	wait_for(fire_order_count(&order) == 5);
	assert_string_equal(order.tags, "vywxz");
	journal_close(j);
	pthread_mutex_destroy(&order.lock);
}

static void test_callback_for_durable_lsn_fires_at_once_on_the_caller_thread(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	struct durable d;
	durable_init(&d);
	journal_when_durable(j, 0, durable_cb, &d);
	assert_int_equal(d.fired, 1);
	assert_true(pthread_equal(d.thread, pthread_self()));

	append_and_wait(j, "done");
	durable_init(&d);
	journal_when_durable(j, 1, durable_cb, &d);
	assert_int_equal(d.fired, 1);
	assert_int_equal(d.status, 0);
	assert_true(pthread_equal(d.thread, pthread_self()));
	journal_close(j);
}

/* --- tests: a request's thread writing its own records (journal_lead_end) - */

static void test_a_leading_thread_syncs_its_records_and_runs_their_callbacks_itself(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	unsigned done = seam_get(&seam.syncs_done);
	struct durable d;
	durable_init(&d);
	journal_lead_begin(j);
	uint64_t lsn = append_text(j, "mine");
	journal_when_durable(j, lsn, durable_cb, &d);
	journal_lead_end(j);
	/* On return, not later: this thread wrote, synced and ran it. */
	assert_int_equal(durable_fired(&d), 1);
	assert_int_equal(d.status, 0);
	assert_true(pthread_equal(d.thread, pthread_self()));
	assert_true(d.syncs_done_at_fire > done);
	assert_int_equal(journal_durable_lsn(j), lsn);
	journal_close(j);
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"mine"};
	assert_bodies(c, want, 1);
	collected_free(c);
}

static void test_records_appended_while_another_thread_syncs_are_left_to_that_sync(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	seam_close_gate();
	unsigned entered = seam_get(&seam.syncs_entered);
	struct durable first, second;
	durable_init(&first);
	durable_init(&second);
	journal_when_durable(j, append_text(j, "first"), durable_cb, &first);
	wait_for(seam_get(&seam.syncs_entered) > entered); /* the writer thread syncs */
	journal_lead_begin(j);
	journal_when_durable(j, append_text(j, "second"), durable_cb, &second);
	journal_lead_end(j); /* returns at once: a write is under way */
	assert_int_equal(durable_fired(&second), 0);
	seam_allow_syncs(2);
	wait_for(durable_fired(&first) == 1 && durable_fired(&second) == 1);
	assert_false(pthread_equal(second.thread, pthread_self()));
	assert_int_equal(second.status, 0);
	seam_open_gate();
	journal_close(j);
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"first", "second"};
	assert_bodies(c, want, 2);
	collected_free(c);
}

static void test_a_leader_whose_sync_fails_leaves_the_retry_to_the_writer_thread(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	seam_set_sync_failure(EIO);
	struct durable d;
	durable_init(&d);
	journal_lead_begin(j);
	journal_when_durable(j, append_text(j, "retried"), durable_cb, &d);
	journal_lead_end(j);
	assert_int_equal(durable_fired(&d), 0);
	assert_false(journal_is_writable(j, NULL));
	seam_set_sync_failure(0);
	wait_for(durable_fired(&d) == 1);
	assert_int_equal(d.status, 0);
	assert_false(pthread_equal(d.thread, pthread_self()));
	journal_close(j);
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"retried"};
	assert_bodies(c, want, 1);
	collected_free(c);
}

/* A deferring request's records (a submit that waits for its job's
 * outcome) are not written at its journal_lead_end; the next record that
 * somebody waits for takes them along: one write, one sync for both. */
static void test_deferred_records_wait_for_the_record_that_is_waited_on(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	unsigned writes = seam_get(&seam.writes);
	unsigned syncs = seam_get(&seam.syncs_done);
	journal_lead_begin(j);
	uint64_t job_lsn = append_text(j, "job");
	journal_lead_defer(j);
	uint64_t ended_us = jm_mono_us();
	journal_lead_end(j);
	/* Unwritten until the deferral's end (judged only while it lasts). */
	if (jm_mono_us() - ended_us < JOURNAL_DEFER_US / 2) {
		assert_int_equal(seam_get(&seam.writes), writes);
		assert_true(journal_durable_lsn(j) < job_lsn);
	}
	struct durable d;
	durable_init(&d);
	journal_lead_begin(j);
	uint64_t done_lsn = append_text(j, "done");
	journal_when_durable(j, done_lsn, durable_cb, &d);
	journal_lead_end(j);
	if (jm_mono_us() - ended_us < JOURNAL_DEFER_US / 2) {
		/* This thread wrote both records at once, as it leads. */
		assert_int_equal(durable_fired(&d), 1);
		assert_true(pthread_equal(d.thread, pthread_self()));
		assert_int_equal(seam_get(&seam.writes), writes + 1);
		assert_int_equal(seam_get(&seam.syncs_done), syncs + 1);
	}
	wait_for(durable_fired(&d) == 1);
	assert_int_equal(d.status, 0);
	assert_true(journal_durable_lsn(j) >= done_lsn);
	journal_close(j);
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"job", "done"};
	assert_bodies(c, want, 2);
	collected_free(c);
}

/* Nobody asks for them: the writer thread writes them at the deadline,
 * never before it. */
static void test_deferred_records_nobody_waits_for_are_written_at_the_deadline(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	uint64_t before_us = jm_mono_us();
	journal_lead_begin(j);
	uint64_t lsn = append_text(j, "alone");
	journal_lead_defer(j);
	journal_lead_end(j);
	wait_for(journal_durable_lsn(j) >= lsn);
	assert_true(jm_mono_us() - before_us >= JOURNAL_DEFER_US);
	struct durable d;
	durable_init(&d);
	journal_when_durable(j, lsn, durable_cb, &d);
	assert_int_equal(durable_fired(&d), 1); /* at once: already durable */
	journal_close(j);
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"alone"};
	assert_bodies(c, want, 1);
	collected_free(c);
}

/* Another thread's append (not deferred) is written at once, and the
 * deferred record before it with it; so is a deferred record somebody
 * then waits for from outside a lead. */
static void test_deferred_records_go_with_the_next_write_or_a_waiter(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	journal_lead_begin(j);
	uint64_t first = append_text(j, "deferred");
	journal_lead_defer(j);
	journal_lead_end(j);
	struct durable d;
	durable_init(&d);
	journal_when_durable(j, append_text(j, "plain"), durable_cb, &d);
	wait_for(durable_fired(&d) == 1);
	assert_true(journal_durable_lsn(j) > first);

	journal_lead_begin(j);
	uint64_t second = append_text(j, "deferred again");
	journal_lead_defer(j);
	journal_lead_end(j);
	struct durable w;
	durable_init(&w);
	journal_when_durable(j, second, durable_cb, &w);
	wait_for(durable_fired(&w) == 1);
	assert_int_equal(w.status, 0);
	journal_close(j);
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"deferred", "plain", "deferred again"};
	assert_bodies(c, want, 3);
	collected_free(c);
}

static void test_everysec_appends_between_lead_calls_still_go_to_the_writer_thread(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_EVERYSEC);
	struct durable d;
	durable_init(&d);
	journal_lead_begin(j);
	journal_when_durable(j, append_text(j, "written"), durable_cb, &d);
	journal_lead_end(j);
	wait_for(durable_fired(&d) == 1);
	assert_false(pthread_equal(d.thread, pthread_self()));
	journal_close(j);
}

static void test_oversized_body_is_refused(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	struct jm_err err;
	uint64_t lsn = 0;
	char small[1] = {0};
	assert_int_equal(journal_append(j, small, (80u << 20) + 1, &lsn, &err), JM_ETOOBIG);
	assert_non_null(strstr(err.msg, "over the limit"));
	journal_close(j);
}

static void test_fsync_policy_names_parse_and_print(void **state)
{
	(void)state;
	enum journal_fsync policy;
	const char *names[] = {"always", "batch", "everysec", "off"};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(journal_fsync_parse(names[i], &policy), 0);
		assert_string_equal(journal_fsync_name(policy), names[i]);
	}
	assert_int_equal(journal_fsync_parse("sometimes", &policy), JM_EINVAL);
}

/* --- tests: torn tails and damage --------------------------------------- */

static void test_torn_tail_at_every_offset_of_the_last_two_records_is_cut(void **state)
{
	struct fixture *f = *state;
	journal_fill(f->dir, five, 5);
	struct collected *orig = replay_ok(f->dir, NULL);
	size_t size;
	uint8_t *bytes = file_read(f->dir, SEG1, &size);
	uint64_t ends[5];
	for (int i = 0; i < 5; i++)
		ends[i] = orig->offsets[i] + 8 + orig->lens[i];
	assert_int_equal(ends[4], size);

	for (size_t cut = orig->offsets[3]; cut < size; cut++) {
		char dir[64];
		dir_make(dir, sizeof dir);
		file_write(dir, SEG1, bytes, cut);
		size_t whole = 0;
		while (whole < 5 && ends[whole] <= cut)
			whole++;
		bool boundary = cut == orig->offsets[whole];

		struct jm_err err;
		struct collected *c = collected_new();
		struct journal_replay_stats stats;
		struct journal *j;
		struct open_args args = {.fsync = JOURNAL_FSYNC_BATCH};
		assert_jm_ok_err(journal_load(dir, args, c, &stats, &j, &err), &err);
		assert_bodies(c, five, whole);
		if (boundary) {
			assert_int_equal(stats.torn_tail_bytes, 0);
		} else {
			assert_int_equal(stats.torn_tail_offset, orig->offsets[whole]);
			assert_int_equal(stats.torn_tail_bytes, cut - orig->offsets[whole]);
			assert_string_equal(stats.torn_tail_file, SEG1);
		}
		assert_int_equal(file_size(dir, SEG1), orig->offsets[whole]);
		assert_jm_ok_err(journal_start(j, &err), &err);
		append_text(j, "after the cut");
		journal_close(j);
		collected_free(c);

		c = replay_ok(dir, &stats);
		assert_int_equal(c->len, whole + 1);
		assert_string_equal(c->bodies[whole], "after the cut");
		assert_int_equal(stats.torn_tail_bytes, 0);
		collected_free(c);
		dir_remove(dir);
	}
	free(bytes);
	collected_free(orig);
}

static void
test_zero_filled_tail_at_a_record_boundary_is_preallocated_space_kept_and_overwritten(void **state)
{
	struct fixture *f = *state;
	journal_fill(f->dir, five, 3);
	size_t size;
	uint8_t *bytes = file_read(f->dir, SEG1, &size);
	uint8_t *grown = calloc(1, size + 4096);
	memcpy(grown, bytes, size);
	file_write(f->dir, SEG1, grown, size + 4096);
	struct journal_replay_stats stats;
	struct collected *c = replay_ok(f->dir, &stats);
	assert_bodies(c, five, 3);
	assert_int_equal(stats.torn_tail_bytes, 0);
	assert_int_equal(file_size(f->dir, SEG1), (long)size + 4096);
	collected_free(c);

	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	append_and_wait(j, five[3]);
	journal_close(j); /* cuts the zeros after the last record */
	assert_int_equal(file_size(f->dir, SEG1), (long)(size + FRAME_BYTES + strlen(five[3])));
	c = replay_ok(f->dir, &stats);
	assert_bodies(c, five, 4);
	assert_int_equal(stats.torn_tail_bytes, 0);
	collected_free(c);
	free(grown);
	free(bytes);
}

static void test_partial_record_in_preallocated_space_is_cut_as_torn(void **state)
{
	struct fixture *f = *state;
	journal_fill(f->dir, five, 3);
	size_t size;
	uint8_t *bytes = file_read(f->dir, SEG1, &size);
	uint8_t *grown = calloc(1, size + 4096);
	memcpy(grown, bytes, size);
	memset(grown + size, 0x5a, 5); /* a write cut short, zeros after it */
	file_write(f->dir, SEG1, grown, size + 4096);
	struct journal_replay_stats stats;
	struct collected *c = replay_ok(f->dir, &stats);
	assert_bodies(c, five, 3);
	assert_int_equal(stats.torn_tail_offset, size);
	assert_int_equal(stats.torn_tail_bytes, 4096);
	assert_int_equal(file_size(f->dir, SEG1), (long)size);
	collected_free(c);
	free(grown);
	free(bytes);
}

static void test_read_only_replay_reports_torn_tail_without_cutting(void **state)
{
	struct fixture *f = *state;
	journal_fill(f->dir, five, 3);
	long size = file_size(f->dir, SEG1);
	assert_int_equal(truncate(path_in(f->dir, SEG1), size - 2), 0);
	struct jm_err err;
	struct collected *c = collected_new();
	struct journal_replay_stats stats;
	struct journal *j;
	struct open_args args = {.read_only = true};
	assert_jm_ok_err(journal_load(f->dir, args, c, &stats, &j, &err), &err);
	assert_int_equal(c->len, 2);
	assert_int_equal(stats.torn_tail_bytes, size - 2 - (long)stats.torn_tail_offset);
	assert_int_equal(file_size(f->dir, SEG1), size - 2);
	assert_int_equal(journal_start(j, &err), JM_EINVAL);
	journal_close(j);
	collected_free(c);
}

/* Offsets of the records of a journal in dir. */
static struct collected *offsets_of(const char *dir)
{
	return replay_ok(dir, NULL);
}

static void flip_byte(const char *dir, const char *name, uint64_t offset)
{
	size_t size;
	uint8_t *bytes = file_read(dir, name, &size);
	assert_true(offset < size);
	bytes[offset] ^= 0x40;
	file_write(dir, name, bytes, size);
	free(bytes);
}

static void put_u32_at(const char *dir, const char *name, uint64_t offset, uint32_t value)
{
	size_t size;
	uint8_t *bytes = file_read(dir, name, &size);
	for (int i = 0; i < 4; i++)
		bytes[offset + (uint64_t)i] = (uint8_t)(value >> (8 * i));
	file_write(dir, name, bytes, size);
	free(bytes);
}

static void assert_corrupt_at(const char *dir, const char *name, uint64_t offset,
                              size_t records_before)
{
	struct jm_err err;
	jm_err_clear(&err);
	struct collected *c = collected_new();
	struct journal *j;
	struct open_args args = {.fsync = JOURNAL_FSYNC_BATCH};
	assert_int_equal(journal_load(dir, args, c, NULL, &j, &err), JM_ECORRUPT);
	char where[128];
	snprintf(where, sizeof where, "journal %s: byte %llu:", name, (unsigned long long)offset);
	if (strstr(err.msg, where) == NULL)
		fail_msg("error does not name \"%s\": %s", where, err.msg);
	assert_non_null(strstr(err.msg, "--check-journal"));
	assert_non_null(strstr(err.msg, "--repair"));
	assert_int_equal(c->len, records_before);
	journal_close(j);
	collected_free(c);
}

static void test_flipped_byte_in_a_middle_record_is_corrupt_naming_the_offset(void **state)
{
	struct fixture *f = *state;
	journal_fill(f->dir, five, 5);
	struct collected *o = offsets_of(f->dir);
	flip_byte(f->dir, SEG1, o->offsets[2] + 8 + 4);
	assert_corrupt_at(f->dir, SEG1, o->offsets[2], 2);
	collected_free(o);
}

static void test_repair_truncates_at_the_damage_and_keeps_what_came_before(void **state)
{
	struct fixture *f = *state;
	journal_fill(f->dir, five, 5);
	struct collected *o = offsets_of(f->dir);
	flip_byte(f->dir, SEG1, o->offsets[2] + 8 + 4);
	struct jm_err err;
	struct collected *c = collected_new();
	struct journal *j;
	struct open_args args = {.fsync = JOURNAL_FSYNC_BATCH, .repair = true};
	assert_jm_ok_err(journal_load(f->dir, args, c, NULL, &j, &err), &err);
	assert_bodies(c, five, 2);
	assert_int_equal(file_size(f->dir, SEG1), o->offsets[2]);
	assert_jm_ok_err(journal_start(j, &err), &err);
	append_text(j, "after repair");
	journal_close(j);
	collected_free(c);
	c = replay_ok(f->dir, NULL);
	assert_int_equal(c->len, 3);
	assert_string_equal(c->bodies[2], "after repair");
	collected_free(c);
	collected_free(o);
}

static void test_corrupt_length_field_is_caught(void **state)
{
	struct fixture *f = *state;
	const uint32_t bad_lengths[] = {0x00010000u, 0x7FFFFFFFu, 2u};
	for (size_t i = 0; i < 3; i++) {
		char dir[64];
		dir_make(dir, sizeof dir);
		journal_fill(dir, five, 5);
		struct collected *o = offsets_of(dir);
		put_u32_at(dir, SEG1, o->offsets[1], bad_lengths[i]);
		assert_corrupt_at(dir, SEG1, o->offsets[1], 1);
		collected_free(o);
		dir_remove(dir);
	}
	(void)f;
}

/* Builds segments 1..3 holding "one", "two", "three". */
static void three_segments(const char *dir)
{
	struct jm_err err;
	struct journal *j = journal_started(dir, JOURNAL_FSYNC_BATCH);
	const char *bodies[] = {"one", "two", "three"};
	for (int i = 0; i < 3; i++) {
		append_text(j, bodies[i]);
		if (i < 2) {
			struct journal_snapshot *snap;
			assert_jm_ok_err(journal_rotate(j, &snap, &err), &err);
			journal_snapshot_abort(snap);
		}
	}
	journal_close(j);
	assert_true(file_exists(dir, SEG3));
}

static void test_damage_at_the_end_of_an_earlier_segment_is_corrupt_not_torn(void **state)
{
	struct fixture *f = *state;
	three_segments(f->dir);
	flip_byte(f->dir, SEG1, 24 + 8 + 1);
	assert_corrupt_at(f->dir, SEG1, 24, 0);
}

static void test_missing_segment_in_the_sequence_is_corrupt(void **state)
{
	struct fixture *f = *state;
	three_segments(f->dir);
	assert_int_equal(unlink(path_in(f->dir, SEG2)), 0);
	struct jm_err err;
	struct journal *j;
	struct open_args args = {.fsync = JOURNAL_FSYNC_BATCH};
	assert_int_equal(journal_load(f->dir, args, NULL, NULL, &j, &err), JM_ECORRUPT);
	assert_non_null(strstr(err.msg, SEG2 " is missing before " SEG3));
	journal_close(j);
}

/* --- tests: failing writes ---------------------------------------------- */

/* Appends A and B durably, then makes writes fail with err_no after a
 * 5-byte partial write, and appends C. Returns the size of the segment
 * before C; *j and *c_done are set. */
static long start_failing(const char *dir, int err_no, struct journal **out, struct durable *c_done)
{
	struct journal *j = journal_started(dir, JOURNAL_FSYNC_BATCH);
	append_and_wait(j, "A");
	append_and_wait(j, "B");
	long size = segment_records_end(path_in(dir, SEG1));
	seam_set_write_failure(err_no, 5);
	durable_init(c_done);
	journal_when_durable(j, append_text(j, "C"), durable_cb, c_done);
	wait_for(!journal_is_writable(j, NULL));
	*out = j;
	return size;
}

static void test_full_disk_refuses_appends_and_leaves_no_partial_record(void **state)
{
	struct fixture *f = *state;
	struct journal *j;
	struct durable c_done;
	long size = start_failing(f->dir, ENOSPC, &j, &c_done);
	assert_int_equal(segment_records_end(path_in(f->dir, SEG1)), size);
	struct jm_err err;
	uint64_t lsn;
	assert_int_equal(journal_append(j, "D", 1, &lsn, &err), JM_ENOSPC);
	char want[256];
	snprintf(want, sizeof want,
	         "journal " SEG1 ": write failed at byte %ld: No space left on device; new "
	         "writes are refused until space returns",
	         size);
	assert_string_equal(err.msg, want);
	assert_false(journal_is_writable(j, &err));
	assert_string_equal(err.msg, want);
	assert_int_equal(durable_fired(&c_done), 0);
	seam_set_write_failure(0, 0);
	journal_close(j);
}

static void test_records_accepted_before_a_full_disk_are_written_once_space_returns(void **state)
{
	struct fixture *f = *state;
	struct journal *j;
	struct durable c_done;
	start_failing(f->dir, ENOSPC, &j, &c_done);
	seam_set_write_failure(0, 0);
	wait_for(durable_fired(&c_done) == 1);
	assert_int_equal(c_done.status, 0);
	assert_true(journal_is_writable(j, NULL));
	append_and_wait(j, "E");
	journal_close(j);
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"A", "B", "C", "E"};
	assert_bodies(c, want, 4);
	collected_free(c);
}

static void test_failed_sync_is_rewritten_like_a_failed_write(void **state)
{
	struct fixture *f = *state;
	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	append_and_wait(j, "A");
	long size = segment_records_end(path_in(f->dir, SEG1));
	seam_set_sync_failure(EIO);
	struct durable d;
	durable_init(&d);
	journal_when_durable(j, append_text(j, "B"), durable_cb, &d);
	wait_for(!journal_is_writable(j, NULL));
	struct jm_err err;
	journal_is_writable(j, &err);
	assert_non_null(strstr(err.msg, "sync failed"));
	assert_non_null(strstr(err.msg, "Input/output error"));
	assert_int_equal(durable_fired(&d), 0);
	assert_int_equal(segment_records_end(path_in(f->dir, SEG1)), size);
	seam_set_sync_failure(0);
	wait_for(durable_fired(&d) == 1);
	journal_close(j);
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"A", "B"};
	assert_bodies(c, want, 2);
	collected_free(c);
}

static void test_close_gives_up_on_failing_writes_and_reports_closed(void **state)
{
	struct fixture *f = *state;
	struct journal *j;
	struct durable c_done;
	long size = start_failing(f->dir, EIO, &j, &c_done);
	uint64_t began = jm_mono_us();
	journal_close(j);
	uint64_t took_ms = (jm_mono_us() - began) / 1000u;
	assert_true(took_ms < 8000);
	assert_int_equal(c_done.fired, 1);
	assert_int_equal(c_done.status, JM_ECLOSED);
	assert_int_equal(segment_records_end(path_in(f->dir, SEG1)), size);
	seam_set_write_failure(0, 0);
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"A", "B"};
	assert_bodies(c, want, 2);
	collected_free(c);
}

static void test_file_size_limit_is_handled_like_a_full_disk(void **state)
{
	struct fixture *f = *state;
	void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
	struct rlimit old_limit;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
	struct jm_err err;
	struct journal *j;
	struct open_args args = {.fsync = JOURNAL_FSYNC_BATCH, .real_io = true};
	assert_jm_ok_err(journal_load(f->dir, args, NULL, NULL, &j, &err), &err);
	assert_jm_ok_err(journal_start(j, &err), &err);
	append_and_wait(j, "A");
	long size = segment_records_end(path_in(f->dir, SEG1));

	struct rlimit low = old_limit;
	low.rlim_cur = (rlim_t)size + 100;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
	char big[1000];
	memset(big, 'x', sizeof big);
	big[sizeof big - 1] = '\0';
	struct durable d;
	durable_init(&d);
	journal_when_durable(j, append_text(j, big), durable_cb, &d);
	uint64_t deadline = jm_mono_us() + WAIT_MS * 1000u;
	while (journal_is_writable(j, NULL) && jm_mono_us() < deadline)
		usleep(1000);
	bool refused = !journal_is_writable(j, &err);
	long size_while_failing = segment_records_end(path_in(f->dir, SEG1));
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
	signal(SIGXFSZ, old_handler);

	assert_true(refused);
	assert_non_null(strstr(err.msg, "File too large"));
	assert_int_equal(size_while_failing, size);
	wait_for(durable_fired(&d) == 1);
	journal_close(j);
	struct collected *c = replay_ok(f->dir, NULL);
	assert_int_equal(c->len, 2);
	assert_string_equal(c->bodies[1], big);
	collected_free(c);
}

/* --- tests: compaction -------------------------------------------------- */

/* A, rotate, snapshot {S1, S2}, C (after the rotation), commit, D. */
static void compacted_journal(const char *dir)
{
	struct jm_err err;
	struct journal *j = journal_started(dir, JOURNAL_FSYNC_BATCH);
	append_text(j, "A");
	append_text(j, "B");
	struct journal_snapshot *snap;
	assert_jm_ok_err(journal_rotate(j, &snap, &err), &err);
	assert_jm_ok_err(journal_snapshot_append(snap, "S1", 2, &err), &err);
	append_text(j, "C");
	assert_jm_ok_err(journal_snapshot_append(snap, "S2", 2, &err), &err);
	assert_jm_ok_err(journal_snapshot_commit(snap, &err), &err);
	append_and_wait(j, "D");
	assert_int_equal(journal_log_bytes(j), 2 * (8 + 1));
	assert_int_equal(journal_snapshot_bytes(j), file_size(dir, SNAP2));
	journal_close(j);
}

static void test_snapshot_commit_replaces_old_segments_and_replays_first(void **state)
{
	struct fixture *f = *state;
	compacted_journal(f->dir);
	assert_false(file_exists(f->dir, SEG1));
	assert_true(file_exists(f->dir, SEG2));
	assert_true(file_exists(f->dir, SNAP2));
	assert_false(file_exists(f->dir, TMP2));
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"S1", "S2", "C", "D"};
	assert_bodies(c, want, 4);
	assert_string_equal(c->files[0], SNAP2);
	assert_string_equal(c->files[2], SEG2);
	collected_free(c);

	struct journal *j = journal_started(f->dir, JOURNAL_FSYNC_BATCH);
	assert_int_equal(journal_log_bytes(j), 2 * (8 + 1));
	assert_int_equal(journal_snapshot_bytes(j), file_size(f->dir, SNAP2));
	journal_close(j);
}

/* Segment 1 holds A, segment 2 holds B; no snapshot. */
static void two_segments(const char *dir)
{
	struct jm_err err;
	struct journal *j = journal_started(dir, JOURNAL_FSYNC_BATCH);
	append_text(j, "A");
	struct journal_snapshot *snap;
	assert_jm_ok_err(journal_rotate(j, &snap, &err), &err);
	assert_jm_ok_err(journal_snapshot_append(snap, "never", 5, &err), &err);
	journal_snapshot_abort(snap);
	append_text(j, "B");
	journal_close(j);
}

static void test_aborted_snapshot_leaves_no_file_and_changes_nothing(void **state)
{
	struct fixture *f = *state;
	two_segments(f->dir);
	assert_false(file_exists(f->dir, TMP2));
	assert_false(file_exists(f->dir, SNAP2));
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"A", "B"};
	assert_bodies(c, want, 2);
	collected_free(c);
}

static void test_unfinished_snapshot_tmp_is_ignored_and_deleted(void **state)
{
	struct fixture *f = *state;
	char other[64];
	dir_make(other, sizeof other);
	compacted_journal(other);
	size_t size;
	uint8_t *snap = file_read(other, SNAP2, &size);
	two_segments(f->dir);
	file_write(f->dir, TMP2, snap, size);
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"A", "B"};
	assert_bodies(c, want, 2);
	assert_false(file_exists(f->dir, TMP2));
	collected_free(c);
	free(snap);
	dir_remove(other);
}

static void test_snapshot_without_its_end_marker_is_ignored(void **state)
{
	struct fixture *f = *state;
	char other[64];
	dir_make(other, sizeof other);
	compacted_journal(other);
	size_t size;
	uint8_t *snap = file_read(other, SNAP2, &size);
	two_segments(f->dir);
	file_write(f->dir, SNAP2, snap, size - (8 + 20));
	struct collected *c = replay_ok(f->dir, NULL);
	const char *want[] = {"A", "B"};
	assert_bodies(c, want, 2);
	collected_free(c);
	free(snap);
	dir_remove(other);
}

/* --- tests: the data dir ------------------------------------------------ */

static void test_second_open_of_a_locked_dir_fails_with_a_clear_message(void **state)
{
	struct fixture *f = *state;
	struct jm_err err;
	struct journal *first;
	struct journal_options opts = {.dir = f->dir, .fsync = JOURNAL_FSYNC_BATCH};
	assert_jm_ok_err(journal_open(&first, &opts, &err), &err);
	struct journal *second = NULL;
	assert_int_equal(journal_open(&second, &opts, &err), JM_EIO);
	assert_null(second);
	char want[256];
	snprintf(want, sizeof want,
	         "data dir %s is in use by another jobmesh-broker (lock file %s/LOCK)", f->dir,
	         f->dir);
	assert_string_equal(err.msg, want);
	struct journal_options check = {.dir = f->dir, .read_only = true};
	assert_int_equal(journal_open(&second, &check, &err), JM_EIO);
	journal_close(first);
	assert_jm_ok_err(journal_open(&second, &opts, &err), &err);
	journal_close(second);
}

static void test_missing_data_dir_is_created(void **state)
{
	struct fixture *f = *state;
	char nested[128];
	snprintf(nested, sizeof nested, "%s/a/b", f->dir);
	struct journal *j = journal_started(nested, JOURNAL_FSYNC_BATCH);
	append_text(j, "x");
	journal_close(j);
	struct collected *c = replay_ok(nested, NULL);
	assert_int_equal(c->len, 1);
	collected_free(c);
	dir_remove(nested);
	char parent[128];
	snprintf(parent, sizeof parent, "%s/a", f->dir);
	rmdir(parent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	    T(test_append_close_reopen_replays_all_bodies_in_order),
	    T(test_group_commit_covers_many_appends_with_few_syncs),
	    T(test_batch_callback_fires_only_after_the_sync),
	    T(test_always_gives_each_record_its_own_sync_before_its_callback),
	    T(test_everysec_reports_durable_after_write_without_waiting_for_a_sync),
	    T(test_callback_for_durable_lsn_fires_at_once_on_the_caller_thread),
	    T(test_first_callbacks_run_before_the_others_of_their_lsn_after_lower_lsns),
	    T(test_a_leading_thread_syncs_its_records_and_runs_their_callbacks_itself),
	    T(test_records_appended_while_another_thread_syncs_are_left_to_that_sync),
	    T(test_a_leader_whose_sync_fails_leaves_the_retry_to_the_writer_thread),
	    T(test_everysec_appends_between_lead_calls_still_go_to_the_writer_thread),
	    T(test_deferred_records_wait_for_the_record_that_is_waited_on),
	    T(test_deferred_records_nobody_waits_for_are_written_at_the_deadline),
	    T(test_deferred_records_go_with_the_next_write_or_a_waiter),
	    T(test_oversized_body_is_refused),
	    T(test_fsync_policy_names_parse_and_print),
	    T(test_torn_tail_at_every_offset_of_the_last_two_records_is_cut),
	    T(test_zero_filled_tail_at_a_record_boundary_is_preallocated_space_kept_and_overwritten),
	    T(test_partial_record_in_preallocated_space_is_cut_as_torn),
	    T(test_read_only_replay_reports_torn_tail_without_cutting),
	    T(test_flipped_byte_in_a_middle_record_is_corrupt_naming_the_offset),
	    T(test_repair_truncates_at_the_damage_and_keeps_what_came_before),
	    T(test_corrupt_length_field_is_caught),
	    T(test_damage_at_the_end_of_an_earlier_segment_is_corrupt_not_torn),
	    T(test_missing_segment_in_the_sequence_is_corrupt),
	    T(test_full_disk_refuses_appends_and_leaves_no_partial_record),
	    T(test_records_accepted_before_a_full_disk_are_written_once_space_returns),
	    T(test_failed_sync_is_rewritten_like_a_failed_write),
	    T(test_close_gives_up_on_failing_writes_and_reports_closed),
	    T(test_file_size_limit_is_handled_like_a_full_disk),
	    T(test_snapshot_commit_replaces_old_segments_and_replays_first),
	    T(test_aborted_snapshot_leaves_no_file_and_changes_nothing),
	    T(test_unfinished_snapshot_tmp_is_ignored_and_deleted),
	    T(test_snapshot_without_its_end_marker_is_ignored),
	    T(test_second_open_of_a_locked_dir_fails_with_a_clear_message),
	    T(test_missing_data_dir_is_created),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
