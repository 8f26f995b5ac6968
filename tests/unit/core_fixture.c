/* The core tests' shared fixture (see core_fixture.h). */
#include "core_fixture.h"

#include "jm_test.h"

#include <dirent.h>
#include <unistd.h>

#include "journal.h"

void core_call_replied(struct request *req, int status)
{
	struct core_call *c = container_of(req, struct core_call, req);
	c->status = status;
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
}

bool core_call_is_done(struct core_call *c)
{
	return __atomic_load_n(&c->done, __ATOMIC_ACQUIRE) != 0;
}

void core_fixture_config_defaults(struct core_config *c)
{
	memset(c, 0, sizeof *c);
	c->state.queue_defaults.max_attempts = 3;
	c->state.queue_defaults.timeout_ms = 60000;
	c->state.queue_defaults.backoff = (struct backoff_policy){100, 1000};
	queue_policy_keep_all(&c->state.queue_defaults, 1000,
	                      c->state.queue_defaults.keep[0].age_ms);
	c->state.max_queues = 8;
	c->state.max_workers = 8;
	c->state.dead_after_ms = 60000;
	c->state.lease_grace_ms = 1000;
	c->wait_max_ms = 60000;
	c->compact_min_bytes = 0;
}

void core_fixture_init(struct core_fixture *f, const char *name)
{
	memset(f, 0, sizeof *f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof f->dir, "%s/jm-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	assert_non_null(mkdtemp(f->dir));
	core_fixture_config_defaults(&f->config);
}

static int open_core(struct core_fixture *f, struct jm_err *err)
{
	struct journal_options jo = {.dir = f->dir, .fsync = JOURNAL_FSYNC_OFF};
	int rc = journal_open(&f->journal, &jo, err);
	if (rc != 0)
		return rc;
	struct journal_replay_stats stats;
	rc = core_open(&f->core, &f->config, f->journal, &stats, err);
	if (rc != 0) {
		journal_close(f->journal);
		f->journal = NULL;
		f->core = NULL;
	}
	return rc;
}

int core_fixture_try_start(struct core_fixture *f)
{
	struct jm_err err = {0};
	return open_core(f, &err);
}

void core_fixture_start(struct core_fixture *f)
{
	struct jm_err err = {0};
	assert_jm_ok_err(open_core(f, &err), &err);
}

void core_fixture_finish(struct core_fixture *f)
{
	if (f->core)
		core_stop(f->core);
	journal_close(f->journal);
	core_free(f->core);
	f->core = NULL;
	f->journal = NULL;
}

void core_fixture_fini(struct core_fixture *f)
{
	core_fixture_finish(f);
	DIR *d = opendir(f->dir);
	if (d == NULL)
		return;
	struct dirent *ent;
	char path[512];
	while ((ent = readdir(d)) != NULL) {
		if (ent->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", f->dir, ent->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(f->dir);
}
