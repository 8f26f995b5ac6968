/* The campaign and renew state machine (see ha_election.h). One thread,
 * blocking etcd calls (ha_etcd.c), each bounded so that the thread always
 * wakes before its step-down deadline. */
#include "ha_election.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "clock.h"
#include "ha_etcd.h"
#include "ha_gate.h"
#include "log.h"

#define HA_TEXT_MAX 256
#define HA_CALL_MIN_MS 100u

struct ha_election {
	char etcd_url[HA_ETCD_MEMBERS_MAX * HA_TEXT_MAX];
	char node_name[HA_TEXT_MAX];
	char client_url[HA_TEXT_MAX];
	char http_url[HA_TEXT_MAX];
	char replication_url[HA_TEXT_MAX];
	char key[HA_TEXT_MAX];
	char sync_key[HA_TEXT_MAX]; /* /jobmesh/<cluster>/sync (ha_ship.c writes it) */
	uint32_t ttl_ms;
	uint32_t renew_ms;
	struct ha_gate *gate;
	struct ha_election_hooks hooks;
	struct ha_etcd *etcd;

	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake; /* CLOCK_MONOTONIC */
	bool stopping;       /* under mu */

	/* Election thread only. */
	int64_t lease;     /* 0: none held */
	int64_t epoch;     /* create revision of our key; 0: not leading */
	uint64_t valid_us; /* monotonic: the lease is surely alive until here */
	char last_seen[HA_TEXT_MAX * 2];
	char last_refusal[1024]; /* the sync value last refused on */
};

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.';
}

static bool name_ok(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char_ok(s[i]))
			return false;
	return true;
}

int ha_election_config_check(const struct ha_election_config *c, struct jm_err *err)
{
	int rc = ha_etcd_check_urls(c->etcd_url, err);
	if (rc != 0)
		return rc;
	if (!name_ok(c->node_name))
		return jm_err_set(err, JM_EINVAL,
		                  "--node-name \"%s\": use 1-64 of A-Z a-z 0-9 . _ - (default: the "
		                  "host name)",
		                  c->node_name);
	if (!name_ok(c->cluster))
		return jm_err_set(err, JM_EINVAL,
		                  "--ha-cluster \"%s\": use 1-64 of A-Z a-z 0-9 . _ -", c->cluster);
	if (c->ttl_ms < 2000 || c->ttl_ms % 1000 != 0 || c->ttl_ms > 3600000)
		return jm_err_set(err, JM_EINVAL,
		                  "--ha-lease-ttl-ms %" PRIu32
		                  ": etcd leases count whole seconds: use 2000 to 3600000 in "
		                  "steps of 1000",
		                  c->ttl_ms);
	if (c->renew_ms < 100 || c->renew_ms * 3 > c->ttl_ms)
		return jm_err_set(err, JM_EINVAL,
		                  "--ha-renew-ms %" PRIu32
		                  ": use 100 up to a third of --ha-lease-ttl-ms (%" PRIu32
		                  "), so a leader that misses a renewal still steps down before "
		                  "its lease expires",
		                  c->renew_ms, c->ttl_ms);
	return 0;
}

/* Waits up to ms or until stopped: true when stopping. */
static bool wait_ms(struct ha_election *e, uint64_t ms)
{
	struct timespec ts = jm_timespec_after_ms(CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&e->mu);
	if (!e->stopping)
		pthread_cond_timedwait(&e->wake, &e->mu, &ts);
	bool stopping = e->stopping;
	pthread_mutex_unlock(&e->mu);
	return stopping;
}

static bool is_stopping(struct ha_election *e)
{
	pthread_mutex_lock(&e->mu);
	bool stopping = e->stopping;
	pthread_mutex_unlock(&e->mu);
	return stopping;
}

/* The key's value: who leads and where to reach it. */
static char *leader_value(const struct ha_election *e)
{
	json_t *v = json_pack("{s:s, s:s, s:s, s:s}", "name", e->node_name, "client", e->client_url,
	                      "http", e->http_url, "replication", e->replication_url);
	char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	return text;
}

/* Tells the gate who leads, from the key's value ("" when absent). */
static void note_leader(struct ha_election *e, const struct ha_etcd_kv *kv)
{
	const char *name = "", *client = "", *http = "", *repl = "";
	json_t *v = kv->found ? json_loads(kv->value, 0, NULL) : NULL;
	if (v) {
		const char *s;
		if ((s = json_string_value(json_object_get(v, "name"))) != NULL)
			name = s;
		if ((s = json_string_value(json_object_get(v, "client"))) != NULL)
			client = s;
		if ((s = json_string_value(json_object_get(v, "http"))) != NULL)
			http = s;
		if ((s = json_string_value(json_object_get(v, "replication"))) != NULL)
			repl = s;
	}
	ha_gate_set_leader(e->gate, name, client, http);
	ha_gate_set_leader_replication(e->gate, repl);
	char seen[sizeof e->last_seen];
	snprintf(seen, sizeof seen, "%s %s", name, client);
	if (strcmp(seen, e->last_seen) != 0) {
		if (kv->found)
			jm_info("ha: the leader is %s at %s (epoch %" PRId64 ")", name, client,
			        kv->create_revision);
		else
			jm_info("ha: no broker leads cluster key %s", e->key);
		snprintf(e->last_seen, sizeof e->last_seen, "%s", seen);
	}
	json_decref(v);
}

/* Replicated mode: may this broker lead? Only if it has everything the
 * last leader acknowledged: it was that leader, or the standby the leader
 * last recorded in sync. A missing sync key is a new cluster. *sync is
 * the key as read (for the campaign's compare). */
static bool may_campaign(struct ha_election *e, struct ha_etcd_kv *sync)
{
	struct jm_err err = {0};
	if (ha_etcd_get(e->etcd, e->sync_key, e->renew_ms, sync, &err) != 0) {
		jm_warn("ha: reading %s: %s", e->sync_key, jm_err_text(&err));
		return false;
	}
	if (!sync->found)
		return true;
	json_t *v = json_loads(sync->value, 0, NULL);
	const char *leader = json_string_value(json_object_get(v, "leader"));
	const char *standby = json_string_value(json_object_get(v, "standby"));
	bool in_sync = json_is_true(json_object_get(v, "in_sync"));
	bool ok = (leader && strcmp(leader, e->node_name) == 0) ||
	          (in_sync && standby && strcmp(standby, e->node_name) == 0);
	char refusal[sizeof e->last_refusal];
	snprintf(refusal, sizeof refusal, "%s", ok ? "" : sync->value);
	if (!ok && strcmp(refusal, e->last_refusal) != 0)
		jm_warn("ha: %s does not campaign: it may miss what the last leader acknowledged "
		        "(%s is %s; only the last leader or the standby it recorded in sync may "
		        "lead)",
		        e->node_name, e->sync_key, sync->value);
	snprintf(e->last_refusal, sizeof e->last_refusal, "%s", refusal);
	json_decref(v);
	return ok;
}

/* Follower: reads the key; campaigns when it is absent. True once this
 * broker leads. */
static bool follow(struct ha_election *e)
{
	struct jm_err err = {0};
	struct ha_etcd_kv kv;
	uint32_t timeout_ms = e->renew_ms;
	if (ha_etcd_get(e->etcd, e->key, timeout_ms, &kv, &err) != 0) {
		jm_warn("ha: %s", jm_err_text(&err));
		return false;
	}
	/* A key on our lease is our own campaign whose answer was lost (no
	 * member answered the txn, yet one applied it): not another leader.
	 * Renew the lease below and take the key, rather than stand by for it
	 * until it expires. */
	bool ours = kv.found && e->lease != 0 && kv.lease == e->lease;
	if (kv.found && !ours) {
		note_leader(e, &kv);
		return false;
	}
	struct ha_etcd_kv sync = {0};
	if (!ours && e->replication_url[0] != '\0' && !may_campaign(e, &sync))
		return false;
	if (e->lease == 0 &&
	    ha_etcd_lease_grant(e->etcd, e->ttl_ms / 1000, timeout_ms, &e->lease, &err) != 0) {
		jm_warn("ha: campaign: %s", jm_err_text(&err));
		return false;
	}
	/* The lease was granted (or last renewed) no earlier than now. */
	uint64_t sent_us = jm_mono_us();
	int64_t ttl_s = 0;
	if (ha_etcd_lease_keepalive(e->etcd, e->lease, timeout_ms, &ttl_s, &err) != 0 ||
	    ttl_s <= 0) {
		e->lease = 0; /* expired meanwhile (or unknown): take a new one */
		return false;
	}
	char *value = leader_value(e);
	bool created = false;
	/* Replicated: the campaign holds only while the sync key is as read,
	 * so a leader's "standby out of sync" written meanwhile stops it. */
	bool replicated = e->replication_url[0] != '\0';
	int rc = value ? ha_etcd_create_if(e->etcd, e->key, value, e->lease,
	                                   replicated ? e->sync_key : NULL, sync.mod_revision,
	                                   timeout_ms, &created, &kv, &err)
	               : jm_err_set(&err, JM_ENOMEM, "out of memory");
	free(value);
	if (rc != 0) {
		jm_warn("ha: campaign: %s", jm_err_text(&err));
		return false;
	}
	if (!created && kv.found && kv.lease == e->lease) {
		/* The txn reached etcd through a member whose answer was lost and
		 * was sent again through another: the key is on our lease, so it
		 * is ours, and the keepalive above (sent_us) holds for it. */
		jm_info("ha: the leader key is on this broker's lease: an earlier answer was lost");
		created = true;
	}
	if (!created) {
		if (kv.found)
			note_leader(e, &kv); /* another broker won; keep the lease */
		return false;                /* or the sync key changed: read again */
	}
	e->epoch = kv.create_revision;
	e->valid_us = sent_us + (uint64_t)(e->ttl_ms - e->renew_ms) * 1000u;
	note_leader(e, &kv);
	jm_info("ha: %s leads at epoch %" PRId64 " (lease %" PRIx64 ", ttl %" PRIu32 " ms)",
	        e->node_name, e->epoch, (uint64_t)e->lease, e->ttl_ms);
	return true;
}

/* Leader: one renewal. 0 renewed or a transient failure (retried until
 * the deadline), or a reason to step down now in why. */
static int renew(struct ha_election *e, char *why, size_t size)
{
	struct jm_err err = {0};
	uint64_t now = jm_mono_us();
	uint64_t left_ms = e->valid_us > now ? (e->valid_us - now) / 1000 : 0;
	uint32_t timeout_ms = (uint32_t)(left_ms < e->renew_ms ? left_ms : e->renew_ms);
	if (timeout_ms < HA_CALL_MIN_MS)
		timeout_ms = HA_CALL_MIN_MS;
	int64_t ttl_s = 0;
	if (ha_etcd_lease_keepalive(e->etcd, e->lease, timeout_ms, &ttl_s, &err) != 0) {
		jm_warn("ha: renewing the lease: %s", jm_err_text(&err));
		return 0;
	}
	if (ttl_s <= 0) {
		snprintf(why, size, "etcd says lease %" PRIx64 " expired", (uint64_t)e->lease);
		return -1;
	}
	/* The keepalive went out at `now` at the latest: the lease runs at
	 * least ttl from then, whatever the read below costs. */
	e->valid_us = now + (uint64_t)(e->ttl_ms - e->renew_ms) * 1000u;
	struct ha_etcd_kv kv;
	if (ha_etcd_get(e->etcd, e->key, e->renew_ms, &kv, &err) != 0) {
		jm_warn("ha: reading the leader key: %s", jm_err_text(&err));
		return 0;
	}
	if (!kv.found || kv.create_revision != e->epoch) {
		snprintf(why, size, "the leader key %s is %s", e->key,
		         kv.found ? "another broker's" : "gone");
		return -1;
	}
	return 0;
}

static void *election_main(void *arg)
{
	struct ha_election *e = arg;
	while (!is_stopping(e)) {
		if (e->epoch == 0) {
			if (follow(e))
				e->hooks.elected_cb(e->hooks.arg, (uint64_t)e->epoch);
			else if (wait_ms(e, e->renew_ms))
				break;
			continue;
		}
		char why[HA_TEXT_MAX * 2] = "";
		int rc = renew(e, why, sizeof why);
		uint64_t now = jm_mono_us();
		if (rc == 0 && now >= e->valid_us)
			snprintf(
			    why, sizeof why,
			    "no renewal succeeded for %" PRIu32
			    " ms (etcd unreachable?): stepping down before the lease can expire",
			    e->ttl_ms - e->renew_ms);
		if (why[0] != '\0') {
			ha_gate_close(e->gate);
			jm_error("ha: %s no longer leads epoch %" PRId64 ": %s", e->node_name,
			         e->epoch, why);
			e->epoch = 0;
			e->hooks.lost_cb(e->hooks.arg, why);
			return NULL;
		}
		uint64_t left_ms = (e->valid_us - now) / 1000;
		if (wait_ms(e, left_ms < e->renew_ms ? left_ms : e->renew_ms))
			break;
	}
	return NULL;
}

int ha_election_start(struct ha_election **out, const struct ha_election_config *config,
                      struct ha_gate *gate, const struct ha_election_hooks *hooks,
                      struct jm_err *err)
{
	int rc = ha_election_config_check(config, err);
	if (rc != 0)
		return rc;
	struct ha_election *e = calloc(1, sizeof *e);
	if (e == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	snprintf(e->etcd_url, sizeof e->etcd_url, "%s", config->etcd_url);
	snprintf(e->node_name, sizeof e->node_name, "%s", config->node_name);
	snprintf(e->client_url, sizeof e->client_url, "%s", config->client_url);
	snprintf(e->http_url, sizeof e->http_url, "%s", config->http_url ? config->http_url : "");
	snprintf(e->replication_url, sizeof e->replication_url, "%s",
	         config->replication_url ? config->replication_url : "");
	snprintf(e->key, sizeof e->key, "/jobmesh/%s/leader", config->cluster);
	snprintf(e->sync_key, sizeof e->sync_key, "/jobmesh/%s/sync", config->cluster);
	e->ttl_ms = config->ttl_ms;
	e->renew_ms = config->renew_ms;
	e->gate = gate;
	e->hooks = *hooks;
	rc = ha_etcd_open(&e->etcd, config->etcd_url, err);
	if (rc != 0) {
		free(e);
		return rc;
	}
	pthread_mutex_init(&e->mu, NULL);
	jm_cond_init_monotonic(&e->wake);
	if (pthread_create(&e->thread, NULL, election_main, e) != 0) {
		ha_etcd_close(e->etcd);
		pthread_cond_destroy(&e->wake);
		pthread_mutex_destroy(&e->mu);
		free(e);
		return jm_err_set(err, JM_ENOMEM, "cannot start the election thread");
	}
	*out = e;
	return 0;
}

void ha_election_stop(struct ha_election *e)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&e->mu);
	e->stopping = true;
	pthread_cond_signal(&e->wake);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->thread, NULL);
	if (e->lease != 0) {
		/* The key goes with the lease: a standby need not wait out the
		 * TTL. Best effort; the TTL is the backstop. */
		struct jm_err err = {0};
		if (ha_etcd_lease_revoke(e->etcd, e->lease, 1000, &err) != 0)
			jm_warn("ha: revoking the lease at stop: %s", jm_err_text(&err));
		else if (e->epoch != 0)
			jm_info("ha: gave up the leadership of epoch %" PRId64, e->epoch);
	}
	ha_etcd_close(e->etcd);
	pthread_cond_destroy(&e->wake);
	pthread_mutex_destroy(&e->mu);
	free(e);
}
