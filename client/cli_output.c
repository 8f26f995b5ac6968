/* Printing jobs and stats (see cli_output.h).
 *
 * JSON goes through jansson only. Its json_stringn() refuses bytes that are
 * not valid UTF-8, which is exactly the test for "can this be a JSON
 * string", so binary results and odd error texts fall back to base64 under
 * a "<key>_base64" name rather than being mangled. */
#include "cli_output.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cli_format_time(char *out, size_t out_size, uint64_t wall_us)
{
	if (wall_us == 0) {
		snprintf(out, out_size, "-");
		return;
	}
	time_t seconds = (time_t)(wall_us / 1000000);
	unsigned millis = (unsigned)(wall_us % 1000000 / 1000);
	struct tm tm;
	if (gmtime_r(&seconds, &tm) == NULL) {
		snprintf(out, out_size, "%" PRIu64 "us", wall_us);
		return;
	}
	char date[24];
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, out_size, "%s.%03uZ", date, millis);
}

char *cli_base64(const void *data, size_t len)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *in = data;
	char *out = malloc((len + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	size_t used = 0;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t triple = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[used++] = alphabet[triple >> 18 & 63];
		out[used++] = alphabet[triple >> 12 & 63];
		out[used++] = alphabet[triple >> 6 & 63];
		out[used++] = alphabet[triple & 63];
	}
	if (i < len) {
		uint32_t triple = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			triple |= (uint32_t)in[i + 1] << 8;
		out[used++] = alphabet[triple >> 18 & 63];
		out[used++] = alphabet[triple >> 12 & 63];
		out[used++] = i + 1 < len ? alphabet[triple >> 6 & 63] : '=';
		out[used++] = '=';
	}
	out[used] = '\0';
	return out;
}

_Static_assert(sizeof(json_int_t) == sizeof(int64_t), "json_int_t is not 64 bits");

json_t *cli_json_u64(uint64_t value)
{
	if (value <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)value);
	char digits[24];
	snprintf(digits, sizeof digits, "%" PRIu64, value);
	return json_string(digits);
}

/* Sets key to the bytes as a string, or key_base64 when they are not
 * UTF-8. Returns 0 or -1 when out of memory. */
static int cli_json_set_bytes(json_t *obj, const char *key, const void *data, size_t len)
{
	json_t *text = json_stringn(len ? data : "", len);
	if (text != NULL)
		return json_object_set_new(obj, key, text);
	char *encoded = cli_base64(data, len);
	if (encoded == NULL)
		return -1;
	char key_base64[64];
	snprintf(key_base64, sizeof key_base64, "%s_base64", key);
	int rc = json_object_set_new(obj, key_base64, json_string(encoded));
	free(encoded);
	return rc;
}

static json_t *cli_json_time(uint64_t wall_us)
{
	if (wall_us == 0)
		return json_null();
	char text[CLI_TIME_TEXT_MAX];
	cli_format_time(text, sizeof text, wall_us);
	return json_string(text);
}

json_t *cli_json_job(const jm_job_info *job, bool with_result)
{
	json_t *obj = json_object();
	if (obj == NULL)
		return NULL;
	/* json_object_set_new() fails on a NULL value (an allocation that
	 * failed) and never leaks it, so or-ing the results catches any. */
	int failed = 0;
	failed |= json_object_set_new(obj, "id", cli_json_u64(job->id));
	failed |= json_object_set_new(obj, "queue", json_string(job->queue));
	failed |= json_object_set_new(obj, "type", json_string(job->type));
	failed |= json_object_set_new(obj, "state", json_string(jm_job_state_name(job->state)));
	failed |= json_object_set_new(obj, "priority", json_integer(job->priority));
	failed |= json_object_set_new(obj, "attempt", json_integer(job->attempt));
	failed |= json_object_set_new(obj, "max_attempts", json_integer(job->max_attempts));
	failed |= json_object_set_new(obj, "created", cli_json_time(job->created_us));
	failed |= json_object_set_new(obj, "updated", cli_json_time(job->updated_us));
	failed |= json_object_set_new(obj, "run_at", cli_json_time(job->run_at_us));
	failed |= json_object_set_new(obj, "created_us", cli_json_u64(job->created_us));
	failed |= json_object_set_new(obj, "updated_us", cli_json_u64(job->updated_us));
	failed |= json_object_set_new(obj, "run_at_us", cli_json_u64(job->run_at_us));
	if (job->last_error == NULL || job->last_error[0] == '\0')
		failed |= json_object_set_new(obj, "last_error", json_null());
	else
		failed |=
		    cli_json_set_bytes(obj, "last_error", job->last_error, strlen(job->last_error));
	if (with_result && job->has_result)
		failed |= cli_json_set_bytes(obj, "result", job->result, job->result_len);
	if (failed) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

json_t *cli_json_stats(const jm_queue_stats *queues, size_t count)
{
	json_t *list = json_array();
	json_t *obj = json_object();
	if (list == NULL || obj == NULL || json_object_set(obj, "queues", list) != 0)
		goto fail_free;
	for (size_t i = 0; i < count; i++) {
		const jm_queue_stats *q = &queues[i];
		json_t *row = json_object();
		if (row == NULL || json_array_append_new(list, row) != 0)
			goto fail_free;
		int failed = 0;
		failed |= json_object_set_new(row, "name", json_string(q->name));
		failed |= json_object_set_new(row, "pending", cli_json_u64(q->pending));
		failed |= json_object_set_new(row, "delayed", cli_json_u64(q->delayed));
		failed |= json_object_set_new(row, "active", cli_json_u64(q->active));
		failed |= json_object_set_new(row, "completed", cli_json_u64(q->completed));
		failed |= json_object_set_new(row, "failed", cli_json_u64(q->failed));
		if (failed)
			goto fail_free;
	}
	json_decref(list);
	return obj;

fail_free:
	json_decref(list);
	json_decref(obj);
	return NULL;
}

int cli_print_json(FILE *out, json_t *value)
{
	if (value == NULL)
		return -1;
	int rc = json_dumpf(value, out, JSON_PRESERVE_ORDER);
	json_decref(value);
	if (rc != 0 || fputc('\n', out) == EOF)
		return -1;
	return 0;
}

void cli_print_text(FILE *out, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
}

void cli_print_job(FILE *out, const jm_job_info *job)
{
	char created[CLI_TIME_TEXT_MAX];
	char updated[CLI_TIME_TEXT_MAX];
	char run_at[CLI_TIME_TEXT_MAX];
	cli_format_time(created, sizeof created, job->created_us);
	cli_format_time(updated, sizeof updated, job->updated_us);
	cli_format_time(run_at, sizeof run_at, job->run_at_us);
	fprintf(out, "id          %" PRIu64 "\n", job->id);
	fprintf(out, "queue       %s\n", job->queue);
	fprintf(out, "type        %s\n", job->type);
	fprintf(out, "state       %s\n", jm_job_state_name(job->state));
	fprintf(out, "attempt     %u/%u\n", job->attempt, job->max_attempts);
	fprintf(out, "priority    %d\n", job->priority);
	fprintf(out, "created     %s\n", created);
	fprintf(out, "updated     %s\n", updated);
	fprintf(out, "run at      %s\n", run_at);
	fputs("last error  ", out);
	if (job->last_error == NULL || job->last_error[0] == '\0')
		fputs("-", out);
	else
		cli_print_text(out, job->last_error);
	fputc('\n', out);
}

void cli_print_job_state_line(FILE *out, const jm_job_info *job)
{
	fprintf(out, "job %" PRIu64 " %s (attempt %u/%u)", job->id, jm_job_state_name(job->state),
	        job->attempt, job->max_attempts);
	if (job->state == JM_STATE_FAILED && job->last_error != NULL &&
	    job->last_error[0] != '\0') {
		fputs(": ", out);
		cli_print_text(out, job->last_error);
	}
	fputc('\n', out);
}

void cli_print_stats(FILE *out, const jm_queue_stats *queues, size_t count)
{
	static const char *const headers[] = {"PENDING", "DELAYED", "ACTIVE", "COMPLETED",
	                                      "FAILED"};
	enum { COLUMNS = 5 };
	int name_width = (int)strlen("QUEUE");
	int widths[COLUMNS];
	for (int c = 0; c < COLUMNS; c++)
		widths[c] = (int)strlen(headers[c]);
	for (size_t i = 0; i < count; i++) {
		const jm_queue_stats *q = &queues[i];
		const uint64_t values[COLUMNS] = {q->pending, q->delayed, q->active, q->completed,
		                                  q->failed};
		int len = (int)strlen(q->name);
		if (len > name_width)
			name_width = len;
		for (int c = 0; c < COLUMNS; c++) {
			char digits[24];
			len = snprintf(digits, sizeof digits, "%" PRIu64, values[c]);
			if (len > widths[c])
				widths[c] = len;
		}
	}
	fprintf(out, "%-*s", name_width, "QUEUE");
	for (int c = 0; c < COLUMNS; c++)
		fprintf(out, "  %*s", widths[c], headers[c]);
	fputc('\n', out);
	for (size_t i = 0; i < count; i++) {
		const jm_queue_stats *q = &queues[i];
		const uint64_t values[COLUMNS] = {q->pending, q->delayed, q->active, q->completed,
		                                  q->failed};
		fprintf(out, "%-*s", name_width, q->name);
		for (int c = 0; c < COLUMNS; c++)
			fprintf(out, "  %*" PRIu64, widths[c], values[c]);
		fputc('\n', out);
	}
}
