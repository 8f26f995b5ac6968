/* The --serve line protocol: what jobmesh-worker and a long-lived handler
 * process say to each other, one JSON object per line (docs/serve-protocol.md
 * is the reference a handler author reads).
 *
 * To the handler (its stdin):
 *   {"op":"job","id":"42","type":"email.parse","queue":"emails","attempt":1,
 *    "payload":"...","deadline":1764500000000,"timeout_ms":30000}
 *     payload is the job's bytes as text; a payload that is not UTF-8 comes
 *     as "payload_base64" instead. deadline is Unix time in ms (null: none).
 *   {"op":"cancel","id":"42"}   the job is being stopped (the process is
 *                               killed right after; it need not answer)
 *   {"op":"stop"}               no more jobs: exit (stdin closes too)
 * From the handler (its stdout):
 *   {"op":"hello","pipeline":32}   optional, first: it takes up to 32 jobs
 *                                  at a time and answers them in any order
 *   {"op":"progress","id":"42","done":1,"total":3,"message":"parsing"}
 *   {"op":"result","id":"42","result":"text"}
 *   {"op":"error","id":"42","message":"why","permanent":false}
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

/* Encodes a line with its trailing newline into a malloc'd buffer the
 * caller frees. NULL when out of memory. */
char *serve_proto_job(const struct serve_job_line *job, size_t *len);
char *serve_proto_cancel(uint64_t job_id, size_t *len);
char *serve_proto_stop(size_t *len);

enum serve_reply_op {
	SERVE_REPLY_HELLO, /* {"op":"hello","pipeline":N}: takes N jobs at a time */
	SERVE_REPLY_PROGRESS,
	SERVE_REPLY_RESULT,
	SERVE_REPLY_ERROR,
};

/* One decoded line from the handler. result points into the reply (owned
 * by it; serve_reply_fini frees). */
struct serve_reply {
	enum serve_reply_op op;
	uint64_t job_id;
	uint64_t done, total;         /* progress */
	uint64_t pipeline;            /* hello: jobs it takes at a time, >= 1 */
	char message[SERVE_TEXT_MAX]; /* progress message or error text */
	bool permanent;               /* error */
	char *result;                 /* result bytes (UTF-8 text), NUL-terminated */
	size_t result_len;
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
