/* Looks up the dashboard's compiled-in files by URL path (dashboard.h). The
 * table is small (a handful of files), so a linear scan is the whole index. */
#include "dashboard.h"

#include <string.h>

#define ASSETS_PREFIX "/assets/"
#define INDEX_NAME "index.html"

const char *const dashboard_headers[] = {
    "Cache-Control",
    "no-cache",
    "Content-Security-Policy",
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options",
    "nosniff",
    "Referrer-Policy",
    "no-referrer",
    NULL,
};

static const struct dashboard_asset *find_named(const char *name, size_t len)
{
	for (size_t i = 0; i < dashboard_assets_count; i++) {
		const struct dashboard_asset *a = &dashboard_assets[i];
		if (strlen(a->name) == len && memcmp(a->name, name, len) == 0)
			return a;
	}
	return NULL;
}

const struct dashboard_asset *dashboard_asset(const char *path)
{
	if (path == NULL)
		return NULL;
	size_t len = strcspn(path, "?#");
	if ((len == 1 && path[0] == '/') ||
	    (len == strlen("/" INDEX_NAME) && memcmp(path, "/" INDEX_NAME, len) == 0))
		return find_named(INDEX_NAME, strlen(INDEX_NAME));
	size_t prefix = strlen(ASSETS_PREFIX);
	if (len <= prefix || memcmp(path, ASSETS_PREFIX, prefix) != 0)
		return NULL;
	const char *name = path + prefix;
	size_t name_len = len - prefix;
	if (memchr(name, '/', name_len) != NULL || memchr(name, '\\', name_len) != NULL ||
	    name[0] == '.')
		return NULL;
	if (name_len == strlen(INDEX_NAME) && memcmp(name, INDEX_NAME, name_len) == 0)
		return NULL;
	return find_named(name, name_len);
}

bool dashboard_etag_matches(const struct dashboard_asset *asset, const char *if_none_match)
{
	if (asset == NULL || if_none_match == NULL)
		return false;
	size_t etag_len = strlen(asset->etag);
	const char *p = if_none_match;
	while (*p != '\0') {
		p += strspn(p, " \t,");
		if (*p == '\0')
			break;
		size_t tag_len = strcspn(p, ",");
		while (tag_len > 0 && (p[tag_len - 1] == ' ' || p[tag_len - 1] == '\t'))
			tag_len--;
		const char *tag = p;
		if (tag_len == 1 && tag[0] == '*')
			return true;
		if (tag_len > 2 && tag[0] == 'W' && tag[1] == '/') {
			tag += 2;
			tag_len -= 2;
		}
		if (tag_len == etag_len && memcmp(tag, asset->etag, etag_len) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}
