/* Golden bytes: every wire message type and every journal record type is
 * encoded from one fixed value and compared with a committed hex fixture in
 * tests/unit/golden/<kind>.hex, and each fixture decodes back to that value
 * field by field. The fixtures pin the format: a change to proto/ that moves
 * one byte fails here, whatever the round-trip tests say.
 *
 * To change the format deliberately, run this test once with
 * JM_GOLDEN_WRITE=1 in the environment: it rewrites the fixtures (and
 * still fails that run, so a stray variable cannot hide a drift); review
 * and commit the diff. */
#include "jm_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include <msgpack.h>

#include "buf.h"
#include "message.h"
#include "record.h"

#define GOLDEN_DIR JOBMESH_SOURCE_DIR "/tests/unit/golden"
#define HEX_PER_LINE 32 /* bytes per fixture line */

static bool golden_writing(void)
{
	const char *v = getenv("JM_GOLDEN_WRITE");
	return v != NULL && strcmp(v, "1") == 0;
}

/* Reads a fixture into out (bytes); whitespace between hex pairs is
 * ignored. */
static void golden_read(const char *kind, struct jm_buf *out)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s.hex", GOLDEN_DIR, kind);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		fail_msg("%s: %s (run with JM_GOLDEN_WRITE=1 to create it)", path, strerror(errno));
	int hi = -1;
	int c;
	while ((c = fgetc(f)) != EOF) {
		int v = 0;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		else
			fail_msg("%s: unexpected character 0x%02x", path, c);
		if (hi < 0) {
			hi = v;
		} else {
			uint8_t byte = (uint8_t)(hi << 4 | v);
			assert_jm_ok(jm_buf_append(out, &byte, 1));
			hi = -1;
		}
	}
	fclose(f);
	if (hi >= 0)
		fail_msg("%s: odd number of hex digits", path);
}

static void golden_write(const char *kind, const struct jm_buf *bytes)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s.hex", GOLDEN_DIR, kind);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	const uint8_t *p = bytes->data;
	for (size_t i = 0; i < bytes->len; i++)
		fprintf(f, "%02x%s", p[i],
		        (i + 1) % HEX_PER_LINE == 0 || i + 1 == bytes->len ? "\n" : "");
	fclose(f);
}

/* Compares encoded with the fixture, naming the first differing byte. */
static void golden_compare(const char *kind, const struct jm_buf *encoded, struct jm_buf *fixture)
{
	if (golden_writing())
		golden_write(kind, encoded);
	golden_read(kind, fixture);
	const uint8_t *a = encoded->data;
	const uint8_t *b = fixture->data;
	size_t common = encoded->len < fixture->len ? encoded->len : fixture->len;
	for (size_t i = 0; i < common; i++)
		if (a[i] != b[i])
			fail_msg("%s: byte %zu is 0x%02x, the fixture has 0x%02x", kind, i, a[i],
			         b[i]);
	if (encoded->len != fixture->len)
		fail_msg("%s: encoded %zu bytes, the fixture has %zu", kind, encoded->len,
		         fixture->len);
}

/* Field-by-field comparison helpers. */

#define EQ(field) assert_true((a)->field == (b)->field)
#define EQ_NAME(field) assert_string_equal((a)->field, (b)->field)
#define EQ_BYTES(field) bytes_equal(&(a)->field, &(b)->field)

static void bytes_equal(const struct proto_bytes *a, const struct proto_bytes *b)
{
	assert_int_equal(a->len, b->len);
	if (a->len > 0)
		assert_memory_equal(a->ptr, b->ptr, a->len);
}

static void names_equal(const proto_name *a, const proto_name *b, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		assert_string_equal(a[i], b[i]);
}

static void ids_equal(const uint64_t *a, const uint64_t *b, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		assert_true(a[i] == b[i]);
}

static void leases_equal(const struct proto_lease_ref *a, const struct proto_lease_ref *b,
                         uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		EQ(job_id);
		EQ(lease);
		a++;
		b++;
	}
}

/* Fixed values: ids past 2^32, negative numbers, names longer than a fixstr,
 * binary with NUL and 0xff, empty and non-empty optional parts. */

static const uint8_t PAYLOAD[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '{', '}', 0x00};
static const char TEXT[] = "disk full: /var/lib/jobmesh (errno 28) \xe2\x9c\x97";

static struct proto_bytes bytes_of(const void *p, size_t n)
{
	return (struct proto_bytes){.ptr = n > 0 ? p : NULL, .len = (uint32_t)n};
}

#define TEXT_BYTES bytes_of(TEXT, sizeof TEXT - 1)
#define PAYLOAD_BYTES bytes_of(PAYLOAD, sizeof PAYLOAD)

static proto_name QUEUES[3] = {"emails", "reports.monthly_long-queue_name_over_32", "q"};
static struct proto_lease_ref LEASES[2] = {{42, 0x100000003ull}, {0x123456789abull, 7}};
static uint64_t IDS[3] = {1, 0xfffffffffull, UINT64_MAX};

static struct proto_job_spec SPECS[2] = {
    {.attrs.queue = "emails",
     .attrs.type = "send.welcome",
     .attrs.priority = -1000,
     .attrs.max_attempts = 5,
     .delay_ms = 60000,
     .attrs.timeout_ms = 0x1ffffffffull,
     .key = {(const uint8_t *)"order-4711 retry~", 17}},
    {.attrs.queue = "reports.monthly_long-queue_name_over_32",
     .attrs.type = "t",
     .attrs.priority = 1000,
     .attrs.max_attempts = 0,
     .delay_ms = 0,
     .attrs.timeout_ms = 300,
     .run_at_us = 1764460800123456ull,
     .attrs.group = "tenant-42"},
};

static struct proto_delivery DELIVERIES[2] = {
    {.job_id = 0x100000001ull,
     .lease = 0x200000005ull,
     .attempt = 3,
     .attrs.queue = "emails",
     .attrs.type = "send.welcome",
     .attrs.timeout_ms = 30000},
    {.job_id = 9,
     .lease = 1,
     .attempt = 1,
     .attrs.queue = "q",
     .attrs.type = "t",
     .attrs.timeout_ms = 0},
};

static struct proto_settle_item SETTLE_ITEMS[3] = {
    {.job_id = 5, .lease = 0xf00dfacedeadbeefull, .outcome = PROTO_SETTLE_COMPLETED},
    {.job_id = 6, .lease = 1, .outcome = PROTO_SETTLE_FAILED, .permanent = true},
    {.job_id = 0x7fffffffffull, .lease = 2, .outcome = PROTO_SETTLE_RELEASED}};
static int32_t CODES[3] = {0, JM_ESTALE, INT32_MIN};
static struct proto_queue_stats QSTATS[2] = {{.name = "emails",
                                              .pending = 1,
                                              .delayed = 2,
                                              .active = 300,
                                              .completed = 70000,
                                              .failed = 5,
                                              .cancelled = 6,
                                              .oldest_pending_us = 1764460800123456ull,
                                              .max_active = 8,
                                              .paused = true,
                                              .rate_jobs = 10,
                                              .rate_period_ms = 1000,
                                              .own_settings = PROTO_QSET_PAUSED | PROTO_QSET_RATE,
                                              .max_attempts = 3,
                                              .keep_finished = 100000,
                                              .keep_finished_age_ms = 604800000ull,
                                              .key_window_ms = 86400000ull,
                                              .unroutable = 3,
                                              .unroutable_types_count = 2,
                                              .unroutable_types = QUEUES,
                                              .keep_failed = PROTO_KEEP_ALL,
                                              .keep_failed_age_ms = 0,
                                              .keep_cancelled = 500,
                                              .keep_cancelled_age_ms = 3600000ull,
                                              .group_limit = 4},
                                             {.name = "q", .pending = 0x100000000ull}};
static struct proto_batch_error BATCH_ERRORS[2] = {{.job_id = 11}, {.job_id = 0x100000000ull}};

static const struct proto_queue_settings QUEUE_SETTINGS = {
    .queue = "payments.stripe",
    .set_mask = PROTO_QSET_PAUSED | PROTO_QSET_RATE | PROTO_QSET_MAX_ACTIVE |
                PROTO_QSET_KEY_WINDOW | PROTO_QSET_GROUP_LIMIT | PROTO_QSET_KEEP_COMPLETED |
                PROTO_QSET_KEEP_FAILED | PROTO_QSET_KEEP_CANCELLED_AGE,
    .paused = true,
    .max_active = 5,
    .rate_jobs = 10,
    .rate_period_ms = 1000,
    .max_attempts = 3,
    .keep_finished = 100000,
    .keep_finished_age_ms = 604800000ull,
    .key_window_ms = 86400000ull,
    .group_limit = 2,
    .keep_completed = 100000,
    .keep_completed_age_ms = 604800000ull,
    .keep_failed = PROTO_KEEP_ALL,
    .keep_failed_age_ms = 0,
    .keep_cancelled = 20,
    .keep_cancelled_age_ms = 3600000ull};

static void queue_settings_equal(const struct proto_queue_settings *a,
                                 const struct proto_queue_settings *b)
{
	EQ_NAME(queue);
	EQ(set_mask);
	EQ(paused);
	EQ(max_active);
	EQ(rate_jobs);
	EQ(rate_period_ms);
	EQ(max_attempts);
	EQ(keep_finished);
	EQ(keep_finished_age_ms);
	EQ(key_window_ms);
	EQ(group_limit);
	EQ(keep_completed);
	EQ(keep_completed_age_ms);
	EQ(keep_failed);
	EQ(keep_failed_age_ms);
	EQ(keep_cancelled);
	EQ(keep_cancelled_age_ms);
}

static void job_info_fill(struct proto_job_info *j, bool with_result)
{
	*j = (struct proto_job_info){.job_id = 0x1234567890ull,
	                             .attrs.queue = "emails",
	                             .attrs.type = "send.welcome",
	                             .state = PROTO_STATE_COMPLETED,
	                             .attrs.priority = -7,
	                             .attempt = 2,
	                             .attrs.max_attempts = 5,
	                             .attrs.created_us = 1764460800123456ull,
	                             .updated_us = 1764460801000000ull,
	                             .run_at_us = 0,
	                             .last_error = TEXT_BYTES,
	                             .has_result = with_result,
	                             .attrs.batch_id = 77,
	                             .progress_done = 3,
	                             .progress_total = 4,
	                             .progress_message = bytes_of("writing", 7)};
	if (with_result)
		j->result = PAYLOAD_BYTES;
	else
		j->payload = bytes_of("{\"to\":\"a@b\"}", 13);
}

static void batch_info_fill(struct proto_batch_info *b, uint32_t errors)
{
	*b = (struct proto_batch_info){.batch_id = 0x500000001ull,
	                               .state = PROTO_BATCH_FAILED,
	                               .total = 10,
	                               .completed = 7,
	                               .failed = 2,
	                               .cancelled = 1,
	                               .active = 0,
	                               .current_operation = bytes_of("send.welcome", 12),
	                               .errors_count = errors,
	                               .errors = errors > 0 ? BATCH_ERRORS : NULL,
	                               .created_us = 1764460800000000ull,
	                               .finished_us = 1764460860000000ull};
}

static struct proto_job_info JOB_INFOS[2];
static struct proto_worker_info WORKER_INFOS[2];
static struct proto_batch_info BATCH_INFOS[2];
static struct proto_schedule_info SCHEDULE_INFOS[2] = {
    {.name = "nightly-report",
     .expr = {(const uint8_t *)"30 2 * * mon-fri", 16},
     .zone = {(const uint8_t *)"Europe/Berlin", 13},
     .queue = "reports",
     .type = "report.daily",
     .payload = {(const uint8_t *)"{}", 2},
     .priority = -3,
     .max_attempts = 4,
     .timeout_ms = 90000,
     .last_fired_us = 1764459000000000ull,
     .next_run_us = 1764545400000000ull},
    {.name = "tick", .expr = {(const uint8_t *)"@every 1s", 9}, .queue = "q", .type = "t"},
};

/* Fills msg with the fixed value of its type. */
static void msg_fill(struct proto_msg *m, enum proto_type type)
{
	memset(m, 0, sizeof *m);
	m->type = type;
	for (int i = 0; i < 2; i++) {
		SPECS[i].payload = i == 0 ? PAYLOAD_BYTES : bytes_of(NULL, 0);
		DELIVERIES[i].payload = i == 0 ? PAYLOAD_BYTES : bytes_of(NULL, 0);
		BATCH_ERRORS[i].text = i == 0 ? TEXT_BYTES : bytes_of("x", 1);
	}
	SETTLE_ITEMS[0].data = PAYLOAD_BYTES;
	SETTLE_ITEMS[1].data = TEXT_BYTES;
	SETTLE_ITEMS[2].data = bytes_of("draining", 8);
	job_info_fill(&JOB_INFOS[0], false);
	job_info_fill(&JOB_INFOS[1], false);
	JOB_INFOS[1].job_id = 3;
	JOB_INFOS[1].state = PROTO_STATE_FAILED;
	JOB_INFOS[1].progress_done = JOB_INFOS[1].progress_total = 0;
	JOB_INFOS[1].progress_message = bytes_of(NULL, 0);
	WORKER_INFOS[0] = (struct proto_worker_info){.worker_id = "w-1.host",
	                                             .host = bytes_of("build-07.example.org", 20),
	                                             .pid = 123456,
	                                             .concurrency = 8,
	                                             .queues_count = 3,
	                                             .queues = QUEUES,
	                                             .active_jobs = 2,
	                                             .first_seen_us = 1764460800000000ull,
	                                             .last_seen_us = 1764460899000000ull,
	                                             .draining = true,
	                                             .job_ids_count = 3,
	                                             .job_ids = IDS};
	WORKER_INFOS[1] = (struct proto_worker_info){.worker_id = "w2", .pid = 1};
	batch_info_fill(&BATCH_INFOS[0], 2);
	batch_info_fill(&BATCH_INFOS[1], 0);
	BATCH_INFOS[1].state = PROTO_BATCH_RUNNING;
	BATCH_INFOS[1].finished_us = 0;

	switch (type) {
	case PROTO_ERROR:
		m->u.error = (struct proto_error){.code = JM_ENOTFOUND, .message = TEXT_BYTES};
		break;
	case PROTO_SUBMIT:
		m->u.submit =
		    (struct proto_submit){.as_batch = true, .jobs_count = 2, .jobs = SPECS};
		break;
	case PROTO_SUBMIT_WAIT:
		m->u.submit_wait = (struct proto_submit_wait){.timeout_ms = 30000, .job = SPECS[1]};
		break;
	case PROTO_SUBMITTED:
		m->u.submitted = (struct proto_submitted){.batch_id = 0x500000001ull,
		                                          .ids_count = 3,
		                                          .ids = IDS,
		                                          .existing_ids_count = 1,
		                                          .existing_ids = &IDS[1]};
		break;
	case PROTO_FETCH:
		m->u.fetch = (struct proto_fetch){.worker_id = "w-1.host",
		                                  .instance = 0xdeadbeefcafeull,
		                                  .slot = 3,
		                                  .queues_count = 3,
		                                  .queues = QUEUES,
		                                  .max_jobs = 16,
		                                  .wait_ms = 25000,
		                                  .types_count = 2,
		                                  .types = QUEUES};
		break;
	case PROTO_JOBS:
		m->u.jobs = (struct proto_jobs){.jobs_count = 2, .jobs = DELIVERIES};
		break;
	case PROTO_SETTLE:
		m->u.settle = (struct proto_settle){.worker_id = "w-1.host",
		                                    .instance = 0xfeedface12ull,
		                                    .items_count = 3,
		                                    .items = SETTLE_ITEMS};
		break;
	case PROTO_SETTLED:
	case PROTO_STATUS:
	case PROTO_RESULT:
	case PROTO_CANCEL:
	case PROTO_BATCH_STATUS:
		if (type == PROTO_SETTLED)
			m->u.settled = (struct proto_settled){.codes_count = 3, .codes = CODES};
		else
			m->u.job_ref = (struct proto_job_ref){.job_id = 0xabcdef012345ull,
			                                      .with_payload = type == PROTO_STATUS};
		break;
	case PROTO_WAIT:
		m->u.wait = (struct proto_wait){
		    .job_id = 0x100000000ull, .timeout_ms = 30000, .with_payload = true};
		break;
	case PROTO_JOB:
		job_info_fill(&m->u.job, true);
		break;
	case PROTO_STATS:
	case PROTO_WORKERS:
	case PROTO_BATCHES:
		break;
	case PROTO_HELLO:
		m->u.hello = (struct proto_hello){.token = bytes_of("s3cret-token", 12)};
		break;
	case PROTO_STATS_REPLY:
		m->u.stats_reply = (struct proto_stats_reply){.queues_count = 2, .queues = QSTATS};
		break;
	case PROTO_HEARTBEAT:
		m->u.heartbeat = (struct proto_heartbeat){.worker_id = "w-1.host",
		                                          .instance = 0xfeedface12ull,
		                                          .host = bytes_of("build-07", 8),
		                                          .pid = 4242,
		                                          .concurrency = 4,
		                                          .queues_count = 2,
		                                          .queues = QUEUES,
		                                          .leases_count = 2,
		                                          .leases = LEASES,
		                                          .draining = true};
		break;
	case PROTO_HEARTBEAT_REPLY:
		m->u.heartbeat_reply =
		    (struct proto_heartbeat_reply){.abandon_count = 2, .abandon = LEASES};
		break;
	case PROTO_WORKERS_REPLY:
		m->u.workers_reply =
		    (struct proto_workers_reply){.workers_count = 2, .workers = WORKER_INFOS};
		break;
	case PROTO_PROGRESS:
		m->u.progress = (struct proto_progress){.worker_id = "w-1.host",
		                                        .job_id = 0x100000009ull,
		                                        .lease = 0x200000001ull,
		                                        .done = 700,
		                                        .total = 0x100000000ull,
		                                        .message = bytes_of("section 3/7", 11),
		                                        .instance = 0xfeedface12ull};
		break;
	case PROTO_BATCH:
		batch_info_fill(&m->u.batch, 2);
		break;
	case PROTO_BATCHES_REPLY:
		m->u.batches_reply =
		    (struct proto_batches_reply){.batches_count = 2, .batches = BATCH_INFOS};
		break;
	case PROTO_HELLO_REPLY:
		m->u.hello_reply =
		    (struct proto_hello_reply){.broker_version = bytes_of("0.9.1", 5),
		                               .events_url = bytes_of("tcp://127.0.0.1:7701", 20),
		                               .identity = bytes_of("shop-api", 8),
		                               .role = bytes_of("producer", 8)};
		break;
	case PROTO_DEAD_LIST:
		m->u.dead_list =
		    (struct proto_dead_list){.queue = "emails", .limit = 500, .with_payload = true};
		break;
	case PROTO_JOB_LIST:
		m->u.job_list = (struct proto_job_list){.jobs_count = 2, .jobs = JOB_INFOS};
		break;
	case PROTO_REVIVE:
	case PROTO_DEAD_REMOVE:
		m->u.revive = (struct proto_revive){.queue = "emails", .job_id = 0x100000002ull};
		break;
	case PROTO_REVIVED:
		m->u.revived = (struct proto_revived){.ids_count = 3, .ids = IDS};
		break;
	case PROTO_SCHEDULE_PUT:
		m->u.schedule_put = SCHEDULE_INFOS[0];
		m->u.schedule_put.last_fired_us = 0;
		m->u.schedule_put.next_run_us = 0;
		break;
	case PROTO_SCHEDULE_DELETE:
		m->u.schedule_ref = (struct proto_schedule_ref){.name = "nightly-report"};
		break;
	case PROTO_SCHEDULE_LIST:
		break;
	case PROTO_SCHEDULES:
		m->u.schedules =
		    (struct proto_schedules){.schedules_count = 2, .schedules = SCHEDULE_INFOS};
		break;
	case PROTO_QUEUE_SET:
	case PROTO_QUEUE_SETTINGS:
		m->u.queue_settings = QUEUE_SETTINGS;
		if (type == PROTO_QUEUE_SET)
			m->u.queue_settings.set_mask = PROTO_QSET_PAUSED | PROTO_QSET_RATE;
		break;
	case PROTO_JOB_QUERY:
		m->u.job_query = (struct proto_job_query){.queue = "emails",
		                                          .state = PROTO_STATE_FAILED,
		                                          .batch_id = 0x100000007ull,
		                                          .limit = 50,
		                                          .cursor = 0x100000100ull};
		break;
	case PROTO_EVENT:
		m->u.event = (struct proto_event){.kind = PROTO_EVENT_JOB_PROGRESS,
		                                  .at_us = 1764460800654321ull,
		                                  .job_id = 0x100000009ull,
		                                  .batch_id = 77,
		                                  .queue = "emails",
		                                  .type = "",
		                                  .state = PROTO_STATE_ACTIVE,
		                                  .attempt = 2,
		                                  .done = 3,
		                                  .total = 9,
		                                  .failed = 0,
		                                  .message = bytes_of("section 3/7", 11),
		                                  .worker_id = "w-1.host"};
		break;
	}
}

static void job_info_equal(const struct proto_job_info *a, const struct proto_job_info *b)
{
	EQ(job_id);
	EQ_NAME(attrs.queue);
	EQ_NAME(attrs.type);
	EQ(state);
	EQ(attrs.priority);
	EQ(attempt);
	EQ(attrs.max_attempts);
	EQ(attrs.created_us);
	EQ(updated_us);
	EQ(run_at_us);
	EQ_BYTES(last_error);
	EQ(has_result);
	EQ_BYTES(result);
	EQ(attrs.batch_id);
	EQ(progress_done);
	EQ(progress_total);
	EQ_BYTES(progress_message);
	EQ_BYTES(payload);
}

static void batch_info_equal(const struct proto_batch_info *a, const struct proto_batch_info *b)
{
	EQ(batch_id);
	EQ(state);
	EQ(total);
	EQ(completed);
	EQ(failed);
	EQ(cancelled);
	EQ(active);
	EQ_BYTES(current_operation);
	EQ(errors_count);
	for (uint32_t i = 0; i < a->errors_count; i++) {
		assert_true(a->errors[i].job_id == b->errors[i].job_id);
		bytes_equal(&a->errors[i].text, &b->errors[i].text);
	}
	EQ(created_us);
	EQ(finished_us);
}

static void worker_info_equal(const struct proto_worker_info *a, const struct proto_worker_info *b)
{
	EQ_NAME(worker_id);
	EQ_BYTES(host);
	EQ(pid);
	EQ(concurrency);
	EQ(queues_count);
	names_equal(a->queues, b->queues, a->queues_count);
	EQ(active_jobs);
	EQ(first_seen_us);
	EQ(last_seen_us);
	EQ(draining);
	EQ(job_ids_count);
	ids_equal(a->job_ids, b->job_ids, a->job_ids_count);
}

static void schedule_info_equal(const struct proto_schedule_info *a,
                                const struct proto_schedule_info *b)
{
	EQ_NAME(name);
	EQ_BYTES(expr);
	EQ_BYTES(zone);
	EQ_NAME(queue);
	EQ_NAME(type);
	EQ_BYTES(payload);
	EQ(priority);
	EQ(max_attempts);
	EQ(timeout_ms);
	EQ(last_fired_us);
	EQ(next_run_us);
}

/* Compares every field of the decoded message got with the fixed want. */
static void job_spec_equal(const struct proto_job_spec *a, const struct proto_job_spec *b)
{
	EQ_NAME(attrs.queue);
	EQ_NAME(attrs.type);
	EQ_BYTES(payload);
	EQ(attrs.priority);
	EQ(attrs.max_attempts);
	EQ(delay_ms);
	EQ(attrs.timeout_ms);
	EQ_BYTES(key);
	EQ(run_at_us);
	EQ_NAME(attrs.group);
}

static void msg_equal(const struct proto_msg *want, const struct proto_msg *got)
{
	assert_int_equal(got->version, PROTO_VERSION);
	assert_int_equal(got->type, want->type);
	switch (want->type) {
	case PROTO_ERROR: {
		const struct proto_error *a = &want->u.error, *b = &got->u.error;
		EQ(code);
		EQ_BYTES(message);
		break;
	}
	case PROTO_SUBMIT: {
		const struct proto_submit *s = &want->u.submit, *t = &got->u.submit;
		assert_true(s->as_batch == t->as_batch);
		assert_int_equal(s->jobs_count, t->jobs_count);
		for (uint32_t i = 0; i < s->jobs_count; i++)
			job_spec_equal(&s->jobs[i], &t->jobs[i]);
		break;
	}
	case PROTO_SUBMIT_WAIT:
		assert_int_equal(want->u.submit_wait.timeout_ms, got->u.submit_wait.timeout_ms);
		job_spec_equal(&want->u.submit_wait.job, &got->u.submit_wait.job);
		break;
	case PROTO_SUBMITTED: {
		const struct proto_submitted *a = &want->u.submitted, *b = &got->u.submitted;
		EQ(batch_id);
		EQ(ids_count);
		ids_equal(a->ids, b->ids, a->ids_count);
		EQ(existing_ids_count);
		ids_equal(a->existing_ids, b->existing_ids, a->existing_ids_count);
		break;
	}
	case PROTO_FETCH: {
		const struct proto_fetch *a = &want->u.fetch, *b = &got->u.fetch;
		EQ_NAME(worker_id);
		EQ(instance);
		EQ(slot);
		EQ(queues_count);
		names_equal(a->queues, b->queues, a->queues_count);
		EQ(max_jobs);
		EQ(wait_ms);
		EQ(types_count);
		names_equal(a->types, b->types, a->types_count);
		break;
	}
	case PROTO_JOBS: {
		const struct proto_jobs *s = &want->u.jobs, *t = &got->u.jobs;
		assert_int_equal(s->jobs_count, t->jobs_count);
		for (uint32_t i = 0; i < s->jobs_count; i++) {
			const struct proto_delivery *a = &s->jobs[i], *b = &t->jobs[i];
			EQ(job_id);
			EQ(lease);
			EQ(attempt);
			EQ_NAME(attrs.queue);
			EQ_NAME(attrs.type);
			EQ_BYTES(payload);
			EQ(attrs.timeout_ms);
		}
		break;
	}
	case PROTO_SETTLE: {
		const struct proto_settle *s = &want->u.settle, *t = &got->u.settle;
		assert_string_equal(s->worker_id, t->worker_id);
		assert_true(s->instance == t->instance);
		assert_int_equal(s->items_count, t->items_count);
		for (uint32_t i = 0; i < s->items_count; i++) {
			const struct proto_settle_item *a = &s->items[i], *b = &t->items[i];
			EQ(job_id);
			EQ(lease);
			EQ(outcome);
			EQ_BYTES(data);
			EQ(permanent);
		}
		break;
	}
	case PROTO_SETTLED: {
		const struct proto_settled *a = &want->u.settled, *b = &got->u.settled;
		EQ(codes_count);
		for (uint32_t i = 0; i < a->codes_count; i++)
			assert_int_equal(a->codes[i], b->codes[i]);
		break;
	}
	case PROTO_STATUS:
	case PROTO_RESULT:
	case PROTO_CANCEL:
	case PROTO_BATCH_STATUS: {
		const struct proto_job_ref *a = &want->u.job_ref, *b = &got->u.job_ref;
		EQ(job_id);
		if (want->type != PROTO_BATCH_STATUS)
			EQ(with_payload);
		break;
	}
	case PROTO_WAIT: {
		const struct proto_wait *a = &want->u.wait, *b = &got->u.wait;
		EQ(job_id);
		EQ(timeout_ms);
		EQ(with_payload);
		break;
	}
	case PROTO_JOB:
		job_info_equal(&want->u.job, &got->u.job);
		break;
	case PROTO_STATS:
	case PROTO_WORKERS:
	case PROTO_BATCHES:
		break;
	case PROTO_HELLO: {
		const struct proto_hello *a = &want->u.hello, *b = &got->u.hello;
		EQ_BYTES(token);
		break;
	}
	case PROTO_STATS_REPLY: {
		const struct proto_stats_reply *s = &want->u.stats_reply, *t = &got->u.stats_reply;
		assert_int_equal(s->queues_count, t->queues_count);
		for (uint32_t i = 0; i < s->queues_count; i++) {
			const struct proto_queue_stats *a = &s->queues[i], *b = &t->queues[i];
			EQ_NAME(name);
			EQ(pending);
			EQ(delayed);
			EQ(active);
			EQ(completed);
			EQ(failed);
			EQ(cancelled);
			EQ(oldest_pending_us);
			EQ(max_active);
			EQ(paused);
			EQ(rate_jobs);
			EQ(rate_period_ms);
			EQ(own_settings);
			EQ(max_attempts);
			EQ(keep_finished);
			EQ(keep_finished_age_ms);
			EQ(key_window_ms);
			EQ(unroutable);
			EQ(unroutable_types_count);
			names_equal(a->unroutable_types, b->unroutable_types,
			            a->unroutable_types_count);
			EQ(keep_failed);
			EQ(keep_failed_age_ms);
			EQ(keep_cancelled);
			EQ(keep_cancelled_age_ms);
			EQ(group_limit);
		}
		break;
	}
	case PROTO_JOB_QUERY: {
		const struct proto_job_query *a = &want->u.job_query, *b = &got->u.job_query;
		EQ_NAME(queue);
		EQ(state);
		EQ(batch_id);
		EQ(limit);
		EQ(cursor);
		break;
	}
	case PROTO_HEARTBEAT: {
		const struct proto_heartbeat *a = &want->u.heartbeat, *b = &got->u.heartbeat;
		EQ_NAME(worker_id);
		EQ(instance);
		EQ_BYTES(host);
		EQ(pid);
		EQ(concurrency);
		EQ(queues_count);
		names_equal(a->queues, b->queues, a->queues_count);
		EQ(leases_count);
		leases_equal(a->leases, b->leases, a->leases_count);
		EQ(draining);
		break;
	}
	case PROTO_HEARTBEAT_REPLY: {
		const struct proto_heartbeat_reply *a = &want->u.heartbeat_reply,
		                                   *b = &got->u.heartbeat_reply;
		EQ(abandon_count);
		leases_equal(a->abandon, b->abandon, a->abandon_count);
		break;
	}
	case PROTO_WORKERS_REPLY: {
		const struct proto_workers_reply *s = &want->u.workers_reply,
		                                 *t = &got->u.workers_reply;
		assert_int_equal(s->workers_count, t->workers_count);
		for (uint32_t i = 0; i < s->workers_count; i++)
			worker_info_equal(&s->workers[i], &t->workers[i]);
		break;
	}
	case PROTO_PROGRESS: {
		const struct proto_progress *a = &want->u.progress, *b = &got->u.progress;
		EQ_NAME(worker_id);
		EQ(job_id);
		EQ(lease);
		EQ(done);
		EQ(total);
		EQ_BYTES(message);
		EQ(instance);
		break;
	}
	case PROTO_BATCH:
		batch_info_equal(&want->u.batch, &got->u.batch);
		break;
	case PROTO_BATCHES_REPLY: {
		const struct proto_batches_reply *s = &want->u.batches_reply,
		                                 *t = &got->u.batches_reply;
		assert_int_equal(s->batches_count, t->batches_count);
		for (uint32_t i = 0; i < s->batches_count; i++)
			batch_info_equal(&s->batches[i], &t->batches[i]);
		break;
	}
	case PROTO_HELLO_REPLY: {
		const struct proto_hello_reply *a = &want->u.hello_reply, *b = &got->u.hello_reply;
		EQ_BYTES(broker_version);
		EQ_BYTES(events_url);
		EQ_BYTES(identity);
		EQ_BYTES(role);
		break;
	}
	case PROTO_DEAD_LIST: {
		const struct proto_dead_list *a = &want->u.dead_list, *b = &got->u.dead_list;
		EQ_NAME(queue);
		EQ(limit);
		EQ(with_payload);
		break;
	}
	case PROTO_JOB_LIST: {
		const struct proto_job_list *s = &want->u.job_list, *t = &got->u.job_list;
		assert_int_equal(s->jobs_count, t->jobs_count);
		for (uint32_t i = 0; i < s->jobs_count; i++)
			job_info_equal(&s->jobs[i], &t->jobs[i]);
		break;
	}
	case PROTO_REVIVE:
	case PROTO_DEAD_REMOVE: {
		const struct proto_revive *a = &want->u.revive, *b = &got->u.revive;
		EQ_NAME(queue);
		EQ(job_id);
		break;
	}
	case PROTO_REVIVED: {
		const struct proto_revived *a = &want->u.revived, *b = &got->u.revived;
		EQ(ids_count);
		ids_equal(a->ids, b->ids, a->ids_count);
		break;
	}
	case PROTO_SCHEDULE_PUT:
		schedule_info_equal(&want->u.schedule_put, &got->u.schedule_put);
		break;
	case PROTO_SCHEDULE_DELETE:
		assert_string_equal(got->u.schedule_ref.name, want->u.schedule_ref.name);
		break;
	case PROTO_SCHEDULE_LIST:
		break;
	case PROTO_QUEUE_SET:
	case PROTO_QUEUE_SETTINGS:
		queue_settings_equal(&want->u.queue_settings, &got->u.queue_settings);
		break;
	case PROTO_SCHEDULES:
		assert_int_equal(got->u.schedules.schedules_count,
		                 want->u.schedules.schedules_count);
		for (uint32_t i = 0; i < want->u.schedules.schedules_count; i++)
			schedule_info_equal(&want->u.schedules.schedules[i],
			                    &got->u.schedules.schedules[i]);
		break;
	case PROTO_EVENT: {
		const struct proto_event *a = &want->u.event, *b = &got->u.event;
		EQ(kind);
		EQ(at_us);
		EQ(job_id);
		EQ(batch_id);
		EQ_NAME(queue);
		EQ_NAME(type);
		EQ(state);
		EQ(attempt);
		EQ(done);
		EQ(total);
		EQ(failed);
		EQ_BYTES(message);
		EQ_NAME(worker_id);
		break;
	}
	}
}

/* STATS_REPLY's queue_stats had 6 fields before cancelled,
 * oldest_pending_us and max_active were appended: an older broker's reply
 * still decodes, the new fields as 0. */
static void test_a_six_field_stats_reply_still_decodes(void **state)
{
	(void)state;
	struct jm_buf fixture = {0};
	golden_read("msg_stats-reply-6-fields", &fixture);
	struct proto_msg got;
	struct jm_err err;
	assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
	assert_int_equal(got.u.stats_reply.queues_count, 2);
	const struct proto_queue_stats *q = &got.u.stats_reply.queues[0];
	assert_string_equal(q->name, "emails");
	assert_int_equal(q->failed, 5);
	assert_int_equal(q->cancelled, 0);
	assert_int_equal(q->oldest_pending_us, 0);
	assert_int_equal(q->max_active, 0);
	proto_msg_fini(&got);
	jm_buf_fini(&fixture);
	/* 9 fields before paused, rate_jobs and rate_period_ms. */
	fixture = (struct jm_buf){0};
	golden_read("msg_stats-reply-9-fields", &fixture);
	assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
	q = &got.u.stats_reply.queues[0];
	assert_int_equal(q->max_active, 8);
	assert_false(q->paused);
	assert_int_equal(q->rate_jobs, 0);
	proto_msg_fini(&got);
	jm_buf_fini(&fixture);
	/* 12 fields before the rest of the settings, unroutable and its
	 * types. */
	fixture = (struct jm_buf){0};
	golden_read("msg_stats-reply-12-fields", &fixture);
	assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
	q = &got.u.stats_reply.queues[0];
	assert_true(q->paused);
	assert_int_equal(q->rate_jobs, 10);
	assert_int_equal(q->own_settings, 0);
	assert_int_equal(q->max_attempts, 0);
	assert_true(q->key_window_ms == 0);
	assert_int_equal(q->unroutable, 0);
	assert_int_equal(q->unroutable_types_count, 0);
	proto_msg_fini(&got);
	jm_buf_fini(&fixture);
	/* 19 fields before retention per state and group_limit. */
	fixture = (struct jm_buf){0};
	golden_read("msg_stats-reply-19-fields", &fixture);
	assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
	q = &got.u.stats_reply.queues[0];
	assert_int_equal(q->unroutable, 3);
	assert_int_equal(q->unroutable_types_count, 2);
	assert_true(q->keep_failed == 0 && q->keep_cancelled == 0);
	assert_int_equal(q->group_limit, 0);
	proto_msg_fini(&got);
	jm_buf_fini(&fixture);
}

/* FETCH had 6 fields before the worker's job types were appended: an
 * older worker's fetch still decodes, with no types (any type). */
static void test_a_fetch_without_types_still_decodes_as_any_type(void **state)
{
	(void)state;
	struct jm_buf fixture = {0};
	struct proto_msg got;
	struct jm_err err;
	golden_read("msg_fetch-6-fields", &fixture);
	assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
	assert_int_equal(got.type, PROTO_FETCH);
	assert_int_equal(got.u.fetch.max_jobs, 16);
	assert_int_equal(got.u.fetch.types_count, 0);
	proto_msg_fini(&got);
	jm_buf_fini(&fixture);
}

/* STATUS was [job_id], WAIT [job_id, timeout_ms] and JOB had 17 fields
 * before with_payload and payload were appended: an older peer's bytes still decode, the new
 * fields as false and empty. */
static void test_a_status_and_a_job_without_payload_fields_still_decode(void **state)
{
	(void)state;
	struct jm_buf fixture = {0};
	struct proto_msg got;
	struct jm_err err;
	golden_read("msg_status-1-field", &fixture);
	assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
	assert_int_equal(got.u.job_ref.job_id, 0xabcdef012345ull);
	assert_false(got.u.job_ref.with_payload);
	proto_msg_fini(&got);
	jm_buf_fini(&fixture);
	fixture = (struct jm_buf){0};
	golden_read("msg_job-17-fields", &fixture);
	assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
	assert_int_equal(got.u.job.job_id, 0x1234567890ull);
	assert_int_equal(got.u.job.payload.len, 0);
	proto_msg_fini(&got);
	jm_buf_fini(&fixture);
	fixture = (struct jm_buf){0};
	golden_read("msg_wait-2-fields", &fixture);
	assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
	assert_int_equal(got.u.wait.timeout_ms, 30000);
	assert_false(got.u.wait.with_payload);
	proto_msg_fini(&got);
	jm_buf_fini(&fixture);
}

/* SUBMIT's job spec had 7 fields and SUBMITTED 2 before the idempotency
 * key, run_at_us and existing_ids were appended, and a version 2 JOB
 * record 19 before its key: the older bytes still decode, the new fields
 * empty. */
static void test_bytes_from_before_idempotency_keys_still_decode(void **state)
{
	(void)state;
	struct jm_buf fixture = {0};
	struct proto_msg got;
	struct jm_err err;
	golden_read("msg_submit-7-field-specs", &fixture);
	assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
	assert_int_equal(got.u.submit.jobs_count, 2);
	assert_int_equal(got.u.submit.jobs[0].delay_ms, 60000);
	assert_int_equal(got.u.submit.jobs[0].key.len, 0);
	assert_int_equal(got.u.submit.jobs[1].run_at_us, 0);
	proto_msg_fini(&got);
	jm_buf_fini(&fixture);
	fixture = (struct jm_buf){0};
	golden_read("msg_submitted-2-fields", &fixture);
	assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
	assert_int_equal(got.u.submitted.ids_count, 3);
	assert_int_equal(got.u.submitted.existing_ids_count, 0);
	proto_msg_fini(&got);
	jm_buf_fini(&fixture);
	const char *records[] = {"rec_job-19-fields", "rec_schedule-fire-19-field-job"};
	for (int i = 0; i < 2; i++) {
		fixture = (struct jm_buf){0};
		golden_read(records[i], &fixture);
		struct proto_record rec;
		assert_jm_ok_err(proto_record_decode(fixture.data, fixture.len, &rec, &err), &err);
		const struct proto_rec_job *job = i == 0 ? &rec.u.job : &rec.u.schedule_fire.job;
		assert_true(job->job_id == 0x1234567890ull);
		assert_true(job->worker_instance == 0xfeedface12ull);
		assert_int_equal(job->key.len, 0);
		proto_record_fini(&rec);
		jm_buf_fini(&fixture);
	}
}

/* A SUBMIT spec and a JOB record from before groups (fair tenants) still
 * decode, with no group: an old client's submit and an old journal. */
static void test_bytes_from_before_groups_still_decode(void **state)
{
	(void)state;
	struct jm_buf fixture = {0};
	struct proto_msg got;
	struct jm_err err;
	golden_read("msg_submit-9-field-specs", &fixture);
	assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
	assert_int_equal(got.u.submit.jobs_count, 2);
	assert_int_equal(got.u.submit.jobs[1].run_at_us, 1764460800123456ull);
	assert_string_equal(got.u.submit.jobs[1].attrs.group, "");
	proto_msg_fini(&got);
	jm_buf_fini(&fixture);
	fixture = (struct jm_buf){0};
	golden_read("rec_job-20-fields", &fixture);
	struct proto_record rec;
	assert_jm_ok_err(proto_record_decode(fixture.data, fixture.len, &rec, &err), &err);
	assert_int_equal(rec.u.job.key.len, 15);
	assert_string_equal(rec.u.job.attrs.group, "");
	proto_record_fini(&rec);
	jm_buf_fini(&fixture);
	/* Queue settings before group_limit: a QUEUE_SET, its reply and a
	 * journal's QUEUE record, all with 10 fields. */
	fixture = (struct jm_buf){0};
	golden_read("rec_queue-10-fields", &fixture);
	assert_jm_ok_err(proto_record_decode(fixture.data, fixture.len, &rec, &err), &err);
	assert_int_equal(rec.u.queue.settings.key_window_ms, 86400000ull);
	assert_int_equal(rec.u.queue.settings.group_limit, 0);
	proto_record_fini(&rec);
	jm_buf_fini(&fixture);
	const char *msgs[] = {"msg_queue-set-10-fields", "msg_queue-settings-10-fields"};
	for (int i = 0; i < 2; i++) {
		fixture = (struct jm_buf){0};
		golden_read(msgs[i], &fixture);
		assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
		assert_int_equal(got.u.queue_settings.max_active, 5);
		assert_int_equal(got.u.queue_settings.group_limit, 0);
		proto_msg_fini(&got);
		jm_buf_fini(&fixture);
	}
	/* Queue settings before retention per state (11 fields: keep_finished
	 * is all three states, queue.c). */
	fixture = (struct jm_buf){0};
	golden_read("rec_queue-11-fields", &fixture);
	assert_jm_ok_err(proto_record_decode(fixture.data, fixture.len, &rec, &err), &err);
	assert_int_equal(rec.u.queue.settings.group_limit, 2);
	assert_true(rec.u.queue.settings.keep_finished == 100000);
	assert_true(rec.u.queue.settings.keep_failed == 0);
	proto_record_fini(&rec);
	jm_buf_fini(&fixture);
	const char *msgs11[] = {"msg_queue-set-11-fields", "msg_queue-settings-11-fields"};
	for (int i = 0; i < 2; i++) {
		fixture = (struct jm_buf){0};
		golden_read(msgs11[i], &fixture);
		assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
		assert_int_equal(got.u.queue_settings.group_limit, 2);
		assert_true(got.u.queue_settings.keep_completed == 0);
		assert_true(got.u.queue_settings.keep_cancelled_age_ms == 0);
		proto_msg_fini(&got);
		jm_buf_fini(&fixture);
	}
}

/* An older peer refuses a QUEUE_SETTINGS whose set_mask names a bit it
 * does not know: the per-state retention bits travel in keep_mask, so the
 * set_mask on the wire never has more than the 8 bits older peers know,
 * and decoding joins them back. */
static void test_queue_settings_keep_the_set_mask_an_older_peer_knows(void **state)
{
	(void)state;
	struct proto_msg want = {.type = PROTO_QUEUE_SETTINGS};
	want.u.queue_settings = QUEUE_SETTINGS;
	assert_true(QUEUE_SETTINGS.set_mask > 0xff);
	struct jm_buf wire = {0};
	jm_buf_init(&wire);
	assert_jm_ok(proto_encode(&want, &wire));
	msgpack_unpacked root;
	msgpack_unpacked_init(&root);
	assert_int_equal(msgpack_unpack_next(&root, (const char *)wire.data, wire.len, NULL),
	                 MSGPACK_UNPACK_SUCCESS);
	const msgpack_object *body = &root.data.via.array.ptr[2];
	assert_int_equal(body->type, MSGPACK_OBJECT_ARRAY);
	uint64_t wire_mask = body->via.array.ptr[1].via.u64;
	uint64_t keep_mask = body->via.array.ptr[body->via.array.size - 1].via.u64;
	assert_true(wire_mask == (QUEUE_SETTINGS.set_mask & 0xff));
	assert_true(keep_mask == QUEUE_SETTINGS.set_mask >> 8);
	msgpack_unpacked_destroy(&root);
	struct proto_msg got;
	struct jm_err err;
	assert_jm_ok_err(proto_decode(wire.data, wire.len, &got, &err), &err);
	assert_int_equal(got.u.queue_settings.set_mask, QUEUE_SETTINGS.set_mask);
	assert_int_equal(got.u.queue_settings.keep_mask, 0);
	proto_msg_fini(&got);
	jm_buf_fini(&wire);
}

static void test_every_message_type_encodes_to_its_golden_bytes_and_back(void **state)
{
	(void)state;
	for (int type = 1; type <= PROTO_TYPE_MAX_; type++) {
		if (type == 6 || type == 7) /* version 1's ACK and FAIL: see below */
			continue;
		struct proto_msg want;
		msg_fill(&want, (enum proto_type)type);
		char kind[64];
		snprintf(kind, sizeof kind, "msg_%s", proto_type_name(type));
		struct jm_buf encoded = {0};
		struct jm_buf fixture = {0};
		assert_jm_ok(proto_encode(&want, &encoded));
		golden_compare(kind, &encoded, &fixture);

		struct proto_msg got;
		struct jm_err err;
		assert_jm_ok_err(proto_decode(fixture.data, fixture.len, &got, &err), &err);
		msg_equal(&want, &got);
		proto_msg_fini(&got);
		jm_buf_fini(&encoded);
		jm_buf_fini(&fixture);
	}
	if (golden_writing())
		fail_msg("fixtures rewritten (JM_GOLDEN_WRITE=1): review and commit them");
}

/* Records. */

static void rec_fill(struct proto_record *r, enum proto_record_type type)
{
	memset(r, 0, sizeof *r);
	r->type = type;
	switch (type) {
	case PROTO_REC_JOB:
		r->u.job =
		    (struct proto_rec_job){.job_id = 0x1234567890ull,
		                           .attrs.batch_id = 77,
		                           .attrs.queue = "reports.monthly_long-queue_name_over_32",
		                           .attrs.type = "send.welcome",
		                           .payload = PAYLOAD_BYTES,
		                           .attrs.priority = -1000,
		                           .attrs.max_attempts = 1000,
		                           .attrs.timeout_ms = 0x1ffffffffull,
		                           .state = PROTO_STATE_ACTIVE,
		                           .attempt = 2,
		                           .lease = 0x300000004ull,
		                           .attrs.created_us = 1764460800123456ull,
		                           .updated_us = 1764460801000000ull,
		                           .run_at_us = 1764460860000000ull,
		                           .worker_id = "w-1.host",
		                           .last_error = TEXT_BYTES,
		                           .result = bytes_of("ok", 2),
		                           .lease_token = 0x8badf00d5eed1234ull,
		                           .worker_instance = 0xfeedface12ull,
		                           .key = bytes_of("invoice-2026-11", 15),
		                           .attrs.group = "tenant-42"};
		break;
	case PROTO_REC_LEASE:
		r->u.lease = (struct proto_rec_lease){.job_id = 0x100000001ull,
		                                      .lease = 0x300000004ull,
		                                      .attempt = 3,
		                                      .worker_id = "w-1.host",
		                                      .at_us = 1764460800000001ull,
		                                      .token = 0x8badf00d5eed1234ull,
		                                      .instance = 0xfeedface12ull};
		break;
	case PROTO_REC_SETTLE:
		r->u.settle = (struct proto_rec_settle){.job_id = 0x100000001ull,
		                                        .lease = 0x300000004ull,
		                                        .outcome = PROTO_OUTCOME_RETRY,
		                                        .at_us = 1764460800000001ull,
		                                        .run_at_us = 1764460830000001ull,
		                                        .data = TEXT_BYTES};
		break;
	case PROTO_REC_CANCEL:
		r->u.cancel = (struct proto_rec_job_event){.job_id = 0x100000001ull,
		                                           .at_us = 1764460800000002ull};
		break;
	case PROTO_REC_DROP:
		r->u.drop = (struct proto_rec_job_event){.job_id = 5, .at_us = 1764460800000003ull};
		break;
	case PROTO_REC_REVIVE:
		r->u.revive = (struct proto_rec_revive){.job_id = 0x100000001ull,
		                                        .at_us = 1764460800000004ull,
		                                        .max_attempts = 7,
		                                        .lease = 0x300000004ull};
		break;
	case PROTO_REC_META:
		r->u.meta = (struct proto_rec_meta){.next_job_id = 0x100000010ull, .boot_epoch = 3};
		break;
	case PROTO_REC_SCHEDULE:
		r->u.schedule =
		    (struct proto_rec_schedule){.name = "nightly-report",
		                                .expr = bytes_of("30 2 * * mon-fri", 16),
		                                .zone = bytes_of("Europe/Berlin", 13),
		                                .queue = "reports",
		                                .type = "report.daily",
		                                .payload = PAYLOAD_BYTES,
		                                .priority = 5,
		                                .max_attempts = 3,
		                                .timeout_ms = 60000,
		                                .deleted = false,
		                                .last_fired_us = 1764459000000000ull,
		                                .at_us = 1764460800000005ull};
		break;
	case PROTO_REC_QUEUE:
		r->u.queue.settings = QUEUE_SETTINGS;
		r->u.queue.at_us = 1764460800000006ull;
		break;
	case PROTO_REC_SCHEDULE_FIRE:
		rec_fill(r, PROTO_REC_JOB);
		struct proto_rec_job job = r->u.job; /* u.job overlaps u.schedule_fire */
		memset(&r->u, 0, sizeof r->u);
		r->u.schedule_fire.job = job;
		snprintf(r->u.schedule_fire.name, sizeof r->u.schedule_fire.name, "every-second");
		r->u.schedule_fire.scheduled_for_us = 1764460800000000ull;
		r->type = PROTO_REC_SCHEDULE_FIRE;
		break;
	}
}

static void rec_equal(const struct proto_record *want, const struct proto_record *got);
static void rec_equal(const struct proto_record *want, const struct proto_record *got)
{
	assert_int_equal(got->version, want->version);
	assert_int_equal(got->type, want->type);
	switch (want->type) {
	case PROTO_REC_JOB: {
		const struct proto_rec_job *a = &want->u.job, *b = &got->u.job;
		EQ(job_id);
		EQ(attrs.batch_id);
		EQ_NAME(attrs.queue);
		EQ_NAME(attrs.type);
		EQ_BYTES(payload);
		EQ(attrs.priority);
		EQ(attrs.max_attempts);
		EQ(attrs.timeout_ms);
		EQ(state);
		EQ(attempt);
		EQ(lease);
		EQ(attrs.created_us);
		EQ(updated_us);
		EQ(run_at_us);
		EQ_NAME(worker_id);
		EQ_BYTES(last_error);
		EQ_BYTES(result);
		EQ(lease_token);
		EQ(worker_instance);
		EQ_BYTES(key);
		EQ_NAME(attrs.group);
		break;
	}
	case PROTO_REC_LEASE: {
		const struct proto_rec_lease *a = &want->u.lease, *b = &got->u.lease;
		EQ(job_id);
		EQ(lease);
		EQ(attempt);
		EQ_NAME(worker_id);
		EQ(at_us);
		EQ(token);
		EQ(instance);
		break;
	}
	case PROTO_REC_SETTLE: {
		const struct proto_rec_settle *a = &want->u.settle, *b = &got->u.settle;
		EQ(job_id);
		EQ(lease);
		EQ(outcome);
		EQ(at_us);
		EQ(run_at_us);
		EQ_BYTES(data);
		break;
	}
	case PROTO_REC_CANCEL:
	case PROTO_REC_DROP: {
		const struct proto_rec_job_event *a = &want->u.cancel, *b = &got->u.cancel;
		EQ(job_id);
		EQ(at_us);
		break;
	}
	case PROTO_REC_REVIVE: {
		const struct proto_rec_revive *a = &want->u.revive, *b = &got->u.revive;
		EQ(job_id);
		EQ(at_us);
		EQ(max_attempts);
		EQ(lease);
		break;
	}
	case PROTO_REC_META: {
		const struct proto_rec_meta *a = &want->u.meta, *b = &got->u.meta;
		EQ(next_job_id);
		EQ(boot_epoch);
		break;
	}
	case PROTO_REC_SCHEDULE: {
		const struct proto_rec_schedule *a = &want->u.schedule, *b = &got->u.schedule;
		EQ_NAME(name);
		EQ_BYTES(expr);
		EQ_BYTES(zone);
		EQ_NAME(queue);
		EQ_NAME(type);
		EQ_BYTES(payload);
		EQ(priority);
		EQ(max_attempts);
		EQ(timeout_ms);
		EQ(deleted);
		EQ(last_fired_us);
		EQ(at_us);
		break;
	}
	case PROTO_REC_QUEUE:
		queue_settings_equal(&want->u.queue.settings, &got->u.queue.settings);
		assert_true(want->u.queue.at_us == got->u.queue.at_us);
		break;
	case PROTO_REC_SCHEDULE_FIRE: {
		const struct proto_rec_schedule_fire *a = &want->u.schedule_fire,
		                                     *b = &got->u.schedule_fire;
		EQ_NAME(name);
		EQ(scheduled_for_us);
		struct proto_record wj = {.version = PROTO_RECORD_VERSION, .type = PROTO_REC_JOB},
		                    gj = {.type = PROTO_REC_JOB};
		wj.u.job = a->job;
		gj.u.job = b->job;
		gj.version = PROTO_RECORD_VERSION;
		rec_equal(&wj, &gj);
		break;
	}
	}
}

static void test_every_record_type_encodes_to_its_golden_bytes_and_back(void **state)
{
	(void)state;
	for (int type = 1; type <= PROTO_REC_TYPE_MAX_; type++) {
		struct proto_record want;
		rec_fill(&want, (enum proto_record_type)type);
		want.version = PROTO_RECORD_VERSION;
		char kind[64];
		snprintf(kind, sizeof kind, "rec_%s", proto_record_type_name(type));
		struct jm_buf encoded = {0};
		struct jm_buf fixture = {0};
		assert_jm_ok(proto_record_encode(&want, &encoded));
		golden_compare(kind, &encoded, &fixture);

		struct proto_record got;
		struct jm_err err;
		assert_jm_ok_err(proto_record_decode(fixture.data, fixture.len, &got, &err), &err);
		rec_equal(&want, &got);
		proto_record_fini(&got);
		jm_buf_fini(&encoded);
		jm_buf_fini(&fixture);
	}
	if (golden_writing())
		fail_msg("fixtures rewritten (JM_GOLDEN_WRITE=1): review and commit them");
}

/* Version 2 of the protocol replaced ACK and FAIL with SETTLE: their
 * version 1 bytes (the fixtures pinned before the change) are refused with
 * a message that says to upgrade the worker. */
static void test_version_1_ack_and_fail_are_refused_saying_upgrade(void **state)
{
	(void)state;
	const char *kinds[2] = {"msg_ack-v1", "msg_fail-v1"};
	for (int i = 0; i < 2; i++) {
		struct jm_buf fixture = {0};
		golden_read(kinds[i], &fixture);
		struct proto_msg got;
		struct jm_err err;
		assert_jm_code(proto_decode(fixture.data, fixture.len, &got, &err), JM_EVERSION);
		assert_non_null(strstr(err.msg, "protocol version 1 is not supported"));
		assert_non_null(strstr(err.msg, "upgrade"));
		jm_buf_fini(&fixture);
	}
}

/* Journal records of version 1 (the fixtures pinned before version 2
 * appended the lease token and the holder's instance) still read: the
 * same values, with the appended fields 0. */
static void test_every_version_1_record_still_decodes(void **state)
{
	(void)state;
	/* The schedule records came after version 2: there is no version 1 of
	 * them in any journal. */
	for (int type = 1; type <= PROTO_REC_META; type++) {
		struct proto_record want;
		rec_fill(&want, (enum proto_record_type)type);
		want.version = 1;
		if (type == PROTO_REC_JOB) {
			want.u.job.lease_token = want.u.job.worker_instance = 0;
			want.u.job.key = (struct proto_bytes){0};
			memset(want.u.job.attrs.group, 0, sizeof want.u.job.attrs.group);
		}
		if (type == PROTO_REC_LEASE)
			want.u.lease.token = want.u.lease.instance = 0;
		char kind[64];
		snprintf(kind, sizeof kind, "rec_%s-v1", proto_record_type_name(type));
		struct jm_buf fixture = {0};
		golden_read(kind, &fixture);
		struct proto_record got;
		struct jm_err err;
		assert_jm_ok_err(proto_record_decode(fixture.data, fixture.len, &got, &err), &err);
		rec_equal(&want, &got);
		proto_record_fini(&got);
		jm_buf_fini(&fixture);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_message_type_encodes_to_its_golden_bytes_and_back),
	    cmocka_unit_test(test_queue_settings_keep_the_set_mask_an_older_peer_knows),
	    cmocka_unit_test(test_a_six_field_stats_reply_still_decodes),
	    cmocka_unit_test(test_a_fetch_without_types_still_decodes_as_any_type),
	    cmocka_unit_test(test_a_status_and_a_job_without_payload_fields_still_decode),
	    cmocka_unit_test(test_bytes_from_before_idempotency_keys_still_decode),
	    cmocka_unit_test(test_bytes_from_before_groups_still_decode),
	    cmocka_unit_test(test_every_record_type_encodes_to_its_golden_bytes_and_back),
	    cmocka_unit_test(test_version_1_ack_and_fail_are_refused_saying_upgrade),
	    cmocka_unit_test(test_every_version_1_record_still_decodes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
