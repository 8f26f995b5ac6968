/* HA journal shipping, below the sockets: the chunks a leader's journal
 * hands its replica hook, appended to a standby's copy
 * (broker/journal_mirror.c), replay there to the same records; a copy
 * refuses a gap and a chunk that is not whole valid records without
 * writing a byte; the leader's lock-free reader (journal_reader.c) sees
 * the same tail as the copy; the replication messages
 * (proto/repl_msg.c) refuse damage, and a standby refuses a lower epoch.
 * Every test works in its own mkdtemp directories. */
#include "jm_test.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "journal.h"
#include "repl_msg.h"

#define RECORDS 40

struct chunk {
	uint64_t seq, off;
	uint8_t *data;
	size_t len;
};

struct fixture {
	char leader_dir[64];
	char standby_dir[64];
	struct chunk chunks[RECORDS + 4];
	size_t chunks_len;
	uint64_t start_seq, start_off;
	pthread_mutex_t mu;
};

static void make_dir(char *out, size_t size, const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(out, size, "%s/jm-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
	assert_non_null(mkdtemp(out));
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	char path[512];
	while (d != NULL && (ent = readdir(d)) != NULL) {
		if (ent->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	make_dir(f->leader_dir, sizeof f->leader_dir, "lead");
	make_dir(f->standby_dir, sizeof f->standby_dir, "stby");
	pthread_mutex_init(&f->mu, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (size_t i = 0; i < f->chunks_len; i++)
		free(f->chunks[i].data);
	remove_dir(f->leader_dir);
	remove_dir(f->standby_dir);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

/* The replica hook: keeps a copy of each chunk. */
static int capture(void *arg, enum journal_replica_phase phase, uint64_t seq, uint64_t off,
                   const uint8_t *data, size_t len, char *why, size_t why_size)
{
	struct fixture *f = arg;
	if (phase == JOURNAL_REPLICA_SEND)
		return 0; /* the chunk is kept once synced, at WAIT */
	pthread_mutex_lock(&f->mu);
	if (phase == JOURNAL_REPLICA_START) {
		f->start_seq = seq;
		f->start_off = off;
	} else if (f->chunks_len < RECORDS + 4) {
		struct chunk *c = &f->chunks[f->chunks_len++];
		c->seq = seq;
		c->off = off;
		c->len = len;
		c->data = malloc(len);
		memcpy(c->data, data, len);
	}
	pthread_mutex_unlock(&f->mu);
	return 0;
}

/* Writes RECORDS records "record N" to the leader journal, each synced on
 * its own (ALWAYS), so the hook sees one chunk per record. */
static void lead(struct fixture *f)
{
	struct jm_err err = {0};
	struct journal_options o = {.dir = f->leader_dir, .fsync = JOURNAL_FSYNC_ALWAYS};
	struct journal *j;
	assert_jm_ok_err(journal_open(&j, &o, &err), &err);
	journal_set_replica(j, capture, f);
	assert_jm_ok_err(journal_replay(j, NULL, NULL, NULL, &err), &err);
	assert_jm_ok_err(journal_start(j, &err), &err);
	uint64_t lsn = 0;
	for (int i = 0; i < RECORDS; i++) {
		char body[32];
		int n = snprintf(body, sizeof body, "record %d", i);
		assert_jm_ok_err(journal_append(j, body, (size_t)n, &lsn, &err), &err);
	}
	for (int i = 0; i < 2000 && journal_durable_lsn(j) < lsn; i++)
		usleep(1000);
	assert_int_equal(journal_durable_lsn(j), lsn);
	assert_jm_ok_err(journal_stop(j, &err), &err);
	journal_close(j);
	assert_int_equal(f->start_seq, 1);
	assert_int_equal(f->start_off, JOURNAL_SEGMENT_START);
	assert_true(f->chunks_len >= 1);
}

struct replayed {
	int records;
	bool in_order;
};

static int count_apply(void *arg, const uint8_t *body, size_t len, const char *file,
                       uint64_t offset, struct jm_err *err)
{
	struct replayed *r = arg;
	char want[32];
	int n = snprintf(want, sizeof want, "record %d", r->records);
	r->in_order &= len == (size_t)n && memcmp(body, want, len) == 0;
	r->records++;
	return 0;
}

static struct journal *open_standby(struct fixture *f)
{
	struct jm_err err = {0};
	struct journal_options o = {.dir = f->standby_dir, .fsync = JOURNAL_FSYNC_BATCH};
	struct journal *j;
	assert_jm_ok_err(journal_open(&j, &o, &err), &err);
	return j;
}

static void test_shipped_chunks_replay_on_the_standby_as_on_the_leader(void **state)
{
	struct fixture *f = *state;
	lead(f);
	struct jm_err err = {0};
	struct journal *j = open_standby(f);
	struct journal_position pos;
	assert_jm_ok_err(journal_mirror_begin(j, &pos, &err), &err);
	assert_int_equal(pos.seq, 1);
	assert_int_equal(pos.off, JOURNAL_SEGMENT_START);
	for (size_t i = 0; i < f->chunks_len; i++) {
		struct chunk *c = &f->chunks[i];
		assert_jm_ok_err(
		    journal_mirror_append(j, c->seq, c->off, c->data, c->len, &pos, &err), &err);
		assert_int_equal(pos.off, c->off + c->len);
		/* The leader's reader sees the same tail as the copy. */
		assert_jm_ok_err(journal_mirror_tail(j, &pos, &err), &err);
		uint32_t crc = 0;
		assert_jm_ok_err(
		    journal_files_tail_crc(f->leader_dir, pos.seq, pos.off, &crc, &err), &err);
		assert_int_equal(crc, pos.tail_crc);
	}
	journal_mirror_end(j);
	struct replayed r = {.in_order = true};
	assert_jm_ok_err(journal_replay(j, count_apply, &r, NULL, &err), &err);
	assert_int_equal(r.records, RECORDS);
	assert_true(r.in_order);
	journal_close(j);
}

static void test_a_gap_and_a_damaged_chunk_are_refused_without_writing(void **state)
{
	struct fixture *f = *state;
	lead(f);
	assert_true(f->chunks_len >= 2);
	struct jm_err err = {0};
	struct journal *j = open_standby(f);
	struct journal_position pos, after;
	assert_jm_ok_err(journal_mirror_begin(j, &pos, &err), &err);
	struct chunk *first = &f->chunks[0], *second = &f->chunks[1];
	/* The second chunk before the first: a gap, named with both places. */
	assert_jm_code(journal_mirror_append(j, second->seq, second->off, second->data, second->len,
	                                     &after, &err),
	               JM_EINVAL);
	assert_non_null(strstr(jm_err_text(&err), "gap"));
	assert_jm_ok_err(
	    journal_mirror_append(j, first->seq, first->off, first->data, first->len, &pos, &err),
	    &err);
	/* The same chunk again: the copy is past it. */
	assert_jm_code(
	    journal_mirror_append(j, first->seq, first->off, first->data, first->len, &after, &err),
	    JM_EINVAL);
	/* A flipped byte in a record: its CRC fails, nothing is written. */
	uint8_t *bad = malloc(second->len);
	memcpy(bad, second->data, second->len);
	bad[second->len - 1] ^= 0x40;
	assert_jm_code(
	    journal_mirror_append(j, second->seq, second->off, bad, second->len, &after, &err),
	    JM_ECORRUPT);
	assert_non_null(strstr(jm_err_text(&err), "nothing written"));
	/* A cut record: refused too. */
	assert_jm_code(journal_mirror_append(j, second->seq, second->off, second->data,
	                                     second->len - 1, &after, &err),
	               JM_ECORRUPT);
	free(bad);
	/* The copy still ends after the first chunk and continues with the
	 * second. */
	assert_jm_ok_err(journal_mirror_append(j, second->seq, second->off, second->data,
	                                       second->len, &after, &err),
	                 &err);
	assert_int_equal(after.off, pos.off + second->len);
	journal_mirror_end(j);
	journal_close(j);
}

static void test_replication_messages_refuse_damage_and_a_lower_epoch(void **state)
{
	(void)state;
	struct jm_err err = {0};
	uint8_t data[5] = {1, 2, 3, 4, 5};
	struct repl_req req = {
	    .kind = REPL_APPEND, .epoch = 7, .seq = 2, .off = 24, .data = data, .len = 5};
	uint8_t buf[REPL_REQ_HEADER_BYTES + 5];
	repl_req_header(buf, &req);
	memcpy(buf + REPL_REQ_HEADER_BYTES, data, 5);
	struct repl_req got;
	assert_jm_ok_err(repl_req_decode(buf, sizeof buf, &got, &err), &err);
	assert_int_equal(got.kind, REPL_APPEND);
	assert_int_equal(got.epoch, 7);
	assert_int_equal(got.seq, 2);
	assert_int_equal(got.off, 24);
	assert_int_equal(got.len, 5);
	assert_memory_equal(got.data, data, 5);
	buf[REPL_REQ_HEADER_BYTES + 2] ^= 1; /* damaged in transit */
	assert_jm_code(repl_req_decode(buf, sizeof buf, &got, &err), JM_EPROTO);
	assert_non_null(strstr(jm_err_text(&err), "CRC32C"));
	buf[REPL_REQ_HEADER_BYTES + 2] ^= 1;
	assert_jm_code(repl_req_decode(buf, sizeof buf - 1, &got, &err), JM_EPROTO);
	assert_jm_code(repl_req_decode(buf, 10, &got, &err), JM_EPROTO);
	buf[4] = 9;
	assert_jm_code(repl_req_decode(buf, sizeof buf, &got, &err), JM_EPROTO);
	assert_non_null(strstr(jm_err_text(&err), "kind 9"));

	/* The standby's fence. */
	uint64_t highest = 0;
	assert_jm_ok(repl_epoch_admit(&highest, &req, &err));
	assert_int_equal(highest, 7);
	struct repl_req old = req;
	old.epoch = 5;
	assert_jm_code(repl_epoch_admit(&highest, &old, &err), JM_ESTATE);
	assert_non_null(strstr(jm_err_text(&err), "epoch 5 refused"));
	assert_int_equal(highest, 7);

	/* A reply round trip, and one whose text overruns it. */
	struct repl_rep rep = {.status = JM_EINVAL, .seq = 3, .off = 99, .tail_crc = 42};
	snprintf(rep.text, sizeof rep.text, "gap");
	uint8_t out[REPL_REP_HEADER_BYTES + REPL_MAX_TEXT_BYTES];
	size_t len = repl_rep_encode(&rep, out);
	struct repl_rep back;
	assert_jm_ok_err(repl_rep_decode(out, len, &back, &err), &err);
	assert_int_equal(back.status, JM_EINVAL);
	assert_int_equal(back.off, 99);
	assert_string_equal(back.text, "gap");
	assert_jm_code(repl_rep_decode(out, len - 1, &back, &err), JM_EPROTO);
}

/* --ha-sync strict, in the journal: a hook that refuses a chunk (no
 * standby in sync) leaves it unpublished and appends refused with the
 * hook's code; journal_hold refuses appends by itself; journal_release
 * accepts them again and the refused chunk is written at once. */
static atomic_bool hook_refuses;
static atomic_int hook_refusals;

static int refusing(void *arg, enum journal_replica_phase phase, uint64_t seq, uint64_t off,
                    const uint8_t *data, size_t len, char *why, size_t why_size)
{
	if (phase != JOURNAL_REPLICA_WAIT || !atomic_load(&hook_refuses))
		return 0;
	atomic_fetch_add(&hook_refusals, 1);
	snprintf(why, why_size, "no standby in sync");
	return JM_ENOSTANDBY;
}

static void wait_durable(struct journal *j, uint64_t lsn)
{
	for (int i = 0; i < 5000 && journal_durable_lsn(j) < lsn; i++)
		usleep(1000);
	assert_int_equal(journal_durable_lsn(j), lsn);
}

static void
test_a_held_journal_refuses_appends_and_writes_a_refused_chunk_once_released(void **state)
{
	struct fixture *f = *state;
	struct jm_err err = {0};
	struct journal_options o = {.dir = f->leader_dir, .fsync = JOURNAL_FSYNC_BATCH};
	struct journal *j;
	assert_jm_ok_err(journal_open(&j, &o, &err), &err);
	journal_set_replica(j, refusing, f);
	assert_jm_ok_err(journal_start(j, &err), &err);
	uint64_t lsn = 0;
	assert_jm_ok_err(journal_append(j, "one", 3, &lsn, &err), &err);
	wait_durable(j, lsn);
	/* The hook refuses: the record stays unpublished, appends are
	 * refused with the hook's code and text. */
	atomic_store(&hook_refuses, true);
	journal_hold(j, JM_ENOSTANDBY, "held: no standby in sync");
	uint64_t waiting = 0;
	assert_jm_code(journal_append(j, "two", 3, &waiting, &err), JM_ENOSTANDBY);
	assert_string_equal(jm_err_text(&err), "held: no standby in sync");
	assert_false(journal_is_writable(j, &err));
	assert_int_equal(err.code, JM_ENOSTANDBY);
	journal_release(j);
	assert_jm_ok_err(journal_append(j, "two", 3, &waiting, &err), &err);
	/* The writer counts the refusal, then refuses appends. */
	for (int i = 0; i < 5000 && journal_is_writable(j, NULL); i++)
		usleep(1000);
	assert_true(atomic_load(&hook_refusals) > 0);
	assert_jm_code(journal_append(j, "three", 5, &lsn, &err), JM_ENOSTANDBY);
	assert_non_null(strstr(jm_err_text(&err), "no standby in sync"));
	assert_true(journal_durable_lsn(j) < waiting);
	/* A standby is in sync again: the release wakes the writer, which
	 * writes the refused chunk. */
	atomic_store(&hook_refuses, false);
	journal_hold(j, JM_ENOSTANDBY, "held");
	journal_release(j);
	wait_durable(j, waiting);
	assert_jm_ok_err(journal_append(j, "three", 5, &lsn, &err), &err);
	wait_durable(j, lsn);
	assert_jm_ok_err(journal_stop(j, &err), &err);
	journal_close(j);
	struct journal *back = NULL;
	struct journal_options ro = {.dir = f->leader_dir, .read_only = true};
	assert_jm_ok_err(journal_open(&back, &ro, &err), &err);
	struct journal_replay_stats stats = {0};
	assert_jm_ok_err(journal_replay(back, NULL, NULL, &stats, &err), &err);
	assert_int_equal(stats.records, 3);
	journal_close(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_shipped_chunks_replay_on_the_standby_as_on_the_leader, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_gap_and_a_damaged_chunk_are_refused_without_writing, setup, teardown),
	    cmocka_unit_test(test_replication_messages_refuse_damage_and_a_lower_epoch),
	    cmocka_unit_test_setup_teardown(
	        test_a_held_journal_refuses_appends_and_writes_a_refused_chunk_once_released, setup,
	        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
