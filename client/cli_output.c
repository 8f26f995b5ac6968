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
	failed |= json_object_set_new(obj, "group",
	                              job->group[0] ? json_string(job->group) : json_null());
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
	if (job->payload != NULL)
		failed |= cli_json_set_bytes(obj, "payload", job->payload, job->payload_len);
	if (job->batch_id == 0)
		failed |= json_object_set_new(obj, "batch_id", json_null());
	else
		failed |= json_object_set_new(obj, "batch_id", cli_json_u64(job->batch_id));
	if (job->progress_total == 0) {
		failed |= json_object_set_new(obj, "progress", json_null());
	} else {
		json_t *progress = json_object();
		failed |= json_object_set_new(obj, "progress", progress);
		if (progress != NULL) {
			const char *message = job->progress_message ? job->progress_message : "";
			failed |=
			    json_object_set_new(progress, "done", cli_json_u64(job->progress_done));
			failed |= json_object_set_new(progress, "total",
			                              cli_json_u64(job->progress_total));
			failed |= cli_json_set_bytes(progress, "message", message, strlen(message));
		}
	}
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
		failed |= json_object_set_new(row, "cancelled", cli_json_u64(q->cancelled));
		failed |= json_object_set_new(row, "max_active", cli_json_u64(q->max_active));
		failed |= json_object_set_new(row, "paused", json_boolean(q->paused));
		failed |= json_object_set_new(row, "rate_jobs", cli_json_u64(q->rate_jobs));
		failed |=
		    json_object_set_new(row, "rate_period_ms", cli_json_u64(q->rate_period_ms));
		failed |= json_object_set_new(row, "group_limit", cli_json_u64(q->group_limit));
		failed |= json_object_set_new(row, "unroutable", cli_json_u64(q->unroutable));
		json_t *types = json_array();
		for (unsigned t = 0; types && t < q->unroutable_types_count; t++)
			failed |= json_array_append_new(types, json_string(q->unroutable_types[t]));
		failed |= json_object_set_new(row, "unroutable_types", types);
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
	if (job->group[0])
		fprintf(out, "group       %s\n", job->group);
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
	if (job->batch_id != 0)
		fprintf(out, "batch       %" PRIu64 "\n", job->batch_id);
	else
		fprintf(out, "batch       -\n");
	char progress[512];
	cli_format_job_progress(progress, sizeof progress, job);
	fprintf(out, "progress    %s\n", progress);
	if (job->payload != NULL) {
		fprintf(out, "payload     %zu bytes: ", job->payload_len);
		if (memchr(job->payload, '\0', job->payload_len) != NULL)
			fputs("(binary; --json shows it as payload_base64)", out);
		else
			cli_print_text(out, job->payload);
		fputc('\n', out);
	}
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

enum { STATS_COLUMNS = 7 };

/* One queue's row of numbers, in the order of cli_print_stats' headers. */
static void stats_row(const jm_queue_stats *q, uint64_t values[STATS_COLUMNS])
{
	const uint64_t row[STATS_COLUMNS] = {q->pending, q->delayed,   q->active,    q->completed,
	                                     q->failed,  q->cancelled, q->max_active};
	memcpy(values, row, sizeof row);
}

/* LIMIT is the queue's active limit, 0 for none. */
void cli_print_stats(FILE *out, const jm_queue_stats *queues, size_t count)
{
	static const char *const headers[STATS_COLUMNS] = {
	    "PENDING", "DELAYED", "ACTIVE", "COMPLETED", "FAILED", "CANCELLED", "LIMIT"};
	int name_width = (int)strlen("QUEUE");
	int widths[STATS_COLUMNS];
	uint64_t values[STATS_COLUMNS];
	for (int c = 0; c < STATS_COLUMNS; c++)
		widths[c] = (int)strlen(headers[c]);
	for (size_t i = 0; i < count; i++) {
		stats_row(&queues[i], values);
		int len = (int)strlen(queues[i].name);
		if (len > name_width)
			name_width = len;
		for (int c = 0; c < STATS_COLUMNS; c++) {
			char digits[24];
			len = snprintf(digits, sizeof digits, "%" PRIu64, values[c]);
			if (len > widths[c])
				widths[c] = len;
		}
	}
	fprintf(out, "%-*s", name_width, "QUEUE");
	for (int c = 0; c < STATS_COLUMNS; c++)
		fprintf(out, "  %*s", widths[c], headers[c]);
	fputs("  FLOW\n", out);
	for (size_t i = 0; i < count; i++) {
		stats_row(&queues[i], values);
		fprintf(out, "%-*s", name_width, queues[i].name);
		for (int c = 0; c < STATS_COLUMNS; c++)
			fprintf(out, "  %*" PRIu64, widths[c], values[c]);
		/* FLOW: paused, a rate limit, or "-" */
		fputs(queues[i].paused ? "  paused" : "  ", out);
		if (queues[i].rate_jobs)
			fprintf(out, "%s%u/%" PRIu64 "ms", queues[i].paused ? "," : "",
			        queues[i].rate_jobs, queues[i].rate_period_ms);
		else if (!queues[i].paused)
			fputc('-', out);
		if (queues[i].group_limit)
			fprintf(out, ", group-limit %u", queues[i].group_limit);
		/* Jobs no connected worker has a handler for wait: say so. */
		if (queues[i].unroutable) {
			fprintf(out, ", %" PRIu64 " unroutable (", queues[i].unroutable);
			for (unsigned t = 0; t < queues[i].unroutable_types_count; t++)
				fprintf(out, "%s%s", t ? "," : "", queues[i].unroutable_types[t]);
			fputc(')', out);
		}
		fputc('\n', out);
	}
}

void cli_format_text(char *out, size_t out_size, const char *text)
{
	size_t used = 0;
	out[0] = '\0';
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		char piece[8];
		if (*p == '\n')
			snprintf(piece, sizeof piece, "\\n");
		else if (*p == '\t')
			snprintf(piece, sizeof piece, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			snprintf(piece, sizeof piece, "\\x%02x", *p);
		else
			snprintf(piece, sizeof piece, "%c", *p);
		size_t len = strlen(piece);
		if (used + len + 1 > out_size)
			break;
		memcpy(out + used, piece, len + 1);
		used += len;
	}
}

void cli_format_job_progress(char *out, size_t out_size, const jm_job_info *job)
{
	if (job->progress_total == 0) {
		snprintf(out, out_size, "-");
		return;
	}
	int used = snprintf(out, out_size, "%" PRIu64 "/%" PRIu64, job->progress_done,
	                    job->progress_total);
	if (used < 0 || (size_t)used + 3 >= out_size || job->progress_message == NULL ||
	    job->progress_message[0] == '\0')
		return;
	memcpy(out + used, " ", 2);
	cli_format_text(out + used + 1, out_size - (size_t)used - 1, job->progress_message);
}

uint64_t cli_batch_finished(const jm_batch_info *batch)
{
	return batch->completed + batch->failed + batch->cancelled;
}

unsigned cli_batch_percent(const jm_batch_info *batch)
{
	if (batch->total == 0)
		return 100;
	uint64_t finished = cli_batch_finished(batch);
	if (finished >= batch->total)
		return 100;
	/* finished < total, so the product fits unless total is astronomical. */
	if (finished > UINT64_MAX / 100)
		return (unsigned)(finished / (batch->total / 100));
	return (unsigned)(finished * 100 / batch->total);
}

void cli_format_ago(char *out, size_t out_size, uint64_t then_us, uint64_t now_us)
{
	if (then_us == 0) {
		snprintf(out, out_size, "-");
		return;
	}
	uint64_t seconds = now_us > then_us ? (now_us - then_us) / 1000000 : 0;
	if (seconds < 120)
		snprintf(out, out_size, "%" PRIu64 "s ago", seconds);
	else if (seconds < 7200)
		snprintf(out, out_size, "%" PRIu64 "m ago", seconds / 60);
	else if (seconds < 172800)
		snprintf(out, out_size, "%" PRIu64 "h ago", seconds / 3600);
	else
		snprintf(out, out_size, "%" PRIu64 "d ago", seconds / 86400);
}

void cli_format_bar(char *out, size_t out_size, uint64_t done, uint64_t total, unsigned width)
{
	if (out_size < (size_t)width + 3) {
		if (out_size > 0)
			out[0] = '\0';
		return;
	}
	unsigned filled = 0;
	if (total != 0) {
		if (done >= total)
			filled = width;
		else
			filled = (unsigned)((long double)done * width / total);
	}
	out[0] = '[';
	for (unsigned i = 0; i < width; i++)
		out[1 + i] = i < filled ? '#' : '.';
	out[width + 1] = ']';
	out[width + 2] = '\0';
}

json_t *cli_json_batch(const jm_batch_info *batch)
{
	json_t *obj = json_object();
	json_t *errors = json_array();
	if (obj == NULL || errors == NULL) {
		json_decref(obj);
		json_decref(errors);
		return NULL;
	}
	const char *operation = batch->current_operation ? batch->current_operation : "";
	int failed = 0;
	failed |= json_object_set_new(obj, "id", cli_json_u64(batch->id));
	failed |= json_object_set_new(obj, "state", json_string(jm_batch_state_name(batch->state)));
	failed |= json_object_set_new(obj, "total", cli_json_u64(batch->total));
	failed |= json_object_set_new(obj, "completed", cli_json_u64(batch->completed));
	failed |= json_object_set_new(obj, "failed", cli_json_u64(batch->failed));
	failed |= json_object_set_new(obj, "cancelled", cli_json_u64(batch->cancelled));
	failed |= json_object_set_new(obj, "active", cli_json_u64(batch->active));
	failed |= json_object_set_new(obj, "finished", cli_json_u64(cli_batch_finished(batch)));
	failed |= json_object_set_new(obj, "percent", json_integer(cli_batch_percent(batch)));
	failed |= cli_json_set_bytes(obj, "current_operation", operation, strlen(operation));
	failed |= json_object_set_new(obj, "errors", errors);
	for (size_t i = 0; i < batch->errors_count && !failed; i++) {
		const jm_batch_error *e = &batch->errors[i];
		json_t *row = json_object();
		if (row == NULL || json_array_append_new(errors, row) != 0) {
			failed = 1;
			break;
		}
		const char *text = e->text ? e->text : "";
		failed |= json_object_set_new(row, "job_id", cli_json_u64(e->job_id));
		failed |= cli_json_set_bytes(row, "error", text, strlen(text));
	}
	failed |= json_object_set_new(obj, "started", cli_json_time(batch->created_us));
	failed |= json_object_set_new(obj, "finished_at", cli_json_time(batch->finished_us));
	failed |= json_object_set_new(obj, "started_us", cli_json_u64(batch->created_us));
	failed |= json_object_set_new(obj, "finished_us", cli_json_u64(batch->finished_us));
	if (failed) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

json_t *cli_json_batches(const jm_batch_info *batches, size_t count)
{
	json_t *list = json_array();
	json_t *obj = json_object();
	if (list == NULL || obj == NULL || json_object_set(obj, "batches", list) != 0)
		goto fail_free;
	for (size_t i = 0; i < count; i++) {
		json_t *row = cli_json_batch(&batches[i]);
		if (row == NULL || json_array_append_new(list, row) != 0)
			goto fail_free;
	}
	json_decref(list);
	return obj;

fail_free:
	json_decref(list);
	json_decref(obj);
	return NULL;
}

bool cli_worker_is_unseen(const jm_worker_info *worker)
{
	return worker->pid == 0 && (worker->host == NULL || worker->host[0] == '\0') &&
	       worker->queues_count == 0;
}

const char *cli_worker_state(const jm_worker_info *worker)
{
	if (cli_worker_is_unseen(worker))
		return "unseen";
	if (worker->draining)
		return "draining";
	return worker->active_jobs > 0 ? "busy" : "idle";
}

/* One worker as an object; NULL when out of memory. */
static json_t *cli_json_worker(const jm_worker_info *w, uint64_t now_us)
{
	json_t *obj = json_object();
	json_t *queues = json_array();
	json_t *job_ids = json_array();
	if (obj == NULL || queues == NULL || job_ids == NULL) {
		json_decref(obj);
		json_decref(queues);
		json_decref(job_ids);
		return NULL;
	}
	const char *host = w->host ? w->host : "";
	int failed = 0;
	bool unseen = cli_worker_is_unseen(w);
	failed |= json_object_set_new(obj, "id", json_string(w->id));
	if (unseen)
		failed |= json_object_set_new(obj, "host", json_null());
	else
		failed |= cli_json_set_bytes(obj, "host", host, strlen(host));
	failed |= json_object_set_new(obj, "pid", unseen ? json_null() : json_integer(w->pid));
	failed |= json_object_set_new(obj, "queues", queues);
	for (size_t i = 0; i < w->queues_count; i++)
		failed |= json_array_append_new(queues, json_string(w->queues[i]));
	failed |= json_object_set_new(obj, "concurrency",
	                              unseen ? json_null() : json_integer(w->concurrency));
	failed |= json_object_set_new(obj, "active", json_integer(w->active_jobs));
	failed |= json_object_set_new(obj, "job_ids", job_ids);
	for (size_t i = 0; i < w->job_ids_count; i++)
		failed |= json_array_append_new(job_ids, cli_json_u64(w->job_ids[i]));
	/* An unseen worker's times are the broker's start-up, not the
	 * worker's: unknown. */
	uint64_t first_us = unseen ? 0 : w->first_seen_us;
	uint64_t last_us = unseen ? 0 : w->last_seen_us;
	uint64_t ago_ms = now_us > last_us ? (now_us - last_us) / 1000 : 0;
	failed |= json_object_set_new(obj, "first_seen", cli_json_time(first_us));
	failed |= json_object_set_new(obj, "last_seen", cli_json_time(last_us));
	failed |= json_object_set_new(obj, "first_seen_us",
	                              unseen ? json_null() : cli_json_u64(first_us));
	failed |=
	    json_object_set_new(obj, "last_seen_us", unseen ? json_null() : cli_json_u64(last_us));
	failed |= json_object_set_new(obj, "last_seen_ago_ms",
	                              unseen ? json_null() : cli_json_u64(ago_ms));
	failed |= json_object_set_new(obj, "draining", json_boolean(w->draining));
	failed |= json_object_set_new(obj, "state", json_string(cli_worker_state(w)));
	if (failed) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

json_t *cli_json_workers(const jm_worker_info *workers, size_t count, uint64_t now_us)
{
	json_t *list = json_array();
	json_t *obj = json_object();
	if (list == NULL || obj == NULL || json_object_set(obj, "workers", list) != 0)
		goto fail_free;
	for (size_t i = 0; i < count; i++) {
		json_t *row = cli_json_worker(&workers[i], now_us);
		if (row == NULL || json_array_append_new(list, row) != 0)
			goto fail_free;
	}
	json_decref(list);
	return obj;

fail_free:
	json_decref(list);
	json_decref(obj);
	return NULL;
}

void cli_print_batch(FILE *out, const jm_batch_info *batch)
{
	char started[CLI_TIME_TEXT_MAX];
	char finished[CLI_TIME_TEXT_MAX];
	cli_format_time(started, sizeof started, batch->created_us);
	cli_format_time(finished, sizeof finished, batch->finished_us);
	fprintf(out, "batch       %" PRIu64 "\n", batch->id);
	fprintf(out, "state       %s\n", jm_batch_state_name(batch->state));
	fprintf(out, "progress    %" PRIu64 "/%" PRIu64 " finished (%u%%)\n",
	        cli_batch_finished(batch), batch->total, cli_batch_percent(batch));
	fprintf(out, "total       %" PRIu64 "\n", batch->total);
	fprintf(out, "completed   %" PRIu64 "\n", batch->completed);
	fprintf(out, "failed      %" PRIu64 "\n", batch->failed);
	fprintf(out, "cancelled   %" PRIu64 "\n", batch->cancelled);
	fprintf(out, "active      %" PRIu64 "\n", batch->active);
	fputs("current     ", out);
	if (batch->current_operation == NULL || batch->current_operation[0] == '\0')
		fputs("-", out);
	else
		cli_print_text(out, batch->current_operation);
	fputc('\n', out);
	fprintf(out, "started     %s\n", started);
	fprintf(out, "finished    %s\n", finished);
	fprintf(out, "errors      %zu\n", batch->errors_count);
	for (size_t i = 0; i < batch->errors_count; i++) {
		fprintf(out, "  job %" PRIu64 ": ", batch->errors[i].job_id);
		cli_print_text(out, batch->errors[i].text ? batch->errors[i].text : "");
		fputc('\n', out);
	}
}

void cli_format_batch_line(char *out, size_t out_size, const jm_batch_info *batch)
{
	int used =
	    snprintf(out, out_size,
	             "batch %" PRIu64 ": %" PRIu64 "/%" PRIu64 " done, %" PRIu64 " failed, %s",
	             batch->id, cli_batch_finished(batch), batch->total,
	             batch->failed + batch->cancelled, jm_batch_state_name(batch->state));
	if (used < 0 || (size_t)used + 3 >= out_size || batch->state != JM_BATCH_RUNNING ||
	    batch->current_operation == NULL || batch->current_operation[0] == '\0')
		return;
	memcpy(out + used, ": ", 3);
	cli_format_text(out + used + 2, out_size - (size_t)used - 2, batch->current_operation);
}

void cli_format_job_line(char *out, size_t out_size, const jm_job_info *job)
{
	int used = snprintf(out, out_size, "job %" PRIu64 ": %s, attempt %u/%u", job->id,
	                    jm_job_state_name(job->state), job->attempt, job->max_attempts);
	if (used < 0 || (size_t)used >= out_size)
		return;
	const char *message = NULL;
	if (job->state == JM_STATE_FAILED || job->state == JM_STATE_DELAYED) {
		message = job->last_error;
	} else if (job->progress_total != 0) {
		int more = snprintf(out + used, out_size - (size_t)used, ", %" PRIu64 "/%" PRIu64,
		                    job->progress_done, job->progress_total);
		if (more < 0 || (size_t)(used + more) >= out_size)
			return;
		used += more;
		if (job->state == JM_STATE_ACTIVE)
			message = job->progress_message;
	}
	if (message == NULL || message[0] == '\0' || (size_t)used + 3 >= out_size)
		return;
	memcpy(out + used, ": ", 3);
	cli_format_text(out + used + 2, out_size - (size_t)used - 2, message);
}

void cli_print_workers(FILE *out, const jm_worker_info *workers, size_t count, uint64_t now_us)
{
	enum { COLUMNS = 8 };
	static const char *const headers[COLUMNS] = {"WORKER",      "HOST",   "PID",       "QUEUES",
	                                             "CONCURRENCY", "ACTIVE", "LAST-SEEN", "STATE"};
	int widths[COLUMNS];
	for (int c = 0; c < COLUMNS; c++)
		widths[c] = (int)strlen(headers[c]);
	/* Two passes over the same cells: sizes, then printing. */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			for (int c = 0; c < COLUMNS; c++)
				fprintf(out, "%-*s%s", c + 1 < COLUMNS ? widths[c] : 0, headers[c],
				        c + 1 < COLUMNS ? "  " : "\n");
		}
		for (size_t i = 0; i < count; i++) {
			const jm_worker_info *w = &workers[i];
			char cells[COLUMNS][256];
			bool unseen = cli_worker_is_unseen(w);
			snprintf(cells[0], sizeof cells[0], "%s", w->id);
			cli_format_text(cells[1], sizeof cells[1], w->host ? w->host : "");
			snprintf(cells[2], sizeof cells[2], "%u", w->pid);
			cells[3][0] = '\0';
			size_t used = 0;
			for (size_t q = 0; q < w->queues_count; q++) {
				int len = snprintf(cells[3] + used, sizeof cells[3] - used, "%s%s",
				                   q ? "," : "", w->queues[q]);
				if (len < 0 || used + (size_t)len >= sizeof cells[3])
					break;
				used += (size_t)len;
			}
			snprintf(cells[4], sizeof cells[4], "%u", w->concurrency);
			snprintf(cells[5], sizeof cells[5], "%u", w->active_jobs);
			cli_format_ago(cells[6], sizeof cells[6], w->last_seen_us, now_us);
			snprintf(cells[7], sizeof cells[7], "%s", cli_worker_state(w));
			if (unseen) { /* only what the broker knows: id, jobs, state */
				static const int unknown[] = {1, 2, 3, 4, 6};
				for (size_t k = 0; k < sizeof unknown / sizeof unknown[0]; k++)
					snprintf(cells[unknown[k]], sizeof cells[unknown[k]], "-");
			}
			for (int c = 0; c < COLUMNS; c++) {
				int len = (int)strlen(cells[c]);
				if (pass == 0 && len > widths[c])
					widths[c] = len;
				if (pass == 1)
					fprintf(out, "%-*s%s", c + 1 < COLUMNS ? widths[c] : 0,
					        cells[c], c + 1 < COLUMNS ? "  " : "\n");
			}
		}
	}
}
