/* RFC 3339 times as `jobmesh submit --run-at` and HTTP's "run_at" take
 * them. */
#include "jm_test.h"

#include "rfc3339.h"

static uint64_t parse_ok(const char *text)
{
	uint64_t us = 0;
	struct jm_err err;
	assert_jm_ok_err(jm_rfc3339_parse(text, &us, &err), &err);
	return us;
}

static void test_utc_offsets_and_fractions_give_the_same_instant(void **state)
{
	(void)state;
	assert_true(parse_ok("2026-11-30T12:00:00Z") == 1796040000000000ull);
	assert_true(parse_ok("2026-11-30T13:00:00+01:00") == 1796040000000000ull);
	assert_true(parse_ok("2026-11-30t06:30:00-05:30") == 1796040000000000ull);
	assert_true(parse_ok("2026-11-30 12:00:00.25Z") == 1796040000250000ull);
	assert_true(parse_ok("2026-11-30T12:00:00.1234567Z") == 1796040000123456ull);
	assert_true(parse_ok("1970-01-01T00:00:00Z") == 0);
}

static void test_bad_times_are_refused_naming_the_form(void **state)
{
	(void)state;
	static const char *const bad[] = {"",
	                                  "2026-11-30",
	                                  "2026-11-30T12:00:00",
	                                  "2026-11-30T24:00:00Z",
	                                  "2026-1-30T12:00:00Z",
	                                  "2026-11-30T12:00:00.Z",
	                                  "2026-11-30T12:00:00+0100",
	                                  "2026-02-29T00:00:00Z",
	                                  "1969-12-31T23:59:59Z",
	                                  "2026-11-30T12:00:00Zjunk"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t us = 7;
		struct jm_err err;
		assert_int_equal(jm_rfc3339_parse(bad[i], &us, &err), JM_EINVAL);
		assert_true(us == 7);
		assert_non_null(strstr(err.msg, "use an RFC 3339 time such as"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_utc_offsets_and_fractions_give_the_same_instant),
	    cmocka_unit_test(test_bad_times_are_refused_naming_the_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
