/* Batch files for "jobmesh batch submit": JSON Lines, one job per line.
 *
 *   {"queue": "emails", "type": "send", "payload": {"to": "a@b.c"},
 *    "priority": 0, "max_attempts": 3, "delay_ms": 0, "timeout_ms": 0,
 *    "key": "order-4711", "group": "tenant-42"}
 *
 * queue and type are required strings; payload is optional: a JSON string
 * is used as the payload bytes as-is, any other JSON value is serialised
 * compactly and those bytes are the payload. The numbers are optional.
 * key is the job's optional idempotency key (as submit --key): a file sent
 * again with the same keys gets the same batch and job ids.
 * Blank lines (only spaces or tabs) are skipped. Parsing is pure (jansson
 * only), checked by tests/unit/test_cli_batchfile.c. */
#ifndef JM_CLIENT_CLI_BATCHFILE_H
#define JM_CLIENT_CLI_BATCHFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jobmesh/client.h>

#include "err.h"

/* One parsed job: spec's names and payload point into this struct. */
struct cli_batch_job {
	char queue[65];
	char type[65];
	char key[129];  /* "" for none: PROTO_KEY_MAX printable bytes */
	char group[65]; /* "" when the line gives none */
	char *payload;  /* malloc'd (NULL for no payload) */
	jm_job_spec spec;
};

/* The jobs of a file, in order. */
struct cli_batch_file {
	struct cli_batch_job *jobs;
	size_t jobs_count;
	jm_job_spec *specs; /* jobs_count specs, for jm_client_submit_many */
};

void cli_batch_file_fini(struct cli_batch_file *file); /* accepts zeroed */

/* True for a line of only spaces, tabs and a trailing CR. */
bool cli_batch_line_is_blank(const char *line, size_t len);

/* Parses one line (len bytes, no newline) into *job (zeroed first). On
 * error returns JM_EINVAL, JM_EBADNAME or JM_ETOOBIG with err saying what
 * is wrong ("\"queue\" is missing", "not JSON: ... at column 7"), without
 * the line number, and *job needs no fini; else 0 and the caller frees
 * job->payload. */
int cli_batch_parse_line(const char *line, size_t len, struct cli_batch_job *job,
                         struct jm_err *err);

/* Reads every line of in (named source in messages), at most max_jobs jobs.
 * On error the message starts with "<source>: line N: ". Returns 0, or
 * JM_EINVAL, JM_EBADNAME, JM_ETOOBIG, JM_ELIMIT (too many jobs; also for no
 * jobs at all), JM_EIO, JM_ENOMEM; *file is zeroed on error. */
int cli_batch_read(FILE *in, const char *source, size_t max_jobs, struct cli_batch_file *file,
                   struct jm_err *err);

#endif
