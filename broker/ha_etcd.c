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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#define HA_ETCD_BODY_MAX (64u << 10)

struct ha_etcd {
	char base[256];
	nng_url *url;
	nng_http_client *client;
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

int ha_etcd_open(struct ha_etcd **out, const char *url, struct jm_err *err)
{
	if (strncmp(url, "http://", 7) != 0)
		return jm_err_set(err, JM_EINVAL,
		                  "--etcd \"%s\": write http://HOST:PORT of an etcd member "
		                  "(its client URL; https is not supported yet)",
		                  url);
	struct ha_etcd *etcd = calloc(1, sizeof *etcd);
	if (etcd == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	snprintf(etcd->base, sizeof etcd->base, "%s", url);
	size_t len = strlen(etcd->base);
	while (len > 0 && etcd->base[len - 1] == '/')
		etcd->base[--len] = '\0';
	int rv = nng_url_parse(&etcd->url, etcd->base);
	if (rv == 0)
		rv = nng_http_client_alloc(&etcd->client, etcd->url);
	if (rv != 0) {
		ha_etcd_close(etcd);
		return jm_err_set(err, JM_EINVAL, "--etcd \"%s\": %s: write http://HOST:PORT", url,
		                  nng_strerror(rv));
	}
	*out = etcd;
	return 0;
}

void ha_etcd_close(struct ha_etcd *etcd)
{
	if (etcd == NULL)
		return;
	if (etcd->client)
		nng_http_client_free(etcd->client);
	if (etcd->url)
		nng_url_free(etcd->url);
	free(etcd);
}

/* POSTs body to path; *reply the parsed JSON answer (the caller decrefs).
 * A gateway error ({"error": ..., "code": N}) is JM_ETRANSPORT too. */
static int call(struct ha_etcd *etcd, const char *path, json_t *body, uint32_t timeout_ms,
                json_t **reply, struct jm_err *err)
{
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL)
		return jm_err_set(err, JM_ENOMEM, "etcd %s: out of memory", path);
	char url_text[512];
	snprintf(url_text, sizeof url_text, "%s%s", etcd->base, path);
	nng_url *url = NULL;
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	nng_aio *aio = NULL;
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
	free(text);
	int rc = 0;
	if (rv != 0) {
		rc = jm_err_set(err, JM_ENOMEM, "etcd %s: %s", path, nng_strerror(rv));
		goto done;
	}
	nng_aio_set_timeout(aio, (nng_duration)timeout_ms);
	nng_http_client_transact(etcd->client, req, res, aio);
	nng_aio_wait(aio);
	rv = nng_aio_result(aio);
	if (rv != 0) {
		rc = jm_err_set(err, JM_ETRANSPORT, "etcd %s%s: %s", etcd->base, path,
		                rv == NNG_ETIMEDOUT ? "no answer in time" : nng_strerror(rv));
		goto done;
	}
	void *data = NULL;
	size_t len = 0;
	nng_http_res_get_data(res, &data, &len);
	uint16_t status = nng_http_res_get_status(res);
	json_error_t jerr;
	json_t *doc = len > 0 && len <= HA_ETCD_BODY_MAX ? json_loadb(data, len, 0, &jerr) : NULL;
	if (status != 200 || doc == NULL || !json_is_object(doc)) {
		const char *why = doc ? json_string_value(json_object_get(doc, "error")) : NULL;
		rc = jm_err_set(err, JM_ETRANSPORT, "etcd %s%s: HTTP %u%s%s", etcd->base, path,
		                status, why ? ": " : (doc ? "" : ": not JSON"), why ? why : "");
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
