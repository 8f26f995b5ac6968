/* The broker's settings (see options.h): one setter per flag, the flag
 * table (which also names the --config keys), the defaults and --help. */
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flags.h"
#include "proto_limits.h"
#include "record.h"

JM_FLAG_TEXT_SETTER(set_listen, struct broker_options, listen_url)

JM_FLAG_TEXT_SETTER(set_events, struct broker_options, events_url)

/* --http ADDR: HOST:PORT for the HTTP API, or "off". */
static int set_http(void *ctx, const char *v, struct jm_err *err)
{
	struct broker_options *o = ctx;
	if (strcmp(v, "off") == 0) {
		o->http_addr = NULL;
		return 0;
	}
	const char *colon = strrchr(v, ':');
	if (colon == NULL || colon == v || colon[1] == '\0' || strchr(v, '/') != NULL)
		return jm_err_set(err, JM_EINVAL,
		                  "--http \"%s\": write HOST:PORT (127.0.0.1:7480, 0.0.0.0:80, "
		                  "port 0 picks one) or off",
		                  v);
	unsigned long long port;
	int rc = jm_parse_u64("--http port", colon + 1, 0, 65535, &port, err);
	if (rc == 0)
		o->http_addr = v;
	return rc;
}

JM_FLAG_TEXT_SETTER(set_auth, struct broker_options, auth_path)

static int set_insecure_listen(void *ctx, const char *v, struct jm_err *err)
{
	((struct broker_options *)ctx)->insecure_listen = true;
	return 0;
}

JM_FLAG_TEXT_SETTER(set_tls_cert, struct broker_options, tls.cert)

JM_FLAG_TEXT_SETTER(set_tls_key, struct broker_options, tls.key)

JM_FLAG_TEXT_SETTER(set_tls_ca, struct broker_options, tls.ca)

JM_FLAG_TEXT_SETTER(set_events_advertise, struct broker_options, events_advertise)

/* --queue-limit NAME=N: at most N jobs of queue NAME active at once. */
static int set_queue_limit(void *ctx, const char *v, struct jm_err *err)
{
	struct broker_options *o = ctx;
	const char *eq = strchr(v, '=');
	if (eq == NULL || !proto_name_is_valid(v, (size_t)(eq - v)))
		return jm_err_set(
		    err, JM_EINVAL,
		    "--queue-limit \"%s\": write NAME=N with NAME 1-64 of A-Z a-z 0-9 . _ -", v);
	unsigned long long limit;
	int rc = jm_parse_u64("--queue-limit", eq + 1, 1, 1000000, &limit, err);
	if (rc != 0)
		return rc;
	struct queue_override *slot = NULL;
	for (uint32_t i = 0; i < o->queue_limits_count; i++)
		if (strncmp(o->queue_limits[i].name, v, (size_t)(eq - v)) == 0 &&
		    o->queue_limits[i].name[eq - v] == '\0')
			slot = &o->queue_limits[i];
	if (slot == NULL) {
		if (o->queue_limits_count == QUEUE_LIMITS_MAX)
			return jm_err_set(err, JM_ELIMIT, "--queue-limit: at most %d queues",
			                  QUEUE_LIMITS_MAX);
		slot = &o->queue_limits[o->queue_limits_count++];
		memcpy(slot->name, v, (size_t)(eq - v));
		slot->name[eq - v] = '\0';
	}
	slot->max_active = (uint32_t)limit;
	return 0;
}

static int set_data(void *ctx, const char *v, struct jm_err *err)
{
	((struct broker_options *)ctx)->data_dir = v;
	return 0;
}

static int set_schedule(void *ctx, const char *v, struct jm_err *err)
{
	struct broker_options *o = ctx;
	if (o->schedules == NULL && (o->schedules = calloc(1, sizeof *o->schedules)) == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	return config_schedules_add(o->schedules, v, err);
}

static int set_config(void *ctx, const char *v, struct jm_err *err)
{
	return 0; /* loaded before the other flags, see main() */
}

static int set_fsync(void *ctx, const char *v, struct jm_err *err)
{
	if (journal_fsync_parse(v, &((struct broker_options *)ctx)->fsync) != 0)
		return jm_err_set(
		    err, JM_EINVAL,
		    "--fsync \"%s\" is not a policy: use always, batch, everysec or off", v);
	return 0;
}

static int set_repair(void *ctx, const char *v, struct jm_err *err)
{
	((struct broker_options *)ctx)->repair = true;
	return 0;
}

static int set_ha_unreplicated(void *ctx, const char *v, struct jm_err *err)
{
	((struct broker_options *)ctx)->ha_unreplicated = true;
	return 0;
}

static int set_ha_sync(void *ctx, const char *v, struct jm_err *err)
{
	struct broker_options *o = ctx;
	if (strcmp(v, "strict") == 0)
		o->ha_sync_strict = true;
	else if (strcmp(v, "available") == 0)
		o->ha_sync_strict = false;
	else
		return jm_err_set(
		    err, JM_EINVAL,
		    "--ha-sync \"%s\" is unknown: use available (the leader records in "
		    "etcd that the standby is out of sync, then acknowledges alone) or "
		    "strict (writes are refused while no standby is in sync)",
		    v);
	return 0;
}

static int set_ha_ship_timeout(void *ctx, const char *v, struct jm_err *err)
{
	unsigned long long value;
	int rc = jm_parse_u64("--ha-ship-timeout-ms", v, 50, 60000, &value, err);
	if (rc == 0)
		((struct broker_options *)ctx)->ha_ship_timeout_ms = (uint32_t)value;
	return rc;
}

static int set_check(void *ctx, const char *v, struct jm_err *err)
{
	((struct broker_options *)ctx)->check_dir = v;
	return 0;
}

static int set_help(void *ctx, const char *v, struct jm_err *err)
{
	((struct broker_options *)ctx)->help = true;
	return 0;
}

static int set_log_level(void *ctx, const char *v, struct jm_err *err)
{
	return jm_flags_parse_log_level(v, &((struct broker_options *)ctx)->log_level, err);
}

/* --etcd, --node-name, ...: the HA settings (ha_election.h checks them). */
#define HA_TEXT_SETTER(fn, field) JM_FLAG_TEXT_SETTER(fn, struct broker_options, field)
HA_TEXT_SETTER(set_etcd, ha.etcd_url)
HA_TEXT_SETTER(set_node_name, ha.node_name)
HA_TEXT_SETTER(set_ha_cluster, ha.cluster)
HA_TEXT_SETTER(set_replication_listen, ha.replication_url)
HA_TEXT_SETTER(set_ha_advertise, ha_advertise)
HA_TEXT_SETTER(set_replication_token_file, replication_token_file)
HA_TEXT_SETTER(set_ha_advertise_http, ha_advertise_http)

/* Numeric flags: one setter per field, through a table of ranges. */
#define NUMERIC_SETTER(fn, flag, field, min, max)                                                  \
	JM_FLAG_NUMBER_SETTER(fn, struct broker_options, flag, core.field, min, max)

NUMERIC_SETTER(set_max_attempts, "--max-attempts", state.queue_defaults.max_attempts, 1,
               PROTO_ATTEMPTS_MAX)
NUMERIC_SETTER(set_timeout, "--timeout-ms", state.queue_defaults.timeout_ms, 1,
               7ull * 24 * 3600 * 1000)
NUMERIC_SETTER(set_backoff_base, "--backoff-base-ms", state.queue_defaults.backoff.base_ms, 1,
               24ull * 3600 * 1000)
NUMERIC_SETTER(set_backoff_cap, "--backoff-cap-ms", state.queue_defaults.backoff.cap_ms, 1,
               7ull * 24 * 3600 * 1000)
/* Retention: a count is 0..PROTO_KEEP_MAX or "unlimited"; an age in ms,
 * 0 = no age limit. --keep-finished[-age-ms] sets all three states (what
 * it always did); as for every flag the later one wins, on the command
 * line and in a config file alike. */
static int keep_count_parse(const char *flag, const char *v, uint64_t *out, struct jm_err *err)
{
	if (strcmp(v, "unlimited") == 0) {
		*out = PROTO_KEEP_ALL;
		return 0;
	}
	unsigned long long n;
	int rc = jm_parse_u64(flag, v, 0, PROTO_KEEP_MAX, &n, err);
	if (rc != 0)
		return jm_err_set(err, rc, "%s \"%s\" is invalid: use 0-%llu or unlimited", flag, v,
		                  (unsigned long long)PROTO_KEEP_MAX);
	*out = n;
	return 0;
}

static int keep_set(void *ctx, const char *flag, const char *v, int state, bool age,
                    struct jm_err *err)
{
	struct queue_policy *p = &((struct broker_options *)ctx)->core.state.queue_defaults;
	uint64_t n = 0;
	unsigned long long ms = 0;
	int rc = age ? jm_parse_u64(flag, v, 0, PROTO_KEEP_AGE_MS_MAX, &ms, err)
	             : keep_count_parse(flag, v, &n, err);
	if (rc != 0)
		return rc;
	for (int i = 0; i < QUEUE_FINISHED_STATES_; i++) {
		if (state >= 0 && i != state)
			continue;
		if (age)
			p->keep[i].age_ms = ms;
		else
			p->keep[i].count = n;
	}
	return 0;
}

#define KEEP_SETTER(fn, flag, state, age)                                                          \
	static int fn(void *ctx, const char *v, struct jm_err *err)                                \
	{                                                                                          \
		return keep_set(ctx, flag, v, state, age, err);                                    \
	}
KEEP_SETTER(set_keep_finished, "--keep-finished", -1, false)
KEEP_SETTER(set_keep_age, "--keep-finished-age-ms", -1, true)
KEEP_SETTER(set_keep_completed, "--keep-completed", QUEUE_COMPLETED, false)
KEEP_SETTER(set_keep_completed_age, "--keep-completed-age-ms", QUEUE_COMPLETED, true)
KEEP_SETTER(set_keep_failed, "--keep-failed", QUEUE_FAILED, false)
KEEP_SETTER(set_keep_failed_age, "--keep-failed-age-ms", QUEUE_FAILED, true)
KEEP_SETTER(set_keep_cancelled, "--keep-cancelled", QUEUE_CANCELLED, false)
KEEP_SETTER(set_keep_cancelled_age, "--keep-cancelled-age-ms", QUEUE_CANCELLED, true)
NUMERIC_SETTER(set_key_window, "--key-window-ms", state.queue_defaults.key_window_ms, 1,
               365ull * 24 * 3600 * 1000)
NUMERIC_SETTER(set_dead_after, "--dead-after-ms", state.dead_after_ms, 100, 3600ull * 1000)
NUMERIC_SETTER(set_lease_grace, "--lease-grace-ms", state.lease_grace_ms, 0, 3600ull * 1000)
NUMERIC_SETTER(set_max_queues, "--max-queues", state.max_queues, 1, 1000000)
NUMERIC_SETTER(set_max_workers, "--max-workers", state.max_workers, 1, 1000000)
NUMERIC_SETTER(set_max_queue_jobs, "--max-queue-jobs", state.max_queue_jobs, 0, 1000000000000ull)

#define LIMIT_SETTER(fn, flag, field, min, max)                                                    \
	JM_FLAG_NUMBER_SETTER(fn, struct broker_options, flag, limits.field, min, max)

LIMIT_SETTER(set_max_connections, "--max-connections", max_connections, 0, 1000000)
LIMIT_SETTER(set_idle_timeout, "--idle-timeout-ms", idle_ms, 0, 24ull * 3600 * 1000)

#define HTTP_LIMIT_SETTER(fn, flag, field, min, max)                                               \
	JM_FLAG_NUMBER_SETTER(fn, struct broker_options, flag, http_limits.field, min, max)

HTTP_LIMIT_SETTER(set_http_max_connections, "--http-max-connections", max_connections, 0, 1000000)
HTTP_LIMIT_SETTER(set_http_header_timeout, "--http-header-timeout-ms", header_timeout_ms, 0,
                  3600 * 1000)
HTTP_LIMIT_SETTER(set_http_max_header_bytes, "--http-max-header-bytes", max_header_bytes, 1024,
                  1u << 20)

/* A byte size: digits with an optional K, M, G or T (KiB, MiB, ... also
 * taken): powers of 1024. 0 or JM_EINVAL naming flag. */
static int parse_size(const char *flag, const char *v, uint64_t min, uint64_t max, uint64_t *out,
                      struct jm_err *err)
{
	char *end = NULL;
	errno = 0;
	unsigned long long n = v && *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
	int shift = -1;
	if (end != NULL && errno == 0) {
		static const char *const units[][3] = {{"", "B", ""},
		                                       {"K", "KiB", "KB"},
		                                       {"M", "MiB", "MB"},
		                                       {"G", "GiB", "GB"},
		                                       {"T", "TiB", "TB"}};
		for (int u = 0; u < 5 && shift < 0; u++)
			for (int k = 0; k < 3; k++)
				if ((k < 2 || u > 0) && strcmp(end, units[u][k]) == 0)
					shift = 10 * u;
	}
	if (shift < 0 || (shift > 0 && n > (UINT64_MAX >> shift)) || (n << shift) < min ||
	    (n << shift) > max)
		return jm_err_set(err, JM_EINVAL,
		                  "%s \"%s\": must be a size from %llu to %llu bytes, such as "
		                  "1048576, 512MiB or 4GiB",
		                  flag, v ? v : "", (unsigned long long)min,
		                  (unsigned long long)max);
	*out = (uint64_t)n << shift;
	return 0;
}

static int set_max_payload_memory(void *ctx, const char *v, struct jm_err *err)
{
	return parse_size("--max-payload-memory", v, 0, 1ull << 50,
	                  &((struct broker_options *)ctx)->core.state.max_payload_memory, err);
}

static int set_max_message(void *ctx, const char *v, struct jm_err *err)
{
	return parse_size("--max-message-bytes", v, 64u << 10, PROTO_MESSAGE_MAX,
	                  &((struct broker_options *)ctx)->limits.max_message, err);
}

#define HA_MS_SETTER(fn, flag, field)                                                              \
	JM_FLAG_NUMBER_SETTER(fn, struct broker_options, flag, ha.field, 1, 3600000)
HA_MS_SETTER(set_ha_ttl, "--ha-lease-ttl-ms", ttl_ms)
HA_MS_SETTER(set_ha_renew, "--ha-renew-ms", renew_ms)

NUMERIC_SETTER(set_wait_max, "--wait-max-ms", wait_max_ms, 100, 55000)
NUMERIC_SETTER(set_compact_min, "--compact-min-bytes", compact_min_bytes, 0, 1ull << 40)

static const struct jm_flag broker_flags[] = {
    {"listen", "URL", "address clients and workers use (default tcp://127.0.0.1:7400)", set_listen},
    {"data", "DIR", "journal directory (default ./jobmesh-data)", set_data},
    {"events", "URL", "PUB address for events (default: listen port + 1, or IPC path + .events)",
     set_events},
    {"events-advertise", "URL",
     "events address clients are told to dial, when it differs from --events (e.g. the "
     "broker listens on 0.0.0.0 in a container)",
     set_events_advertise},
    {"http", "ADDR",
     "HOST:PORT of the HTTP API, event stream and /metrics (default 127.0.0.1:7480; "
     "off disables; port 0 picks a free port, printed as \"http <url>\"); HTTPS when "
     "--tls-cert is given",
     set_http},
    {"config", "FILE", "YAML file of these settings; flags override it", set_config},
    {"schedule", "RECORD",
     "a schedule the config declares (schedule: {NAME: {cron: EXPR, queue: Q, type: T, ...}}); "
     "put at start as `jobmesh schedule add` would",
     set_schedule},
    {"auth", "FILE",
     "YAML file of hashed tokens with roles and queue patterns; every request then needs "
     "one (reloaded on SIGHUP). Without it the broker listens on loopback and ipc:// only",
     set_auth},
    {"insecure-listen", NULL,
     "listen off loopback without --auth (anyone who reaches the port may do anything)",
     set_insecure_listen},
    {"tls-cert", "FILE", "PEM certificate for tls+tcp://, wss:// and HTTPS listeners",
     set_tls_cert},
    {"tls-key", "FILE", "PEM private key of --tls-cert", set_tls_key},
    {"tls-ca", "FILE",
     "PEM CA certificates: TLS listeners then require client certificates it signed "
     "(mutual TLS)",
     set_tls_ca},
    {"fsync", "POLICY", "always | batch (default) | everysec | off", set_fsync},
    {"max-attempts", "N", "attempts per job unless it sets its own (default 3)", set_max_attempts},
    {"timeout-ms", "MS", "run timeout per attempt unless the job sets one (default 300000)",
     set_timeout},
    {"backoff-base-ms", "MS", "first retry delay, doubling per retry (default 1000)",
     set_backoff_base},
    {"backoff-cap-ms", "MS", "longest retry delay (default 300000)", set_backoff_cap},
    {"keep-finished", "N",
     "completed, failed and cancelled jobs kept per queue, each (sets "
     "the three below)",
     set_keep_finished},
    {"keep-finished-age-ms", "MS", "and for at most this long, each (sets the three below)",
     set_keep_age},
    {"keep-completed", "N", "completed jobs kept per queue, or unlimited (default 100000)",
     set_keep_completed},
    {"keep-completed-age-ms", "MS", "and for at most this long; 0 = no age limit (default 7 days)",
     set_keep_completed_age},
    {"keep-failed", "N",
     "dead-lettered (failed) jobs kept per queue (default unlimited: until retried or removed)",
     set_keep_failed},
    {"keep-failed-age-ms", "MS", "and for at most this long (default 0: no age limit)",
     set_keep_failed_age},
    {"keep-cancelled", "N", "cancelled jobs kept per queue, or unlimited (default 100000)",
     set_keep_cancelled},
    {"keep-cancelled-age-ms", "MS", "and for at most this long; 0 = no age limit (default 7 days)",
     set_keep_cancelled_age},
    {"key-window-ms", "MS",
     "an idempotency key names its job this long after its submit (default 24 h); a job "
     "dropped by retention takes its key with it",
     set_key_window},
    {"dead-after-ms", "MS", "a worker silent this long is lost (default 5000)", set_dead_after},
    {"lease-grace-ms", "MS", "past a run timeout before the broker fails it (default 10000)",
     set_lease_grace},
    {"max-queues", "N", "most queues that may exist (default 10000)", set_max_queues},
    {"max-workers", "N", "most workers tracked (default 10000)", set_max_workers},
    {"max-queue-jobs", "N",
     "most unfinished (pending, delayed, active) jobs per queue; a submit over it is refused "
     "whole; 0 no limit (default 1000000)",
     set_max_queue_jobs},
    {"max-payload-memory", "SIZE",
     "most memory the live jobs may take (payloads, results, errors, names; K/M/G/T suffix); "
     "a submit over it is refused whole; 0 no limit (default a quarter of physical memory)",
     set_max_payload_memory},
    {"max-connections", "N",
     "most client and worker connections at once; one over it is closed as it connects; 0 no "
     "limit (default 1024)",
     set_max_connections},
    {"max-message-bytes", "SIZE",
     "largest request accepted (default 64MiB); with --max-connections it bounds the memory "
     "partial messages can hold",
     set_max_message},
    {"idle-timeout-ms", "MS",
     "a connection with no request in flight for this long is closed (clients reconnect), "
     "which frees a stalled partial message; 0 never (default 60000)",
     set_idle_timeout},
    {"http-max-connections", "N",
     "most HTTP connections at once, event streams included; one over it gets 503 with "
     "Retry-After and is closed; 0 no limit (default 1024)",
     set_http_max_connections},
    {"http-header-timeout-ms", "MS",
     "an HTTP request head must arrive whole this long after the connection opened (or "
     "after its first byte on a kept-alive one), else the connection is closed; 0 never "
     "(default 10000)",
     set_http_header_timeout},
    {"http-max-header-bytes", "N",
     "largest HTTP request head (request line and headers); over it, 431 (default 16384)",
     set_http_max_header_bytes},
    {"wait-max-ms", "MS", "longest a fetch or wait may park (default 30000)", set_wait_max},
    {"queue-limit", "NAME=N",
     "at most N jobs of queue NAME active across all workers "
     "(repeatable)",
     set_queue_limit},
    {"compact-min-bytes", "N",
     "compact once the journal (the last snapshot and what was written since) reaches N bytes "
     "and twice the live state; 0 never (default 67108864)",
     set_compact_min},
    {"etcd", "URL",
     "high availability: elect the leader through this etcd (http://HOST:PORT of each "
     "member, separated by commas; a call moves to the next member when one fails); a broker "
     "that does not lead refuses requests, naming the leader (default: off, single node)",
     set_etcd},
    {"node-name", "NAME", "this broker's name in the election (default: the host name)",
     set_node_name},
    {"ha-cluster", "NAME", "brokers with the same name elect one leader (default jobmesh)",
     set_ha_cluster},
    {"ha-advertise", "URL",
     "client URL other brokers name as the leader's (default: the bound --listen URL)",
     set_ha_advertise},
    {"ha-advertise-http", "URL",
     "HTTP base URL a standby's 503 not_leader names as the leader's (leader_http), for the "
     "HTTP SDKs and the dashboard to follow (default: the bound --http URL)",
     set_ha_advertise_http},
    {"replication-listen", "URL",
     "with --etcd: where this broker, while it leads, ships its journal to the standby, which "
     "dials it (the leader key names it); required unless --ha-unreplicated",
     set_replication_listen},
    {"replication-token-file", "FILE",
     "with --replication-listen: the cluster secret (16-1024 bytes, the same file on every "
     "broker) a standby must prove before the leader sends it anything; needed off loopback "
     "unless --insecure-listen",
     set_replication_token_file},
    {"ha-sync", "MODE",
     "available (default): without a standby in sync the leader records that in etcd and "
     "acknowledges alone; strict: writes are refused (JM_ENOSTANDBY) until a standby is in "
     "sync, reads go on",
     set_ha_sync},
    {"ha-ship-timeout-ms", "MS",
     "how long a shipped group commit waits for the standby before it counts as out of sync "
     "(default 1000)",
     set_ha_ship_timeout},
    {"ha-lease-ttl-ms", "MS", "the leader's etcd lease, whole seconds (default 15000)", set_ha_ttl},
    {"ha-renew-ms", "MS",
     "the leader renews its lease this often, and steps down when it could not for the TTL "
     "minus this (default 2000; at most a third of the TTL)",
     set_ha_renew},
    {"ha-unreplicated", NULL,
     "accept --etcd without --replication-listen: the journal is not shipped, and a failover "
     "serves the new leader's own journal, without what the old leader acknowledged",
     set_ha_unreplicated},
    {"repair", NULL,
     "truncate the journal at damage (mid-file, or in the tail after a clean stop) "
     "instead of refusing to start, and log what was cut",
     set_repair},
    {"check-journal", "DIR", "verify the journal in DIR, print what it holds, and exit", set_check},
    {"log-level", "LEVEL", "debug | info (default) | warn | error", set_log_level},
    {"help", NULL, "print this help", set_help},
    {NULL, NULL, NULL, NULL},
};

void broker_usage(FILE *out)
{
	fprintf(out, "usage: jobmesh-broker [--listen URL] [--data DIR] [--config FILE] [flags]\n"
	             "       jobmesh-broker --check-journal DIR\n\n"
	             "The jobmesh broker: queues, leases, retries and a journal on disk.\n"
	             "It prints \"http <url>\" (unless --http off), then \"listening <url>\" on "
	             "stdout once it serves.\n\nflags:\n");
	jm_flags_print(out, broker_flags);
	fprintf(out, "\nSIGHUP reloads the --auth file (a file that does not load leaves the old "
	             "tokens in force, and says why in the log).\n");
	fprintf(out, "\nexit codes:\n"
	             "  0  stopped cleanly (SIGTERM or SIGINT), journal durable and marked\n"
	             "     clean; --check-journal: the journal is sound, nothing to cut\n"
	             "  1  runtime error: cannot listen, journal damaged or not writable, or\n"
	             "     a stop that could not write its last records or its clean-stop\n"
	             "     marker\n"
	             "  2  usage error: unknown flag, bad value, bad config file\n"
	             "  3  --check-journal: sound up to a torn tail (a crash mid-write) that\n"
	             "     the next start will cut\n"
	             "  4  --etcd: this broker led and stepped down (its lease could not be\n"
	             "     renewed, or another broker holds the key); restart it to stand by\n");
}

void broker_options_defaults(struct broker_options *o)
{
	memset(o, 0, sizeof *o);
	o->listen_url = "tcp://127.0.0.1:7400";
	o->http_addr = "127.0.0.1:7480";
	o->data_dir = "./jobmesh-data";
	o->fsync = JOURNAL_FSYNC_BATCH;
	o->log_level = JM_LOG_INFO;
	struct state_config *s = &o->core.state;
	s->queue_defaults.max_attempts = 3;
	s->queue_defaults.timeout_ms = 300000;
	s->queue_defaults.backoff.base_ms = 1000;
	s->queue_defaults.backoff.cap_ms = 300000;
	queue_policy_keep_all(&s->queue_defaults, 100000, 7ull * 24 * 3600 * 1000);
	/* Dead letters stay until retried or removed. */
	s->queue_defaults.keep[QUEUE_FAILED] = (struct queue_keep){PROTO_KEEP_ALL, 0};
	s->queue_defaults.key_window_ms = 24ull * 3600 * 1000;
	s->max_queues = 10000;
	s->max_workers = 10000;
	s->max_queue_jobs = 1000000;
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	s->max_payload_memory = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page / 4 : 0;
	o->limits.max_connections = 1024;
	o->limits.idle_ms = 60000;
	o->limits.max_message = PROTO_MESSAGE_MAX;
	http_server_limits_default(&o->http_limits);
	s->dead_after_ms = 5000;
	s->lease_grace_ms = 10000;
	o->core.wait_max_ms = 30000;
	o->core.compact_min_bytes = 64ull << 20;
	if (gethostname(o->ha_default_name, sizeof o->ha_default_name - 1) != 0)
		snprintf(o->ha_default_name, sizeof o->ha_default_name, "broker");
	o->ha.node_name = o->ha_default_name;
	o->ha.cluster = "jobmesh";
	o->ha.ttl_ms = 15000;
	o->ha.renew_ms = 2000;
	o->ha_ship_timeout_ms = 1000;
}

int broker_options_parse(struct broker_options *o, int argc, char **argv, struct jm_err *err)
{
	const char *config_path = jm_flags_find(argc, argv, "config");
	if (config_path) {
		/* Settings point into the loaded file, so it stays loaded. */
		int rc = jm_config_load(&o->config, config_path, err);
		if (rc == 0)
			rc = jm_flags_apply_config(broker_flags, o, &o->config, err);
		if (rc != 0)
			return rc;
	}
	int rest;
	int rc = jm_flags_parse(broker_flags, o, argc, argv, 1, &rest, err);
	if (rc == 0 && rest < argc)
		rc = jm_err_set(err, JM_EINVAL, "unexpected argument \"%s\": see --help",
		                argv[rest]);
	return rc;
}

/* The HA settings: with --etcd, either the journal is shipped to the
 * standby (--replication-listen) or the operator accepts that a failover
 * loses what the old leader acknowledged (--ha-unreplicated). */
int broker_options_check_ha(const struct broker_options *o, struct jm_err *err)
{
	bool replicated = o->ha.replication_url != NULL && o->ha.replication_url[0] != '\0';
	if (!replicated && !o->ha_unreplicated)
		return jm_err_set(
		    err, JM_EINVAL,
		    "--etcd: add --replication-listen URL to ship the journal to the standby, or "
		    "add --ha-unreplicated to accept that a failover serves the new leader's own "
		    "journal without what the old leader acknowledged (README, \"High "
		    "availability\")");
	if (replicated && o->ha_unreplicated)
		return jm_err_set(
		    err, JM_EINVAL,
		    "--ha-unreplicated with --replication-listen: choose one (shipping "
		    "the journal, or a failover without it)");
	if (o->replication_token_file && !replicated)
		return jm_err_set(err, JM_EINVAL,
		                  "--replication-token-file needs --replication-listen (it guards "
		                  "the replication socket)");
	if (o->ha_sync_strict && !replicated)
		return jm_err_set(err, JM_EINVAL,
		                  "--ha-sync strict needs --replication-listen (a standby to be in "
		                  "sync with)");
	return ha_election_config_check(&o->ha, err);
}
