/* The dashboard's files (broker/dashboard/), compiled into the broker by
 * cmake/EmbedAssets.cmake, and what the HTTP server answers for a path.
 *
 * The page is served at "/" (index.html) and its other files under
 * "/assets/NAME". Nothing is read from disk at run time, so the broker
 * needs no install directory and the page is always the one it was built
 * with. */
#ifndef JOBMESH_BROKER_DASHBOARD_H
#define JOBMESH_BROKER_DASHBOARD_H

#include <stdbool.h>
#include <stddef.h>

struct dashboard_asset {
	const char *name; /* file name under broker/dashboard/: "app.js" */
	const unsigned char *bytes;
	size_t len;
	const char *content_type; /* "text/javascript; charset=utf-8" */
	const char *etag;         /* quoted: "\"3fa2...\"", from the file's SHA-256 */
};

/* The generated table (dashboard_assets.c in the build tree). */
extern const struct dashboard_asset dashboard_assets[];
extern const size_t dashboard_assets_count;

/* The asset served at an URL path: "/" and "/index.html" give index.html,
 * "/assets/NAME" gives NAME. A query string ("?v=1") is ignored. Returns
 * NULL for any other path, for names with "/" or ".." in them, and for
 * index.html under /assets (one URL per file). The result is static. */
const struct dashboard_asset *dashboard_asset(const char *path);

/* True when an If-None-Match header value (NULL when absent) names the
 * asset's ETag, so a 304 with no body can answer. Accepts "*", lists
 * ("a", "b") and weak tags (W/"a"). */
bool dashboard_etag_matches(const struct dashboard_asset *asset, const char *if_none_match);

/* Headers every dashboard answer carries beside Content-Type and ETag:
 * the page may load only its own files and talk only to its own broker;
 * browsers revalidate (cheap with the ETag) so a new broker build is seen
 * at once. NULL-terminated list of name, value pairs. */
extern const char *const dashboard_headers[];

#endif
