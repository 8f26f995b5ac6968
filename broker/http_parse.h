/* HTTP/1.1 request heads: finding where one ends and parsing it, with no
 * I/O and no allocation (http_conn.c feeds it bytes as they arrive).
 *
 * Strict on purpose (request smuggling hides in leniency, and NNG 1.5.2's
 * parser had such bugs): lines end in CRLF (a bare LF is refused), no
 * header folding, no space before a header's colon, one Content-Length
 * (repeats must agree), and any Transfer-Encoding is refused with 411: the
 * broker reads Content-Length bodies only. Leading empty lines before a
 * request line are skipped (RFC 9112 2.2).
 *
 * A parsed head points into the bytes it was parsed from (they are
 * NUL-terminated in place), so it lives as long as that buffer. */
#ifndef JM_BROKER_HTTP_PARSE_H
#define JM_BROKER_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEADERS_MAX 64

struct http_header {
	const char *name;  /* as sent (compare case-insensitively) */
	const char *value; /* without surrounding spaces */
};

struct http_head {
	const char *method;
	const char *target;    /* origin-form: "/path?query" */
	uint8_t minor_version; /* HTTP/1.minor */
	struct http_header headers[HTTP_HEADERS_MAX];
	uint32_t headers_count;
	uint64_t content_length; /* 0 without the header */
	bool keep_alive;         /* 1.1 unless "Connection: close"; 1.0 never */
};

/* Why a head was refused: an HTTP status (400, 411, 431, 505), a stable
 * code for the JSON error and a message naming what was wrong and what is
 * allowed. */
struct http_parse_error {
	uint16_t status;
	const char *code;
	char message[160];
};

/* The length of the head at the start of buf[0..len) including its blank
 * line, or 0 when the blank line has not arrived yet. *scanned carries
 * how far earlier calls looked (start at 0), so feeding bytes as they come
 * stays linear. */
size_t http_head_end(const char *buf, size_t len, size_t *scanned);

/* Parses the head_len bytes of a head (as http_head_end measured) into
 * out, NUL-terminating its parts in buf. Returns 0, or -1 with err set. */
int http_parse_head(char *buf, size_t head_len, struct http_head *out,
                    struct http_parse_error *err);

/* The value of the first header called name (any case), or NULL. */
const char *http_head_header(const struct http_head *head, const char *name);

/* "OK", "Not Found", ...: the reason phrase of status ("Status" when it has
 * none here). */
const char *http_reason(uint16_t status);

#endif
