/* The HTTP server and the life of one call (see http_server.h and
 * http_call.h).
 *
 * NNG calls handler_cb once per request, with its headers read. One
 * handler at "/" takes every path and method, so that 404, 405 and 413
 * answer in JSON like every other error (NNG's own are HTML). The body is
 * read here, after its Content-Length passed HTTP_BODY_MAX; a refused body
 * is never read, so that reply closes the connection.
 *
 * Exactly one party acts on a call at a time: handler_cb, then the body
 * read's callback, then the core (until its reply callback), then the
 * handler's continuation, which replies and frees it. */
#include "http_server.h"

#include <stdarg.h>
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "dashboard_http.h"
#include "http_call.h"
#include "http_json.h"
#include "http_sse.h"
#include "message.h"
#include "tls.h"
#include "ha_gate.h"
#include "log.h"
#include "metrics.h"

struct http_server {
	nng_http_server *server;
	nng_http_handler *handler;
	struct core *core;
	struct journal *journal;
	struct http_sse *sse;
	struct auth_gate *auth; /* NULL: no --auth */
	nng_tls_config *tls;    /* HTTPS, or NULL */
	atomic_bool ready;
	_Atomic(struct ha_gate *) gate; /* --etcd only */
	uint32_t body_timeout_ms;       /* 0: none */
	char url[128];
};

void http_server_set_body_timeout(struct http_server *srv, uint32_t ms)
{
	srv->body_timeout_ms = ms;
}

struct auth_gate *http_server_auth(struct http_server *srv)
{
	return srv->auth;
}

struct core *http_server_core(struct http_server *srv)
{
	return srv->core;
}

struct journal *http_server_journal(struct http_server *srv)
{
	return srv->journal;
}

struct http_sse *http_server_sse(struct http_server *srv)
{
	return srv->sse;
}

void http_server_set_gate(struct http_server *srv, struct ha_gate *gate)
{
	atomic_store(&srv->gate, gate);
}

struct ha_gate *http_server_gate(struct http_server *srv)
{
	return atomic_load(&srv->gate);
}

bool http_server_is_ready(struct http_server *srv)
{
	return atomic_load(&srv->ready);
}

void http_server_set_ready(struct http_server *srv)
{
	atomic_store(&srv->ready, true);
}

const char *http_server_url(const struct http_server *srv)
{
	return srv->url;
}

/* ---- a call's life ------------------------------------------------------ */

static void call_free(struct http_call *call)
{
	proto_msg_fini(&call->req.msg);
	jm_buf_fini(&call->req.reply);
	jm_buf_fini(&call->text);
	for (uint32_t i = 0; i < call->keep_count; i++)
		free(call->keep[i]);
	free(call->keep);
	if (call->body_json)
		json_decref(call->body_json);
	/* Often freed from its own callback (the reply follows the body
	 * read): nng_aio_free would wait for that callback, so reap. */
	if (call->body_aio)
		nng_aio_reap(call->body_aio);
	free(call->body);
	free(call);
}

int http_call_keep(struct http_call *call, void *p)
{
	if (call->keep_count == call->keep_cap) {
		uint32_t cap = call->keep_cap ? call->keep_cap * 2 : 8;
		void **keep = realloc(call->keep, cap * sizeof *keep);
		if (keep == NULL) {
			free(p);
			return JM_ENOMEM;
		}
		call->keep = keep;
		call->keep_cap = cap;
	}
	call->keep[call->keep_count++] = p;
	return 0;
}

/* Reasons NNG 1.5.2's table lacks. */
static const char *reason_of(uint16_t status)
{
	switch (status) {
	case 202:
		return "Accepted";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	default:
		return "Status";
	}
}

void http_reply(struct http_call *call, uint16_t status, const char *type, const void *body,
                size_t len, const char *header_name, const char *header_value)
{
	nng_aio *aio = call->aio;
	nng_http_res *res = NULL;
	int rv = nng_http_res_alloc(&res);
	if (rv == 0)
		rv = nng_http_res_set_status(res, status);
	if (rv == 0 && strcmp(nng_http_res_get_reason(res), "Unknown HTTP Status") == 0)
		rv = nng_http_res_set_reason(res, reason_of(status));
	if (rv == 0 && type)
		rv = nng_http_res_set_header(res, "Content-Type", type);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Cache-Control", "no-store");
	if (rv == 0 && header_name)
		rv = nng_http_res_set_header(res, header_name, header_value);
	if (rv == 0)
		rv = nng_http_res_copy_data(res, body, len);
	metrics_count(METRIC_HTTP_REQUESTS, 1);
	call_free(call);
	if (rv != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv); /* NNG closes the connection */
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

void http_reply_json(struct http_call *call, uint16_t status, json_t *value)
{
	size_t len = 0;
	char *text = value ? http_json_dump(value, &len) : NULL;
	json_decref(value);
	if (text == NULL) {
		static const char oom[] =
		    "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"broker out of memory\"}}";
		http_reply(call, 503, "application/json", oom, sizeof oom - 1, NULL, NULL);
		return;
	}
	http_reply(call, status, "application/json", text, len, NULL, NULL);
	free(text);
}

static void reply_error_v(struct http_call *call, uint16_t status, const char *code,
                          const char *header_name, const char *header_value, const char *fmt,
                          va_list ap)
{
	char message[JM_ERR_MSG_MAX + 64];
	vsnprintf(message, sizeof message, fmt, ap);
	json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
	if (body == NULL) /* the message was not UTF-8 */
		body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
		                 "(the message was not valid UTF-8)");
	size_t len = 0;
	char *text = body ? http_json_dump(body, &len) : NULL;
	json_decref(body);
	http_reply(call, status, "application/json", text ? text : "{}", text ? len : 2,
	           header_name, header_value);
	free(text);
}

void http_reply_error(struct http_call *call, uint16_t status, const char *code, const char *fmt,
                      ...)
{
	/* A limit reached (429) or a broker that cannot serve now (503) says
	 * when to try again, as RFC 9110 asks. */
	bool retry = status == 429 || status == 503;
	va_list ap;
	va_start(ap, fmt);
	reply_error_v(call, status, code, retry ? "Retry-After" : NULL, retry ? "1" : NULL, fmt,
	              ap);
	va_end(ap);
}

static void reply_error_header(struct http_call *call, uint16_t status, const char *code,
                               const char *header_name, const char *header_value, const char *fmt,
                               ...) __attribute__((format(printf, 6, 7)));

static void reply_error_header(struct http_call *call, uint16_t status, const char *code,
                               const char *header_name, const char *header_value, const char *fmt,
                               ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply_error_v(call, status, code, header_name, header_value, fmt, ap);
	va_end(ap);
}

void http_reply_jm_error(struct http_call *call, int jm_code, const char *message)
{
	http_reply_error(call, http_status_of(jm_code), http_code_of(jm_code), "%s", message);
}

void http_call_hijacked(struct http_call *call)
{
	nng_aio *aio = call->aio;
	metrics_count(METRIC_HTTP_REQUESTS, 1);
	call_free(call);
	nng_aio_set_output(aio, 0, NULL);
	nng_aio_finish(aio, 0);
}

/* ---- the core bridge ---------------------------------------------------- */

static void core_reply_cb(struct request *req, int status)
{
	struct http_call *call =
	    (struct http_call *)((char *)req - offsetof(struct http_call, req));
	if (status != 0) {
		http_reply_error(call, 503, "shutting_down",
		                 "%s: the broker stopped before this request was made durable; "
		                 "retry against the restarted broker",
		                 call->what ? call->what : "request");
		return;
	}
	struct proto_msg reply;
	struct jm_err err = {0};
	if (proto_decode(req->reply.data, req->reply.len, &reply, &err) != 0) {
		jm_error("http: the core's reply did not decode: %s", jm_err_text(&err));
		http_reply_error(call, 503, "internal", "the broker failed to read its own reply");
		return;
	}
	if (reply.type == PROTO_ERROR) {
		char message[PROTO_ERROR_TEXT_MAX + 1];
		snprintf(message, sizeof message, "%.*s", (int)reply.u.error.message.len,
		         reply.u.error.message.len ? (const char *)reply.u.error.message.ptr : "");
		int code = reply.u.error.code;
		proto_msg_fini(&reply);
		http_reply_jm_error(call, code, message);
		return;
	}
	/* The continuation replies (and frees the call) or asks again. */
	call->on_core(call, &reply);
	proto_msg_fini(&reply);
}

void http_call_core(struct http_call *call, http_core_fn on_core)
{
	struct jm_err err = {0};
	if (proto_check(&call->req.msg, &err) != 0) {
		http_reply_jm_error(call, err.code, jm_err_text(&err));
		return;
	}
	call->on_core = on_core;
	call->req.on_reply = core_reply_cb;
	call->req.pipe_id = 0;
	jm_buf_reset(&call->req.reply);
	struct ha_gate *gate = http_server_gate(call->srv);
	struct core *core = gate ? ha_gate_core(gate) : call->srv->core;
	if (core == NULL) {
		char text[512] = "the broker is starting: retry in a moment";
		if (gate)
			ha_gate_refusal(gate, text, sizeof text);
		http_reply_jm_error(call, gate ? JM_ENOTLEADER : JM_ECLOSED, text);
		return;
	}
	core_handle(core, &call->req);
}

/* ---- query strings ------------------------------------------------------ */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes [p, end) into out; '+' is a space. */
static void url_decode(const char *p, const char *end, char *out, size_t out_size)
{
	size_t o = 0;
	while (p < end && o + 1 < out_size) {
		if (*p == '%' && end - p >= 3 && hex_value(p[1]) >= 0 && hex_value(p[2]) >= 0) {
			out[o++] = (char)(hex_value(p[1]) * 16 + hex_value(p[2]));
			p += 3;
		} else {
			out[o++] = *p == '+' ? ' ' : *p;
			p++;
		}
	}
	out[o] = '\0';
}

bool http_query_next(const struct http_call *call, const char *name, size_t *pos, char *out,
                     size_t out_size)
{
	const char *q = call->query;
	size_t len = strlen(q);
	size_t name_len = strlen(name);
	while (*pos < len) {
		const char *start = q + *pos;
		const char *amp = strchr(start, '&');
		const char *end = amp ? amp : q + len;
		*pos = (size_t)(end - q) + (amp ? 1 : 0);
		const char *eq = memchr(start, '=', (size_t)(end - start));
		const char *key_end = eq ? eq : end;
		if ((size_t)(key_end - start) == name_len && memcmp(start, name, name_len) == 0) {
			url_decode(eq ? eq + 1 : end, end, out, out_size);
			return true;
		}
	}
	return false;
}

bool http_query_get(const struct http_call *call, const char *name, char *out, size_t out_size)
{
	size_t pos = 0;
	return http_query_next(call, name, &pos, out, out_size);
}

bool http_queue_name_ok(struct http_call *call, const char *name)
{
	size_t len = strlen(name);
	if (proto_name_is_valid(name, len) && len <= PROTO_NAME_MAX)
		return true;
	http_reply_error(call, 400, "queue_name_invalid", "queue name \"%.80s\" is invalid: %s",
	                 name, PROTO_NAME_RULE);
	return false;
}

bool http_query_only(struct http_call *call, const char *const *allowed)
{
	const char *p = call->query;
	while (*p) {
		const char *end = p + strcspn(p, "&");
		size_t key_len = strcspn(p, "=&");
		bool known = false;
		for (int i = 0; allowed[i]; i++)
			if (strlen(allowed[i]) == key_len && memcmp(p, allowed[i], key_len) == 0)
				known = true;
		if (!known && key_len > 0) {
			char names[256] = "";
			for (int i = 0; allowed[i]; i++)
				snprintf(names + strlen(names), sizeof names - strlen(names),
				         "%s%s", i ? ", " : "", allowed[i]);
			http_reply_error(call, 400, "unknown_parameter",
			                 "unknown query parameter \"%.*s\": allowed are %s",
			                 (int)(key_len > 64 ? 64 : key_len), p,
			                 names[0] ? names : "none");
			return false;
		}
		p = *end ? end + 1 : end;
	}
	return true;
}

bool http_parse_id(const char *text, uint64_t *out)
{
	if (text == NULL || *text < '1' || *text > '9' || strlen(text) > 20)
		return false;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (*end != '\0' || v == UINT64_MAX)
		return false;
	*out = v;
	return true;
}

bool http_query_u64(struct http_call *call, const char *name, uint64_t min, uint64_t max,
                    uint64_t default_value, uint64_t *out)
{
	char text[32];
	*out = default_value;
	if (!http_query_get(call, name, text, sizeof text))
		return true;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || v < min || v > max) {
		http_reply_error(call, 400, "parameter_invalid",
		                 "query parameter %s=\"%s\" is invalid: use an integer %llu..%llu",
		                 name, text, (unsigned long long)min, (unsigned long long)max);
		return false;
	}
	*out = v;
	return true;
}

/* ---- routing ------------------------------------------------------------ */

static bool is(const struct http_call *call, uint32_t i, const char *text)
{
	return i < call->segments_count && strcmp(call->segments[i], text) == 0;
}

/* Answers 405 naming what the path allows. */
static void method_not_allowed(struct http_call *call, const char *allow)
{
	reply_error_header(call, 405, "method_not_allowed", "Allow", allow,
	                   "%s is not allowed on %s: use %s", call->method, call->path, allow);
}

/* The dashboard's page and its files (dashboard_http.h), sent as built
 * there (its own headers: ETag, CSP). False, with nothing answered, when
 * the path is not one of them. */
static bool dashboard(struct http_call *call)
{
	nng_http_res *res;
	const char *etag = nng_http_req_get_header(call->http_req, "If-None-Match");
	int rc = dashboard_http_response(call->path, etag, &res);
	if (rc == JM_ENOTFOUND)
		return false;
	nng_aio *aio = call->aio;
	metrics_count(METRIC_HTTP_REQUESTS, 1);
	call_free(call);
	if (rc != 0) {
		nng_aio_finish(aio, NNG_ENOMEM); /* NNG closes the connection */
		return true;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
	return true;
}

static void route(struct http_call *call)
{
	const char *m = call->method;
	bool get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
	uint32_t n = call->segments_count;
#define ONLY(ok, allow, action)                                                                    \
	do {                                                                                       \
		if (ok)                                                                            \
			action;                                                                    \
		else                                                                               \
			method_not_allowed(call, allow);                                           \
		return;                                                                            \
	} while (0)
	if (n == 1 && is(call, 0, "metrics"))
		ONLY(get, "GET", http_api_metrics(call));
	if (n == 1 && is(call, 0, "healthz"))
		ONLY(get, "GET", http_api_healthz(call));
	if (n == 1 && is(call, 0, "readyz"))
		ONLY(get, "GET", http_api_readyz(call));
	if (n >= 2 && is(call, 0, "v1")) {
		if (n == 2 && is(call, 1, "openapi.json"))
			ONLY(get, "GET", http_api_openapi(call));
		if (n == 2 && is(call, 1, "events"))
			ONLY(get, "GET", http_api_events(call));
		if (n == 2 && is(call, 1, "queues"))
			ONLY(get, "GET", http_api_queues(call));
		if (n == 2 && is(call, 1, "workers"))
			ONLY(get, "GET", http_api_workers(call));
		if (n == 4 && is(call, 1, "queues") && is(call, 3, "jobs"))
			ONLY(post, "POST", http_api_submit(call));
		if (n == 4 && is(call, 1, "queues") && is(call, 3, "settings"))
			ONLY(get || strcmp(m, "PATCH") == 0, "GET, PATCH",
			     http_api_queue_settings(call, "settings"));
		if (n == 4 && is(call, 1, "queues") &&
		    (is(call, 3, "pause") || is(call, 3, "resume")))
			ONLY(post, "POST", http_api_queue_settings(call, call->segments[3]));
		if (n == 4 && is(call, 1, "queues") && is(call, 3, "dead"))
			ONLY(get, "GET", http_api_dead(call));
		if (n == 5 && is(call, 1, "queues") && is(call, 3, "dead") && is(call, 4, "retry"))
			ONLY(post, "POST", http_api_retry_dead(call));
		if (n == 2 && is(call, 1, "whoami"))
			ONLY(get, "GET", http_api_whoami(call));
		if (n == 2 && is(call, 1, "jobs"))
			ONLY(get, "GET", http_api_jobs(call));
		if (n == 3 && is(call, 1, "jobs"))
			ONLY(get, "GET", http_api_job(call, false));
		if (n == 4 && is(call, 1, "jobs") && is(call, 3, "result"))
			ONLY(get, "GET", http_api_job(call, true));
		if (n == 4 && is(call, 1, "jobs") && is(call, 3, "cancel"))
			ONLY(post, "POST", http_api_cancel(call));
		if (n == 4 && is(call, 1, "jobs") && is(call, 3, "retry"))
			ONLY(post, "POST", http_api_retry(call));
		if (n == 2 && is(call, 1, "batches"))
			ONLY(get || post, "GET, POST",
			     get ? http_api_batches(call) : http_api_batch_submit(call));
		if (n == 3 && is(call, 1, "batches"))
			ONLY(get, "GET", http_api_batch(call));
		if (n == 2 && is(call, 1, "schedules"))
			ONLY(get, "GET", http_api_schedules(call));
		if (n == 3 && is(call, 1, "schedules"))
			ONLY(get || strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0,
			     "GET, PUT, DELETE", http_api_schedules(call));
	}
#undef ONLY
	if (get && dashboard(call))
		return;
	http_reply_error(call, 404, "not_found",
	                 "no such path %s: see /v1/openapi.json for the API", call->path);
}

/* Splits call->path (a copy of the URI's path) into segments in place. */
static bool split_path(struct http_call *call, char *segs, size_t segs_size)
{
	snprintf(segs, segs_size, "%s", call->path);
	call->segments_count = 0;
	char *save = NULL;
	for (char *s = strtok_r(segs, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (call->segments_count == HTTP_SEGMENTS_MAX)
			return false;
		url_decode(s, s + strlen(s), s, strlen(s) + 1); /* shrinks in place */
		call->segments[call->segments_count++] = s;
	}
	return true;
}

static void dispatch(struct http_call *call)
{
	/* segments point into storage kept with the call. */
	char *segs = malloc(HTTP_PATH_MAX);
	if (segs == NULL || http_call_keep(call, segs) != 0) {
		http_reply_error(call, 503, "out_of_memory", "broker out of memory");
		return;
	}
	if (!split_path(call, segs, HTTP_PATH_MAX)) {
		http_reply_error(call, 404, "not_found", "no such path %s", call->path);
		return;
	}
	if (http_auth_admit(call))
		route(call);
}

static void body_read_cb(void *arg)
{
	struct http_call *call = arg;
	int rv = nng_aio_result(call->body_aio);
	if (rv != 0) {
		/* The client went away mid-body, or stalled past the body
		 * timeout: NNG closes the connection, and the buffer is freed. */
		nng_aio *aio = call->aio;
		call_free(call);
		nng_aio_finish(aio, rv);
		return;
	}
	dispatch(call);
}

static void handler_cb(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	nng_http_conn *conn = nng_aio_get_input(aio, 2);
	struct http_call *call = calloc(1, sizeof *call);
	if (call == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	call->srv = nng_http_handler_get_data(h);
	call->aio = aio;
	call->http_req = req;
	call->conn = conn;
	call->method = nng_http_req_get_method(req);
	jm_buf_init(&call->req.reply);
	jm_buf_init(&call->text);
	const char *uri = nng_http_req_get_uri(req);
	size_t path_len = strcspn(uri, "?");
	if (path_len >= sizeof call->path) {
		call->query = "";
		reply_error_header(call, 414, "uri_too_long", NULL, NULL,
		                   "the request path is %zu bytes: at most %zu allowed", path_len,
		                   sizeof call->path - 1);
		return;
	}
	memcpy(call->path, uri, path_len);
	call->path[path_len] = '\0';
	call->query = uri[path_len] == '?' ? uri + path_len + 1 : "";

	if (nng_http_req_get_header(req, "Transfer-Encoding") != NULL) {
		reply_error_header(call, 411, "length_required", "Connection", "close",
		                   "chunked request bodies are not accepted: send Content-Length");
		return;
	}
	const char *cl = nng_http_req_get_header(req, "Content-Length");
	unsigned long long body_len = 0;
	if (cl) {
		char *end;
		body_len = strtoull(cl, &end, 10);
		if (*cl < '0' || *cl > '9' || *end != '\0') {
			reply_error_header(call, 400, "bad_content_length", "Connection", "close",
			                   "Content-Length \"%.32s\" is not a number of bytes", cl);
			return;
		}
	}
	if (body_len > HTTP_BODY_MAX) {
		reply_error_header(call, 413, "body_too_big", "Connection", "close",
		                   "request body is %llu bytes: at most %u allowed (send several "
		                   "requests)",
		                   body_len, HTTP_BODY_MAX);
		return;
	}
	if (body_len == 0) {
		dispatch(call);
		return;
	}
	call->body = malloc(body_len + 1);
	if (call->body == NULL || nng_aio_alloc(&call->body_aio, body_read_cb, call) != 0) {
		reply_error_header(call, 503, "out_of_memory", "Connection", "close",
		                   "broker out of memory for a %llu-byte body", body_len);
		return;
	}
	call->body_len = body_len;
	call->body[body_len] = '\0';
	nng_iov iov = {.iov_buf = call->body, .iov_len = body_len};
	nng_aio_set_iov(call->body_aio, 1, &iov);
	/* A client that announces a body and stalls would hold its buffer
	 * (up to HTTP_BODY_MAX) for good. */
	if (call->srv->body_timeout_ms)
		nng_aio_set_timeout(call->body_aio, (nng_duration)call->srv->body_timeout_ms);
	nng_http_conn_read_all(conn, call->body_aio);
}

/* ---- lifecycle ----------------------------------------------------------- */

int http_server_open(struct http_server **out, const char *addr, struct core *core,
                     struct journal *journal, struct events *ev, struct jm_err *err)
{
	return http_server_open_secure(out, addr, core, journal, ev, NULL, NULL, err);
}

int http_server_open_secure(struct http_server **out, const char *addr, struct core *core,
                            struct journal *journal, struct events *ev, struct auth_gate *auth,
                            const struct jm_tls *tls, struct jm_err *err)
{
	struct http_server *srv = calloc(1, sizeof *srv);
	if (srv == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	srv->core = core;
	srv->journal = journal;
	srv->auth = auth;
	const char *scheme = tls ? "https" : "http";
	char url_text[300];
	snprintf(url_text, sizeof url_text, "%s://%s", scheme, addr);
	if (tls) {
		int rc = jm_tls_config_server(&srv->tls, url_text, tls, err);
		if (rc != 0) {
			free(srv);
			return rc;
		}
	}
	nng_url *url = NULL;
	int rv = nng_url_parse(&url, url_text);
	if (rv != 0) {
		free(srv);
		return jm_err_set(err, JM_EINVAL, "--http \"%s\": %s: write HOST:PORT or off", addr,
		                  nng_strerror(rv));
	}
	rv = http_sse_open(&srv->sse, ev, err);
	if (rv != 0) {
		nng_url_free(url);
		free(srv);
		return rv;
	}
	rv = nng_http_server_hold(&srv->server, url);
	if (rv == 0 && srv->tls)
		rv = nng_http_server_set_tls(srv->server, srv->tls);
	if (rv == 0)
		rv = nng_http_handler_alloc(&srv->handler, "/", handler_cb);
	if (rv == 0) {
		nng_http_handler_set_method(srv->handler, NULL);
		nng_http_handler_set_tree(srv->handler);
		nng_http_handler_collect_body(srv->handler, false, 0);
		nng_http_handler_set_data(srv->handler, srv, NULL);
		rv = nng_http_server_add_handler(srv->server, srv->handler);
		if (rv != 0)
			nng_http_handler_free(srv->handler);
	}
	if (rv == 0)
		rv = nng_http_server_start(srv->server);
	nng_sockaddr sa;
	if (rv == 0)
		rv = nng_http_server_get_addr(srv->server, &sa);
	if (rv != 0) {
		jm_err_set(err, JM_ETRANSPORT, "http: listening on %s: %s", addr, nng_strerror(rv));
		if (srv->server)
			nng_http_server_release(srv->server);
		http_sse_close(srv->sse);
		nng_url_free(url);
		if (srv->tls)
			nng_tls_config_free(srv->tls);
		free(srv);
		return JM_ETRANSPORT;
	}
	int port = sa.s_family == NNG_AF_INET    ? ntohs(sa.s_in.sa_port)
	           : sa.s_family == NNG_AF_INET6 ? ntohs(sa.s_in6.sa_port)
	                                         : 0;
	snprintf(srv->url, sizeof srv->url, "%s://%s:%d", scheme, url->u_hostname, port);
	nng_url_free(url);
	*out = srv;
	return 0;
}

void http_server_close(struct http_server *srv)
{
	if (srv == NULL)
		return;
	/* Hijacked streams first: the server's stop does not know them. */
	http_sse_close(srv->sse);
	nng_http_server_stop(srv->server);
	nng_http_server_release(srv->server);
	if (srv->tls)
		nng_tls_config_free(srv->tls);
	free(srv);
}
