/* TLS for NNG sockets (tls+tcp:// and wss://), for the broker and its
 * clients alike. NNG does the TLS (Debian's libnng 1.5.2 is built with
 * mbedTLS 2.28); this module turns file names into an nng_tls_config and
 * says clearly which file or flag is missing.
 *
 * A listener needs a certificate and key; with a CA it requires and checks
 * client certificates (mutual TLS). A dialer needs the CA that signed the
 * broker's certificate and checks the broker's name against it (the URL's
 * host, compared with the certificate's CN or DNS names: mbedTLS 2.28 does
 * not read IP addresses in subjectAltName, so a certificate for an IP
 * carries it as a DNS name too); a certificate and key of its own are
 * optional. */
#ifndef JM_PROTO_TLS_H
#define JM_PROTO_TLS_H

#include <stdbool.h>

#include "err.h"

/* File names; NULL: not given. */
struct jm_tls {
	const char *cert;
	const char *key;
	const char *ca;
};

/* Fills NULL fields from $JOBMESH_TLS_CA, $JOBMESH_TLS_CERT and
 * $JOBMESH_TLS_KEY. */
void jm_tls_from_env(struct jm_tls *t);

/* True for the schemes NNG runs over TLS: tls+tcp[46]://, wss[46]://. */
bool jm_tls_url_wants(const char *url);

typedef struct nng_tls_config nng_tls_config;

/* A server config for url from t (NULL: no files given); JM_EINVAL naming
 * the flag when cert or key is missing, JM_EIO naming a file that cannot
 * be read or parsed, JM_EUNSUPPORTED when NNG was built without TLS. */
int jm_tls_config_server(nng_tls_config **out, const char *url, const struct jm_tls *t,
                         struct jm_err *err);
/* A client config for url, as above; the CA is required. */
int jm_tls_config_client(nng_tls_config **out, const char *url, const struct jm_tls *t,
                         struct jm_err *err);

#endif
