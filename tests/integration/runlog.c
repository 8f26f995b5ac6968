/* runs.log readers: see runlog.h for the line format. */
#include "runlog.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define RUNLOG_GROUPS_MAX 256

int runlog_count(const char *path, const char *kind, uint64_t id, unsigned attempt,
                 const char *worker)
{
	char *text = harness_read_file(path, NULL);
	if (text == NULL)
		return -1;
	int count = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char line_kind[16], name[64];
		unsigned long long line_id;
		unsigned line_attempt;
		if (sscanf(line, "%15s %llu %u %63s", line_kind, &line_id, &line_attempt, name) !=
		    4)
			continue;
		if (strcmp(line_kind, kind) == 0 && (id == 0 || line_id == id) &&
		    (attempt == 0 || attempt == line_attempt) &&
		    (worker == NULL || strcmp(worker, name) == 0))
			count++;
	}
	free(text);
	return count;
}

size_t runlog_groups(const char *path, const char *worker, pid_t *groups, size_t max)
{
	char *text = harness_read_file(path, NULL);
	if (text == NULL)
		return 0;
	size_t count = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line && count < max;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long id;
		unsigned attempt;
		char name[64];
		int pgid;
		if (sscanf(line, "start %llu %u %63s %d", &id, &attempt, name, &pgid) == 4 &&
		    pgid > 1 && (worker == NULL || strcmp(worker, name) == 0))
			groups[count++] = pgid;
	}
	free(text);
	return count;
}

void runlog_kill_groups(const char *path, const char *worker)
{
	pid_t groups[RUNLOG_GROUPS_MAX];
	size_t count = runlog_groups(path, worker, groups, RUNLOG_GROUPS_MAX);
	for (size_t i = 0; i < count; i++)
		kill(-groups[i], SIGKILL);
}
