/* One job-spec check: proto_job_spec_check words each broken rule once, and
 * every writer of a spec refuses the same spec with the same text: the
 * broker decoding a SUBMIT, the journal reading a JOB record, the SDK
 * before it sends, the CLI reading a batch file line. */
#include "jm_test.h"

#include <inttypes.h>
#include <stdbool.h>

#include <jobmesh/client.h>

#include "../../client/cli_batchfile.c"
#include "buf.h"
#include "job_spec.h"
#include "message.h"
#include "record.h"

/* A tiny msgpack writer, independent of proto/'s encoder (which refuses
 * what we want to send here). */
static void mp_byte(struct jm_buf *b, uint8_t v)
{
	assert_jm_ok(jm_buf_append(b, &v, 1));
}

static void mp_be(struct jm_buf *b, uint8_t tag, uint64_t v, int bytes)
{
	mp_byte(b, tag);
	for (int i = bytes - 1; i >= 0; i--)
		mp_byte(b, (uint8_t)(v >> (8 * i)));
}

static void mp_array(struct jm_buf *b, uint32_t n)
{
	assert_true(n < 16);
	mp_byte(b, (uint8_t)(0x90 | n));
}

static void mp_int(struct jm_buf *b, int64_t v)
{
	if (v >= 0 && v < 128)
		mp_byte(b, (uint8_t)v);
	else
		mp_be(b, 0xd3, (uint64_t)v, 8);
}

static void mp_str(struct jm_buf *b, const char *s)
{
	size_t n = strlen(s);
	mp_be(b, 0xdb, n, 4);
	assert_jm_ok(jm_buf_append(b, s, n));
}

static void mp_bin(struct jm_buf *b, size_t n)
{
	mp_be(b, 0xc6, n, 4);
	for (size_t i = 0; i < n; i++)
		mp_byte(b, 'x');
}

struct bad_spec {
	const char *queue;
	const char *type;
	size_t payload_len;
	int priority;
	unsigned max_attempts;
	int code;
	const char *says; /* the whole text of the one check */
};

static const struct bad_spec BAD[] = {
    {"a b", "t", 0, 0, 0, JM_EBADNAME,
     "queue name \"a b\" is invalid: use 1-64 of A-Z a-z 0-9 . _ -"},
    {"q", "t/1", 0, 0, 0, JM_EBADNAME,
     "type name \"t/1\" is invalid: use 1-64 of A-Z a-z 0-9 . _ -"},
    {"q", "t", PROTO_PAYLOAD_MAX_DEFAULT + 1, 0, 0, JM_ETOOBIG,
     "payload is 1048577 bytes: at most 1048576 allowed"},
    {"q", "t", 0, 5000, 0, JM_EINVAL, "priority 5000 is out of range: use -1000..1000"},
    {"q", "t", 0, -1001, 0, JM_EINVAL, "priority -1001 is out of range: use -1000..1000"},
    {"q", "t", 0, 0, 1001, JM_EINVAL, "max_attempts 1001 is out of range: use 0..1000"},
};

static int check(const struct bad_spec *s, struct jm_err *err)
{
	jm_err_clear(err);
	return proto_job_spec_check(s->queue, strlen(s->queue), s->type, strlen(s->type),
	                            s->payload_len, s->priority, s->max_attempts, err);
}

static void assert_text(const char *got, const char *prefix, const char *says)
{
	char want[JM_ERR_MSG_MAX + 64];
	snprintf(want, sizeof want, "%s%s", prefix, says);
	assert_string_equal(got, want);
}

static void test_the_check_words_each_broken_rule(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
		struct jm_err err;
		assert_jm_code(check(&BAD[i], &err), BAD[i].code);
		assert_string_equal(err.msg, BAD[i].says);
	}
	struct jm_err err;
	assert_jm_ok_err(proto_job_spec_check("q", 1, "t", 1, PROTO_PAYLOAD_MAX_DEFAULT,
	                                      PROTO_PRIORITY_MIN, PROTO_ATTEMPTS_MAX, &err),
	                 &err);
}

static void test_a_submit_with_a_broken_spec_is_refused_with_the_same_text(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
		const struct bad_spec *s = &BAD[i];
		struct jm_buf b = {0};
		mp_array(&b, 3);
		mp_int(&b, PROTO_VERSION);
		mp_int(&b, PROTO_SUBMIT);
		mp_array(&b, 2);
		mp_byte(&b, 0xc2); /* as_batch false */
		mp_array(&b, 1);
		mp_array(&b, 7);
		mp_str(&b, s->queue);
		mp_str(&b, s->type);
		mp_bin(&b, s->payload_len);
		mp_int(&b, s->priority);
		mp_int(&b, s->max_attempts);
		mp_int(&b, 0);
		mp_int(&b, 0);
		struct proto_msg msg;
		struct jm_err err;
		assert_jm_code(proto_decode(b.data, b.len, &msg, &err), s->code);
		assert_text(err.msg, "submit: job 0: ", s->says);
		jm_buf_fini(&b);
	}
}

static void test_a_job_record_with_a_broken_spec_is_refused_with_the_same_text(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
		const struct bad_spec *s = &BAD[i];
		struct jm_buf b = {0};
		assert_jm_ok(jm_buf_append(&b, "\xdc\x00\x15", 3)); /* array16 of 21 */
		mp_int(&b, PROTO_RECORD_VERSION);
		mp_int(&b, PROTO_REC_JOB);
		mp_int(&b, 7); /* job_id */
		mp_int(&b, 0); /* batch_id */
		mp_str(&b, s->queue);
		mp_str(&b, s->type);
		mp_bin(&b, s->payload_len);
		mp_int(&b, s->priority);
		mp_int(&b, s->max_attempts);
		mp_int(&b, 0);                   /* timeout_ms */
		mp_int(&b, PROTO_STATE_PENDING); /* state */
		for (int f = 0; f < 5; f++)      /* attempt .. run_at_us */
			mp_int(&b, 0);
		mp_str(&b, ""); /* worker_id */
		mp_str(&b, ""); /* last_error */
		mp_bin(&b, 0);  /* result */
		mp_int(&b, 0);  /* lease_token */
		mp_int(&b, 0);  /* worker_instance */
		struct proto_record rec;
		struct jm_err err;
		assert_jm_code(proto_record_decode(b.data, b.len, &rec, &err), s->code);
		assert_text(err.msg, "job record: ", s->says);
		jm_buf_fini(&b);
	}
}

static void test_the_sdk_refuses_a_broken_spec_with_the_same_text(void **state)
{
	(void)state;
	jm_client *client = NULL;
	/* Nothing listens there: the spec is refused before anything is sent. */
	assert_jm_ok(jm_client_open(&client, "tcp://127.0.0.1:9"));
	static char payload[PROTO_PAYLOAD_MAX_DEFAULT + 1];
	for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
		const struct bad_spec *s = &BAD[i];
		jm_job_spec spec = {.queue = s->queue,
		                    .type = s->type,
		                    .payload = payload,
		                    .payload_len = s->payload_len,
		                    .priority = s->priority,
		                    .max_attempts = s->max_attempts};
		uint64_t id;
		assert_jm_code(jm_client_submit(client, &spec, &id), s->code);
		assert_text(jm_client_last_error(), "submit: ", s->says);
	}
	jm_client_close(client);
}

static void test_a_batch_file_line_with_a_broken_spec_is_refused_with_the_same_text(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
		const struct bad_spec *s = &BAD[i];
		if (s->payload_len > 0)
			continue; /* a megabyte line: the batch-file tests cover it */
		char line[256];
		snprintf(line, sizeof line,
		         "{\"queue\": \"%s\", \"type\": \"%s\", \"priority\": %d, "
		         "\"max_attempts\": %u}",
		         s->queue, s->type, s->priority, s->max_attempts);
		struct cli_batch_job job;
		struct jm_err err;
		jm_err_clear(&err);
		assert_jm_code(cli_batch_parse_line(line, strlen(line), &job, &err), s->code);
		assert_string_equal(err.msg, s->says);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_the_check_words_each_broken_rule),
	    cmocka_unit_test(test_a_submit_with_a_broken_spec_is_refused_with_the_same_text),
	    cmocka_unit_test(test_a_job_record_with_a_broken_spec_is_refused_with_the_same_text),
	    cmocka_unit_test(test_the_sdk_refuses_a_broken_spec_with_the_same_text),
	    cmocka_unit_test(
	        test_a_batch_file_line_with_a_broken_spec_is_refused_with_the_same_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
