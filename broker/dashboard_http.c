/* The dashboard's HTTP answer (dashboard_http.h): built from the compiled-in
 * table at once — no disk, no core lock, nothing that can park. */
#include "dashboard_http.h"

#include <jobmesh/error.h>

#include "dashboard.h"

int dashboard_http_response(const char *path, const char *if_none_match, nng_http_res **out)
{
	*out = NULL;
	const struct dashboard_asset *asset = dashboard_asset(path);
	if (asset == NULL)
		return JM_ENOTFOUND;
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0)
		return JM_ENOMEM;
	bool fresh = dashboard_etag_matches(asset, if_none_match);
	int rv = 0;
	for (size_t i = 0; dashboard_headers[i] != NULL && rv == 0; i += 2)
		rv = nng_http_res_set_header(res, dashboard_headers[i], dashboard_headers[i + 1]);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "ETag", asset->etag);
	if (rv == 0 && fresh)
		rv = nng_http_res_set_status(res, NNG_HTTP_STATUS_NOT_MODIFIED);
	if (rv == 0 && !fresh) {
		rv = nng_http_res_set_header(res, "Content-Type", asset->content_type);
		/* The table is static and outlives every reply: no copy. */
		if (rv == 0)
			rv = nng_http_res_set_data(res, asset->bytes, asset->len);
	}
	if (rv != 0) {
		nng_http_res_free(res);
		return JM_ENOMEM;
	}
	*out = res;
	return 0;
}
