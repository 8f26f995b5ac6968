/* The HA leader's side of journal shipping (see ha_ship.h). Two threads
 * use the REQ socket, never at once: the journal's writing thread while
 * the standby is in sync (ship_hook), the catch-up thread while it is not;
 * in_sync changes only under mu, which the hook holds for the whole of a
 * chunk and the catch-up holds for its last round. */
#include "ha_ship.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/random.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "clock.h"
#include "ha_etcd.h"
#include "journal.h"
#include "log.h"
#include "repl_msg.h"

#define SHIP_TEXT_MAX (REPL_MAX_TEXT_BYTES + 1)
#define SHIP_PIECE_BYTES (4u << 20)    /* a shipped message's data, split at records */
#define SHIP_COPY_BYTES (1u << 20)     /* a catch-up message's data */
#define SHIP_CATCHUP_TIMEOUT_MS 10000u /* a catch-up message's wait */
#define SHIP_HELLO_TIMEOUT_MS 500u
#define SHIP_IDLE_MS 200u
#define SHIP_UNLOCKED_ROUNDS 4
#define SHIP_ETCD_TIMEOUT_MS 2000u
#define SHIP_STRICT_REFUSAL                                                                        \
	"no standby in sync (--ha-sync strict): the leader refuses writes until a standby has "    \
	"caught up; reads go on; retry later"

struct ha_ship {
	struct ha_ship_config c;
	char listen_url[SHIP_TEXT_MAX];
	char data_dir[4096];
	char node_name[SHIP_TEXT_MAX];
	char leader_key[SHIP_TEXT_MAX];
	char sync_key[SHIP_TEXT_MAX];
	uint64_t epoch;
	struct ha_secret secret; /* len 0: none */
	struct journal *journal;
	struct ha_etcd *etcd;
	nng_socket sock;
	atomic_int pipes; /* the standby's pipe id, 0: none */
	/* With a secret: the pipe that proved it (0: none), and whether a
	 * request awaits its answer (no new pipe is let in meanwhile, since
	 * REQ would resend the request to it if the standby's pipe closed). */
	atomic_int authed;
	atomic_bool outstanding;
	uint8_t *copy_buf; /* catch-up thread only */

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	/* Under mu. */
	bool stopping;
	bool end_known;
	struct journal_position end; /* synced here, and shipped when in sync */
	bool in_sync;
	bool serving;      /* ha_ship_serving: strict mode refuses writes from now on */
	bool etcd_in_sync; /* etcd may say a standby is in sync */
	char standby[SHIP_TEXT_MAX];
	/* Writer's thread, between its SEND and WAIT (mu held all along). */
	bool ship_sent; /* a request awaits its answer */
	int ship_rc;    /* or the chunk failed already */
	struct jm_err ship_err;
};

/* One standby: a second peer would get every other request. The pipe
 * that is the standby's is kept by id (0: none), since a pipe closed in
 * ADD_PRE is never added. */
static void pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct ha_ship *s = arg;
	int id = nng_pipe_id(pipe);
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		if (atomic_load(&s->pipes) != 0) {
			jm_warn(
			    "replication: a second standby connected to %s: closed (one standby "
			    "is supported)",
			    s->listen_url);
			nng_pipe_close(pipe);
		} else if (s->secret.len > 0 && atomic_load(&s->outstanding)) {
			nng_pipe_close(pipe); /* it redials once the answer is in */
		}
	} else if (ev == NNG_PIPE_EV_ADD_POST) {
		int none = 0;
		if (!atomic_compare_exchange_strong(&s->pipes, &none, id) && s->secret.len > 0)
			nng_pipe_close(pipe); /* two raced past ADD_PRE: one is kept */
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		int gone = id;
		atomic_compare_exchange_strong(&s->authed, &gone, 0);
		atomic_compare_exchange_strong(&s->pipes, &id, 0);
	}
}

/* Where a pipe's peer is, for the log: an IP address (no port, so that
 * one standby's redials read alike), or "a local peer". */
static void pipe_peer(nng_pipe pipe, char *out, size_t size)
{
	nng_sockaddr sa;
	snprintf(out, size, "a local peer");
	if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET)
		inet_ntop(AF_INET, &sa.s_in.sa_addr, out, (socklen_t)size);
	else if (sa.s_family == NNG_AF_INET6)
		inet_ntop(AF_INET6, sa.s_in6.sa_addr, out, (socklen_t)size);
}

/* Under mu: the standby is (or is no longer) in sync. In strict mode, once
 * the core serves, that also opens (or closes) the journal to appends:
 * nothing is acknowledged that only this copy holds. */
static void set_in_sync(struct ha_ship *s, bool in_sync)
{
	bool was = s->in_sync;
	s->in_sync = in_sync;
	if (!s->c.strict || !s->serving || was == in_sync)
		return;
	if (in_sync) {
		journal_release(s->journal);
		jm_info("replication: standby %s is in sync: writes are accepted again "
		        "(--ha-sync strict)",
		        s->standby);
	} else {
		journal_hold(s->journal, JM_ENOSTANDBY, SHIP_STRICT_REFUSAL);
		jm_warn("replication: %s", SHIP_STRICT_REFUSAL);
	}
}

/* Sends one request (queued on the standby's pipe, or failed within
 * timeout_ms): 0 or JM_ETRANSPORT. The answer is read by recv_rep. */
static int send_req(struct ha_ship *s, enum repl_kind kind, uint64_t seq, uint64_t off,
                    const uint8_t *data, size_t len, uint32_t timeout_ms, struct jm_err *err)
{
	struct repl_req req = {.kind = kind,
	                       .epoch = s->epoch,
	                       .seq = seq,
	                       .off = off,
	                       .data = data,
	                       .len = (uint32_t)len};
	if (s->secret.len > 0) {
		/* Set before the check: a pipe let in after it is refused, so
		 * the request can only go to the one that proved the secret. */
		atomic_store(&s->outstanding, true);
		int authed = atomic_load(&s->authed);
		if (kind != REPL_HELLO && (authed == 0 || authed != atomic_load(&s->pipes))) {
			atomic_store(&s->outstanding, false);
			return jm_err_set(err, JM_EAUTH,
			                  "replication %s: %s: the standby's connection has not "
			                  "proved the cluster secret",
			                  s->listen_url, repl_kind_name(kind));
		}
	}
	nng_msg *msg = NULL;
	int rv = nng_msg_alloc(&msg, REPL_REQ_HEADER_BYTES + len);
	if (rv != 0) {
		atomic_store(&s->outstanding, false);
		return jm_err_set(err, JM_ENOMEM, "replication: out of memory");
	}
	uint8_t *body = nng_msg_body(msg);
	repl_req_header(body, &req);
	if (len > 0)
		memcpy(body + REPL_REQ_HEADER_BYTES, data, len);
	nng_socket_set_ms(s->sock, NNG_OPT_SENDTIMEO, (nng_duration)timeout_ms);
	if ((rv = nng_sendmsg(s->sock, msg, 0)) != 0) {
		nng_msg_free(msg);
		atomic_store(&s->outstanding, false);
		return jm_err_set(err, JM_ETRANSPORT, "replication %s: sending %s: %s",
		                  s->listen_url, repl_kind_name(kind), nng_strerror(rv));
	}
	return 0;
}

/* The answer to the request send_req sent: 0 with *rep filled
 * (rep->status may be an error of the standby's) and *from the pipe it
 * came on (may be NULL), or JM_ETRANSPORT. A failed receive drops the
 * request (REQ resets its state). */
static int recv_rep(struct ha_ship *s, enum repl_kind kind, uint32_t timeout_ms,
                    struct repl_rep *rep, nng_pipe *from, struct jm_err *err)
{
	nng_msg *msg = NULL;
	nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, (nng_duration)timeout_ms);
	int rv = nng_recvmsg(s->sock, &msg, 0);
	atomic_store(&s->outstanding, false);
	if (rv != 0)
		return jm_err_set(err, JM_ETRANSPORT, "replication %s: %s: %s", s->listen_url,
		                  repl_kind_name(kind),
		                  rv == NNG_ETIMEDOUT ? "no answer in time" : nng_strerror(rv));
	nng_pipe pipe = nng_msg_get_pipe(msg);
	if (from != NULL)
		*from = pipe;
	int rc = repl_rep_decode(nng_msg_body(msg), nng_msg_len(msg), rep, err);
	nng_msg_free(msg);
	if (rc == 0 && s->secret.len > 0 && kind != REPL_HELLO &&
	    nng_pipe_id(pipe) != atomic_load(&s->authed))
		rc = jm_err_set(err, JM_EAUTH,
		                "replication %s: an answer to %s from a connection that has not "
		                "proved the cluster secret",
		                s->listen_url, repl_kind_name(kind));
	return rc;
}

/* One request and its answer. */
static int call(struct ha_ship *s, enum repl_kind kind, uint64_t seq, uint64_t off,
                const uint8_t *data, size_t len, uint32_t timeout_ms, struct repl_rep *rep,
                struct jm_err *err)
{
	int rc = send_req(s, kind, seq, off, data, len, timeout_ms, err);
	return rc != 0 ? rc : recv_rep(s, kind, timeout_ms, rep, NULL, err);
}

/* call, with the standby's refusal turned into an error. */
static int call_ok(struct ha_ship *s, enum repl_kind kind, uint64_t seq, uint64_t off,
                   const uint8_t *data, size_t len, uint32_t timeout_ms, struct repl_rep *rep,
                   struct jm_err *err)
{
	int rc = call(s, kind, seq, off, data, len, timeout_ms, rep, err);
	if (rc == 0 && rep->status != 0)
		rc = jm_err_set(err, rep->status, "replication: the standby refused %s: %s",
		                repl_kind_name(kind), rep->text);
	return rc;
}

/* Under mu: writes the sync key, fenced by the leader key. */
static int record_sync(struct ha_ship *s, bool in_sync, struct jm_err *err)
{
	json_t *v =
	    json_pack("{s:I, s:s, s:s, s:b}", "epoch", (json_int_t)s->epoch, "leader", s->node_name,
	              "standby", in_sync ? s->standby : "", "in_sync", in_sync);
	char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (text == NULL)
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	bool put = false;
	int rc = ha_etcd_put_if_held(s->etcd, s->leader_key, (int64_t)s->epoch, s->sync_key, text,
	                             SHIP_ETCD_TIMEOUT_MS, &put, err);
	free(text);
	if (rc == 0 && !put)
		rc = jm_err_set(err, JM_ENOTLEADER,
		                "etcd: %s no longer holds %s at epoch %" PRIu64
		                ": sync not recorded",
		                s->node_name, s->leader_key, s->epoch);
	if (in_sync)
		s->etcd_in_sync = true; /* landed, or unknown whether it did: assume so */
	else if (rc == 0)
		s->etcd_in_sync = false;
	return rc;
}

/* Length of the whole records at the front of data, at most max (but at
 * least one record). */
static size_t piece_len(const uint8_t *data, size_t len, size_t max)
{
	size_t off = 0;
	while (off < len) {
		uint32_t word = (uint32_t)data[off] | (uint32_t)data[off + 1] << 8 |
		                (uint32_t)data[off + 2] << 16 | (uint32_t)data[off + 3] << 24;
		size_t rec = 8u + (word & 0x7fffffffu);
		if (off > 0 && off + rec > max)
			break;
		off += rec;
	}
	return off;
}

/* SEND: ships the chunk (one request; a chunk over SHIP_PIECE_BYTES, rare,
 * goes piece by piece at once), taking mu until WAIT. */
static void ship_send(struct ha_ship *s, uint64_t seq, uint64_t off, const uint8_t *data,
                      size_t len)
{
	pthread_mutex_lock(&s->mu);
	s->ship_sent = false;
	s->ship_rc = 0;
	jm_err_clear(&s->ship_err);
	if (!s->in_sync)
		return;
	if (len <= SHIP_PIECE_BYTES) {
		s->ship_rc =
		    send_req(s, REPL_APPEND, seq, off, data, len, s->c.timeout_ms, &s->ship_err);
		s->ship_sent = s->ship_rc == 0;
		return;
	}
	struct repl_rep rep;
	for (size_t done = 0; s->ship_rc == 0 && done < len;) {
		size_t n = piece_len(data + done, len - done, SHIP_PIECE_BYTES);
		s->ship_rc = call_ok(s, REPL_APPEND, seq, off + done, data + done, n,
		                     s->c.timeout_ms, &rep, &s->ship_err);
		done += n;
	}
}

/* WAIT: the standby's answer; on none, "out of sync" in etcd before the
 * chunk is published alone. Releases mu. */
static int ship_wait(struct ha_ship *s, uint64_t seq, uint64_t off, size_t len, char *why,
                     size_t why_size)
{
	struct jm_err err = s->ship_err;
	int rc = s->ship_rc;
	if (rc == 0 && s->ship_sent) {
		struct repl_rep rep;
		rc = recv_rep(s, REPL_APPEND, s->c.timeout_ms, &rep, NULL, &err);
		if (rc == 0 && rep.status != 0)
			rc = jm_err_set(&err, rep.status,
			                "replication: the standby refused append: %s", rep.text);
	}
	s->ship_sent = false;
	if (s->in_sync && rc != 0) {
		jm_warn("replication: standby %s is out of sync: %s", s->standby,
		        jm_err_text(&err));
		set_in_sync(s, false);
	}
	if (!s->in_sync && s->c.strict && s->serving) {
		/* Not published: the chunk is cut back and written again once a
		 * standby is in sync. etcd keeps naming the standby, which holds
		 * everything acknowledged (a full copy says otherwise first). */
		pthread_mutex_unlock(&s->mu);
		snprintf(why, why_size, "%s", SHIP_STRICT_REFUSAL);
		return JM_ENOSTANDBY;
	}
	if (!s->in_sync && s->etcd_in_sync && record_sync(s, false, &err) != 0) {
		pthread_mutex_unlock(&s->mu);
		snprintf(why, why_size,
		         "the standby did not acknowledge and etcd could not be told that it is "
		         "out of sync (%s)",
		         jm_err_text(&err));
		return JM_ENOSPC;
	}
	s->end = (struct journal_position){.seq = seq, .off = off + len};
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* The journal's replica hook (journal_set_replica). */
static int ship_hook(void *arg, enum journal_replica_phase phase, uint64_t seq, uint64_t off,
                     const uint8_t *data, size_t len, char *why, size_t why_size)
{
	struct ha_ship *s = arg;
	if (phase == JOURNAL_REPLICA_SEND) {
		ship_send(s, seq, off, data, len);
		return 0;
	}
	if (phase == JOURNAL_REPLICA_WAIT)
		return ship_wait(s, seq, off, len, why, why_size);
	pthread_mutex_lock(&s->mu);
	s->end = (struct journal_position){.seq = seq, .off = off};
	s->end_known = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* Waits ms or until stopping: true when stopping. */
static bool idle(struct ha_ship *s, uint32_t ms)
{
	struct timespec ts = jm_timespec_after_ms(CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&s->mu);
	if (!s->stopping)
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	bool stopping = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return stopping;
}

/* Can the standby continue from *pos with the leader's files? */
static bool tail_usable(struct ha_ship *s, const struct journal_files *files,
                        const struct journal_position *pos, const struct journal_position *end)
{
	bool listed = false;
	for (size_t i = 0; i < files->segments_len; i++)
		listed |= files->segments[i] == pos->seq;
	if (!listed || pos->seq > end->seq || (pos->seq == end->seq && pos->off > end->off))
		return false;
	uint32_t crc = 0;
	struct jm_err err = {0};
	if (journal_files_tail_crc(s->data_dir, pos->seq, pos->off, &crc, &err) != 0)
		return false;
	return crc == pos->tail_crc;
}

/* A full copy: reset, the newest snapshot, then segments from its number. */
static int copy_full(struct ha_ship *s, const struct journal_files *files,
                     struct journal_position *pos, struct jm_err *err)
{
	/* The standby's copy is incomplete from the reset on: etcd must not
	 * name it in sync meanwhile (strict mode leaves that to here). */
	pthread_mutex_lock(&s->mu);
	int rc = s->etcd_in_sync ? record_sync(s, false, err) : 0;
	pthread_mutex_unlock(&s->mu);
	if (rc != 0)
		return jm_err_prefix(err,
		                     "a full copy waits until etcd records no standby in sync");
	struct repl_rep rep;
	rc = call_ok(s, REPL_RESET, 0, 0, NULL, 0, SHIP_CATCHUP_TIMEOUT_MS, &rep, err);
	if (rc != 0)
		return rc;
	uint64_t first = files->segments_len ? files->segments[0] : 1;
	if (files->snapshot != 0) {
		uint64_t off = 0;
		for (;;) {
			size_t got = 0;
			rc = journal_files_read(s->data_dir, true, files->snapshot, off,
			                        s->copy_buf, SHIP_COPY_BYTES, &got, err);
			if (rc == 0)
				rc = call_ok(s, REPL_SNAP_PUT, files->snapshot, off, s->copy_buf,
				             got, SHIP_CATCHUP_TIMEOUT_MS, &rep, err);
			if (rc != 0)
				return rc;
			off += got;
			if (got < SHIP_COPY_BYTES)
				break;
		}
		rc = call_ok(s, REPL_SNAP_DONE, files->snapshot, off, NULL, 0,
		             SHIP_CATCHUP_TIMEOUT_MS, &rep, err);
		if (rc != 0)
			return rc;
		first = files->snapshot;
	}
	*pos = (struct journal_position){.seq = first, .off = JOURNAL_SEGMENT_START};
	jm_info("replication: full copy to %s: snapshot %" PRIu64 ", segments from %" PRIu64,
	        s->standby, files->snapshot, first);
	return 0;
}

/* Sends the leader's bytes from *pos up to end. */
static int copy_to(struct ha_ship *s, struct journal_position *pos,
                   const struct journal_position *end, struct jm_err *err)
{
	while (pos->seq < end->seq || (pos->seq == end->seq && pos->off < end->off)) {
		size_t want = SHIP_COPY_BYTES;
		if (pos->seq == end->seq && end->off - pos->off < want)
			want = (size_t)(end->off - pos->off);
		size_t got = 0;
		int rc = journal_files_read(s->data_dir, false, pos->seq, pos->off, s->copy_buf,
		                            want, &got, err);
		if (rc != 0)
			return rc;
		if (got == 0) {
			if (pos->seq == end->seq)
				return jm_err_set(err, JM_ECORRUPT,
				                  "replication: segment %" PRIu64
				                  " ends before byte %" PRIu64,
				                  pos->seq, end->off);
			pos->seq++; /* complete; the standby makes the next one on its first chunk
			             */
			pos->off = JOURNAL_SEGMENT_START;
			continue;
		}
		got = piece_len(s->copy_buf, got, got); /* whole records only */
		struct repl_rep rep;
		rc = call_ok(s, REPL_APPEND, pos->seq, pos->off, s->copy_buf, got,
		             SHIP_CATCHUP_TIMEOUT_MS, &rep, err);
		if (rc != 0)
			return rc;
		pos->off += got;
	}
	return 0;
}

/* One catch-up of a standby that answered HELLO at *pos. */
static int catch_up(struct ha_ship *s, struct journal_position pos, struct jm_err *err)
{
	struct journal_files files;
	int rc = journal_files_list(s->data_dir, &files, err);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&s->mu);
	struct journal_position end = s->end;
	pthread_mutex_unlock(&s->mu);
	if (!tail_usable(s, &files, &pos, &end))
		rc = copy_full(s, &files, &pos, err);
	journal_files_free(&files);
	for (int round = 0; rc == 0; round++) {
		bool last = round >= SHIP_UNLOCKED_ROUNDS;
		pthread_mutex_lock(&s->mu);
		end = s->end;
		if (!last)
			pthread_mutex_unlock(&s->mu);
		rc = copy_to(s, &pos, &end, err);
		if (last) {
			if (rc == 0) {
				/* The writer waits on mu: its next chunk starts at end. */
				set_in_sync(s, true);
				struct jm_err etcd_err = {0};
				if (record_sync(s, true, &etcd_err) != 0)
					jm_warn("replication: %s is in sync, but etcd was not told "
					        "(it may not take over yet): %s",
					        s->standby, jm_err_text(&etcd_err));
				jm_info("replication: standby %s is in sync at segment %" PRIu64
				        " byte %" PRIu64,
				        s->standby, end.seq, end.off);
			}
			pthread_mutex_unlock(&s->mu);
			break;
		}
	}
	return rc;
}

/* HELLO: who the standby is and where its copy ends. With a secret, the
 * standby must prove it holds it before anything else is sent; one that
 * does not has its connection closed. */
static int hello(struct ha_ship *s, struct repl_rep *rep, struct jm_err *err)
{
	if (s->secret.len == 0)
		return call_ok(s, REPL_HELLO, 0, 0, NULL, 0, SHIP_HELLO_TIMEOUT_MS, rep, err);
	uint8_t nonce[REPL_NONCE_BYTES];
	if (getrandom(nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce)
		return jm_err_set(err, JM_EIO, "replication: drawing a nonce: getrandom failed");
	nng_pipe from = NNG_PIPE_INITIALIZER;
	int rc = send_req(s, REPL_HELLO, 0, 0, nonce, sizeof nonce, SHIP_HELLO_TIMEOUT_MS, err);
	if (rc == 0)
		rc = recv_rep(s, REPL_HELLO, SHIP_HELLO_TIMEOUT_MS, rep, &from, err);
	if (rc != 0)
		return rc;
	size_t name_len = 0;
	bool has_proof = false;
	bool proven =
	    rep->status == 0 && repl_hello_proven(rep->text, s->secret.bytes, s->secret.len,
	                                          s->epoch, nonce, &name_len, &has_proof);
	int id = nng_pipe_id(from);
	if (proven && atomic_load(&s->pipes) == id) {
		rep->text[name_len] = '\0';
		atomic_store(&s->authed, id);
		return 0;
	}
	char peer[64];
	pipe_peer(from, peer, sizeof peer);
	nng_pipe_close(from);
	if (proven)
		return jm_err_set(err, JM_ETRANSPORT,
		                  "replication: the standby's connection closed during hello");
	if (rep->status != 0)
		return jm_err_set(err, JM_EAUTH,
		                  "refused the standby at %s, which answered \"%s\"; closed its "
		                  "connection, it gets nothing",
		                  peer, rep->text);
	rep->text[name_len] = '\0';
	return jm_err_set(err, JM_EAUTH,
	                  "refused standby %s at %s: %s (--replication-token-file "
	                  "must be the same file on every broker); closed its connection, it "
	                  "gets nothing",
	                  rep->text, peer,
	                  has_proof ? "its cluster secret is wrong"
	                            : "it presented no cluster secret");
}

/* Is the connection that proved itself (or, without a secret, any) gone? */
static bool standby_is_gone(struct ha_ship *s)
{
	int pipe = atomic_load(&s->pipes);
	return pipe == 0 || (s->secret.len > 0 && atomic_load(&s->authed) != pipe);
}

/* Strict mode: a standby whose connection is gone is out of sync now, not
 * at the next write's timeout, so that writes are refused at once rather
 * than left waiting for it. */
static void standby_gone(struct ha_ship *s)
{
	pthread_mutex_lock(&s->mu);
	if (s->in_sync && standby_is_gone(s)) {
		jm_warn("replication: standby %s disconnected", s->standby);
		set_in_sync(s, false);
	}
	pthread_mutex_unlock(&s->mu);
}

static void *catchup_main(void *arg)
{
	struct ha_ship *s = arg;
	char last_err[JM_ERR_MSG_MAX] = "";
	for (;;) {
		pthread_mutex_lock(&s->mu);
		bool busy = s->in_sync || !s->end_known;
		bool stopping = s->stopping;
		pthread_mutex_unlock(&s->mu);
		if (stopping)
			break;
		if (s->c.strict && standby_is_gone(s))
			standby_gone(s);
		if (busy || atomic_load(&s->pipes) == 0) {
			if (idle(s, SHIP_IDLE_MS))
				break;
			continue;
		}
		struct repl_rep rep;
		struct jm_err err = {0};
		int rc = hello(s, &rep, &err);
		if (rc == 0) {
			snprintf(s->standby, sizeof s->standby, "%s", rep.text);
			jm_info(
			    "replication: standby %s connected, its copy ends at segment %" PRIu64
			    " byte %" PRIu64 "; catching it up",
			    s->standby, rep.seq, rep.off);
			rc = catch_up(s,
			              (struct journal_position){
			                  .seq = rep.seq, .off = rep.off, .tail_crc = rep.tail_crc},
			              &err);
		}
		if (rc != 0) {
			if (strcmp(last_err, jm_err_text(&err)) != 0)
				jm_warn("replication: catching up: %s; trying again",
				        jm_err_text(&err));
			snprintf(last_err, sizeof last_err, "%s", jm_err_text(&err));
			if (idle(s, SHIP_IDLE_MS))
				break;
		} else {
			last_err[0] = '\0';
		}
	}
	return NULL;
}

static void ship_free(struct ha_ship *s)
{
	explicit_bzero(&s->secret, sizeof s->secret);
	nng_close(s->sock);
	ha_etcd_close(s->etcd);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->copy_buf);
	free(s);
}

int ha_ship_start(struct ha_ship **out, const struct ha_ship_config *c, struct journal *journal,
                  uint64_t epoch, struct jm_err *err)
{
	struct ha_ship *s = calloc(1, sizeof *s);
	if (s == NULL || (s->copy_buf = malloc(SHIP_COPY_BYTES)) == NULL) {
		free(s);
		return jm_err_set(err, JM_ENOMEM, "out of memory");
	}
	s->c = *c;
	snprintf(s->listen_url, sizeof s->listen_url, "%s", c->listen_url);
	snprintf(s->data_dir, sizeof s->data_dir, "%s", c->data_dir);
	snprintf(s->node_name, sizeof s->node_name, "%s", c->node_name);
	snprintf(s->leader_key, sizeof s->leader_key, "/jobmesh/%s/leader", c->cluster);
	snprintf(s->sync_key, sizeof s->sync_key, "/jobmesh/%s/sync", c->cluster);
	s->epoch = epoch;
	s->journal = journal;
	if (c->secret != NULL)
		s->secret = *c->secret;
	s->etcd_in_sync = true; /* until this leader wrote otherwise */
	pthread_mutex_init(&s->mu, NULL);
	jm_cond_init_monotonic(&s->cv);
	int rv = nng_req0_open(&s->sock);
	int rc = 0;
	if (rv != 0) {
		rc = jm_err_set(err, JM_ETRANSPORT, "replication: %s", nng_strerror(rv));
		s->sock = (nng_socket)NNG_SOCKET_INITIALIZER;
		goto fail;
	}
	nng_socket_set_ms(s->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ,
	                    REPL_REP_HEADER_BYTES + REPL_MAX_TEXT_BYTES);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, s);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, s);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, pipe_cb, s);
	if ((rv = nng_listen(s->sock, c->listen_url, NULL, 0)) != 0) {
		rc = jm_err_set(err, JM_ETRANSPORT, "--replication-listen %s: %s", c->listen_url,
		                nng_strerror(rv));
		goto fail;
	}
	if ((rc = ha_etcd_open(&s->etcd, c->etcd_url, err)) != 0)
		goto fail;
	pthread_mutex_lock(&s->mu);
	rc = record_sync(s, false, err);
	pthread_mutex_unlock(&s->mu);
	if (rc != 0)
		goto fail;
	if (pthread_create(&s->thread, NULL, catchup_main, s) != 0) {
		rc = jm_err_set(err, JM_ENOMEM, "cannot start the replication thread");
		goto fail;
	}
	s->thread_started = true;
	journal_set_replica(journal, ship_hook, s);
	jm_info("replication: leader of epoch %" PRIu64 " ships its journal on %s (%s)", epoch,
	        c->listen_url,
	        c->strict ? "--ha-sync strict: no writes without a standby in sync"
	                  : "--ha-sync available: acknowledges alone once etcd says no standby is "
	                    "in sync");
	*out = s;
	return 0;
fail:
	ship_free(s);
	return rc;
}

void ha_ship_serving(struct ha_ship *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->serving = true;
	if (s->c.strict && !s->in_sync) {
		journal_hold(s->journal, JM_ENOSTANDBY, SHIP_STRICT_REFUSAL);
		jm_warn("replication: %s", SHIP_STRICT_REFUSAL);
	}
	pthread_mutex_unlock(&s->mu);
}

void ha_ship_stop(struct ha_ship *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	/* The catch-up thread may wait on the socket: closing it ends that. */
	nng_close(s->sock);
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	ship_free(s);
}
