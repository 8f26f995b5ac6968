/* jobmesh queue pause|resume|set|show: a queue's runtime settings, which
 * the broker journals (pause, active and rate limits, retention, default
 * attempts, the idempotency key window). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_output.h"

static int queue_pause_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                           int first);
static int queue_set_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                         int first);

#define QUEUE_SET_KEYS                                                                             \
	"limit=N (active jobs at once, 0: none), rate=N/UNIT (starts per s, m, h or d, spaced "    \
	"evenly; 0: none), max-attempts=N, keep-completed=N, keep-failed=N, keep-cancelled=N "     \
	"(finished jobs kept per state; N or unlimited), keep-completed-age-ms=MS, "               \
	"keep-failed-age-ms=MS, keep-cancelled-age-ms=MS (0: no age limit), keep-finished=N and "  \
	"keep-age-ms=MS (all three states), key-window-ms=MS, group-limit=N (active jobs per "     \
	"group, 0: none)"

static const struct cli_command queue_commands[] = {
    {"queue pause", queue_pause_run, "QUEUE [--json]",
     "Pause a queue: workers get none of its jobs, submits are still taken.", NULL, cli_json_flags},
    {"queue resume", queue_pause_run, "QUEUE [--json]",
     "Resume a paused queue: its jobs go to workers again.", NULL, cli_json_flags},
    {"queue set", queue_set_run, "QUEUE KEY=VALUE... [--json]",
     "Change a queue's settings at runtime (journaled: they survive restarts).",
     "Keys: " QUEUE_SET_KEYS ".\nPrints the queue's settings after the change.\n", cli_json_flags},
    {"queue show", queue_set_run, "QUEUE [--json]",
     "A queue's settings: paused, limits, retention, key window.", NULL, cli_json_flags},
};

const struct cli_group cli_queue_group = {
    "queue", queue_commands, sizeof queue_commands / sizeof queue_commands[0],
    "jobmesh queue pause|resume|show QUEUE, or jobmesh queue set QUEUE KEY=VALUE..."};

void cli_queue_help(FILE *out)
{
	cli_group_help(out, &cli_queue_group);
}

int cli_queue_run(struct cli *cli, const struct cli_command *self, int argc, char **argv, int first)
{
	(void)self;
	return cli_group_run(cli, &cli_queue_group, argc, argv, first);
}

static int queue_print(const char *what, bool json, const jm_queue_settings *s)
{
	if (json) {
		json_t *o = json_pack(
		    "{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "name", s->name, "paused",
		    s->paused, "max_active", (json_int_t)s->max_active, "rate_jobs",
		    (json_int_t)s->rate_jobs, "rate_period_ms", (json_int_t)s->rate_period_ms,
		    "max_attempts", (json_int_t)s->max_attempts, "keep_finished",
		    (json_int_t)s->keep_finished, "keep_finished_age_ms",
		    (json_int_t)s->keep_finished_age_ms, "key_window_ms",
		    (json_int_t)s->key_window_ms, "group_limit", (json_int_t)s->group_limit);
		/* Per state: a count with no limit is null. */
		const struct {
			const char *count, *age;
			uint64_t n, ms;
		} keep[] = {
		    {"keep_completed", "keep_completed_age_ms", s->keep_completed,
		     s->keep_completed_age_ms},
		    {"keep_failed", "keep_failed_age_ms", s->keep_failed, s->keep_failed_age_ms},
		    {"keep_cancelled", "keep_cancelled_age_ms", s->keep_cancelled,
		     s->keep_cancelled_age_ms}};
		for (size_t i = 0; o != NULL && i < 3; i++) {
			json_object_set_new(o, keep[i].count,
			                    keep[i].n == JM_KEEP_ALL
			                        ? json_null()
			                        : json_integer((json_int_t)keep[i].n));
			json_object_set_new(o, keep[i].age, json_integer((json_int_t)keep[i].ms));
		}
		if (cli_print_json(stdout, o) != 0)
			return cli_fail(CLI_EXIT_ERROR, what, "printing the settings failed");
		return CLI_EXIT_OK;
	}
	printf("queue %s: %s, limit %s", s->name, s->paused ? "paused" : "running",
	       s->max_active ? "" : "none");
	if (s->max_active)
		printf("%u", s->max_active);
	if (s->rate_jobs)
		printf(", rate %u per %" PRIu64 " ms", s->rate_jobs, s->rate_period_ms);
	else
		printf(", rate none");
	printf(", max-attempts %u", s->max_attempts);
	const char *names[] = {"completed", "failed", "cancelled"};
	const uint64_t counts[] = {s->keep_completed, s->keep_failed, s->keep_cancelled};
	const uint64_t ages[] = {s->keep_completed_age_ms, s->keep_failed_age_ms,
	                         s->keep_cancelled_age_ms};
	for (int i = 0; i < 3; i++) {
		if (counts[i] == JM_KEEP_ALL)
			printf(", keep-%s unlimited", names[i]);
		else
			printf(", keep-%s %" PRIu64, names[i], counts[i]);
		printf(", keep-%s-age-ms %" PRIu64, names[i], ages[i]);
	}
	printf(", key-window-ms %" PRIu64 ", group-limit ", s->key_window_ms);
	if (s->group_limit)
		printf("%u\n", s->group_limit);
	else
		printf("none\n");
	return CLI_EXIT_OK;
}

static int queue_apply(struct cli *cli, const struct cli_command *self, const char *queue,
                       const jm_queue_settings *changes, bool json)
{
	int code;
	jm_client *client = cli_client(cli, self->name, &code);
	if (client == NULL)
		return code;
	jm_queue_settings now;
	int rc = jm_client_queue_set(client, queue, changes, &now);
	if (rc != 0)
		return cli_fail_sdk(rc);
	return queue_print(self->name, json, &now);
}

static int queue_pause_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                           int first)
{
	struct cli_opts opts = {0};
	const char *operands[1];
	int operands_count = 0;
	bool done = false;
	int code = cli_command_operands(self, &opts, argc, argv, first, "a queue name", operands, 1,
	                                &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	jm_queue_settings changes = {.set_mask = JM_QSET_PAUSED,
	                             .paused = strcmp(self->name, "queue pause") == 0};
	return queue_apply(cli, self, operands[0], &changes, opts.json);
}

/* A rate "N/UNIT": N starts per second, minute, hour or day ("0": none). */
static int parse_rate(const char *v, jm_queue_settings *s, struct jm_err *err)
{
	char *end = NULL;
	unsigned long long n = strtoull(v, &end, 10);
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"/s", 1000}, {"/m", 60000}, {"/h", 3600000}, {"/d", 86400000}};
	s->set_mask |= JM_QSET_RATE;
	if (end != v && *end == '\0' && n == 0) {
		s->rate_jobs = 0;
		return 0;
	}
	for (size_t i = 0; end != v && n >= 1 && n <= 1000000 && i < 4; i++)
		if (strcmp(end, units[i].unit) == 0) {
			s->rate_jobs = (unsigned)n;
			s->rate_period_ms = units[i].ms;
			return 0;
		}
	return jm_err_set(err, JM_EINVAL,
	                  "rate \"%s\" is invalid: use N/s, N/m, N/h or N/d with N 1-1000000, or 0 "
	                  "for no limit",
	                  v);
}

#define KEEP_AGE_MS_MAX (3650ull * 24 * 3600 * 1000)

/* A retention count: 0..1000000000 or "unlimited" (JM_KEEP_ALL). */
static int parse_keep_count(const char *key, const char *v, uint64_t *out, struct jm_err *err)
{
	if (strcmp(v, "unlimited") == 0) {
		*out = JM_KEEP_ALL;
		return 0;
	}
	unsigned long long n;
	int rc = jm_parse_u64(key, v, 0, 1000000000ull, &n, err);
	if (rc != 0)
		return jm_err_set(err, rc, "%s: use 0-1000000000 or unlimited", key);
	*out = n;
	return 0;
}

/* One KEY=VALUE of "queue set" into s. */
static int parse_setting(const char *kv, jm_queue_settings *s, struct jm_err *err)
{
	const char *eq = strchr(kv, '=');
	if (eq == NULL)
		return jm_err_set(err, JM_EINVAL, "\"%s\" is not KEY=VALUE: use %s", kv,
		                  QUEUE_SET_KEYS);
	size_t key_len = (size_t)(eq - kv);
	const char *v = eq + 1;
	unsigned long long n;
	int rc;
#define KEY_IS(k) (key_len == strlen(k) && strncmp(kv, k, key_len) == 0)
	if (KEY_IS("rate"))
		return parse_rate(v, s, err);
	if (KEY_IS("limit")) {
		rc = jm_parse_u64("limit", v, 0, UINT32_MAX, &n, err);
		s->max_active = (unsigned)n;
		s->set_mask |= JM_QSET_MAX_ACTIVE;
	} else if (KEY_IS("max-attempts")) {
		rc = jm_parse_u64("max-attempts", v, 1, 1000, &n, err);
		s->max_attempts = (unsigned)n;
		s->set_mask |= JM_QSET_MAX_ATTEMPTS;
	} else if (KEY_IS("keep-finished")) {
		rc = parse_keep_count("keep-finished", v, &s->keep_finished, err);
		s->set_mask |= JM_QSET_KEEP_FINISHED;
	} else if (KEY_IS("keep-age-ms")) {
		rc = jm_parse_u64("keep-age-ms", v, 0, KEEP_AGE_MS_MAX, &n, err);
		s->keep_finished_age_ms = n;
		s->set_mask |= JM_QSET_KEEP_AGE;
	} else if (KEY_IS("keep-completed")) {
		rc = parse_keep_count("keep-completed", v, &s->keep_completed, err);
		s->set_mask |= JM_QSET_KEEP_COMPLETED;
	} else if (KEY_IS("keep-failed")) {
		rc = parse_keep_count("keep-failed", v, &s->keep_failed, err);
		s->set_mask |= JM_QSET_KEEP_FAILED;
	} else if (KEY_IS("keep-cancelled")) {
		rc = parse_keep_count("keep-cancelled", v, &s->keep_cancelled, err);
		s->set_mask |= JM_QSET_KEEP_CANCELLED;
	} else if (KEY_IS("keep-completed-age-ms")) {
		rc = jm_parse_u64("keep-completed-age-ms", v, 0, KEEP_AGE_MS_MAX, &n, err);
		s->keep_completed_age_ms = n;
		s->set_mask |= JM_QSET_KEEP_COMPLETED_AGE;
	} else if (KEY_IS("keep-failed-age-ms")) {
		rc = jm_parse_u64("keep-failed-age-ms", v, 0, KEEP_AGE_MS_MAX, &n, err);
		s->keep_failed_age_ms = n;
		s->set_mask |= JM_QSET_KEEP_FAILED_AGE;
	} else if (KEY_IS("keep-cancelled-age-ms")) {
		rc = jm_parse_u64("keep-cancelled-age-ms", v, 0, KEEP_AGE_MS_MAX, &n, err);
		s->keep_cancelled_age_ms = n;
		s->set_mask |= JM_QSET_KEEP_CANCELLED_AGE;
	} else if (KEY_IS("group-limit")) {
		rc = jm_parse_u64("group-limit", v, 0, UINT32_MAX, &n, err);
		s->group_limit = (unsigned)n;
		s->set_mask |= JM_QSET_GROUP_LIMIT;
	} else if (KEY_IS("key-window-ms")) {
		rc = jm_parse_u64("key-window-ms", v, 1, 3650ull * 24 * 3600 * 1000, &n, err);
		s->key_window_ms = n;
		s->set_mask |= JM_QSET_KEY_WINDOW;
	} else {
		return jm_err_set(err, JM_EINVAL, "unknown setting \"%.*s\": use %s", (int)key_len,
		                  kv, QUEUE_SET_KEYS);
	}
#undef KEY_IS
	return rc;
}

#define QUEUE_SET_MAX 8

static int queue_set_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                         int first)
{
	struct cli_opts opts = {0};
	const char *operands[1 + QUEUE_SET_MAX];
	int operands_count = 0;
	bool done = false;
	bool show = strcmp(self->name, "queue show") == 0;
	int code = cli_command_operands(self, &opts, argc, argv, first, "a queue name", operands,
	                                show ? 1 : 1 + QUEUE_SET_MAX, &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	jm_queue_settings changes = {0};
	if (!show && operands_count < 2)
		return cli_fail(CLI_EXIT_USAGE, self->name, "give at least one KEY=VALUE: %s",
		                QUEUE_SET_KEYS);
	for (int i = 1; i < operands_count; i++) {
		struct jm_err err;
		if (parse_setting(operands[i], &changes, &err) != 0)
			return cli_fail(CLI_EXIT_USAGE, self->name, "%s", jm_err_text(&err));
	}
	return queue_apply(cli, self, operands[0], &changes, opts.json);
}
