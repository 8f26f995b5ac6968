/* The progress board: the latest progress each running job reported, and
 * which of those values are due to go to the broker.
 *
 * A handler's report only stores its value here and, when the job had
 * nothing waiting, wakes the one sender thread; it never waits for the
 * broker. The sender takes one due value at a time (progress_take), sends
 * it without the lock, and says how that went (progress_sent). Values that
 * arrive faster than PROGRESS_INTERVAL_MS per job overwrite each other:
 * the latest wins. When the handler returns, its slot calls
 * progress_finish, which waits for a send in flight and hands back the
 * value not yet sent, so the slot can send it before the job's SETTLE.
 *
 * Invariants (all under the board's lock):
 *  - an entry is on the board from its first report until progress_finish;
 *    it is owned by its job (struct jm_job embeds it), and progress_finish
 *    returns only when the sender holds no pointer to it (!in_flight);
 *  - a pending value is the newest one reported; a value taken for sending
 *    is a copy, so a report during the send never races it;
 *  - a stale entry (the broker answered JM_ESTALE) never sends again. */
#ifndef JM_WORKER_PROGRESS_H
#define JM_WORKER_PROGRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "message.h"

/* At most one PROGRESS per job per this interval (~10 per second). */
#define PROGRESS_INTERVAL_MS 100
/* After a send failed for lack of a broker, the value waits this long. */
#define PROGRESS_RETRY_MS 1000
/* The total a fraction is reported against: 0.25 becomes 2500 of 10000. */
#define PROGRESS_FRACTION_TOTAL 10000

/* One progress value, as PROGRESS carries it. */
struct progress_value {
	uint64_t job_id;
	uint64_t lease;
	uint64_t done;
	uint64_t total;
	uint32_t message_len;
	char message[PROTO_ERROR_TEXT_MAX + 1]; /* NUL-terminated */
};

struct progress_entry {
	struct progress_value latest;
	bool linked;     /* on the board */
	bool pending;    /* latest was not sent yet */
	bool in_flight;  /* the sender is sending a copy now */
	bool stale;      /* the broker refused the lease: never send again */
	bool warned;     /* a refusal was logged for this job */
	uint64_t due_ms; /* monotonic ms before which nothing more is sent */
	struct progress_entry *prev;
	struct progress_entry *next;
};

struct progress_board {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC: work for the sender, sends done */
	struct progress_entry *head;
	bool closing;
};

/* How the broker took a value the sender sent. */
enum progress_send_result {
	PROGRESS_SENT = 0,    /* stored */
	PROGRESS_REFUSED = 1, /* refused for another reason: this value is dropped */
	PROGRESS_RETRY = 2,   /* no answer: send the latest value again later */
	PROGRESS_STALE = 3,   /* JM_ESTALE: the lease is no longer ours */
};

void progress_board_init(struct progress_board *board);
void progress_board_fini(struct progress_board *board);

/* Prepares an entry for one delivery; it joins the board on its first
 * report. */
void progress_entry_init(struct progress_entry *entry, uint64_t job_id, uint64_t lease);

/* Stores done of total with message (len bytes, cut to PROTO_ERROR_TEXT_MAX
 * at a UTF-8 boundary, control characters made spaces and bytes that are
 * not UTF-8 made '?'; NULL: none) as the job's latest value. Returns 0,
 * JM_EINVAL when total is 0 or done > total (nothing stored), or JM_ESTALE
 * when the broker already refused this lease (nothing stored: the handler
 * should stop). Never waits for the broker; safe from any thread. */
int progress_report(struct progress_board *board, struct progress_entry *entry, uint64_t done,
                    uint64_t total, const char *message, size_t len);

/* The sender's step, at time now_ms: if some entry's value is due, copies
 * it to *out, marks the entry in flight, stores it in *entry and returns
 * true (answer with progress_sent). Otherwise returns false with *wait_ms
 * the time until the earliest pending value is due (UINT64_MAX: none). */
bool progress_take(struct progress_board *board, uint64_t now_ms, struct progress_value *out,
                   struct progress_entry **entry, uint64_t *wait_ms);

/* Blocks until progress_take has a value (then true) or the board is closed
 * (then false). */
bool progress_take_wait(struct progress_board *board, struct progress_value *out,
                        struct progress_entry **entry);

/* Ends the send progress_take began for entry, at time now_ms. Returns
 * true the first time one job's value is refused or found stale, so that
 * the caller logs once per job, not once per report. */
bool progress_sent(struct progress_board *board, struct progress_entry *entry,
                   enum progress_send_result result, uint64_t now_ms);

/* Takes entry off the board after its handler returned, waiting first for a
 * send in flight. Returns true with *out set when a reported value was never
 * sent (the caller sends it before settling), false otherwise (also for a
 * stale entry, and for one never reported). */
bool progress_finish(struct progress_board *board, struct progress_entry *entry,
                     struct progress_value *out);

/* True once the broker refused the entry's lease. */
bool progress_is_stale(struct progress_board *board, struct progress_entry *entry);

/* Makes progress_take_wait return false from now on. */
void progress_close(struct progress_board *board);

#endif
