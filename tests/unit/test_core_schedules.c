/* Nothing is journaled that the state does not hold (issue 10, item 6) for
 * the records that are not a job's: a schedule's put (new or replacing
 * one), its delete, and the boot epoch's META record. Each of their
 * allocations (common/heap.h) is failed in turn; after each, the schedule
 * is in the live registry exactly when the journal holds its record, which
 * a replay of the journal then shows: the registry replayed equals the live
 * one, name by name, payload by payload.
 *
 * The core runs over a real journal in a temp directory; core_handle runs
 * the handler on the calling thread, so the allocation fault (armed per
 * thread) hits the handler and not the journal's writer. */
#include "jm_test.h"

#include <unistd.h>

#include "clock.h"
#include "core_fixture.h"
#include "core_internal.h"
#include "heap.h"
#include "journal.h"
#include "message.h"

#define WAIT_MS 10000
#define TRIES_MAX 2000
#define NAMES_MAX 64

struct fixture {
	struct core_fixture c;
};

/* The registry as a list of "name payload" lines, for comparing. */
struct registry_view {
	char lines[NAMES_MAX][160];
	uint32_t count;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	core_fixture_init(&f->c, "sched");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	core_fixture_fini(&f->c);
	free(f);
	return 0;
}

static struct registry_view view_of(struct fixture *f)
{
	struct registry_view v = {.count = 0};
	pthread_mutex_lock(&f->c.core->lock);
	const struct schedule *s;
	TAILQ_FOREACH(s, &f->c.core->state.schedules.list, link)
	{
		assert_true(v.count < NAMES_MAX);
		snprintf(v.lines[v.count++], sizeof v.lines[0], "%s %.*s", s->name,
		         (int)s->payload_len, s->payload ? (const char *)s->payload : "");
	}
	assert_int_equal(v.count, f->c.core->state.schedules.count);
	pthread_mutex_unlock(&f->c.core->lock);
	return v;
}

static bool has_line(const struct registry_view *v, const char *line)
{
	for (uint32_t i = 0; i < v->count; i++)
		if (strcmp(v->lines[i], line) == 0)
			return true;
	return false;
}

static void assert_same_registry(const struct registry_view *a, const struct registry_view *b)
{
	if (a->count != b->count)
		fail_msg("%u schedules live, %u replayed", a->count, b->count);
	for (uint32_t i = 0; i < a->count; i++)
		if (strcmp(a->lines[i], b->lines[i]) != 0)
			fail_msg("live \"%s\", replayed \"%s\"", a->lines[i], b->lines[i]);
}

/* Sends a put of name with payload (or a delete when payload is NULL);
 * true when the core answered it with SCHEDULES (not an error). */
static bool send(struct fixture *f, const char *name, const char *payload)
{
	struct core_call c = {0};
	if (payload) {
		c.req.msg.type = PROTO_SCHEDULE_PUT;
		struct proto_schedule_info *p = &c.req.msg.u.schedule_put;
		snprintf(p->name, sizeof p->name, "%s", name);
		p->expr = (struct proto_bytes){(const uint8_t *)"@every 1h", 9};
		snprintf(p->queue, sizeof p->queue, "q");
		snprintf(p->type, sizeof p->type, "t");
		p->payload =
		    (struct proto_bytes){(const uint8_t *)payload, (uint32_t)strlen(payload)};
	} else {
		c.req.msg.type = PROTO_SCHEDULE_DELETE;
		snprintf(c.req.msg.u.schedule_ref.name, sizeof c.req.msg.u.schedule_ref.name, "%s",
		         name);
	}
	c.req.pipe_id = 1;
	c.req.on_reply = core_call_replied;
	jm_buf_init(&c.req.reply);
	core_handle(f->c.core, &c.req);
	uint64_t deadline = jm_mono_us() + WAIT_MS * 1000u;
	while (!__atomic_load_n(&c.done, __ATOMIC_ACQUIRE)) {
		if (jm_mono_us() > deadline)
			fail_msg("timed out after %d ms waiting for a reply", WAIT_MS);
		usleep(1000);
	}
	bool ok = false;
	struct proto_msg reply;
	struct jm_err err = {0};
	if (c.status == 0 && c.req.reply.len > 0 &&
	    proto_decode(c.req.reply.data, c.req.reply.len, &reply, &err) == 0) {
		ok = reply.type == PROTO_SCHEDULES;
		proto_msg_fini(&reply);
	}
	jm_buf_fini(&c.req.reply);
	return ok;
}

/* Replays the journal into a new core and checks it holds live. */
static void assert_replay_holds(struct fixture *f, const struct registry_view *live)
{
	core_fixture_finish(&f->c);
	core_fixture_start(&f->c);
	struct registry_view replayed = view_of(f);
	assert_same_registry(live, &replayed);
}

/* Runs one put or delete with allocation n failing, for n = 1, 2, ...
 * until one runs with no allocation failed; after each, the registry
 * holds the change exactly when the journal grew. Returns how many were
 * refused. */
typedef void (*change_fn)(struct fixture *f, uint64_t n, bool *changed, bool *answered);

static uint64_t fail_each_allocation(struct fixture *f, change_fn change)
{
	uint64_t refused = 0, n;
	for (n = 1; n < TRIES_MAX; n++) {
		uint64_t bytes_before = journal_log_bytes(f->c.journal);
		bool changed = false, answered = false;
		jm_heap_fail_at(n);
		change(f, n, &changed, &answered);
		uint64_t calls = jm_heap_calls();
		jm_heap_fail_at(0);
		bool journaled = journal_log_bytes(f->c.journal) != bytes_before;
		if (journaled != changed)
			fail_msg("allocation %llu failed: the journal %s and the registry %s",
			         (unsigned long long)n, journaled ? "grew" : "did not grow",
			         changed ? "changed" : "did not change");
		if (answered && !changed)
			fail_msg("allocation %llu failed: answered success, nothing changed",
			         (unsigned long long)n);
		refused += !changed;
		if (calls < n)
			break; /* no allocation failed: every point was tried */
	}
	assert_true(n < TRIES_MAX);
	return refused;
}

static void put_new(struct fixture *f, uint64_t n, bool *changed, bool *answered)
{
	char name[32], payload[48], line[96];
	snprintf(name, sizeof name, "s%llu", (unsigned long long)n);
	snprintf(payload, sizeof payload, "{\"run\": %llu}", (unsigned long long)n);
	*answered = send(f, name, payload);
	struct registry_view v = view_of(f);
	snprintf(line, sizeof line, "%s %s", name, payload);
	*changed = has_line(&v, line);
}

static void test_a_schedule_put_failing_at_any_allocation_is_journaled_only_when_held(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	uint64_t refused = fail_each_allocation(f, put_new);
	assert_true(refused >= 2); /* the schedule and its payload, at least */
	struct registry_view live = view_of(f);
	assert_true(live.count >= 1);
	assert_replay_holds(f, &live);
}

static void replace(struct fixture *f, uint64_t n, bool *changed, bool *answered)
{
	char payload[48], line[96];
	snprintf(payload, sizeof payload, "{\"version\": %llu}", (unsigned long long)n);
	*answered = send(f, "daily", payload);
	struct registry_view v = view_of(f);
	snprintf(line, sizeof line, "daily %s", payload);
	*changed = has_line(&v, line);
	assert_int_equal(v.count, 1); /* replaced, never doubled nor lost */
}

static void
test_a_schedule_replaced_failing_at_any_allocation_keeps_the_old_or_the_new(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	assert_true(send(f, "daily", "{\"version\": 0}"));
	assert_true(fail_each_allocation(f, replace) >= 2);
	struct registry_view live = view_of(f);
	assert_replay_holds(f, &live);
}

static void
test_a_schedule_delete_failing_at_any_allocation_is_journaled_only_when_done(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	/* Each try puts a schedule (not failed) and deletes it with one
	 * allocation failed. */
	for (uint64_t n = 1; n < TRIES_MAX; n++) {
		char name[32], line[96];
		snprintf(name, sizeof name, "d%llu", (unsigned long long)n);
		assert_true(send(f, name, "x"));
		uint64_t bytes_before = journal_log_bytes(f->c.journal);
		jm_heap_fail_at(n);
		bool answered = send(f, name, NULL);
		uint64_t calls = jm_heap_calls();
		jm_heap_fail_at(0);
		struct registry_view v = view_of(f);
		snprintf(line, sizeof line, "%s x", name);
		bool deleted = !has_line(&v, line);
		bool journaled = journal_log_bytes(f->c.journal) != bytes_before;
		if (journaled != deleted)
			fail_msg("allocation %llu failed: the journal %s and the schedule is %s",
			         (unsigned long long)n, journaled ? "grew" : "did not grow",
			         deleted ? "gone" : "there");
		if (answered && !deleted)
			fail_msg("allocation %llu failed: a delete answered success, the schedule "
			         "is still there",
			         (unsigned long long)n);
		if (!deleted)
			assert_true(send(f, name, NULL));
		if (calls < n)
			break;
	}
	struct registry_view live = view_of(f);
	assert_int_equal(live.count, 0);
	assert_replay_holds(f, &live);
}

/* A start that fails at any allocation leaves an epoch that is never used
 * again: the next start's epoch is above every epoch a journaled META may
 * have named, and a start that succeeded runs on the epoch its journal
 * holds (the one after it is what a restart then takes). */
static void test_a_start_failing_at_any_allocation_never_reuses_a_boot_epoch(void **state)
{
	struct fixture *f = *state;
	core_fixture_start(&f->c);
	assert_true(send(f, "kept", "k"));
	uint64_t epoch = f->c.core->state.boot_epoch;
	core_fixture_finish(&f->c);
	uint64_t n;
	for (n = 1; n < TRIES_MAX; n++) {
		jm_heap_fail_at(n);
		int rc = core_fixture_try_start(&f->c);
		uint64_t calls = jm_heap_calls();
		jm_heap_fail_at(0);
		if (rc == 0) {
			assert_true(f->c.core->state.boot_epoch > epoch);
			epoch = f->c.core->state.boot_epoch;
			struct registry_view v = view_of(f);
			assert_int_equal(v.count, 1);
			core_fixture_finish(&f->c);
			/* The journal holds the epoch the live core ran on. */
			core_fixture_start(&f->c);
			assert_int_equal(f->c.core->state.boot_epoch, epoch + 1);
			epoch = f->c.core->state.boot_epoch;
			core_fixture_finish(&f->c);
		} else {
			core_fixture_start(&f->c);
			assert_true(f->c.core->state.boot_epoch > epoch);
			epoch = f->c.core->state.boot_epoch;
			core_fixture_finish(&f->c);
		}
		if (calls < n)
			break;
	}
	assert_true(n < TRIES_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_a_schedule_put_failing_at_any_allocation_is_journaled_only_when_held, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_schedule_replaced_failing_at_any_allocation_keeps_the_old_or_the_new, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_schedule_delete_failing_at_any_allocation_is_journaled_only_when_done, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_start_failing_at_any_allocation_never_reuses_a_boot_epoch, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
