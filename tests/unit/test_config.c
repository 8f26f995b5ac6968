/* Config files: the accepted YAML shapes flatten to flag entries, and every
 * other shape is refused with the file, the line and what is allowed. */
#include "jm_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof f->dir, "%s/jm-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/jobmesh.yaml", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static const char *write_yaml(void **state, const char *text)
{
	struct fixture *f = *state;
	FILE *file = fopen(f->path, "w");
	assert_non_null(file);
	assert_int_equal(fwrite(text, 1, strlen(text), file), strlen(text));
	assert_int_equal(fclose(file), 0);
	return f->path;
}

static void assert_entry(const struct jm_config *cfg, size_t index, const char *key,
                         const char *value, int line)
{
	assert_true(index < cfg->entries_count);
	assert_string_equal(cfg->entries[index].key, key);
	assert_string_equal(cfg->entries[index].value, value);
	assert_int_equal(cfg->entries[index].line, line);
}

/* Loads text, expects failure, and checks the message contains each of the
 * given fragments (NULL-terminated). */
static void assert_refused(void **state, const char *text, ...)
{
	const char *path = write_yaml(state, text);
	struct jm_config cfg;
	struct jm_err err = {0};
	int rc = jm_config_load(&cfg, path, &err);
	assert_int_not_equal(rc, 0);
	assert_int_equal(err.code, rc);
	assert_int_equal(cfg.entries_count, 0);
	assert_null(cfg.entries);
	char prefix[160];
	snprintf(prefix, sizeof prefix, "config %s: ", path);
	if (strncmp(jm_err_text(&err), prefix, strlen(prefix)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", jm_err_text(&err), prefix);
	va_list ap;
	va_start(ap, text);
	for (const char *want = va_arg(ap, const char *); want != NULL;
	     want = va_arg(ap, const char *)) {
		if (strstr(jm_err_text(&err), want) == NULL)
			fail_msg("message \"%s\" lacks \"%s\"", jm_err_text(&err), want);
	}
	va_end(ap);
	jm_config_fini(&cfg);
}

static void test_scalar_list_and_mapping_flatten_to_entries(void **state)
{
	const char *path = write_yaml(state, "# broker\n"
	                                     "listen: tcp://127.0.0.1:7400\n"
	                                     "queue: [emails, documents]\n"
	                                     "handler:\n"
	                                     "  email.send: ./send.sh\n"
	                                     "  doc.ocr: \"./ocr.sh --fast\"\n"
	                                     "retries:\n"
	                                     "  - 3\n"
	                                     "  - '4'\n");
	struct jm_config cfg;
	struct jm_err err = {0};
	assert_jm_ok_err(jm_config_load(&cfg, path, &err), &err);
	assert_string_equal(cfg.path, path);
	assert_int_equal(cfg.entries_count, 7);
	assert_entry(&cfg, 0, "listen", "tcp://127.0.0.1:7400", 2);
	assert_entry(&cfg, 1, "queue", "emails", 3);
	assert_entry(&cfg, 2, "queue", "documents", 3);
	assert_entry(&cfg, 3, "handler", "email.send=./send.sh", 5);
	assert_entry(&cfg, 4, "handler", "doc.ocr=./ocr.sh --fast", 6);
	assert_entry(&cfg, 5, "retries", "3", 8);
	assert_entry(&cfg, 6, "retries", "4", 9);
	jm_config_fini(&cfg);
	assert_null(cfg.entries);
}

static void test_empty_file_is_an_empty_config(void **state)
{
	static const char *const empties[] = {"", "# only a comment\n", "---\n", "\n\n"};
	for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
		const char *path = write_yaml(state, empties[i]);
		struct jm_config cfg;
		struct jm_err err = {0};
		assert_jm_ok_err(jm_config_load(&cfg, path, &err), &err);
		assert_int_equal(cfg.entries_count, 0);
		jm_config_fini(&cfg);
	}
}

static void test_empty_list_and_mapping_give_no_entries(void **state)
{
	const char *path = write_yaml(state, "queue: []\nhandler: {}\nlisten: ''\n");
	struct jm_config cfg;
	struct jm_err err = {0};
	assert_jm_ok_err(jm_config_load(&cfg, path, &err), &err);
	assert_int_equal(cfg.entries_count, 1);
	assert_entry(&cfg, 0, "listen", "", 3);
	jm_config_fini(&cfg);
}

static void test_missing_file_names_the_file(void **state)
{
	struct fixture *f = *state;
	char path[160];
	snprintf(path, sizeof path, "%s/absent.yaml", f->dir);
	struct jm_config cfg;
	struct jm_err err = {0};
	assert_int_equal(jm_config_load(&cfg, path, &err), JM_EIO);
	char want[256];
	snprintf(want, sizeof want, "config %s: No such file or directory", path);
	assert_string_equal(jm_err_text(&err), want);
	jm_config_fini(&cfg);
}

static void test_top_level_list_is_refused(void **state)
{
	assert_refused(state, "- a\n- b\n", "line 1:", "the top level is a list",
	               "mapping of flag names", NULL);
}

static void test_top_level_scalar_is_refused(void **state)
{
	assert_refused(state, "just text\n", "line 1:", "the top level is text", NULL);
}

static void test_nested_list_in_list_is_refused(void **state)
{
	assert_refused(state, "listen: x\nqueue:\n  - a\n  - [b, c]\n",
	               "line 4:", "an item of \"queue\" is a list", "a list of text", NULL);
}

/* One level of records under a mapping (the broker's schedules); a
 * record's fields are text, never deeper. */
static void test_a_mapping_of_mappings_gives_one_record_each_and_deeper_is_refused(void **state)
{
	const char *path = write_yaml(state, "schedule:\n  nightly: {cron: \"0 2 * * *\", queue: "
	                                     "q}\n  tick:\n    every: 1h\n");
	struct jm_config cfg;
	struct jm_err err;
	assert_jm_ok_err(jm_config_load(&cfg, path, &err), &err);
	assert_int_equal(cfg.entries_count, 2);
	assert_entry(&cfg, 0, "schedule",
	             "nightly\x1f"
	             "cron=0 2 * * *\x1equeue=q",
	             2);
	assert_entry(&cfg, 1, "schedule",
	             "tick\x1f"
	             "every=1h",
	             3);
	jm_config_fini(&cfg);
	assert_refused(state, "handler:\n  a:\n    b: [c]\n",
	               "line 3:", "each field of \"a\" under \"handler\" is text: text", NULL);
	assert_refused(state, "schedule:\n  a: {cron: \"x\\x1fy\"}\n",
	               "line 2:", "control character", NULL);
}

static void test_alias_and_anchor_are_refused(void **state)
{
	assert_refused(state, "listen: &addr tcp://x\n", "line 1:", "anchor &addr", "not allowed",
	               NULL);
	assert_refused(state, "queue: [a]\nother: *x\n", "line 2:", NULL);
}

static void test_non_scalar_key_is_refused(void **state)
{
	assert_refused(state, "? [a, b]\n: c\n", "line 1:", "a key is a list",
	               "keys are flag names", NULL);
	assert_refused(state, "handler:\n  ? {a: b}\n  : c\n",
	               "line 2:", "a key under \"handler\" is a mapping", NULL);
}

static void test_syntax_error_reports_the_line(void **state)
{
	assert_refused(state, "listen: x\nqueue: [a, b\n", "valid YAML", NULL);
	assert_refused(state, "listen: x\n  bad: indent: here\n", "line 2:", "valid YAML", NULL);
}

static void test_second_document_is_refused(void **state)
{
	assert_refused(state, "listen: a\n---\nlisten: b\n", "line 2:", "one document", NULL);
}

static void test_nul_in_value_is_refused(void **state)
{
	assert_refused(state, "listen: \"a\\0b\"\n", "line 1:", "NUL", NULL);
}

static void test_fini_accepts_zeroed_and_null(void **state)
{
	struct jm_config cfg = {0};
	jm_config_fini(&cfg);
	jm_config_fini(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_scalar_list_and_mapping_flatten_to_entries, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_empty_file_is_an_empty_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_list_and_mapping_give_no_entries, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file_names_the_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_top_level_list_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_top_level_scalar_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nested_list_in_list_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_a_mapping_of_mappings_gives_one_record_each_and_deeper_is_refused, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_alias_and_anchor_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_non_scalar_key_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syntax_error_reports_the_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_second_document_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nul_in_value_is_refused, setup, teardown),
	    cmocka_unit_test(test_fini_accepts_zeroed_and_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
