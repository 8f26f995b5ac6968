/* TLS configs for NNG sockets (see tls.h). */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#define TLS_FILE_MAX (1u << 20)

void jm_tls_from_env(struct jm_tls *t)
{
	const char *v;
	if (t->ca == NULL && (v = getenv("JOBMESH_TLS_CA")) != NULL && v[0])
		t->ca = v;
	if (t->cert == NULL && (v = getenv("JOBMESH_TLS_CERT")) != NULL && v[0])
		t->cert = v;
	if (t->key == NULL && (v = getenv("JOBMESH_TLS_KEY")) != NULL && v[0])
		t->key = v;
}

bool jm_tls_url_wants(const char *url)
{
	static const char *const schemes[] = {"tls+tcp://", "tls+tcp4://", "tls+tcp6://",
	                                      "wss://",     "wss4://",     "wss6://"};
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
		if (strncmp(url, schemes[i], strlen(schemes[i])) == 0)
			return true;
	return false;
}

/* Reads a PEM file whole, NUL-terminated; the caller frees. */
static char *tls_read(const char *path, const char *what, struct jm_err *err)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		jm_err_set(err, JM_EIO, "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(TLS_FILE_MAX + 1);
	size_t n = buf ? fread(buf, 1, TLS_FILE_MAX + 1, f) : 0;
	fclose(f);
	if (buf == NULL || n > TLS_FILE_MAX) {
		free(buf);
		jm_err_set(err, JM_EIO, "%s %s: %s", what, path,
		           buf ? "over 1 MiB: not a PEM file" : "out of memory");
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static int tls_own_cert(nng_tls_config *cfg, const struct jm_tls *t, struct jm_err *err)
{
	char *cert = tls_read(t->cert, "--tls-cert", err);
	char *key = cert ? tls_read(t->key, "--tls-key", err) : NULL;
	if (key == NULL) {
		free(cert);
		return err->code;
	}
	int rv = nng_tls_config_own_cert(cfg, cert, key, NULL);
	free(cert);
	free(key);
	if (rv != 0)
		return jm_err_set(err, JM_EIO,
		                  "--tls-cert %s with --tls-key %s: %s (want a PEM certificate and "
		                  "its unencrypted PEM private key)",
		                  t->cert, t->key, nng_strerror(rv));
	return 0;
}

static int tls_ca(nng_tls_config *cfg, const char *ca, struct jm_err *err)
{
	char *pem = tls_read(ca, "--tls-ca", err);
	if (pem == NULL)
		return err->code;
	int rv = nng_tls_config_ca_chain(cfg, pem, NULL);
	free(pem);
	if (rv != 0)
		return jm_err_set(err, JM_EIO, "--tls-ca %s: %s (want PEM certificates)", ca,
		                  nng_strerror(rv));
	return nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED) == 0
	           ? 0
	           : jm_err_set(err, JM_EIO, "--tls-ca %s: cannot require certificates", ca);
}

static int tls_alloc(nng_tls_config **out, nng_tls_mode mode, const char *url, struct jm_err *err)
{
	int rv = nng_tls_config_alloc(out, mode);
	if (rv == NNG_ENOTSUP)
		return jm_err_set(err, JM_EUNSUPPORTED,
		                  "%s: this libnng was built without TLS; use tcp:// or ipc://",
		                  url);
	if (rv != 0)
		return jm_err_set(err, JM_ENOMEM, "%s: TLS config: %s", url, nng_strerror(rv));
	return 0;
}

int jm_tls_config_server(nng_tls_config **out, const char *url, const struct jm_tls *t,
                         struct jm_err *err)
{
	if (t == NULL || t->cert == NULL || t->key == NULL)
		return jm_err_set(err, JM_EINVAL,
		                  "%s: a TLS listener needs --tls-cert FILE and --tls-key FILE "
		                  "(and --tls-ca FILE to require client certificates)",
		                  url);
	nng_tls_config *cfg;
	int rc = tls_alloc(&cfg, NNG_TLS_MODE_SERVER, url, err);
	if (rc == 0)
		rc = tls_own_cert(cfg, t, err);
	if (rc == 0 && t->ca)
		rc = tls_ca(cfg, t->ca, err);
	if (rc == 0 && t->ca == NULL)
		nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
	if (rc != 0) {
		if (rc != JM_EUNSUPPORTED && rc != JM_ENOMEM)
			nng_tls_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

int jm_tls_config_client(nng_tls_config **out, const char *url, const struct jm_tls *t,
                         struct jm_err *err)
{
	if (t == NULL || t->ca == NULL)
		return jm_err_set(err, JM_EINVAL,
		                  "%s: a TLS connection needs --tls-ca FILE (or JOBMESH_TLS_CA): "
		                  "the CA that signed the broker's certificate",
		                  url);
	if ((t->cert == NULL) != (t->key == NULL))
		return jm_err_set(err, JM_EINVAL, "%s: give --tls-cert and --tls-key together",
		                  url);
	nng_tls_config *cfg;
	int rc = tls_alloc(&cfg, NNG_TLS_MODE_CLIENT, url, err);
	if (rc == 0)
		rc = tls_ca(cfg, t->ca, err);
	if (rc == 0 && t->cert)
		rc = tls_own_cert(cfg, t, err);
	if (rc != 0) {
		if (rc != JM_EUNSUPPORTED && rc != JM_ENOMEM)
			nng_tls_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}
