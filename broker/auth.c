/* Tokens, roles and tenants (see auth.h): the file parser, the matcher and
 * the one table of which role may send which request. */
#include "auth.h"

#include <errno.h>
#include <stdarg.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "hex.h"

/* Which roles may send each request. HELLO carries the token, so anyone;
 * a type missing here (replies, EVENT, types newer than this table) is
 * admin only. */
#define R(role) (1u << (role))
#define ANY_ROLE                                                                                   \
	(R(AUTH_ROLE_PRODUCER) | R(AUTH_ROLE_WORKER) | R(AUTH_ROLE_VIEWER) | R(AUTH_ROLE_ADMIN))
#define READERS (R(AUTH_ROLE_PRODUCER) | R(AUTH_ROLE_VIEWER) | R(AUTH_ROLE_ADMIN))
static const uint32_t auth_roles_of[PROTO_TYPE_MAX_ + 1] = {
    [PROTO_HELLO] = ANY_ROLE,
    [PROTO_SUBMIT] = R(AUTH_ROLE_PRODUCER) | R(AUTH_ROLE_ADMIN),
    [PROTO_SUBMIT_WAIT] = R(AUTH_ROLE_PRODUCER) | R(AUTH_ROLE_ADMIN),
    [PROTO_CANCEL] = R(AUTH_ROLE_PRODUCER) | R(AUTH_ROLE_ADMIN),
    [PROTO_REVIVE] = R(AUTH_ROLE_PRODUCER) | R(AUTH_ROLE_ADMIN),
    [PROTO_RESULT] = R(AUTH_ROLE_PRODUCER) | R(AUTH_ROLE_ADMIN),
    [PROTO_WAIT] = R(AUTH_ROLE_PRODUCER) | R(AUTH_ROLE_ADMIN),
    [PROTO_STATUS] = READERS,
    [PROTO_BATCH_STATUS] = READERS,
    [PROTO_BATCHES] = READERS,
    [PROTO_STATS] = READERS,
    [PROTO_DEAD_LIST] = READERS,
    [PROTO_JOB_QUERY] = READERS,
    [PROTO_WORKERS] = R(AUTH_ROLE_VIEWER) | R(AUTH_ROLE_ADMIN),
    [PROTO_FETCH] = R(AUTH_ROLE_WORKER) | R(AUTH_ROLE_ADMIN),
    [PROTO_SETTLE] = R(AUTH_ROLE_WORKER) | R(AUTH_ROLE_ADMIN),
    [PROTO_SCHEDULE_PUT] = R(AUTH_ROLE_PRODUCER) | R(AUTH_ROLE_ADMIN),
    [PROTO_SCHEDULE_DELETE] = R(AUTH_ROLE_ADMIN),
    [PROTO_SCHEDULE_LIST] = READERS,
    [PROTO_HEARTBEAT] = R(AUTH_ROLE_WORKER) | R(AUTH_ROLE_ADMIN),
    [PROTO_PROGRESS] = R(AUTH_ROLE_WORKER) | R(AUTH_ROLE_ADMIN),
};

static const char *const auth_role_may[] = {
    [AUTH_ROLE_NONE] = "nothing",
    [AUTH_ROLE_PRODUCER] = "submit, cancel, revive and read jobs of its queues",
    [AUTH_ROLE_WORKER] = "fetch, settle, heartbeat and report progress on its queues",
    [AUTH_ROLE_VIEWER] = "read stats, workers, batches and job lists of its queues",
    [AUTH_ROLE_ADMIN] = "everything",
};

const char *auth_role_name(enum auth_role role)
{
	switch (role) {
	case AUTH_ROLE_PRODUCER:
		return "producer";
	case AUTH_ROLE_WORKER:
		return "worker";
	case AUTH_ROLE_VIEWER:
		return "viewer";
	case AUTH_ROLE_ADMIN:
		return "admin";
	default:
		return "none";
	}
}

int auth_allows_type(const struct auth_identity *id, enum proto_type type, struct jm_err *err)
{
	uint32_t roles = (type > 0 && type <= PROTO_TYPE_MAX_) ? auth_roles_of[type] : 0;
	if (id->role == AUTH_ROLE_ADMIN || (roles & R(id->role)) != 0)
		return 0;
	return jm_err_set(err, JM_EFORBIDDEN,
	                  "forbidden: token \"%s\" has role %s, which may %s, not %s", id->name,
	                  auth_role_name(id->role), auth_role_may[id->role],
	                  proto_type_name((int)type));
}

bool auth_queue_visible(const struct auth_identity *id, const char *queue)
{
	if (id->role == AUTH_ROLE_ADMIN)
		return true;
	for (uint32_t i = 0; i < id->patterns_count; i++)
		if (fnmatch(id->patterns[i], queue, 0) == 0)
			return true;
	return false;
}

static int auth_refuse_queue(const struct auth_identity *id, const char *queue, struct jm_err *err)
{
	char patterns[AUTH_PATTERNS_MAX * (AUTH_PATTERN_MAX + 2)] = "";
	size_t used = 0;
	for (uint32_t i = 0; i < id->patterns_count && used < sizeof patterns; i++)
		used += (size_t)snprintf(patterns + used, sizeof patterns - used, "%s%s",
		                         i ? ", " : "", id->patterns[i]);
	return jm_err_set(err, JM_EFORBIDDEN,
	                  "forbidden: queue \"%s\" is not among token \"%s\"'s queues (%s)", queue,
	                  id->name, id->patterns_count ? patterns : "none");
}

int auth_allows(const struct auth_identity *id, const struct proto_msg *msg, struct jm_err *err)
{
	int rc = auth_allows_type(id, msg->type, err);
	if (rc != 0 || id->role == AUTH_ROLE_ADMIN)
		return rc;
	const char *queue = NULL;
	switch (msg->type) {
	case PROTO_SUBMIT:
		for (uint32_t i = 0; i < msg->u.submit.jobs_count; i++)
			if (!auth_queue_visible(id, msg->u.submit.jobs[i].attrs.queue))
				return auth_refuse_queue(id, msg->u.submit.jobs[i].attrs.queue,
				                         err);
		return 0;
	case PROTO_SUBMIT_WAIT:
		queue = msg->u.submit_wait.job.attrs.queue;
		break;
	case PROTO_FETCH:
		for (uint32_t i = 0; i < msg->u.fetch.queues_count; i++)
			if (!auth_queue_visible(id, msg->u.fetch.queues[i]))
				return auth_refuse_queue(id, msg->u.fetch.queues[i], err);
		return 0;
	case PROTO_HEARTBEAT:
		for (uint32_t i = 0; i < msg->u.heartbeat.queues_count; i++)
			if (!auth_queue_visible(id, msg->u.heartbeat.queues[i]))
				return auth_refuse_queue(id, msg->u.heartbeat.queues[i], err);
		return 0;
	case PROTO_DEAD_LIST:
		queue = msg->u.dead_list.queue;
		break;
	case PROTO_SCHEDULE_PUT:
		queue = msg->u.schedule_put.queue; /* the queue its runs go to */
		break;
	case PROTO_REVIVE:
		queue = msg->u.revive.queue;
		break;
	case PROTO_QUEUE_SET:
		queue = msg->u.queue_settings.queue;
		break;
	case PROTO_JOB_QUERY:
		queue = msg->u.job_query.queue; /* "" = every queue: the core filters */
		break;
	default:
		return 0;
	}
	if (queue[0] != '\0' && !auth_queue_visible(id, queue))
		return auth_refuse_queue(id, queue, err);
	return 0;
}

bool auth_match(const struct auth_table *t, const void *token, size_t len, struct auth_identity *id)
{
	uint8_t digest[JM_SHA256_BYTES];
	jm_sha256(token, len, digest);
	return auth_match_digest(t, digest, id);
}

bool auth_match_digest(const struct auth_table *t, const uint8_t digest[JM_SHA256_BYTES],
                       struct auth_identity *id)
{
	const struct auth_entry *found = NULL;
	for (uint32_t i = 0; t != NULL && i < t->count; i++) {
		uint8_t diff = 0;
		for (int b = 0; b < JM_SHA256_BYTES; b++)
			diff |= (uint8_t)(digest[b] ^ t->entries[i].sha256[b]);
		/* Branch-free pick: the first match wins, every entry is read. */
		uintptr_t is_match = (uintptr_t)0 - (uintptr_t)(diff == 0 && found == NULL);
		found = (const struct auth_entry *)(((uintptr_t)&t->entries[i] & is_match) |
		                                    ((uintptr_t)found & ~is_match));
	}
	if (found == NULL)
		return false;
	*id = found->id;
	return true;
}

/* --- the file --- */

struct auth_parse {
	const char *path;
	yaml_document_t doc;
	struct jm_err *err;
};

static int auth_fail(struct auth_parse *p, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int auth_fail(struct auth_parse *p, const yaml_node_t *node, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (node)
		return jm_err_set(p->err, JM_EINVAL, "auth file %s: line %d: %s", p->path,
		                  (int)node->start_mark.line + 1, what);
	return jm_err_set(p->err, JM_EINVAL, "auth file %s: %s", p->path, what);
}

static const char *auth_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool auth_pattern_is_valid(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > AUTH_PATTERN_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(s[i] == '*' || s[i] == '?' || proto_name_is_valid(&s[i], 1)))
			return false;
	return true;
}

static int auth_parse_queues(struct auth_parse *p, yaml_node_t *v, struct auth_identity *id)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return auth_fail(p, v, "queues must be a list of patterns, as [\"shop.*\"]");
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *q = yaml_document_get_node(&p->doc, *it);
		const char *s = auth_scalar(q);
		if (s == NULL || !auth_pattern_is_valid(s))
			return auth_fail(p, q,
			                 "queue pattern \"%s\": write 1-%d of A-Z a-z 0-9 . _ - "
			                 "with * for any run and ? for one character",
			                 s ? s : "(not a string)", AUTH_PATTERN_MAX);
		if (id->patterns_count == AUTH_PATTERNS_MAX)
			return auth_fail(p, q, "at most %d queue patterns per token",
			                 AUTH_PATTERNS_MAX);
		snprintf(id->patterns[id->patterns_count++], AUTH_PATTERN_MAX + 1, "%s", s);
	}
	return 0;
}

static int auth_parse_token(struct auth_parse *p, yaml_node_t *n, struct auth_entry *e)
{
	if (n->type != YAML_MAPPING_NODE)
		return auth_fail(p, n, "each token is a mapping of name, sha256, role, queues");
	bool have_hash = false;
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(&p->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(&p->doc, pr->value);
		const char *key = auth_scalar(k);
		const char *s = auth_scalar(v);
		if (key == NULL)
			return auth_fail(p, k, "keys are plain words: name, sha256, role, queues");
		if (strcmp(key, "queues") == 0) {
			int rc = auth_parse_queues(p, v, &e->id);
			if (rc != 0)
				return rc;
			continue;
		}
		if (s == NULL)
			return auth_fail(p, v, "%s must be a single value", key);
		if (strcmp(key, "name") == 0) {
			if (s[0] == '\0' || strlen(s) > AUTH_NAME_MAX)
				return auth_fail(p, v, "name must be 1-%d characters",
				                 AUTH_NAME_MAX);
			snprintf(e->id.name, sizeof e->id.name, "%s", s);
		} else if (strcmp(key, "sha256") == 0) {
			if (strlen(s) != 2 * JM_SHA256_BYTES)
				return auth_fail(
				    p, v,
				    "sha256 must be 64 hex digits (printf %%s SECRET | "
				    "sha256sum), got %zu characters",
				    strlen(s));
			for (int i = 0; i < JM_SHA256_BYTES; i++) {
				int hi = jm_hex_digit(s[2 * i]), lo = jm_hex_digit(s[2 * i + 1]);
				if (hi < 0 || lo < 0)
					return auth_fail(p, v, "sha256 must be 64 hex digits");
				e->sha256[i] = (uint8_t)(hi << 4 | lo);
			}
			have_hash = true;
		} else if (strcmp(key, "role") == 0) {
			enum auth_role r = AUTH_ROLE_NONE;
			for (int i = AUTH_ROLE_PRODUCER; i <= AUTH_ROLE_ADMIN; i++)
				if (strcmp(s, auth_role_name((enum auth_role)i)) == 0)
					r = (enum auth_role)i;
			if (r == AUTH_ROLE_NONE)
				return auth_fail(
				    p, v,
				    "role \"%s\" is unknown: use producer, worker, viewer "
				    "or admin",
				    s);
			e->id.role = r;
		} else {
			return auth_fail(p, k, "unknown key \"%s\": use name, sha256, role, queues",
			                 key);
		}
	}
	if (e->id.name[0] == '\0' || !have_hash || e->id.role == AUTH_ROLE_NONE)
		return auth_fail(p, n, "token \"%s\" needs name, sha256 and role",
		                 e->id.name[0] ? e->id.name : "(unnamed)");
	if (e->id.role != AUTH_ROLE_ADMIN && e->id.patterns_count == 0)
		return auth_fail(p, n, "token \"%s\" (%s) needs queues: [\"pattern\", ...]",
		                 e->id.name, auth_role_name(e->id.role));
	return 0;
}

static int auth_parse_doc(struct auth_parse *p, struct auth_table *t)
{
	yaml_node_t *root = yaml_document_get_root_node(&p->doc);
	if (root == NULL || root->type != YAML_MAPPING_NODE)
		return auth_fail(p, root, "the file must be a mapping with a tokens: list");
	yaml_node_t *list = NULL;
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(&p->doc, pr->key);
		const char *key = auth_scalar(k);
		if (key == NULL || strcmp(key, "tokens") != 0)
			return auth_fail(
			    p, k, "unknown key \"%s\": the file holds tokens:", key ? key : "?");
		list = yaml_document_get_node(&p->doc, pr->value);
	}
	if (list == NULL || list->type != YAML_SEQUENCE_NODE)
		return auth_fail(p, list, "tokens: must be a list");
	size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
	if (n > AUTH_TOKENS_MAX)
		return auth_fail(p, list, "at most %d tokens", AUTH_TOKENS_MAX);
	t->entries = calloc(n ? n : 1, sizeof *t->entries);
	if (t->entries == NULL)
		return jm_err_set(p->err, JM_ENOMEM, "auth file %s: out of memory", p->path);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *tok =
		    yaml_document_get_node(&p->doc, list->data.sequence.items.start[i]);
		int rc = auth_parse_token(p, tok, &t->entries[i]);
		if (rc != 0)
			return rc;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(t->entries[j].id.name, t->entries[i].id.name) == 0)
				return auth_fail(p, tok, "token name \"%s\" appears twice",
				                 t->entries[i].id.name);
			if (memcmp(t->entries[j].sha256, t->entries[i].sha256, JM_SHA256_BYTES) ==
			    0)
				return auth_fail(p, tok,
				                 "tokens \"%s\" and \"%s\" have the same sha256",
				                 t->entries[j].id.name, t->entries[i].id.name);
		}
		t->count++;
	}
	return 0;
}

int auth_load(struct auth_table **out, const char *path, struct jm_err *err)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return jm_err_set(err, JM_EIO, "auth file %s: %s", path, strerror(errno));
	struct auth_parse p = {.path = path, .err = err};
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	int rc;
	if (!yaml_parser_load(&parser, &p.doc)) {
		rc = jm_err_set(err, JM_EINVAL, "auth file %s: line %d: %s", path,
		                (int)parser.problem_mark.line + 1,
		                parser.problem ? parser.problem : "not YAML");
		yaml_parser_delete(&parser);
		fclose(f);
		return rc;
	}
	yaml_parser_delete(&parser);
	fclose(f);
	struct auth_table *t = calloc(1, sizeof *t);
	rc = t ? auth_parse_doc(&p, t)
	       : jm_err_set(err, JM_ENOMEM, "auth file %s: out of memory", path);
	yaml_document_delete(&p.doc);
	if (rc != 0) {
		auth_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void auth_free(struct auth_table *t)
{
	if (t == NULL)
		return;
	free(t->entries);
	free(t);
}
