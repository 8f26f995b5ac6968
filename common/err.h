/* An error with context. Each layer that passes an error up may prefix what
 * it was doing, so the operator reads a path to the fault:
 *   journal 000001.log: record at byte 4096: checksum mismatch
 * A struct jm_err is small and lives on the caller's stack. */
#ifndef JM_COMMON_ERR_H
#define JM_COMMON_ERR_H

#include <jobmesh/error.h>

#define JM_ERR_MSG_MAX 512

struct jm_err {
	int code;
	char msg[JM_ERR_MSG_MAX];
};

/* Records code and a formatted message in err (err may be NULL) and returns
 * code, so callers write `return jm_err_set(err, JM_EINVAL, "...")`. */
int jm_err_set(struct jm_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Puts "<prefix>: " in front of err's message; returns err->code. */
int jm_err_prefix(struct jm_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message, or jm_strerror(code) when none was set. */
const char *jm_err_text(const struct jm_err *err);

void jm_err_clear(struct jm_err *err);

#endif
