/* jobmesh submit --stdin-lines: one job per line of stdin (the line, without
 * its newline, is the payload), all with the same queue, type and options,
 * sent with the SDK's asynchronous submit (CLI_LINES_IN_FLIGHT requests in
 * flight from this one thread). Prints one id per line in input order once
 * all are answered (--json: {"ids": [...]}); a line the broker refuses is
 * named on stderr ("line N: why") and makes the exit code 1, the others are
 * still submitted. An empty line is an empty payload. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "cli_output.h"

#define CLI_LINES_IN_FLIGHT 64u

struct lines_state {
	pthread_mutex_t lock;
	uint64_t *ids; /* per line; 0 until answered or when refused */
	size_t cap;
	size_t failed;
};

struct line_ref {
	struct lines_state *st;
	size_t line; /* 0-based */
};

static void line_done(void *arg, int rc, uint64_t job_id, const char *error)
{
	struct line_ref *ref = arg;
	struct lines_state *st = ref->st;
	pthread_mutex_lock(&st->lock);
	if (rc == 0) {
		st->ids[ref->line] = job_id;
	} else {
		st->failed++;
		fprintf(stderr, "jobmesh: submit: line %zu: %s\n", ref->line + 1, error);
	}
	pthread_mutex_unlock(&st->lock);
	free(ref);
}

/* Grows st->ids to hold line; under no lock (callbacks only write entries
 * below lines, and the array moves only while they cannot run: see the
 * caller). */
static int lines_reserve(struct lines_state *st, size_t lines)
{
	if (lines <= st->cap)
		return 0;
	size_t cap = st->cap ? st->cap * 2 : 1024;
	while (cap < lines)
		cap *= 2;
	uint64_t *grown = realloc(st->ids, cap * sizeof *grown);
	if (grown == NULL)
		return -1;
	memset(grown + st->cap, 0, (cap - st->cap) * sizeof *grown);
	st->ids = grown;
	st->cap = cap;
	return 0;
}

static int lines_print(const struct lines_state *st, size_t lines, bool json)
{
	if (!json) {
		for (size_t i = 0; i < lines; i++)
			if (st->ids[i] != 0)
				printf("%" PRIu64 "\n", st->ids[i]);
		return CLI_EXIT_OK;
	}
	json_t *obj = json_object();
	json_t *ids = json_array();
	for (size_t i = 0; ids != NULL && i < lines; i++)
		if (st->ids[i] != 0 && json_array_append_new(ids, cli_json_u64(st->ids[i])) != 0) {
			json_decref(ids);
			ids = NULL;
		}
	if (obj != NULL && (ids == NULL || json_object_set_new(obj, "ids", ids) != 0)) {
		json_decref(obj);
		obj = NULL;
	}
	if (cli_print_json(stdout, obj) != 0)
		return cli_fail(CLI_EXIT_ERROR, "submit",
		                "jobs submitted, but printing them failed");
	return CLI_EXIT_OK;
}

int cli_submit_lines(struct cli *cli, const jm_job_spec *spec, bool json)
{
	int code = CLI_EXIT_OK;
	jm_client *client = cli_client(cli, "submit", &code);
	if (client == NULL)
		return code;
	jm_submitter *submitter;
	int rc = jm_submitter_open(client, CLI_LINES_IN_FLIGHT, &submitter);
	if (rc != 0)
		return cli_fail_sdk(rc);
	struct lines_state st = {0};
	pthread_mutex_init(&st.lock, NULL);
	char *line = NULL;
	size_t line_cap = 0;
	size_t lines = 0;
	ssize_t len;
	while ((len = getline(&line, &line_cap, stdin)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (lines + 1 > st.cap) {
			/* Callbacks write into ids: let them finish first. */
			jm_submitter_wait(submitter);
			if (lines_reserve(&st, lines + 1) != 0) {
				code = cli_fail(
				    CLI_EXIT_ERROR, "submit",
				    "out of memory after %zu lines; those were submitted", lines);
				break;
			}
		}
		struct line_ref *ref = malloc(sizeof *ref);
		if (ref == NULL) {
			code = cli_fail(CLI_EXIT_ERROR, "submit", "out of memory at line %zu",
			                lines + 1);
			break;
		}
		*ref = (struct line_ref){&st, lines};
		jm_job_spec job = *spec;
		job.payload = line;
		job.payload_len = (size_t)len;
		rc = jm_client_submit_async(submitter, &job, line_done, ref);
		if (rc != 0) {
			free(ref);
			pthread_mutex_lock(&st.lock);
			st.failed++;
			pthread_mutex_unlock(&st.lock);
			fprintf(stderr, "jobmesh: submit: line %zu: %s\n", lines + 1,
			        jm_client_last_error());
		}
		lines++;
	}
	if (ferror(stdin) && code == CLI_EXIT_OK)
		code = cli_fail(CLI_EXIT_ERROR, "submit", "reading stdin after line %zu: %s", lines,
		                strerror(errno));
	free(line);
	jm_submitter_close(submitter);
	int printed = lines_print(&st, lines, json);
	if (code == CLI_EXIT_OK)
		code = printed;
	if (code == CLI_EXIT_OK && st.failed > 0)
		code = CLI_EXIT_ERROR;
	free(st.ids);
	pthread_mutex_destroy(&st.lock);
	return code;
}
