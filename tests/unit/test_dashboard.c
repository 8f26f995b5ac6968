/* The dashboard's compiled-in files: which URL paths find which file, which
 * never find one, and the If-None-Match check behind a 304. Runs on the real
 * generated table, so a build that lost a file fails here. */
#include "jm_test.h"

#include "dashboard.h"
#include "dashboard_http.h"

static bool asset_contains(const struct dashboard_asset *a, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= a->len; i++)
		if (memcmp(a->bytes + i, needle, n) == 0)
			return true;
	return false;
}

static void test_root_and_index_give_the_page(void **state)
{
	(void)state;
	const struct dashboard_asset *root = dashboard_asset("/");
	assert_non_null(root);
	assert_string_equal(root->name, "index.html");
	assert_string_equal(root->content_type, "text/html; charset=utf-8");
	assert_ptr_equal(dashboard_asset("/index.html"), root);
	assert_ptr_equal(dashboard_asset("/?token=x"), root);
	assert_true(root->len > 100);
	assert_true(asset_contains(root, "/assets/app.js"));
}

static void test_assets_are_found_by_name_with_their_type(void **state)
{
	(void)state;
	const struct dashboard_asset *js = dashboard_asset("/assets/app.js");
	assert_non_null(js);
	assert_string_equal(js->content_type, "text/javascript; charset=utf-8");
	assert_ptr_equal(dashboard_asset("/assets/app.js?v=2"), js);
	const struct dashboard_asset *css = dashboard_asset("/assets/app.css");
	assert_non_null(css);
	assert_string_equal(css->content_type, "text/css; charset=utf-8");
	for (size_t i = 0; i < dashboard_assets_count; i++) {
		assert_true(dashboard_assets[i].len > 0);
		assert_true(strlen(dashboard_assets[i].etag) == 18); /* 16 hex digits, quoted */
	}
}

static void test_other_paths_find_nothing(void **state)
{
	(void)state;
	const char *paths[] = {"",
	                       "/v1/queues",
	                       "/assets/",
	                       "/assets",
	                       "/assets/index.html",
	                       "/assets/../index.html",
	                       "/assets/.app.js",
	                       "/assets/sub/app.js",
	                       "/assets/app.js/",
	                       "/assets/app.jsx",
	                       "/assets/app",
	                       "/app.js",
	                       "//",
	                       "/index.htm"};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
		if (dashboard_asset(paths[i]) != NULL)
			fail_msg("path \"%s\" found an asset", paths[i]);
	assert_null(dashboard_asset(NULL));
}

static void test_if_none_match_accepts_the_etag_in_its_forms(void **state)
{
	(void)state;
	const struct dashboard_asset *js = dashboard_asset("/assets/app.js");
	assert_non_null(js);
	char header[128];
	assert_true(dashboard_etag_matches(js, js->etag));
	snprintf(header, sizeof header, "W/%s", js->etag);
	assert_true(dashboard_etag_matches(js, header));
	snprintf(header, sizeof header, "\"nope\", %s ", js->etag);
	assert_true(dashboard_etag_matches(js, header));
	assert_true(dashboard_etag_matches(js, "*"));
	assert_false(dashboard_etag_matches(js, NULL));
	assert_false(dashboard_etag_matches(js, ""));
	assert_false(dashboard_etag_matches(js, "\"0000000000000000\""));
	assert_false(dashboard_etag_matches(js, " , ,"));
	/* A tag of another file does not match. */
	const struct dashboard_asset *page = dashboard_asset("/");
	assert_false(dashboard_etag_matches(js, page->etag));
}

static void test_response_carries_the_file_and_its_headers(void **state)
{
	(void)state;
	struct dashboard_reply res;
	assert_jm_ok(dashboard_http_response("/assets/app.js", NULL, &res));
	assert_int_equal(res.status, 200);
	const struct dashboard_asset *js = dashboard_asset("/assets/app.js");
	assert_string_equal(dashboard_reply_field(&res, "Content-Type"), js->content_type);
	assert_string_equal(dashboard_reply_field(&res, "ETag"), js->etag);
	assert_string_equal(dashboard_reply_field(&res, "Cache-Control"), "no-cache");
	const char *csp = dashboard_reply_field(&res, "Content-Security-Policy");
	assert_non_null(csp);
	assert_true(strncmp(csp, "default-src 'self'", strlen("default-src 'self'")) == 0);
	assert_int_equal(res.len, js->len);
	assert_memory_equal(res.body, js->bytes, res.len);
}

static void test_response_is_304_without_body_for_a_known_etag(void **state)
{
	(void)state;
	const struct dashboard_asset *page = dashboard_asset("/");
	struct dashboard_reply res;
	assert_jm_ok(dashboard_http_response("/", page->etag, &res));
	assert_int_equal(res.status, 304);
	assert_string_equal(dashboard_reply_field(&res, "ETag"), page->etag);
	assert_null(dashboard_reply_field(&res, "Content-Type"));
	assert_int_equal(res.len, 0);
}

static void test_response_refuses_paths_that_are_not_the_dashboards(void **state)
{
	(void)state;
	struct dashboard_reply res;
	assert_int_equal(dashboard_http_response("/v1/queues", NULL, &res), JM_ENOTFOUND);
	assert_int_equal(dashboard_http_response("/assets/nope.js", NULL, &res), JM_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_root_and_index_give_the_page),
	    cmocka_unit_test(test_assets_are_found_by_name_with_their_type),
	    cmocka_unit_test(test_other_paths_find_nothing),
	    cmocka_unit_test(test_if_none_match_accepts_the_etag_in_its_forms),
	    cmocka_unit_test(test_response_carries_the_file_and_its_headers),
	    cmocka_unit_test(test_response_is_304_without_body_for_a_known_etag),
	    cmocka_unit_test(test_response_refuses_paths_that_are_not_the_dashboards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
