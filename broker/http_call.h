/* One HTTP request in flight, shared by the HTTP modules (http_server.c
 * owns its life; http_api_*.c, http_sse.c and http_metrics.c answer it).
 *
 * Life: http_server.c allocates a call when its connection (http_conn.c)
 * has read a request whole, head and body, routes it to one handler
 * (http_route.c), and frees it when the handler answers through
 * http_reply* (exactly once) or takes the connection as a stream. A handler that
 * needs the core fills call->req.msg and calls http_call_core: the core's
 * reply comes back decoded to the handler's continuation, on whichever
 * thread made it durable — so a 202 for a submit leaves only after the
 * journal synced the job, as an NNG reply does.
 *
 * Ownership: strings in call->req.msg borrow from call (its body, its
 * query, or allocations registered with http_call_keep), all freed with
 * the call. */
#ifndef JM_BROKER_HTTP_CALL_H
#define JM_BROKER_HTTP_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "core.h"
#include "http_parse.h"
#include "message.h"

#define HTTP_PATH_MAX 512
#define HTTP_SEGMENTS_MAX 6
#define HTTP_WAIT_MAX_S 60

struct http_server;
struct http_call;
struct http_conn;

/* Continuation after a core request: reply is the decoded reply (never an
 * ERROR: those are answered by http_call_core itself). */
typedef void (*http_core_fn)(struct http_call *call, const struct proto_msg *reply);

struct http_call {
	struct http_server *srv;
	struct http_conn *conn;       /* answered through it */
	const struct http_head *head; /* the conn's, until the reply */
	const char *method;
	char path[HTTP_PATH_MAX];
	const char *query; /* after '?', or "" */
	const char *segments[HTTP_SEGMENTS_MAX];
	uint32_t segments_count;

	uint8_t *body; /* NUL-terminated at body_len; NULL when empty */
	size_t body_len;

	struct request req; /* to the core; req.identity = &identity with --auth */
	struct auth_identity identity;
	http_core_fn on_core;
	const char *what; /* names the request in errors: "submit" */
	void **keep;      /* malloc'd blocks freed with the call */
	uint32_t keep_count;
	uint32_t keep_cap;
	json_t *body_json;  /* the parsed body, decref'd with the call */
	struct jm_buf text; /* a reply built across core round trips */

	/* Handler state carried across core round trips. */
	uint64_t job_id;
	uint64_t deadline_us; /* ?wait: answer by then */
	bool with_result;
	uint32_t limit;
};

/* The server parts the handlers need. */
struct core *http_server_core(struct http_server *srv);
struct auth_gate *http_server_auth(struct http_server *srv); /* NULL: no --auth */
/* http_auth.c: with --auth, the call's token is checked and its identity
 * set on call->req; false when the call was answered (401 or 403). */
bool http_auth_admit(struct http_call *call);
struct journal *http_server_journal(struct http_server *srv);
struct http_sse *http_server_sse(struct http_server *srv);
bool http_server_is_ready(struct http_server *srv);
/* --etcd: the HA gate (NULL in single-node mode). */
struct ha_gate *http_server_gate(struct http_server *srv);
/* True, with the call answered 503 not_leader naming the leader, when this
 * broker is an HA standby (it has no core to read or publish from). */
bool http_refuse_on_standby(struct http_call *call);

/* The value of request header name (any case), or NULL. */
const char *http_call_header(const struct http_call *call, const char *name);

/* Registers p (malloc'd) to be freed with call; JM_ENOMEM (p is freed
 * then) when out of memory. */
int http_call_keep(struct http_call *call, void *p);

/* Sends call->req to the core; on reply runs on_core or answers the error.
 * what names the request in logs. */
void http_call_core(struct http_call *call, http_core_fn on_core);

/* Answers with status and body (copied), Content-Type type, and one extra
 * header (name NULL for none). Frees the call. */
void http_reply(struct http_call *call, uint16_t status, const char *type, const void *body,
                size_t len, const char *header_name, const char *header_value);
/* Answers with status, fields (count name/value pairs, Content-Type among
 * them) and body (copied); close ends the connection after. Frees the
 * call. */
void http_reply_fields(struct http_call *call, uint16_t status, const struct http_header *fields,
                       uint32_t fields_count, const void *body, size_t len, bool close);
/* Answers with the JSON of value (stolen: decref'd here). */
void http_reply_json(struct http_call *call, uint16_t status, json_t *value);
/* Answers {"error": {"code": code, "message": message}}. */
void http_reply_error(struct http_call *call, uint16_t status, const char *code, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
/* As http_reply_error, with one extra header (name NULL for none;
 * "Connection: close" closes the connection after the reply). */
void http_reply_error_header(struct http_call *call, uint16_t status, const char *code,
                             const char *header_name, const char *header_value, const char *fmt,
                             ...) __attribute__((format(printf, 6, 7)));
/* An ERROR from the core (or a proto_check failure): status and code from
 * the JM_E code; message as given. */
void http_reply_jm_error(struct http_call *call, int jm_code, const char *message);

/* The call's connection was taken over (SSE: http_conn_stream_start):
 * frees the call without a reply, not the connection. */
void http_call_hijacked(struct http_call *call);

/* Routes the call (http_route.c): splits its path, checks its token, and
 * hands it to the handler of its path and method. */
void http_route(struct http_call *call);
/* Percent-decodes [p, end) into out (NUL-terminated); '+' is a space. */
void http_url_decode(const char *p, const char *end, char *out, size_t out_size);

/* Query parameter name: the next occurrence after *pos (start with 0),
 * percent-decoded into out (NUL-terminated). True when found. */
bool http_query_next(const struct http_call *call, const char *name, size_t *pos, char *out,
                     size_t out_size);
/* The first occurrence, or false. */
bool http_query_get(const struct http_call *call, const char *name, char *out, size_t out_size);
/* Refuses (400 unknown_parameter) any query parameter not in allowed
 * (NULL-terminated). Returns false after replying. */
bool http_query_only(struct http_call *call, const char *const *allowed);
/* True when name is a valid queue name; else replies 400
 * queue_name_invalid naming it and the rule, and returns false. */
bool http_queue_name_ok(struct http_call *call, const char *name);
/* Parses a decimal id ("42", 1..2^64-1); false when it is not one. */
bool http_parse_id(const char *text, uint64_t *out);
/* Parses query parameter name as an unsigned integer in min..max (default
 * when absent). False after replying 400 when it is malformed. */
bool http_query_u64(struct http_call *call, const char *name, uint64_t min, uint64_t max,
                    uint64_t default_value, uint64_t *out);

/* Routes, one per module. Each answers the call. */
void http_api_submit(struct http_call *call);                /* POST /v1/queues/{q}/jobs */
void http_api_job(struct http_call *call, bool with_result); /* GET /v1/jobs/{id}[/result] */
void http_api_jobs(struct http_call *call);                  /* GET /v1/jobs */
void http_api_cancel(struct http_call *call);                /* POST /v1/jobs/{id}/cancel */
void http_api_retry(struct http_call *call);                 /* POST /v1/jobs/{id}/retry */
void http_api_retry_dead(struct http_call *call);            /* POST /v1/queues/{q}/dead/retry */
void http_api_remove_dead(struct http_call *call);           /* DELETE /v1/queues/{q}/dead[/{id}] */
void http_api_whoami(struct http_call *call);       /* GET /v1/whoami (http_api_whoami.c) */
void http_api_batch_submit(struct http_call *call); /* POST /v1/batches */
void http_api_batch(struct http_call *call);        /* GET /v1/batches/{id} */
void http_api_batches(struct http_call *call);      /* GET /v1/batches */
void http_api_queues(struct http_call *call);       /* GET /v1/queues */
void http_api_workers(struct http_call *call);      /* GET /v1/workers */
void http_api_dead(struct http_call *call);         /* GET /v1/queues/{q}/dead */
void http_api_events(struct http_call *call);       /* GET /v1/events (http_sse.c) */
void http_api_metrics(struct http_call *call);      /* GET /metrics */
void http_api_healthz(struct http_call *call);
void http_api_readyz(struct http_call *call);
void http_api_openapi(struct http_call *call); /* GET /v1/openapi.json */
/* GET /v1/schedules, GET/PUT/DELETE /v1/schedules/{name} */
void http_api_schedules(struct http_call *call);
/* GET/PATCH /v1/queues/{q}/settings, POST /v1/queues/{q}/pause|resume
 * (action: the last segment). */
void http_api_queue_settings(struct http_call *call, const char *action);

#endif
