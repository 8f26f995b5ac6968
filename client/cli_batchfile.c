/* Batch files (see cli_batchfile.h). */
#include "cli_batchfile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "job_spec.h"
#include "message.h"

/* A line longer than a payload at its limit plus room for escaping and
 * the other fields is refused before it is parsed. */
#define BATCHFILE_LINE_MAX ((size_t)JM_PAYLOAD_MAX_BYTES * 2 + 4096)

_Static_assert(sizeof(((struct cli_batch_job *)0)->key) == PROTO_KEY_MAX + 1,
               "a batch job's key holds PROTO_KEY_MAX bytes and its NUL");

static const char batchfile_keys[] =
    "queue, type, payload, priority, max_attempts, delay_ms, timeout_ms, key, group";

bool cli_batch_line_is_blank(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			return false;
	}
	return true;
}

/* Points *text at the string at key (len bytes, owned by obj); the name
 * rule is proto_job_spec_check's. */
static int batchfile_string(json_t *obj, const char *key, const char **text, size_t *len,
                            struct jm_err *err)
{
	json_t *value = json_object_get(obj, key);
	if (value == NULL)
		return jm_err_set(err, JM_EINVAL,
		                  "\"%s\" is missing: every job needs a queue and a type", key);
	if (!json_is_string(value))
		return jm_err_set(err, JM_EINVAL, "\"%s\" must be a string", key);
	*text = json_string_value(value);
	*len = json_string_length(value);
	return 0;
}

/* Reads an optional integer at key into *out, within [min, max]. */
static int batchfile_int(json_t *obj, const char *key, long long min, long long max, long long *out,
                         struct jm_err *err)
{
	json_t *value = json_object_get(obj, key);
	if (value == NULL)
		return 0;
	if (!json_is_integer(value) || json_integer_value(value) < min ||
	    json_integer_value(value) > max)
		return jm_err_set(err, JM_EINVAL, "\"%s\" must be an integer in %lld..%lld", key,
		                  min, max);
	*out = json_integer_value(value);
	return 0;
}

int cli_batch_parse_line(const char *line, size_t len, struct cli_batch_job *job,
                         struct jm_err *err)
{
	memset(job, 0, sizeof *job);
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL)
		return jm_err_set(err, JM_EINVAL, "not JSON: %s at column %d", jerr.text,
		                  jerr.column);
	int rc = 0;
	if (!json_is_object(obj)) {
		rc = jm_err_set(err, JM_EINVAL,
		                "a job is a JSON object {\"queue\": ..., \"type\": ..., "
		                "\"payload\": ...}");
		goto done_free_obj;
	}
	const char *key;
	json_t *value;
	json_object_foreach(obj, key, value)
	{
		static const char *const known[] = {"queue",      "type",         "payload",
		                                    "priority",   "max_attempts", "delay_ms",
		                                    "timeout_ms", "key",          "group"};
		bool found = false;
		for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
			found = found || strcmp(key, known[i]) == 0;
		if (!found) {
			rc = jm_err_set(err, JM_EINVAL, "unknown key \"%.64s\": use %s", key,
			                batchfile_keys);
			goto done_free_obj;
		}
	}
	const char *queue = NULL, *type = NULL;
	size_t queue_len = 0, type_len = 0;
	rc = batchfile_string(obj, "queue", &queue, &queue_len, err);
	if (rc == 0)
		rc = batchfile_string(obj, "type", &type, &type_len, err);
	/* Integers only have to fit their C types here: their ranges are
	 * proto_job_spec_check's, below. */
	long long priority = 0, max_attempts = 0, delay_ms = 0, timeout_ms = 0;
	if (rc == 0)
		rc = batchfile_int(obj, "priority", INT32_MIN, INT32_MAX, &priority, err);
	if (rc == 0)
		rc = batchfile_int(obj, "max_attempts", 0, UINT32_MAX, &max_attempts, err);
	if (rc == 0)
		rc = batchfile_int(obj, "delay_ms", 0, INT64_MAX / 1000, &delay_ms, err);
	if (rc == 0)
		rc = batchfile_int(obj, "timeout_ms", 0, INT64_MAX / 1000, &timeout_ms, err);
	const char *key_text = NULL;
	size_t key_len = 0;
	if (rc == 0 && json_object_get(obj, "key") != NULL) {
		/* The idempotency key, as --key: checked here so the line is named. */
		rc = batchfile_string(obj, "key", &key_text, &key_len, err);
		if (rc == 0 && key_len == 0)
			rc = jm_err_set(err, JM_EINVAL, "\"key\" is empty: %s", PROTO_KEY_RULE);
		if (rc == 0)
			rc = proto_idempotency_key_check(key_text, key_len, err);
	}
	/* Optional: the job's group (fair tenants), a name. */
	const char *group = NULL;
	size_t group_len = 0;
	if (rc == 0 && json_object_get(obj, "group") != NULL) {
		rc = batchfile_string(obj, "group", &group, &group_len, err);
		if (rc == 0 && !proto_name_is_valid(group, group_len))
			rc = jm_err_set(err, JM_EBADNAME, "group name \"%.80s\" is invalid: %s",
			                group, PROTO_NAME_RULE);
	}
	if (rc != 0)
		goto done_free_obj;

	json_t *payload = json_object_get(obj, "payload");
	size_t payload_len = 0;
	if (payload != NULL && json_is_string(payload)) {
		payload_len = json_string_length(payload);
		job->payload = malloc(payload_len + 1);
		if (job->payload != NULL)
			memcpy(job->payload, json_string_value(payload), payload_len + 1);
	} else if (payload != NULL) {
		/* json_dumpb into our own buffer: everything this file allocates
		 * goes through one malloc (the unit test swaps it). */
		size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER;
		size_t need = json_dumpb(payload, NULL, 0, flags);
		if (need > JM_PAYLOAD_MAX_BYTES) {
			payload_len = need;
		} else if (need > 0) {
			job->payload = malloc(need + 1);
			if (job->payload != NULL) {
				payload_len = json_dumpb(payload, job->payload, need, flags);
				job->payload[payload_len] = '\0';
			}
		}
		if (need == 0) {
			rc = jm_err_set(err, JM_EINVAL, "payload cannot be serialised");
			goto done_free_obj;
		}
	}
	rc = proto_job_spec_check(queue, queue_len, type, type_len, payload_len, priority,
	                          (uint64_t)max_attempts, err);
	if (rc == 0 && payload != NULL && job->payload == NULL)
		rc = jm_err_set(err, JM_ENOMEM, "out of memory for the payload");
	if (rc != 0) {
		free(job->payload);
		job->payload = NULL;
		goto done_free_obj;
	}
	/* Both names passed the name rule: at most PROTO_NAME_MAX bytes. */
	memcpy(job->queue, queue, queue_len + 1);
	memcpy(job->type, type, type_len + 1);
	job->spec.queue = job->queue;
	job->spec.type = job->type;
	job->spec.payload = job->payload;
	job->spec.payload_len = payload_len;
	job->spec.priority = (int)priority;
	job->spec.max_attempts = (unsigned)max_attempts;
	job->spec.delay_ms = (uint64_t)delay_ms;
	job->spec.timeout_ms = (uint64_t)timeout_ms;
	if (key_text != NULL) {
		/* Checked above: at most PROTO_KEY_MAX printable bytes. */
		memcpy(job->key, key_text, key_len + 1);
		job->spec.idempotency_key = job->key;
	}
	if (group != NULL) {
		memcpy(job->group, group, group_len + 1);
		job->spec.group = job->group;
	}
done_free_obj:
	json_decref(obj);
	return rc;
}

void cli_batch_file_fini(struct cli_batch_file *file)
{
	if (file == NULL)
		return;
	for (size_t i = 0; i < file->jobs_count; i++)
		free(file->jobs[i].payload);
	free(file->jobs);
	free(file->specs);
	memset(file, 0, sizeof *file);
}

/* Reads one line without its newline into *line (grown as needed, up to
 * BATCHFILE_LINE_MAX + 1 bytes of text, then the rest of the line is
 * skipped and *len says BATCHFILE_LINE_MAX + 1). Returns 1 for a line, 0
 * at the end of input, -1 on a read error or out of memory. */
static int batchfile_getline(FILE *in, char **line, size_t *cap, size_t *len)
{
	*len = 0;
	int c = getc(in);
	if (c == EOF)
		return ferror(in) ? -1 : 0;
	for (; c != EOF && c != '\n'; c = getc(in)) {
		if (*len > BATCHFILE_LINE_MAX)
			continue;
		if (*len + 2 > *cap) {
			size_t want = *cap ? *cap * 2 : 256;
			char *grown = realloc(*line, want);
			if (grown == NULL)
				return -1;
			*line = grown;
			*cap = want;
		}
		(*line)[(*len)++] = (char)c;
	}
	if (c == EOF && ferror(in))
		return -1;
	if (*cap == 0) {
		*line = malloc(1);
		if (*line == NULL)
			return -1;
		*cap = 1;
	}
	(*line)[*len] = '\0';
	return 1;
}

int cli_batch_read(FILE *in, const char *source, size_t max_jobs, struct cli_batch_file *file,
                   struct jm_err *err)
{
	memset(file, 0, sizeof *file);
	size_t cap = 0;
	char *line = NULL;
	size_t line_cap = 0;
	size_t line_no = 0;
	int rc = 0;
	for (;;) {
		size_t len = 0;
		errno = 0;
		int got = batchfile_getline(in, &line, &line_cap, &len);
		if (got < 0) {
			rc = jm_err_set(err, JM_EIO, "%s: line %zu: read failed: %s", source,
			                line_no + 1, errno ? strerror(errno) : "out of memory");
			break;
		}
		if (got == 0)
			break;
		line_no++;
		if (cli_batch_line_is_blank(line, len))
			continue;
		if (len > BATCHFILE_LINE_MAX) {
			rc = jm_err_set(err, JM_ETOOBIG,
			                "%s: line %zu: over %zu bytes: a line holds at most that",
			                source, line_no, BATCHFILE_LINE_MAX);
			break;
		}
		if (file->jobs_count == max_jobs) {
			rc = jm_err_set(err, JM_ELIMIT,
			                "%s: line %zu: more than %zu jobs: a batch holds at most "
			                "%zu; split the file",
			                source, line_no, max_jobs, max_jobs);
			break;
		}
		if (file->jobs_count == cap) {
			size_t want = cap ? cap * 2 : 64;
			if (want > max_jobs)
				want = max_jobs;
			struct cli_batch_job *grown = realloc(file->jobs, want * sizeof *grown);
			if (grown == NULL) {
				rc = jm_err_set(err, JM_ENOMEM, "%s: line %zu: out of memory",
				                source, line_no);
				break;
			}
			file->jobs = grown;
			cap = want;
		}
		struct jm_err line_err;
		jm_err_clear(&line_err);
		rc = cli_batch_parse_line(line, len, &file->jobs[file->jobs_count], &line_err);
		if (rc != 0) {
			jm_err_set(err, rc, "%s: line %zu: %s", source, line_no,
			           jm_err_text(&line_err));
			break;
		}
		file->jobs_count++;
	}
	free(line);
	if (rc == 0 && file->jobs_count == 0)
		rc = jm_err_set(err, JM_ELIMIT, "%s: no jobs: give one JSON object per line",
		                source);
	if (rc == 0) {
		file->specs = calloc(file->jobs_count, sizeof *file->specs);
		if (file->specs == NULL)
			rc = jm_err_set(err, JM_ENOMEM, "%s: out of memory", source);
	}
	if (rc != 0) {
		cli_batch_file_fini(file);
		return rc;
	}
	/* The specs point into jobs, which no longer move. */
	for (size_t i = 0; i < file->jobs_count; i++) {
		file->specs[i] = file->jobs[i].spec;
		file->specs[i].queue = file->jobs[i].queue;
		file->specs[i].type = file->jobs[i].type;
		if (file->jobs[i].key[0] != '\0')
			file->specs[i].idempotency_key = file->jobs[i].key;
	}
	return 0;
}
