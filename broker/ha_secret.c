/* Loading the HA cluster secret (see ha_secret.h). */
#include "ha_secret.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int ha_secret_load(struct ha_secret *out, const char *path, struct jm_err *err)
{
	out->len = 0;
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return jm_err_set(err, JM_EIO, "--replication-token-file %s: %s", path,
		                  strerror(errno));
	size_t len = fread(out->bytes, 1, sizeof out->bytes, f);
	int more = fgetc(f);
	bool failed = ferror(f) != 0;
	fclose(f);
	if (failed)
		return jm_err_set(err, JM_EIO, "--replication-token-file %s: cannot read it", path);
	while (len > 0 && strchr(" \t\r\n", out->bytes[len - 1]) != NULL)
		len--;
	if (more != EOF || len < HA_SECRET_MIN_BYTES) {
		memset(out->bytes, 0, sizeof out->bytes);
		return jm_err_set(
		    err, JM_EINVAL,
		    "--replication-token-file %s: the secret must be %u-%u bytes "
		    "(trailing whitespace is ignored), e.g. from "
		    "`head -c 32 /dev/urandom | base64`; the same file on every broker",
		    path, HA_SECRET_MIN_BYTES, HA_SECRET_MAX_BYTES);
	}
	out->len = len;
	return 0;
}
