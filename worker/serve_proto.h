/* The --serve line protocol: what jobmesh-worker and a long-lived handler
 * process say to each other, one JSON object per line (docs/serve-protocol.md
 * is the reference a handler author reads).
 *
 * To the handler (its stdin):
 *   {"op":"job","id":"42","type":"email.parse","queue":"emails","attempt":1,
 *    "payload":"...","deadline":1764500000000,"timeout_ms":30000}
 *     payload is the job's bytes as text; a payload that is not UTF-8 comes
 *     as "payload_base64" instead. deadline is Unix time in ms (null: none).
 *   {"op":"jobs","jobs":[["42","email.parse","emails",1,"...",1764500000000,
 *    30000],...]}   the batched form, to a handler whose hello asked for it:
 *     each job an array of the job line's values in its order (id, type,
 *     queue, attempt, payload, deadline, timeout_ms); a payload that is not
 *     UTF-8 is null there and its base64 comes as an eighth value.
 *   {"op":"cancel","id":"42"}   the job is being stopped (the process is
 *                               killed right after; it need not answer)
 *   {"op":"stop"}               no more jobs: exit (stdin closes too)
 * From the handler (its stdout):
 *   {"op":"hello","pipeline":32,"batch":true}   optional, first: it takes
 *     up to 32 jobs at a time and answers them in any order; "batch": send
 *     them in "jobs" lines
 *   {"op":"progress","id":"42","done":1,"total":3,"message":"parsing"}
 *   {"op":"result","id":"42","result":"text"}
 *   {"op":"error","id":"42","message":"why","permanent":false}
 *   {"op":"results","ids":["42","43"],"results":["text",""]}   several
 *     results in one line ("results" optional: all "")
 *
 * This file only encodes and decodes; serve.c moves the lines. */
#ifndef JM_WORKER_SERVE_PROTO_H
#define JM_WORKER_SERVE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest line a handler may write: a 1 MiB result escaped (\u00XX is six
 * bytes a byte) plus room for the keys. */
#define SERVE_LINE_MAX (7u << 20)
/* Room for a decoded message or error text. */
#define SERVE_TEXT_MAX 1024

struct serve_job_line {
	uint64_t job_id;
	const char *type;
	const char *queue;
	uint32_t attempt;
	const void *payload;
	size_t payload_len;
	uint64_t deadline_wall_ms; /* 0: none */
	uint64_t timeout_ms;       /* 0: none */
};

enum serve_job_form {
	SERVE_JOB_LINE, /* {"op":"job",...}\n */
	SERVE_JOB_ITEM, /* ["42",...]: one element of a "jobs" line's array */
};

/* A "jobs" line is SERVE_JOBS_OPEN, items joined by ",", SERVE_JOBS_CLOSE. */
#define SERVE_JOBS_OPEN "{\"op\":\"jobs\",\"jobs\":["
#define SERVE_JOBS_CLOSE "]}\n"

/* Bytes serve_proto_job_put may write for job, in either form. */
size_t serve_proto_job_room(const struct serve_job_line *job);
/* Writes job in form to line (serve_proto_job_room bytes of room); returns
 * the length written. */
size_t serve_proto_job_put(const struct serve_job_line *job, enum serve_job_form form, char *line);
/* The same into a malloc'd buffer the caller frees. NULL when out of memory.
 * Lines (not items) end with their newline. */
char *serve_proto_job(const struct serve_job_line *job, enum serve_job_form form, size_t *len);
char *serve_proto_cancel(uint64_t job_id, size_t *len);
char *serve_proto_stop(size_t *len);

enum serve_reply_op {
	SERVE_REPLY_HELLO, /* {"op":"hello","pipeline":N}: takes N jobs at a time */
	SERVE_REPLY_PROGRESS,
	SERVE_REPLY_RESULT,
	SERVE_REPLY_ERROR,
	SERVE_REPLY_RESULTS, /* {"op":"results","ids":[...],"results":[...]} */
};

/* One answer of a "results" line. */
struct serve_result_item {
	uint64_t job_id;
	char *result; /* NUL-terminated; NULL: "" */
	size_t result_len;
};

/* Most answers one "results" line may carry (more than any process holds:
 * --serve-pipeline is capped far below). */
#define SERVE_RESULTS_MAX 4096

/* One decoded line from the handler. result points into the reply (owned
 * by it; serve_reply_fini frees). */
struct serve_reply {
	enum serve_reply_op op;
	uint64_t job_id;
	uint64_t done, total;         /* progress */
	uint64_t pipeline;            /* hello: jobs it takes at a time, >= 1 */
	bool batch;                   /* hello: wants "jobs" lines */
	char message[SERVE_TEXT_MAX]; /* progress message or error text */
	bool permanent;               /* error */
	char *result;                 /* result bytes (UTF-8 text), NUL-terminated */
	size_t result_len;
	struct serve_result_item *items; /* results: malloc'd, items_count of them */
	size_t items_count;
};

/* Decodes len bytes (one line without its newline). 0 with *out filled,
 * or -1 with why[] saying what was wrong (the line is then ignored). */
int serve_proto_decode(const char *line, size_t len, struct serve_reply *out, char *why,
                       size_t why_size);
/* The same with jansson only: what serve_proto_decode does with a line
 * serve_scan.h leaves (and what test_serve_proto compares it with). */
int serve_proto_decode_json(const char *line, size_t len, struct serve_reply *out, char *why,
                            size_t why_size);
void serve_reply_fini(struct serve_reply *reply);

#endif
