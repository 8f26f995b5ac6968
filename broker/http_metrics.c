/* /metrics (Prometheus text format 0.0.4), /healthz, /readyz and the
 * OpenAPI document. /metrics reads the core's STATS and WORKERS like any
 * client (so a tenant's token sees its own queues), then, for an admin or
 * without --auth, appends the process counters (metrics.h) and the event
 * stream's figures. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "auth.h"
#include "auth_gate.h"
#include "http_call.h"
#include "http_json.h"
#include "http_server.h"
#include "http_sse.h"
#include "metrics.h"

#define BROKER_BUILD_VERSION "0.1.0"
#define PROMETHEUS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The document compiled from docs/openapi.json (CMake generates it). */
extern const unsigned char jm_openapi_json[];
extern const unsigned long jm_openapi_json_len;

static const char *const no_params[] = {NULL};

static void put(struct jm_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct jm_buf *out, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (len > 0)
		jm_buf_append(out, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
}

/* The figures no queue owns: the event stream's, the refused tokens and the
 * process counters (metrics.h). */
static void whole_broker_figures(struct http_call *call)
{
	struct jm_buf *t = &call->text;
	struct http_sse_stats sse;
	http_sse_stats(http_server_sse(call->srv), &sse);
	put(t,
	    "# HELP jobmesh_event_subscribers Open HTTP event streams (SSE).\n"
	    "# TYPE jobmesh_event_subscribers gauge\njobmesh_event_subscribers %llu\n",
	    (unsigned long long)sse.clients);
	put(t,
	    "# HELP jobmesh_events_total Events sequenced for the HTTP event stream.\n"
	    "# TYPE jobmesh_events_total counter\njobmesh_events_total %llu\n",
	    (unsigned long long)sse.events);
	put(t,
	    "# HELP jobmesh_events_dropped_total Events dropped for slow event-stream clients "
	    "(each got a snapshot event instead).\n"
	    "# TYPE jobmesh_events_dropped_total counter\njobmesh_events_dropped_total %llu\n",
	    (unsigned long long)sse.dropped);
	put(t,
	    "# HELP jobmesh_http_connections HTTP connections open (event streams included; "
	    "capped by --http-max-connections).\n"
	    "# TYPE jobmesh_http_connections gauge\njobmesh_http_connections %u\n",
	    http_server_connections(call->srv));
	put(t,
	    "# HELP jobmesh_auth_failures_total Requests refused for a missing or unrecognised "
	    "token (NNG and HTTP; 0 without --auth).\n"
	    "# TYPE jobmesh_auth_failures_total counter\njobmesh_auth_failures_total %llu\n",
	    (unsigned long long)auth_gate_failures(http_server_auth(call->srv)));
	metrics_render(t);
}

static void workers_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_workers_reply *w = &reply->u.workers_reply;
	uint64_t slots = 0, busy = 0, draining = 0;
	for (uint32_t i = 0; i < w->workers_count; i++) {
		slots += w->workers[i].concurrency;
		busy += w->workers[i].active_jobs;
		draining += w->workers[i].draining;
	}
	struct jm_buf *t = &call->text;
	put(t,
	    "# HELP jobmesh_workers Workers the broker knows (alive).\n"
	    "# TYPE jobmesh_workers gauge\njobmesh_workers %u\n",
	    w->workers_count);
	put(t,
	    "# HELP jobmesh_workers_draining Workers draining (fetching no more).\n"
	    "# TYPE jobmesh_workers_draining gauge\njobmesh_workers_draining %llu\n",
	    (unsigned long long)draining);
	put(t,
	    "# HELP jobmesh_worker_slots Concurrent job slots of all workers.\n"
	    "# TYPE jobmesh_worker_slots gauge\njobmesh_worker_slots %llu\n",
	    (unsigned long long)slots);
	put(t,
	    "# HELP jobmesh_worker_busy_slots Slots running a job.\n"
	    "# TYPE jobmesh_worker_busy_slots gauge\njobmesh_worker_busy_slots %llu\n",
	    (unsigned long long)busy);
	/* Whole-broker figures (the process counters, the event stream's, the
	 * refused tokens) go to an admin, or to anyone without --auth: a
	 * tenant's viewer token sees its queues and their workers only (the
	 * core filtered STATS and WORKERS by its identity). */
	const struct auth_identity *id = call->req.identity;
	if (id == NULL || id->role == AUTH_ROLE_ADMIN)
		whole_broker_figures(call);
	put(t,
	    "# HELP jobmesh_build_info The broker's version.\n"
	    "# TYPE jobmesh_build_info gauge\njobmesh_build_info{version=\"%s\"} 1\n",
	    BROKER_BUILD_VERSION);
	if (t->len == 0) {
		http_reply_error(call, 503, "out_of_memory", "broker out of memory");
		return;
	}
	struct jm_buf body = call->text; /* http_reply frees the call with it */
	jm_buf_init(&call->text);
	http_reply(call, 200, PROMETHEUS_TYPE, body.data, body.len, NULL, NULL);
	jm_buf_fini(&body);
}

static void stats_cb(struct http_call *call, const struct proto_msg *reply)
{
	const struct proto_stats_reply *s = &reply->u.stats_reply;
	struct jm_buf *t = &call->text;
	static const char *const states[] = {"pending",   "delayed", "active",
	                                     "completed", "failed",  "cancelled"};
	put(t, "# HELP jobmesh_jobs Jobs held by the broker, by queue and state (finished jobs "
	       "until retention drops them).\n# TYPE jobmesh_jobs gauge\n");
	for (uint32_t i = 0; i < s->queues_count; i++) {
		const struct proto_queue_stats *q = &s->queues[i];
		const uint64_t counts[] = {q->pending,   q->delayed, q->active,
		                           q->completed, q->failed,  q->cancelled};
		for (int k = 0; k < 6; k++)
			put(t, "jobmesh_jobs{queue=\"%s\",state=\"%s\"} %llu\n", q->name, states[k],
			    (unsigned long long)counts[k]);
	}
	put(t, "# HELP jobmesh_queue_depth Jobs waiting to run (pending + delayed) per queue: "
	       "the autoscaling signal.\n# TYPE jobmesh_queue_depth gauge\n");
	for (uint32_t i = 0; i < s->queues_count; i++)
		put(t, "jobmesh_queue_depth{queue=\"%s\"} %llu\n", s->queues[i].name,
		    (unsigned long long)(s->queues[i].pending + s->queues[i].delayed));
	uint64_t now = jm_wall_us();
	put(t, "# HELP jobmesh_queue_oldest_pending_age_seconds How long the longest-waiting "
	       "pending job has been ready (0: none pending).\n"
	       "# TYPE jobmesh_queue_oldest_pending_age_seconds gauge\n");
	for (uint32_t i = 0; i < s->queues_count; i++) {
		uint64_t at = s->queues[i].oldest_pending_us;
		put(t, "jobmesh_queue_oldest_pending_age_seconds{queue=\"%s\"} %.3f\n",
		    s->queues[i].name, at && now > at ? (double)(now - at) / 1e6 : 0.0);
	}
	put(t, "# HELP jobmesh_queue_max_active Active-job limit per queue (0: none).\n"
	       "# TYPE jobmesh_queue_max_active gauge\n");
	for (uint32_t i = 0; i < s->queues_count; i++)
		put(t, "jobmesh_queue_max_active{queue=\"%s\"} %u\n", s->queues[i].name,
		    s->queues[i].max_active);
	memset(&call->req.msg, 0, sizeof call->req.msg);
	call->req.msg.type = PROTO_WORKERS;
	call->what = "workers";
	http_call_core(call, workers_cb);
}

void http_api_metrics(struct http_call *call)
{
	if (!http_query_only(call, no_params))
		return;
	call->req.msg.type = PROTO_STATS;
	call->what = "stats";
	http_call_core(call, stats_cb);
}

void http_api_healthz(struct http_call *call)
{
	static const char ok[] = "{\"status\":\"ok\"}";
	http_reply(call, 200, "application/json", ok, sizeof ok - 1, NULL, NULL);
}

void http_api_readyz(struct http_call *call)
{
	struct jm_err err = {0};
	if (!http_server_is_ready(call->srv)) {
		http_reply_error(call, 503, "not_ready", "the broker is replaying its journal");
		return;
	}
	if (http_refuse_on_standby(call))
		return;
	if (!journal_is_writable(http_server_journal(call->srv), &err)) {
		/* A strict HA leader without a standby in sync is still the one
		 * broker that serves reads: it stays in a Service's endpoints. */
		static const char reads[] = "{\"status\":\"ready\",\"writes\":\"no_standby\"}";
		if (err.code == JM_ENOSTANDBY)
			http_reply(call, 200, "application/json", reads, sizeof reads - 1, NULL,
			           NULL);
		else
			http_reply_error(call, 503, "journal_not_writable", "%s",
			                 jm_err_text(&err));
		return;
	}
	static const char ok[] = "{\"status\":\"ready\"}";
	http_reply(call, 200, "application/json", ok, sizeof ok - 1, NULL, NULL);
}

void http_api_openapi(struct http_call *call)
{
	http_reply(call, 200, "application/json", jm_openapi_json, jm_openapi_json_len, NULL, NULL);
}
