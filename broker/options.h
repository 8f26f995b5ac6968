/* The broker's settings: flags, their --config keys, defaults and --help.
 * main.c parses them once at start and wires them into the journal, core,
 * servers and the HA election. */
#ifndef JM_BROKER_OPTIONS_H
#define JM_BROKER_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "config_schedules.h"
#include "core.h"
#include "ha_election.h"
#include "http_server.h"
#include "journal.h"
#include "log.h"
#include "server.h"
#include "tls.h"

#define QUEUE_LIMITS_MAX 256

struct broker_options {
	struct jm_config config; /* kept loaded: options point into it */
	const char *listen_url;
	const char *events_url;
	const char *events_advertise;
	const char *http_addr; /* NULL: off */
	const char *auth_path; /* NULL: no tokens (loopback only) */
	bool insecure_listen;
	struct jm_tls tls;
	struct queue_override queue_limits[QUEUE_LIMITS_MAX];
	uint32_t queue_limits_count;
	const char *data_dir;
	const char *check_dir;
	enum journal_fsync fsync;
	bool repair;
	bool help;
	enum jm_log_level log_level;
	struct core_config core;
	struct server_limits limits;
	struct http_server_limits http_limits;
	struct config_schedules *schedules; /* declared in --config; NULL: none */
	/* High availability: on with --etcd (README, "High availability"). */
	struct ha_election_config ha;
	char ha_default_name[65];
	const char *ha_advertise; /* client URL put in etcd; NULL: the bound one */
	bool ha_unreplicated;     /* --ha-unreplicated: --etcd accepted without shipping */
	bool ha_sync_strict;      /* --ha-sync strict: no writes without a standby in sync */
	const char *replication_token_file; /* --replication-token-file: the cluster secret */
	uint32_t ha_ship_timeout_ms; /* --ha-ship-timeout-ms: a chunk's wait for the standby */
};

/* Everything as it is without flags or config. */
void broker_options_defaults(struct broker_options *o);
/* --config FILE first (kept loaded in o->config: settings point into it),
 * then the flags, a later one winning. 0, or the error naming the flag or
 * key and what it allows. */
int broker_options_parse(struct broker_options *o, int argc, char **argv, struct jm_err *err);
/* --help: usage, flags and exit codes. */
void broker_usage(FILE *out);
/* The HA settings: shipping (--replication-listen) or --ha-unreplicated. */
int broker_options_check_ha(const struct broker_options *o, struct jm_err *err);

#endif
