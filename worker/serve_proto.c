/* Encodes and decodes the --serve line protocol (serve_proto.h) with
 * jansson. Decoding is strict about the fields it uses and ignores any it
 * does not know, so a handler library may add its own. */
#include "serve_proto.h"

#include "serve_scan.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char base64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *dump_line(json_t *obj, size_t *len)
{
	if (obj == NULL)
		return NULL;
	char *text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (text == NULL)
		return NULL;
	size_t text_len = strlen(text);
	/* json_dumps uses malloc by default, so realloc may grow it. */
	char *line = realloc(text, text_len + 2);
	if (line == NULL) {
		free(text);
		return NULL;
	}
	line[text_len] = '\n';
	line[text_len + 1] = '\0';
	*len = text_len + 1;
	return line;
}

static json_t *id_string(uint64_t id)
{
	char text[24];
	snprintf(text, sizeof text, "%" PRIu64, id);
	return json_string(text);
}

/* Appends text as a JSON string (quotes included) to out, which has room
 * for 6 bytes per input byte plus 2; false when text is not UTF-8. */
static bool json_string_put(char *out, size_t *used, const unsigned char *text, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = *used;
	out[o++] = '"';
	for (size_t i = 0; i < len;) {
		unsigned char c = text[i];
		if (c >= 0x80) {
			size_t n = serve_utf8_len(text + i, len - i);
			if (n == 0)
				return false;
			memcpy(out + o, text + i, n);
			o += n;
			i += n;
			continue;
		}
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20) {
			memcpy(out + o, "\\u00", 4);
			out[o + 4] = hex[c >> 4];
			out[o + 5] = hex[c & 15];
			o += 6;
		} else {
			out[o++] = (char)c;
		}
		i++;
	}
	out[o++] = '"';
	*used = o;
	return true;
}

/* Appends text (the room was counted by the caller). */
static void put(char *line, size_t *o, const char *text)
{
	size_t len = strlen(text);
	memcpy(line + *o, text, len);
	*o += len;
}

static void put_u64(char *line, size_t *o, uint64_t value)
{
	char digits[20];
	size_t n = 0;
	do {
		digits[n++] = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0);
	while (n > 0)
		line[(*o)++] = digits[--n];
}

/* Written by hand rather than through jansson's object tree: this line is
 * built once per job on the drain's hot path, and its only free text is the
 * payload (type and queue are names of [A-Za-z0-9._-], checked by proto/).
 * test_serve_proto reads every line back with jansson. */
char *serve_proto_job(const struct serve_job_line *job, size_t *len)
{
	const unsigned char *payload = job->payload ? job->payload : (const unsigned char *)"";
	size_t payload_room = job->payload_len * 6 + 2;
	size_t base64_room = (job->payload_len + 2) / 3 * 4 + 2;
	if (base64_room > payload_room)
		payload_room = base64_room;
	size_t cap = payload_room + strlen(job->type) + strlen(job->queue) + 192;
	char *line = malloc(cap);
	if (line == NULL)
		return NULL;
	size_t o = 0;
	put(line, &o, "{\"op\":\"job\",\"id\":\"");
	put_u64(line, &o, job->job_id);
	put(line, &o, "\",\"type\":\"");
	put(line, &o, job->type);
	put(line, &o, "\",\"queue\":\"");
	put(line, &o, job->queue);
	put(line, &o, "\",\"attempt\":");
	put_u64(line, &o, job->attempt);
	put(line, &o, ",");
	size_t key_at = o;
	memcpy(line + o, "\"payload\":", 10);
	o += 10;
	if (!json_string_put(line, &o, payload, job->payload_len)) {
		o = key_at;
		memcpy(line + o, "\"payload_base64\":\"", 18);
		o += 18;
		for (size_t i = 0; i < job->payload_len; i += 3) {
			uint32_t v = (uint32_t)payload[i] << 16;
			if (i + 1 < job->payload_len)
				v |= (uint32_t)payload[i + 1] << 8;
			if (i + 2 < job->payload_len)
				v |= payload[i + 2];
			line[o++] = base64_digits[(v >> 18) & 63];
			line[o++] = base64_digits[(v >> 12) & 63];
			line[o++] = i + 1 < job->payload_len ? base64_digits[(v >> 6) & 63] : '=';
			line[o++] = i + 2 < job->payload_len ? base64_digits[v & 63] : '=';
		}
		line[o++] = '"';
	}
	put(line, &o, ",\"deadline\":");
	if (job->deadline_wall_ms)
		put_u64(line, &o, job->deadline_wall_ms);
	else
		put(line, &o, "null");
	put(line, &o, ",\"timeout_ms\":");
	put_u64(line, &o, job->timeout_ms);
	put(line, &o, "}\n");
	*len = o;
	return line;
}

char *serve_proto_cancel(uint64_t job_id, size_t *len)
{
	return dump_line(json_pack("{s:s, s:o}", "op", "cancel", "id", id_string(job_id)), len);
}

char *serve_proto_stop(size_t *len)
{
	return dump_line(json_pack("{s:s}", "op", "stop"), len);
}

static int fail(char *why, size_t why_size, const char *fmt, const char *detail)
{
	snprintf(why, why_size, fmt, detail);
	return -1;
}

/* Reads a decimal id given as a string (as sent) or, leniently, a number. */
static bool id_parse(json_t *value, uint64_t *out)
{
	if (json_is_integer(value) && json_integer_value(value) > 0) {
		*out = (uint64_t)json_integer_value(value);
		return true;
	}
	if (!json_is_string(value))
		return false;
	const char *text = json_string_value(value);
	if (text[0] < '0' || text[0] > '9')
		return false;
	char *end = NULL;
	unsigned long long id = strtoull(text, &end, 10);
	if (*end != '\0')
		return false;
	*out = id;
	return true;
}

static bool count_parse(json_t *value, uint64_t *out)
{
	if (json_is_integer(value) && json_integer_value(value) >= 0) {
		*out = (uint64_t)json_integer_value(value);
		return true;
	}
	/* JavaScript has one number type: 3.0 is fine, 2.5 is not. */
	if (json_is_real(value)) {
		double d = json_real_value(value);
		if (d >= 0 && d < 9007199254740992.0 && d == (double)(uint64_t)d) {
			*out = (uint64_t)d;
			return true;
		}
	}
	return false;
}

static void text_copy(char *dst, size_t size, json_t *value)
{
	dst[0] = '\0';
	if (json_is_string(value))
		snprintf(dst, size, "%s", json_string_value(value));
}

int serve_proto_decode(const char *line, size_t len, struct serve_reply *out, char *why,
                       size_t why_size)
{
	if (serve_scan_reply(line, len, out) == SERVE_SCAN_DONE)
		return 0;
	return serve_proto_decode_json(line, len, out, why, why_size);
}

int serve_proto_decode_json(const char *line, size_t len, struct serve_reply *out, char *why,
                            size_t why_size)
{
	memset(out, 0, sizeof *out);
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (obj == NULL)
		return fail(why, why_size, "not JSON (%s)", jerr.text);
	int rc = -1;
	if (!json_is_object(obj)) {
		fail(why, why_size, "%s", "not a JSON object: write {\"op\": ..., \"id\": ...}");
		goto out;
	}
	json_t *op = json_object_get(obj, "op");
	if (!json_is_string(op)) {
		fail(why, why_size, "%s", "no \"op\": use progress, result or error");
		goto out;
	}
	const char *op_name = json_string_value(op);
	if (strcmp(op_name, "hello") == 0) {
		/* Sent once, first, by a handler that takes several jobs at a
		 * time; its "pipeline" is how many (1 without it). */
		out->op = SERVE_REPLY_HELLO;
		json_t *pipeline = json_object_get(obj, "pipeline");
		out->pipeline = 1;
		if (pipeline != NULL && !count_parse(pipeline, &out->pipeline)) {
			fail(why, why_size, "%s",
			     "hello: \"pipeline\" must be a whole number >= 1");
			goto out;
		}
		if (out->pipeline < 1)
			out->pipeline = 1;
		rc = 0;
		goto out;
	}
	if (!id_parse(json_object_get(obj, "id"), &out->job_id)) {
		fail(why, why_size, "\"%s\" without a job \"id\" (the string the job came with)",
		     op_name);
		goto out;
	}
	if (strcmp(op_name, "progress") == 0) {
		out->op = SERVE_REPLY_PROGRESS;
		if (!count_parse(json_object_get(obj, "done"), &out->done) ||
		    !count_parse(json_object_get(obj, "total"), &out->total) || out->total < 1 ||
		    out->done > out->total) {
			fail(why, why_size, "%s",
			     "progress needs whole numbers \"done\" and \"total\", 0 <= done <= "
			     "total, "
			     "total >= 1");
			goto out;
		}
		text_copy(out->message, sizeof out->message, json_object_get(obj, "message"));
	} else if (strcmp(op_name, "result") == 0) {
		out->op = SERVE_REPLY_RESULT;
		json_t *result = json_object_get(obj, "result");
		if (result == NULL || json_is_null(result)) {
			out->result = strdup("");
		} else if (json_is_string(result)) {
			out->result_len = json_string_length(result);
			out->result = malloc(out->result_len + 1);
			if (out->result != NULL) {
				memcpy(out->result, json_string_value(result), out->result_len);
				out->result[out->result_len] = '\0';
			}
		} else {
			/* Any other JSON value is stored as its JSON text. */
			out->result = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
			out->result_len = out->result ? strlen(out->result) : 0;
		}
		if (out->result == NULL) {
			fail(why, why_size, "%s", "out of memory for the result");
			goto out;
		}
	} else if (strcmp(op_name, "error") == 0) {
		out->op = SERVE_REPLY_ERROR;
		text_copy(out->message, sizeof out->message, json_object_get(obj, "message"));
		if (out->message[0] == '\0')
			snprintf(out->message, sizeof out->message, "handler reported an error");
		out->permanent = json_is_true(json_object_get(obj, "permanent"));
	} else {
		fail(why, why_size, "unknown op \"%s\": use progress, result or error", op_name);
		goto out;
	}
	rc = 0;
out:
	json_decref(obj);
	return rc;
}

void serve_reply_fini(struct serve_reply *reply)
{
	if (reply == NULL)
		return;
	free(reply->result);
	reply->result = NULL;
}
