/* jobmesh: the command-line tool. Global flags, the config file, and the
 * table of commands.
 *
 *   jobmesh [--broker URL] [--config FILE] [--timeout SEC] COMMAND ...
 *
 * Global flags may also follow the command ("jobmesh stats --broker URL"):
 * main_lift_globals moves them in front of it before anything is parsed,
 * unless the command has a flag of the same name (wait --timeout is the
 * wait's own). Each command parses its own flags after its name. A new
 * command is one line in cli_commands plus its run
 * function. Settings from --config are applied first and flags after, so
 * flags win; the file's keys are the global flag names (broker, timeout). */
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "config.h"
#include "log.h"

#define CLI_TIMEOUT_SEC_MAX 86400

struct cli_globals {
	struct cli cli;
	const char *config_path;
	bool help;
	bool applying_config;
};

static int main_set_broker(void *ctx, const char *value, struct jm_err *err)
{
	if (value[0] == '\0')
		return jm_err_set(err, JM_EINVAL,
		                  "--broker is empty: give a URL such as tcp://127.0.0.1:7400 or "
		                  "ipc:///path/broker.ipc");
	((struct cli_globals *)ctx)->cli.broker = value;
	return 0;
}

static int main_set_config(void *ctx, const char *value, struct jm_err *err)
{
	struct cli_globals *globals = ctx;
	if (globals->applying_config)
		return jm_err_set(err, JM_EINVAL,
		                  "config: a config file cannot name another one; give --config "
		                  "on the command line");
	globals->config_path = value;
	return 0;
}

static int main_set_timeout(void *ctx, const char *value, struct jm_err *err)
{
	unsigned long long seconds;
	int rc = jm_parse_u64("timeout", value, 1, CLI_TIMEOUT_SEC_MAX, &seconds, err);
	if (rc == 0)
		((struct cli_globals *)ctx)->cli.timeout_ms = (uint32_t)(seconds * 1000);
	return rc;
}

/* --token, --tls-ca, --tls-cert, --tls-key: what the broker asks of a
 * client when it runs with --auth or TLS (default: JOBMESH_TOKEN,
 * JOBMESH_TLS_CA, JOBMESH_TLS_CERT, JOBMESH_TLS_KEY). */
#define MAIN_SECURITY_SETTER(fn, field)                                                            \
	static int fn(void *ctx, const char *value, struct jm_err *err)                            \
	{                                                                                          \
		((struct cli_globals *)ctx)->cli.security.field = value;                           \
		return 0;                                                                          \
	}
MAIN_SECURITY_SETTER(main_set_token, token)
MAIN_SECURITY_SETTER(main_set_tls_ca, tls_ca)
MAIN_SECURITY_SETTER(main_set_tls_cert, tls_cert)
MAIN_SECURITY_SETTER(main_set_tls_key, tls_key)

static int main_set_help(void *ctx, const char *value, struct jm_err *err)
{
	((struct cli_globals *)ctx)->help = true;
	return 0;
}

static const struct jm_flag main_flags[] = {
    {"broker", "URL", "broker address (default: $JOBMESH_BROKER, else " JM_DEFAULT_BROKER_URL ")",
     main_set_broker},
    {"config", "FILE", "YAML file of global settings (broker, timeout); flags win",
     main_set_config},
    {"timeout", "SEC", "give up on a request after SEC seconds (default 10)", main_set_timeout},
    {"token", "TOKEN",
     "secret of an --auth token, sent once per connection (default: $JOBMESH_TOKEN)",
     main_set_token},
    {"tls-ca", "FILE",
     "PEM CA of the broker's certificate, for tls+tcp:// (default: $JOBMESH_TLS_CA)",
     main_set_tls_ca},
    {"tls-cert", "FILE", "PEM client certificate for mutual TLS (default: $JOBMESH_TLS_CERT)",
     main_set_tls_cert},
    {"tls-key", "FILE", "its PEM private key (default: $JOBMESH_TLS_KEY)", main_set_tls_key},
    {"help", NULL, "show this help", main_set_help},
    {NULL, NULL, NULL, NULL},
};

static int main_help_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                         int first);

static const struct cli_command main_commands[] = {
    {"submit", cli_submit_run,
     "--queue Q --type T [--payload S | --payload-file F | - | --stdin-lines] [--priority N] "
     "[--max-attempts N] [--delay-ms N] [--timeout-ms N] [--json]",
     "Enqueue one job and print its id (--json: {\"id\": N}).",
     "The payload is given inline (--payload), read from a file (--payload-file F),\n"
     "or read from stdin (\"-\" or --payload-file -), up to 1 MiB.\n"
     "--stdin-lines submits one job per line of stdin (the line is its payload),\n"
     "many in flight at once, and prints the ids in input order.\n",
     cli_submit_flags},
    {"batch", cli_batch_run, "submit FILE|- [--json] | status ID [--json]",
     "Submit a JSON Lines file of jobs as one batch; show a batch.",
     "\"jobmesh batch submit --help\" and \"jobmesh batch status --help\" say more.\n",
     cli_help_flags},
    {"status", cli_status_run, "[ID] [--payload] [--json]",
     "Show a job's or a batch's state; without ID, every running batch.",
     "An id that is not a job is looked up as a batch (ids never name both).\n"
     "Without an id: \"N operations in progress\", then one line per running batch\n"
     "with its percent done and current operation. Exits 0 whenever something was\n"
     "found, whatever its state. --payload shows the job's payload too.\n",
     cli_status_flags},
    {"result", cli_result_run, "ID [--json]",
     "Print a completed job's result, raw, exactly as stored.",
     "--json prints the whole job, with the result in \"result\" when it is UTF-8\n"
     "text, else base64 in \"result_base64\". A job that did not complete exits\n"
     "with the code for its state.\n",
     cli_json_flags},
    {"wait", cli_wait_run, "ID [--timeout SEC] [--json]",
     "Wait until a job finishes (the broker answers when it does; no polling).",
     "Prints the final state line (--json: the job with its result); exits by the\n"
     "job's state, or 12 when --timeout passed first.\n",
     cli_wait_flags},
    {"watch", cli_watch_run, "ID [--timeout SEC]",
     "Follow a job or a batch live until it finishes.",
     "On a terminal: one line redrawn in place with a bar, counts, rate, ETA and\n"
     "the current operation. Otherwise one plain line per change:\n"
     "  batch 57: 12/47 done, 1 failed, running: writing about/team\n"
     "  job 42: active, attempt 1/3, 12/47: writing about/team\n"
     "(\"done\" counts finished jobs, \"failed\" failed and cancelled ones). The\n"
     "last line is always the final state; exits by it (0, 10, 11), or 12 when\n"
     "--timeout passed first. Driven by the broker's events, re-checked each second.\n",
     cli_watch_flags},
    {"cancel", cli_cancel_run, "ID [--json]", "Cancel a job that has not finished.",
     "Pending and delayed jobs are cancelled at once; an active job's worker is told\n"
     "to abandon it. Prints the job's new state line (--json: the job). A job that\n"
     "already finished is refused (exit 1).\n",
     cli_json_flags},
    {"stats", cli_stats_run, "[--json]",
     "Per-queue counts: pending, delayed, active, completed, failed.", NULL, cli_json_flags},
    {"workers", cli_workers_run, "[--json]",
     "The workers the broker knows: WORKER HOST PID QUEUES CONCURRENCY ACTIVE\n"
     "LAST-SEEN STATE.",
     "STATE is idle, busy, draining, or unseen: a worker the broker knows only\n"
     "from the jobs it held before the broker restarted, not heard from since\n"
     "(\"-\" where nothing is known). If it does not come back within the broker's\n"
     "--dead-after-ms, its jobs are requeued and it leaves the list.\n",
     cli_json_flags},
    {"dead-letter", cli_dead_run,
     "list QUEUE [--limit N] [--json] | show QUEUE ID | retry QUEUE [ID] [--json]",
     "List a queue's dead-lettered jobs; put them back to pending.",
     "\"jobmesh dead-letter list --help\" and \"jobmesh dead-letter retry --help\" say\n"
     "more.\n",
     cli_help_flags},
    {"schedule", cli_schedule_run,
     "add NAME (--cron EXPR | --every DURATION) [--tz ZONE] --queue Q --type T | list "
     "[--json] | remove NAME",
     "Named schedules the broker runs: cron or fixed interval, in a time zone.",
     "\"jobmesh schedule add --help\" says more.\n", cli_help_flags},
    {"queue", cli_queue_run, "pause QUEUE | resume QUEUE | set QUEUE KEY=VALUE... | show QUEUE",
     "A queue's runtime settings: pause, resume, active and rate limits, retention.",
     "\"jobmesh queue set --help\" lists the keys.\n", cli_help_flags},
    {"help", main_help_run, "[COMMAND]", "Show help for jobmesh or for one command.", NULL, NULL},
};

#define MAIN_COMMANDS_COUNT (sizeof main_commands / sizeof main_commands[0])

static const struct cli_command *main_find_command(const char *name)
{
	for (size_t i = 0; i < MAIN_COMMANDS_COUNT; i++) {
		if (strcmp(main_commands[i].name, name) == 0)
			return &main_commands[i];
	}
	return NULL;
}

static void main_help(FILE *out)
{
	fprintf(out, "usage: jobmesh [--broker URL] [--config FILE] [--timeout SEC] COMMAND ...\n"
	             "\n"
	             "Submit jobs to a jobmesh broker and follow them.\n"
	             "\n"
	             "Commands:\n");
	for (size_t i = 0; i < MAIN_COMMANDS_COUNT; i++)
		fprintf(out, "  %-11s %s\n", main_commands[i].name, main_commands[i].summary);
	fprintf(out, "\nGlobal flags (before or after the command; after it, a flag the command\n"
	             "has itself is the command's, as wait --timeout):\n");
	jm_flags_print(out, main_flags);
	fprintf(out,
	        "\nRun \"jobmesh COMMAND --help\" for a command's flags.\n"
	        "Errors are one line on stderr: \"jobmesh: <what>: <detail>\".\n\n%s",
	        cli_exit_codes_help);
}

static int main_help_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                         int first)
{
	if (first >= argc) {
		main_help(stdout);
		return CLI_EXIT_OK;
	}
	if (first + 1 < argc)
		return cli_fail(CLI_EXIT_USAGE, "help", "name one command; usage: jobmesh help %s",
		                self->args);
	const struct cli_command *cmd = main_find_command(argv[first]);
	if (cmd == NULL)
		return cli_fail(CLI_EXIT_USAGE, "help",
		                "unknown command \"%s\"; run \"jobmesh help\" for the list",
		                argv[first]);
	if (cmd == self)
		main_help(stdout);
	else if (cmd->run == cli_batch_run)
		cli_batch_help(stdout);
	else if (cmd->run == cli_dead_run)
		cli_dead_help(stdout);
	else if (cmd->run == cli_schedule_run)
		cli_schedule_help(stdout);
	else if (cmd->run == cli_queue_run)
		cli_queue_help(stdout);
	else
		cli_command_help(stdout, cmd);
	return CLI_EXIT_OK;
}

/* The flag of table that word spells ("--name" or "--name=value"), or
 * NULL. */
static const struct jm_flag *main_flag_named(const struct jm_flag *table, const char *word)
{
	if (table == NULL || strncmp(word, "--", 2) != 0)
		return NULL;
	const char *name = word + 2;
	const char *equals = strchr(name, '=');
	size_t name_len = equals ? (size_t)(equals - name) : strlen(name);
	for (const struct jm_flag *flag = table; flag->name != NULL; flag++) {
		if (strlen(flag->name) == name_len && memcmp(flag->name, name, name_len) == 0)
			return flag;
	}
	return NULL;
}

/* Index of the command word: the first word that is neither a global flag
 * nor a global flag's value (argc when there is none). */
static int main_command_index(int argc, char **argv)
{
	int i = 1;
	while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
		if (strcmp(argv[i], "--") == 0)
			return i + 1;
		const struct jm_flag *flag = main_flag_named(main_flags, argv[i]);
		bool takes_next = flag != NULL && flag->arg_name != NULL && !strchr(argv[i], '=');
		i += takes_next ? 2 : 1;
	}
	return i < argc ? i : argc;
}

/* The group a command dispatches to, or NULL for a plain command. */
static const struct cli_group *main_group_of(const struct cli_command *cmd)
{
	if (cmd->run == cli_batch_run)
		return &cli_batch_group;
	if (cmd->run == cli_dead_run)
		return &cli_dead_group;
	if (cmd->run == cli_schedule_run)
		return &cli_schedule_group;
	if (cmd->run == cli_queue_run)
		return &cli_queue_group;
	return NULL;
}

/* Moves the global flags (and their values) found after the command word
 * at command_at to just before it, keeping every other word in order, so
 * "jobmesh stats --broker URL" parses as "jobmesh --broker URL stats".
 * A word is left where it is when the command (or the subcommand it names)
 * has a flag of that name, when it is the value of one of the command's
 * flags ("--payload --broker" is a payload), and after "--". --help stays:
 * it asks for the command's help. Returns 0, or JM_EINVAL with err set
 * when a flag's value is missing (moved before the command, the flag would
 * take the command word for its value). */
static int main_lift_globals(int argc, char **argv, int command_at, struct jm_err *err)
{
	const struct cli_command *cmd =
	    command_at < argc ? main_find_command(argv[command_at]) : NULL;
	if (cmd == NULL)
		return 0;
	int first = command_at + 1;
	const struct jm_flag *own = cmd->flags;
	const struct cli_group *group = main_group_of(cmd);
	if (group != NULL && first < argc) {
		const struct cli_command *sub = cli_group_find(group, argv[first]);
		if (sub != NULL) {
			own = sub->flags;
			first++;
		}
	}
	size_t tail_count = (size_t)(argc - command_at);
	char **lifted = malloc(tail_count * sizeof *lifted);
	char **kept = malloc(tail_count * sizeof *kept);
	if (lifted == NULL || kept == NULL) {
		free(lifted);
		free(kept);
		return 0; /* parsed as written: an unknown-flag error at worst */
	}
	size_t lifted_count = 0;
	size_t kept_count = 0;
	for (int i = command_at; i < first; i++)
		kept[kept_count++] = argv[i];
	for (int i = first; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				kept[kept_count++] = argv[i++];
			break;
		}
		const struct jm_flag *mine = main_flag_named(own, argv[i]);
		const struct jm_flag *global = mine ? NULL : main_flag_named(main_flags, argv[i]);
		if (global != NULL && strcmp(global->name, "help") == 0)
			global = NULL;
		const struct jm_flag *flag = mine ? mine : global;
		bool takes_next = flag != NULL && flag->arg_name != NULL && !strchr(argv[i], '=');
		if (takes_next && i + 1 >= argc && global != NULL) {
			free(lifted);
			free(kept);
			return jm_err_set(err, JM_EINVAL, "--%s needs a value: --%s %s", flag->name,
			                  flag->name, flag->arg_name);
		}
		takes_next = takes_next && i + 1 < argc; /* else the command says so */
		char **to = global != NULL ? lifted : kept;
		size_t *to_count = global != NULL ? &lifted_count : &kept_count;
		to[(*to_count)++] = argv[i];
		if (takes_next)
			to[(*to_count)++] = argv[++i];
	}
	memcpy(argv + command_at, lifted, lifted_count * sizeof *lifted);
	memcpy(argv + command_at + lifted_count, kept, kept_count * sizeof *kept);
	free(lifted);
	free(kept);
	return 0;
}

/* Applies the config file and the global flags into *globals; *command_at
 * is the index of the command word. Returns an exit code; *done after
 * printing help. */
static int main_globals(struct cli_globals *globals, struct jm_config *config, int argc,
                        char **argv, int *command_at, bool *done)
{
	struct jm_err err;
	jm_err_clear(&err);
	*done = false;

	/* The first pass finds --config; the second applies the file, then the
	 * flags again on top, so a flag always wins over the file. */
	if (main_lift_globals(argc, argv, main_command_index(argc, argv), &err) != 0)
		return cli_fail(CLI_EXIT_USAGE, NULL, "%s", jm_err_text(&err));
	struct cli_globals first_pass = {0};
	if (jm_flags_parse(main_flags, &first_pass, argc, argv, 1, command_at, &err) != 0)
		return cli_fail(CLI_EXIT_USAGE, NULL, "%s", jm_err_text(&err));
	if (first_pass.help) {
		main_help(stdout);
		*done = true;
		return CLI_EXIT_OK;
	}
	*globals = first_pass;
	if (first_pass.config_path == NULL)
		return CLI_EXIT_OK;

	memset(globals, 0, sizeof *globals);
	if (jm_config_load(config, first_pass.config_path, &err) != 0)
		return cli_fail(CLI_EXIT_USAGE, NULL, "%s", jm_err_text(&err));
	globals->applying_config = true;
	if (jm_flags_apply_config(main_flags, globals, config, &err) != 0)
		return cli_fail(CLI_EXIT_USAGE, NULL, "%s", jm_err_text(&err));
	globals->applying_config = false;
	if (jm_flags_parse(main_flags, globals, argc, argv, 1, command_at, &err) != 0)
		return cli_fail(CLI_EXIT_USAGE, NULL, "%s", jm_err_text(&err));
	return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
	jm_log_init("jobmesh", JM_LOG_WARN);
	struct cli_globals globals = {0};
	struct jm_config config = {0};
	int command_at = argc;
	bool done = false;
	int code = main_globals(&globals, &config, argc, argv, &command_at, &done);
	if (code != CLI_EXIT_OK || done)
		goto done_free_config;

	if (command_at >= argc) {
		code = cli_fail(CLI_EXIT_USAGE, NULL,
		                "no command given; run \"jobmesh help\" for the list");
		goto done_free_config;
	}
	const struct cli_command *cmd = main_find_command(argv[command_at]);
	if (cmd == NULL) {
		code = cli_fail(CLI_EXIT_USAGE, NULL,
		                "unknown command \"%s\"; run \"jobmesh help\" for the list",
		                argv[command_at]);
		goto done_free_config;
	}
	code = cmd->run(&globals.cli, cmd, argc, argv, command_at + 1);

	/* Output that never reached its file (a full disk, a closed pipe) is a
	 * failure, not a success. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (code == CLI_EXIT_OK)
			code = CLI_EXIT_ERROR;
		fprintf(stderr, "jobmesh: %s: writing to stdout failed\n", cmd->name);
	}
	jm_client_close(globals.cli.client);
done_free_config:
	jm_config_fini(&config);
	return code;
}
