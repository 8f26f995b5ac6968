/* Process-wide counters and histograms for /metrics.
 *
 * One static instance, updated with relaxed atomics from wherever the
 * event happens (one line per call site), read by the /metrics renderer
 * without any lock. Counters only grow; a histogram's buckets are
 * cumulative when rendered, not when stored. Numbers come from this boot
 * only (a restart starts them at 0, as Prometheus expects of counters). */
#ifndef JM_BROKER_METRICS_H
#define JM_BROKER_METRICS_H

#include <stdint.h>

#include "buf.h"
#include "record.h"

enum metrics_counter {
	METRIC_JOBS_SUBMITTED,
	METRIC_JOBS_COMPLETED,
	METRIC_JOBS_FAILED, /* dead-lettered */
	METRIC_JOBS_RETRIED,
	METRIC_JOBS_CANCELLED,
	METRIC_JOURNAL_SYNCS,
	METRIC_JOURNAL_RECORDS_SYNCED,
	METRIC_HTTP_REQUESTS,
	METRIC_HTTP_CONNECTIONS_REFUSED, /* over --http-max-connections */
	METRIC_HTTP_TIMEOUTS,            /* a head or body not received in time */
	METRIC_COUNTERS_COUNT_,
};

enum metrics_histogram {
	METRIC_JOB_WAIT_SECONDS, /* ready to leased */
	METRIC_JOB_RUN_SECONDS,  /* leased to settled */
	METRIC_JOURNAL_SYNC_SECONDS,
	METRIC_JOURNAL_RECORDS_PER_SYNC,
	METRIC_HISTOGRAMS_COUNT_,
};

void metrics_count(enum metrics_counter counter, uint64_t by);
/* value in microseconds for the *_SECONDS histograms, a count otherwise. */
void metrics_observe(enum metrics_histogram histogram, uint64_t value);

/* The core committed rec; since_us is when the job it changes entered its
 * previous state (its updated_us before the record applied; 0 if none). */
void metrics_committed(const struct proto_record *rec, uint64_t since_us);

/* The journal writer synced records_count records in sync_us. */
void metrics_journal_synced(uint64_t sync_us, uint64_t records_count);

uint64_t metrics_counter_value(enum metrics_counter counter);

/* Appends the counters and histograms in the Prometheus text format
 * (HELP, TYPE, samples). Returns 0 or JM_ENOMEM. */
int metrics_render(struct jm_buf *out);

#endif
