/* The HTTP API's one authentication step (with --auth), taken in
 * http_server.c's dispatch before any route: a token from
 * "Authorization: Bearer TOKEN", or from ?access_token= on GET /v1/events
 * only (a browser's EventSource cannot set headers; anywhere else a token
 * in a URL ends up in logs and histories, so it is refused there). The
 * probes and the dashboard's static files stay open. The
 * identity rides on the call's core request, so the core's role and tenant
 * checks (core_auth.c) judge HTTP exactly as they judge NNG. */
#include <string.h>

#include "auth_gate.h"
#include "http_call.h"

static bool is_path(const struct http_call *call, const char *a, const char *b)
{
	if (call->segments_count != (b ? 2u : 1u) || strcmp(call->segments[0], a) != 0)
		return false;
	return b == NULL || strcmp(call->segments[1], b) == 0;
}

bool http_auth_admit(struct http_call *call)
{
	struct auth_gate *gate = http_server_auth(call->srv);
	if (gate == NULL || is_path(call, "healthz", NULL) || is_path(call, "readyz", NULL))
		return true;
	/* The dashboard's page and assets are compiled-in files that hold no
	 * data; what the page then asks of /v1 needs a token like anything. */
	if (strcmp(call->method, "GET") == 0 &&
	    (call->segments_count == 0 ||
	     (call->segments_count == 2 && strcmp(call->segments[0], "assets") == 0)))
		return true;
	char token[AUTH_TOKEN_TEXT_MAX + 1] = "";
	const char *header = http_call_header(call, "Authorization");
	bool events = is_path(call, "v1", "events") && strcmp(call->method, "GET") == 0;
	if (header != NULL) {
		if (strncasecmp(header, "Bearer ", 7) != 0 ||
		    strlen(header + 7) > AUTH_TOKEN_TEXT_MAX) {
			auth_gate_count_missing(gate);
			http_reply_error(
			    call, 401, "unauthorized",
			    "the Authorization header must be \"Bearer TOKEN\" (at most "
			    "%d bytes of token)",
			    AUTH_TOKEN_TEXT_MAX);
			return false;
		}
		snprintf(token, sizeof token, "%s", header + 7);
	} else if (http_query_get(call, "access_token", token, sizeof token) && !events) {
		auth_gate_count_missing(gate);
		http_reply_error(call, 401, "unauthorized",
		                 "?access_token= is accepted only on GET /v1/events: send "
		                 "\"Authorization: Bearer TOKEN\"");
		return false;
	}
	if (token[0] == '\0') {
		auth_gate_count_missing(gate);
		http_reply_error(call, 401, "unauthorized",
		                 "authentication required: send \"Authorization: Bearer TOKEN\"");
		return false;
	}
	if (!auth_gate_match(gate, token, strlen(token), &call->identity)) {
		http_reply_error(call, 401, "unauthorized", "%s", AUTH_TEXT_UNKNOWN);
		return false;
	}
	call->req.identity = &call->identity;
	if (is_path(call, "metrics", NULL) && call->identity.role != AUTH_ROLE_VIEWER &&
	    call->identity.role != AUTH_ROLE_ADMIN) {
		http_reply_error(call, 403, "forbidden",
		                 "/metrics needs a viewer or admin token; \"%s\" is a %s",
		                 call->identity.name, auth_role_name(call->identity.role));
		return false;
	}
	return true;
}
