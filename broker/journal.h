/* The broker's journal: append-only segments plus snapshots, group commit.
 *
 * Every state change of the broker is a record body (proto/record.h) that
 * the core appends here while it holds its lock, so the order of records is
 * the order of changes. A reply that reports a change is released only once
 * the record is durable under the fsync policy (journal_when_durable).
 *
 * On disk, in the data directory:
 *   journal-<seq>.log     segments, <seq> a 16-digit zero-padded number
 *   snapshot-<seq>.snap   the whole live state as of the start of segment
 *                         <seq>, written by compaction; replay starts at the
 *                         newest complete snapshot and then reads segments
 *                         >= <seq> in order.
 * The byte layout of files and records is described at the top of
 * journal_segment.c; journal.c says which file holds which part. */
#ifndef JM_BROKER_JOURNAL_H
#define JM_BROKER_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

enum journal_fsync {
	JOURNAL_FSYNC_ALWAYS,   /* each record written and synced on its own */
	JOURNAL_FSYNC_BATCH,    /* group commit: one fdatasync covers all records
	                           appended while the previous one ran */
	JOURNAL_FSYNC_EVERYSEC, /* replies after write(2); fdatasync once a second */
	JOURNAL_FSYNC_OFF,      /* replies after write(2); the OS syncs */
};

/* "always", "batch", "everysec", "off"; 0 or JM_EINVAL. */
int journal_fsync_parse(const char *text, enum journal_fsync *out);
const char *journal_fsync_name(enum journal_fsync policy);

/* Fault-injection seams for tests: default write(2) and fdatasync(2). */
struct journal_io {
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*sync)(int fd);
};

struct journal_options {
	const char *dir; /* created if missing */
	enum journal_fsync fsync;
	bool repair;                 /* truncate at damage (mid-journal, or in the
	                                tail after a clean stop) instead of
	                                refusing to start */
	bool read_only;              /* for --check-journal: never write or truncate */
	const struct journal_io *io; /* NULL: the real calls */
};

struct journal;

int journal_open(struct journal **out, const struct journal_options *opts, struct jm_err *err);
/* A clean stop, for a started journal: stops the writer as journal_close
 * does, then, if every appended record is written and synced, writes the
 * clean-stop marker (journal_clean.c), after which damage to the tail is
 * refused at the next start instead of cut as torn. 0, or JM_EIO with err
 * saying how many records could not be written (the writer gave up) or why
 * no marker was written. journal_close is still to be called. */
int journal_stop(struct journal *j, struct jm_err *err);
/* Stops the writer after making everything appended durable (bounded: a
 * write that keeps failing is given up after a few seconds, and its pending
 * callbacks get JM_ECLOSED). Writes no clean-stop marker: to a later start
 * this close looks like a crash. Accepts NULL. */
void journal_close(struct journal *j);

struct journal_replay_stats {
	uint64_t records;
	uint64_t bytes;
	uint64_t torn_tail_offset; /* where a torn tail was cut, or 0 */
	uint64_t torn_tail_bytes;  /* how many bytes were cut */
	char torn_tail_file[64];
};

/* Called per record in order. offset is the record's byte offset in file.
 * A nonzero return stops the replay and is returned by journal_replay. */
typedef int (*journal_apply_fn)(void *arg, const uint8_t *body, size_t len, const char *file,
                                uint64_t offset, struct jm_err *err);

/* Reads the newest snapshot and every later segment, calling apply per
 * record. A torn last record of the last segment is truncated (unless
 * read_only) and reported in stats and in the log with file and offset;
 * after a clean stop (journal_stop) no tail is torn, and a bad one is
 * damage.
 * Damage anywhere else is JM_ECORRUPT with err naming file and offset,
 * unless opts.repair, which truncates there and reports what was dropped.
 * Call once, before journal_start. */
int journal_replay(struct journal *j, journal_apply_fn apply, void *arg,
                   struct journal_replay_stats *stats, struct jm_err *err);

/* Starts the writer thread; appends are accepted only after this. */
int journal_start(struct journal *j, struct jm_err *err);

/* Copies body into the journal's buffer and assigns it the next sequence
 * number (lsn), returned in *lsn. Thread-safe, never blocks on the disk.
 * JM_ENOSPC (with err saying why) while writes are failing: the caller must
 * then refuse the request and change nothing. */
int journal_append(struct journal *j, const void *body, size_t len, uint64_t *lsn,
                   struct jm_err *err);

/* Appends count records at once, all or none: bodies holds them back to
 * back, lens[i] the length of each. *last_lsn is the last one's lsn (the
 * first is *last_lsn - count + 1). The same errors as journal_append, and
 * nothing is appended on any of them. */
int journal_append_many(struct journal *j, const void *bodies, const size_t *lens, size_t count,
                        uint64_t *last_lsn, struct jm_err *err);

/* False while the last write failed and has not yet been retried
 * successfully (disk full, I/O error); err says why. */
bool journal_is_writable(struct journal *j, struct jm_err *err);

/* status: 0 once durable, JM_ECLOSED if the journal closed first. */
typedef void (*journal_durable_cb)(void *arg, int status);

/* Calls cb(arg, 0) once every record up to lsn is durable under the policy
 * (ALWAYS, BATCH: synced; EVERYSEC, OFF: written to the OS). It runs on the
 * thread that made it durable (the writer thread, or a thread in
 * journal_lead_end), or at once on the caller's thread if lsn is already
 * durable, so cb must not take locks the appender holds. */
void journal_when_durable(struct journal *j, uint64_t lsn, journal_durable_cb cb, void *arg);

/* As journal_when_durable, but among the callbacks one sync releases for
 * the same lsn, cb runs before those registered with journal_when_durable
 * (after earlier _first ones; lower lsns still go first). For the answer
 * to a read that waited only for the record it reports: the producer of
 * W3 waits on it, while the SETTLE answer released by the same sync only
 * lets the worker send its next settle. */
void journal_when_durable_first(struct journal *j, uint64_t lsn, journal_durable_cb cb, void *arg);

/* Inline group commit, for a thread that appends and then waits for
 * nothing else (a request's NNG callback). Between journal_lead_begin and
 * journal_lead_end the thread's appends do not wake the writer thread;
 * journal_lead_end then writes and syncs them on the calling thread if no
 * write is under way (running the durable callbacks they release), and
 * otherwise leaves them to the write under way, which takes them when it
 * ends. Call journal_lead_end without holding locks that durable callbacks
 * or appenders take. Under EVERYSEC and OFF both do nothing. */
void journal_lead_begin(struct journal *j);
void journal_lead_end(struct journal *j);

/* Between journal_lead_begin and journal_lead_end: nobody waits for this
 * thread's appends yet, because the request's answer waits for a later
 * record (a submit that waits for its job's outcome: the completion's
 * record comes after the job's). journal_lead_end then writes nothing; the
 * records stay unwritten until a record after them is waited on or another
 * thread's appends are written (one write and sync then covers both), or
 * at most JOURNAL_DEFER_US (2 ms). Without a journal_lead_begin, and under
 * EVERYSEC and OFF, it does nothing. A deferred record is acknowledged to
 * nobody, so a crash may lose it like any record not yet synced; but it is
 * not even in the page cache during the deferral, so a kill -9 loses it
 * too. */
void journal_lead_defer(struct journal *j);

/* The lsn of the last durable record. */
uint64_t journal_durable_lsn(struct journal *j);

/* Bytes in segments written since the last snapshot, and the size of that
 * snapshot: compaction is due when the first grows well past the second. */
uint64_t journal_log_bytes(struct journal *j);
uint64_t journal_snapshot_bytes(struct journal *j);

/* Compaction, in three steps, without stopping service:
 * 1. journal_rotate, called under the core lock: later appends go to a new
 *    segment; returns the snapshot handle for that boundary.
 * 2. journal_snapshot_append of the live state, in chunks, each chunk under
 *    the core lock (records for jobs that changed after the rotation are
 *    also in the new segment; replay applies them on top, which the core's
 *    apply must tolerate: see broker/state.c).
 * 3. journal_snapshot_commit: syncs, renames into place, and deletes the
 *    segments and snapshots it replaces. Or journal_snapshot_abort. */
struct journal_snapshot;
int journal_rotate(struct journal *j, struct journal_snapshot **out, struct jm_err *err);
int journal_snapshot_append(struct journal_snapshot *snap, const void *body, size_t len,
                            struct jm_err *err);
int journal_snapshot_commit(struct journal_snapshot *snap, struct jm_err *err);
void journal_snapshot_abort(struct journal_snapshot *snap);

/* --- HA: shipping the journal to a standby --------------------------------
 *
 * The leader's writer calls the replica hook for every chunk of framed
 * record bytes it writes, twice: SEND once the chunk is written and before
 * its fdatasync (start shipping it; must not wait for the answer), and
 * WAIT after the fdatasync, before the chunk is published as durable: the
 * replies it releases wait for WAIT, whose nonzero return (a JM_E code) is
 * a failed write (the chunk is cut back and written again with backoff,
 * appends are refused meanwhile with that code and the text put in why). A failed local sync
 * still calls WAIT (its return is then ignored). seq and off say where
 * data starts in the leader's segment files. START, at journal_start with
 * len 0, says where the journal ends. Set before journal_start; NULL (the
 * default) costs the writer a pointer test per chunk. */
enum journal_replica_phase { JOURNAL_REPLICA_START, JOURNAL_REPLICA_SEND, JOURNAL_REPLICA_WAIT };
typedef int (*journal_replica_fn)(void *arg, enum journal_replica_phase phase, uint64_t seq,
                                  uint64_t off, const uint8_t *data, size_t len, char *why,
                                  size_t why_size);
void journal_set_replica(struct journal *j, journal_replica_fn fn, void *arg);

/* HA --ha-sync strict: from journal_hold on, appends (and
 * journal_is_writable) are refused with code and msg, while what was
 * appended before is written as usual; journal_release accepts them again
 * and retries at once a chunk the replica hook refused. */
void journal_hold(struct journal *j, int code, const char *msg);
void journal_release(struct journal *j);

/* Where a journal ends: segment seq (which may not exist yet when off is
 * the header size), byte off, and the CRC32C of the last up to 4096 bytes
 * before off in that segment (from byte 24), to tell a copy that diverged. */
struct journal_position {
	uint64_t seq;
	uint64_t off;
	uint32_t tail_crc;
};

#define JOURNAL_SEGMENT_START 24u /* the first record's offset in a segment */

/* Standby (journal_mirror.c), on an opened journal before its replay: the
 * leader's bytes are appended to the same file names at the same offsets,
 * so that the replay at election reads them. begin cuts a torn tail and
 * removes the clean-stop marker, and says where the copy ends; end closes
 * the files (the journal can then be replayed as usual). The others check
 * that they continue the copy exactly (a gap is JM_EINVAL naming both
 * positions) and sync before they return. */
int journal_mirror_begin(struct journal *j, struct journal_position *pos, struct jm_err *err);
int journal_mirror_append(struct journal *j, uint64_t seq, uint64_t off, const uint8_t *data,
                          size_t len, struct journal_position *pos, struct jm_err *err);
int journal_mirror_reset(struct journal *j, struct journal_position *pos, struct jm_err *err);
int journal_mirror_snapshot_put(struct journal *j, uint64_t seq, uint64_t off, const uint8_t *data,
                                size_t len, struct jm_err *err);
int journal_mirror_snapshot_done(struct journal *j, uint64_t seq, struct journal_position *pos,
                                 struct jm_err *err);
void journal_mirror_end(struct journal *j);
/* Where the copy ends, with its tail CRC (the others leave tail_crc 0). */
int journal_mirror_tail(struct journal *j, struct journal_position *pos, struct jm_err *err);

/* Leader (journal_reader.c): its own files read without the data
 * directory's lock, which the running broker holds (flock is per open
 * file, so a second journal_open in the same process cannot take it).
 * Files vanish when a compaction commits: reads then fail with
 * JM_ENOTFOUND and the caller starts its copy again. */
struct journal_files {
	uint64_t snapshot;  /* newest complete snapshot, 0 if none */
	uint64_t *segments; /* ascending */
	size_t segments_len;
};
int journal_files_list(const char *dir, struct journal_files *out, struct jm_err *err);
void journal_files_free(struct journal_files *files);
/* Up to len bytes of segment (or snapshot) seq from off into buf; *got is
 * less than len only at the end of the file. */
int journal_files_read(const char *dir, bool snapshot, uint64_t seq, uint64_t off, uint8_t *buf,
                       size_t len, size_t *got, struct jm_err *err);
/* The tail CRC of struct journal_position for segment seq ending at off
 * (0 for a missing file at the header size). */
int journal_files_tail_crc(const char *dir, uint64_t seq, uint64_t off, uint32_t *crc,
                           struct jm_err *err);

#endif
