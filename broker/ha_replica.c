/* The HA standby's replica thread (see ha_replica.h). */
#include "ha_replica.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "clock.h"
#include "ha_gate.h"
#include "journal.h"
#include "log.h"
#include "repl_msg.h"
#include "sock_close.h"

#define REPLICA_URL_MAX 512
#define REPLICA_POLL_MS 200
#define REPLICA_RETRY_MS 1000

struct ha_replica {
	struct journal *journal;
	struct ha_gate *gate;
	char node_name[REPL_MAX_TEXT_BYTES + 1];
	struct ha_secret secret; /* len 0: none */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	bool stopping;     /* under mu */

	/* Replica thread only. */
	nng_socket sock;
	bool sock_open;
	char url[REPLICA_URL_MAX];
	bool begun; /* journal_mirror_begin ran */
	struct journal_position pos;
	uint64_t max_epoch;
	char last_warning[REPL_MAX_TEXT_BYTES + 1]; /* not repeated at every redial */
};

static bool wait_ms(struct ha_replica *r, uint32_t ms)
{
	struct timespec ts = jm_timespec_after_ms(CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&r->mu);
	if (!r->stopping)
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	bool stopping = r->stopping;
	pthread_mutex_unlock(&r->mu);
	return stopping;
}

static bool is_stopping(struct ha_replica *r)
{
	pthread_mutex_lock(&r->mu);
	bool stopping = r->stopping;
	pthread_mutex_unlock(&r->mu);
	return stopping;
}

/* nng_close can hang in NNG 1.5.2 on a pipe that vanished mid-handshake
 * (proto/sock_close.h), and a leader killed mid-handshake or one that
 * closes this standby's connection (it lacks the cluster secret, or another
 * one is connected) causes just that: seen holding up a promotion and a
 * SIGTERM for good. So the close is bounded; a hung one is left behind. */
static void close_to_leader(nng_socket sock)
{
	if (!sock_close(sock))
		jm_warn("replication: closing the socket to the leader takes over %d ms (an NNG "
		        "1.5.2 fault); going on without waiting for it",
		        SOCK_CLOSE_WAIT_MS);
}

/* Dials the leader's replication address when it changed. */
static void follow_leader(struct ha_replica *r)
{
	char url[REPLICA_URL_MAX];
	ha_gate_leader_replication_url(r->gate, url, sizeof url);
	if (strcmp(url, r->url) == 0 && (r->sock_open || url[0] == '\0'))
		return;
	if (r->sock_open) {
		close_to_leader(r->sock);
		r->sock_open = false;
	}
	snprintf(r->url, sizeof r->url, "%s", url);
	if (url[0] == '\0')
		return;
	int rv = nng_rep0_open(&r->sock);
	if (rv == 0) {
		nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ,
		                    REPL_REQ_HEADER_BYTES + REPL_MAX_DATA_BYTES);
		nng_socket_set_ms(r->sock, NNG_OPT_RECVTIMEO, REPLICA_POLL_MS);
		nng_socket_set_ms(r->sock, NNG_OPT_RECONNMINT, 100);
		nng_socket_set_ms(r->sock, NNG_OPT_RECONNMAXT, 1000);
		rv = nng_dial(r->sock, url, NULL, NNG_FLAG_NONBLOCK);
		if (rv != 0)
			close_to_leader(r->sock);
	}
	if (rv != 0) {
		jm_warn("replication: cannot dial the leader at %s: %s", url, nng_strerror(rv));
		r->url[0] = '\0';
		return;
	}
	r->sock_open = true;
	jm_info("replication: following the leader at %s; this copy ends at segment %" PRIu64
	        " byte %" PRIu64,
	        url, r->pos.seq, r->pos.off);
}

/* HELLO and the cluster secret: both brokers have one, or neither. */
static int hello_check(struct ha_replica *r, const struct repl_req *req, struct jm_err *err)
{
	if (req->len == REPL_NONCE_BYTES && r->secret.len == 0)
		return jm_err_set(err, JM_EAUTH,
		                  "replication: the leader at %s asks for the cluster secret: give "
		                  "this broker the leader's --replication-token-file",
		                  r->url);
	if (req->len != REPL_NONCE_BYTES && r->secret.len > 0)
		return jm_err_set(err, JM_EAUTH,
		                  "replication: the leader at %s does not ask for the cluster "
		                  "secret, which this broker has (--replication-token-file): it "
		                  "takes no journal from it; give the leader the same file",
		                  r->url);
	return 0;
}

/* Answers one request into rep. */
static void handle(struct ha_replica *r, const uint8_t *buf, size_t len, struct repl_rep *rep)
{
	struct jm_err err = {0};
	struct repl_req req;
	int rc = repl_req_decode(buf, len, &req, &err);
	if (rc == 0)
		rc = repl_epoch_admit(&r->max_epoch, &req, &err);
	if (rc == 0) {
		switch (req.kind) {
		case REPL_HELLO:
			rc = hello_check(r, &req, &err);
			if (rc == 0)
				rc = journal_mirror_tail(r->journal, &r->pos, &err);
			break;
		case REPL_APPEND:
			rc = journal_mirror_append(r->journal, req.seq, req.off, req.data, req.len,
			                           &r->pos, &err);
			break;
		case REPL_RESET:
			rc = journal_mirror_reset(r->journal, &r->pos, &err);
			break;
		case REPL_SNAP_PUT:
			rc = journal_mirror_snapshot_put(r->journal, req.seq, req.off, req.data,
			                                 req.len, &err);
			break;
		case REPL_SNAP_DONE:
			rc = journal_mirror_snapshot_done(r->journal, req.seq, &r->pos, &err);
			break;
		}
	}
	rep->status = rc;
	rep->seq = r->pos.seq;
	rep->off = r->pos.off;
	rep->tail_crc = r->pos.tail_crc;
	snprintf(rep->text, sizeof rep->text, "%s", rc == 0 ? r->node_name : jm_err_text(&err));
	if (rc == 0 && req.kind == REPL_HELLO && r->secret.len > 0) {
		char proof[REPL_PROOF_HEX_BYTES + 1];
		repl_hello_proof(r->secret.bytes, r->secret.len, req.epoch, req.data, proof);
		size_t used = strlen(rep->text);
		snprintf(rep->text + used, sizeof rep->text - used, " %s", proof);
	}
	if (rc != 0 && strcmp(rep->text, r->last_warning) != 0)
		jm_warn("%s", rep->text);
	snprintf(r->last_warning, sizeof r->last_warning, "%s", rc != 0 ? rep->text : "");
}

static void *replica_main(void *arg)
{
	struct ha_replica *r = arg;
	while (!is_stopping(r)) {
		if (!r->begun) {
			struct jm_err err = {0};
			if (journal_mirror_begin(r->journal, &r->pos, &err) != 0) {
				jm_error("replication: cannot prepare this broker's copy: %s",
				         jm_err_text(&err));
				if (wait_ms(r, REPLICA_RETRY_MS))
					break;
				continue;
			}
			r->begun = true;
		}
		follow_leader(r);
		if (!r->sock_open) {
			if (wait_ms(r, REPLICA_POLL_MS))
				break;
			continue;
		}
		nng_msg *msg = NULL;
		int rv = nng_recvmsg(r->sock, &msg, 0);
		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0) {
			if (wait_ms(r, REPLICA_POLL_MS))
				break;
			continue;
		}
		struct repl_rep rep;
		handle(r, nng_msg_body(msg), nng_msg_len(msg), &rep);
		nng_msg_clear(msg);
		uint8_t out[REPL_REP_HEADER_BYTES + REPL_MAX_TEXT_BYTES];
		size_t out_len = repl_rep_encode(&rep, out);
		if (nng_msg_append(msg, out, out_len) != 0 || nng_sendmsg(r->sock, msg, 0) != 0)
			nng_msg_free(msg);
	}
	/* Bounded: a hung close (the leader killed mid-handshake, NNG 1.5.2;
	 * proto/sock_close.h) held up the promotion that stops this thread. */
	if (r->sock_open)
		close_to_leader(r->sock);
	r->sock_open = false;
	journal_mirror_end(r->journal);
	return NULL;
}

int ha_replica_start(struct ha_replica **out, struct journal *journal, struct ha_gate *gate,
                     const char *node_name, const struct ha_secret *secret, struct jm_err *err)
{
	struct ha_replica *r = calloc(1, sizeof *r);
	if (r == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	r->journal = journal;
	r->gate = gate;
	snprintf(r->node_name, sizeof r->node_name, "%s", node_name);
	if (secret != NULL)
		r->secret = *secret;
	pthread_mutex_init(&r->mu, NULL);
	jm_cond_init_monotonic(&r->cv);
	if (pthread_create(&r->thread, NULL, replica_main, r) != 0) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		free(r);
		return jm_err_set(err, JM_ENOMEM, "cannot start the replica thread");
	}
	*out = r;
	return 0;
}

void ha_replica_stop(struct ha_replica *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
