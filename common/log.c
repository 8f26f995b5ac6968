#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jobmesh/error.h>

static const char *log_program = "jobmesh";
static enum jm_log_level log_min_level = JM_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void jm_log_init(const char *program, enum jm_log_level min_level)
{
	log_program = program;
	log_min_level = min_level;
}

int jm_log_parse_level(const char *text, enum jm_log_level *out)
{
	for (int level = JM_LOG_DEBUG; level <= JM_LOG_ERROR; level++) {
		if (strcmp(text, level_names[level]) == 0) {
			*out = (enum jm_log_level)level;
			return 0;
		}
	}
	return JM_EINVAL;
}

void jm_log(enum jm_log_level level, const char *fmt, ...)
{
	if (level < log_min_level)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int used = snprintf(line, sizeof line,
	                    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s[%d]: ", tm.tm_year + 1900,
	                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	                    ts.tv_nsec / 1000000, level_names[level], log_program, (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	int more = vsnprintf(line + used, sizeof line - (size_t)used - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)used + (more < 0 ? 0 : (size_t)more);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	ssize_t written = write(STDERR_FILENO, line, len);
	(void)written;
}
