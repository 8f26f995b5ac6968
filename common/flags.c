/* Command-line flags and config files through one table (see flags.h).
 *
 * Only long flags exist: "--name VALUE" and "--name=VALUE". "--" ends the
 * flags. A lone "-h" is read as "--help" when the table has a "help" entry,
 * because users type it by habit; printing help is the program's business.
 * Any other word starting with "-" and a letter is an unknown flag rather
 * than an operand, so a typo like "-queue" is refused instead of being
 * taken for a command; "-" and "-5" are operands.
 *
 * A config setting for a switch (arg_name NULL) takes a boolean: true, yes
 * or on applies the switch; false, no or off leaves it unapplied. */
#include "flags.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct jm_flag *flags_lookup(const struct jm_flag *table, const char *name,
                                          size_t name_len)
{
	for (const struct jm_flag *flag = table; flag->name != NULL; flag++) {
		if (strlen(flag->name) == name_len && memcmp(flag->name, name, name_len) == 0)
			return flag;
	}
	return NULL;
}

static bool flags_has_help(const struct jm_flag *table)
{
	return flags_lookup(table, "help", 4) != NULL;
}

/* True for words that mean to be flags: "--x..." and "-<letter>...". */
static bool flags_looks_like_flag(const char *arg)
{
	if (arg[0] != '-')
		return false;
	if (arg[1] == '-')
		return arg[2] != '\0';
	return (arg[1] >= 'a' && arg[1] <= 'z') || (arg[1] >= 'A' && arg[1] <= 'Z');
}

int jm_flags_parse(const struct jm_flag *table, void *ctx, int argc, char **argv, int first,
                   int *rest, struct jm_err *err)
{
	int i = first;
	while (i < argc) {
		const char *arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (!flags_looks_like_flag(arg))
			break;

		const struct jm_flag *flag = NULL;
		const char *value = NULL;
		if (strcmp(arg, "-h") == 0 && flags_has_help(table)) {
			flag = flags_lookup(table, "help", 4);
		} else if (arg[1] == '-') {
			const char *name = arg + 2;
			const char *equals = strchr(name, '=');
			size_t name_len = equals ? (size_t)(equals - name) : strlen(name);
			flag = flags_lookup(table, name, name_len);
			if (flag == NULL)
				return jm_err_set(err, JM_EINVAL, "unknown flag --%.*s%s",
				                  (int)name_len, name,
				                  flags_has_help(table) ? "; see --help" : "");
			if (equals != NULL) {
				if (flag->arg_name == NULL)
					return jm_err_set(err, JM_EINVAL,
					                  "--%s takes no value; write --%s alone",
					                  flag->name, flag->name);
				value = equals + 1;
			}
		} else {
			return jm_err_set(err, JM_EINVAL,
			                  "unknown flag %s; flags are written --name%s", arg,
			                  flags_has_help(table) ? " (see --help)" : "");
		}

		if (flag->arg_name != NULL && value == NULL) {
			if (i + 1 >= argc)
				return jm_err_set(err, JM_EINVAL, "--%s needs a value: --%s %s",
				                  flag->name, flag->name, flag->arg_name);
			/* The next word is the value even if it starts with "-", so
			 * "--priority -5" works. */
			value = argv[++i];
		}
		int rc = flag->set(ctx, value, err);
		if (rc != 0)
			return rc;
		i++;
	}
	if (rest != NULL)
		*rest = i;
	return 0;
}

/* Reads a config value for a switch; 0 with *on set, or JM_EINVAL. */
static int flags_parse_switch(const char *text, bool *on)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcmp(text, yes[i]) == 0) {
			*on = true;
			return 0;
		}
		if (strcmp(text, no[i]) == 0) {
			*on = false;
			return 0;
		}
	}
	return JM_EINVAL;
}

int jm_flags_apply_config(const struct jm_flag *table, void *ctx, const struct jm_config *cfg,
                          struct jm_err *err)
{
	for (size_t i = 0; i < cfg->entries_count; i++) {
		const struct jm_config_entry *entry = &cfg->entries[i];
		const struct jm_flag *flag = flags_lookup(table, entry->key, strlen(entry->key));
		if (flag == NULL)
			return jm_err_set(
			    err, JM_EINVAL,
			    "config %s: line %d: unknown setting \"%s\"; settings are "
			    "the long flag names%s",
			    cfg->path, entry->line, entry->key,
			    flags_has_help(table) ? " (see --help)" : "");
		const char *value = entry->value;
		if (flag->arg_name == NULL) {
			bool on = false;
			if (flags_parse_switch(entry->value, &on) != 0)
				return jm_err_set(err, JM_EINVAL,
				                  "config %s: line %d: %s: \"%s\" is not a switch "
				                  "value; write true or false",
				                  cfg->path, entry->line, entry->key, entry->value);
			if (!on)
				continue;
			value = NULL;
		}
		int rc = flag->set(ctx, value, err);
		if (rc != 0) {
			if (err != NULL)
				jm_err_prefix(err, "config %s: line %d", cfg->path, entry->line);
			return rc;
		}
	}
	return 0;
}

const char *jm_flags_find(int argc, char **argv, const char *name)
{
	size_t name_len = strlen(name);
	const char *found = NULL;
	/* The last occurrence wins, as it does when the flags are applied. */
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--") == 0)
			break;
		if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, name_len) != 0)
			continue;
		const char *tail = arg + 2 + name_len;
		if (*tail == '=')
			found = tail + 1;
		else if (*tail == '\0' && i + 1 < argc)
			found = argv[++i];
	}
	return found;
}

void jm_flags_print(FILE *out, const struct jm_flag *table)
{
	int width = 0;
	for (const struct jm_flag *flag = table; flag->name != NULL; flag++) {
		int len = 2 + (int)strlen(flag->name);
		if (flag->arg_name != NULL)
			len += 1 + (int)strlen(flag->arg_name);
		if (len > width)
			width = len;
	}
	for (const struct jm_flag *flag = table; flag->name != NULL; flag++) {
		char usage[256];
		snprintf(usage, sizeof usage, "--%s%s%s", flag->name, flag->arg_name ? " " : "",
		         flag->arg_name ? flag->arg_name : "");
		fprintf(out, "  %-*s   %s\n", width, usage, flag->help ? flag->help : "");
	}
}

/* "--name" for messages, whether or not the caller already wrote the dashes. */
static const char *flags_dashes(const char *flag_name)
{
	return flag_name[0] == '-' ? "" : "--";
}

/* True when text is one or more ASCII digits and nothing else. */
static bool flags_all_digits(const char *text)
{
	if (*text == '\0')
		return false;
	for (; *text != '\0'; text++) {
		if (*text < '0' || *text > '9')
			return false;
	}
	return true;
}

int jm_parse_u64(const char *flag_name, const char *text, unsigned long long min,
                 unsigned long long max, unsigned long long *out, struct jm_err *err)
{
	const char *shown = text ? text : "";
	if (text == NULL || !flags_all_digits(text))
		goto fail_range;
	errno = 0;
	unsigned long long value = strtoull(text, NULL, 10);
	if (errno == ERANGE || value < min || value > max)
		goto fail_range;
	*out = value;
	return 0;

fail_range:
	return jm_err_set(err, JM_EINVAL, "%s%s \"%s\": must be a whole number from %llu to %llu",
	                  flags_dashes(flag_name), flag_name, shown, min, max);
}

int jm_parse_i64(const char *flag_name, const char *text, long long min, long long max,
                 long long *out, struct jm_err *err)
{
	const char *shown = text ? text : "";
	if (text == NULL || !flags_all_digits(text[0] == '-' ? text + 1 : text))
		goto fail_range;
	errno = 0;
	long long value = strtoll(text, NULL, 10);
	if (errno == ERANGE || value < min || value > max)
		goto fail_range;
	*out = value;
	return 0;

fail_range:
	return jm_err_set(err, JM_EINVAL, "%s%s \"%s\": must be a whole number from %lld to %lld",
	                  flags_dashes(flag_name), flag_name, shown, min, max);
}

int jm_flags_parse_log_level(const char *value, enum jm_log_level *out, struct jm_err *err)
{
	if (jm_log_parse_level(value, out) != 0)
		return jm_err_set(err, JM_EINVAL,
		                  "--log-level \"%s\" is unknown: use debug, info, warn or error",
		                  value);
	return 0;
}
