/* What the journal's files share and nothing outside broker/journal*.c
 * sees: the constants of the on-disk format, struct journal (which thread
 * owns which field), and the helpers one part of the journal calls in
 * another. The parts:
 *   journal.c           open, close, the data directory's LOCK, I/O seams
 *   journal_segment.c   file names, file and record framing, what makes a
 *                       record valid, listing the directory, opening a
 *                       segment for appending
 *   journal_replay.c    reading segments at start: torn tail against damage
 *   journal_snapshot.c  compaction: writing a snapshot, and loading one
 *   journal_writer.c    appends, the group-commit thread, the durable
 *                       position and its callbacks
 *   journal_clean.c     the clean-stop marker
 *   journal_prealloc.c  zeros kept ahead of appends in the open segment
 *   journal_mirror.c    HA standby: appending the leader's shipped bytes
 *   journal_reader.c    HA leader: reading its own files without the lock
 * The byte layout is described at the top of journal_segment.c. */
#ifndef JM_BROKER_JOURNAL_INTERNAL_H
#define JM_BROKER_JOURNAL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "journal.h"

#define JOURNAL_VERSION 1u
#define JOURNAL_HEADER_BYTES 24u
#define JOURNAL_FRAME_BYTES 8u
#define JOURNAL_MAX_BODY_BYTES (80u << 20)
#define JOURNAL_META_FLAG 0x80000000u
#define JOURNAL_META_END 1u
#define JOURNAL_META_END_BYTES 20u
#define JOURNAL_NAME_BYTES 64
#define JOURNAL_SEGMENT_MAGIC "JMJOURN1"
#define JOURNAL_SNAPSHOT_MAGIC "JMSNAPS1"
#define JOURNAL_SNAPSHOT_BUF_BYTES (1u << 20)
#define JOURNAL_BACKOFF_MIN_MS 100u
#define JOURNAL_BACKOFF_MAX_MS 2000u
#define JOURNAL_CLOSE_GIVE_UP_MS 3000u
#define JOURNAL_EVERYSEC_US 1000000u
#define JOURNAL_FIRE_BATCH 64
/* A leading thread syncs a second round itself only when at most this much
 * was appended during its first (journal_writer.c, journal_lead_end). */
#define JOURNAL_LEAD_AGAIN_BYTES 512u
/* How long records appended by a deferring request (journal_lead_defer) may
 * wait in pending for a record somebody waits on: about four NNG round
 * trips here, time for a short job's completion to come in. */
#define JOURNAL_DEFER_US 2000u
#define JOURNAL_KEEP_BUF_BYTES (16u << 20)
#define JOURNAL_PREALLOC_BYTES (1u << 20)      /* most zeros kept ahead of appends */
#define JOURNAL_PREALLOC_MIN_BYTES (64u << 10) /* and the fewest */

struct journal_mark {
	size_t offset; /* in the buffer: the rotation happens before this byte */
	uint64_t seq;  /* the segment that starts there */
};

struct journal_marks {
	struct journal_mark *items;
	size_t len;
	size_t cap;
};

struct journal_waiter {
	uint64_t lsn;
	journal_durable_cb cb;
	void *arg;
	bool first; /* before the others of its lsn (journal_when_durable_first) */
};

struct journal {
	char *dir;
	struct journal_options opts;
	struct journal_io io;
	int dir_fd;
	int lock_fd;
	bool replayed;
	bool stopped; /* journal_stop ran */

	/* Replay: the clean-stop marker read at its start (journal_clean.c),
	 * and whether --repair changed anything. */
	bool clean_found;
	uint64_t clean_seq; /* the last segment at the clean stop */
	uint64_t clean_end; /* and its size then */
	bool repaired;

	/* Set by replay, then owned by the writer once started. */
	int seg_fd;
	uint64_t seg_seq;        /* segment appended to */
	bool seg_exists;         /* seg_seq is on disk (else start creates it) */
	uint64_t seg_off;        /* where the next write goes */
	uint64_t seg_commit_off; /* end of the committed prefix */
	bool seg_tail_dirty;     /* bytes past seg_commit_off may remain */
	uint64_t seg_alloc_end;  /* file size: zeros from seg_off to here */
	bool prealloc_failed;    /* until the next segment (journal_prealloc.c) */

	/* HA. The leader's replica hook, set before start and called by the
	 * writing thread (journal_set_replica). A standby's copy uses the
	 * segment fields above before any replay (journal_mirror.c), plus the
	 * temp file of a snapshot being received. */
	journal_replica_fn replica;
	void *replica_arg;
	bool mirroring;
	int mirror_snap_fd;
	uint64_t mirror_snap_seq;

	/* Writer-owned: by the thread that set `writing` (journal_writer.c). */
	struct jm_buf inflight;
	struct journal_marks inflight_marks;
	size_t inflight_mark_next;
	size_t commit_pos;     /* committed prefix of inflight */
	bool unsynced;         /* EVERYSEC, OFF: written but not fdatasync'd */
	bool lead_defers_fire; /* a leading thread runs the callbacks itself */
	uint64_t last_sync_us;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t mu;
	pthread_cond_t writer_cv; /* work for the writer, or closing */
	pthread_cond_t state_cv;  /* rotation done, writes failing, writer done */

	/* Under mu. */
	bool writing; /* a thread owns inflight and the segment */
	/* Callbacks up to this lsn are the writer thread's to run: a leading
	 * thread that went on to a second sync handed them over. 0: none. */
	uint64_t fire_handoff_lsn;
	bool started;
	bool closing;
	bool writer_done;
	bool writable;
	int write_code; /* what appends are refused with while !writable */
	char write_err[JM_ERR_MSG_MAX];
	int hold_code; /* journal_hold: appends refused with it and hold_msg; 0: none */
	char hold_msg[JM_ERR_MSG_MAX];
	struct jm_buf pending;
	struct journal_marks pending_marks;
	/* Whether anything in pending is waited on or was appended by a thread
	 * that did not defer it (journal_lead_defer); until then, and while
	 * defer_until_us (0: no deferral) is ahead, the writer leaves pending
	 * alone. taken_lsn: the last lsn moved out of pending. */
	bool pending_demanded;
	uint64_t defer_until_us;
	uint64_t taken_lsn;
	uint64_t last_lsn;
	uint64_t durable_lsn;
	uint64_t newest_seq;  /* the segment the last rotation asked for */
	uint64_t rotated_seq; /* the segment the writer writes now */
	bool snapshot_active;
	uint64_t snap_seq;
	uint64_t snap_bytes;
	uint64_t appended_bytes;        /* framed bytes since the replayed snapshot */
	uint64_t log_base_bytes;        /* appended_bytes at the current snapshot */
	struct journal_waiter *waiters; /* sorted by lsn from waiters_head */
	size_t waiters_head;
	size_t waiters_len;
	size_t waiters_cap;
};

struct journal_snapshot {
	struct journal *j;
	uint64_t seq;
	int fd;
	char tmp_name[JOURNAL_NAME_BYTES];
	uint8_t *buf;
	size_t buf_len;
	uint64_t file_bytes; /* written to the file so far */
	uint64_t records;
	uint64_t body_bytes;
	uint64_t rotate_at_bytes;
	int failed; /* the first error, sticky */
};

/* --- little-endian fields ----------------------------------------------- */

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* --- journal.c: I/O through the seams ------------------------------------ */

/* Writes all len bytes through the seam, resuming short writes and EINTR.
 * 0, or a positive errno (some bytes may have been written then). */
int journal_write_all(const struct journal_io *io, int fd, const uint8_t *buf, size_t len);
/* fdatasync through the seam, resuming EINTR: 0 or a positive errno. */
int journal_sync_fd(const struct journal_io *io, int fd);
/* fsync of the data directory; a failure is logged, not returned. */
void journal_sync_dir(struct journal *j);

/* --- journal_segment.c: names, framing, reading files --------------------- */

void journal_segment_name(char *out, uint64_t seq);
void journal_snapshot_name(char *out, uint64_t seq, bool tmp);
/* The 8-byte record frame for body under length_word (length, meta flag). */
void journal_frame_header(uint8_t hdr[JOURNAL_FRAME_BYTES], uint32_t length_word, const void *body,
                          size_t len);
void journal_file_header(uint8_t hdr[JOURNAL_HEADER_BYTES], const char *magic, uint64_t seq);

/* A whole file mapped read-only (map is NULL for an empty file). */
struct journal_file {
	char name[JOURNAL_NAME_BYTES];
	int fd;
	const uint8_t *map;
	uint64_t size;
};

int journal_file_map(struct journal *j, const char *name, struct journal_file *f,
                     struct jm_err *err);
void journal_file_unmap(struct journal_file *f);
/* A reader going through f once, front to back, at byte off: gives the
 * pages wholly behind off back (they stay in the page cache; a later read
 * of them faults them in again), every JOURNAL_DROP_BEHIND_BYTES. Without
 * it a replay's peak memory is the state it builds plus every byte of the
 * file (about 160 MB for 1,000,000 jobs). *dropped (0 at the start) is how
 * far it went. */
#define JOURNAL_DROP_BEHIND_BYTES (8u << 20)
void journal_file_drop_behind(const struct journal_file *f, uint64_t off, uint64_t *dropped);
/* Checks the file header: 0, or a short reason in *why with JM_ECORRUPT or
 * JM_EVERSION. */
int journal_header_check(const struct journal_file *f, const char *magic, uint64_t seq,
                         const char **why);

struct journal_record {
	const uint8_t *body; /* points into the mapped file */
	uint32_t len;
	bool meta;
};

/* Checks the record at off: 0 with *rec filled, or JM_ECORRUPT with *why. */
int journal_record_check(const struct journal_file *f, uint64_t off, struct journal_record *rec,
                         const char **why);

/* Segment and snapshot numbers found in the data directory, ascending. */
struct journal_dir_list {
	uint64_t *segments;
	size_t segments_len;
	uint64_t *snapshots;
	size_t snapshots_len;
};

/* Lists segments and snapshots, sorted; deletes *.tmp unless read_only.
 * Free with journal_dir_list_free. */
int journal_list_dir(struct journal *j, struct journal_dir_list *list, struct jm_err *err);
void journal_dir_list_free(struct journal_dir_list *list);
/* Deletes segments and snapshots older than seq (what a finished
 * compaction to snapshot seq replaces). */
void journal_delete_replaced(struct journal *j, const struct journal_dir_list *list, uint64_t seq);
/* Opens segment seq for appending at off, creating it (header written and
 * synced, directory synced) when create. 0 or a positive errno. */
/* journal_prealloc.c, writer-owned like seg_fd. reset reads the size of a
 * newly opened seg_fd; ensure keeps zeros up to at least need (best effort);
 * trim cuts the file back to seg_off and syncs that: 0 or errno. */
void journal_prealloc_reset(struct journal *j);
void journal_prealloc_ensure(struct journal *j, uint64_t need);
int journal_prealloc_trim(struct journal *j);

int journal_segment_open(struct journal *j, uint64_t seq, bool create, uint64_t off, int *fd_out);

/* --- journal_snapshot.c -------------------------------------------------- */

/* Picks the newest complete snapshot (*chosen 0 if none) and applies its
 * records; sets j->snap_bytes. */
int journal_snapshot_load(struct journal *j, const struct journal_dir_list *list,
                          journal_apply_fn apply, void *arg, struct journal_replay_stats *stats,
                          uint64_t *chosen, struct jm_err *err);

/* --- journal_clean.c ---------------------------------------------------- */

/* Reads the clean-stop marker into clean_found, clean_seq, clean_end: 0
 * (also when there is none), or JM_ECORRUPT when it is damaged (unless
 * opts.repair, which ignores it), JM_EIO when it cannot be read. */
int journal_clean_read(struct journal *j, struct jm_err *err);
/* Writes the marker for the writer's final position (seg_seq, seg_off). */
int journal_clean_write(struct journal *j, struct jm_err *err);
/* Deletes the marker (absent is fine) and syncs the directory. */
int journal_clean_remove(struct journal *j, struct jm_err *err);

/* --- journal_writer.c ---------------------------------------------------- */

/* Not under mu: runs every waiting callback with status. */
void journal_waiters_fire_all(struct journal *j, int status);

#endif
