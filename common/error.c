/* The one table of error codes and their texts (see jobmesh/error.h). */
#include <jobmesh/error.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static const char *const error_texts[] = {
    [0] = "success",
    [-JM_EINVAL] = "invalid argument",
    [-JM_ENOMEM] = "out of memory",
    [-JM_EPROTO] = "malformed message",
    [-JM_EVERSION] = "unsupported version",
    [-JM_ETOOBIG] = "too large",
    [-JM_ENOTFOUND] = "not found",
    [-JM_ESTALE] = "stale lease: the job was given to another worker",
    [-JM_ETIMEDOUT] = "timed out",
    [-JM_EIO] = "input/output error",
    [-JM_ECORRUPT] = "corrupt data",
    [-JM_ECLOSED] = "closed",
    [-JM_ETRANSPORT] = "broker unreachable",
    [-JM_ENOSPC] = "journal not writable: no space left",
    [-JM_EBADNAME] = "invalid name",
    [-JM_ESTATE] = "not allowed in the job's current state",
    [-JM_EUNSUPPORTED] = "unsupported request",
    [-JM_ELIMIT] = "limit reached",
    [-JM_EAUTH] = "authentication required",
    [-JM_EFORBIDDEN] = "forbidden",
    [-JM_ENOTLEADER] = "not the leader",
    [-JM_ENOSTANDBY] = "no standby in sync: writes are refused",
};

const char *jm_strerror(int code)
{
	int index = -code;
	if (index < 0 || index >= (int)(sizeof error_texts / sizeof error_texts[0]) ||
	    error_texts[index] == NULL)
		return "unknown error";
	return error_texts[index];
}

int jm_err_set(struct jm_err *err, int code, const char *fmt, ...)
{
	if (err == NULL)
		return code;
	err->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return code;
}

int jm_err_prefix(struct jm_err *err, const char *fmt, ...)
{
	if (err == NULL)
		return JM_EINVAL;
	char prefix[JM_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	char old[JM_ERR_MSG_MAX];
	snprintf(old, sizeof old, "%s", jm_err_text(err));
	size_t used = strlen(prefix);
	if (used > sizeof err->msg - 3)
		used = sizeof err->msg - 3;
	memcpy(err->msg, prefix, used);
	memcpy(err->msg + used, ": ", 2);
	used += 2;
	size_t rest = strlen(old);
	if (rest > sizeof err->msg - 1 - used)
		rest = sizeof err->msg - 1 - used;
	memcpy(err->msg + used, old, rest);
	err->msg[used + rest] = '\0';
	return err->code;
}

const char *jm_err_text(const struct jm_err *err)
{
	if (err->msg[0] != '\0')
		return err->msg;
	return jm_strerror(err->code);
}

void jm_err_clear(struct jm_err *err)
{
	if (err == NULL)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}
