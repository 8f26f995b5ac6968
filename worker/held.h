/* The worker's held leases: every delivery it received and has not yet seen
 * settled. The heartbeat reports this set (a lease the broker granted that
 * never shows up here never reached us and is requeued), and the broker's
 * abandon list is applied to it.
 *
 * Invariants: an entry is added before its handler runs and removed only by
 * the slot thread that owns it, or by the settler once the slot queued the
 * entry's outcome there (settler.h), after its outcome was settled or
 * dropped.
 * Exactly one party settles an entry: whoever wins held_claim() (the slot
 * with its handler's outcome, or the stop path handing leases back); the
 * other drops what it had. An entry whose settle finished is no longer
 * reported, even while its slot has not removed it yet. */
#ifndef JM_WORKER_HELD_H
#define JM_WORKER_HELD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"

struct held_lease {
	uint64_t job_id;
	uint64_t lease;
	atomic_bool abandon; /* read by handlers without the lock */
	int abandon_fd;      /* eventfd, readable once abandon is set; -1 until asked for */
	bool claimed;        /* someone is settling it */
	bool settled;        /* its settle finished: left out of heartbeats */
	struct held_lease *prev;
	struct held_lease *next;
	struct held_lease *bucket_next; /* in its bucket of held_set.buckets */
};

struct held_set {
	pthread_mutex_t lock;
	struct held_lease *head;
	size_t count;
	/* Entries by job id, so that a heartbeat's abandon list (which names
	 * the leases settled while it crossed our SETTLE: thousands in a
	 * --serve drain) costs no scan of the set each. NULL (out of memory)
	 * falls back to scanning the list; when not NULL, every entry is in it. */
	struct held_lease **buckets;
	size_t buckets_count; /* a power of two */
};

void held_init(struct held_set *set);
void held_fini(struct held_set *set); /* frees what is left */

/* Adds a delivery. Returns the entry (owned by the set, removed by the
 * caller with held_remove) or NULL when out of memory. */
struct held_lease *held_add(struct held_set *set, uint64_t job_id, uint64_t lease);
/* Unlinks and frees entry; accepts NULL. */
void held_remove(struct held_set *set, struct held_lease *entry);

/* held_remove for entries[0..count) (NULLs skipped), under one lock. */
void held_remove_many(struct held_set *set, struct held_lease *const *entries, size_t count);

/* True if the caller is the first to claim entry, and so must settle it.
 * A NULL entry (could not be tracked) is always the caller's. */
bool held_claim(struct held_set *set, struct held_lease *entry);
/* Marks entry settled (after its SETTLE item got an answer or was given up). */
void held_set_settled(struct held_set *set, struct held_lease *entry);
/* Same, by key, for entries the caller holds no pointer to. */
void held_set_settled_ref(struct held_set *set, uint64_t job_id, uint64_t lease);

/* entry's abandon eventfd, made at the first call (readable at once if
 * the flag is already set); -1 for a NULL entry or when none could be
 * made. Owned by the entry: closed by held_remove. */
int held_abandon_fd(struct held_set *set, struct held_lease *entry);

/* Sets the abandon flag of the entry with this job and lease. True if that
 * stops a handler still running; false if the worker holds no such lease
 * (settled or never received) or its outcome is already being settled (a
 * heartbeat that crossed our SETTLE on the wire: the broker settled the lease
 * and lists it because we still did). */
bool held_mark_abandon(struct held_set *set, uint64_t job_id, uint64_t lease);

/* Marks every entry abandoned and claims those nobody claimed yet; their
 * keys go to *out (malloc'd, caller frees) and their number is returned.
 * Returns 0 with *out NULL when there are none, or when out of memory
 * (then nothing was claimed). */
size_t held_abandon_and_claim_all(struct held_set *set, struct proto_lease_ref **out);

/* Copies the keys of unsettled entries into *out (malloc'd, caller frees);
 * returns their number (0 with *out NULL when none or out of memory). */
size_t held_snapshot(struct held_set *set, struct proto_lease_ref **out);

#endif
