/* How the jobmesh tool prints jobs and stats: aligned text for people,
 * JSON (built with jansson, never by hand) for programs.
 *
 * The builders are pure: they take SDK structs and return text or a
 * json_t, so tests/unit/test_cli_json.c checks them without a broker. */
#ifndef JM_CLIENT_CLI_OUTPUT_H
#define JM_CLIENT_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <jobmesh/client.h>

/* Big enough for "2024-05-01T12:34:56.789Z" and for "-". */
#define CLI_TIME_TEXT_MAX 32

/* Writes wall_us (microseconds since the epoch) as ISO-8601 UTC with
 * milliseconds, "-" for 0 (never set). */
void cli_format_time(char *out, size_t out_size, uint64_t wall_us);

/* Base64 (RFC 4648, with padding) of len bytes; malloc'd, NUL-terminated;
 * NULL when out of memory. */
char *cli_base64(const void *data, size_t len);

/* A JSON integer for a uint64 when it fits json_int_t, else a decimal
 * string, so no id is ever printed wrong. New reference or NULL. */
json_t *cli_json_u64(uint64_t value);

/* The job as an object: id, queue, type, state, priority, attempt,
 * max_attempts, created/updated/run_at (ISO-8601 or null) and their _us
 * numbers, last_error (null when none), and with with_result and a result
 * present, "result" (when valid UTF-8) or else "result_base64". Text that is
 * not valid UTF-8 anywhere goes to a "<key>_base64" field instead. New
 * reference, or NULL when out of memory. */
json_t *cli_json_job(const jm_job_info *job, bool with_result);

/* {"queues": [{"name", "pending", "delayed", "active", "completed",
 * "failed"}...]}. New reference or NULL. */
json_t *cli_json_stats(const jm_queue_stats *queues, size_t count);

/* Prints value on one line and drops the reference; 0 or -1 when out of
 * memory or the write failed. Accepts NULL (out of memory: returns -1). */
int cli_print_json(FILE *out, json_t *value);

/* "id  42\nqueue  emails\n..." aligned, one field per line. */
void cli_print_job(FILE *out, const jm_job_info *job);

/* "job 42 completed (attempt 1/3)", with ": <last error>" when failed. */
void cli_print_job_state_line(FILE *out, const jm_job_info *job);

/* QUEUE PENDING DELAYED ACTIVE COMPLETED FAILED, columns sized to fit. */
void cli_print_stats(FILE *out, const jm_queue_stats *queues, size_t count);

/* Writes text for a terminal: control characters as \n, \t, \xNN, so one
 * field stays on one line whatever a worker put in it. */
void cli_print_text(FILE *out, const char *text);

/* Writes text as cli_print_text does into out (always NUL-terminated),
 * cut to fit out_size. */
void cli_format_text(char *out, size_t out_size, const char *text);

/* "12/47" followed by ": <message>" when a message was reported, or "-"
 * when the job reported no progress. */
void cli_format_job_progress(char *out, size_t out_size, const jm_job_info *job);

/* Jobs of a batch that finished (completed, failed or cancelled), and that
 * as a whole percent of total (100 for an empty batch). */
uint64_t cli_batch_finished(const jm_batch_info *batch);
unsigned cli_batch_percent(const jm_batch_info *batch);

/* "3s ago", "2m ago", "1h ago", "4d ago" for now_us - then_us; "-" for 0. */
void cli_format_ago(char *out, size_t out_size, uint64_t then_us, uint64_t now_us);

/* A bar of width characters ("#" done, "." to go) in brackets, for done of
 * total; all dots for a total of 0. out holds at least width + 3 bytes. */
void cli_format_bar(char *out, size_t out_size, uint64_t done, uint64_t total, unsigned width);

/* The batch as an object: id, state, total, completed, failed, cancelled,
 * active, finished, percent, current_operation, errors [{job_id, error}],
 * started/finished (ISO-8601 or null) and their _us numbers. New reference
 * or NULL. */
json_t *cli_json_batch(const jm_batch_info *batch);

/* {"batches": [batch...]}. New reference or NULL. */
json_t *cli_json_batches(const jm_batch_info *batches, size_t count);

/* {"workers": [{id, host, pid, queues, concurrency, active, job_ids,
 * first_seen, last_seen, first_seen_us, last_seen_us, last_seen_ago_ms,
 * draining, state}...]}; now_us is the wall clock for the "ago". An
 * unseen worker (cli_worker_is_unseen) has host, pid, concurrency and the
 * first/last seen fields null: the broker does not know them. New
 * reference or NULL. */
json_t *cli_json_workers(const jm_worker_info *workers, size_t count, uint64_t now_us);

/* True for a worker the broker knows only from the leases its journal
 * replayed at start-up: the process has not been heard from since (no
 * host, pid or queues yet). If it does not come back within the broker's
 * dead-after window, its jobs are requeued and it leaves the list. */
bool cli_worker_is_unseen(const jm_worker_info *worker);

/* "unseen", "draining", "busy" or "idle". */
const char *cli_worker_state(const jm_worker_info *worker);

/* "batch  57\nstate  running\n..." aligned, one field per line, then the
 * errors one per line. */
void cli_print_batch(FILE *out, const jm_batch_info *batch);

/* "batch 57: 12/47 done, 1 failed, running: writing about/team": done
 * counts finished jobs (completed, failed, cancelled), failed counts failed
 * and cancelled ones; the current operation only while running. No
 * newline. */
void cli_format_batch_line(char *out, size_t out_size, const jm_batch_info *batch);

/* "job 42: active, attempt 1/3, 12/47: writing about/team" or, once
 * failed, "job 42: failed, attempt 3/3: <last error>". No newline. */
void cli_format_job_line(char *out, size_t out_size, const jm_job_info *job);

/* WORKER HOST PID QUEUES CONCURRENCY ACTIVE LAST-SEEN STATE, columns
 * sized to fit. */
void cli_print_workers(FILE *out, const jm_worker_info *workers, size_t count, uint64_t now_us);

#endif
