/* JSON for the HTTP API (libjansson): replies built from decoded proto
 * messages, and job specs parsed from request bodies with every field's
 * type checked and unknown fields refused by name.
 *
 * Ids are JSON strings of decimal digits: JavaScript numbers lose
 * precision above 2^53. Times are integer microseconds since the epoch
 * (below 2^53 until the year 2255). */
#ifndef JM_BROKER_HTTP_JSON_H
#define JM_BROKER_HTTP_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "message.h"

/* A refusal: HTTP status, stable snake_case code, one-line message. */
struct http_bad {
	uint16_t status;
	char code[48];
	char message[512];
};

int http_bad_set(struct http_bad *bad, uint16_t status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* HTTP status and code for a JM_E code from the core or proto_check. */
uint16_t http_status_of(int jm_code);
const char *http_code_of(int jm_code);

json_t *http_json_id(uint64_t id);                   /* "42" */
json_t *http_json_id_or_null(uint64_t id);           /* 0: null */
json_t *http_json_text(const struct proto_bytes *b); /* string, or null when empty */
json_t *http_json_job(const struct proto_job_info *job);
/* Adds the result of a completed job to obj: "result" (its text) and, when
 * that text is JSON, "data" (the value). Bytes that are not UTF-8 come as
 * "result_base64" instead. */
void http_json_add_result(json_t *obj, const struct proto_bytes *result);
/* "payload": the job's payload as a string (or "payload_base64" when it is
 * not UTF-8). */
void http_json_add_payload(json_t *obj, const struct proto_bytes *payload);
json_t *http_json_batch(const struct proto_batch_info *batch);
json_t *http_json_worker(const struct proto_worker_info *worker);
json_t *http_json_queue(const struct proto_queue_stats *queue, uint64_t now_us);
/* The event as an SSE data object; *kind gets its event name. */
/* Sets obj's retention members per finished state (keep_completed,
 * keep_completed_age_ms, ...; a count with no limit is null) and
 * keep_finished / keep_finished_age_ms (the completed jobs'). */
void http_json_keep(json_t *obj, uint64_t completed, uint64_t completed_age_ms, uint64_t failed,
                    uint64_t failed_age_ms, uint64_t cancelled, uint64_t cancelled_age_ms);
json_t *http_json_event(const struct proto_event *event, const char **kind);
/* The compact JSON text of a job_state event with no error text, written
 * directly into out (cap bytes): the same bytes as dumping
 * http_json_event's object (test_http_json_event), without building one,
 * which was most of what the event stream cost per event. Returns its
 * length, or 0 for any other event (or too small a cap): use
 * http_json_event then. */
size_t http_json_job_state_text(const struct proto_event *event, char *out, size_t cap);

/* Parses a JSON body: an object or array; NULL with bad set (400
 * malformed_json naming the byte, or 415 for a non-JSON content type). */
json_t *http_json_parse(const void *body, size_t len, const char *content_type,
                        struct http_bad *bad);

/* Fills spec from one job object. queue: the queue from the URL, or NULL
 * when the object must name it ("queue" field, batches). label prefixes
 * messages ("job 3"; "" for none). payload_out gets a malloc'd copy the
 * spec's payload points into (NULL when it borrows from obj): the caller
 * frees it after the request. Returns false with bad set. */
bool http_json_job_spec(json_t *obj, const char *queue, const char *label,
                        struct proto_job_spec *spec, char **payload_out, struct http_bad *bad);

/* "pending" ... to enum proto_job_state; 0 when unknown. */
uint32_t http_state_parse(const char *name);

/* JSON text of value (compact); malloc'd, or NULL. */
char *http_json_dump(const json_t *value, size_t *len);

#endif
