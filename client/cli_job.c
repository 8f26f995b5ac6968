/* jobmesh status, result and wait: one job by id.
 *
 * status exits 0 whenever it could show the job; result and wait exit by
 * the job's state (cli_exit_for_state), so a script can branch on
 * "completed", "failed", "cancelled" and "not finished" without parsing. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_input.h"
#include "cli_output.h"

/* jm_client_wait takes a uint32 of milliseconds; longer waits, and waits
 * without a limit, are made of several. */
#define JOB_WAIT_CALL_MAX_MS (24u * 3600 * 1000)
const struct jm_flag cli_wait_flags[] = {
    {"timeout", "SEC", "give up after SEC seconds, exit 12 (default: wait as long as it takes)",
     cli_set_timeout},
    CLI_FLAG_JSON,
    CLI_FLAG_HELP,
    {NULL, NULL, NULL, NULL},
};

/* Parses the command line of a one-job command into opts and *job_id.
 * Returns an exit code; *done when there is nothing more to do (help). */
static int job_args(const struct cli_command *self, void *opts, int argc, char **argv, int first,
                    uint64_t *job_id, bool *done)
{
	const char *operands[1];
	int operands_count = 0;
	int code = cli_command_operands(self, opts, argc, argv, first, "a job id", operands, 1,
	                                &operands_count, done);
	if (code != CLI_EXIT_OK || *done)
		return code;
	if (!cli_parse_job_id(operands[0], job_id))
		return cli_fail(
		    CLI_EXIT_USAGE, self->name,
		    "job id \"%s\" is invalid: use the decimal number printed by submit",
		    operands[0]);
	return CLI_EXIT_OK;
}

/* Prints the job as JSON on stdout; returns an exit code. */
static int job_print_json(const char *what, const jm_job_info *job, bool with_result)
{
	if (cli_print_json(stdout, cli_json_job(job, with_result)) != 0)
		return cli_fail(CLI_EXIT_ERROR, what, "printing job %" PRIu64 " as JSON failed",
		                job->id);
	return CLI_EXIT_OK;
}

struct status_opts {
	struct cli_opts common; /* first: the shared setters cast to it */
	bool payload;
};

static int status_set_payload(void *ctx, const char *value, struct jm_err *err)
{
	((struct status_opts *)ctx)->payload = true;
	return 0;
}

const struct jm_flag cli_status_flags[] = {
    {"payload", NULL, "show the job's payload too (text, or base64 in --json when binary)",
     status_set_payload},
    CLI_FLAG_JSON,
    CLI_FLAG_HELP,
    {NULL, NULL, NULL, NULL},
};

/* Without an id: every running batch. With one: the job, or, since job
 * and batch ids come from one counter, the batch of that id. */
int cli_status_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                   int first)
{
	struct status_opts sopts = {0};
	struct cli_opts opts;
	const char *operands[1];
	int operands_count = 0;
	bool done = false;
	int code =
	    cli_command_args(self, &sopts, argc, argv, first, operands, 1, &operands_count, &done);
	opts = sopts.common;
	if (code != CLI_EXIT_OK || done)
		return code;
	uint64_t job_id = 0;
	if (operands_count == 1 && !cli_parse_job_id(operands[0], &job_id))
		return cli_fail(CLI_EXIT_USAGE, self->name,
		                "id \"%s\" is invalid: use the decimal number printed by submit "
		                "or batch submit",
		                operands[0]);
	jm_client *client = cli_client(cli, "status", &code);
	if (client == NULL)
		return code;
	if (operands_count == 0)
		return cli_batch_list_running(client, opts.json);
	jm_job_info job;
	int rc = sopts.payload ? jm_client_status_payload(client, job_id, &job)
	                       : jm_client_status(client, job_id, &job);
	if (rc == JM_ENOTFOUND) {
		jm_job_info_fini(&job);
		jm_batch_info batch;
		rc = jm_client_batch_status(client, job_id, &batch);
		jm_batch_info_fini(&batch);
		if (rc == JM_ENOTFOUND)
			return cli_fail_not_found("status", "job or batch", job_id);
		if (rc != 0)
			return cli_fail_sdk(rc);
		return cli_batch_show(client, "status", job_id, opts.json);
	}
	if (rc != 0) {
		jm_job_info_fini(&job);
		return cli_fail_sdk(rc);
	}
	if (opts.json)
		code = job_print_json("status", &job, false);
	else
		cli_print_job(stdout, &job);
	jm_job_info_fini(&job);
	return code;
}

/* Runs fetch (jm_client_cancel, jm_client_result) on the job the command's
 * ID operand names. CLI_EXIT_OK with *job to fini, or the exit code to
 * return (*done: help was printed). */
static int job_fetch(struct cli *cli, const struct cli_command *self, struct cli_opts *opts,
                     int argc, char **argv, int first,
                     int (*fetch)(jm_client *, uint64_t, jm_job_info *), jm_job_info *job,
                     bool *done)
{
	uint64_t job_id = 0;
	int code = job_args(self, opts, argc, argv, first, &job_id, done);
	if (code != CLI_EXIT_OK || *done)
		return code;
	jm_client *client = cli_client(cli, self->name, &code);
	if (client == NULL)
		return code;
	int rc = fetch(client, job_id, job);
	if (rc != 0) {
		jm_job_info_fini(job);
		return rc == JM_ENOTFOUND ? cli_fail_not_found(self->name, "job", job_id)
		                          : cli_fail_sdk(rc);
	}
	return CLI_EXIT_OK;
}

int cli_cancel_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                   int first)
{
	struct cli_opts opts = {0};
	jm_job_info job;
	bool done = false;
	int code = job_fetch(cli, self, &opts, argc, argv, first, jm_client_cancel, &job, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	if (opts.json)
		code = job_print_json("cancel", &job, false);
	else
		cli_print_job_state_line(stdout, &job);
	jm_job_info_fini(&job);
	return code;
}

/* Says on stderr why a job has no result; returns the exit code for its
 * state. */
static int job_no_result(const char *what, const jm_job_info *job)
{
	int code = cli_exit_for_state(job->state);
	if (job->state == JM_STATE_COMPLETED)
		return cli_fail(CLI_EXIT_ERROR, what,
		                "job %" PRIu64 " completed but the broker sent no result", job->id);
	if (job->state == JM_STATE_FAILED && job->last_error != NULL &&
	    job->last_error[0] != '\0') {
		/* One line, whatever the worker wrote. */
		fflush(stdout);
		fprintf(stderr, "jobmesh: %s: job %" PRIu64 " failed after %u/%u attempts: ", what,
		        job->id, job->attempt, job->max_attempts);
		cli_print_text(stderr, job->last_error);
		fputc('\n', stderr);
		return code;
	}
	if (job->state == JM_STATE_FAILED || job->state == JM_STATE_CANCELLED)
		return cli_fail(code, what, "job %" PRIu64 " %s: it has no result", job->id,
		                jm_job_state_name(job->state));
	return cli_fail(code, what,
	                "job %" PRIu64
	                " is %s: no result yet; wait for it with: jobmesh wait %" PRIu64,
	                job->id, jm_job_state_name(job->state), job->id);
}

int cli_result_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                   int first)
{
	struct cli_opts opts = {0};
	jm_job_info job;
	bool done = false;
	int code = job_fetch(cli, self, &opts, argc, argv, first, jm_client_result, &job, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	bool completed = job.state == JM_STATE_COMPLETED && job.has_result;
	if (opts.json) {
		code = job_print_json("result", &job, true);
		if (code == CLI_EXIT_OK && !completed)
			code = job_no_result("result", &job);
	} else if (!completed) {
		code = job_no_result("result", &job);
	} else if (job.result_len != 0 &&
	           fwrite(job.result, 1, job.result_len, stdout) != job.result_len) {
		code = cli_fail(CLI_EXIT_ERROR, "result", "writing the result to stdout failed");
	}
	jm_job_info_fini(&job);
	return code;
}

int cli_wait_run(struct cli *cli, const struct cli_command *self, int argc, char **argv, int first)
{
	struct cli_timeout_opts opts = {0};
	uint64_t job_id = 0;
	bool done = false;
	int code = job_args(self, &opts, argc, argv, first, &job_id, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	jm_client *client = cli_client(cli, "wait", &code);
	if (client == NULL)
		return code;

	/* The SDK splits each call into short parked WAITs; this loop only
	 * stretches past what one call can take (or forever without
	 * --timeout). */
	uint64_t left_ms = opts.timeout_ms;
	jm_job_info job;
	int rc;
	for (;;) {
		uint32_t call_ms = JOB_WAIT_CALL_MAX_MS;
		if (opts.has_timeout && left_ms < call_ms)
			call_ms = (uint32_t)left_ms;
		rc = jm_client_wait(client, job_id, call_ms, &job);
		if (rc != JM_ETIMEDOUT)
			break;
		if (opts.has_timeout) {
			left_ms -= call_ms;
			if (left_ms == 0)
				break;
		}
		jm_job_info_fini(&job);
	}
	if (rc == JM_ENOTFOUND) {
		jm_job_info_fini(&job);
		return cli_fail_not_found("wait", "job", job_id);
	}
	return cli_report_waited("wait", &job, rc, opts.common.json, opts.timeout_ms);
}

int cli_report_waited(const char *what, jm_job_info *job, int rc, bool json, uint64_t timeout_ms)
{
	if (rc != 0 && rc != JM_ETIMEDOUT) {
		jm_job_info_fini(job);
		return cli_fail_sdk(rc);
	}
	int code = CLI_EXIT_OK;
	if (json)
		code = job_print_json(what, job, true);
	else
		cli_print_job_state_line(stdout, job);
	if (code == CLI_EXIT_OK) {
		code = cli_exit_for_state(job->state);
		if (rc == JM_ETIMEDOUT)
			code = cli_fail(CLI_EXIT_NOT_FINISHED, what,
			                "job %" PRIu64 " is still %s after %" PRIu64 " s", job->id,
			                jm_job_state_name(job->state), timeout_ms / 1000);
	}
	jm_job_info_fini(job);
	return code;
}
