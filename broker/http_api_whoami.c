/* GET /v1/whoami: the identity the call's token proved, and what its role
 * may do, so that a page (the dashboard) shows only what the token may use.
 * The answer is advice for a user interface: the core still judges every
 * request (core_auth.c), and "can" is read from the same role table
 * (auth_allows_type), never restated here.
 *
 * Without --auth: {"auth": false, "role": "admin", ...}: the broker trusts
 * whoever reaches it (it then listens on loopback only). */
#include <string.h>

#include "http_call.h"

/* What the dashboard offers, by the request each one sends. */
static const struct {
	const char *name;
	enum proto_type type;
} abilities[] = {
    {"submit", PROTO_SUBMIT},
    {"cancel", PROTO_CANCEL},
    {"retry", PROTO_REVIVE},
    {"read_jobs", PROTO_STATUS},
    {"read_workers", PROTO_WORKERS},
    {"queue_settings", PROTO_QUEUE_SET}, /* pause, resume, limit, rate, ... */
    {"schedule_add", PROTO_SCHEDULE_PUT},
    {"schedule_remove", PROTO_SCHEDULE_DELETE},
    {"dead_remove", PROTO_DEAD_REMOVE}, /* DELETE /v1/queues/{q}/dead[/{id}] */
};

void http_api_whoami(struct http_call *call)
{
	static const char *const none[] = {NULL};
	if (!http_query_only(call, none))
		return;
	const struct auth_identity *id = call->req.identity;
	struct auth_identity open = {.role = AUTH_ROLE_ADMIN};
	json_t *queues = json_array();
	json_t *can = json_object();
	for (size_t i = 0; i < sizeof abilities / sizeof abilities[0]; i++) {
		struct jm_err err = {0};
		bool allowed = auth_allows_type(id ? id : &open, abilities[i].type, &err) == 0;
		json_object_set_new(can, abilities[i].name, json_boolean(allowed));
	}
	if (id == NULL || id->role == AUTH_ROLE_ADMIN)
		json_array_append_new(queues, json_string("*"));
	else
		for (uint32_t i = 0; i < id->patterns_count; i++)
			json_array_append_new(queues, json_string(id->patterns[i]));
	http_reply_json(call, 200,
	                json_pack("{s:b,s:o,s:s,s:o,s:o}", "auth", id != NULL, "name",
	                          id ? json_string(id->name) : json_null(), "role",
	                          auth_role_name(id ? id->role : AUTH_ROLE_ADMIN), "queues", queues,
	                          "can", can));
}
