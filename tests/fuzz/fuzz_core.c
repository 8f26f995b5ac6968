/* libFuzzer target for the state machine: each input is a sequence of
 * requests (frames of a 2-byte little-endian length and a message), each
 * decoded as the server decodes it and handed to a core over a real
 * journal in a temp directory. After the sequence the core stops, and a
 * second core replays the journal: it must hold the same jobs, finished
 * and unfinished, as the live core did ("nothing is journaled that the
 * state does not hold"). Beyond that, ASan and UBSan: no crash, no leak. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_internal.h"
#include "fuzz_dir.h"
#include "journal.h"
#include "log.h"
#include "message.h"

#define CALLS_MAX 64

struct call {
	struct request req;
};

static char dir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_dir_init(dir, sizeof dir, "fuzz_core");
	return 0;
}

static void on_reply(struct request *req, int status)
{
}

static void config_of(struct core_config *c)
{
	memset(c, 0, sizeof *c);
	c->state.queue_defaults.max_attempts = 2;
	c->state.queue_defaults.timeout_ms = 60000;
	c->state.queue_defaults.backoff = (struct backoff_policy){10, 100};
	queue_policy_keep_all(&c->state.queue_defaults, 4, c->state.queue_defaults.keep[0].age_ms);
	c->state.max_queues = 8;
	c->state.max_workers = 8;
	c->state.max_queue_jobs = 64;
	c->state.max_payload_memory = 1u << 20;
	c->state.dead_after_ms = 60000;
	c->state.lease_grace_ms = 1000;
	c->wait_max_ms = 1; /* a parked request does not hold the input up */
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

static struct tally tally_of(struct core *core)
{
	struct tally t = {0};
	pthread_mutex_lock(&core->lock);
	jobtable_each(&core->state.jobs, count_job, &t);
	pthread_mutex_unlock(&core->lock);
	return t;
}

static bool is_request(enum proto_type type)
{
	switch (type) {
	case PROTO_SUBMIT:
	case PROTO_STATUS:
	case PROTO_RESULT:
	case PROTO_CANCEL:
	case PROTO_FETCH:
	case PROTO_SETTLE:
	case PROTO_HEARTBEAT:
	case PROTO_PROGRESS:
	case PROTO_STATS:
	case PROTO_REVIVE:
	case PROTO_DEAD_LIST:
	case PROTO_BATCHES:
	case PROTO_BATCH_STATUS:
	case PROTO_WORKERS:
	case PROTO_JOB_QUERY:
	case PROTO_WAIT:
	case PROTO_SUBMIT_WAIT:
		return true; /* they park for at most wait_max_ms, 1 ms here */
	default:
		return false; /* replies are not asked */
	}
}

static struct core *open_core(struct journal **journal, const struct core_config *config)
{
	struct journal_options jo = {.dir = dir, .fsync = JOURNAL_FSYNC_OFF};
	struct jm_err err = {0};
	struct journal_replay_stats stats;
	struct core *core = NULL;
	if (journal_open(journal, &jo, &err) != 0)
		abort();
	if (core_open(&core, config, *journal, &stats, &err) != 0)
		abort(); /* the journal this core wrote must replay */
	return core;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct call calls[CALLS_MAX];
	struct core_config config;
	config_of(&config);
	fuzz_dir_clear(dir);
	struct journal *journal;
	struct core *core = open_core(&journal, &config);
	uint32_t used = 0;
	size_t at = 0;
	while (at + 2 <= size && used < CALLS_MAX) {
		size_t len = data[at] | (size_t)data[at + 1] << 8;
		at += 2;
		if (len > size - at)
			len = size - at;
		struct call *c = &calls[used];
		memset(c, 0, sizeof *c);
		struct jm_err err;
		if (proto_decode(data + at, len, &c->req.msg, &err) == 0) {
			if (is_request(c->req.msg.type)) {
				c->req.pipe_id = 1;
				c->req.on_reply = on_reply;
				jm_buf_init(&c->req.reply);
				core_handle(core, &c->req);
				used++;
			} else {
				proto_msg_fini(&c->req.msg);
			}
		}
		at += len;
	}
	core_stop(core);
	struct tally live = tally_of(core);
	journal_close(journal);
	core_free(core);
	for (uint32_t i = 0; i < used; i++) {
		proto_msg_fini(&calls[i].req.msg);
		jm_buf_fini(&calls[i].req.reply);
	}
	core = open_core(&journal, &config);
	struct tally replayed = tally_of(core);
	core_stop(core);
	journal_close(journal);
	core_free(core);
	if (live.jobs != replayed.jobs || live.unfinished != replayed.unfinished)
		abort();
	fuzz_dir_clear(dir);
	return 0;
}
