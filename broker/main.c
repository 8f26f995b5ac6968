/* jobmesh-broker: parses flags and config, wires journal, core and server,
 * and shuts them down in the order that keeps every acknowledged change:
 * stop accepting, answer parked requests, make the journal durable, then
 * close the socket (under a watchdog: NNG 1.5.2's nng_close can hang).
 * The settings themselves are options.c. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

#include "auth_gate.h"
#include "clock.h"
#include "config.h"
#include "config_schedules.h"
#include "core.h"
#include "events.h"
#include "exposure.h"
#include "ha_election.h"
#include "ha_gate.h"
#include "ha_replica.h"
#include "ha_secret.h"
#include "ha_ship.h"
#include "http_server.h"
#include "listen_ports.h"
#include "journal.h"
#include "log.h"
#include "options.h"
#include "proto_limits.h"
#include "record.h"
#include "server.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_TORN_TAIL 3 /* --check-journal: the next start would cut a torn tail */
#define EXIT_LOST_LEAD 4 /* --etcd: stepped down (could not renew the lease) */
#define CLOSE_WATCHDOG_MS 2000
/* The rest of a stop once the journal is durable: lease revoke (1 s), a
 * join of threads whose etcd and replication calls have short timeouts,
 * the last HTTP answers. Past this something hangs (NNG 1.5.2's nng_close
 * of the replication socket did, after a step-down). */
#define STOP_WATCHDOG_MS 8000

/* --check-journal: replay into a scratch state and report. */
struct check_counts {
	struct state state;
	uint64_t by_type[PROTO_REC_TYPE_MAX_ + 1];
};

static int check_apply_cb(void *arg, const uint8_t *body, size_t len, const char *file,
                          uint64_t offset, struct jm_err *err)
{
	struct check_counts *counts = arg;
	struct proto_record rec;
	int rc = proto_record_decode(body, len, &rec, err);
	if (rc == 0) {
		counts->by_type[rec.type]++;
		rc = state_apply(&counts->state, &rec, jm_wall_us(), err);
		proto_record_fini(&rec);
	}
	if (rc != 0)
		jm_err_prefix(err, "%s: record at byte %llu", file, (unsigned long long)offset);
	return rc;
}

static void print_queue_cb(struct queue *q, void *arg)
{
	printf("  queue %-24s pending %llu delayed %llu active %llu completed %llu failed %llu "
	       "cancelled %llu\n",
	       q->name, (unsigned long long)queue_ready_count(q), (unsigned long long)q->delayed,
	       (unsigned long long)q->active, (unsigned long long)q->completed,
	       (unsigned long long)q->failed, (unsigned long long)q->cancelled);
}

static int check_journal(const struct broker_options *o)
{
	struct journal_options jo = {
	    .dir = o->check_dir, .fsync = JOURNAL_FSYNC_OFF, .read_only = true};
	struct jm_err err = {0};
	struct journal *journal;
	if (journal_open(&journal, &jo, &err) != 0) {
		fprintf(stderr, "jobmesh-broker: %s\n", jm_err_text(&err));
		return EXIT_RUNTIME;
	}
	struct check_counts *counts = calloc(1, sizeof *counts);
	struct journal_replay_stats stats = {0};
	int rc = counts ? state_init(&counts->state, &o->core.state) : JM_ENOMEM;
	if (rc == 0) {
		counts->state.replaying = true;
		rc = journal_replay(journal, check_apply_cb, counts, &stats, &err);
	}
	journal_close(journal);
	bool torn = rc == 0 && stats.torn_tail_file[0] != '\0';
	if (rc != 0) {
		fprintf(stderr, "jobmesh-broker: journal %s: %s\n", o->check_dir,
		        rc == JM_ENOMEM ? "out of memory" : jm_err_text(&err));
	} else {
		if (torn)
			printf("journal %s: sound up to a torn tail: %llu records, %llu bytes\n"
			       "  torn tail: %llu bytes at byte %llu of %s (a crash mid-write; the "
			       "next start cuts it)\n",
			       o->check_dir, (unsigned long long)stats.records,
			       (unsigned long long)stats.bytes,
			       (unsigned long long)stats.torn_tail_bytes,
			       (unsigned long long)stats.torn_tail_offset, stats.torn_tail_file);
		else
			printf("journal %s: sound: %llu records, %llu bytes\n", o->check_dir,
			       (unsigned long long)stats.records, (unsigned long long)stats.bytes);
		for (int t = 1; t <= PROTO_REC_TYPE_MAX_; t++)
			printf("  %-8s records %llu\n", proto_record_type_name(t),
			       (unsigned long long)counts->by_type[t]);
		printf("  jobs %llu, next job id %llu\n",
		       (unsigned long long)counts->state.jobs.count,
		       (unsigned long long)counts->state.next_job_id);
		queue_each(&counts->state.queues, print_queue_cb, NULL);
	}
	if (counts) {
		state_fini(&counts->state);
		free(counts);
	}
	return rc != 0 ? EXIT_RUNTIME : torn ? EXIT_TORN_TAIL : 0;
}

/* The exit status once the journal is closed, for the watchdog. */
static volatile int stop_status;

/* Exits with stop_status after the ms in arg: nothing is left to lose
 * once the journal is durable, and a hung close must not keep the process
 * (SIGTERM no longer reaches it: the main thread is past sigwait). */
static void *close_watchdog_main(void *arg)
{
	unsigned ms = (unsigned)(uintptr_t)arg;
	usleep(ms * 1000u);
	jm_warn("closing the sockets took over %u ms; the journal is closed, exiting now", ms);
	_exit(stop_status);
}

static void close_watchdog_arm(unsigned ms)
{
	pthread_t watchdog;
	if (pthread_create(&watchdog, NULL, close_watchdog_main, (void *)(uintptr_t)ms) == 0)
		pthread_detach(watchdog);
}

/* Replays the journal into a new core and declares the config's
 * schedules: the broker is then ready to serve. */
static int open_core(struct broker_options *o, struct journal *journal, struct core **out,
                     struct jm_err *err)
{
	uint64_t replay_start_us = jm_mono_us();
	struct journal_replay_stats stats = {0};
	struct core *core;
	int rc = core_open(&core, &o->core, journal, &stats, err);
	if (rc != 0)
		return rc;
	if (o->schedules && (rc = config_schedules_declare(o->schedules, core, err)) != 0) {
		core_stop(core);
		core_free(core);
		return rc;
	}
	jm_info("journal %s: replayed %llu records (%llu bytes) in %llu ms; fsync %s", o->data_dir,
	        (unsigned long long)stats.records, (unsigned long long)stats.bytes,
	        (unsigned long long)(jm_mono_us() - replay_start_us) / 1000,
	        journal_fsync_name(o->fsync));
	*out = core;
	return 0;
}

/* --etcd: the election thread tells the main thread by signal, which it
 * waits for beside SIGTERM (the epoch travels in ha_epoch). */
static _Atomic uint64_t ha_epoch;

static void ha_elected_cb(void *arg, uint64_t epoch)
{
	ha_epoch = epoch;
	kill(getpid(), SIGUSR1);
}

static void ha_lost_cb(void *arg, const char *why)
{
	kill(getpid(), SIGUSR2);
}

/* Elected: stop receiving the old leader's journal, start shipping this
 * one's (replicated mode), replay, then open the gate. A journal that
 * cannot be replayed stops the broker (its lease then expires and another
 * broker leads). */
static int promote(struct broker_options *o, const struct ha_secret *secret,
                   struct journal *journal, struct events *events, struct ha_gate *gate,
                   struct ha_replica **replica, struct ha_ship **ship, struct core **core,
                   struct jm_err *err)
{
	ha_replica_stop(*replica);
	*replica = NULL;
	if (o->ha.replication_url && o->ha.replication_url[0] != '\0') {
		struct ha_ship_config sc = {.listen_url = o->ha.replication_url,
		                            .data_dir = o->data_dir,
		                            .node_name = o->ha.node_name,
		                            .etcd_url = o->ha.etcd_url,
		                            .cluster = o->ha.cluster,
		                            .strict = o->ha_sync_strict,
		                            .secret = secret,
		                            .timeout_ms = o->ha_ship_timeout_ms};
		int rc = ha_ship_start(ship, &sc, journal, ha_epoch, err);
		if (rc != 0)
			return rc;
	}
	int rc = open_core(o, journal, core, err);
	if (rc != 0)
		return rc;
	core_attach_events(*core, events);
	/* Strict mode refuses writes from here while no standby is in sync.
	 * Not before: the core's boot record waits to be durable, and waiting
	 * for a standby there would hang the promotion (and this thread, which
	 * handles SIGTERM). */
	ha_ship_serving(*ship);
	if (!ha_gate_open(gate, *core, ha_epoch))
		return 0; /* stepped down meanwhile: SIGUSR2 is on its way */
	jm_info("ha: %s serves as the leader of epoch %llu", o->ha.node_name,
	        (unsigned long long)ha_epoch);
	return 0;
}

static int broker_main(struct broker_options *opts, int argc, char **argv);

int main(int argc, char **argv)
{
	struct broker_options o;
	broker_options_defaults(&o);
	int status = broker_main(&o, argc, argv);
	jm_config_fini(&o.config);
	config_schedules_free(o.schedules);
	return status;
}

static int broker_main(struct broker_options *opts, int argc, char **argv)
{
	struct broker_options o = *opts;
	struct jm_err err = {0};
	int parsed = broker_options_parse(&o, argc, argv, &err);
	opts->config = o.config; /* main frees it */
	opts->schedules = o.schedules;
	if (parsed != 0) {
		fprintf(stderr, "jobmesh-broker: %s\n", jm_err_text(&err));
		return EXIT_USAGE;
	}
	if (o.help) {
		broker_usage(stdout);
		return 0;
	}
	jm_log_init("jobmesh-broker", o.log_level);
	if (o.check_dir)
		return check_journal(&o);

	char default_events_url[600];
	events_default_url(o.listen_url, default_events_url, sizeof default_events_url);
	const char *events_at = o.events_url ? o.events_url : default_events_url;
	/* Two listeners on one port: refused here, naming both (listen_ports.h). */
	const char *events_flag = o.events_url ? "--events" : "--events (derived from --listen)";
	struct listen_addr listeners[4] = {{"--listen", o.listen_url, false},
	                                   {events_flag, events_at, false}};
	size_t listeners_count = 2;
	if (o.http_addr)
		listeners[listeners_count++] = (struct listen_addr){"--http", o.http_addr, true};
	if (o.ha.replication_url && o.ha.replication_url[0] != '\0')
		listeners[listeners_count++] =
		    (struct listen_addr){"--replication-listen", o.ha.replication_url, false};
	if (listen_ports_check(listeners, listeners_count, &err) != 0) {
		fprintf(stderr, "jobmesh-broker: %s\n", jm_err_text(&err));
		return EXIT_USAGE;
	}
	struct exposure x = {.auth = o.auth_path != NULL,
	                     .mtls = o.tls.ca != NULL,
	                     .insecure = o.insecure_listen,
	                     .repl_secret = o.replication_token_file != NULL};
	if (exposure_check(&x, "--listen", o.listen_url, false, false, &err) != 0 ||
	    exposure_check(&x, events_flag, events_at, false, true, &err) != 0 ||
	    (o.http_addr && exposure_check(&x, "--http", o.http_addr, true, false, &err) != 0) ||
	    (o.ha.replication_url &&
	     exposure_check_replication(&x, o.ha.replication_url, &err) != 0)) {
		fprintf(stderr, "jobmesh-broker: %s\n", jm_err_text(&err));
		return EXIT_USAGE;
	}
	if (o.insecure_listen &&
	    !(exposure_url_is_local(o.listen_url) && exposure_url_is_local(events_at) &&
	      (!o.http_addr || exposure_http_is_local(o.http_addr))))
		jm_warn("--insecure-listen: listening off loopback%s; anyone who reaches these "
		        "ports may %s",
		        o.auth_path ? " (events without a token check)" : " without --auth",
		        o.auth_path ? "read every event"
		                    : "submit, cancel, read and settle any job");
	/* The cluster secret: read once, at start, by leader and standby. */
	static struct ha_secret repl_secret;
	if (o.replication_token_file &&
	    ha_secret_load(&repl_secret, o.replication_token_file, &err) != 0) {
		fprintf(stderr, "jobmesh-broker: %s\n", jm_err_text(&err));
		return EXIT_USAGE;
	}
	struct auth_gate *auth = NULL;
	if (o.auth_path) {
		if (auth_gate_open(&auth, o.auth_path, &err) != 0) {
			fprintf(stderr, "jobmesh-broker: %s\n", jm_err_text(&err));
			return EXIT_USAGE;
		}
		jm_info("auth: %u tokens from %s", auth_gate_tokens(auth), o.auth_path);
	}
	struct server_security sec = {.auth = auth, .tls = o.tls};

	/* Signals go to one thread, which waits for them in sigwait; a write
	 * past RLIMIT_FSIZE must fail with EFBIG, not kill the broker. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGHUP);
	sigaddset(&stop_signals, SIGUSR1); /* --etcd: elected (ha_elected_cb) */
	sigaddset(&stop_signals, SIGUSR2); /* --etcd: stepped down (ha_lost_cb) */
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

	o.core.state.queue_overrides = o.queue_limits;
	o.core.state.queue_overrides_count = o.queue_limits_count;
	bool ha = o.ha.etcd_url != NULL;
	struct ha_gate *gate = NULL;
	if (ha && (broker_options_check_ha(&o, &err) != 0 ||
	           ((gate = ha_gate_new(o.ha.node_name)) == NULL &&
	            jm_err_set(&err, JM_ENOMEM, "out of memory") != 0))) {
		fprintf(stderr, "jobmesh-broker: %s\n", jm_err_text(&err));
		auth_gate_close(auth);
		return EXIT_USAGE;
	}
	struct journal_options jo = {.dir = o.data_dir, .fsync = o.fsync, .repair = o.repair};
	struct journal *journal;
	if (journal_open(&journal, &jo, &err) != 0) {
		jm_error("%s", jm_err_text(&err));
		ha_gate_free(gate);
		auth_gate_close(auth);
		return EXIT_RUNTIME;
	}
	/* Single node: replay and serve now. With --etcd: once elected. */
	struct core *core = NULL;
	if (!ha && open_core(&o, journal, &core, &err) != 0) {
		jm_error("%s", jm_err_text(&err));
		journal_close(journal);
		auth_gate_close(auth);
		return EXIT_RUNTIME;
	}
	struct events *events = NULL;
	struct server *srv = NULL;
	struct http_server *http = NULL;
	struct ha_election *election = NULL;
	struct ha_replica *replica = NULL; /* a standby's copy of the leader's journal */
	struct ha_ship *ship = NULL;       /* a leader's shipping of its journal */
	/* The HTTP server taps the events before the core pushes any. */
	const struct jm_tls *https = o.tls.cert ? &o.tls : NULL;
	/* A kept-alive connection's wait and a body stalled mid-way are a
	 * stalled message: the same bound as on the NNG sockets. */
	o.http_limits.idle_ms = o.limits.idle_ms;
	o.http_limits.body_timeout_ms = o.limits.idle_ms;
	if (events_open_secure(&events, events_at, journal, &o.tls, o.limits.max_connections,
	                       &err) != 0 ||
	    (o.http_addr && http_server_open_secure(&http, o.http_addr, core, journal, events, auth,
	                                            https, &o.http_limits, &err) != 0) ||
	    (core ? (core_attach_events(core, events),
	             server_open(&srv, o.listen_url, core, &o.limits, &sec, &err))
	          : (http ? http_server_set_gate(http, gate) : (void)0,
	             server_open_gated(&srv, o.listen_url, gate, &o.limits, &sec, &err))) != 0) {
		jm_error("%s", jm_err_text(&err));
		if (core)
			core_stop(core);
		events_stop(events);
		journal_close(journal);
		http_server_close(http);
		events_close(events);
		core_free(core);
		ha_gate_free(gate);
		auth_gate_close(auth);
		return EXIT_RUNTIME;
	}
	if (http) {
		http_server_set_ready(http);
		jm_info("http API on %s", http_server_url(http));
		printf("http %s\n", http_server_url(http));
	}
	if (o.events_advertise)
		events_advertise(events, o.events_advertise);
	jm_info("listening on %s; events on %s", server_url(srv), events_url(events));
	printf("listening %s\n", server_url(srv));
	fflush(stdout);
	if (ha) {
		o.ha.client_url = o.ha_advertise ? o.ha_advertise : server_url(srv);
		o.ha.http_url = o.ha_advertise_http ? o.ha_advertise_http
		                : http              ? http_server_url(http)
		                                    : "";
		struct ha_election_hooks hooks = {.elected_cb = ha_elected_cb,
		                                  .lost_cb = ha_lost_cb};
		if (o.ha.replication_url && o.ha.replication_url[0] != '\0' &&
		    ha_replica_start(&replica, journal, gate, o.ha.node_name, &repl_secret, &err) !=
		        0) {
			jm_error("%s", jm_err_text(&err));
			stop_status = EXIT_RUNTIME;
			kill(getpid(), SIGTERM);
		} else if (ha_election_start(&election, &o.ha, gate, &hooks, &err) != 0) {
			jm_error("%s", jm_err_text(&err));
			stop_status = EXIT_USAGE;
			kill(getpid(), SIGTERM);
		} else {
			jm_info("ha: %s stands by in cluster %s (etcd %s)", o.ha.node_name,
			        o.ha.cluster, o.ha.etcd_url);
		}
	}

	int signo = 0;
	for (;;) {
		sigwait(&stop_signals, &signo);
		if (signo == SIGUSR1 && core == NULL) {
			if (promote(&o, &repl_secret, journal, events, gate, &replica, &ship, &core,
			            &err) != 0) {
				jm_error("ha: cannot serve as the leader: %s", jm_err_text(&err));
				stop_status = EXIT_RUNTIME;
				break;
			}
			continue;
		}
		if (signo == SIGUSR2) {
			stop_status = EXIT_LOST_LEAD;
			break;
		}
		if (signo != SIGHUP)
			break;
		if (auth == NULL) {
			jm_info("SIGHUP: no --auth file to reload");
		} else if (auth_gate_reload(auth, &err) != 0) {
			jm_error("SIGHUP: %s; the previous %u tokens stay in force",
			         jm_err_text(&err), auth_gate_tokens(auth));
		} else {
			jm_info("SIGHUP: reloaded %s: %u tokens", o.auth_path,
			        auth_gate_tokens(auth));
		}
	}
	jm_info("%s: stopping", strsignal(signo));
	if (gate)
		ha_gate_close(gate); /* clients look for the next leader */
	server_stop_listening(srv);
	if (core)
		core_stop(core);
	events_stop(events);
	/* Exit 0 promises every record durable and the journal marked clean.
	 * A stop that could not write its last records exits 1 (the next start
	 * will not find them), and so does one that could not write the marker
	 * (the next start takes it for a crash, and would cut a damaged tail as
	 * torn). A standby never started its journal: nothing to mark. */
	if (core == NULL) {
	} else if (journal_stop(journal, &err) == 0) {
		jm_info("journal durable and marked clean");
	} else {
		jm_error("%s", jm_err_text(&err));
		stop_status = EXIT_RUNTIME;
	}
	/* Nothing left to lose: what follows closes NNG sockets (the
	 * replica's and the replication socket can hang in nng_close). A
	 * leader has no replica (promote stopped it). */
	close_watchdog_arm(STOP_WATCHDOG_MS);
	ha_replica_stop(replica);
	journal_close(journal);
	ha_ship_stop(ship); /* the writer shipped its last chunk in journal_stop */
	/* The journal is durable: a standby may take over at once. */
	ha_election_stop(election);
	/* After journal_close every HTTP call has its answer (parked ones from
	 * core_stop, durable ones from the journal); event streams close here. */
	http_server_close(http);
	/* Closing NNG sockets can hang in NNG 1.5.2 (a pipe that went away
	 * mid-handshake); nothing is left to lose, so the watchdog bounds it. */
	close_watchdog_arm(CLOSE_WATCHDOG_MS);
	events_close(events);
	server_close(srv);
	core_free(core);
	ha_gate_free(gate);
	auth_gate_close(auth);
	jm_info("stopped");
	return stop_status;
}
