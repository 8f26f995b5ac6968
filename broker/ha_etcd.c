/* etcd's v3 JSON gateway through NNG's HTTP client (see ha_etcd.h).
 *
 * Each call is one HTTP transaction on a fresh connection
 * (nng_http_client_transact), waited for on the calling thread with the
 * aio's timeout: the election thread makes one call every renew interval,
 * so a connection per call costs nothing that matters, and a call can
 * never wait on a connection another call broke. The gateway answers a
 * stream call (lease keepalive) with a chunked body holding one result,
 * which NNG's client reads whole. */
#include "ha_etcd.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "clock.h"
#include "log.h"

#define HA_ETCD_BODY_MAX (64u << 10)
/* The least time worth giving one member: a loaded etcd answers a local
 * call in a few ms, a new connection included. */
#define HA_ETCD_TRY_MIN_MS 50u

/* One member of the etcd cluster. */
struct ha_etcd_member {
	char base[256]; /* http://HOST:PORT, no trailing slash */
	nng_url *url;
	nng_http_client *client;
};

/* Used by one thread at a time (the election thread, or ha_ship.c under
 * its lock): current needs no lock. */
struct ha_etcd {
	struct ha_etcd_member members[HA_ETCD_MEMBERS_MAX];
	size_t count;
	size_t current; /* the member that answered last: calls start there */
};

/* ---- base64 (RFC 4648, with padding), as the gateway wants ------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_encode(const char *in, size_t len, char *out)
{
	const uint8_t *p = (const uint8_t *)in;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
}

static int b64_value(char c)
{
	const char *at = c ? strchr(b64_alphabet, c) : NULL;
	return at ? (int)(at - b64_alphabet) : -1;
}

/* Decodes into out (size bytes, NUL-ended, cut to fit): 0 or -1. */
static int b64_decode(const char *in, char *out, size_t size)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (const char *p = in; *p && *p != '='; p++) {
		int v = b64_value(*p);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 < size)
				out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return 0;
}

/* ---- the transaction --------------------------------------------------- */

/* One member's URL, len bytes at text: 0 or JM_EINVAL naming it. */
static int check_member(const char *list, const char *text, size_t len, size_t index,
                        struct jm_err *err)
{
	char one[256];
	if (len == 0 || len >= sizeof one)
		return jm_err_set(
		    err, JM_EINVAL,
		    "--etcd \"%s\": member %zu is %s: write http://HOST:PORT of each etcd "
		    "member, separated by commas",
		    list, index + 1, len == 0 ? "empty" : "too long");
	memcpy(one, text, len);
	one[len] = '\0';
	const char *host = one + 7;
	const char *colon = strrchr(host, ':');
	bool ok = strncmp(one, "http://", 7) == 0 && host[0] != '\0' && host[0] != ':' &&
	          colon != NULL && colon[1] >= '0' && colon[1] <= '9' && strchr(one, ' ') == NULL;
	for (const char *p = colon ? colon + 1 : ""; ok && *p && *p != '/'; p++)
		ok = *p >= '0' && *p <= '9';
	if (!ok)
		return jm_err_set(
		    err, JM_EINVAL,
		    "--etcd \"%s\": member %zu \"%s\" is not http://HOST:PORT: write the "
		    "client URL of each etcd member, separated by commas (https is not "
		    "supported yet)",
		    list, index + 1, one);
	return 0;
}

int ha_etcd_check_urls(const char *list, struct jm_err *err)
{
	size_t index = 0;
	const char *p = list;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (index == HA_ETCD_MEMBERS_MAX)
			return jm_err_set(
			    err, JM_EINVAL,
			    "--etcd \"%s\": more than %d members: list at most %d etcd "
			    "client URLs",
			    list, HA_ETCD_MEMBERS_MAX, HA_ETCD_MEMBERS_MAX);
		int rc = check_member(list, p, len, index, err);
		if (rc != 0)
			return rc;
		for (const char *q = list; q < p;) {
			const char *qe = strchr(q, ',');
			if ((size_t)(qe - q) == len && strncmp(q, p, len) == 0)
				return jm_err_set(
				    err, JM_EINVAL,
				    "--etcd \"%s\": member %zu \"%.*s\" is listed twice: "
				    "list each etcd member once",
				    list, index + 1, (int)len, p);
			q = qe + 1;
		}
		index++;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

int ha_etcd_open(struct ha_etcd **out, const char *list, struct jm_err *err)
{
	int rc = ha_etcd_check_urls(list, err);
	if (rc != 0)
		return rc;
	struct ha_etcd *etcd = calloc(1, sizeof *etcd);
	if (etcd == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	for (const char *p = list; p != NULL && rc == 0;) {
		const char *end = strchr(p, ',');
		struct ha_etcd_member *m = &etcd->members[etcd->count++];
		snprintf(m->base, sizeof m->base, "%.*s",
		         (int)(end ? (size_t)(end - p) : strlen(p)), p);
		size_t len = strlen(m->base);
		while (len > 0 && m->base[len - 1] == '/')
			m->base[--len] = '\0';
		int rv = nng_url_parse(&m->url, m->base);
		if (rv == 0)
			rv = nng_http_client_alloc(&m->client, m->url);
		if (rv != 0)
			rc = jm_err_set(err, JM_EINVAL,
			                "--etcd \"%s\": member \"%s\": %s: write "
			                "http://HOST:PORT",
			                list, m->base, nng_strerror(rv));
		p = end ? end + 1 : NULL;
	}
	if (rc != 0) {
		ha_etcd_close(etcd);
		return rc;
	}
	*out = etcd;
	return 0;
}

void ha_etcd_close(struct ha_etcd *etcd)
{
	if (etcd == NULL)
		return;
	for (size_t i = 0; i < etcd->count; i++) {
		if (etcd->members[i].client)
			nng_http_client_free(etcd->members[i].client);
		if (etcd->members[i].url)
			nng_url_free(etcd->members[i].url);
	}
	free(etcd);
}

/* Would another member answer where this one failed? Yes for what one
 * member's trouble explains: no connection or no answer in time, a 5xx,
 * and etcd's own "this member cannot serve now" errors (no leader, lost
 * quorum, a leader change, a request timed out). No for an answer about
 * the request itself (a 4xx: every member would say the same). */
static bool member_fault(uint16_t status, const char *why)
{
	if (status >= 500)
		return true;
	if (why == NULL)
		return false;
	static const char *const faults[] = {"unavailable",    "no leader",   "timed out",
	                                     "leader changed", "not capable", "too many requests",
	                                     "stopped"};
	for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
		if (strstr(why, faults[i]) != NULL)
			return true;
	return false;
}

/* The gateway's error text: {"error": "text"} from a unary call, or
 * {"error": {"message": "text", "http_code": N}} inside a stream's 200
 * answer (lease keepalive). NULL when the answer is no error. */
static const char *gateway_error(json_t *doc, uint16_t *status)
{
	json_t *e = doc ? json_object_get(doc, "error") : NULL;
	if (json_is_string(e))
		return json_string_value(e);
	if (!json_is_object(e))
		return NULL;
	json_int_t code = json_integer_value(json_object_get(e, "http_code"));
	if (code >= 400 && code < 600 && *status == 200)
		*status = (uint16_t)code;
	const char *why = json_string_value(json_object_get(e, "message"));
	return why ? why : "an error without a message";
}

/* One POST of text to path on member m, within timeout_ms. *fault: the
 * failure is this member's (member_fault), so another may answer. */
static int call_member(struct ha_etcd_member *m, const char *path, const char *text,
                       uint32_t timeout_ms, json_t **reply, bool *fault, struct jm_err *err)
{
	char url_text[512];
	snprintf(url_text, sizeof url_text, "%s%s", m->base, path);
	nng_url *url = NULL;
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	nng_aio *aio = NULL;
	*fault = false;
	int rv = nng_url_parse(&url, url_text);
	if (rv == 0)
		rv = nng_http_req_alloc(&req, url);
	if (rv == 0)
		rv = nng_http_res_alloc(&res);
	if (rv == 0)
		rv = nng_aio_alloc(&aio, NULL, NULL);
	if (rv == 0) {
		nng_http_req_set_method(req, "POST");
		nng_http_req_set_header(req, "Content-Type", "application/json");
		rv = nng_http_req_copy_data(req, text, strlen(text));
	}
	int rc = 0;
	if (rv != 0) {
		rc = jm_err_set(err, JM_ENOMEM, "etcd %s: %s", path, nng_strerror(rv));
		goto done;
	}
	nng_aio_set_timeout(aio, (nng_duration)timeout_ms);
	nng_http_client_transact(m->client, req, res, aio);
	nng_aio_wait(aio);
	rv = nng_aio_result(aio);
	if (rv != 0) {
		*fault = true;
		rc = jm_err_set(err, JM_ETRANSPORT, "etcd %s%s: %s", m->base, path,
		                rv == NNG_ETIMEDOUT ? "no answer in time" : nng_strerror(rv));
		goto done;
	}
	void *data = NULL;
	size_t len = 0;
	nng_http_res_get_data(res, &data, &len);
	uint16_t status = nng_http_res_get_status(res);
	json_error_t jerr;
	json_t *doc = len > 0 && len <= HA_ETCD_BODY_MAX ? json_loadb(data, len, 0, &jerr) : NULL;
	const char *why = gateway_error(doc, &status);
	if (status != 200 || doc == NULL || !json_is_object(doc) || why != NULL) {
		*fault = member_fault(status, why);
		rc = jm_err_set(err, JM_ETRANSPORT, "etcd %s%s: HTTP %u%s%s", m->base, path, status,
		                why ? ": " : (doc ? "" : ": not JSON"), why ? why : "");
		json_decref(doc);
		goto done;
	}
	*reply = doc;
done:
	nng_aio_free(aio);
	nng_http_res_free(res);
	nng_http_req_free(req);
	nng_url_free(url);
	return rc;
}

/* POSTs body to path; *reply the parsed JSON answer (the caller decrefs).
 * A gateway error ({"error": ..., "code": N}) is JM_ETRANSPORT too.
 *
 * Starts at the member that answered last; when that member fails in a
 * way another may not (member_fault), tries the next, all within the one
 * timeout_ms: a caller's deadline (a leader's renewal) holds whatever the
 * members do. A member that may still answer is given half of what is
 * left, so that one that hangs leaves time for the others; the last one
 * tried gets all that is left. A call that is not idempotent (a txn) may
 * thus have been applied by a member whose answer was lost before another
 * member answers it: ha_election.c reads its create's outcome from the
 * key (its lease), not from "succeeded". */
static int call(struct ha_etcd *etcd, const char *path, json_t *body, uint32_t timeout_ms,
                json_t **reply, struct jm_err *err)
{
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL)
		return jm_err_set(err, JM_ENOMEM, "etcd %s: out of memory", path);
	uint64_t deadline = jm_mono_us() + (uint64_t)timeout_ms * 1000u;
	char tried[JM_ERR_MSG_MAX] = "";
	int rc = 0;
	bool fault = false;
	size_t first = etcd->current;
	for (size_t n = 0; n < etcd->count; n++) {
		size_t at = (first + n) % etcd->count;
		uint64_t now = jm_mono_us();
		uint64_t left_ms = deadline > now ? (deadline - now) / 1000u : 0;
		if (n > 0 && left_ms < HA_ETCD_TRY_MIN_MS)
			break; /* no time for another member: report what failed */
		uint64_t try_ms = n + 1 < etcd->count ? left_ms / 2 : left_ms;
		if (try_ms < HA_ETCD_TRY_MIN_MS)
			try_ms = left_ms < HA_ETCD_TRY_MIN_MS ? HA_ETCD_TRY_MIN_MS : left_ms;
		rc = call_member(&etcd->members[at], path, text, (uint32_t)try_ms, reply, &fault,
		                 err);
		if (rc == 0) {
			/* Logged once per move: later calls start at this member. */
			if (n > 0)
				jm_warn("ha: %s; etcd member %s answered", tried,
				        etcd->members[at].base);
			etcd->current = at;
			break;
		}
		if (!fault)
			break;
		/* Start the next call past the member that failed. */
		etcd->current = (at + 1) % etcd->count;
		if (etcd->count > 1) {
			size_t used = strlen(tried);
			snprintf(tried + used, sizeof tried - used, "%s%s", used ? "; " : "",
			         jm_err_text(err));
		}
	}
	free(text);
	if (rc != 0 && fault && etcd->count > 1)
		jm_err_set(err, rc, "no etcd member answered %s in %" PRIu32 " ms: %s", path,
		           timeout_ms, tried);
	return rc;
}

/* A 64-bit field as the gateway writes it: a string of digits (or, from
 * other proxies, a number). 0 when absent. */
static int64_t int_field(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

static json_t *int_json(int64_t v)
{
	char text[24];
	snprintf(text, sizeof text, "%lld", (long long)v);
	return json_string(text);
}

static json_t *b64_json(const char *text)
{
	size_t len = strlen(text);
	char *enc = malloc(len / 3 * 4 + 8);
	if (enc == NULL)
		return NULL;
	b64_encode(text, len, enc);
	json_t *v = json_string(enc);
	free(enc);
	return v;
}

int ha_etcd_lease_grant(struct ha_etcd *etcd, uint32_t ttl_s, uint32_t timeout_ms, int64_t *lease,
                        struct jm_err *err)
{
	json_t *reply = NULL;
	int rc = call(etcd, "/v3/lease/grant", json_pack("{s:I}", "TTL", (json_int_t)ttl_s),
	              timeout_ms, &reply, err);
	if (rc != 0)
		return rc;
	*lease = int_field(reply, "ID");
	json_decref(reply);
	if (*lease == 0)
		return jm_err_set(err, JM_ETRANSPORT,
		                  "etcd /v3/lease/grant: no lease ID in answer");
	return 0;
}

int ha_etcd_lease_keepalive(struct ha_etcd *etcd, int64_t lease, uint32_t timeout_ms,
                            int64_t *ttl_s, struct jm_err *err)
{
	json_t *reply = NULL;
	int rc = call(etcd, "/v3/lease/keepalive", json_pack("{s:o}", "ID", int_json(lease)),
	              timeout_ms, &reply, err);
	if (rc != 0)
		return rc;
	/* A stream call: the one answer is wrapped in "result". */
	json_t *result = json_object_get(reply, "result");
	*ttl_s = int_field(result ? result : reply, "TTL");
	json_decref(reply);
	return 0;
}

int ha_etcd_lease_revoke(struct ha_etcd *etcd, int64_t lease, uint32_t timeout_ms,
                         struct jm_err *err)
{
	json_t *reply = NULL;
	int rc = call(etcd, "/v3/lease/revoke", json_pack("{s:o}", "ID", int_json(lease)),
	              timeout_ms, &reply, err);
	json_decref(reply);
	return rc;
}

/* The first kv of a range answer into *kv. */
static void kv_from(json_t *range, struct ha_etcd_kv *kv)
{
	memset(kv, 0, sizeof *kv);
	json_t *kvs = json_object_get(range, "kvs");
	json_t *first = json_is_array(kvs) ? json_array_get(kvs, 0) : NULL;
	if (first == NULL)
		return;
	kv->found = true;
	kv->create_revision = int_field(first, "create_revision");
	kv->mod_revision = int_field(first, "mod_revision");
	kv->lease = int_field(first, "lease");
	const char *value = json_string_value(json_object_get(first, "value"));
	if (value == NULL || b64_decode(value, kv->value, sizeof kv->value) != 0)
		kv->value[0] = '\0';
}

int ha_etcd_create(struct ha_etcd *etcd, const char *key, const char *value, int64_t lease,
                   uint32_t timeout_ms, bool *created, struct ha_etcd_kv *kv, struct jm_err *err)
{
	return ha_etcd_create_if(etcd, key, value, lease, NULL, 0, timeout_ms, created, kv, err);
}

int ha_etcd_create_if(struct ha_etcd *etcd, const char *key, const char *value, int64_t lease,
                      const char *also_key, int64_t also_mod_revision, uint32_t timeout_ms,
                      bool *created, struct ha_etcd_kv *kv, struct jm_err *err)
{
	json_t *body = json_pack(
	    "{s:[{s:s, s:s, s:o, s:s}], s:[{s:{s:o, s:o, s:o}}], s:[{s:{s:o}}]}", "compare",
	    "target", "CREATE", "result", "EQUAL", "key", b64_json(key), "create_revision", "0",
	    "success", "request_put", "key", b64_json(key), "value", b64_json(value), "lease",
	    int_json(lease), "failure", "request_range", "key", b64_json(key));
	if (body != NULL && also_key != NULL) {
		json_t *cmp =
		    json_pack("{s:s, s:s, s:o, s:o}", "target", "MOD", "result", "EQUAL", "key",
		              b64_json(also_key), "mod_revision", int_json(also_mod_revision));
		if (cmp == NULL ||
		    json_array_append_new(json_object_get(body, "compare"), cmp) != 0) {
			json_decref(body);
			body = NULL;
		}
	}
	if (body == NULL)
		return jm_err_set(err, JM_ENOMEM, "etcd /v3/kv/txn: out of memory");
	json_t *reply = NULL;
	int rc = call(etcd, "/v3/kv/txn", body, timeout_ms, &reply, err);
	if (rc != 0)
		return rc;
	*created = json_is_true(json_object_get(reply, "succeeded"));
	memset(kv, 0, sizeof *kv);
	if (*created) {
		/* The put's revision is the key's create revision. */
		kv->found = true;
		kv->create_revision = kv->mod_revision =
		    int_field(json_object_get(reply, "header"), "revision");
		snprintf(kv->value, sizeof kv->value, "%s", value);
	} else {
		json_t *responses = json_object_get(reply, "responses");
		json_t *first = json_is_array(responses) ? json_array_get(responses, 0) : NULL;
		kv_from(json_object_get(first, "response_range"), kv);
	}
	json_decref(reply);
	if (*created && kv->create_revision == 0)
		return jm_err_set(err, JM_ETRANSPORT, "etcd /v3/kv/txn: no revision in answer");
	return 0;
}

int ha_etcd_get(struct ha_etcd *etcd, const char *key, uint32_t timeout_ms, struct ha_etcd_kv *kv,
                struct jm_err *err)
{
	json_t *reply = NULL;
	int rc = call(etcd, "/v3/kv/range", json_pack("{s:o}", "key", b64_json(key)), timeout_ms,
	              &reply, err);
	if (rc != 0)
		return rc;
	kv_from(reply, kv);
	json_decref(reply);
	return 0;
}

int ha_etcd_put(struct ha_etcd *etcd, const char *key, const char *value, int64_t lease,
                uint32_t timeout_ms, struct jm_err *err)
{
	json_t *body = json_pack("{s:o, s:o}", "key", b64_json(key), "value", b64_json(value));
	if (body && lease != 0)
		json_object_set_new(body, "lease", int_json(lease));
	json_t *reply = NULL;
	int rc = call(etcd, "/v3/kv/put", body, timeout_ms, &reply, err);
	json_decref(reply);
	return rc;
}

int ha_etcd_put_if_held(struct ha_etcd *etcd, const char *guard_key, int64_t guard_create_revision,
                        const char *key, const char *value, uint32_t timeout_ms, bool *put,
                        struct jm_err *err)
{
	json_t *body = json_pack("{s:[{s:s, s:s, s:o, s:o}], s:[{s:{s:o, s:o}}]}", "compare",
	                         "target", "CREATE", "result", "EQUAL", "key", b64_json(guard_key),
	                         "create_revision", int_json(guard_create_revision), "success",
	                         "request_put", "key", b64_json(key), "value", b64_json(value));
	if (body == NULL)
		return jm_err_set(err, JM_ENOMEM, "etcd /v3/kv/txn: out of memory");
	json_t *reply = NULL;
	int rc = call(etcd, "/v3/kv/txn", body, timeout_ms, &reply, err);
	if (rc != 0)
		return rc;
	*put = json_is_true(json_object_get(reply, "succeeded"));
	json_decref(reply);
	return 0;
}
