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

#include "decimal.h"

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
	*o += jm_decimal_u64(line + *o, value);
}

size_t serve_proto_job_room(const struct serve_job_line *job)
{
	size_t payload_room = job->payload_len * 6 + 2;
	size_t base64_room = (job->payload_len + 2) / 3 * 4 + 2;
	if (base64_room > payload_room)
		payload_room = base64_room;
	return payload_room + strlen(job->type) + strlen(job->queue) + 192;
}

static void put_base64(char *line, size_t *o, const unsigned char *payload, size_t len)
{
	line[(*o)++] = '"';
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)payload[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)payload[i + 1] << 8;
		if (i + 2 < len)
			v |= payload[i + 2];
		line[(*o)++] = base64_digits[(v >> 18) & 63];
		line[(*o)++] = base64_digits[(v >> 12) & 63];
		line[(*o)++] = i + 1 < len ? base64_digits[(v >> 6) & 63] : '=';
		line[(*o)++] = i + 2 < len ? base64_digits[v & 63] : '=';
	}
	line[(*o)++] = '"';
}

/* Written by hand rather than through jansson's object tree: this is
 * built once per job on the drain's hot path, and its only free text is the
 * payload (type and queue are names of [A-Za-z0-9._-], checked by proto/).
 * test_serve_proto reads every form back with jansson. */
size_t serve_proto_job_put(const struct serve_job_line *job, enum serve_job_form form, char *line)
{
	const unsigned char *payload = job->payload ? job->payload : (const unsigned char *)"";
	bool item = form == SERVE_JOB_ITEM;
	size_t o = 0;
	put(line, &o, item ? "[\"" : "{\"op\":\"job\",\"id\":\"");
	put_u64(line, &o, job->job_id);
	put(line, &o, item ? "\",\"" : "\",\"type\":\"");
	put(line, &o, job->type);
	put(line, &o, item ? "\",\"" : "\",\"queue\":\"");
	put(line, &o, job->queue);
	put(line, &o, item ? "\"," : "\",\"attempt\":");
	put_u64(line, &o, job->attempt);
	put(line, &o, item ? "," : ",\"payload\":");
	size_t payload_at = o;
	bool base64 = !json_string_put(line, &o, payload, job->payload_len);
	if (base64) {
		o = payload_at;
		if (item)
			put(line, &o, "null"); /* and the base64 text last */
		else {
			o -= 10; /* "payload": */
			put(line, &o, "\"payload_base64\":");
			put_base64(line, &o, payload, job->payload_len);
		}
	}
	put(line, &o, item ? "," : ",\"deadline\":");
	if (job->deadline_wall_ms)
		put_u64(line, &o, job->deadline_wall_ms);
	else
		put(line, &o, "null");
	put(line, &o, item ? "," : ",\"timeout_ms\":");
	put_u64(line, &o, job->timeout_ms);
	if (item && base64) {
		line[o++] = ',';
		put_base64(line, &o, payload, job->payload_len);
	}
	put(line, &o, item ? "]" : "}\n");
	return o;
}

char *serve_proto_job(const struct serve_job_line *job, enum serve_job_form form, size_t *len)
{
	char *line = malloc(serve_proto_job_room(job));
	if (line == NULL)
		return NULL;
	*len = serve_proto_job_put(job, form, line);
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

/* Sets *out to result's text as a "result" field means it: a string as it
 * is, null or none as "", any other JSON value as its JSON text. */
static bool result_text(json_t *result, char **out, size_t *len)
{
	if (result == NULL || json_is_null(result)) {
		*out = strdup("");
		*len = 0;
	} else if (json_is_string(result)) {
		*len = json_string_length(result);
		*out = malloc(*len + 1);
		if (*out != NULL) {
			memcpy(*out, json_string_value(result), *len);
			(*out)[*len] = '\0';
		}
	} else {
		*out = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
		*len = *out ? strlen(*out) : 0;
	}
	return *out != NULL;
}

/* {"op":"results","ids":["42",...],"results":["text",...]}: "results" is
 * optional (every result ""), else as long as "ids". */
static int results_decode(json_t *obj, struct serve_reply *out, char *why, size_t why_size)
{
	out->op = SERVE_REPLY_RESULTS;
	json_t *ids = json_object_get(obj, "ids");
	json_t *results = json_object_get(obj, "results");
	size_t count = json_array_size(ids);
	if (!json_is_array(ids) || count == 0 || count > SERVE_RESULTS_MAX) {
		char detail[32];
		snprintf(detail, sizeof detail, "%d", SERVE_RESULTS_MAX);
		return fail(why, why_size,
		            "results needs \"ids\": an array of 1 to %s job ids (the strings "
		            "the jobs came with)",
		            detail);
	}
	if (results != NULL && !json_is_null(results) &&
	    (!json_is_array(results) || json_array_size(results) != count))
		return fail(why, why_size, "%s",
		            "results: \"results\" must be an array as long as \"ids\" (or left "
		            "out: every result \"\")");
	if (!json_is_array(results))
		results = NULL;
	out->items = calloc(count, sizeof *out->items);
	if (out->items == NULL)
		return fail(why, why_size, "%s", "out of memory for the results");
	out->items_count = count;
	for (size_t i = 0; i < count; i++) {
		struct serve_result_item *item = &out->items[i];
		if (!id_parse(json_array_get(ids, i), &item->job_id)) {
			char detail[32];
			snprintf(detail, sizeof detail, "%zu", i);
			serve_reply_fini(out);
			return fail(why, why_size,
			            "results: ids[%s] is not a job id (a string of digits)",
			            detail);
		}
		if (results != NULL &&
		    !result_text(json_array_get(results, i), &item->result, &item->result_len)) {
			serve_reply_fini(out);
			return fail(why, why_size, "%s", "out of memory for the results");
		}
	}
	return 0;
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
		fail(why, why_size, "%s", "no \"op\": use progress, result, results or error");
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
		out->batch = json_is_true(json_object_get(obj, "batch"));
		rc = 0;
		goto out;
	}
	if (strcmp(op_name, "results") == 0) {
		rc = results_decode(obj, out, why, why_size);
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
		if (!result_text(json_object_get(obj, "result"), &out->result, &out->result_len)) {
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
		fail(why, why_size, "unknown op \"%s\": use progress, result, results or error",
		     op_name);
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
	for (size_t i = 0; i < reply->items_count; i++)
		free(reply->items[i].result);
	free(reply->items);
	reply->items = NULL;
	reply->items_count = 0;
}
