/* Routing: a call's path split into segments, its token checked
 * (http_auth.c), then one handler per path and method; 404 and 405 answer
 * in JSON like every other error. GETs outside the API go to the
 * dashboard's files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard_http.h"
#include "http_call.h"

static bool is(const struct http_call *call, uint32_t i, const char *text)
{
	return i < call->segments_count && strcmp(call->segments[i], text) == 0;
}

/* Answers 405 naming what the path allows. */
static void method_not_allowed(struct http_call *call, const char *allow)
{
	http_reply_error_header(call, 405, "method_not_allowed", "Allow", allow,
	                        "%s is not allowed on %s: use %s", call->method, call->path, allow);
}

/* The dashboard's page and its files (dashboard_http.h), sent as built
 * there (its own headers: ETag, CSP). False, with nothing answered, when
 * the path is not one of them. */
static bool dashboard(struct http_call *call)
{
	struct dashboard_reply reply;
	const char *etag = http_call_header(call, "If-None-Match");
	if (dashboard_http_response(call->path, etag, &reply) != 0)
		return false;
	http_reply_fields(call, reply.status, reply.fields, reply.fields_count, reply.body,
	                  reply.len, false);
	return true;
}

static void route(struct http_call *call)
{
	const char *m = call->method;
	bool get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
	bool del = strcmp(m, "DELETE") == 0;
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
			ONLY(get || del, "GET, DELETE",
			     get ? http_api_dead(call) : http_api_remove_dead(call));
		if (n == 5 && is(call, 1, "queues") && is(call, 3, "dead") && is(call, 4, "retry"))
			ONLY(post, "POST", http_api_retry_dead(call));
		if (n == 5 && is(call, 1, "queues") && is(call, 3, "dead"))
			ONLY(del, "DELETE", http_api_remove_dead(call));
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
		http_url_decode(s, s + strlen(s), s, strlen(s) + 1); /* shrinks in place */
		call->segments[call->segments_count++] = s;
	}
	return true;
}

void http_route(struct http_call *call)
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
