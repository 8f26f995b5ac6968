/* jobmesh batch submit|status, and the list of running batches that
 * "jobmesh status" prints without an id.
 *
 * A batch file goes out as one SUBMIT with as_batch (one round trip, all or
 * none), so it holds at most JM_BATCH_JOBS_MAX jobs. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli_batchfile.h"
#include "cli_common.h"
#include "cli_input.h"
#include "cli_output.h"

static int batch_submit_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                            int first);
static int batch_status_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                            int first);

static const struct cli_command batch_commands[] = {
    {"batch submit", batch_submit_run, "FILE|- [--json]",
     "Submit the jobs of a JSON Lines file (\"-\": stdin) as one batch; print its id.",
     "One job per line: {\"queue\": Q, \"type\": T, \"payload\": P} with optional\n"
     "\"priority\", \"max_attempts\", \"delay_ms\", \"timeout_ms\" and \"key\" (the job's\n"
     "idempotency key, as submit --key: the file sent again gets the same ids). A string payload "
     "is\n"
     "used as-is; any other JSON value is sent compactly serialised. Blank lines\n"
     "are skipped. At most 10000 jobs, sent in one request: all or none.\n"
     "--json prints {\"batch_id\": N, \"jobs\": COUNT, \"job_ids\": [...]}.\n",
     cli_json_flags},
    {"batch status", batch_status_run, "ID [--json]",
     "Show a batch: total, completed, failed, cancelled, active, percent, state,\n"
     "current operation, latest errors, started and finished times.",
     "Exits 0 whenever the batch was found, whatever its state.\n", cli_json_flags},
};

const struct cli_group cli_batch_group = {"batch", batch_commands,
                                          sizeof batch_commands / sizeof batch_commands[0],
                                          "jobmesh batch submit FILE, or jobmesh batch status ID"};

int cli_batch_run(struct cli *cli, const struct cli_command *self, int argc, char **argv, int first)
{
	(void)self;
	return cli_group_run(cli, &cli_batch_group, argc, argv, first);
}

void cli_batch_help(FILE *out)
{
	cli_group_help(out, &cli_batch_group);
}

static int batch_submit_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                            int first)
{
	struct cli_opts opts = {0};
	const char *operands[1];
	int operands_count = 0;
	bool done = false;
	int code =
	    cli_command_args(self, &opts, argc, argv, first, operands, 1, &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	if (operands_count == 0)
		return cli_fail(CLI_EXIT_USAGE, self->name,
		                "a file is required (\"-\" for stdin); usage: jobmesh %s %s",
		                self->name, self->args);
	bool from_stdin = strcmp(operands[0], "-") == 0;
	char source[512];
	snprintf(source, sizeof source, from_stdin ? "stdin" : "batch file \"%s\"", operands[0]);
	FILE *in = from_stdin ? stdin : fopen(operands[0], "r");
	if (in == NULL)
		return cli_fail(CLI_EXIT_ERROR, self->name, "%s: %s", source, strerror(errno));
	struct cli_batch_file file;
	struct jm_err err;
	jm_err_clear(&err);
	int rc = cli_batch_read(in, source, JM_BATCH_JOBS_MAX, &file, &err);
	if (!from_stdin)
		fclose(in);
	if (rc != 0)
		return cli_fail(CLI_EXIT_ERROR, self->name, "%s", jm_err_text(&err));

	jm_client *client = cli_client(cli, self->name, &code);
	if (client == NULL)
		goto done_free_file;
	uint64_t *job_ids = calloc(file.jobs_count, sizeof *job_ids);
	if (job_ids == NULL) {
		code = cli_fail(CLI_EXIT_ERROR, self->name, "out of memory for %zu jobs",
		                file.jobs_count);
		goto done_free_file;
	}
	uint64_t batch_id = 0;
	rc = jm_client_submit_many(client, file.specs, file.jobs_count, true, job_ids, &batch_id);
	if (rc != 0) {
		free(job_ids);
		code = cli_fail_sdk(rc);
		goto done_free_file;
	}
	if (opts.json) {
		json_t *obj = json_object();
		json_t *ids = json_array();
		for (size_t i = 0; ids != NULL && i < file.jobs_count; i++)
			if (json_array_append_new(ids, cli_json_u64(job_ids[i])) != 0) {
				json_decref(ids);
				ids = NULL;
			}
		if (obj != NULL &&
		    (ids == NULL ||
		     json_object_set_new(obj, "batch_id", cli_json_u64(batch_id)) != 0 ||
		     json_object_set_new(obj, "jobs", cli_json_u64(file.jobs_count)) != 0 ||
		     json_object_set_new(obj, "job_ids", ids) != 0)) {
			json_decref(obj);
			obj = NULL;
		} else if (obj == NULL) {
			json_decref(ids);
		}
		if (cli_print_json(stdout, obj) != 0)
			code = cli_fail(CLI_EXIT_ERROR, self->name,
			                "batch %" PRIu64 " submitted, but printing it failed",
			                batch_id);
	} else {
		printf("%" PRIu64 "\n", batch_id);
	}
	free(job_ids);
done_free_file:
	cli_batch_file_fini(&file);
	return code;
}

/* No batch has that id. Ids come from one counter, so it may name a job:
 * then say so and point at the command that shows it. Exit 4 either way. */
static int batch_not_found(jm_client *client, const char *what, uint64_t id)
{
	jm_job_info job;
	int rc = jm_client_status(client, id, &job);
	jm_job_info_fini(&job);
	if (rc == 0)
		return cli_fail(CLI_EXIT_NOT_FOUND, what,
		                "%" PRIu64 " is a job, not a batch: see it with \"jobmesh status "
		                "%" PRIu64 "\"",
		                id, id);
	return cli_fail_not_found(what, "batch", id);
}

int cli_batch_show(jm_client *client, const char *what, uint64_t batch_id, bool json)
{
	jm_batch_info batch;
	int rc = jm_client_batch_status(client, batch_id, &batch);
	if (rc != 0) {
		jm_batch_info_fini(&batch);
		return rc == JM_ENOTFOUND ? batch_not_found(client, what, batch_id)
		                          : cli_fail_sdk(rc);
	}
	int code = CLI_EXIT_OK;
	if (json) {
		if (cli_print_json(stdout, cli_json_batch(&batch)) != 0)
			code = cli_fail(CLI_EXIT_ERROR, what,
			                "printing batch %" PRIu64 " as JSON failed", batch_id);
	} else {
		cli_print_batch(stdout, &batch);
	}
	jm_batch_info_fini(&batch);
	return code;
}

static int batch_status_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                            int first)
{
	struct cli_opts opts = {0};
	const char *operands[1];
	int operands_count = 0;
	bool done = false;
	uint64_t batch_id = 0;
	int code = cli_command_operands(self, &opts, argc, argv, first, "a batch id", operands, 1,
	                                &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	if (!cli_parse_job_id(operands[0], &batch_id))
		return cli_fail(CLI_EXIT_USAGE, self->name,
		                "batch id \"%s\" is invalid: use the decimal number printed by "
		                "batch submit",
		                operands[0]);
	jm_client *client = cli_client(cli, self->name, &code);
	if (client == NULL)
		return code;
	return cli_batch_show(client, self->name, batch_id, opts.json);
}

int cli_batch_list_running(jm_client *client, bool json)
{
	jm_batch_info *batches = NULL;
	size_t batches_count = 0;
	int rc = jm_client_batches(client, &batches, &batches_count);
	if (rc != 0)
		return cli_fail_sdk(rc);
	int code = CLI_EXIT_OK;
	if (json) {
		if (cli_print_json(stdout, cli_json_batches(batches, batches_count)) != 0)
			code = cli_fail(CLI_EXIT_ERROR, "status",
			                "printing the running batches as JSON failed");
	} else {
		if (batches_count == 0)
			printf("no operations in progress\n");
		else
			printf("%zu operation%s in progress\n", batches_count,
			       batches_count == 1 ? "" : "s");
		for (size_t i = 0; i < batches_count; i++) {
			const jm_batch_info *b = &batches[i];
			char operation[256];
			cli_format_text(operation, sizeof operation,
			                b->current_operation ? b->current_operation : "");
			printf("  batch %" PRIu64 "  %3u%%  %" PRIu64 "/%" PRIu64 " done, %" PRIu64
			       " failed  %s\n",
			       b->id, cli_batch_percent(b), cli_batch_finished(b), b->total,
			       b->failed + b->cancelled, operation[0] ? operation : "-");
		}
	}
	jm_batch_infos_free(batches, batches_count);
	return code;
}
