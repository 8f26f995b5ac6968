/* libFuzzer target for the HTTP request-head parser (broker/http_parse.c),
 * the first code a network peer's bytes reach on the HTTP port. Beyond "no
 * crash, no read past the end" (ASan, UBSan) it checks the parser's
 * promises: finding a head's end byte by byte gives the same answer as at
 * once; a refusal names a status and says why; a parsed head has a token
 * method, a target starting with '/', and header names without spaces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	size_t scanned = 0;
	size_t whole = http_head_end(buf, size, &scanned);
	size_t piecewise = 0;
	scanned = 0;
	for (size_t len = 0; len <= size && piecewise == 0; len++)
		piecewise = http_head_end(buf, len, &scanned);
	if (piecewise != whole)
		abort();
	if (whole > 0) {
		struct http_head head;
		struct http_parse_error err;
		if (http_parse_head(buf, whole, &head, &err) == 0) {
			if (head.method[0] == '\0' || head.target[0] != '/' ||
			    head.headers_count > HTTP_HEADERS_MAX)
				abort();
			for (uint32_t i = 0; i < head.headers_count; i++)
				if (head.headers[i].name[0] == '\0' ||
				    strpbrk(head.headers[i].name, " \t:") != NULL)
					abort();
		} else if (err.status < 400 || err.status > 505 || err.message[0] == '\0' ||
		           err.code == NULL) {
			abort();
		}
	}
	free(buf);
	return 0;
}
