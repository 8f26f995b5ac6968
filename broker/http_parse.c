/* Request heads (see http_parse.h). The grammar is RFC 9112's, cut down
 * to what the broker serves: origin-form targets, HTTP/1.0 and 1.1. */
#include "http_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

size_t http_head_end(const char *buf, size_t len, size_t *scanned)
{
	/* An empty line: "\n\r\n" or "\n\n" (the latter is refused by the
	 * parser, but it ends the head, so the refusal comes at once). Leading
	 * empty lines before the request line do not count. */
	size_t start = 0;
	while (start < len && (buf[start] == '\r' || buf[start] == '\n'))
		start++;
	size_t i = *scanned > start ? *scanned : start;
	for (; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
		if (i + 2 >= len)
			break; /* the rest of a possible blank line is still to come */
	}
	*scanned = i;
	return 0;
}

static int refuse(struct http_parse_error *err, uint16_t status, const char *code, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

static int refuse(struct http_parse_error *err, uint16_t status, const char *code, const char *fmt,
                  ...)
{
	err->status = status;
	err->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return -1;
}

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Cuts the line at *p (ending in CRLF) and moves *p past it; NULL when
 * the line ends in a bare LF. */
static char *next_line(char **p, char *end)
{
	char *line = *p;
	char *lf = memchr(line, '\n', (size_t)(end - line));
	if (lf == NULL || lf == line || lf[-1] != '\r')
		return NULL;
	lf[-1] = '\0';
	*p = lf + 1;
	return line;
}

static int parse_request_line(char *line, struct http_head *out, struct http_parse_error *err)
{
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 || strchr(sp2 + 1, ' '))
		return refuse(err, 400, "bad_request",
		              "the request line must be METHOD SP PATH SP HTTP/1.1");
	*sp1 = *sp2 = '\0';
	for (const char *m = line; *m; m++)
		if (!is_tchar((unsigned char)*m))
			return refuse(err, 400, "bad_request", "the request method is not a token");
	const char *version = sp2 + 1;
	if (strncmp(version, "HTTP/", 5) != 0)
		return refuse(err, 400, "bad_request", "the request line must end in HTTP/1.1");
	if (strcmp(version + 5, "1.1") == 0)
		out->minor_version = 1;
	else if (strcmp(version + 5, "1.0") == 0)
		out->minor_version = 0;
	else
		return refuse(err, 505, "http_version_not_supported",
		              "HTTP version \"%.16s\" is not supported: use HTTP/1.1", version + 5);
	const char *target = sp1 + 1;
	if (target[0] != '/')
		return refuse(err, 400, "bad_request",
		              "the request target must be a path starting with /");
	for (const unsigned char *t = (const unsigned char *)target; *t; t++)
		if (*t <= 0x20 || *t >= 0x7f)
			return refuse(
			    err, 400, "bad_request",
			    "the request target holds a byte that is not printable ASCII: "
			    "percent-encode it");
	out->method = line;
	out->target = target;
	return 0;
}

/* Content-Length: digits only (RFC 9110 8.6), at most 19 of them. */
static int parse_length(const char *value, uint64_t *out, struct http_parse_error *err)
{
	size_t len = strlen(value);
	if (len == 0 || len > 19 || strspn(value, "0123456789") != len)
		return refuse(err, 400, "bad_content_length",
		              "Content-Length must be a number of bytes (digits only)");
	uint64_t n = 0;
	for (size_t i = 0; i < len; i++)
		n = n * 10 + (uint64_t)(value[i] - '0');
	*out = n;
	return 0;
}

/* Whether the comma-separated list value holds token (any case). */
static bool list_has(const char *value, const char *token)
{
	size_t token_len = strlen(token);
	const char *p = value;
	while (*p) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, " \t,");
		if (n == token_len && strncasecmp(p, token, n) == 0)
			return true;
		p += n;
	}
	return false;
}

static int parse_header(char *line, struct http_head *out, bool *has_length,
                        struct http_parse_error *err)
{
	if (line[0] == ' ' || line[0] == '\t')
		return refuse(err, 400, "bad_request", "folded header lines are not accepted");
	char *colon = strchr(line, ':');
	if (colon == NULL || colon == line)
		return refuse(err, 400, "bad_request", "a header line must be NAME: VALUE");
	for (const char *n = line; n < colon; n++)
		if (!is_tchar((unsigned char)*n))
			return refuse(err, 400, "bad_request",
			              "a header name holds a character that is not allowed (no "
			              "space before the colon)");
	*colon = '\0';
	char *value = colon + 1;
	value += strspn(value, " \t");
	char *end = value + strlen(value);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	for (const unsigned char *v = (const unsigned char *)value; *v; v++)
		if ((*v < 0x20 && *v != '\t') || *v == 0x7f)
			return refuse(err, 400, "bad_request",
			              "header %.40s holds a control character", line);
	if (out->headers_count == HTTP_HEADERS_MAX)
		return refuse(err, 431, "headers_too_large",
		              "the request has more than %d header lines", HTTP_HEADERS_MAX);
	if (strcasecmp(line, "Transfer-Encoding") == 0)
		return refuse(err, 411, "length_required",
		              "chunked request bodies are not accepted: send Content-Length");
	if (strcasecmp(line, "Content-Length") == 0) {
		uint64_t length = 0;
		if (parse_length(value, &length, err) != 0)
			return -1;
		if (*has_length && length != out->content_length)
			return refuse(err, 400, "bad_content_length",
			              "the request has two different Content-Length headers");
		*has_length = true;
		out->content_length = length;
	}
	if (strcasecmp(line, "Connection") == 0) {
		if (list_has(value, "close"))
			out->keep_alive = false;
	}
	out->headers[out->headers_count].name = line;
	out->headers[out->headers_count].value = value;
	out->headers_count++;
	return 0;
}

int http_parse_head(char *buf, size_t head_len, struct http_head *out, struct http_parse_error *err)
{
	memset(out, 0, sizeof *out);
	char *p = buf, *end = buf + head_len;
	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	if (memchr(p, '\0', (size_t)(end - p)) != NULL)
		return refuse(err, 400, "bad_request", "the request head holds a NUL byte");
	char *line = next_line(&p, end);
	if (line == NULL)
		return refuse(err, 400, "bad_request", "request lines must end in CRLF");
	if (parse_request_line(line, out, err) != 0)
		return -1;
	out->keep_alive = out->minor_version == 1;
	bool has_length = false;
	for (;;) {
		line = next_line(&p, end);
		if (line == NULL)
			return refuse(err, 400, "bad_request", "header lines must end in CRLF");
		if (line[0] == '\0')
			break;
		if (parse_header(line, out, &has_length, err) != 0)
			return -1;
	}
	if (out->minor_version == 0)
		out->keep_alive = false; /* no keep-alive for HTTP/1.0: simpler, and rare */
	return 0;
}

const char *http_head_header(const struct http_head *head, const char *name)
{
	for (uint32_t i = 0; i < head->headers_count; i++)
		if (strcasecmp(head->headers[i].name, name) == 0)
			return head->headers[i].value;
	return NULL;
}

const char *http_reason(uint16_t status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Status";
	}
}
