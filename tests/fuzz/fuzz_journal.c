/* libFuzzer target for the journal reader: each input becomes the journal
 * directory of a broker that starts. The first byte chooses the layout
 * (bit 0: a snapshot file, bit 1: a segment file, both when both set; the
 * rest of the input is split at the second byte's fraction between them),
 * and the replay applies every record to a state, as a start and
 * --check-journal do, with and without --repair. Beyond "no crash, no
 * leak" (ASan, UBSan), it checks that a refusal says why and that the
 * replayed state is consistent: its counters agree with its jobs. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "fuzz_dir.h"
#include "journal.h"
#include "log.h"
#include "record.h"
#include "state.h"

static char dir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_dir_init(dir, sizeof dir, "fuzz_journal");
	return 0;
}

static void write_file(const char *name, const uint8_t *data, size_t size)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
		abort();
}

static int apply_cb(void *arg, const uint8_t *body, size_t len, const char *file, uint64_t offset,
                    struct jm_err *err)
{
	struct proto_record rec;
	int rc = proto_record_decode(body, len, &rec, err);
	if (rc == 0) {
		rc = state_apply(arg, &rec, jm_wall_us(), err);
		proto_record_fini(&rec);
	}
	return rc;
}

struct tally {
	uint64_t jobs, unfinished;
};

static void count_job(struct job *job, void *arg)
{
	struct tally *t = arg;
	t->jobs++;
	t->unfinished += !state_job_is_finished(job);
}

static void count_queue(struct queue *q, void *arg)
{
	struct tally *t = arg;
	t->unfinished -= queue_ready_count(q) + q->delayed + q->active;
}

static void replay(bool repair)
{
	struct journal_options jo = {
	    .dir = dir, .fsync = JOURNAL_FSYNC_OFF, .repair = repair, .read_only = !repair};
	struct jm_err err = {0};
	struct journal *j;
	if (journal_open(&j, &jo, &err) != 0) {
		if (err.msg[0] == '\0')
			abort();
		return;
	}
	struct state_config config = {
	    .queue_defaults = {.max_attempts = 3,
	                       .timeout_ms = 1000,
	                       .keep = {{10, 0}, {10, 0}, {10, 0}}},
	    .max_queues = 64,
	    .max_workers = 64,
	    .dead_after_ms = 1000,
	    .lease_grace_ms = 1000,
	};
	struct state s;
	if (state_init(&s, &config) != 0)
		abort();
	s.replaying = true;
	struct journal_replay_stats stats = {0};
	int rc = journal_replay(j, apply_cb, &s, &stats, &err);
	if (rc != 0 && err.msg[0] == '\0')
		abort(); /* a refusal says why */
	if (rc == 0) {
		struct tally t = {0};
		jobtable_each(&s.jobs, count_job, &t);
		queue_each(&s.queues, count_queue, &t);
		if (t.jobs != s.jobs.count || t.unfinished != 0)
			abort(); /* every unfinished job is in its queue's counters */
	}
	state_fini(&s);
	journal_close(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned layout = data[0] & 3u;
	size_t body = size - 2;
	size_t split = layout == 3 ? body * data[1] / 255 : layout == 1 ? body : 0;
	const uint8_t *rest = data + 2;
	fuzz_dir_clear(dir);
	if (layout & 1u)
		write_file("snapshot-0000000000000001.snap", rest, split);
	if (layout & 2u || layout == 0)
		write_file(layout == 0 ? "journal-0000000000000001.log"
		                       : "journal-0000000000000002.log",
		           rest + split, body - split);
	replay(false);
	replay(true);
	fuzz_dir_clear(dir);
	return 0;
}
