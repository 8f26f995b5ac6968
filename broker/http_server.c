/* The HTTP server and the life of one call (see http_server.h and
 * http_call.h).
 *
 * The connections are the broker's own (http_listener.c accepts and caps
 * them, http_conn.c reads each request whole: head, then a Content-Length
 * body, bounded in size and time). Here a whole request becomes a call,
 * is routed (http_route.c) and answered through its connection.
 *
 * Exactly one party acts on a call at a time: request_cb, then the core
 * (until its reply callback), then the handler's continuation, which
 * replies and frees it. */
#include "http_server.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "http_call.h"
#include "http_conn.h"
#include "http_json.h"
#include "http_listener.h"
#include "http_sse.h"
#include "message.h"
#include "tls.h"
#include "ha_gate.h"
#include "log.h"
#include "metrics.h"

struct http_server {
	struct http_listener *listener;
	struct http_conn_config conn_cfg;
	struct core *core;
	struct journal *journal;
	struct http_sse *sse;
	struct auth_gate *auth; /* NULL: no --auth */
	nng_tls_config *tls;    /* HTTPS, or NULL */
	atomic_bool ready;
	_Atomic(struct ha_gate *) gate; /* --etcd only */
	char url[128];
};

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

uint32_t http_server_connections(struct http_server *srv)
{
	return http_listener_connections(srv->listener);
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

const char *http_call_header(const struct http_call *call, const char *name)
{
	return http_head_header(call->head, name);
}

void http_reply_fields(struct http_call *call, uint16_t status, const struct http_header *fields,
                       uint32_t fields_count, const void *body, size_t len, bool close)
{
	struct http_conn *conn = call->conn;
	metrics_count(METRIC_HTTP_REQUESTS, 1);
	/* The connection copies body; the call (which may own it) goes after. */
	http_conn_reply(conn, status, fields, fields_count, body, len, close);
	call_free(call);
}

void http_reply(struct http_call *call, uint16_t status, const char *type, const void *body,
                size_t len, const char *header_name, const char *header_value)
{
	struct http_header fields[3];
	uint32_t count = 0;
	bool close = false;
	if (type)
		fields[count++] = (struct http_header){"Content-Type", type};
	fields[count++] = (struct http_header){"Cache-Control", "no-store"};
	if (header_name && strcasecmp(header_name, "Connection") == 0 &&
	    strcasecmp(header_value, "close") == 0)
		close = true; /* the connection says it */
	else if (header_name)
		fields[count++] = (struct http_header){header_name, header_value};
	http_reply_fields(call, status, fields, count, body, len, close);
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

/* A standby's refusal names the leader in fields too, so HTTP clients
 * need not parse the message: "leader" (its node name), "leader_url" (its
 * NNG client URL) and "leader_http" (its HTTP base URL, which the HTTP
 * SDKs and the dashboard follow); absent while no other broker leads. */
static void add_leader_fields(struct http_call *call, json_t *error)
{
	struct ha_gate *gate = http_server_gate(call->srv);
	if (gate == NULL || error == NULL)
		return;
	char name[HA_GATE_TEXT_MAX], url[HA_GATE_TEXT_MAX], http[HA_GATE_TEXT_MAX];
	ha_gate_leader(gate, name, url, http, HA_GATE_TEXT_MAX);
	if (name[0] != '\0')
		json_object_set_new(error, "leader", json_string(name));
	if (url[0] != '\0')
		json_object_set_new(error, "leader_url", json_string(url));
	if (http[0] != '\0')
		json_object_set_new(error, "leader_http", json_string(http));
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
	if (body != NULL && strcmp(code, "not_leader") == 0)
		add_leader_fields(call, json_object_get(body, "error"));
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

void http_reply_error_header(struct http_call *call, uint16_t status, const char *code,
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
	metrics_count(METRIC_HTTP_REQUESTS, 1);
	call_free(call);
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

bool http_refuse_on_standby(struct http_call *call)
{
	struct ha_gate *gate = http_server_gate(call->srv);
	if (gate == NULL || ha_gate_core(gate) != NULL)
		return false;
	char text[512];
	ha_gate_refusal(gate, text, sizeof text);
	http_reply_error(call, 503, "not_leader", "%s", text);
	return true;
}

/* ---- requests from the connections ---------------------------------------- */

static void request_cb(void *arg, struct http_conn *conn, const struct http_head *head,
                       uint8_t *body, size_t body_len)
{
	struct http_server *srv = arg;
	struct http_call *call = calloc(1, sizeof *call);
	if (call == NULL) {
		free(body);
		static const char oom[] =
		    "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"broker out of memory\"}}";
		struct http_header fields[] = {{"Content-Type", "application/json"},
		                               {"Retry-After", "1"}};
		http_conn_reply(conn, 503, fields, 2, oom, sizeof oom - 1, true);
		return;
	}
	call->srv = srv;
	call->conn = conn;
	call->head = head;
	call->method = head->method;
	call->body = body;
	call->body_len = body_len;
	jm_buf_init(&call->req.reply);
	jm_buf_init(&call->text);
	const char *uri = head->target;
	size_t path_len = strcspn(uri, "?");
	if (path_len >= sizeof call->path) {
		call->query = "";
		http_reply_error(call, 414, "uri_too_long",
		                 "the request path is %zu bytes: at most %zu allowed", path_len,
		                 sizeof call->path - 1);
		return;
	}
	memcpy(call->path, uri, path_len);
	call->path[path_len] = '\0';
	call->query = uri[path_len] == '?' ? uri + path_len + 1 : "";
	http_route(call);
}

/* ---- lifecycle ----------------------------------------------------------- */

void http_server_limits_default(struct http_server_limits *limits)
{
	*limits = (struct http_server_limits){
	    .max_connections = HTTP_MAX_CONNECTIONS_DEFAULT,
	    .header_timeout_ms = HTTP_HEADER_TIMEOUT_MS_DEFAULT,
	    .max_header_bytes = HTTP_MAX_HEADER_BYTES_DEFAULT,
	    .idle_ms = 60000,
	    .body_timeout_ms = 60000,
	};
}

int http_server_open(struct http_server **out, const char *addr, struct core *core,
                     struct journal *journal, struct events *ev, struct jm_err *err)
{
	return http_server_open_secure(out, addr, core, journal, ev, NULL, NULL, NULL, err);
}

int http_server_open_secure(struct http_server **out, const char *addr, struct core *core,
                            struct journal *journal, struct events *ev, struct auth_gate *auth,
                            const struct jm_tls *tls, const struct http_server_limits *limits,
                            struct jm_err *err)
{
	struct http_server_limits defaults;
	if (limits == NULL) {
		http_server_limits_default(&defaults);
		limits = &defaults;
	}
	struct http_server *srv = calloc(1, sizeof *srv);
	if (srv == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	srv->core = core;
	srv->journal = journal;
	srv->auth = auth;
	srv->conn_cfg = (struct http_conn_config){
	    .header_timeout_ms = limits->header_timeout_ms,
	    .idle_ms = limits->idle_ms,
	    .body_timeout_ms = limits->body_timeout_ms,
	    .head_max = limits->max_header_bytes,
	    .body_max = HTTP_BODY_MAX,
	    .on_request = request_cb,
	    .arg = srv,
	};
	const char *scheme = tls ? "https" : "http";
	char url_text[300];
	snprintf(url_text, sizeof url_text, "%s://%s", scheme, addr);
	nng_url *url = NULL;
	int rv = nng_url_parse(&url, url_text);
	if (rv != 0) {
		free(srv);
		return jm_err_set(err, JM_EINVAL, "--http \"%s\": %s: write HOST:PORT or off", addr,
		                  nng_strerror(rv));
	}
	if (tls) {
		int rc = jm_tls_config_server(&srv->tls, url_text, tls, err);
		if (rc != 0) {
			nng_url_free(url);
			free(srv);
			return rc;
		}
	}
	rv = http_sse_open(&srv->sse, ev, err);
	char listen_url[300];
	snprintf(listen_url, sizeof listen_url, "%s://%s", tls ? "tls+tcp" : "tcp", addr);
	if (rv == 0)
		rv = http_listener_open(&srv->listener, listen_url, srv->tls,
		                        limits->max_connections, &srv->conn_cfg, err);
	if (rv != 0) {
		http_sse_close(srv->sse);
		http_sse_free(srv->sse);
		nng_url_free(url);
		if (srv->tls)
			nng_tls_config_free(srv->tls);
		free(srv);
		return rv;
	}
	snprintf(srv->url, sizeof srv->url, "%s://%s:%d", scheme, url->u_hostname,
	         http_listener_port(srv->listener));
	nng_url_free(url);
	*out = srv;
	return 0;
}

void http_server_close(struct http_server *srv)
{
	if (srv == NULL)
		return;
	/* No new requests; the hub releases the streams (a request routed
	 * meanwhile finds the hub stopping: 503); every other connection is
	 * awaited; only then is the hub freed, as no request can reach it. */
	http_listener_stop(srv->listener);
	http_sse_close(srv->sse);
	http_listener_close(srv->listener);
	http_sse_free(srv->sse);
	if (srv->tls)
		nng_tls_config_free(srv->tls);
	free(srv);
}
