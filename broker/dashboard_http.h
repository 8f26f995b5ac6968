/* The dashboard's HTTP answers (dashboard.h holds the files): GET "/" gives
 * the page, GET "/assets/NAME" its files. The broker's HTTP server
 * (http_server.c) owns routing; it asks this module first for any GET
 * outside its own paths and sends the response built here as it is. */
#ifndef JOBMESH_BROKER_DASHBOARD_HTTP_H
#define JOBMESH_BROKER_DASHBOARD_HTTP_H

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

/* Builds the response for a GET of path (the URI's path, no query):
 * 200 with the file, its Content-Type, ETag and the dashboard_headers, or
 * 304 with no body when if_none_match (the request's If-None-Match, or
 * NULL) names the file's ETag. The body points into the static table (no
 * copy). On success *out is the caller's, to send or free; returns 0.
 * Returns JM_ENOTFOUND (nothing built) when path is not the dashboard's,
 * or JM_ENOMEM. */
int dashboard_http_response(const char *path, const char *if_none_match, nng_http_res **out);

#endif
