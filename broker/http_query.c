/* Query strings, ids and names of a call (see http_call.h): read in place
 * from the request target, percent-decoded into the caller's buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "http_call.h"

void http_url_decode(const char *p, const char *end, char *out, size_t out_size)
{
	size_t o = 0;
	while (p < end && o + 1 < out_size) {
		if (*p == '%' && end - p >= 3 && jm_hex_digit(p[1]) >= 0 &&
		    jm_hex_digit(p[2]) >= 0) {
			out[o++] = (char)(jm_hex_digit(p[1]) * 16 + jm_hex_digit(p[2]));
			p += 3;
		} else {
			out[o++] = *p == '+' ? ' ' : *p;
			p++;
		}
	}
	out[o] = '\0';
}

bool http_query_next(const struct http_call *call, const char *name, size_t *pos, char *out,
                     size_t out_size)
{
	const char *q = call->query;
	size_t len = strlen(q);
	size_t name_len = strlen(name);
	while (*pos < len) {
		const char *start = q + *pos;
		const char *amp = strchr(start, '&');
		const char *end = amp ? amp : q + len;
		*pos = (size_t)(end - q) + (amp ? 1 : 0);
		const char *eq = memchr(start, '=', (size_t)(end - start));
		const char *key_end = eq ? eq : end;
		if ((size_t)(key_end - start) == name_len && memcmp(start, name, name_len) == 0) {
			http_url_decode(eq ? eq + 1 : end, end, out, out_size);
			return true;
		}
	}
	return false;
}

bool http_query_get(const struct http_call *call, const char *name, char *out, size_t out_size)
{
	size_t pos = 0;
	return http_query_next(call, name, &pos, out, out_size);
}

bool http_queue_name_ok(struct http_call *call, const char *name)
{
	size_t len = strlen(name);
	if (proto_name_is_valid(name, len) && len <= PROTO_NAME_MAX)
		return true;
	http_reply_error(call, 400, "queue_name_invalid", "queue name \"%.80s\" is invalid: %s",
	                 name, PROTO_NAME_RULE);
	return false;
}

bool http_query_only(struct http_call *call, const char *const *allowed)
{
	const char *p = call->query;
	while (*p) {
		const char *end = p + strcspn(p, "&");
		size_t key_len = strcspn(p, "=&");
		bool known = false;
		for (int i = 0; allowed[i]; i++)
			if (strlen(allowed[i]) == key_len && memcmp(p, allowed[i], key_len) == 0)
				known = true;
		if (!known && key_len > 0) {
			char names[256] = "";
			for (int i = 0; allowed[i]; i++)
				snprintf(names + strlen(names), sizeof names - strlen(names),
				         "%s%s", i ? ", " : "", allowed[i]);
			http_reply_error(call, 400, "unknown_parameter",
			                 "unknown query parameter \"%.*s\": allowed are %s",
			                 (int)(key_len > 64 ? 64 : key_len), p,
			                 names[0] ? names : "none");
			return false;
		}
		p = *end ? end + 1 : end;
	}
	return true;
}

bool http_parse_id(const char *text, uint64_t *out)
{
	if (text == NULL || *text < '1' || *text > '9' || strlen(text) > 20)
		return false;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (*end != '\0' || v == UINT64_MAX)
		return false;
	*out = v;
	return true;
}

bool http_query_u64(struct http_call *call, const char *name, uint64_t min, uint64_t max,
                    uint64_t default_value, uint64_t *out)
{
	char text[32];
	*out = default_value;
	if (!http_query_get(call, name, text, sizeof text))
		return true;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || v < min || v > max) {
		http_reply_error(call, 400, "parameter_invalid",
		                 "query parameter %s=\"%s\" is invalid: use an integer %llu..%llu",
		                 name, text, (unsigned long long)min, (unsigned long long)max);
		return false;
	}
	*out = v;
	return true;
}
