/* What the jobmesh tool reads from users: job ids and bounded input.
 * Pure functions, checked by tests/unit/test_cli_json.c. */
#ifndef JM_CLIENT_CLI_INPUT_H
#define JM_CLIENT_CLI_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

/* Parses a job id as printed by submit: 1 to 20 decimal digits, nothing
 * else (no sign, spaces or 0x), no larger than UINT64_MAX. */
bool cli_parse_job_id(const char *text, uint64_t *out);

/* Reads in to its end into a malloc'd buffer (*out, NUL-terminated for
 * convenience, *out_len bytes). More than max_bytes is refused with
 * JM_ETOOBIG without reading on; a read error is JM_EIO. err's text names
 * source ("stdin", "payload file x") and the limit. */
int cli_read_bounded(FILE *in, const char *source, size_t max_bytes, char **out, size_t *out_len,
                     struct jm_err *err);

#endif
