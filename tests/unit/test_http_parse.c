/* Request heads (broker/http_parse.c): where a head ends when bytes arrive
 * piecemeal, what a valid one parses to, and the refusals that keep
 * request smuggling out (bare LF, folding, two lengths, chunked bodies). */
#include "jm_test.h"

#include "http_parse.h"

/* Parses text (copied: the parser writes NULs into it) whole. */
static int parse(const char *text, char *copy, size_t copy_size, struct http_head *head,
                 struct http_parse_error *err)
{
	snprintf(copy, copy_size, "%s", text);
	size_t scanned = 0;
	size_t len = http_head_end(copy, strlen(copy), &scanned);
	assert_true(len > 0);
	return http_parse_head(copy, len, head, err);
}

static void test_head_end_is_found_when_bytes_arrive_one_at_a_time(void **state)
{
	(void)state;
	const char text[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
	size_t scanned = 0;
	size_t whole = strlen(text) - 4;
	for (size_t len = 0; len < whole; len++)
		assert_int_equal(http_head_end(text, len, &scanned), 0);
	assert_int_equal(http_head_end(text, whole, &scanned), whole);
	assert_int_equal(http_head_end(text, strlen(text), &scanned), whole);
}

static void test_leading_empty_lines_are_skipped(void **state)
{
	(void)state;
	char buf[128];
	struct http_head head;
	struct http_parse_error err;
	assert_int_equal(
	    parse("\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n", buf, sizeof buf, &head, &err), 0);
	assert_string_equal(head.method, "GET");
	assert_string_equal(head.target, "/healthz");
}

static void test_a_valid_head_parses_to_its_parts(void **state)
{
	(void)state;
	char buf[256];
	struct http_head head;
	struct http_parse_error err;
	assert_int_equal(parse("POST /v1/queues/q/jobs?x=1 HTTP/1.1\r\nHost: b\r\n"
	                       "content-length:  12 \r\nAuthorization: Bearer abc\r\n\r\n",
	                       buf, sizeof buf, &head, &err),
	                 0);
	assert_string_equal(head.method, "POST");
	assert_string_equal(head.target, "/v1/queues/q/jobs?x=1");
	assert_int_equal(head.minor_version, 1);
	assert_int_equal(head.content_length, 12);
	assert_true(head.keep_alive);
	assert_int_equal(head.headers_count, 3);
	assert_string_equal(http_head_header(&head, "Content-Length"), "12");
	assert_string_equal(http_head_header(&head, "AUTHORIZATION"), "Bearer abc");
	assert_null(http_head_header(&head, "Cookie"));
}

static void test_connection_close_and_http_1_0_do_not_keep_alive(void **state)
{
	(void)state;
	char buf[128];
	struct http_head head;
	struct http_parse_error err;
	assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n", buf,
	                       sizeof buf, &head, &err),
	                 0);
	assert_false(head.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", buf, sizeof buf, &head, &err), 0);
	assert_int_equal(head.minor_version, 0);
	assert_false(head.keep_alive);
}

/* Each refused head, with its status and a message naming the rule. */
static void test_malformed_heads_are_refused_with_their_status(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		uint16_t status;
		const char *says;
	} cases[] = {
	    {"GET / HTTP/1.1\nHost: x\n\n", 400, "CRLF"},
	    {"GET / HTTP/1.1\r\nHost: x\n\r\n", 400, "CRLF"},
	    {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "folded"},
	    {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "colon"},
	    {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "NAME: VALUE"},
	    {"GET /  HTTP/1.1\r\n\r\n", 400, "METHOD SP PATH"},
	    {"GET / HTTP/1.1 x\r\n\r\n", 400, "METHOD SP PATH"},
	    {"GET http://a/ HTTP/1.1\r\n\r\n", 400, "starting with /"},
	    {"GET /\x01 HTTP/1.1\r\n\r\n", 400, "printable"},
	    {"G(T / HTTP/1.1\r\n\r\n", 400, "token"},
	    {"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/1.1"},
	    {"GET / SPDY/1.1\r\n\r\n", 400, "HTTP/1.1"},
	    {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
	     "two different"},
	    {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "digits"},
	    {"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 400, "digits"},
	    {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, "digits"},
	    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "Content-Length"},
	    {"POST / HTTP/1.1\r\nContent-Length: 3\r\ntransfer-encoding: identity\r\n\r\n", 411,
	     "Content-Length"},
	    {"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400, "control"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[256];
		struct http_head head;
		struct http_parse_error err = {0};
		if (parse(cases[i].text, buf, sizeof buf, &head, &err) == 0)
			fail_msg("case %zu was accepted: %s", i, cases[i].text);
		if (err.status != cases[i].status || strstr(err.message, cases[i].says) == NULL)
			fail_msg("case %zu: %u \"%s\", want %u naming \"%s\"", i, err.status,
			         err.message, cases[i].status, cases[i].says);
		assert_non_null(err.code);
	}
}

static void test_a_repeated_equal_content_length_is_accepted(void **state)
{
	(void)state;
	char buf[128];
	struct http_head head;
	struct http_parse_error err;
	assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	                       buf, sizeof buf, &head, &err),
	                 0);
	assert_int_equal(head.content_length, 5);
}

static void test_more_header_lines_than_allowed_get_431(void **state)
{
	(void)state;
	char text[4096] = "GET / HTTP/1.1\r\n";
	for (int i = 0; i <= HTTP_HEADERS_MAX; i++)
		snprintf(text + strlen(text), sizeof text - strlen(text), "X-%d: v\r\n", i);
	strcat(text, "\r\n");
	char buf[4096];
	struct http_head head;
	struct http_parse_error err;
	assert_int_equal(parse(text, buf, sizeof buf, &head, &err), -1);
	assert_int_equal(err.status, 431);
}

static void test_a_nul_byte_in_a_head_is_refused(void **state)
{
	(void)state;
	char buf[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
	size_t len = sizeof buf - 1;
	size_t scanned = 0;
	size_t head_len = http_head_end(buf, len, &scanned);
	assert_int_equal(head_len, len);
	struct http_head head;
	struct http_parse_error err;
	assert_int_equal(http_parse_head(buf, head_len, &head, &err), -1);
	assert_int_equal(err.status, 400);
	assert_non_null(strstr(err.message, "NUL"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_head_end_is_found_when_bytes_arrive_one_at_a_time),
	    cmocka_unit_test(test_leading_empty_lines_are_skipped),
	    cmocka_unit_test(test_a_valid_head_parses_to_its_parts),
	    cmocka_unit_test(test_connection_close_and_http_1_0_do_not_keep_alive),
	    cmocka_unit_test(test_malformed_heads_are_refused_with_their_status),
	    cmocka_unit_test(test_a_repeated_equal_content_length_is_accepted),
	    cmocka_unit_test(test_more_header_lines_than_allowed_get_431),
	    cmocka_unit_test(test_a_nul_byte_in_a_head_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
