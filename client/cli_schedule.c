/* jobmesh schedule add|list|remove: named schedules the broker runs (a cron
 * expression or a fixed interval in a time zone, and a job template). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_output.h"

struct schedule_opts {
	struct cli_opts common; /* first: the shared setters cast to it */
	const char *cron;
	const char *every;
	const char *zone;
	const char *queue;
	const char *type;
	const char *payload;
	long long priority;
	unsigned long long max_attempts;
	unsigned long long timeout_ms;
};

#define SCHEDULE_SETTER(field)                                                                     \
	static int schedule_set_##field(void *ctx, const char *value, struct jm_err *err)          \
	{                                                                                          \
		(void)err;                                                                         \
		((struct schedule_opts *)ctx)->field = value;                                      \
		return 0;                                                                          \
	}
SCHEDULE_SETTER(cron)
SCHEDULE_SETTER(every)
SCHEDULE_SETTER(zone)
SCHEDULE_SETTER(queue)
SCHEDULE_SETTER(type)
SCHEDULE_SETTER(payload)

static int schedule_set_priority(void *ctx, const char *value, struct jm_err *err)
{
	return jm_parse_i64("priority", value, -1000, 1000,
	                    &((struct schedule_opts *)ctx)->priority, err);
}

static int schedule_set_max_attempts(void *ctx, const char *value, struct jm_err *err)
{
	return jm_parse_u64("max-attempts", value, 1, 1000,
	                    &((struct schedule_opts *)ctx)->max_attempts, err);
}

static int schedule_set_timeout_ms(void *ctx, const char *value, struct jm_err *err)
{
	return jm_parse_u64("timeout-ms", value, 1, UINT32_MAX,
	                    &((struct schedule_opts *)ctx)->timeout_ms, err);
}

static const struct jm_flag schedule_add_flags[] = {
    {"cron", "EXPR", "cron expression: 5 fields, or 6 with seconds first", schedule_set_cron},
    {"every", "DURATION", "fixed interval instead: 30s, 5m, 1h30m, 2d", schedule_set_every},
    {"tz", "ZONE", "IANA time zone of the cron expression (default UTC)", schedule_set_zone},
    {"queue", "Q", "queue of each run's job (required)", schedule_set_queue},
    {"type", "T", "type of each run's job (required)", schedule_set_type},
    {"payload", "TEXT", "payload of each run's job (default empty)", schedule_set_payload},
    {"priority", "N", "priority -1000..1000 (default 0)", schedule_set_priority},
    {"max-attempts", "N", "attempts 1..1000 (default: the queue's)", schedule_set_max_attempts},
    {"timeout-ms", "MS", "run timeout per attempt (default: the queue's)", schedule_set_timeout_ms},
    CLI_FLAG_JSON,
    CLI_FLAG_HELP,
    {NULL, NULL, NULL, NULL},
};

static int schedule_add_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                            int first);
static int schedule_list_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                             int first);
static int schedule_remove_run(struct cli *cli, const struct cli_command *self, int argc,
                               char **argv, int first);

static const struct cli_command schedule_commands[] = {
    {"schedule add", schedule_add_run,
     "NAME (--cron EXPR | --every DURATION) [--tz ZONE] --queue Q --type T [--payload TEXT]",
     "Create or replace a schedule: each run submits a job of the template.",
     "Cron fields take *, n, a-b, */n, a-b/n and lists a,b; months jan-dec and days\n"
     "sun-sat by name. When both day fields are restricted a day matches either.\n"
     "--every runs on whole multiples of the interval since the epoch. A run missed\n"
     "while the broker was down runs once when it is back; see README \"Schedules\".\n"
     "Prints the schedule and its next run; --json prints it as an object.\n",
     schedule_add_flags},
    {"schedule list", schedule_list_run, "[--json]",
     "Every schedule with its next run: NAME SCHEDULE ZONE QUEUE TYPE NEXT-RUN LAST-RUN.",
     "--json prints {\"schedules\": [schedule...]}.\n", cli_json_flags},
    {"schedule remove", schedule_remove_run, "NAME", "Remove a schedule (its jobs stay).", NULL,
     cli_help_flags},
};

const struct cli_group cli_schedule_group = {
    "schedule", schedule_commands, sizeof schedule_commands / sizeof schedule_commands[0],
    "jobmesh schedule add NAME ..., jobmesh schedule list, or jobmesh schedule remove NAME"};

void cli_schedule_help(FILE *out)
{
	cli_group_help(out, &cli_schedule_group);
}

int cli_schedule_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                     int first)
{
	(void)self;
	return cli_group_run(cli, &cli_schedule_group, argc, argv, first);
}

static json_t *schedule_json(const jm_schedule *s)
{
	char next[CLI_TIME_TEXT_MAX], last[CLI_TIME_TEXT_MAX];
	cli_format_time(next, sizeof next, s->next_run_us);
	cli_format_time(last, sizeof last, s->last_fired_us);
	json_t *obj = json_object();
	if (obj == NULL)
		return NULL;
	int failed = 0;
	failed |= json_object_set_new(obj, "name", json_string(s->name));
	failed |= json_object_set_new(obj, "schedule", json_string(s->expr));
	failed |= json_object_set_new(obj, "tz", json_string(s->zone[0] ? s->zone : "UTC"));
	failed |= json_object_set_new(obj, "queue", json_string(s->queue));
	failed |= json_object_set_new(obj, "type", json_string(s->type));
	failed |=
	    json_object_set_new(obj, "payload", json_stringn_nocheck(s->payload, s->payload_len));
	failed |= json_object_set_new(obj, "priority", json_integer(s->priority));
	failed |= json_object_set_new(obj, "max_attempts", json_integer(s->max_attempts));
	failed |= json_object_set_new(obj, "timeout_ms", cli_json_u64(s->timeout_ms));
	failed |=
	    json_object_set_new(obj, "next_run", s->next_run_us ? json_string(next) : json_null());
	failed |= json_object_set_new(obj, "next_run_us", cli_json_u64(s->next_run_us));
	failed |= json_object_set_new(obj, "last_run",
	                              s->last_fired_us ? json_string(last) : json_null());
	failed |= json_object_set_new(obj, "last_run_us", cli_json_u64(s->last_fired_us));
	if (failed) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static void schedule_print(FILE *out, const jm_schedule *list, size_t count)
{
	fprintf(out, "%-24s  %-20s  %-16s  %-16s  %-16s  %-24s  %s\n", "NAME", "SCHEDULE", "ZONE",
	        "QUEUE", "TYPE", "NEXT-RUN", "LAST-RUN");
	for (size_t i = 0; i < count; i++) {
		const jm_schedule *s = &list[i];
		char next[CLI_TIME_TEXT_MAX], last[CLI_TIME_TEXT_MAX];
		cli_format_time(next, sizeof next, s->next_run_us);
		cli_format_time(last, sizeof last, s->last_fired_us);
		fprintf(out, "%-24s  %-20s  %-16s  %-16s  %-16s  %-24s  %s\n", s->name, s->expr,
		        s->zone[0] ? s->zone : "UTC", s->queue, s->type, next, last);
	}
}

/* Prints list as text or {"schedules": [...]}; returns an exit code. */
static int schedule_output(const char *what, bool json, const jm_schedule *list, size_t count)
{
	if (!json) {
		schedule_print(stdout, list, count);
		return CLI_EXIT_OK;
	}
	json_t *obj = json_object();
	json_t *arr = json_array();
	int failed = obj == NULL || arr == NULL;
	if (!failed)
		failed |= json_object_set(obj, "schedules", arr);
	for (size_t i = 0; i < count && !failed; i++) {
		json_t *one = schedule_json(&list[i]);
		failed |= one == NULL || json_array_append_new(arr, one);
	}
	json_decref(arr);
	if (failed) {
		json_decref(obj);
		obj = NULL;
	}
	if (cli_print_json(stdout, obj) != 0)
		return cli_fail(CLI_EXIT_ERROR, what, "printing the schedules as JSON failed");
	return CLI_EXIT_OK;
}

static int schedule_add_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                            int first)
{
	struct schedule_opts opts = {0};
	const char *operands[1];
	int operands_count = 0;
	bool done = false;
	int code = cli_command_operands(self, &opts, argc, argv, first, "a schedule name", operands,
	                                1, &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	if ((opts.cron == NULL) == (opts.every == NULL))
		return cli_fail(CLI_EXIT_USAGE, self->name,
		                "give exactly one of --cron EXPR and --every DURATION");
	if (opts.queue == NULL || opts.type == NULL)
		return cli_fail(CLI_EXIT_USAGE, self->name, "--queue and --type are required");
	char expr[300];
	if (opts.every != NULL)
		snprintf(expr, sizeof expr, "@every %s", opts.every);
	else
		snprintf(expr, sizeof expr, "%s", opts.cron);
	jm_client *client = cli_client(cli, self->name, &code);
	if (client == NULL)
		return code;
	jm_schedule s = {.name = (char *)operands[0],
	                 .expr = expr,
	                 .zone = (char *)(opts.zone ? opts.zone : ""),
	                 .queue = (char *)opts.queue,
	                 .type = (char *)opts.type,
	                 .payload = (void *)opts.payload,
	                 .payload_len = opts.payload ? strlen(opts.payload) : 0,
	                 .priority = (int32_t)opts.priority,
	                 .max_attempts = (uint32_t)opts.max_attempts,
	                 .timeout_ms = opts.timeout_ms};
	jm_schedule *stored = NULL;
	int rc = jm_client_schedule_put(client, &s, &stored);
	if (rc != 0)
		return cli_fail_sdk(rc);
	code = schedule_output(self->name, opts.common.json, stored, stored ? 1 : 0);
	jm_schedules_free(stored, 1);
	return code;
}

static int schedule_list_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                             int first)
{
	struct cli_opts opts = {0};
	bool done = false;
	int operands_count = 0;
	int code =
	    cli_command_args(self, &opts, argc, argv, first, NULL, 0, &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	jm_client *client = cli_client(cli, self->name, &code);
	if (client == NULL)
		return code;
	jm_schedule *list = NULL;
	size_t count = 0;
	int rc = jm_client_schedule_list(client, &list, &count);
	if (rc != 0)
		return cli_fail_sdk(rc);
	code = schedule_output(self->name, opts.json, list, count);
	jm_schedules_free(list, count);
	return code;
}

static int schedule_remove_run(struct cli *cli, const struct cli_command *self, int argc,
                               char **argv, int first)
{
	struct cli_opts opts = {0};
	const char *operands[1];
	int operands_count = 0;
	bool done = false;
	int code = cli_command_operands(self, &opts, argc, argv, first, "a schedule name", operands,
	                                1, &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	jm_client *client = cli_client(cli, self->name, &code);
	if (client == NULL)
		return code;
	int rc = jm_client_schedule_delete(client, operands[0]);
	if (rc != 0)
		return cli_fail_sdk(rc);
	printf("removed schedule %s\n", operands[0]);
	return CLI_EXIT_OK;
}
