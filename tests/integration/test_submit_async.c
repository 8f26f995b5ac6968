/* Asynchronous submit through the SDK (jm_client_submit_async and
 * jm_client_submit_many_async) against a real broker: many submits in
 * flight from one thread, one callback per call with its ids or the
 * broker's refusal, and failures when no broker answers. */
#include "jm_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobmesh/client.h>

#include "fixture.h"
#include "harness.h"
#include "stack.h"

#define JOBS 2000
#define IN_FLIGHT 32

/* What the callbacks saw, indexed by job. */
struct outcomes {
	pthread_mutex_t lock;
	int calls[JOBS];
	int rc[JOBS];
	uint64_t id[JOBS];
	char error[JOBS][160];
};

struct job_ref {
	struct outcomes *out;
	int index;
};

static void record(void *arg, int rc, uint64_t job_id, const char *error)
{
	struct job_ref *ref = arg;
	struct outcomes *o = ref->out;
	pthread_mutex_lock(&o->lock);
	o->calls[ref->index]++;
	o->rc[ref->index] = rc;
	o->id[ref->index] = job_id;
	snprintf(o->error[ref->index], sizeof o->error[ref->index], "%s", error);
	pthread_mutex_unlock(&o->lock);
}

static struct outcomes *outcomes_new(void)
{
	struct outcomes *o = calloc(1, sizeof *o);
	assert_non_null(o);
	pthread_mutex_init(&o->lock, NULL);
	return o;
}

static int u64_compare(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_two_thousand_async_submits_from_one_thread_each_get_one_callback_and_a_distinct_id(
    void **state)
{
	struct stack *f = stack_open(state, "async", fixture_fast_retries, NULL, STACK_CLIENT);
	jm_submitter *s;
	assert_jm_ok(jm_submitter_open(f->client, IN_FLIGHT, &s));
	struct outcomes *o = outcomes_new();
	static struct job_ref refs[JOBS];
	for (int i = 0; i < JOBS; i++) {
		char payload[32];
		int len = snprintf(payload, sizeof payload, "job %d", i);
		jm_job_spec spec = {
		    .queue = "async", .type = "t", .payload = payload, .payload_len = (size_t)len};
		refs[i] = (struct job_ref){o, i};
		assert_jm_ok(jm_client_submit_async(s, &spec, record, &refs[i]));
	}
	jm_submitter_wait(s);
	static uint64_t ids[JOBS];
	for (int i = 0; i < JOBS; i++) {
		assert_int_equal(o->calls[i], 1);
		if (o->rc[i] != 0)
			fail_msg("job %d: %s", i, o->error[i]);
		assert_true(o->id[i] != 0);
		ids[i] = o->id[i];
	}
	/* The ids name jobs the broker holds. */
	for (int i = 0; i < JOBS; i += 397) {
		jm_job_info info = {0};
		assert_jm_ok(jm_client_status(f->client, o->id[i], &info));
		assert_int_equal(info.state, JM_STATE_PENDING);
		assert_string_equal(info.queue, "async");
		jm_job_info_fini(&info);
	}
	qsort(ids, JOBS, sizeof ids[0], u64_compare);
	for (int i = 1; i < JOBS; i++)
		assert_true(ids[i] != ids[i - 1]);
	jm_queue_stats *queues = NULL;
	size_t count = 0;
	assert_jm_ok(jm_client_stats(f->client, &queues, &count));
	bool found = false;
	for (size_t i = 0; i < count; i++)
		if (strcmp(queues[i].name, "async") == 0) {
			found = true;
			assert_int_equal(queues[i].pending, JOBS);
		}
	assert_true(found);
	free(queues);
	jm_submitter_close(s);
	free(o);
}

static void test_a_refused_async_submit_gets_the_brokers_reason_in_its_callback(void **state)
{
	const char *one_queue[] = {"--max-queues", "1", NULL};
	struct stack *f =
	    stack_open(state, "async-refused", fixture_fast_retries, one_queue, STACK_CLIENT);
	jm_submitter *s;
	assert_jm_ok(jm_submitter_open(f->client, 4, &s));
	struct outcomes *o = outcomes_new();
	struct job_ref refs[2] = {{o, 0}, {o, 1}};
	jm_job_spec first = {.queue = "first", .type = "t"};
	assert_jm_ok(jm_client_submit_async(s, &first, record, &refs[0]));
	jm_submitter_wait(s);
	jm_job_spec second = {.queue = "second", .type = "t"};
	assert_jm_ok(jm_client_submit_async(s, &second, record, &refs[1]));
	jm_submitter_wait(s);
	assert_int_equal(o->calls[0], 1);
	assert_int_equal(o->rc[0], 0);
	assert_int_equal(o->calls[1], 1);
	assert_true(o->rc[1] < 0);
	assert_int_equal(o->id[1], 0);
	assert_non_null(strstr(o->error[1], "queue second cannot be created"));

	/* A job the SDK can tell is wrong is refused at once: no callback. */
	jm_job_spec bad = {.queue = "no spaces", .type = "t"};
	struct job_ref bad_ref = {o, 2};
	assert_true(jm_client_submit_async(s, &bad, record, &bad_ref) < 0);
	assert_non_null(strstr(jm_client_last_error(), "no spaces"));
	jm_submitter_wait(s);
	assert_int_equal(o->calls[2], 0);
	jm_submitter_close(s);
	free(o);
}

static void test_async_submits_to_no_broker_each_fail_with_a_timeout(void **state)
{
	struct stack *f = stack_open(state, "async-nobody", fixture_fast_retries, NULL, 0);
	char url[600];
	snprintf(url, sizeof url, "ipc://%s/nobody.ipc", f->h.dir);
	jm_client *client;
	assert_jm_ok(jm_client_open(&client, url));
	jm_client_set_timeout_ms(client, 200);
	jm_submitter *s;
	assert_jm_ok(jm_submitter_open(client, 2, &s));
	struct outcomes *o = outcomes_new();
	struct job_ref refs[5];
	jm_job_spec spec = {.queue = "q", .type = "t"};
	for (int i = 0; i < 5; i++) {
		refs[i] = (struct job_ref){o, i};
		assert_jm_ok(jm_client_submit_async(s, &spec, record, &refs[i]));
	}
	jm_submitter_close(s);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(o->calls[i], 1);
		assert_int_equal(o->rc[i], JM_ETIMEDOUT);
		assert_non_null(strstr(o->error[i], "within 200 ms"));
	}
	jm_client_close(client);
	free(o);
}

/* What the callbacks of jm_client_submit_many_async saw, by call. */
#define MANY_CALLS 40
#define MANY_JOBS 100

struct many_outcomes {
	pthread_mutex_t lock;
	int calls[MANY_CALLS];
	int rc[MANY_CALLS];
	size_t count[MANY_CALLS];
	uint64_t ids[MANY_CALLS][MANY_JOBS];
	char error[MANY_CALLS][160];
};

struct many_ref {
	struct many_outcomes *out;
	int index;
};

static void record_many(void *arg, int rc, const uint64_t *job_ids, size_t count, const char *error)
{
	struct many_ref *ref = arg;
	struct many_outcomes *o = ref->out;
	pthread_mutex_lock(&o->lock);
	o->calls[ref->index]++;
	o->rc[ref->index] = rc;
	o->count[ref->index] = count;
	for (size_t i = 0; i < count && i < MANY_JOBS; i++)
		o->ids[ref->index][i] = job_ids[i];
	snprintf(o->error[ref->index], sizeof o->error[ref->index], "%s", error);
	pthread_mutex_unlock(&o->lock);
}

static void
test_forty_async_submits_of_a_hundred_jobs_each_get_their_ids_in_the_jobs_order(void **state)
{
	struct stack *f = stack_open(state, "async-many", fixture_fast_retries, NULL, STACK_CLIENT);
	jm_submitter *s;
	assert_jm_ok(jm_submitter_open(f->client, 4, &s));
	struct many_outcomes *o = calloc(1, sizeof *o);
	assert_non_null(o);
	pthread_mutex_init(&o->lock, NULL);
	static struct many_ref refs[MANY_CALLS];
	static char payloads[MANY_JOBS][32];
	jm_job_spec specs[MANY_JOBS];
	for (int call = 0; call < MANY_CALLS; call++) {
		for (int i = 0; i < MANY_JOBS; i++) {
			int len =
			    snprintf(payloads[i], sizeof payloads[i], "call %d job %d", call, i);
			specs[i] = (jm_job_spec){.queue = "many",
			                         .type = "t",
			                         .payload = payloads[i],
			                         .payload_len = (size_t)len};
		}
		refs[call] = (struct many_ref){o, call};
		assert_jm_ok(
		    jm_client_submit_many_async(s, specs, MANY_JOBS, record_many, &refs[call]));
		/* The specs were encoded: scribbling on them changes nothing sent. */
		memset(payloads, '#', sizeof payloads);
	}
	jm_submitter_wait(s);
	for (int call = 0; call < MANY_CALLS; call++) {
		assert_int_equal(o->calls[call], 1);
		if (o->rc[call] != 0)
			fail_msg("call %d: %s", call, o->error[call]);
		assert_int_equal(o->count[call], MANY_JOBS);
		/* One message is admitted whole: its ids are consecutive. */
		for (int i = 1; i < MANY_JOBS; i++)
			assert_true(o->ids[call][i] == o->ids[call][i - 1] + 1);
	}
	/* The ids name the jobs in the order given, with their payloads. */
	for (int call = 0; call < MANY_CALLS; call += 13) {
		for (int i = 0; i < MANY_JOBS; i += 33) {
			jm_job_info info = {0};
			assert_jm_ok(jm_client_status_payload(f->client, o->ids[call][i], &info));
			char want[32];
			int len = snprintf(want, sizeof want, "call %d job %d", call, i);
			assert_int_equal(info.payload_len, (size_t)len);
			assert_memory_equal(info.payload, want, (size_t)len);
			jm_job_info_fini(&info);
		}
	}
	jm_queue_stats *queues = NULL;
	size_t count = 0;
	assert_jm_ok(jm_client_stats(f->client, &queues, &count));
	bool found = false;
	for (size_t i = 0; i < count; i++)
		if (strcmp(queues[i].name, "many") == 0) {
			found = true;
			assert_int_equal(queues[i].pending, MANY_CALLS * MANY_JOBS);
		}
	assert_true(found);
	free(queues);

	/* A bad job anywhere in the array sends nothing and runs no callback. */
	specs[57].queue = "no spaces";
	struct many_ref bad_ref = {o, 0};
	o->calls[0] = 0;
	assert_true(jm_client_submit_many_async(s, specs, MANY_JOBS, record_many, &bad_ref) < 0);
	assert_non_null(strstr(jm_client_last_error(), "job 57"));
	assert_true(jm_client_submit_many_async(s, specs, 0, record_many, &bad_ref) < 0);
	jm_submitter_wait(s);
	assert_int_equal(o->calls[0], 0);
	assert_jm_ok(jm_client_stats(f->client, &queues, &count));
	for (size_t i = 0; i < count; i++)
		if (strcmp(queues[i].name, "many") == 0)
			assert_int_equal(queues[i].pending, MANY_CALLS * MANY_JOBS);
	free(queues);
	jm_submitter_close(s);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(
	        test_two_thousand_async_submits_from_one_thread_each_get_one_callback_and_a_distinct_id,
	        stack_close),
	    cmocka_unit_test_teardown(
	        test_a_refused_async_submit_gets_the_brokers_reason_in_its_callback, stack_close),
	    cmocka_unit_test_teardown(test_async_submits_to_no_broker_each_fail_with_a_timeout,
	                              stack_close),
	    cmocka_unit_test_teardown(
	        test_forty_async_submits_of_a_hundred_jobs_each_get_their_ids_in_the_jobs_order,
	        stack_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
