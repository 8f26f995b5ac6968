/* Command-line flags, one table per program, shared by argv and config.
 *
 * Each program declares its flags once; jm_flags_parse() applies argv and
 * jm_flags_apply_config() applies a config file through the same setters,
 * so a file setting and a flag can never mean different things. */
#ifndef JM_COMMON_FLAGS_H
#define JM_COMMON_FLAGS_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "err.h"
#include "log.h"

struct jm_flag {
	const char *name;     /* long name without "--" */
	const char *arg_name; /* NULL for a switch that takes no value */
	const char *help;
	/* Applies value (NULL for a switch); returns 0 or a JM_E code with err
	 * saying what is allowed. */
	int (*set)(void *ctx, const char *value, struct jm_err *err);
};

/* Applies the flags in argv[first..argc) that appear in table (terminated by
 * an entry with name NULL). Accepts --name VALUE and --name=VALUE. Stops at
 * the first argument that is not a flag, or after "--", and stores its index
 * in *rest (argc when none). An unknown flag or a missing value is an error
 * naming the flag. */
int jm_flags_parse(const struct jm_flag *table, void *ctx, int argc, char **argv, int first,
                   int *rest, struct jm_err *err);

/* Applies each config entry as if it were the flag of the same name.
 * An unknown key is an error naming the key and line. */
int jm_flags_apply_config(const struct jm_flag *table, void *ctx, const struct jm_config *cfg,
                          struct jm_err *err);

/* Value of --name in argv (either form), or NULL: used to find --config
 * before the other flags are applied. */
const char *jm_flags_find(int argc, char **argv, const char *name);

/* Prints one aligned line per flag: "  --name ARG   help". */
void jm_flags_print(FILE *out, const struct jm_flag *table);

/* Parsers for setters: whole decimal numbers in [min, max]; with a text
 * error naming flag_name and the range. */
int jm_parse_u64(const char *flag_name, const char *text, unsigned long long min,
                 unsigned long long max, unsigned long long *out, struct jm_err *err);
int jm_parse_i64(const char *flag_name, const char *text, long long min, long long max,
                 long long *out, struct jm_err *err);

/* --log-level VALUE into *out: debug, info, warn or error; otherwise
 * JM_EINVAL with err naming the value and the four allowed. */
int jm_flags_parse_log_level(const char *value, enum jm_log_level *out, struct jm_err *err);

/* Setters declared in one line, for the flags that only store their value
 * in a field of the program's options (struct type, passed as ctx):
 * TEXT keeps the string (argv and the config outlive the options' use);
 * NUMBER parses a whole number in [min, max] (flag names it in errors). */
#define JM_FLAG_TEXT_SETTER(fn, type, field)                                                       \
	static int fn(void *ctx, const char *v, struct jm_err *err)                                \
	{                                                                                          \
		(void)err;                                                                         \
		((type *)ctx)->field = v;                                                          \
		return 0;                                                                          \
	}
#define JM_FLAG_NUMBER_SETTER(fn, type, flag, field, min, max)                                     \
	static int fn(void *ctx, const char *v, struct jm_err *err)                                \
	{                                                                                          \
		unsigned long long value;                                                          \
		int rc = jm_parse_u64(flag, v, min, max, &value, err);                             \
		if (rc == 0)                                                                       \
			((type *)ctx)->field = value;                                              \
		return rc;                                                                         \
	}

#endif
