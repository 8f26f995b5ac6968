/* What the jobmesh commands share: error lines, exit codes, argument
 * parsing with operands between flags, and the lazily opened client.
 *
 * Exit codes come from one table of meanings (enum cli_exit); SDK error
 * codes and job states map onto them only here. */
#include "cli_common.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char cli_exit_codes_help[] =
    "Exit codes:\n"
    "  0   success; for result, wait and watch: the job or batch completed\n"
    "  1   error: the request was refused or failed (message on stderr)\n"
    "  2   usage error: bad command, flag or argument\n"
    "  3   broker unreachable, or no reply in time\n"
    "  4   job or batch not found\n"
    "  10  the job failed (dead-lettered); the batch finished with failures\n"
    "  11  the job was cancelled; the batch finished with cancelled jobs\n"
    "  12  not finished: wait or watch timed out, or result of a job still\n"
    "      pending, delayed or active\n";

int cli_set_help(void *ctx, const char *value, struct jm_err *err)
{
	((struct cli_opts *)ctx)->help = true;
	return 0;
}

int cli_set_json(void *ctx, const char *value, struct jm_err *err)
{
	((struct cli_opts *)ctx)->json = true;
	return 0;
}

int cli_parse_wait_seconds(const char *flag, const char *value, uint64_t *ms, struct jm_err *err)
{
	unsigned long long seconds;
	int rc = jm_parse_u64(flag, value, 0, CLI_WAIT_SEC_MAX, &seconds, err);
	if (rc == 0)
		*ms = seconds * 1000;
	return rc;
}

int cli_set_timeout(void *ctx, const char *value, struct jm_err *err)
{
	struct cli_timeout_opts *opts = ctx;
	int rc = cli_parse_wait_seconds("timeout", value, &opts->timeout_ms, err);
	opts->has_timeout = opts->has_timeout || rc == 0;
	return rc;
}

/* "submit", "status": a subcommand's name without its group's. */
static const char *group_word(const struct cli_group *group, const struct cli_command *cmd)
{
	return cmd->name + strlen(group->name) + 1;
}

/* The subcommand words joined by sep, last_sep before the last one. */
static void group_words(const struct cli_group *group, const char *sep, const char *last_sep,
                        char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < group->count && used < size; i++) {
		int n = snprintf(buf + used, size - used, "%s%s",
		                 i == 0                  ? ""
		                 : i + 1 == group->count ? last_sep
		                                         : sep,
		                 group_word(group, &group->commands[i]));
		used += n > 0 ? (size_t)n : 0;
	}
}

void cli_group_help(FILE *out, const struct cli_group *group)
{
	char words[256];
	group_words(group, "|", "|", words, sizeof words);
	fprintf(out, "usage: jobmesh [global flags] %s %s ...\n\n", group->name, words);
	for (size_t i = 0; i < group->count; i++)
		fprintf(out, "  jobmesh %s %s\n      %s\n", group->commands[i].name,
		        group->commands[i].args, group->commands[i].summary);
	fprintf(out, "\nRun \"jobmesh %s --help\" for a subcommand's details.\n\n%s",
	        group->commands[0].name, cli_exit_codes_help);
}

const struct cli_command *cli_group_find(const struct cli_group *group, const char *word)
{
	for (size_t i = 0; i < group->count; i++) {
		if (strcmp(group_word(group, &group->commands[i]), word) == 0)
			return &group->commands[i];
	}
	return NULL;
}

int cli_group_run(struct cli *cli, const struct cli_group *group, int argc, char **argv, int first)
{
	if (first >= argc)
		return cli_fail(CLI_EXIT_USAGE, group->name, "name a subcommand: %s",
		                group->missing_hint);
	if (strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "help") == 0) {
		cli_group_help(stdout, group);
		return CLI_EXIT_OK;
	}
	const struct cli_command *cmd = cli_group_find(group, argv[first]);
	if (cmd != NULL)
		return cmd->run(cli, cmd, argc, argv, first + 1);
	char choices[256];
	group_words(group, ", ", " or ", choices, sizeof choices);
	return cli_fail(CLI_EXIT_USAGE, group->name, "unknown subcommand \"%s\": use %s",
	                argv[first], choices);
}

const struct jm_flag cli_json_flags[] = {
    CLI_FLAG_JSON,
    CLI_FLAG_HELP,
    {NULL, NULL, NULL, NULL},
};

const struct jm_flag cli_help_flags[] = {
    CLI_FLAG_HELP,
    {NULL, NULL, NULL, NULL},
};

int cli_fail(int exit_code, const char *what, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	/* Flush results already printed so the two streams stay in order on a
	 * shared terminal. */
	fflush(stdout);
	if (what != NULL)
		fprintf(stderr, "jobmesh: %s: %s\n", what, detail);
	else
		fprintf(stderr, "jobmesh: %s\n", detail);
	return exit_code;
}

int cli_fail_not_found(const char *what, const char *kind, uint64_t id)
{
	return cli_fail(CLI_EXIT_NOT_FOUND, what,
	                "%s %" PRIu64 " not found: no such id, or its retention ran out", kind, id);
}

int cli_exit_for_error(int rc)
{
	switch (rc) {
	case 0:
		return CLI_EXIT_OK;
	case JM_ETRANSPORT:
	case JM_ETIMEDOUT:
	case JM_ECLOSED:
		return CLI_EXIT_UNREACHABLE;
	case JM_ENOTFOUND:
		return CLI_EXIT_NOT_FOUND;
	default:
		return CLI_EXIT_ERROR;
	}
}

int cli_fail_sdk(int rc)
{
	const char *text = jm_client_last_error();
	int code = cli_exit_for_error(rc);
	fflush(stdout);
	fprintf(stderr, "jobmesh: %s%s\n", text[0] != '\0' ? text : jm_strerror(rc),
	        code == CLI_EXIT_UNREACHABLE
	            ? "; is jobmesh-broker running there? (set --broker URL or JOBMESH_BROKER)"
	            : "");
	return code;
}

int cli_exit_for_state(int state)
{
	switch (state) {
	case JM_STATE_COMPLETED:
		return CLI_EXIT_OK;
	case JM_STATE_FAILED:
		return CLI_EXIT_JOB_FAILED;
	case JM_STATE_CANCELLED:
		return CLI_EXIT_JOB_CANCELLED;
	default:
		return CLI_EXIT_NOT_FINISHED;
	}
}

int cli_exit_for_batch(const jm_batch_info *batch)
{
	switch (batch->state) {
	case JM_BATCH_COMPLETED:
		return CLI_EXIT_OK;
	case JM_BATCH_FAILED:
		return batch->failed == 0 && batch->cancelled > 0 ? CLI_EXIT_JOB_CANCELLED
		                                                  : CLI_EXIT_JOB_FAILED;
	default:
		return CLI_EXIT_NOT_FINISHED;
	}
}

void cli_command_help(FILE *out, const struct cli_command *cmd)
{
	fprintf(out, "usage: jobmesh [global flags] %s %s\n\n%s\n", cmd->name, cmd->args,
	        cmd->summary);
	if (cmd->details != NULL)
		fprintf(out, "\n%s", cmd->details);
	if (cmd->flags != NULL) {
		fprintf(out, "\nFlags:\n");
		jm_flags_print(out, cmd->flags);
	}
	fprintf(out, "\n%s", cli_exit_codes_help);
}

int cli_command_args(const struct cli_command *cmd, void *opts, int argc, char **argv, int first,
                     const char **positionals, int positionals_max, int *positionals_count,
                     bool *done)
{
	struct cli_opts *common = opts;
	struct jm_err err;
	jm_err_clear(&err);
	*positionals_count = 0;
	*done = false;
	int i = first;
	bool flags_ended = false;
	while (i < argc) {
		if (!flags_ended) {
			int rest = argc;
			if (jm_flags_parse(cmd->flags, opts, argc, argv, i, &rest, &err) != 0)
				return cli_fail(CLI_EXIT_USAGE, cmd->name, "%s", jm_err_text(&err));
			/* jm_flags_parse consumes a "--" and stops after it. */
			flags_ended = rest > i && strcmp(argv[rest - 1], "--") == 0;
			i = rest;
			if (i >= argc)
				break;
		}
		if (*positionals_count == positionals_max) {
			if (common->help)
				break;
			return cli_fail(CLI_EXIT_USAGE, cmd->name,
			                "unexpected argument \"%s\"; usage: jobmesh %s %s", argv[i],
			                cmd->name, cmd->args);
		}
		positionals[(*positionals_count)++] = argv[i++];
	}
	if (common->help) {
		cli_command_help(stdout, cmd);
		*done = true;
	}
	return CLI_EXIT_OK;
}

jm_client *cli_client(struct cli *cli, const char *what, int *exit_code)
{
	if (cli->client != NULL)
		return cli->client;
	int rc = jm_client_open_secure(&cli->client, cli->broker, &cli->security);
	if (rc != 0) {
		/* The URL itself was refused (bad scheme or address): a usage
		 * error; anything else is the transport's. */
		*exit_code =
		    cli_fail(rc == JM_EINVAL || rc == JM_EUNSUPPORTED ? CLI_EXIT_USAGE
		                                                      : CLI_EXIT_UNREACHABLE,
		             what, "%s", jm_client_last_error());
		cli->client = NULL;
		return NULL;
	}
	if (cli->timeout_ms != 0)
		jm_client_set_timeout_ms(cli->client, cli->timeout_ms);
	return cli->client;
}

int cli_command_operands(const struct cli_command *cmd, void *opts, int argc, char **argv,
                         int first, const char *what, const char **operands, int operands_max,
                         int *operands_count, bool *done)
{
	int code = cli_command_args(cmd, opts, argc, argv, first, operands, operands_max,
	                            operands_count, done);
	if (code != CLI_EXIT_OK || *done)
		return code;
	if (*operands_count == 0)
		return cli_fail(CLI_EXIT_USAGE, cmd->name, "%s is required; usage: jobmesh %s %s",
		                what, cmd->name, cmd->args);
	return CLI_EXIT_OK;
}
