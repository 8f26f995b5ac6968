/* Encodes and decodes the --serve line protocol (serve_proto.h) with
 * jansson. Decoding is strict about the fields it uses and ignores any it
 * does not know, so a handler library may add its own. */
#include "serve_proto.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char base64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A payload that is not UTF-8 cannot be a JSON string: it goes base64. */
static json_t *base64_string(const unsigned char *in, size_t len)
{
	size_t out_len = (len + 2) / 3 * 4;
	char *out = malloc(out_len + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = base64_digits[(v >> 18) & 63];
		out[o++] = base64_digits[(v >> 12) & 63];
		out[o++] = i + 1 < len ? base64_digits[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? base64_digits[v & 63] : '=';
	}
	out[o] = '\0';
	json_t *s = json_stringn(out, o);
	free(out);
	return s;
}

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

char *serve_proto_job(const struct serve_job_line *job, size_t *len)
{
	json_t *obj = json_object();
	if (obj == NULL)
		return NULL;
	json_t *payload = json_stringn(job->payload ? job->payload : "", job->payload_len);
	const char *payload_key = "payload";
	if (payload == NULL) {
		payload = base64_string(job->payload, job->payload_len);
		payload_key = "payload_base64";
	}
	int rc = json_object_set_new(obj, "op", json_string("job"));
	rc |= json_object_set_new(obj, "id", id_string(job->job_id));
	rc |= json_object_set_new(obj, "type", json_string(job->type));
	rc |= json_object_set_new(obj, "queue", json_string(job->queue));
	rc |= json_object_set_new(obj, "attempt", json_integer(job->attempt));
	rc |= json_object_set_new(obj, payload_key, payload);
	rc |= json_object_set_new(
	    obj, "deadline",
	    job->deadline_wall_ms ? json_integer((json_int_t)job->deadline_wall_ms) : json_null());
	rc |= json_object_set_new(obj, "timeout_ms", json_integer((json_int_t)job->timeout_ms));
	if (rc != 0) {
		json_decref(obj);
		return NULL;
	}
	return dump_line(obj, len);
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
