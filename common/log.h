/* Logging to stderr, one line per event: time, level, program, message.
 * Thread-safe: each line is written with a single write(2). */
#ifndef JM_COMMON_LOG_H
#define JM_COMMON_LOG_H

enum jm_log_level { JM_LOG_DEBUG, JM_LOG_INFO, JM_LOG_WARN, JM_LOG_ERROR };

/* Sets the program name shown in each line and the lowest level printed. */
void jm_log_init(const char *program, enum jm_log_level min_level);
/* Parses "debug", "info", "warn" or "error"; returns 0 or JM_EINVAL. */
int jm_log_parse_level(const char *text, enum jm_log_level *out);

void jm_log(enum jm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define jm_debug(...) jm_log(JM_LOG_DEBUG, __VA_ARGS__)
#define jm_info(...) jm_log(JM_LOG_INFO, __VA_ARGS__)
#define jm_warn(...) jm_log(JM_LOG_WARN, __VA_ARGS__)
#define jm_error(...) jm_log(JM_LOG_ERROR, __VA_ARGS__)

#endif
