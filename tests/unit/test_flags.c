/* Flags: argv and config files apply through one table, with errors that
 * name the flag and what is allowed. */
#include "jm_test.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flags.h"

struct opts {
	char listen[128];
	char queues[4][32];
	int queues_count;
	unsigned long long concurrency;
	bool verbose;
	int verbose_count;
	bool help;
};

static int set_listen(void *ctx, const char *value, struct jm_err *err)
{
	struct opts *o = ctx;
	snprintf(o->listen, sizeof o->listen, "%s", value);
	return 0;
}

static int set_queue(void *ctx, const char *value, struct jm_err *err)
{
	struct opts *o = ctx;
	if (o->queues_count == 4)
		return jm_err_set(err, JM_ELIMIT, "--queue: at most 4 queues");
	snprintf(o->queues[o->queues_count++], sizeof o->queues[0], "%s", value);
	return 0;
}

static int set_concurrency(void *ctx, const char *value, struct jm_err *err)
{
	struct opts *o = ctx;
	return jm_parse_u64("concurrency", value, 1, 1024, &o->concurrency, err);
}

static int set_verbose(void *ctx, const char *value, struct jm_err *err)
{
	struct opts *o = ctx;
	assert_null(value);
	o->verbose = true;
	o->verbose_count++;
	return 0;
}

static int set_help(void *ctx, const char *value, struct jm_err *err)
{
	struct opts *o = ctx;
	o->help = true;
	return 0;
}

static const struct jm_flag table[] = {
    {"listen", "URL", "address to serve on", set_listen},
    {"queue", "NAME", "queue to serve (repeatable)", set_queue},
    {"concurrency", "N", "jobs run at once", set_concurrency},
    {"verbose", NULL, "log more", set_verbose},
    {"help", NULL, "show this help", set_help},
    {NULL, NULL, NULL, NULL},
};

static const struct jm_flag table_without_help[] = {
    {"verbose", NULL, "log more", set_verbose},
    {NULL, NULL, NULL, NULL},
};

#define ARGC(argv) ((int)(sizeof(argv) / sizeof((argv)[0])))

static void test_both_value_forms_are_accepted(void **state)
{
	char *argv[] = {"prog",        "--listen=ipc:///tmp/x", "--queue", "a",
	                "--queue=b=c", "--concurrency",         "8",       "--verbose"};
	struct opts o = {0};
	struct jm_err err = {0};
	int rest = -1;
	assert_jm_ok_err(jm_flags_parse(table, &o, ARGC(argv), argv, 1, &rest, &err), &err);
	assert_int_equal(rest, ARGC(argv));
	assert_string_equal(o.listen, "ipc:///tmp/x");
	assert_int_equal(o.queues_count, 2);
	assert_string_equal(o.queues[0], "a");
	assert_string_equal(o.queues[1], "b=c");
	assert_int_equal(o.concurrency, 8);
	assert_true(o.verbose);
}

static void test_parse_stops_at_first_operand(void **state)
{
	char *argv[] = {"jobmesh", "--verbose", "submit", "--queue", "q"};
	struct opts o = {0};
	struct jm_err err = {0};
	int rest = -1;
	assert_jm_ok_err(jm_flags_parse(table, &o, ARGC(argv), argv, 1, &rest, &err), &err);
	assert_int_equal(rest, 2);
	assert_int_equal(o.queues_count, 0);

	assert_jm_ok_err(jm_flags_parse(table, &o, ARGC(argv), argv, 3, &rest, &err), &err);
	assert_int_equal(rest, 5);
	assert_string_equal(o.queues[0], "q");
}

static void test_double_dash_ends_flags(void **state)
{
	char *argv[] = {"prog", "--verbose", "--", "--queue", "x"};
	struct opts o = {0};
	struct jm_err err = {0};
	int rest = -1;
	assert_jm_ok_err(jm_flags_parse(table, &o, ARGC(argv), argv, 1, &rest, &err), &err);
	assert_int_equal(rest, 3);
	assert_int_equal(o.queues_count, 0);
}

static void test_dash_and_negative_number_are_operands(void **state)
{
	char *argv1[] = {"prog", "-", "x"};
	char *argv2[] = {"prog", "-5"};
	struct opts o = {0};
	struct jm_err err = {0};
	int rest = -1;
	assert_jm_ok_err(jm_flags_parse(table, &o, ARGC(argv1), argv1, 1, &rest, &err), &err);
	assert_int_equal(rest, 1);
	assert_jm_ok_err(jm_flags_parse(table, &o, ARGC(argv2), argv2, 1, &rest, &err), &err);
	assert_int_equal(rest, 1);
}

static void test_value_may_start_with_a_dash(void **state)
{
	char *argv[] = {"prog", "--listen", "-weird"};
	struct opts o = {0};
	struct jm_err err = {0};
	assert_jm_ok_err(jm_flags_parse(table, &o, ARGC(argv), argv, 1, NULL, &err), &err);
	assert_string_equal(o.listen, "-weird");
}

static void test_unknown_flag_is_named(void **state)
{
	char *argv[] = {"prog", "--lisen=x"};
	struct opts o = {0};
	struct jm_err err = {0};
	assert_int_equal(jm_flags_parse(table, &o, ARGC(argv), argv, 1, NULL, &err), JM_EINVAL);
	assert_string_equal(jm_err_text(&err), "unknown flag --lisen; see --help");
}

static void test_single_dash_word_is_an_unknown_flag(void **state)
{
	char *argv[] = {"prog", "-queue", "x"};
	struct opts o = {0};
	struct jm_err err = {0};
	assert_int_equal(jm_flags_parse(table, &o, ARGC(argv), argv, 1, NULL, &err), JM_EINVAL);
	assert_non_null(strstr(jm_err_text(&err), "unknown flag -queue"));
}

static void test_missing_value_is_named(void **state)
{
	char *argv[] = {"prog", "--queue"};
	struct opts o = {0};
	struct jm_err err = {0};
	assert_int_equal(jm_flags_parse(table, &o, ARGC(argv), argv, 1, NULL, &err), JM_EINVAL);
	assert_string_equal(jm_err_text(&err), "--queue needs a value: --queue NAME");
}

static void test_switch_with_value_is_refused(void **state)
{
	char *argv[] = {"prog", "--verbose=yes"};
	struct opts o = {0};
	struct jm_err err = {0};
	assert_int_equal(jm_flags_parse(table, &o, ARGC(argv), argv, 1, NULL, &err), JM_EINVAL);
	assert_non_null(strstr(jm_err_text(&err), "--verbose takes no value"));
	assert_false(o.verbose);
}

static void test_setter_error_is_returned_as_is(void **state)
{
	char *argv[] = {"prog", "--concurrency", "0"};
	struct opts o = {0};
	struct jm_err err = {0};
	assert_int_equal(jm_flags_parse(table, &o, ARGC(argv), argv, 1, NULL, &err), JM_EINVAL);
	assert_string_equal(jm_err_text(&err),
	                    "--concurrency \"0\": must be a whole number from 1 to 1024");
}

static void test_help_entry_answers_h_and_help(void **state)
{
	char *argv1[] = {"prog", "-h"};
	char *argv2[] = {"prog", "--help"};
	struct opts o = {0};
	struct jm_err err = {0};
	assert_jm_ok_err(jm_flags_parse(table, &o, ARGC(argv1), argv1, 1, NULL, &err), &err);
	assert_true(o.help);
	o.help = false;
	assert_jm_ok_err(jm_flags_parse(table, &o, ARGC(argv2), argv2, 1, NULL, &err), &err);
	assert_true(o.help);

	assert_int_equal(jm_flags_parse(table_without_help, &o, ARGC(argv1), argv1, 1, NULL, &err),
	                 JM_EINVAL);
	assert_int_equal(jm_flags_parse(table_without_help, &o, ARGC(argv2), argv2, 1, NULL, &err),
	                 JM_EINVAL);
	assert_string_equal(jm_err_text(&err), "unknown flag --help");
}

static struct jm_config_entry entry(const char *key, const char *value, int line)
{
	return (struct jm_config_entry){(char *)key, (char *)value, line};
}

static void test_config_applies_through_the_same_setters(void **state)
{
	struct jm_config_entry entries[] = {
	    entry("listen", "tcp://1.2.3.4:1", 1),
	    entry("queue", "a", 2),
	    entry("queue", "b", 2),
	    entry("concurrency", "16", 3),
	    entry("verbose", "true", 4),
	};
	struct jm_config cfg = {"x.yaml", entries, 5};
	struct opts o = {0};
	struct jm_err err = {0};
	assert_jm_ok_err(jm_flags_apply_config(table, &o, &cfg, &err), &err);
	assert_string_equal(o.listen, "tcp://1.2.3.4:1");
	assert_int_equal(o.queues_count, 2);
	assert_int_equal(o.concurrency, 16);
	assert_true(o.verbose);
}

static void test_config_switch_false_is_not_applied(void **state)
{
	struct jm_config_entry entries[] = {entry("verbose", "false", 1)};
	struct jm_config cfg = {"x.yaml", entries, 1};
	struct opts o = {0};
	struct jm_err err = {0};
	assert_jm_ok_err(jm_flags_apply_config(table, &o, &cfg, &err), &err);
	assert_int_equal(o.verbose_count, 0);

	entries[0] = entry("verbose", "maybe", 7);
	assert_int_equal(jm_flags_apply_config(table, &o, &cfg, &err), JM_EINVAL);
	assert_string_equal(jm_err_text(&err), "config x.yaml: line 7: verbose: \"maybe\" is not "
	                                       "a switch value; write true or false");
}

static void test_config_unknown_key_names_key_and_line(void **state)
{
	struct jm_config_entry entries[] = {entry("queue", "a", 1), entry("queues", "b", 2)};
	struct jm_config cfg = {"x.yaml", entries, 2};
	struct opts o = {0};
	struct jm_err err = {0};
	assert_int_equal(jm_flags_apply_config(table, &o, &cfg, &err), JM_EINVAL);
	assert_string_equal(jm_err_text(&err), "config x.yaml: line 2: unknown setting \"queues\"; "
	                                       "settings are the long flag names (see --help)");
}

static void test_config_setter_error_gets_file_and_line(void **state)
{
	struct jm_config_entry entries[] = {entry("concurrency", "2000", 9)};
	struct jm_config cfg = {"x.yaml", entries, 1};
	struct opts o = {0};
	struct jm_err err = {0};
	assert_int_equal(jm_flags_apply_config(table, &o, &cfg, &err), JM_EINVAL);
	assert_string_equal(jm_err_text(&err), "config x.yaml: line 9: --concurrency \"2000\": "
	                                       "must be a whole number from 1 to 1024");
}

static void test_find_reads_either_form_and_last_wins(void **state)
{
	char *argv[] = {"prog", "--config", "a.yaml", "--verbose", "--config=b.yaml",
	                "--",   "--config", "c.yaml"};
	assert_string_equal(jm_flags_find(ARGC(argv), argv, "config"), "b.yaml");
	char *argv2[] = {"prog", "--configx", "a", "--config"};
	assert_null(jm_flags_find(ARGC(argv2), argv2, "config"));
	assert_null(jm_flags_find(ARGC(argv2), argv2, "listen"));
}

static void test_print_aligns_columns(void **state)
{
	char text[1024] = {0};
	FILE *out = tmpfile();
	assert_non_null(out);
	jm_flags_print(out, table);
	rewind(out);
	assert_true(fread(text, 1, sizeof text - 1, out) > 0);
	fclose(out);
	assert_non_null(strstr(text, "  --listen URL      address to serve on\n"));
	assert_non_null(strstr(text, "  --concurrency N   jobs run at once\n"));
	assert_non_null(strstr(text, "  --verbose         log more\n"));
}

static void test_parse_u64_accepts_whole_numbers_in_range(void **state)
{
	unsigned long long value = 0;
	struct jm_err err = {0};
	assert_jm_ok_err(jm_parse_u64("n", "0", 0, 10, &value, &err), &err);
	assert_int_equal(value, 0);
	assert_jm_ok_err(jm_parse_u64("n", "010", 0, 10, &value, &err), &err);
	assert_int_equal(value, 10);
	assert_jm_ok_err(jm_parse_u64("n", "18446744073709551615", 0, ULLONG_MAX, &value, &err),
	                 &err);
	assert_true(value == ULLONG_MAX);
}

static void test_parse_u64_refuses_signs_spaces_junk_and_overflow(void **state)
{
	static const char *const bad[] = {
	    "", "-1", "+1", " 1", "1 ", "1x", "0x10", "1e3", "1.0", "18446744073709551616", "11"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		unsigned long long value = 77;
		struct jm_err err = {0};
		assert_int_equal(jm_parse_u64("--n", bad[i], 0, 10, &value, &err), JM_EINVAL);
		assert_int_equal(value, 77);
		char want[128];
		snprintf(want, sizeof want, "--n \"%s\": must be a whole number from 0 to 10",
		         bad[i]);
		assert_string_equal(jm_err_text(&err), want);
	}
	struct jm_err err = {0};
	unsigned long long value = 0;
	assert_int_equal(jm_parse_u64("n", NULL, 0, 10, &value, &err), JM_EINVAL);
}

static void test_parse_i64_takes_a_minus_and_checks_range(void **state)
{
	long long value = 0;
	struct jm_err err = {0};
	assert_jm_ok_err(jm_parse_i64("priority", "-1000", -1000, 1000, &value, &err), &err);
	assert_int_equal(value, -1000);
	assert_jm_ok_err(jm_parse_i64("priority", "1000", -1000, 1000, &value, &err), &err);
	assert_int_equal(jm_parse_i64("priority", "-1001", -1000, 1000, &value, &err), JM_EINVAL);
	assert_string_equal(jm_err_text(&err),
	                    "--priority \"-1001\": must be a whole number from -1000 to 1000");
	assert_int_equal(jm_parse_i64("p", "-", -5, 5, &value, &err), JM_EINVAL);
	assert_int_equal(jm_parse_i64("p", "+3", -5, 5, &value, &err), JM_EINVAL);
	assert_int_equal(jm_parse_i64("p", "--3", -5, 5, &value, &err), JM_EINVAL);
	assert_int_equal(
	    jm_parse_i64("p", "-9223372036854775808", LLONG_MIN, LLONG_MAX, &value, &err), 0);
	assert_true(value == LLONG_MIN);
	assert_int_equal(
	    jm_parse_i64("p", "9223372036854775808", LLONG_MIN, LLONG_MAX, &value, &err),
	    JM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_both_value_forms_are_accepted),
	    cmocka_unit_test(test_parse_stops_at_first_operand),
	    cmocka_unit_test(test_double_dash_ends_flags),
	    cmocka_unit_test(test_dash_and_negative_number_are_operands),
	    cmocka_unit_test(test_value_may_start_with_a_dash),
	    cmocka_unit_test(test_unknown_flag_is_named),
	    cmocka_unit_test(test_single_dash_word_is_an_unknown_flag),
	    cmocka_unit_test(test_missing_value_is_named),
	    cmocka_unit_test(test_switch_with_value_is_refused),
	    cmocka_unit_test(test_setter_error_is_returned_as_is),
	    cmocka_unit_test(test_help_entry_answers_h_and_help),
	    cmocka_unit_test(test_config_applies_through_the_same_setters),
	    cmocka_unit_test(test_config_switch_false_is_not_applied),
	    cmocka_unit_test(test_config_unknown_key_names_key_and_line),
	    cmocka_unit_test(test_config_setter_error_gets_file_and_line),
	    cmocka_unit_test(test_find_reads_either_form_and_last_wins),
	    cmocka_unit_test(test_print_aligns_columns),
	    cmocka_unit_test(test_parse_u64_accepts_whole_numbers_in_range),
	    cmocka_unit_test(test_parse_u64_refuses_signs_spaces_junk_and_overflow),
	    cmocka_unit_test(test_parse_i64_takes_a_minus_and_checks_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
