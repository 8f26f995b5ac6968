/* The dashboard's HTTP answers (dashboard.h holds the files): GET "/" gives
 * the page, GET "/assets/NAME" its files. The broker's HTTP server
 * (http_route.c) owns routing; it asks this module first for any GET
 * outside its own paths and sends the reply built here as it is. */
#ifndef JOBMESH_BROKER_DASHBOARD_HTTP_H
#define JOBMESH_BROKER_DASHBOARD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "http_parse.h"

#define DASHBOARD_REPLY_FIELDS_MAX 8

/* A reply to send: every pointer is static (the compiled-in table). */
struct dashboard_reply {
	uint16_t status;
	struct http_header fields[DASHBOARD_REPLY_FIELDS_MAX];
	uint32_t fields_count;
	const void *body;
	size_t len;
};

/* Builds the reply for a GET of path (the URI's path, no query): 200 with
 * the file, its Content-Type, ETag and the dashboard_headers, or 304 with
 * no body when if_none_match (the request's If-None-Match, or NULL) names
 * the file's ETag. Returns 0, or JM_ENOTFOUND (nothing built) when path is
 * not the dashboard's. */
int dashboard_http_response(const char *path, const char *if_none_match,
                            struct dashboard_reply *out);

/* The value of field name in reply, or NULL. */
const char *dashboard_reply_field(const struct dashboard_reply *reply, const char *name);

#endif
