/* The broker core: requests in, replies out, one lock.
 *
 * The core knows nothing of sockets. The server hands it decoded requests;
 * the core changes state by appending records to the journal and applying
 * them (state.h), and writes each reply into its request. A reply is
 * released through an outbox, after the core lock is dropped, once the
 * journal is durable up to the last record the reply depends on: a client
 * never hears of a change a crash could take back.
 *
 * A fetch with nothing to hand out, and a wait for an unfinished job, are
 * parked: their request is simply not answered yet. Jobs becoming ready,
 * jobs finishing and a timer thread sleeping until the earliest deadline
 * (deadline.h) answer them. Nothing polls. */
#ifndef JM_BROKER_CORE_H
#define JM_BROKER_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "journal.h"
#include "message.h"
#include "state.h"

struct request;
struct auth_identity;

/* Called once per request with its reply in req->reply, on whichever
 * thread made the reply durable. status is 0, or JM_ECLOSED when the
 * journal closed first (the reply must then not be sent as is). */
typedef void (*request_reply_fn)(struct request *req, int status);

/* One request in flight. The server owns it; the core completes it exactly
 * once by filling reply and passing it to on_reply. */
struct request {
	struct proto_msg msg; /* decoded; borrows from the server's message */
	uint32_t pipe_id;     /* the connection it came on */
	/* Who sent it (auth.h); NULL when the broker runs without --auth.
	 * Owned by the server or HTTP call, valid until on_reply. */
	const struct auth_identity *identity;
	request_reply_fn on_reply;
	struct jm_buf reply; /* encoded reply */
	uint64_t reply_lsn;  /* journal position the reply depends on */
	struct request *outbox_next;
};

/* Replies ready to go out once the core lock is dropped. */
struct outbox {
	struct request *head;
	struct request **tail;
};

struct core_config {
	struct state_config state;
	uint32_t wait_max_ms; /* longest a WAIT or FETCH may park */
	/* Compaction starts when the journal (the last snapshot and what was
	 * written since) is at least this big and at least twice the live
	 * state (compactor.c); 0 never. */
	uint64_t compact_min_bytes;
};

struct events;

struct core;

/* Builds the core over an opened journal: replays it, then starts the
 * journal writer and the timer thread. err says what failed. */
/* Puts schedule p as SCHEDULE_PUT would (a schedule the broker's config
 * declares): 0, or an error in err naming the schedule and the field. */
struct proto_schedule_info;
int core_schedule_declare(struct core *core, const struct proto_schedule_info *p,
                          struct jm_err *err);

int core_open(struct core **out, const struct core_config *config, struct journal *journal,
              struct journal_replay_stats *replay_stats, struct jm_err *err);
/* From now on, state changes are published on ev (owned by the caller,
 * who closes it after core_stop), and HELLO announces its URL. */
void core_attach_events(struct core *core, struct events *ev);

/* Answers every parked request (empty or current state) and stops the
 * timer thread. The journal stays open: the caller closes it. */
void core_stop(struct core *core);
void core_free(struct core *core); /* accepts NULL */

/* Handles req: completes it (via on_reply, perhaps later when durable) or
 * parks it. Thread-safe. */
void core_handle(struct core *core, struct request *req);

/* Completes req at once with an encoded ERROR: for requests that failed to
 * decode. */
void core_reply_error(struct request *req, int code, const char *text);

/* The connection pipe_id is gone: its parked requests are answered (into
 * the void) so their contexts can be reused. Thread-safe. */
void core_pipe_gone(struct core *core, uint32_t pipe_id);

#endif
