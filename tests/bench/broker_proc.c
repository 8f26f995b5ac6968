/* See broker_proc.h. */
#include "broker_proc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

uint64_t broker_proc_status_kb(pid_t pid, const char *field)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	/* /proc files report size 0: read them as a stream. */
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	char line[256];
	uint64_t kb = 0;
	while (fgets(line, sizeof line, fp) != NULL)
		if (strncmp(line, field, strlen(field)) == 0)
			kb = strtoull(line + strlen(field), NULL, 10);
	fclose(fp);
	return kb;
}

double broker_proc_cpu_ms(pid_t pid)
{
	double user_ms, system_ms;
	broker_proc_cpu_split_ms(pid, &user_ms, &system_ms);
	return user_ms + system_ms;
}

void broker_proc_cpu_split_ms(pid_t pid, double *user_ms, double *system_ms)
{
	*user_ms = *system_ms = 0;
	char path[64], text[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return;
	size_t len = fread(text, 1, sizeof text - 1, fp);
	fclose(fp);
	text[len] = '\0';
	/* Fields after the command (which may hold spaces) start past ')';
	 * utime and stime are the 14th and 15th, in clock ticks. */
	const char *p = strrchr(text, ')');
	unsigned long long utime = 0, stime = 0;
	if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	                        &utime, &stime) != 2)
		return;
	*user_ms = (double)utime * 1000.0 / (double)sysconf(_SC_CLK_TCK);
	*system_ms = (double)stime * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

double broker_proc_spawn_timed(struct harness *h, const char *name, const char *data,
                               const char *const *extra, int ready_ms, struct harness_proc *out)
{
	char listen[300], out_name[80];
	snprintf(listen, sizeof listen, "ipc://%s/broker.ipc", h->dir);
	snprintf(out_name, sizeof out_name, "%s.out", name);
	const char *out_path = harness_path(h, out_name);
	struct stat st;
	/* Only what this start writes counts: a restart appends to the log. */
	size_t from = stat(out_path, &st) == 0 ? (size_t)st.st_size : 0;
	char *argv[32] = {(char *)harness_bin("jobmesh-broker"),
	                  "--http",
	                  "127.0.0.1:0",
	                  "--listen",
	                  listen,
	                  "--data",
	                  (char *)data};
	int argc = 7;
	for (int i = 0; extra && extra[i] && argc < 31; i++)
		argv[argc++] = (char *)extra[i];
	argv[argc] = NULL;
	uint64_t t0 = jm_mono_us();
	if (harness_spawn(h, name, argv, out) != 0) {
		fprintf(stderr, "broker_proc: cannot spawn %s\n", argv[0]);
		return -1;
	}
	uint64_t deadline_us = t0 + (uint64_t)ready_ms * 1000;
	while (jm_mono_us() < deadline_us) {
		size_t len = 0;
		char *text = stat(out_path, &st) == 0 && (size_t)st.st_size > from
		                 ? harness_read_file(out_path, &len)
		                 : NULL;
		bool ready = text && len > from && strstr(text + from, "listening ") != NULL;
		free(text);
		if (ready) {
			snprintf(h->broker_url, sizeof h->broker_url, "%s", listen);
			return (double)(jm_mono_us() - t0) / 1000.0;
		}
		if (!harness_is_running(out)) {
			harness_print_logs(h, 10);
			fprintf(stderr, "broker_proc: %s exited before listening\n", name);
			return -1;
		}
		struct timespec ts = {0, 1000000L}; /* 1 ms: the resolution of the figure */
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "broker_proc: %s not listening after %d ms\n", name, ready_ms);
	return -1;
}
