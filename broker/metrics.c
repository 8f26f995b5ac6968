/* Counters and histograms (see metrics.h). Buckets are upper bounds; a
 * value lands in the first bucket it does not exceed, or only in +Inf. */
#include "metrics.h"

#include "err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define METRICS_BUCKETS_MAX 16

struct histogram_def {
	const char *name;
	const char *help;
	bool seconds; /* observed in µs, rendered in s */
	uint32_t bounds_count;
	double bounds[METRICS_BUCKETS_MAX]; /* in rendered units */
};

static const char *const counter_names[METRIC_COUNTERS_COUNT_][2] = {
    [METRIC_JOBS_SUBMITTED] = {"jobmesh_jobs_submitted_total", "Jobs accepted (made durable)."},
    [METRIC_JOBS_COMPLETED] = {"jobmesh_jobs_completed_total", "Jobs that completed."},
    [METRIC_JOBS_FAILED] = {"jobmesh_jobs_failed_total",
                            "Jobs dead-lettered: attempts exhausted or failed permanently."},
    [METRIC_JOBS_RETRIED] = {"jobmesh_jobs_retried_total",
                             "Failed attempts that were scheduled for a retry."},
    [METRIC_JOBS_CANCELLED] = {"jobmesh_jobs_cancelled_total", "Jobs cancelled."},
    [METRIC_JOURNAL_SYNCS] = {"jobmesh_journal_syncs_total", "fdatasync calls of the journal."},
    [METRIC_JOURNAL_RECORDS_SYNCED] = {"jobmesh_journal_records_synced_total",
                                       "Journal records made durable by those syncs."},
    [METRIC_HTTP_REQUESTS] = {"jobmesh_http_requests_total", "HTTP requests answered."},
    [METRIC_HTTP_CONNECTIONS_REFUSED] = {"jobmesh_http_connections_refused_total",
                                         "HTTP connections answered 503 and closed: "
                                         "--http-max-connections were open."},
    [METRIC_HTTP_TIMEOUTS] = {"jobmesh_http_timeouts_total",
                              "HTTP connections closed because a request head or body did "
                              "not arrive whole in time."},
};

static const struct histogram_def histogram_defs[METRIC_HISTOGRAMS_COUNT_] = {
    [METRIC_JOB_WAIT_SECONDS] = {"jobmesh_job_wait_seconds",
                                 "Time from ready (pending) to leased to a worker.",
                                 true,
                                 12,
                                 {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600}},
    [METRIC_JOB_RUN_SECONDS] = {"jobmesh_job_run_seconds",
                                "Time from leased to settled (completed or failed).",
                                true,
                                12,
                                {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600}},
    [METRIC_JOURNAL_SYNC_SECONDS] = {"jobmesh_journal_fsync_seconds",
                                     "Latency of one journal fdatasync.",
                                     true,
                                     10,
                                     {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
                                      0.1, 1}},
    [METRIC_JOURNAL_RECORDS_PER_SYNC] = {"jobmesh_journal_records_per_sync",
                                         "Records made durable by one fdatasync (group commit).",
                                         false,
                                         9,
                                         {1, 2, 4, 16, 64, 256, 1024, 4096, 16384}},
};

struct histogram {
	atomic_uint_fast64_t buckets[METRICS_BUCKETS_MAX + 1]; /* last: +Inf only */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum; /* µs or units */
};

static atomic_uint_fast64_t counters[METRIC_COUNTERS_COUNT_];
static struct histogram histograms[METRIC_HISTOGRAMS_COUNT_];

void metrics_count(enum metrics_counter counter, uint64_t by)
{
	atomic_fetch_add_explicit(&counters[counter], by, memory_order_relaxed);
}

uint64_t metrics_counter_value(enum metrics_counter counter)
{
	return atomic_load_explicit(&counters[counter], memory_order_relaxed);
}

void metrics_observe(enum metrics_histogram which, uint64_t value)
{
	const struct histogram_def *def = &histogram_defs[which];
	struct histogram *h = &histograms[which];
	double v = def->seconds ? (double)value / 1e6 : (double)value;
	uint32_t i = 0;
	while (i < def->bounds_count && v > def->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
}

void metrics_committed(const struct proto_record *rec, uint64_t since_us)
{
	switch (rec->type) {
	case PROTO_REC_JOB:
		metrics_count(METRIC_JOBS_SUBMITTED, 1);
		break;
	case PROTO_REC_LEASE:
		if (since_us && rec->u.lease.at_us >= since_us)
			metrics_observe(METRIC_JOB_WAIT_SECONDS, rec->u.lease.at_us - since_us);
		break;
	case PROTO_REC_SETTLE:
		if (since_us && rec->u.settle.at_us >= since_us &&
		    rec->u.settle.outcome != PROTO_OUTCOME_RELEASED)
			metrics_observe(METRIC_JOB_RUN_SECONDS, rec->u.settle.at_us - since_us);
		if (rec->u.settle.outcome == PROTO_OUTCOME_COMPLETED)
			metrics_count(METRIC_JOBS_COMPLETED, 1);
		else if (rec->u.settle.outcome == PROTO_OUTCOME_RETRY)
			metrics_count(METRIC_JOBS_RETRIED, 1);
		else if (rec->u.settle.outcome == PROTO_OUTCOME_DEAD)
			metrics_count(METRIC_JOBS_FAILED, 1);
		break;
	case PROTO_REC_CANCEL:
		metrics_count(METRIC_JOBS_CANCELLED, 1);
		break;
	default:
		break;
	}
}

void metrics_journal_synced(uint64_t sync_us, uint64_t records_count)
{
	metrics_count(METRIC_JOURNAL_SYNCS, 1);
	metrics_count(METRIC_JOURNAL_RECORDS_SYNCED, records_count);
	metrics_observe(METRIC_JOURNAL_SYNC_SECONDS, sync_us);
	metrics_observe(METRIC_JOURNAL_RECORDS_PER_SYNC, records_count);
}

static int put(struct jm_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int put(struct jm_buf *out, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (len < 0)
		return 0;
	return jm_buf_append(out, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
}

int metrics_render(struct jm_buf *out)
{
	int rc = 0;
	for (int c = 0; c < METRIC_COUNTERS_COUNT_; c++) {
		rc |= put(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_names[c][0],
		          counter_names[c][1], counter_names[c][0], counter_names[c][0],
		          (unsigned long long)metrics_counter_value((enum metrics_counter)c));
	}
	for (int i = 0; i < METRIC_HISTOGRAMS_COUNT_; i++) {
		const struct histogram_def *def = &histogram_defs[i];
		struct histogram *h = &histograms[i];
		rc |= put(out, "# HELP %s %s\n# TYPE %s histogram\n", def->name, def->help,
		          def->name);
		uint64_t cumulative = 0;
		for (uint32_t b = 0; b < def->bounds_count; b++) {
			cumulative += atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
			rc |= put(out, "%s_bucket{le=\"%g\"} %llu\n", def->name, def->bounds[b],
			          (unsigned long long)cumulative);
		}
		cumulative +=
		    atomic_load_explicit(&h->buckets[def->bounds_count], memory_order_relaxed);
		uint64_t sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
		/* count is read after the buckets and never below their sum, so
		 * +Inf uses the bucket sum to stay consistent with them. */
		rc |= put(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n",
		          def->name, (unsigned long long)cumulative, def->name,
		          def->seconds ? (double)sum / 1e6 : (double)sum, def->name,
		          (unsigned long long)cumulative);
	}
	return rc ? JM_ENOMEM : 0;
}
