/* The dashboard's HTTP answer (dashboard_http.h): built from the compiled-in
 * table at once — no disk, no core lock, no allocation, nothing that can
 * park. */
#include "dashboard_http.h"

#include <string.h>
#include <strings.h>

#include <jobmesh/error.h>

#include "dashboard.h"

static void add(struct dashboard_reply *out, const char *name, const char *value)
{
	/* The table's fields and ours fit: DASHBOARD_REPLY_FIELDS_MAX. */
	if (out->fields_count < DASHBOARD_REPLY_FIELDS_MAX) {
		out->fields[out->fields_count].name = name;
		out->fields[out->fields_count].value = value;
		out->fields_count++;
	}
}

int dashboard_http_response(const char *path, const char *if_none_match,
                            struct dashboard_reply *out)
{
	memset(out, 0, sizeof *out);
	const struct dashboard_asset *asset = dashboard_asset(path);
	if (asset == NULL)
		return JM_ENOTFOUND;
	for (size_t i = 0; dashboard_headers[i] != NULL; i += 2)
		add(out, dashboard_headers[i], dashboard_headers[i + 1]);
	add(out, "ETag", asset->etag);
	if (dashboard_etag_matches(asset, if_none_match)) {
		out->status = 304;
		return 0;
	}
	out->status = 200;
	add(out, "Content-Type", asset->content_type);
	out->body = asset->bytes;
	out->len = asset->len;
	return 0;
}

const char *dashboard_reply_field(const struct dashboard_reply *reply, const char *name)
{
	for (uint32_t i = 0; i < reply->fields_count; i++)
		if (strcasecmp(reply->fields[i].name, name) == 0)
			return reply->fields[i].value;
	return NULL;
}
