/* jobmesh dead-letter list|retry|remove: the jobs a queue gave up on,
 * putting them back, and removing them for good. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_input.h"
#include "cli_output.h"

#define DEAD_LIMIT_DEFAULT 100

struct dead_opts {
	struct cli_opts common; /* first: the shared setters cast to it */
	unsigned limit;
};

static int dead_set_limit(void *ctx, const char *value, struct jm_err *err)
{
	unsigned long long limit;
	int rc = jm_parse_u64("limit", value, 1, JM_BATCH_JOBS_MAX, &limit, err);
	if (rc == 0)
		((struct dead_opts *)ctx)->limit = (unsigned)limit;
	return rc;
}

static const struct jm_flag dead_list_flags[] = {
    {"limit", "N", "show at most N jobs, oldest first (1..10000, default 100)", dead_set_limit},
    CLI_FLAG_JSON,
    CLI_FLAG_HELP,
    {NULL, NULL, NULL, NULL},
};

static int dead_list_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                         int first);
static int dead_retry_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                          int first);
static int dead_show_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                         int first);

static const struct cli_command dead_commands[] = {
    {"dead-letter list", dead_list_run, "QUEUE [--limit N] [--json]",
     "List the dead-lettered (failed) jobs of a queue, oldest first.",
     "Prints ID TYPE ATTEMPTS FAILED-AT ERROR; --json prints {\"queue\", \"jobs\": [job...]}.\n",
     dead_list_flags},
    {"dead-letter retry", dead_retry_run, "QUEUE [ID] [--json]",
     "Put dead-lettered jobs of a queue back to pending with fresh attempts: all of\n"
     "them, or only job ID.",
     "Prints how many jobs were revived and their ids; --json prints\n"
     "{\"queue\", \"revived\": [id...]}.\n",
     cli_json_flags},
    {"dead-letter remove", dead_retry_run, "QUEUE [ID] [--json]",
     "Remove dead-lettered jobs of a queue for good: all of them, or only job ID\n"
     "(all or none; admin role when the broker checks tokens).",
     "Prints how many jobs were removed and their ids; --json prints\n"
     "{\"queue\", \"removed\": [id...]}.\n",
     cli_json_flags},
    {"dead-letter show", dead_show_run, "QUEUE ID [--json]",
     "Inspect one dead-lettered job: its state, last error and payload.",
     "Exits 4 when ID is not a dead-lettered job of QUEUE.\n", cli_json_flags},
};

const struct cli_group cli_dead_group = {
    "dead-letter", dead_commands, sizeof dead_commands / sizeof dead_commands[0],
    "jobmesh dead-letter list QUEUE, jobmesh dead-letter show QUEUE ID, or jobmesh "
    "dead-letter retry|remove QUEUE [ID]"};

void cli_dead_help(FILE *out)
{
	cli_group_help(out, &cli_dead_group);
}

int cli_dead_run(struct cli *cli, const struct cli_command *self, int argc, char **argv, int first)
{
	(void)self;
	return cli_group_run(cli, &cli_dead_group, argc, argv, first);
}

static void dead_print_jobs(FILE *out, const jm_job_info *jobs, size_t count)
{
	fprintf(out, "%-20s  %-24s  %-8s  %-24s  %s\n", "ID", "TYPE", "ATTEMPTS", "FAILED-AT",
	        "ERROR");
	for (size_t i = 0; i < count; i++) {
		const jm_job_info *j = &jobs[i];
		char attempts[32];
		char failed_at[CLI_TIME_TEXT_MAX];
		char error[512];
		snprintf(attempts, sizeof attempts, "%u/%u", j->attempt, j->max_attempts);
		cli_format_time(failed_at, sizeof failed_at, j->updated_us);
		cli_format_text(error, sizeof error, j->last_error ? j->last_error : "");
		fprintf(out, "%-20" PRIu64 "  %-24s  %-8s  %-24s  %s\n", j->id, j->type, attempts,
		        failed_at, error[0] ? error : "-");
	}
}

static int dead_list_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                         int first)
{
	struct dead_opts opts = {.limit = DEAD_LIMIT_DEFAULT};
	const char *operands[1];
	int operands_count = 0;
	bool done = false;
	int code = cli_command_operands(self, &opts, argc, argv, first, "a queue", operands, 1,
	                                &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	jm_client *client = cli_client(cli, self->name, &code);
	if (client == NULL)
		return code;
	jm_job_info *jobs = NULL;
	size_t jobs_count = 0;
	int rc = jm_client_dead_list(client, operands[0], opts.limit, &jobs, &jobs_count);
	if (rc != 0)
		return cli_fail_sdk(rc);
	if (opts.common.json) {
		json_t *obj = json_object();
		json_t *list = json_array();
		int failed = obj == NULL || list == NULL;
		if (!failed) {
			failed |= json_object_set_new(obj, "queue", json_string(operands[0]));
			failed |= json_object_set(obj, "jobs", list);
		}
		for (size_t i = 0; i < jobs_count && !failed; i++)
			failed |= json_array_append_new(list, cli_json_job(&jobs[i], false));
		json_decref(list);
		if (failed) {
			json_decref(obj);
			obj = NULL;
		}
		if (cli_print_json(stdout, obj) != 0)
			code = cli_fail(CLI_EXIT_ERROR, self->name,
			                "printing the jobs as JSON failed");
	} else {
		dead_print_jobs(stdout, jobs, jobs_count);
	}
	jm_job_infos_free(jobs, jobs_count);
	return code;
}

static int dead_retry_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                          int first)
{
	struct dead_opts opts = {0};
	const char *operands[2];
	int operands_count = 0;
	bool done = false;
	int code = cli_command_operands(self, &opts, argc, argv, first, "a queue", operands, 2,
	                                &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	uint64_t job_id = 0;
	if (operands_count == 2 && (!cli_parse_job_id(operands[1], &job_id) || job_id == 0))
		return cli_fail(CLI_EXIT_USAGE, self->name,
		                "job id \"%s\" is invalid: use the decimal number printed by "
		                "submit",
		                operands[1]);
	jm_client *client = cli_client(cli, self->name, &code);
	if (client == NULL)
		return code;
	uint64_t *ids = NULL;
	size_t ids_count = 0;
	/* retry and remove differ only in the call and the words. */
	bool remove = strcmp(self->name, "dead-letter remove") == 0;
	const char *done_word = remove ? "removed" : "revived";
	int rc = remove ? jm_client_dead_remove(client, operands[0], job_id, &ids, &ids_count)
	                : jm_client_revive(client, operands[0], job_id, &ids, &ids_count);
	if (rc != 0)
		return cli_fail_sdk(rc);
	if (opts.common.json) {
		json_t *obj = json_object();
		json_t *list = json_array();
		int failed = obj == NULL || list == NULL;
		if (!failed) {
			failed |= json_object_set_new(obj, "queue", json_string(operands[0]));
			failed |= json_object_set(obj, done_word, list);
		}
		for (size_t i = 0; i < ids_count && !failed; i++)
			failed |= json_array_append_new(list, cli_json_u64(ids[i]));
		json_decref(list);
		if (failed) {
			json_decref(obj);
			obj = NULL;
		}
		if (cli_print_json(stdout, obj) != 0)
			code = cli_fail(CLI_EXIT_ERROR, self->name,
			                "printing the %s ids as JSON failed", done_word);
	} else {
		printf("%s %zu job%s", done_word, ids_count, ids_count == 1 ? "" : "s");
		for (size_t i = 0; i < ids_count; i++)
			printf("%s%" PRIu64, i == 0 ? ": " : " ", ids[i]);
		printf("\n");
	}
	free(ids);
	return code;
}

static int dead_show_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                         int first)
{
	struct cli_opts opts = {0};
	const char *operands[2];
	int operands_count = 0;
	bool done = false;
	int code = cli_command_operands(self, &opts, argc, argv, first, "a queue and a job id",
	                                operands, 2, &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	uint64_t job_id = 0;
	if (operands_count != 2 || !cli_parse_job_id(operands[1], &job_id))
		return cli_fail(
		    CLI_EXIT_USAGE, self->name,
		    "give QUEUE and the job's decimal id (dead-letter list shows them)");
	jm_client *client = cli_client(cli, self->name, &code);
	if (client == NULL)
		return code;
	jm_job_info job;
	int rc = jm_client_status_payload(client, job_id, &job);
	if (rc == 0 && (strcmp(job.queue, operands[0]) != 0 || job.state != JM_STATE_FAILED)) {
		code = cli_fail(CLI_EXIT_NOT_FOUND, self->name,
		                "job %" PRIu64 " is not dead-lettered in queue %s (it is %s in %s)",
		                job_id, operands[0], jm_job_state_name(job.state), job.queue);
	} else if (rc == JM_ENOTFOUND) {
		code = cli_fail_not_found(self->name, "job", job_id);
	} else if (rc != 0) {
		code = cli_fail_sdk(rc);
	} else if (opts.json) {
		if (cli_print_json(stdout, cli_json_job(&job, false)) != 0)
			code =
			    cli_fail(CLI_EXIT_ERROR, self->name, "printing the job as JSON failed");
	} else {
		cli_print_job(stdout, &job);
	}
	jm_job_info_fini(&job);
	return code;
}
