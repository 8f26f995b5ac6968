/* jobmesh submit: one job from flags, its payload from a flag, a file or
 * stdin; prints the new id.
 *
 * Names and numbers are checked twice on purpose: the flag setters refuse
 * what is not a number at all (a usage error, exit 2), and the SDK refuses
 * what breaks the wire rules with the same words the broker would use (a
 * refused request, exit 1). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_input.h"
#include "cli_output.h"
#include "proto_limits.h"
#include "rfc3339.h"

/* No delay or run timeout may overflow when the broker turns it into
 * microseconds. */
#define SUBMIT_MS_MAX (UINT64_MAX / 1000)

struct submit_opts {
	struct cli_opts common; /* first: the shared setters cast to it */
	jm_job_spec spec;
	const char *payload_text;
	const char *payload_file;
	int payload_sources;
	bool stdin_lines;
	bool wait;
	uint64_t wait_ms;
};

static int submit_set_queue(void *ctx, const char *value, struct jm_err *err)
{
	((struct submit_opts *)ctx)->spec.queue = value;
	return 0;
}

static int submit_set_type(void *ctx, const char *value, struct jm_err *err)
{
	((struct submit_opts *)ctx)->spec.type = value;
	return 0;
}

static int submit_set_payload(void *ctx, const char *value, struct jm_err *err)
{
	struct submit_opts *opts = ctx;
	opts->payload_text = value;
	opts->payload_file = NULL;
	opts->payload_sources++;
	return 0;
}

static int submit_set_payload_file(void *ctx, const char *value, struct jm_err *err)
{
	struct submit_opts *opts = ctx;
	opts->payload_file = value;
	opts->payload_text = NULL;
	opts->payload_sources++;
	return 0;
}

static int submit_set_stdin_lines(void *ctx, const char *value, struct jm_err *err)
{
	((struct submit_opts *)ctx)->stdin_lines = true;
	return 0;
}

static int submit_set_wait(void *ctx, const char *value, struct jm_err *err)
{
	struct submit_opts *opts = ctx;
	int rc = cli_parse_wait_seconds("wait", value, &opts->wait_ms, err);
	opts->wait = opts->wait || rc == 0;
	return rc;
}

static int submit_set_priority(void *ctx, const char *value, struct jm_err *err)
{
	long long priority;
	int rc =
	    jm_parse_i64("priority", value, PROTO_PRIORITY_MIN, PROTO_PRIORITY_MAX, &priority, err);
	if (rc == 0)
		((struct submit_opts *)ctx)->spec.priority = (int)priority;
	return rc;
}

static int submit_set_max_attempts(void *ctx, const char *value, struct jm_err *err)
{
	unsigned long long attempts;
	int rc = jm_parse_u64("max-attempts", value, 1, PROTO_ATTEMPTS_MAX, &attempts, err);
	if (rc == 0)
		((struct submit_opts *)ctx)->spec.max_attempts = (unsigned)attempts;
	return rc;
}

static int submit_set_delay_ms(void *ctx, const char *value, struct jm_err *err)
{
	unsigned long long delay_ms;
	int rc = jm_parse_u64("delay-ms", value, 0, SUBMIT_MS_MAX, &delay_ms, err);
	if (rc == 0)
		((struct submit_opts *)ctx)->spec.delay_ms = delay_ms;
	return rc;
}

static int submit_set_timeout_ms(void *ctx, const char *value, struct jm_err *err)
{
	unsigned long long timeout_ms;
	int rc = jm_parse_u64("timeout-ms", value, 0, SUBMIT_MS_MAX, &timeout_ms, err);
	if (rc == 0)
		((struct submit_opts *)ctx)->spec.timeout_ms = timeout_ms;
	return rc;
}

static int submit_set_key(void *ctx, const char *value, struct jm_err *err)
{
	((struct submit_opts *)ctx)->spec.idempotency_key = value;
	return 0;
}

static int submit_set_group(void *ctx, const char *value, struct jm_err *err)
{
	((struct submit_opts *)ctx)->spec.group = value;
	return 0;
}

static int submit_set_run_at(void *ctx, const char *value, struct jm_err *err)
{
	return jm_rfc3339_parse(value, &((struct submit_opts *)ctx)->spec.run_at_us, err);
}

const struct jm_flag cli_submit_flags[] = {
    {"queue", "Q", "queue to put the job on (required)", submit_set_queue},
    {"type", "T", "job type, which selects the worker's handler (required)", submit_set_type},
    {"payload", "S", "payload bytes given inline", submit_set_payload},
    {"payload-file", "F", "payload read from file F (\"-\": stdin)", submit_set_payload_file},
    {"stdin-lines", NULL,
     "one job per line of stdin, the line its payload; prints the ids in input order",
     submit_set_stdin_lines},
    {"priority", "N", "-1000..1000, higher runs first (default 0)", submit_set_priority},
    {"max-attempts", "N", "1..1000 attempts before dead-letter (default: the queue's, 3)",
     submit_set_max_attempts},
    {"delay-ms", "N", "run no sooner than N ms from now (default 0)", submit_set_delay_ms},
    {"run-at", "TIME",
     "run no sooner than TIME, RFC 3339 (2026-12-01T09:30:00Z, or with an offset +01:00); "
     "not with --delay-ms",
     submit_set_run_at},
    {"timeout-ms", "N", "run timeout per attempt (default: the queue's)", submit_set_timeout_ms},
    {"key", "KEY",
     "idempotency key: a second submit with KEY to the queue within the broker's key window "
     "(default 24 h) prints the first job's id and adds no job (1-128 printable ASCII)",
     submit_set_key},
    {"group", "G",
     "fair tenants: the job's group (e.g. tenant-42); within the queue the groups with ready "
     "jobs take turns (1-64 of A-Z a-z 0-9 . _ -)",
     submit_set_group},
    {"wait", "SEC",
     "wait up to SEC seconds for the job to finish, in the same request (one round trip): "
     "prints its final state line as wait does (--json: the job with its result) and exits "
     "by its state, or 12 when SEC passed first",
     submit_set_wait},
    CLI_FLAG_JSON,
    CLI_FLAG_HELP,
    {NULL, NULL, NULL, NULL},
};

/* Loads the payload named by the options into *data (malloc'd, or NULL for
 * inline text and no payload); returns an exit code. */
static int submit_load_payload(struct submit_opts *opts, char **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	if (opts->payload_text != NULL) {
		opts->spec.payload = opts->payload_text;
		opts->spec.payload_len = strlen(opts->payload_text);
		return CLI_EXIT_OK;
	}
	if (opts->payload_file == NULL)
		return CLI_EXIT_OK;

	struct jm_err err;
	jm_err_clear(&err);
	bool from_stdin = strcmp(opts->payload_file, "-") == 0;
	char source[512];
	if (from_stdin) {
		snprintf(source, sizeof source, "payload from stdin");
	} else {
		snprintf(source, sizeof source, "payload file \"%s\"", opts->payload_file);
	}
	FILE *in = from_stdin ? stdin : fopen(opts->payload_file, "rb");
	if (in == NULL)
		return cli_fail(CLI_EXIT_ERROR, "submit", "%s: %s", source, strerror(errno));
	int rc = cli_read_bounded(in, source, JM_PAYLOAD_MAX_BYTES, data, len, &err);
	if (!from_stdin)
		fclose(in);
	if (rc != 0)
		return cli_fail(CLI_EXIT_ERROR, "submit", "%s", jm_err_text(&err));
	opts->spec.payload = *data;
	opts->spec.payload_len = *len;
	return CLI_EXIT_OK;
}

int cli_submit_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                   int first)
{
	struct submit_opts opts = {0};
	const char *operands[1];
	int operands_count = 0;
	bool done = false;
	int code =
	    cli_command_args(self, &opts, argc, argv, first, operands, 1, &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	if (operands_count == 1) {
		if (strcmp(operands[0], "-") != 0)
			return cli_fail(CLI_EXIT_USAGE, "submit",
			                "unexpected argument \"%s\": the payload comes from "
			                "--payload S, --payload-file F or \"-\" for stdin",
			                operands[0]);
		opts.payload_file = "-";
		opts.payload_text = NULL;
		opts.payload_sources++;
	}
	if (opts.payload_sources > 1)
		return cli_fail(CLI_EXIT_USAGE, "submit",
		                "give the payload once: --payload S, --payload-file F or \"-\"");
	if (opts.spec.queue == NULL)
		return cli_fail(CLI_EXIT_USAGE, "submit", "--queue Q is required");
	if (opts.spec.type == NULL)
		return cli_fail(CLI_EXIT_USAGE, "submit", "--type T is required");

	if (opts.stdin_lines) {
		if (opts.wait)
			return cli_fail(CLI_EXIT_USAGE, "submit",
			                "--wait waits for one job: not with --stdin-lines");
		if (opts.payload_sources > 0)
			return cli_fail(CLI_EXIT_USAGE, "submit",
			                "--stdin-lines takes each payload from a line of stdin: "
			                "drop --payload, --payload-file and \"-\"");
		return cli_submit_lines(cli, &opts.spec, opts.common.json);
	}

	char *payload = NULL;
	size_t payload_len = 0;
	code = submit_load_payload(&opts, &payload, &payload_len);
	if (code != CLI_EXIT_OK)
		return code;

	jm_client *client = cli_client(cli, "submit", &code);
	if (client == NULL)
		goto done_free_payload;
	if (opts.wait) {
		jm_job_info job;
		int rc = jm_client_submit_wait(client, &opts.spec, (uint32_t)opts.wait_ms, &job);
		code = cli_report_waited("submit", &job, rc, opts.common.json, opts.wait_ms);
		goto done_free_payload;
	}
	uint64_t job_id = 0;
	int rc = jm_client_submit(client, &opts.spec, &job_id);
	if (rc != 0) {
		code = cli_fail_sdk(rc);
		goto done_free_payload;
	}
	if (opts.common.json) {
		json_t *obj = json_object();
		if (obj != NULL && json_object_set_new(obj, "id", cli_json_u64(job_id)) != 0) {
			json_decref(obj);
			obj = NULL;
		}
		if (cli_print_json(stdout, obj) != 0)
			code =
			    cli_fail(CLI_EXIT_ERROR, "submit",
			             "job %" PRIu64 " submitted, but printing it failed", job_id);
	} else {
		printf("%" PRIu64 "\n", job_id);
	}
done_free_payload:
	free(payload);
	return code;
}
